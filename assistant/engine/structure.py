"""Answers from the org structure: heads, reporting lines, positions, groups, a unit's place, objective and functions."""

from __future__ import annotations

import re
from dataclasses import replace
from functools import lru_cache
from typing import TYPE_CHECKING

from assistant.cues import cue, cue_words
from assistant.engine.catalog import _cognate, _Mention, _singular, title_frame, titled_positions
from assistant.engine.common import Draft, Lang, _and, _cite, _quote_block, decline, per_manual, unit_label
from assistant.engine.query import (
    _BELONGS,
    _COUNT,
    _FUNCTIONS,
    _GROUP_WORDS,
    _GROUP_WORDS_PLURAL,
    _HEAD,
    _LIST,
    _OBJECTIVE,
    _POSITIONS,
    _RESPONSIBILITY,
    _WHERE,
    Query,
    _asks_reports,
    is_structural,
    leftover_topic,
)
from assistant.models import Citation, Hit, Manual, Unit
from assistant.phrases import say
from assistant.template import template
from assistant.text import STOP_EN, STOP_ES, fold, lexical_terms, of_article, stem, tokens, with_article

if TYPE_CHECKING:
    from assistant.engine.engine import GroundedEngine


def answer(engine: GroundedEngine, a: Query, lang: Lang, hits: list[Hit]) -> Draft | None:
    """A question the org structure answers (heads, reporting lines, positions, groups…); None otherwise."""
    q = a.q
    topic = leftover_topic(a.leftover)
    a = _without_unit_words_positions(engine, a)
    staff = _staff_of_position(engine, a, lang) or _stands_for(engine, a, lang)
    if staff is not None:
        return staff
    if a.positions and not _FUNCTIONS.search(q):
        about = _about_position(engine, a, lang, topic)
        if about is not None:
            return about
    groups = (
        _asked_groups(engine, a, lang, topic)
        or _units_of_kind(engine, a, lang)
        or _headed_by(engine, a, lang)
    )
    if groups is not None:
        return groups
    if not a.units:
        return None
    target = _most_specific(engine, a.units, q)
    each = _structure_per_manual(engine, a, lang, hits)
    if each is not None:
        return each
    unit, manual = target.unit, target.manual
    if unit.parent is not None and _BELONGS.search(q) and not a.positions and not _POSITIONS.search(q):
        return _places(engine, lang, a, target)
    if (_POSITIONS.search(q) or _REPORTS_TO_IT.search(q)) and _asks_reports(q) and not _FUNCTIONS.search(q):
        # "qué puestos dependen del Gerente", "who reports to the repossessed assets area?": those below it.
        return _positions(engine, lang, [t.unit for t in a.units], manual)
    if _asks_reports(q) and not _HEAD.search(q):
        return _unit_reports(engine, lang, unit, manual)
    if _HEAD.search(q) and not topic and not _lists_positions(engine, a):
        return _head_and_boss(engine, lang, unit, manual, q)
    listed = _listed_positions(engine, a, lang, unit, manual)
    if listed is not None:
        return listed
    if asks_role(engine, a.q) and not _FUNCTIONS.search(q):
        # "does it have a dispatcher, or just motoristas?", "¿tiene un coordinador de vivienda?": its chart.
        return _positions(engine, lang, [unit], manual)
    if _OBJECTIVE.search(q):
        return _objective(engine, lang, unit, manual)
    if _FUNCTIONS.search(q) and not topic:
        return functions(engine, lang, unit, manual)
    return None


# "does it have a …", "¿tiene un …": asks whether a unit has a kind of post, when a person's noun follows.
_HAS_ROLE = cue("has_role")
# An English person's noun ("dispatcher", "coordinator", "lawyer"); position titles are found by their words.
_PERSON_NOUN = re.compile(r"(?:ist|yst|er|or|ian)s?$")
# English words of that shape that name things: a register, a server, an order.
_THING_NOUNS = frozenset(cue_words("thing_nouns"))


