"""The real page in headless Chromium: ask, read citations, rate, explore the organisation, log in."""

from __future__ import annotations

import re
import sqlite3
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from conftest import USERS, Served

from assistant.ui import groups

pytestmark = [pytest.mark.browser, pytest.mark.server]


def _ask(page: Any, question: str) -> Any:
    """Type a question, send it with Enter, and return the finished answer bubble."""
    before = page.locator("#chatbot details.cite").count()
    page.fill("#question textarea", question)
    page.press("#question textarea", "Enter")
    # The answer is finished when its citations are rendered (they come after the streamed text).
    page.wait_for_function(
        "n => document.querySelectorAll('#chatbot details.cite').length > n", arg=before, timeout=120_000
    )
    return page.locator("#chatbot .message-row.bot-row, #chatbot [data-testid='bot']").last


def _open(page: Any, served: Served) -> None:
    page.goto(served.url)
    page.wait_for_selector("#chatbot")
    page.wait_for_selector("#mof-header")


def test_header_shows_manual_edition(page: Any, served: Served) -> None:
    _open(page, served)
    header = page.inner_text("#mof-header")
    assert "901 0905" in header
    assert re.search(r"Versión\s+10", header)
    assert "15 de marzo de 2016" in header


def test_spanish_question_gets_cited_answer(page: Any, served: Served, artifacts: Path) -> None:
    _open(page, served)
    _ask(page, "¿Quién atiende las quejas y denuncias de los clientes?")
    cite = page.locator("#chatbot details.cite").first
    assert "Atender y solventar las quejas y denuncias de los clientes" in cite.inner_text()
    cite.locator("summary").click()
    excerpt = cite.locator(".excerpt-text")
    excerpt.wait_for(state="visible")
    assert excerpt.inner_text().strip()
    assert page.input_value("#question textarea") == "", "the box is cleared for the next question"
    page.screenshot(path=str(artifacts / "chat-es.png"), full_page=True)


def test_english_follow_up_and_new_conversation(page: Any, served: Served, artifacts: Path) -> None:
    _open(page, served)
    _ask(page, "What are the functions of the Área de Ventas?")
    cites = page.locator("#chatbot details.cite")
    assert "Área de Ventas" in cites.first.inner_text()
    _ask(page, "Which positions are in the Área de Servicios en Línea?")
    page.screenshot(path=str(artifacts / "chat-en.png"), full_page=True)
    assert page.locator("#chatbot details.cite").count() >= 2
    page.click("#new-chat")
    page.wait_for_function("() => document.querySelectorAll('#chatbot details.cite').length === 0")


def test_too_long_question_is_refused_by_the_server(page: Any, served: Served) -> None:
    _open(page, served)
    page.fill("#question textarea", "¿" + "quejas " * 400 + "?")
    page.press("#question textarea", "Enter")
    # The refusal names the server's limit (2000 by default), whatever its wording.
    page.wait_for_function(
        "() => /⚠[^\\n]*2[,.\\u00a0\\u202f]?000/.test(document.querySelector('#chatbot').innerText)"
    )
    assert page.locator("#chatbot details.cite").count() == 0


def test_thumbs_down_with_comment_is_stored(page: Any, served: Served) -> None:
    _open(page, served)
    question = "¿Qué puestos tiene el Área de Activos Extraordinarios?"
    _ask(page, question)
    # The thumbs carry a translated label; the context runs in Spanish ("No me gusta").
    page.locator(
        "#chatbot button[aria-label='Dislike'], #chatbot button[aria-label='No me gusta']"
    ).last.click()
    page.wait_for_selector("#comment textarea")
    page.fill("#comment textarea", "Faltan los puestos de la Secretaria")
    page.click("#send-comment")
    deadline = time.monotonic() + 15
    rows: list[tuple[str, str, str]] = []
    while time.monotonic() < deadline:
        with sqlite3.connect(served.feedback_db) as conn:
            rows = conn.execute(
                "SELECT rating, comment, citations FROM feedback WHERE question = ?", (question,)
            ).fetchall()
        if rows and rows[0][1]:
            break
        time.sleep(0.2)
    assert rows, "the 👎 click stored no row"
    rating, comment, citations = rows[0]
    assert (rating, comment) == ("down", "Faltan los puestos de la Secretaria")
    assert "Área de Activos Extraordinarios" in citations


