"""The history answerer over real parsed manuals and a second version; no model, no index."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.diff import diff_manuals, summarise
from assistant.engine import GroundedEngine
from assistant.ingest import load_file
from assistant.models import Manual
from assistant.parse import parse_document
from assistant.text import fold
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
        row = _row(m, version)
        assert c.quote in [row.quote(change) for change in row.changes]  # verbatim, elided at a page break


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


def _abolished_unit(m: Manual) -> tuple[str, int, int]:
    """A unit the history both adds and abolishes, read off the seed's own history: (name, added, removed)."""
    import re

    for h in m.history:
        for c in h.changes:
            gone = re.search(r"Eliminación del (Área de [A-ZÁÉÍÓÚ][\w ]+?)\.", c)
            if gone:
                name = gone.group(1)
                added = min(x.version for x in m.history if any(name in y for y in x.changes))
                return name, added, h.version
    raise AssertionError("the seed's history abolishes no área")


def test_what_happened_to_an_abolished_unit_lists_each_entry_naming_it(versions):
    v10, _v11 = versions
    name, added, removed = _abolished_unit(v10)
    assert not any(u.name == name for u in v10.units)  # only the history knows it
    d = _engine([v10]).answer(f"¿Qué pasó con el {name}?", "es", [])
    assert d.answered
    assert f"**Versión {added}**" in d.text and f"**Versión {removed}**" in d.text
    assert d.text.index(f"**Versión {added}**") < d.text.index(f"**Versión {removed}**")


def test_when_a_unit_was_added_picks_the_entry_that_adds_it(versions):
    v10, _v11 = versions
    name, added, removed = _abolished_unit(v10)
    d = _engine([v10]).answer(f"When was the {name} added?", "en", [])
    assert d.answered and f"**Version {added}**" in d.text and f"**Version {removed}**" not in d.text


def test_a_follow_up_keeps_a_unit_only_the_history_names(versions):
    from assistant.chain import condense
    from assistant.engine import Catalog

    v10, _v11 = versions
    name, _added, _removed = _abolished_unit(v10)
    history = [(f"¿Qué pasó con el {name}?", "Según el historial de modificaciones …")]
    out = condense("and when had it been added?", history, Catalog([v10]))
    assert out == f"and when had it been added? ({fold(name)})"


@pytest.mark.parametrize(
    ("question", "gerencia", "said"),
    [
        (
            "¿Siempre dependió de la Gerencia Legal la Unidad de Acceso a la Información Pública?",
            "Gerencia Legal",
            "Unidad de Acceso a la Información Pública",
        ),
        (
            "¿Desde cuándo existe la Subgerencia de Recursos Humanos?",
            "Dirección de Administración",
            "Creación",
        ),
        (
            "Was the Departamento de Contratación y Escrituración always a department?",
            "Gerencia Legal",
            "Elevación",
        ),
        ("¿Qué pasó con la Unidad de Gestión de Garantías?", "Gerencia Legal", "Eliminación"),
        (
            "What was the Gerencia Legal manual's code before it was recoded?",
            "Gerencia Legal",
            "Recodificación",
        ),
        ("When was the Oficina Regional Paracentral set up?", "Gerencia de Créditos", "Creación"),
        (
            "¿Cuándo le cambiaron el nombre a la Unidad de Informática y cómo se llama ahora?",
            "Dirección de Administración",
            "Cambio de nombre",
        ),
    ],
)
def test_a_units_past_asked_in_other_words_is_answered_from_the_history(others, question, gerencia, said):
    m = next(x for x in others if x.gerencia == gerencia)
    d = _engine(others).answer(question, "es" if "¿" in question else "en", [])
    assert d.answered and d.citations
    assert all(c.section == "modificaciones" and c.manual == m.id for c in d.citations)
    assert any(said in c.quote for c in d.citations)


def test_a_unit_name_only_part_of_which_a_history_names_is_not_known_to_it(others):
    d = _engine(others).answer("¿Qué hace la Unidad de Gestión de Riesgos?", "es", [])
    assert not d.answered and "unidad de gestion de" in d.text


