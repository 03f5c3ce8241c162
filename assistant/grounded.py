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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from assistant.chunk import spanish_date
from assistant.models import Citation, Function, HistoryEntry, Hit, Manual, Section, Unit
from assistant.retrieve import Glossary
from assistant.settings import AnswerSettings
from assistant.text import STOP_EN, STOP_ES, fold, lexical_terms, stem, tokens

Lang = Literal["es", "en"]

_GENERIC_PREFIXES = (
    "area de ",
    "departamento de ",
    "unidad de ",
    "seccion de ",
    "division de ",
    "gerencia de ",
    "sucursal ",
    "agencia ",
    "oficina de ",
)
_MONTHS_EN = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
]

# Intent cues, matched on accent-folded, lower-case text.
_RESPONSIBILITY = re.compile(
    r"\b(who|whom|quien|quienes|which (unit|units|area|areas|office|department|position)|(que|cual|cuales) "
    r"(area|areas|unidad|unidades|dependencia|dependencias|puesto|cargo))\b"
)
_HEAD = re.compile(
    r"\b(dirige|dirigen|encabeza|encabezan|lidera|lideran)\b|\b(quien(es)? (dirige|encabeza|lidera|coordina|esta al frente|esta a cargo|manda|es el jefe|es la jefa|"
    r"es el responsable|es el titular)|jefe|jefa|jefatura|titular|al frente|a cargo de (la|el|los|las) "
    r"(area|agencia|sucursal|gerencia|unidad)|who (heads|leads|runs|manages|directs|is in charge|is the head|"
    r"is the boss|is the chief|supervises)|head of|heads? the|boss of|chief of|in charge of the|leader of|"
    r"manager of|whos in charge|who's in charge|heads? (it|this|that)|leads? (it|this|that)|la dirige|lo dirige|"
    r"quien la dirige|quien lo dirige)\b"
)
_POSITIONS = re.compile(
    r"\b(puestos?|cargos?|plazas?|personal|organigrama|integrantes|conforman?|componen|quienes trabajan|"
    r"positions?|posts?|roles?|jobs?|job titles|staff|org ?chart|organi[sz]ation(al)? chart|who works (in|at|for)|"
    r"make up|members?|employees|team)\b"
)
_REPORTS = re.compile(
    r"\b(reporta|reportan|depende|dependen|rinde cuentas|superior|jefe inmediato|report(s)? to|answer(s)? to|"
    r"boss|above|reporting line|reports? directly|report)\b"
)
_WHERE = re.compile(
    r"\b(donde|en que (area|unidad|dependencia|grupo|agencia|agencias|unidades|areas)|en cual|a que "
    r"(area|unidad|dependencia)|pertenece|ubica|where|which (unit|units|area|areas|group|department|office)|"
    r"what (unit|area|group|department)|belongs?|part of|sits?|located|works?|hay|is there|are there|existe)\b"
)
_OBJECTIVE = re.compile(
    r"\b(objetivo|proposito|finalidad|mision|razon de ser|para que existe|para que sirve|para que es|objective|"
    r"purpose|goal|aim|mission|reason for being|what is (it|this|the manual|this manual) for|what's .* for)\b"
)
_FUNCTIONS = re.compile(
    r"\b(funciones|atribuciones|tareas|responsabilidades|que hace|que hacen|a que se dedica|functions|duties|"
    r"responsibilities|tasks|what does .* do|what do .* do)\b"
)
_COUNT = re.compile(r"\b(cuant[oa]s|how m[a-z]?n[a-z]?y|number of)\b")
_GROUP_WORDS = re.compile(
    r"\b(grupos?|groups?|areas?|unidades|units?|dependencias|divisions?|departments?|agencias|agencies|"
    r"sucursales|branches|sub-?units?)\b"
)
_LIST = re.compile(r"\b(que|cuales|which|what|list|lista|name|enumera)\b")
_PLURAL_UNITS = re.compile(
    r"\b(which|what) (units|areas|offices|departments|groups)\b|\b(que|cuales) (unidades|areas|dependencias|"
    r"oficinas)\b|\ben que (unidades|areas|dependencias)\b|\b(units|areas|unidades|dependencias) (have|tienen)\b"
)
_HISTORY = re.compile(
    r"\b(cambio|cambios|cambiaron|cambio|modific\w*|histori\w*|renombr\w*|elimin\w*|suprim\w*|crearon|"
    r"creado|creada|creacion|incorpor\w*|recodific\w*|separacion|changes?|changed|amend\w*|history|renam\w*|"
    r"remov\w*|abolish\w*|eliminat\w*|created|added|introduc\w*|recod\w*|version(es)?|revision\w*|"
    r"called before|formerly|previous(ly)?|former|llamaba|antes|anterior(mente)?|moved?|transferr?\w*|"
    r"traslad\w*|separat\w*|split|aparecieron|appeared)\b"
)
_HISTORY_STRONG = re.compile(
    r"\b(renombr\w*|renam\w*|recod\w*|recodific\w*|called before|formerly|llamaba|previous code|old code|"
    r"codigo anterior|version \d+|versiones|revision|history|historial|modificaciones|moved from|traslad\w*|"
    r"abolish\w*|eliminad[oa]s?|eliminaron|removed|were (created|added)|se crearon|aparecieron|replac\w*|"
    r"reemplaz\w*|sustitu\w*|substitut\w*|what happened|que paso|que sucedio|was there ever|existio|hubo)\b"
)
_LATEST = re.compile(
    r"\b(latest|last|most recent|newest|current|ultima|ultimo|reciente|mas reciente|vigente|actual)\b"
    r".{0,20}\b(version|revision|update|change|changes|modificacion|cambio|cambios|actualizacion)\b"
)
_VERSION_NUM = re.compile(r"\b(?:version|v\.?|revision)\s*(\d{1,3})\b")
_ABOUT_MANUAL = re.compile(r"\b(manual|documento|document|mof|instrumento|this manual|este manual)\b")
_META_CODE = re.compile(r"\b(codigo|code|codificacion)\b")
_META_EFFECTIVE = re.compile(
    r"\b(vigencia|vigente|entro en vigor|effective|in force|into force|into effect|valid from|takes effect)\b"
)
_META_AUTH = re.compile(r"\b(autoriz\w*|authori[sz]\w*|aprob\w*|approv\w*|signed? off|firm\w*)\b")
_META_VERSION = re.compile(r"\b(version|revision)\b")
_META_REVIEWED = re.compile(
    r"\b(reviewed|reviewer|reviewers|revisado|revisada|revisaron|reviso|revisores?)\b"
)
_META_OWNER = re.compile(r"\b(responsable del? proceso|process owner|owns the process|dueno del proceso)\b")
_META_CREATED = re.compile(r"\b(creat\w*|creo|creado|creacion|originally|first (issued|written))\b")
# Words that only shape a question; they carry no topic of their own.
_QUESTION_WORDS = frozenset(
    [
        "quien",
        "quienes",
        "que",
        "cual",
        "cuales",
        "como",
        "donde",
        "cuando",
        "cuanto",
        "cuantos",
        "cuantas",
        "encarga",
        "encargan",
        "encargado",
        "responsable",
        "responsables",
        "maneja",
        "manejan",
        "hace",
        "hacen",
        "realiza",
        "realizan",
        "lleva",
        "cargo",
        "who",
        "which",
        "what",
        "how",
        "where",
        "when",
        "handle",
        "handles",
        "handling",
        "responsible",
        "charge",
        "does",
        "do",
        "unit",
        "units",
        "area",
        "areas",
        "department",
        "office",
        "person",
        "deal",
        "deals",
        "takes",
        "take",
        "care",
        "unidad",
        "unidades",
        "grupo",
        "group",
        "lleva",
        "tiene",
        "tienen",
        "esta",
        "estan",
        "is",
        "are",
        "the",
        "of",
        "in",
        "at",
        "for",
        "list",
        "tell",
        "me",
        "please",
        "give",
        "show",
        "name",
        "all",
        "every",
        "plz",
        "quick",
        "answer",
        "can",
        "could",
        "would",
        "you",
        "your",
        "i",
        "my",
        "nos",
        "dime",
        "muestra",
        "lista",
        "enumera",
        "el",
        "la",
        "los",
        "las",
        "de",
        "del",
        "al",
        "un",
        "una",
        "es",
        "son",
        "se",
        "le",
        "lo",
        "que",
        "en",
        "por",
        "para",
        "con",
        "y",
        "o",
        "and",
        "or",
        "to",
        "a",
        "an",
        "it",
        "its",
        "this",
        "that",
        "whos",
        "s",
        "cada",
        "each",
        "every",
        "una",
        "uno",
    ]
)
_DETERMINERS = frozenset(
    [
        "which",
        "what",
        "this",
        "that",
        "the",
        "same",
        "each",
        "every",
        "other",
        "any",
        "another",
        "whose",
        "its",
        "their",
        "our",
        "your",
        "a",
        "an",
        "one",
        "new",
        "old",
    ]
)


