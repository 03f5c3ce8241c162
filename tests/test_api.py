"""The HTTP API beside the chat (``assistant/api.py``): OpenAI-compatible chat completions with citations,
``/api/ask``, bearer tokens, rate limits, validation and the MCP tool.

Most tests drive the FastAPI app in-process (``TestClient``) with the fake assistant. The ``server`` tests at
the end start the real app (real model and index, uvicorn on a free loopback port) and talk to it with the
official ``openai`` client and an MCP client.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fakes_ui import CORPUS_MANUAL, FakeAssistant
from fastapi.testclient import TestClient

from assistant.api import SOURCES_HEADING, ApiConfigError, TokenBucket, api_workers, create_api, load_tokens
from assistant.errors import StoreUnavailableError
from assistant.models import Answer
from assistant.settings import ApiSettings, Settings
from tests.net import free_port

TOKEN = "tok-ana-0123456789abcdef"
OTHER = "tok-bot-fedcba9876543210"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
QUESTION = "¿Quién controla los valúos de los activos extraordinarios?"
QUOTE = "Controlar los valúos y revalúos de los activos extraordinarios."


class Clock:
    """A hand-moved clock for the rate limiter."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _settings(**api: Any) -> Settings:
    values: dict[str, Any] = {"tokens": f"ana:{TOKEN},bot:{OTHER}", **api}
    return Settings(api=values, answer={"max_question_chars": 200}, _env_file=None)


def _client(assistant: Any = None, clock: Any = time.monotonic, **api: Any) -> TestClient:
    app = create_api(assistant or FakeAssistant(max_question_chars=200), _settings(**api), clock=clock)
    return TestClient(app)


def _chat(question: str = QUESTION, **extra: Any) -> dict[str, Any]:
    return {"model": "mof-assistant", "messages": [{"role": "user", "content": question}], **extra}


def _events(text: str) -> list[str]:
    """The ``data:`` payloads of a server-sent-events body, in order."""
    return [line[len("data: ") :] for line in text.splitlines() if line.startswith("data: ")]


@pytest.fixture()
def fake() -> FakeAssistant:
    return FakeAssistant(max_question_chars=200)


@pytest.fixture()
def client(fake: FakeAssistant) -> Iterator[TestClient]:
    with _client(fake) as c:
        yield c


# ============================================================ OpenAI-compatible chat completions


def test_models_lists_the_one_model(client):
    response = client.get("/v1/models", headers=AUTH)

    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == ["mof-assistant"]
    assert client.get("/v1/models/mof-assistant", headers=AUTH).json()["id"] == "mof-assistant"
    assert client.get("/v1/models/gpt-4o", headers=AUTH).status_code == 404


def test_a_completion_carries_the_answer_its_sources_and_the_structured_citations(client):
    response = client.post("/v1/chat/completions", headers=AUTH, json=_chat())

    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    assert body["model"] == "mof-assistant"
    choice = body["choices"][0]
    assert choice["message"]["role"] == "assistant" and choice["finish_reason"] == "stop"
    content = choice["message"]["content"]
    assert content.startswith("Según el manual:")  # the answer as the chat shows it…
    assert (
        SOURCES_HEADING in content and "901 0905 v10 · Área de Activos Extraordinarios · función i" in content
    )
    assert body["answered"] is True
    first = body["citations"][0]
    assert first == {
        "manual": "901 0905",
        "version": 10,
        "gerencia": "Gerencia de Servicio al Cliente",
        "unit": "Área de Activos Extraordinarios",
        "section": "funciones",
        "numeral": "i",
        "quote": QUOTE,
    }
    assert body["usage"]["total_tokens"] > 0


def test_an_uncovered_question_is_answered_false_without_citations(client):
    body = client.post("/v1/chat/completions", headers=AUTH, json=_chat("xyzzy plugh?")).json()

    assert body["answered"] is False and body["citations"] == []
    assert SOURCES_HEADING not in body["choices"][0]["message"]["content"]


