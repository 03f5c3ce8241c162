"""The question log: every question is kept with what became of it, writes never slow or fail an answer,
and concurrent writers (threads, processes, on SQLite and on a real PostgreSQL) lose nothing."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from assistant.models import Answer, Citation
from assistant.querylog import QueryLog, question_log_url
from assistant.settings import Settings
from tests.conftest import REPO_ROOT
from tests.pg import pg_server, pg_url  # noqa: F401  (fixtures)

sys.path.insert(0, str(Path(__file__).resolve().parent))  # fakes_ui, as the UI tests import it


def answer(
    question: str = "¿Quién atiende las quejas?", answered: bool = True, unit: str = "Agencias"
) -> Answer:
    citations = (
        [
            Citation(
                unit=unit,
                section="funciones",
                numeral="iv",
                quote="Atender…",
                manual="mof-901",
                score=0.9,
                manual_code="901 0905",
                version=10,
                gerencia="Gerencia de Servicio al Cliente",
            ),
            Citation(
                unit=unit,
                section="objetivo",
                numeral=None,
                quote="Promover…",
                manual="mof-901",
                score=0.8,
                manual_code="901 0905",
                version=10,
                gerencia="Gerencia de Servicio al Cliente",
            ),
        ]
        if answered
        else []
    )
    return Answer(
        question=question,
        answer="…",
        answered=answered,
        language="es",
        citations=citations,
        engine="grounded",
        latency_ms=42.0,
    )


@pytest.fixture
def qlog(tmp_path: Path):
    log = QueryLog(tmp_path / "q" / "questions.sqlite3")
    yield log
    log.close()


def test_entry_keeps_time_language_question_outcome_citations_engine_latency(qlog: QueryLog) -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    assert qlog.record(answer(), user="ana", channel="api")
    assert qlog.record(answer("¿Cuánto gana un cajero?", answered=False))
    assert qlog.flush()
    first, second = qlog.entries()
    assert before <= first.created_at <= datetime.now(UTC)
    assert (first.channel, first.user, first.language, first.engine) == ("api", "ana", "es", "grounded")
    assert first.question == "¿Quién atiende las quejas?" and first.answered
    assert first.latency_ms == 42.0
    # Two lines of one unit of one manual: cited once.
    assert first.cited == [
        {"manual": "mof-901", "manual_code": "901 0905", "version": 10,
         "gerencia": "Gerencia de Servicio al Cliente", "unit": "Agencias"}
    ]  # fmt: skip
    assert first.units == ["Agencias"] and first.manuals == ["901 0905 v10"]
    assert (second.channel, second.user, second.answered, second.cited) == ("chat", None, False, [])


def test_sqlite_log_is_in_wal_mode(qlog: QueryLog) -> None:
    import sqlite3

    qlog.record(answer())
    qlog.flush()
    with sqlite3.connect(Path(qlog.url.removeprefix("sqlite:///"))) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"


def test_record_returns_at_once_while_the_database_is_slow(qlog: QueryLog, monkeypatch) -> None:
    real_write = qlog._write

    def slow_write(batch):
        time.sleep(0.3)
        real_write(batch)

    monkeypatch.setattr(qlog, "_write", slow_write)
    start = time.perf_counter()
    for i in range(50):
        assert qlog.record(answer(f"q{i}"))
    assert time.perf_counter() - start < 0.2  # 50 answers were not held up by 0.3 s writes
    assert qlog.flush()
    assert qlog.count() == 50


def test_write_error_is_logged_and_never_raised(tmp_path: Path, caplog) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    log = QueryLog(blocker / "questions.sqlite3")  # its folder cannot be created
    caplog.set_level(logging.ERROR, logger="assistant.querylog")
    assert log.record(answer()) is True  # queued: the answer goes out
    assert log.flush()
    assert log.dropped == 1
    assert "could not be written" in caplog.text
    log.close()


def test_full_queue_drops_with_a_warning_instead_of_waiting(tmp_path: Path, monkeypatch, caplog) -> None:
    log = QueryLog(tmp_path / "questions.sqlite3", queue_size=1)
    gate = threading.Event()
    monkeypatch.setattr(log, "_write", lambda batch: gate.wait(10))
    caplog.set_level(logging.WARNING, logger="assistant.querylog")
    results = [log.record(answer(f"q{i}")) for i in range(5)]
    gate.set()
    assert log.flush()
    assert results[0] is True and False in results
    assert "queue is full" in caplog.text
    log.close()


def test_purge_and_retention(qlog: QueryLog, monkeypatch) -> None:
    import assistant.querylog as querylog

    old = datetime(2024, 1, 10, 12, 0)
    monkeypatch.setattr(querylog, "utc_now", lambda: old)
    qlog.record(answer("vieja"))
    qlog.flush()
    monkeypatch.undo()
    qlog.record(answer("nueva"))
    qlog.flush()
    assert qlog.purge(datetime(2024, 1, 11, tzinfo=UTC)) == 1
    assert [e.question for e in qlog.entries()] == ["nueva"]
    assert [e.question for e in qlog.entries(since=datetime(2025, 1, 1, tzinfo=UTC))] == ["nueva"]


def test_retention_days_delete_old_entries_on_write(tmp_path: Path, monkeypatch) -> None:
    import assistant.querylog as querylog

    log = QueryLog(tmp_path / "questions.sqlite3", retention_days=30)
    monkeypatch.setattr(
        querylog, "utc_now", lambda: datetime.now(UTC).replace(tzinfo=None) - timedelta(days=40)
    )
    log.record(answer("hace 40 días"))
    log.flush()
    monkeypatch.undo()
    log._next_purge = 0.0  # the next batch runs the retention again
    log.record(answer("hoy"))
    log.flush()
    assert [e.question for e in log.entries()] == ["hoy"]
    log.close()


def test_cli_purge_before_date(tmp_path: Path, monkeypatch, capsys) -> None:
    from assistant.cli import main

    monkeypatch.setenv("ASSISTANT_UI__FEEDBACK_DB", str(tmp_path / "feedback.sqlite3"))
    log = QueryLog(question_log_url(Settings()))
    log.record(answer())
    log.flush()
    assert main(["insight", "purge", "--before", "2999-01-01"]) == 0
    assert "deleted 1 question(s)" in capsys.readouterr().out
    assert log.count() == 0
    log.close()


def test_log_sits_beside_the_feedback_database_or_at_the_shared_url(tmp_path: Path) -> None:
    settings = Settings(ui={"feedback_db": tmp_path / "fb.sqlite3"})
    assert question_log_url(settings) == f"sqlite:///{tmp_path / 'questions.sqlite3'}"
    shared = Settings(insight={"database_url": "postgresql+psycopg://u:secret@db/mof"})
    assert question_log_url(shared) == "postgresql+psycopg://u:secret@db/mof"
    assert "secret" not in repr(QueryLog(question_log_url(shared)))
    assert QueryLog.from_settings(Settings(insight={"enabled": False})) is None


def test_web_chat_logs_every_answer_and_the_user_only_with_login(tmp_path: Path) -> None:
    from fakes_ui import FakeAssistant

    from assistant.feedback import FeedbackStore
    from assistant.ui import ChatController, ChatSession

    for login, expected_user in ((True, "ana"), (False, None)):
        settings = Settings(ui={"feedback_db": tmp_path / f"{login}.sqlite3", "auth_enabled": login})
        store = FeedbackStore(settings.ui.feedback_db)
        chat = ChatController(FakeAssistant(), store, settings, stream_delay_s=0)
        chat.query_log = QueryLog(tmp_path / f"q-{login}.sqlite3")
        request = SimpleNamespace(username="ana" if login else None)
        for q in ("¿Quién atiende las quejas y denuncias de los clientes?", "¿Cuánto gana un cajero?"):
            list(chat.respond(q, ChatSession(), request))  # type: ignore[arg-type]
        chat.query_log.flush()
        entries = chat.query_log.entries()
        assert [e.user for e in entries] == [expected_user] * 2
        assert all(e.channel == "chat" for e in entries)
        chat.query_log.close()
        store.close()


def test_chat_answers_even_when_the_log_fails(tmp_path: Path, monkeypatch) -> None:
    from fakes_ui import FakeAssistant

    from assistant.feedback import FeedbackStore
    from assistant.ui import ChatController, ChatSession

    settings = Settings(ui={"feedback_db": tmp_path / "fb.sqlite3"})
    chat = ChatController(FakeAssistant(), FeedbackStore(settings.ui.feedback_db), settings, stream_delay_s=0)
    chat.query_log = QueryLog(tmp_path / "q.sqlite3")
    monkeypatch.setattr(
        chat.query_log, "_write", lambda batch: (_ for _ in ()).throw(RuntimeError("disk full"))
    )
    *_, (messages, _session) = chat.respond(
        "¿Quién atiende las quejas y denuncias de los clientes?", ChatSession()
    )
    assert "Área de Atención al Cliente" in messages[-1]["content"]
    chat.query_log.flush()
    assert chat.query_log.dropped == 1
    chat.query_log.close()


# ---------------------------------------------------------------- concurrency, on SQLite and PostgreSQL

THREADS, PER_THREAD = 6, 40
PROCESSES, PER_PROCESS = 4, 60

_WORKER = """
import sys
from assistant.models import Answer
from assistant.querylog import QueryLog
url, tag, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
log = QueryLog(url)
for i in range(n):
    log.record(Answer(question=f"{tag}-{i}", answer="-", answered=i % 2 == 0, language="es"), channel="api")