def asks_role(engine: GroundedEngine, q: str) -> bool:
    """Whether a question asks if a unit has a kind of post: "does it have a dispatcher?", "¿tiene un
    coordinador …?" (a title's word, or an English person's noun), not "does it have a register of
    suppliers?", "¿tiene un inventario …?" or "does it have someone who organizes fairs?" (a duty)."""
    for m in _HAS_ROLE.finditer(q):
        if m.group(0).endswith(("someone", "somebody", "anyone", "alguien")):
            continue  # "someone who organizes fairs": who does a task, the duty lines say
        after = [w for w in tokens(q[m.end() :]) if w not in STOP_EN and w not in STOP_ES][:1]
        if not after or after[0] in _THING_NOUNS:
            continue
        if engine.catalog.says_a_title(after) or (_PERSON_NOUN.search(after[0]) and _english(after[0])):
            return True
    return False


@lru_cache(maxsize=4096)
def _english(word: str) -> bool:
    """Whether a word is more common in English than in Spanish (word frequency lists)."""
    from wordfreq import zipf_frequency

    return zipf_frequency(word, "en") > zipf_frequency(word, "es")


def _about_position(engine: GroundedEngine, a: Query, lang: Lang, topic: bool) -> Draft | None:
    """A question about a named position: whom it reports to, where it is, or which of a kind report to it
    ("¿qué asistentes dependen directamente del Gerente?": those in the chart of the unit it heads)."""
    position = a.positions[0]
    if _asks_reports(a.q) or _asks_boss_of(a):
        headed = [
            (u, m)
            for u, m in engine.catalog.units_with_position(position)
            if fold(u.head or "") == fold(position)
        ]
        of_kind = _positions_of_kind(engine, a, headed[0][0]) if len(headed) == 1 else []
        if of_kind:
            return _kind_of_positions(engine, lang, headed[0][0], headed[0][1], of_kind)
        return _position_reports(engine, lang, position, a.units[0] if a.units else None)
    if _WHERE.search(a.q) or not topic:
        return _where_position(engine, lang, position)
    return None


def _most_specific(engine: GroundedEngine, units: list[_Mention], q: str) -> _Mention:
    """The first named unit that is not only where another named one is."""
    return (_specific(engine, units, q) or units)[0]


def _specific(engine: GroundedEngine, units: list[_Mention], q: str) -> list[_Mention]:
    """The named units, less those named only as where another one is: "the legal management's registry
    section", "la Sección de Registro de la Gerencia Legal" ask about the section; "la Gerencia y el Área de
    Ventas" about both."""
    where: set[tuple[str, str]] = set()
    for m in units:
        up = engine.catalog.parent(m.unit)
        while up is not None:
            for o in units:
                if (o.manual.id, o.unit.name) == (m.manual.id, up.name) and not _joined(q, m, o):
                    where.add((o.manual.id, o.unit.name))
            up = engine.catalog.parent(up)
    return [m for m in units if (m.manual.id, m.unit.name) not in where]


def _joined(q: str, a: _Mention, b: _Mention) -> bool:
    """Whether two units are named side by side ("X y Y", "X and Y", "X, Y"), not one qualifying the other."""
    if min(a.start, b.start) < 0:
        return False
    first, second = sorted((a, b), key=lambda m: m.start)
    between = f" {q[first.end : second.start]} "
    return bool(re.search(r"[,;]| (y|e|and|as well as|tambien) ", between))


def _asks_boss_of(a: Query) -> bool:
    """ "¿Quién es el jefe del Motorista?": a head word outside the position's own name, with no unit named,
    asks whom the position reports to."""
    if a.units:
        return False
    rest = a.q
    for p in a.positions:
        rest = rest.replace(fold(p), " ")
    return bool(_HEAD.search(rest))


def _without_unit_words_positions(engine: GroundedEngine, a: Query) -> Query:
    """Drop a position found only through the words of a unit the question names ("the human resources
    subgerencia" is not the Subgerente de Recursos Humanos): the unit is what is asked about."""
    if not (a.positions and a.units) or engine.catalog.find_positions(a.q):
        return a
    names = {t for m in a.units for t in lexical_terms(m.unit.name)}
    return replace(a, positions=[p for p in a.positions if not set(lexical_terms(p)) <= names])


def _head_and_boss(engine: GroundedEngine, lang: Lang, unit: Unit, manual: Manual, q: str) -> Draft:
    """Who heads a unit, and whom it reports to when the question asks that too."""
    draft = _head(engine, lang, unit, manual)
    if _asks_reports(q):
        extra = _unit_reports(engine, lang, unit, manual)
        draft = Draft(draft.text + "\n\n" + extra.text, True, draft.citations + extra.citations)
    return draft


