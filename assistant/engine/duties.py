"""Who handles X: the retrieved duty lines, the calibrated support check, and the composed answer."""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

from assistant.cues import cue, cue_words
from assistant.engine.catalog import _cognate, _Mention, _whole_words, titled_positions
from assistant.engine.common import Draft, Lang, _cite, _quote_block, decline, unit_label
from assistant.engine.query import (
    _ASKS_PERSON,
    _GREETINGS,
    _LOCATIVE,
    _PLURAL_UNITS,
    _QUESTION_WORDS,
    _TOP_LEVEL,
    _VERSION_NUM,
    _WHICH_POSITION,
    FollowUp,
    Query,
    leftover_topic,
)
from assistant.engine.structure import functions
from assistant.models import Chunk, Citation, Hit, Manual, Unit
from assistant.phrases import say
from assistant.support import POLITE, Scored, SupportScorer
from assistant.text import STOP_EN, STOP_ES, fold, lexical_terms, stem, stem_variants, tokens

if TYPE_CHECKING:
    from assistant.engine.engine import GroundedEngine


def _close(term: str, pool: set[str]) -> bool:
    """A topic stem is found in a text, allowing a typo or two (``formalis`` ~ ``formaliz``)."""
    if term in pool:
        return True
    if len(term) < 5:
        return False
    return any(t[:3] == term[:3] and difflib.SequenceMatcher(None, t, term).ratio() >= 0.8 for t in pool)


def support(hits: list[Hit], leftover: list[str], expansion: str) -> tuple[float, float]:
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


def who_handles(engine: GroundedEngine, a: Query, lang: Lang, hits: list[Hit]) -> Draft:
    """Who handles the topic: the best-supported duty lines, or an honest decline (always answers)."""
    draft = _who_handles(engine, a, lang, hits)
    if not draft.answered and _WHICH_POSITION.search(a.q):
        return _positions_only(engine, a, lang) or draft
    if not draft.answered and _ASKS_PERSON.search(a.q):
        # "¿hay notarios en la Gerencia Legal?": no duty line, but positions whose titles say the whole topic.
        return _positions_only(engine, a, lang, whole=True) or draft
    return draft


def _who_handles(engine: GroundedEngine, a: Query, lang: Lang, hits: list[Hit]) -> Draft:
    scorer: SupportScorer | None = getattr(engine, "support_scorer", None)
    if scorer is None:
        # No calibrated model (unit tests with fakes): the older cosine + word-share gate.
        dense, share = support(hits, a.leftover, a.expansion)
        if dense < engine.settings.refusal_threshold or (
            share < engine.settings.min_lexical_support and dense < engine.settings.confident_threshold
        ):
            return decline(lang, hits)
    # A gerencia's own objective is the mission of its whole manual, not a duty one unit is assigned.
    duties = [h for h in hits if _is_duty(h.chunk)]
    if not duties:
        if a.units and not leftover_topic(a.leftover):
            return functions(engine, lang, a.units[0].unit, a.units[0].manual)
        return _closest_duty(engine, a, lang, hits, scorer) or decline(lang, hits)
    best = duties[0]
    # A unit named as a place ("in an agency") rather than as the topic of the duty ("activos extraordinarios"
    # inside a Ventas function) steers the choice among near-equal lines.
    places = {
        (m.manual.id, m.unit.name)
        for m in a.units
        if not any(t in fold(best.chunk.quote) for t in tokens(m.unit.name) if len(t) > 3)
        and not _names_gerencia(m)
        and _as_place(a, m)
    }
    if _TOP_LEVEL.search(fold(a.text)):
        # "a nivel de gerencia", "at management level": the place is the gerencia itself, not its units; when
        # none of its own lines covers the topic, the question is answered as if it had not said so.
        tops = {(m.id, u.name) for u, m in engine.catalog.tops(a.manuals)}
        draft = _answer_in(engine, a, lang, hits, list(duties), tops, scorer, exact=True)
        if draft.answered or scorer is None:
            return draft
    return _answer_in(engine, a, lang, hits, duties, places, scorer)