def test_a_unit_only_the_history_names_asked_about_as_if_in_force_is_not_described(others):
    from assistant.engine.decline import _unknown_unit

    e = _engine(others)
    d = e.answer("What are the functions of the Gerencia Financiera?", "en", [])
    assert not d.answered and "gerencia financiera" in d.text
    # Named as a duty's other party, it does not stop the question.
    q = "¿Qué dependencia pide a la Gerencia Financiera el desembolso?"
    assert _unknown_unit(e, e.analyse(q, q, "")) is None


def test_a_duty_placed_in_time_is_not_a_history_question(others):
    from assistant.engine import history as history_answerer

    e = _engine(others)
    q = "Who appraises the vehicles of the Fund's fleet before they are sold?"
    assert history_answerer.answer(e, e.analyse(q, q, "vehiculos transporte"), "en", []) is None


def _former_unit_over_a_current_word(m: Manual) -> tuple[str, int]:
    """A unit the history adds whose name opens with a word of a unit in force ("Agencia …" beside
    "Agencias"), read off the seed's own history: (name, the version that added it)."""
    import re

    current = {fold(u.name) for u in m.units}
    for h in m.history:
        for c in h.changes:
            added = re.search(r"Incorporación de ((?:Agencia|Área|Unidad) [A-ZÁÉÍÓÚ]\w+)", c)
            if added and fold(added.group(1)) not in current:
                return added.group(1), h.version
    raise AssertionError("the seed's history adds no unit no longer in force")


def test_a_former_unit_whose_first_word_names_a_unit_in_force_is_the_history_key(versions):
    v10, _v11 = versions
    name, added = _former_unit_over_a_current_word(v10)
    d = _engine([v10]).answer(f"In which version was the {name} added?", "en", [])
    assert d.answered and f"**Version {added}**" in d.text
    assert d.text.count("**Version ") == 1  # not every entry naming the unit in force its first word names


def test_a_change_kind_narrows_a_named_versions_changes(versions):
    v10, _v11 = versions
    row = next(
        h for h in v10.history if len(h.changes) > 2 and any(c.startswith("Eliminación") for c in h.changes)
    )
    d = _engine([v10]).answer(f"which position was eliminated in version {row.version}?", "en", [])
    assert d.answered
    for c in row.changes:
        assert (f"«{c}»" in d.text) == c.startswith("Eliminación")
    # "new" names no kind: every change of the version.
    d = _engine([v10]).answer(f"what's new in version {row.version}?", "en", [])
    assert all(f"«{c}»" in d.text for c in row.changes)


def test_who_prepared_a_version_named_beside_a_change_word_is_the_analyst(versions):
    v10, _v11 = versions
    row = next(h for h in v10.history if h.prepared_by and len(h.changes) > 1)
    d = _engine([v10]).answer(f"who was the analyst for that change? (version {row.version})", "en", [])
    assert d.answered and f"**{row.prepared_by}**" in d.text


def test_a_follow_up_on_that_position_keeps_a_position_only_the_history_names(versions):
    from assistant.chain import condense
    from assistant.engine import Catalog

    v10, _v11 = versions
    current = {fold(p) for u in v10.units for p in u.positions}
    gone = next(
        p
        for p in Catalog([v10]).history_positions(" ".join(c for h in v10.history for c in h.changes))
        if p not in current
    )
    history = [(f"When was the {gone} position created?", "According to the change history …")]
    out = condense("and does that position still exist?", history, Catalog([v10]))
    assert out == f"and does that position still exist? ({gone})"


def test_when_a_groups_members_were_split_is_the_change_of_that_kind_naming_them(versions):
    v10, _v11 = versions
    engine = _engine([v10])
    group = next(u for u in v10.units if u.parent is not None and engine.catalog.children(u))
    members = [fold(x.name) for x in engine.catalog.children(group)]
    row, change = next(
        (h, c)
        for h in v10.history
        for c in h.changes
        if fold(c).startswith("separacion") and all(m in fold(c) for m in members)
    )
    d = engine.answer(f"¿Cuándo se separaron los organigramas de las {group.name}?", "es", [])
    assert d.answered and f"**Versión {row.version}**" in d.text and f"«{change}»" in d.text
    assert d.text.count("- «") == 1  # not the other changes naming one of them


