"""The served manuals' units and positions, and the names (aliases) a question may use for them."""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property, lru_cache

from assistant.cues import cue_words
from assistant.models import Function, Manual, Unit
from assistant.template import template
from assistant.text import STOP_EN, STOP_ES, fold, lexical_terms, stem, tokens

_GENERIC_PREFIXES = tuple(cue_words("generic_prefixes"))


@dataclass(frozen=True)
class _Mention:
    unit: Unit
    manual: Manual
    start: int  # where the name is in the text searched (-1: found by its words' meaning)
    end: int
    in_expansion: bool = False  # found in the glossary translation: start/end are offsets in that text


# The words units are named with ("área", "departamento" …), folded: a name starts with one.
_UNIT_WORDS = template().unit_words
_POSITION_WORDS = template().position_words
_PUNCTUATION = "¿?¡!.,;:()"
# Words that lead from one unit to another ("elevado de Área a Departamento", "upgraded to a department").
_TO_WORDS = frozenset(cue_words("unit_to_unit"))
# Words that join the parts of a unit's name ("Departamento de Contratación y Escrituración").
_NAME_LINKS = frozenset(cue_words("name_links"))


def _whole_words(folded: str) -> re.Pattern[str]:
    """A pattern for ``folded`` (already accent-folded) as whole words of a folded text."""
    return re.compile(rf"(?<![a-z0-9]){re.escape(folded)}(?![a-z0-9])")


def _sibling_remainders(units: Sequence[tuple[Unit, Manual]]) -> dict[int, set[str]]:
    """What tells sibling units apart when their names share a beginning ("Oficina Regional de Occidente",
    "Oficina Regional Paracentral" → "occidente", "paracentral"): each name's words after the beginning its
    siblings of the same kind share, without the links that open them; keyed by id(unit)."""
    kinds: dict[tuple[str, str | None, str], list[Unit]] = {}
    for u, m in units:
        words = fold(u.name).split()
        if words and u.parent is not None:
            kinds.setdefault((m.id, u.parent, words[0]), []).append(u)
    out: dict[int, set[str]] = {}
    for siblings in kinds.values():
        if len(siblings) < 2:
            continue
        names = [fold(u.name).split() for u in siblings]
        shared = 0
        while all(len(n) > shared + 1 and n[shared] == names[0][shared] for n in names):
            shared += 1
        for u, n in zip(siblings, names, strict=True):
            rest = n[shared:]
            while rest and rest[0] in _NAME_LINKS:
                rest = rest[1:]
            remainder = " ".join(rest)
            if len(remainder) >= 4:
                out.setdefault(id(u), set()).add(remainder)
    return out


def short_name(gerencia: str) -> str:
    """A gerencia's name without its unit word and the links after it ("Gerencia de Créditos" → "Créditos")."""
    words = gerencia.split()
    if words and fold(words[0]) in _UNIT_WORDS:
        words = words[1:]
    while words and fold(words[0]) in _NAME_LINKS:
        words = words[1:]
    return " ".join(words)


def _short_name(gerencia: str) -> str:
    return fold(short_name(gerencia))


def _unique_short_names(manuals: Sequence[Manual]) -> list[tuple[str, Manual]]:
    """Each manual's gerencia short name (folded), for the names only one served manual has."""
    names = [(_short_name(m.gerencia), m) for m in manuals]
    count = Counter(name for name, _m in names)
    return [(name, m) for name, m in names if name and count[name] == 1]


def _short_name_patterns(manuals: Sequence[Manual]) -> list[tuple[re.Pattern[str], Manual]]:
    """Patterns naming a manual by its gerencia's short name where the words around it say a manual or a
    gerencia is meant (a short name alone, "créditos", is also an everyday word); each name only one manual
    has."""
    out = []
    for name, m in _unique_short_names(manuals):
        n = re.escape(name)
        out.append(
            (
                re.compile(
                    rf"\b(?:(?:manual|mof)(?: de(?:l| la)?)?(?: (?:gerencia|direccion)(?: de(?:l| la)?)?)?"
                    rf"|(?:la|el) de(?:l| la)?) (?P<after>{n})(?![a-z0-9])"
                    rf"|(?<![a-z0-9])(?P<before>{n})(?:(?:'s)? (?:manual|mof|one)\b|'s(?![a-z0-9]))"
                ),
                m,
            )
        )
    return out


# An English agent noun ("archivist", "technicians", "coordinator"), which may name a kind of position.
_AGENT_NOUN = re.compile(r"(ist|yst|er|or|ant|ent|ian|ary|ive)s?$")


