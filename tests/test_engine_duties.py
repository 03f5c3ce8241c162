"""The duties answerer with fake hits (no support scorer: the older cosine + word-share gate)."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.chunk import chunk_manual
from assistant.engine import GroundedEngine
from assistant.models import Hit, Manual
from assistant.text import fold, stem, tokens
from tests.fakes_ui import grounded_engine, real_manuals

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def manuals() -> list[Manual]:
    return real_manuals()


@pytest.fixture(scope="module")
def engine(manuals: list[Manual]) -> GroundedEngine:
    e = grounded_engine(manuals)
    assert e.support_scorer is None
    return e


def _hit(m: Manual, unit_name: str, numeral: str, dense: float = 0.9) -> Hit:
    """The indexed chunk of one function line, as a hit (the chunks the index would hold: chunk_manual)."""
    chunk = next(
        c
        for c in chunk_manual(m)
        if c.section == "funciones" and c.unit == unit_name and c.numeral == numeral
    )
    return Hit(chunk=chunk, score=0.9, dense=dense, lexical=0.5)


def test_a_function_line_is_composed_with_unit_head_numeral_and_quote(engine, manuals):
    m = manuals[0]
    unit = m.unit("Área de Ventas")
    f = unit.functions[1]
    assert len(engine.catalog.duties[fold(f.text)]) == 1  # no twin elsewhere
    d = engine.answer(
        "¿Quién se encarga de desarrollar el plan de ventas?", "es", [_hit(m, unit.name, f.numeral)]
    )
    assert d.answered
    assert f"**{unit.name}**" in d.text and f"a cargo del {unit.head}" in d.text
    assert f"función {f.numeral}:\n> «{f.text}»" in d.text
    [c] = d.citations
    assert (c.manual, c.unit, c.numeral, c.section, c.quote) == (
        m.id,
        unit.name,
        f.numeral,
        "funciones",
        f.text,
    )
    assert (c.manual_code, c.version) == (m.code, m.version)


def test_a_weak_hit_is_declined(engine, manuals):
    m = manuals[0]
    hit = _hit(m, "Área de Ventas", "ii", dense=engine.settings.refusal_threshold - 0.1)
    d = engine.answer("¿Quién se encarga de desarrollar el plan de ventas?", "es", [hit])
    assert not d.answered and not d.citations


def test_the_same_duty_in_several_gerencias_lists_each_unit(engine, manuals):
    twins: dict[str, set[tuple[str, str]]] = {}
    for m in manuals:
        for u in m.units:
            for f in u.functions:
                twins.setdefault(fold(f.text), set()).add((m.id, u.name))
    key = next(k for k, where in twins.items() if len({mid for mid, _u in where}) >= 2)
    expected = {(m.id, u.name) for u, m, _f in engine.catalog.duties[key]}
    assert len({mid for mid, _u in expected}) >= 2
    m, unit, f = next((m, u, f) for m in manuals for u in m.units for f in u.functions if fold(f.text) == key)
    d = engine.answer(
        f"¿Quién se encarga de {f.text.rstrip('.').lower()}?", "es", [_hit(m, unit.name, f.numeral)]
    )
    assert d.answered
    assert f"corresponde a {len(expected)} unidades" in d.text
    assert {(c.manual, c.unit) for c in d.citations} == expected
    by_id = {x.id: x for x in manuals}
    for c in d.citations:
        line = next(g for g in by_id[c.manual].unit(c.unit).functions if g.numeral == c.numeral)
        assert c.quote == line.text and fold(c.quote) == key
        assert c.manual_code == by_id[c.manual].code


def test_a_far_better_supported_line_leads_instead_of_the_first_retrieved(engine, manuals):
    from assistant.engine.duties import _better_lead
    from assistant.support import Scored

    m = manuals[0]
    first, second = _hit(m, "Área de Ventas", "ii"), _hit(m, "Área de Ventas", "iii")
    margin = engine.settings.support_switch_margin
    weak, strong = Scored(first.chunk, {}, 0.3), Scored(second.chunk, {}, 0.3 + margin + 0.01)
    group, scored = _better_lead(engine, [first, second], [first], [weak, strong])
    assert group == [second] and scored[0] is strong and weak in scored
    # Within the margin, the retrieval order stands.
    close = Scored(second.chunk, {}, 0.3 + margin - 0.01)
    assert _better_lead(engine, [first, second], [first], [weak, close]) == ([first], [weak, close])


def test_a_failing_lead_gives_way_to_another_manuals_passing_line(engine, manuals):
    from assistant.engine.duties import _other_manuals_lead
    from assistant.support import Scored

    a, b = manuals[0], manuals[1]
    lead, same, other = _hit(a, "Área de Ventas", "ii"), _hit(a, "Área de Ventas", "iii"), _first_duty(b)
    t = 0.5
    failing, same_passing = Scored(lead.chunk, {}, t - 0.1), Scored(same.chunk, {}, t + 0.4)
    passing = Scored(other.chunk, {}, t + 0.1)
    group, scored = _other_manuals_lead([lead, same, other], [lead], [failing, same_passing, passing], t)
    assert group == [other] and scored[0] is passing and len(scored) == 3
    # The lead's own manual is judged as that manual alone would be: its first line, not a later one.
    kept = _other_manuals_lead([lead, same], [lead], [failing, same_passing], t)
    assert kept == ([lead], [failing, same_passing])
    # Another manual whose line fails too changes nothing.
    weak = Scored(other.chunk, {}, t - 0.2)
    assert _other_manuals_lead([lead, other], [lead], [failing, weak], t) == ([lead], [failing, weak])


def _first_duty(m: Manual) -> Hit:
    unit = next(u for u in m.units if u.functions)
    return _hit(m, unit.name, unit.functions[0].numeral)


def test_which_position_names_the_positions_titled_for_the_topic(engine, manuals):
    m = manuals[0]
    unit = m.unit("Área de Atención al Cliente")
    titled = [p for p in unit.positions if "Electrónicos" in p]
    f = next(f for f in unit.functions if "electrónicos" in f.text)
    q = "¿Qué puesto se encarga de los servicios electrónicos?"
    d = engine.answer(q, "es", [_hit(m, unit.name, f.numeral)])
    assert d.answered and f"«{f.text}»" in d.text
    assert "asigna las funciones a unidades, no a puestos" in d.text
    assert titled and all(f"**{p}**" in d.text for p in titled)
    assert f"**{unit.head}**" not in d.text  # a title made of its unit's name is not named for the topic


def test_which_position_says_when_no_title_names_the_topic(engine, manuals):
    m = manuals[0]
    unit = m.unit("Área de Ventas")
    d = engine.answer("¿Qué puesto desarrolla el plan comercial?", "es", [_hit(m, unit.name, "ii")])
    assert d.answered and "ningún puesto lleva ese tema en su nombre" in d.text


def test_asking_for_anyone_names_the_answering_units_positions_titled_for_the_topic(engine, manuals):
    """ "Does it have anyone for X?" asks for a person: the answer adds the answering unit's positions named for
    the topic, and adds nothing when no title names it (no "no position is named" on a plain duty question)."""
    m = manuals[0]
    unit = m.unit("Área de Atención al Cliente")
    titled = [p for p in unit.positions if "Electrónicos" in p]
    f = next(f for f in unit.functions if "electrónicos" in f.text)
    hit = _hit(m, unit.name, f.numeral)
    d = engine.answer("¿Hay alguien para los servicios electrónicos?", "es", [hit])
    assert d.answered and titled and all(f"**{p}** ({unit.name})" in d.text for p in titled)
    plain = engine.answer("¿Quién se encarga de los servicios electrónicos?", "es", [hit])
    assert plain.answered and not any(p in plain.text for p in titled)
    other = engine.answer(
        "does anyone there develop the plan comercial?", "en", [_hit(m, "Área de Ventas", "ii")]
    )
    assert other.answered and "position" not in other.text


def test_asking_whether_there_are_notaries_names_the_positions_titled_so(engine, manuals):
    """ "¿Hay notarios en la Gerencia Legal?" with no duty line: the positions whose titles hold every word of the
    topic, rank words too; a topic no title holds whole ("audite créditos") is still declined."""
    legal = next(m for m in manuals if "Legal" in m.gerencia)
    titled = [(p, u) for u in legal.units for p in u.positions if p.startswith("Notario")]
    d = engine.answer("¿Hay notarios en la Gerencia Legal?", "es", [])
    assert d.answered and titled and all(f"**{p}** ({u.name})" in d.text for p, u in titled)
    assert {c.manual_code for c in d.citations} == {legal.code}
    assert not engine.answer("¿Hay alguien que audite los créditos?", "es", []).answered
    assert not engine.answer("¿Quién da fe de los notarios?", "es", []).answered  # no existence asked


def test_which_position_with_no_duty_line_names_the_positions_titled_for_it(engine, manuals):
    titled = [(p, u) for m in manuals for u in m.units for p in u.positions if "Ventanilla" in p]
    d = engine.answer("¿Qué puesto atiende la ventanilla?", "es", [])
    assert d.answered and "ninguna función trata ese tema" in d.text
    assert titled and all(f"**{p}** ({u.name})" in d.text for p, u in titled)
    assert {(c.unit, c.quote, c.section) for c in d.citations} == {
        (u.name, p, "organigrama") for p, u in titled
    }


@pytest.mark.parametrize(
    ("question", "place"),
    [
        ("En la Agencia Santa Ana, ¿quién recupera los créditos en mora?", True),
        ("¿Quién recupera los créditos en mora? (Agencia Santa Ana)", True),
        ("¿Quién entrega los inmuebles a la Agencia Santa Ana?", False),
        ("Who drafts the contracts once the Agencia Santa Ana has approved them?", False),
    ],
)
def test_a_unit_is_a_place_only_where_the_duty_is_done(engine, question, place):
    from assistant.engine.duties import _as_place

    a = engine.analyse(question, question, "")
    [mention] = [m for m in a.units if m.unit.name == "Agencia Santa Ana"]
    assert _as_place(a, mention) is place


def test_a_unit_named_as_the_other_party_of_a_duty_does_not_narrow_the_gerencias(engine):
    def analysed(question: str):
        expansion = engine.glossary.expand(question) if engine.glossary else ""
        return engine.analyse(question, question, expansion)

    other_party = analysed("Who keeps the promotional items once the UACI has bought them?")
    assert not other_party.scoped and len(other_party.manuals) == len(engine.catalog.manuals)
    assert any(m.unit.name.startswith("Unidad de Adquisiciones") for m in other_party.units)
    place = analysed("En la UACI, ¿quién lleva el registro de proveedores?")
    assert place.scoped and {m.gerencia for m in place.manuals} == {"Dirección de Administración"}
    about_it = analysed("¿Qué funciones tiene la UACI?")  # no "who": the unit is what is asked about
    assert about_it.scoped


def test_a_unit_described_in_other_words_as_the_other_party_does_not_narrow_the_gerencias(engine):
    """ "… hands them over to the repossessed assets area" describes the Área de Activos Extraordinarios as
    whom a duty is done for: every gerencia may hold the duty. "In the repossessed assets area, who …?" and
    "… of the repossessed assets area" still look in its gerencia."""

    def analysed(question: str):
        expansion = engine.glossary.expand(question) if engine.glossary else ""
        return engine.analyse(question, question, expansion)

    unit = "Área de Activos Extraordinarios"
    for question, narrowed in [
        ("Which unit auctions seized houses and hands them over to the repossessed assets area?", False),
        ("¿Quién le entrega los inmuebles embargados al área de bienes adjudicados?", False),
        ("In the repossessed assets area, who keeps the appraisals up to date?", True),
        ("Who keeps the appraisals of the repossessed assets area up to date?", True),
    ]:
        a = analysed(question)
        assert any(m.unit.name == unit for m in a.units), question
        assert a.scoped is narrowed, question
        if narrowed:
            assert {m.gerencia for m in a.manuals} == {"Gerencia de Servicio al Cliente"}


def test_a_position_named_through_the_glossary_needs_its_title_word(engine):
    """ "the quality control coordinator" names Coordinador de Control de Calidad; "el control de los
    contratos" names no "Administrador de Contratos" although "control" translates to "administrar"."""

    def positions(question: str) -> list[str]:
        expansion = engine.glossary.expand(question) if engine.glossary else ""
        return engine.analyse(question, question, expansion).positions

    assert positions("who is the quality control coordinator's boss?") == [
        "Coordinador de Control de Calidad"
    ]
    contracts = "¿Quién lleva el control de los contratos que firma el Fondo y de sus prórrogas?"
    assert "administrar" in (engine.glossary.expand(contracts) if engine.glossary else "")
    assert positions(contracts) == []
    # Its words scattered over the question name no position: "analista … de Créditos" is a version's analyst.
    assert positions("¿Quién fue el analista de la versión 4 del manual de Créditos?") == []
    assert positions("who was the analyst for versions 2 and 3 of the créditos manual?") == []
    assert positions("who does the credit analyst report to?") == ["Analista de Créditos"]


