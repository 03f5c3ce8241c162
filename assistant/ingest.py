"""Ingest stage: read corpus files (.txt, .md, .pdf, .docx) into decoded `Document`s.

Every failure is one sentence naming the file; `load_corpus` logs it and goes on with the others.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from charset_normalizer import from_bytes

from assistant.errors import IngestError
from assistant.models import Document

log = logging.getLogger(__name__)

SUPPORTED = (".txt", ".md", ".pdf", ".docx")
MAX_BYTES = 20 * 1024 * 1024
# Pages of a PDF are joined with a form feed so the cleaner knows where page breaks fall.
PAGE_BREAK = "\f"


@dataclass
class CorpusLoad:
    """What `load_corpus` read, and what it had to skip (one sentence per skipped file)."""

    documents: list[Document] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


_SPANISH = frozenset("áéíóúüñÁÉÍÓÚÜÑ¿¡«»“”‘’–—…·•ºª°€\u00a0")


def _looks_binary(data: bytes) -> bool:
    head = data[:8192]
    if b"\x00" in head:
        return True
    control = sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13))
    return control > len(head) * 0.05


def decode_text(data: bytes, name: str) -> tuple[str, str]:
    """Decode bytes of a text file, detecting the encoding; raise `IngestError` on binary content."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8"), "utf-8-sig"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16"), "utf-16"
    if _looks_binary(data):
        raise IngestError(f"{name} is not a text document (it holds binary data); it was skipped.")
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        pass
    # charset-normalizer takes short Spanish cp1252/latin-1 text for cp1250 ("seńal"); the manuals are
    # Spanish, so Windows-1252 wins whenever every non-ASCII character it gives is a Spanish one.
    try:
        western = data.decode("cp1252")
    except UnicodeDecodeError:
        western = None
    # Latin-1 letters and signs (©, ®, º …) are what a Spanish cp1252 file holds; cp1250's look-alikes are not.
    if western is not None and all(
        c.isascii() or c in _SPANISH or "\u00a0" <= c <= "\u00ff" for c in western
    ):
        return western, "cp1252"
    best = from_bytes(data).best()
    if best is None or best.encoding is None:
        raise IngestError(f"{name} could not be decoded as text in any known encoding; it was skipped.")
    return str(best), best.encoding


def _read_pdf(path: Path) -> str:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    try:
        reader = PdfReader(str(path))
        pages = [page.extract_text() or "" for page in reader.pages]
    except (PdfReadError, ValueError, KeyError, OSError) as exc:
        raise IngestError(f"{path.name} is not a readable PDF ({exc}); it was skipped.") from exc
    return PAGE_BREAK.join(pages)


def _read_docx(path: Path) -> str:
    import zipfile

    import docx
    from docx.opc.exceptions import PackageNotFoundError

    try:
        document = docx.Document(str(path))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise IngestError(f"{path.name} is not a readable DOCX file; it was skipped.") from exc
    lines: list[str] = []
    body = document.element.body
    # Walk paragraphs and tables in document order; explicit page breaks become form feeds.
    for child in body.iterchildren():
        tag = child.tag.rsplit("}", 1)[-1]
        if tag == "p":
            xml = child.xml
            if 'w:type="page"' in xml or "lastRenderedPageBreak" in xml:
                lines.append(PAGE_BREAK)
            text = "".join(node.text or "" for node in child.iter() if node.tag.endswith("}t"))
            lines.append(text)
        elif tag == "tbl":
            for row in child.iter():
                if row.tag.endswith("}tr"):
                    cells = [
                        "".join(n.text or "" for n in cell.iter() if n.tag.endswith("}t"))
                        for cell in row
                        if cell.tag.endswith("}tc")
                    ]
                    lines.append("\n".join(c for c in cells if c.strip()))
    return "\n".join(lines)


def load_file(path: str | Path) -> Document:
    """Read one corpus file; raise `IngestError` with one sentence naming the file when it cannot."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in SUPPORTED:
        raise IngestError(
            f"{p.name} has an unsupported type '{suffix}' (use {', '.join(SUPPORTED)}); skipped."
        )
    try:
        size = p.stat().st_size
        if size > MAX_BYTES:
            raise IngestError(f"{p.name} is larger than {MAX_BYTES // (1024 * 1024)} MB; it was skipped.")
        data = p.read_bytes()
    except OSError as exc:
        raise IngestError(f"{p.name} could not be read ({exc.strerror}); it was skipped.") from exc
    if suffix == ".pdf":
        text, encoding = _read_pdf(p), "pdf"
    elif suffix == ".docx":
        text, encoding = _read_docx(p), "docx"
    else:
        text, encoding = decode_text(data, p.name)
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    if not text.strip():
        raise IngestError(f"{p.name} holds no text; it was skipped.")
    return Document(path=str(p), text=text, encoding=encoding, sha256=hashlib.sha256(data).hexdigest())


def corpus_files(corpus_dir: str | Path) -> list[Path]:
    """The files under the corpus folder that ingestion considers, in a stable order."""
    root = Path(corpus_dir)
    if not root.is_dir():
        raise IngestError(f"The corpus folder {root} does not exist; create it and put the manuals there.")
    skip = {"glossary.json", "scope.json", "README.md"}  # data files of the assistant, not manuals
    return sorted(
        p for p in root.rglob("*") if p.is_file() and p.name not in skip and not p.name.startswith(".")
    )


def load_corpus(corpus_dir: str | Path, files: Iterable[Path] | None = None) -> CorpusLoad:
    """Read every corpus file, skipping (and reporting) unreadable ones and exact duplicates."""
    result = CorpusLoad()
    seen: dict[str, str] = {}
    for path in files if files is not None else corpus_files(corpus_dir):
        try:
            doc = load_file(path)
        except IngestError as exc:
            log.warning("%s", exc)
            result.errors.append(str(exc))
            continue
        digest = hashlib.sha256(doc.text.encode("utf-8")).hexdigest()
        if digest in seen:
            msg = f"{Path(path).name} is a copy of {Path(seen[digest]).name}; only the first was kept."
            log.warning("%s", msg)
            result.errors.append(msg)
            continue
        seen[digest] = doc.path
        result.documents.append(doc)
    return result