log.close()
print(log.dropped)
"""


def _threads_lose_nothing(url: str) -> None:
    # Two logs on one database stand in for two replicas; each is written by several threads at once.
    logs = [QueryLog(url), QueryLog(url)]
    barrier = threading.Barrier(THREADS * len(logs))

    def work(log: QueryLog, n: int) -> None:
        barrier.wait()
        for i in range(PER_THREAD):
            assert log.record(answer(f"t{n}-{i}", answered=i % 3 != 0))

    threads = [
        threading.Thread(target=work, args=(log, k * THREADS + n))
        for k, log in enumerate(logs)
        for n in range(THREADS)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for log in logs:
        assert log.flush()
    entries = logs[0].entries()
    total = THREADS * len(logs) * PER_THREAD
    assert len(entries) == total
    assert len({e.question for e in entries}) == total
    assert sum(not e.answered for e in entries) == THREADS * len(logs) * len(range(0, PER_THREAD, 3))
    assert all(log.dropped == 0 for log in logs)
    for log in logs:
        log.close()


def _processes_lose_nothing(url: str) -> None:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, url, f"p{k}", str(PER_PROCESS)],
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for k in range(PROCESSES)
    ]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * PROCESSES
    assert [o.strip() for o in outs] == ["0"] * PROCESSES
    log = QueryLog(url)
    entries = log.entries()
    assert len(entries) == PROCESSES * PER_PROCESS
    assert {e.question for e in entries} == {
        f"p{k}-{i}" for k in range(PROCESSES) for i in range(PER_PROCESS)
    }
    log.close()


def test_threads_lose_nothing_sqlite(tmp_path: Path) -> None:
    _threads_lose_nothing(f"sqlite:///{tmp_path / 'questions.sqlite3'}")


def test_processes_lose_nothing_sqlite(tmp_path: Path) -> None:
    _processes_lose_nothing(f"sqlite:///{tmp_path / 'questions.sqlite3'}")


@pytest.mark.server
def test_threads_lose_nothing_postgresql(pg_url: str) -> None:  # noqa: F811
    _threads_lose_nothing(pg_url)


@pytest.mark.server
def test_processes_lose_nothing_postgresql(pg_url: str) -> None:  # noqa: F811
    _processes_lose_nothing(pg_url)