def test_sibling_units_are_known_by_what_tells_them_apart(engine, manuals):
    offices = [u for m in manuals for u in m.units if u.parent and u.name.startswith("Oficina Regional")]
    assert len(offices) >= 2 and len({u.parent for u in offices}) == 1
    for u in offices:
        own = fold(u.name).split()[-1]  # "occidente", "paracentral": the words its siblings do not share
        found = engine.catalog.find_units(f"¿y quién encabeza la de {own}?")
        assert [f.unit.name for f in found] == [u.name]


def test_a_follow_up_naming_another_gerencias_short_name_swaps_the_manual(engine, manuals):
    from assistant.chain import condense

    legal = next(m for m in manuals if m.gerencia == "Gerencia Legal")
    credit = next(m for m in manuals if m.gerencia == "Gerencia de Créditos")
    history = [("how many units does the legal one have?", "The Gerencia Legal has **5 units** …")]
    assert (
        condense("¿y la de Créditos?", history, engine.catalog)
        == "how many units does the Créditos one have?"
    )
    history = [(f"When did the {legal.gerencia}'s manual come into force?", "…")]
    out = condense("¿y el de Créditos?", history, engine.catalog)
    assert out == f"When did the {credit.gerencia}'s manual come into force?"


def test_a_follow_up_moving_to_another_gerencia_asks_there(engine, manuals):
    from assistant.chain import condense

    credit = next(m for m in manuals if m.gerencia == "Gerencia de Créditos")
    asked = f"In the {credit.gerencia}, who takes care of cancelling the mortgage of a paid-off loan?"
    history = [(asked, "The manual does not assign …")]
    # "¿y en Legal?": the previous question (answered or not), asked of that gerencia.
    assert condense("¿y en Legal?", history, engine.catalog) == asked.replace(
        credit.gerencia, "Gerencia Legal"
    )
    assert condense("and what about Legal?", history, engine.catalog).startswith("In the Gerencia Legal,")
    # The previous question as it was resolved: "¿y en Legal?" after "¿y en Créditos?" is not "¿y en Créditos?".
    history = [
        (
            "¿Qué versión tiene el manual de la Gerencia de Servicio al Cliente?",
            "La versión vigente es la **10**.",
        ),
        ("¿y en Legal?", "La versión vigente es la **5**."),
    ]
    assert "Créditos" in condense("and what about Créditos?", history, engine.catalog)
    assert "Legal" not in condense("and what about Créditos?", history, engine.catalog)
    # With a question of its own, that question is asked there, not of the unit that answered before.
    history = [
        ("¿Quién revisa los reglamentos?", "Según el manual, se encarga **Área de Asesoría Jurídica** …")
    ]
    legal = next(m for m in manuals if m.gerencia == "Gerencia Legal")
    own = "and in Créditos, quién revisa los créditos con codeudor?"
    assert (
        condense(own, history, engine.catalog) == f"quién revisa los créditos con codeudor? ({credit.code})"
    )
    # By the code: "(manual Gerencia Legal)" would make "¿quién elabora …?" ask who prepared the manual.
    own = "¿y en Legal quién elabora los contratos que salen de esos procesos?"
    expected = f"quién elabora los contratos que salen de esos procesos? ({legal.code})"
    assert condense(own, history, engine.catalog) == expected
    # "en lo legal" is no gerencia.
    assert engine.catalog.swapped_to("y en lo legal, ¿quién revisa los antecedentes registrales?") is None
    # "créditos hipotecarios" is no gerencia: an everyday word after "y en" moves nothing.
    assert engine.catalog.swapped_to("y en créditos hipotecarios quién firma?") is None
    # A manual named with a question of its own keeps that question.
    history = [("¿y quién lo autorizó? (manual Gerencia de Créditos)", "Lo autorizó el **Presidente** …")]
    assert (
        condense("¿y el de Legal en qué versión va?", history, engine.catalog)
        == "¿y el de Legal en qué versión va?"
    )


