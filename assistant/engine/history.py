"""Answers from the change history: what changed in a version, a year, or for a named unit or position."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from assistant.cues import cue, cue_words
from assistant.diff import summarise
from assistant.engine.catalog import named_outright
from assistant.engine.common import Draft, Lang, _cite, _date, manual_name, per_manual
from assistant.engine.query import (
    _ABOUT_MANUAL,
    _CHANGE_WORDS,
    _COUNT,
    _GROUP_WORDS,
    _HISTORY,
    _HISTORY_STRONG,
    _LATEST,
    _META_CODE,
    _META_PREPARED,
    _META_VERSIONS,
    _RECODE,
    _RESPONSIBILITY,
    _VERSION_NUM,
    _YEAR,
    CHANGE_KINDS,
    Query,
    history_cue,
    strong_history,
)
from assistant.models import Citation, HistoryEntry, Hit, Manual
from assistant.phrases import say
from assistant.text import fold, lexical_terms, stem
from assistant.versions import Catalogue

if TYPE_CHECKING:
    from assistant.engine.engine import GroundedEngine


def answer(engine: GroundedEngine, a: Query, lang: Lang, hits: list[Hit]) -> Draft | None:
    """A question the change history answers, for each manual whose history has it; None otherwise."""
    if not _asks_history(engine, a, hits):
        return None
    manuals = [m for m in a.manuals if m.history]
    number = _VERSION_NUM.search(a.q)
    if number and not a.scoped:
        # "What changed in version 5?" asks every manual whose history has a version 5, not only the one
        # served as a version-5 file.
        have = {m.code for m in manuals}
        manuals += [
            m
            for m in Catalogue(engine.archive).in_force()
            if m.code not in have and any(h.version == int(number.group(1)) for h in m.history)
        ]
    # Each manual whose history answers says so; an ambiguous question gets one short item per manual.
    # A unit or position only a history names, asked about: answered by the history that names it, none other.
    former = engine.catalog.names_former(a.q)
    found = per_manual([d for m in manuals if (d := _history_for(engine, m, a, lang, hits, former))], lang)
    if found is not None and _WHY.search(a.q):
        # "¿Por qué eliminaron el puesto?": a change table records what changed, never why. Say so, and show
        # what it records, without claiming an answer.
        return Draft(say("history_no_reasons", lang) + "\n" + found.text, False, found.citations)
    gone = _not_in_force(engine, a) if found is not None else None
    if found is not None and gone:
        found.text = say("history_not_in_force", lang, name=gone) + "\n" + found.text
    return found


def _not_in_force(engine: GroundedEngine, a: Query) -> str | None:
    """A unit or position only a change history knows, asked about as if it were in force ("¿Existe el puesto
    de Coordinador de Ventas?", no history cue): its name, as the question writes it."""
    if history_cue(a) or _WHEN_ASKED.search(a.q):
        return None
    gone = engine.catalog.gone(a.q)
    if not gone:
        return None
    folded = fold(a.text)
    at = folded.find(gone[0])
    return a.text[at : at + len(gone[0])] if at >= 0 and len(folded) == len(a.text) else gone[0]


def _history_for(
    engine: GroundedEngine, m: Manual, a: Query, lang: Lang, hits: list[Hit], former: bool
) -> Draft | None:
    q = a.q
    number = _VERSION_NUM.search(q)
    entries: list[HistoryEntry] = []
    if number:
        entries = [h for h in m.history if h.version == int(number.group(1))]
        if not entries:
            return None  # this manual has no such version
    elif _LATEST.search(q):
        entries = [max(m.history, key=lambda h: h.version)]
    if not entries:
        years = {int(y) for y in re.findall(r"\b(19\d\d|20\d\d)\b", q)}
        entries = [h for h in m.history if h.date and h.date.year in years]
    # A gerencia named for its manual ("the Gerencia Legal manual's code") says which history, not what changed.
    for_manual = bool(_ABOUT_MANUAL.search(q) or _META_CODE.search(q))
    history_names = engine.catalog.history_names(q, m)
    keys = [
        k
        for k in [fold(p) for p in a.positions]
        + [
            fold(x.name)
            for u in a.units
            if not _inside(u.start, u.end, history_names, q)
            # A group's history may name its members: "the two agencias" were split as Agencia X and Agencia Y.
            # (not the gerencia's: every unit is a member of it).
            for x in (u.unit, *(engine.catalog.children(u.unit) if u.unit.parent is not None else ()))
        ]
        + history_names
        + [p for p in engine.catalog.history_positions(q, m) if p not in {fold(x) for x in a.positions}]
        if not (for_manual and k == fold(m.gerencia))
    ]
    asks_news = bool(_CHANGE_WORDS.search(q) or _LATEST.search(q))
    if (
        not entries
        and not keys
        and asks_news
        and m.history
        and _computed_changes(engine, m, m.version or 0, lang)
    ):
        # Several versions served, nothing named: "what changed / which functions moved?" is about the
        # newest change, which the served versions also show.
        entries = [max(m.history, key=lambda h: h.version)]
    if not entries and not keys and former:
        return None  # the unit or position asked about is another manual's: this history does not name it
    if not entries:
        entries = _history_matches(engine, m, keys, q, hits)
    if not entries:
        return None
    return _compose(engine, m, entries, keys, a, lang)


def _inside(start: int, end: int, names: list[str], q: str) -> bool:
    """Whether a unit mention at [start, end) lies within a longer name the history gives: "Agencia" in "the
    Agencia Virtual" is that abolished unit, not the Agencias in force. A mention found by its words (start
    -1) gives way to any name the history gives."""
    if start < 0:
        return bool(names)  # a unit found by its words ("area de servicio…") where the history gives a name
    folded = fold(q)
    for name in names:
        at = folded.find(name)
        if at >= 0 and at <= start and end <= at + len(name) and end - start < len(name):
            return True
    return False


def _asks_history(engine: GroundedEngine, a: Query, hits: list[Hit]) -> bool:
    """Whether the question is one the change history answers (a version, a change, a manual's past)."""
    q = a.q
    number = _VERSION_NUM.search(q)
    rest = _VERSION_NUM.sub(" ", q)
    past = _HISTORY.search(rest) or _HISTORY_STRONG.search(rest)  # "what happened with X in version 8?"
    if number and not past and (a.units or a.positions or _RESPONSIBILITY.search(q)):
        return False  # "¿Quién se encargaba del cobro según la versión 10?" asks about that version's content
    if number and _META_PREPARED.search(q):
        return False  # "who was the analyst for that change (version 3)?": the document answerer's row
    cue = history_cue(a)
    dated = number or strong_history(a) or _YEAR.search(q)
    if _COUNT.search(q) and _GROUP_WORDS.search(q) and not dated:
        return False  # "how many work groups is the gerencia split into?" counts today's structure
    if _COUNT.search(q) and _META_VERSIONS.search(q) and not number:
        return False  # "how many versions has it had?" is the document answerer's count
    if cue and not dated and _RESPONSIBILITY.search(q):
        said = {m.group(0) for m in _HISTORY.finditer(q)} - a.duty_cues
        if said <= _WHEN_WORDS:
            return False  # "who appraises the vehicles before they are sold?": a duty's time, not the past
    if (
        cue
        and _RESPONSIBILITY.search(q)
        and not number
        and not _YEAR.search(q)
        and not _in_history(engine, a)
    ):
        # "¿Quién aprueba las modificaciones presupuestarias?", "who proposes amendments to the Fund's law?":
        # a present-day duty, of which no history speaks.
        return False
    top_is_history = bool(hits) and hits[0].chunk.section == "modificaciones"
    if number or strong_history(a):
        return True
    if not cue:
        # "when did it get its own organigrama?" (Sucursal Paseo): a unit's or position's dates are its history;
        # "¿Existe el puesto de Coordinador de Ventas?": of a name only a history knows, its history is all the
        # manuals say.
        return bool((_WHEN_ASKED.search(q) and (a.units or a.positions)) or engine.catalog.gone(q))
    return bool(
        top_is_history
        or a.positions
        or a.units
        or _ABOUT_MANUAL.search(q)
        or engine.catalog.history_names(q)
        or engine.catalog.history_positions(q)
    )


# Words that name the change history itself ("según el historial", "in which version").
_HISTORY_NAMED = cue("history_named")


def _in_history(engine: GroundedEngine, a: Query) -> bool:
    """Whether a change history speaks of what the question names or asks: the history itself, the manual, a
    unit or position named outright, a name only a history knows, or a topic word besides the history cues."""
    q = a.q
    # Named in the question itself, by more than a kind word ("la Gerencia" says whose a duty is).
    named = [
        m
        for m in named_outright(a.units)
        if m.start >= 0 and not m.in_expansion and " " in q[m.start : m.end]
    ]
    if a.positions or named or _ABOUT_MANUAL.search(q) or _HISTORY_NAMED.search(q):
        return True
    if engine.catalog.history_names(q) or engine.catalog.history_positions(q):
        return True
    cues = {stem(w) for c in (_HISTORY, _HISTORY_STRONG) for m in c.finditer(q) for w in m.group(0).split()}
    return bool((set(a.leftover) - cues) & engine.catalog.history_stems())


_NEWS = frozenset(cue_words("news_words"))
_WHEN_ASKED = cue("when_asked")
_WHY = cue("asks_why")
# History cue words that also place a duty in time ("before they are sold", "antes de firmar").
_WHEN_WORDS = frozenset(cue_words("when_words"))


def _compose(
    engine: GroundedEngine, m: Manual, entries: list[HistoryEntry], keys: list[str], a: Query, lang: Lang
) -> Draft:
    """The entries' changes, quoted (only those about the named units or positions, or the code, if any)."""
    number = _VERSION_NUM.search(a.q)
    lines: list[str] = []
    cites: list[Citation] = []
    # "What's new in version 3?" asks for every change: "new" names no kind of change.
    kinds = [k for k in CHANGE_KINDS if any(x.group(0) not in _NEWS for x in k.finditer(fold(a.q)))]
    who = _asks_preparer(a)
    for h in entries:
        changes = h.changes
        if keys and not number:
            focused = [c for c in changes if any(k in fold(c) for k in keys)]
            # "When were the two agencias split?": of the changes naming them, those of that kind.
            of_kind = [c for c in focused if any(kind.search(fold(c)) for kind in kinds)]
            changes = of_kind or focused or changes
        elif number and (kinds or a.positions):
            # "which position was eliminated in version 3?": that version's changes of that kind; "¿en la
            # versión 8 el Asistente de Ventanilla cambió de área?": those naming the position.
            posts = [fold(p) for p in a.positions]
            changes = (
                [c for c in changes if any(p in fold(c) for p in posts)]
                or [c for c in changes if any(kind.search(fold(c)) for kind in kinds)]
                or changes
            )
        elif _META_CODE.search(a.q) and not number:
            changes = [c for c in changes if _RECODE.search(fold(c))] or changes
        lines.append(say("history_version", lang, version=h.version, date=_date(h.date, lang)))
        for c in changes or [say("history_no_detail", lang)]:
            lines.append(f"- «{c}»")
            if h.changes:
                cites.append(_cite(m, None, "modificaciones", str(h.version), h.quote(c)))
        if who and h.prepared_by:
            # "who prepared the version that removed it?": the row's analyst, beside the change it made.
            lines.append(say("history_prepared", lang, who=h.prepared_by))
            cites.append(_cite(m, None, "modificaciones", str(h.version), h.prepared_by))
        lines += _computed_changes(engine, m, h.version, lang)
    if who and not any(h.prepared_by for h in entries):
        lines.append(say("history_prepared_unknown", lang))
    lead = say("history_lead", lang, manual=manual_name(m))
    return Draft(lead + "\n" + "\n".join(lines), True, cites)


def _asks_preparer(a: Query) -> bool:
    """Whether the question asks who prepared a version ("who was the analyst on the version that created
    it?", "¿quién elaboró la versión que la eliminó?"), a position's name aside ("when was the Analista de
    Crédito created?" does not) and a duty's verb too ("la sección, que redacta las escrituras")."""
    rest = a.q
    for p in sorted((fold(x) for x in a.positions), key=len, reverse=True):
        rest = rest.replace(p, " ")
    return bool(_ASKS_PREPARER.search(rest))


_ASKS_PREPARER = cue("asks_preparer")


def _computed_changes(engine: GroundedEngine, m: Manual, version: int, lang: Lang) -> list[str]:
    """What the parsed structures show changed into ``version``, when it and the one before are served."""
    versions = {x.version: x for x in engine.archive if x.code == m.code and x.version is not None}
    new = versions.get(version)
    older = [v for v in versions if v < version]
    if new is None or not older:
        return []
    old = versions[max(older)]
    found = summarise(engine.diff(old, new), lang)
    if not found:
        return []
    title = say("history_computed_changes", lang, old=old.version, new=new.version)
    return ["", title, *(f"- {line}" for line in found)]


def _history_matches(
    engine: GroundedEngine, m: Manual, keys: list[str], q: str, hits: list[Hit]
) -> list[HistoryEntry]:
    """Entries that best match the question: named positions/units first, then shared words."""
    expansion = engine.glossary.expand(q) if engine.glossary else ""
    terms = set(lexical_terms(f"{q} {expansion}")) - {"version", "manual", "cambi", "modif"}
    rank = {
        int(h.chunk.numeral or 0): i
        for i, h in enumerate(hits)
        if h.chunk.section == "modificaciones" and (h.chunk.numeral or "").isdigit()
    }
    if keys and not any(kind.search(q) for kind in CHANGE_KINDS):
        # What happened to a named unit or position: every entry that names it, oldest first.
        keyed = [h for h in m.history if any(k in fold(" ".join(h.changes)) for k in keys)]
        if keyed:
            return sorted(keyed, key=lambda h: h.version)[-4:]
    scored = []
    about_code = bool(_META_CODE.search(q))
    kinds = [kind for kind in CHANGE_KINDS if kind.search(q)]
    if keys and kinds:
        # "When was the Perito Valuador created?": the entries with a change that both names it and is of that
        # kind (not the later one that eliminated it, however many words it shares with the question).
        exact = [
            h
            for h in m.history
            if any(
                any(k in fold(c) for k in keys) and any(kind.search(fold(c)) for kind in kinds)
                for c in h.changes
            )
        ]
        if exact:
            return exact[:3]
    for h in m.history:
        body = fold(" ".join(h.changes))
        score = 3.0 * sum(1 for k in keys if k in body)
        score += 3.0 if about_code and _RECODE.search(body) else 0.0
        named = [c for c in h.changes if any(k in fold(c) for k in keys)] if keys else h.changes
        score += 2.0 * sum(1 for kind in kinds if any(kind.search(fold(c)) for c in named))
        score += len(terms & set(lexical_terms(body)))
        # The one change of that kind sharing most words with the question ("Creación de puesto de Perito
        # Valuador" for "when was the Perito Valuador created?"), not the entry with the most words overall.
        score += 2.0 * max(
            (
                len(terms & set(lexical_terms(c)))
                for c in named
                if any(kind.search(fold(c)) for kind in kinds)
            ),
            default=0,
        )
        score += 0.5 if rank.get(h.version) == 0 else 0.0
        scored.append((score, h))
    best = max((s for s, _h in scored), default=0.0)
    if best <= 0.5:
        return []
    return [h for s, h in scored if s == best][:3]