def test_streaming_sends_openai_chunks_then_the_citations_then_done(client):
    plain = client.post("/v1/chat/completions", headers=AUTH, json=_chat()).json()
    response = client.post("/v1/chat/completions", headers=AUTH, json=_chat(stream=True))

    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    events = _events(response.text)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == "mof-assistant" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == plain["choices"][0]["message"]["content"]  # the same message, in pieces
    assert len(chunks) > 3
    last = chunks[-1]
    assert last["choices"][0]["finish_reason"] == "stop" and last["choices"][0]["delta"] == {}
    assert last["answered"] is True and last["citations"] == plain["citations"]
    assert all("citations" not in c for c in chunks[:-1])


def test_streaming_with_include_usage_adds_a_usage_chunk(client):
    response = client.post(
        "/v1/chat/completions", headers=AUTH, json=_chat(stream=True, stream_options={"include_usage": True})
    )

    events = _events(response.text)
    usage = json.loads(events[-2])
    assert usage["choices"] == [] and usage["usage"]["total_tokens"] > 0


def test_earlier_turns_become_history_and_our_sources_list_is_left_out(client, fake):
    first = client.post("/v1/chat/completions", headers=AUTH, json=_chat()).json()
    said = first["choices"][0]["message"]["content"]
    messages = [
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": QUESTION},
        {"role": "assistant", "content": said},
        {"role": "user", "content": [{"type": "text", "text": "¿Y quién dirige esa área?"}]},
    ]

    response = client.post(
        "/v1/chat/completions", headers=AUTH, json={"model": "mof-assistant", "messages": messages}
    )

    assert response.status_code == 200
    question, history, _ = fake.calls[-1]
    assert question == "¿Y quién dirige esa área?"
    assert history == [(QUESTION, said.split("\n\n" + SOURCES_HEADING)[0])]
    assert SOURCES_HEADING not in history[0][1] and history[0][1].startswith("Según el manual:")


def test_history_keeps_only_the_latest_turns(fake):
    messages: list[dict[str, str]] = []
    for i in range(5):
        messages += [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]
    messages.append({"role": "user", "content": QUESTION})

    with _client(fake, max_history_turns=2) as c:
        c.post("/v1/chat/completions", headers=AUTH, json={"model": "mof-assistant", "messages": messages})

    assert fake.calls[-1][1] == [("q3", "a3"), ("q4", "a4")]


def test_the_manual_field_filters_to_one_manual(client, fake):
    client.post("/v1/chat/completions", headers=AUTH, json=_chat(manual="901 0905"))
    client.post("/v1/chat/completions", headers=AUTH, json=_chat())

    assert fake.calls[-2][2] == "901 0905"
    assert fake.calls[-1][2] is None


def test_the_last_message_must_be_the_users(client):
    body = {
        "model": "mof-assistant",
        "messages": [{"role": "user", "content": QUESTION}, {"role": "assistant", "content": "…"}],
    }

    response = client.post("/v1/chat/completions", headers=AUTH, json=body)

    assert response.status_code == 400
    assert "last message must be the user's" in response.json()["error"]["message"]


def test_an_unknown_model_is_refused_by_name(client, fake):
    response = client.post("/v1/chat/completions", headers=AUTH, json={**_chat(), "model": "gpt-4o"})

    assert response.status_code == 404
    assert "mof-assistant" in response.json()["error"]["message"]
    assert not fake.calls


# ============================================================ /api/ask


def test_api_ask_returns_the_answer_as_json(client, fake):
    response = client.post(
        "/api/ask",
        headers=AUTH,
        json={
            "question": "¿Y quién la dirige?",
            "history": [[QUESTION, "Según el manual: …"]],
            "manual": "901 0905",
        },
    )

    assert response.status_code == 200
    answer = Answer.model_validate(response.json())
    assert answer.answered is False or answer.citations  # a real Answer, whichever it is
    assert fake.calls[-1] == ("¿Y quién la dirige?", [(QUESTION, "Según el manual: …")], "901 0905")
    full = Answer.model_validate(client.post("/api/ask", headers=AUTH, json={"question": QUESTION}).json())
    assert full.citations[0].quote == QUOTE and full.sources