def test_a_follow_up_naming_a_unit_with_its_own_question_keeps_it(engine):
    from assistant.chain import condense

    history = [("and which units report directly to the Dirección de Administración?", "The Dirección …")]
    asked = "¿y cuál es el objetivo de la Dirección?"
    assert condense(asked, history, engine.catalog) == asked
    # A bare unit swaps it into the previous question.
    history = [("¿Qué puestos tiene la Agencia Santa Ana?", "**Agencia Santa Ana** (13 puestos …)")]
    assert condense("¿y San Miguel?", history, engine.catalog) == "¿Qué puestos tiene la Agencia San Miguel?"
    # "qué tal", "qué pasa con" only shape the swap.
    assert (
        condense("¿y qué tal San Miguel?", history, engine.catalog)
        == "¿Qué puestos tiene la Agencia San Miguel?"
    )
    assert "Sucursal Paseo" in condense("¿y qué pasa con la Sucursal Paseo?", history, engine.catalog)


def test_a_follow_up_about_a_units_sub_units_or_posts_asks_of_the_unit_that_answered(engine):
    from assistant.chain import condense

    bot = "Según el manual, se encarga **Unidad de Transporte** (Dirección de Administración) …"
    history = [("Chocaron un carro del Fondo, ¿a quién le toca reportar el accidente?", bot)]
    for asked in [
        "which units does it have under it?",
        "esa unidad tiene un dispatcher, or just motoristas?",
    ]:
        assert condense(asked, history, engine.catalog) == f"{asked} (Unidad de Transporte)"
    # A unit the follow-up names in its own words ("the payroll unit") is its own, not the one before.
    asked = "who does the payroll unit reconcile its payment records with every month?"
    assert condense(asked, history, engine.catalog) == asked


