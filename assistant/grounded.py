"""The grounded answer engine: composes answers from the manual's structure and retrieved lines, no LLM.

Every sentence it writes is a template filled with unit names, position names and verbatim manual lines, so
it cannot say anything the manual does not. Questions about structure (heads, positions, reporting lines,
where a position sits, objectives, history, the document itself) are answered from the parsed `Manual`;
"who handles X" questions from the retrieved function lines. It declines when the question asks for a kind
of information no MOF holds (`corpus/scope.json`), names a unit the manual does not have, or when retrieval
support is weak.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from assistant.chunk import spanish_date
from assistant.cues import cue, cue_words
from assistant.diff import diff_manuals, summarise
from assistant.models import Chunk, Citation, Function, HistoryEntry, Hit, Manual, Section, Unit
from assistant.retrieve import Glossary
from assistant.settings import AnswerSettings
from assistant.support import POLITE, Scored, SupportScorer
from assistant.template import template
from assistant.text import STOP_EN, STOP_ES, fold, lexical_terms, stem, tokens
from assistant.versions import Catalogue

Lang = Literal["es", "en"]

_GENERIC_PREFIXES = tuple(cue_words("generic_prefixes"))
_MONTHS_EN = list(cue_words("months_en"))

# Intent cues, matched on accent-folded, lower-case text.
_RESPONSIBILITY = cue("responsibility")
_HEAD = cue("head")
_POSITIONS = cue("positions")
_REPORTS = cue("reports")
_WHERE = cue("where")
# "send a monthly report to the Gerencia" names a document, not a reporting line.
_REPORT_NOUN = cue("report_noun")


def _asks_reports(q: str) -> bool:
    """Whether a question asks whom someone reports to (not about a report as a document)."""
    return bool(_REPORTS.search(q)) and not _REPORT_NOUN.search(q)


# "¿A qué gerencia pertenece el Área X?": the unit's place in the organisation, not a duty.
_BELONGS = cue("belongs")
_OBJECTIVE = cue("objective")
_FUNCTIONS = cue("functions")
_COUNT = cue("count")
_GROUP_WORDS = cue("group_words")
_LIST = cue("list")
_PLURAL_UNITS = cue("plural_units")
_HISTORY = cue("history")
_HISTORY_STRONG = cue("history_strong")
_LATEST = cue("latest")
_CHANGE_WORDS = cue("change_words")
_VERSION_NUM = cue("version_num")
_ABOUT_MANUAL = cue("about_manual")
_META_CODE = cue("meta_code")
_META_EFFECTIVE = cue("meta_effective")
_META_AUTH = cue("meta_auth")
_META_VERSION = cue("meta_version")
_META_REVIEWED = cue("meta_reviewed")
_META_OWNER = cue("meta_owner")
_META_CREATED = cue("meta_created")
# Words that only shape a question; they carry no topic of their own.
_QUESTION_WORDS = frozenset(cue_words("question_words"))
_DETERMINERS = frozenset(cue_words("determiners"))


@dataclass
class Draft:
    """What an engine produced before the chain stamps timing and sources onto it."""

    text: str
    answered: bool
    citations: list[Citation] = field(default_factory=list)
    # The calibrated support (0..1) of the quoted duty line for the question's topic, when one was scored.
    support: float | None = None


@dataclass(frozen=True)
class _Mention:
    unit: Unit
    manual: Manual
    start: int
    end: int


@dataclass
class _Analysis:
    q: str  # folded question (typos corrected)
    units: list[_Mention]
    explicit: bool  # units named in the question itself, not only through the glossary
    positions: list[str]
    leftover: list[str]  # topic stems left after unit, position and question words
    text: str  # the question as searched (typos corrected, not folded): its vector is already cached
    # The manuals the question is about: those it names (by code, gerencia, unit or position), else all.
    manuals: list[Manual] = field(default_factory=list)
    scoped: bool = False  # the question itself narrowed `manuals`


@dataclass(frozen=True)
class ScopeTopic:
    """A kind of information MOF manuals do not hold, with its names for the decline message."""

    es: str
    en: str
    patterns: tuple[re.Pattern[str], ...]
    # Declined even in a "who handles …" question (e.g. people's names); others only when asked for directly.
    always: bool = False


def load_scope(path: str | Path) -> list[ScopeTopic]:
    """Read `corpus/scope.json`; a missing file means no topic is declined up front."""
    p = Path(path)
    if not p.exists():
        return []
    data = json.loads(p.read_text(encoding="utf-8"))
    return [
        ScopeTopic(t["es"], t["en"], tuple(re.compile(x) for x in t["patterns"]), bool(t.get("always")))
        for t in data["topics"]
    ]


def _whole_words(folded: str) -> re.Pattern[str]:
    """A pattern for ``folded`` (already accent-folded) as whole words of a folded text."""
    return re.compile(rf"(?<![a-z0-9]){re.escape(folded)}(?![a-z0-9])")


class Catalog:
    """Units and positions of the served manuals, with the aliases a question may use for them.

    Units are keyed by (manual, unit): two gerencias may each have an "Área de Ventas".
    """

    def __init__(self, manuals: list[Manual]) -> None:
        self.manuals = manuals
        self.units: list[tuple[Unit, Manual]] = [(u, m) for m in manuals for u in m.units]
        self._by_key = {(m.id, u.name): (u, m) for u, m in self.units}
        self._manual_of = {id(u): m for u, m in self.units}
        self.unit_aliases: list[tuple[str, Unit, Manual]] = []
        # "la gerencia", "the Director": the first word of a top unit's name or of its head's title names it
        # when no other served manual's top unit shares that word.
        generic: dict[str, list[tuple[Unit, Manual]]] = {}
        for u, m in self.units:
            if u.parent is None:
                for word in {fold(u.name).split(" ")[0], fold(u.head or "").split(" ")[0]} - {""}:
                    generic.setdefault(word, []).append((u, m))
        for word, owners in generic.items():
            # Shared by several gerencias ("el Gerente"), the word names each of them: answers are per manual.
            for owner in owners:
                self.unit_aliases.append((word, *owner))
        for u, m in self.units:
            for alias in self._aliases(u):
                self.unit_aliases.append((alias, u, m))
        self.unit_aliases.sort(key=lambda x: -len(x[0]))
        positions: dict[str, str] = {}
        for u, _m in self.units:
            for p in u.positions:
                positions.setdefault(fold(p), p)
        self.positions = sorted(positions.items(), key=lambda x: -len(x[0]))
        # Compiled once: every question is matched against every alias and position name.
        self._alias_patterns = [(_whole_words(alias), unit, m) for alias, unit, m in self.unit_aliases]
        self._position_patterns = [(_whole_words(key), name) for key, name in self.positions]
        self._code_patterns = [(_whole_words(fold(m.code)), m) for m in manuals if m.code]
        self.alias_stems = {stem(t) for a, _u, _m in self.unit_aliases for t in tokens(a)}
        self._former: dict[tuple[str, str], str] = {}
        # Each folded duty line → the units whose own function list holds it, in any manual. An agency that
        # lists exactly its group's lines is left out: those lines are the group's.
        self.duties: dict[str, list[tuple[Unit, Manual, Function]]] = {}
        for u, m in self.units:
            parent = self.parent(u)
            if parent is not None and parent.functions == u.functions and parent.parent is not None:
                continue
            for f in u.functions:
                self.duties.setdefault(fold(f.text), []).append((u, m, f))

    @staticmethod
    def _aliases(unit: Unit) -> set[str]:
        name = fold(unit.name)
        out = {name}
        for prefix in _GENERIC_PREFIXES:
            if name.startswith(prefix) and len(name) > len(prefix) + 3 and unit.parent is not None:
                out.add(name[len(prefix) :])
        if name.endswith("s") and " " not in name:
            out.add(name[:-1])  # "agencias" -> "agencia"
        return out

    @property
    def many(self) -> bool:
        """Whether more than one manual is served (answers then name each unit's gerencia)."""
        return len(self.manuals) > 1

    def manual_of(self, unit: Unit) -> Manual:
        """The manual a catalogued unit belongs to."""
        return self._manual_of[id(unit)]

    def find_units(self, text: str) -> list[_Mention]:
        """Units named in a text, longest alias first, without overlaps."""
        folded = fold(text)
        taken: list[tuple[int, int]] = []
        found: list[_Mention] = []
        for pattern, unit, manual in self._alias_patterns:
            for m in pattern.finditer(folded):
                if any(m.start() < e and s < m.end() for s, e in taken):
                    # The same name in two manuals ("Área de Ventas" twice) is two mentions of one span.
                    same = [f for f in found if (f.start, f.end) == (m.start(), m.end())]
                    if not same or any(f.manual.id == manual.id for f in same):
                        continue
                elif any(f.unit is unit for f in found):
                    continue
                taken.append((m.start(), m.end()))
                found.append(_Mention(unit, manual, m.start(), m.end()))
        found.sort(key=lambda x: x.start)
        return found

    def find_units_by_words(self, text: str, expansion: str) -> list[_Mention]:
        """Units every word of whose name is in the text or its glossary translation: "the credit management"
        → Gerencia de Créditos, "payroll unit" → Unidad de Planillas."""
        have = {stem(t) for t in tokens(f"{text} {expansion}")}
        best: list[tuple[int, Unit, Manual]] = []
        names = [(u.name, u, m) for u, m in self.units]
        names += [
            (old, pair[0], pair[1])
            for (mid, new), old in self._former.items()
            if (pair := self.unit(new, mid))
        ]
        for name, u, m in names:
            words = {stem(t) for t in tokens(name) if t not in STOP_ES and len(t) > 2}
            if len(words) >= 2 and words <= have:
                best.append((len(words), u, m))
        if not best:
            return []
        top = max(n for n, _u, _m in best)
        return [_Mention(u, m, -1, -1) for n, u, m in best if n == top]

    def add_alias(self, name: str, unit: Unit, manual: Manual) -> None:
        """Let a former name (from an earlier version) name a unit."""
        alias = fold(name)
        self.unit_aliases.append((alias, unit, manual))
        self.unit_aliases.sort(key=lambda x: -len(x[0]))
        self._alias_patterns = [(_whole_words(a), u, m) for a, u, m in self.unit_aliases]
        self.alias_stems |= {stem(t) for t in tokens(alias)}
        self._former[(manual.id, unit.name)] = name

    def former_name(self, mention: _Mention) -> str | None:
        """The former name a mention used, if it named the unit by it."""
        old = self._former.get((mention.manual.id, mention.unit.name))
        return old if old and mention.end - mention.start == len(fold(old)) else None

    def mask_names(self, folded: str) -> str:
        """A folded text with every unit and position name blanked out."""
        for pattern, _u, _m in self._alias_patterns:
            folded = pattern.sub(lambda m: " " * len(m.group(0)), folded)
        for pattern, _name in self._position_patterns:
            folded = pattern.sub(lambda m: " " * len(m.group(0)), folded)
        return folded

    def find_manuals(self, text: str) -> list[Manual]:
        """Manuals a text names by their code ("901 0903")."""
        folded = fold(text)
        return [m for pattern, m in self._code_patterns if pattern.search(folded)]

    def find_positions(self, text: str) -> list[str]:
        """Positions named in a text (their manual spelling), longest first, without overlaps."""
        folded = fold(text)
        taken: list[tuple[int, int]] = []
        out: list[str] = []
        for pattern, name in self._position_patterns:
            m = pattern.search(folded)
            if m and not any(m.start() < e and s < m.end() for s, e in taken):
                taken.append((m.start(), m.end()))
                out.append(name)
        return out

    def find_positions_by_words(self, text: str) -> list[str]:
        """Positions whose every content word is in the text (stemmed): "quality control coordinator"
        plus its glossary words names "Coordinador de Control de Calidad"."""
        have = {stem(t) for t in tokens(text)}
        found = []
        for key, name in self.positions:
            words = {stem(t) for t in tokens(key) if t not in STOP_ES and len(t) > 2}
            if len(words) >= 2 and words <= have:
                found.append((len(words), name))
        found.sort(key=lambda x: -x[0])
        return [name for n, name in found if n == found[0][0]][:1] if found else []

    def units_with_position(self, position: str) -> list[tuple[Unit, Manual]]:
        """Every unit whose chart lists this position."""
        key = fold(position)
        return [(u, m) for u, m in self.units if any(fold(p) == key for p in u.positions)]

    def unit(self, name: str | None, manual: str | None = None) -> tuple[Unit, Manual] | None:
        """The unit with this exact name (in this manual, when one is given)."""
        if manual is not None:
            return self._by_key.get((manual, name or ""))
        return next(((u, m) for u, m in self.units if u.name == name), None)

    def parent(self, unit: Unit) -> Unit | None:
        """The unit this one hangs from, in its own manual."""
        if unit.parent is None:
            return None
        pair = self._by_key.get((self.manual_of(unit).id, unit.parent))
        return pair[0] if pair else None

    def children(self, unit: Unit) -> list[Unit]:
        """Units whose parent is this unit, in its own manual."""
        manual = self.manual_of(unit)
        return [u for u in manual.units if u.parent == unit.name]

    def tops(self, manuals: list[Manual] | None = None) -> list[tuple[Unit, Manual]]:
        """The units with no parent (each manual's Gerencia or Dirección)."""
        wanted = {m.id for m in (manuals if manuals is not None else self.manuals)}
        return [(u, m) for u, m in self.units if u.parent is None and m.id in wanted]

    def top(self) -> tuple[Unit, Manual] | None:
        """The unit with no parent of the first manual."""
        tops = self.tops()
        return tops[0] if tops else None

    def label(self, unit: Unit) -> str:
        """A unit's name for an answer, with its gerencia when several manuals are served."""
        if not self.many or unit.parent is None:
            return unit.name
        return f"{unit.name} ({self.manual_of(unit).gerencia})"


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
    + [m.lower() for m in _MONTHS_EN]
)


