"""The document answerer (code, version, authorisation) over real parsed manuals; no model, no index."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.engine import GroundedEngine
from assistant.engine import document as document_answerer
from assistant.models import Manual
from tests.fakes_ui import grounded_engine, real_manuals

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def manuals() -> list[Manual]:
    return real_manuals()


@pytest.fixture(scope="module")
def engine(manuals: list[Manual]) -> GroundedEngine:
    return grounded_engine(manuals)


def _by_gerencia(manuals: list[Manual], name: str) -> Manual:
    return next(m for m in manuals if m.gerencia == name)


def test_a_named_gerencia_gets_only_its_manuals_code(engine, manuals):
    creditos = _by_gerencia(manuals, "Gerencia de Créditos")
    d = engine.answer("¿Cuál es el código del manual de la Gerencia de Créditos?", "es", [])
    assert d.answered
    assert f"**{creditos.code}**" in d.text
    assert all(m.code not in d.text for m in manuals if m is not creditos)
    assert d.citations and {c.manual for c in d.citations} == {creditos.id}
    assert any(c.quote == creditos.code for c in d.citations)


def test_a_named_gerencia_gets_only_its_manuals_version(engine, manuals):
    creditos = _by_gerencia(manuals, "Gerencia de Créditos")
    d = engine.answer("¿Qué versión del manual de la Gerencia de Créditos está vigente?", "es", [])
    assert d.answered
    assert f"**{creditos.version}**" in d.text
    assert f"({creditos.code})" in d.text
    assert all(m.code not in d.text for m in manuals if m is not creditos)
    assert {c.manual for c in d.citations} == {creditos.id}
    assert all(c.version == creditos.version and c.manual_code == creditos.code for c in d.citations)


def test_the_version_and_the_creation_date_asked_together_are_both_answered(engine, manuals):
    from assistant.chunk import spanish_date

    seed = _by_gerencia(manuals, "Gerencia de Servicio al Cliente")
    assert seed.created_date
    question = "¿El manual de Servicio al Cliente en qué versión está, y cuál es su fecha de creación?"
    d = engine.answer(question, "es", [])
    assert d.answered and f"**{seed.version}**" in d.text
    assert spanish_date(seed.created_date) in {c.quote for c in d.citations}


@pytest.mark.parametrize(
    ("question", "lang"), [("¿Quién autorizó el manual?", "es"), ("Who authorised the manual?", "en")]
)
def test_an_ambiguous_question_lists_each_manual(engine, manuals, question, lang):
    d = engine.answer(question, lang, [])
    assert d.answered
    assert f" {len(manuals)} " in d.text.splitlines()[0]
    items = [line for line in d.text.splitlines() if line.startswith("- ")]
    assert len(items) == len(manuals)
    for m in manuals:
        item = next(line for line in items if f"({m.code})" in line)
        assert m.title in item and m.authorized_by in item
    assert sorted(c.manual for c in d.citations) == sorted(m.id for m in manuals)
    assert all(c.section == "documento" for c in d.citations)
    by_id = {m.id: m for m in manuals}
    assert all(c.quote == by_id[c.manual].authorized_by for c in d.citations)


@pytest.mark.parametrize(
    "question",
    [
        "¿Quién es el jefe del Área de Ventas?",
        "Which unit writes the Fund's code of ethics?",  # "code", but who does something
        "which area is supposed to find effective alternatives to boost sales?",  # "effective", but no date
    ],
)
def test_the_answerer_passes_on_questions_that_are_not_about_the_manual(engine, question):
    a = engine.analyse(question, question, "")
    assert document_answerer.answer(engine, a, "es", []) is None


def test_how_many_versions_counts_the_versions_of_the_change_history(engine, manuals):
    seed = manuals[0]
    numbers = sorted({h.version for h in seed.history})
    d = engine.answer(
        "¿Cuántas versiones ha tenido el manual de la Gerencia de Servicio al Cliente?", "es", []
    )
    assert d.answered and f"registra **{len(numbers)}** versiones" in d.text
    assert f"la vigente es la **{seed.version}**" in d.text
    assert {c.manual for c in d.citations} == {seed.id}


def test_the_code_as_it_was_is_left_to_the_change_history(engine, manuals):
    seed = manuals[0]
    recoded = next(c for h in seed.history for c in h.changes if "Recodificación" in c)
    for question in ("what was the code of the Gerencia de Servicio al Cliente manual before?",
                     "¿Cuándo cambió el código del manual de la Gerencia de Servicio al Cliente?"):  # fmt: skip
        d = engine.answer(question, "en", [])
        assert d.answered and f"«{recoded}»" in d.text
        assert f"**{seed.code}**." not in d.text  # not today's code as if it answered


def test_who_prepared_a_version_is_the_analyst_its_history_row_names(engine, manuals):
    seed = manuals[0]  # parsed from the corpus text: its history rows carry who prepared them
    row = next(h for h in seed.history if h.prepared_by and h.version != seed.version)
    d = engine.answer(f"¿Quién elaboró la versión {row.version} del manual de {seed.gerencia}?", "es", [])
    assert d.answered and f"**{row.prepared_by}**" in d.text
    [c] = d.citations
    assert (c.section, c.numeral, c.quote, c.manual) == (
        "modificaciones",
        str(row.version),
        row.prepared_by,
        seed.id,
    )
    current = next(h for h in seed.history if h.version == seed.version)
    d = engine.answer(f"Who wrote the current version of the {seed.gerencia} manual?", "en", [])
    assert f"Version {seed.version} " in d.text and f"**{current.prepared_by}**" in d.text
    unnamed = next(h for h in seed.history if not h.prepared_by)
    d = engine.answer(f"¿Quién elaboró la versión {unnamed.version} del manual de {seed.gerencia}?", "es", [])
    assert "no indica quién elaboró" in d.text and not d.citations


def test_a_gerencias_short_name_names_its_manual_where_a_manual_is_meant(engine, manuals):
    creditos = _by_gerencia(manuals, "Gerencia de Créditos")
    for question in (
        "¿Desde cuándo está vigente el manual de Créditos?",
        "And the Créditos one, since when?",
    ):
        assert engine.catalog.find_manuals(question) == [creditos]
    d = engine.answer("¿Desde cuándo está vigente el manual de Créditos?", "es", [])
    assert d.answered and {c.manual for c in d.citations} == {creditos.id}
    # The same word as an everyday word names no manual.
    assert engine.catalog.find_manuals("¿Quién aprueba los créditos hipotecarios?") == []


def test_which_manual_is_the_most_recent_lists_the_manuals_by_date(engine, manuals):
    newest_first = sorted(manuals, key=lambda m: m.effective_date, reverse=True)
    d = engine.answer("¿Cuál es el manual más reciente?", "es", [])
    assert d.answered
    places = [d.text.index(f"**{m.gerencia}** ({m.code})") for m in newest_first]
    assert places == sorted(places)  # the version in force's date orders them
    assert f"El más reciente es el de **{newest_first[0].gerencia}**" in d.text
    # Created: the title block's date, else version 1's row in the change history.
    born = {m.id: m.created_date or next(h.date for h in m.history if h.version == 1) for m in manuals}
    oldest = min(manuals, key=lambda m: born[m.id])
    assert f"el de **{oldest.gerencia}**." in d.text
    assert {c.manual for c in d.citations} == {m.id for m in manuals}
    d = engine.answer("which manual is the oldest?", "en", [])
    assert f"the oldest by creation, that of the **{oldest.gerencia}**" in d.text


def test_two_named_manuals_are_compared_alone(engine, manuals):
    d = engine.answer("¿el manual de Legal es más nuevo que el de Créditos?", "es", [])
    assert d.answered
    assert {c.gerencia for c in d.citations} == {"Gerencia Legal", "Gerencia de Créditos"}


def test_the_latest_version_is_no_comparison_of_manuals(engine, manuals):
    d = engine.answer("what is the latest version of the manual?", "en", [])
    assert d.answered and "most recent first" not in d.text
    assert all(f"**{m.version}**" in d.text for m in manuals)


@pytest.mark.parametrize(
    "question",
    [
        "Does the manual say anything about attention to older adults?",
        "According to the manual, who serves older customers?",
        "According to the manual who handles the oldest pending requests?",
        "¿Qué cambió en la versión más reciente del manual?",
        "¿Quién autorizó el manual más reciente?",
        "¿Cuál es el objetivo del manual más reciente?",
    ],
)
def test_other_questions_with_an_age_word_are_no_comparison_of_manuals(engine, question):
    d = engine.answer(question, "es", [])
    assert d is None or ("más reciente al más antiguo" not in d.text and "most recent first" not in d.text)