def test_a_follow_up_pointing_at_that_section_asks_of_the_unit_that_answered(engine):
    from assistant.chain import condense

    bot = (
        "Según el manual, se encarga **Sección de Registro** (Gerencia Legal) (a cargo del Jefe Sección de "
        "Registro), función 3:\n> «Retirar los documentos inscritos …»"
    )
    history = [("¿Quién retira del registro los documentos ya inscritos?", bot)]
    asked = "which department does that section report to?"
    assert condense(asked, history, engine.catalog) == f"{asked} (Sección de Registro)"


def test_a_unit_the_conversation_carried_is_no_topic_word(engine):
    from assistant.engine.duties import topic_phrase
    from assistant.engine.query import FollowUp

    own = "¿y quién le avisa al solicitante lo que resolvió el comité?"
    text = f"{own} (Unidad de Secretaría del Comité de Créditos)"
    a = engine.analyse(text, text, engine.glossary.expand(text) if engine.glossary else "")
    # The unit's words are words duty lines use ("Secretaría", "Comité"): named in a question, they stay.
    duty_words = frozenset(
        stem(t) for u, _m in engine.catalog.units for f in u.functions for t in tokens(f.text)
    )
    assert "Secretaría" in topic_phrase(engine, a, duty_words)
    a.follow_up = FollowUp(own, frozenset())
    topic = topic_phrase(engine, a, duty_words)
    assert "Secretaría" not in topic and "solicitante" in topic


