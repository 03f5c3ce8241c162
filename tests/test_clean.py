"""Cleaning stage: site noise, running headers/footers and the table of contents go; content stays whole."""

from __future__ import annotations

from assistant.clean import clean_text

HEADER = "MOF 902 0100 GERENCIA DE RECURSOS HUMANOS"
FOOTER = "Vigente desde: 2 de enero de 2020"


def _paged(pages: list[list[str]], *, header: str = HEADER, footer: str = FOOTER) -> str:
    """A scraped text: each page is header, body, footer and its page number (as the site prints them)."""
    out: list[str] = ["Story Transcript", ""]
    for number, body in enumerate(pages, start=1):
        out += [header, "", *body, "", footer, "", str(number), ""]
    return "\n".join(out)


PAGES = [
    ["CÓDIGO 902 0100 MANUAL DE ORGANIZACIÓN Y FUNCIONES", "Versión: 3"],
    ["I. OBJETIVOS DEL MANUAL", "Dar a conocer la estructura.", "a) Objetivo", "Gestionar el talento."],
    ["b) Funciones", "i. Reclutar al personal idóneo para las", "plazas vacantes de la Institución."],
    ["ii. Administrar la planilla de", "salarios.", "iii. Capacitar al personal."],
]


def test_site_noise_is_removed() -> None:
    raw = (
        "MANUAL GERENCIA\n13 downloads 78 Views 1MB Size\nRecommend Stories\nOtro documento\n"
        "Story Transcript\n\nI. OBJETIVOS DEL MANUAL\nMostrar la estructura organizativa.\n"
        + "Texto del manual.\n" * 40
        + "Get in touch\n\nSocial\n\n© Copyright 2013 - 2024 MYDOKUMENT.COM - All rights reserved.\n"
    )
    text = clean_text(raw).text
    assert text.startswith("I. OBJETIVOS DEL MANUAL")
    for noise in (
        "downloads",
        "Recommend",
        "Otro documento",
        "Get in touch",
        "Social",
        "Copyright",
        "MYDOKUMENT",
    ):
        assert noise not in text
    assert text.rstrip().endswith("Texto del manual.")


def test_download_counter_line_in_the_middle_of_the_text_is_dropped() -> None:
    raw = "Story Transcript\nI. OBJETIVOS\n2 downloads 10 Views\nMostrar la estructura.\n"
    assert clean_text(raw).text == "I. OBJETIVOS\nMostrar la estructura."


def test_running_header_and_footer_are_found_by_repetition() -> None:
    cleaned = clean_text(_paged(PAGES))
    assert HEADER not in cleaned.text
    assert "Vigente desde" not in cleaned.text
    assert cleaned.page_breaks == 4
    assert any("Vigente desde" in line for line in cleaned.running_lines)
    # Page numbers are gone, and every content line survives.
    assert not any(line.strip().isdigit() for line in cleaned.text.split("\n"))
    for line in (
        "Dar a conocer la estructura.",
        "a) Objetivo",
        "b) Funciones",
        "iii. Capacitar al personal.",
    ):
        assert line in cleaned.text.split("\n")


def test_other_header_text_is_detected_too() -> None:
    header, footer = "Fondo Nacional · Gerencia de Créditos · MOF", "Documento controlado por Planificación"
    cleaned = clean_text(_paged(PAGES, header=header, footer=footer))
    assert "Fondo Nacional" not in cleaned.text
    assert "Documento controlado" not in cleaned.text
    assert "Gestionar el talento." in cleaned.text


def test_header_run_into_the_first_content_line_of_a_page_is_cut_off() -> None:
    raw = _paged(PAGES).replace(f"{HEADER}\n\nb) Funciones", f"{HEADER} b) Funciones")
    raw = raw.replace(f"{HEADER}\n\nii. Administrar", f"{HEADER} ii. Administrar")
    lines = clean_text(raw).text.split("\n")
    assert "b) Funciones" in lines
    assert any(line.startswith("ii. Administrar la planilla") for line in lines)


def test_sentence_split_by_a_page_break_is_glued_back_whole() -> None:
    pages = [
        PAGES[0],
        ["b) Funciones", "i. Reclutar al personal idóneo para las"],
        ["plazas vacantes de la Institución.", "ii. Capacitar al personal."],
        ["iii. Administrar la planilla."],
    ]
    lines = clean_text(_paged(pages)).text.split("\n")
    assert "i. Reclutar al personal idóneo para las plazas vacantes de la Institución." in lines
    assert "ii. Capacitar al personal." in lines


