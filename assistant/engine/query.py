"""The analysis of a question, done once: the units, positions and manuals it names, its topic words, and the
intent cues (data/cues.json) the answerers route on.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from assistant.cues import cue, cue_words
from assistant.engine.catalog import (
    Catalog,
    _cognate,
    _Mention,
    _whole_words,
    named_outright,
    unit_initials,
    word_family,
)
from assistant.engine.common import MONTHS_EN
from assistant.models import Manual
from assistant.retrieve import Glossary
from assistant.template import template
from assistant.text import STOP_ES, fold, lexical_terms, stem, tokens

# Intent cues, matched on accent-folded, lower-case text.
_RESPONSIBILITY = cue("responsibility")
_HEAD = cue("head")
_POSITIONS = cue("positions")
_REPORTS = cue("reports")
_WHERE = cue("where")
# "send a monthly report to the Gerencia" names a document, not a reporting line.
_REPORT_NOUN = cue("report_noun")
# ... but "who does the head of an agency report to?", "the agencias report to quién?" ask a reporting line.
_REPORT_VERB = cue("report_verb")
# "who do they send statistical reports to?": reports sent somewhere are a duty, whatever follows.
_REPORT_SENT = cue("report_sent")


def _asks_reports(q: str) -> bool:
    """Whether a question asks whom someone reports to (not about a report as a document)."""
    if _REPORT_SENT.search(q):
        return False  # "who do they send statistical reports to?": sending reports is a duty
    return bool(_REPORTS.search(q)) and (not _REPORT_NOUN.search(q) or bool(_REPORT_VERB.search(q)))


# "¿A qué gerencia pertenece el Área X?": the unit's place in the organisation, not a duty.
_BELONGS = cue("belongs")
_OBJECTIVE = cue("objective")
_FUNCTIONS = cue("functions")
_COUNT = cue("count")
_GROUP_WORDS = cue("group_words")
_GROUP_WORDS_PLURAL = cue("group_words_plural")
_LIST = cue("list")
_PLURAL_UNITS = cue("plural_units")
_HISTORY = cue("history")
_HISTORY_STRONG = cue("history_strong")
_LATEST = cue("latest")
_CHANGE_WORDS = cue("change_words")
_VERSION_NUM = cue("version_num")
_YEAR = re.compile(r"\b(19|20)\d\d\b")
_ABOUT_MANUAL = cue("about_manual")
# "¿Cuál es el manual más reciente?", "is Legal's manual older than Créditos'?": the manuals compared by date.
_MANUAL_AGE = cue("manual_age")
_META_CODE = cue("meta_code")
_META_EFFECTIVE = cue("meta_effective")
_META_AUTH = cue("meta_auth")
_META_VERSION = cue("meta_version")
# "what was the code before?": the manual as it was, for the change history to answer.
_PAST = cue("past")
# The words before a unit named as where something is done ("en la", "at an").
_LOCATIVE = cue("locative")
# "a nivel de gerencia", "at management level": the gerencia's own lines, not those of its units.
_TOP_LEVEL = cue("top_level")
# Words before the unit a duty is done to or with ("… and hands them over to the", "coordina con el").
_OTHER_PARTY = cue("other_party")
# Each kind of change, as a question asks it and as a history line says it ("added" ~ "incorporación").
CHANGE_KINDS = tuple(cue(f"kind_{k}") for k in ("created", "removed", "renamed", "moved", "split", "raised"))
# "¿Qué puesto se encarga de …?": a position, where the manual assigns duties to units.
_WHICH_POSITION = cue("which_position")
# "does that area have anyone for quality control?": a person, so a position, is asked for.
_ASKS_PERSON = cue("asks_person")
# A change history entry that gave the manual a new code ("Recodificación del instrumento 901 231 905 por …").
_RECODE = cue("recode")
_META_VERSIONS = cue("meta_versions")
_META_REVIEWED = cue("meta_reviewed")
_META_PREPARED = cue("meta_prepared")
_META_OWNER = cue("meta_owner")
_META_CREATED = cue("meta_created")
# Words that only shape a question; they carry no topic of their own.
_QUESTION_WORDS = frozenset(cue_words("question_words"))
_DETERMINERS = frozenset(cue_words("determiners"))


@dataclass(frozen=True)
class FollowUp:
    """A follow-up rewritten with the previous question's topic: the user's own words, and the lines the
    previous answer quoted."""

    text: str
    quotes: frozenset[str]


@dataclass
class Query:
    """A question analysed once: the units, positions and manuals it names and the topic words left over."""

    q: str  # folded question (typos corrected)
    units: list[_Mention]
    explicit: bool  # units named in the question itself, not only through the glossary
    positions: list[str]
    leftover: list[str]  # topic stems left after unit, position and question words
    text: str  # the question as searched (typos corrected, not folded): its vector is already cached
    # The manuals the question is about: those it names (by code, gerencia, unit or position), else all.
    manuals: list[Manual] = field(default_factory=list)
    scoped: bool = False  # the question itself narrowed `manuals`
    expansion: str = ""  # the question's glossary translation (EN↔ES), as retrieval used it
    follow_up: FollowUp | None = None  # set when the question leans on the previous answer's topic
    # Change-history cue words the question uses as a duty's words ("who autoriza los traslados del personal?").
    duty_cues: frozenset[str] = frozenset()


def _names_a_time(word: str) -> bool:
    """Words that name a version or a date ("versión", "10", "2016", "marzo"): they choose the version a
    question is answered from (assistant/versions.py), they are not its topic."""
    return word.isdigit() or word in _TIME_WORDS


_TIME_WORDS = frozenset(
    [
        "version",
        "versiones",
        "versions",
        "revision",
        "segun",
        "according",
        "vigente",
        "current",
        *template().months,
    ]
    + [m.lower() for m in MONTHS_EN]
)


def _inside(name: str, text: str, spans: list[tuple[int, int]]) -> bool:
    """Whether every occurrence of ``name`` in ``text`` (both folded) lies within one of the spans."""
    found = list(_whole_words(name).finditer(text))
    return bool(found) and all(any(s <= m.start() and m.end() <= e for s, e in spans) for m in found)


_STRUCTURAL = tuple(cue_words("structural"))
# "Hola, ¿quién dirige …?": a greeting is no part of the topic.
_GREETINGS = frozenset(cue_words("greetings"))


def is_structural(term: str) -> bool:
    """Whether a leftover word is a structural one (jefe, puesto, función …), not a topic."""
    return any(term.startswith(s) for s in _STRUCTURAL)


def leftover_topic(leftover: list[str]) -> bool:
    """Whether topic words remain beyond structural ones (jefe, puesto, función …)."""
    return not all(is_structural(t) for t in leftover)


def _read_tokens(original: str, fixed: str) -> list[str]:
    """The question's words, read corrected where the correction keeps them in step ("who heds it?" leaves
    "heads", a structural word, not a topic)."""
    toks = tokens(original)
    corrected = tokens(fixed)
    return corrected if len(corrected) == len(toks) else toks


def _positions_in_other_words(
    catalog: Catalog, glossary: Glossary | None, fixed: str, expansion: str
) -> list[str]:
    """ "the quality control coordinator": an English name for a position, through the glossary; at least one
    of its words must be in the question itself, and its title word ("Coordinador") must be said or translated
    as such: "controlar" in the expansion of "control" names no "Administrador". The words of a unit the
    question names are not the position's ("does the Sucursal Paseo have a credit promoter?")."""
    rest = catalog.mask_names(fixed)
    own = {stem(t) for t in tokens(rest)}
    said = set(tokens(rest)) | set(tokens(expansion))
    return [
        p
        for p in catalog.find_positions_by_words(f"{rest} {expansion}")
        if own & {stem(t) for t in tokens(p)} and tokens(p)[0] in said and _close_together(p, rest, glossary)
    ]