def _structure_per_manual(engine: GroundedEngine, a: Query, lang: Lang, hits: list[Hit]) -> Draft | None:
    """ "el Gerente" when several gerencias are served names each top unit: one short answer per manual."""
    first = a.units[0]
    twins = [m for m in a.units if (m.start, m.end) == (first.start, first.end) and m.start >= 0]
    if len(twins) < 2:
        return None
    drafts = [answer(engine, replace(a, units=[m], manuals=[m.manual]), lang, hits) for m in twins]
    return per_manual([d for d in drafts if d is not None], lang)


def _asked_groups(engine: GroundedEngine, a: Query, lang: Lang, topic: bool) -> Draft | None:
    """ "¿Cuántos grupos tiene la Gerencia?": the groups of the named unit, or of each manual's top."""
    q, cat = a.q, engine.catalog
    with_children = [m for m in a.units if cat.children(m.unit)]
    asks_groups = _GROUP_WORDS.search(q) and (_COUNT.search(q) or (_LIST.search(q) and not topic))
    if _OBJECTIVE.search(q) or _FUNCTIONS.search(q):
        return None  # "what's the goal of the agencies of the Gerencia?" asks for their objective
    if (_asks_reports(q) or _POSITIONS.search(q)) and not _GROUP_WORDS_PLURAL.search(q):
        # "which unit does X report to?" asks for X's parent, "what positions are there in the registry
        # section?" for its chart, not for its sub-units
        return None
    about_top = with_children or not a.units or a.units[0].unit.parent is None
    if not (asks_groups and not a.positions and about_top):
        return None
    if with_children:
        # "Which regional offices does the credit management have?": the most specific unit named.
        inner = [m for m in with_children if m.unit.parent is not None] or with_children
        return _groups(engine, lang, inner[0].unit, inner[0].manual)
    return per_manual([_groups(engine, lang, u, m) for u, m in cat.tops(a.manuals)], lang)


_STANDS_FOR = cue("stands_for")
# "Who reports to X?", "¿quiénes dependen de X?": those below X, not whom X reports to.
_REPORTS_TO_IT = cue("reports_to_it")


def _stands_for(engine: GroundedEngine, a: Query, lang: Lang) -> Draft | None:
    """ "What does UACI stand for?", "¿Qué significa TI?": the unit a short name names."""
    named = [m for m in a.units if m.start >= 0 and fold(m.unit.name) != a.q[m.start : m.end]]
    if not _STANDS_FOR.search(a.q) or not named or len({m.unit.name for m in named}) > 1:
        return None
    m = named[0]
    alias = a.q[m.start : m.end].upper()
    text = say("structure_stands_for", lang, alias=alias, unit=m.unit.name, gerencia=m.manual.gerencia)
    return Draft(text, True, [_cite(m.manual, m.unit.name, "organigrama", None, m.unit.chart_quote())])


_WHO = re.compile(r"\b(who|whom|quien|quienes)\b")
_WHO_THEN = re.compile(r"\b(?:who|whom|quien|quienes)\s+([a-zñ]+)")  # the word after "who"


