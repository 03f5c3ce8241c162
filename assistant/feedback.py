"""User feedback (👍/👎 and a comment) on answers, stored through SQLAlchemy and exported for evaluation.

The store is a SQLite file by default (WAL, ``BEGIN IMMEDIATE``, busy timeout: see ``assistant/db.py``) or
any SQLAlchemy URL, e.g. the PostgreSQL database that several app replicas share. Safe to use from many
threads and processes at once; the table is the one earlier versions created, so old files still open.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from sqlalchemy import (
    CheckConstraint,
    Column,
    Integer,
    MetaData,
    Table,
    Text,
    delete,
    func,
    insert,
    select,
    update,
)

from assistant.db import create_schema, engine_for, sqlite_path, to_url
from assistant.models import Answer

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from assistant.settings import Settings

Rating = Literal["up", "down"]
RATINGS: tuple[Rating, ...] = ("up", "down")

metadata = MetaData()
# The columns and types of the original SQLite schema, so databases written by earlier versions still open.
feedback = Table(
    "feedback",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("created_at", Text, nullable=False),  # ISO 8601, UTC ("…+00:00"): sorts as it reads
    Column("rating", Text, CheckConstraint("rating IN ('up', 'down')"), nullable=False),
    Column("comment", Text, nullable=False, server_default=""),
    Column("question", Text, nullable=False),
    Column("answer", Text, nullable=False),
    Column("language", Text, nullable=False),
    Column("answered", Integer, nullable=False),
    Column("citations", Text, nullable=False),
    Column("engine", Text, nullable=False),
    Column("model", Text, nullable=True),
    Column("manifest", Text, nullable=False),
    sqlite_autoincrement=True,
)


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


def feedback_url(settings: Settings) -> str:
    """Where the feedback lives: the shared database URL when one is set, else ``ui.feedback_db``."""
    if settings.insight.database_url is not None:
        return settings.insight.database_url.get_secret_value()
    return to_url(settings.ui.feedback_db)


class FeedbackStore:
    """Ratings on answers in a database (a SQLite file path or a SQLAlchemy URL); safe from many threads."""

    def __init__(self, path: Path | str, busy_timeout_s: float = 30.0) -> None:
        """Open (and create if needed) the database at ``path`` (a file path or a database URL)."""
        self.url = to_url(path)
        # The SQLite file, when the store is one (None for a database server).
        self.path = sqlite_path(self.url)
        self.busy_timeout_s = busy_timeout_s
        self._engine: Engine = engine_for(self.url, busy_timeout_s)
        create_schema(self._engine, metadata)

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
        values = {
            "created_at": _utc_now(),
            "rating": rating,
            "comment": comment.strip(),
            "question": answer.question,
            "answer": answer.answer,
            "language": answer.language,
            "answered": int(answer.answered),
            "citations": json.dumps(citations, ensure_ascii=False),
            "engine": answer.engine,
            "model": answer.model,
            "manifest": json.dumps(manifest or {}, ensure_ascii=False, sort_keys=True, default=str),
        }
        with self._engine.begin() as conn:
            row_id = conn.execute(insert(feedback).values(**values).returning(feedback.c.id)).scalar_one()
        return int(row_id)

    def set_rating(self, row_id: int, rating: Rating) -> None:
        """Change the rating of a stored row (the user clicked the other thumb)."""
        if rating not in RATINGS:
            raise ValueError(f"rating must be one of {RATINGS}, not {rating!r}")
        with self._engine.begin() as conn:
            conn.execute(update(feedback).where(feedback.c.id == row_id).values(rating=rating))

    def set_comment(self, row_id: int, comment: str) -> bool:
        """Attach a comment to a stored row; False if the row does not exist."""
        with self._engine.begin() as conn:
            result = conn.execute(
                update(feedback).where(feedback.c.id == row_id).values(comment=comment.strip())
            )
        return result.rowcount == 1

    def delete(self, row_id: int) -> None:
        """Remove a row (the user took the rating back)."""
        with self._engine.begin() as conn:
            conn.execute(delete(feedback).where(feedback.c.id == row_id))

    def get(self, row_id: int) -> FeedbackRow | None:
        """The row with this id, if any."""
        with self._engine.connect() as conn:
            row = conn.execute(select(feedback).where(feedback.c.id == row_id)).mappings().first()
        return _to_row(row) if row else None

    def rows(self, rating: Rating | None = None, since: datetime | None = None) -> list[FeedbackRow]:
        """All rows in insertion order, optionally only one rating and only from ``since`` on."""
        query = select(feedback).order_by(feedback.c.id)
        if rating is not None:
            query = query.where(feedback.c.rating == rating)
        if since is not None:
            moment = since.replace(tzinfo=UTC) if since.tzinfo is None else since.astimezone(UTC)
            query = query.where(feedback.c.created_at >= moment.isoformat(timespec="seconds"))
        with self._engine.connect() as conn:
            return [_to_row(r) for r in conn.execute(query).mappings().all()]

    def count(self) -> dict[str, int]:
        """How many rows per rating."""
        query = select(feedback.c.rating, func.count()).group_by(feedback.c.rating)
        counts: dict[str, int] = {r: 0 for r in RATINGS}
        with self._engine.connect() as conn:
            counts.update({rating: int(n) for rating, n in conn.execute(query).all()})
        return counts

    def export(self, out_path: Path | str, since: datetime | None = None) -> int:
        """Write the 👎 rows as JSON Lines in the evaluation question format; return how many."""
        items = [to_eval_item(r) for r in self.rows("down", since=since)]
        out = Path(out_path)
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("w", encoding="utf-8") as fh:
            for item in items:
                fh.write(json.dumps(item, ensure_ascii=False) + "\n")
        return len(items)

    def close(self) -> None:
        """Release the pooled connections (the store opens new ones if used again)."""
        self._engine.dispose()


def _to_row(row: Any) -> FeedbackRow:
    return FeedbackRow(
        id=int(row["id"]),
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
            "--db",
            default=str(default_db) if default_db else None,
            help="the feedback database: a SQLite file or a database URL (default: settings)",
        )
    args = parser.parse_args(list(argv))
    db: str = str(args.db) if args.db is not None else ""
    if not db:
        from assistant.settings import Settings

        db = feedback_url(Settings())
    file = sqlite_path(to_url(db))
    if file is not None and not file.exists():
        print(f"No feedback database at {file}: nobody has rated an answer yet, or pass --db PATH.")
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
