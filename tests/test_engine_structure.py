"""The structure answerer (heads, positions, a unit's place, per-manual answers) over real parsed manuals."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.engine import GroundedEngine
from assistant.models import Manual
from assistant.text import fold, with_article
from tests.fakes_ui import grounded_engine, real_manuals

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def manuals() -> list[Manual]:
    return real_manuals()


@pytest.fixture(scope="module")
def engine(manuals: list[Manual]) -> GroundedEngine:
    return grounded_engine(manuals)


def _unit(manuals: list[Manual], name: str):
    return next((u, m) for m in manuals for u in m.units if u.name == name)


def test_the_head_of_a_unit(engine, manuals):
    unit, manual = _unit(manuals, "Unidad de Transporte")
    d = engine.answer("¿Quién es el jefe de la Unidad de Transporte?", "es", [])
    assert d.answered and f"**{unit.head}**" in d.text
    assert [(c.manual, c.unit, c.quote) for c in d.citations] == [(manual.id, unit.name, unit.head)]


def test_the_positions_of_a_unit(engine, manuals):
    unit, manual = _unit(manuals, "Área de Seguros de Deuda y Daños")
    d = engine.answer("¿Qué puestos tiene el Área de Seguros de Deuda y Daños?", "es", [])
    assert d.answered
    assert all(f"- {p}" in d.text for p in unit.positions)
    assert f"({len(unit.positions)} puestos" in d.text
    assert [(c.manual, c.quote) for c in d.citations] == [(manual.id, "\n".join(unit.positions))]


@pytest.mark.parametrize(
    "question",
    [
        "¿La Unidad de Transporte tiene un dispatcher, o solo motoristas?",
        "Does the Unidad de Transporte have a driver?",
        "who runs the Unidad de Transporte, and does it have a coordinator?",
    ],
)
def test_whether_a_unit_has_a_kind_of_post_is_answered_with_its_chart(engine, manuals, question):
    from assistant.engine.structure import asks_role

    unit, _manual = _unit(manuals, "Unidad de Transporte")
    assert asks_role(engine, fold(question))
    d = engine.answer(question, "es", [])
    assert d.answered and all(f"- {p}" in d.text for p in unit.positions)


def test_having_a_thing_is_no_post(engine):
    from assistant.engine.structure import asks_role

    for question in [
        "does the unidad de transporte have a budget?",
        "¿la agencia tiene un objetivo?",
        "¿el area de activos extraordinarios tiene un inventario de los inmuebles?",
        "¿la uaci tiene una lista de proveedores?",
        "does the uaci have a register of suppliers?",
        "does the area de ventas have someone who organizes fairs?",  # who does a task: the duty lines
    ]:
        assert not asks_role(engine, question), question


def test_which_gerencia_a_unit_belongs_to(engine, manuals):
    unit, manual = _unit(manuals, "Unidad de Planillas")
    d = engine.answer("¿A qué gerencia pertenece la Unidad de Planillas?", "es", [])
    assert d.answered
    assert f"pertenece a la **{manual.gerencia}**" in d.text and manual.code in d.text
    parent = manual.unit(unit.parent)
    assert f"**{parent.name}** → **{unit.name}**" in d.text
    assert {c.manual for c in d.citations} == {manual.id}


@pytest.mark.parametrize("name", ["Sección de Escrituración", "Área de Seguros de Deuda y Daños"])
def test_which_gerencia_a_unit_of_a_gerencia_belongs_to(engine, manuals, name):
    # "gerencia" is a word several served gerencias share: it names none of them.
    _u, manual = _unit(manuals, name)
    d = engine.answer(f"¿A qué gerencia pertenece la {name}?", "es", [])
    assert d.answered and f"pertenece a la **{manual.gerencia}**" in d.text
    assert {c.manual for c in d.citations} == {manual.id}


def test_a_position_present_in_several_gerencias(engine, manuals):
    position = "Ordenanza"
    places = [(u, m) for m in manuals for u in m.units if position in u.positions]
    assert len({m.id for _u, m in places}) >= 2
    d = engine.answer(f"¿En qué unidades está el puesto {position}?", "es", [])
    assert d.answered and f"existe en {len(places)} unidades" in d.text
    for u, m in places:
        assert f"**{u.name}**" in d.text and m.gerencia in d.text
    assert sorted((c.manual, c.unit) for c in d.citations) == sorted((m.id, u.name) for u, m in places)


@pytest.mark.parametrize("question", ["¿Quién dirige la gerencia?", "¿A quién reporta el Gerente?"])
def test_the_gerente_is_answered_per_manual(engine, manuals, question):
    tops = [
        (u, m) for m in manuals for u in m.units if u.parent is None and (u.head or "").startswith("Gerente")
    ]
    assert len(tops) >= 2
    d = engine.answer(question, "es", [])
    assert d.answered and f" {len(tops)} " in d.text.splitlines()[0]
    for u, _m in tops:
        assert f"**{u.name}**" in d.text and u.head in d.text
    assert sorted((c.manual, c.unit) for c in d.citations) == sorted((m.id, u.name) for u, m in tops)


def test_the_head_of_a_top_unit_is_not_said_to_head_its_groups(engine, manuals):
    unit, _m = _unit(manuals, "Gerencia de Créditos")
    d = engine.answer("¿Quién es el jefe de la Gerencia de Créditos?", "es", [])
    assert d.answered and f"tiene su propio {unit.head}" not in d.text


def test_an_acronym_the_manual_writes_names_its_unit(engine, manuals):
    # "UACI" is written in the manual's positions ("Jefe UACI"): the initials of the unit's name name it.
    unit, _m = _unit(manuals, "Unidad de Adquisiciones y Contrataciones Institucional")
    d = engine.answer("Who heads the UACI?", "en", [])
    assert d.answered and unit.name in d.text and f"**{unit.head}**" in d.text


def test_a_unit_with_no_chart_says_so_and_where_it_sits(engine, manuals):
    unit, _m = _unit(manuals, "Unidad de Archivo Institucional")
    assert not unit.head and not unit.positions
    d = engine.answer("¿Quién dirige la Unidad de Archivo Institucional?", "es", [])
    assert d.answered and unit.name in d.text and f"**{unit.parent}**" in d.text


def test_a_unit_with_no_head_reports_in_its_own_name_and_its_chart_is_quoted(engine, manuals):
    # No "El **Unidad …** (Unidad …)": the unit itself depends on its parent, with the right article.
    unit, _manual = _unit(manuals, "Unidad de Archivo Institucional")
    d = engine.answer("¿De qué depende la Unidad de Archivo Institucional?", "es", [])
    assert d.text.startswith(f"La **{unit.name}** depende de la **{unit.parent}**")
    d = engine.answer("Who does the Unidad de Archivo Institucional report to?", "en", [])
    assert d.text.startswith(f"The **{unit.name}** reports to the **{unit.parent}**")


def test_a_reporting_line_quotes_the_units_own_chart_as_printed():
    # Parsed from the manuals' text: the chart as printed (the numbered heading that places the unit, its
    # "Dependencia jerárquica" line) is quoted before the parent's head.
    from assistant.ingest import load_file
    from assistant.parse import parse_document

    parsed = [
        parse_document(load_file(str(ROOT / "evals" / "manuals" / name / "manual.txt")))
        for name in ("direccion-administracion", "gerencia-legal")
    ]
    engine = grounded_engine(parsed)
    archive = _unit(parsed, "Unidad de Archivo Institucional")[0]
    d = engine.answer("Who does the Unidad de Archivo Institucional report to?", "en", [])
    assert d.citations[0].quote == archive.chart and archive.chart.startswith("2.3 Unidad de Archivo")
    access = _unit(parsed, "Unidad de Acceso a la Información Pública")[0]
    d = engine.answer(
        "¿De quién depende jerárquicamente la Unidad de Acceso a la Información Pública?", "es", []
    )
    assert d.citations[0].quote == access.chart
    assert "Dependencia jerárquica: Gerencia Legal" in access.chart


def test_the_head_of_a_top_unit_reports_to_no_one_the_manual_names(engine, manuals):
    unit, manual = _unit(manuals, "Gerencia de Créditos")
    d = engine.answer(f"Who does the {unit.head} report to?", "en", [])
    assert d.answered and unit.name in d.text
    assert [(c.manual, c.unit) for c in d.citations] == [(manual.id, unit.name)]


def test_a_group_with_no_head_names_the_heads_of_its_units(engine, manuals):
    unit, manual = _unit(manuals, "Oficinas Regionales")
    kids = [u for u in manual.units if u.parent == unit.name]
    d = engine.answer("¿Quién dirige las Oficinas Regionales?", "es", [])
    assert d.answered and all(k.name in d.text and k.head in d.text for k in kids)
    assert "None" not in engine.answer("What is the objective of the Oficinas Regionales?", "en", []).text


@pytest.mark.parametrize(
    ("question", "name"),
    [
        ("Who heads the technical evaluation section?", "Sección de Evaluación Técnica"),
        ("Who heads the credit committee secretariat unit?", "Unidad de Secretaría del Comité de Créditos"),
        ("Which gerencia does the insurance area belong to?", "Área de Seguros de Deuda y Daños"),
        ("What positions does the archive unit have?", "Unidad de Archivo Institucional"),
        # Every word after the kind word of a long name: no "unit" needed.
        (
            "what positions are there in the credit committee secretariat?",
            "Unidad de Secretaría del Comité de Créditos",
        ),
    ],
)
def test_a_unit_named_in_english_words(engine, manuals, question, name):
    # English cognates ("technical" ~ "Técnica") and the unit's kind and first word name it.
    d = engine.answer(question, "en", [], expansion=engine.glossary.expand(question))
    assert d.answered and name in d.text
    assert "According to the manual, this is handled by" not in d.text


def test_which_unit_a_unit_reports_to_is_its_parent_not_its_sub_units(engine, manuals):
    unit, _m = _unit(manuals, "Departamento de Análisis de Créditos")
    d = engine.answer("Which unit does the Departamento de Análisis de Créditos report to?", "en", [])
    assert d.answered and f"reports to the **{unit.parent}**" in d.text
    d = engine.answer("¿Qué unidades dependen del Departamento de Análisis de Créditos?", "es", [])
    assert "Sección de Evaluación Técnica" in d.text


@pytest.mark.parametrize(
    ("name", "article"),
    [("Sección de Evaluación Técnica", "del"), ("Departamento de Análisis de Créditos", "de la")],
)
def test_a_unit_reports_to_its_parent_with_the_parents_article(engine, manuals, name, article):
    # "depende del Departamento …", "depende de la Gerencia …": the article agrees with the parent's noun.
    unit, _m = _unit(manuals, name)
    d = engine.answer(f"¿De qué dependencia depende {with_article(name)}?", "es", [])
    assert d.answered and f"depende {article} **{unit.parent}**" in d.text


@pytest.mark.parametrize(
    "question",
    [
        "Who does the head of an agency report to?",
        "the agencias report to quién?",
        "¿A quién reportan las agencias?",
    ],
)
def test_report_to_after_a_noun_is_the_verb(engine, manuals, question):
    # "an agency report" reads like a report (a document) until "to …?" shows the reporting line.
    unit, _m = _unit(manuals, "Agencias")
    d = engine.answer(question, "en", [], expansion=engine.glossary.expand(question))
    assert d.answered and f"**{unit.parent}**" in d.text


@pytest.mark.parametrize(
    "question",
    ["¿Quién es el jefe máximo de la Gerencia de Servicio al Cliente?",
     "Who is the top boss of the Gerencia de Servicio al Cliente?"],
)  # fmt: skip
def test_a_rank_word_does_not_make_a_head_question_a_duty(engine, manuals, question):
    unit, _m = _unit(manuals, "Gerencia de Servicio al Cliente")
    d = engine.answer(question, "es", [])
    assert d.answered and f"**{unit.head}**" in d.text


def test_how_many_groups_a_gerencia_is_split_into_counts_its_units(engine, manuals):
    seed = manuals[0]
    top = next(u for u in seed.units if u.parent is None)
    children = [u for u in seed.units if u.parent == top.name]
    d = engine.answer("How many work groups is the Gerencia de Servicio al Cliente split into?", "en", [])
    assert d.answered and f"**{len(children)} units directly under it**" in d.text


def test_a_dependencia_jerarquica_question_asks_the_reporting_line(engine, manuals):
    unit, _m = _unit(manuals, "Unidad de Talento Humano")
    q = "What is the dependencia jerárquica of the Unidad de Talento Humano?"
    d = engine.answer(q, "en", [], expansion=engine.glossary.expand(q))
    assert d.answered and f"reports to the **{unit.parent}**" in d.text


def test_a_greeting_before_a_head_question_is_no_topic(engine, manuals):
    unit, _m = _unit(manuals, "Área de Ventas")
    d = engine.answer("Hola, ¿quién dirige el Área de Ventas?", "es", [])
    assert d.answered and f"**{unit.head}**" in d.text and "función" not in d.text


@pytest.mark.parametrize(
    "question",
    ["¿Quién es el jefe del Motorista?", "¿En qué dependencia trabaja el Motorista y quién es su jefe?"],
)
def test_the_boss_of_a_position_is_whom_it_reports_to(engine, manuals, question):
    unit, _m = _unit(manuals, "Unidad de Transporte")
    assert "Motorista" in unit.positions
    d = engine.answer(question, "es", [])
    assert d.answered and f"En {unit.name}, depende del **{unit.head}**" in d.text


def test_a_position_named_jefe_is_not_asked_for_its_boss(engine):
    d = engine.answer("¿Quién es el Jefe de Agencia?", "es", [])
    assert d.answered and "depende del" not in d.text


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        # The gerencia says where the section is: the section's chart is asked for.
        ("¿Qué puestos tiene la Sección de Registro de la Gerencia Legal?", ["Sección de Registro"]),
        # Side by side, both are asked for.
        (
            "¿Qué puestos tienen la Agencia Santa Ana y la Agencia San Miguel?",
            ["Agencia Santa Ana", "Agencia San Miguel"],
        ),
    ],
)
def test_a_unit_named_only_as_where_another_is_is_not_listed(question, expected):
    from tests.fakes_ui import grounded_engine, real_manuals

    e = grounded_engine(real_manuals())
    d = e.answer(question, "es", [])
    listed = [line.split("**")[1] for line in d.text.splitlines() if line.startswith("**")]
    assert d.answered and listed == expected


def test_a_position_whose_title_holds_unit_words_names_no_unknown_unit(engine, manuals):
    # "Jefe Área de Seguros" holds "Área de Seguros", which a change history quotes but no unit is called.
    unit, _m = _unit(manuals, "Área de Seguros de Deuda y Daños")
    d = engine.answer("Who does the Jefe Área de Seguros report to in the Gerencia de Créditos?", "en", [])
    assert d.answered and unit.head == "Jefe Área de Seguros" and f"**{unit.head}**" in d.text


@pytest.mark.parametrize(
    ("question", "name"),
    [
        ("¿Qué puestos hay en TI?", "Área de Tecnología de Información"),
        ("who heads RRHH?", "Subgerencia de Recursos Humanos"),  # a plural's letter doubled, as Spanish does
    ],
)
def test_a_unit_named_by_the_initials_users_write(engine, manuals, question, name):
    unit, _m = _unit(manuals, name)
    d = engine.answer(question, "es", [])
    assert d.answered and name in d.text and unit.head and unit.head in d.text


def test_initials_are_told_by_their_case():
    from assistant.engine.catalog import unit_initials
    from tests.fakes_ui import real_manuals

    engine = grounded_engine(real_manuals())
    it = next(u for m in real_manuals() for u in m.units if u.name == "Área de Tecnología de Información")
    assert "TI" in unit_initials(it)
    assert not engine.catalog.find_initials("¿quién atiende las quejas? gracias a ti")
    assert not engine.catalog.find_initials("¿QUIÉN ATIENDE LAS QUEJAS EN TI?")  # all capitals: no initialism
    assert [m.unit.name for m in engine.catalog.find_initials("¿Qué puestos hay en TI?")] == [it.name]


def test_which_gerencia_each_of_two_named_units_belongs_to(engine, manuals):
    one, m1 = _unit(manuals, "Departamento de Formalización y Escrituración")
    two, m2 = _unit(manuals, "Departamento de Contratación y Escrituración")
    assert m1.gerencia != m2.gerencia
    d = engine.answer(f"¿Cuál gerencia tiene el {one.name} y cuál el {two.name}?", "es", [])
    assert (
        d.answered
        and f"pertenece a la **{m1.gerencia}**" in d.text
        and f"pertenece a la **{m2.gerencia}**" in d.text
    )
    assert {c.manual for c in d.citations} == {m1.id, m2.id}


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("¿Qué departamentos tiene la Gerencia de Créditos?", "Departamento"),
        ("Which units across the manuals are 'Secciones' (sections)?", "Sección"),
        ("Which sections does the Legal Management have?", "Sección"),
    ],
)
def test_units_of_a_kind_are_listed_from_their_names(engine, manuals, question, kind):
    d = engine.answer(
        question, "es", [], expansion=engine.glossary.expand(question) if engine.glossary else ""
    )
    assert d.answered
    asked = [m for m in manuals if m.gerencia.split()[-1] in question] or manuals
    expected = [u.name for m in asked for u in m.units if u.name.startswith(kind) and u.parent]
    assert expected and all(f"**{name}**" in d.text for name in expected)


def test_a_kind_word_in_a_duty_question_lists_nothing(engine):
    # "¿Qué dependencias formalizan …?" asks who does a task; "who heads …?" asks for a head.
    for question in (
        "¿Qué departamentos formalizan los créditos aprobados?",
        "who heads the Sección de Registro?",
    ):
        d = engine.answer(
            question, "es", [], expansion=engine.glossary.expand(question) if engine.glossary else ""
        )
        assert "tiene **" not in d.text and " has **" not in d.text


@pytest.mark.parametrize(
    ("question", "lang"),
    [("In the Dirección de Administración, what does UACI stand for?", "en"), ("¿Qué significa UACI?", "es")],
)
def test_what_a_short_name_stands_for(engine, manuals, question, lang):
    unit, manual = _unit(manuals, "Unidad de Adquisiciones y Contrataciones Institucional")
    d = engine.answer(question, lang, [])
    assert d.answered and d.text.startswith("**UACI**") and f"**{unit.name}**" in d.text
    assert [(c.manual, c.unit) for c in d.citations] == [(manual.id, unit.name)]


@pytest.mark.parametrize(
    "frame", ["Which customer service agency has a {p} in its current chart?", "which branch has a {p}?"]
)
def test_which_unit_of_a_kind_has_a_position_is_where_the_position_sits(engine, manuals, frame):
    # A position only one unit of the seed's agencies or branch holds, read off the parsed charts.
    seed = manuals[0]
    held: dict[str, list[str]] = {}
    for u in seed.units:
        for p in u.positions:
            held.setdefault(p, []).append(u.name)
    unit = next(
        u
        for u in seed.units
        if u.name.startswith(("Agencia ", "Sucursal")) and any(len(held[p]) == 1 for p in u.positions)
    )
    position = next(p for p in unit.positions if len(held[p]) == 1)
    d = engine.answer(frame.format(p=position), "en", [])
    assert d.answered and f"**{position}** position belongs to **{unit.name}**" in d.text


def test_the_work_groups_of_a_gerencia_named_in_full(engine, manuals):
    seed = manuals[0]
    top = next(u for u in seed.units if u.parent is None)
    d = engine.answer(f"¿Qué grupos de trabajo tiene la {top.name}?", "es", [])
    kids = [u for u in seed.units if u.parent == top.name]
    assert d.answered and f"**{len(kids)} dependencias directas**" in d.text


def test_the_objective_of_a_kind_of_units_is_their_objective_not_their_list(engine, manuals):
    seed = manuals[0]
    top = next(u for u in seed.units if u.parent is None)
    group = next(u for u in seed.units if u.parent == top.name and engine.catalog.children(u))
    d = engine.answer(f"What's the goal of the {group.name.lower()} of the {top.name}?", "en", [])
    assert d.answered and group.objective and group.objective[:60] in d.text


def test_head_and_positions_asked_together_list_the_positions_with_the_head(engine, manuals):
    unit, _m = _unit(manuals, "Unidad de Notariado")
    for question in (
        "¿Quién dirige la Unidad de Notariado y qué puestos tiene?",
        "who runs the Unidad de Notariado, and what other positions does it have?",
    ):
        d = engine.answer(question, "es", [])
        assert d.answered and unit.head in d.text
        assert all(f"- {p}" in d.text for p in unit.positions), question


def _of_kind(manuals, unit_name: str, title: str) -> tuple[list[str], list[str]]:
    unit, _m = _unit(manuals, unit_name)
    kind = [p for p in unit.positions if fold(p).split()[0] == title]
    return kind, [p for p in unit.positions if p not in kind]


@pytest.mark.parametrize(
    "question, unit_name, title",
    [("¿Qué asistentes hay en la Oficina Regional de Occidente?", "Oficina Regional de Occidente", "asistente"),
     ("which administrators does the Área de Tecnología de Información have?",
      "Área de Tecnología de Información", "administrador"),
     ("¿y qué otro técnico hay en la Unidad de Mantenimiento?", "Unidad de Mantenimiento", "tecnico")],
)  # fmt: skip
def test_the_positions_of_one_kind_in_a_unit(engine, manuals, question, unit_name, title):
    kind, others = _of_kind(manuals, unit_name, title)
    d = engine.answer(question, "es", [])
    assert d.answered and kind and others
    assert all(f"- {p}" in d.text for p in kind)
    assert not any(f"- {p}\n" in d.text + "\n" for p in others)


def test_a_verb_after_who_asks_for_a_duty_not_for_positions_of_a_kind(engine, manuals):
    kind, _others = _of_kind(manuals, "Área de Tecnología de Información", "administrador")
    d = engine.answer("¿Quién administra en el Área de Tecnología de Información?", "es", [])
    assert kind and not any(f"- {p}" in d.text for p in kind)


def test_a_position_in_english_words_beside_a_named_unit(engine, manuals):
    unit, _m = _unit(manuals, "Departamento de Análisis de Créditos")
    analyst = next(p for p in unit.positions if fold(p).startswith("analista"))
    query = engine.analyse(
        "Does the Departamento de Análisis de Créditos have a credit analyst?",
        "Does the Departamento de Análisis de Créditos have a credit analyst?",
        "analista de créditos",
    )
    assert analyst in query.positions
    assert [m.unit.name for m in query.units] == [unit.name]
    assert not [t for t in query.leftover if not t.startswith("credit")]


@pytest.mark.parametrize(
    "question",
    ["So who heads the Unidad de Mantenimiento now?", "¿Y entonces quién dirige actualmente la Unidad de Mantenimiento?",
     "Who heads the Unidad de Mantenimiento now, then?"],
)  # fmt: skip
def test_discourse_words_are_no_topic_of_a_head_question(engine, manuals, question):
    unit, _m = _unit(manuals, "Unidad de Mantenimiento")
    d = engine.answer(question, "es", [])
    assert d.answered and f"**{unit.head}**" in d.text and "«" not in d.text


def test_the_positions_of_a_kind_that_report_to_a_head(engine, manuals):
    unit, _m = _unit(manuals, "Área de Tecnología de Información")
    kind = [p for p in unit.positions if fold(p).startswith("administrador")]
    d = engine.answer(f"¿Qué administradores dependen directamente del {unit.head}?", "es", [])
    assert d.answered and kind and all(f"- {p}" in d.text for p in kind)
    assert f"- {unit.head}" not in d.text


@pytest.mark.parametrize(
    "question",
    ["who runs the Unidad de Mantenimiento and what technicians does it have?",
     "what kinds of técnicos does the Unidad de Mantenimiento have?"],
)  # fmt: skip
def test_a_head_and_the_positions_of_a_kind_asked_together(engine, manuals, question):
    kind, _others = _of_kind(manuals, "Unidad de Mantenimiento", "tecnico")
    unit, _m = _unit(manuals, "Unidad de Mantenimiento")
    d = engine.answer(question, "en", [])
    assert d.answered and unit.head in d.text and all(f"- {p}" in d.text for p in kind)


def test_which_unit_a_unit_is_under_is_its_reporting_line(engine, manuals):
    unit, manual = _unit(manuals, "Sección de Escrituración")
    parent = manual.unit(unit.parent)
    d = engine.answer("and the Sección de Escrituración, which department is it under?", "en", [])
    assert d.answered and f"**{parent.name}**" in d.text


def test_some_office_is_no_unit_name(engine):
    from assistant.engine.decline import _unknown_unit

    q = "if some office needs a certificacion extractada of a property from the registry, who requests it?"
    assert _unknown_unit(engine, engine.analyse(q, q, "")) is None


@pytest.mark.parametrize(
    "question",
    [
        "Which positions make up the Gerente's own office staff?",
        "what positions are in the manager’s office?",
    ],
)
def test_an_english_possessive_is_no_unit_name(engine, question):
    from assistant.engine.decline import _unknown_unit

    # The "s" of "Gerente's" made "s own office" an unknown unit.
    assert _unknown_unit(engine, engine.analyse(question, question, "gerente oficina")) is None
    other = "Who heads the finance department?"
    assert _unknown_unit(engine, engine.analyse(other, other, "")) is not None


@pytest.mark.parametrize(
    "question",
    [
        "Who reports to the Área de Seguros de Deuda y Daños?",
        "¿Quiénes dependen del Área de Seguros de Deuda y Daños?",
        "and which positions report directly to the Área de Seguros de Deuda y Daños?",
    ],
)
def test_who_reports_to_a_unit_lists_those_below_it_not_its_own_boss(engine, manuals, question):
    unit, _manual = _unit(manuals, "Área de Seguros de Deuda y Daños")
    d = engine.answer(question, "es" if question.startswith("¿") else "en", [])
    assert d.answered and all(f"- {p}" in d.text for p in unit.positions)
    assert f"**{unit.parent}**" not in d.text  # not "the Jefe … reports to the Gerencia de Créditos"
    own = engine.answer("Who does the Área de Seguros de Deuda y Daños report to?", "en", [])
    assert f"reports to the **{unit.parent}**" in own.text


@pytest.mark.parametrize(
    ("question", "lang", "word"),
    [
        ("Which units are headed by a coordinator?", "en", "coordinator"),
        ("¿Qué unidades están a cargo de un coordinador?", "es", "coordinador"),
        ("which of them is headed by a notary?", "en", "notary"),
    ],
)
def test_the_units_headed_by_a_rank_are_those_whose_heads_title_opens_with_it(
    engine, manuals, question, lang, word
):
    """The rank word as the manual writes it or as its English cognate: every unit whose head's title opens
    with it, per manual, each with its head; no other unit."""
    from assistant.engine.catalog import _cognate

    key = _cognate(word)
    headed = [(u, m) for m in manuals for u in m.units if u.head and _cognate(fold(u.head).split()[0]) == key]
    others = [u for m in manuals for u in m.units if u.head and all(u is not h for h, _m in headed)]
    assert headed and others
    d = engine.answer(question, lang, [])
    assert d.answered
    assert all(f"**{u.name}** — {u.head}" in d.text for u, _m in headed)
    assert not any(f"**{u.name}** —" in d.text for u in others)
    assert {(c.manual, c.unit) for c in d.citations} == {(m.id, u.name) for u, m in headed}


@pytest.mark.parametrize(
    "question",
    [
        "¿Qué unidad está a cargo de un proceso de cobro judicial?",  # no head title opens with "proceso"
        "¿El Área de Ventas está a cargo de un jefe?",  # asked of one unit
        "Which tasks are supervised by the Jefe Área de Ventas?",  # a position, not a rank
    ],
)
def test_a_rank_asked_of_one_unit_or_no_head_holds_lists_no_units(engine, question):
    d = engine.answer(question, "es", [])
    assert "a cargo de un puesto de" not in d.text and "headed by a " not in d.text


@pytest.mark.parametrize(
    ("question", "lang", "words"),
    [
        ("Which positions in the Área de Ventas deal with servicios móviles?", "en", ("Servicios Móviles",)),
        (
            "¿Qué puestos del Área de Ventas tienen que ver con control de calidad?",
            "es",
            ("Control de Calidad",),
        ),
    ],
)
def test_the_positions_of_a_unit_titled_for_the_topic_asked(engine, manuals, question, lang, words):
    """A positions question with a topic: the unit's positions titled for it, out of all of them; with no title
    named for it ("notifications" in English, no topic at all), every position."""
    unit, _m = _unit(manuals, "Área de Ventas")
    titled = [p for p in unit.positions if any(w in p for w in words)]
    d = engine.answer(question, lang, [])
    assert d.answered and titled and all(f"- {p}" in d.text for p in titled)
    assert not any(f"- {p}" in d.text for p in unit.positions if p not in titled)
    for every in (
        "¿Qué puestos tiene el Área de Ventas?",
        "Which positions in the Área de Ventas deal with clients?",
    ):
        assert all(f"- {p}" in engine.answer(every, "es", []).text for p in unit.positions)
    # The words of the units it names are no topic, nor is their glossary translation ("Transporte" → vehicles).
    transport, _m = _unit(manuals, "Unidad de Transporte")
    d = engine.answer(
        "¿Qué puestos hay en la Unidad de Transporte de la Dirección de Administración?", "es", []
    )
    assert all(f"- {p}" in d.text for p in transport.positions)