def _answer_in(
    engine: GroundedEngine,
    a: Query,
    lang: Lang,
    hits: list[Hit],
    duties: list[Hit],
    places: set[tuple[str, str]],
    scorer: SupportScorer | None,
    exact: bool = False,
) -> Draft:
    """The answer from the duty lines, preferring those of the places (``exact``: their own lines only)."""
    best = duties[0]
    if places and engine.search_in_unit is not None:
        for manual_id, place in sorted(places):
            found = engine.search_in_unit(a.text, place, manual_id)
            known = {h.chunk.id for h in duties}
            duties += [h for h in found if _is_duty(h.chunk) and h.chunk.id not in known]
    if places:
        located = sorted(
            (h for h in duties if _in_places(h.chunk, places, exact)),
            key=lambda h: -h.score,
        )
        if located and located[0].score >= best.score - engine.settings.place_margin:
            best = located[0]
            # At the gerencia's level, its own lines only: its units' lines are another level's answer.
            duties = located if exact else [best] + [h for h in duties if h is not best]
    group = _group(engine, a, best, duties)
    if scorer is None:
        draft = _compose_duties(engine, lang, _with_twins(engine, group))
        return _with_positions(engine, a, lang, draft, group, topic_phrase(engine, a))
    return _judged(engine, a, lang, hits, group, scorer, places, exact)


def _group(engine: GroundedEngine, a: Query, best: Hit, duties: list[Hit]) -> list[Hit]:
    """The lead line and the lines quoted beside it: near-equal lines, the same duty in other words, other
    units for a "which units" question."""
    plural = bool(_PLURAL_UNITS.search(a.q))
    group = [best]
    best_terms = set(lexical_terms(best.chunk.quote))
    for h in duties:
        if h is best:
            continue
        same_unit = h.chunk.unit == best.chunk.unit
        terms = set(lexical_terms(h.chunk.quote))
        overlap = len(terms & best_terms) / max(1, len(terms | best_terms))
        close = h.score >= best.score - 0.01
        if (
            (
                plural
                and not same_unit
                and h.score >= best.score - engine.settings.multi_margin
                and all(g.chunk.unit != h.chunk.unit for g in group)
            )
            or overlap >= 0.6
            or (close and (same_unit or h.chunk.section == "funciones"))
        ):
            group.append(h)
        if len(group) >= engine.settings.max_quotes:
            break
    return group


def _as_place(a: Query, m: _Mention) -> bool:
    """Whether a unit is named as where the duty is done ("En San Miguel, …", "at an agency"), not as the other
    party of it ("once the UACI has awarded …", "… al Área de Activos Extraordinarios"). A unit found only
    through the glossary, with no place in the text, counts as a place."""
    return m.start < 0 or m.in_expansion or bool(_LOCATIVE.search(fold(a.text)[: m.start]))


def _is_duty(chunk: Chunk) -> bool:
    """A function line, or the objective of a unit below the top (the top's objective is its manual's)."""
    return chunk.section == "funciones" or (
        chunk.section == "objetivo" and chunk.unit is not None and chunk.parent is not None
    )


def _names_gerencia(m: _Mention) -> bool:
    """A gerencia named in full ("en la Gerencia de Créditos", "of the credit management") scopes the question
    to its manual; it does not ask for the gerencia's own lines, as "a nivel de gerencia" does."""
    return m.unit.parent is None and (m.start < 0 or m.end - m.start >= len(fold(m.unit.name)))


