"""The web chat's handlers and renderers, without a server."""

from __future__ import annotations

import re
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import Any

import gradio as gr
import pytest
from fakes_ui import FakeAssistant, fake_manual, fixture_manuals, real_manuals

from assistant.feedback import FeedbackStore
from assistant.models import Manual, Unit
from assistant.settings import Settings, UISettings
from assistant.ui import (
    ALL_MANUALS,
    FALLBACK_NOTE,
    INSTITUTION,
    AuthConfigError,
    ChatController,
    ChatSession,
    build_app,
    children,
    citation_label,
    corpus_examples,
    example_questions,
    groups,
    header_html,
    load_credentials,
    make_auth,
    org_tree_html,
    prepare_process,
    queued,
    render_answer,
    stream_pieces,
    suggested_questions,
    tour_html,
    unit_card_html,
    with_article,
)


@pytest.fixture()
def store(tmp_path: Path):
    s = FeedbackStore(tmp_path / "feedback.sqlite3")
    yield s
    s.close()


@pytest.fixture()
def controller(store: FeedbackStore) -> ChatController:
    return ChatController(FakeAssistant(max_question_chars=200), store, Settings(), stream_delay_s=0)


def _run(controller: ChatController, question: str, session: ChatSession) -> list[str]:
    """Drive ``respond`` to the end; return the assistant message as it was after each update."""
    return [messages[-1]["content"] for messages, _ in controller.respond(question, session)]


# ---------------------------------------------------------------- chat


def test_answer_streams_then_shows_citations(controller: ChatController) -> None:
    session = ChatSession()
    updates = _run(controller, "¿Quién atiende las quejas y denuncias de los clientes?", session)
    assert updates[0].startswith("Buscando")
    streamed = updates[1:-1]
    assert len(streamed) >= 2, "the answer should arrive in pieces"
    assert all(len(a) <= len(b) for a, b in pairwise(streamed))
    final = updates[-1]
    assert "<details class='cite'>" in final
    assert "901 0905 v10 · Área de Atención al Cliente · función i" in final
    assert "“Atender y solventar las quejas y denuncias de los clientes.”" in final
    assert session.messages[-2] == {
        "role": "user",
        "content": "¿Quién atiende las quejas y denuncias de los clientes?",
    }


def test_follow_up_passes_history(controller: ChatController) -> None:
    session = ChatSession()
    _run(controller, "¿Cuáles son las funciones del Área de Ventas?", session)
    _run(controller, "¿Y quién la dirige?", session)
    fake = controller.assistant
    assert isinstance(fake, FakeAssistant)
    first_answer = session.turns[0][1]
    assert fake.calls[1] == (
        "¿Y quién la dirige?",
        [("¿Cuáles son las funciones del Área de Ventas?", first_answer)],
        None,
    )
    assert len(session.messages) == 4


def test_too_long_question_is_refused_in_the_chat(controller: ChatController) -> None:
    session = ChatSession()
    updates = _run(controller, "x" * 5000, session)
    assert "demasiado larga" in updates[-1] and "too long" in updates[-1]
    assert session.turns == [] and session.answers == {}
    assert len(session.messages[-2]["content"]) < 500, "a huge paste is not echoed in full"


def test_empty_question_is_refused(controller: ChatController) -> None:
    session = ChatSession()
    assert "Escribe una pregunta" in _run(controller, "   ", session)[-1]


def test_unexpected_error_becomes_a_message(store: FeedbackStore) -> None:
    class Broken(FakeAssistant):
        def ask(self, question, history=None, manual=None):
            raise RuntimeError("secret internals")

    controller = ChatController(Broken(), store, Settings(), stream_delay_s=0)
    final = _run(controller, "hola", ChatSession())[-1]
    assert "Error interno" in final and "secret" not in final


def test_fallback_note_is_shown_only_when_set() -> None:
    fake = FakeAssistant(fallback_reason="timeout")
    answer = fake.ask("¿Quién atiende las quejas?")
    assert FALLBACK_NOTE in render_answer(answer)
    assert FALLBACK_NOTE not in render_answer(answer.model_copy(update={"fallback_reason": None}))