def test_a_lead_in_the_named_place_gives_way_only_to_a_line_of_that_place(engine, manuals):
    from assistant.engine.duties import _better_lead
    from assistant.support import Scored

    m = manuals[0]
    here, elsewhere = _hit(m, "Área de Ventas", "ii"), _hit(m, "Área de Atención al Cliente", "i")
    margin = engine.settings.support_switch_margin
    lead, better = Scored(here.chunk, {}, 0.4), Scored(elsewhere.chunk, {}, 0.4 + margin + 0.1)
    places = {(m.id, "Área de Ventas")}
    assert _better_lead(engine, [here, elsewhere], [here], [lead, better], places) == ([here], [lead, better])
    group, _scored = _better_lead(engine, [here, elsewhere], [here], [lead, better])
    assert group == [elsewhere]  # no place named: the better line leads


def test_who_is_in_command_of_a_unit_asks_its_head(engine, manuals):
    admin = next(m for m in manuals if m.gerencia == "Dirección de Administración")
    uaci = next(u for u in admin.units if "Adquisiciones" in u.name)
    d = engine.answer("¿Quién manda en la UACI?", "es", [])
    assert d.answered and f"**{uaci.head}**" in d.text


@pytest.mark.parametrize(("manuals_served", "extra"), [(1, 0), (2, 3)])
def test_the_support_check_looks_beyond_retrieval_only_when_several_manuals_share_its_hits(
    engine, manuals, manuals_served, extra
):
    from assistant.engine.duties import support_candidates

    asked: list[int] = []

    class _Scorer:
        def __init__(self) -> None:
            self.by_manual = {f"m{i}": None for i in range(manuals_served)}
            self.duty_vocabulary: frozenset[str] = frozenset()

        def score(self, topic, pool, scope, extra=0, question=""):
            asked.append(extra)
            return []

    q = "¿Quién se encarga de desarrollar el plan de ventas?"
    hit = _hit(manuals[0], "Área de Ventas", "ii")
    support_candidates(engine, engine.analyse(q, q, ""), [hit], [hit], _Scorer())  # type: ignore[arg-type]
    assert asked == [extra if extra == 0 else engine.settings.support_extra]