def topic_phrase(engine: GroundedEngine, a: Query, vocabulary: frozenset[str] = frozenset()) -> str:
    """The question's topic: without question words, politeness and the units or positions it names
    only as places (a unit name whose words no duty line uses, e.g. "Santa Ana")."""
    text = a.text
    # "según la versión 10" says when, never what: the version a question names is no topic.
    folded = _VERSION_NUM.sub(lambda m: " " * len(m.group(0)), fold(text))
    same = len(folded) == len(text)
    spans = [(m.start, m.end) for m in engine.catalog.find_units(folded)]
    for p in engine.catalog.find_positions(folded):
        m = _whole_words(fold(p)).search(folded)
        if m:
            spans.append((m.start(), m.end()))
    # A gerencia the question names is where to look, never what is looked for ("… en la Gerencia de
    # Créditos", "… of the credit management"): its words leave the topic, whatever the duty lines say.
    scope = {
        (m.start, m.end)
        for m in engine.catalog.find_units(folded)
        if m.unit.parent is None and any(t.unit is m.unit for t in a.units)
    }
    if a.follow_up is not None and folded.startswith(fold(a.follow_up.text)):
        # A unit the conversation carried ("¿y quién le avisa al solicitante? (Unidad de Secretaría …)") is where
        # the follow-up is asked, not what it asks for.
        own = len(fold(a.follow_up.text))
        scope |= {(m.start, m.end) for m in engine.catalog.find_units(folded) if m.start >= own}
    # "a nivel de gerencia" says where, never what.
    scope |= {(m.start(), m.end()) for m in _TOP_LEVEL.finditer(folded)}
    scope_words = _scope_words(engine, a)
    kept: list[str] = []
    for m in re.finditer(r"[a-z0-9ñ]+", folded):
        w = m.group(0)
        if len(w) < 2 and not w.isdigit():
            continue  # the "t" of "can't"
        if w in _QUESTION_WORDS or w in STOP_ES or w in STOP_EN or w in POLITE or w in _GREETINGS:
            continue
        if any(s <= m.start() and m.end() <= e for s, e in scope) or w in scope_words:
            continue
        inside = any(s <= m.start() and m.end() <= e for s, e in spans)
        if inside and stem(w) not in vocabulary:
            continue
        kept.append(text[m.start() : m.end()] if same else w)
    return " ".join(kept)


def _scope_words(engine: GroundedEngine, a: Query) -> set[str]:
    """The question's words that name a gerencia it found by their meaning ("credit management"): each word
    whose stem, cognate or glossary translation is a word of the top unit's name."""
    tops = [m.unit for m in a.units if m.unit.parent is None and m.start < 0]
    if not tops:
        return set()
    names = {t for u in tops for t in tokens(u.name) if t not in STOP_ES}
    stems = {stem(t) for t in names}
    keys = {_cognate(t) for t in names} - {None}
    out = set()
    for w in tokens(a.text):
        translated = set(tokens(engine.glossary.expand(w))) if engine.glossary else set()
        if stem(w) in stems or _cognate(w) in keys or translated & names:
            out.add(w)
    return out


def support_candidates(
    engine: GroundedEngine, a: Query, hits: list[Hit], group: list[Hit], scorer: SupportScorer
) -> tuple[str, list[Scored]]:
    """The topic phrase and the scored candidate lines: the chosen group first, then other duty hits."""
    topic = topic_phrase(engine, a, scorer.duty_vocabulary)
    seen: set[str] = set()
    pool: list[tuple[Chunk, float]] = []
    for h in [*group, *hits]:
        if _is_duty(h.chunk) and h.chunk.id not in seen:
            seen.add(h.chunk.id)
            pool.append((h.chunk, h.dense))
    manuals = {m.id for m in a.manuals} if a.manuals else None
    # Retrieval's few hits are shared by every manual served: with several, the support check looks further.
    extra = engine.settings.support_extra if len(scorer.by_manual) > 1 else 0
    scored = scorer.score(topic, pool, manuals, extra=extra, question=a.text)
    hook = getattr(engine, "on_support", None)
    if hook is not None:
        hook(topic, scored[0] if scored else None, scored)
    return topic, scored


