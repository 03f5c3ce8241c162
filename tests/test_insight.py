"""Insight: unanswered questions come back grouped by topic, the report counts exactly, the HTML report is
self-contained, and only admins reach any of it (HTTP API and the admin tab)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from assistant.feedback import FeedbackStore
from assistant.insight import (
    find_topics,
    parse_since,
    render_html,
    summarize,
    topics_csv,
)
from assistant.models import Answer, Citation
from assistant.querylog import QueryLog
from assistant.settings import Settings

# Three topics the manual does not cover, each asked in several ways (and one question asked twice).
PLANTED = {
    "salario": [
        "¿Cuál es el salario del jefe de agencia?",
        "¿Cuál es el salario del gerente?",
        "¿Qué salario tiene un cajero?",
        "¿Cuál es el salario de una secretaria?",
        "¿Qué salario recibe el auxiliar de ventanilla?",
        "¿Cuánto salario gana el coordinador?",
        "¿El salario incluye bonificaciones?",
    ],
    "horario": [
        "¿Cuál es el horario de la agencia Santa Ana?",
        "¿Cuál es el horario de atención los sábados?",
        "¿Qué horario tienen los domingos?",
        "¿Cuál es el horario de ventanilla?",
        "¿Qué horario tienen las oficinas centrales?",
        "¿Cambia el horario en vacaciones?",
        "¿Cuál es el horario de la sucursal?",
    ],
    "parqueo": [
        "¿Hay parqueo para empleados?",
        "¿Hay parqueo para visitantes?",
        "¿Cuánto cuesta el parqueo del edificio?",
        "¿Hay parqueo para motos?",
        "¿Dónde queda el parqueo de los empleados?",
        "¿El parqueo es gratis?",
        "¿Se puede reservar parqueo?",
    ],
}
ALL_PLANTED = [q for qs in PLANTED.values() for q in qs]


def fake_vectorize(texts: list[str]) -> np.ndarray:
    """Three well-separated directions (one per planted topic) plus noise seeded from each text's SHA-256."""
    dim = 32
    out = np.zeros((len(texts), dim))
    for i, text in enumerate(texts):
        topic = next(k for k, (name, qs) in enumerate(PLANTED.items()) if text in qs or name in text.lower())
        seed = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")
        out[i] = np.random.default_rng(seed).normal(0, 0.15, dim)
        out[i, topic] += 1.0
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def _check_planted(topics) -> None:
    assert len(topics) == 3
    for topic in topics:
        owner = [name for name, qs in PLANTED.items() if topic.examples[0] in qs]
        assert owner, topic
        name = owner[0]
        assert all(x in PLANTED[name] for x in topic.examples), "a topic mixes questions of two topics"
        assert len(topic.examples) == 3
        assert name in topic.label.lower(), f"label {topic.label!r} does not name {name!r}"


def test_three_planted_topics_come_back_as_three_topics() -> None:
    topics = find_topics(ALL_PLANTED + PLANTED["horario"][:1], fake_vectorize)
    _check_planted(topics)
    assert [t.count for t in topics] == [8, 7, 7]  # the repeated question counts twice
    assert topics[0].examples[0] in PLANTED["horario"]


def test_no_unanswered_questions_no_topics() -> None:
    assert find_topics([], fake_vectorize) == []


@pytest.mark.integration
def test_three_planted_topics_with_the_real_e5_model(e5_embedder) -> None:
    from assistant.insight import e5_vectorizer

    _check_planted(find_topics(ALL_PLANTED, e5_vectorizer(e5_embedder)))


def test_parse_since() -> None:
    now = datetime(2025, 6, 30, 12, tzinfo=UTC)
    assert parse_since("30d", now) == now - timedelta(days=30)
    assert parse_since("2w", now) == now - timedelta(weeks=2)
    assert parse_since("2025-01-31", now) == datetime(2025, 1, 31, tzinfo=UTC)
    assert parse_since("all", now) is None
    with pytest.raises(ValueError, match="period"):
        parse_since("last month", now)


