"""Versions of one manual side by side: which one is in force, and which one a question is about.

Several versions of a manual (same code) can be served at once. The version *in force* on a date is the one
with the latest effective date that is not after it (ties: the higher version number); the others are
*superseded* (an earlier version) or *future* (effective after that date). ``resolve`` reads a question for
the version it asks about: present tense → the versions in force; a named version ("según la versión 10",
"in v9") → that version; a named date or year ("en 2016", "before 2018", "as of March 2015") → the versions in
force then; a past-tense cue ("la versión anterior", "who used to …") → the version before the one in force.
The words it looks for are data: ``assistant/data/versions.json``; the notes it writes (which version answers,
and why) are the ``versions_*`` phrases of ``assistant/data/phrases.json``.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from assistant.datafile import load_model
from assistant.errors import AssistantError
from assistant.models import Manual
from assistant.phrases import say
from assistant.template import fold

CUES_PATH = Path(__file__).parent / "data" / "versions.json"

Status = Literal["in_force", "superseded", "future"]
Kind = Literal["present", "version", "date", "previous"]


class VersionCuesError(AssistantError):
    """The version cue file is missing or malformed."""


class MonthNames(BaseModel):
    """How answers spell months, per language (January first)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    es: list[str] = Field(min_length=12, max_length=12)
    en: list[str] = Field(min_length=12, max_length=12)


class VersionCues(BaseModel):
    """The words that tell which version of a manual a question is about (folded, lower case)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    comment: str = Field("", alias="_comment")
    version_words: list[str] = Field(min_length=1)
    version_prefixes: list[str] = Field(min_length=1)
    months: dict[str, int] = Field(min_length=12)
    month_names: MonthNames
    before_words: list[str] = Field(min_length=1)
    after_words: list[str] = Field(min_length=1)
    previous_words: list[str] = Field(min_length=1)
    present_words: list[str] = Field(min_length=1)

    @field_validator("months")
    @classmethod
    def _month_numbers(cls, value: dict[str, int]) -> dict[str, int]:
        if any(not 1 <= n <= 12 for n in value.values()) or set(value.values()) != set(range(1, 13)):
            raise ValueError("every month 1..12 must be named at least once, with numbers 1..12 only")
        return {fold(name.strip()): n for name, n in value.items()}

    @field_validator(
        "version_words", "version_prefixes", "before_words", "after_words", "previous_words", "present_words"
    )
    @classmethod
    def _folded(cls, value: list[str]) -> list[str]:
        if any(not w.strip() for w in value):
            raise ValueError("cue words must not be empty")
        # Longest first, so "antes del" wins over "antes de" in an alternation.
        return sorted({" ".join(fold(w).split()) for w in value}, key=len, reverse=True)


def load_cues(path: str | Path = CUES_PATH) -> VersionCues:
    """Read and validate a cue file; raise `VersionCuesError` with one sentence naming file and field."""
    return load_model(path, VersionCues, VersionCuesError, "The version cue file", noun="field")


@lru_cache(maxsize=1)
def cues() -> VersionCues:
    """The packaged cue words, loaded and validated once."""
    return load_cues()


# --- the catalogue of versions ------------------------------------------------------------------------------


def code_of(manual: Manual) -> str:
    """What groups versions: the manual's code, or its id when it has none."""
    return manual.code or manual.id


def _age(manual: Manual) -> tuple[dt.date, int]:
    return (manual.effective_date or dt.date.min, manual.version if manual.version is not None else -1)


def by_code(manuals: Sequence[Manual]) -> dict[str, list[Manual]]:
    """The manuals grouped by code (codes in order of first appearance), each group oldest first."""
    groups: dict[str, list[Manual]] = {}
    for m in manuals:
        groups.setdefault(code_of(m), []).append(m)
    return {code: sorted(group, key=_age) for code, group in groups.items()}