def _judged(
    engine: GroundedEngine,
    a: Query,
    lang: Lang,
    hits: list[Hit],
    group: list[Hit],
    scorer: SupportScorer,
    places: set[tuple[str, str]] | None = None,
    exact: bool = False,
) -> Draft:
    """Answer with the group when its lead line covers the topic; else say no unit is assigned it."""
    topic, scored = support_candidates(engine, a, hits, group, scorer)
    if not scored:
        return decline(lang, hits)
    lead = scored[0]
    threshold = engine.settings.support_threshold
    if not topic or lead.features["known"] <= 0.0:
        if a.units and not leftover_topic(a.leftover):
            return functions(engine, lang, a.units[0].unit, a.units[0].manual)
        return _uncovered(engine, lang, hits, topic, lead, lead)  # chit-chat: no word the manuals use
    if lead.support < threshold:
        group, scored = _other_manuals_lead(hits, group, scored, threshold)
        lead = scored[0]
    if lead.support >= threshold:
        group, scored = _better_lead(engine, hits, group, scored, places or (), exact)
        led = _follow_up_lead(engine, a, hits, group, scored)
        if led is None:
            return _uncovered(engine, lang, hits, topic, scored[0], scored[0])
        group, scored = led
        decided = _action_lead(engine, a, hits, group, scored, scorer.holds(topic))
        if decided is None:
            return _uncovered(engine, lang, hits, topic, scored[0], scored[0])
        group, scored = decided
        lead = scored[0]
        kept = [group[0]] + [
            h for h, s in zip(group[1:], scored[1 : len(group)], strict=False) if s.support >= threshold
        ]
        if _PLURAL_UNITS.search(a.q):
            kept += _other_units(hits, kept, scored[len(group) :], threshold)
        draft = _compose_duties(engine, lang, _with_twins(engine, kept))
        draft.support = lead.support
        return _with_positions(engine, a, lang, draft, kept, topic)
    return _uncovered(engine, lang, hits, topic, lead, max(scored, key=lambda s: s.support))


def _follow_up_action(engine: GroundedEngine, f: FollowUp) -> set[str]:
    """The stems of a follow-up's action: its first own word (and the forms a Spanish verb's stem alternates
    with) and the glossary translation of its words; empty when it has no word of its own."""
    words = [t for t in lexical_terms(f.text) if t not in _QUESTION_STEMS]
    if not words:
        return set()
    expanded = lexical_terms(engine.glossary.expand(f.text) if engine.glossary else "")
    return {words[0], *stem_variants(words[0]), *expanded}


def _follow_up_lead(
    engine: GroundedEngine, a: Query, hits: list[Hit], group: list[Hit], scored: list[Scored]
) -> tuple[list[Hit], list[Scored]] | None:
    """A follow-up ("¿y quién audita esa cartera?") borrows its object from the previous question, so the line
    that answered that one covers it by construction: it leads again only if it also holds the follow-up's
    action; else the best passing line that holds it leads, or none does (None)."""
    f, lead = a.follow_up, scored[0]
    if f is None or lead.chunk.quote not in f.quotes:
        return group, scored
    action = _follow_up_action(engine, f)
    if not action or action & set(lexical_terms(lead.chunk.quote)):
        return group, scored
    threshold = engine.settings.support_threshold
    acting = [s for s in scored if s.support >= threshold and action & set(lexical_terms(s.chunk.quote))]
    if not acting:
        return None
    best = max(acting, key=lambda s: s.support)
    return [_as_hit(hits, best)], [best, *(s for s in scored if s is not best)]


_QUESTION_STEMS = frozenset(stem(w) for w in _QUESTION_WORDS)


@dataclass(frozen=True)
class _Action:
    """An action a question asks for that a line must state itself to cover the question: "who approves the
    budget?" is not answered by a line that prepares it, "who pays the fees?" by one that checks deadlines."""

    asked: re.Pattern[str]
    stems: frozenset[str]
    verbs_only: bool  # stated as a verb (the infinitives a MOF line is written with), not as a participle


# A MOF line's verbs: its infinitives, and its gerunds ("… determinando la capacidad de pago").
_INFINITIVE = re.compile(r"^([a-zñ]{2,}(?:ar|er|ir|ando|iendo))(?:se|los|las|lo|la|les|le)?$")
_ACTIONS = (
    _Action(cue("asks_decision"), frozenset(stem(w) for w in cue_words("decision_verbs")), True),
    _Action(cue("asks_payment"), frozenset(stem(w) for w in cue_words("payment_words")), False),
)


def _states(action: _Action, quote: str) -> bool:
    """Whether a duty line states an action: one of its words (its verbs, for a decision) is the action's."""
    words = tokens(quote)
    if action.verbs_only:
        words = [m.group(1) for w in words if (m := _INFINITIVE.match(w))]
    return any(stem(w) in action.stems for w in words)


