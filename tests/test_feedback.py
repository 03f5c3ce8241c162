"""The feedback store: ratings survive concurrency and export as evaluation questions."""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import datetime
from pathlib import Path

import pytest

from assistant.feedback import FeedbackStore, feedback_cli
from assistant.models import Answer, Citation
from tests.pg import pg_server, pg_url  # noqa: F401  (fixtures)


def _answer(question: str = "¿Quién atiende las quejas?", language: str = "es") -> Answer:
    return Answer(
        question=question,
        answer="El Área de Atención al Cliente.",
        answered=True,
        language=language,  # type: ignore[arg-type]
        citations=[
            Citation(
                unit="Área de Atención al Cliente",
                section="funciones",
                numeral="iv",
                quote="Atender y solventar las quejas y denuncias de los clientes.",
                manual="901 0905",
                score=0.91,
            ),
            Citation(
                unit="Agencias",
                section="funciones",
                numeral="ix",
                quote="Atender…",
                manual="901 0905",
                score=0.8,
            ),
            Citation(
                unit="Área de Atención al Cliente",
                section="objetivo",
                numeral=None,
                quote="Atender y facilitar…",
                manual="901 0905",
                score=0.7,
            ),
        ],
        engine="grounded",
        model=None,
    )


@pytest.fixture()
def store(tmp_path: Path):
    s = FeedbackStore(tmp_path / "fb" / "feedback.sqlite3")
    yield s
    s.close()


def test_row_keeps_everything_needed_to_reproduce(store: FeedbackStore) -> None:
    manifest = {"model": "intfloat/multilingual-e5-small", "dimension": 384}
    row_id = store.add(_answer(), "down", comment="  Falta la Sucursal Paseo ", manifest=manifest)
    row = store.get(row_id)
    assert row is not None
    assert row.rating == "down"
    assert row.comment == "Falta la Sucursal Paseo"
    assert row.question == "¿Quién atiende las quejas?"
    assert row.citations[0]["numeral"] == "iv"
    assert row.manifest == manifest
    assert row.engine == "grounded"
    created = datetime.fromisoformat(row.created_at)
    assert created.utcoffset() is not None and created.utcoffset().total_seconds() == 0


def test_database_is_in_wal_mode(store: FeedbackStore) -> None:
    store.add(_answer(), "up")
    with sqlite3.connect(store.path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"


def test_rating_changes_comment_and_delete(store: FeedbackStore) -> None:
    row_id = store.add(_answer(), "up")
    store.set_rating(row_id, "down")
    assert store.set_comment(row_id, "incompleta")
    row = store.get(row_id)
    assert row is not None and (row.rating, row.comment) == ("down", "incompleta")
    store.delete(row_id)
    assert store.get(row_id) is None
    assert not store.set_comment(row_id, "x")


def test_invalid_rating_is_refused(store: FeedbackStore) -> None:
    with pytest.raises(ValueError, match="rating"):
        store.add(_answer(), "meh")  # type: ignore[arg-type]


def test_concurrent_writes_lose_no_rows(tmp_path: Path) -> None:
    _concurrent_writes_lose_no_rows(tmp_path / "feedback.sqlite3")


@pytest.mark.server
def test_concurrent_writes_lose_no_rows_postgresql(pg_url: str) -> None:  # noqa: F811
    _concurrent_writes_lose_no_rows(pg_url)


def test_database_of_an_earlier_version_still_opens(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as conn:  # the schema the sqlite3-only store created
        conn.execute(
            "CREATE TABLE feedback (id INTEGER PRIMARY KEY AUTOINCREMENT, created_at TEXT NOT NULL,"
            " rating TEXT NOT NULL CHECK (rating IN ('up', 'down')), comment TEXT NOT NULL DEFAULT '',"
            " question TEXT NOT NULL, answer TEXT NOT NULL, language TEXT NOT NULL, answered INTEGER NOT NULL,"
            " citations TEXT NOT NULL, engine TEXT NOT NULL, model TEXT, manifest TEXT NOT NULL)"
        )
        conn.execute(
            "INSERT INTO feedback (created_at, rating, question, answer, language, answered, citations, engine,"
            " manifest) VALUES ('2025-01-01T10:00:00+00:00', 'down', 'q', 'a', 'es', 1, '[]', 'grounded', '{}')"
        )
    store = FeedbackStore(path)
    new_id = store.add(_answer(), "up")
    assert new_id == 2
    assert [r.rating for r in store.rows()] == ["down", "up"]
    assert store.count() == {"up": 1, "down": 1}
    store.close()


def _concurrent_writes_lose_no_rows(path: Path | str) -> None:
    # Two stores on one file stand in for two server processes; each is hit by several threads.
    stores = [FeedbackStore(path), FeedbackStore(path)]
    threads_per_store, writes = 6, 40
    errors: list[BaseException] = []
    barrier = threading.Barrier(threads_per_store * len(stores))

    def work(store: FeedbackStore, n: int) -> None:
        try:
            barrier.wait()
            for i in range(writes):
                row_id = store.add(_answer(f"q{n}-{i}"), "down" if i % 2 else "up")
                store.set_comment(row_id, f"c{n}-{i}")
        except BaseException as exc:  # collected so the assertion below names it
            errors.append(exc)

    threads = [
        threading.Thread(target=work, args=(s, k * threads_per_store + n))
        for k, s in enumerate(stores)
        for n in range(threads_per_store)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    rows = stores[0].rows()
    total = threads_per_store * len(stores) * writes
    assert len(rows) == total
    assert len({r.question for r in rows}) == total
    assert all(r.comment == "c" + r.question[1:] for r in rows)
    for s in stores:
        s.close()


def test_export_writes_thumbs_down_as_eval_questions(store: FeedbackStore, tmp_path: Path) -> None:
    store.add(_answer("¿Quién dirige Ventas?"), "up")
    down_es = store.add(_answer("¿Quién atiende las quejas?"), "down", comment="faltan agencias")
    down_en = store.add(_answer("Who handles complaints?", language="en"), "down")
    out = tmp_path / "out" / "feedback.jsonl"
    assert store.export(out) == 2
    items = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert items[0] == {
        "id": f"fb-{down_es}",
        "lang": "es",
        "kind": "feedback",
        "question": "¿Quién atiende las quejas?",
        "answerable": True,
        "evidence": [],
        "must": [],
        "units": ["Área de Atención al Cliente", "Agencias"],
    }
    assert items[1]["id"] == f"fb-{down_en}" and items[1]["lang"] == "en"


def test_cli_exports_and_reports_missing_db(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "fb.sqlite3"
    assert feedback_cli(["export", "--out", str(tmp_path / "x.jsonl"), "--db", str(db)]) == 1
    assert "No feedback database" in capsys.readouterr().out
    s = FeedbackStore(db)
    s.add(_answer(), "down")
    s.close()
    out = tmp_path / "x.jsonl"
    assert feedback_cli(["export", "--out", str(out), "--db", str(db)]) == 0
    assert len(out.read_text(encoding="utf-8").splitlines()) == 1
    assert feedback_cli(["stats", "--db", str(db)]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1]) == {"up": 0, "down": 1}
