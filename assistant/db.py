"""Database engines for the question log and the feedback store: a SQLite file by default, any SQLAlchemy URL
(PostgreSQL for several app replicas) otherwise.

SQLite concurrency: the file runs in WAL mode so readers never block the writer, every transaction starts with
``BEGIN IMMEDIATE`` so two writers queue on the lock instead of one failing when it upgrades a read lock, and
a busy timeout makes writers from other threads and processes wait for the lock rather than fail.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, MetaData, create_engine, event, text
from sqlalchemy.engine import make_url

# Per-process cache: many stores on one URL (a test's two "processes", the UI and the CLI) share one pool.
_ENGINES: dict[tuple[str, float], Engine] = {}
_ENGINES_LOCK = threading.Lock()


def to_url(target: str | Path) -> str:
    """A database URL for ``target``: a URL as it is, a file path as a SQLite URL (absolute)."""
    value = str(target)
    if "://" in value:
        return value
    return f"sqlite:///{Path(value).expanduser().resolve()}"


def redacted(url: str) -> str:
    """The URL without its password, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # an unparsable URL is reported as such by SQLAlchemy itself
        return "<invalid database URL>"


def sqlite_path(url: str) -> Path | None:
    """The file behind a SQLite URL, or None for any other database."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def engine_for(url: str, busy_timeout_s: float = 30.0) -> Engine:
    """One shared engine per URL in this process (created on first use)."""
    key = (url, busy_timeout_s)
    with _ENGINES_LOCK:
        engine = _ENGINES.get(key)
        if engine is None:
            engine = _create(url, busy_timeout_s)
            _ENGINES[key] = engine
        return engine


def _create(url: str, busy_timeout_s: float) -> Engine:
    path = sqlite_path(url)
    if path is None:
        # pre_ping: a replica outlives database restarts and idle connections dropped by a proxy.
        return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10)
    path.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": busy_timeout_s, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Autocommit at the driver level: SQLAlchemy's "begin" below opens every transaction itself.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        # Switching to WAL needs the file to itself for a moment, and SQLite may answer "database is locked"
        # at once (without waiting) while other processes open it too: try again for a while.
        deadline = time.monotonic() + busy_timeout_s
        while True:
            try:
                cur.execute("PRAGMA journal_mode=WAL")
                break
            except sqlite3.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def create_schema(engine: Engine, metadata: MetaData) -> None:
    """Create the tables that are missing; on PostgreSQL under a lock, as replicas may start together."""
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            # Two processes running CREATE TABLE IF NOT EXISTS at once can still collide in the catalogue.
            conn.execute(text("SELECT pg_advisory_xact_lock(7615015)"))
        metadata.create_all(conn, checkfirst=True)