def test_a_demonstrative_noun_points_at_a_unit_the_conversation_named(engine):
    """ "¿y ese archivo de qué subgerencia depende?" after an answer quoting "… a la Unidad de Archivo
    Institucional …" is about that unit; "el manual de esa gerencia" after a Gerencia Legal answer is Legal's
    manual (not each gerencia's, although "gerencia" alone names them all), and "its" then stays there."""
    from assistant.chain import condense

    quoted = (
        "Según el manual, se encarga **Sección de Registro** (Gerencia Legal), función 6: > «Remitir a la "
        "Unidad de Archivo Institucional los testimonios ya inscritos para su custodia.»"
    )
    history = [("¿a dónde mandan los testimonios inscritos?", quoted)]
    out = condense("¿y ese archivo de qué subgerencia depende?", history, engine.catalog)
    assert out.endswith("(Unidad de Archivo Institucional)")

    legal = "According to the manual, this is handled by **Gerencia Legal** (headed by the Gerente Legal) …"
    history = [("Who proposes amendments to the Fund's law?", legal)]
    vigente = condense("¿desde qué fecha está vigente el manual de esa gerencia?", history, engine.catalog)
    assert vigente.endswith("(Gerencia Legal)")
    history.append((vigente, "Según el *Manual … Gerencia Legal* (901 0907): Está vigente desde …"))
    after = condense("and what was its code before it was recoded?", history, engine.catalog)
    assert after.endswith("(manual Gerencia Legal)")


def test_a_demonstrative_points_back_beside_a_unit_the_question_names(engine):
    """ "¿y esa área siempre ha estado en la Gerencia de Créditos?": the question names a gerencia, and "esa área"
    is still the area the conversation named; "esa área de la Gerencia Legal" naming an área itself borrows
    nothing, nor does a unit word no earlier turn fits."""
    from assistant.chain import condense

    answer = (
        "According to the manual, this is handled by **Área de Seguros de Deuda y Daños** (Gerencia de "
        "Créditos) (headed by the Jefe Área de Seguros), function iv: > «Gestionar las indemnizaciones …»"
    )
    history = [("who handles the insurance compensation?", answer)]
    asked = "¿y esa área siempre ha estado en la Gerencia de Créditos?"
    assert condense(asked, history, engine.catalog) == f"{asked} (Área de Seguros de Deuda y Daños)"
    named = "¿y esa Área de Litigios siempre ha estado en la Gerencia Legal?"
    assert condense(named, history, engine.catalog) == named
    unfit = "¿y esa sección siempre ha estado en la Gerencia de Créditos?"
    assert condense(unfit, history, engine.catalog) == unfit
    # A unit below the gerencia named in the question is what "esa área" loosely means.
    loose = "¿Y la Sección de Registro? ¿quién es el jefe de esa área?"
    assert condense(loose, history, engine.catalog) == loose