@pytest.mark.parametrize(
    ("asked", "bot", "version"),
    [
        ("¿y la versión anterior a esa?", "La versión vigente es la **10**.", "versión 9"),
        (
            "and the one before that?",
            "The current version is **10**. It has been in force since …",
            "version 9",
        ),
        (
            "and the one before that?",
            "According to …:\n**Version 5** (December 19, 2011):\n- «…»",
            "version 4",
        ),
    ],
)
def test_the_version_before_the_one_the_last_answer_was_about(versions, asked, bot, version):
    from assistant.chain import condense
    from assistant.engine import Catalog

    out = condense(asked, [("…", bot)], Catalog([versions[0]]))
    assert out == f"{asked} ({version})"


def test_a_version_an_answer_names_in_lower_case_is_the_one_a_follow_up_is_about(versions):
    from assistant.chain import condense
    from assistant.engine import Catalog

    bot = "Según el *Manual …*: La versión 9 (20 de mayo de 2015) la elaboró **Clara Arce**, según el historial."
    out = condense(
        "¿y qué puestos se eliminaron en ella?",
        [("¿quién elaboró esa versión?", bot)],
        Catalog([versions[0]]),
    )
    assert out.endswith("(versión 9)")


def test_that_unit_after_a_change_history_answer_is_the_unit_not_the_version(versions):
    from assistant.chain import condense
    from assistant.engine import Catalog

    v10, _v11 = versions
    name, added, removed = _abolished_unit(v10)
    bot = f"Según el historial …:\n**Versión {removed}** (…):\n- «Eliminación del {name}.»"
    out = condense(
        "¿y cuándo se había incorporado esa área?", [(f"¿Cuándo se eliminó el {name}?", bot)], Catalog([v10])
    )
    assert out.endswith(f"({fold(name)})")
    d = _engine([v10]).answer(out, "es", [])
    assert d.answered and f"**Versión {added}**" in d.text


def test_since_when_a_unit_has_a_position_is_the_history_of_that_position(versions):
    v10, _v11 = versions
    engine = _engine([v10])
    row, change = next(
        (h, c)
        for h in v10.history
        for c in h.changes
        if c.startswith("Creación de los puestos") and " en el " in c
    )
    position = next(p for u in v10.units for p in u.positions if p in change and u.name in change)
    d = engine.answer(f"Since when is there an {position}?", "en", [])
    assert d.answered and f"**Version {row.version}**" in d.text and f"«{change}»" in d.text


def test_the_past_of_it_after_a_duty_answer_is_the_past_of_the_unit_that_answered(versions):
    from assistant.chain import condense
    from assistant.engine import Catalog

    v10, _v11 = versions
    unit = next(u for u in v10.units if u.parent is not None and u.functions)
    bot = f"According to the manual, this is handled by **{unit.name}** (…), function i:\n> «{unit.functions[0]}»"
    out = condense("was it always called that?", [("who does that?", bot)], Catalog([v10]))
    assert out == f"was it always called that? ({unit.name})"


def test_that_version_and_a_named_position_keeps_both(versions):
    from assistant.chain import condense
    from assistant.engine import Catalog

    v10, _v11 = versions
    row, change = next(
        (h, c) for h in v10.history for c in h.changes if c.startswith("Cambio de dependencia del puesto")
    )
    position = next(p for u in v10.units for p in u.positions if p in change)
    asked = f"¿y en esa versión el {position} cambió de área?"
    out = condense(asked, [(f"¿qué cambió en la versión {row.version}?", "…")], Catalog([v10]))
    assert out == f"{asked} (versión {row.version})"
    d = _engine([v10]).answer(out, "es", [])
    assert d.answered and d.text.count("- «") == 1 and f"«{change}»" in d.text


