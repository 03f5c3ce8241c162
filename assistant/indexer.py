"""Indexing pipeline: corpus → ingest → clean/parse → chunk → embed → store (incremental, atomic)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from assistant.chunk import chunk_manual
from assistant.embed import all_cpu_threads, get_embedder
from assistant.ingest import load_corpus
from assistant.models import Manual
from assistant.parse import parse_document
from assistant.settings import Settings
from assistant.store import Manifest, ManualSource, ProgressFn, Store

log = logging.getLogger(__name__)


@dataclass
class CorpusReport:
    """The parsed manuals and every problem met on the way (one sentence each)."""

    manuals: list[Manual] = field(default_factory=list)
    sources: list[ManualSource] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def read_corpus(corpus_dir: str | Path) -> CorpusReport:
    """Load and parse every manual in the corpus folder, collecting errors instead of stopping."""
    report = CorpusReport()
    loaded = load_corpus(corpus_dir)
    report.errors.extend(loaded.errors)
    for doc in loaded.documents:
        manual = parse_document(doc)
        for w in manual.warnings:
            log.warning("%s", w)
        report.warnings.extend(manual.warnings)
        report.manuals.append(manual)
        report.sources.append(
            ManualSource(
                manual_id=manual.id,
                source=doc.path,
                sha256=doc.sha256,
                chunks=chunk_manual(manual),
                structure=manual.model_dump(mode="json"),
                code=manual.code,
                version=manual.version,
                effective_date=manual.effective_date.isoformat() if manual.effective_date else None,
            )
        )
    return report


def build_index(
    settings: Settings, rebuild: bool = False, progress: ProgressFn | None = None
) -> tuple[Manifest, CorpusReport]:
    """Build or update the index from the corpus; returns the new manifest and the corpus report."""
    report = read_corpus(settings.corpus_dir)
    # A batch job: every CPU per forward pass (serving keeps settings.embedding.threads per question).
    embedder = get_embedder(settings.embedding.model_copy(update={"threads": None}))
    embedder.warm_up()
    with all_cpu_threads():
        manifest = Store(settings.store).build(report.sources, embedder, rebuild=rebuild, progress=progress)
    return manifest, report
