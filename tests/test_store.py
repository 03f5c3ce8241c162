"""The embedded Chroma store: deterministic ids, incremental builds, the manifest, atomic swaps, refusals."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import chromadb
import numpy as np
import pytest

import assistant.store as store_module
from assistant.chunk import chunk_manual
from assistant.errors import IndexMismatchError, IndexMissingError
from assistant.models import Function, Manual, Unit
from assistant.settings import StoreSettings
from assistant.store import MANIFEST, ManualSource, Store
from tests.fakes import HashEmbedder


class CountingEmbedder(HashEmbedder):
    """A HashEmbedder that counts the passages it embeds and can fail after a number of batches."""

    def __init__(self, dimension: int = 64, fail_after_batches: int | None = None) -> None:
        super().__init__(dimension)
        self.embedded: list[str] = []
        self.batches = 0
        self.fail_after_batches = fail_after_batches

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        if self.fail_after_batches is not None and self.batches >= self.fail_after_batches:
            raise RuntimeError("simulated crash half-way through embedding")
        self.batches += 1
        self.embedded.extend(texts)
        return super().embed_documents(texts)


class OtherModelEmbedder(HashEmbedder):
    """Same vectors, another model name: an index built with it must not be served to HashEmbedder."""

    name = "test/another-model"


def _manual(manual_id: str, functions: list[str], unit: str = "Área de Prueba") -> Manual:
    return Manual(
        id=manual_id,
        source=f"corpus/{manual_id}.txt",
        code="900 0001",
        title=f"Manual {manual_id}",
        version=1,
        units=[
            Unit(name="Gerencia de Prueba", head="Gerente de Prueba", positions=["Gerente de Prueba"]),
            Unit(
                name=unit,
                parent="Gerencia de Prueba",
                head=f"Jefe {unit}",
                positions=[f"Jefe {unit}", "Asistente"],
                objective="Atender a los clientes de la Institución.",
                functions=[Function(numeral=f"{i}", text=t) for i, t in enumerate(functions, 1)],
            ),
        ],
    )


def _source(manual: Manual) -> ManualSource:
    digest = hashlib.sha256(manual.model_dump_json().encode("utf-8")).hexdigest()
    return ManualSource(
        manual_id=manual.id,
        source=manual.source,
        sha256=digest,
        chunks=chunk_manual(manual),
        structure=manual.model_dump(mode="json"),
    )


FUNCTIONS = [
    "Atender y solventar las quejas y denuncias de los clientes.",
    "Controlar los valúos y revalúos de los activos extraordinarios.",
    "Desarrollar investigaciones de mercado.",
]


def _store(tmp_path: Path) -> Store:
    return Store(StoreSettings(path=tmp_path / "index"))


def _stored_ids(store: Store, embedder: HashEmbedder) -> set[str]:
    return {c.id for c in store.open(embedder).chunks}


def _builds(store: Store) -> list[str]:
    return sorted(p.name for p in store.root.glob("build-*") if p.is_dir())


# --- idempotence and incremental updates


def test_indexing_the_same_manual_twice_gives_the_same_ids_and_embeds_nothing_the_second_time(tmp_path):
    store = _store(tmp_path)
    source = _source(_manual("mof-a", FUNCTIONS))
    first = CountingEmbedder()
    store.build([source], first)
    ids_first = _stored_ids(store, first)

    again = CountingEmbedder()
    manifest = store.build([_source(_manual("mof-a", FUNCTIONS))], again)

    assert ids_first == {c.id for c in source.chunks}
    assert _stored_ids(store, again) == ids_first
    assert len(first.embedded) == len(source.chunks)
    assert again.embedded == []
    assert manifest.chunks == len(ids_first)


def test_changed_manual_has_its_chunks_replaced(tmp_path):
    store = _store(tmp_path)
    old = _source(_manual("mof-a", FUNCTIONS))
    store.build([old], CountingEmbedder())

    changed = [*FUNCTIONS[:2], "Diseñar promociones y administrar los artículos promocionales."]
    new = _source(_manual("mof-a", changed))
    embedder = CountingEmbedder()
    store.build([new], embedder)

    ids = _stored_ids(store, embedder)
    gone = {c.id for c in old.chunks} - {c.id for c in new.chunks}
    added = {c.id for c in new.chunks} - {c.id for c in old.chunks}
    assert len(gone) == 1 and len(added) == 1
    assert not gone & ids
    assert added <= ids
    assert ids == {c.id for c in new.chunks}
    # Only the changed line was embedded again; the others were reused from the previous build.
    assert embedder.embedded == [c.text for c in new.chunks if c.id in added]
    texts = [c.text for c in store.open(embedder).chunks]
    assert not any("investigaciones de mercado" in t for t in texts)
    assert any("artículos promocionales" in t for t in texts)


def test_removed_manual_has_its_chunks_deleted(tmp_path):
    store = _store(tmp_path)
    a = _source(_manual("mof-a", FUNCTIONS))
    b = _source(_manual("mof-b", ["Formalizar créditos hipotecarios."], unit="Agencias"))
    store.build([a, b], CountingEmbedder())
    assert {c.manual_id for c in store.open(HashEmbedder()).chunks} == {"mof-a", "mof-b"}

    manifest = store.build([a], CountingEmbedder())

    index = store.open(HashEmbedder())
    assert {c.manual_id for c in index.chunks} == {"mof-a"}
    assert {c.id for c in index.chunks} == {c.id for c in a.chunks}
    assert set(manifest.manuals) == {"mof-a"}


def test_rebuild_re_embeds_everything(tmp_path):
    store = _store(tmp_path)
    source = _source(_manual("mof-a", FUNCTIONS))
    store.build([source], CountingEmbedder())

    embedder = CountingEmbedder()
    store.build([source], embedder, rebuild=True)

    assert sorted(embedder.embedded) == sorted(c.text for c in source.chunks)
    assert _stored_ids(store, embedder) == {c.id for c in source.chunks}


def test_progress_reports_the_embedded_count(tmp_path):
    store = _store(tmp_path)
    source = _source(_manual("mof-a", FUNCTIONS))
    calls: list[tuple[int, int]] = []
    store.build([source], CountingEmbedder(), progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (len(source.chunks), len(source.chunks))

    calls.clear()
    store.build([source], CountingEmbedder(), progress=lambda done, total: calls.append((done, total)))
    assert calls == [(0, 0)]


# --- the manifest


def test_manifest_records_model_dimension_chromadb_version_and_manual_hashes(tmp_path):
    store = _store(tmp_path)
    a = _source(_manual("mof-a", FUNCTIONS))
    b = _source(_manual("mof-b", ["Formalizar créditos hipotecarios."], unit="Agencias"))
    manifest = store.build([a, b], HashEmbedder(dimension=48))

    on_disk = json.loads((store.root / MANIFEST).read_text(encoding="utf-8"))
    assert on_disk["model"] == HashEmbedder.name
    assert on_disk["dimension"] == 48
    assert on_disk["chromadb"] == chromadb.__version__
    assert on_disk["build"] == manifest.build and (store.root / manifest.build).is_dir()
    assert {k: v["sha256"] for k, v in on_disk["manuals"].items()} == {"mof-a": a.sha256, "mof-b": b.sha256}
    assert {k: v["source"] for k, v in on_disk["manuals"].items()} == {"mof-a": a.source, "mof-b": b.source}
    assert on_disk["chunks"] == len(a.chunks) + len(b.chunks)
    # The parsed structure travels with the index, so answers match what was indexed.
    assert on_disk["manuals"]["mof-a"]["structure"]["units"][1]["name"] == "Área de Prueba"


def test_index_built_with_another_dimension_is_refused_naming_the_fix(tmp_path):
    store = _store(tmp_path)
    store.build([_source(_manual("mof-a", FUNCTIONS))], HashEmbedder(dimension=64))

    with pytest.raises(IndexMismatchError) as err:
        store.open(HashEmbedder(dimension=32))

    message = str(err.value)
    assert "dimension 64" in message and "32" in message
    assert "--rebuild" in message and "make index" in message


def test_index_built_with_another_model_is_refused_naming_the_fix(tmp_path):
    store = _store(tmp_path)
    store.build([_source(_manual("mof-a", FUNCTIONS))], OtherModelEmbedder())

    with pytest.raises(IndexMismatchError, match="test/another-model") as err:
        store.open(HashEmbedder())

    assert "--rebuild" in str(err.value)


def test_index_built_with_another_chromadb_is_refused(tmp_path):
    store = _store(tmp_path)
    store.build([_source(_manual("mof-a", FUNCTIONS))], HashEmbedder())
    path = store.root / MANIFEST
    data = json.loads(path.read_text(encoding="utf-8"))
    data["chromadb"] = "0.4.0"
    path.write_text(json.dumps(data), encoding="utf-8")

    with pytest.raises(IndexMismatchError, match=r"chromadb 0\.4\.0"):
        store.open(HashEmbedder())


def test_build_with_another_model_starts_afresh_instead_of_mixing_vectors(tmp_path):
    store = _store(tmp_path)
    source = _source(_manual("mof-a", FUNCTIONS))
    store.build([source], OtherModelEmbedder())

    embedder = CountingEmbedder()
    manifest = store.build([source], embedder)

    assert manifest.model == HashEmbedder.name
    assert len(embedder.embedded) == len(source.chunks)
    assert _stored_ids(store, embedder) == {c.id for c in source.chunks}


def test_missing_index_says_to_run_make_index(tmp_path):
    with pytest.raises(IndexMissingError, match="make index"):
        _store(tmp_path).open(HashEmbedder())


@pytest.mark.parametrize(
    "garbage",
    [b"this is not json {", b"", b"[1, 2, 3]", b"null", b'{"build": "build-x"}', b"\xff\xfe\x00\x81garbage"],
    ids=["text", "empty", "list", "null", "missing-keys", "binary"],
)
def test_corrupted_manifest_is_reported_as_a_missing_index(tmp_path, garbage):
    store = _store(tmp_path)
    store.build([_source(_manual("mof-a", FUNCTIONS))], HashEmbedder())
    (store.root / MANIFEST).write_bytes(garbage)

    with pytest.raises(IndexMissingError, match="make index"):
        store.open(HashEmbedder())


def test_corrupted_manifest_does_not_stop_a_fresh_build(tmp_path):
    store = _store(tmp_path)
    store.build([_source(_manual("mof-a", FUNCTIONS))], HashEmbedder())
    (store.root / MANIFEST).write_bytes(b"\x00\x01 not a manifest")

    source = _source(_manual("mof-a", FUNCTIONS))
    store.build([source], HashEmbedder())

    assert _stored_ids(store, HashEmbedder()) == {c.id for c in source.chunks}


def test_deleted_build_folder_is_reported_as_a_missing_index(tmp_path):
    store = _store(tmp_path)
    manifest = store.build([_source(_manual("mof-a", FUNCTIONS))], HashEmbedder())
    import shutil

    shutil.rmtree(store.root / manifest.build)

    with pytest.raises(IndexMissingError, match="make index"):
        store.open(HashEmbedder())


# --- atomic swap and pruning


def test_build_killed_half_way_leaves_the_previous_index_served(tmp_path, monkeypatch):
    store = _store(tmp_path)
    old = _source(_manual("mof-a", FUNCTIONS))
    live = store.build([old], HashEmbedder())
    manifest_bytes = (store.root / MANIFEST).read_bytes()

    monkeypatch.setattr(store_module, "_BATCH", 2)
    many = [f"Función nueva número {i} sobre créditos hipotecarios." for i in range(10)]
    crashing = CountingEmbedder(fail_after_batches=1)
    with pytest.raises(RuntimeError, match="half-way"):
        store.build([_source(_manual("mof-a", many))], crashing)
    assert crashing.batches == 1  # the crash came after some vectors were already written

    assert (store.root / MANIFEST).read_bytes() == manifest_bytes
    index = store.open(HashEmbedder())
    assert index.manifest.build == live.build
    assert {c.id for c in index.chunks} == {c.id for c in old.chunks}
    hits = index.vectorstore.similarity_search("quejas y denuncias de los clientes", k=1)
    assert "quejas y denuncias" in hits[0].page_content

    # The next build works (the lock was released) and clears the half-written folder away.
    store.build([_source(_manual("mof-a", many))], HashEmbedder())
    assert len(_builds(store)) == 2


def test_old_builds_are_pruned_to_the_live_one_and_the_one_before(tmp_path):
    store = _store(tmp_path)
    built = []
    for n in range(4):
        manifest = store.build(
            [_source(_manual("mof-a", [*FUNCTIONS, f"Función extra {n}."]))], HashEmbedder()
        )
        built.append(manifest.build)

    assert len(set(built)) == 4
    assert _builds(store) == sorted(built[-2:])
    assert json.loads((store.root / MANIFEST).read_text(encoding="utf-8"))["build"] == built[-1]


def test_store_uses_cosine_distance(tmp_path):
    store = _store(tmp_path)
    source = _source(_manual("mof-a", FUNCTIONS))
    embedder = HashEmbedder()
    store.build([source], embedder)
    collection = store.open(embedder).vectorstore._collection
    target = next(c for c in source.chunks if "valúos" in c.text)
    vector = np.asarray(embedder.embed_documents([target.text])[0]) * 3.0  # a longer vector, same direction

    result = collection.query(query_embeddings=[vector.tolist()], n_results=2, include=["distances"])

    assert result["ids"][0][0] == target.id
    assert result["distances"][0][0] == pytest.approx(0.0, abs=1e-4)
    assert result["distances"][0][1] > 0.05


def test_a_chroma_server_that_never_answers_is_reported_within_the_timeout(tmp_path):
    """A port that accepts connections and then stays silent: the question must not hang."""
    import socket
    import time

    from assistant.errors import StoreUnavailableError

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel completes the handshakes; nothing ever reads or replies
        port = silent.getsockname()[1]
        settings = StoreSettings(mode="server", host="127.0.0.1", port=port, timeout_s=1.0)
        started = time.monotonic()
        with pytest.raises(StoreUnavailableError, match="cannot be reached"):
            Store(settings).open(HashEmbedder())
        assert time.monotonic() - started < 10
