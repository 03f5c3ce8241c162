"""ONNX Runtime inside sentence-transformers, and the export itself: the torch side of the ONNX encoder.

Serving runs :mod:`assistant.onnx_encoder`, which imports neither torch nor sentence-transformers. This
module is for what needs them: :func:`export_onnx` (the offline build), and a SentenceTransformer whose
network is the ONNX export (:func:`load_onnx_sentence_transformer`), for model folders whose modules the lean
path does not reproduce and for the parity tests. sentence-transformers' own ``backend="onnx"`` loads
through ``optimum-onnx``, whose only release requires transformers < 4.58, while sentence-transformers 6
requires transformers 5; so the module that runs the network is ours, swapped in with
``SentenceTransformer._load_with_module_classes`` (6.2+, pinned below 7 in pyproject).
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import Transformer
from transformers.modeling_outputs import BaseModelOutput

from assistant.onnx_encoder import TRANSFORMER_REFS, OnnxSession, onnx_path

log = logging.getLogger(__name__)


class OnnxEncoder(torch.nn.Module):
    """A transformers-style encoder whose forward pass runs an ONNX Runtime session.

    Takes the tokenizer's tensors and returns ``last_hidden_state`` as a torch tensor, which is all the
    sentence-transformers ``Transformer`` module reads from a feature-extraction model.
    """

    def __init__(self, path: Path, config: Any, threads: int | None = None) -> None:
        super().__init__()
        self.session = OnnxSession(path, threads)
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

        hidden = self.session.run(array(input_ids), array(attention_mask), array(token_type_ids))  # type: ignore[arg-type]
        return BaseModelOutput(last_hidden_state=torch.from_numpy(hidden))


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
    classes = dict.fromkeys(TRANSFORMER_REFS, module)
    return SentenceTransformer._load_with_module_classes(str(folder), classes, device="cpu", backend="onnx")


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

    # Eager attention exports the standard BERT attention pattern, which ONNX Runtime's transformer optimizer
    # fuses (see _fuse_attention); it does not recognise the scaled-dot-product export.
    model = AutoModel.from_pretrained(str(folder), attn_implementation="eager")
    model.eval()
    sample = AutoTokenizer.from_pretrained(str(folder))(
        ["query: ¿quién atiende las quejas?", "passage: Área de Atención al Cliente"],
        padding=True,
        return_tensors="pt",
    )
    target = onnx_path(folder)
    target.parent.mkdir(parents=True, exist_ok=True)
    raw, optimized = target.with_suffix(".raw.onnx"), target.with_suffix(".optimized.onnx")
    fused = target.with_suffix(".fused.onnx")
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
        source = fused if _fuse_attention(raw, fused, model.config) else raw
        ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])
        onnx.save_model(
            onnx.load(str(optimized)),
            str(target),
            save_as_external_data=True,
            all_tensors_to_one_file=True,
            location=target.name + "_data",
            size_threshold=1024,
        )
    finally:
        for path in (raw, fused, fused.with_name(fused.name + ".data"), optimized):
            path.unlink(missing_ok=True)
    return target


def _fuse_attention(raw: Path, fused: Path, config: Any) -> bool:
    """Write ``raw`` with each layer's attention, skip-connection norm and GELU fused into one node each.

    ONNX Runtime's transformer optimizer turns the ~700 small nodes of a BERT-style export into ~110; a short
    question's pass takes about 11% less time on two cores (10.8 against 12.2 ms, interleaved runs), with the
    same vectors (cosine ≥ 0.9999997 on every evaluation question and passage; ``tests/test_embed.py`` checks
    parity with sentence-transformers). The word embeddings stay a plain Gather, which
    :func:`~assistant.onnx_encoder.write_lean_graph` takes out. False, with nothing written, when the optimizer
    does not recognise every layer's attention (then the plain export is used).
    """
    from onnxruntime.transformers.fusion_options import FusionOptions
    from onnxruntime.transformers.optimizer import optimize_model

    heads, hidden = getattr(config, "num_attention_heads", 0), getattr(config, "hidden_size", 0)
    layers = getattr(config, "num_hidden_layers", 0)
    if not (heads and hidden and layers):
        return False
    options = FusionOptions("bert")
    options.enable_embed_layer_norm = False  # keeps the word-embedding Gather that the lean graph takes out
    with contextlib.redirect_stdout(None), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = optimize_model(
            str(raw),
            model_type="bert",
            num_heads=heads,
            hidden_size=hidden,
            optimization_options=options,
            opt_level=0,
        )
    fused_layers = model.get_fused_operator_statistics().get("Attention", 0)
    if fused_layers != layers:
        log.warning(
            "ONNX export: %d of %d attention layers fused; serving the plain graph", fused_layers, layers
        )
        return False
    model.save_model_to_file(str(fused), use_external_data_format=True, all_tensors_to_one_file=True)
    return True
