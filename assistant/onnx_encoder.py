"""The question path of an exported model: a Rust tokenizer, ONNX Runtime and numpy, nothing heavier.

A short question through e5-small takes about 55 ms in torch and about 20 ms in ONNX Runtime, with the
same vectors. Serving needs only that forward pass plus what sentence-transformers would do around it
(prompt, tokenizer, truncation, pooling, normalisation), so :func:`load_pipeline` reads the same
configuration files that sentence-transformers reads from the model folder and runs the same steps itself.
Importing torch and sentence-transformers took about 10 s of a cold ``python -m assistant ask`` and
several hundred MB of every serving process; this module imports neither.

sentence-transformers stays the interface for building and exporting the model, for the torch backend and
for model folders whose modules this path does not reproduce (:mod:`assistant.onnx_st`);
``tests/test_embed.py`` checks that both paths give the same vectors.

The model folder keeps the standard layout for exported models: ``onnx/model.onnx`` beside the weights.
The offline build adds a reduced copy of the tokenizer (:func:`write_lean_tokenizer`): XLM-R's 250,000
pieces cover a hundred languages and their byte trie took about 1 s to load and 300 MB to hold; the
pieces written only in Latin script and common punctuation load in half the time and a third of the memory,
and give the same tokens for any text written in them. Other text is tokenized with the full vocabulary,
loaded the first time it is needed.

The build also writes ``onnx/model.lean.onnx`` (:func:`write_lean_graph`): the same graph without its first
node, the look-up of the word embeddings, whose 384 MB table stays in ``model.onnx_data``. ONNX Runtime
memory-maps that table, and this kernel maps page-cache pages of it 2 MB at a time, so every new word
made about 2 MB more resident (a serving process grew from 430 to 680 MB over its first 100 questions, on
its way to the whole table). Reading the few rows a question needs with ``pread`` (:class:`EmbeddingRows`)
keeps the table out of the process.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

ONNX_FILE = Path("onnx") / "model.onnx"
# modules.json names the transformer module by either path, depending on the sentence-transformers release.
TRANSFORMER_REFS = (
    "sentence_transformers.models.Transformer",
    "sentence_transformers.base.modules.transformer.Transformer",
    "sentence_transformers.base.modules.Transformer",
)


LEAN_DIR = "lean-tokenizer"
LEAN_GRAPH, LEAN_GRAPH_META = "model.lean.onnx", "model.lean.json"  # beside onnx/model.onnx
QUANTIZED_GRAPH = "model.lean.int8.onnx"
# The characters of the reduced tokenizer: Latin with its accents, IPA and modifier letters, combining marks,
# Latin Extended Additional, general punctuation, currency and letterlike symbols, and SentencePiece's ▁.
LEAN_RANGES = (
    (0x0000, 0x0370),
    (0x1E00, 0x1F00),
    (0x2000, 0x2070),
    (0x20A0, 0x20D0),
    (0x2100, 0x2150),
    (0x2581, 0x2582),
)
# Checked at build time: the reduced tokenizer must give the full one's tokens for these.
_LEAN_SAMPLES = (
    "query: ¿Quién dirige el Área de Ventas? Señalización «El Niño» – art. 5°, inciso “b”…",
    "passage: ii. Controlar los valúos y revalúos de los activos extraordinarios.",
    "query: Who handles customer complaints? naïve façade Œuvre ß Ø Ł ẞ ½ € ™ ﬁ ① Ⅻ",
    "<s> query: <mask> plain\ttabs\nand   spaces\u200b and\x00nul </s>",
)


def onnx_path(folder: str | Path) -> Path:
    """Where a model folder keeps its ONNX export."""
    return Path(folder) / ONNX_FILE


def available_cpus() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class EmbeddingRows:
    """Rows of the word-embedding table, read from the weights file on demand (``pread``; thread-safe)."""

    def __init__(self, path: Path, offset: int, rows: int, dim: int, feeds: str) -> None:
        if path.stat().st_size < offset + rows * dim * 4:
            raise ValueError(f"{path} is shorter than its word-embedding table")
        self.path, self.offset, self.rows, self.dim, self.feeds = path, offset, rows, dim, feeds
        self._fd = os.open(path, os.O_RDONLY)

    def __del__(self) -> None:
        with contextlib.suppress(AttributeError, OSError):
            os.close(self._fd)

    def lookup(self, ids: np.ndarray) -> np.ndarray:
        """float32 vectors of shape ``ids.shape + (dim,)``."""
        unique, inverse = np.unique(ids, return_inverse=True)
        if unique.size and (unique[0] < 0 or unique[-1] >= self.rows):
            raise ValueError(f"token id outside the vocabulary of {self.rows}")
        width = self.dim * 4
        table = np.empty((unique.size, self.dim), np.float32)
        for row, token in enumerate(unique.tolist()):
            table[row] = np.frombuffer(os.pread(self._fd, width, self.offset + token * width), np.float32)
        return table[inverse.reshape(ids.shape)]


class OnnxSession:
    """An ONNX Runtime session of a transformer that returns ``last_hidden_state`` for padded token ids.

    With ``embeddings``, the graph is the lean one and takes the looked-up word embeddings as an input.
    """

    def __init__(
        self,
        path: Path,
        threads: int | None = None,
        embeddings: EmbeddingRows | None = None,
        spin: bool = False,
    ) -> None:
        import onnxruntime as ort

        self.embeddings = embeddings

        options = ort.SessionOptions()
        # The export is saved already optimised at EXTENDED; ALL only adds layout changes for convolutions,
        # and redoing them took 0.1 s of every start for no faster pass.
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        options.intra_op_num_threads = max(1, min(threads or available_cpus(), available_cpus()))
        options.inter_op_num_threads = 1
        # Spinning pool threads wait for the next piece of work awake: a lone question's pass is ~20% faster
        # (6.7 against 8.5 ms on two cores), for ~15% more CPU per answer under load (same p95). Sleeping
        # threads leave idle cores to whatever else runs on the machine.
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.path = path

    def run(
        self,
        input_ids: np.ndarray,
        attention_mask: np.ndarray | None = None,
        token_type_ids: np.ndarray | None = None,
    ) -> np.ndarray:
        """``last_hidden_state`` for a padded batch of token ids; safe to call from several threads at once."""
        given = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
        feeds: dict[str, np.ndarray] = {}
        for name in self.input_names:
            if self.embeddings is not None and name == self.embeddings.feeds:
                feeds[name] = self.embeddings.lookup(input_ids)
                continue
            value = given.get(name)
            if value is None:
                value = np.ones_like(input_ids) if name == "attention_mask" else np.zeros_like(input_ids)
            feeds[name] = value.astype(np.int64, copy=False)
        (hidden,) = self.session.run(["last_hidden_state"], feeds)
        return np.asarray(hidden)


@dataclass(frozen=True)
class PipelineConfig:
    """What sentence-transformers would do around the network, read from a model folder."""

    prompts: dict[str, str]
    pooling: str  # "mean" or "cls"
    normalize: bool
    max_length: int
    dimension: int
    pad_token: str


def _configured(tokenizer: Any, max_length: int) -> Any:
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=max_length)
    return tokenizer


class TextTokenizer:
    """Token ids of one text with the model's own tokenizer: the reduced copy when it covers the text.

    Thread-safe: the tokenizers are configured once and only read afterwards; the full one is loaded under a
    lock the first time a text needs it.
    """

    def __init__(self, folder: str | Path, max_length: int) -> None:
        self.folder = Path(folder)
        self.max_length = max_length
        self._full: Any = None
        self._full_lock = threading.Lock()
        self.lean: Any = None
        self.lean_ids: np.ndarray | None = None
        self._outside: re.Pattern[str] | None = None
        lean = _read_json(self.folder / LEAN_DIR / "config.json")
        source = self.folder / "tokenizer.json"
        if isinstance(lean, dict) and lean.get("source_size") == source.stat().st_size:
            from tokenizers import Tokenizer

            self.lean = _configured(
                Tokenizer.from_file(str(self.folder / LEAN_DIR / "tokenizer.json")), max_length
            )
            self.lean_ids = np.load(self.folder / LEAN_DIR / "ids.npy")
            self._outside = _outside_pattern(lean["ranges"])
        else:
            self._load_full()

    def _load_full(self) -> Any:
        with self._full_lock:
            if self._full is None:
                from tokenizers import Tokenizer

                if self.lean is not None:
                    log.info(
                        "loading the full tokenizer of %s for text outside its Latin subset", self.folder
                    )
                self._full = _configured(
                    Tokenizer.from_file(str(self.folder / "tokenizer.json")), self.max_length
                )
        return self._full

    def token_to_id(self, token: str) -> int | None:
        """The model's id of a special token, or None."""
        if self.lean is not None and self.lean_ids is not None:
            found = self.lean.token_to_id(token)
            return None if found is None else int(self.lean_ids[found])
        found = self._full.token_to_id(token)
        return None if found is None else int(found)

    def covers(self, text: str) -> bool:
        """Whether the reduced tokenizer gives the full one's tokens for ``text``.

        It does when every character of the normalised text is in its subset: each candidate piece of the
        Viterbi lattice is a substring of that text, so every candidate the full vocabulary has, the subset
        has too, with the same score (and the lowest score, which prices unknown characters, is kept).
        """
        if self.lean is None or self._outside is None:
            return False
        normalizer = self.lean.normalizer
        return self._outside.search(normalizer.normalize_str(text) if normalizer else text) is None

    def ids(self, text: str) -> list[int]:
        """The model's token ids of ``text``, special tokens added and truncated to ``max_length``."""
        if self.covers(text):
            assert self.lean_ids is not None
            return list(self.lean_ids[self.lean.encode(text).ids].tolist())
        full = self._full if self._full is not None else self._load_full()
        return list(full.encode(text).ids)