def _singular(word: str) -> str:
    """A folded Spanish word without its plural ending ("creditos" → "credito", "oficinas" → "oficina")."""
    if word.endswith("es") and len(word) > 4 and word[-3] not in "aeiou":
        return word[:-2]
    return word[:-1] if word.endswith("s") and len(word) > 3 else word


def _cognate(word: str) -> str | None:
    """A spelling key shared by an English word and its Spanish cognate ("technical"/"técnica",
    "committee"/"comité", "section"/"sección"): the first five letters of the folded word with doubled
    letters, th, ph, ch and y simplified; None for words too short to tell."""
    w = re.sub(r"ces?$", "ci", re.sub(r"(.)\1", r"\1", fold(word)))
    w = w.replace("th", "t").replace("ph", "f").replace("ch", "c").replace("y", "i").replace("ct", "c")
    return w[:5] if len(w) >= 5 else None


def _manual_words(manual: Manual) -> set[str]:
    """The words a manual writes in capitals (acronyms such as "UACI"), from its parsed text."""
    texts = [manual.structure_intro, manual.purpose]
    for u in manual.units:
        texts += [u.name, u.head or "", u.objective, *u.positions, *(f.text for f in u.functions)]
    for h in manual.history:
        texts += h.changes
    return {w for t in texts for w in re.findall(r"\b[A-ZÁÉÍÓÚÑ]{3,}\b", t)}


def named_outright(mentions: Sequence[_Mention]) -> list[_Mention]:
    """The mentions whose words no other mention shares: "la gerencia" names each served gerencia at one span,
    so it names none of them outright; "Sección de Registro" does."""
    spans = [(m.start, m.end) for m in mentions]
    return [m for m in mentions if spans.count((m.start, m.end)) == 1]


def unit_initials(unit: Unit) -> set[str]:
    """The initials of a unit's name after its kind word ("TI" for "Área de Tecnología de Información"), and
    with each plural word's letter doubled ("RRHH" for "Subgerencia de Recursos Humanos"); none for a
    one-word name."""
    words = [w for w in re.findall(r"[^\W\d_]+", unit.name) if fold(w) not in STOP_ES]
    if len(words) < 3 or fold(words[0]) not in _UNIT_WORDS:
        return set()
    rest = words[1:]
    plain = "".join(w[0].upper() for w in rest)
    doubled = "".join(w[0].upper() * (2 if w.endswith("s") else 1) for w in rest)
    return {fold(plain).upper(), fold(doubled).upper()}


def _acronyms(unit: Unit, manual: Manual) -> set[str]:
    """A unit's acronym ("UACI" for "Unidad de Adquisiciones y Contrataciones Institucional"), when the manual
    itself writes it: the initials of the name's words, of its words after the generic prefix, or an acronym
    the name gives in parentheses."""
    words = [w for w in re.findall(r"[^\W\d_]+", unit.name) if fold(w) not in STOP_ES]
    candidates = {"".join(w[0] for w in words), "".join(w[0] for w in words[1:])}
    candidates |= set(re.findall(r"\(([^\W\d_]{2,})\)", unit.name))
    written = {fold(w) for w in _manual_words(manual)}
    return {fold(c) for c in candidates if len(c) >= 3 and fold(c) in written}


def word_family(word: str) -> str:
    """A word's first six letters: "traslado" and "trasladen" alike, which the stemmer keeps apart."""
    return word[:6]


def _stems_by_word(lines: Iterable[str]) -> dict[str, list[frozenset[str]]]:
    """Each word of the (folded) lines, by `word_family` → the content-word stems of each line that holds it."""
    index: dict[str, list[frozenset[str]]] = {}
    for line in lines:
        words = tokens(line)
        stems = frozenset(stem(t) for t in words if t not in STOP_ES and len(t) > 3)
        for key in {word_family(t) for t in words}:
            index.setdefault(key, []).append(stems)
    return index


