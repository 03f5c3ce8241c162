"""The MOF template's vocabulary (month names, section, unit and position words, labels), read from data.

The parser's knowledge of what a MOF looks like lives in ``assistant/data/template.json`` so that a new
Gerencia's wording is a data change, not a code change. The file is validated when first loaded.
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from assistant.datafile import load_model
from assistant.errors import AssistantError

TEMPLATE_PATH = Path(__file__).parent / "data" / "template.json"


class TemplateError(AssistantError):
    """The template data file is missing or malformed."""


def fold(text: str) -> str:
    """Lower-case and strip accents (for matching, never for display)."""
    nfkd = unicodedata.normalize("NFKD", text)
    return "".join(c for c in nfkd if not unicodedata.combining(c)).lower()


class SectionKinds(BaseModel):
    """Words of a roman section's title that tell what the section holds (upper case)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    history: list[str] = Field(min_length=1)
    chart: list[str] = Field(min_length=1)
    structure: list[str] = Field(min_length=1)
    purpose: list[str] = Field(min_length=1)


class Template(BaseModel):
    """The vocabulary of the MOF template."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    months: dict[str, int] = Field(min_length=12)
    section_kinds: SectionKinds
    objective_labels: list[str] = Field(min_length=1)
    function_labels: list[str] = Field(min_length=1)
    unit_words: frozenset[str] = Field(min_length=1)
    position_words: frozenset[str] = Field(min_length=1)
    small_words: frozenset[str] = Field(min_length=1)

    @field_validator("months")
    @classmethod
    def _month_numbers(cls, value: dict[str, int]) -> dict[str, int]:
        bad = [name for name, number in value.items() if not 1 <= number <= 12]
        if bad or set(value.values()) != set(range(1, 13)):
            raise ValueError("every month 1..12 must be named once at least, with numbers 1..12 only")
        return {name.lower(): number for name, number in value.items()}

    @field_validator("unit_words", "position_words", "small_words", mode="after")
    @classmethod
    def _folded(cls, value: frozenset[str]) -> frozenset[str]:
        if any(not w.strip() or " " in w.strip() for w in value):
            raise ValueError("words must be single, non-empty words")
        return frozenset(fold(w.strip()) for w in value)

    @field_validator("objective_labels", "function_labels")
    @classmethod
    def _longest_first(cls, value: list[str]) -> list[str]:
        if any(not label.strip() for label in value):
            raise ValueError("labels must not be empty")
        # Longest first, so "Objetivo General" wins over "Objetivo" in an alternation.
        return sorted((label.strip() for label in value), key=len, reverse=True)


def load_template(path: str | Path = TEMPLATE_PATH) -> Template:
    """Read and validate a template file; raise `TemplateError` with one sentence naming file and field."""
    return load_model(path, Template, TemplateError, "The MOF template file", noun="field")


@lru_cache(maxsize=1)
def template() -> Template:
    """The packaged template, loaded and validated once."""
    return load_template()
