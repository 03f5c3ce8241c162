"""Store stage: the Chroma vector store (embedded folder or server), its manifest and atomic rebuilds.

Layout of the embedded store::

    index/manifest.json          the live manifest; it names the build folder in use
    index/build-<stamp>/         a Chroma PersistentClient folder (cosine space)

A build is written beside the live one and only then does `manifest.json` switch to it (``os.replace``),
so a running app never reads a half-built index. In server mode each build is its own collection and the
manifest lives in the metadata of a small pointer collection.

Thread-safety: reads are safe from many threads; builds must not run concurrently (a lock file guards them).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import logging
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import chromadb
import httpx
import numpy as np
from chromadb.config import Settings as ChromaSettings
from langchain_chroma import Chroma
from langchain_core.embeddings import Embeddings

from assistant.errors import IndexMismatchError, IndexMissingError, IngestError, StoreUnavailableError
from assistant.models import Chunk
from assistant.settings import StoreSettings

log = logging.getLogger(__name__)

# 2: chunks carry their manual's code and gerencia (several manuals in one index).
SCHEMA = 2
MANIFEST = "manifest.json"
_BATCH = 64


@dataclass
class Manifest:
    """What an index was built from and with; a mismatch with the running settings refuses to serve."""

    build: str
    collection: str
    model: str
    dimension: int
    chromadb: str
    created_at: str
    chunks: int
    manuals: dict[str, dict[str, Any]] = field(default_factory=dict)
    schema: int = SCHEMA

    def to_json(self) -> str:
        """Serialise as pretty JSON."""
        return json.dumps(asdict(self), ensure_ascii=False, indent=2, sort_keys=True)

    def editions(self) -> dict[str, dict[str, Any]]:
        """Per manual id: its code, version number and effective date (ISO). Manifests written before these
        were recorded are read from the stored structure instead."""
        out = {}
        for manual_id, entry in self.manuals.items():
            structure = entry.get("structure") or {}
            out[manual_id] = {
                key: entry[key] if key in entry else structure.get(key, default)
                for key, default in (("code", ""), ("version", None), ("effective_date", None))
            }
        return out

    @classmethod
    def from_json(cls, text: str | bytes) -> Manifest:
        """Parse, raising `IndexMissingError` for anything unreadable."""
        try:
            data = json.loads(text)
            return cls(**data)
        # ValueError covers bad JSON and bytes that are not UTF-8; TypeError a non-object or missing keys.
        except (ValueError, TypeError) as exc:
            raise IndexMissingError(
                "The index manifest is unreadable (corrupted?); run `make index` to rebuild the index."
            ) from exc


@dataclass
class ManualSource:
    """One manual to index: its id, where it came from, its content hash and its chunks."""

    manual_id: str
    source: str
    sha256: str
    chunks: list[Chunk]
    # The parsed manual, stored with the index so that answers always match what was indexed.
    structure: dict[str, Any] | None = None
    # Which version of which manual this is (several versions of one code are indexed side by side).
    code: str = ""
    version: int | None = None
    effective_date: str | None = None  # ISO date


@dataclass
class OpenIndex:
    """A served index: the LangChain vector store over the live build, and every chunk it holds with its
    stored vector (row i of ``vectors`` belongs to ``chunks[i]``)."""

    manifest: Manifest
    vectorstore: Chroma
    chunks: list[Chunk]
    vectors: np.ndarray
    # False for a Chroma server: the searches then go to the server, which holds the data (and whose
    # outage the user is told about), never to the vectors read at open.
    local: bool = True

    @property
    def collection(self) -> chromadb.Collection:
        """The Chroma collection itself, for queries that need only ids and distances."""
        return self.vectorstore._collection


ProgressFn = Callable[[int, int], None]


def _chroma_settings() -> ChromaSettings:
    return ChromaSettings(anonymized_telemetry=False, allow_reset=False)


def _bound_requests(client: chromadb.ClientAPI, timeout_s: float) -> None:
    """Make every request of a Chroma HTTP client give up after ``timeout_s``.

    chromadb's HttpClient builds its httpx session with no timeout at all, so a server that accepts the
    connection and never answers would hang a question forever; the session is reached through the client.
    """
    session = getattr(getattr(client, "_server", None), "_session", None)
    if session is None:
        log.warning("chromadb's HTTP session was not found; server requests are not time-bounded")
        return
    session.timeout = httpx.Timeout(timeout_s)


class Store:
    """The index on disk or on a Chroma server."""

    def __init__(self, settings: StoreSettings) -> None:
        self.settings = settings
        self.root = Path(settings.path)

    # --- clients ---------------------------------------------------------------------------------------

    def _client(self, build: str | None = None) -> chromadb.ClientAPI:
        if self.settings.mode == "server":
            try:
                # chromadb's client talks to the server while it is constructed, without a time limit.
                url = f"http://{self.settings.host}:{self.settings.port}/api/v2/heartbeat"
                httpx.get(url, timeout=self.settings.timeout_s).raise_for_status()
                client = chromadb.HttpClient(
                    host=self.settings.host, port=self.settings.port, settings=_chroma_settings()
                )
                _bound_requests(client, self.settings.timeout_s)
            except Exception as exc:
                raise StoreUnavailableError(
                    f"The Chroma server at {self.settings.host}:{self.settings.port} cannot be reached; "
                    "start it (`chroma run`) or set ASSISTANT_STORE__MODE=embedded."
                ) from exc
            return client
        assert build is not None
        return chromadb.PersistentClient(path=str(self.root / build), settings=_chroma_settings())

    def _collection_name(self, build: str) -> str:
        if self.settings.mode == "server":
            return f"{self.settings.collection}-{build}"
        return self.settings.collection

    def _pointer_name(self) -> str:
        return f"{self.settings.collection}-manifest"

    def _vectorstore(self, build: str, embedder: Embeddings, create: bool) -> Chroma:
        return Chroma(
            collection_name=self._collection_name(build),
            client=self._client(build),
            embedding_function=embedder,
            collection_configuration={"hnsw": {"space": "cosine"}},
            create_collection_if_not_exists=create,
        )

    # --- manifest --------------------------------------------------------------------------------------

    def read_manifest(self) -> Manifest | None:
        """The live manifest, or None when nothing was built yet."""
        if self.settings.mode == "server":
            client = self._client()
            try:
                pointer = client.get_collection(self._pointer_name())
            except Exception:
                return None
            text = (pointer.metadata or {}).get("manifest")
            return Manifest.from_json(str(text)) if text else None
        path = self.root / MANIFEST
        if not path.exists():
            return None
        return Manifest.from_json(path.read_bytes())

    def _write_manifest(self, manifest: Manifest) -> None:
        if self.settings.mode == "server":
            client = self._client()
            pointer = client.get_or_create_collection(self._pointer_name())
            pointer.modify(metadata={"manifest": manifest.to_json()})
            return
        (self.root / manifest.build / MANIFEST).write_text(manifest.to_json(), encoding="utf-8")
        tmp = self.root / f".{MANIFEST}.{uuid.uuid4().hex}"
        tmp.write_text(manifest.to_json(), encoding="utf-8")
        os.replace(tmp, self.root / MANIFEST)  # the atomic switch to the new build

    @contextlib.contextmanager
    def _build_lock(self) -> Iterator[None]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".build.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # --- build -----------------------------------------------------------------------------------------

    def build(
        self,
        manuals: list[ManualSource],
        embedder: Any,
        rebuild: bool = False,
        progress: ProgressFn | None = None,
    ) -> Manifest:
        """Write the manuals' chunks into a new build, reusing unchanged vectors, then switch to it."""
        if not any(m.chunks for m in manuals):
            # An emptied or unreadable corpus must not replace a working index with one that answers nothing.
            raise IngestError(
                "No readable manual was found in the corpus, so nothing was indexed and the current index "
                "was kept; put the manuals in the corpus folder and run `make index` again."
            )
        with self._build_lock():
            old = None
            with contextlib.suppress(IndexMissingError):
                old = self.read_manifest()
            compatible = (
                old is not None
                and not rebuild
                and old.model == embedder.name
                and old.dimension == embedder.dimension
                and old.chromadb == chromadb.__version__
                and old.schema == SCHEMA
            )
            build = "build-" + dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:6]
            if compatible and old is not None:
                self._copy_build(old.build, build, embedder)
            vs = self._vectorstore(build, embedder, create=True)
            collection = vs._collection
            wanted = {m.manual_id for m in manuals}
            # Manuals no longer in the corpus lose their chunks.
            if compatible and old is not None:
                for gone in set(old.manuals) - wanted:
                    collection.delete(where={"manual_id": gone})
            todo: list[Chunk] = []
            for m in manuals:
                existing = set(collection.get(where={"manual_id": m.manual_id}, include=[])["ids"])
                fresh = {c.id for c in m.chunks}
                stale = sorted(existing - fresh)
                if stale:
                    collection.delete(ids=stale)
                todo.extend(c for c in m.chunks if c.id not in existing)
            unique: dict[str, Chunk] = {c.id: c for c in todo}
            pending = list(unique.values())
            for start in range(0, len(pending), _BATCH):
                batch = pending[start : start + _BATCH]
                vectors = embedder.embed_documents([c.text for c in batch])
                collection.upsert(
                    ids=[c.id for c in batch],
                    embeddings=vectors,
                    documents=[c.text for c in batch],
                    metadatas=[c.metadata() for c in batch],
                )
                if progress:
                    progress(min(start + _BATCH, len(pending)), len(pending))
            if progress and not pending:
                progress(0, 0)
            manifest = Manifest(
                build=build,
                collection=self._collection_name(build),
                model=embedder.name,
                dimension=embedder.dimension,
                chromadb=chromadb.__version__,
                created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                chunks=collection.count(),
                manuals={
                    m.manual_id: {
                        "source": m.source,
                        "sha256": m.sha256,
                        "chunks": len(m.chunks),
                        "structure": m.structure,
                        "code": m.code,
                        "version": m.version,
                        "effective_date": m.effective_date,
                    }
                    for m in manuals
                },
            )
            self._write_manifest(manifest)
            self._prune(keep={build, old.build if old else build})
            log.info("index %s: %d chunks, %d embedded now", build, manifest.chunks, len(pending))
            return manifest

    def _copy_build(self, old_build: str, new_build: str, embedder: Any) -> None:
        if self.settings.mode == "server":
            source = self._client().get_collection(self._collection_name(old_build))
            data = source.get(include=["embeddings", "documents", "metadatas"])
            target = self._vectorstore(new_build, embedder, create=True)._collection
            if data["ids"]:
                target.upsert(
                    ids=data["ids"], embeddings=data["embeddings"], documents=data["documents"],
                    metadatas=data["metadatas"],
                )  # fmt: skip
            return
        src = self.root / old_build
        if src.is_dir():
            shutil.copytree(src, self.root / new_build)

    def _prune(self, keep: set[str]) -> None:
        """Drop builds other than the live one and the one before it (a reader may still hold it)."""
        if self.settings.mode == "server":
            client = self._client()
            prefix = f"{self.settings.collection}-build-"
            for col in client.list_collections():
                name = col if isinstance(col, str) else col.name
                if name.startswith(prefix) and name[len(self.settings.collection) + 1 :] not in keep:
                    client.delete_collection(name)
            return
        for path in self.root.glob("build-*"):
            if path.is_dir() and path.name not in keep:
                shutil.rmtree(path, ignore_errors=True)

    # --- serve -----------------------------------------------------------------------------------------

    def open(self, embedder: Any) -> OpenIndex:
        """Open the live build for queries, refusing an index made with another model or chromadb."""
        manifest = self.read_manifest()
        server = self.settings.mode == "server"
        where = f"{self.settings.host}:{self.settings.port}" if server else str(self.root)
        if manifest is None:
            raise IndexMissingError(f"No index found at {where}; run `make index` to build it.")
        check_compatible(manifest, embedder.name, embedder.dimension)
        if self.settings.mode == "embedded" and not (self.root / manifest.build).is_dir():
            raise IndexMissingError(
                f"The index build {manifest.build} is missing from {where}; run `make index` to rebuild it."
            )
        try:
            vs = self._vectorstore(manifest.build, embedder, create=False)
            data = vs._collection.get(include=["documents", "metadatas", "embeddings"])
        except StoreUnavailableError:
            raise
        except Exception as exc:
            raise IndexMissingError(
                f"The index at {where} cannot be read ({type(exc).__name__}); run `make index` to rebuild it."
            ) from exc
        chunks = [
            Chunk.from_store(cid, doc or "", dict(meta or {}))
            for cid, doc, meta in zip(
                data["ids"], data["documents"] or [], data["metadatas"] or [], strict=False
            )
        ]
        if len(chunks) != manifest.chunks:
            raise IndexMissingError(
                f"The index at {where} holds {len(chunks)} chunks but its manifest says {manifest.chunks}; "
                "run `make index` to rebuild it."
            )
        vectors = np.asarray(data["embeddings"] if data["embeddings"] is not None else [], dtype=np.float32)
        return OpenIndex(
            manifest=manifest,
            vectorstore=vs,
            chunks=chunks,
            vectors=vectors.reshape(len(chunks), -1),
            local=self.settings.mode == "embedded",
        )


def check_compatible(manifest: Manifest, model: str, dimension: int) -> None:
    """Raise `IndexMismatchError` (one sentence naming the fix) unless the index fits these settings."""
    problems = []
    if manifest.model != model:
        problems.append(f"model {manifest.model!r} (settings ask for {model!r})")
    if manifest.dimension != dimension:
        problems.append(f"dimension {manifest.dimension} (the model gives {dimension})")
    if manifest.chromadb != chromadb.__version__:
        problems.append(f"chromadb {manifest.chromadb} (installed: {chromadb.__version__})")
    if manifest.schema != SCHEMA:
        problems.append(f"schema {manifest.schema} (expected {SCHEMA})")
    if problems:
        raise IndexMismatchError(
            "The index was built with "
            + ", ".join(problems)
            + "; run `python -m assistant index --rebuild` (or `make index`) to rebuild it."
        )