def titled_positions(
    units: list[tuple[Unit, Manual]],
    topic: str,
    places: Collection[str] = (),
    whole: bool = False,
) -> list[tuple[str, Unit, Manual]]:
    """The positions whose titles are made of the topic's words ("Asistente Servicios Electrónicos" for
    "servicios electrónicos"): a title's own words (not its rank, "Asistente", nor its unit's name) all in the
    topic, and at least half of the topic's words (without the words of the ``places`` it names). When
    ``whole``, the titles holding every word of the topic, its rank words too ("¿hay notarios?" → the
    Notario Coordinador and the Notario Institucional)."""
    generic, asked = title_frame()
    wanted = set(lexical_terms(topic)) - asked - set(places)
    if not whole:
        wanted -= generic
    found = []
    for u, m in units:
        for p in u.positions:
            if whole:
                if wanted and wanted <= set(lexical_terms(p)):
                    found.append((p, u, m))
                continue
            own = set(lexical_terms(p)) - generic - set(lexical_terms(u.name))
            if own and own <= wanted and len(own) >= len(wanted) / 2:
                found.append((p, u, m))
    return found


@lru_cache(maxsize=1)
def title_frame() -> tuple[frozenset[str], frozenset[str]]:
    """Stems that say what a position or unit is, not what it does (the template's rank and unit words,
    "Asistente", "Área"), and those a question asks for a position with ("puesto", "position")."""
    generic = frozenset(stem(w) for w in [*template().position_words, *template().unit_words])
    return generic, frozenset(stem(w) for w in cue_words("position_nouns"))


class _WordsAt:
    """Where a text says each word: by its own words' stems or English cognates, or word for word (singular or
    plural) in the glossary's translation of the words at that place ("guidance" → "orientación" does not name
    the Oficina Regional de Oriente)."""

    def __init__(self, text: str, spans: Sequence[tuple[int, int, str]]) -> None:
        self.words = tokens(text)
        self.have = [{stem(t)} for t in self.words]
        for i, j, add in spans:
            for k in range(max(0, i), min(j, len(self.words))):
                self.have[k] |= {w for t in tokens(add) for w in (t, _singular(t))}
        self.cognates = [_cognate(t) for t in self.words]

    def at(self, word: str) -> list[int]:
        """The places that say ``word``."""
        keys = {stem(word), word, _singular(word)}
        cognate = _cognate(word)
        return [
            k
            for k, have in enumerate(self.have)
            if keys & have or (cognate is not None and self.cognates[k] == cognate)
        ]

    def together(self, words: Sequence[str], name: Sequence[str] = ()) -> bool:
        """Whether some place of each word lies in one run with only stop words, or other words of the same
        ``name``, between them ("Procurement and Contracting Unit")."""
        places = [self.at(w) for w in words]
        said = {k for ks in places for k in ks} | {k for w in name if w not in words for k in self.at(w)}
        for combo in itertools.islice(itertools.product(*places), 64):
            a, b = min(combo), max(combo)
            if all(
                k in said or self.words[k] in STOP_ES or self.words[k] in STOP_EN for k in range(a, b + 1)
            ):
                return True
        return False


