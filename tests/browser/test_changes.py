"""The "Cambios · Changes" tab in headless Chromium: two versions of two manuals, moved lines marked."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Served, _serve

pytestmark = [pytest.mark.browser, pytest.mark.server]

ROOT = Path(__file__).resolve().parents[2]
FILES = [
    ROOT / "corpus" / "mof-901-0905-gerencia-servicio-al-cliente-v10.txt",
    ROOT / "evals" / "versions" / "mof-901-0905-gerencia-servicio-al-cliente-v11.txt",
    ROOT / "evals" / "manuals" / "gerencia-creditos" / "manual.txt",
    ROOT / "evals" / "versions" / "mof-901-0903-gerencia-creditos-v7.txt",
]


@pytest.fixture(scope="module")
def served_versions(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The app over a fake assistant serving v10 + v11 and v6 + v7, parsed from the fixtures."""
    from fakes_ui import FakeAssistant

    from assistant.ingest import load_file
    from assistant.parse import parse_document

    assistant = FakeAssistant(manuals=[parse_document(load_file(str(p))) for p in FILES])
    yield from _serve(assistant, False, tmp_path_factory.mktemp("ui-versions"), None)


def _choose(page: Any, dropdown: str, option: str | re.Pattern[str]) -> None:
    page.locator(f"#{dropdown} input").click()
    page.get_by_role("option", name=option).click()


def test_changes_tab_marks_a_moved_function(page: Any, served_versions: Served, artifacts: Path) -> None:
    page.goto(served_versions.url)
    page.wait_for_selector("#chatbot")
    page.get_by_role("tab", name=re.compile("Cambios")).click()
    view = page.locator("#changes-view")
    # Default: the version before the one in force → the one in force, of the first manual with several.
    assert "versión 10" in view.inner_text() and "versión 11" in view.inner_text()
    moved = view.locator("li[data-kind='moved']", has_text="Efectuar gestión de cobro de mora")
    moved.wait_for()
    assert moved.is_visible()
    assert "→" in moved.inner_text() and "Área de Recuperación de Cartera" in moved.inner_text()
    assert "rgb(29, 78, 216)" in moved.evaluate("e => getComputedStyle(e).borderLeftColor")
    renamed = view.locator("li[data-kind='renamed']")
    assert "Área de Canales Digitales" in renamed.inner_text()
    assert view.locator("tr.history-row[data-version='11']").is_visible()
    page.screenshot(path=str(artifacts / "changes-tab.png"), full_page=True)

    # Another manual: its own versions and its own moved lines.
    _choose(page, "changes-manual", re.compile("901 0903"))
    page.wait_for_function(
        "() => document.querySelector('#changes-view').innerText.includes('Preparar la agenda')"
    )
    moved = view.locator("li[data-kind='moved']", has_text="Preparar la agenda")
    assert "Gerencia de Créditos" in moved.inner_text()
    assert view.locator("li[data-kind='removed']", has_text="Unidad de Secretaría del Comité").count() >= 1
