"""Several gerencias' manuals, and two versions of one, served at once by the real assistant.

The expected values are read from the parsed manuals, never written out: the tests check that answers follow
the structure, whatever the manuals say.
"""

from __future__ import annotations

import pytest

from assistant.errors import AssistantError
from assistant.models import Manual
from assistant.text import fold
from assistant.versions import Catalogue

pytestmark = pytest.mark.integration

SERVICE, CREDIT, ADMIN = "901 0905", "901 0903", "901 0910"


def _manual(assistant, code: str, version: int | None = None) -> Manual:
    found = [m for m in assistant.manuals if m.code == code and (version is None or m.version == version)]
    return max(found, key=lambda m: m.version or 0)


def _codes(answer) -> set[str]:
    return {c.manual_code for c in answer.citations}


def test_every_manual_is_served_with_its_code_version_and_gerencia(multi_assistant):
    editions = {(m.code, m.version) for m in multi_assistant.manuals}
    assert {(SERVICE, 10), (SERVICE, 11), (CREDIT, 6), (ADMIN, 3)} <= editions
    chunks = multi_assistant.index.chunks
    assert {c.manual_code for c in chunks} >= {SERVICE, CREDIT, ADMIN}
    assert all(c.gerencia and c.manual_version for c in chunks if c.manual_code)


def test_a_meta_question_naming_a_gerencia_answers_for_its_manual_only(multi_assistant):
    credit = _manual(multi_assistant, CREDIT)
    answer = multi_assistant.ask(f"¿Cuál es la versión vigente del manual de la {credit.gerencia}?")
    assert answer.answered and f"**{credit.version}**" in answer.answer
    assert _codes(answer) <= {CREDIT}
    for other in (SERVICE, ADMIN):
        assert _manual(multi_assistant, other).gerencia not in answer.answer


def test_an_ambiguous_meta_question_is_answered_briefly_for_each_manual_in_force(multi_assistant):
    answer = multi_assistant.ask("Who authorised the manual?")
    assert answer.answered
    in_force = Catalogue(multi_assistant.manuals).in_force()
    assert len(in_force) == 3  # version 10 of the service manual is superseded by version 11
    for m in in_force:
        assert m.gerencia in answer.answer and m.authorized_by in answer.answer
    assert _codes(answer) == {SERVICE, CREDIT, ADMIN}


def test_groups_are_counted_in_the_version_in_force_of_the_named_gerencia(multi_assistant):
    service = _manual(multi_assistant, SERVICE)
    groups = [u for u in service.units if u.parent == service.gerencia]
    answer = multi_assistant.ask(f"Into how many work groups is the {service.gerencia} divided?")
    assert answer.answered and f"**{len(groups)} " in answer.answer
    assert {(c.manual_code, c.version) for c in answer.citations} == {(SERVICE, service.version)}


def test_a_unit_resolves_to_the_gerencia_it_belongs_to(multi_assistant):
    admin = _manual(multi_assistant, ADMIN)
    nested = next(u for u in admin.units if u.parent and u.parent != admin.gerencia)
    answer = multi_assistant.ask(f"Which gerencia does the {nested.name} belong to?")
    assert answer.answered and admin.gerencia in answer.answer and nested.parent in answer.answer
    assert _codes(answer) == {ADMIN}


def test_a_position_is_found_in_every_gerencia_that_has_it(multi_assistant):
    in_force = Catalogue(multi_assistant.manuals).in_force()
    having = {m.gerencia for m in in_force for u in m.units if "Secretaria Ejecutiva" in u.positions}
    assert len(having) >= 2
    answer = multi_assistant.ask("¿En qué gerencias hay una Secretaria Ejecutiva?")
    assert answer.answered
    for gerencia in having:
        assert gerencia in answer.answer


