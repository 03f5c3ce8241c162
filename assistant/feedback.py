"""User feedback (👍/👎 and a comment) on answers, stored in SQLite and exported for evaluation.

Concurrency: every thread gets its own connection (SQLite connections must not be shared across
threads without a lock), the database runs in WAL mode so readers never block the writer, and a busy
timeout makes concurrent writers, also from other processes, wait for the lock instead of failing.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from assistant.models import Answer

Rating = Literal["up", "down"]
RATINGS: tuple[Rating, ...] = ("up", "down")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    created_at  TEXT NOT NULL,
    rating      TEXT NOT NULL CHECK (rating IN ('up', 'down')),
    comment     TEXT NOT NULL DEFAULT '',
    question    TEXT NOT NULL,
    answer      TEXT NOT NULL,
    language    TEXT NOT NULL,
    answered    INTEGER NOT NULL,
    citations   TEXT NOT NULL,
    engine      TEXT NOT NULL,
    model       TEXT,
    manifest    TEXT NOT NULL
)
"""


@dataclass(frozen=True)
class FeedbackRow:
    """One stored rating, as read back."""

    id: int
    created_at: str
    rating: Rating
    comment: str
    question: str
    answer: str
    language: str
    answered: bool
    citations: list[dict[str, Any]]
    engine: str
    model: str | None
    manifest: dict[str, Any]


def _utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class FeedbackStore:
    """Ratings on answers in a SQLite file; safe to use from many threads at once."""

    def __init__(self, path: Path | str, busy_timeout_s: float = 30.0) -> None:
        """Open (and create if needed) the database at ``path``."""
        self.path = Path(path)
        self.busy_timeout_s = busy_timeout_s
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._write() as conn:
            conn.execute(_SCHEMA)

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            # Autocommit mode: transactions are opened explicitly with BEGIN IMMEDIATE in _write.
            # check_same_thread=False only so close() may run from another thread; each
            # connection is otherwise used by the thread that opened it.
            conn = sqlite3.connect(
                self.path, timeout=self.busy_timeout_s, isolation_level=None, check_same_thread=False
            )
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
            with self._all_lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        # IMMEDIATE takes the write lock up front, so two writers queue on the busy timeout
        # instead of one failing with "database is locked" when it upgrades a read lock.
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def add(
        self,
        answer: Answer,
        rating: Rating,
        comment: str = "",
        manifest: dict[str, Any] | None = None,
    ) -> int:
        """Store a rating of ``answer`` and return its row id."""
        if rating not in RATINGS:
            raise ValueError(f"rating must be one of {RATINGS}, not {rating!r}")
        citations = [c.model_dump(mode="json") for c in answer.citations]
        with self._write() as conn:
            cur = conn.execute(
                "INSERT INTO feedback (created_at, rating, comment, question, answer, language, answered,"
                " citations, engine, model, manifest) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    _utc_now(),
                    rating,
                    comment.strip(),
                    answer.question,
                    answer.answer,
                    answer.language,
                    int(answer.answered),
                    json.dumps(citations, ensure_ascii=False),
                    answer.engine,
                    answer.model,
                    json.dumps(manifest or {}, ensure_ascii=False, sort_keys=True, default=str),
                ),
            )
            row_id = cur.lastrowid
        assert row_id is not None
        return row_id

    def set_rating(self, row_id: int, rating: Rating) -> None:
        """Change the rating of a stored row (the user clicked the other thumb)."""
        if rating not in RATINGS:
            raise ValueError(f"rating must be one of {RATINGS}, not {rating!r}")
        with self._write() as conn:
            conn.execute("UPDATE feedback SET rating = ? WHERE id = ?", (rating, row_id))

    def set_comment(self, row_id: int, comment: str) -> bool:
        """Attach a comment to a stored row; False if the row does not exist."""
        with self._write() as conn:
            cur = conn.execute("UPDATE feedback SET comment = ? WHERE id = ?", (comment.strip(), row_id))
        return cur.rowcount == 1

    def delete(self, row_id: int) -> None:
        """Remove a row (the user took the rating back)."""
        with self._write() as conn:
            conn.execute("DELETE FROM feedback WHERE id = ?", (row_id,))

    def get(self, row_id: int) -> FeedbackRow | None:
        """The row with this id, if any."""
        row = self._conn().execute("SELECT * FROM feedback WHERE id = ?", (row_id,)).fetchone()
        return _to_row(row) if row else None

    def rows(self, rating: Rating | None = None) -> list[FeedbackRow]:
        """All rows in insertion order, optionally only one rating."""
        if rating is None:
            cur = self._conn().execute("SELECT * FROM feedback ORDER BY id")
        else:
            cur = self._conn().execute("SELECT * FROM feedback WHERE rating = ? ORDER BY id", (rating,))
        return [_to_row(r) for r in cur.fetchall()]

    def count(self) -> dict[str, int]:
        """How many rows per rating."""
        cur = self._conn().execute("SELECT rating, COUNT(*) FROM feedback GROUP BY rating")
        counts: dict[str, int] = {r: 0 for r in RATINGS}
        counts.update({rating: n for rating, n in cur.fetchall()})
        return counts

    def export(self, out_path: Path | str) -> int:
        """Write the 👎 rows as JSON Lines in the evaluation question format; return how many."""
        items = [to_eval_item(r) for r in self.rows("down")]
        out = Path(out_path)
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w", encoding="utf-8") as fh:
            for item in items:
                fh.write(json.dumps(item, ensure_ascii=False) + "\n")
        return len(items)

    def close(self) -> None:
        """Close every connection this store opened, from any thread."""
        with self._all_lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()