def analyse(
    catalog: Catalog, glossary: Glossary | None, question: str, corrected: str, expansion: str
) -> Query:
    """Find the units and positions a question names and the topic words left over."""
    original, fixed = fold(question), fold(corrected)
    # Intent cues are looked for in both spellings; the corrected one only helps find names.
    q = original if fixed == original else f"{original} || {fixed}"
    positions = catalog.find_positions(fixed) or catalog.find_positions(original)
    worded = (
        [] if positions or not expansion else _positions_in_other_words(catalog, glossary, fixed, expansion)
    )
    positions = positions or worded
    units = catalog.find_units(fixed) or catalog.find_units(original) or catalog.find_initials(question)
    outright = named_outright(units)
    if outright:
        # "¿A qué gerencia pertenece la Sección X?": a word several gerencias share ("gerencia") names none of
        # them when the question also names a unit outright.
        units = outright
    if units and positions:
        # "¿Quién dirige la Unidad de Secretaría del Comité?" names a unit, not the position "Secretaria".
        spans_u = [(m.start, m.end) for m in units]
        positions = [p for p in positions if not _inside(fold(p), fixed, spans_u)]
    # Only a word several gerencias share ("which gerencia does the insurance area belong to?"): the unit named
    # in other words, if any, is the one asked about.
    shared_only = bool(units) and not outright
    fixed_spans = glossary.match_spans(fixed) if glossary else []
    by_words = catalog.find_units_by_words(fixed, fixed_spans) if shared_only and expansion else []
    if by_words:
        units = by_words
    explicit = bool(units) and not by_words
    spans = glossary.match_spans(original) if glossary else []
    if not units and expansion:
        units = _units_by_meaning(catalog, fixed, fixed_spans, expansion)
    if explicit:
        # Keep the most specific mention: "la agencia de San Miguel" is Agencia San Miguel, not Agencias.
        units = [
            m for m in units if not any(o.unit.parent == m.unit.name and o.start > m.start for o in units)
        ]
    names = {m.unit.name for m in units}
    toks = _read_tokens(original, fixed)
    drop = [False] * len(toks)
    for seq in (
        [tokens(m.unit.name) for m in units]
        + [tokens(a) for a, u, _m in catalog.unit_aliases if u.name in names]
        + [tokens(i) for m in units for i in unit_initials(m.unit)]
        + [tokens(p) for p in positions]
    ):
        n = len(seq)
        for i in range(len(toks) - n + 1):
            if n and toks[i : i + n] == seq:
                drop[i : i + n] = [True] * n
    for p in worded:
        says = _says(p, glossary)
        drop = [d or says(t) for t, d in zip(toks, drop, strict=True)]
    alias_words = {t for a, u, _m in catalog.unit_aliases if u.name in names for t in tokens(a)}
    # "the technical evaluation section": English cognates of a named unit's words name it, they are no topic.
    cognates = {c for t in alias_words if (c := _cognate(t))}
    drop = [d or _cognate(t) in cognates for t, d in zip(toks, drop, strict=True)]
    for i, j, add in spans:
        if alias_words & set(tokens(add)) or (
            not units and set(tokens(add)) & {"jefe", "puestos", "funciones"}
        ):
            drop[i:j] = [True] * (j - i)
    words = [
        w
        for w, d in zip(toks, drop, strict=True)
        if not d and w not in _QUESTION_WORDS and w not in _GREETINGS and not _names_a_time(w)
    ]
    strong = units if explicit else [m for m in units if m.start < 0]  # named, or every word translated
    if catalog.many:
        # A gerencia named in other words ("the credit management") scopes the question too.
        strong = strong + [
            m
            for m in catalog.find_units_by_words(fixed, fixed_spans)
            if m.unit.parent is None and all(o.unit is not m.unit for o in strong)
        ]
    if _RESPONSIBILITY.search(q):
        # "Who advises Recursos Humanos on dismissals?": a unit named as the other party of a duty does not say
        # which gerencia holds the duty; one named as the place does ("En San Miguel, ¿quién …?").
        before = fold(corrected)
        strong = [
            m
            for m in strong
            if m.unit.parent is None
            or m.in_expansion
            or (m.start < 0 and not _other_party(m, toks, spans))
            or (m.start >= 0 and _LOCATIVE.search(before[: m.start]))
        ]
    manuals, scoped = resolve_scope(catalog, fixed, strong, positions)
    duty_cues = _duty_cues(catalog, q, expansion)
    if scoped and len(manuals) < len(catalog.manuals):
        units, manuals, scoped = _in_scope(catalog, q, units, strong, manuals)
    return Query(
        q=q,
        units=units,
        explicit=explicit,
        positions=positions,
        leftover=lexical_terms(" ".join(words)),
        text=corrected,
        manuals=manuals,
        scoped=scoped,
        expansion=expansion,
        duty_cues=duty_cues,
    )