def test_when_a_unit_started_reporting_somewhere_is_a_history_question(others):
    legal = next(m for m in others if m.gerencia == "Gerencia Legal")
    moved = next(c for h in legal.history for c in h.changes if "pasa de depender" in c)
    unit = next(u for u in legal.units if u.name in moved)
    d = _engine(others).answer(f"When did the {unit.name} start reporting to the Gerencia Legal?", "en", [])
    assert d.answered and f"«{moved}»" in d.text


def test_a_former_name_followed_by_more_words_is_known_to_a_history_question(others):
    admin = next(m for m in others if m.gerencia == "Dirección de Administración")
    change = next(
        c for h in admin.history for c in h.changes if c.startswith("Cambio de nombre de la Unidad")
    )
    former = change.split("Cambio de nombre de la ", 1)[1].split(" por ", 1)[0]
    d = _engine(others).answer(f"wasn't it called {former} before? when did the name change?", "en", [])
    assert d.answered and f"«{change}»" in d.text


@pytest.mark.parametrize("frame", ["¿Por qué eliminaron el {name}?", "Why was the {name} abolished?"])
def test_why_a_change_was_made_is_not_answered_but_what_the_history_records_is_shown(versions, frame):
    v10, _v11 = versions
    name, _added, removed = _abolished_unit(v10)
    lang = "es" if frame.startswith("¿") else "en"
    d = _engine([v10]).answer(frame.format(name=name), lang, [])
    assert not d.answered
    assert d.text.startswith(
        "El historial de modificaciones registra" if lang == "es" else "The change history"
    )
    assert {c.numeral for c in d.citations} >= {str(removed)}


def test_a_misspelt_follow_up_is_read_through_its_corrections(versions):
    from assistant.chain import condense
    from assistant.engine import Catalog

    v10, _v11 = versions
    unit = next(u for u in v10.units if u.parent is not None and u.functions and u.head)
    bot = f"According to the manual, this is handled by **{unit.name}** (…), function i:\n> «{unit.functions[0]}»"
    out = condense("who heds it?", [("who does that?", bot)], Catalog([v10]), {"heds": "heads"})
    assert out == f"who heds it? ({unit.name})"
    d = _engine([v10]).answer(out, "en", [], corrected=out.replace("heds", "heads"))
    assert d.answered and f"**{unit.head}**" in d.text and "function" not in d.text
    # A wrong "correction" does not hide a cue the user's own spelling gives.
    row = next(h for h in v10.history if h.prepared_by)
    bot = f"Según …: La versión {row.version} (…) la elaboró **{row.prepared_by}**."
    out = condense("¿quién la elaboró?", [("…", bot)], Catalog([v10]), {"elaboro": "labor"})
    assert out.endswith(f"(versión {row.version})")


def test_what_happened_to_a_position_in_a_named_version_is_that_versions_change(versions):
    v10, _v11 = versions
    row, change = next(
        (h, c) for h in v10.history for c in h.changes if c.startswith("Cambio de dependencia del puesto")
    )
    position = next(p for u in v10.units for p in u.positions if p in change)
    d = _engine([v10]).answer(
        f"And in version {row.version}, what happened with the {position} position?", "en", []
    )
    assert d.answered and f"«{change}»" in d.text


def test_a_follow_up_on_the_manual_with_a_fact_of_its_own_carries_only_the_manual(versions):
    from assistant.chain import condense
    from assistant.engine import Catalog

    v10, _v11 = versions
    history = [
        (
            "Who reviewed and who authorised this manual?",
            "According to the *Manual …*: It was authorised by …",
        )
    ]
    assert condense("and when was it first created?", history, Catalog([v10])) == (
        "and when was it first created? (the manual)"
    )
    # The version in force an answer names is one a follow-up leans on.
    history = [
        ("¿Cuál es la versión vigente del manual?", "Según el *Manual …*: La versión vigente es la **10**.")
    ]
    assert condense("¿qué cambió en esa versión?", history, Catalog([v10])).endswith("(versión 10)")