def _to_row(row: sqlite3.Row) -> FeedbackRow:
    return FeedbackRow(
        id=row["id"],
        created_at=row["created_at"],
        rating=row["rating"],
        comment=row["comment"],
        question=row["question"],
        answer=row["answer"],
        language=row["language"],
        answered=bool(row["answered"]),
        citations=json.loads(row["citations"]),
        engine=row["engine"],
        model=row["model"],
        manifest=json.loads(row["manifest"]),
    )


def to_eval_item(row: FeedbackRow) -> dict[str, Any]:
    """A 👎 row as an evaluation question; a reviewer fills in ``evidence`` and ``must``."""
    units: list[str] = []
    for citation in row.citations:
        unit = citation.get("unit")
        if unit and unit not in units:
            units.append(unit)
    return {
        "id": f"fb-{row.id}",
        "lang": row.language,
        "kind": "feedback",
        "question": row.question,
        "answerable": True,
        "evidence": [],
        "must": [],
        "units": units,
    }


def feedback_cli(argv: Sequence[str], default_db: Path | None = None) -> int:
    """``feedback export --out FILE [--db PATH]`` and ``feedback stats [--db PATH]``; returns an exit code."""
    parser = argparse.ArgumentParser(prog="python -m assistant feedback", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    export = sub.add_parser("export", help="write the 👎 answers as evaluation questions (JSON Lines)")
    export.add_argument("--out", type=Path, required=True, help="the .jsonl file to write")
    stats = sub.add_parser("stats", help="count the ratings")
    for p in (export, stats):
        p.add_argument(
            "--db", type=Path, default=default_db, help="the feedback database (default: settings)"
        )
    args = parser.parse_args(list(argv))
    db: Path | None = args.db
    if db is None:
        from assistant.settings import Settings

        db = Settings().ui.feedback_db
    if not db.exists():
        print(f"No feedback database at {db}: nobody has rated an answer yet, or pass --db PATH.")
        return 1
    store = FeedbackStore(db)
    try:
        if args.command == "export":
            n = store.export(args.out)
            print(
                f"Wrote {n} 👎 answers to {args.out}; "
                "fill in 'evidence' and 'must' before adding them to evals."
            )
        else:
            print(json.dumps(store.count()))
    finally:
        store.close()
    return 0