def test_a_duty_two_gerencias_share_lists_both(multi_assistant):
    line = "Atender y solventar las quejas y denuncias de los clientes."
    sharing = {
        m.code for m in Catalogue(multi_assistant.manuals).in_force() for u in m.units for f in u.functions
        if f.text == line
    }  # fmt: skip
    assert sharing == {SERVICE, CREDIT}
    answer = multi_assistant.ask("¿Quién atiende y soluciona las quejas y denuncias de los clientes?")
    assert answer.answered and _codes(answer) == sharing
    assert all(c.quote == line for c in answer.citations)


def test_a_manual_filter_keeps_every_citation_in_that_manual(multi_assistant):
    answer = multi_assistant.ask("¿Quién atiende las quejas y denuncias de los clientes?", manual=CREDIT)
    assert answer.answered and _codes(answer) == {CREDIT}
    with pytest.raises(AssistantError, match="No served manual"):
        multi_assistant.ask("¿Quién atiende las quejas?", manual="999 9999")


def _unit_with_line(manual: Manual, words: str) -> str:
    return next(u.name for u in manual.units if any(words in fold(f.text) for f in u.functions) and u.parent)


def test_present_tense_answers_come_from_the_version_in_force(multi_assistant):
    v11 = _manual(multi_assistant, SERVICE, 11)
    answer = multi_assistant.ask("Who handles overdue-loan collection?")
    assert answer.answered
    first = answer.citations[0]
    assert (first.manual_code, first.version) == (SERVICE, 11)
    assert first.unit == _unit_with_line(v11, "cobro de mora")
    assert "11" in answer.answer.split("\n")[-1]  # the answer says which version it comes from


def test_a_named_version_or_date_answers_from_that_version(multi_assistant):
    v10 = _manual(multi_assistant, SERVICE, 10)
    expected = _unit_with_line(v10, "cobro de mora")
    for question in (
        "¿Quién se encargaba del cobro de mora según la versión 10?",
        "¿Quién se encargaba del cobro de mora en 2017?",
    ):
        answer = multi_assistant.ask(question)
        assert answer.answered, question
        assert {(c.manual_code, c.version) for c in answer.citations} == {(SERVICE, 10)}, question
        assert answer.citations[0].unit == expected, question
        assert "10" in answer.answer.split("\n")[-1], question


def test_what_changed_combines_the_history_table_and_the_computed_diff(multi_assistant):
    v11 = _manual(multi_assistant, SERVICE, 11)
    row = next(h for h in v11.history if h.version == 11)
    answer = multi_assistant.ask("What changed in version 11?")
    assert answer.answered
    assert all(change in answer.answer for change in row.changes)
    assert "version 10 → 11" in answer.answer  # the changes the two served versions show
    renamed = [
        u.name
        for u in v11.units
        if u.name not in {x.name for x in _manual(multi_assistant, SERVICE, 10).units}
    ]
    assert any(name in answer.answer for name in renamed)


def test_a_former_unit_name_finds_the_renamed_unit(multi_assistant):
    answer = multi_assistant.ask("Who heads the Área de Servicios en Línea?")
    assert answer.answered and "Área de Canales Digitales" in answer.answer
    assert "now called" in answer.answer


def test_a_follow_up_naming_another_gerencia_repeats_the_question_for_its_manual(multi_assistant):
    admin, credit = _manual(multi_assistant, ADMIN), _manual(multi_assistant, CREDIT)
    first = f"When did the {admin.gerencia}'s manual come into force?"
    answer = multi_assistant.ask(first)
    assert _codes(answer) == {ADMIN}
    short = credit.gerencia.split()[-1]  # "Créditos": the gerencia's own word, not its unit word
    follow = multi_assistant.ask(f"¿y el de {short}?", history=[(first, answer.answer)])
    assert follow.answered and _codes(follow) == {CREDIT}
    assert str(credit.effective_date.year) in follow.answer