def test_which_are_they_after_a_count_lists_what_was_counted(versions):
    from assistant.chain import condense
    from assistant.engine import Catalog

    v10, _v11 = versions
    top = next(u for u in v10.units if u.parent is None)
    asked = f"¿Cuántas dependencias tiene la {top.name}?"
    out = condense("¿y cuáles son?", [(asked, "… tiene **6 dependencias directas** …")], Catalog([v10]))
    assert out == f"¿y cuáles son? (dependencias {fold(top.name).replace(' de ', ' ').replace(' al ', ' ')})"
    d = _engine([v10]).answer(out, "es", [])
    kids = [u for u in v10.units if u.parent == top.name]
    assert d.answered and all(f"**{k.name}**" in d.text for k in kids)


def test_when_a_former_unit_was_created_is_its_past_not_the_manuals_creation(others):
    from assistant.engine import document

    engine = _engine(others)
    question = "¿Cuándo se creó la Unidad de Gestión de Garantías en el manual de la Gerencia Legal?"
    assert not engine.catalog.find_units(
        "Unidad de Gestión de Garantías"
    )  # eliminated: only the history has it
    query = engine.analyse(question, question, "")
    assert document.answer(engine, query, "es", []) is None
    d = engine.answer(question, "es", [])
    assert d.answered and "Gestión de Garantías" in d.text


def test_when_a_unit_got_something_is_answered_from_its_history(others):
    engine = _engine(others)
    d = engine.answer("When did the Sección de Registro get its place in the manual?", "en", [])
    assert d.answered and "Creación de la Sección de Registro" in d.text


def test_a_former_position_is_answered_only_by_the_history_that_names_it(others):
    engine = _engine(others)
    legal = next(m for m in others if m.code == "901 0907")
    question = "¿En qué versión quitaron el puesto de Auxiliar Jurídico?"
    assert engine.catalog.names_former(question)
    d = engine.answer(question, "es", [])
    assert d.answered and legal.gerencia in d.text
    assert all(m.gerencia not in d.text for m in others if m is not legal)


def test_who_prepared_the_version_that_made_a_change_names_that_rows_analyst(versions):
    v10, _v11 = versions
    name, _added, removed = _abolished_unit(v10)
    row = _row(v10, removed)
    assert row is not None and row.prepared_by
    for asked, lang, said in [
        (f"who prepared the version that eliminated the {name}?", "en", "Prepared by"),
        (f"¿quién elaboró la versión que eliminó el {name}?", "es", "Elaborada por"),
    ]:
        d = _engine([v10]).answer(asked, lang, [])
        assert d.answered and "**Versi" in d.text and f" {removed}** (" in d.text
        assert f"{said}: **{row.prepared_by}**" in d.text
        assert any(c.quote == row.prepared_by for c in d.citations)


def test_a_position_named_analyst_does_not_ask_who_prepared_the_version(others):
    import re

    with_analyst = [
        (m, p)
        for m in others
        for p in sorted(
            {p for h in m.history for c in h.changes for p in re.findall(r"Analista [\w ]+?(?=[.,:]| y )", c)}
        )
    ]
    assert with_analyst, "no fixture manual's history names an Analista position"
    m, post = with_analyst[0]
    d = _engine([m]).answer(f"When was the {post} position created?", "en", [])
    assert d.answered and post in d.text
    assert "prepared" not in d.text.lower()  # neither an analyst nor "the history does not say who"
    # Nor a title in lower case, nor a duty's verb in a relative clause.
    unit = next(u.name for u in m.units if u.parent is not None)
    for asked in [
        f"¿Cuándo se crearon los puestos de {post.split()[0].lower()} en la {m.gerencia}?",
        f"¿Cuándo se creó la {unit}, que elabora los informes?",
    ]:
        d = _engine([m]).answer(asked, "es", [])
        assert "Elaborada por" not in d.text and "no indica quién" not in d.text, asked


def test_the_version_that_made_another_change_is_not_the_one_the_last_answer_showed(versions):
    from assistant.chain import condense
    from assistant.engine import Catalog

    v10, _v11 = versions
    name, added, _removed = _abolished_unit(v10)
    bot = f"According to the change history …:\n**Version {added}** (…):\n- «Creación del {name}.»"
    history = [(f"When was the {name} created?", bot)]
    removed_by = condense("who prepared the version that removed it?", history, Catalog([v10]))
    assert f"version {added}" not in removed_by
    assert condense("who prepared the version that created it?", history, Catalog([v10])).endswith(
        f"(version {added})"
    )
    # What else that version did is still asked of it: the change word asks, it does not pick the version.
    assert condense("and what was removed in that version?", history, Catalog([v10])).endswith(
        f"(version {added})"
    )