def test_new_sentence_after_a_page_break_is_not_glued_to_the_previous_one() -> None:
    pages = [PAGES[0], ["b) Funciones", "i. Reclutar al personal."], ["ii. Capacitar al personal."], ["Fin."]]
    lines = clean_text(_paged(pages)).text.split("\n")
    assert "i. Reclutar al personal." in lines
    assert "ii. Capacitar al personal." in lines


def test_table_of_contents_is_dropped() -> None:
    toc = [
        "INDICE Página No.",
        "I. OBJETIVOS DEL MANUAL ........................................ 3",
        "II. ORGANIGRAMA GENERAL ........................................ 3 1.",
        "Área de Nóminas ................................................ 4",
    ]
    cleaned = clean_text(_paged([PAGES[0], toc, *PAGES[1:]]))
    assert "INDICE" not in cleaned.text
    assert "....." not in cleaned.text
    assert cleaned.text.count("I. OBJETIVOS DEL MANUAL") == 1
    assert "Dar a conocer la estructura." in cleaned.text


def test_content_line_that_resembles_the_footer_in_mid_page_is_kept() -> None:
    resembling = "Vigente desde: 2 de enero de 2020 para todas las agencias del Fondo."
    starts_like_header = f"{HEADER} sustituye a la versión 2 de este manual."
    pages = [PAGES[0], [*PAGES[1][:2], resembling, starts_like_header, *PAGES[1][2:]], *PAGES[2:]]
    lines = clean_text(_paged(pages)).text.split("\n")
    assert resembling in lines
    assert starts_like_header in lines
    # Also when the header is run into the first line of every page (so it is cut off there).
    lines = clean_text(_paged(pages).replace(f"{HEADER}\n\n", f"{HEADER} ")).text.split("\n")
    assert "Dar a conocer la estructura." in lines
    assert starts_like_header in lines


def test_list_numbers_near_page_breaks_are_not_taken_for_page_furniture() -> None:
    # A short document: numbered rows ("1.", "2.") happen to sit next to two page breaks.
    pages = [
        ["CÓDIGO 902 0100 MANUAL", "1."],
        ["Creación.", "2."],
        ["Actualización.", "3.", "Revisión."],
    ]
    lines = clean_text(_paged(pages)).text.split("\n")
    assert [line for line in lines if line in ("1.", "2.", "3.")] == ["1.", "2.", "3."]


def test_text_without_page_breaks_is_only_tidied() -> None:
    cleaned = clean_text("Story Transcript\nI. OBJETIVOS\n\n\n\nMostrar   la estructura.\n")
    assert cleaned.text == "I. OBJETIVOS\n\nMostrar la estructura."
    assert cleaned.page_breaks == 0
    assert cleaned.running_lines == []


def test_header_on_its_own_line_is_also_removed_where_a_page_runs_it_into_the_text() -> None:
    header = "902 0100 MANUAL DE ORGANIZACIÓN Y FUNCIONES"
    raw = _paged(
        [
            ["CÓDIGO 902 0100 MANUAL", "Versión: 3"],
            ["I. OBJETIVOS DEL MANUAL", "Dar a conocer la estructura."],
            ["b) Funciones", "i. Reclutar al personal idóneo para las"],
            [f"{header} plazas vacantes de la Institución.", "ii. Capacitar."],
            ["iii. Evaluar."],
        ],
        header=header,
    ).replace(f"{header}\n\n{header} plazas", f"{header} plazas")
    text = clean_text(raw).text
    assert "MANUAL DE ORGANIZACIÓN" not in text
    assert "i. Reclutar al personal idóneo para las plazas vacantes de la Institución." in text


def test_pdf_pages_lose_their_footer_and_page_number_on_the_last_page_too() -> None:
    pages = [
        ["CÓDIGO 902 0100", "Versión: 3"],
        ["I. OBJETIVOS DEL MANUAL", "Dar a conocer la estructura."],
        ["b) Funciones", "i. Reclutar al personal."],
        ["ii. Capacitar al personal."],
    ]
    raw = "\f".join(
        "\n".join([HEADER, *body, FOOTER, str(n), "Autorizado por: Junta"]) for n, body in enumerate(pages, 1)
    )
    text = clean_text(raw).text
    assert FOOTER not in text and "Autorizado por" not in text and HEADER not in text
    assert text.rstrip().endswith("ii. Capacitar al personal.")