def test_sibling_units_are_known_by_what_tells_them_apart(multi_assistant):
    credit = _manual(multi_assistant, CREDIT)
    siblings = [u for u in credit.units if u.parent and u.name.startswith("Oficina Regional")]
    assert len(siblings) >= 2
    unit = siblings[0]
    own = unit.name.split()[-1]  # "Occidente", "Paracentral"
    answer = multi_assistant.ask(f"¿Quién encabeza la de {own}?")
    assert answer.answered and f"**{unit.head}**" in answer.answer and unit.name in answer.answer


def test_a_history_question_naming_a_manual_and_a_version_is_answered_for_that_manual(multi_assistant):
    """The named manual's version N, not every served manual whose own version is N (Administración is
    served at version 3): by its short name, its gerencia in English words, or "versions 2 and 3"."""
    credit = _manual(multi_assistant, CREDIT)
    three = next(h for h in credit.history if h.version == 3)
    answer = multi_assistant.ask("What changed in version 3 of the Créditos manual?")
    assert _codes(answer) == {CREDIT} and three.changes[0][:40] in answer.answer
    six = next(h for h in credit.history if h.version == 6)
    answer = multi_assistant.ask("Which position was dropped in version 6 of the credit management manual?")
    assert _codes(answer) == {CREDIT} and "**Version 6**" in answer.answer
    answer = multi_assistant.ask("who was the analyst for versions 2 and 3 del manual de créditos?")
    authors = {h.prepared_by for h in credit.history if h.version in (2, 3)}
    assert _codes(answer) == {CREDIT} and all(a in answer.answer for a in authors)
    assert "Version 2" in answer.answer and "Version 3" in answer.answer and six.prepared_by not in authors


def test_a_gerencias_possessive_names_its_manual():
    from assistant.engine import Catalog
    from tests.fakes_ui import fixture_manuals

    catalog = Catalog(fixture_manuals())
    assert [m.gerencia for m in catalog.find_manuals("and Legal's?")] == ["Gerencia Legal"]
    assert catalog.find_manuals("the loan's terms") == []


def test_a_change_history_word_that_a_duty_line_uses_is_answered_as_the_duty(multi_assistant):
    # "traslados" is a change-history cue ("traslado del puesto …") and the object of an Administración duty.
    admin = _manual(multi_assistant, ADMIN)
    lines = [(u.name, f.text) for u in admin.units for f in u.functions if "traslados" in fold(f.text)]
    assert lines
    answer = multi_assistant.ask("who autoriza los traslados del personal?")
    assert answer.answered
    assert all(c.section != "modificaciones" for c in answer.citations)
    assert (answer.citations[0].unit, answer.citations[0].quote) in lines


def test_asking_whether_a_unit_belongs_to_another_gerencia_names_its_own(multi_assistant):
    # The gerencia named is the owner asked about, not where to look for the unit.
    credit, admin = _manual(multi_assistant, CREDIT), _manual(multi_assistant, ADMIN)
    unit = next(u for u in credit.units if u.parent is not None and u.parent != credit.units[0].name)
    assert all(u.name != unit.name for u in admin.units)
    answer = multi_assistant.ask(f"¿La {unit.name} pertenece a la {admin.gerencia}?")
    assert answer.answered
    assert _codes(answer) == {CREDIT}
    assert credit.gerencia in answer.answer and unit.name in answer.answer


@pytest.fixture(scope="module")
def served_engine():
    from tests.fakes_ui import grounded_engine, real_manuals

    return grounded_engine(real_manuals())


def _scope_of(engine, question: str) -> set[str]:
    expansion = engine.glossary.expand(question)
    a = engine.analyse(question, question, expansion)
    return {m.gerencia for m in a.manuals} if a.scoped else set()


