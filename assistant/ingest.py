"""Ingest stage: read corpus files (.txt, .md, .pdf, .docx) into decoded `Document`s.

Every failure is one sentence naming the file; `load_corpus` logs it and goes on with the others.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


_W = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_BULLET_MARK = "·"


def _roman(n: int) -> str:
    out = []
    for value, sym in ((1000, "m"), (900, "cm"), (500, "d"), (400, "cd"), (100, "c"), (90, "xc"), (50, "l")):
        out.append(sym * (n // value))
        n %= value
    for value, sym in ((40, "xl"), (10, "x"), (9, "ix"), (5, "v"), (4, "iv"), (1, "i")):
        out.append(sym * (n // value))
        n %= value
    return "".join(out)


def _format_number(n: int, fmt: str) -> str:
    """A list counter in a Word number format (decimal, lowerRoman, upperLetter …)."""
    if fmt == "lowerRoman":
        return _roman(n)
    if fmt == "upperRoman":
        return _roman(n).upper()
    if fmt == "lowerLetter":
        return chr(ord("a") + (n - 1) % 26)
    if fmt == "upperLetter":
        return chr(ord("A") + (n - 1) % 26)
    return str(n)


@dataclass
class _Level:
    fmt: str = "decimal"
    text: str = "%1."
    start: int = 1


class _Numbering:
    """Word list numbering: which numeral each numbered paragraph shows (not stored in its text)."""

    def __init__(self, document: Any) -> None:
        self.levels: dict[str, dict[int, _Level]] = {}
        self.style_num: dict[str, tuple[str, int]] = {}
        self.counters: dict[str, dict[int, int]] = {}
        try:
            root = document.part.numbering_part.element
        except (KeyError, AttributeError, NotImplementedError):
            root = None
        abstract: dict[str, dict[int, _Level]] = {}
        for node in root.iter(f"{_W}abstractNum") if root is not None else ():
            abstract[node.get(f"{_W}abstractNumId", "")] = self._levels(node)
        for node in root.iter(f"{_W}num") if root is not None else ():
            ref = node.find(f"{_W}abstractNumId")
            levels = dict(abstract.get(ref.get(f"{_W}val", "") if ref is not None else "", {}))
            for override in node.iter(f"{_W}lvlOverride"):
                start = override.find(f"{_W}startOverride")
                ilvl = int(override.get(f"{_W}ilvl", "0"))
                if start is not None and ilvl in levels:
                    base = levels[ilvl]
                    levels[ilvl] = _Level(base.fmt, base.text, int(start.get(f"{_W}val", "1")))
            self.levels[node.get(f"{_W}numId", "")] = levels
        for style in document.styles.element.iter(f"{_W}style"):
            num = self._num_pr(style.find(f"{_W}pPr"))
            if num:
                self.style_num[style.get(f"{_W}styleId", "")] = num

    @staticmethod
    def _levels(node: Any) -> dict[int, _Level]:
        out: dict[int, _Level] = {}
        for lvl in node.iter(f"{_W}lvl"):
            values = {}
            for tag in ("numFmt", "lvlText", "start"):
                child = lvl.find(f"{_W}{tag}")
                if child is not None:
                    values[tag] = child.get(f"{_W}val", "")
            out[int(lvl.get(f"{_W}ilvl", "0"))] = _Level(
                values.get("numFmt", "decimal"),
                values.get("lvlText", "%1."),
                int(values.get("start", "1") or 1),
            )
        return out

    @staticmethod
    def _num_pr(ppr: Any) -> tuple[str, int] | None:
        num_pr = ppr.find(f"{_W}numPr") if ppr is not None else None
        if num_pr is None:
            return None
        num_id = num_pr.find(f"{_W}numId")
        ilvl = num_pr.find(f"{_W}ilvl")
        if num_id is None:
            return None
        return num_id.get(f"{_W}val", ""), int(ilvl.get(f"{_W}val", "0")) if ilvl is not None else 0

    def label(self, paragraph: Any) -> str:
        """The numeral ("iv.", "3.") or bullet a list paragraph shows, or "" when it is not in a list."""
        ppr = paragraph.find(f"{_W}pPr")
        num = self._num_pr(ppr)
        if num is None and ppr is not None:
            style = ppr.find(f"{_W}pStyle")
            num = self.style_num.get(style.get(f"{_W}val", "")) if style is not None else None
        if num is None or num[0] in ("", "0") or num[0] not in self.levels:
            return ""
        num_id, ilvl = num
        levels = self.levels[num_id]
        level = levels.get(ilvl, _Level())
        if level.fmt in ("bullet", "none"):
            return _BULLET_MARK if level.fmt == "bullet" else ""
        counters = self.counters.setdefault(num_id, {})
        counters[ilvl] = counters.get(ilvl, level.start - 1) + 1
        for deeper in [k for k in counters if k > ilvl]:
            del counters[deeper]
        text = level.text
        for k in range(ilvl, -1, -1):
            lv = levels.get(k, _Level())
            text = text.replace(f"%{k + 1}", _format_number(counters.get(k, lv.start), lv.fmt))
        return text


def _paragraph_text(paragraph: Any) -> str:
    parts: list[str] = []
    for node in paragraph.iter(f"{_W}t", f"{_W}tab", f"{_W}br"):
        if node.tag == f"{_W}t":
            parts.append(node.text or "")
        elif node.tag == f"{_W}tab":
            parts.append(" ")
        elif node.get(f"{_W}type") not in ("page", "column"):
            parts.append("\n")
    return "".join(parts)


def _docx_paragraph(paragraph: Any, numbering: _Numbering) -> list[str]:
    lines: list[str] = []
    if paragraph.xpath('.//w:br[@w:type="page"]') or paragraph.xpath(".//w:lastRenderedPageBreak"):
        lines.append(PAGE_BREAK)
    label = numbering.label(paragraph)
    text = _paragraph_text(paragraph)
    lines.append(f"{label} {text}" if label and text.strip() else text)
    return lines


def _docx_table(table: Any, numbering: _Numbering) -> list[str]:
    """A table row by row, each cell's paragraphs on lines of their own."""
    lines: list[str] = []
    for row in table.iter(f"{_W}tr"):
        for cell in row.iter(f"{_W}tc"):
            for paragraph in cell.iter(f"{_W}p"):
                lines += [x for x in _docx_paragraph(paragraph, numbering) if x.strip()]
    return lines


def _read_docx(path: Path) -> str:
    import zipfile

    import docx
    from docx.opc.exceptions import PackageNotFoundError

    try:
        document = docx.Document(str(path))
    except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise IngestError(f"{path.name} is not a readable DOCX file; it was skipped.") from exc
    numbering = _Numbering(document)
    lines: list[str] = []
    # Walk paragraphs and tables of the body in document order (the header and footer parts are not in
    # the body); explicit page breaks become form feeds and list numerals are rebuilt from numbering.xml.
    for child in document.element.body.iterchildren():
        if child.tag == f"{_W}p":
            lines += _docx_paragraph(child, numbering)
        elif child.tag == f"{_W}tbl":
            lines += _docx_table(child, numbering)
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