def test_citation_text_is_escaped() -> None:
    answer = FakeAssistant().ask("¿Quién atiende las quejas?")
    bad = answer.citations[0].model_copy(update={"quote": "<script>alert(1)</script>"})
    html = render_answer(answer.model_copy(update={"citations": [bad], "sources": []}))
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_answer_comes_whole_while_another_is_being_prepared(controller: ChatController) -> None:
    other = controller.respond("¿Quién dirige la Gerencia?", ChatSession())
    next(other)  # another user's answer is under way
    session = ChatSession()
    updates = list(controller.respond("¿Quién atiende las quejas y denuncias de los clientes?", session))
    assert len(updates) == 1, "no placeholder and no typing effect under load"
    messages, stored = updates[0]
    assert stored is session and "<details class='cite'>" in messages[-1]["content"]
    list(other)
    assert not controller.busy()
    # Alone again: placeholder and typing effect are back.
    assert len(_run(controller, "¿Quién atiende las quejas y denuncias de los clientes?", session)) > 2


def test_answer_comes_whole_while_someone_waits_in_the_queue(store: FeedbackStore) -> None:
    waiting = [1]
    controller = ChatController(
        FakeAssistant(), store, Settings(), stream_delay_s=0, waiting=lambda: waiting[0]
    )
    assert controller.busy()
    question = "¿Quién atiende las quejas y denuncias de los clientes?"
    assert len(list(controller.respond(question, ChatSession()))) == 1
    waiting[0] = 0
    assert not controller.busy()
    assert len(list(controller.respond(question, ChatSession()))) > 2


def test_typing_effect_stops_when_someone_starts_waiting(store: FeedbackStore) -> None:
    waiting = [0]
    controller = ChatController(
        FakeAssistant(), store, Settings(), stream_delay_s=0, waiting=lambda: waiting[0]
    )
    updates = controller.respond("¿Quién atiende las quejas y denuncias de los clientes?", ChatSession())
    next(updates)  # the placeholder
    next(updates)  # the first words
    waiting[0] = 3
    rest = [messages[-1]["content"] for messages, _ in updates]
    assert len(rest) == 1 and "<details class='cite'>" in rest[0], "the rest comes whole, with its citations"


def test_queued_counts_requests_not_yet_started(store: FeedbackStore) -> None:
    class App:
        def __init__(self) -> None:
            self._queue = [object(), object()]

    assert queued(App()) == 2  # type: ignore[arg-type]
    assert queued(object()) == 0  # type: ignore[arg-type]
    assert queued(build_app(FakeAssistant(), Settings(), store=store)) == 0


def test_event_handlers_carry_evaluated_type_hints(store: FeedbackStore) -> None:
    # Gradio reads every event function's type hints on every call; string annotations (postponed by
    # `from __future__ import annotations`) would be eval'ed each time.
    app = build_app(FakeAssistant(), Settings(), store=store)
    handlers = [d.fn for d in app.fns.values() if d.fn is not None and d.fn.__name__ != "<lambda>"]
    assert any(getattr(fn, "__name__", "") == "respond" for fn in handlers)
    for fn in handlers:
        hints = getattr(fn, "__annotations__", {})
        assert not any(isinstance(h, str) for h in hints.values()), fn
    like = next(fn for fn in handlers if fn.__name__ == "on_like")
    assert gr.utils.get_type_hints(like)["evt"] is gr.LikeData


def test_prepare_process_freezes_the_loaded_heap_and_sets_matplotlib() -> None:
    import gc

    import matplotlib

    try:
        prepare_process()
        assert gc.get_freeze_count() > 0
        assert matplotlib.get_backend().lower() == "agg"
    finally:
        gc.unfreeze()  # the rest of the test session keeps a normal collector


def test_intermediate_updates_leave_the_session_state_alone(controller: ChatController) -> None:
    session = ChatSession()
    updates = list(controller.respond("¿Quién atiende las quejas y denuncias de los clientes?", session))
    assert all(state is not session for _messages, state in updates[:-1])
    assert updates[-1][1] is session


def test_stream_pieces_rebuild_the_text() -> None:
    text = "Uno dos  tres\ncuatro " * 30
    pieces = list(stream_pieces(text, max_updates=10))
    assert len(pieces) <= 10
    assert pieces[-1] == text.rstrip()
    assert list(stream_pieces("")) == []


# ---------------------------------------------------------------- feedback