def _units_of_kind(engine: GroundedEngine, a: Query, lang: Lang) -> Draft | None:
    """ "¿Qué secciones hay en la Gerencia Legal?", "Which units across the manuals are Secciones?": the units
    whose name opens with the kind word asked for (a unit word of the template, in the plural, or an English
    word the glossary gives it for), in each manual asked about; only when nothing else is asked."""
    q = a.q
    if not _LIST.search(q) or _WHO.search(q) or _HEAD.search(q) or _asks_reports(q):
        return None
    if _POSITIONS.search(q) or a.positions or _OBJECTIVE.search(q) or _FUNCTIONS.search(q):
        return None  # their positions, objective or functions are asked, not which they are
    unit_words = template().unit_words
    asked = tokens(q.split(" || ")[0])
    kinds = {
        _singular(w) for w in asked if w in unit_words and _singular(w) != w and _singular(w) in unit_words
    }
    if not kinds and engine.glossary is not None:
        # "sections", "departments": an English plural the glossary gives a kind word for.
        kinds = {
            k for w in asked if w.endswith("s") for k in tokens(engine.glossary.expand(w)) if k in unit_words
        }
    kinds -= {fold(m.unit.name).split()[0] for m in a.units}  # "the Legal Management": a name, not a kind
    if len(kinds) != 1:
        return None
    kind = kinds.pop()
    frame = {stem(w) for w in cue_words("kind_list_frame")} | {
        stem(w) for w in asked if _singular(w) in unit_words
    }
    named = {t for m in a.units for t in lexical_terms(m.unit.name)}

    def says_kind(term: str) -> bool:  # "sections": the English word the glossary gives the kind for
        return engine.glossary is not None and kind in tokens(engine.glossary.expand(term))

    # Every other word is the kind itself, the frame of a list, or structural: "¿Qué dependencias formalizan los
    # créditos?" asks who does a task.
    if leftover_topic([t for t in a.leftover if t not in frame | named and not says_kind(t)]):
        return None
    drafts = []
    for m in a.manuals:
        found = [u for u in m.units if fold(u.name).split()[0] == kind and u.parent is not None]
        if not found:
            continue
        rows = [f"- **{u.name}**" + (f" ({u.parent})" if u.parent else "") for u in found]
        word = found[0].name.split()[
            0
        ]  # the kind as the manual writes it ("Sección"), in the plural if several
        word = word if len(found) == 1 else _plural(word)
        lead = say(
            "structure_units_of_kind", lang, gerencia=m.gerencia, code=m.code, count=len(found), kind=word
        )
        cites = [_cite(m, u.name, "organigrama", None, u.chart_quote()) for u in found]
        drafts.append(Draft(lead + "\n" + "\n".join(rows), True, cites))
    if not drafts:
        return Draft(say("structure_units_of_kind_none", lang, kind=kind), False)
    return per_manual(drafts, lang)


_HEADED_BY = cue("headed_by")


def _headed_by(engine: GroundedEngine, a: Query, lang: Lang) -> Draft | None:
    """ "Which units are headed by a coordinator?", "¿qué unidades están a cargo de un coordinador?": the units
    whose head's title opens with that rank word (as the manual writes it, or its English cognate), in each
    manual asked about; None when no head title opens with it."""
    found = _HEADED_BY.search(a.q)
    if not found or _WHO.search(a.q) or a.positions or any(m.unit.parent is not None for m in a.units):
        return None  # "¿El Área de Ventas está a cargo de un jefe?" asks of one unit
    word = next(g for g in found.groups() if g)
    keys = {word, _singular(word)}
    cognate = _cognate(word)

    def ranked(title: str) -> bool:
        first = fold(title).split()[0]
        return first in keys or (cognate is not None and _cognate(first) == cognate)

    drafts = []
    for m in a.manuals:
        units = [u for u in m.units if u.head and ranked(u.head)]
        if not units:
            continue
        rows = [f"- **{u.name}** — {u.head}" for u in units]
        rank = (units[0].head or word).split()[0]
        lead = say("structure_headed_by", lang, gerencia=m.gerencia, code=m.code, rank=rank)
        cites = [_cite(m, u.name, "organigrama", None, u.chart_quote()) for u in units]
        drafts.append(Draft(lead + "\n" + "\n".join(rows), True, cites))
    return per_manual(drafts, lang)


def _plural(word: str) -> str:
    """A Spanish noun's plural: "Departamento" → "Departamentos", "Sección" → "Secciones"."""
    if fold(word)[-1] in "aeiou":
        return word + "s"
    if len(word) > 2 and word[-2] in "áéíóú":  # the stress moves off an accented last syllable
        word = word[:-2] + fold(word[-2]) + word[-1]
    return word + "es"


def _staff_of_position(engine: GroundedEngine, a: Query, lang: Lang) -> Draft | None:
    """ "¿Qué puestos integran el staff del Gerente de Créditos?": the chart of the unit it heads."""
    if not (a.positions and _POSITIONS.search(a.q) and not _FUNCTIONS.search(a.q)):
        return None
    key = fold(a.positions[0])
    wanted = {m.id for m in a.manuals}
    headed = [
        (u, m)
        for u, m in engine.catalog.units_with_position(a.positions[0])
        if fold(u.head or "") == key and m.id in wanted
    ]
    return _positions(engine, lang, [headed[0][0]], headed[0][1]) if len(headed) == 1 else None


