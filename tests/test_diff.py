"""The structural diff between two versions of one manual: the fixtures exactly, renames, moved vs reworded."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from assistant.cli import main
from assistant.diff import DiffError, diff_manuals, render_text, similarity, summarise
from assistant.ingest import load_file
from assistant.models import Function, Manual, Unit
from assistant.parse import parse_document

ROOT = Path(__file__).resolve().parents[1]
VERSIONS = ROOT / "evals" / "versions"
V10 = ROOT / "corpus" / "mof-901-0905-gerencia-servicio-al-cliente-v10.txt"
V11 = VERSIONS / "mof-901-0905-gerencia-servicio-al-cliente-v11.txt"
C6 = ROOT / "evals" / "manuals" / "gerencia-creditos" / "manual.txt"
C7 = VERSIONS / "mof-901-0903-gerencia-creditos-v7.txt"
CASES = [
    ("901 0905", 10, 11, [V10, V11], VERSIONS / "mof-901-0905-v10-v11.diff.json"),
    ("901 0903", 6, 7, [C6, C7], VERSIONS / "mof-901-0903-v6-v7.diff.json"),
]


@pytest.mark.parametrize(
    ("code", "old", "new", "files", "expected"), CASES, ids=["servicio-v10-v11", "creditos-v6-v7"]
)
def test_cli_diff_json_reproduces_the_fixture_exactly(
    capsys: pytest.CaptureFixture[str], code: str, old: int, new: int, files: list[Path], expected: Path
) -> None:
    corpus = [arg for f in files for arg in ("--corpus", str(f))]
    assert main(["diff", code, "--from", str(old), "--to", str(new), *corpus, "--json"]) == 0
    out = capsys.readouterr().out
    assert json.loads(out) == json.loads(expected.read_text(encoding="utf-8"))


def test_fixtures_parse_cleanly() -> None:
    for path, version, date in ((V11, 11, dt.date(2019, 7, 1)), (C7, 7, dt.date(2017, 9, 1))):
        manual = parse_document(load_file(str(path)))
        assert manual.warnings == []
        assert (manual.version, manual.effective_date) == (version, date)
        assert manual.history[-1].version == version and manual.history[-1].date == date


def test_cli_reads_the_corpus_folder_and_prints_text(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for p in (V10, V11):
        (tmp_path / p.name).write_bytes(p.read_bytes())
    assert main(["diff", "901 0905", "--from", "10", "--to", "11", "--corpus", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("901 0905: v10 (2016-03-15) → v11 (2019-07-01)")
    assert "↻ Área de Servicios en Línea → Área de Canales Digitales" in out
    assert "→ [Agencias vii → Área de Recuperación de Cartera i]" in out
    assert main(["diff", "901 0905", "--from", "9", "--to", "11", "--corpus", str(tmp_path)]) == 1
    assert "no version 9" in capsys.readouterr().err
    assert main(["diff", "123", "--from", "1", "--to", "2", "--corpus", str(tmp_path)]) == 1


# --- the rules, on small manuals ----------------------------------------------------------------------------


def manual(version: int, *units: Unit) -> Manual:
    return Manual(id=f"m{version}", source="m.txt", code="1", version=version, units=list(units))


def unit(
    name: str, positions: list[str], *functions: str, parent: str | None = "G", objective: str = ""
) -> Unit:
    numerals = ["i", "ii", "iii", "iv", "v"]
    fns = [Function(numeral=numerals[k], text=t) for k, t in enumerate(functions)]
    return Unit(name=name, parent=parent, positions=positions, functions=fns, objective=objective)


TOP = unit("G", ["Gerente"], "Dirigir la Gerencia.", parent=None)


def test_similarity_is_dice_over_words() -> None:
    assert similarity("Formalizar créditos hipotecarios.", "formalizar CREDITOS hipotecarios") == 1.0
    assert similarity("a b c d", "a b c e") == 0.75
    assert similarity("a", "b") == 0.0


def test_a_rename_is_found_by_shared_positions_and_functions() -> None:
    old = manual(
        1,
        TOP,
        unit(
            "Área de Servicios en Línea",
            ["Jefe", "Promotor", "Auxiliar"],
            "Mantener la web.",
            "Servir de enlace.",
        ),
    )
    new = manual(
        2,
        TOP,
        unit(
            "Área de Canales Digitales",
            ["Jefe", "Promotor", "Auxiliar"],
            "Mantener la web.",
            "Servir de enlace.",
        ),
    )
    d = diff_manuals(old, new)
    assert [(r.from_unit, r.to_unit, r.similarity) for r in d.units_renamed] == [
        ("Área de Servicios en Línea", "Área de Canales Digitales", 1.0)
    ]
    assert not d.units_added and not d.units_removed and not d.positions_added and not d.functions_moved


def test_an_unrelated_new_unit_is_not_a_rename() -> None:
    old = manual(1, TOP, unit("Área A", ["Jefe A", "Técnico"], "Hacer x.", "Hacer y."))
    new = manual(2, TOP, unit("Área B", ["Jefe B", "Analista"], "Hacer z.", "Hacer y."))
    d = diff_manuals(old, new)
    assert d.units_renamed == []
    assert [u.unit for u in d.units_added] == ["Área B"] and [u.unit for u in d.units_removed] == ["Área A"]
    # The shared line left one unit for the other.
    assert [(m.from_unit, m.to_unit, m.similarity) for m in d.functions_moved] == [("Área A", "Área B", 1.0)]


def test_moved_versus_reworded() -> None:
    line = "Recuperar judicialmente los créditos en mora de la zona."
    old = manual(
        1, TOP, unit("Agencias", ["Jefe"], "Atender clientes.", line), unit("Ventas", ["Jefe V"], "Vender.")
    )
    # Same unit, new words → reworded; another unit → moved.
    reworded = manual(
        2,
        TOP,
        unit("Agencias", ["Jefe"], "Atender clientes.", "Recuperar judicialmente los créditos en mora."),
        unit("Ventas", ["Jefe V"], "Vender."),
    )
    moved = manual(
        2, TOP, unit("Agencias", ["Jefe"], "Atender clientes."), unit("Ventas", ["Jefe V"], "Vender.", line)
    )
    d = diff_manuals(old, reworded)
    assert [(r.unit, r.similarity) for r in d.functions_reworded] == [
        ("Agencias", 0.8)
    ] and not d.functions_moved
    d = diff_manuals(old, moved)
    assert [(m.from_unit, m.from_numeral, m.to_unit, m.to_numeral) for m in d.functions_moved] == [
        ("Agencias", "ii", "Ventas", "ii")
    ]
    assert not d.functions_reworded and not d.functions_added and not d.functions_removed


def test_a_rewrite_below_the_threshold_is_removed_and_added() -> None:
    old = manual(1, TOP, unit("A", ["Jefe"], "Controlar los valúos de los activos."))
    new = manual(2, TOP, unit("A", ["Jefe"], "Organizar ferias empresariales anuales."))
    d = diff_manuals(old, new)
    assert len(d.functions_added) == len(d.functions_removed) == 1 and not d.functions_reworded


def test_renumbering_alone_is_no_change() -> None:
    old = manual(1, TOP, unit("A", ["Jefe"], "Hacer x.", "Hacer y."))
    new = manual(2, TOP, unit("A", ["Jefe"], "Hacer y."))
    d = diff_manuals(old, new)
    assert [(f.numeral, f.text) for f in d.functions_removed] == [("i", "Hacer x.")]
    assert not d.functions_reworded and not d.functions_moved


def test_offices_sharing_their_group_lines_count_them_once() -> None:
    shared = ["Formalizar créditos.", "Cobrar la mora."]
    group = unit("Agencias", [], *shared)
    offices = [unit(n, ["Jefe de Agencia"], *shared, parent="Agencias") for n in ("Agencia 1", "Agencia 2")]
    old = manual(1, TOP, group, *offices)
    kept = ["Formalizar créditos."]
    new = manual(
        2,
        TOP,
        unit("Agencias", [], *kept),
        *[unit(n, ["Jefe de Agencia"], *kept, parent="Agencias") for n in ("Agencia 1", "Agencia 2")],
        unit("Cobros", ["Jefe de Cobros"], "Cobrar la mora."),
    )
    d = diff_manuals(old, new)
    assert [(m.from_unit, m.to_unit) for m in d.functions_moved] == [("Agencias", "Cobros")]
    assert not d.functions_removed


def test_positions_moved_added_removed_and_objectives() -> None:
    old = manual(
        1, TOP, unit("A", ["Jefe A", "Gestor", "Asistente"], objective="Vender más."), unit("B", ["Jefe B"])
    )
    new = manual(
        2,
        TOP,
        unit("A", ["Jefe A"], objective="Vender mucho más."),
        unit("B", ["Jefe B", "Gestor", "Técnico"]),
    )
    d = diff_manuals(old, new)
    assert [(p.position, p.from_unit, p.to_unit) for p in d.positions_moved] == [("Gestor", "A", "B")]
    assert [(p.unit, p.position) for p in d.positions_removed] == [("A", "Asistente")]
    assert [(p.unit, p.position) for p in d.positions_added] == [("B", "Técnico")]
    assert [(o.unit, o.similarity) for o in d.objectives_changed] == [("A", 0.8)]


def test_same_manual_is_an_empty_diff_and_other_codes_are_refused() -> None:
    m = manual(1, TOP, unit("A", ["Jefe"], "Hacer x."))
    d = diff_manuals(m, m)
    assert d.empty and "sin cambios" in render_text(d)
    with pytest.raises(DiffError):
        diff_manuals(m, m.model_copy(update={"code": "2"}))


def test_json_order_is_deterministic() -> None:
    a, b = parse_document(load_file(str(V10))), parse_document(load_file(str(V11)))
    assert diff_manuals(a, b).to_json() == diff_manuals(a, b).to_json()
    assert list(json.loads(diff_manuals(a, b).to_json()))[:5] == [
        "code",
        "from_version",
        "from_date",
        "to_version",
        "to_date",
    ]


def test_summarise_says_each_change_in_either_language_and_counts_the_rest() -> None:
    old = manual(1, TOP, unit("A", ["Jefe A", "Gestor"], objective="Vender más."), unit("B", ["Jefe B"]))
    new = manual(
        2, TOP, unit("A", ["Jefe A"], objective="Vender mucho más."), unit("B", ["Jefe B", "Gestor"])
    )
    d = diff_manuals(old, new)
    assert summarise(d, "es") == ["Puesto trasladado: Gestor (A → B)", "Objetivo modificado: A"]
    assert summarise(d, "en") == ["Position moved: Gestor (A → B)", "Objective changed: A"]
    assert summarise(d, "es", limit=1) == ["Puesto trasladado: Gestor (A → B)", "… y 1 cambios más"]
    assert summarise(d, "en", limit=0) == ["… and 2 more changes"]
