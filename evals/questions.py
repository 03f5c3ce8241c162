"""Question and conversation files: JSON Lines, validated with errors that name the file and line.

A question line: ``{"id", "lang", "kind", "question", "answerable", "evidence", "must"[, "units"][, "manual"]}``.
A conversation line: ``{"id": "conv-d-01", "turns": [<question line>, …]}``; a turn's ``id`` may be left out
(it becomes ``conv-d-01#2``). See evals/README.md.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evals.metrics import Question

LANGS = ("es", "en", "mixed")
REQUIRED: dict[str, type | tuple[type, ...]] = {
    "id": str,
    "lang": str,
    "kind": str,
    "question": str,
    "answerable": bool,
    "evidence": list,
    "must": list,
}


class QuestionFileError(ValueError):
    """A question file that cannot be evaluated; the message names the line and what is wrong."""


@dataclass(frozen=True)
class Conversation:
    """One conversation: its turns are asked in order, each with the previous turns as history."""

    id: str
    turns: tuple[Question, ...]
    file: str = ""


def _string_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value)


def parse_question(data: Any, where: str, file: str = "", default_id: str | None = None) -> Question:
    """One question from a decoded JSON object; `where` ("file:line") starts every error message.

    `default_id` is used when the object has no ``id`` (conversation turns); otherwise ``id`` is required.
    """
    if not isinstance(data, dict):
        raise QuestionFileError(f"{where}: expected a JSON object, got {type(data).__name__}.")
    if default_id is not None and "id" not in data:
        data = {**data, "id": default_id}
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise QuestionFileError(f"{where}: missing key(s) {', '.join(repr(k) for k in missing)}.")
    for key, kind in REQUIRED.items():
        if not isinstance(data[key], kind):
            raise QuestionFileError(
                f"{where}: {key!r} must be a {getattr(kind, '__name__', kind)}, "
                f"got {type(data[key]).__name__}."
            )
    qid = data["id"].strip()
    if not qid:
        raise QuestionFileError(f"{where}: 'id' is empty.")
    if data["lang"] not in LANGS:
        raise QuestionFileError(f"{where}: 'lang' is {data['lang']!r}; use one of {', '.join(LANGS)}.")
    if not data["kind"].strip() or not data["question"].strip():
        raise QuestionFileError(f"{where}: 'kind' and 'question' must not be empty.")
    if not _string_list(data["evidence"]):
        raise QuestionFileError(f"{where}: 'evidence' must be a list of non-empty strings.")
    must = data["must"]
    if not all(_string_list(group) and group for group in must):
        raise QuestionFileError(f"{where}: 'must' must be a list of non-empty lists of alternative strings.")
    units = data.get("units", [])
    if not isinstance(units, list) or not all(isinstance(u, str) for u in units):
        raise QuestionFileError(f"{where}: 'units' must be a list of strings.")
    manual = data.get("manual")
    if manual is not None and not (isinstance(manual, str) and manual.strip()):
        raise QuestionFileError(
            f"{where}: 'manual' must be a manual's code as a non-empty string (e.g. \"901 0903\"), "
            f"got {manual!r}."
        )
    if data["answerable"] and not (data["evidence"] and must):
        # Feedback exports arrive with both empty; scoring them would count every answer as wrong.
        raise QuestionFileError(
            f"{where}: answerable question {qid!r} needs 'evidence' and 'must' filled in "
            "(see evals/README.md)."
        )
    return Question(
        id=qid,
        lang=data["lang"],
        kind=data["kind"].strip(),
        question=data["question"],
        answerable=data["answerable"],
        evidence=tuple(data["evidence"]),
        must=tuple(tuple(g) for g in must),
        units=tuple(units),
        manual=" ".join(manual.split()) if manual else None,
        file=file,
    )


# Where an id was first used: (file, line, turn or 0).
Seen = dict[str, tuple[str, int, int]]


def _json_lines(path: str | Path, what: str) -> Iterator[tuple[int, Any]]:
    """(line number, decoded object) for each non-blank line; raise `QuestionFileError` naming a bad one."""
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as exc:
        raise QuestionFileError(f"The {what} file {p} does not exist.") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise QuestionFileError(f"The {what} file {p} could not be read as UTF-8 text ({exc}).") from exc
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{p}:{number}"
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise QuestionFileError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno}).") from exc
        yield number, data


def load_questions(path: str | Path, seen: Seen | None = None) -> list[Question]:
    """Read and validate a JSON Lines question file; raise `QuestionFileError` naming the bad line.

    `seen` carries the ids of the other files of one run (questions and conversation turns), which must not
    repeat, since reports name questions by id.
    """
    seen = {} if seen is None else seen
    questions: list[Question] = []
    for number, data in _json_lines(path, "question"):
        question = parse_question(data, f"{path}:{number}", file=str(path))
        _claim(question.id, str(path), number, 0, seen)
        questions.append(question)
    if not questions:
        raise QuestionFileError(f"The question file {Path(path)} holds no questions.")
    return questions


def load_conversations(path: str | Path, seen: Seen | None = None) -> list[Conversation]:
    """Read and validate a JSON Lines conversation file; raise `QuestionFileError` naming the bad line."""
    seen = {} if seen is None else seen
    conversations: list[Conversation] = []
    conv_seen: Seen = {}
    for number, data in _json_lines(path, "conversation"):
        where = f"{path}:{number}"
        if not isinstance(data, dict):
            raise QuestionFileError(f"{where}: expected a JSON object, got {type(data).__name__}.")
        cid, turns = data.get("id"), data.get("turns")
        if not isinstance(cid, str) or not cid.strip():
            raise QuestionFileError(f"{where}: a conversation needs an 'id' string.")
        cid = cid.strip()
        if not isinstance(turns, list) or not turns:
            raise QuestionFileError(f"{where}: conversation {cid!r} needs 'turns', a non-empty list.")
        _claim(cid, str(path), number, 0, conv_seen, what="conversation id")
        parsed = []
        for k, turn in enumerate(turns, start=1):
            question = parse_question(turn, f"{where}: turn {k}", file=str(path), default_id=f"{cid}#{k}")
            _claim(question.id, str(path), number, k, seen)
            parsed.append(question)
        conversations.append(Conversation(id=cid, turns=tuple(parsed), file=str(path)))
    if not conversations:
        raise QuestionFileError(f"The conversation file {Path(path)} holds no conversations.")
    return conversations


def _claim(key: str, file: str, line: int, turn: int, seen: Seen, what: str = "id") -> None:
    """Record where `key` is used; raise naming both places when it was used before."""
    if key in seen:
        first_file, first_line, first_turn = seen[key]
        place = f"line {first_line}" if first_file == file else f"{first_file}:{first_line}"
        if first_turn:
            place += f" (turn {first_turn})"
        here = f"{file}:{line}" + (f": turn {turn}" if turn else "")
        raise QuestionFileError(f"{here}: {what} {key!r} is already used on {place}.")
    seen[key] = (file, line, turn)
