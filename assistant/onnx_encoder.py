"""ONNX Runtime inside sentence-transformers: the transformer forward pass without torch's per-op overhead.

A short question through e5-small takes about 55 ms in torch on these machines and about 20 ms in ONNX
Runtime, with the same vectors (cosine 1.0000). sentence-transformers' own ``backend="onnx"`` loads
through ``optimum-onnx``, whose only release requires transformers < 4.58, while sentence-transformers 6
requires transformers 5; so the one module that runs the network is ours and everything else (tokenizer,
e5 prompts, mean pooling, normalisation) is sentence-transformers' loaded configuration. The module class
is swapped in with ``SentenceTransformer._load_with_module_classes`` (6.2+, pinned below 7 in pyproject);
``tests/test_embed.py`` checks that the loaded model really runs :class:`OnnxEncoder`. At run time
:class:`OnnxPipeline` applies that configuration without sentence-transformers' per-call Python.

The model folder keeps the standard layout for exported models: ``onnx/model.onnx`` beside the weights.
:func:`export_onnx` writes it for the offline build; hub models that ship one are used as they are.

Importing this module imports torch and sentence-transformers; :mod:`assistant.embed` does so lazily.
"""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import Transformer
from transformers.modeling_outputs import BaseModelOutput

ONNX_FILE = Path("onnx") / "model.onnx"
# modules.json names the transformer module by either path, depending on the sentence-transformers release.
_TRANSFORMER_REFS = (
    "sentence_transformers.models.Transformer",
    "sentence_transformers.base.modules.transformer.Transformer",
    "sentence_transformers.base.modules.Transformer",
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


class OnnxEncoder(torch.nn.Module):
    """A transformers-style encoder whose forward pass runs an ONNX Runtime session.

    Takes the tokenizer's tensors and returns ``last_hidden_state`` as a torch tensor, which is all the
    sentence-transformers ``Transformer`` module reads from a feature-extraction model.
    """

    def __init__(self, path: Path, config: Any, threads: int | None = None) -> None:
        super().__init__()
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = max(1, min(threads or available_cpus(), available_cpus()))
        options.inter_op_num_threads = 1
        # Idle pool threads sleep instead of spinning: concurrent requests on a small machine then share the
        # cores instead of burning them.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.config = config
        self.path = path

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        **_: Any,
    ) -> BaseModelOutput:
        def array(value: torch.Tensor | None) -> np.ndarray | None:
            return None if value is None else value.detach().cpu().numpy()

        hidden = self.run(array(input_ids), array(attention_mask), array(token_type_ids))  # type: ignore[arg-type]
        return BaseModelOutput(last_hidden_state=torch.from_numpy(hidden))

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
            value = given.get(name)
            if value is None:
                value = np.ones_like(input_ids) if name == "attention_mask" else np.zeros_like(input_ids)
            feeds[name] = value.astype(np.int64, copy=False)
        (hidden,) = self.session.run(["last_hidden_state"], feeds)
        return np.asarray(hidden)