@dataclass
class Draft:
    """What an engine produced before the chain stamps timing and sources onto it."""

    text: str
    answered: bool
    citations: list[Citation] = field(default_factory=list)


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
    """Units and positions of the served manuals, with the aliases a question may use for them."""

    def __init__(self, manuals: list[Manual]) -> None:
        self.manuals = manuals
        self.units: list[tuple[Unit, Manual]] = [(u, m) for m in manuals for u in m.units]
        self.unit_aliases: list[tuple[str, Unit, Manual]] = []
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
        self.alias_stems = {stem(t) for a, _u, _m in self.unit_aliases for t in tokens(a)}
        # Each folded duty line → the units whose own function list holds it. An agency that lists exactly
        # its group's lines is left out: those lines are the group's.
        self.duties: dict[str, list[tuple[Unit, Function]]] = {}
        by_name = {u.name: u for u, _m in self.units}
        for u, _m in self.units:
            parent = by_name.get(u.parent or "")
            if parent is not None and parent.functions == u.functions and parent.parent is not None:
                continue
            for f in u.functions:
                self.duties.setdefault(fold(f.text), []).append((u, f))

    @staticmethod
    def _aliases(unit: Unit) -> set[str]:
        name = fold(unit.name)
        out = {name}
        for prefix in _GENERIC_PREFIXES:
            if name.startswith(prefix) and len(name) > len(prefix) + 3:
                out.add(name[len(prefix) :])
        if unit.parent is None:
            out.update({"gerencia", "gerente"})
        if name.endswith("s") and " " not in name:
            out.add(name[:-1])  # "agencias" -> "agencia"
        return out

    def find_units(self, text: str) -> list[_Mention]:
        """Units named in a text, longest alias first, without overlaps."""
        folded = fold(text)
        taken: list[tuple[int, int]] = []
        found: list[_Mention] = []
        for pattern, unit, manual in self._alias_patterns:
            for m in pattern.finditer(folded):
                if any(m.start() < e and s < m.end() for s, e in taken):
                    continue
                if any(f.unit.name == unit.name for f in found):
                    continue
                taken.append((m.start(), m.end()))
                found.append(_Mention(unit, manual, m.start(), m.end()))
        found.sort(key=lambda x: x.start)
        return found

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

    def unit(self, name: str | None) -> tuple[Unit, Manual] | None:
        """The unit with this exact name."""
        return next(((u, m) for u, m in self.units if u.name == name), None)

    def children(self, unit: Unit) -> list[Unit]:
        """Units whose parent is this unit."""
        return [u for u, _m in self.units if u.parent == unit.name]

    def top(self) -> tuple[Unit, Manual] | None:
        """The unit with no parent (the Gerencia)."""
        return next(((u, m) for u, m in self.units if u.parent is None), None)