def _lists_positions(engine: GroundedEngine, a: Query) -> bool:
    """Whether a question naming a unit asks for its positions (and not who does a task there)."""
    return bool(_POSITIONS.search(a.q)) and not _FUNCTIONS.search(a.q) and not _asks_duty(engine, a)


def _asks_duty(engine: GroundedEngine, a: Query) -> bool:
    """ "¿Quién paga las horas extra del personal de la Agencia?" asks who does a task, not for the unit's
    positions: a "who" question with topic words beyond the structural ones goes to the support check."""
    if getattr(engine, "support_scorer", None) is None or not _RESPONSIBILITY.search(a.q):
        return False
    rest = set(lexical_terms(_POSITIONS.sub(" ", a.q)))
    return leftover_topic([t for t in a.leftover if t in rest])


def _groups(engine: GroundedEngine, lang: Lang, top: Unit, manual: Manual) -> Draft:
    kids = engine.catalog.children(top)
    rows = [f"{i}. **{k.name}** — {k.head or '—'}" for i, k in enumerate(kids, 1)]
    if top.parent is not None:
        text = say("structure_subunits", lang, unit=unit_label(engine.catalog, top), count=len(kids))
        text += "\n" + "\n".join(rows)
        return Draft(
            text,
            True,
            [
                _cite(manual, k.name, "organigrama", None, k.chart_quote())
                for k in kids
                if k.positions or k.chart
            ],
        )
    text = say("structure_groups_of_top", lang, unit=top.name, count=len(kids), head=top.head)
    text += "\n" + "\n".join(rows)
    if manual.structure_intro:
        # The manual's own sentence ("… está dividida en 6 grupos de trabajo:"), quoted.
        text += "\n\n" + _quote_block(manual.structure_intro)
    quote = manual.structure_intro or "\n".join(k.name for k in kids)
    return Draft(text, True, [_cite(manual, top.name, "organigrama", None, quote)])


def _places(engine: GroundedEngine, lang: Lang, a: Query, target: _Mention) -> Draft:
    """Where the named unit sits; where each one sits when several are named ("¿Cuál gerencia tiene el
    Departamento X y cuál el Departamento Y?")."""
    named = [m for m in _specific(engine, a.units, a.q) if m.unit.parent is not None and m.start >= 0]
    if len({(m.manual.id, m.unit.name) for m in named}) < 2:
        return _unit_place(engine, lang, target.unit, target.manual)
    places = [_unit_place(engine, lang, m.unit, m.manual) for m in named]
    return Draft("\n\n".join(p.text for p in places), True, [c for p in places for c in p.citations])


def _unit_place(engine: GroundedEngine, lang: Lang, unit: Unit, manual: Manual) -> Draft:
    """Where a unit sits: its gerencia (manual) and the chain of units above it."""
    chain: list[Unit] = []
    parent = engine.catalog.parent(unit)
    while parent is not None and len(chain) < 10:
        chain.append(parent)
        parent = engine.catalog.parent(parent)
    path = " → ".join(f"**{u.name}**" for u in reversed(chain))
    text = say(
        "structure_unit_place",
        lang,
        unit=unit.name,
        gerencia=manual.gerencia,
        code=manual.code,
        version=manual.version,
        path=path,
    )
    return Draft(text, True, [_cite(manual, unit.name, "organigrama", None, unit.chart_quote())])


def _head(engine: GroundedEngine, lang: Lang, unit: Unit, manual: Manual) -> Draft:
    # "Each of its sub-units has its own Jefe de Agencia": only when the sub-units' heads bear the same title.
    kids = [k for k in engine.catalog.children(unit) if k.head and fold(k.head) == fold(unit.head or "")]
    if not unit.head:
        headed = [k for k in engine.catalog.children(unit) if k.head]
        if headed:
            # A group with no head of its own ("Oficinas Regionales"): each of its units has one.
            return _groups(engine, lang, unit, manual)
        if unit.positions:
            return _positions(engine, lang, [unit], manual)
        return _no_chart(engine, lang, unit, manual)
    text = say("structure_head", lang, unit=unit_label(engine.catalog, unit), head=unit.head)
    if kids:
        names = _and([k.name for k in kids], lang)
        text += " " + say("structure_head_of_each_subunit", lang, units=names, head=unit.head)
    return Draft(text, True, [_cite(manual, unit.name, "organigrama", None, unit.head)])