def test_thumbs_store_change_and_withdraw(controller: ChatController, store: FeedbackStore) -> None:
    session = ChatSession()
    _run(controller, "¿Quién atiende las quejas?", session)
    index = len(session.messages) - 1
    row_id = controller.rate(session, index, False)
    assert row_id is not None
    row = store.get(row_id)
    assert row is not None and row.rating == "down" and row.question == "¿Quién atiende las quejas?"
    assert row.manifest == {"model": "fake", "dimension": 0, "chromadb": "none", "corpus": {}}
    assert controller.comment(session, "Falta el Centro de Atención Telefónica")
    assert controller.rate(session, index, True) == row_id, "a second click updates, not duplicates"
    row = store.get(row_id)
    assert row is not None and (row.rating, row.comment) == ("up", "Falta el Centro de Atención Telefónica")
    assert controller.rate(session, index, None) is None
    assert store.rows() == []


def test_rating_an_error_message_stores_nothing(controller: ChatController, store: FeedbackStore) -> None:
    session = ChatSession()
    _run(controller, "", session)
    assert controller.rate(session, len(session.messages) - 1, False) is None
    assert not controller.comment(session, "x")
    assert store.rows() == []


# ---------------------------------------------------------------- onboarding


def test_tree_follows_parent_links() -> None:
    manual = fake_manual()
    assert [u.number for u in groups(manual)] == [1, 2, 3, 4, 5, 6]
    assert [u.name for u in children(manual, "Agencias")] == ["Agencia Santa Ana", "Agencia San Miguel"]
    tree = org_tree_html(manual)
    for unit in manual.units:
        assert f"data-unit='{unit.name}'" in tree
    # Sub-units nest inside their group's list, and positions inside their unit.
    agencias = tree.index("data-unit='Agencias'")
    assert agencias < tree.index("data-unit='Agencia Santa Ana'") < tree.index("data-unit='Área de Ventas'")
    assert "Supervisor Técnico" in tree


def test_tree_is_built_from_data_not_names() -> None:
    manual = Manual(
        id="x",
        source="x",
        units=[
            Unit(name="Dirección X", head="Director"),
            Unit(name="Unidad Y", parent="Dirección X", number=1, positions=["Analista"]),
        ],
    )
    tree = org_tree_html(manual)
    assert "Dirección X" in tree and "1. Unidad Y" in tree and "Analista" in tree
    assert "Agencias" not in tree
    assert "Paso 1 de 1" in tour_html(manual, 0)


def test_unit_card_shows_objective_functions_positions() -> None:
    manual = fake_manual()
    card = unit_card_html(manual, manual.unit("Área de Atención al Cliente"))
    assert "Atender y facilitar los diferentes servicios" in card
    assert "<span class='numeral'>ii.</span> Controlar las operaciones del Centro" in card
    assert "Coordinador de Ventanilla" in card
    sub = unit_card_html(manual, manual.unit("Agencia Santa Ana"))
    assert "Gerencia de Servicio al Cliente › Agencias" in sub
    assert "Comparte el objetivo y las funciones de <b>Agencias</b>" in sub


def test_suggested_questions_come_from_unit_data() -> None:
    manual = fake_manual()
    ventas = manual.unit("Área de Ventas")
    assert ventas is not None
    assert suggested_questions(ventas) == [
        "¿Quién dirige el Área de Ventas?",
        "What are the functions of the Área de Ventas?",
        "¿Qué puestos tiene el Área de Ventas?",
        "What is the objective of the Área de Ventas?",
    ]
    santa_ana = manual.unit("Agencia Santa Ana")
    assert santa_ana is not None
    assert suggested_questions(santa_ana) == [
        "¿Quién dirige la Agencia Santa Ana?",
        "¿Qué puestos tiene la Agencia Santa Ana?",
    ]
    assert with_article("Sucursal Paseo") == "la Sucursal Paseo"
    assert with_article("Comité X") == "Comité X"


def test_tour_steps_through_the_six_groups() -> None:
    manual = fake_manual()
    steps = [tour_html(manual, i) for i in range(6)]
    for i, (html, unit) in enumerate(zip(steps, groups(manual), strict=True)):
        assert f"Paso {i + 1} de 6" in html and unit.name in html
    assert tour_html(manual, 99) == steps[-1], "out-of-range steps clamp to the ends"


def test_header_and_examples() -> None:
    manual = fake_manual()
    header = header_html(manual)
    assert "901 0905" in header and "10" in header and "15 de marzo de 2016" in header
    examples = example_questions(manual)
    assert any(q.startswith("¿") for q in examples) and any(
        re.match(r"(What|Which|Who)", q) for q in examples
    )
    assert "¿Cuáles son las funciones del Área de Atención al Cliente?" in examples


# ---------------------------------------------------------------- login