def _answer(question: str, answered: bool, unit: str | None = None, latency: float = 50.0) -> Answer:
    cites = (
        [
            Citation(
                unit=unit,
                section="funciones",
                numeral="i",
                quote="…",
                manual="mof-901",
                score=0.9,
                manual_code="901 0905",
                version=10,
            )
        ]
        if unit
        else []
    )
    return Answer(
        question=question,
        answer="respuesta",
        answered=answered,
        language="es",
        citations=cites,
        latency_ms=latency,
    )


@pytest.fixture
def logged(tmp_path: Path):
    """A log of mixed questions and a feedback store with one 👎 and one 👍, as the web chat leaves them."""
    settings = Settings(ui={"feedback_db": tmp_path / "feedback.sqlite3"})
    log = QueryLog.from_settings(settings)
    assert log is not None
    answered = [
        ("¿Quién atiende las quejas?", "Área de Atención al Cliente"),
        ("¿Quién controla los valúos?", "Área de Activos Extraordinarios"),
        ("¿Quién atiende reclamos?", "Área de Atención al Cliente"),
    ]
    for i, (q, unit) in enumerate(answered):
        log.record(_answer(q, True, unit, latency=10.0 * (i + 1)))
    for q in ALL_PLANTED:
        log.record(_answer(q, False, latency=100.0))
    log.flush()
    store = FeedbackStore(settings.ui.feedback_db)
    store.add(
        _answer("¿Quién atiende las quejas?", True, "Área de Atención al Cliente"), "down", "faltan agencias"
    )
    store.add(_answer("¿Quién controla los valúos?", True, "Área de Activos Extraordinarios"), "up")
    yield settings, log, store
    log.close()
    store.close()


def test_report_counts_exactly(logged) -> None:
    _settings, log, store = logged
    report = summarize(log.entries(), store.rows("down"), fake_vectorize, since=None, thumbs_up=1)
    assert (report.questions, report.answered, report.unanswered) == (24, 3, 21)
    assert report.by_unit == {"Área de Atención al Cliente": 2, "Área de Activos Extraordinarios": 1}
    assert report.by_manual == {"901 0905 v10": 3}
    assert report.per_day[-1][1:] == (24, 21)
    assert report.latency_p50_ms == 100.0 and report.latency_p95_ms == 100.0
    assert [r.comment for r in report.thumbs_down] == ["faltan agencias"]
    rows = topics_csv(report).splitlines()
    assert rows[0] == "topic,count,example_1,example_2,example_3" and len(rows) == 4


def test_cli_json_counts_and_html_report(logged, monkeypatch, capsys, tmp_path: Path) -> None:
    import assistant.insight as insight
    from assistant.cli import main

    settings, _log, _store = logged
    monkeypatch.setenv("ASSISTANT_UI__FEEDBACK_DB", str(settings.ui.feedback_db))
    monkeypatch.setattr(insight, "_vectorizer_from_settings", lambda s: fake_vectorize)
    html_file = tmp_path / "out" / "insight.html"
    assert main(["insight", "--since", "30d", "--json", "--html", str(html_file)]) == 0
    data = json.loads(capsys.readouterr().out)
    assert (data["questions"], data["answered"], data["thumbs_down"]) == (24, 3, 1)
    assert data["by_unit"] == {"Área de Atención al Cliente": 2, "Área de Activos Extraordinarios": 1}
    assert sorted(t["count"] for t in data["unanswered_topics"]) == [7, 7, 7]
    assert all(set(t) == {"label", "count", "examples"} for t in data["unanswered_topics"])
    page = html_file.read_text(encoding="utf-8")
    assert page.count("<svg") >= 3  # per day, refusal rate, by unit (and by manual)
    assert not re.search(r"(src|href)=['\"]?(https?:)?//", page), "the report must not load anything"
    assert "faltan agencias" in page and "salario" in page


