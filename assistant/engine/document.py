"""Answers about the manual itself: its code, version, dates, who authorised, reviewed and owns it, its purpose."""

from __future__ import annotations

import datetime as dt
import re
from typing import TYPE_CHECKING

from assistant.chunk import spanish_date
from assistant.cues import cue_words
from assistant.engine.common import Draft, Lang, _and, _cite, _date, _quote_block, manual_name, per_manual
from assistant.engine.query import (
    _ABOUT_MANUAL,
    _CHANGE_WORDS,
    _COUNT,
    _LATEST,
    _MANUAL_AGE,
    _META_AUTH,
    _META_CODE,
    _META_CREATED,
    _META_EFFECTIVE,
    _META_OWNER,
    _META_PREPARED,
    _META_REVIEWED,
    _META_VERSION,
    _META_VERSIONS,
    _OBJECTIVE,
    _PAST,
    _RESPONSIBILITY,
    _VERSION_NUM,
    Query,
)
from assistant.models import Citation, Hit, Manual
from assistant.phrases import say
from assistant.versions import by_code, named_versions

if TYPE_CHECKING:
    from assistant.engine.engine import GroundedEngine

_NEWS_WORDS = frozenset(cue_words("news_words"))


# Creation asked in a clause of its own ("¿en qué versión está, y cuál es su fecha de creación?"), not of the
# version the question names first ("when was the current version created?" asks that version's date).
_CREATED_APART = re.compile(r"(?:,|;|\by\b|\band\b)[^,;]*\b(?:creat\w*|creo|creado|creacion)\b")


def answer(engine: GroundedEngine, a: Query, lang: Lang, hits: list[Hit]) -> Draft | None:
    """A question about the manual itself, answered for each manual it is about; None for anything else."""
    if not engine.catalog.manuals or a.positions:
        return None
    if a.units and a.explicit and any(m.unit.parent is not None for m in a.units):
        return None  # a question about a unit, not about a manual
    if engine.catalog.names_former(a.q):
        return None  # a former unit's or position's past, not the manual's
    if _MANUAL_AGE.search(a.q) and not _LATEST.search(a.q) and not _asks_more(a.q):
        # Two manuals the question names, else every manual served.
        compared = _by_age(a.manuals if a.scoped and len(a.manuals) > 1 else engine.catalog.manuals, lang)
        if compared is not None:
            return compared
    return per_manual([d for m in a.manuals if (d := _meta_for(m, a.q, lang))], lang)


def _meta_for(m: Manual, q: str, lang: Lang) -> Draft | None:
    about = bool(_ABOUT_MANUAL.search(q))
    parts: list[str] = []
    cites: list[Citation] = []
    changes = bool(_CHANGE_WORDS.search(q))  # "what changed in the latest version?" is for the history
    # "Which unit writes the code of ethics?" asks who does something, not the manual's code.
    asks_who = bool(_RESPONSIBILITY.search(q)) and not about
    if _META_CODE.search(q) and m.code and not changes and not _PAST.search(q) and not asks_who:
        parts.append(say("document_code", lang, code=m.code))
        cites.append(_cite(m, None, "documento", None, m.code))
    # "Who prepared the latest version / version 5?": the analyst the change history names for it.
    prepared = _prepared(m, q, lang, about)
    if prepared is not None:
        parts.append(prepared[0])
        cites += prepared[1]
    current = bool(_LATEST.search(q)) and not changes  # "what is the current version?"
    if (
        prepared is None
        and (about or current)
        and not changes
        and _META_VERSION.search(q)
        and m.version
        and not _VERSION_NUM.search(q)
    ):
        parts.append(say("document_version", lang, version=m.version))
    if about and _COUNT.search(q) and _META_VERSIONS.search(q) and m.history:
        numbers = sorted({h.version for h in m.history})
        parts.append(
            say(
                "document_version_count", lang,
                count=len(numbers), first=numbers[0], last=numbers[-1], version=m.version or numbers[-1],
            )
        )  # fmt: skip
        last = max(m.history, key=lambda h: h.version)
        cites.append(
            _cite(
                m,
                None,
                "modificaciones",
                str(last.version),
                last.quote(last.changes[0]) if last.changes else "",
            )
        )
    if _META_EFFECTIVE.search(q) and m.effective_date and not _VERSION_NUM.search(q):
        parts.append(say("document_effective", lang, date=_date(m.effective_date, lang), version=m.version))
        cites.append(_cite(m, None, "documento", None, spanish_date(m.effective_date)))
    if about and _META_AUTH.search(q) and m.authorized_by:
        parts.append(say("document_authorised", lang, who=m.authorized_by))
        cites.append(_cite(m, None, "documento", None, m.authorized_by))
    if about and _META_REVIEWED.search(q) and m.reviewed_by:
        who = _and([f"**{r}**" for r in m.reviewed_by], lang)
        parts.append(say("document_reviewed", lang, who=who))
        cites += [_cite(m, None, "documento", None, r) for r in m.reviewed_by]
    if _META_OWNER.search(q) and m.process_owner:
        parts.append(say("document_owner", lang, who=m.process_owner))
        cites.append(_cite(m, None, "documento", None, m.process_owner))
    if about and _META_CREATED.search(q) and m.created_date and (not parts or _CREATED_APART.search(q)):
        parts.append(say("document_created", lang, date=_date(m.created_date, lang)))
        cites.append(_cite(m, None, "documento", None, spanish_date(m.created_date)))
        first = min(m.history, key=lambda h: h.version, default=None)
        if first and first.changes:
            cites.append(_cite(m, None, "modificaciones", str(first.version), first.quote(first.changes[0])))
    if not parts:
        if about and _OBJECTIVE.search(q) and m.purpose:
            intro = say("document_purpose", lang, manual=manual_name(m))
            return Draft(
                f"{intro}\n{_quote_block(m.purpose)}",
                True,
                [_cite(m, None, "documento", None, m.purpose)],
            )
        return None
    lead = say("document_lead", lang, title=m.title, code=m.code)
    return Draft(lead + " " + " ".join(parts), True, cites)