class OnnxTransformer(Transformer):
    """sentence-transformers' ``Transformer`` module with :class:`OnnxEncoder` as its network."""

    threads: int | None = None

    def _load_model(
        self,
        model_name_or_path: str,
        transformer_task: Any,
        config: Any,
        backend: str,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        path = onnx_path(model_name_or_path)
        if backend != "onnx":
            return super()._load_model(model_name_or_path, transformer_task, config, backend, *args, **kwargs)
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist")
        return OnnxEncoder(path, config, self.threads)


def load_onnx_sentence_transformer(folder: str | Path, threads: int | None = None) -> SentenceTransformer:
    """A SentenceTransformer whose transformer module runs ``folder/onnx/model.onnx`` in ONNX Runtime."""
    module = type("OnnxTransformer", (OnnxTransformer,), {"threads": threads})
    classes = dict.fromkeys(_TRANSFORMER_REFS, module)
    return SentenceTransformer._load_with_module_classes(str(folder), classes, device="cpu", backend="onnx")


class OnnxPipeline:
    """A loaded ONNX sentence-transformer's encode path without sentence-transformers' per-call machinery.

    ``SentenceTransformer.encode`` spends about as long in Python around a short question (the transformers
    tokenizer wrapper, tensor conversions, the pooling and normalisation modules in torch) as ONNX Runtime
    spends on the network, all of it holding the GIL, which a web server with many users at once pays
    for twice. This path reads the same configuration from the loaded model (prompts, maximum length,
    pooling mode, normalisation) and runs the same steps: the Rust tokenizer, :meth:`OnnxEncoder.run` and
    numpy pooling. ``tests/test_embed.py`` checks it returns sentence-transformers' vectors.

    It is thread-safe: the tokenizer, shared with the model (a copy of XLM-R's would hold another 290 MB),
    is set up and used under a lock (a fraction of a millisecond per text), and ONNX Runtime sessions
    accept concurrent runs.
    """

    def __init__(
        self,
        tokenizer: Any,
        encoder: OnnxEncoder,
        pooling: str,
        normalize: bool,
        pad_id: int,
        max_length: int,
    ) -> None:
        self.tokenizer = tokenizer
        self.encoder = encoder
        self.pooling = pooling
        self.normalize = normalize
        self.pad_id = pad_id
        self.max_length = max_length
        self._tokenizer_lock = threading.Lock()

    @classmethod
    def from_sentence_transformer(cls, model: SentenceTransformer) -> OnnxPipeline | None:
        """The pipeline for ``model``, or None when its modules are not ONNX transformer → pooling → normalise."""
        from sentence_transformers.base.modules.normalize import Normalize
        from sentence_transformers.sentence_transformer.modules.pooling import Pooling

        modules = list(model)
        if not 2 <= len(modules) <= 3 or not isinstance(modules[0], OnnxTransformer):
            return None
        encoder = getattr(modules[0], "auto_model", None)
        backend = getattr(model.tokenizer, "backend_tokenizer", None)
        if not isinstance(encoder, OnnxEncoder) or backend is None:
            return None
        pooling = modules[1]
        config = pooling.get_config_dict() if isinstance(pooling, Pooling) else {}
        # Prompt-excluding pooling needs the prompt's token count; such models keep the general path.
        if config.get("pooling_mode") not in ("mean", "cls") or not config.get("include_prompt", True):
            return None
        if len(modules) == 3 and not isinstance(modules[2], Normalize):
            return None
        pad_id = model.tokenizer.pad_token_id
        if pad_id is None:
            return None
        return cls(
            backend,
            encoder,
            str(config["pooling_mode"]),
            len(modules) == 3,
            int(pad_id),
            int(model.max_seq_length or 512),
        )

    def encode(self, texts: list[str], prompt: str = "", batch_size: int = 8) -> np.ndarray:
        """float32 vectors, shape (n, dimension): texts of similar length are batched together."""
        if not texts:
            return np.zeros((0, 0), np.float32)
        with self._tokenizer_lock:
            # Set on every call: sentence-transformers' own encode changes both on the shared tokenizer.
            self.tokenizer.no_padding()
            self.tokenizer.enable_truncation(max_length=self.max_length)
            encodings = [self.tokenizer.encode(prompt + text) for text in texts]
        order = sorted(range(len(texts)), key=lambda i: -len(encodings[i].ids))
        out: list[np.ndarray] = [np.empty(0, np.float32)] * len(texts)
        step = max(1, batch_size)
        for start in range(0, len(order), step):
            chunk = order[start : start + step]
            width = max(len(encodings[i].ids) for i in chunk)
            ids = np.full((len(chunk), width), self.pad_id, dtype=np.int64)
            mask = np.zeros((len(chunk), width), dtype=np.int64)
            for row, i in enumerate(chunk):
                n = len(encodings[i].ids)
                ids[row, :n] = encodings[i].ids
                mask[row, :n] = 1
            vectors = self._pool(self.encoder.run(ids, mask), mask)
            for row, i in enumerate(chunk):
                out[i] = vectors[row]
        return np.stack(out).astype(np.float32, copy=False)

    def _pool(self, hidden: np.ndarray, mask: np.ndarray) -> np.ndarray:
        if self.pooling == "cls":
            vectors = hidden[:, 0]
        else:
            weights = mask[..., None].astype(hidden.dtype)
            vectors = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        if self.normalize:
            vectors = vectors / np.clip(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12, None)
        return vectors


class _LastHiddenState(torch.nn.Module):
    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state


def export_onnx(folder: Path) -> Path:
    """Export the transformers model in ``folder`` to ``folder/onnx/model.onnx`` (fp32, dynamic batch and length).

    The graph gets ONNX Runtime's portable optimisations once, here, so each start-up loads a finished graph
    (about 1.5 s instead of 3.5 s). The weights go to ``model.onnx_data`` beside it, which ONNX Runtime
    memory-maps: of the 384 MB word-embedding table only the rows of words actually seen become resident,
    so a serving process holds about 0.15 GB for the model instead of 0.5 GB.
    """
    import onnx
    import onnxruntime as ort
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(str(folder))
    model.eval()
    sample = AutoTokenizer.from_pretrained(str(folder))(
        ["query: ¿quién atiende las quejas?", "passage: Área de Atención al Cliente"],
        padding=True,
        return_tensors="pt",
    )
    target = onnx_path(folder)
    target.parent.mkdir(parents=True, exist_ok=True)
    raw, optimized = target.with_suffix(".raw.onnx"), target.with_suffix(".optimized.onnx")
    dynamic = {0: "batch", 1: "sequence"}
    try:
        with torch.no_grad(), warnings.catch_warnings(), contextlib.redirect_stdout(None):
            # The TorchScript exporter notes that its advanced-indexing pattern needs non-negative indices;
            # the position ids it indexes with are.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                _LastHiddenState(model),
                (sample["input_ids"], sample["attention_mask"]),
                str(raw),
                input_names=["input_ids", "attention_mask"],
                output_names=["last_hidden_state"],
                dynamic_axes={"input_ids": dynamic, "attention_mask": dynamic, "last_hidden_state": dynamic},
                opset_version=17,
                dynamo=False,
            )
        options = ort.SessionOptions()
        # EXTENDED, not ALL: the layout transformations of ALL are specific to the CPU that runs them.
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        options.optimized_model_filepath = str(optimized)
        ort.InferenceSession(str(raw), options, providers=["CPUExecutionProvider"])
        onnx.save_model(
            onnx.load(str(optimized)),
            str(target),
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location=target.name + "_data",
            size_threshold=1024,
        )
    finally:
        raw.unlink(missing_ok=True)
        optimized.unlink(missing_ok=True)
    return target