def _in_scope(
    catalog: Catalog, q: str, units: list[_Mention], strong: list[_Mention], manuals: list[Manual]
) -> tuple[list[_Mention], list[Manual], bool]:
    """The units, manuals and scoping of a question that names a gerencia (or another manual's unit)."""
    elsewhere = owners_asked(q, units, manuals)
    if elsewhere:
        return elsewhere, list(catalog.manuals), False
    # Inside a named gerencia, another gerencia's unit name is only topic words ("activos extraordinarios").
    return (
        [m for m in units if m.manual in manuals] or [m for m in strong if m.manual in manuals],
        manuals,
        True,
    )


def _other_party(m: _Mention, toks: list[str], spans: list[tuple[int, int, str]]) -> bool:
    """Whether a unit a question describes in its own words is the party a duty is done to or with ("Which
    unit auctions seized houses and hands them over to the repossessed assets area?"), not where it is done:
    the words before a run of words that say (or translate to) words of its name end with "to the", "al"…"""
    kinds = template().unit_words
    name = {t for t in tokens(m.unit.name) if t not in STOP_ES and t not in kinds and len(t) > 2}
    stems = {stem(t) for t in name}
    cognates = {c for t in name if (c := _cognate(t))}
    said = {k for k, w in enumerate(toks) if stem(w) in stems or (_cognate(w) or "") in cognates}
    said |= {k for i, j, add in spans if set(tokens(add)) & name for k in range(i, j)}
    # Each run of such words is one description ("repossessed properties … the repossessed assets area").
    starts = [k for k in sorted(said) if k - 1 not in said]
    return any(_OTHER_PARTY.search(" ".join(toks[: _before_kind(toks, k, kinds)]) + " ") for k in starts)


