"""The answer engine's vocabulary as data: question cues (regular expressions) and word lists.

They live in ``assistant/data/cues.json`` so that they can be read, reviewed and extended without reading the
engine; the file is checked when first loaded (every pattern compiles, every name the engine asks for is
there), and a bad file stops the start with one sentence naming the file and the entry.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, Field, field_validator

from assistant.datafile import load_model
from assistant.errors import AssistantError

CUES_PATH = Path(__file__).parent / "data" / "cues.json"


class CuesError(AssistantError):
    """The engine's vocabulary file is missing or malformed."""


class Cues(BaseModel):
    """Named patterns (matched on folded questions) and named word lists."""

    patterns: dict[str, str] = Field(min_length=1)
    words: dict[str, list[str]] = Field(default_factory=dict)

    @field_validator("patterns")
    @classmethod
    def _compiles(cls, value: dict[str, str]) -> dict[str, str]:
        for name, pattern in value.items():
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"pattern {name!r} does not compile: {exc}") from exc
        return value


def load_cues(path: str | Path = CUES_PATH) -> Cues:
    """Read and check a cue file (raises `CuesError`)."""
    return load_model(path, Cues, CuesError, "The engine's vocabulary file")


@lru_cache(maxsize=1)
def cues() -> Cues:
    """The packaged cue file, loaded once."""
    return load_cues()


@lru_cache(maxsize=256)
def cue(name: str) -> re.Pattern[str]:
    """The compiled pattern called ``name`` (raises `CuesError` when the file lacks it)."""
    pattern = cues().patterns.get(name)
    if pattern is None:
        raise CuesError(f"The engine's vocabulary file {CUES_PATH} has no pattern {name!r}.")
    return re.compile(pattern)


def cue_words(name: str) -> list[str]:
    """The word list called ``name`` (raises `CuesError` when the file lacks it)."""
    words = cues().words.get(name)
    if words is None:
        raise CuesError(f"The engine's vocabulary file {CUES_PATH} has no word list {name!r}.")
    return list(words)


# A word a pattern spells out whole: not part of a longer word, nor followed by a quantifier or a class.
_SPELLED = re.compile(r"(?<![\\a-zñ])[a-zñ]{3,}(?![a-zñ?*+{\\])")


@lru_cache(maxsize=1)
def cue_vocabulary() -> frozenset[str]:
    """Every word the cues spell out whole ("dirige", "encabeza", "puestos"): words users ask with, which the
    speller should know even where no manual writes them ("¿quién la dirije?" → "dirige")."""
    spelled = {w for p in cues().patterns.values() for w in _SPELLED.findall(p)}
    # "structural" lists word beginnings ("jefatur"), not words.
    listed = {
        w.lower() for name, ws in cues().words.items() if name != "structural" for w in ws if w.isalpha()
    }
    return frozenset(spelled | listed)
