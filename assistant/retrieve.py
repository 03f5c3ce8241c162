"""Retrieve stage: hybrid search (dense e5 + BM25 over folded, stemmed Spanish) with glossary expansion.

Fusion is a weighted sum of the dense cosine and the BM25 score normalised by the query's best BM25 score.
Plain RRF let BM25 pull English questions down (their words rarely match the Spanish manual), so the weights
come from settings and were tuned on `evals/questions.jsonl`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document as LCDocument
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict
from rank_bm25 import BM25Okapi

from assistant.models import Chunk, Hit
from assistant.settings import RetrievalSettings
from assistant.store import OpenIndex
from assistant.text import english_stem, lexical_terms, tokens

Mode = Literal["hybrid", "dense", "bm25"]


@dataclass(frozen=True)
class GlossaryEntry:
    """Phrases that, found in a question, add the manual's own Spanish words to the query."""

    match: tuple[str, ...]
    add: str


class Glossary:
    """The EN↔ES term list kept as data in `corpus/glossary.json`.

    Phrases match whole words after accent folding and English stemming, so "evicting" finds "eviction".
    """

    def __init__(self, entries: list[GlossaryEntry]) -> None:
        self.entries = entries
        self._phrases: list[tuple[tuple[str, ...], GlossaryEntry]] = []
        for e in entries:
            for phrase in e.match:
                key = tuple(english_stem(t) for t in tokens(phrase))
                if key:
                    self._phrases.append((key, e))
        self._phrases.sort(key=lambda x: -len(x[0]))
        # Phrases by their first word, so a question is scanned once rather than once per phrase.
        self._by_first: dict[str, list[tuple[tuple[str, ...], GlossaryEntry]]] = {}
        for key, entry in self._phrases:
            self._by_first.setdefault(key[0], []).append((key, entry))

    @classmethod
    def load(cls, path: str | Path) -> Glossary:
        """Read the glossary file; a missing file means no expansion."""
        p = Path(path)
        if not p.exists():
            return cls([])
        data = json.loads(p.read_text(encoding="utf-8"))
        return cls([GlossaryEntry(tuple(e["match"]), e["add"]) for e in data.get("entries", [])])

    def match_spans(self, question: str) -> list[tuple[int, int, str]]:
        """(first token, end token, words to add) for each phrase found in the question's tokens."""
        stems = [english_stem(t) for t in tokens(question)]
        taken = [False] * len(stems)
        out: list[tuple[int, int, str]] = []
        # Longest phrases first, without overlaps: "customer service management" is not also "customer service".
        candidates = [
            (len(key), i, key, entry)
            for i, first in enumerate(stems)
            for key, entry in self._by_first.get(first, [])
            if tuple(stems[i : i + len(key)]) == key
        ]
        chosen: set[tuple[int, int]] = set()
        for n, i, _key, entry in sorted(candidates, key=lambda c: (-c[0], c[1])):
            # Entries whose phrases stem alike ("market", "marketing") all apply to the same words.
            if (i, n) in chosen or not any(taken[i : i + n]):
                taken[i : i + n] = [True] * n
                chosen.add((i, n))
                out.append((i, i + n, entry.add))
        return sorted(out)

    def expand(self, question: str) -> str:
        """The Spanish words to add for the terms found in the question ("" when none)."""
        adds = [add for _i, _j, add in self.match_spans(question)]
        return " ".join(dict.fromkeys(adds))