def test_credentials_from_env_and_file(tmp_path: Path) -> None:
    ui = UISettings(auth_enabled=True)
    assert load_credentials(ui, {"ASSISTANT_UI_USERS": "ana:s3:cret, luis:pw"}) == [
        ("ana", "s3:cret"),
        ("luis", "pw"),
    ]
    path = tmp_path / "users.txt"
    path.write_text("# comment\nana:uno\n\nluis:dos\n", encoding="utf-8")
    ui_file = UISettings(auth_enabled=True, auth_file=path)
    assert load_credentials(ui_file, {}) == [("ana", "uno"), ("luis", "dos")]
    check = make_auth(ui_file, {})
    assert check is not None
    assert check("ana", "uno") and check("luis", "dos")
    assert not check("ana", "dos") and not check("eve", "uno") and not check("", "")


def test_login_on_without_users_refuses_to_start(tmp_path: Path) -> None:
    with pytest.raises(AuthConfigError, match="no users are configured"):
        make_auth(UISettings(auth_enabled=True), {})
    with pytest.raises(AuthConfigError, match="does not exist"):
        make_auth(UISettings(auth_enabled=True, auth_file=tmp_path / "missing"), {})
    bad = tmp_path / "bad.txt"
    bad.write_text("ana:ok\nsecretwithoutcolon\n", encoding="utf-8")
    with pytest.raises(AuthConfigError, match="line 2") as err:
        make_auth(UISettings(auth_enabled=True, auth_file=bad), {})
    assert "secretwithoutcolon" not in str(err.value), "the error must not print the line's content"
    assert make_auth(UISettings(auth_enabled=False), {}) is None


# ---------------------------------------------------------------- the app


def test_build_app_exposes_one_chat_endpoint(store: FeedbackStore) -> None:
    app = build_app(FakeAssistant(), Settings(), store=store)
    assert isinstance(app, gr.Blocks)
    public = [d.api_name for d in app.fns.values() if d.api_visibility == "public"]
    assert public == ["chat"]


def test_join_strip_keeps_a_rendered_tab_out_of_a_tabs_of_its_own() -> None:
    # In a gr.render's container (a Column) Gradio would wrap the tab in a gr.Tabs: a second tab strip.
    from assistant.ui_admin import join_strip

    with gr.Blocks(), gr.Column() as container:
        with gr.Tab("Otra · Other", id="other") as plain:
            pass
        with gr.Tab("Admin", id="admin") as joined:
            join_strip(joined, 3)
    assert isinstance(plain.parent, gr.Tabs), "without it, Gradio still adds the strip of its own"
    assert container.children[-1] is joined and joined.parent is container
    config = joined.get_config()
    assert config["order"] == 3 and config["label"] == "Admin" and config["id"] == "admin"
    assert "order" not in plain.get_config()


def test_multiline_quotes_stay_one_html_block() -> None:
    # A blank line would end the HTML block in the chat's Markdown and spill the rest as raw text.
    answer = FakeAssistant().ask("¿Quién atiende las quejas?")
    quote = "Jefe Área de Activos Extraordinarios\n\nSecretaria\nAuxiliar"
    cite = answer.citations[0].model_copy(update={"quote": quote, "section": "organigrama", "numeral": None})
    html = render_answer(answer.model_copy(update={"citations": [cite], "sources": []}))
    block = html[html.index("<div class='cites'>") :]
    assert "\n" not in block
    assert "“Jefe Área de Activos Extraordinarios<br>Secretaria<br>Auxiliar”" in block


# ---------------------------------------------------------------- several manuals


def _twin_manuals() -> list[Manual]:
    """Two small manuals with a unit of the same name, "Unidad de Archivo", in different places."""
    a = Manual(
        id="mof-a",
        source="a.txt",
        code="901 0001",
        version=2,
        units=[
            Unit(name="Gerencia A", head="Gerente A", objective="Objetivo de A."),
            Unit(
                name="Unidad de Archivo", parent="Gerencia A", head="Jefe Archivo A", objective="Archivar A."
            ),
        ],
    )
    b = Manual(
        id="mof-b",
        source="b.txt",
        code="901 0002",
        version=7,
        units=[
            Unit(name="Dirección B", head="Director B"),
            Unit(name="Subgerencia B", parent="Dirección B", head="Subgerente B"),
            Unit(
                name="Unidad de Archivo",
                parent="Subgerencia B",
                head="Jefe Archivo B",
                objective="Archivar B.",
            ),
        ],
    )
    return [a, b]