def test_onboarding_tree_card_tour_and_suggestion(
    page: Any, served: Served, ui_assistant: tuple[Any, bool], artifacts: Path
) -> None:
    manual = ui_assistant[0].manuals[0]
    six = groups(manual)
    assert len(six) == 6
    _open(page, served)
    page.get_by_role("tab", name=re.compile("Conoce la organización")).click()
    tree = page.locator("#org-tree")
    tree.wait_for(state="visible")
    for unit in six:
        assert tree.locator(f"button[data-unit='{unit.name}']").is_visible(), unit.name
    # The org chart picture shows every unit of the manual as a box.
    chart = page.locator("#org-chart svg")
    for unit in manual.units:
        assert chart.locator(f"g[data-unit='{unit.name}']").count() == 1, unit.name
    target = six[3]
    tree.locator(f"button[data-unit='{target.name}']").click()
    page.wait_for_function(
        "name => document.querySelector('#unit-card h3').innerText.includes(name)", arg=target.name
    )
    card = page.inner_text("#unit-card")
    assert target.objective[:40] in card
    if target.functions:
        assert target.functions[0].text[:40] in card
    # The guided tour steps forward and back through the groups.
    assert six[0].name in page.inner_text("#tour")
    page.click("#tour-next")
    page.wait_for_function(
        "name => document.querySelector('#tour').innerText.includes(name)", arg=six[1].name
    )
    page.click("#tour-prev")
    page.wait_for_function(
        "name => document.querySelector('#tour').innerText.includes(name)", arg=six[0].name
    )
    page.screenshot(path=str(artifacts / "onboarding.png"), full_page=True)
    # A suggested question opens in the chat and is answered there.
    suggestion = page.locator("#suggest-0")
    asked = suggestion.inner_text().strip()
    assert target.name in asked
    suggestion.click()
    page.wait_for_selector("#chatbot details.cite", timeout=120_000)
    assert asked in page.inner_text("#chatbot")


def test_login_refuses_strangers_and_admits_users(
    page: Any, served_with_login: Served, artifacts: Path
) -> None:
    url = served_with_login.url
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(url + "config", timeout=10)
    assert refused.value.code in (401, 403)
    page.goto(url)
    page.wait_for_selector("input[type='password']")
    assert page.locator("#chatbot").count() == 0
    user, password = USERS["ASSISTANT_UI_USERS"].split(":", 1)
    page.locator("input[type='text']").first.fill(user)
    page.fill("input[type='password']", "wrong")
    page.keyboard.press("Enter")
    page.wait_for_selector(":text('Incorrect'), :text('incorrect'), :text('Invalid'), :text('invalid')")
    assert page.locator("#chatbot").count() == 0
    page.screenshot(path=str(artifacts / "login-refused.png"))
    # A failed attempt clears the form, as a login page should.
    page.locator("input[type='text']").first.fill(user)
    page.fill("input[type='password']", password)
    page.keyboard.press("Enter")
    page.wait_for_selector("#chatbot")
    _ask(page, "¿Quién atiende las quejas y denuncias de los clientes?")


def _choose(page: Any, dropdown: str, option: str) -> None:
    """Pick ``option`` (its visible label) in the Gradio dropdown with elem_id ``dropdown``."""
    page.locator(f"#{dropdown} input").click()
    page.get_by_role("option", name=option, exact=True).click()


def test_several_manuals_header_chart_and_chat_filter(
    page: Any, served_multi: Served, multi_assistant: Any, artifacts: Path
) -> None:
    manuals = multi_assistant.manuals
    first, second = manuals[0], next(m for m in manuals if m.code == "901 0903")
    _open(page, served_multi)
    header = page.inner_text("#mof-header")
    for manual in manuals:
        assert manual.gerencia in header and manual.code in header and f"v{manual.version}" in header
    # The onboarding tab: switching the manual redraws the SVG org chart with the other gerencia's units.
    page.get_by_role("tab", name=re.compile("Conoce la organización")).click()
    chart = page.locator("#org-chart svg")
    chart.wait_for(state="visible")
    assert chart.locator(f"g[data-unit='{first.gerencia}']").count() == 1
    _choose(page, "onboarding-manual", second.label)
    first_level = [u.name for u in second.units if u.parent == second.gerencia]
    page.wait_for_selector(f"#org-chart svg g[data-unit='{first_level[0]}']")
    assert chart.locator(f"g[data-unit='{second.gerencia}']").count() == 1
    assert chart.locator(f"g[data-unit='{first.gerencia}']").count() == 0
    assert second.gerencia in page.inner_text("#unit-card h3")
    assert groups(second)[0].name in page.inner_text("#tour")
    # A box of the chart opens its unit's card.
    chart.locator(f"g[data-unit='{first_level[1]}']").click()
    page.wait_for_function(
        "name => document.querySelector('#unit-card h3').innerText.includes(name)", arg=first_level[1]
    )
    page.locator("#org-chart").scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "onboarding-orgchart.png"), full_page=True)
    # The chat filter restricts the session's questions to one manual.
    page.get_by_role("tab", name=re.compile("Chat")).click()
    _choose(page, "chat-filter", second.label)
    time.sleep(0.5)  # the filter is stored with the session before the question is sent
    _ask(page, "¿Quién recibe las solicitudes de crédito?")
    cites = page.locator("#chatbot details.cite")
    assert "901 0903 v6 · " in cites.first.inner_text()
    assert multi_assistant.calls[-1][2] == "901 0903"
    page.screenshot(path=str(artifacts / "chat-filtered.png"), full_page=True)