def test_html_escapes_questions() -> None:
    report = summarize([], [], fake_vectorize, since=None)
    assert "<svg" not in render_html(report)  # no data, no empty charts
    from assistant.querylog import LoggedQuestion

    entry = LoggedQuestion(1, datetime.now(UTC), "chat", None, "es", "<script>alert(1)</script> salario", False,
                           "grounded", None, 5.0, [])  # fmt: skip
    page = render_html(summarize([entry] * 5, [], fake_vectorize, since=None))
    assert "<script>alert" not in page and "&lt;script&gt;" in page


# ---------------------------------------------------------------- the HTTP API: admins only

USERS = {"ASSISTANT_UI_USERS": "ana:clave-ana:admin,luis:clave-luis"}


def _client(settings: Settings, log: QueryLog, store: FeedbackStore, environ: dict[str, str]):
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from assistant.insight_api import insight_router

    app = FastAPI()
    app.include_router(insight_router(settings, log, store, fake_vectorize, environ=environ))
    return TestClient(app)


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_api_serves_admins_and_refuses_everyone_else_as_if_nothing_were_there(logged) -> None:
    settings, log, store = logged
    settings = settings.model_copy(update={"ui": settings.ui.model_copy(update={"auth_enabled": True})})
    client = _client(settings, log, store, USERS)
    ok = client.get("/api/insight?since=all", headers=_basic("ana", "clave-ana"))
    assert ok.status_code == 200
    assert (ok.json()["questions"], ok.json()["answered"]) == (24, 3)
    csv_resp = client.get("/api/insight/topics.csv", headers=_basic("ana", "clave-ana"))
    assert csv_resp.status_code == 200 and csv_resp.text.startswith("topic,count")
    jsonl = client.get("/api/insight/feedback.jsonl", headers=_basic("ana", "clave-ana"))
    assert [json.loads(x)["kind"] for x in jsonl.text.splitlines()] == ["feedback"]
    assert "<svg" in client.get("/api/insight/report.html", headers=_basic("ana", "clave-ana")).text
    missing = client.get("/api/no-such-route")
    for headers in ({}, _basic("luis", "clave-luis"), _basic("ana", "wrong"), {"Authorization": "Basic !!"}):
        for path in ("/api/insight", "/api/insight/topics.csv", "/api/insight/feedback.jsonl"):
            refused = client.get(path, headers=headers)
            assert refused.status_code == 404, (path, headers)
            assert refused.json() == missing.json()
            assert "www-authenticate" not in refused.headers
    assert "/api/insight" not in json.dumps(client.get("/openapi.json").json())


def test_api_has_no_admin_while_login_is_off(logged) -> None:
    settings, log, store = logged  # auth_enabled is false
    client = _client(settings, log, store, USERS)
    assert client.get("/api/insight", headers=_basic("ana", "clave-ana")).status_code == 404


def test_roles_from_env_and_file(tmp_path: Path) -> None:
    from assistant.settings import UISettings
    from assistant.ui import admin_names, load_credentials, load_users

    ui = UISettings(auth_enabled=True)
    users = load_users(ui, {"ASSISTANT_UI_USERS": "ana:secret:admin, luis:s3:cret, eva:pw:user, rui:admin"})
    assert [(u.name, u.password, u.admin) for u in users] == [
        ("ana", "secret", True),
        ("luis", "s3:cret", False),
        ("eva", "pw", False),
        ("rui", "admin", False),  # a password that happens to read "admin" is not a role
    ]
    path = tmp_path / "users.txt"
    path.write_text("# admins and users\nana:uno:admin\nluis:dos\n", encoding="utf-8")
    file_ui = UISettings(auth_enabled=True, auth_file=path)
    assert load_credentials(file_ui, {}) == [("ana", "uno"), ("luis", "dos")]
    assert admin_names(file_ui, {}) == {"ana"}
    assert admin_names(UISettings(auth_enabled=False, auth_file=path), {}) == frozenset()
