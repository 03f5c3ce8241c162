"""Server mode against a real `chroma run` process: index, query, lose the server, get it back."""

from __future__ import annotations

import time
from pathlib import Path

import chromadb
import pytest

from assistant.chunk import chunk_manual
from assistant.errors import IndexMissingError, StoreUnavailableError
from assistant.models import Function, Manual, Unit
from assistant.settings import StoreSettings
from assistant.store import ManualSource, Store
from tests.fakes import HashEmbedder
from tests.net import ChromaServer

pytestmark = pytest.mark.server


def _settings(server: ChromaServer, collection: str = "mof") -> StoreSettings:
    # The local path only holds the build lock in server mode; keep it out of the repository.
    return StoreSettings(
        mode="server",
        host="127.0.0.1",
        port=server.port,
        collection=collection,
        path=server.path.parent / "local-index",
    )


def _source(functions: list[str]) -> ManualSource:
    manual = Manual(
        id="mof-server",
        source="corpus/mof-server.txt",
        units=[
            Unit(name="Gerencia de Prueba", head="Gerente de Prueba", positions=["Gerente de Prueba"]),
            Unit(
                name="Área de Activos Extraordinarios",
                parent="Gerencia de Prueba",
                head="Jefe Área de Activos Extraordinarios",
                positions=["Jefe Área de Activos Extraordinarios"],
                functions=[Function(numeral=str(i), text=t) for i, t in enumerate(functions, 1)],
            ),
        ],
    )
    return ManualSource(
        manual_id=manual.id,
        source=manual.source,
        sha256="1" * 64,
        chunks=chunk_manual(manual),
        structure=manual.model_dump(mode="json"),
    )


FUNCTIONS = [
    "Controlar los valúos y revalúos de los activos extraordinarios.",
    "Administrar el inventario de activos extraordinarios del Fondo.",
]


class CountingEmbedder(HashEmbedder):
    def __init__(self) -> None:
        super().__init__()
        self.embedded = 0

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.embedded += len(texts)
        return super().embed_documents(texts)


def test_index_is_built_opened_and_queried_through_the_server(chroma_server):
    store = Store(_settings(chroma_server))
    source = _source(FUNCTIONS)
    manifest = store.build([source], HashEmbedder())

    index = store.open(HashEmbedder())

    assert index.manifest.build == manifest.build
    assert manifest.collection == f"mof-{manifest.build}"
    assert {c.id for c in index.chunks} == {c.id for c in source.chunks}
    docs = index.vectorstore.similarity_search_with_score(
        "valúos y revalúos de los activos extraordinarios", k=1
    )
    assert "valúos y revalúos" in docs[0][0].page_content
    assert docs[0][0].metadata["numeral"] == "1"
    # The manifest and vectors live on the server, not in a local folder.
    local = Path(store.settings.path)
    assert not (local / "manifest.json").exists() and not list(local.glob("build-*"))


def test_server_builds_are_incremental_and_pruned(chroma_server):
    store = Store(_settings(chroma_server))
    store.build([_source(FUNCTIONS)], CountingEmbedder())
    again = CountingEmbedder()
    second = store.build([_source(FUNCTIONS)], again)
    changed = CountingEmbedder()
    third = store.build([_source([*FUNCTIONS[:1], "Mantener actualizada la información."])], changed)

    assert again.embedded == 0
    assert changed.embedded == 1
    client = chromadb.HttpClient(host="127.0.0.1", port=chroma_server.port)
    names = sorted(c if isinstance(c, str) else c.name for c in client.list_collections())
    assert names == sorted(["mof-manifest", f"mof-{second.build}", f"mof-{third.build}"])
    texts = [c.text for c in store.open(HashEmbedder()).chunks]
    assert any("Mantener actualizada" in t for t in texts)
    assert not any("Administrar el inventario" in t for t in texts)


def test_empty_server_says_to_run_make_index(chroma_server):
    with pytest.raises(IndexMissingError, match="make index"):
        Store(_settings(chroma_server, collection="nothing-here")).open(HashEmbedder())


def test_stopped_server_is_reported_and_a_restarted_one_serves_the_index_again(chroma_server):
    store = Store(_settings(chroma_server))
    source = _source(FUNCTIONS)
    store.build([source], HashEmbedder())

    chroma_server.stop()
    started = time.monotonic()
    with pytest.raises(StoreUnavailableError) as err:
        store.open(HashEmbedder())
    assert time.monotonic() - started < 30
    message = str(err.value)
    assert f"127.0.0.1:{chroma_server.port}" in message
    assert "chroma run" in message and "ASSISTANT_STORE__MODE=embedded" in message

    chroma_server.start()  # same data folder and port
    index = Store(_settings(chroma_server)).open(HashEmbedder())

    assert {c.id for c in index.chunks} == {c.id for c in source.chunks}
    docs = index.vectorstore.similarity_search("valúos y revalúos", k=1)
    assert "valúos y revalúos" in docs[0].page_content


def test_building_against_a_stopped_server_fails_clearly(chroma_server):
    chroma_server.stop()

    with pytest.raises(StoreUnavailableError, match="cannot be reached"):
        Store(_settings(chroma_server)).build([_source(FUNCTIONS)], HashEmbedder())