def decides(quote: str) -> bool:
    """Whether a duty line states a decision: one of its verbs (not a participle such as "expedientes …
    aprobados") approves, authorises, decides, determines, defines or sanctions."""
    return _states(_ACTIONS[0], quote)


def _action_lead(
    engine: GroundedEngine,
    a: Query,
    hits: list[Hit],
    group: list[Hit],
    scored: list[Scored],
    holds: Callable[[str], set[str]],
) -> tuple[list[Hit], list[Scored]] | None:
    """A question asking for a decision or a payment is covered only by a line that states it ("Evaluar y
    proponer arreglos de pago…" leaves the approval to someone else). The lead leads only if it states the
    action; else a line that does, passing, and either better supported than the lead or about as well
    supported (within the switch margin) while holding every topic word the lead holds ("Aprobar los planes
    de trabajo" is no approval of the budget that "Dirigir la formulación … del presupuesto" names); else
    none does (None). ``holds`` gives the topic's terms a line holds."""
    lead = scored[0]
    for action in _ACTIONS:
        if not action.asked.search(a.q) or _states(action, lead.chunk.quote):
            continue
        floor = max(engine.settings.support_threshold, lead.support - engine.settings.support_switch_margin)
        object_ = holds(lead.chunk.quote)
        stating = [
            s
            for s in scored
            if s.support >= floor
            and _states(action, s.chunk.quote)
            and (s.support >= lead.support or object_ <= holds(s.chunk.quote))
        ]
        if not stating:
            return None
        best = max(stating, key=lambda s: s.support)
        return [_as_hit(hits, best)], [best, *(s for s in scored if s is not best)]
    return group, scored


def _other_manuals_lead(
    hits: list[Hit], group: list[Hit], scored: list[Scored], threshold: float
) -> tuple[list[Hit], list[Scored]]:
    """With several manuals, the first candidate line of each is the lead that manual alone would give: when
    the overall lead fails the support check, the first other manual's lead that passes it leads instead
    (a manual's answer does not depend on the other gerencias' manuals indexed beside it)."""
    own = scored[0].chunk.manual_id
    seen = {own}
    pool: list[Scored] = []
    retrieved = {h.chunk.id for h in hits} | {h.chunk.id for h in group}
    for s in scored[1:]:
        if s.chunk.manual_id == own:
            continue
        if s.chunk.manual_id not in seen or s.chunk.id not in retrieved:
            pool.append(s)
        seen.add(s.chunk.manual_id)
    passing = [s for s in pool if s.support >= threshold]
    if not passing:
        return group, scored
    best = max(passing, key=lambda s: s.support)
    return [_as_hit(hits, best)], [best, *(x for x in scored if x is not best)]


def _better_lead(
    engine: GroundedEngine,
    hits: list[Hit],
    group: list[Hit],
    scored: list[Scored],
    places: Collection[tuple[str, str]] = (),
    exact: bool = False,
) -> tuple[list[Hit], list[Scored]]:
    """The group and its scores, led instead by the candidate line whose support beats the lead's by the
    switch margin (a line just below in the retrieval order that covers the topic far better). A lead in the
    place the question names ("At the regional offices, who …?") gives way only to a line of that place."""
    placed = _in_places(scored[0].chunk, places, exact)
    best = max(
        (s for s in scored if not placed or _in_places(s.chunk, places, exact)), key=lambda s: s.support
    )
    if best.support < scored[0].support + engine.settings.support_switch_margin:
        return group, scored
    return [_as_hit(hits, best)], [best, *(s for s in scored if s is not best)]


def _in_places(chunk: Chunk, places: Collection[tuple[str, str]], exact: bool = False) -> bool:
    """Whether a line is a place's own, or (unless ``exact``) one of the units right below it."""
    own = (chunk.manual_id, chunk.unit) in places
    return own or (not exact and (chunk.manual_id, chunk.parent) in places)


def _as_hit(hits: list[Hit], s: Scored) -> Hit:
    """The retrieval hit of a scored line, or one made for a line the support check added to the pool."""
    for h in hits:
        if h.chunk.id == s.chunk.id:
            return h
    return Hit(chunk=s.chunk, score=s.features["dense_question"], dense=s.features["dense_question"])