def _no_chart(engine: GroundedEngine, lang: Lang, unit: Unit, manual: Manual) -> Draft:
    """A unit whose chart lists neither a head nor positions: say so, and where it sits."""
    text = say("structure_no_chart", lang, unit=unit.name)
    if unit.parent is None:
        return Draft(text, True, [_cite(manual, unit.name, "organigrama", None, unit.name)])
    place = _unit_reports(engine, lang, unit, manual)
    return Draft(text + " " + place.text, True, place.citations)


def _unit_reports(engine: GroundedEngine, lang: Lang, unit: Unit, manual: Manual) -> Draft:
    parent_unit = engine.catalog.parent(unit)
    parent = (parent_unit, manual) if parent_unit is not None else None
    if parent is None:
        text = say("structure_top_unit_reports", lang, unit=unit_label(engine.catalog, unit), head=unit.head)
        return Draft(text, True, [_cite(manual, unit.name, "organigrama", None, unit.head or unit.name)])
    p, pm = parent
    if p.head and unit.head and fold(p.head) == fold(unit.head):
        # An agency's Jefe de Agencia reports through the group (Agencias) to the group's parent.
        grand = engine.catalog.parent(p)
        if grand is not None:
            p = grand
    parent_name = of_article(p.name, bold=True) if lang == "es" else f"the **{p.name}**"
    if unit.head:
        text = say(
            "structure_unit_reports", lang, who=unit.head, unit=unit.name, parent=parent_name, head=p.head
        )
    else:  # a unit whose chart names no head: the unit itself reports
        article = with_article(unit.name)[: -len(unit.name)].capitalize() if lang == "es" else ""
        named = f"{article}**{unit.name}**" if lang == "es" else unit.name
        text = say("structure_headless_unit_reports", lang, unit=named, parent=parent_name, head=p.head)
    # The unit's own chart shows where it sits (its heading's number, a "Dependencia jerárquica" line).
    own = [_cite(manual, unit.name, "organigrama", None, unit.chart)] if unit.chart else []
    return Draft(text, True, [*own, _cite(pm, p.name, "organigrama", None, p.head or p.name)])


def _position_reports(engine: GroundedEngine, lang: Lang, position: str, hint: _Mention | None) -> Draft:
    places = engine.catalog.units_with_position(position)
    if hint:
        places = [
            pl for pl in places if pl[0].name == hint.unit.name or pl[0].parent == hint.unit.name
        ] or places
    if not places:
        return _where_position(engine, lang, position)
    lines: list[str] = []
    cites: list[Citation] = []
    seen: set[str] = set()
    for unit, manual in places:
        if fold(unit.head or "") == fold(position):
            found = engine.catalog.parent(unit)
            if found is None:
                continue
            boss = found
            if boss.head and fold(boss.head) == fold(position):
                found = engine.catalog.parent(boss)
                if found is None:
                    continue
                boss = found
            if boss.name in seen:
                continue
            seen.add(boss.name)
            lines.append(
                "- "
                + say(
                    "structure_position_reports_as_head",
                    lang,
                    unit=unit.name,
                    boss=boss.head,
                    boss_unit=boss.name,
                )
            )
            cites.append(_cite(manual, boss.name, "organigrama", None, boss.head or boss.name))
        else:
            if unit.name in seen:
                continue
            seen.add(unit.name)
            lines.append(
                "- " + say("structure_position_reports_in_unit", lang, unit=unit.name, head=unit.head)
            )
            cites.append(_cite(manual, unit.name, "organigrama", None, unit.chart_quote()))
    if not lines:
        # Only the head of a manual's top unit: the manual does not say whom it reports to.
        tops = [(u, m) for u, m in places if u.parent is None]
        if tops:
            return per_manual([_unit_reports(engine, lang, u, m) for u, m in tops], lang) or Draft("", False)
        return _where_position(engine, lang, position)
    lead = say("structure_position_reports_lead", lang, position=position)
    return Draft(lead + "\n" + "\n".join(lines), True, cites)