def _cite(
    manual: Manual, unit: str | None, section: Section, numeral: str | None, quote: str, score: float = 1.0
) -> Citation:
    return Citation(unit=unit, section=section, numeral=numeral, quote=quote, manual=manual.id, score=score)


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
        self.search_in_unit: Callable[[str, str], list[Hit]] | None = None

    # --- entry point ---------------------------------------------------------------------------------

    def answer(
        self, question: str, lang: Lang, hits: list[Hit], expansion: str = "", corrected: str | None = None
    ) -> Draft:
        """Compose the answer for a (standalone, sanitised) question, its hits and its typo-corrected form."""
        a = self.analyse(question, corrected or question, expansion)
        declined = self._out_of_scope(a, lang, hits)
        if declined is not None:
            return declined
        order = [self._meta, self._history, self._structure]
        if _HISTORY_STRONG.search(a.q) or _VERSION_NUM.search(a.q):
            order = [self._history, self._meta, self._structure]
        for handler in order:
            draft = handler(a, lang, hits)
            if draft is not None:
                return draft
        return self._who_handles(a, lang, hits, expansion)

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
        explicit = bool(units)
        spans = self.glossary.match_spans(original) if self.glossary else []
        if not units and expansion:
            # "the sales area" names Área de Ventas through the glossary ("sales" -> "ventas").
            units = self.catalog.find_units(expansion)
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
        words = [w for w, d in zip(toks, drop, strict=True) if not d and w not in _QUESTION_WORDS]
        return _Analysis(
            q=q,
            units=units,
            explicit=explicit,
            positions=positions,
            leftover=lexical_terms(" ".join(words)),
            text=corrected,
        )

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
        for topic in self.scope:
            if (topic.always or not asks_who) and any(p.search(a.q) for p in topic.patterns):
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

    def _meta(self, a: _Analysis, lang: Lang, hits: list[Hit]) -> Draft | None:
        if not self.catalog.manuals or (a.units and a.explicit) or a.positions:
            return None
        q = a.q
        m = self.catalog.manuals[0]
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
        if about and _META_VERSION.search(q) and m.version and not _VERSION_NUM.search(q):
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
                intro = "Objetivo del manual:" if lang == "es" else "The manual's stated purpose:"
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
        manuals = [m for m in self.catalog.manuals if m.history]
        if not manuals:
            return None
        m = manuals[0]
        q = a.q
        number = _VERSION_NUM.search(q)
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
        elif _LATEST.search(q):
            entries = [max(m.history, key=lambda h: h.version)]
        if not entries:
            years = {int(y) for y in re.findall(r"\b(19\d\d|20\d\d)\b", q)}
            entries = [h for h in m.history if h.date and h.date.year in years]
        keys = [fold(p) for p in a.positions] + [fold(u.unit.name) for u in a.units]
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
        lead = (
            "Según el historial de modificaciones del manual:"
            if lang == "es"
            else "According to the manual's change history:"
        )
        return Draft(lead + "\n" + "\n".join(lines), True, cites)

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
        cat = self.catalog
        topic = leftover_topic(a.leftover)
        if a.positions and not _FUNCTIONS.search(q):
            if _REPORTS.search(q):
                return self._position_reports(lang, a.positions[0], a.units[0] if a.units else None)
            if _WHERE.search(q) or not topic:
                return self._where_position(lang, a.positions[0])
        with_children = [m for m in a.units if cat.children(m.unit)]
        asks_groups = _GROUP_WORDS.search(q) and (_COUNT.search(q) or (_LIST.search(q) and not topic))
        about_top = with_children or not a.units or a.units[0].unit.parent is None
        if asks_groups and not a.positions and about_top:
            top = with_children[0] if with_children else None
            pair = (top.unit, top.manual) if top else cat.top()
            if pair:
                return self._groups(lang, *pair)
        if not a.units:
            return None
        target = a.units[0]
        unit, manual = target.unit, target.manual
        if _POSITIONS.search(q) and _REPORTS.search(q) and not _FUNCTIONS.search(q):
            return self._positions(
                lang, [t.unit for t in a.units], manual
            )  # "qué puestos dependen del Gerente"
        if _REPORTS.search(q) and not _HEAD.search(q):
            return self._unit_reports(lang, unit, manual)
        if _HEAD.search(q) and not topic:
            draft = self._head(lang, unit, manual)
            if _REPORTS.search(q):
                extra = self._unit_reports(lang, unit, manual)
                draft = Draft(draft.text + "\n\n" + extra.text, True, draft.citations + extra.citations)
            return draft
        if _POSITIONS.search(q) and not _FUNCTIONS.search(q):
            return self._positions(lang, [t.unit for t in a.units], manual)
        if _OBJECTIVE.search(q):
            return self._objective(lang, unit, manual)
        if _FUNCTIONS.search(q) and not topic:
            return self._functions(lang, unit, manual)
        return None

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
                f"La {top.name} está dividida en **{len(kids)} grupos de trabajo**, cuyas jefaturas dependen del "
                f"{top.head}:\n" + "\n".join(rows)
            )
        else:
            text = (
                f"The {top.name} is divided into **{len(kids)} working groups**, whose heads report to the "
                f"{top.head}:\n" + "\n".join(rows)
            )
        quote = manual.structure_intro or "\n".join(k.name for k in kids)
        return Draft(text, True, [_cite(manual, top.name, "organigrama", None, quote)])

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
        parent = self.catalog.unit(unit.parent)
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
            grand = self.catalog.unit(p.parent)
            if grand:
                p, pm = grand
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
                boss_pair = self.catalog.unit(unit.parent)
                if boss_pair is None:
                    continue
                boss = boss_pair[0]
                if boss.head and fold(boss.head) == fold(position):
                    boss_pair = self.catalog.unit(boss.parent)
                    if boss_pair is None:
                        continue
                    boss = boss_pair[0]
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
        for u, _m in places:
            parent = self.catalog.unit(u.parent)
            inner = parent is not None and parent[0].parent is not None
            names.append(f"**{u.name}**" + (f" ({u.parent})" if inner else ""))
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
        parent = self.catalog.unit(unit.parent)
        if parent and parent[0].parent is not None and getattr(parent[0], attr) == getattr(unit, attr):
            return parent[0]
        if not getattr(unit, attr) and parent:
            return parent[0]
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
            u
            for u, _m in self.catalog.units
            if u.objective == owner.objective and u.name != owner.name and u.parent != owner.name
        ]
        if twins:
            names = _and([f"**{u.name}**" for u in twins], lang)
            text += (
                f"\n\n{names} tiene exactamente el mismo objetivo."
                if lang == "es"
                else f"\n\n{names} has exactly the same objective."
            )
            cites += [_cite(manual, u.name, "objetivo", None, u.objective) for u in twins]
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
            m.unit.name
            for m in a.units
            if not any(t in fold(best.chunk.quote) for t in tokens(m.unit.name) if len(t) > 3)
        }
        if places and self.search_in_unit is not None:
            for place in sorted(places):
                found = self.search_in_unit(a.text, place)
                known = {h.chunk.id for h in duties}
                duties += [
                    h
                    for h in found
                    if h.chunk.section in ("funciones", "objetivo") and h.chunk.id not in known
                ]
        if places:
            located = sorted(
                (h for h in duties if h.chunk.unit in places or h.chunk.parent in places),
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
        return self._compose_duties(lang, self._with_twins(group))

    def _with_twins(self, group: list[Hit]) -> list[Hit]:
        """Add the units whose manual lists the very same duty line: the same duty in several units."""
        out = list(group)
        seen = {(h.chunk.unit, fold(h.chunk.quote)) for h in group}
        for h in group:
            if h.chunk.section != "funciones":
                continue
            key = fold(h.chunk.quote)
            for unit, f in self.catalog.duties.get(key, []):
                if (unit.name, key) in seen:
                    continue
                seen.add((unit.name, key))
                chunk = h.chunk.model_copy(
                    update={
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
        by_unit: dict[str, list[Hit]] = {}
        for h in group:
            by_unit.setdefault(h.chunk.unit or "", []).append(h)
        blocks: list[str] = []
        cites: list[Citation] = []
        for unit_name, items in by_unit.items():
            pair = self.catalog.unit(unit_name)
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
    if kids and unit.parent is not None:
        return f"**{unit.name}** ({', '.join(k.name for k in kids)})"
    return f"**{unit.name}**"


_STRUCTURAL = (
    "jef",
    "jefatur",
    "puest",
    "carg",
    "funcion",
    "objet",
    "organigram",
    "head",
    "posit",
    "function",
    "objective",
    "dirig",
    "lider",
    "encabez",
    "frent",
    "report",
    "depend",
    "boss",
    "lead",
    "run",
    "staff",
    "role",
    "job",
    "duti",
    "respons",
    "task",
    "purpos",
    "goal",
    "aim",
    "mision",
    "unit",
    "sit",
    "belong",
    "part",
    "work",
    "locat",
    "superior",
    "titular",
    "conform",
    "compon",
    "integr",
    "hac",
    "tien",
    "exist",
    "charg",
    "manag",
    "supervis",
    "chief",
    "leader",
    "personal",
    "team",
    "member",
    "employe",
    "post",
    "plaz",
    "agenci",
    "area",
    "sucursal",
    "gerenci",
    "grup",
    "group",
    "pertenec",
    "ubic",
    "principal",
    "main",
    "activ",
    "person",
    "servic",
    "ahi",
    "alli",
    "there",
    "offic",
    "branch",
    "divis",
    "depart",
    "make",
    "mak",
    "up",
    "exist",
    "hay",
    "city",
    "ciudad",
    "cities",
    "both",
    "ambas",
    "also",
    "tambien",
    "onlin",
    "linea",
    "custom",
    "client",
    "atencion",
    "care",
    "sale",
    "venta",
)


def leftover_topic(leftover: list[str]) -> bool:
    """Whether topic words remain beyond structural ones (jefe, puesto, función …)."""
    return any(not any(t.startswith(s) for s in _STRUCTURAL) for t in leftover)