def test_a_gerencia_named_in_other_words_needs_its_words_side_by_side(served_engine):
    # "directo" and "Administrativo" share stems with "Dirección de Administración", but far apart inside
    # another name (a position) they name no gerencia: the question is about the position.
    question = "who's the jefe directo del Asistente Administrativo en el Exterior?"
    catalog, glossary = served_engine.catalog, served_engine.glossary
    assert catalog.find_units_by_words(question, glossary.match_spans(question)) == []
    assert _scope_of(served_engine, question) != {"Dirección de Administración"}
    # Side by side, translated or not, the words still name it.
    for named, unit in [
        ("who heads the credit management?", "Gerencia de Créditos"),
        ("what does the payroll unit do?", "Unidad de Planillas"),
        ("what does the management of credit do?", "Gerencia de Créditos"),
    ]:
        found = catalog.find_units_by_words(named, glossary.match_spans(named))
        assert [m.unit.name for m in found] == [unit], named


def test_a_name_found_in_other_words_may_hold_its_other_words_between(served_engine):
    # "contracting" (contrataciones) stands between "procurement" and "unit": it is the name's own word.
    catalog, glossary = served_engine.catalog, served_engine.glossary
    question = "What does the Procurement and Contracting Unit do?"
    found = catalog.find_units_by_words(question, glossary.match_spans(question))
    assert [m.unit.name for m in found] == ["Unidad de Adquisiciones y Contrataciones Institucional"]


def test_the_verb_direct_names_no_direccion_and_the_noun_manager_still_names_the_gerencias(served_engine):
    # "directs" stems like "direction", which the glossary no longer reads as "dirección"; "manager" and
    # "management" still name the gerencias (the kind word "gerencia" names each served one).
    question = "who directs and supervises the day-to-day operational and admin work of an agency?"
    assert _scope_of(served_engine, question) != {"Dirección de Administración"}
    for question in ["What is the objective of the management?", "Who does the manager report to?"]:
        a = served_engine.analyse(question, question, served_engine.glossary.expand(question))
        assert a.units and all(m.unit.parent is None for m in a.units), question
    # Written by the user, the kind word still names it.
    assert _scope_of(served_engine, "¿Qué funciones tiene la Dirección?") == {"Dirección de Administración"}


def test_who_approves_is_not_answered_by_a_line_that_only_proposes(multi_assistant):
    from assistant.engine.duties import decides

    credit = _manual(multi_assistant, CREDIT)
    proposing = next(
        f.text
        for u in credit.units
        for f in u.functions
        if fold(f.text).startswith("proponer a la presidencia")
    )
    assert not decides(proposing) and decides("Autorizar los movimientos de personal.")
    assert not decides(
        "Dar seguimiento a expedientes en trámite y aprobados."
    )  # a participle decides nothing
    asked = multi_assistant.ask("¿Quién propone las políticas y condiciones de las líneas de crédito?")
    assert asked.answered and asked.citations[0].quote == proposing
    # The decision is someone else's: declined, pointing at the closest line.
    answer = multi_assistant.ask("¿Quién aprueba las políticas y condiciones de las líneas de crédito?")
    assert not answer.answered and [c.quote for c in answer.citations] == [proposing]
    # A line approving something else is no answer either ("Aprobar los planes anuales de trabajo …" beside
    # "Dirigir la formulación y ejecución del presupuesto …").
    answer = multi_assistant.ask("¿Quién aprueba el presupuesto?")
    assert not answer.answered and "presupuesto" in fold(answer.citations[0].quote)
    # A line that states the decision answers it.
    answer = multi_assistant.ask("¿Quién autoriza los traslados, ascensos y permisos del personal?")
    assert answer.answered and fold(answer.citations[0].quote).startswith("autorizar")


def test_who_pays_is_answered_only_by_a_line_that_states_a_payment(multi_assistant):
    answer = multi_assistant.ask("who pays the utilities and municipal taxes on the foreclosed homes?")
    assert answer.answered and "pago" in fold(answer.citations[0].quote)
    # Writing the committee's minutes is no paying its members: declined, pointing at the closest line.
    answer = multi_assistant.ask(
        "¿Y quién les paga las dietas a los miembros del Comité de Créditos por sesión?"
    )
    assert not answer.answered and answer.citations and "pag" not in fold(answer.citations[0].quote)