def _before_kind(toks: list[str], k: int, kinds: frozenset[str]) -> int:
    """Where a unit's description starts once its kind word is counted in ("al área de | bienes adjudicados")."""
    while k > 0 and (toks[k - 1] in kinds or toks[k - 1] in _DESCRIPTION_LINKS):
        k -= 1
    return k


# The words between a unit's kind word and the words that describe it ("área de", "department of").
_DESCRIPTION_LINKS = frozenset(cue_words("description_links"))


def owners_asked(q: str, units: list[_Mention], manuals: list[Manual]) -> list[_Mention]:
    """ "¿La Sección de Escrituración pertenece a la Gerencia Legal?": the gerencia named is the owner asked
    about, not where to look; the units of other manuals the question names outright are its subject."""
    if not _BELONGS.search(q):
        return []
    return [m for m in named_outright(units) if m.manual not in manuals and m.unit.parent is not None]


def _duty_cues(catalog: Catalog, q: str, expansion: str) -> frozenset[str]:
    """The change-history cue words of a present-day "who …?" question that a duty line uses beside another
    of its words: the duty's object ("traslados", "modificadas"), not the manual's past. A question that names
    a version or a year asks the past whatever its words."""
    if not _RESPONSIBILITY.search(q) or _VERSION_NUM.search(q) or _YEAR.search(q):
        return frozenset()
    said = {m.group(0) for c in (_HISTORY, _HISTORY_STRONG) for m in c.finditer(q) if " " not in m.group(0)}
    words = {t for t in tokens(f"{q} {fold(expansion)}") if t not in STOP_ES and len(t) > 3}
    found = set()
    for word in said:
        others = {stem(t) for t in words if word_family(t) != word_family(word) and not _HISTORY.fullmatch(t)}
        if catalog.duty_word(word, others):
            found.add(word)
    return frozenset(found)