class Catalog:
    """Units and positions of the served manuals, with the aliases a question may use for them.

    Units are keyed by (manual, unit): two gerencias may each have an "Área de Ventas".
    """

    def __init__(self, manuals: list[Manual]) -> None:
        self.manuals = manuals
        self.units: list[tuple[Unit, Manual]] = [(u, m) for m in manuals for u in m.units]
        self._by_key = {(m.id, u.name): (u, m) for u, m in self.units}
        self._manual_of = {id(u): m for u, m in self.units}
        self._history_texts: dict[str, str] = {}
        self._history_stems: frozenset[str] | None = None
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
        distinct = _sibling_remainders(self.units)
        for u, m in self.units:
            for alias in self._aliases(u) | _acronyms(u, m) | distinct.get(id(u), set()):
                self.unit_aliases.append((alias, u, m))
        self.unit_aliases.sort(key=lambda x: -len(x[0]))
        # Initialisms users write ("TI", "RRHH"), matched case-sensitively by `find_initials`.
        self._by_initials: dict[str, list[tuple[Unit, Manual]]] = {}
        for u, m in self.units:
            for initials in unit_initials(u):
                self._by_initials.setdefault(initials, []).append((u, m))
        positions: dict[str, str] = {}
        for u, _m in self.units:
            for p in u.positions:
                positions.setdefault(fold(p), p)
        self.positions = sorted(positions.items(), key=lambda x: -len(x[0]))
        # Compiled once: every question is matched against every alias and position name.
        self._alias_patterns = [(_whole_words(alias), unit, m) for alias, unit, m in self.unit_aliases]
        self._position_patterns = [(_whole_words(key), name) for key, name in self.positions]
        # Each title's content-word stems, for titles of two words or more (`find_positions_by_words`).
        worded = [
            ({stem(t) for t in tokens(key) if t not in STOP_ES and len(t) > 2}, name)
            for key, name in self.positions
        ]
        self._position_words = [(frozenset(w), name) for w, name in worded if len(w) >= 2]
        # The first words of the position titles ("coordinador", "analista"), by stem and cognate key.
        firsts = {tokens(key)[0] for key, _name in self.positions if tokens(key)}
        self._titles = {(stem(t), _cognate(t)) for t in firsts}
        # A manual named by its code, or by its gerencia's short name where a manual is meant.
        self._manual_patterns = [(_whole_words(fold(m.code)), m) for m in manuals if m.code]
        self._manual_patterns += _short_name_patterns(manuals)
        self._short_names = _unique_short_names(manuals)
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
        # Each word of a duty line → the content-word stems of the lines that hold it (`duty_word`).
        self._duty_stems = _stems_by_word(self.duties)

    def duty_word(self, word: str, others: set[str]) -> bool:
        """Whether a duty line uses ``word`` (or a word of its family) beside another of the question's stems:
        "traslados" in "who autoriza los traslados del personal?" is the object of a duty ("Autorizar los
        movimientos de personal, como traslados…"), not a change-history cue."""
        key = word_family(word)
        return any(
            {s for s in stems if not s.startswith(key)} & others for stems in self._duty_stems.get(key, [])
        )

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

    def by_short_name(self, m: _Mention, texts: Sequence[str]) -> bool:
        """Whether a unit was named in one of `texts` (folded, as searched) by one word of its name alone that
        duty lines also use as an ordinary noun ("registro" for the Sección de Registro: "el registro de la
        zona"), not by its full name, a proper name ("Paseo"), its initials or its meaning."""
        if m.start < 0 or m.in_expansion or m.unit.parent is None or " " not in fold(m.unit.name):
            return False
        words = {a for a, u, _m in self.unit_aliases if u is m.unit and " " not in a}
        # An ordinary noun: one duty lines use ("registros"), not a proper name ("Paseo") or initials ("UACI").
        said = {t[m.start : m.end] for t in texts} & words
        return any(word_family(w) in self._duty_stems for w in said)

    @property
    def many(self) -> bool:
        """Whether more than one manual is served (answers then name each unit's gerencia)."""
        return len(self.manuals) > 1

    def manual_of(self, unit: Unit) -> Manual:
        """The manual a catalogued unit belongs to."""
        return self._manual_of[id(unit)]

    def find_initials(self, text: str) -> list[_Mention]:
        """Units a text names by the capital initials of their name after the kind word, as users write them
        ("TI" for the Área de Tecnología de Información, "RRHH" for Recursos Humanos, a plural's letters
        doubled): case-sensitive, so "ti" in "para ti" names nothing; an initialism two units share names both."""
        found: list[_Mention] = []
        letters = [c for c in text if c.isalpha()]
        if sum(c.isupper() for c in letters) > len(letters) / 2:
            return found  # a question typed in capitals has no initialisms to tell apart
        for m in re.finditer(r"\b[A-ZÁÉÍÓÚÑ]{2,6}\b", text):
            found += [_Mention(u, manual, -1, -1) for u, manual in self._by_initials.get(m.group(0), [])]
        return found

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

    def mention_by_word(self, word: str, text: str) -> _Mention | None:
        """The first unit a text names whose name holds this word (singular or plural, or as an English
        cognate): "ese archivo" after an answer quoting "… a la Unidad de Archivo Institucional" is that unit,
        "that committee" the Unidad de Secretaría del Comité it named."""
        w = fold(word)
        keys = {w, _singular(w)}
        cognate = _cognate(w)
        for m in self.find_units(text):
            name = [t for t in tokens(m.unit.name) if t not in STOP_ES]
            if keys & ({*name} | {_singular(t) for t in name}) or (
                cognate and cognate in map(_cognate, name)
            ):
                return m
        return None

    def find_units_by_words(self, text: str, spans: Sequence[tuple[int, int, str]]) -> list[_Mention]:
        """Units every word of whose name is in the text or its glossary translation, side by side: "the credit
        management" → Gerencia de Créditos, "payroll unit" → Unidad de Planillas; an English cognate counts as
        the word ("the technical evaluation section"). Failing that, the one unit below the top whose kind word
        and first word after it are there: "the archive unit" → Unidad de Archivo Institucional; or the one
        whose name of three words or more after its kind word is all there: "the credit committee secretariat".
        ``spans`` are the glossary's (first token, end token, translation) for ``text``. The words must stand
        together, with nothing but stop words between them: "el jefe directo del Asistente Administrativo"
        does not name the Dirección de Administración."""
        found = _WordsAt(text, spans)
        full: list[tuple[int, Unit, Manual]] = []
        near: list[tuple[Unit, Manual]] = []
        kindless: list[tuple[Unit, Manual]] = []
        names = [(u.name, u, m) for u, m in self.units]
        names += [
            (old, pair[0], pair[1])
            for (mid, new), old in self._former.items()
            if (pair := self.unit(new, mid))
        ]
        for name, u, m in names:
            words = [t for t in tokens(name) if t not in STOP_ES and len(t) > 2]
            if len(words) < 2:
                continue
            missing = [w for w in words if not found.at(w)]
            if not missing:
                if found.together(words):
                    full.append((len({stem(w) for w in words}), u, m))
            elif u.parent is not None and words[0] not in missing and words[1] not in missing:
                if found.together(words[:2], words):
                    near.append((u, m))
            elif (
                missing == [words[0]]
                and words[0] in _UNIT_WORDS
                and len(words) >= 4
                and u.parent is not None
                and found.together(words[1:], words)
            ):
                kindless.append((u, m))
        if full:
            top = max(n for n, _u, _m in full)
            return [_Mention(u, m, -1, -1) for n, u, m in full if n == top]
        if len({id(u) for u, _m in near}) == 1:
            return [_Mention(near[0][0], near[0][1], -1, -1)]
        if len({id(u) for u, _m in kindless}) == 1:
            # "the credit committee secretariat": every word of a long name but its kind word.
            return [_Mention(kindless[0][0], kindless[0][1], -1, -1)]
        return []

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
        """Manuals a text names by their code ("901 0903") or as "the manual of / the one of" a gerencia's short
        name ("el manual de Créditos", "¿y la de Legal?", "the Administración one", "and Legal's?")."""
        folded = fold(text)
        return [m for pattern, m in self._manual_patterns if pattern.search(folded)]

    def swapped_to(self, text: str) -> tuple[Manual, str] | None:
        """A follow-up that opens by moving the talk to another gerencia by its short name ("¿y en Legal?",
        "and in Créditos, who reviews …?", "y para la de Administración"): that manual, and the rest of the
        text after the name (empty for a bare swap), which a punctuation mark or an interrogative follows ("y en
        créditos hipotecarios …" names no gerencia). None when the text opens otherwise; each short name only
        one served manual has."""
        folded = fold(text)
        for name, m in self._short_names:
            found = re.match(
                r"^\W*(?:and|y|(?:and )?(?:what|how) about|que tal)\s+(?:(?:in|en|for|para|at|with|con|of|de)\s+)?"
                r"(?:(?:the|la|el)\s+)?"
                r"(?:(?:gerencia|direccion|manual|one|de)\s+(?:(?:de|of)\s+)?(?:la\s+|el\s+)?)*"
                rf"{re.escape(name)}(?![a-z0-9])(?:'s)?(?:\s+(?:one|manual|mof))?"
                r"(?:\s*[,;:.?!]|\s+(?=(?:quien|quienes|who|que|which|what|cual|cuales|donde|where|cuando|when|como|how)"
                r"\b)|\s*$)\W*(?P<rest>.*)$",
                folded,
            )
            if found:
                return m, found.group("rest").strip()
        return None

    def manual_spans(self, text: str) -> list[tuple[int, int, Manual]]:
        """Where a text (folded) names a manual by its gerencia's short name: the name's own span."""
        out = []
        for pattern, m in self._manual_patterns:
            for found in pattern.finditer(fold(text)):
                group = "after" if found.groupdict().get("after") else "before"
                if found.groupdict().get(group):
                    out.append((found.start(group), found.end(group), m))
        return sorted(out, key=lambda x: x[0])

    def _history_text(self, manual: Manual) -> str:
        """A manual's change history as one folded text (computed once)."""
        found = self._history_texts.get(manual.id)
        if found is None:
            found = self._history_texts[manual.id] = fold(
                " ".join(c for h in manual.history for c in h.changes)
            )
        return found

    def history_stems(self) -> frozenset[str]:
        """The stems of every word the served manuals' change histories use (computed once)."""
        if self._history_stems is None:
            self._history_stems = frozenset(
                stem(t) for m in self.manuals for t in tokens(self._history_text(m))
            )
        return self._history_stems

    def history_names(
        self, text: str, manual: Manual | None = None, starts: frozenset[str] | None = None
    ) -> list[str]:
        """Unit names the text gives that only a change history knows ("¿Qué pasó con el Área de Proyección
        Social?" once it was abolished): from a unit word, the longest run of words a history quotes (folded).
        With ``starts``, names that open with those words instead (position titles: `history_positions`)."""
        first_words = _UNIT_WORDS if starts is None else starts
        words = fold(text).split()
        if not any(w.strip(_PUNCTUATION) in first_words for w in words):
            return []
        manuals = [manual] if manual is not None else self.manuals
        body = " ".join(self._history_text(m) for m in manuals)
        found: list[str] = []
        for i, w in enumerate(words):
            if w.strip(_PUNCTUATION) not in first_words:
                continue
            # "el Área de Contratos a Departamento …" names two units: a name ends before "a <unit word>".
            end = next(
                (
                    k
                    for k in range(i + 2, min(len(words), i + 7))
                    if words[k] in _TO_WORDS
                    and k + 1 < len(words)
                    and words[k + 1].strip(_PUNCTUATION) in _UNIT_WORDS
                ),
                min(len(words), i + 7),
            )
            for j in range(end, i + 1, -1):
                name = " ".join(words[i:j]).strip(_PUNCTUATION)
                # A name cut short is not the one asked for: "unidad de gestion (de riesgos)".
                cut = words[j - 1] in _NAME_LINKS or (j < len(words) and words[j] in ("de", "del"))
                if not cut and _whole_words(name).search(body):
                    found.append(name)
                    break
        return found

    def history_positions(self, text: str, manual: Manual | None = None) -> list[str]:
        """Position titles the text gives that a change history quotes, in force or not ("When was the Técnico
        de Ventas job eliminated?"): from a position word, the longest run of words a history quotes (folded)."""
        return self.history_names(text, manual, starts=_POSITION_WORDS)

    def says_a_title(self, words: Sequence[str]) -> bool:
        """Whether a word names a kind of position as a noun: a position title's first word, in the singular
        or plural ("analistas"), or its English cognate noun ("archivist", "technicians"); not a verb
        ("promotes" is no "Promotor")."""
        for w in words:
            s, c = stem(w), _cognate(w)
            noun = bool(_AGENT_NOUN.search(w))
            if any(s == ts or (noun and c is not None and c == tc) for ts, tc in self._titles):
                return True
        return False

    @cached_property
    def _in_force_text(self) -> str:
        """Every served unit's name, head, positions, objective and duty lines, folded, in one string."""
        parts = [
            t
            for u, _m in self.units
            for t in (u.name, u.head or "", *u.positions, u.objective, *(f.text for f in u.functions))
        ]
        return " || ".join(fold(t) for t in parts)

    @cached_property
    def _title_stems(self) -> list[set[str]]:
        """The stems of every served unit name and position title of two words or more."""
        titles = [t for u, _m in self.units for t in (u.name, *u.positions)]
        return [s for t in titles if len(s := set(lexical_terms(t))) >= 2]

    def gone(self, text: str) -> list[str]:
        """The units and positions a text names that only a change history knows: in no served manual's
        structure or duty lines ("el puesto de Coordinador de Ventas"; not the "Comité de Créditos" that duty
        lines and the "Unidad de Secretaría del Comité de Créditos" name). Folded, positions first."""
        named = self.history_positions(text) + self.history_names(text)
        # A run the history quotes may go on past the title ("Auxiliar de Ventanilla en …") or spell it another
        # way ("Gestor de Recuperación Administrativa"): it is in force if it holds a title in force, or one
        # holds it.
        return [
            n
            for n in dict.fromkeys(named)
            if n not in self._in_force_text
            and not any(t <= (s := set(lexical_terms(n))) or s <= t for t in self._title_stems)
        ]

    def titled_in(self, unit: Unit, words: Sequence[str]) -> bool:
        """Whether a position of the unit (or of its sub-units) is titled with the words ("servicios móviles":
        the Supervisor de Servicios Móviles)."""
        kin = [unit] if unit.positions else self.children(unit)
        return bool(titled_positions([(u, self._manual_of[id(u)]) for u in kin], " ".join(words)))

    def names_former(self, text: str) -> bool:
        """Whether a text names a unit or position only a change history knows ("el Área de Proyección
        Social", "el puesto de Asistente Comercial"), not one in force."""
        return any(not self.find_units(n) for n in self.history_names(text)) or any(
            not self.find_positions(p) for p in self.history_positions(text)
        )

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
        for words, name in self._position_words:
            if words <= have:
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
