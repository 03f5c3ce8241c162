"""Shared fixtures: the real embedding model is loaded once per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# No model hub is reachable here; fail fast instead of waiting on network time-outs.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def e5_embedder():
    """The real default embedder, built into the repository's git-ignored .models/ on first use."""
    from assistant.embed import get_embedder
    from assistant.settings import EmbeddingSettings

    settings = EmbeddingSettings(model_dir=REPO_ROOT / ".models" / "multilingual-e5-small")
    embedder = get_embedder(settings)
    embedder.warm_up()
    return embedder


@pytest.fixture
def hash_embedder():
    """A deterministic 64-d fake embedder for unit tests."""
    from tests.fakes import HashEmbedder

    return HashEmbedder()


def real_settings(root: Path):
    """Settings for a throw-away embedded index of the real corpus under `root` (the repo's model folder)."""
    from assistant.settings import EmbeddingSettings, Settings, StoreSettings

    return Settings(
        corpus_dir=REPO_ROOT / "corpus",
        embedding=EmbeddingSettings(model_dir=REPO_ROOT / ".models" / "multilingual-e5-small"),
        store=StoreSettings(path=root / "index"),
        retrieval={"glossary": REPO_ROOT / "corpus" / "glossary.json"},
        answer={"scope": REPO_ROOT / "corpus" / "scope.json"},
        ui={"feedback_db": root / "feedback.sqlite3"},
    )


@pytest.fixture(scope="session")
def real_index(tmp_path_factory, e5_embedder):
    """Settings whose embedded index holds the real manual, built once per session with the real model."""
    from assistant.indexer import build_index

    settings = real_settings(tmp_path_factory.mktemp("real-index"))
    build_index(settings)
    return settings


@pytest.fixture(scope="session")
def real_assistant(real_index):
    """The real assistant (model, index, grounded engine) over the real manual, loaded once."""
    from assistant.chain import Assistant

    return Assistant.from_settings(real_index)


@pytest.fixture
def chroma_server(tmp_path):
    """A real `chroma run` on a free loopback port, stopped (and killed if need be) afterwards."""
    from tests.net import CHROMA, ChromaServer, free_port

    if not CHROMA.exists():
        pytest.fail(f"{CHROMA} is missing; run `make install-dev`.")
    server = ChromaServer(tmp_path / "chroma-data", free_port(), tmp_path / "chroma.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()


MULTI_CORPUS = [
    REPO_ROOT / "corpus" / "mof-901-0905-gerencia-servicio-al-cliente-v10.txt",
    REPO_ROOT / "evals" / "versions" / "mof-901-0905-gerencia-servicio-al-cliente-v11.txt",
    REPO_ROOT / "evals" / "manuals" / "gerencia-creditos" / "manual.txt",
    REPO_ROOT / "evals" / "manuals" / "direccion-administracion" / "manual.docx",
]


@pytest.fixture(scope="session")
def multi_assistant(tmp_path_factory, e5_embedder):
    """The real assistant over several gerencias' manuals (one as a Word file) and two versions of one,
    indexed once per session."""
    import shutil

    from assistant.chain import Assistant
    from assistant.indexer import build_index

    root = tmp_path_factory.mktemp("multi-index")
    corpus = root / "corpus"
    corpus.mkdir()
    for path in MULTI_CORPUS:
        name = path.name if path.stem != "manual" else f"{path.parent.name}{path.suffix}"
        shutil.copy(path, corpus / name)
    settings = real_settings(root).model_copy(update={"corpus_dir": corpus})
    build_index(settings)
    return Assistant.from_settings(settings)
