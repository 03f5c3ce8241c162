"""Reading the package's JSON data files (cues, phrases, template, version cues) into validated models.

Each data file has a pydantic model and an error class of its own; this is the one place that reads the file,
validates it and turns any failure into one sentence naming the file and, for a bad value, the entry.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from assistant.errors import AssistantError

M = TypeVar("M", bound=BaseModel)


def load_model(
    path: str | Path, model: type[M], error: type[AssistantError], what: str, noun: str = "entry"
) -> M:
    """``path`` read as ``model``; raise ``error`` with one sentence ("{what} {path} …") on any failure."""
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise error(f"{what} {p} cannot be read ({exc.strerror or exc}).") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        where = f" (line {exc.lineno})" if isinstance(exc, json.JSONDecodeError) else ""
        raise error(f"{what} {p} cannot be read: it is not valid JSON{where}.") from exc
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(x) for x in first["loc"]) or "(top level)"
        msg = str(first["msg"]).removeprefix("Value error, ")
        raise error(f"{what} {p} has a bad {noun} '{where}': {msg}.") from exc
