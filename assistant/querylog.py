"""The question log: every question asked in the web chat or through the HTTP API, for the manuals' owners.

Each entry keeps the time, channel, language, question, whether it was answered, the manuals, versions and
units cited, the engine and the latency, and the user name only when login is on.

Logging never slows or fails an answer: ``record`` only puts the entry on a bounded queue and returns; one
background thread writes the queue in batches. A write error is logged and the entries are dropped; a full
queue drops the new entry with a warning. Several threads and processes (app replicas) may write to one
database at once: SQLite queues them on its lock (WAL, ``BEGIN IMMEDIATE``, busy timeout), PostgreSQL needs
nothing more.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    delete,
    func,
    insert,
    select,
)

from assistant.db import create_schema, engine_for, redacted, to_url

if TYPE_CHECKING:
    from assistant.models import Answer
    from assistant.settings import Settings

log = logging.getLogger(__name__)

Channel = Literal["chat", "api"]
CHANNELS: tuple[Channel, ...] = ("chat", "api")
# Entries written per transaction: a burst of questions costs one commit, not one each.
BATCH = 256
# Retention runs at start-up and then this often (the log of a busy day is small).
PURGE_EVERY_S = 6 * 3600.0

metadata = MetaData()
questions = Table(
    "questions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    # UTC, without time zone: SQLite has none, and every writer stores UTC.
    Column("created_at", DateTime(timezone=False), nullable=False, index=True),
    Column("channel", String(16), nullable=False),
    Column("user_name", String(200), nullable=True),
    Column("language", String(8), nullable=False),
    Column("question", Text, nullable=False),
    Column("answered", Boolean, nullable=False),
    Column("engine", String(64), nullable=False),
    Column("model", String(300), nullable=True),
    Column("latency_ms", Float, nullable=False),
    # JSON list of {"manual", "manual_code", "version", "gerencia", "unit"}, one per cited unit.
    Column("cited", Text, nullable=False),
)


@dataclass(frozen=True)
class LoggedQuestion:
    """One logged question, as read back."""

    id: int
    created_at: datetime  # UTC, aware
    channel: str
    user: str | None
    language: str
    question: str
    answered: bool
    engine: str
    model: str | None
    latency_ms: float
    cited: list[dict[str, Any]] = field(default_factory=list)

    @property
    def units(self) -> list[str]:
        """The cited units, each once."""
        return list(dict.fromkeys(c["unit"] for c in self.cited if c.get("unit")))

    @property
    def manuals(self) -> list[str]:
        """The cited manuals as "code vN" (or their id), each once."""
        return list(dict.fromkeys(manual_label(c) for c in self.cited))


def manual_label(cited: dict[str, Any]) -> str:
    """How a cited manual is named in charts: its code and version, else its id."""
    code = cited.get("manual_code") or cited.get("manual") or "?"
    version = cited.get("version")
    return f"{code} v{version}" if version is not None else str(code)


def utc_now() -> datetime:
    """Now, in UTC, without time zone (as stored)."""
    return datetime.now(UTC).replace(tzinfo=None)


def _naive_utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def cited_of(answer: Answer) -> list[dict[str, Any]]:
    """The manuals, versions and units an answer cites, one entry per (manual, unit)."""
    seen: dict[tuple[str, str | None], dict[str, Any]] = {}
    for c in answer.citations:
        key = (c.manual, c.unit)
        if key not in seen:
            seen[key] = {
                "manual": c.manual,
                "manual_code": c.manual_code,
                "version": c.version,
                "gerencia": c.gerencia,
                "unit": c.unit,
            }
    return list(seen.values())


def question_log_url(settings: Settings) -> str:
    """Where the question log lives: the shared URL, else its SQLite file (beside the feedback one)."""
    if settings.insight.database_url is not None:
        return settings.insight.database_url.get_secret_value()
    path = settings.insight.db or Path(settings.ui.feedback_db).parent / "questions.sqlite3"
    return to_url(path)


class _Stop:
    pass


_STOP = _Stop()


class QueryLog:
    """Questions and what became of them, in any SQLAlchemy database; safe from many threads and processes."""

    def __init__(
        self,
        url: str | Path,
        *,
        retention_days: int | None = None,
        queue_size: int = 10_000,
        busy_timeout_s: float = 30.0,
    ) -> None:
        """Keep the configuration; the database is opened by the first write or read."""
        self.url = to_url(url)
        self.retention_days = retention_days
        self.busy_timeout_s = busy_timeout_s
        self._queue: queue.Queue[dict[str, Any] | _Stop] = queue.Queue(maxsize=queue_size)
        self._pending = 0
        self._pending_cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._thread_lock = threading.Lock()
        self._schema_ready = False
        self._schema_lock = threading.Lock()
        self._closed = False
        self._next_purge = 0.0
        self.dropped = 0  # entries lost to a full queue or a write error (also logged)

    @classmethod
    def from_settings(cls, settings: Settings) -> QueryLog | None:
        """The configured log, or None when logging is switched off."""
        if not settings.insight.enabled:
            return None
        return cls(
            question_log_url(settings),
            retention_days=settings.insight.retention_days,
            queue_size=settings.insight.queue_size,
        )

    def __repr__(self) -> str:
        return f"QueryLog({redacted(self.url)!r})"

    # ------------------------------------------------------------ writing

    def record(self, answer: Answer, user: str | None = None, channel: Channel = "chat") -> bool:
        """Queue ``answer`` for the log and return at once; False (and a warning) when it had to be dropped.

        Never raises: a question is answered whatever becomes of its log entry.
        """
        try:
            if self._closed:
                return False
            entry = {
                "created_at": utc_now(),
                "channel": channel if channel in CHANNELS else "api",
                "user_name": (user or None) and str(user)[:200],
                "language": answer.language,
                "question": answer.question,
                "answered": bool(answer.answered),
                "engine": answer.engine,
                "model": answer.model,
                "latency_ms": float(answer.latency_ms),
                "cited": json.dumps(cited_of(answer), ensure_ascii=False),
            }
            with self._pending_cond:
                self._pending += 1
            try:
                self._queue.put_nowait(entry)
            except queue.Full:
                self._done(1)
                self.dropped += 1
                log.warning("question log: the write queue is full; one question was not logged")
                return False
            self._ensure_writer()
            return True
        except Exception:
            log.exception("question log: could not queue a question")
            return False

    def _ensure_writer(self) -> None:
        if self._thread is not None:
            return
        with self._thread_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="question-log-writer", daemon=True)
                self._thread.start()
                atexit.register(self.close)

    def _done(self, n: int) -> None:
        with self._pending_cond:
            self._pending -= n
            if self._pending <= 0:
                self._pending_cond.notify_all()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if isinstance(item, _Stop):
                return
            batch = [item]
            stop = False
            while len(batch) < BATCH:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if isinstance(more, _Stop):
                    stop = True
                    break
                batch.append(more)
            try:
                try:
                    self._write(batch)
                except Exception as exc:
                    self.dropped += len(batch)
                    log.error(
                        "question log: %d question(s) could not be written to %s: %s",
                        len(batch),
                        redacted(self.url),
                        exc,
                    )
                self._maybe_purge()
            finally:
                self._done(len(batch))  # after the purge: a flush returns with the retention applied
            if stop:
                return

    def _write(self, batch: Sequence[dict[str, Any]]) -> None:
        engine = self._engine()
        with engine.begin() as conn:
            conn.execute(insert(questions), list(batch))

    def _maybe_purge(self) -> None:
        if self.retention_days is None or time.monotonic() < self._next_purge:
            return
        self._next_purge = time.monotonic() + PURGE_EVERY_S
        try:
            n = self.purge(utc_now() - timedelta(days=self.retention_days))
            if n:
                log.info("question log: %d question(s) older than %d days deleted", n, self.retention_days)
        except Exception as exc:
            log.error("question log: retention purge failed: %s", exc)

    def flush(self, timeout_s: float | None = 30.0) -> bool:
        """Wait until every queued question is written (or dropped); False on time-out."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._pending_cond:
            while self._pending > 0:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._pending_cond.wait(remaining)
        return True

    def close(self, timeout_s: float = 30.0) -> None:
        """Write what is queued, stop the writer and release the connections."""
        if self._closed:
            return
        self._closed = True
        thread = self._thread
        if thread is not None:
            self.flush(timeout_s)
            with contextlib.suppress(queue.Full):
                self._queue.put(_STOP, timeout=1.0)
            thread.join(timeout_s)
        with self._schema_lock:
            if self._schema_ready:
                self._engine().dispose()
        atexit.unregister(self.close)

    # ------------------------------------------------------------ reading

    def _engine(self) -> Any:
        engine = engine_for(self.url, self.busy_timeout_s)
        if not self._schema_ready:
            with self._schema_lock:
                if not self._schema_ready:
                    create_schema(engine, metadata)
                    self._schema_ready = True
        return engine

    def entries(self, since: datetime | None = None, until: datetime | None = None) -> list[LoggedQuestion]:
        """Logged questions in time order, optionally only from ``since`` and before ``until``."""
        query = select(questions).order_by(questions.c.created_at, questions.c.id)
        if since is not None:
            query = query.where(questions.c.created_at >= _naive_utc(since))
        if until is not None:
            query = query.where(questions.c.created_at < _naive_utc(until))
        with self._engine().connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            LoggedQuestion(
                id=r["id"],
                created_at=r["created_at"].replace(tzinfo=UTC),
                channel=r["channel"],
                user=r["user_name"],
                language=r["language"],
                question=r["question"],
                answered=bool(r["answered"]),
                engine=r["engine"],
                model=r["model"],
                latency_ms=float(r["latency_ms"]),
                cited=json.loads(r["cited"]),
            )
            for r in rows
        ]

    def count(self) -> int:
        """How many questions are logged."""
        with self._engine().connect() as conn:
            return int(conn.execute(select(func.count()).select_from(questions)).scalar_one())

    def purge(self, before: datetime) -> int:
        """Delete the questions logged before ``before``; return how many."""
        with self._engine().begin() as conn:
            result = conn.execute(delete(questions).where(questions.c.created_at < _naive_utc(before)))
        return int(result.rowcount or 0)