def in_force_among(versions: Sequence[Manual], when: dt.date) -> Manual | None:
    """Of one code's versions, the one in force on ``when``: the latest effective date not after it
    (ties → the higher version). A version without an effective date counts as always in force, below any
    dated one."""
    eligible = [m for m in versions if m.effective_date is None or m.effective_date <= when]
    return max(eligible, key=_age) if eligible else None


class Catalogue:
    """The served manuals by code, with the version in force on ``as_of`` (today by default)."""

    def __init__(self, manuals: Sequence[Manual], as_of: dt.date | None = None) -> None:
        """Group the manuals; ``as_of`` is the date "in force" refers to."""
        self.as_of = as_of or dt.date.today()
        self.groups = by_code(manuals)

    @property
    def codes(self) -> list[str]:
        """Every code served, in order of first appearance."""
        return list(self.groups)

    def versions(self, code: str) -> list[Manual]:
        """The versions of one code, oldest first (empty for an unknown code)."""
        return list(self.groups.get(code, []))

    def has_several(self, code: str) -> bool:
        """Whether more than one version of the code is served."""
        return len({m.version for m in self.groups.get(code, [])}) > 1

    def current(self, code: str, when: dt.date | None = None) -> Manual | None:
        """The version of ``code`` in force on ``when`` (default: ``as_of``)."""
        return in_force_among(self.groups.get(code, []), when or self.as_of)

    def in_force(self, when: dt.date | None = None) -> list[Manual]:
        """One manual per code: the version in force on ``when`` (codes with none then are left out)."""
        found = (self.current(code, when) for code in self.groups)
        return [m for m in found if m is not None]

    def version(self, code: str, number: int) -> Manual | None:
        """The manual of ``code`` with this version number, if served."""
        return next((m for m in self.groups.get(code, []) if m.version == number), None)

    def _same(self, a: Manual, b: Manual | None) -> bool:
        return b is not None and code_of(a) == code_of(b) and (a.id == b.id or a.version == b.version)

    def status(self, manual: Manual) -> Status:
        """In force, superseded (older than the version in force) or future (effective after ``as_of``)."""
        current = self.current(code_of(manual))
        if self._same(manual, current):
            return "in_force"
        if manual.effective_date is not None and manual.effective_date > self.as_of:
            return "future"
        return "superseded"

    def predecessor(self, manual: Manual) -> Manual | None:
        """The version just before this one (by effective date, then number)."""
        older = [m for m in self.groups.get(code_of(manual), []) if _age(m) < _age(manual)]
        return older[-1] if older else None

    def successor(self, manual: Manual) -> Manual | None:
        """The version just after this one."""
        newer = [m for m in self.groups.get(code_of(manual), []) if _age(m) > _age(manual)]
        return newer[0] if newer else None

    def valid_until(self, manual: Manual) -> dt.date | None:
        """The last day this version was in force (the day before its successor took effect), if known."""
        nxt = self.successor(manual)
        if nxt is None or nxt.effective_date is None:
            return None
        return nxt.effective_date - dt.timedelta(days=1)

    def label(self, manual: Manual, language: Literal["es", "en"] = "es") -> str:
        """``versión 10 (sustituida; vigente del 15 de marzo de 2016 al 30 de junio de 2019)`` and the like."""
        return edition_label(manual, self.status(manual), self.valid_until(manual), language)


def format_date(value: dt.date, language: Literal["es", "en"] = "es") -> str:
    """``15 de marzo de 2016`` / ``15 March 2016``."""
    names = cues().month_names
    month = (names.es if language == "es" else names.en)[value.month - 1]
    return say("versions_date", language, day=value.day, month=month, year=value.year)


