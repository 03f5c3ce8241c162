"""A deterministic stand-in for ``assistant.embed.Embedder``, for fast unit tests without a model."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Sequence

import numpy as np
from langchain_core.embeddings import Embeddings

_TOKEN = re.compile(r"\w+")


def _tokens(text: str) -> list[str]:
    """Lower-cased words with accents removed, so "Función" and "funcion" hash alike."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return _TOKEN.findall(plain)


class HashEmbedder(Embeddings):
    """Bag of SHA-256-hashed tokens: texts sharing words score high, and runs are reproducible."""

    name = "test/hash-embedder"
    dimension = 64

    def __init__(self, dimension: int = 64) -> None:
        self.dimension = dimension
        self.warm_ups = 0

    def warm_up(self) -> None:
        """Nothing to load; counted so tests can check that callers warm up once."""
        self.warm_ups += 1

    def _vector(self, text: str) -> np.ndarray:
        vector = np.zeros(self.dimension, np.float32)
        for token in _tokens(text):
            # SHA-256, not hash(): Python salts str hashes per process, which would break reproducibility.
            digest = hashlib.sha256(token.encode("utf-8")).digest()
            index = int.from_bytes(digest[:4], "little") % self.dimension
            vector[index] += 1.0 if digest[4] & 1 else -1.0
        norm = float(np.linalg.norm(vector))
        if norm == 0.0:
            # Text without words still gets a unit vector, as a real model would give one.
            vector[0] = 1.0
            return vector
        return vector / norm

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("HashEmbedder expects a list of strings; wrap a single text in a list.")
        if not all(isinstance(t, str) for t in texts):
            raise TypeError("HashEmbedder expects strings.")
        if not texts:
            return np.zeros((0, self.dimension), np.float32)
        return np.stack([self._vector(t) for t in texts]).astype(np.float32)

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        """Passage vectors, float32, shape (n, dimension), L2-normalised."""
        return self._encode(texts)

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Query vectors; identical to passages since there are no prompts to tell apart."""
        return self._encode(texts)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """LangChain interface: passage vectors as lists."""
        return self.encode_passages(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        """LangChain interface: one query vector as a list."""
        if not isinstance(text, str):
            raise TypeError(f"embed_query expects a string, got {type(text).__name__}.")
        return self.encode_queries([text])[0].tolist()