def test_when_a_unit_was_raised_to_another_kind_is_the_change_that_raised_it(others):
    import re

    raised = [
        (m, h, found.group(1))
        for m in others
        for h in m.history
        for c in h.changes
        if (found := re.search(r"Elevación del (Área de [\w ]+?) a Departamento", c))
    ]
    assert raised, "no fixture manual's history raises an área to a departamento"
    engine = _engine(others)
    for m, h, name in raised:
        for asked, lang in [
            (f"When was the {name} upgraded to a department?", "en"),
            (f"When was the {name} raised to a department?", "en"),
            (f"¿Cuándo elevaron el {name} a departamento?", "es"),
        ]:
            d = engine.answer(asked, lang, [])
            assert d.answered, asked
            assert any(c.section == "modificaciones" and c.numeral == str(h.version) for c in d.citations), (
                asked
            )
            assert m.gerencia in d.text


def test_elevados_as_high_is_no_history_word(versions):
    v10, _v11 = versions
    d = _engine([v10]).answer(
        "¿Qué funciones tiene el Área de Ventas para clientes con montos elevados?", "es", []
    )
    assert not any(c.section == "modificaciones" for c in d.citations)


def test_a_position_only_the_history_names_asked_about_as_if_in_force_gets_its_history(versions):
    """ "¿Existe el puesto de X?", "is there an X?" for a position the version in force no longer has: the
    answer says it is not in the structure in force and quotes the history rows naming it; asked with a
    history cue ("when was it eliminated?"), the rows alone."""
    from assistant.engine import Catalog

    v10, _v11 = versions
    current = {fold(p) for u in v10.units for p in u.positions}
    quoted = " ".join(c for h in v10.history for c in h.changes)
    gone = next(p for p in Catalog([v10]).history_positions(quoted) if p not in current)
    title = next(
        c[c.lower().find(gone) :][: len(gone)] for h in v10.history for c in h.changes if gone in fold(c)
    )
    rows = [h for h in v10.history if any(gone in fold(c) for c in h.changes)]
    engine = _engine([v10])
    for question, lang, lead in (
        (f"¿Existe el puesto de {title}?", "es", "no figura en la estructura vigente"),
        (f"is there a {title}?", "en", "is not in the structure in force"),
    ):
        d = engine.answer(question, lang, [])
        assert d.answered and d.text.startswith(f"**{title}** {lead}")
        assert all(f"**{'Versión' if lang == 'es' else 'Version'} {h.version}**" in d.text for h in rows)
    cued = engine.answer(f"When was the {title} position eliminated?", "en", [])
    assert cued.answered and "not in the structure in force" not in cued.text


def test_a_name_the_structure_or_duty_lines_still_use_is_not_gone(versions, others):
    """The "Comité de Créditos" a history names is no former unit: duty lines and the "Unidad de Secretaría del
    Comité de Créditos" name it, so a question about that unit gets no "not in the structure in force" answer."""
    from assistant.engine import Catalog

    catalog = Catalog([versions[0], *others])
    asked = "¿Quién dirige la Unidad de Secretaría del Comité de Créditos?"
    assert catalog.history_names(asked) and catalog.gone(asked) == []
    d = _engine([versions[0], *others]).answer(asked, "es", [])
    assert "no figura en la estructura vigente" not in d.text
    assert catalog.gone("¿Existe el puesto de Coordinador de Ventas?") == ["coordinador de ventas"]
    # A run the history quotes past a title in force, or a title in force spelt another way, is in force.
    assert (
        catalog.gone("¿Existe el puesto de Auxiliar de Ventanilla en el Área de Atención al Cliente?") == []
    )
    assert catalog.gone("¿Hay un gestor de recuperación administrativa en la Agencia San Miguel?") == []