def strong_history(a: Query, text: str | None = None) -> bool:
    """Whether the question (or ``text``, a part of it) is strongly about the change history, not only
    through a duty's words."""
    return any(m.group(0) not in a.duty_cues for m in _HISTORY_STRONG.finditer(a.q if text is None else text))


def history_cue(a: Query, text: str | None = None) -> bool:
    """Whether the question (or ``text``) has a change-history cue, not only through a duty's words."""
    found = _HISTORY.finditer(a.q if text is None else text)
    return strong_history(a, text) or any(m.group(0) not in a.duty_cues for m in found)


def _says(position: str, glossary: Glossary | None) -> Callable[[str], bool]:
    """Whether a question word says a word of a position's title, as written or translated."""
    stems = {stem(t) for t in tokens(position)}

    def says(word: str) -> bool:
        added = glossary.expand(word) if glossary else ""
        return stem(word) in stems or bool(stems & {stem(x) for x in tokens(added)})

    return says


def _close_together(position: str, text: str, glossary: Glossary | None) -> bool:
    """Whether the words of a question that say a position's title, as written or translated, stand together
    as a name would ("the quality control coordinator"), not scattered ("el analista de la versión 4 del
    manual de Créditos", "the analyst for version 2 of the Créditos manual")."""
    says = _says(position, glossary)
    at = [i for i, t in enumerate(tokens(text)) if says(t)]
    return len(at) < 2 or at[-1] - at[0] < len(tokens(position)) + 2


def _units_by_meaning(
    catalog: Catalog, fixed: str, spans: list[tuple[int, int, str]], expansion: str
) -> list[_Mention]:
    """Units a question names in other words: "the sales area" names Área de Ventas through the glossary
    ("sales" -> "ventas"); "the credit management" names Gerencia de Créditos when every word of the name is
    there, translated. A phrase the glossary translates into another manual's unit name ("regional office" →
    Agencia) is as much a candidate as a unit its own words name: both are kept when they differ in manual."""
    units = catalog.find_units_by_words(fixed, spans)
    named = {m.manual.id for m in units}
    others = [m for m in catalog.find_units(expansion) if m.manual.id not in named]
    if named and all(m.unit.parent is not None for m in units):
        return units + [_Mention(m.unit, m.manual, -1, -1) for m in others if m.unit.parent is not None]
    return units or [replace(m, in_expansion=True) for m in others]


def resolve_scope(
    cat: Catalog, folded: str, units: list[_Mention], positions: list[str]
) -> tuple[list[Manual], bool]:
    """The manuals a question is about: named by code, by a unit, or by a position only some have."""
    named = cat.find_manuals(folded)
    # A word several gerencias share ("la gerencia") names none of them in particular.
    specific = named_outright(units)
    tops = [m for m in specific if m.unit.parent is None]
    if not named and tops:
        # A named gerencia outweighs units of other gerencias that the question also mentions.
        named = list({m.manual.id: m.manual for m in tops}.values())
    if not named and specific:
        named = list({m.manual.id: m.manual for m in specific}.values())
    elif not named and units:
        named = list({m.manual.id: m.manual for m in units}.values())
    if not named and positions:
        having = {m.id for p in positions for _u, m in cat.units_with_position(p)}
        if having and len(having) < len(cat.manuals):
            named = [m for m in cat.manuals if m.id in having]
    if not named and not units:
        # A unit only a change history names ("¿Qué pasó con la Unidad de Gestión de Garantías?").
        told = [m for m in cat.manuals if cat.history_names(folded, m)]
        if told and len(told) < len(cat.manuals):
            named = told
    if named:
        return named, True
    return list(cat.manuals), False