def test_a_short_follow_up_to_a_positions_question_asks_that_units_positions_for_its_topic(engine):
    """ "¿y con servicios móviles?" after "Which positions in the Área de Ventas deal with notifications?": the
    same unit's positions, for the new topic; after a duty question it borrows the unit alone."""
    from assistant.chain import condense

    history = [("Which positions in the Área de Ventas deal with notifications?", "**Área de Ventas** (17 …")]
    out = condense("¿y con servicios móviles?", history, engine.catalog)
    assert out == "¿y con servicios móviles? (Área de Ventas, puestos)"
    assert condense("and with servicios móviles?", history, engine.catalog).endswith(
        "(Área de Ventas, positions)"
    )
    duty = [
        ("¿Qué hace el Área de Ventas con las ferias?", "Según el manual, se encarga **Área de Ventas** …")
    ]
    assert condense("¿y con servicios móviles?", duty, engine.catalog).endswith("(Área de Ventas)")
    # A follow-up asking something of its own, or whose words no title there holds, asks that of the same unit.
    for own in (
        "¿y a qué subgerencia pertenece?",
        "and whom does that head report to?",
        "¿y el objetivo?",
        "¿y el jefe?",
    ):
        assert condense(own, history, engine.catalog) == f"{own} (Área de Ventas)"
    # "a cargo" is no positions question.
    head = [("¿Quién está a cargo del Área de Ventas?", "**Área de Ventas** (17 puestos, jefatura: …")]
    assert not condense("¿y de las notificaciones?", head, engine.catalog).endswith("puestos)")


def test_a_follow_up_with_a_topic_of_its_own_is_asked_anew(engine):
    """An "and …" question that brings its own topic is not narrowed to the unit that answered before; a short
    one that leans on the conversation still borrows it."""
    from assistant.chain import condense

    answer = "According to the manual, this is handled by **Área de Litigios** (Gerencia Legal) …"
    history = [("Who negotiates payment arrangements with sued debtors?", answer)]
    new = "and once a seized house is auctioned, who do they hand it over to?"
    assert condense(new, history, engine.catalog) == new
    assert condense("¿y quién la dirige?", history, engine.catalog).endswith("(Área de Litigios)")


def test_words_only_another_gerencia_uses_are_no_chit_chat(engine):
    from assistant.engine.duties import _known_anywhere

    class _Scorer:
        def terms(self, topic):
            return [topic]

        def known_share(self, terms):
            return 0.4 if terms == ["subasta inmueble"] else 0.0

    saved = engine.support_scorer
    engine.support_scorer = _Scorer()
    try:
        assert _known_anywhere(engine, "subasta inmueble")
        assert not _known_anywhere(engine, "chiste contadores")
    finally:
        engine.support_scorer = saved


def test_which_position_in_english_finds_the_title_through_the_glossary(engine, manuals):
    from assistant.engine.duties import _named_positions

    seed = manuals[0]
    unit, title = next(
        (u, p) for u in seed.units for p in u.positions if p.startswith("Gestor Recuperación de")
    )
    # The line that answered is indexed under the unit, or under the group whose functions it shares.
    chunk = next(
        c for c in chunk_manual(seed) if c.section == "funciones" and c.unit in (unit.name, unit.parent)
    )
    kept = [Hit(chunk=chunk, score=0.9, dense=0.9, lexical=0.5)]
    english = _named_positions(engine, "en", kept, "credit recovery", set())
    assert f"**{title}**" in english
    assert "no position is named" in _named_positions(engine, "en", kept, "weather forecast", set())


