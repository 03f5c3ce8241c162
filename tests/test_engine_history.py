"""The history answerer over real parsed manuals and a second version; no model, no index."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.diff import diff_manuals, summarise
from assistant.engine import GroundedEngine
from assistant.ingest import load_file
from assistant.models import Manual
from assistant.parse import parse_document
from tests.fakes_ui import fixture_manuals, grounded_engine

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def versions() -> tuple[Manual, Manual]:
    v10 = parse_document(load_file(ROOT / "corpus" / "mof-901-0905-gerencia-servicio-al-cliente-v10.txt"))
    v11 = parse_document(
        load_file(ROOT / "evals" / "versions" / "mof-901-0905-gerencia-servicio-al-cliente-v11.txt")
    )
    return v10, v11


@pytest.fixture(scope="module")
def others() -> list[Manual]:
    return fixture_manuals()


def _engine(manuals: list[Manual]) -> GroundedEngine:
    return grounded_engine(manuals)


def _row(m: Manual, version: int):
    return next((h for h in m.history if h.version == version), None)


@pytest.mark.parametrize("version", [2, 4])
def test_a_version_question_lists_each_manual_with_that_row(versions, others, version):
    manuals = [versions[0], *others]
    having = [m for m in manuals if _row(m, version)]
    silent = [m for m in manuals if not _row(m, version)]
    assert len(having) >= 2  # the question is ambiguous across gerencias
    d = _engine(manuals).answer(f"¿Qué cambió en la versión {version}?", "es", [])
    assert d.answered
    assert f" {len(having)} " in d.text.splitlines()[0]
    for m in having:
        assert m.label in d.text
        for change in _row(m, version).changes:
            assert f"«{change}»" in d.text
    for m in silent:
        assert m.label not in d.text
    assert {c.manual for c in d.citations} == {m.id for m in having}
    assert all(c.section == "modificaciones" and c.numeral == str(version) for c in d.citations)
    for c in d.citations:
        m = next(x for x in having if x.id == c.manual)
        assert c.quote in _row(m, version).changes


def test_a_version_only_one_manual_has_is_answered_by_it_alone(versions, others):
    manuals = [versions[0], *others]
    top = max(h.version for m in manuals for h in m.history)
    owner = [m for m in manuals if _row(m, top)]
    assert len(owner) == 1
    d = _engine(manuals).answer(f"¿Qué cambió en la versión {top}?", "es", [])
    assert d.answered and owner[0].label in d.text
    assert {c.manual for c in d.citations} == {owner[0].id}


def test_the_computed_changes_appear_when_both_versions_are_served(versions, others):
    v10, v11 = versions
    engine = _engine([v11, *others])
    engine.archive = [v10, v11, *others]
    d = engine.answer(f"¿Qué cambió en la versión {v11.version}?", "es", [])
    assert d.answered
    for change in _row(v11, v11.version).changes:
        assert f"«{change}»" in d.text
    assert f"{v10.version} → {v11.version}" in d.text
    computed = summarise(diff_manuals(v10, v11), "es")
    assert computed
    for line in computed:
        assert f"- {line}" in d.text


def test_no_computed_changes_without_the_previous_version(versions, others):
    _v10, v11 = versions
    d = _engine([v11, *others]).answer(f"¿Qué cambió en la versión {v11.version}?", "es", [])
    assert d.answered
    assert "→" not in d.text
    assert {c.manual for c in d.citations} == {v11.id}
