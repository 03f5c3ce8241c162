"""Cold start: a fresh process answers without torch or sentence-transformers, and gradio skips its stubs.

Each test runs a fresh interpreter, since what matters is what a new process imports.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "sentence_transformers", "transformers", "sklearn")


def _python(code: str, env: dict[str, str] | None = None, timeout: float = 180) -> str:
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout.strip().splitlines()[-1]


def test_gradio_stub_generation_is_skipped_and_gradio_still_works() -> None:
    code = (
        "from assistant.startup import skip_gradio_stub_generation as skip; skip(); skip();"
        "import gradio as gr, gradio.component_meta as cm, json;"
        "demo = gr.Blocks();\n"
        "with demo: box = gr.Textbox(label='q')\n"
        "print(json.dumps([cm.create_or_modify_pyi.__name__, box.label]))"
    )
    assert json.loads(_python(code)) == ["<lambda>", "q"]


def test_serving_modules_import_no_torch_nor_sentence_transformers() -> None:
    # A cold `python -m assistant ask` spent ~10 s importing these (issue 17).
    code = (
        "import json, sys, assistant.cli, assistant.chain, assistant.embed, assistant.onnx_encoder, "
        f"assistant.indexer; print(json.dumps(sorted(set({HEAVY!r}) & set(sys.modules))))"
    )
    assert json.loads(_python(code)) == []


@pytest.mark.integration
def test_a_cold_question_loads_no_torch_nor_sentence_transformers(real_index) -> None:  # type: ignore[no-untyped-def]
    settings = real_index
    env = {
        "ASSISTANT_CORPUS_DIR": str(settings.corpus_dir),
        "ASSISTANT_STORE__PATH": str(settings.store.path),
        "ASSISTANT_EMBEDDING__MODEL_DIR": str(settings.embedding.model_dir),
        "ASSISTANT_RETRIEVAL__GLOSSARY": str(settings.retrieval.glossary),
        "ASSISTANT_ANSWER__SCOPE": str(settings.answer.scope),
    }
    code = (
        "import contextlib, io, json, sys\n"
        "from assistant.cli import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        "    status = main(['ask', '¿Quién dirige el Área de Ventas?', '--json'])\n"
        f"heavy = sorted(set({HEAVY!r}) & set(sys.modules))\n"
        "print(json.dumps([status, json.loads(out.getvalue())['answer'], heavy]))"
    )
    status, answer, heavy = json.loads(_python(code, env))
    assert status == 0 and "Jefe Área de Ventas" in answer
    assert heavy == [], "the question path runs on the tokenizer, ONNX Runtime and numpy only"