# ============================================================ auth


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", "/v1/models", None),
        ("post", "/v1/chat/completions", _chat()),
        ("post", "/api/ask", {"question": QUESTION}),
    ],
)
def test_with_no_token_configured_every_call_says_how_to_configure_one(fake, method, path, body):
    app = create_api(fake, Settings(_env_file=None))
    with TestClient(app) as c:
        response = c.request(method, path, headers={"Authorization": "Bearer anything"}, json=body)

    assert response.status_code == 401
    message = response.json()["error"]["message"]
    assert "ASSISTANT_API__TOKENS" in message and "name:token" in message
    assert not fake.calls


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer"},
        {"Authorization": f"Basic {TOKEN}"},
        {"Authorization": f"Bearer {TOKEN}x"},
        {"Authorization": f"Bearer {TOKEN[:-1]}"},
        {"Authorization": "Bearer ana"},
    ],
    ids=["none", "empty", "basic", "longer", "shorter", "name-not-token"],
)
def test_a_missing_or_wrong_token_is_refused(client, fake, headers):
    for response in (
        client.post("/v1/chat/completions", headers=headers, json=_chat()),
        client.post("/api/ask", headers=headers, json={"question": QUESTION}),
        client.get("/v1/models", headers=headers),
    ):
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert "Quejas" not in response.text and "valúos" not in response.text
    assert not fake.calls


def test_every_configured_token_is_accepted_and_the_scheme_is_case_insensitive(client):
    assert client.get("/v1/models", headers={"Authorization": f"bearer {OTHER}"}).status_code == 200
    assert client.get("/v1/models", headers={"Authorization": f"Bearer  {TOKEN} "}).status_code == 200


def test_a_body_is_not_examined_before_the_token(client):
    response = client.post(
        "/v1/chat/completions", content=b"{not json", headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 401


def test_tokens_come_from_the_setting_and_the_file(tmp_path):
    tokens_file = tmp_path / "tokens"
    tokens_file.write_text(
        "# clients\nwebui: tok-webui-0123456789\n\nbot:tok-bot-0123456789\n", encoding="utf-8"
    )

    tokens = load_tokens(ApiSettings(tokens="ana:tok-ana-0123456789", tokens_file=tokens_file))

    assert tokens == {
        "ana": "tok-ana-0123456789",
        "webui": "tok-webui-0123456789",
        "bot": "tok-bot-0123456789",
    }


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("just-a-secret-token", "entry 1 is not of the form name:token"),
        ("ana:tok-aaaaaaaaaaaaaaa1,ana:tok-aaaaaaaaaaaaaaa2", "repeats the client name"),
        ("ana:tok-aaaaaaaaaaaaaaa1,bob:tok-aaaaaaaaaaaaaaa1", "repeats a token"),
        ("ana:", "not of the form name:token"),
    ],
)
def test_malformed_tokens_stop_the_start_without_showing_the_secret(raw, expected):
    with pytest.raises(ApiConfigError) as caught:
        load_tokens(ApiSettings(tokens=raw))

    assert expected in str(caught.value)
    assert "secret" not in str(caught.value) and "tok-" not in str(caught.value)


def test_a_missing_tokens_file_is_named(tmp_path):
    with pytest.raises(ApiConfigError, match="does not exist"):
        load_tokens(ApiSettings(tokens_file=tmp_path / "nope"))


def test_tokens_never_reach_the_logs(fake, caplog):
    caplog.set_level(logging.DEBUG)
    with _client(fake) as c:
        c.post("/v1/chat/completions", headers=AUTH, json=_chat())
        c.post("/v1/chat/completions", headers=AUTH, json=_chat(stream=True))
        c.post("/api/ask", headers={"Authorization": f"Bearer {TOKEN}x"}, json={"question": QUESTION})

    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "api answered client=ana" in text  # the client is named…
    assert TOKEN not in text and OTHER not in text and TOKEN[4:] not in text  # …its token never
    assert "valúos" not in text  # nor the question, with log_questions off


# ============================================================ rate limits


def test_the_rate_limit_answers_429_with_retry_after_per_token():
    clock = Clock()
    with _client(clock=clock, rate_per_minute=6, burst=2) as c:
        assert c.get("/v1/models", headers=AUTH).status_code == 200
        assert c.post("/v1/chat/completions", headers=AUTH, json=_chat()).status_code == 200
        limited = c.post("/v1/chat/completions", headers=AUTH, json=_chat())

        assert limited.status_code == 429
        assert limited.headers["retry-after"] == "10"  # 6 per minute: one back every 10 s
        assert "Rate limit" in limited.json()["error"]["message"]
        # Another token has its own bucket.
        assert c.get("/v1/models", headers={"Authorization": f"Bearer {OTHER}"}).status_code == 200
        clock.now += 10
        assert c.get("/v1/models", headers=AUTH).status_code == 200
        assert c.get("/v1/models", headers=AUTH).status_code == 429