def _outside_pattern(ranges: list[list[int]]) -> re.Pattern[str]:
    """A pattern that finds any character outside ``ranges`` (half-open code point intervals)."""
    inside = "".join(f"\\U{lo:08x}-\\U{hi - 1:08x}" for lo, hi in ranges)
    return re.compile(f"[^{inside}]")


class OnnxPipeline:
    """sentence-transformers' encode of an exported model: prompt, tokenizer, ONNX Runtime, pooling, norm.

    Thread-safe: the tokenizers are only read after loading, and ONNX Runtime sessions accept concurrent runs.
    """

    def __init__(
        self, tokenizer: TextTokenizer, session: OnnxSession, config: PipelineConfig, pad_id: int
    ) -> None:
        self.tokenizer = tokenizer
        self.session = session
        self.config = config
        self.pad_id = pad_id

    @property
    def prompts(self) -> dict[str, str]:
        """Prompt name → the text put before the input (e5: ``{"query": "query: ", ...}``)."""
        return self.config.prompts

    @property
    def dimension(self) -> int:
        """Length of every vector."""
        return self.config.dimension

    def encode(self, texts: list[str], prompt: str = "", batch_size: int = 8) -> np.ndarray:
        """float32 vectors, shape (n, dimension): texts of similar length are batched together."""
        if not texts:
            return np.zeros((0, self.dimension), np.float32)
        encodings = [self.tokenizer.ids(prompt + text) for text in texts]
        order = sorted(range(len(texts)), key=lambda i: -len(encodings[i]))
        out = np.empty((len(texts), self.dimension), np.float32)
        step = max(1, batch_size)
        for start in range(0, len(order), step):
            chunk = order[start : start + step]
            width = max(len(encodings[i]) for i in chunk)
            ids = np.full((len(chunk), width), self.pad_id, dtype=np.int64)
            mask = np.zeros((len(chunk), width), dtype=np.int64)
            for row, i in enumerate(chunk):
                n = len(encodings[i])
                ids[row, :n] = encodings[i]
                mask[row, :n] = 1
            out[chunk] = self._pool(self.session.run(ids, mask), mask)
        return out

    def _pool(self, hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
        if self.config.pooling == "cls":
            vectors = hidden[:, 0]
        else:
            weights = mask[..., None].astype(hidden.dtype)
            vectors = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        if self.config.normalize:
            vectors = vectors / np.clip(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12, None)
        return vectors


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None


def _pooling_mode(config: dict[str, Any]) -> str | None:
    """The pooling ("mean" or "cls") when it is the module's only one (either config format), else None."""
    if "pooling_mode" in config:
        mode = config["pooling_mode"]
        return mode if mode in ("mean", "cls") else None
    modes = [k for k, v in config.items() if k.startswith("pooling_mode_") and v]
    if len(modes) != 1:
        return None
    return {"pooling_mode_mean_tokens": "mean", "pooling_mode_cls_token": "cls"}.get(modes[0])


def read_pipeline_config(folder: str | Path) -> PipelineConfig | None:
    """The folder's sentence-transformers configuration, or None when this path cannot reproduce it.

    Reproduced: Transformer → Pooling (mean or CLS, prompt included) → optional Normalize, with a
    ``tokenizer.json``. Anything else (Dense layers, lower-casing, prompt-excluding pooling…) is None, and
    the model then runs through sentence-transformers.
    """
    folder = Path(folder)
    modules = _read_json(folder / "modules.json")
    if (
        not isinstance(modules, list)
        or not 2 <= len(modules) <= 3
        or not (folder / "tokenizer.json").is_file()
    ):
        return None
    types = [str(m.get("type", "")) for m in modules]
    paths = [str(m.get("path", "")) for m in modules]
    if types[0] not in TRANSFORMER_REFS or paths[0] not in ("", ".") or not types[1].endswith("Pooling"):
        return None
    if len(types) == 3 and not types[2].endswith("Normalize"):
        return None
    pooling_config = _read_json(folder / paths[1] / "config.json") or {}
    pooling = _pooling_mode(pooling_config)
    if pooling is None or not pooling_config.get("include_prompt", True):
        return None
    st_config = _read_json(folder / "sentence_bert_config.json") or {}
    if st_config.get("do_lower_case"):
        return None
    model_config = _read_json(folder / "config.json") or {}
    tokenizer_config = _read_json(folder / "tokenizer_config.json") or {}
    special = _read_json(folder / "special_tokens_map.json") or {}
    max_length = st_config.get("max_seq_length") or min(
        int(model_config.get("max_position_embeddings") or 512),
        int(tokenizer_config.get("model_max_length") or 512),
    )
    dimension = pooling_config.get("word_embedding_dimension") or model_config.get("hidden_size")
    pad = tokenizer_config.get("pad_token") or special.get("pad_token")
    if isinstance(pad, dict):  # an AddedToken written out in full
        pad = pad.get("content")
    if not dimension or not isinstance(pad, str):
        return None
    prompts = (_read_json(folder / "config_sentence_transformers.json") or {}).get("prompts") or {}
    return PipelineConfig(
        prompts={str(k): str(v) for k, v in prompts.items()},
        pooling=pooling,
        normalize=len(modules) == 3,
        max_length=int(max_length),
        dimension=int(dimension),
        pad_token=pad,
    )


def load_pipeline(folder: str | Path, threads: int | None = None, spin: bool = False) -> OnnxPipeline | None:
    """The lean encode path of ``folder``'s ONNX export, or None when its configuration needs sentence-transformers."""
    config = read_pipeline_config(folder)
    if config is None:
        return None
    tokenizer = TextTokenizer(folder, config.max_length)
    pad_id = tokenizer.token_to_id(config.pad_token)
    if pad_id is None:
        return None
    return OnnxPipeline(tokenizer, _session(Path(folder), threads, spin), config, pad_id)


def _session(folder: Path, threads: int | None, spin: bool = False) -> OnnxSession:
    """The lean graph with its embedding rows when the build wrote them (and ``pread`` exists), else model.onnx."""
    meta = _read_json(onnx_path(folder).parent / LEAN_GRAPH_META)
    if isinstance(meta, dict) and hasattr(os, "pread"):
        try:
            rows = EmbeddingRows(
                onnx_path(folder).parent / meta["file"],
                meta["offset"],
                meta["rows"],
                meta["dim"],
                meta["input"],
            )
        except (KeyError, OSError, ValueError) as exc:
            log.warning("not using the lean ONNX graph of %s (%s)", folder, exc)
        else:
            return OnnxSession(onnx_path(folder).parent / LEAN_GRAPH, threads, rows, spin)
    return OnnxSession(onnx_path(folder), threads, spin=spin)


def write_quantized_graph(folder: str | Path) -> Path:
    """Write the int8 copy of the lean graph (per-channel weights of every MatMul) and return its path."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    source = onnx_path(folder).parent / LEAN_GRAPH
    target = source.parent / QUANTIZED_GRAPH
    partial = target.with_suffix(f".{os.getpid()}.partial")
    try:
        quantize_dynamic(
            str(source),
            str(partial),
            weight_type=QuantType.QInt8,
            per_channel=True,
            op_types_to_quantize=["MatMul"],
            # The lean graph's first input comes from outside, so shape inference cannot type every weight.
            extra_options={"MatMulConstBOnly": True, "DefaultTensorType": onnx.TensorProto.FLOAT},
        )
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return target


def quantized_pipeline(
    pipeline: OnnxPipeline, folder: str | Path, threads: int | None = None, spin: bool = False
) -> OnnxPipeline | None:
    """``pipeline`` with the int8 graph (written on first use), or None without a lean graph to quantise."""
    if pipeline.session.embeddings is None:
        return None
    path = onnx_path(folder).parent / QUANTIZED_GRAPH
    if not path.is_file():
        write_quantized_graph(folder)
    session = OnnxSession(path, threads, pipeline.session.embeddings, spin)
    return OnnxPipeline(pipeline.tokenizer, session, pipeline.config, pipeline.pad_id)


def write_lean_graph(folder: str | Path) -> bool:
    """Write ``onnx/model.lean.onnx``: the export without its word-embedding look-up; False if not possible.

    The look-up must be the graph's Gather of ``input_ids`` from a float32 table kept in the external data
    file; the new graph takes that Gather's output as an input and keeps referring to the same data file
    for every other weight, so nothing is copied.
    """
    import onnx

    path = onnx_path(folder)
    model = onnx.load(str(path), load_external_data=False)
    graph = model.graph
    tables = {t.name: t for t in graph.initializer}
    node = next(
        (
            n
            for n in graph.node
            if n.op_type == "Gather"
            and list(n.input)[1:] == ["input_ids"]
            and n.input[0] in tables
            and all(a.name != "axis" or a.i == 0 for a in n.attribute)
        ),
        None,
    )
    if node is None:
        return False
    table = tables[node.input[0]]
    external = {e.key: e.value for e in table.external_data}
    if (
        table.data_location != onnx.TensorProto.EXTERNAL
        or table.data_type != onnx.TensorProto.FLOAT
        or len(table.dims) != 2
        or int(external.get("length", -1)) != table.dims[0] * table.dims[1] * 4
    ):
        return False
    rows, dim = (int(d) for d in table.dims)
    graph.node.remove(node)
    graph.initializer.remove(table)
    graph.input.append(
        onnx.helper.make_tensor_value_info(node.output[0], onnx.TensorProto.FLOAT, ["batch", "sequence", dim])
    )
    onnx.save_model(model, str(path.parent / LEAN_GRAPH))
    meta = {
        "input": node.output[0],
        "file": external["location"],
        "offset": int(external.get("offset", 0)),
        "rows": rows,
        "dim": dim,
    }
    (path.parent / LEAN_GRAPH_META).write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return True


def _remap_post_processor(processor: dict[str, Any], new_id: dict[int, int]) -> bool:
    """Renumber the special-token ids of a TemplateProcessing (or a Sequence of them); False if another kind."""
    kind = processor.get("type")
    if kind == "Sequence":
        return all(_remap_post_processor(p, new_id) for p in processor.get("processors", []))
    if kind == "ByteLevel":
        return True
    if kind != "TemplateProcessing":
        return False
    for token in processor.get("special_tokens", {}).values():
        token["ids"] = [new_id[i] for i in token["ids"]]
    return True


def write_lean_tokenizer(folder: str | Path) -> bool:
    """Write the reduced tokenizer of ``folder`` into ``folder/lean-tokenizer``; False if it cannot be made.

    Only a Unigram (SentencePiece) vocabulary is reduced. The kept pieces are those written only in
    ``LEAN_RANGES``, the special tokens and the lowest-scoring piece; ``ids.npy`` maps their new ids back to
    the model's. The result is checked against the full tokenizer before it is kept.
    """
    folder = Path(folder)
    source = folder / "tokenizer.json"
    data = json.loads(source.read_text(encoding="utf-8"))
    model = data.get("model") or {}
    if model.get("type") != "Unigram" or model.get("byte_fallback"):
        return False
    vocab = model["vocab"]
    outside = _outside_pattern([list(r) for r in LEAN_RANGES])
    keep = {i for i, (piece, _) in enumerate(vocab) if not outside.search(piece)}
    keep |= {int(t["id"]) for t in data.get("added_tokens", [])}
    keep |= {min(range(len(vocab)), key=lambda i: vocab[i][1])}
    if model.get("unk_id") is not None:
        keep.add(int(model["unk_id"]))
    order = sorted(keep)
    new_id = {old: new for new, old in enumerate(order)}
    model["vocab"] = [vocab[i] for i in order]
    if model.get("unk_id") is not None:
        model["unk_id"] = new_id[int(model["unk_id"])]
    for token in data.get("added_tokens", []):
        token["id"] = new_id[int(token["id"])]
    if data.get("post_processor") and not _remap_post_processor(data["post_processor"], new_id):
        return False
    data["padding"] = data["truncation"] = None
    target = folder / LEAN_DIR
    target.mkdir(exist_ok=True)
    (target / "tokenizer.json").write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    np.save(target / "ids.npy", np.asarray(order, dtype=np.int64))
    config = {
        "ranges": [list(r) for r in LEAN_RANGES],
        "pieces": len(order),
        "source_size": source.stat().st_size,
    }
    (target / "config.json").write_text(json.dumps(config) + "\n", encoding="utf-8")
    from tokenizers import Tokenizer

    reduced = TextTokenizer(folder, 512)
    full = _configured(Tokenizer.from_file(str(source)), 512)
    if not all(reduced.covers(t) and reduced.ids(t) == full.encode(t).ids for t in _LEAN_SAMPLES):
        for path in target.iterdir():
            path.unlink()
        target.rmdir()
        return False
    return True
