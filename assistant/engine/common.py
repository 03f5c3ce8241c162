"""What every answerer shares: the `Draft` it returns, citations, dates, lists, quotes and the plain decline."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal

from assistant.chunk import spanish_date
from assistant.cues import cue_words
from assistant.engine.catalog import Catalog
from assistant.models import Citation, Hit, Manual, Section, Unit
from assistant.phrases import say

Lang = Literal["es", "en"]

MONTHS_EN = list(cue_words("months_en"))


@dataclass
class Draft:
    """What an engine produced before the chain stamps timing and sources onto it."""

    text: str
    answered: bool
    citations: list[Citation] = field(default_factory=list)
    # The calibrated support (0..1) of the quoted duty line for the question's topic, when one was scored.
    support: float | None = None


def _cite(
    manual: Manual, unit: str | None, section: Section, numeral: str | None, quote: str, score: float = 1.0
) -> Citation:
    return Citation(
        unit=unit,
        section=section,
        numeral=numeral,
        quote=quote,
        manual=manual.id,
        score=score,
        manual_code=manual.code,
        version=manual.version,
        gerencia=manual.gerencia,
    )


def _date(d: object, lang: Lang) -> str:
    if not isinstance(d, dt.date):
        return "?"
    if lang == "es":
        return spanish_date(d)
    return f"{MONTHS_EN[d.month - 1]} {d.day}, {d.year}"


def _and(items: list[str], lang: Lang) -> str:
    if not items:
        return ""
    if len(items) == 1:
        return items[0]
    word = " y " if lang == "es" else " and "
    return ", ".join(items[:-1]) + word + items[-1]


def _quote_block(text: str) -> str:
    return f"> «{text}»"


def decline(lang: Lang, hits: list[Hit], reason: str = "") -> Draft:
    topics: list[str] = []
    for h in hits:
        label = h.chunk.unit or say("topic_change_history", lang)
        if h.chunk.section == "documento":
            label = say("topic_manual_details", lang)
        if label not in topics:
            topics.append(label)
        if len(topics) == 3:
            break
    text = reason or say("decline_not_covered", lang)
    if topics:
        text += " " + say("decline_closest_topics", lang, topics=_and(topics, lang))
    return Draft(text=text, answered=False)


def per_manual(drafts: list[Draft], lang: Lang) -> Draft | None:
    """One draft per manual: a single one as it is, several as a short list, one item each."""
    drafts = [d for d in drafts if d is not None and d.answered]
    if not drafts:
        return None
    if len(drafts) == 1:
        return drafts[0]
    lead = say("per_manual_lead", lang, count=len(drafts))
    body = "\n\n".join("- " + d.text.replace("\n", "\n  ") for d in drafts)
    return Draft(f"{lead}\n\n{body}", True, [c for d in drafts for c in d.citations])


def manual_name(m: Manual) -> str:
    """How an answer names a manual: its gerencia, code and version."""
    return f"*{m.label}*"


def unit_label(cat: Catalog, unit: Unit) -> str:
    kids = cat.children(unit)
    where = f", {cat.manual_of(unit).gerencia}" if cat.many and unit.parent is not None else ""
    if kids and unit.parent is not None:
        return f"**{unit.name}** ({', '.join(k.name for k in kids)}{where})"
    return f"**{unit.name}**" + (f" ({where[2:]})" if where else "")
