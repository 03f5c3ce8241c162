"""The answer sentences as data: every sentence an answer is built from, in Spanish and English.

They live in ``assistant/data/phrases.json`` so that an owner or a translator can read and change the wording
without reading the engine. The file is checked when first loaded (every phrase has both languages, and both
use the same ``{placeholders}``), and a bad file stops the start with one sentence naming the file and the
entry. The answerers build their text with `say`: ``say("structure_head", lang, unit=..., head=...)``; the
bilingual labels of a diff's text say both languages at once with `say_both`: ``say_both("diff_section_units")``.
"""

from __future__ import annotations

import re
import string
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from assistant.datafile import load_model
from assistant.errors import AssistantError

PHRASES_PATH = Path(__file__).parent / "data" / "phrases.json"

_KEY = re.compile(r"[a-z][a-z0-9_]*")


class PhrasesError(AssistantError):
    """The answer phrases file is missing or malformed, or a phrase was asked for in a way it cannot be said."""


@lru_cache(maxsize=1024)
def placeholders(template: str) -> frozenset[str]:
    """The names of a template's ``{placeholders}`` (raises ValueError on a positional or malformed one)."""
    names = set()
    for _literal, name, _spec, _conversion in string.Formatter().parse(template):
        if name is None:
            continue
        if not name.isidentifier():
            raise ValueError(f"placeholder {{{name}}} is not a plain name like {{unit}}")
        names.add(name)
    return frozenset(names)


class Phrase(BaseModel):
    """One sentence (or sentence part) of an answer, in both languages, with the same placeholders."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    es: str = Field(min_length=1)
    en: str = Field(min_length=1)

    @field_validator("es", "en")
    @classmethod
    def _parses(cls, value: str) -> str:
        placeholders(value)  # raises ValueError for "{", "{0}" or "{a.b}"
        return value

    @model_validator(mode="after")
    def _same_placeholders(self) -> Phrase:
        es, en = placeholders(self.es), placeholders(self.en)
        if es != en:
            only_es = ", ".join(sorted(es - en)) or "none"
            only_en = ", ".join(sorted(en - es)) or "none"
            raise ValueError(
                f"the es and en texts must use the same placeholders (only in es: {only_es}; only in en: {only_en})"
            )
        return self


class Phrases(BaseModel):
    """Named phrases; the names are what the engine passes to `say`."""

    phrases: dict[str, Phrase] = Field(min_length=1)

    @field_validator("phrases")
    @classmethod
    def _names(cls, value: dict[str, Phrase]) -> dict[str, Phrase]:
        for name in value:
            if not _KEY.fullmatch(name):
                raise ValueError(f"phrase name {name!r} must be lower case letters, digits and underscores")
        return value


def load_phrases(path: str | Path = PHRASES_PATH) -> Phrases:
    """Read and check a phrases file (raises `PhrasesError`)."""
    return load_model(path, Phrases, PhrasesError, "The answer phrases file")


@lru_cache(maxsize=1)
def phrases() -> Phrases:
    """The packaged phrases file, loaded once."""
    return load_phrases()


def say(key: str, lang: str, **values: object) -> str:
    """The phrase ``key`` in Spanish (``lang == "es"``) or else English, with its placeholders filled in.

    Raises `PhrasesError` when the file has no such phrase or a placeholder's value is not given.
    """
    return _text(key, lang, values)


def say_both(key: str, **values: object) -> str:
    """The phrase ``key`` in both languages, ``"Spanish · English"`` (the bilingual labels of the diff's text
    and of the changes tab). Raises `PhrasesError` as `say` does."""
    return f"{_text(key, 'es', values)} · {_text(key, 'en', values)}"


def _text(key: str, lang: str, values: dict[str, object]) -> str:
    phrase = phrases().phrases.get(key)
    if phrase is None:
        raise PhrasesError(f"The answer phrases file {PHRASES_PATH} has no phrase {key!r}.")
    template = phrase.es if lang == "es" else phrase.en
    missing = placeholders(template) - values.keys()
    if missing:
        raise PhrasesError(
            f"The phrase {key!r} of {PHRASES_PATH} needs a value for {', '.join(sorted(missing))}, "
            "which the engine did not give."
        )
    return template.format_map(values)
