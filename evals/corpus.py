"""Evaluate against other manuals than `settings.corpus_dir`: a temporary corpus folder and embedded index.

    python -m evals.run --questions Q.jsonl --corpus evals/manuals/gerencia-creditos/manual.txt --out OUT.json

The files are copied into a temporary corpus folder, indexed into a temporary embedded Chroma folder with the
same embedding model, and an `Assistant` is opened on that index; all of it is deleted after the run.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from assistant.ingest import SUPPORTED, corpus_files

log = logging.getLogger("evals")


class CorpusArgumentError(ValueError):
    """A --corpus path that cannot be evaluated; the message names it."""


@dataclass(frozen=True)
class CorpusFile:
    """One manual of the evaluation corpus: where it is, and the name of its copy."""

    source: Path
    name: str


def plan_corpus(paths: Sequence[str | Path]) -> list[CorpusFile]:
    """The manuals named by files and folders, each with a unique copy name; raise on a bad path.

    A file given by name is copied as its folder's name (``gerencia-creditos/manual.txt`` →
    ``gerencia-creditos.txt``), since such files are all called ``manual.txt``; the manuals found in a folder
    keep their names. A name already taken gets ``-2``, ``-3``…; a file named twice is copied once.
    """
    planned: list[CorpusFile] = []
    seen: set[Path] = set()
    taken: set[str] = set()

    def add(source: Path, name: str) -> None:
        resolved = source.resolve()
        if resolved in seen:
            return
        seen.add(resolved)
        stem, suffix = Path(name).stem, Path(name).suffix.lower()
        candidate, n = f"{stem}{suffix}", 1
        while candidate.casefold() in taken:
            n += 1
            candidate = f"{stem}-{n}{suffix}"
        taken.add(candidate.casefold())
        planned.append(CorpusFile(source=source, name=candidate))

    for raw in paths:
        path = Path(raw)
        if path.is_file():
            if path.suffix.lower() not in SUPPORTED:
                raise CorpusArgumentError(
                    f"--corpus {path}: unsupported file type '{path.suffix}' (use {', '.join(SUPPORTED)})."
                )
            folder = path.resolve().parent.name or "manual"
            add(path, f"{folder}{path.suffix}")
        elif path.is_dir():
            found = [f for f in corpus_files(path) if f.suffix.lower() in SUPPORTED]
            if not found:
                raise CorpusArgumentError(
                    f"--corpus {path}: the folder holds no manual ({', '.join(SUPPORTED)})."
                )
            for f in found:
                add(f, f.name)
        else:
            raise CorpusArgumentError(f"--corpus {path}: no such file or folder.")
    if not planned:
        raise CorpusArgumentError("--corpus names no manual.")
    return planned


def temporary_settings(settings: Any, root: Path) -> Any:
    """A copy of the settings whose corpus folder and embedded index live under `root`."""
    store = settings.store.model_copy(update={"mode": "embedded", "path": root / "index"})
    return settings.model_copy(update={"corpus_dir": root / "corpus", "store": store})


@contextmanager
def temporary_corpus(settings: Any, files: Sequence[CorpusFile], build: bool = True) -> Iterator[Any]:
    """Copy the files into a temporary corpus, index it (when `build`), and yield settings pointing at it.

    The index is built with `assistant.indexer.build_index`, whose embedder is the process-wide one that
    `Assistant.from_settings` then reuses, so the model is loaded once. Everything is removed afterwards.
    """
    with tempfile.TemporaryDirectory(prefix="evals-corpus-", ignore_cleanup_errors=True) as tmp:
        root = Path(tmp)
        temp = temporary_settings(settings, root)
        temp.corpus_dir.mkdir(parents=True)
        for f in files:
            shutil.copyfile(f.source, temp.corpus_dir / f.name)
        if build:
            from assistant.indexer import build_index

            manifest, report = build_index(temp)
            for error in report.errors:
                log.warning("%s", error)
            log.info("indexed %d manuals (%d chunks) in %s", len(manifest.manuals), manifest.chunks, root)
        yield temp
