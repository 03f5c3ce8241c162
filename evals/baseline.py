"""The LangChain-tutorial RAG pipeline every report compares us against.

Raw corpus text (site noise, running headers and all), `RecursiveCharacterTextSplitter(1000, 200)`, the same
embedding model as ours, an in-memory Chroma and the top 4 chunks. Its "answer" is those chunks joined, and it
never declines: that is what a team gets from the tutorial before doing any of the work in `assistant/`.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import chromadb
from chromadb.config import Settings as ChromaSettings
from langchain_chroma import Chroma
from langchain_core.embeddings import Embeddings
from langchain_text_splitters import RecursiveCharacterTextSplitter

from assistant.ingest import load_corpus
from evals.metrics import Response, Source

CHUNK_SIZE = 1000
CHUNK_OVERLAP = 200
TOP_K = 4


class BaselineRAG:
    """Tutorial RAG over the raw corpus files; `warm_up` splits and embeds them, `ask` retrieves."""

    def __init__(self, embedder: Embeddings, corpus_dir: str | Path, k: int = TOP_K) -> None:
        if k < 1:
            raise ValueError("k must be at least 1.")
        self.embedder = embedder
        self.corpus_dir = Path(corpus_dir)
        self.k = k
        self.n_chunks = 0
        self._store: Chroma | None = None

    def config(self) -> dict[str, object]:
        """What this run used, for OUT.json."""
        return {
            "name": "baseline",
            "pipeline": "raw text → RecursiveCharacterTextSplitter → Chroma (in memory) → top-k",
            "chunk_size": CHUNK_SIZE,
            "chunk_overlap": CHUNK_OVERLAP,
            "k": self.k,
            "n_chunks": self.n_chunks,
            "embedding_model": str(getattr(self.embedder, "name", type(self.embedder).__name__)),
            "corpus_dir": str(self.corpus_dir),
        }

    def warm_up(self) -> None:
        """Load, split and embed the corpus once."""
        if self._store is not None:
            return
        loaded = load_corpus(self.corpus_dir)
        if not loaded.documents:
            raise ValueError(f"The baseline found no readable corpus files in {self.corpus_dir}.")
        splitter = RecursiveCharacterTextSplitter(chunk_size=CHUNK_SIZE, chunk_overlap=CHUNK_OVERLAP)
        texts: list[str] = []
        metadatas: list[dict[str, str]] = []
        for doc in loaded.documents:
            for piece in splitter.split_text(doc.text):
                texts.append(piece)
                metadatas.append({"source": Path(doc.path).name})
        # A fresh in-memory client and a unique collection, so repeated runs in one process never mix.
        client = chromadb.EphemeralClient(
            settings=ChromaSettings(anonymized_telemetry=False, allow_reset=False)
        )
        store = Chroma(
            collection_name=f"baseline-{uuid.uuid4().hex[:12]}",
            embedding_function=self.embedder,
            client=client,
        )
        store.add_texts(texts, metadatas=metadatas)
        self.n_chunks = len(texts)
        self._store = store

    def ask(self, question: str) -> Response:
        """The top-k chunks as sources and, joined, as the answer; the baseline never declines."""
        self.warm_up()
        assert self._store is not None
        started = time.perf_counter()
        found = self._store.similarity_search_with_score(question, k=self.k)
        latency = (time.perf_counter() - started) * 1000
        # Chroma returns a distance: smaller is closer, so the score is reported as its negation.
        sources = [Source(text=doc.page_content, score=round(-float(dist), 4)) for doc, dist in found]
        return Response(
            answer="\n\n".join(s.text for s in sources),
            answered=True,
            citations=[],
            sources=sources,
            latency_ms=latency,
        )

    def close(self) -> None:
        """Drop the in-memory collection."""
        if self._store is not None:
            self._store.delete_collection()
            self._store = None