def test_the_token_bucket_refills_to_its_burst_only():
    clock = Clock()
    bucket = TokenBucket(rate_per_minute=60, burst=3, clock=clock)

    assert [bucket.take("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert bucket.take("a") == pytest.approx(1.0)
    clock.now += 3600
    assert [bucket.take("a") for _ in range(4)][-1] > 0  # a long pause refills 3, not 3,600


# ============================================================ validation and the assistant's errors


def test_bad_json_gets_a_clear_400(client):
    response = client.post(
        "/v1/chat/completions", headers={**AUTH, "Content-Type": "application/json"}, content=b"{not json"
    )

    assert response.status_code == 400
    assert "not valid JSON" in response.json()["error"]["message"]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/chat/completions", {"model": "mof-assistant"}, "messages"),
        ("/v1/chat/completions", {"messages": []}, "messages"),
        ("/v1/chat/completions", {"messages": [{"content": "hola"}]}, "messages.0.role"),
        ("/api/ask", {"question": 42}, "question"),
        ("/api/ask", {"history": []}, "question"),
    ],
)
def test_a_body_without_the_documented_fields_names_the_field(client, fake, path, body, field):
    response = client.post(path, headers=AUTH, json=body)

    assert response.status_code == 422
    error = response.json()["error"]
    assert error["param"] == field and f"Field '{field}'" in error["message"]
    assert not fake.calls


def test_a_json_array_is_not_a_request(client):
    response = client.post("/api/ask", headers=AUTH, json=[QUESTION])

    assert response.status_code == 400
    assert "JSON object" in response.json()["error"]["message"]


def test_the_chats_question_length_limit_applies(client, fake):
    too_long = "¿Quién atiende las quejas? " * 20  # 540 characters; the limit is 200

    for response in (
        client.post("/v1/chat/completions", headers=AUTH, json=_chat(too_long)),
        client.post("/api/ask", headers=AUTH, json={"question": too_long}),
    ):
        assert response.status_code == 413
        assert (
            "too long" in response.json()["error"]["message"] and "200" in response.json()["error"]["message"]
        )
    assert not fake.calls


def test_an_oversized_body_is_refused_before_it_is_read(client):
    body = json.dumps(_chat("x")).encode() + b" " * 300_000

    response = client.post(
        "/v1/chat/completions", headers={**AUTH, "Content-Type": "application/json"}, content=body
    )

    assert response.status_code == 413


def test_an_empty_question_is_the_assistants_400(client):
    response = client.post("/v1/chat/completions", headers=AUTH, json=_chat("   "))

    assert response.status_code == 400
    assert "Please type a question" in response.json()["error"]["message"]


def test_an_unavailable_index_is_a_503_with_its_sentence():
    class Down(FakeAssistant):
        def ask(self, question: str, history: Any = None, manual: Any = None) -> Answer:
            raise StoreUnavailableError("The Chroma server at 127.0.0.1:8000 does not answer: start it.")

    with _client(Down()) as c:
        response = c.post("/v1/chat/completions", headers=AUTH, json=_chat())

    assert response.status_code == 503
    assert "does not answer" in response.json()["error"]["message"]


def test_an_unexpected_error_is_a_500_without_details():
    class Broken(FakeAssistant):
        def ask(self, question: str, history: Any = None, manual: Any = None) -> Answer:
            raise RuntimeError("secret internals")

    with _client(Broken()) as c:
        response = c.post("/api/ask", headers=AUTH, json={"question": QUESTION})

    assert response.status_code == 500
    assert "secret internals" not in response.text


# ============================================================ concurrency