def edition_label(
    manual: Manual, status: Status, until: dt.date | None = None, language: Literal["es", "en"] = "es"
) -> str:
    """How an answer names a version: its number, whether it is in force, and when it was."""
    number = manual.version if manual.version is not None else "?"
    since = format_date(manual.effective_date, language) if manual.effective_date else None
    if status == "in_force":
        if since:
            return say("versions_edition_in_force_since", language, version=number, since=since)
        return say("versions_edition_in_force", language, version=number)
    if status == "future":
        if since:
            return say("versions_edition_future", language, version=number, since=since)
        return say("versions_edition", language, version=number)
    if since and until:
        until_text = format_date(until, language)
        return say(
            "versions_edition_superseded_between", language, version=number, since=since, until=until_text
        )
    return say("versions_edition_superseded", language, version=number)


# --- reading a question ------------------------------------------------------------------------------------


class Resolution(BaseModel):
    """Which manuals a question is to be answered from, and why (for the answer to state)."""

    model_config = ConfigDict(frozen=True)

    manuals: list[Manual]  # one per code (a question naming two versions gets both)
    kind: Kind
    as_of: dt.date  # the date "in force" referred to
    version: int | None = None  # the (first) version the question named
    when: dt.date | None = None  # the (first) date the question named, as resolved
    # The named version or date has no manual on file: ``manuals`` are the versions in force, whose change
    # history is what can still answer.
    history_only: bool = False
    reason_es: str = ""
    reason_en: str = ""

    def reason(self, language: Literal["es", "en"] = "es") -> str:
        """The short sentence that says which version answers and why."""
        return self.reason_es if language == "es" else self.reason_en


def _words_re(words: Sequence[str]) -> str:
    return "|".join(r"\s+".join(re.escape(part) for part in w.split()) for w in words)


@lru_cache(maxsize=1)
def _patterns() -> dict[str, re.Pattern[str]]:
    c = cues()
    month = _words_re(sorted(c.months, key=len, reverse=True))
    num = r"(?:n(?:o|ro|um|umero|umber)?\.?\s*|#\s*)?"
    prefixes = "|".join(re.escape(p) for p in sorted(c.version_prefixes, key=len, reverse=True))
    one = rf"(?:(?:{_words_re(c.version_words)})\s+{num}(\d{{1,3}})\b|\b(?:{prefixes})\s?(\d{{1,3}})\b)"
    more = r"(?:\s*(?:,|y|e|and|or|o|a|to|vs\.?|versus|con|with|contra)\s*(?:la\s+|el\s+|the\s+)?" + (
        rf"(?:(?:{_words_re(c.version_words)})\s+|(?:{prefixes})\s?)?(\d{{1,3}})\b)"
    )
    return {
        "version": re.compile(rf"(?<![\w.]){one}((?:{more})*)"),
        "more": re.compile(more),
        "date_es": re.compile(rf"\b(\d{{1,2}})\s+de\s+({month})\s+(?:de|del)\s+(\d{{4}})\b"),
        "date_en1": re.compile(rf"\b({month})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})\b"),
        "date_en2": re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?({month})\.?,?\s+(\d{{4}})\b"),
        "iso": re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b"),
        "dmy": re.compile(r"\b(\d{1,2})/(\d{1,2})/(\d{4})\b"),
        "month_year": re.compile(rf"\b({month})\.?\s+(?:(?:de|del|of)\s+)?(\d{{4}})\b"),
        "year": re.compile(r"(?<![\d-])((?:19|20)\d\d)(?![\d-])"),
        "before": re.compile(rf"(?:^|\W)(?:{_words_re(c.before_words)})\s+(?:(?:el|la|the|of)\s+)?$"),
        "after": re.compile(rf"(?:^|\W)(?:{_words_re(c.after_words)})\s+(?:(?:el|la|the|of)\s+)?$"),
        "previous": re.compile(rf"(?<!\w)(?:{_words_re(c.previous_words)})(?!\w)"),
        "present": re.compile(rf"(?<!\w)(?:{_words_re(c.present_words)})(?!\w)"),
    }