def _where_position(engine: GroundedEngine, lang: Lang, position: str) -> Draft:
    places = engine.catalog.units_with_position(position)
    if not places:
        return Draft("", False)
    # Variants named after the same post ("Promotor de Créditos de Sucursal") are worth a mention.
    variants = [
        (v, u, m)
        for v_key, v in engine.catalog.positions
        if v_key.startswith(fold(position) + " ")
        for u, m in engine.catalog.units_with_position(v)
    ]
    cites = [_cite(m, u.name, "organigrama", None, u.chart_quote()) for u, m in places]
    names = []
    for u, m in places:
        parent = engine.catalog.parent(u)
        inner = parent is not None and parent.parent is not None
        where = [u.parent] if inner and u.parent else []
        if engine.catalog.many and u.parent is not None:
            where.append(m.gerencia)
        names.append(f"**{u.name}**" + (f" ({', '.join(where)})" if where else ""))
    head_of = [u.name for u, _m in places if fold(u.head or "") == fold(position)]
    if len(places) == 1:
        text = say("structure_position_in_one_unit", lang, position=position, unit=names[0])
    else:
        text = say(
            "structure_position_in_units", lang, position=position, count=len(places), units=_and(names, lang)
        )
    if head_of:
        text += say("structure_position_heads", lang, units=_and(head_of, lang))
    text += "."
    for v, u, m in variants:
        text += " " + say("structure_position_variant", lang, unit=u.name, position=v)
        cites.append(_cite(m, u.name, "organigrama", None, u.chart_quote()))
    return Draft(text, True, cites)


def _positions(engine: GroundedEngine, lang: Lang, units: list[Unit], manual: Manual) -> Draft:
    shown: list[Unit] = []
    for unit in units[:3]:
        if unit.positions:
            shown.append(unit)
        else:
            shown.extend(k for k in engine.catalog.children(unit) if k.positions)
    if not shown:
        if units[0].head:
            return _head(engine, lang, units[0], manual)
        return _no_chart(engine, lang, units[0], manual)
    parts: list[str] = []
    cites: list[Citation] = []
    unique = list({u.name: u for u in shown}.values())
    for u in unique:
        title = say("structure_positions_of_unit", lang, unit=u.name, count=len(u.positions), head=u.head)
        parts.append(title + "\n" + "\n".join(f"- {p}" for p in u.positions))
        cites.append(_cite(manual, u.name, "organigrama", None, u.chart_quote()))
        kids = engine.catalog.children(u)
        if u.parent is None and kids:
            heads = ", ".join(f"{k.head} ({k.name})" for k in kids if k.head)
            parts.append(say("structure_group_heads_report_to_top", lang, head=u.head or u.name, heads=heads))
    return Draft("\n\n".join(parts), True, cites)


def _listed_positions(
    engine: GroundedEngine, a: Query, lang: Lang, unit: Unit, manual: Manual
) -> Draft | None:
    """The positions a question asks a unit for: all of them, or those of one kind ("¿qué coordinadores hay?")."""
    if _lists_positions(engine, a):
        titled = _titled_for_topic(engine, a, unit, manual)
        if titled:
            return _kind_of_positions(engine, lang, unit, manual, titled)
        return _positions(engine, lang, [t.unit for t in _specific(engine, a.units, a.q) or a.units], manual)
    of_kind = _positions_of_kind(engine, a, unit)
    return _kind_of_positions(engine, lang, unit, manual, of_kind) if of_kind else None


def _positions_of_kind(engine: GroundedEngine, a: Query, unit: Unit) -> list[str]:
    """ "¿Qué coordinadores hay en el Área de Ventas?", "any assistants there?": the unit's positions (or its
    sub-units') whose title word is what the question asks about, when nothing else is asked."""
    held = list(dict.fromkeys(p for u in _charted(engine, unit) for p in u.positions))
    asked = [t for t in a.leftover if not is_structural(t)]
    if not held or not asked or _FUNCTIONS.search(a.q) or _OBJECTIVE.search(a.q) or _who_does(a.q):
        return []

    def title_is(word: str, position: str) -> bool:
        title = tokens(position)[0]
        return stem(title) == word or (_cognate(word) or "-") == _cognate(title)

    if not all(any(title_is(t, p) for p in held) for t in asked):
        return []
    return [p for p in held if any(title_is(t, p) for t in asked)]