def _with_positions(
    engine: GroundedEngine, a: Query, lang: Lang, draft: Draft, kept: list[Hit], topic: str
) -> Draft:
    """The answer, and for "which position …?" the positions named for the topic (for "does it have anyone for
    …?", those of the answering units named for it, if any)."""
    if _WHICH_POSITION.search(a.q):
        draft.text += "\n\n" + _named_positions(engine, lang, kept, topic, _named_places(a))
    elif _ASKS_PERSON.search(a.q):
        units = _answering_units(engine, kept)
        places = _named_places(a)
        found = _titled_for(engine, units, topic, places) or _titled_for(engine, units, topic, places, True)
        if found:
            draft.text += "\n\n" + say("duties_positions_named", lang, positions=_shown(found))
    return draft


def _named_positions(
    engine: GroundedEngine, lang: Lang, kept: list[Hit], topic: str, places: set[str]
) -> str:
    """ "Which position handles X?" after a duty answer: a MOF assigns duties to units; the positions of the
    answering units (or, failing them, of the same manuals) named for the topic, told as such."""
    units = _answering_units(engine, kept)
    manuals = {h.chunk.manual_id for h in kept}
    found = _titled_for(engine, units, topic, places) or _titled_for(
        engine, [(u, m) for u, m in engine.catalog.units if m.id in manuals], topic, places
    )
    if not found:
        return say("duties_positions_not_named", lang)
    return say("duties_positions_named", lang, positions=_shown(found))


def _answering_units(engine: GroundedEngine, kept: list[Hit]) -> list[tuple[Unit, Manual]]:
    """The units (with their manuals) whose lines an answer quotes."""
    return [p for h in kept if (p := engine.catalog.unit(h.chunk.unit or "", h.chunk.manual_id))]


def _titled_for(
    engine: GroundedEngine,
    units: list[tuple[Unit, Manual]],
    topic: str,
    places: set[str],
    whole: bool = False,
) -> list[tuple[str, Unit, Manual]]:
    """The units' positions named for the topic: titles are Spanish, so the topic's glossary translation is
    tried first ("credit recovery" → "créditos recuperación"), then its own words."""
    for words in (engine.glossary.expand(topic) if engine.glossary else "", topic):
        found = titled_positions(units, words, places, whole)
        if found:
            return found
    return []


def _named_places(a: Query) -> set[str]:
    """The stems of the units a question names: where it asks, not what."""
    return {t for mention in a.units for t in lexical_terms(mention.unit.name)}


def _shown(found: list[tuple[str, Unit, Manual]]) -> str:
    return ", ".join(dict.fromkeys(f"**{p}** ({u.name})" for p, u, _m in found))


def _positions_only(engine: GroundedEngine, a: Query, lang: Lang, whole: bool = False) -> Draft | None:
    """ "¿Qué puesto atiende la ventanilla?" when no duty line covers it: the positions named for the topic
    (``whole``: titled with every word of it)."""
    units = [(u, m) for u, m in engine.catalog.units if not a.manuals or m in a.manuals]
    topic, places = topic_phrase(engine, a), _named_places(a)
    found = (
        _titled_for(engine, units, topic, places, whole) if whole else titled_positions(units, topic, places)
    )
    if not found:
        return None
    cites = [_cite(m, u.name, "organigrama", None, p) for p, u, m in found]
    return Draft(say("duties_positions_only", lang, positions=_shown(found)), True, cites)


def _other_units(hits: list[Hit], kept: list[Hit], rest: list[Scored], threshold: float) -> list[Hit]:
    """ "Which units …?": the best line of each further unit whose line the support check finds covering the
    topic, up to three units in all (a duty several units share, in one gerencia or several)."""
    by_id = {h.chunk.id: h for h in hits}
    units = {(h.chunk.manual_id, h.chunk.unit) for h in kept}
    out: list[Hit] = []
    for s in sorted(rest, key=lambda s: -s.support):
        key = (s.chunk.manual_id, s.chunk.unit)
        if s.support < threshold or len(units) >= 3:
            break
        if key not in units and s.chunk.id in by_id:  # retrieval's hits only: its order ranks the units
            units.add(key)
            out.append(by_id[s.chunk.id])
    return out


