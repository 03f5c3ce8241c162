"""Versions side by side: the version in force by date, as-of dates, ties, and which version a question asks."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from assistant.ingest import load_file
from assistant.models import Manual
from assistant.parse import parse_document
from assistant.settings import Settings
from assistant.store import Manifest
from assistant.versions import (
    Catalogue,
    VersionCuesError,
    by_code,
    load_cues,
    named_dates,
    named_versions,
    resolve,
)

ROOT = Path(__file__).resolve().parents[1]
V10 = ROOT / "corpus" / "mof-901-0905-gerencia-servicio-al-cliente-v10.txt"
V11 = ROOT / "evals" / "versions" / "mof-901-0905-gerencia-servicio-al-cliente-v11.txt"
C6 = ROOT / "evals" / "manuals" / "gerencia-creditos" / "manual.txt"
C7 = ROOT / "evals" / "versions" / "mof-901-0903-gerencia-creditos-v7.txt"
TODAY = dt.date(2026, 1, 1)


def edition(code: str, version: int, effective: dt.date | None, mid: str | None = None) -> Manual:
    return Manual(
        id=mid or f"{code}-v{version}", source="x.txt", code=code, version=version, effective_date=effective
    )


@pytest.fixture(scope="module")
def served() -> list[Manual]:
    """Two versions of two manuals, parsed from the corpus and the fixtures (newest of each listed first)."""
    return [parse_document(load_file(str(p))) for p in (V11, V10, C7, C6)]


def versions_of(manuals: list[Manual]) -> list[tuple[str, int | None]]:
    return [(m.code, m.version) for m in manuals]


# --- in force ------------------------------------------------------------------------------------------------


def test_in_force_is_the_latest_effective_date_not_after_today() -> None:
    manuals = [
        edition("A", 1, dt.date(2010, 1, 1)),
        edition("A", 2, dt.date(2015, 6, 1)),
        edition("A", 3, dt.date(2030, 1, 1)),
    ]
    cat = Catalogue(manuals, as_of=TODAY)
    assert cat.current("A").version == 2
    assert [cat.status(m) for m in manuals] == ["superseded", "in_force", "future"]
    assert cat.valid_until(manuals[0]) == dt.date(2015, 5, 31)


def test_as_of_moves_the_version_in_force() -> None:
    manuals = [edition("A", 1, dt.date(2010, 1, 1)), edition("A", 2, dt.date(2015, 6, 1))]
    assert Catalogue(manuals, as_of=dt.date(2015, 5, 31)).current("A").version == 1
    assert Catalogue(manuals, as_of=dt.date(2015, 6, 1)).current("A").version == 2  # the effective day counts
    assert Catalogue(manuals, as_of=dt.date(2009, 1, 1)).in_force() == []


def test_same_effective_date_the_higher_version_wins() -> None:
    manuals = [edition("A", 4, dt.date(2015, 6, 1)), edition("A", 3, dt.date(2015, 6, 1))]
    assert Catalogue(manuals, as_of=TODAY).current("A").version == 4


def test_default_as_of_is_today() -> None:
    tomorrow = dt.date.today() + dt.timedelta(days=1)
    manuals = [edition("A", 1, dt.date(2010, 1, 1)), edition("A", 2, tomorrow)]
    assert Catalogue(manuals).current("A").version == 1


def test_settings_as_of_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ASSISTANT_AS_OF", "2018-01-01")
    assert Settings().as_of == dt.date(2018, 1, 1)
    monkeypatch.delenv("ASSISTANT_AS_OF")
    assert Settings().as_of is None


def test_codes_are_grouped_oldest_first(served: list[Manual]) -> None:
    groups = by_code(served)
    assert list(groups) == ["901 0905", "901 0903"]
    assert [m.version for m in groups["901 0905"]] == [10, 11]
    assert [m.version for m in groups["901 0903"]] == [6, 7]


def test_superseded_versions_are_labelled(served: list[Manual]) -> None:
    cat = Catalogue(served, as_of=TODAY)
    v10 = cat.version("901 0905", 10)
    assert v10 is not None and cat.status(v10) == "superseded"
    assert cat.label(v10) == "versión 10 (sustituida; vigente del 15 de marzo de 2016 al 30 de junio de 2019)"
    assert cat.label(v10, "en") == "version 10 (superseded; in force from 15 March 2016 to 30 June 2019)"
    v11 = cat.version("901 0905", 11)
    assert v11 is not None and cat.label(v11) == "versión 11 (vigente desde el 1 de julio de 2019)"


# --- resolve ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "question",
    [
        "¿Quién se encarga del cobro de mora?",
        "Who handles overdue-loan collection?",
        "¿Cuál es la versión vigente?",
        "What is the current version?",
        "Into how many work groups is the Gerencia divided?",
    ],
)
def test_present_tense_gets_the_versions_in_force(served: list[Manual], question: str) -> None:
    r = resolve(question, served, TODAY)
    assert r.kind == "present"
    assert versions_of(r.manuals) == [("901 0905", 11), ("901 0903", 7)]
    assert "versión 11" in r.reason("es") and "version 7" in r.reason("en")


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("Según la versión 10, ¿quién cobra la mora?", [("901 0905", 10)]),
        ("In version 10, who handled collections?", [("901 0905", 10)]),
        ("¿Qué decía el v10 sobre las agencias?", [("901 0905", 10)]),
        ("What changed in version 11?", [("901 0905", 11)]),
        ("¿qué cambió en la versión 11?", [("901 0905", 11)]),
        ("según la versión 6 ¿quién formaliza los créditos?", [("901 0903", 6)]),
        ("Compare versions 10 and 11", [("901 0905", 10), ("901 0905", 11)]),
    ],
)
def test_a_named_version_is_that_version(
    served: list[Manual], question: str, expected: list[tuple[str, int]]
) -> None:
    r = resolve(question, served, TODAY)
    assert r.kind == "version" and not r.history_only
    assert versions_of(r.manuals) == expected
    assert f"versión {expected[0][1]}" in r.reason("es")


def test_a_version_with_no_file_answers_from_the_history(served: list[Manual]) -> None:
    r = resolve("¿Qué cambió en la versión 9?", served, TODAY)
    assert r.kind == "version" and r.version == 9 and r.history_only
    assert versions_of(r.manuals) == [("901 0905", 11), ("901 0903", 7)]
    assert "historial" in r.reason("es") and "change history" in r.reason("en")


@pytest.mark.parametrize(
    ("question", "expected", "when"),
    [
        ("¿Qué unidades había en 2016?", [("901 0905", 10), ("901 0903", 6)], dt.date(2016, 12, 31)),
        (
            "Before 2018, who handled overdue loans?",
            [("901 0905", 10), ("901 0903", 7)],
            dt.date(2017, 12, 31),
        ),
        ("¿Antes de 2018 quién cobraba la mora?", [("901 0905", 10), ("901 0903", 7)], dt.date(2017, 12, 31)),
        ("As of March 2015, who formalised loans?", [("901 0903", 6)], dt.date(2015, 3, 31)),
        (
            "¿Quién atendía las quejas en marzo de 2016?",
            [("901 0905", 10), ("901 0903", 6)],
            dt.date(2016, 3, 31),
        ),
        ("¿Y el 14 de marzo de 2016?", [("901 0903", 6)], dt.date(2016, 3, 14)),
        ("on July 1, 2019 which areas existed?", [("901 0905", 11), ("901 0903", 7)], dt.date(2019, 7, 1)),
        ("after 2018", [("901 0905", 10), ("901 0903", 7)], dt.date(2019, 1, 1)),
        ("¿Quién cobra la mora en 2031?", [("901 0905", 11), ("901 0903", 7)], TODAY),
    ],
)
def test_a_named_date_is_the_version_in_force_then(
    served: list[Manual], question: str, expected: list[tuple[str, int]], when: dt.date
) -> None:
    r = resolve(question, served, TODAY)
    assert r.kind == "date" and r.when == when and not r.history_only
    assert versions_of(r.manuals) == expected


def test_a_date_before_every_file_answers_from_the_history(served: list[Manual]) -> None:
    r = resolve("¿Cómo estaba organizada la Gerencia en 2005?", served, TODAY)
    assert r.kind == "date" and r.history_only
    assert versions_of(r.manuals) == [("901 0905", 11), ("901 0903", 7)]


@pytest.mark.parametrize(
    "question",
    [
        "¿Quién se encargaba antes del cobro de mora?",
        "Who used to handle collections?",
        "En la versión anterior, ¿qué áreas había?",
    ],
)
def test_past_cues_get_the_previous_version(served: list[Manual], question: str) -> None:
    r = resolve(question, served, TODAY)
    assert r.kind == "previous"
    assert versions_of(r.manuals) == [("901 0905", 10), ("901 0903", 6)]


def test_as_of_changes_what_present_means(served: list[Manual]) -> None:
    r = resolve("¿Quién se encarga del cobro de mora?", served, dt.date(2018, 1, 1))
    assert versions_of(r.manuals) == [("901 0905", 10), ("901 0903", 7)]
    assert r.as_of == dt.date(2018, 1, 1)


def test_one_version_per_code_is_simply_in_force() -> None:
    manuals = [edition("A", 3, dt.date(2012, 1, 1)), edition("B", 1, None)]
    r = resolve("¿quién aprueba?", manuals, TODAY)
    assert versions_of(r.manuals) == [("A", 3), ("B", 1)]
    prev = resolve("who used to approve?", manuals, TODAY)
    assert prev.history_only and versions_of(prev.manuals) == [("A", 3), ("B", 1)]


def test_numbers_that_are_not_versions_are_ignored() -> None:
    assert named_versions("¿Qué dice el manual 901 0905 sobre la función iv. y el 10%?") == []
    assert named_versions("según la versión nº 10") == [10]
    assert named_dates("¿Qué dice el manual 901 0905?", TODAY) == []


# --- data and manifest ----------------------------------------------------------------------------------------


def test_cue_file_errors_name_the_file_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "versions.json"
    data = json.loads((ROOT / "assistant" / "data" / "versions.json").read_text(encoding="utf-8"))
    data["months"] = {"enero": 1}
    bad.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(VersionCuesError, match="months"):
        load_cues(bad)
    bad.write_text("{", encoding="utf-8")
    with pytest.raises(VersionCuesError, match="not valid JSON"):
        load_cues(bad)


def test_manifest_records_each_edition_and_reads_old_manifests() -> None:
    base = {
        "build": "b",
        "collection": "c",
        "model": "m",
        "dimension": 1,
        "chromadb": "1",
        "created_at": "t",
        "chunks": 1,
    }
    new = Manifest(
        **base, manuals={"v11": {"code": "901 0905", "version": 11, "effective_date": "2019-07-01"}}
    )
    old = Manifest.from_json(
        json.dumps(
            {
                **base,
                "manuals": {
                    "v10": {
                        "sha256": "x",
                        "structure": {"code": "901 0905", "version": 10, "effective_date": "2016-03-15"},
                    }
                },
            }
        )
    )
    assert Manifest.from_json(new.to_json()).editions() == {
        "v11": {"code": "901 0905", "version": 11, "effective_date": "2019-07-01"}
    }
    assert old.editions() == {"v10": {"code": "901 0905", "version": 10, "effective_date": "2016-03-15"}}


def test_the_index_records_code_version_and_date(tmp_path: Path) -> None:
    from assistant.indexer import read_corpus

    for p in (V10, V11):
        (tmp_path / p.name).write_bytes(p.read_bytes())
    report = read_corpus(tmp_path)
    assert sorted((s.code, s.version, s.effective_date) for s in report.sources) == [
        ("901 0905", 10, "2016-03-15"),
        ("901 0905", 11, "2019-07-01"),
    ]