def _handler(app: gr.Blocks, name: str) -> Callable[..., Any]:
    fn = next(d.fn for d in app.fns.values() if getattr(d.fn, "__name__", "") == name)
    assert fn is not None
    return fn


def test_fixture_manuals_load_as_real_manual_objects() -> None:
    manuals = real_manuals()
    assert [m.code for m in manuals] == ["901 0905", "901 0910", "901 0903", "901 0907"]
    assert [m.gerencia for m in manuals] == [
        "Gerencia de Servicio al Cliente",
        "Dirección de Administración",
        "Gerencia de Créditos",
        "Gerencia Legal",
    ]
    assert all(m.effective_date is not None for m in manuals)


def test_header_lists_every_manual_and_one_manual_looks_as_before() -> None:
    manuals = real_manuals()
    header = header_html(manuals)
    assert "4 gerencias" in header
    dates = ["15 mar 2016", "18 ago 2014", "2 feb 2015", "3 nov 2015"]
    for manual, date_text in zip(manuals, dates, strict=True):
        assert f"<b>{manual.gerencia}</b>" in header
        assert f"{manual.code} · v{manual.version}" in header and date_text in header
    single = header_html(manuals[:1])
    assert single == header_html(manuals[0])
    assert "<b>Versión</b> 10" in single and "15 de marzo de 2016" in single and "gerencias" not in single


def test_examples_come_from_every_manual_in_both_languages() -> None:
    manuals = fixture_manuals()
    examples = corpus_examples([fake_manual(), *manuals])
    assert len(examples) == 2 * (1 + len(manuals))
    for manual in [fake_manual(), *manuals]:
        names = [u.name for u in manual.units]
        assert any(any(n in q for n in names) for q in examples), manual.gerencia
    assert any(q.startswith("¿") for q in examples) and any(q.startswith("Which") for q in examples)
    assert corpus_examples([fake_manual()]) == example_questions(fake_manual())


def test_tree_starts_at_the_institution_then_gerencias() -> None:
    manuals = real_manuals()
    tree = org_tree_html(manuals, selected=manuals[2].id)
    assert tree.index(INSTITUTION) < tree.index("Gerencia de Servicio al Cliente")
    assert "Fondo Social" not in tree
    for manual in manuals:
        for unit in manual.units:
            assert f"data-manual='{manual.id}' data-unit='{unit.name}'" in tree, unit.name
        assert f"<span class='node-tag'>{manual.code} v{manual.version}</span>" in tree
    # Only the selected manual's gerencia starts unfolded.
    opened = re.findall(r"<li><details open><summary><button[^>]*data-manual='([^']+)'", tree)
    assert opened == [manuals[2].id]


def test_units_are_keyed_by_manual_and_name() -> None:
    a, b = _twin_manuals()
    tree = org_tree_html([a, b])
    assert "data-manual='mof-a' data-unit='Unidad de Archivo'" in tree
    assert "data-manual='mof-b' data-unit='Unidad de Archivo'" in tree
    card_a = unit_card_html(a, a.unit("Unidad de Archivo"))
    card_b = unit_card_html(b, b.unit("Unidad de Archivo"))
    assert "Archivar A." in card_a and "Jefe Archivo A" in card_a and "Subgerencia B" not in card_a
    assert "Archivar B." in card_b and "Dirección B › Subgerencia B" in card_b


def test_cards_suggestions_and_tour_work_for_every_manual() -> None:
    for manual in real_manuals():
        steps = groups(manual)
        assert steps, manual.gerencia
        for i, unit in enumerate(steps):
            assert unit.name in tour_html(manual, i) and f"Paso {i + 1} de {len(steps)}" in tour_html(
                manual, i
            )
        for unit in manual.units:
            assert unit.name in unit_card_html(manual, unit)
            assert all(unit.name in q for q in suggested_questions(unit))
    administracion = fixture_manuals()[0]
    assert [u.name for u in groups(administracion)][:2] == [
        "Subgerencia de Recursos Humanos",
        "Subgerencia de Servicios Generales",
    ]