def named_versions(question: str) -> list[int]:
    """Version numbers a question names ("según la versión 10", "v9", "versions 10 and 11"), in order."""
    text = fold(question)
    found: list[int] = []
    for m in _patterns()["version"].finditer(text):
        numbers = [int(m.group(1) or m.group(2))]
        numbers += [int(x.group(1)) for x in _patterns()["more"].finditer(m.group(3) or "")]
        found += [n for n in numbers if n not in found]
    return found


def _period(kind: str, m: re.Match[str]) -> tuple[dt.date, dt.date] | None:
    months = cues().months
    try:
        if kind == "date_es":
            day = dt.date(int(m.group(3)), months[" ".join(m.group(2).split())], int(m.group(1)))
        elif kind == "date_en1":
            day = dt.date(int(m.group(3)), months[" ".join(m.group(1).split())], int(m.group(2)))
        elif kind == "date_en2":
            day = dt.date(int(m.group(3)), months[" ".join(m.group(2).split())], int(m.group(1)))
        elif kind == "iso":
            day = dt.date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        elif kind == "dmy":
            day = dt.date(int(m.group(3)), int(m.group(2)), int(m.group(1)))
        elif kind == "month_year":
            year, month = int(m.group(2)), months[" ".join(m.group(1).split())]
            last = calendar.monthrange(year, month)[1]
            return dt.date(year, month, 1), dt.date(year, month, last)
        else:
            year = int(m.group(1))
            return dt.date(year, 1, 1), dt.date(year, 12, 31)
    except (ValueError, KeyError):
        return None
    return day, day


def named_dates(question: str, as_of: dt.date | None = None) -> list[dt.date]:
    """The dates a question asks about, in order: a day, month or year is read as its last day ("en 2016" →
    31 Dec 2016, the version in force by then); "before X" as the day before X starts, "after X" as the day
    after it ends. Dates after ``as_of`` (today by default) become ``as_of``."""
    text = fold(question)
    today = as_of or dt.date.today()
    taken: list[tuple[int, int]] = []
    found: list[tuple[int, dt.date]] = []
    for kind in ("date_es", "date_en1", "date_en2", "iso", "dmy", "month_year", "year"):
        for m in _patterns()[kind].finditer(text):
            if any(s < m.end() and m.start() < e for s, e in taken):
                continue
            period = _period(kind, m)
            if period is None:
                continue
            taken.append((m.start(), m.end()))
            lead = text[max(0, m.start() - 30) : m.start()]
            if _patterns()["before"].search(lead):
                point = period[0] - dt.timedelta(days=1)
            elif _patterns()["after"].search(lead):
                point = period[1] + dt.timedelta(days=1)
            else:
                point = period[1]
            found.append((m.start(), min(point, today)))
    out: list[dt.date] = []
    for _pos, day in sorted(found):
        if day not in out:
            out.append(day)
    return out


def _labels(catalogue: Catalogue, manuals: Sequence[Manual], language: Literal["es", "en"]) -> str:
    """``la versión 11 (…)``, or ``901 0905, versión 11 (…); 901 0903, versión 7 (…)`` for several codes."""
    several = len({code_of(m) for m in manuals}) > 1
    ordered = sorted(manuals, key=lambda m: (catalogue.codes.index(code_of(m)), _age(m)))
    if several:
        return "; ".join(
            say("versions_edition_of_code", language, code=m.code, edition=catalogue.label(m, language))
            if m.code
            else catalogue.label(m, language)
            for m in ordered
        )
    named = [
        say("versions_edition_in_sentence", language, edition=catalogue.label(m, language)) for m in ordered
    ]
    text = named[0] if named else ""
    for edition in named[1:]:
        text = say("versions_editions_and", language, editions=text, edition=edition)
    return text


