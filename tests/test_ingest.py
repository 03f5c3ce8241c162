"""Ingest stage: every supported file type and encoding is read, every bad file is named and skipped."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from assistant.errors import IngestError
from assistant.ingest import load_corpus, load_file

SPANISH = (
    "Área de Atención al Cliente\na) Objetivo\nAtender a los clientes de la Institución; señal, acción.\n"
)


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("name", "encoding"),
    [
        ("utf8.txt", "utf-8"),
        ("latin1.txt", "latin-1"),
        ("cp1252.txt", "cp1252"),
        ("bom.txt", "utf-8-sig"),
        ("utf16.txt", "utf-16"),
    ],
)
def test_text_in_any_common_encoding_keeps_its_accents(tmp_path: Path, name: str, encoding: str) -> None:
    text = SPANISH + "Fecha de vigencia: “15 de marzo de 2016”\n" if encoding == "cp1252" else SPANISH
    doc = load_file(_write(tmp_path / name, text.encode(encoding)))
    assert "Área de Atención al Cliente" in doc.text
    assert "Institución; señal, acción." in doc.text
    assert "\ufeff" not in doc.text
    if encoding == "cp1252":
        assert "“15 de marzo de 2016”" in doc.text


def test_markdown_is_read_as_text(tmp_path: Path) -> None:
    doc = load_file(_write(tmp_path / "notas.md", ("# Manual\n\n" + SPANISH).encode()))
    assert doc.text.startswith("# Manual")
    assert "Área de Atención al Cliente" in doc.text


def test_windows_line_endings_become_newlines(tmp_path: Path) -> None:
    doc = load_file(_write(tmp_path / "crlf.txt", SPANISH.replace("\n", "\r\n").encode()))
    assert "\r" not in doc.text
    assert doc.text.split("\n")[1] == "a) Objetivo"


def test_empty_file_is_rejected_with_its_name(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match=r"vacio\.txt holds no text"):
        load_file(_write(tmp_path / "vacio.txt", b""))


def test_whitespace_only_file_is_rejected_with_its_name(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match=r"blancos\.md holds no text"):
        load_file(_write(tmp_path / "blancos.md", b"  \n\t\n   \r\n"))


def test_binary_file_is_one_sentence_naming_the_file(tmp_path: Path) -> None:
    data = b"\x00\x01\x02PK" + os.urandom(2000)
    with pytest.raises(IngestError) as info:
        load_file(_write(tmp_path / "imagen.txt", data))
    message = str(info.value)
    assert message.startswith("imagen.txt ")
    assert "binary" in message
    assert message.count(".") <= 2 and "\n" not in message


def test_corrupt_pdf_is_rejected_with_its_name(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match=r"roto\.pdf is not a readable PDF"):
        load_file(_write(tmp_path / "roto.pdf", b"%PDF-1.4\nthis is not really a pdf\n%%EOF"))


def test_corrupt_docx_is_rejected_with_its_name(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match=r"roto\.docx is not a readable DOCX"):
        load_file(_write(tmp_path / "roto.docx", b"PK\x03\x04 not a zip at all"))


def test_unsupported_extension_names_the_file_and_the_supported_types(tmp_path: Path) -> None:
    with pytest.raises(IngestError) as info:
        load_file(_write(tmp_path / "tabla.xlsx", b"whatever"))
    assert "tabla.xlsx" in str(info.value)
    assert ".xlsx" in str(info.value) and ".pdf" in str(info.value)


def test_docx_paragraphs_and_page_breaks_are_read_in_order(tmp_path: Path) -> None:
    import docx

    document = docx.Document()
    document.add_paragraph("Área de Ventas")
    document.add_page_break()
    document.add_paragraph("b) Funciones")
    table = document.add_table(rows=1, cols=2)
    table.cell(0, 0).text = "Versión"
    table.cell(0, 1).text = "Descripción"
    path = tmp_path / "manual.docx"
    document.save(str(path))
    text = load_file(path).text
    assert (
        text.index("Área de Ventas") < text.index("\f") < text.index("b) Funciones") < text.index("Versión")
    )


def test_load_corpus_keeps_going_past_bad_files_and_names_each(tmp_path: Path) -> None:
    _write(tmp_path / "a_bueno.txt", SPANISH.encode())
    _write(tmp_path / "b_vacio.txt", b"")
    _write(tmp_path / "c_binario.txt", b"\x00" * 64 + os.urandom(256))
    _write(tmp_path / "d_roto.pdf", b"%PDF-1.4 garbage")
    _write(tmp_path / "e_bueno.md", ("# Otro\n" + SPANISH).encode("latin-1"))
    result = load_corpus(tmp_path)
    assert sorted(Path(d.path).name for d in result.documents) == ["a_bueno.txt", "e_bueno.md"]
    assert len(result.errors) == 3
    for name in ("b_vacio.txt", "c_binario.txt", "d_roto.pdf"):
        assert sum(name in e for e in result.errors) == 1


def test_two_copies_of_the_same_manual_keep_one_and_report_the_other(tmp_path: Path) -> None:
    manual = (
        Path(__file__).resolve().parents[1] / "corpus" / "mof-901-0905-gerencia-servicio-al-cliente-v10.txt"
    )
    data = manual.read_bytes()
    _write(tmp_path / "mof-a.txt", data)
    _write(tmp_path / "mof-b.txt", data)
    result = load_corpus(tmp_path)
    assert [Path(d.path).name for d in result.documents] == ["mof-a.txt"]
    assert result.errors == ["mof-b.txt is a copy of mof-a.txt; only the first was kept."]


def test_missing_corpus_folder_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(IngestError, match="does not exist; create it"):
        load_corpus(tmp_path / "no-such-folder")


def test_docx_list_numerals_come_from_the_numbering_definitions(tmp_path: Path) -> None:
    """Word keeps a list's numeral in numbering.xml, not in the paragraph: it is rebuilt per list."""
    import docx

    from evals.manuals.render import _in_list, _Lists

    document = docx.Document()
    document.sections[0].header.paragraphs[0].text = "ENCABEZADO"
    document.sections[0].footer.paragraphs[0].text = "PIE DE PÁGINA"
    lists = _Lists(document)
    roman_list, decimal_list, bullets = lists.new("lowerRoman"), lists.new("decimal"), lists.new("bullet")
    for text in ("Uno.", "Dos.", "Tres.", "Cuatro."):
        _in_list(document.add_paragraph(text), roman_list)
    for text in ("Uno.", "Dos."):
        _in_list(document.add_paragraph(text), decimal_list)
    cell = document.add_table(rows=1, cols=1).cell(0, 0)
    cell.paragraphs[0].text = "Creación."
    _in_list(cell.paragraphs[0], bullets)
    cell.add_paragraph("Analista: Ana.")
    path = tmp_path / "listas.docx"
    document.save(str(path))
    lines = load_file(path).text.split("\n")
    assert lines == [
        "i. Uno.",
        "ii. Dos.",
        "iii. Tres.",
        "iv. Cuatro.",
        "1. Uno.",
        "2. Dos.",
        "· Creación.",
        "Analista: Ana.",
    ]