def test_the_blocking_ask_runs_in_the_thread_pool_not_the_event_loop():
    class Slow(FakeAssistant):
        def __init__(self) -> None:
            super().__init__()
            self.threads: set[str] = set()

        def ask(self, question: str, history: Any = None, manual: Any = None) -> Answer:
            self.threads.add(threading.current_thread().name)
            time.sleep(0.4)
            return super().ask(question, history, manual)

    slow = Slow()
    app = create_api(slow, _settings(workers=4))

    async def main() -> float:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as c:
            start = time.perf_counter()
            responses = await asyncio.gather(
                *(c.post("/v1/chat/completions", headers=AUTH, json=_chat()) for _ in range(4)),
                c.get("/v1/models", headers=AUTH),
            )
            assert all(r.status_code == 200 for r in responses)
            return time.perf_counter() - start

    # A fresh thread: an earlier test of the session may have left an event loop set on this one.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        elapsed = pool.submit(asyncio.run, main()).result()

    assert elapsed < 1.5  # four 0.4 s answers at once take ~0.4 s; one after another, 1.6 s
    assert threading.main_thread().name not in slow.threads


# ============================================================ docs, the Gradio mount and MCP


def test_docs_are_served_beside_the_mounted_chat(tmp_path, fake):
    import gradio as gr

    from assistant.ui import build_app

    settings = _settings()
    settings.ui.feedback_db = tmp_path / "fb.sqlite3"
    app = create_api(fake, settings)
    gr.mount_gradio_app(app, build_app(fake, settings), path="/", ssr_mode=False)
    with TestClient(app) as c:
        docs = c.get("/docs")
        schema = c.get("/openapi.json").json()
        page = c.get("/")
        models = c.get("/v1/models", headers=AUTH)

    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    assert {"/v1/chat/completions", "/v1/models", "/api/ask"} <= set(schema["paths"])
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert page.status_code == 200 and "gradio" in page.text.lower()  # the chat is still at /
    assert models.status_code == 200


def test_the_mcp_tool_is_listed_when_on_and_needs_a_token(fake):
    with _client(fake, mcp_enabled=True) as c:
        listed = c.get("/mcp/gradio_api/mcp/schema", headers=AUTH)
        refused = c.get("/mcp/gradio_api/mcp/schema")
        wrong = c.post("/mcp/gradio_api/mcp/", headers={"Authorization": "Bearer nope"}, json={})

    assert listed.status_code == 200
    tools = {t["name"]: t for t in listed.json()}
    assert list(tools) == ["ask_manual"]  # the chat's own events are not tools
    schema = tools["ask_manual"]["inputSchema"]
    assert set(schema["properties"]) == {"question", "manual"}
    assert "verbatim" in tools["ask_manual"]["description"]
    assert refused.status_code == 401 and wrong.status_code == 401


def test_the_mcp_server_is_off_by_default(client):
    assert client.get("/mcp/gradio_api/mcp/schema", headers=AUTH).status_code == 404


# ============================================================ the real app over loopback


@pytest.fixture(scope="module")
def served(real_index, real_assistant, tmp_path_factory) -> Iterator[str]:
    """The real assistant served by ``serve`` (chat + API + MCP) on a free port; yields the base URL."""
    from assistant.ui import build_app, serve

    port = free_port()
    settings = real_index.model_copy(deep=True)
    settings.ui = settings.ui.model_copy(
        update={
            "host": "127.0.0.1",
            "port": port,
            "feedback_db": tmp_path_factory.mktemp("api") / "fb.sqlite3",
        }
    )
    settings.api = _settings(rate_per_minute=60, burst=30, mcp_enabled=True).api
    app = build_app(real_assistant, settings, stream_delay_s=0)
    serve(app, settings, prevent_thread_lock=True, environ={}, assistant=real_assistant)
    url = f"http://127.0.0.1:{port}"
    try:
        yield url
    finally:
        app.close()


def _manual_text() -> str:
    return " ".join(CORPUS_MANUAL.read_text(encoding="utf-8").split())


