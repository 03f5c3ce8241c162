"""The assistant: one LCEL chain behind ``ask(question, history) -> Answer``.

    prepare (validate, strip planted instructions, detect language, condense a follow-up)
      → retrieve (hybrid search over the index)
      → compose (grounded engine, or an LLM engine that falls back to the grounded one)

`Assistant.from_settings` loads the embedding model and opens the index once; `ask` is then safe to call
from many threads (reads only).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Sequence
from typing import Any

from langchain_core.runnables import Runnable, RunnableLambda

from assistant.embed import get_embedder
from assistant.errors import AssistantError, StoreUnavailableError
from assistant.grounded import Catalog, Draft, GroundedEngine, load_scope
from assistant.models import Answer, Hit, Manual
from assistant.retrieve import Glossary, HybridRetriever, ManualRetriever, Mode
from assistant.safety import clean_question, strip_instructions
from assistant.settings import Settings
from assistant.store import OpenIndex, Store
from assistant.text import STOP_EN, STOP_ES, Speller, detect_language, fold, tokens

log = logging.getLogger(__name__)

History = Sequence[tuple[str, str]]
_ANSWER_HITS = 8  # the grounded engine looks a little deeper than the k sources it shows
# What the user sees when the vector store (e.g. a `chroma run` server) stops answering mid-service.
STORE_DOWN = (
    "El índice de documentos no está disponible en este momento; inténtelo de nuevo en breve. · "
    "The document index is unavailable right now; please try again shortly."
)
_FOLLOW_UP = re.compile(
    r"\b(it|its|they|them|their|that one|this one|that unit|that area|there|lo|la|le|las|los|su|sus|esa|ese|"
    r"esta|este|ella|alli|ahi|dicha|dicho|dicha area|what about|how about|and|y|tambien|also)\b"
)
_SWAP = re.compile(r"^\s*[¿]?\s*(and|y|what about|how about|y en|y la|y el|y de|and in|and the|and for)\b")


def condense(question: str, history: History | None, catalog: Catalog) -> str:
    """Rewrite a follow-up that leans on the conversation into a standalone question (rule-based)."""
    if not history:
        return question
    units_now = catalog.find_units(question)
    positions_now = catalog.find_positions(question)
    words = tokens(question)
    folded = fold(question)
    previous_user = [u for u, _a in history if u.strip()]
    if (units_now or positions_now) and _SWAP.search(folded) and len(words) <= 8 and previous_user:
        # "¿y San Miguel?" after "¿Qué puestos tiene Santa Ana?": same question, other unit.
        last = previous_user[-1]
        old = catalog.find_units(last)
        if old and units_now:
            m = old[0]
            return f"{last[: m.start]}{units_now[0].unit.name}{last[m.end :]}"
        return question
    if units_now or positions_now:
        return question
    if not (_FOLLOW_UP.search(folded) or len(words) <= 6):
        return question
    for user, bot in reversed(list(history)):
        mentions = catalog.find_units(user) or catalog.find_units(bot)
        if mentions:
            return f"{question} ({mentions[0].unit.name})"
        positions = catalog.find_positions(user)
        if positions:
            return f"{question} ({positions[0]})"
    return question


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
        self.grounded = GroundedEngine(
            manuals, settings.answer, self.glossary, load_scope(settings.answer.scope)
        )
        self.grounded.search_in_unit = lambda q, unit: self.retriever.search(
            q, k=8, unit=unit, mode=retrieval_mode
        )
        self.speller = Speller(self._vocabulary())
        self._chunk_by_key = _chunks_by_citation_key(index)
        self.llm = llm
        self.chain: Runnable[dict[str, Any], Answer] = (
            RunnableLambda(self._prepare) | RunnableLambda(self._retrieve) | RunnableLambda(self._compose)
        )

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

    def ask(self, question: str, history: History | None = None) -> Answer:
        """Answer one question (optionally following a conversation)."""
        return self.chain.invoke({"question": question, "history": list(history or [])})

    def _vocabulary(self) -> set[str]:
        """Every word the assistant knows: manual chunks, glossary phrases and question words."""
        words = set(STOP_ES) | set(STOP_EN)
        for c in self.index.chunks:
            words.update(tokens(c.text))
        for e in self.glossary.entries:
            words.update(tokens(" ".join(e.match) + " " + e.add))
        return words

    # --- chain steps -------------------------------------------------------------------------------------

    def _search(self, query: str) -> list[Hit]:
        """Search the index; a store that stopped answering is reopened once, else `StoreUnavailableError`.

        In server mode the Chroma server may restart under a running app: the next question reconnects.
        """
        k = max(_ANSWER_HITS, self.settings.retrieval.k)
        retriever = self.retriever
        try:
            return retriever.search(query, k=k, mode=self.retrieval_mode)
        except Exception as first:
            log.warning("index query failed (%s: %s); reconnecting", type(first).__name__, first)
            try:
                retriever = self._reopen()
            except AssistantError as exc:
                log.error("index unavailable: %s", exc)
                raise StoreUnavailableError(STORE_DOWN) from exc
            return retriever.search(query, k=k, mode=self.retrieval_mode)

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
        history = [(str(u), str(a)) for u, a in state.get("history") or []][-6:]
        safe, stripped = strip_instructions(question)
        lang = detect_language(safe or question)
        standalone = condense(safe, history, self.grounded.catalog) if safe else ""
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
        }

    def _retrieve(self, state: dict[str, Any]) -> dict[str, Any]:
        query = state["standalone"]
        hits: list[Hit] = []
        fixes = self.speller.corrections(query) if query else {}
        corrected = " ".join(fixes.get(w, w) for w in tokens(query)) if fixes else query
        if query:
            # Only non-words are corrected (see Speller), so the corrected text is the better query.
            search = corrected if fixes else query
            hits = self._search(search)
        expansion = " ".join(
            dict.fromkeys(f"{self.glossary.expand(query)} {self.glossary.expand(corrected)}".split())
        )
        return {**state, "hits": hits, "expansion": expansion, "corrected": corrected}

    def _sources(self, draft: Draft, hits: list[Hit]) -> list[Hit]:
        """The chunks the answer rests on first (the engine acts as a re-ranker), then the other hits."""
        by_id = {h.chunk.id: h for h in hits}
        lead: list[Hit] = []
        for c in draft.citations:
            chunk = self._chunk_by_key.get(
                (c.unit, c.section, c.numeral if c.section != "organigrama" else None)
            )
            if chunk is None and c.section == "documento":
                chunk = next((x for x in self.index.chunks if x.section == "documento"), None)
            if chunk is not None:
                lead.append(by_id.get(chunk.id) or Hit(chunk=chunk, score=c.score))
        return _dedupe(lead + hits)[: max(_ANSWER_HITS, self.settings.retrieval.k)]

    def _compose(self, state: dict[str, Any]) -> Answer:
        lang = state["language"]
        hits: list[Hit] = state["hits"]
        engine, model, fallback = "grounded", None, None
        if not state["standalone"]:
            draft = Draft(
                "Solo puedo responder preguntas sobre el contenido del manual."
                if lang == "es"
                else "I can only answer questions about what the manual says.",
                False,
            )
        elif self.llm is not None:
            from assistant.llm import LLMFailure

            try:
                llm_draft = self.llm.answer(state["standalone"], hits, lang, state["history"])
                draft = Draft(llm_draft.text, True, list(llm_draft.citations))
                engine, model = "llm", llm_draft.model
            except LLMFailure as exc:
                fallback = exc.reason
                draft = self.grounded.answer(
                    state["standalone"], lang, hits, state["expansion"], state["corrected"]
                )
        else:
            draft = self.grounded.answer(
                state["standalone"], lang, hits, state["expansion"], state["corrected"]
            )
        return Answer(
            question=state["question"],
            answer=draft.text,
            answered=draft.answered,
            language=lang,
            citations=draft.citations,
            sources=self._sources(draft, hits),
            engine=engine,
            model=model or getattr(self.embedder, "name", None),
            latency_ms=(time.perf_counter() - state["started"]) * 1000,
            standalone_question=state["standalone"] if state["standalone"] != state["question"] else None,
            fallback_reason=fallback,
        )


def _chunks_by_citation_key(index: OpenIndex) -> dict[tuple[Any, ...], Any]:
    """Chunks keyed as citations name them: (unit, section, numeral); an org chart has no numeral."""
    return {(c.unit, c.section, c.numeral if c.section != "organigrama" else None): c for c in index.chunks}


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