def _numbers(numbers: Sequence[int], language: Literal["es", "en"]) -> str:
    if len(numbers) == 1:
        return say("versions_named_one", language, version=numbers[0])
    listed = ", ".join(str(n) for n in numbers[:-1])
    return say("versions_named_many", language, versions=listed, last=numbers[-1])


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def resolve(question: str, manuals: Sequence[Manual], as_of: dt.date | None = None) -> Resolution:
    """The manuals a question should be answered from, and a short reason naming the version(s).

    ``manuals`` are all the served manuals (every version of every code); ``as_of`` is the date "in force"
    refers to (``settings.as_of``; today when None). Checked in this order: a named version, a named date or
    year, a cue for the previous version, else the present (the versions in force).
    """
    catalogue = Catalogue(manuals, as_of)
    today = catalogue.as_of
    current = catalogue.in_force()

    def fallback(
        kind: Kind, es: str, en: str, version: int | None = None, when: dt.date | None = None
    ) -> Resolution:
        return Resolution(
            manuals=current,
            kind=kind,
            as_of=today,
            version=version,
            when=when,
            history_only=True,
            reason_es=say(
                "versions_reason_from_history", "es", reason=es, editions=_labels(catalogue, current, "es")
            ),
            reason_en=say(
                "versions_reason_from_history", "en", reason=en, editions=_labels(catalogue, current, "en")
            ),
        )

    numbers = named_versions(question)
    if numbers:
        chosen = [m for code in catalogue.codes for n in numbers if (m := catalogue.version(code, n))]
        if not chosen:
            return fallback(
                "version",
                say("versions_reason_not_served", "es", versions=_capital(_numbers(numbers, "es"))),
                say("versions_reason_not_served", "en", versions=_capital(_numbers(numbers, "en"))),
                version=numbers[0],
            )
        return Resolution(
            manuals=chosen,
            kind="version",
            as_of=today,
            version=numbers[0],
            reason_es=say(
                "versions_reason_named",
                "es",
                versions=_numbers(numbers, "es"),
                editions=_labels(catalogue, chosen, "es"),
            ),
            reason_en=say(
                "versions_reason_named",
                "en",
                versions=_numbers(numbers, "en"),
                editions=_labels(catalogue, chosen, "en"),
            ),
        )

    dates = named_dates(question, today)
    if dates:
        chosen = []
        for day in dates:
            chosen += [m for m in catalogue.in_force(day) if m not in chosen]
        when_es = ", ".join(format_date(d) for d in dates)
        when_en = ", ".join(format_date(d, "en") for d in dates)
        if not chosen:
            return fallback(
                "date",
                say("versions_reason_none_on_date", "es", dates=when_es),
                say("versions_reason_none_on_date", "en", dates=when_en),
                when=dates[0],
            )
        return Resolution(
            manuals=chosen,
            kind="date",
            as_of=today,
            when=dates[0],
            reason_es=say(
                "versions_reason_on_date", "es", dates=when_es, editions=_labels(catalogue, chosen, "es")
            ),
            reason_en=say(
                "versions_reason_on_date", "en", dates=when_en, editions=_labels(catalogue, chosen, "en")
            ),
        )

    text = fold(question)
    if _patterns()["previous"].search(text) and not _patterns()["present"].search(text):
        chosen = [p for m in current if (p := catalogue.predecessor(m)) is not None]
        if not chosen:
            return fallback(
                "previous",
                say("versions_reason_no_previous", "es"),
                say("versions_reason_no_previous", "en"),
            )
        return Resolution(
            manuals=chosen,
            kind="previous",
            as_of=today,
            reason_es=say("versions_reason_previous", "es", editions=_labels(catalogue, chosen, "es")),
            reason_en=say("versions_reason_previous", "en", editions=_labels(catalogue, chosen, "en")),
        )

    return Resolution(
        manuals=current,
        kind="present",
        as_of=today,
        reason_es=say("versions_reason_present", "es", editions=_labels(catalogue, current, "es")),
        reason_en=say("versions_reason_present", "en", editions=_labels(catalogue, current, "en")),
    )
