"""`GroundedEngine`: analyses a question once, declines what no MOF holds, then asks each answerer in turn.

The order is data (`ROUTES`): the first answerer that returns a draft answers. A question about a version or
strongly about the change history asks the history first (`HISTORY_FIRST`); "who handles X" (duties) is last
and always answers, if only to decline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from assistant.diff import ManualDiff, diff_manuals
from assistant.engine import document, duties, history, structure
from assistant.engine.catalog import Catalog
from assistant.engine.common import Draft, Lang
from assistant.engine.decline import ScopeTopic, out_of_scope
from assistant.engine.query import _VERSION_NUM, FollowUp, Query, analyse, strong_history
from assistant.models import Hit, Manual
from assistant.phrases import say
from assistant.retrieve import Glossary
from assistant.settings import AnswerSettings
from assistant.support import Scored, SupportScorer
from assistant.text import fold

# An answerer returns a draft, or None to let the next one try.
Answerer = Callable[["GroundedEngine", Query, Lang, list[Hit]], Draft | None]

# The routing table, in the order the answerers are asked.
ROUTES: list[tuple[str, Answerer]] = [
    ("document", document.answer),
    ("history", history.answer),
    ("structure", structure.answer),
    ("duties", duties.who_handles),
]
# The order for a question that names a version or is strongly about the change history.
HISTORY_FIRST = ("history", "document", "structure", "duties")


def routes_for(query: Query) -> list[tuple[str, Answerer]]:
    """The answerers to ask for this question, in order."""
    if strong_history(query) or _VERSION_NUM.search(query.q):
        by_name = dict(ROUTES)
        return [(name, by_name[name]) for name in HISTORY_FIRST]
    return list(ROUTES)


class GroundedEngine:
    """Answers from the manuals' structure and retrieved hits; see the package docstring."""

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
        # Set by the chain: searches the function lines of the given manuals, for a "who …?" question whose
        # hits hold no duty line ("¿Quién aprueba las modificaciones presupuestarias?" finds change histories).
        self.search_duties: Callable[[str, list[str]], list[Hit]] | None = None
        # Every served manual, all versions (set by the chain): the previous version of a manual is found here
        # to compute what changed.
        self.archive: list[Manual] = list(manuals)
        self._diffs: dict[tuple[str, str], ManualDiff] = {}
        # The calibrated support scorer (assistant/support.py), attached by the chain once the index is open.
        self.support_scorer: Any = None

    # --- entry point ---------------------------------------------------------------------------------

    def answer(
        self,
        question: str,
        lang: Lang,
        hits: list[Hit],
        expansion: str = "",
        corrected: str | None = None,
        follow_up: FollowUp | None = None,
    ) -> Draft:
        """Compose the answer for a (standalone, sanitised) question, its hits and its typo-corrected form."""
        a = self.analyse(question, corrected or question, expansion)
        a.follow_up = follow_up
        every = hits
        hits = self._scoped_hits(a, hits)
        declined = out_of_scope(self, a, lang, hits)
        if declined is not None:
            return declined
        for name, answerer in routes_for(a):
            draft = answerer(self, a, lang, hits)
            if draft is None:
                continue
            wide = self._widened(a) if name == "duties" and not draft.answered else None
            if wide is not None:
                # "¿Quién gestiona en el registro de la zona …?": a common noun that is also the short name
                # of one gerencia's unit ("Sección de Registro") narrowed the question to that gerencia; when
                # no line there covers the topic, every manual is asked, as if the word named no unit.
                other = answerer(self, wide, lang, every)
                draft = other if other is not None and other.answered else draft
            return self._with_renames(a, lang, draft)
        raise AssertionError("the duties answerer always answers")  # pragma: no cover

    def analyse(self, question: str, corrected: str, expansion: str) -> Query:
        """Find the units and positions a question names and the topic words left over."""
        return analyse(self.catalog, self.glossary, question, corrected, expansion)

    def diff(self, old: Manual, new: Manual) -> ManualDiff:
        """What changed between two served versions, computed once per pair (manuals never change once loaded)."""
        key = (old.id, new.id)
        found = self._diffs.get(key)
        if found is None:
            found = self._diffs[key] = diff_manuals(old, new)
        return found

    def learn_renames(self) -> None:
        """Old names of renamed units (from the previous version in the archive) become aliases of the new ones."""
        for m in self.catalog.manuals:
            older = [x for x in self.archive if x.code == m.code and (x.version or 0) < (m.version or 0)]
            if not m.code or not older:
                continue
            previous = max(older, key=lambda x: x.version or 0)
            for r in self.diff(previous, m).units_renamed:
                pair = self.catalog.unit(r.to_unit, m.id)
                if pair is not None:
                    self.catalog.add_alias(r.from_unit, pair[0], m)

    def _with_renames(self, a: Query, lang: Lang, draft: Draft) -> Draft:
        """Say so when the question used a unit's former name."""
        notes = []
        for mention in a.units:
            old = self.catalog.former_name(mention)
            if old:
                notes.append(
                    say("renamed_unit", lang, old=old, unit=mention.unit.name, version=mention.manual.version)
                )
        if not notes:
            return draft
        return Draft(draft.text + "\n\n" + " ".join(notes), draft.answered, draft.citations, draft.support)

    def _widened(self, a: Query) -> Query | None:
        """The question unscoped, when only a unit's short name said as one ordinary word narrowed it to some
        gerencias (not a gerencia, a code, a position or a unit's full name); else None."""
        if not a.scoped or a.positions or a.follow_up is not None or self.catalog.find_manuals(a.q):
            return None
        texts = [fold(a.text), *a.q.split(" || ")]
        if not a.units or not all(self.catalog.by_short_name(m, texts) for m in a.units):
            return None
        return replace(a, units=[], manuals=list(self.catalog.manuals), scoped=False)

    def _scoped_hits(self, a: Query, hits: list[Hit]) -> list[Hit]:
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

    # --- the support check, as the chain and the calibration scripts use it --------------------------

    def support(self, hits: list[Hit], leftover: list[str], expansion: str) -> tuple[float, float]:
        """(best dense cosine, share of topic words found in the best hits): the refusal signals."""
        return duties.support(hits, leftover, expansion)

    def topic_phrase(self, a: Query, vocabulary: frozenset[str] = frozenset()) -> str:
        """The question's topic, without question words, politeness and the names it uses only as places."""
        return duties.topic_phrase(self, a, vocabulary)

    def support_candidates(
        self, a: Query, hits: list[Hit], group: list[Hit], scorer: SupportScorer
    ) -> tuple[str, list[Scored]]:
        """The topic phrase and the scored candidate lines: the chosen group first, then other duty hits."""
        return duties.support_candidates(self, a, hits, group, scorer)