class HybridRetriever:
    """Searches one open index. Thread-safe for reads."""

    def __init__(self, index: OpenIndex, embedder: Any, settings: RetrievalSettings, glossary: Glossary):
        self.index = index
        self.embedder = embedder
        self.settings = settings
        self.glossary = glossary
        self.chunks: list[Chunk] = index.chunks
        self._by_id = {c.id: i for i, c in enumerate(self.chunks)}
        self._bm25 = BM25Okapi([lexical_terms(c.text) or ["_"] for c in self.chunks]) if self.chunks else None

    def search(
        self,
        query: str,
        k: int | None = None,
        unit: str | None = None,
        section: str | None = None,
        mode: Mode = "hybrid",
        manual: str | Sequence[str] | None = None,
    ) -> list[Hit]:
        """The top-k hits for a question, best first, optionally filtered by manual (an id or several), unit
        and section."""
        manuals = None if manual is None else {manual} if isinstance(manual, str) else set(manual)
        k = self.settings.k if k is None else k
        if k < 1:
            raise ValueError("k must be at least 1.")
        expansion = self.glossary.expand(query)
        allowed = [
            i
            for i, c in enumerate(self.chunks)
            if (unit is None or c.unit == unit or c.parent == unit)
            and (section is None or c.section == section)
            and (manuals is None or c.manual_id in manuals)
        ]
        if not allowed:
            return []
        dense: dict[int, float] = {}
        lexical: dict[int, float] = {}
        n = min(len(allowed), max(self.settings.candidates, k))
        if mode in ("hybrid", "dense"):
            dense_query = f"{query} {expansion}".strip() if self.settings.expand_dense else query
            qvec = np.asarray(self.embedder.embed_query(dense_query), dtype=np.float32)
            if self.index.local and len(self.chunks) <= self.settings.exact_search_max_chunks:
                dense = self._exact(qvec, n, allowed)
            else:
                dense = self._dense(qvec, n, self._where(unit, section, manuals))
        if mode in ("hybrid", "bm25") and self._bm25 is not None:
            lexical = self._lexical(f"{query} {expansion}", allowed, n)
        if mode == "hybrid":
            missing = [i for i in lexical if i not in dense]
            if missing:
                # Lexical candidates outside the dense top-n get their cosine from the stored vectors.
                cosines = self.index.vectors[missing] @ qvec
                dense.update(zip(missing, cosines.tolist(), strict=True))
        ids = set(dense) | set(lexical)
        wd, wl = (
            (1.0, 0.0)
            if mode == "dense"
            else (0.0, 1.0)
            if mode == "bm25"
            else (self.settings.dense_weight, self.settings.lexical_weight)
        )
        scored = [
            Hit(
                chunk=self.chunks[i],
                score=wd * dense.get(i, 0.0) + wl * lexical.get(i, 0.0),
                dense=dense.get(i, 0.0),
                lexical=lexical.get(i, 0.0),
            )
            for i in ids
        ]
        scored.sort(key=lambda h: (-h.score, h.chunk.id))
        return scored[:k]

    def _where(
        self, unit: str | None, section: str | None, manuals: set[str] | None = None
    ) -> dict[str, Any] | None:
        clauses: list[dict[str, Any]] = []
        if manuals is not None:
            ids = sorted(manuals)
            clauses.append({"manual_id": ids[0]} if len(ids) == 1 else {"manual_id": {"$in": ids}})
        if unit is not None:
            clauses.append({"$or": [{"unit": unit}, {"parent": unit}]})
        if section is not None:
            clauses.append({"section": section})
        if not clauses:
            return None
        return clauses[0] if len(clauses) == 1 else {"$and": clauses}

    def _exact(self, qvec: np.ndarray, n: int, allowed: list[int]) -> dict[int, float]:
        """The ``n`` allowed chunks most similar to ``qvec`` (cosine: the stored vectors are normalised)."""
        cosines = self.index.vectors[allowed] @ qvec
        top = np.argsort(-cosines, kind="stable")[:n]
        return {allowed[j]: float(cosines[j]) for j in top.tolist()}

    def _dense(self, qvec: np.ndarray, n: int, where: dict[str, Any] | None) -> dict[int, float]:
        # Ids and distances only: the chunks' text and metadata are already in memory, and asking Chroma for
        # them again costs more than the search itself.
        result = self.index.collection.query(
            query_embeddings=qvec[None, :],
            n_results=n,
            where=where,
            include=["distances"],
        )
        distances = result["distances"][0] if result["distances"] else []
        out: dict[int, float] = {}
        for cid, distance in zip(result["ids"][0], distances, strict=True):
            i = self._by_id.get(cid)
            if i is not None:
                out[i] = 1.0 - float(distance)  # cosine space: distance = 1 - cosine
        return out

    def _lexical(self, query: str, allowed: list[int], n: int) -> dict[int, float]:
        terms = lexical_terms(query)
        if not terms or self._bm25 is None:
            return {}
        scores = self._bm25.get_scores(terms)
        subset = sorted(allowed, key=lambda i: -scores[i])[:n]
        best = max((scores[i] for i in subset), default=0.0)
        if best <= 0:
            return {}
        # A floor keeps a weak best match (one common word) from counting as a perfect lexical score.
        best = max(best, self.settings.lexical_floor)
        return {i: float(scores[i] / best) for i in subset if scores[i] > 0}


class ManualRetriever(BaseRetriever):
    """LangChain face of `HybridRetriever`, for LCEL chains: hits become Documents with their scores."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    retriever: HybridRetriever
    k: int = 5
    mode: Mode = "hybrid"

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[LCDocument]:
        return [hit_to_document(h) for h in self.retriever.search(query, k=self.k, mode=self.mode)]


def hit_to_document(hit: Hit) -> LCDocument:
    """A LangChain Document carrying a hit's chunk metadata and scores."""
    meta: dict[str, Any] = {
        **hit.chunk.metadata(),
        "score": hit.score,
        "dense": hit.dense,
        "lexical": hit.lexical,
    }
    return LCDocument(id=hit.chunk.id, page_content=hit.chunk.text, metadata=meta)


def document_to_hit(doc: LCDocument) -> Hit:
    """Inverse of `hit_to_document`."""
    meta = dict(doc.metadata)
    chunk = Chunk.from_store(str(doc.id), doc.page_content, meta)
    return Hit(
        chunk=chunk,
        score=float(meta.get("score", 0.0)),
        dense=float(meta.get("dense", 0.0)),
        lexical=float(meta.get("lexical", 0.0)),
    )