def _titled_for_topic(engine: GroundedEngine, a: Query, unit: Unit, manual: Manual) -> list[str]:
    """ "Which positions in the Área de Ventas deal with servicios móviles?": the unit's positions (or its
    sub-units') named for the question's topic (`titled_positions`); none when no title is named for it (then
    all are listed)."""
    generic, asked = title_frame()
    named = {t for m in a.units for t in lexical_terms(m.unit.name)}
    if not set(lexical_terms(a.q)) - generic - asked - named:
        return []  # no topic of its own: "¿Qué puestos hay en la Unidad de Transporte?"
    charted = [(u, manual) for u in _charted(engine, unit)]
    # Titles are Spanish: the question's glossary translation first ("notifications" → "notificaciones").
    for words in (a.expansion, a.q):
        found = titled_positions(charted, words, named)
        if found:
            return list(dict.fromkeys(p for p, _u, _m in found))
    return []


def _charted(engine: GroundedEngine, unit: Unit) -> list[Unit]:
    """The unit whose chart lists positions, or else its sub-units that have one (a group: "Agencias")."""
    return [unit] if unit.positions else [k for k in engine.catalog.children(unit) if k.positions]


def _who_does(q: str) -> bool:
    """ "who coordinates selling them?", "¿quién coordina…?": a verb after "who" asks for a duty's holder, not
    for the positions of a kind ("who are the coordinators?")."""
    if _HEAD.search(q):
        return False  # "who runs it and what technicians does it have?": a head, and the positions of a kind
    return any(w not in STOP_EN and w not in STOP_ES for w in _WHO_THEN.findall(q))


def _kind_of_positions(
    engine: GroundedEngine, lang: Lang, unit: Unit, manual: Manual, positions: list[str]
) -> Draft:
    kin = _charted(engine, unit)
    total = len({p for u in kin for p in u.positions})
    label = unit_label(engine.catalog, unit)
    if unit.head:
        text = say(
            "structure_positions_of_kind", lang, unit=label, head=unit.head, count=len(positions), total=total
        )
    else:
        text = say("structure_positions_of_kind_no_head", lang, unit=label, count=len(positions), total=total)
    text += "\n" + "\n".join(f"- {p}" for p in positions)
    cites = [_cite(manual, u.name, "organigrama", None, u.chart_quote()) for u in kin]
    return Draft(text, True, cites)


def _owner(engine: GroundedEngine, unit: Unit, attr: str) -> Unit:
    """The unit whose objective/functions apply: a sub-unit shares its group's."""
    parent = engine.catalog.parent(unit)
    if parent and parent.parent is not None and getattr(parent, attr) == getattr(unit, attr):
        return parent
    if not getattr(unit, attr) and parent:
        return parent
    return unit


def _objective(engine: GroundedEngine, lang: Lang, unit: Unit, manual: Manual) -> Draft:
    owner = _owner(engine, unit, "objective")
    if not owner.objective:
        return decline(lang, [], say("structure_no_objective", lang))
    label = unit_label(engine.catalog, owner)
    if owner.head:
        lead = say("structure_objective", lang, unit=label, head=owner.head)
    else:
        lead = say("structure_objective_no_head", lang, unit=label)
    text = lead + "\n" + _quote_block(owner.objective)
    cites = [_cite(manual, owner.name, "objetivo", None, owner.objective)]
    twins = [
        (u, m)
        for u, m in engine.catalog.units
        if u.objective == owner.objective and u is not owner and not (u.parent == owner.name and m is manual)
    ]
    if twins:
        names = _and([f"**{engine.catalog.label(u)}**" for u, _m in twins], lang)
        text += "\n\n" + say("structure_same_objective", lang, units=names)
        cites += [_cite(m, u.name, "objetivo", None, u.objective) for u, m in twins]
    return Draft(text, True, cites)


def functions(engine: GroundedEngine, lang: Lang, unit: Unit, manual: Manual) -> Draft:
    owner = _owner(engine, unit, "functions")
    if not owner.functions:
        return _positions(engine, lang, [unit], manual)
    label = unit_label(engine.catalog, owner)
    if owner.head:
        lead = say("structure_functions", lang, unit=label, head=owner.head)
    else:
        lead = say("structure_functions_no_head", lang, unit=label)
    lines = [f"{f.numeral}. «{f.text}»" for f in owner.functions]
    cites = [_cite(manual, owner.name, "funciones", f.numeral, f.text) for f in owner.functions]
    return Draft(lead + "\n" + "\n".join(lines), True, cites)
