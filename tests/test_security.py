"""Security of the served web chat: login really gates the page data and the API, the file routes do not
serve files from disk, and logs at INFO hold neither secrets nor questions unless ``log_questions`` is on.

The app is served in a thread of the test process on a free loopback port (as in tests/browser/conftest.py)
with the fake assistant, so these tests need no model; the logging tests use the real assistant.
"""

from __future__ import annotations

import logging
import socket
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import REPO_ROOT
from tests.net import free_port

sys.path.insert(0, str(Path(__file__).resolve().parent))  # fakes_ui, as the UI tests import it

pytestmark = pytest.mark.server

USER, PASSWORD = "ana", "clave-de-prueba-9f3"
PYPROJECT_MARK = "[project]"
PASSWD_MARK = "root:x:0:0"


@dataclass
class Served:
    url: str
    login: bool


def _wait_up(url: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the app did not answer at {url} within {timeout_s:.0f}s")


def _serve(tmp: Path, login: bool) -> Iterator[Served]:
    from fakes_ui import FakeAssistant

    from assistant.settings import Settings
    from assistant.ui import build_app, serve

    port = free_port()
    settings = Settings(
        ui={"host": "127.0.0.1", "port": port, "feedback_db": tmp / "fb.sqlite3", "auth_enabled": login}
    )
    app = build_app(FakeAssistant(), settings, stream_delay_s=0)
    serve(app, settings, prevent_thread_lock=True, environ={"ASSISTANT_UI_USERS": f"{USER}:{PASSWORD}"})
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_up(url + "/")
        yield Served(url=url, login=login)
    finally:
        app.close()


@pytest.fixture(scope="module")
def with_login(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from _serve(tmp_path_factory.mktemp("sec-login"), True)


@pytest.fixture(scope="module")
def without_login(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from _serve(tmp_path_factory.mktemp("sec-open"), False)


def _client(served: Served) -> httpx.Client:
    return httpx.Client(base_url=served.url, timeout=10, follow_redirects=False)


def _logged_in(served: Served) -> httpx.Client:
    client = _client(served)
    response = client.post("/login", data={"username": USER, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return client


# ============================================================ login


PROTECTED_GETS = ["/config", "/gradio_api/info", "/gradio_api/queue/status"]
PROTECTED_POSTS: list[tuple[str, Any]] = [
    ("/gradio_api/call/chat", {"data": ["¿Quién atiende las quejas?", None]}),
    ("/gradio_api/run/chat", {"data": ["¿Quién atiende las quejas?", None]}),
    (
        "/gradio_api/queue/join",
        {"data": ["¿Quién atiende las quejas?", None], "fn_index": 0, "session_hash": "x1"},
    ),
    ("/gradio_api/upload", None),
]


@pytest.mark.parametrize("path", PROTECTED_GETS)
def test_without_login_the_page_data_is_refused(with_login, path):
    response = _client(with_login).get(path)

    assert response.status_code == 401
    assert "Quejas" not in response.text and "Gerencia" not in response.text


@pytest.mark.parametrize(("path", "body"), PROTECTED_POSTS, ids=[p for p, _ in PROTECTED_POSTS])
def test_without_login_the_api_is_refused(with_login, path, body):
    response = _client(with_login).post(path, json=body)

    assert response.status_code == 401
    assert "event_id" not in response.text


def test_without_login_the_page_shell_holds_no_manual_content(with_login):
    response = _client(with_login).get("/")

    assert response.status_code == 200  # the login form is rendered by the page's script
    for secret in ("Área de Atención al Cliente", "quejas", "Gerente Servicio al Cliente"):
        assert secret not in response.text


def test_wrong_password_is_refused_and_sets_no_session(with_login):
    client = _client(with_login)
    response = client.post("/login", data={"username": USER, "password": PASSWORD + "x"})

    assert response.status_code >= 400
    assert client.get("/config").status_code == 401
    assert not any(name.startswith("access-token") for name in client.cookies)


def test_after_login_the_same_calls_are_served(with_login):
    """The positive control: the refusals above come from the login, not from broken routes."""
    client = _logged_in(with_login)

    assert client.get("/config").status_code == 200
    assert "/chat" in client.get("/gradio_api/info").text
    response = client.post("/gradio_api/call/chat", json={"data": ["¿Quién atiende las quejas?", None]})
    assert response.status_code == 200 and "event_id" in response.json()


# ============================================================ path traversal


TRAVERSALS = [
    "/file=/etc/passwd",
    "/gradio_api/file=/etc/passwd",
    "/gradio_api/file=../../etc/passwd",
    "/gradio_api/file=..%2f..%2f..%2f..%2fetc%2fpasswd",
    "/file=..%2f..%2fetc%2fpasswd",
    "/gradio_api/file=%2fetc%2fpasswd",
    "/static/../../pyproject.toml",
    "/static/..%2f..%2fpyproject.toml",
    "/assets/..%2f..%2f..%2fpyproject.toml",
    f"/gradio_api/file={REPO_ROOT}/pyproject.toml",
    f"/gradio_api/file={REPO_ROOT}/.env",
    f"/gradio_api/file={REPO_ROOT}/data/feedback.sqlite3",
    "/gradio_api/file=pyproject.toml",
    "/gradio_api/file=app.py",
    "/gradio_api/file=corpus/mof-901-0905-gerencia-servicio-al-cliente-v10.txt",
    "/gradio_api/file=/proc/self/environ",
    "/gradio_api/proxy=http://127.0.0.1:22/",
]


def _assert_not_served(response: httpx.Response) -> None:
    body = response.text
    assert PASSWD_MARK not in body
    assert PYPROJECT_MARK not in body and "langchain" not in body
    assert "def main" not in body and "CÓDIGO" not in body and "ASSISTANT_" not in body
    assert response.status_code in {400, 401, 403, 404}, (response.status_code, body[:200])


def _raw_get(served: Served, path: str) -> tuple[int, str]:
    """GET a path byte for byte (httpx would resolve ``..`` segments before sending them)."""
    host, port = served.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    text = data.decode("utf-8", "replace")
    return int(text.split(" ", 2)[1]), text


@pytest.mark.parametrize("path", TRAVERSALS)
def test_file_routes_do_not_serve_files_from_disk_without_login(without_login, path):
    response = _client(without_login).get(path)

    _assert_not_served(response)


@pytest.mark.parametrize("path", TRAVERSALS)
def test_file_routes_do_not_serve_files_from_disk_even_to_a_logged_in_user(with_login, path):
    response = _logged_in(with_login).get(path)

    _assert_not_served(response)


@pytest.mark.parametrize(
    "path",
    ["/static/../../pyproject.toml", "/file=../../etc/passwd", "/gradio_api/file=../../../../../../etc/passwd",
     "/assets/../../../pyproject.toml", "/gradio_api/file=../pyproject.toml"],
)  # fmt: skip
def test_unnormalised_dot_segments_sent_raw_are_refused(without_login, path):
    status, text = _raw_get(without_login, path)

    assert status in {400, 403, 404}, text[:300]
    assert PASSWD_MARK not in text and PYPROJECT_MARK not in text


def test_traversal_checks_can_see_a_served_file(without_login):
    """The positive control: a file the app does serve comes back, so a 200 with content would be seen."""
    response = _client(without_login).get("/theme.css")
    status, raw = _raw_get(without_login, "/theme.css")

    assert response.status_code == 200 and "--primary" in response.text
    assert status == 200 and "--primary" in raw


# ============================================================ logs


FAKE_SECRET = "sk-live-51HfakeSECRETcanary0000"


@pytest.mark.integration
def test_info_logs_hold_neither_the_question_nor_a_secret_in_it(real_assistant, tmp_path, caplog):
    from assistant.feedback import FeedbackStore
    from assistant.ui import ChatController, ChatSession

    question = f"Mi clave es {FAKE_SECRET}. ¿Quién atiende las quejas de los clientes?"
    assert real_assistant.settings.log_questions is False
    controller = ChatController(
        real_assistant, FeedbackStore(tmp_path / "fb.sqlite3"), real_assistant.settings, stream_delay_s=0
    )
    caplog.set_level(logging.INFO)

    session = ChatSession()
    list(controller.respond(question, session))
    list(controller.respond(FAKE_SECRET * 200, session))  # rejected: too long

    assert caplog.records, "nothing was logged at all: the check below would be empty"
    assert any("answered chars=" in r.getMessage() for r in caplog.records)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert FAKE_SECRET not in text
    assert "quejas" not in text


@pytest.mark.integration
def test_with_log_questions_on_the_question_is_logged(real_assistant, tmp_path, caplog, monkeypatch):
    """The positive control for the test above: the capture sees questions when they are logged."""
    from assistant.feedback import FeedbackStore
    from assistant.ui import ChatController, ChatSession

    monkeypatch.setattr(real_assistant.settings, "log_questions", True)
    controller = ChatController(
        real_assistant, FeedbackStore(tmp_path / "fb.sqlite3"), real_assistant.settings, stream_delay_s=0
    )
    caplog.set_level(logging.INFO)
    session = ChatSession()
    list(controller.respond("¿Quién atiende las quejas?", session))

    assert "quejas" in "\n".join(r.getMessage() for r in caplog.records)


@pytest.mark.integration
def test_llm_api_key_never_reaches_the_logs_or_the_answer(real_index, caplog):
    from pydantic import SecretStr

    from assistant.chain import Assistant

    settings = real_index.model_copy(deep=True)
    settings.answer.engine = "llm"
    settings.llm.api_key = SecretStr(FAKE_SECRET)
    settings.llm.base_url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens: the call fails
    settings.llm.timeout_s = 3
    caplog.set_level(logging.INFO)

    assistant = Assistant.from_settings(settings)
    answer = assistant.ask("¿Quién atiende las quejas?")

    assert answer.fallback_reason  # the failure path, the one that logs, was taken
    assert any(r.levelno >= logging.WARNING for r in caplog.records)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert FAKE_SECRET not in text
    assert FAKE_SECRET not in answer.model_dump_json()
    assert FAKE_SECRET not in repr(settings) and FAKE_SECRET not in str(settings.llm)
