"""The assistant: one LCEL chain behind ``ask(question, history) -> Answer``.

    prepare (validate, strip planted instructions, detect language, condense a follow-up)
      → retrieve (hybrid search over the index)
      → compose (grounded engine, or an LLM engine that falls back to the grounded one)

`Assistant.from_settings` loads the embedding model and opens the index once; `ask` is then safe to call
from many threads (reads only).
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import re
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Literal

from langchain_core.runnables import Runnable, RunnableLambda

from assistant.chunk import spanish_date
from assistant.cues import cue, cue_vocabulary, cue_words
from assistant.embed import get_embedder
from assistant.engine import Catalog, Draft, GroundedEngine, load_scope
from assistant.engine.catalog import _Mention, named_outright, short_name
from assistant.engine.query import (
    _COUNT,
    _HEAD,
    _HISTORY_STRONG,
    _POSITIONS,
    CHANGE_KINDS,
    FollowUp,
    owners_asked,
)
from assistant.errors import AssistantError, StoreUnavailableError
from assistant.models import Answer, Hit, Manual
from assistant.phrases import say
from assistant.retrieve import Glossary, HybridRetriever, ManualRetriever, Mode
from assistant.safety import (
    clean_question,
    has_content,
    is_help_request,
    is_social,
    known_word,
    strip_instructions,
)
from assistant.settings import Settings
from assistant.store import OpenIndex, Store
from assistant.support import attach_support
from assistant.template import template
from assistant.text import STOP_EN, STOP_ES, Speller, detect_language, fold, tokens
from assistant.versions import Catalogue, Resolution, format_date, resolve

log = logging.getLogger(__name__)

History = Sequence[tuple[str, str]]
_MAX_ENGINES = 32  # engines kept for distinct sets of manuals (filters, past versions)
_ANSWER_HITS = 8  # the grounded engine looks a little deeper than the k sources it shows
# What the user sees when the vector store (e.g. a `chroma run` server) stops answering mid-service.
STORE_DOWN = (
    "El índice de documentos no está disponible en este momento; inténtelo de nuevo en breve. · "
    "The document index is unavailable right now; please try again shortly."
)
_FOLLOW_UP = re.compile(
    r"\b(it|its|they|them|their|that one|this one|that unit|that area|that position|this position|there|"
    r"lo|la|le|las|los|su|sus|esa|ese|"
    r"esta|este|ella|alli|ahi|dicha|dicho|dicha area|what about|how about|and|y|tambien|also)\b"
)
_ALL_MANUALS = frozenset(["all", "todas", "todos", "todas las gerencias", "todas las gerencias · all", "*"])
_SWAP = re.compile(
    r"^\s*[¿]?\s*(and|y|what about|how about|y en|y la|y el|y de|and in|and the|and for|same (question|thing)|"
    r"(lo|la) mism[oa]|igual)\b"
)
_SAME = re.compile(r"\b(same (question|thing)|(lo|la) mism[oa]( pregunta)?|igual)\b")
# Object pronouns that stand for the previous question's topic.
_PRONOUN = re.compile(r"\b(los|las|lo|la|les|them|it|those|these|that|this|esos|esas|eso|esto)\b")
# Words that only shape a question (interrogatives, "handle", "y"): not a topic of their own.
_SHAPE = frozenset(
    "quien quienes que cual cuales como donde cuando who which what how where when and y handles handle "
    "encarga maneja hace does do".split()
)
_QUOTED = re.compile(r"«([^»]+)»")  # a line an answer quotes
# "¿En qué versión …?": a question asking for the version, not about one.
_WHICH_VERSION = re.compile(r"\b(que|which|what|cual) (version|revision)")
_LATEST = cue("latest")  # "la última versión", "the current one": a version named by a word
# An interrogative: a message made of function words only still asks something when it follows a turn.
_ASKS = re.compile(
    r"\b(who|whom|when|what|where|which|why|how|quien|quienes|cuando|cual|cuales|donde|como)\b"
)
# The same with "qué" ("¿y a qué subgerencia pertenece?"): a follow-up holding any of them asks its own question.
_ASKS_ANY = re.compile(
    r"\b(who|whom|when|what|where|which|why|how|quien|quienes|que|cuando|cual|cuales|donde|como)\b"
)
_VERSION_REF = re.compile(r"\b(version|v\.?)\s*(\d+)\b")
# A version an answer is about ("**Versión 9** (20 de mayo de 2015)", "Version 5 (December 19, 2011)").
_VERSION_SHOWN = re.compile(
    r"\*\*(?:Versión|Version) (\d+)\*\*|\b(?:Versión|Version) (\d+) \(", re.IGNORECASE
)
# The version in force an answer names ("La versión vigente es la **10**", "The current version is **10**").
_CURRENT_SHOWN = re.compile(
    r"\b(?:versión|version) (?:vigente|actual|current)?[^*\n]{0,12}\*\*(\d+)\*\*", re.I
)
_PREVIOUS_VERSION = cue("previous_version")  # "¿y la versión anterior a esa?"
_NEXT_VERSION = cue("next_version")  # "and in the next version?"
# "¿qué cambió en esa versión?"
_THAT_VERSION = re.compile(r"\b(esa|esta|that|this|dicha) (version|revision)\b")
# A version defined by what it did ("the version that removed it", "la versión que la eliminó").
_VERSION_THAT = re.compile(
    r"\b(?:version|revision) (?:that|which|que|in which|en (?:la )?que)\b(?P<clause>.*)"
)
# What a follow-up may ask of the version the conversation is on: its changes, author, date, validity.
_VERSION_FACT = re.compile(
    "|".join([cue("history").pattern, cue("meta_prepared").pattern, cue("meta_effective").pattern])
    + r"|\b(when|cuando|date|fecha|since|desde)\b"
)
# A fact of its own a follow-up asks of the manual the conversation is on ("and when was it first created?").
_MANUAL_FACT = re.compile(
    "|".join([cue("meta_prepared").pattern, cue("meta_effective").pattern, cue("kind_created").pattern])
    + r"|\b(when|cuando|date|fecha)\b"
)
# A follow-up pointing back to the time the previous question named ("which manual lost validity then?").
_THEN = re.compile(
    r"\b(then|by then|at that time|entonces|para entonces|en ese momento|en esa version|in that version)\b"
)
# The nouns a demonstrative points at a unit with ("esa área", "that section").
_KIND_NOUNS = (
    "area|unit|unidad|office|oficina|department|departamento|dependencia|gerencia|management|section|seccion|"
    "division"
)
# A follow-up about a unit itself (its positions, head, objective, "that area"), not about a duty's topic.
_ABOUT_UNIT = re.compile(
    rf"\b(that|this|esa|esta|dicha) ({_KIND_NOUNS})\b|"
    r"\b(positions?|puestos?|cargos|heads?|dirige|jefe|jefa|objective|objetivo|reports? to|reporta|"
    r"depend\w*|pertenec\w*|belongs?|encabeza\w*|lidera\w*|leads?|runs?|in charge|a cargo|"
    r"(?:which|what|how many|que|cuales|cuantas) (?:sub-?)?(?:units|unidades) (?:does it|do they|has it|have they|"
    r"tiene|tienen)|under (?:it|them)|bajo (?:su|ella|el)|(?:does|do) (?:it|they|(?:that|this) \w+) have (?:a|an|any)|"
    r"tienen? (?:un|una|algun|alguna))\b"
)
# A demonstrative before a unit's or a position's noun ("esa área", "that position"): about that unit or post.
_ABOUT_UNIT_NOUN = re.compile(
    rf"\b(that|this|esa|esta|ese|este|dicha|dicho) ({_KIND_NOUNS}|agency|agencia|branch|sucursal|"
    + "|".join(cue_words("position_nouns"))
    + r")\b"
)
_ABOUT_MANUAL = re.compile(r"\b(manual|documento|document|mof)\b")
# A follow-up about the position the previous answer named ("has that position always had that name?").
_ABOUT_POSITION = cue("about_position")
# Demonstratives: a pronoun alone ("¿quién los promueve?"), a determiner before a noun ("esas escrituras").
_DEMONSTRATIVES = frozenset(cue_words("demonstratives"))
# Spanish object pronouns that are also articles: pronouns where they stand before the verb, after these words.
_CLITICS = frozenset(cue_words("clitics"))
_CLITIC_HOSTS = frozenset(cue_words("clitic_hosts"))
# The grounded engine's "who handles" answers (and their honest "not assigned" form) open this way.
_DUTY_ANSWER = re.compile(
    r"^(Según el manual, |According to the manual, |El manual no asigna|The manual does not assign)"
)
_ANSWERED = re.compile(r"^(Según el manual, |According to the manual, )")  # a unit was named for the duty
# A change-history answer: the units its records name are that version's news, not what the talk is about.
_HISTORY_ANSWER = re.compile(r"^(Según el historial de modificaciones|According to the change history)")


def condense(
    question: str, history: History | None, catalog: Catalog, fixes: dict[str, str] | None = None
) -> str:
    """Rewrite a follow-up that leans on the conversation into a standalone question (rule-based).

    A swapped unit ("¿y San Miguel?", "same question for Sucursal Paseo") reuses the previous question; a
    follow-up naming nothing ("¿Cuándo se creó?", "¿Y quién los promueve?") borrows the unit, the manual or
    the topic of the previous question. ``fixes`` (misspelt word → correction) let the cues read "who heds it?"
    as "who heads it?"; what is returned keeps the user's words.
    """
    if not history:
        return question
    units_now = catalog.find_units(question)
    # A position only the change history names ("el puesto de Asistente Comercial") is named all the same.
    positions_now = catalog.find_positions(question) or catalog.history_positions(question)
    words = tokens(question)
    folded = fold(question)
    if fixes:
        # Cues are looked for in both spellings (a "correction" may be wrong: "elaboró" is no "labor").
        fixed = re.sub(r"[a-z0-9ñ]+", lambda m: fixes.get(m.group(0), m.group(0)), folded)
        folded = f"{folded} || {fixed}" if fixed != folded else folded
    if units_now and not named_outright(units_now) and _determined_noun(folded):
        units_now = []  # "el manual de esa gerencia": a word several gerencias share, pointing back
    pointed = _pointed_beside(folded, units_now, history, catalog)
    if pointed:
        # "¿y esa área siempre ha estado en la Gerencia de Créditos?": the area the conversation named, asked
        # about beside the gerencia the question names.
        return f"{question} ({pointed.unit.name})"
    previous_user = [u for u, _a in history if u.strip()]
    swapped = _swap_version(folded, previous_user) if _SWAP.search(folded) and len(words) <= 8 else None
    if swapped:
        return swapped
    if (units_now or positions_now) and _SWAP.search(folded) and len(words) <= 8 and previous_user:
        # "¿y San Miguel?" after "¿Qué puestos tiene Santa Ana?": same question, other unit ("¿y cuál es el
        # objetivo de la Dirección?" asks its own question of the unit it names).
        last = previous_user[-1]
        old = catalog.find_units(last)
        if old and units_now and not _asks_own_of(folded, words, units_now):
            m = old[0]
            return f"{last[: m.start]}{units_now[0].unit.name}{last[m.end :]}"
        if units_now and _SAME.search(folded):
            return f"{last.rstrip(' ?')} ({units_now[0].unit.name})?"
        return question
    then = _then_version(folded, previous_user)
    if (units_now or positions_now) and (then or (then := _version_pointed(folded, history))):
        # "¿y en esa versión el Asistente de Ventanilla cambió de área?" after "¿qué cambió en la versión 8?";
        # "what positions did that version add to the Área de Atención al Cliente?" after the records of one.
        return _with_version(question, then)
    if units_now or positions_now:
        return question
    moved = _moved(question, folded, words, history, catalog)
    if moved:
        return moved
    if then:
        return _with_version(question, then)  # "which manual lost validity then?" after "… versión 2?"
    version = _adjacent_version(folded, history) or _focus_version(folded, words, history)
    if version:
        # "who prepared it?", "and in the next version?" after a change-history answer: that version (or the
        # one beside it), of the manual the answer was from.
        named = catalog.find_manuals(history[-1][1]) if catalog.many else []
        return _with_version(question, version, f", manual {named[0].gerencia}" if len(named) == 1 else "")
    if not _leans_back(folded, words):
        return question
    return _borrow(question, folded, words, list(history), catalog)


def _borrow(
    question: str, folded: str, words: list[str], turns: list[tuple[str, str]], catalog: Catalog
) -> str:
    """A follow-up naming nothing, with the unit, manual or topic of the latest turn that has one."""
    own = [w for w in words if w not in STOP_ES and w not in STOP_EN and w not in _SHAPE]
    # "does it have an archivist?": a kind of position, and nothing else, is asked of a unit.
    about_unit = bool(_ABOUT_UNIT.search(folded)) or (len(own) <= 2 and catalog.says_a_title(own))
    about_position = bool(_ABOUT_POSITION.search(folded))
    pronoun = _pronoun(folded)
    # "esa gerencia", "¿de qué depende ese archivo?": a demonstrative's noun names a unit the conversation named
    # (outside a question about a unit, only a unit word does: "ese crédito" is no Gerencia de Créditos).
    noun = _determined_noun(folded, unit_words_only=not about_unit)
    if len(own) >= 5 and not (about_unit or about_position or noun):
        # "and once a seized house is auctioned, who do they hand it over to?": a topic of its own, asked
        # anew; the unit of the previous answer would only narrow where it is looked for.
        return question
    listed = _counted(question, folded, own, turns)
    if listed:
        return listed
    for k in range(len(turns) - 1, -1, -1):
        # An earlier follow-up is read as it was resolved ("who heads it?" after "¿Cuándo se creó? (Sucursal
        # Paseo)"), so a chain of follow-ups keeps its unit.
        user, bot = condense(turns[k][0], turns[:k], catalog), _pointing(turns[k][1], catalog)
        # A position only the change history names, which the question asked about, comes first.
        in_force = {fold(p) for p in catalog.find_positions(user)}
        former = [p for p in catalog.history_positions(user) if p not in in_force]
        named = former or catalog.find_positions(user) or catalog.find_positions(bot)
        if about_position and named:
            return f"{question} ({named[0]})"
        pointed = noun and (catalog.mention_by_word(noun, bot) or catalog.mention_by_word(noun, user))
        if pointed:
            return f"{question} ({pointed.unit.name})"
        if about_unit and (
            _ANSWERED.search(bot) or not (catalog.find_units(user) or catalog.find_positions(user))
        ):
            # "what positions are in that area?" after a duty answer: the unit that answered it (not a unit the
            # question named as its topic, "las casas que son activos extraordinarios").
            mentions = _named(catalog, bot)
            if mentions and _DUTY_ANSWER.search(bot):
                return f"{question} ({mentions[0].unit.name})"
        of_user = _unit_asked_before(question, folded, own, user, catalog)
        if of_user:
            return of_user
        former = catalog.history_names(user)
        if former:
            return f"{question} ({former[0]})"  # a unit only the change history names
        positions = catalog.find_positions(user) or catalog.history_positions(user)
        if positions:
            return f"{question} ({positions[0]})"
        past = _past_of_answering_unit(question, folded, bot, catalog)
        if past:
            return past
        borrowed = _borrow_topic(question, folded, own, pronoun, user, bot)
        if borrowed:
            return borrowed
        mentions = _named(catalog, bot)
        if mentions:
            return f"{question} ({mentions[0].unit.name})"
    return question


def _unit_asked_before(question: str, folded: str, own: list[str], user: str, catalog: Catalog) -> str | None:
    """The follow-up with the unit an earlier question named (its manual, or its positions, where asked)."""
    mentions = _named(catalog, user)
    if not mentions:
        return None
    if (
        own
        and _SWAP.search(folded)
        and not _ASKS_ANY.search(folded)
        and _POSITIONS.search(fold(user))
        and not _HEAD.search(fold(user))
        and catalog.titled_in(mentions[0].unit, own)
    ):
        # "¿y con servicios móviles?" after "Which positions in the Área de Ventas deal with notifications?":
        # that unit's positions, for a new topic its position titles name (a follow-up asking something of its
        # own, "¿y a qué subgerencia pertenece?", "¿y el objetivo?", asks that instead).
        asked = "puestos" if detect_language(question) == "es" else "positions"
        return f"{question} ({mentions[0].unit.name}, {asked})"
    if mentions[0].unit.parent is None and _ABOUT_MANUAL.search(fold(user)):
        # "and when was it first created?" after "¿En qué versión va el manual de la Gerencia de Créditos?"
        return f"{question} (manual {mentions[0].unit.name})"
    return f"{question} ({mentions[0].unit.name})"


def _pointing(bot: str, catalog: Catalog) -> str:
    """An answer as a source of what a follow-up points at: none when it is a change-history answer naming
    several units ("so who heads that area now?" after the records of version 2 asks of the area the user
    named, not of one of that version's news)."""
    return "" if _HISTORY_ANSWER.search(bot) and len(_named(catalog, bot)) > 1 else bot


def _past_of_answering_unit(question: str, folded: str, bot: str, catalog: Catalog) -> str | None:
    """ "was it always called that?" after a duty answer: the past of the unit that answered, not of the duty
    (a history speaks of units and positions)."""
    if not _ANSWERED.search(bot) or not (
        _HISTORY_STRONG.search(folded) or any(k.search(folded) for k in CHANGE_KINDS)
    ):
        return None
    mentions = _named(catalog, bot)
    return f"{question} ({mentions[0].unit.name})" if mentions else None


def _counted(question: str, folded: str, own: list[str], turns: list[tuple[str, str]]) -> str | None:
    """ "¿y cuáles son?" after "¿Cuántas dependencias tiene la Gerencia Legal?": the things counted, listed."""
    last_user = turns[-1][0] if turns else ""
    if own or not _COUNT.search(fold(last_user)) or not _ASKS.search(folded):
        return None
    counted = _COUNT.sub(" ", last_user)
    return f"{question} ({' '.join(w for w in tokens(counted) if w not in STOP_ES and w not in STOP_EN)})"


def _borrow_topic(
    question: str, folded: str, own: list[str], pronoun: str | None, user: str, bot: str
) -> str | None:
    """The follow-up with the earlier question's topic words, where it leans on them (None where it does not)."""
    topic = [w for w in tokens(user) if w not in STOP_ES and w not in STOP_EN and w not in _SHAPE]
    if _ABOUT_MANUAL.search(fold(user)):
        if _ABOUT_MANUAL.search(folded) and any(not _ABOUT_MANUAL.fullmatch(w) for w in own):
            return question  # "¿y cuál es el objetivo del manual?": its own question about the manual
        # "and what was it before?" after "¿Cuál es el código del manual?": the manual's code, not the manual;
        # "and when was it first created?" after "who authorised it?" asks its own fact of the manual.
        about = [] if _MANUAL_FACT.search(folded) else [w for w in topic if w not in own]
        return f"{question} ({' '.join(about) or ('el manual' if detect_language(question) == 'es' else 'the manual')})"
    if topic and pronoun and _DUTY_ANSWER.search(bot):
        # "¿Y quién los promueve?" after "¿Quién formaliza los créditos hipotecarios?": the pronoun is the
        # previous question's object; its verb gives way to the new one.
        carried = topic[1:] if own and len(topic) > 1 else topic
        phrases = _object_phrases(user) if own else []
        if len(phrases) > 1:
            carried = _antecedent(phrases, pronoun)
        return f"{question} ({' '.join(carried)})"
    return None


def _named(catalog: Catalog, text: str) -> list[_Mention]:
    """The units a text names, those named outright first: a word several gerencias share ("esa gerencia")
    names one of them only when nothing else does."""
    found = catalog.find_units(text)
    outright = named_outright(found)
    return outright + [m for m in found if all(m is not o for o in outright)]


def _determined_noun(folded: str, unit_words_only: bool = False) -> str | None:
    """The noun a demonstrative determines ("esa gerencia" → "gerencia"), if any (a unit word only, if so asked)."""
    words = [w.strip("¿?¡!.,;:") for w in folded.split()]
    for word, after in itertools.pairwise(words):
        if word in _DEMONSTRATIVES and after and after not in STOP_ES and after not in STOP_EN:
            return after if not unit_words_only or after in template().unit_words else None
    return None


def _pointed_beside(
    folded: str, units_now: list[_Mention], history: History, catalog: Catalog
) -> _Mention | None:
    """The unit a demonstrative's unit word points back to ("esa área", "that section") when the question names
    only gerencias besides: the latest turn naming a unit the word fits."""
    noun = _determined_noun(folded, unit_words_only=True) if units_now else None
    if not noun or any(m.unit.parent is not None for m in units_now):
        return None  # "¿Y la Sección de Registro? ¿quién es el jefe de esa área?": the unit it names
    for user, bot in reversed(history):
        found = catalog.mention_by_word(noun, _pointing(bot, catalog)) or catalog.mention_by_word(noun, user)
        if found:
            return found
    return None


def _pronoun(folded: str) -> str | None:
    """The object pronoun standing for the previous topic, if any: a demonstrative before a noun of its own
    ("esas escrituras", "that committee") is a determiner, not a pronoun."""
    words = folded.split()
    for i, raw in enumerate(words):
        word = raw.strip("¿?¡!.,;:")
        if not _PRONOUN.fullmatch(word):
            continue
        after = words[i + 1].strip("¿?¡!.,;:") if i + 1 < len(words) else ""
        before = words[i - 1].strip("¿?¡!.,;:") if i else ""
        if word in _DEMONSTRATIVES and after and after not in STOP_ES and after not in STOP_EN:
            continue  # "esas escrituras": a determiner
        if word in _CLITICS and before not in _CLITIC_HOSTS:
            continue  # "¿quién hace los borradores?": an article; "¿y quién los promueve?": a pronoun
        if word in ("le", "les") and {"a", "al"} & set(words[i + 1 :]):
            continue  # "¿quién le avisa al solicitante?": the pronoun doubles the person named after it
        return word
    return None


# Words that open a noun phrase's complement ("los impuestos | de los activos"): where a pronoun's candidates split.
_PREPOSITIONS = frozenset("de del a al en para por sobre con of on for in at to about from with".split())
_PLURAL_PRONOUNS = frozenset("los las les them those these esos esas".split())


def _object_phrases(user: str) -> list[list[str]]:
    """The noun phrases of a question's object, in order: "who pays the municipal taxes on repossessed
    properties?" → [municipal taxes], [repossessed properties] (its verb, the first content word, left out)."""
    phrases: list[list[str]] = [[]]
    verb_seen = False
    for w in tokens(user):
        if w in _PREPOSITIONS:
            if phrases[-1]:
                phrases.append([])
            continue
        if w in STOP_ES or w in STOP_EN or w in _SHAPE:
            continue
        if not verb_seen:
            verb_seen = True
            continue
        phrases[-1].append(w)
    return [p for p in phrases if p]


def _antecedent(phrases: list[list[str]], pronoun: str) -> list[str]:
    """The phrase a pronoun stands for: the last one agreeing in number ("them", "los": a plural head word)."""
    plural = pronoun in _PLURAL_PRONOUNS
    agreeing = [p for p in phrases if p[0].endswith("s") == plural]
    return (agreeing or phrases)[-1]


def _leans_back(folded: str, words: list[str]) -> bool:
    """Whether a follow-up naming nothing may lean on the conversation: a pronoun or "and …", a demonstrative
    before a unit's noun ("which department does that section report to?"), or a few words only."""
    return bool(_FOLLOW_UP.search(folded) or _ABOUT_UNIT_NOUN.search(folded)) or len(words) <= 6


def _moved(question: str, folded: str, words: list[str], history: History, catalog: Catalog) -> str | None:
    """A follow-up that moves the talk to another gerencia's manual (None when it does not): "¿y en Legal?" or
    "¿y la de Créditos?" is the previous question (as it was resolved) asked of that gerencia; "and in
    Créditos, who reviews …?" its own question, asked in that manual; "¿y el de Legal en qué versión va?" its
    own question about that manual."""
    turns = [(k, u) for k, (u, _a) in enumerate(history) if u.strip()]
    if not turns:
        return None
    k, last = turns[-1]
    moved = catalog.swapped_to(question)
    if moved:
        manual, rest = moved
        if rest:
            own = question[len(question) - len(rest) :] if len(fold(question)) == len(question) else rest
            # Scoped by the manual's code: "manual …" would make "¿quién elabora …?" ask who prepared the manual,
            # and the gerencia's name would draw retrieval to the gerencia's own lines.
            return f"{own} ({manual.code})" if manual.code else f"{own} (manual {manual.gerencia})"
        return _swap_manual(condense(last, history[:k], catalog), manual, catalog)
    named = catalog.find_manuals(question)
    if len(named) != 1 or not _SWAP.search(folded) or len(words) > 8:
        return None
    if _asks_own(folded, words, named[0]):
        return question
    return _swap_manual(condense(last, history[:k], catalog), named[0], catalog)


# Phrases that only shape a swap ("¿y qué tal San Miguel?", "¿y qué me dices de la de Legal?"): no question of
# its own.
_SWAP_SHAPE = re.compile(
    r"\b(?:que tal|que pasa con|que me dices de|que hay de|que onda con|what about|how about)\b"
)


def _own_words(folded: str, words: list[str], name: set[str]) -> bool:
    """Whether a follow-up asks a question of its own beside the name it gives: an interrogative and a word
    that is neither a stop word, a shaping word nor the name's, once swap phrases ("qué tal") are set aside."""
    rest = _SWAP_SHAPE.sub(" ", folded)
    shaped = set(tokens(folded)) - set(tokens(rest))
    own = [
        w
        for w in words
        if w not in STOP_ES
        and w not in STOP_EN
        and w not in _SHAPE
        and w not in name
        and w not in shaped
        and not _ABOUT_MANUAL.match(w)
    ]
    return bool(own) and bool(_ASKS_ANY.search(rest))


def _asks_own_of(folded: str, words: list[str], units: list[_Mention]) -> bool:
    """Whether a follow-up naming a unit asks a question of its own about it ("¿y cuál es el objetivo de la
    Dirección?"), rather than the previous question again ("¿y qué tal San Miguel?")."""
    return _own_words(folded, words, {t for m in units for t in tokens(m.unit.name)})


def _asks_own(folded: str, words: list[str], manual: Manual) -> bool:
    """Whether a follow-up naming a manual asks a question of its own about it ("¿y el de Legal en qué versión
    va?"), rather than the previous question again ("¿y la de Créditos?", "¿y qué me dices de la de Legal?")."""
    return _own_words(folded, words, set(tokens(short_name(manual.gerencia) or manual.gerencia)))


def _swap_manual(last: str, manual: Manual, catalog: Catalog) -> str:
    """The previous question about another manual: its gerencia (or the gerencia's short name) replaced."""
    if len(fold(last)) == len(last):  # folding kept the offsets (no expanded characters)
        tops = [(m.start, m.end, m.unit.name) for m in catalog.find_units(last) if m.unit.parent is None]
        short = [
            (start, end, (short_name(manual.gerencia) or manual.gerencia))
            for start, end, _m in catalog.manual_spans(last)
        ]
        spans = sorted(t for t in tops + short if t[0] >= 0)
        if spans:
            start, end, _old = spans[0]
            new = (
                manual.gerencia
                if (start, end, _old) in tops
                else (short_name(manual.gerencia) or manual.gerencia)
            )
            return f"{last[:start]}{new}{last[end:]}"
    return f"{last.rstrip(' ?')} ({manual.gerencia})?"


def _with_version(question: str, version: str, manual: str = "") -> str:
    """The follow-up with the version it leans on, in its own language: "… (versión 9)", "… (version 9)"."""
    word = "versión" if detect_language(question) == "es" else "version"
    return f"{question} ({word} {version}{manual})"


def _then_version(folded: str, previous_user: list[str]) -> str | None:
    """The version the previous question named, when this one points back to it ("then", "entonces")."""
    if not previous_user or not _THEN.search(folded) or _VERSION_REF.search(folded):
        return None
    before = _VERSION_REF.search(fold(previous_user[-1]))
    return before.group(2) if before else None


def _version_pointed(folded: str, history: History) -> str | None:
    """ "that version" beside a unit or position: the one version the last answer was about."""
    if not history or not _THAT_VERSION.search(folded) or _VERSION_REF.search(folded):
        return None
    shown = {a or b for a, b in _VERSION_SHOWN.findall(history[-1][1])}
    return shown.pop() if len(shown) == 1 else None


def _adjacent_version(folded: str, history: History) -> str | None:
    """The version before (or after) the one the last answer was about ("¿y la versión anterior a esa?",
    "and what happened to it in the next version?")."""
    step = -1 if _PREVIOUS_VERSION.search(folded) else 1 if _NEXT_VERSION.search(folded) else 0
    if not history or not step or _VERSION_REF.search(folded):
        return None
    last = history[-1][1]
    shown = {int(a or b) for a, b in _VERSION_SHOWN.findall(last)} or {
        int(n) for n in _CURRENT_SHOWN.findall(last)
    }
    if len(shown) != 1:
        return None
    (version,) = shown
    return str(version + step) if version + step >= 1 else None


def _focus_version(folded: str, words: list[str], history: History) -> str | None:
    """The one version the last answer was about, when a follow-up asks a fact of it without naming it ("who
    prepared it?", "¿qué más se hizo en esa versión?", "when did it take effect?" after a change-history answer)."""
    if (
        not history
        or _VERSION_REF.search(folded)
        or _LATEST.search(folded)
        or not _VERSION_FACT.search(folded)
    ):
        return None
    if _WHICH_VERSION.search(folded) or not (
        _PRONOUN.search(folded) or _FOLLOW_UP.search(folded) or len(words) <= 4
    ):
        return None  # "¿en qué versión pasó eso?" asks for the version: the topic carries, not the version
    if _ABOUT_UNIT_NOUN.search(folded):
        return None  # "¿y cuándo se había incorporado esa área?": that unit's past, not that version's
    last = history[-1][1]
    made = _VERSION_THAT.search(folded)
    kinds = [k for k in CHANGE_KINDS if made and k.search(made.group("clause"))]
    if kinds and not any(k.search(fold(last)) for k in kinds):
        return None  # "who prepared the version that removed it?" after its creation: another version
    shown = {a or b for a, b in _VERSION_SHOWN.findall(last)}
    if not shown and _THAT_VERSION.search(folded):
        # "¿qué cambió en esa versión?" after "La versión vigente es la **6**" (not "when was it first created?")
        shown = set(_CURRENT_SHOWN.findall(last))
    return shown.pop() if len(shown) == 1 else None


def _swap_version(folded: str, previous_user: list[str]) -> str | None:
    """ "¿y en la versión 4?" after "What changed in version 3?" (or a turn or two later): the latest question
    that named a version, with this one."""
    now = _VERSION_REF.search(folded)
    if not now or not previous_user:
        return None
    for last in reversed(previous_user[-3:]):
        before = _VERSION_REF.search(fold(last))
        if before and len(fold(last)) == len(last):  # folding kept the offsets (no expanded characters)
            return f"{last[: before.start(2)]}{now.group(2)}{last[before.end(2) :]}"
    return None


class Assistant:
    """Answers questions about the indexed manuals."""

    def __init__(
        self,
        settings: Settings,
        embedder: Any,
        index: OpenIndex,
        manuals: list[Manual],
        retrieval_mode: Mode = "hybrid",
        llm: Any | None = None,
    ) -> None:
        self.settings = settings
        self.embedder = embedder
        self.index = index
        self.manuals = manuals
        self.retrieval_mode: Mode = retrieval_mode
        self.glossary = Glossary.load(settings.retrieval.glossary)
        self.retriever = HybridRetriever(index, embedder, settings.retrieval, self.glossary)
        self._reopen_lock = threading.Lock()
        self._scope = load_scope(settings.answer.scope)
        # Engines by the set of manuals they answer from, built on demand (a manual filter, a past version);
        # `grounded` answers from the versions in force of every gerencia.
        self._engines: dict[frozenset[str], GroundedEngine] = {}
        self._engines_lock = threading.Lock()
        self.grounded = self._engine_for([m.id for m in Catalogue(manuals, settings.as_of).in_force()])
        self.speller = Speller(self._vocabulary())
        self._chunk_by_key = _chunks_by_citation_key(index)
        self.llm = llm
        self.chain: Runnable[dict[str, Any], Answer] = (
            RunnableLambda(self._prepare) | RunnableLambda(self._retrieve) | RunnableLambda(self._compose)
        )

    def _engine_for(self, manual_ids: Sequence[str]) -> GroundedEngine:
        """The engine answering from exactly these manuals (cached: a few distinct sets ever occur)."""
        key = frozenset(manual_ids)
        engine = self._engines.get(key)
        if engine is not None:
            return engine
        with self._engines_lock:
            engine = self._engines.get(key)
            if engine is None:
                chosen = [m for m in self.manuals if m.id in key]
                engine = GroundedEngine(chosen, self.settings.answer, self.glossary, self._scope)
                engine.archive = list(self.manuals)
                engine.learn_renames()
                engine.search_in_unit = lambda q, unit, manual: self.retriever.search(
                    q, k=8, unit=unit or None, mode=self.retrieval_mode, manual=manual
                )
                engine.search_duties = lambda q, manuals: self.retriever.search(
                    q, k=8, section="funciones", mode=self.retrieval_mode, manual=manuals
                )
                engine.support_scorer = getattr(self, "_support_scorer", None)
                if len(self._engines) >= _MAX_ENGINES:
                    self._engines.pop(next(iter(self._engines)))  # the oldest; `grounded` is kept apart
                self._engines[key] = engine
        return engine

    def manual_ids(self, manual: str | None) -> list[str] | None:
        """The ids of the manuals a filter names: one id, or every version of a code or gerencia; None for all.

        Raises `AssistantError` for a filter that names no served manual.
        """
        if manual is None or not manual.strip() or fold(manual.strip()) in _ALL_MANUALS:
            return None
        key = fold(" ".join(manual.split()))
        exact = [m.id for m in self.manuals if fold(m.id) == key]
        found = exact or [m.id for m in self.manuals if key in {fold(m.code), fold(m.gerencia)}]
        if found:
            return found
        known = ", ".join(sorted({f"{m.code or m.id} ({m.gerencia})" for m in self.manuals}))
        raise AssistantError(f"No served manual is called {manual!r}; the manuals are: {known}.")

    @classmethod
    def from_settings(cls, settings: Settings | None = None, retrieval_mode: Mode = "hybrid") -> Assistant:
        """Load the embedding model and open the index once (raises a one-sentence error naming the fix)."""
        settings = settings or Settings()
        embedder = get_embedder(settings.embedding)
        embedder.warm_up()
        index = Store(settings.store).open(embedder)
        manuals = manuals_from_manifest(index)
        llm = None
        if settings.answer.engine == "llm":
            from assistant.llm import LLMEngine

            llm = LLMEngine(settings.llm)
            llm.warm_up()  # pays the client import once and turns a bad configuration into a clear error
        assistant = cls(settings, embedder, index, manuals, retrieval_mode=retrieval_mode, llm=llm)
        assistant.speller.warm_up()
        return assistant

    # --- public ------------------------------------------------------------------------------------------

    @property
    def manifest(self) -> dict[str, Any]:
        """The live index manifest, without the stored manual structures."""
        data = dict(self.index.manifest.__dict__)
        data["manuals"] = {
            k: {kk: vv for kk, vv in v.items() if kk != "structure"}
            for k, v in data.get("manuals", {}).items()
        }
        return data

    @property
    def llm_judge(self) -> Any | None:
        """The LLM engine when one is configured (used for an LLM-judged faithfulness score)."""
        return self.llm

    def as_retriever(self, k: int | None = None) -> ManualRetriever:
        """This assistant's retriever as a LangChain `BaseRetriever`."""
        return ManualRetriever(
            retriever=self.retriever, k=k or self.settings.retrieval.k, mode=self.retrieval_mode
        )

    def ask(
        self,
        question: str,
        history: History | None = None,
        manual: str | None = None,
        as_of: dt.date | None = None,
    ) -> Answer:
        """Answer one question (optionally following a conversation, optionally within one manual).

        ``manual`` is a manual's code ("901 0905"), id or gerencia; None answers from every manual. ``as_of``
        is the date "in force" refers to (default: ``settings.as_of``, else today).
        """
        return self.chain.invoke(
            {
                "question": question,
                "history": list(history or []),
                "manual": self.manual_ids(manual),
                "as_of": as_of,
            }
        )

    def _vocabulary(self) -> set[str]:
        """Every word the assistant knows: manual chunks, glossary phrases and question words."""
        words = set(STOP_ES) | set(STOP_EN) | cue_vocabulary()
        for c in self.index.chunks:
            words.update(tokens(c.text))
        for e in self.glossary.entries:
            words.update(tokens(" ".join(e.match) + " " + e.add))
        return words

    # --- chain steps -------------------------------------------------------------------------------------

    def _search(self, query: str, manual: Sequence[str] | None = None) -> list[Hit]:
        """Search the index; a store that stopped answering is reopened once, else `StoreUnavailableError`.

        In server mode the Chroma server may restart under a running app: the next question reconnects.
        """
        k = max(_ANSWER_HITS, self.settings.retrieval.k)
        retriever = self.retriever
        try:
            return retriever.search(query, k=k, mode=self.retrieval_mode, manual=manual)
        except Exception as first:
            log.warning("index query failed (%s: %s); reconnecting", type(first).__name__, first)
            try:
                retriever = self._reopen()
            except AssistantError as exc:
                log.error("index unavailable: %s", exc)
                raise StoreUnavailableError(STORE_DOWN) from exc
            return retriever.search(query, k=k, mode=self.retrieval_mode, manual=manual)

    def _reopen(self) -> HybridRetriever:
        """Open the live index again (a new client) and serve from it; raises an `AssistantError` if it fails."""
        index = Store(self.settings.store).open(self.embedder)
        retriever = HybridRetriever(index, self.embedder, self.settings.retrieval, self.glossary)
        with self._reopen_lock:
            self.index, self.retriever = index, retriever
            self._chunk_by_key = _chunks_by_citation_key(index)
        return retriever

    def _prepare(self, state: dict[str, Any]) -> dict[str, Any]:
        started = time.perf_counter()
        question = clean_question(state["question"], self.settings.answer.max_question_chars)
        # Only the last turns count, so a long conversation costs each turn the same.
        turns = self.settings.answer.max_history_turns
        history = [(str(u), str(a)) for u, a in state.get("history") or []][-turns:] if turns else []
        attach_support(self)
        safe, stripped = strip_instructions(question)
        lang = detect_language(safe or question)
        known = known_word(self.speller)
        rephrase = not has_content(question, known) or (bool(safe) and not has_content(safe, known))
        if rephrase and history and safe and _ASKS.search(fold(safe)):
            rephrase = False  # "when was that?", "¿y quién?": a follow-up asks with function words only
        social = not rephrase and (
            is_social(safe or question)
            or is_help_request(self.grounded.catalog.mask_names(fold(safe or question)))
        )
        if rephrase or social:
            safe = ""
        fixes = self.speller.corrections(safe) if safe and history else {}
        standalone = condense(safe, history, self.grounded.catalog, fixes) if safe else ""
        if self.llm is not None and history and standalone == safe and safe:
            from assistant.llm import LLMFailure

            try:
                standalone = self.llm.condense(safe, history, lang)
            except LLMFailure as exc:
                log.info("LLM condense failed (%s); using the rule-based one", exc.reason)
        if self.settings.log_questions:
            log.info("question: %s | standalone: %s", question, standalone)
        return {
            **state,
            "question": question,
            "standalone": standalone,
            "language": lang,
            "history": history,
            "stripped": stripped,
            "started": started,
            "rephrase": rephrase,
            "social": social,
            "safe": safe,
        }

    def _retrieve(self, state: dict[str, Any]) -> dict[str, Any]:
        query = state["standalone"]
        hits: list[Hit] = []
        fixes = self.speller.corrections(query) if query else {}
        corrected = " ".join(fixes.get(w, w) for w in tokens(query)) if fixes else query
        wanted = state.get("manual")
        candidates = self.manuals if wanted is None else [m for m in self.manuals if m.id in wanted]
        expansion = " ".join(
            dict.fromkeys(f"{self.glossary.expand(query)} {self.glossary.expand(corrected)}".split())
        )
        # "What changed in version 3 of the Créditos manual?": the version of that manual, not every manual's
        # version 3.
        named = self._named_codes(corrected or query)
        candidates = [m for m in candidates if m.code in named] or candidates
        # Present tense: the versions in force; a named version or date: the version(s) it points to.
        resolution = resolve(
            query or state["question"], candidates, state.get("as_of") or self.settings.as_of
        )
        scope = [m.id for m in resolution.manuals] or [m.id for m in candidates]
        if query:
            # Only non-words are corrected (see Speller), so the corrected text is the better query.
            search = corrected if fixes else query
            hits = self._search(search, scope)
        return {
            **state,
            "hits": hits,
            "expansion": expansion,
            "corrected": corrected,
            "resolution": resolution,
            "scope": scope,
        }

    def _named_codes(self, text: str) -> set[str]:
        """The codes of the manuals a question names: by code, by its gerencia's name (in Spanish or in
        translated words) or short name where a manual is meant; none when it names several or none."""
        catalog = self.grounded.catalog
        if not catalog.many or not text:
            return set()
        named = {m.code for m in catalog.find_manuals(text)}
        units = catalog.find_units(text)
        named |= {f.manual.code for f in named_outright(units) if f.unit.parent is None}
        # "¿La Sección X pertenece a la Gerencia Legal?": the unit's own manual is named too.
        named |= {f.manual.code for f in owners_asked(fold(text), units, [])}
        if not named:
            named = {
                f.manual.code
                for f in catalog.find_units_by_words(text, self.glossary.match_spans(text))
                if f.unit.parent is None
            }
        return named if len(named) == 1 else set()

    def _with_version(self, draft: Draft, resolution: Resolution, lang: Literal["es", "en"]) -> Draft:
        """Say which version an answer comes from when it matters: a past version was asked for, or the
        corpus holds several versions of a cited manual."""
        if not draft.answered or not draft.citations:
            return draft
        catalogue = Catalogue(self.manuals, resolution.as_of)
        cited = list(dict.fromkeys(c.manual for c in draft.citations))
        by_id = {m.id: m for m in self.manuals}
        several = [by_id[i] for i in cited if i in by_id and catalogue.has_several(by_id[i].code)]
        if (resolution.kind == "present" or resolution.history_only) and not several:
            return draft  # one version of each cited manual: nothing to tell apart
        if resolution.kind == "present":
            where = "; ".join(_version_line(catalogue, m, lang) for m in several)
            note = say("chain_version_note", lang, versions=where)
        else:
            note = f"_{resolution.reason(lang)}_"
        return replace(draft, text=f"{draft.text}\n\n{note}")

    def _sources(self, draft: Draft, hits: list[Hit]) -> list[Hit]:
        """The chunks the answer rests on first (the engine acts as a re-ranker), then the other hits."""
        by_id = {h.chunk.id: h for h in hits}
        lead: list[Hit] = []
        for c in draft.citations:
            chunk = self._chunk_by_key.get(
                (c.manual, c.unit, c.section, c.numeral if c.section != "organigrama" else None)
            )
            if chunk is None and c.section == "documento":
                chunk = next(
                    (x for x in self.index.chunks if x.section == "documento" and x.manual_id == c.manual),
                    None,
                )
            if chunk is not None:
                lead.append(by_id.get(chunk.id) or Hit(chunk=chunk, score=c.score))
        return _dedupe(lead + hits)[: max(_ANSWER_HITS, self.settings.retrieval.k)]

    def _compose(self, state: dict[str, Any]) -> Answer:
        lang = state["language"]
        hits: list[Hit] = state["hits"]
        engine, model, fallback = "grounded", None, None
        if not state["standalone"]:
            draft = Draft(say("chain_only_manual_content", lang), False)
        elif self.llm is not None:
            from assistant.llm import LLMFailure

            try:
                llm_draft = self.llm.answer(state["standalone"], hits, lang, state["history"])
                draft = Draft(llm_draft.text, True, list(llm_draft.citations))
                engine, model = "llm", llm_draft.model
            except LLMFailure as exc:
                fallback = exc.reason
                draft = self._engine_for(state["scope"]).answer(
                    state["standalone"], lang, hits, state["expansion"], state["corrected"], _follow_up(state)
                )
        else:
            draft = self._engine_for(state["scope"]).answer(
                state["standalone"], lang, hits, state["expansion"], state["corrected"], _follow_up(state)
            )
            draft = self._with_version(draft, state["resolution"], lang)
        if state.get("rephrase"):
            draft = Draft(say("chain_rephrase", lang), False)
        elif state.get("social"):
            draft = Draft(say("chain_social", lang), False)
        return Answer(
            question=state["question"],
            answer=draft.text,
            answered=draft.answered,
            support=draft.support,
            language=lang,
            citations=draft.citations,
            sources=self._sources(draft, hits),
            engine=engine,
            model=model or getattr(self.embedder, "name", None),
            latency_ms=(time.perf_counter() - state["started"]) * 1000,
            standalone_question=state["standalone"] if state["standalone"] != state["question"] else None,
            fallback_reason=fallback,
        )


def _follow_up(state: dict[str, Any]) -> FollowUp | None:
    """A question rewritten from the conversation: the user's own words and what the last answer quoted."""
    own, history = state.get("safe", ""), state.get("history") or []
    if not history or not own or state["standalone"] == own or not state["standalone"].startswith(own):
        return None  # not rewritten, or rewritten as the previous question for another unit or version
    return FollowUp(own, frozenset(_QUOTED.findall(history[-1][1])))


def _version_line(catalogue: Catalogue, manual: Manual, lang: str) -> str:
    when = manual.effective_date
    since = (spanish_date(when) if lang == "es" else format_date(when, "en")) if when else "?"
    status = catalogue.status(manual)
    state = {
        "in_force": say("chain_version_in_force", lang),
        "superseded": say("chain_version_superseded", lang),
        "future": say("chain_version_future", lang),
    }[status]
    return say("chain_version_line", lang, version=manual.version, code=manual.code, state=state, since=since)


def _chunks_by_citation_key(index: OpenIndex) -> dict[tuple[Any, ...], Any]:
    """Chunks keyed as citations name them: (manual, unit, section, numeral); an org chart has no numeral."""
    return {
        (c.manual_id, c.unit, c.section, c.numeral if c.section != "organigrama" else None): c
        for c in index.chunks
    }


def _dedupe(hits: list[Hit]) -> list[Hit]:
    seen: set[str] = set()
    out = []
    for h in hits:
        if h.chunk.id not in seen:
            seen.add(h.chunk.id)
            out.append(h)
    return out


def manuals_from_manifest(index: OpenIndex) -> list[Manual]:
    """The parsed manuals stored with the index, so answers always match what was indexed."""
    manuals = []
    for info in index.manifest.manuals.values():
        structure = info.get("structure")
        if structure:
            manuals.append(Manual.model_validate(structure))
    return manuals