@pytest.mark.parametrize(
    "question",
    [
        "At management level, who promotes what the Fund offers to the market?",
        "A nivel de gerencia, ¿quién promueve los productos que el Fondo ofrece al mercado?",
    ],
)
def test_at_the_gerencias_level_its_own_line_answers_alone(engine, manuals, question):
    from assistant.engine.duties import topic_phrase

    m = manuals[0]
    top = next(u for u in m.units if u.parent is None)
    sales = m.unit("Área de Ventas")
    own = next(f for f in top.functions if fold(f.text).startswith("promover los productos"))
    other = next(f for f in sales.functions if "promocion" in fold(f.text))
    first = Hit(chunk=_hit(m, sales.name, other.numeral).chunk, score=0.95, dense=0.9, lexical=0.5)
    hits = [first, _hit(m, top.name, own.numeral)]
    d = engine.answer(question, "en", hits)
    assert d.answered and [c.unit for c in d.citations] == [top.name]
    # "at management level" says where, not what.
    a = engine.analyse(question, question, engine.glossary.expand(question))
    assert not {"level", "nivel", "management"} & set(tokens(topic_phrase(engine, a)))
    # Without the level, the first retrieved line leads as before.
    d = engine.answer("Who promotes what the Fund offers to the market?", "en", hits)
    assert d.citations[0].unit == sales.name


def test_a_level_word_without_a_gerencia_is_no_level_and_a_named_gerencia_leaves_the_topic(engine):
    from assistant.engine.duties import topic_phrase
    from assistant.engine.query import _TOP_LEVEL

    # "a nivel de jefatura" is the level of any unit's chief, not the gerencia's.
    assert not _TOP_LEVEL.search(fold("¿Quién recibe las solicitudes de crédito a nivel de jefatura?"))
    question = "¿Quién autoriza los desembolsos a nivel de la Gerencia de Créditos?"
    a = engine.analyse(question, question, engine.glossary.expand(question))
    assert tokens(topic_phrase(engine, a)) == ["autoriza", "desembolsos"]


def test_a_unit_said_as_one_ordinary_word_narrows_the_question_only_while_its_lines_cover_it(engine, manuals):
    # "el registro de la zona" says the Sección de Registro's short name; no line of that gerencia covers the
    # topic (a weak hit), so every manual is asked and the line that covers it (another gerencia's) answers.
    seed, legal = manuals[0], next(m for m in manuals if m.id == "gerencia-legal")
    agencias = next(u for u in seed.units if any("registros de la zona" in f.text for f in u.functions))
    line = next(f for f in agencias.functions if "registros de la zona" in f.text)
    registro = legal.unit("Sección de Registro")
    hits = [
        _hit(seed, agencias.name, line.numeral, dense=0.9),
        _hit(legal, registro.name, registro.functions[0].numeral, dense=0.5),
    ]
    question = "¿Quién gestiona en el registro de la zona que se inscriba rápido la compraventa?"
    a = engine.analyse(question, question, engine.glossary.expand(question))
    assert a.scoped and {m.id for m in a.manuals} == {legal.id}
    assert engine.catalog.by_short_name(a.units[0], [fold(question)])
    d = engine.answer(question, "es", hits)
    assert d.answered and (d.citations[0].manual, d.citations[0].unit) == (seed.id, agencias.name)
    # The unit's full name, or a question its own lines answer, keeps the question in its gerencia.
    named = "¿Quién gestiona en la Sección de Registro que se inscriba rápido la compraventa?"
    a = engine.analyse(named, named, engine.glossary.expand(named))
    assert a.scoped and not engine.catalog.by_short_name(a.units[0], [fold(named)])
    assert engine._widened(a) is None
    d = engine.answer(named, "es", hits)
    assert not d.answered or {c.manual for c in d.citations} == {legal.id}


@pytest.mark.parametrize(
    ("question", "framing"),
    [
        ("Which area is supposed to find effective alternatives to boost sales?", "supposed"),
        ("Which unit is meant to keep the client database up to date?", "meant"),
        ("¿A quién le toca supervisar la medición del servicio?", "toca"),
        ("¿A qué unidad le corresponde desarrollar el plan de ventas?", "corresponde"),
        ("Necesito saber quién desarrolla el plan de ventas", "necesito"),
    ],
)
def test_the_words_that_frame_a_duty_are_no_part_of_its_topic(engine, question, framing):
    from assistant.engine.duties import topic_phrase

    a = engine.analyse(question, question, engine.glossary.expand(question))
    topic = tokens(topic_phrase(engine, a))
    assert framing not in topic and topic, topic
