"""The admin tab in a real browser: an admin sees "Administración · Insight" with its numbers, a user sees no
trace of it (page, config, events), and the HTML report opens in Chromium with its charts."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import Served, _wait_up
from tests.net import free_port

pytestmark = pytest.mark.browser

ADMIN, ADMIN_PW = "ana", "clave-ana-7d1"
USER, USER_PW = "luis", "clave-luis-2c9"
USERS = {"ASSISTANT_UI_USERS": f"{ADMIN}:{ADMIN_PW}:admin,{USER}:{USER_PW}"}
TAB = "Administración · Insight"
UNANSWERED = [
    "¿Cuál es el salario del gerente?",
    "¿Qué salario tiene un cajero?",
    "¿Hay parqueo para visitantes?",
]


@pytest.fixture(scope="module")
def served_roles(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The app (stand-in assistant) with login on, one admin and one user, and a few questions logged."""
    from fakes_ui import FakeAssistant

    from assistant.models import Answer
    from assistant.querylog import QueryLog
    from assistant.settings import Settings
    from assistant.ui import build_app, serve

    tmp = tmp_path_factory.mktemp("ui-admin")
    port = free_port()
    settings = Settings(
        ui={"host": "127.0.0.1", "port": port, "feedback_db": tmp / "feedback.sqlite3", "auth_enabled": True}
    )
    log = QueryLog.from_settings(settings)
    assert log is not None
    for q in UNANSWERED:
        log.record(Answer(question=q, answer="No consta en el manual.", answered=False, language="es"))
    log.flush()
    app = build_app(FakeAssistant(), settings, stream_delay_s=0.005, query_log=log, environ=USERS)
    serve(app, settings, prevent_thread_lock=True, environ=USERS)
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_up(url)
        yield Served(url=url, feedback_db=settings.ui.feedback_db, real=False)
    finally:
        app.close()
        log.close()


def _login(page: Any, url: str, user: str, password: str) -> None:
    page.goto(url)
    page.wait_for_selector("input[type='password']")
    page.locator("input[type='text']").first.fill(user)
    page.fill("input[type='password']", password)
    page.keyboard.press("Enter")
    page.wait_for_selector("#chatbot")


def _ask(page: Any, question: str) -> None:
    before = page.locator("#chatbot .message-row").count()
    page.fill("#question textarea", question)
    page.click("#ask")
    page.wait_for_function(
        """n => {
            const rows = document.querySelectorAll('#chatbot .message-row');
            return rows.length >= n + 2 && !rows[rows.length - 1].innerText.includes('Buscando');
        }""",
        arg=before,
    )


def test_admin_sees_the_insight_tab_with_the_logged_questions(
    page: Any, served_roles: Served, artifacts: Path
) -> None:
    _login(page, served_roles.url, ADMIN, ADMIN_PW)
    tab = page.get_by_role("tab", name=TAB)
    tab.wait_for(timeout=30_000)
    _ask(page, "¿Cuánto gana el jefe de agencia?")  # the fake declines: one more unanswered question
    tab.click()
    page.click("#insight-refresh")
    summary = page.locator("#insight-summary")
    # Three questions logged before, one asked just now in the chat; three of the four unanswered.
    try:
        summary.get_by_text("4 preguntas").wait_for(timeout=20_000)
    finally:
        page.screenshot(path=str(artifacts / "admin-insight.png"), full_page=True)
    assert "0 respondidas" in summary.inner_text()
    assert "salario" in page.locator("#insight-topics").inner_text()
    assert page.locator("#insight-per-day").count() == 1


def _strip_of(page: Any, name: str) -> Any:
    """The ``role=tablist`` element that holds the tab button called ``name``."""
    return page.get_by_role("tab", name=name).evaluate_handle("b => b.closest('[role=tablist]')")


