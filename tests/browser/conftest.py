"""Fixtures for the browser tests: headless Debian Chromium and the app served on a free loopback port.

The app runs in a thread of the test process (Gradio's ``prevent_thread_lock``). It answers with the real
assistant over an index built into a temp folder when ``assistant.chain`` is available, else with the fake;
``ASSISTANT_TEST_UI=fake`` or ``=real`` forces one.
"""

from __future__ import annotations

import os
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.net import free_port

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for fakes_ui, as in tests/

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
USERS = {"ASSISTANT_UI_USERS": "ana:clave-de-prueba"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Skip the browser tests, with the reason, when there is no Chromium to drive."""
    if CHROMIUM.exists():
        return
    skip = pytest.mark.skip(reason=f"{CHROMIUM} is missing: apt-get install -y chromium")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


@dataclass
class Served:
    """A running app: where it listens and where it stores feedback."""

    url: str
    feedback_db: Path
    real: bool


def _wait_up(url: str, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as resp:
                if resp.status < 500:
                    return
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the app did not answer at {url} within {timeout_s:.0f}s")


@pytest.fixture(scope="session")
def ui_assistant(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, bool]:
    """The assistant behind the page, and whether it is the real one."""
    choice = os.environ.get("ASSISTANT_TEST_UI", "auto")
    if choice != "fake":
        try:
            from assistant.chain import Assistant
            from assistant.indexer import build_index
            from assistant.settings import Settings
        except ImportError:
            if choice == "real":
                raise
        else:
            settings = Settings(store={"path": tmp_path_factory.mktemp("index")})
            build_index(settings)
            return Assistant.from_settings(settings), True
    from fakes_ui import FakeAssistant

    return FakeAssistant(), False


def _serve(assistant: Any, real: bool, tmp: Path, environ: dict[str, str] | None) -> Iterator[Served]:
    from assistant.settings import Settings
    from assistant.ui import build_app, serve

    port = free_port()
    settings = Settings(
        ui={
            "host": "127.0.0.1",
            "port": port,
            "feedback_db": tmp / "feedback.sqlite3",
            "auth_enabled": bool(environ),
        }
    )
    app = build_app(assistant, settings, stream_delay_s=0.005)
    serve(app, settings, prevent_thread_lock=True, environ=environ or {})
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_up(url)
        yield Served(url=url, feedback_db=settings.ui.feedback_db, real=real)
    finally:
        app.close()


@pytest.fixture(scope="session")
def served(ui_assistant: tuple[Any, bool], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The app with login off."""
    yield from _serve(*ui_assistant, tmp_path_factory.mktemp("ui"), None)


@pytest.fixture(scope="session")
def served_with_login(
    ui_assistant: tuple[Any, bool], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """The app with login on and one user from ``ASSISTANT_UI_USERS``."""
    yield from _serve(*ui_assistant, tmp_path_factory.mktemp("ui-login"), USERS)


@pytest.fixture(scope="session")
def multi_assistant() -> Any:
    """A fake assistant over three real manuals: the corpus one as parsed, and the two fixture manuals."""
    from fakes_ui import FakeAssistant, real_manuals

    return FakeAssistant(manuals=real_manuals())


@pytest.fixture(scope="session")
def served_multi(multi_assistant: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The app serving several manuals (login off)."""
    yield from _serve(multi_assistant, False, tmp_path_factory.mktemp("ui-multi"), None)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium, offline-friendly flags."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture()
def page(browser: Any) -> Iterator[Any]:
    """A fresh page (own cookies) at a desktop size."""
    context = browser.new_context(viewport={"width": 1280, "height": 1000}, locale="es-ES")
    page = context.new_page()
    page.set_default_timeout(60_000)
    yield page
    context.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """Where screenshots go (git-ignored)."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