@pytest.mark.server
@pytest.mark.integration
def test_the_openai_client_gets_cited_answers_in_spanish_and_english(served):
    import openai

    client = openai.OpenAI(base_url=f"{served}/v1", api_key=TOKEN, max_retries=0)
    manual = _manual_text()

    assert [m.id for m in client.models.list()] == ["mof-assistant"]
    for question, lead in [
        (QUESTION, "manual"),
        ("Who controls the appraisals of extraordinary assets?", "manual"),
    ]:
        reply = client.chat.completions.create(
            model="mof-assistant", messages=[{"role": "user", "content": question}]
        )
        content = reply.choices[0].message.content or ""
        extra = reply.model_extra or {}
        assert extra["answered"] is True, content
        assert "Activos Extraordinarios" in content and SOURCES_HEADING in content
        assert lead in content.lower()
        citations = extra["citations"]
        assert citations and citations[0]["manual"] == "901 0905" and citations[0]["version"] == 10
        assert any("valúos" in c["quote"] for c in citations)
        for c in citations:
            assert " ".join(c["quote"].split()) in manual  # verbatim from the manual

        stream = client.chat.completions.create(
            model="mof-assistant", messages=[{"role": "user", "content": question}], stream=True
        )
        chunks = list(stream)
        streamed = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
        assert streamed == content
        last = chunks[-1].model_extra or {}
        assert last["answered"] is True and last["citations"] == citations


@pytest.mark.server
@pytest.mark.integration
def test_the_openai_client_follows_a_conversation(served):
    import openai

    client = openai.OpenAI(base_url=f"{served}/v1", api_key=TOKEN, max_retries=0)
    first = client.chat.completions.create(
        model="mof-assistant", messages=[{"role": "user", "content": QUESTION}]
    )
    said = first.choices[0].message.content or ""

    follow = client.chat.completions.create(
        model="mof-assistant",
        messages=[
            {"role": "user", "content": QUESTION},
            {"role": "assistant", "content": said},
            {"role": "user", "content": "¿Quién es el jefe de esa área?"},
        ],
    )

    content = follow.choices[0].message.content or ""
    assert "Jefe Área de Activos Extraordinarios" in content, content
    alone = client.chat.completions.create(
        model="mof-assistant", messages=[{"role": "user", "content": "¿Quién es el jefe de esa área?"}]
    )
    assert "Jefe Área de Activos Extraordinarios" not in (alone.choices[0].message.content or "")


@pytest.mark.server
@pytest.mark.integration
def test_the_served_api_refuses_bad_tokens_and_rate_limits(served):
    import openai

    for key in ("wrong-token-0000000000", ""):
        client = openai.OpenAI(base_url=f"{served}/v1", api_key=key or "x", max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            client.chat.completions.create(
                model="mof-assistant", messages=[{"role": "user", "content": QUESTION}]
            )
    assert httpx.get(f"{served}/v1/models").status_code == 401

    limited = None
    with httpx.Client(base_url=served, headers={"Authorization": f"Bearer {OTHER}"}) as c:
        for _ in range(40):  # the bucket holds 30
            response = c.get("/v1/models")
            if response.status_code == 429:
                limited = response
                break
    assert limited is not None and int(limited.headers["retry-after"]) >= 1
    # The chat and the docs are still there.
    assert httpx.get(f"{served}/").status_code == 200
    assert httpx.get(f"{served}/docs").status_code == 200


@pytest.mark.server
@pytest.mark.integration
def test_an_mcp_client_calls_ask_manual(served):
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client

    async def main() -> tuple[list[str], str]:
        async with (
            httpx.AsyncClient(headers=AUTH, timeout=30) as http,
            streamable_http_client(f"{served}/mcp/gradio_api/mcp/", http_client=http) as (read, write, _),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            tools = [t.name for t in (await session.list_tools()).tools]
            result = await session.call_tool("ask_manual", {"question": QUESTION})
            return tools, "".join(getattr(c, "text", "") for c in result.content)

    # A fresh thread: an earlier test of the session may have left an event loop set on this one.
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        tools, text = pool.submit(asyncio.run, main()).result()

    assert tools == ["ask_manual"]
    assert "Activos Extraordinarios" in text and "valúos" in text and SOURCES_HEADING in text


@pytest.mark.parametrize(
    ("engine", "workers", "expected"),
    [("grounded", None, 1), ("llm", None, 8), ("grounded", 3, 3), ("llm", 2, 2)],
)
def test_api_workers_default_by_engine(engine: str, workers: int | None, expected: int) -> None:
    """CPU-bound grounded answers run one at a time (more threads only contend for Python's lock); answers
    that wait on an LLM server run eight at a time; a setting overrides both."""
    settings = Settings(api={"workers": workers}, answer={"engine": engine}, _env_file=None)
    assert api_workers(settings) == expected