def test_admin_tab_is_one_more_tab_of_the_main_strip(
    page: Any, served_roles: Served, artifacts: Path
) -> None:
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    _login(page, served_roles.url, ADMIN, ADMIN_PW)
    tab = page.get_by_role("tab", name=TAB)
    tab.wait_for(timeout=30_000)
    # One strip, the insight tab last in it beside the others; no second strip under the first.
    assert page.get_by_role("tablist").count() == 1
    assert page.evaluate("([a, b]) => a !== null && a === b", [_strip_of(page, "Chat"), _strip_of(page, TAB)])
    labels = page.get_by_role("tablist").get_by_role("tab").all_inner_texts()
    assert [t.strip() for t in labels][-2:] == ["Cambios · Changes", TAB]
    # Its panel shows only while it is selected, in place of the chat's, and its select event fills it.
    assert page.locator("#chatbot").is_visible() and not page.locator("#insight-tab").is_visible()
    tab.click()
    page.locator("#insight-summary").get_by_text("preguntas").wait_for(timeout=20_000)
    assert page.locator("#insight-tab").is_visible() and not page.locator("#chatbot").is_visible()
    assert tab.get_attribute("aria-selected") == "true"
    page.locator("#insight-per-day canvas, #insight-per-day svg").first.wait_for(timeout=20_000)
    page.screenshot(path=str(artifacts / "admin-insight-strip.png"))
    page.get_by_role("tab", name="Chat").click()
    page.locator("#chatbot").wait_for(state="visible")
    assert not page.locator("#insight-tab").is_visible()
    assert tab.get_attribute("aria-selected") == "false"
    assert not errors, errors


def test_user_gets_no_trace_of_the_admin_tab(page: Any, served_roles: Served, artifacts: Path) -> None:
    _login(page, served_roles.url, USER, USER_PW)
    page.get_by_role("tab", name="Chat").wait_for()
    page.wait_for_timeout(1500)  # the per-session render has run by now (it shows nothing to this user)
    assert page.get_by_role("tab", name=TAB).count() == 0
    assert page.get_by_role("tablist").count() == 1
    assert "Insight" not in page.content()
    config = page.evaluate("() => fetch('config').then(r => r.text())")
    assert "Insight" not in config and "insight" not in config.lower()
    page.screenshot(path=str(artifacts / "user-no-insight.png"))


def test_static_config_holds_no_admin_tab(served_roles: Served) -> None:
    # Even the admin's page config has none of it: the tab exists only in an admin's own session.
    import base64

    req = urllib.request.Request(served_roles.url + "login/", method="POST")
    body = f"username={USER}&password={USER_PW}".encode()
    req.add_header("Content-Type", "application/x-www-form-urlencoded")
    with urllib.request.urlopen(req, body, timeout=10) as resp:
        cookie = "; ".join(c.split(";", 1)[0] for c in resp.headers.get_all("set-cookie") or [])
    config_req = urllib.request.Request(served_roles.url + "config", headers={"Cookie": cookie})
    with urllib.request.urlopen(config_req, timeout=10) as resp:
        config = json.loads(resp.read())
    assert config.get("username") == USER
    assert "insight" not in json.dumps(config).lower()
    del base64


def test_html_report_opens_in_chromium_with_its_charts(page: Any, tmp_path: Path, artifacts: Path) -> None:
    from datetime import UTC, datetime, timedelta

    from assistant.insight import lexical_vectorizer, render_html, summarize
    from assistant.querylog import LoggedQuestion

    now = datetime.now(UTC)
    entries = [
        LoggedQuestion(i, now - timedelta(days=i % 5), "chat", None, "es", q, i % 3 == 0, "grounded", None,
                       20.0 + i, [{"manual": "m", "manual_code": "901 0905", "version": 10, "unit": "Agencias"}])
        for i, q in enumerate(UNANSWERED * 4)
    ]  # fmt: skip
    report_file = tmp_path / "insight.html"
    report_file.write_text(
        render_html(summarize(entries, [], lexical_vectorizer, since=None)), encoding="utf-8"
    )
    page.goto(report_file.as_uri())
    charts = page.locator("figure.chart svg")
    assert charts.count() >= 3
    box = charts.first.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 100
    assert page.locator("#kpi-questions").inner_text() == "12"
    page.screenshot(path=str(artifacts / "insight-report.png"), full_page=True)
