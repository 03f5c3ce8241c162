"""Answers about the manual itself: its code, version, dates, who authorised, reviewed and owns it, its purpose."""

from __future__ import annotations

from typing import TYPE_CHECKING

from assistant.chunk import spanish_date
from assistant.engine.common import Draft, Lang, _and, _cite, _date, _quote_block, manual_name, per_manual
from assistant.engine.query import (
    _ABOUT_MANUAL,
    _CHANGE_WORDS,
    _LATEST,
    _META_AUTH,
    _META_CODE,
    _META_CREATED,
    _META_EFFECTIVE,
    _META_OWNER,
    _META_REVIEWED,
    _META_VERSION,
    _OBJECTIVE,
    _VERSION_NUM,
    Query,
)
from assistant.models import Citation, Hit, Manual

if TYPE_CHECKING:
    from assistant.engine.engine import GroundedEngine


def answer(engine: GroundedEngine, a: Query, lang: Lang, hits: list[Hit]) -> Draft | None:
    """A question about the manual itself, answered for each manual it is about; None for anything else."""
    if not engine.catalog.manuals or a.positions:
        return None
    if a.units and a.explicit and any(m.unit.parent is not None for m in a.units):
        return None  # a question about a unit, not about a manual
    return per_manual([d for m in a.manuals if (d := _meta_for(m, a.q, lang))], lang)


def _meta_for(m: Manual, q: str, lang: Lang) -> Draft | None:
    about = bool(_ABOUT_MANUAL.search(q))
    parts: list[str] = []
    cites: list[Citation] = []
    if _META_CODE.search(q) and m.code:
        parts.append(
            f"El código del manual es **{m.code}**."
            if lang == "es"
            else f"The manual's code is **{m.code}**."
        )
        cites.append(_cite(m, None, "documento", None, m.code))
    changes = bool(_CHANGE_WORDS.search(q))  # "what changed in the latest version?" is for the history
    current = bool(_LATEST.search(q)) and not changes  # "what is the current version?"
    if (
        (about or current)
        and not changes
        and _META_VERSION.search(q)
        and m.version
        and not _VERSION_NUM.search(q)
    ):
        parts.append(
            f"La versión vigente es la **{m.version}**."
            if lang == "es"
            else f"The current version is **{m.version}**."
        )
    if _META_EFFECTIVE.search(q) and m.effective_date and not _VERSION_NUM.search(q):
        parts.append(
            f"Está vigente desde el **{_date(m.effective_date, lang)}** (versión {m.version})."
            if lang == "es"
            else f"It has been in force since **{_date(m.effective_date, lang)}** (version {m.version})."
        )
        cites.append(_cite(m, None, "documento", None, spanish_date(m.effective_date)))
    if about and _META_AUTH.search(q) and m.authorized_by:
        parts.append(
            f"Lo autorizó el **{m.authorized_by}**."
            if lang == "es"
            else f"It was authorised by the **{m.authorized_by}**."
        )
        cites.append(_cite(m, None, "documento", None, m.authorized_by))
    if about and _META_REVIEWED.search(q) and m.reviewed_by:
        who = _and([f"**{r}**" for r in m.reviewed_by], lang)
        parts.append(f"Lo revisaron: {who}." if lang == "es" else f"It was reviewed by: {who}.")
        cites += [_cite(m, None, "documento", None, r) for r in m.reviewed_by]
    if _META_OWNER.search(q) and m.process_owner:
        parts.append(
            f"El responsable del proceso es el **{m.process_owner}**."
            if lang == "es"
            else f"The process owner is the **{m.process_owner}**."
        )
        cites.append(_cite(m, None, "documento", None, m.process_owner))
    if about and _META_CREATED.search(q) and m.created_date and not parts:
        parts.append(
            f"Se creó el **{_date(m.created_date, lang)}** (versión 1)."
            if lang == "es"
            else f"It was created on **{_date(m.created_date, lang)}** (version 1)."
        )
        cites.append(_cite(m, None, "documento", None, spanish_date(m.created_date)))
        first = min(m.history, key=lambda h: h.version, default=None)
        if first and first.changes:
            cites.append(_cite(m, None, "modificaciones", str(first.version), first.changes[0]))
    if not parts:
        if about and _OBJECTIVE.search(q) and m.purpose:
            intro = (
                f"Objetivo del manual {manual_name(m)}:"
                if lang == "es"
                else f"The stated purpose of the manual {manual_name(m)}:"
            )
            return Draft(
                f"{intro}\n{_quote_block(m.purpose)}",
                True,
                [_cite(m, None, "documento", None, m.purpose)],
            )
        return None
    title = f"*{m.title}* ({m.code})"
    lead = f"Según el {title}:" if lang == "es" else f"According to the {title}:"
    return Draft(lead + " " + " ".join(parts), True, cites)