def _inside(name: str, text: str, spans: list[tuple[int, int]]) -> bool:
    """Whether every occurrence of ``name`` in ``text`` (both folded) lies within one of the spans."""
    found = list(_whole_words(name).finditer(text))
    return bool(found) and all(any(s <= m.start() and m.end() <= e for s, e in spans) for m in found)


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
    return f"{_MONTHS_EN[d.month - 1]} {d.day}, {d.year}"


def _and(items: list[str], lang: Lang) -> str:
    if not items:
        return ""
    if len(items) == 1:
        return items[0]
    word = " y " if lang == "es" else " and "
    return ", ".join(items[:-1]) + word + items[-1]


def _quote_block(text: str) -> str:
    return f"> «{text}»"


def _close(term: str, pool: set[str]) -> bool:
    """A topic stem is found in a text, allowing a typo or two (``formalis`` ~ ``formaliz``)."""
    if term in pool:
        return True
    if len(term) < 5:
        return False
    return any(t[:3] == term[:3] and difflib.SequenceMatcher(None, t, term).ratio() >= 0.8 for t in pool)


class GroundedEngine:
    """Answers from the manuals' structure and retrieved hits; see the module docstring."""

    def __init__(
        self,
        manuals: list[Manual],
        settings: AnswerSettings,
        glossary: Glossary | None = None,
        scope: list[ScopeTopic] | None = None,
    ) -> None:
        self.settings = settings
        self.catalog = Catalog(manuals)
        self.glossary = glossary
        self.scope = scope or []
        # Set by the chain: searches one unit's chunks, for questions that name the unit as a place.
        self.search_in_unit: Callable[[str, str, str], list[Hit]] | None = None
        # Every served manual, all versions (set by the chain): the previous version of a manual is found here
        # to compute what changed.
        self.archive: list[Manual] = list(manuals)
        # The calibrated support scorer (assistant/support.py), attached by the chain once the index is open.
        self.support_scorer: Any = None

    # --- entry point ---------------------------------------------------------------------------------

    def answer(
        self, question: str, lang: Lang, hits: list[Hit], expansion: str = "", corrected: str | None = None
    ) -> Draft:
        """Compose the answer for a (standalone, sanitised) question, its hits and its typo-corrected form."""
        a = self.analyse(question, corrected or question, expansion)
        hits = self._scoped_hits(a, hits)
        declined = self._out_of_scope(a, lang, hits)
        if declined is not None:
            return declined
        order = [self._meta, self._history, self._structure]
        if _HISTORY_STRONG.search(a.q) or _VERSION_NUM.search(a.q):
            order = [self._history, self._meta, self._structure]
        for handler in order:
            draft = handler(a, lang, hits)
            if draft is not None:
                return self._with_renames(a, lang, draft)
        return self._with_renames(a, lang, self._who_handles(a, lang, hits, expansion))

    def learn_renames(self) -> None:
        """Old names of renamed units (from the previous version in the archive) become aliases of the new ones."""
        for m in self.catalog.manuals:
            older = [x for x in self.archive if x.code == m.code and (x.version or 0) < (m.version or 0)]
            if not m.code or not older:
                continue
            previous = max(older, key=lambda x: x.version or 0)
            for r in diff_manuals(previous, m).units_renamed:
                pair = self.catalog.unit(r.to_unit, m.id)
                if pair is not None:
                    self.catalog.add_alias(r.from_unit, pair[0], m)

    def _with_renames(self, a: _Analysis, lang: Lang, draft: Draft) -> Draft:
        """Say so when the question used a unit's former name."""
        notes = []
        for mention in a.units:
            old = self.catalog.former_name(mention)
            if old:
                notes.append(
                    f"«{old}» se llama ahora **{mention.unit.name}** (versión {mention.manual.version})."
                    if lang == "es"
                    else f"«{old}» is now called **{mention.unit.name}** (version {mention.manual.version})."
                )
        if not notes:
            return draft
        return Draft(draft.text + "\n\n" + " ".join(notes), draft.answered, draft.citations, draft.support)

    def _scoped_hits(self, a: _Analysis, hits: list[Hit]) -> list[Hit]:
        """The hits of the manuals a question names ("… en la Gerencia de Créditos"), searched there if few."""
        if not a.scoped or len(a.manuals) == len(self.catalog.manuals):
            return hits
        wanted = {m.id for m in a.manuals}
        kept = [h for h in hits if h.chunk.manual_id in wanted]
        if len(kept) < 3 and self.search_in_unit is not None:
            known = {h.chunk.id for h in kept}
            for manual_id in sorted(wanted):
                kept += [h for h in self.search_in_unit(a.text, "", manual_id) if h.chunk.id not in known]
            kept.sort(key=lambda h: -h.score)
        return kept

    def analyse(self, question: str, corrected: str, expansion: str) -> _Analysis:
        """Find the units and positions a question names and the topic words left over."""
        original, fixed = fold(question), fold(corrected)
        # Intent cues are looked for in both spellings; the corrected one only helps find names.
        q = original if fixed == original else f"{original} || {fixed}"
        positions = self.catalog.find_positions(fixed) or self.catalog.find_positions(original)
        if not positions and expansion and not self.catalog.find_units(fixed):
            # "the quality control coordinator": an English name for a position, through the glossary; at least
            # one of its words must be in the question itself.
            own = {stem(t) for t in tokens(fixed)}
            positions = [
                p
                for p in self.catalog.find_positions_by_words(f"{fixed} {expansion}")
                if own & {stem(t) for t in tokens(p)}
            ]
        units = self.catalog.find_units(fixed) or self.catalog.find_units(original)
        if units and positions:
            # "¿Quién dirige la Unidad de Secretaría del Comité?" names a unit, not the position "Secretaria".
            spans_u = [(m.start, m.end) for m in units]
            positions = [p for p in positions if not _inside(fold(p), fixed, spans_u)]
        explicit = bool(units)
        spans = self.glossary.match_spans(original) if self.glossary else []
        if not units and expansion:
            # "the sales area" names Área de Ventas through the glossary ("sales" -> "ventas"); "the credit
            # management" names Gerencia de Créditos when every word of the name is there, translated.
            units = self.catalog.find_units_by_words(fixed, expansion) or self.catalog.find_units(expansion)
        if explicit:
            # Keep the most specific mention: "la agencia de San Miguel" is Agencia San Miguel, not Agencias.
            units = [
                m for m in units if not any(o.unit.parent == m.unit.name and o.start > m.start for o in units)
            ]
        names = {m.unit.name for m in units}
        toks = tokens(original)
        drop = [False] * len(toks)
        for seq in (
            [tokens(m.unit.name) for m in units]
            + [tokens(a) for a, u, _m in self.catalog.unit_aliases if u.name in names]
            + [tokens(p) for p in positions]
        ):
            n = len(seq)
            for i in range(len(toks) - n + 1):
                if n and toks[i : i + n] == seq:
                    drop[i : i + n] = [True] * n
        alias_words = {t for a, u, _m in self.catalog.unit_aliases if u.name in names for t in tokens(a)}
        for i, j, add in spans:
            if alias_words & set(tokens(add)) or (
                not units and set(tokens(add)) & {"jefe", "puestos", "funciones"}
            ):
                drop[i:j] = [True] * (j - i)
        words = [
            w
            for w, d in zip(toks, drop, strict=True)
            if not d and w not in _QUESTION_WORDS and not _names_a_time(w)
        ]
        strong = units if explicit else [m for m in units if m.start < 0]  # named, or every word translated
        if self.catalog.many:
            # A gerencia named in other words ("the credit management") scopes the question too.
            strong = strong + [
                m
                for m in self.catalog.find_units_by_words(fixed, expansion)
                if m.unit.parent is None and all(o.unit is not m.unit for o in strong)
            ]
        manuals, scoped = self._scope(fixed, strong, positions)
        if scoped and len(manuals) < len(self.catalog.manuals):
            # Inside a named gerencia, another gerencia's unit name is only topic words ("activos extraordinarios").
            units = [m for m in units if m.manual in manuals] or [m for m in strong if m.manual in manuals]
        return _Analysis(
            q=q,
            units=units,
            explicit=explicit,
            positions=positions,
            leftover=lexical_terms(" ".join(words)),
            text=corrected,
            manuals=manuals,
            scoped=scoped,
        )

    def _scope(self, folded: str, units: list[_Mention], positions: list[str]) -> tuple[list[Manual], bool]:
        """The manuals a question is about: named by code, by a unit, or by a position only some have."""
        cat = self.catalog
        named = cat.find_manuals(folded)
        spans = [(m.start, m.end) for m in units]
        # A word several gerencias share ("la gerencia") names none of them in particular.
        tops = [m for m in units if m.unit.parent is None and spans.count((m.start, m.end)) == 1]
        if not named and tops:
            # A named gerencia outweighs units of other gerencias that the question also mentions.
            named = list({m.manual.id: m.manual for m in tops}.values())
        specific = [m for m in units if spans.count((m.start, m.end)) == 1]
        if not named and specific:
            named = list({m.manual.id: m.manual for m in specific}.values())
        elif not named and units:
            named = list({m.manual.id: m.manual for m in units}.values())
        if not named and positions:
            having = {m.id for p in positions for _u, m in cat.units_with_position(p)}
            if having and len(having) < len(cat.manuals):
                named = [m for m in cat.manuals if m.id in having]
        if named:
            return named, True
        return list(cat.manuals), False

    # --- declining -----------------------------------------------------------------------------------

    def _decline(self, lang: Lang, hits: list[Hit], reason: str = "") -> Draft:
        topics: list[str] = []
        for h in hits:
            label = h.chunk.unit or ("historial de cambios" if lang == "es" else "change history")
            if h.chunk.section == "documento":
                label = "datos del manual" if lang == "es" else "the manual's details"
            if label not in topics:
                topics.append(label)
            if len(topics) == 3:
                break
        if lang == "es":
            text = reason or "El manual no trata ese tema, así que no puedo responderlo con base en él."
            if topics:
                text += f" Lo más cercano que sí cubre: {_and(topics, lang)}."
        else:
            text = reason or "The manual does not cover that, so I can't answer it from the manual."
            if topics:
                text += f" The closest topics it does cover: {_and(topics, lang)}."
        return Draft(text=text, answered=False)

    def _out_of_scope(self, a: _Analysis, lang: Lang, hits: list[Hit]) -> Draft | None:
        # "¿Quién maneja el presupuesto de la agencia?" asks for a responsibility, which the manual may cover.
        asks_who = bool(_RESPONSIBILITY.search(a.q))
        # Names of units and positions are not topics: "la Dirección de Administración" asks for no address.
        q = self.catalog.mask_names(a.q)
        for topic in self.scope:
            if (topic.always or not asks_who) and any(p.search(q) for p in topic.patterns):
                reason = (
                    f"El manual de organización y funciones no incluye {topic.es}."
                    if lang == "es"
                    else f"The organisation and functions manual does not include {topic.en}."
                )
                return self._decline(lang, hits, reason)
        unknown = self._unknown_unit(a)
        if unknown:
            reason = (
                f'El manual no describe ninguna unidad llamada "{unknown}".'
                if lang == "es"
                else f'The manual does not describe any unit called "{unknown}".'
            )
            return self._decline(lang, hits, reason)
        return None

    def _unknown_unit(self, a: _Analysis) -> str | None:
        """A unit-like phrase ("the finance department", "Gerencia de Finanzas") the manuals do not have."""
        patterns = [
            r"\b(gerencia|departamento|unidad|division|seccion|agencia|sucursal) (de|del|de la|de los) "
            r"([a-z]+(?: [a-z]+)?)",
            r"\b(?:the )?((?:[a-z]+ )?[a-z]+) (department|division|unit|office|management|team|agency|branch)\b",
        ]
        for i, pat in enumerate(patterns):
            for m in re.finditer(pat, a.q.split(" || ")[0]):
                phrase = m.group(3) if i == 0 else m.group(1)
                words = [
                    w
                    for w in phrase.split()
                    if w not in _DETERMINERS and w not in STOP_EN and w not in STOP_ES
                ]
                if not words:
                    continue
                # "regional office" is an agency and "sales area" is Ventas: the glossary knows the phrase; but
                # "Sonsonate agency" is only known through its head noun, which does not make it a known unit.
                head = m.group(2) if i == 1 else m.group(1)
                known = set(tokens(self.glossary.expand(m.group(0)))) if self.glossary else set()
                known -= set(tokens(self.glossary.expand(head))) if self.glossary else set()
                stems = {stem(t) for t in tokens(" ".join(words))} | {stem(t) for t in known}
                if not stems & self.catalog.alias_stems:
                    return m.group(0).strip()
        return None

    # --- the document itself -------------------------------------------------------------------------

    def _per_manual(self, drafts: list[Draft], lang: Lang) -> Draft | None:
        """One draft per manual: a single one as it is, several as a short list, one item each."""
        drafts = [d for d in drafts if d is not None and d.answered]
        if not drafts:
            return None
        if len(drafts) == 1:
            return drafts[0]
        lead = (
            f"La pregunta vale para los {len(drafts)} manuales:"
            if lang == "es"
            else f"This applies to each of the {len(drafts)} manuals:"
        )
        body = "\n\n".join("- " + d.text.replace("\n", "\n  ") for d in drafts)
        return Draft(f"{lead}\n\n{body}", True, [c for d in drafts for c in d.citations])

    def _meta(self, a: _Analysis, lang: Lang, hits: list[Hit]) -> Draft | None:
        if not self.catalog.manuals or a.positions:
            return None
        if a.units and a.explicit and any(m.unit.parent is not None for m in a.units):
            return None  # a question about a unit, not about a manual
        return self._per_manual([d for m in a.manuals if (d := self._meta_for(m, a.q, lang))], lang)

    def _meta_for(self, m: Manual, q: str, lang: Lang) -> Draft | None:
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
                    f"Objetivo del manual {self._manual_name(m)}:"
                    if lang == "es"
                    else f"The stated purpose of the manual {self._manual_name(m)}:"
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

    # --- change history ------------------------------------------------------------------------------

    def _history(self, a: _Analysis, lang: Lang, hits: list[Hit]) -> Draft | None:
        manuals = [m for m in a.manuals if m.history]
        number = _VERSION_NUM.search(a.q)
        if number and not a.scoped:
            # "What changed in version 5?" asks every manual whose history has a version 5, not only the one
            # served as a version-5 file.
            have = {m.code for m in manuals}
            manuals += [
                m
                for m in Catalogue(self.archive).in_force()
                if m.code not in have and any(h.version == int(number.group(1)) for h in m.history)
            ]
        # Each manual whose history answers says so; an ambiguous question gets one short item per manual.
        return self._per_manual([d for m in manuals if (d := self._history_for(m, a, lang, hits))], lang)

    def _history_for(self, m: Manual, a: _Analysis, lang: Lang, hits: list[Hit]) -> Draft | None:
        q = a.q
        number = _VERSION_NUM.search(q)
        rest = _VERSION_NUM.sub(" ", q)
        if number and not _HISTORY.search(rest) and (a.units or a.positions or _RESPONSIBILITY.search(q)):
            return (
                None  # "¿Quién se encargaba del cobro según la versión 10?" asks about that version's content
            )
        top_is_history = bool(hits) and hits[0].chunk.section == "modificaciones"
        cue = _HISTORY.search(q) or _HISTORY_STRONG.search(q)
        if not (
            number
            or _HISTORY_STRONG.search(q)
            or (cue and (top_is_history or a.positions or a.units or _ABOUT_MANUAL.search(q)))
        ):
            return None
        if cue is None and number is None:
            return None
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
        keys = [fold(p) for p in a.positions] + [fold(u.unit.name) for u in a.units]
        asks_news = bool(_CHANGE_WORDS.search(q) or _LATEST.search(q))
        if (
            not entries
            and not keys
            and asks_news
            and m.history
            and self._computed_changes(m, m.version or 0, lang)
        ):
            # Several versions served, nothing named: "what changed / which functions moved?" is about the
            # newest change, which the served versions also show.
            entries = [max(m.history, key=lambda h: h.version)]
        if not entries:
            entries = self._history_matches(m, keys, q, hits)
        if not entries:
            return None
        lines: list[str] = []
        cites: list[Citation] = []
        for h in entries:
            changes = h.changes
            if keys and not number:
                focused = [c for c in changes if any(k in fold(c) for k in keys)]
                changes = focused or changes
            head = (
                f"**Versión {h.version}** ({_date(h.date, lang)}):"
                if lang == "es"
                else f"**Version {h.version}** ({_date(h.date, lang)}):"
            )
            lines.append(head)
            for c in changes or [("sin detalle legible" if lang == "es" else "no legible detail")]:
                lines.append(f"- «{c}»")
                if h.changes:
                    cites.append(_cite(m, None, "modificaciones", str(h.version), c))
            lines += self._computed_changes(m, h.version, lang)
        lead = (
            f"Según el historial de modificaciones del manual {self._manual_name(m)}:"
            if lang == "es"
            else f"According to the change history of the manual {self._manual_name(m)}:"
        )
        return Draft(lead + "\n" + "\n".join(lines), True, cites)

    def _computed_changes(self, m: Manual, version: int, lang: Lang) -> list[str]:
        """What the parsed structures show changed into ``version``, when it and the one before are served."""
        versions = {x.version: x for x in self.archive if x.code == m.code and x.version is not None}
        new = versions.get(version)
        older = [v for v in versions if v < version]
        if new is None or not older:
            return []
        old = versions[max(older)]
        found = summarise(diff_manuals(old, new), lang)
        if not found:
            return []
        title = (
            f"Cambios que muestran los manuales servidos (versión {old.version} → {new.version}):"
            if lang == "es"
            else f"Changes the served manuals show (version {old.version} → {new.version}):"
        )
        return ["", title, *(f"- {line}" for line in found)]

    def _manual_name(self, m: Manual) -> str:
        """How an answer names a manual: its gerencia, code and version."""
        return f"*{m.label}*"

    def _history_matches(self, m: Manual, keys: list[str], q: str, hits: list[Hit]) -> list[HistoryEntry]:
        """Entries that best match the question: named positions/units first, then shared words."""
        expansion = self.glossary.expand(q) if self.glossary else ""
        terms = set(lexical_terms(f"{q} {expansion}")) - {"version", "manual", "cambi", "modif"}
        rank = {
            int(h.chunk.numeral or 0): i
            for i, h in enumerate(hits)
            if h.chunk.section == "modificaciones" and (h.chunk.numeral or "").isdigit()
        }
        scored = []
        for h in m.history:
            body = fold(" ".join(h.changes))
            score = 3.0 * sum(1 for k in keys if k in body)
            score += len(terms & set(lexical_terms(body)))
            score += 0.5 if rank.get(h.version) == 0 else 0.0
            scored.append((score, h))
        best = max((s for s, _h in scored), default=0.0)
        if best <= 0.5:
            return []
        return [h for s, h in scored if s == best][:3]

    # --- structure -----------------------------------------------------------------------------------

    def _structure(self, a: _Analysis, lang: Lang, hits: list[Hit]) -> Draft | None:
        q = a.q
        topic = leftover_topic(a.leftover)
        staff = self._staff_of_position(a, lang)
        if staff is not None:
            return staff
        if a.positions and not _FUNCTIONS.search(q):
            if _asks_reports(q):
                return self._position_reports(lang, a.positions[0], a.units[0] if a.units else None)
            if _WHERE.search(q) or not topic:
                return self._where_position(lang, a.positions[0])
        groups = self._asked_groups(a, lang, topic)
        if groups is not None:
            return groups
        if not a.units:
            return None
        target = a.units[0]
        per_manual = self._structure_per_manual(a, lang, hits)
        if per_manual is not None:
            return per_manual
        unit, manual = target.unit, target.manual
        if unit.parent is not None and _BELONGS.search(q) and not a.positions and not _POSITIONS.search(q):
            return self._unit_place(lang, unit, manual)
        if _POSITIONS.search(q) and _asks_reports(q) and not _FUNCTIONS.search(q):
            return self._positions(
                lang, [t.unit for t in a.units], manual
            )  # "qué puestos dependen del Gerente"
        if _asks_reports(q) and not _HEAD.search(q):
            return self._unit_reports(lang, unit, manual)
        if _HEAD.search(q) and not topic:
            return self._head_and_boss(lang, unit, manual, q)
        if self._lists_positions(a):
            return self._positions(lang, [t.unit for t in a.units], manual)
        if _OBJECTIVE.search(q):
            return self._objective(lang, unit, manual)
        if _FUNCTIONS.search(q) and not topic:
            return self._functions(lang, unit, manual)
        return None

    def _head_and_boss(self, lang: Lang, unit: Unit, manual: Manual, q: str) -> Draft:
        """Who heads a unit, and whom it reports to when the question asks that too."""
        draft = self._head(lang, unit, manual)
        if _asks_reports(q):
            extra = self._unit_reports(lang, unit, manual)
            draft = Draft(draft.text + "\n\n" + extra.text, True, draft.citations + extra.citations)
        return draft

    def _structure_per_manual(self, a: _Analysis, lang: Lang, hits: list[Hit]) -> Draft | None:
        """ "el Gerente" when several gerencias are served names each top unit: one short answer per manual."""
        first = a.units[0]
        twins = [m for m in a.units if (m.start, m.end) == (first.start, first.end) and m.start >= 0]
        if len(twins) < 2:
            return None
        drafts = [self._structure(replace(a, units=[m], manuals=[m.manual]), lang, hits) for m in twins]
        return self._per_manual([d for d in drafts if d is not None], lang)

    def _asked_groups(self, a: _Analysis, lang: Lang, topic: bool) -> Draft | None:
        """ "¿Cuántos grupos tiene la Gerencia?": the groups of the named unit, or of each manual's top."""
        q, cat = a.q, self.catalog
        with_children = [m for m in a.units if cat.children(m.unit)]
        asks_groups = _GROUP_WORDS.search(q) and (_COUNT.search(q) or (_LIST.search(q) and not topic))
        about_top = with_children or not a.units or a.units[0].unit.parent is None
        if not (asks_groups and not a.positions and about_top):
            return None
        if with_children:
            return self._groups(lang, with_children[0].unit, with_children[0].manual)
        return self._per_manual([self._groups(lang, u, m) for u, m in cat.tops(a.manuals)], lang)

    def _staff_of_position(self, a: _Analysis, lang: Lang) -> Draft | None:
        """ "¿Qué puestos integran el staff del Gerente de Créditos?": the chart of the unit it heads."""
        if not (a.positions and _POSITIONS.search(a.q) and not _FUNCTIONS.search(a.q)):
            return None
        key = fold(a.positions[0])
        wanted = {m.id for m in a.manuals}
        headed = [
            (u, m)
            for u, m in self.catalog.units_with_position(a.positions[0])
            if fold(u.head or "") == key and m.id in wanted
        ]
        return self._positions(lang, [headed[0][0]], headed[0][1]) if len(headed) == 1 else None

    def _lists_positions(self, a: _Analysis) -> bool:
        """Whether a question naming a unit asks for its positions (and not who does a task there)."""
        return bool(_POSITIONS.search(a.q)) and not _FUNCTIONS.search(a.q) and not self._asks_duty(a)

    def _asks_duty(self, a: _Analysis) -> bool:
        """ "¿Quién paga las horas extra del personal de la Agencia?" asks who does a task, not for the unit's
        positions: a "who" question with topic words beyond the structural ones goes to the support check."""
        if getattr(self, "support_scorer", None) is None or not _RESPONSIBILITY.search(a.q):
            return False
        rest = set(lexical_terms(_POSITIONS.sub(" ", a.q)))
        return leftover_topic([t for t in a.leftover if t in rest])

    def _groups(self, lang: Lang, top: Unit, manual: Manual) -> Draft:
        kids = self.catalog.children(top)
        rows = [f"{i}. **{k.name}** — {k.head or '—'}" for i, k in enumerate(kids, 1)]
        if top.parent is not None:
            text = (
                f"{_unit_label(self.catalog, top)} comprende **{len(kids)}** dependencias:\n"
                if lang == "es"
                else f"{_unit_label(self.catalog, top)} comprises **{len(kids)}** sub-units:\n"
            ) + "\n".join(rows)
            return Draft(
                text,
                True,
                [
                    _cite(manual, k.name, "organigrama", None, "\n".join(k.positions))
                    for k in kids
                    if k.positions
                ],
            )
        if lang == "es":
            text = (
                f"La {top.name} tiene **{len(kids)} dependencias directas** (grupos de trabajo), cuyas jefaturas "
                f"dependen del {top.head}:\n" + "\n".join(rows)
            )
        else:
            text = (
                f"The {top.name} has **{len(kids)} units directly under it** (its work groups), whose heads report "
                f"to the {top.head}:\n" + "\n".join(rows)
            )
        if manual.structure_intro:
            # The manual's own sentence ("… está dividida en 6 grupos de trabajo:"), quoted.
            text += "\n\n" + _quote_block(manual.structure_intro)
        quote = manual.structure_intro or "\n".join(k.name for k in kids)
        return Draft(text, True, [_cite(manual, top.name, "organigrama", None, quote)])

    def _unit_place(self, lang: Lang, unit: Unit, manual: Manual) -> Draft:
        """Where a unit sits: its gerencia (manual) and the chain of units above it."""
        chain: list[Unit] = []
        parent = self.catalog.parent(unit)
        while parent is not None and len(chain) < 10:
            chain.append(parent)
            parent = self.catalog.parent(parent)
        path = " → ".join(f"**{u.name}**" for u in reversed(chain))
        if lang == "es":
            text = (
                f"**{unit.name}** pertenece a la **{manual.gerencia}** (manual {manual.code}, versión "
                f"{manual.version}). Ubicación en la estructura: {path} → **{unit.name}**."
            )
        else:
            text = (
                f"**{unit.name}** belongs to the **{manual.gerencia}** (manual {manual.code}, version "
                f"{manual.version}). Place in the structure: {path} → **{unit.name}**."
            )
        quote = "\n".join(unit.positions) or unit.name
        return Draft(text, True, [_cite(manual, unit.name, "organigrama", None, quote)])

    def _head(self, lang: Lang, unit: Unit, manual: Manual) -> Draft:
        kids = self.catalog.children(unit)
        if not unit.head:
            return self._positions(lang, [unit], manual)
        if lang == "es":
            text = f"{_unit_label(self.catalog, unit)} está a cargo del **{unit.head}**."
            if kids:
                text += (
                    f" Cada una de sus dependencias ({_and([k.name for k in kids], lang)}) tiene su propio "
                    f"{unit.head}."
                )
        else:
            text = f"{_unit_label(self.catalog, unit)} is headed by the **{unit.head}**."
            if kids:
                text += (
                    f" Each of its sub-units ({_and([k.name for k in kids], lang)}) has its own {unit.head}."
                )
        return Draft(text, True, [_cite(manual, unit.name, "organigrama", None, unit.head)])

    def _unit_reports(self, lang: Lang, unit: Unit, manual: Manual) -> Draft:
        parent_unit = self.catalog.parent(unit)
        parent = (parent_unit, manual) if parent_unit is not None else None
        if parent is None:
            text = (
                f"{_unit_label(self.catalog, unit)} es la unidad superior de este manual (a cargo del "
                f"{unit.head}); el manual no indica de quién depende."
                if lang == "es"
                else f"{_unit_label(self.catalog, unit)} is the top unit of this manual (headed by the {unit.head}); "
                "the manual does not say whom it reports to."
            )
            return Draft(text, True, [_cite(manual, unit.name, "organigrama", None, unit.head or unit.name)])
        p, pm = parent
        if p.head and unit.head and fold(p.head) == fold(unit.head):
            # An agency's Jefe de Agencia reports through the group (Agencias) to the group's parent.
            grand = self.catalog.parent(p)
            if grand is not None:
                p = grand
        who = unit.head or unit.name
        if lang == "es":
            text = f"El **{who}** ({unit.name}) depende de la **{p.name}**, a cargo del **{p.head}**."
        else:
            text = f"The **{who}** ({unit.name}) reports to the **{p.name}**, headed by the **{p.head}**."
        return Draft(text, True, [_cite(pm, p.name, "organigrama", None, p.head or p.name)])

    def _position_reports(self, lang: Lang, position: str, hint: _Mention | None) -> Draft:
        places = self.catalog.units_with_position(position)
        if hint:
            places = [
                pl for pl in places if pl[0].name == hint.unit.name or pl[0].parent == hint.unit.name
            ] or places
        if not places:
            return self._where_position(lang, position)
        lines: list[str] = []
        cites: list[Citation] = []
        seen: set[str] = set()
        for unit, manual in places:
            if fold(unit.head or "") == fold(position):
                found = self.catalog.parent(unit)
                if found is None:
                    continue
                boss = found
                if boss.head and fold(boss.head) == fold(position):
                    found = self.catalog.parent(boss)
                    if found is None:
                        continue
                    boss = found
                if boss.name in seen:
                    continue
                seen.add(boss.name)
                lines.append(
                    f"- Como jefatura de {unit.name}, depende del **{boss.head}** ({boss.name})."
                    if lang == "es"
                    else f"- As head of {unit.name}, reports to the **{boss.head}** ({boss.name})."
                )
                cites.append(_cite(manual, boss.name, "organigrama", None, boss.head or boss.name))
            else:
                if unit.name in seen:
                    continue
                seen.add(unit.name)
                lines.append(
                    f"- En {unit.name}, depende del **{unit.head}**."
                    if lang == "es"
                    else f"- In {unit.name}, reports to the **{unit.head}**."
                )
                cites.append(_cite(manual, unit.name, "organigrama", None, "\n".join(unit.positions)))
        lead = (
            f"Según los organigramas del manual, el puesto **{position}**:"
            if lang == "es"
            else f"According to the manual's org charts, the **{position}** position:"
        )
        return Draft(lead + "\n" + "\n".join(lines), True, cites)

    def _where_position(self, lang: Lang, position: str) -> Draft:
        places = self.catalog.units_with_position(position)
        if not places:
            return Draft("", False)
        # Variants named after the same post ("Promotor de Créditos de Sucursal") are worth a mention.
        variants = [
            (v, u, m)
            for v_key, v in self.catalog.positions
            if v_key.startswith(fold(position) + " ")
            for u, m in self.catalog.units_with_position(v)
        ]
        cites = [_cite(m, u.name, "organigrama", None, "\n".join(u.positions)) for u, m in places]
        names = []
        for u, m in places:
            parent = self.catalog.parent(u)
            inner = parent is not None and parent.parent is not None
            where = [u.parent] if inner and u.parent else []
            if self.catalog.many and u.parent is not None:
                where.append(m.gerencia)
            names.append(f"**{u.name}**" + (f" ({', '.join(where)})" if where else ""))
        head_of = [u.name for u, _m in places if fold(u.head or "") == fold(position)]
        if lang == "es":
            text = (
                f"El puesto **{position}** pertenece a {names[0]}"
                if len(places) == 1
                else f"El puesto **{position}** existe en {len(places)} unidades: {_and(names, lang)}"
            )
            text += f"; es la jefatura de {_and(head_of, lang)}." if head_of else "."
        else:
            text = (
                f"The **{position}** position belongs to {names[0]}"
                if len(places) == 1
                else f"The **{position}** position exists in {len(places)} units: {_and(names, lang)}"
            )
            text += f"; it heads {_and(head_of, lang)}." if head_of else "."
        for v, u, m in variants:
            text += (
                f" Además, {u.name} tiene el puesto **{v}**."
                if lang == "es"
                else f" {u.name} also has a **{v}** position."
            )
            cites.append(_cite(m, u.name, "organigrama", None, "\n".join(u.positions)))
        return Draft(text, True, cites)

    def _positions(self, lang: Lang, units: list[Unit], manual: Manual) -> Draft:
        shown: list[Unit] = []
        for unit in units[:3]:
            if unit.positions:
                shown.append(unit)
            else:
                shown.extend(k for k in self.catalog.children(unit) if k.positions)
        if not shown:
            return self._head(lang, units[0], manual)
        parts: list[str] = []
        cites: list[Citation] = []
        unique = list({u.name: u for u in shown}.values())
        for u in unique:
            title = (
                f"**{u.name}** ({len(u.positions)} puestos, jefatura: {u.head}):"
                if lang == "es"
                else f"**{u.name}** ({len(u.positions)} positions, headed by the {u.head}):"
            )
            parts.append(title + "\n" + "\n".join(f"- {p}" for p in u.positions))
            cites.append(_cite(manual, u.name, "organigrama", None, "\n".join(u.positions)))
            kids = self.catalog.children(u)
            if u.parent is None and kids:
                extra = (
                    "Además, dependen del Gerente las jefaturas de los grupos: "
                    if lang == "es"
                    else "The heads of the groups also report to the Gerente: "
                )
                parts.append(extra + ", ".join(f"{k.head} ({k.name})" for k in kids if k.head) + ".")
        return Draft("\n\n".join(parts), True, cites)

    def _owner(self, unit: Unit, attr: str) -> Unit:
        """The unit whose objective/functions apply: a sub-unit shares its group's."""
        parent = self.catalog.parent(unit)
        if parent and parent.parent is not None and getattr(parent, attr) == getattr(unit, attr):
            return parent
        if not getattr(unit, attr) and parent:
            return parent
        return unit

    def _objective(self, lang: Lang, unit: Unit, manual: Manual) -> Draft:
        owner = self._owner(unit, "objective")
        if not owner.objective:
            return self._decline(
                lang,
                [],
                "El manual no indica un objetivo para esa unidad."
                if lang == "es"
                else "The manual gives no objective for that unit.",
            )
        lead = (
            f"Objetivo de {_unit_label(self.catalog, owner)} (jefatura: {owner.head}):"
            if lang == "es"
            else f"Objective of {_unit_label(self.catalog, owner)} (headed by the {owner.head}):"
        )
        text = lead + "\n" + _quote_block(owner.objective)
        cites = [_cite(manual, owner.name, "objetivo", None, owner.objective)]
        twins = [
            (u, m)
            for u, m in self.catalog.units
            if u.objective == owner.objective
            and u is not owner
            and not (u.parent == owner.name and m is manual)
        ]
        if twins:
            names = _and([f"**{self.catalog.label(u)}**" for u, _m in twins], lang)
            text += (
                f"\n\n{names} tiene exactamente el mismo objetivo."
                if lang == "es"
                else f"\n\n{names} has exactly the same objective."
            )
            cites += [_cite(m, u.name, "objetivo", None, u.objective) for u, m in twins]
        return Draft(text, True, cites)

    def _functions(self, lang: Lang, unit: Unit, manual: Manual) -> Draft:
        owner = self._owner(unit, "functions")
        if not owner.functions:
            return self._positions(lang, [unit], manual)
        lead = (
            f"Funciones de {_unit_label(self.catalog, owner)} (jefatura: {owner.head}):"
            if lang == "es"
            else f"Functions of {_unit_label(self.catalog, owner)} (headed by the {owner.head}):"
        )
        lines = [f"{f.numeral}. «{f.text}»" for f in owner.functions]
        cites = [_cite(manual, owner.name, "funciones", f.numeral, f.text) for f in owner.functions]
        return Draft(lead + "\n" + "\n".join(lines), True, cites)

    # --- who handles X -------------------------------------------------------------------------------

    def support(self, hits: list[Hit], leftover: list[str], expansion: str) -> tuple[float, float]:
        """(best dense cosine, share of topic words found in the best hits): the refusal signals."""
        if not hits:
            return 0.0, 0.0
        dense = max(h.dense for h in hits)
        if not leftover:
            return dense, 1.0
        pool: set[str] = set()
        for h in hits[:3]:
            pool.update(lexical_terms(h.chunk.text))
        covered = sum(1 for t in leftover if _close(t, pool))
        translated = len(set(lexical_terms(expansion)) & pool)
        return dense, min(1.0, (covered + translated) / len(leftover))

    def _who_handles(self, a: _Analysis, lang: Lang, hits: list[Hit], expansion: str) -> Draft:
        scorer: SupportScorer | None = getattr(self, "support_scorer", None)
        if scorer is None:
            # No calibrated model (unit tests with fakes): the older cosine + word-share gate.
            dense, share = self.support(hits, a.leftover, expansion)
            if dense < self.settings.refusal_threshold or (
                share < self.settings.min_lexical_support and dense < self.settings.confident_threshold
            ):
                return self._decline(lang, hits)
        duties = [h for h in hits if h.chunk.section in ("funciones", "objetivo")]
        if not duties:
            if a.units and not leftover_topic(a.leftover):
                return self._functions(lang, a.units[0].unit, a.units[0].manual)
            return self._decline(lang, hits)
        best = duties[0]
        # A unit named as a place ("at management level", "in an agency") rather than as the topic of the duty
        # ("activos extraordinarios" inside a Ventas function) steers the choice among near-equal lines.
        places = {
            (m.manual.id, m.unit.name)
            for m in a.units
            if not any(t in fold(best.chunk.quote) for t in tokens(m.unit.name) if len(t) > 3)
        }
        if places and self.search_in_unit is not None:
            for manual_id, place in sorted(places):
                found = self.search_in_unit(a.text, place, manual_id)
                known = {h.chunk.id for h in duties}
                duties += [
                    h
                    for h in found
                    if h.chunk.section in ("funciones", "objetivo") and h.chunk.id not in known
                ]
        if places:
            located = sorted(
                (
                    h
                    for h in duties
                    if (h.chunk.manual_id, h.chunk.unit) in places
                    or (h.chunk.manual_id, h.chunk.parent) in places
                ),
                key=lambda h: -h.score,
            )
            if located and located[0].score >= best.score - self.settings.place_margin:
                best = located[0]
                duties = [best] + [h for h in duties if h is not best]
        plural = bool(_PLURAL_UNITS.search(a.q))
        group = [best]
        best_terms = set(lexical_terms(best.chunk.quote))
        for h in duties[1:]:
            same_unit = h.chunk.unit == best.chunk.unit
            terms = set(lexical_terms(h.chunk.quote))
            overlap = len(terms & best_terms) / max(1, len(terms | best_terms))
            close = h.score >= best.score - 0.01
            if (
                (
                    plural
                    and not same_unit
                    and h.score >= best.score - self.settings.multi_margin
                    and all(g.chunk.unit != h.chunk.unit for g in group)
                )
                or overlap >= 0.6
                or (close and (same_unit or h.chunk.section == "funciones"))
            ):
                group.append(h)
            if len(group) >= self.settings.max_quotes:
                break
        if scorer is None:
            return self._compose_duties(lang, self._with_twins(group))
        return self._judged(a, lang, hits, group, scorer)

    # --- support of a "who handles" answer (see assistant/support.py) ---------------------------------

    def topic_phrase(self, a: _Analysis, vocabulary: frozenset[str] = frozenset()) -> str:
        """The question's topic: without question words, politeness and the units or positions it names
        only as places (a unit name whose words no duty line uses, e.g. "Santa Ana")."""
        text = a.text
        folded = fold(text)
        same = len(folded) == len(text)
        spans = [(m.start, m.end) for m in self.catalog.find_units(folded)]
        for p in self.catalog.find_positions(folded):
            m = _whole_words(fold(p)).search(folded)
            if m:
                spans.append((m.start(), m.end()))
        kept: list[str] = []
        for m in re.finditer(r"[a-z0-9ñ]+", folded):
            w = m.group(0)
            if w in _QUESTION_WORDS or w in STOP_ES or w in STOP_EN or w in POLITE:
                continue
            inside = any(s <= m.start() and m.end() <= e for s, e in spans)
            if inside and stem(w) not in vocabulary:
                continue
            kept.append(text[m.start() : m.end()] if same else w)
        return " ".join(kept)

    def support_candidates(
        self, a: _Analysis, hits: list[Hit], group: list[Hit], scorer: SupportScorer
    ) -> tuple[str, list[Scored]]:
        """The topic phrase and the scored candidate lines: the chosen group first, then other duty hits."""
        topic = self.topic_phrase(a, scorer.duty_vocabulary)
        seen: set[str] = set()
        pool: list[tuple[Chunk, float]] = []
        for h in [*group, *hits]:
            if h.chunk.section in ("funciones", "objetivo") and h.chunk.id not in seen:
                seen.add(h.chunk.id)
                pool.append((h.chunk, h.dense))
        manuals = {m.id for m in a.manuals} if a.manuals else None
        scored = scorer.score(topic, pool, manuals)
        hook = getattr(self, "on_support", None)
        if hook is not None:
            hook(topic, scored[0] if scored else None, scored)
        return topic, scored

    def _judged(
        self, a: _Analysis, lang: Lang, hits: list[Hit], group: list[Hit], scorer: SupportScorer
    ) -> Draft:
        """Answer with the group when its lead line covers the topic; else say no unit is assigned it."""
        topic, scored = self.support_candidates(a, hits, group, scorer)
        if not scored:
            return self._decline(lang, hits)
        lead = scored[0]
        threshold = self.settings.support_threshold
        if not topic or lead.features["known"] <= 0.0:
            if a.units and not leftover_topic(a.leftover):
                return self._functions(lang, a.units[0].unit, a.units[0].manual)
            return self._uncovered(lang, hits, topic, lead, lead)  # chit-chat: no word the manuals use
        if lead.support >= threshold:
            kept = [group[0]] + [
                h for h, s in zip(group[1:], scored[1 : len(group)], strict=False) if s.support >= threshold
            ]
            draft = self._compose_duties(lang, self._with_twins(kept))
            draft.support = lead.support
            return draft
        return self._uncovered(lang, hits, topic, lead, max(scored, key=lambda s: s.support))

    def _uncovered(self, lang: Lang, hits: list[Hit], topic: str, lead: Scored, closest: Scored) -> Draft:
        """No line covers the topic: chit-chat gets what the assistant can do; a related duty, a pointer."""
        if not topic or lead.features["known"] <= 0.0:
            text = (
                "Solo puedo responder preguntas sobre el Manual de Organización y Funciones: qué unidad se "
                "encarga de una tarea, quién dirige cada unidad, sus puestos, a quién reportan y los cambios "
                "del manual."
                if lang == "es"
                else "I can only answer questions about the Organisation and Functions Manual: which unit "
                "handles a task, who heads each unit, its positions, whom it reports to and the manual's "
                "changes."
            )
            return Draft(text, False, support=lead.support)
        if closest.features["coverage"] <= 0.0 and closest.features["dense_topic"] < 0.8:
            draft = self._decline(lang, hits)
            draft.support = lead.support
            return draft
        c = closest.chunk
        pair = self.catalog.unit(c.unit, c.manual_id)
        unit = self.catalog.label(pair[0]) if pair else (c.unit or "")
        if c.section == "objetivo":
            where = f"{unit}, objetivo" if lang == "es" else f"{unit}, objective"
        else:
            where = f"{unit}, función {c.numeral}" if lang == "es" else f"{unit}, function {c.numeral}"
        text = (
            f"El manual no asigna «{topic}» a ninguna unidad. Lo más cercano: «{c.quote}» ({where})."
            if lang == "es"
            else f"The manual does not assign «{topic}» to any unit. The closest: «{c.quote}» ({where})."
        )
        cite = Citation(
            unit=c.unit,
            section=c.section,
            numeral=c.numeral,
            quote=c.quote,
            manual=c.manual_id,
            score=closest.support,
            manual_code=c.manual_code,
            version=c.manual_version,
            gerencia=c.gerencia,
        )
        return Draft(text, False, [cite], support=lead.support)

    def _with_twins(self, group: list[Hit]) -> list[Hit]:
        """Add the units whose manual lists the very same duty line: the same duty in several units."""
        out = list(group)
        seen = {(h.chunk.manual_id, h.chunk.unit, fold(h.chunk.quote)) for h in group}
        for h in group:
            if h.chunk.section != "funciones":
                continue
            key = fold(h.chunk.quote)
            for unit, manual, f in self.catalog.duties.get(key, []):
                if (manual.id, unit.name, key) in seen:
                    continue
                seen.add((manual.id, unit.name, key))
                chunk = h.chunk.model_copy(
                    update={
                        "manual_id": manual.id,
                        "manual_version": manual.version,
                        "manual_code": manual.code,
                        "gerencia": manual.gerencia,
                        "unit": unit.name,
                        "parent": unit.parent,
                        "head": unit.head,
                        "numeral": f.numeral,
                        "quote": f.text,
                    }
                )
                out.append(Hit(chunk=chunk, score=h.score, dense=h.dense, lexical=h.lexical))
        return out

    def _compose_duties(self, lang: Lang, group: list[Hit]) -> Draft:
        by_unit: dict[tuple[str, str], list[Hit]] = {}
        for h in group:
            by_unit.setdefault((h.chunk.manual_id, h.chunk.unit or ""), []).append(h)
        blocks: list[str] = []
        cites: list[Citation] = []
        for (manual_id, unit_name), items in by_unit.items():
            pair = self.catalog.unit(unit_name, manual_id)
            unit = pair[0] if pair else None
            label = _unit_label(self.catalog, unit) if unit else f"**{unit_name}**"
            head = (unit.head if unit else None) or items[0].chunk.head
            who = label + (
                (f" (a cargo del {head})" if lang == "es" else f" (headed by the {head})") if head else ""
            )
            lines = []
            for h in items:
                if h.chunk.section == "objetivo":
                    tag = "objetivo" if lang == "es" else "objective"
                else:
                    tag = f"función {h.chunk.numeral}" if lang == "es" else f"function {h.chunk.numeral}"
                lines.append(f"{tag}:\n{_quote_block(h.chunk.quote)}")
                cites.append(
                    Citation(
                        unit=h.chunk.unit,
                        section=h.chunk.section,
                        numeral=h.chunk.numeral,
                        quote=h.chunk.quote,
                        manual=h.chunk.manual_id,
                        score=h.score,
                        manual_code=h.chunk.manual_code,
                        version=h.chunk.manual_version,
                        gerencia=h.chunk.gerencia,
                    )
                )
            blocks.append(f"{who}, " + "\n".join(lines))
        if len(by_unit) == 1:
            lead = (
                "Según el manual, se encarga "
                if lang == "es"
                else "According to the manual, this is handled by "
            )
            return Draft(lead + blocks[0], True, cites)
        lead = (
            f"Según el manual, esto corresponde a {len(by_unit)} unidades:"
            if lang == "es"
            else f"According to the manual, this sits with {len(by_unit)} units:"
        )
        return Draft(lead + "\n\n" + "\n\n".join(f"- {b}" for b in blocks), True, cites)


def _unit_label(cat: Catalog, unit: Unit) -> str:
    kids = cat.children(unit)
    where = f", {cat.manual_of(unit).gerencia}" if cat.many and unit.parent is not None else ""
    if kids and unit.parent is not None:
        return f"**{unit.name}** ({', '.join(k.name for k in kids)}{where})"
    return f"**{unit.name}**" + (f" ({where[2:]})" if where else "")


_STRUCTURAL = tuple(cue_words("structural"))


def leftover_topic(leftover: list[str]) -> bool:
    """Whether topic words remain beyond structural ones (jefe, puesto, función …)."""
    return any(not any(t.startswith(s) for s in _STRUCTURAL) for t in leftover)