def test_citation_names_the_manual_code_and_version() -> None:
    manuals = real_manuals()
    fake = FakeAssistant(manuals=manuals)
    answer = fake.ask("¿Quién controla las pólizas de seguros de deuda y daños?", manual="901 0903")
    assert answer.citations and all(c.manual_code == "901 0903" for c in answer.citations)
    label = citation_label(answer.citations[0])
    assert re.fullmatch(r"901 0903 v6 · [^·]+ · función [ivx]+", label), label
    html = render_answer(answer, manuals)
    assert "Manual Gerencia de Créditos (901 0903, v6)" in html
    # An engine that leaves the edition out: the page looks it up by the manual's id.
    bare = answer.citations[0].model_copy(update={"manual_code": "", "version": None, "gerencia": ""})
    html = render_answer(answer.model_copy(update={"citations": [bare]}), manuals)
    assert "901 0903 v6 · " in html


def test_chat_filter_is_passed_to_ask_for_that_session(store: FeedbackStore) -> None:
    fake = FakeAssistant(manuals=real_manuals())
    controller = ChatController(fake, store, Settings(), stream_delay_s=0)
    filtered, other = ChatSession(), ChatSession()
    controller.set_filter(filtered, "901 0903")
    final = _run(controller, "¿Quién recibe las solicitudes de crédito?", filtered)[-1]
    _run(controller, "¿Quién recibe las solicitudes de crédito?", other)
    assert [c[2] for c in fake.calls] == ["901 0903", None]
    assert "901 0903 v6 · " in final and "901 0905" not in final
    assert controller.reset(filtered.manual).manual == "901 0903", "a new conversation keeps the filter"
    assert controller.set_filter(filtered, ALL_MANUALS).manual is None
    assert controller.set_filter(filtered, "not a code").manual is None


def test_app_serves_several_manuals(store: FeedbackStore) -> None:
    manuals = real_manuals()
    app = build_app(FakeAssistant(manuals=manuals), Settings(), store=store)
    config = app.get_config_file()
    by_id = {c.get("props", {}).get("elem_id"): c["props"] for c in config["components"]}
    assert by_id["chat-filter"]["visible"] is True
    assert [c[1] for c in by_id["chat-filter"]["choices"]] == [
        ALL_MANUALS,
        "901 0905",
        "901 0910",
        "901 0903",
        "901 0907",
    ]
    assert by_id["chat-filter"]["value"] == ALL_MANUALS
    assert [c[1] for c in by_id["onboarding-manual"]["choices"]] == [m.id for m in manuals]
    assert "Agencias" in by_id["org-chart"]["value"] and "<svg" in by_id["org-chart"]["value"]
    examples = [e["text"] for e in by_id["chatbot"]["examples"]]
    assert len(examples) == 2 * len(manuals)

    # Choosing the second manual redraws the tour, the chart, the unit list and the card for it.
    second = manuals[2]
    view = _handler(app, "pick_manual")(second.id)
    book, step, tour, _prev, _next, chart, unit_pick, card = view[:8]
    assert book["value"] == second.id and step == 0
    assert groups(second)[0].name in tour
    assert "Oficina Regional de Occidente" in chart and "Agencias" not in chart
    assert unit_pick["choices"] == [u.name for u in second.units] and unit_pick["value"] == second.gerencia
    assert "Gerente de Créditos" in card

    class Click:
        manual = second.id
        unit = "Sección de Escrituración"

    # A click on another manual's unit in the tree switches the manual; on the same manual, only the card.
    switched = _handler(app, "unit_click")(manuals[0].id, Click())
    assert switched[0]["value"] == second.id and "Sección de Escrituración" in switched[7]
    same = _handler(app, "unit_click")(second.id, Click())
    assert same[0] == gr.skip() and same[5] == gr.skip() and "Jefe Sección de Escrituración" in same[7]
    tour = _handler(app, "tour_next")(second.id, 0)
    assert tour[0] == 1 and groups(second)[1].name in tour[1]
    # A suggested question is asked of its unit's manual.
    session = ChatSession()
    _text, _tabs, chosen, session = _handler(app, "ask_suggestion")("¿Quién dirige X?", second.id, session)
    assert chosen["value"] == "901 0903" and session.manual == "901 0903"


def test_one_manual_hides_the_pickers(store: FeedbackStore) -> None:
    app = build_app(FakeAssistant(), Settings(), store=store)
    props = {c.get("props", {}).get("elem_id"): c["props"] for c in app.get_config_file()["components"]}
    assert props["chat-filter"]["visible"] is False and props["onboarding-manual"]["visible"] is False
    session = ChatSession()
    _text, _tabs, chosen, session = _handler(app, "ask_suggestion")(
        "¿Quién dirige X?", "mof-901-0905", session
    )
    assert chosen["value"] == ALL_MANUALS and session.manual is None