def _asks_more(q: str) -> bool:
    """Whether a question about the newest or oldest manual asks something else of it (who authorised it, its
    objective, what changed) or asks who does something ("according to the manual, who handles the oldest
    requests?"): then it is not asking which manual is newer."""
    changed = any(m.group(0) not in _NEWS_WORDS for m in _CHANGE_WORDS.finditer(q))
    asked = (_META_AUTH, _OBJECTIVE, _META_PREPARED, _META_REVIEWED, _META_CODE, _META_OWNER, _RESPONSIBILITY)
    return changed or any(p.search(q) for p in asked)


def _by_age(manuals: list[Manual], lang: Lang) -> Draft | None:
    """The manuals listed most recent first by the date of their version in force, each with its creation
    date; None unless two or more gerencias' manuals have that date."""
    newest = [versions[-1] for versions in by_code(manuals).values()]  # each code's latest version
    dated = sorted(
        (m for m in newest if m.effective_date is not None),
        key=lambda m: m.effective_date or dt.date.min,
        reverse=True,
    )
    if len(dated) < 2:
        return None
    lines = []
    for m in dated:
        line = say(
            "document_age_line", lang,
            gerencia=m.gerencia, code=m.code, version=m.version, effective=_date(m.effective_date, lang),
        )  # fmt: skip
        created = _created(m)
        lines.append(
            line + (say("document_age_created", lang, date=_date(created, lang)) if created else ".")
        )
    born = [(c, m) for m in dated if (c := _created(m)) is not None]
    oldest = min(born, key=lambda cm: cm[0])[1] if born else dated[-1]
    summary = say("document_age_summary", lang, newest=dated[0].gerencia, oldest=oldest.gerencia)
    text = "\n".join([say("document_age_lead", lang), *lines, "", summary])
    cites = [
        _cite(m, None, "documento", None, spanish_date(m.effective_date)) for m in dated if m.effective_date
    ]
    return Draft(text, True, cites)


def _created(m: Manual) -> dt.date | None:
    """When a manual was created: its title block's date, else the date of version 1 in its change history."""
    first = [h.date for h in m.history if h.version == 1 and h.date is not None]
    return m.created_date or (first[0] if first else None)


def _prepared(m: Manual, q: str, lang: Lang, about: bool) -> tuple[str, list[Citation]] | None:
    """Who prepared a version (the one asked for, else the one in force), from its change-history row."""
    if not m.history or not _META_PREPARED.search(q) or not (about or _META_VERSION.search(q)):
        return None
    # "versions 2 and 3": each one asked for; none named, the one in force.
    wanted = named_versions(q) or [m.version or max(h.version for h in m.history)]
    entries = [h for n in wanted for h in m.history if h.version == n]
    if not entries:
        return None
    texts, cites = [], []
    for entry in entries:
        if not entry.prepared_by:
            texts.append(say("document_prepared_unknown", lang, version=entry.version))
            continue
        date = _date(entry.date, lang) if entry.date else "–"
        texts.append(say("document_prepared", lang, version=entry.version, date=date, who=entry.prepared_by))
        cites.append(_cite(m, None, "modificaciones", str(entry.version), entry.prepared_by))
    return " ".join(texts), cites
