"""The "Cambios · Changes" tab: defaults, marked lines, the stated history, and one version only."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes_ui import FakeAssistant, fake_manual

from assistant.feedback import FeedbackStore
from assistant.ingest import load_file
from assistant.models import Manual
from assistant.parse import parse_document
from assistant.settings import Settings
from assistant.ui import build_app
from assistant.ui_changes import changes_html, default_pair, version_choices
from assistant.versions import Catalogue

ROOT = Path(__file__).resolve().parents[1]
V10 = ROOT / "corpus" / "mof-901-0905-gerencia-servicio-al-cliente-v10.txt"
V11 = ROOT / "evals" / "versions" / "mof-901-0905-gerencia-servicio-al-cliente-v11.txt"
TODAY = dt.date(2026, 1, 1)


@pytest.fixture(scope="module")
def versions() -> list[Manual]:
    return [parse_document(load_file(str(p))) for p in (V10, V11)]


@pytest.fixture()
def store(tmp_path: Path) -> Iterator[FeedbackStore]:
    s = FeedbackStore(tmp_path / "feedback.sqlite3")
    yield s
    s.close()


def test_defaults_to_previous_then_in_force(versions: list[Manual]) -> None:
    catalogue = Catalogue(versions, TODAY)
    assert default_pair(catalogue, "901 0905") == (10, 11)
    assert default_pair(Catalogue(versions, dt.date(2017, 1, 1)), "901 0905") == (10, 10)
    assert [v for _label, v in version_choices(catalogue, "901 0905")] == [10, 11]
    assert "sustituida" in version_choices(catalogue, "901 0905")[0][0]


def test_changes_are_marked_by_kind(versions: list[Manual]) -> None:
    page = changes_html(versions, "901 0905", 10, 11, TODAY)
    for kind, symbol in (
        ("added", "+"),
        ("removed", "−"),
        ("moved", "→"),
        ("reworded", "~"),
        ("renamed", "↻"),
    ):
        assert f'data-kind="{kind}"' in page and symbol in page
    moved = page.split('data-kind="moved"')
    assert any("Efectuar gestión de cobro de mora" in part.split("</li>")[0] for part in moved[1:])
    assert "Área de Servicios en Línea" in page and "Área de Canales Digitales" in page


def test_the_manual_s_own_statement_is_shown_for_the_newer_version(versions: list[Manual]) -> None:
    page = changes_html(versions, "901 0905", 10, 11, TODAY)
    assert 'data-version="11"' in page and 'data-version="10"' not in page
    assert "Creación del Área de Recuperación de Cartera" in page


def test_versions_chosen_newest_first_are_compared_oldest_first(versions: list[Manual]) -> None:
    page = changes_html(versions, "901 0905", 11, 10, TODAY)
    assert "versión 10" in page.split("→")[0] and "orden invertido" in page
    assert "distintas" in changes_html(versions, "901 0905", 10, 10, TODAY)


def test_one_version_shows_the_history_table() -> None:
    manual = parse_document(load_file(str(V10)))
    page = changes_html([manual], "901 0905", 10, 10, TODAY)
    assert "Solo hay una versión" in page and "Only one version" in page
    assert page.count('class="history-row"') == 10
    assert "data-kind" not in page


def test_changes_text_is_escaped(versions: list[Manual]) -> None:
    v11 = versions[1]
    units = [
        u.model_copy(update={"name": "<script>x</script>"})
        if u.name == "Área de Recuperación de Cartera"
        else u
        for u in v11.units
    ]
    page = changes_html([versions[0], v11.model_copy(update={"units": units})], "901 0905", 10, 11, TODAY)
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_the_app_has_the_changes_tab(versions: list[Manual], store: FeedbackStore) -> None:
    app = build_app(
        FakeAssistant(manuals=[*versions, fake_manual().model_copy(update={"code": "X"})]),
        Settings(),
        store=store,
    )
    config = json.dumps(app.config, ensure_ascii=False, default=str)
    assert "Cambios · Changes" in config and "changes-view" in config
    # A single-version app still builds the tab, with the history table instead of a diff.
    single = build_app(FakeAssistant(manuals=[versions[0]]), Settings(), store=store)
    assert "Solo hay una versión" in json.dumps(single.config, ensure_ascii=False, default=str)
