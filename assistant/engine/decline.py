"""Declining up front: a kind of information no MOF holds (`corpus/scope.json`) or a unit the manuals lack."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from assistant.cues import cue_words
from assistant.engine.common import Draft, Lang, decline
from assistant.engine.query import (
    _DETERMINERS,
    _FUNCTIONS,
    _HEAD,
    _POSITIONS,
    _RESPONSIBILITY,
    Query,
    history_cue,
)
from assistant.models import Hit
from assistant.phrases import say
from assistant.text import STOP_EN, STOP_ES, fold, stem, tokens

if TYPE_CHECKING:
    from assistant.engine.engine import GroundedEngine


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


def out_of_scope(engine: GroundedEngine, a: Query, lang: Lang, hits: list[Hit]) -> Draft | None:
    # "¿Quién maneja el presupuesto de la agencia?" asks for a responsibility, which the manual may cover.
    asks_who = bool(_RESPONSIBILITY.search(a.q))
    # Names of units and positions are not topics: "la Dirección de Administración" asks for no address.
    q = engine.catalog.mask_names(a.q)
    for topic in engine.scope:
        if (topic.always or not asks_who) and any(p.search(q) for p in topic.patterns):
            name = topic.es if lang == "es" else topic.en
            return decline(lang, hits, say("decline_out_of_scope", lang, topic=name))
    unknown = _unknown_unit(engine, a)
    if unknown:
        return decline(lang, hits, say("decline_unknown_unit", lang, unit=unknown))
    return None


_LINKS = frozenset(cue_words("name_links"))
_INTERROGATIVES = frozenset(cue_words("interrogatives"))


def _position_spans(engine: GroundedEngine, text: str) -> list[tuple[int, int]]:
    """Where a text names a position of the served manuals."""
    spans = []
    for p in engine.catalog.find_positions(text):
        at = text.find(fold(p))
        if at >= 0:
            spans.append((at, at + len(fold(p))))
    return spans


_POSSESSIVE = re.compile(r"['’]s\b")


def _unknown_unit(engine: GroundedEngine, a: Query) -> str | None:
    """A unit-like phrase ("the finance department", "Gerencia de Finanzas") the manuals do not have."""
    patterns = [
        r"\b(gerencia|departamento|unidad|division|seccion|agencia|sucursal) (de|del|de la|de los) "
        r"([a-z]+(?: [a-z]+)?)",
        r"\b(?:the )?((?:[a-z]+ )?[a-z]+) (department|division|unit|office|management|team|agency|branch)\b",
    ]
    # "the Gerente's own office": an English possessive's "s" is no word of a unit name.
    text = _POSSESSIVE.sub("", a.q.split(" || ")[0])
    # A unit the change history names is known to it when the history is asked ("¿Qué pasó con la Unidad de
    # Gestión de Garantías?"), not when its functions are ("What are the functions of the Gerencia Financiera?").
    asks_history = history_cue(a, text)
    history_names = engine.catalog.history_names(text)
    known_to_history = " ".join(history_names) if asks_history else ""
    # A unit only a change history names, asked about itself as if it were in force ("What are the functions
    # of the Gerencia Financiera?"): no manual describes it. Named as a duty's other party, it is no matter.
    about_it = not _RESPONSIBILITY.search(text) or any(
        c.search(text) for c in (_HEAD, _FUNCTIONS, _POSITIONS)
    )
    if not asks_history and about_it:
        current = [(m.start, m.end) for m in engine.catalog.find_units(text) if m.start >= 0]
        # A position's title holds unit words too ("Jefe Área de Seguros"): no unit is named inside it.
        current += _position_spans(engine, text)
        for name in history_names:
            at = text.find(name)
            if at >= 0 and any(s <= at and at + len(name) <= e for s, e in current):
                continue  # part of a unit in force ("… del Comité de Créditos" in the Unidad de Secretaría's name)
            return name
    for i, pat in enumerate(patterns):
        for m in re.finditer(pat, text):
            phrase = m.group(3) if i == 0 else m.group(1)
            if i == 1 and phrase.split()[-1] in _DETERMINERS:
                continue  # "was it always a department?": the noun has no qualifier
            if i == 0 and phrase.split()[0] in _INTERROGATIVES:
                continue  # "¿esa sección de quién depende?": a question word, not a name
            said = m.group(0).strip().split()
            while said and said[-1] in _LINKS:
                said.pop()
            if known_to_history and any(
                " ".join(said[:k]) in known_to_history for k in range(len(said), 2, -1)
            ):
                continue  # a name the history gives, and a word after it ("unidad de informatica before")
            words = [
                w for w in phrase.split() if w not in _DETERMINERS and w not in STOP_EN and w not in STOP_ES
            ]
            if not words:
                continue
            # "regional office" is an agency and "sales area" is Ventas: the glossary knows the phrase; but
            # "Sonsonate agency" is only known through its head noun, which does not make it a known unit.
            head = m.group(2) if i == 1 else m.group(1)
            known = set(tokens(engine.glossary.expand(m.group(0)))) if engine.glossary else set()
            known -= set(tokens(engine.glossary.expand(head))) if engine.glossary else set()
            stems = {stem(t) for t in tokens(" ".join(words))} | {stem(t) for t in known}
            if not stems & engine.catalog.alias_stems:
                return m.group(0).strip()
    return None