def _known_anywhere(engine: GroundedEngine, topic: str) -> bool:
    """Whether any served manual uses a word of the topic: a question scoped to one gerencia (by a unit the
    conversation carried) whose words only another gerencia uses is no chit-chat."""
    scorer = engine.support_scorer
    return scorer is not None and scorer.known_share(scorer.terms(topic)) > 0.0


def _closest_duty(
    engine: GroundedEngine, a: Query, lang: Lang, hits: list[Hit], scorer: SupportScorer | None
) -> Draft | None:
    """A "who …?" question whose hits hold no duty line ("¿Quién aprueba las modificaciones presupuestarias?"
    draws the change histories): declined, pointing at the closest function line rather than at the history.
    Never an answer: a line the question's own retrieval did not rank is no evidence that it covers it."""
    if scorer is None or engine.search_duties is None:
        return None
    found = engine.search_duties(a.text, [m.id for m in a.manuals or engine.catalog.manuals])
    if not found:
        return None
    topic, scored = support_candidates(engine, a, found, found[:1], scorer)
    if not scored:
        return None
    return _uncovered(engine, lang, found, topic, scored[0], max(scored, key=lambda s: s.support))


def _uncovered(
    engine: GroundedEngine, lang: Lang, hits: list[Hit], topic: str, lead: Scored, closest: Scored
) -> Draft:
    """No line covers the topic: chit-chat gets what the assistant can do; a related duty, a pointer."""
    if not topic or (lead.features["known"] <= 0.0 and not _known_anywhere(engine, topic)):
        return Draft(say("duties_what_i_answer", lang), False, support=lead.support)
    if closest.features["coverage"] <= 0.0 and closest.features["dense_topic"] < 0.8:
        draft = decline(lang, hits)
        draft.support = lead.support
        return draft
    c = closest.chunk
    pair = engine.catalog.unit(c.unit, c.manual_id)
    unit = engine.catalog.label(pair[0]) if pair else (c.unit or "")
    where = f"{unit}, {_section_tag(c, lang)}"
    text = say("duties_not_assigned", lang, topic=topic, quote=c.quote, where=where)
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


def _with_twins(engine: GroundedEngine, group: list[Hit]) -> list[Hit]:
    """Add the units whose manual lists the very same duty line: the same duty in several units."""
    out = list(group)
    seen = {(h.chunk.manual_id, h.chunk.unit, fold(h.chunk.quote)) for h in group}
    for h in group:
        if h.chunk.section != "funciones":
            continue
        key = fold(h.chunk.quote)
        for unit, manual, f in engine.catalog.duties.get(key, []):
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


def _compose_duties(engine: GroundedEngine, lang: Lang, group: list[Hit]) -> Draft:
    by_unit: dict[tuple[str, str], list[Hit]] = {}
    for h in group:
        by_unit.setdefault((h.chunk.manual_id, h.chunk.unit or ""), []).append(h)
    blocks: list[str] = []
    cites: list[Citation] = []
    for (manual_id, unit_name), items in by_unit.items():
        pair = engine.catalog.unit(unit_name, manual_id)
        unit = pair[0] if pair else None
        label = unit_label(engine.catalog, unit) if unit else f"**{unit_name}**"
        head = (unit.head if unit else None) or items[0].chunk.head
        who = label + (" " + say("duties_headed_by", lang, head=head) if head else "")
        lines = []
        for h in items:
            lines.append(f"{_section_tag(h.chunk, lang)}:\n{_quote_block(h.chunk.quote)}")
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
        return Draft(say("duties_one_unit", lang, unit_duties=blocks[0]), True, cites)
    lead = say("duties_many_units", lang, count=len(by_unit))
    return Draft(lead + "\n\n" + "\n\n".join(f"- {b}" for b in blocks), True, cites)


def _section_tag(chunk: Chunk, lang: Lang) -> str:
    """How an answer names the line it quotes: "objetivo", or "función iii"."""
    if chunk.section == "objetivo":
        return say("duties_objective", lang)
    return say("duties_function", lang, numeral=chunk.numeral)
