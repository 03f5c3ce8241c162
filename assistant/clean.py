"""Cleaning stage: remove document-site noise and running page headers/footers, rejoin page breaks.

Running headers and footers are found by repetition around page breaks, never by this manual's own
strings, so that another Gerencia's manual (with its own header) is cleaned the same way.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

from assistant.ingest import PAGE_BREAK

# Markers of document-sharing sites (the scraped page around the transcript), not of any manual.
_TRANSCRIPT_START = re.compile(r"^\s*(story transcript|transcript|document transcript)\s*$", re.I | re.M)
_SITE_TAIL = re.compile(
    r"^\s*(get in touch|©\s*copyright.*|copyright\s*©.*|all rights reserved\.?|report \"?.*\"?|"
    r"recommend (stories|documents)|related documents|download pdf|share embed.*)\s*$",
    re.I | re.M,
)
_SITE_LINE = re.compile(
    r"^\s*(\d[\d.,]*\s+(downloads?|views?)\b.*|recommend (stories|documents)|social|get in touch|"
    r"©.*rights reserved.*|\d+(\.\d+)?\s*[kmg]b\s+size)\s*$",
    re.I,
)
_PAGE_NUMBER = re.compile(r"^\s*(p[áa]g(ina)?\.?\s*)?\d{1,4}(\s*(de|of|/)\s*\d{1,4})?\s*$", re.I)
# A normalised line that is only a list marker ("#.", "ii)", "a.") is never a running header.
_LIST_MARKER = re.compile(r"(#|[ivxlcdm]+|[a-z])[.)]", re.I)
_WINDOW = 3  # non-empty lines looked at on each side of a page break
_END_PUNCT = '.:;!?»)"'


@dataclass
class Cleaned:
    """The cleaned text, the cover (text before the first page break) and what was removed."""

    text: str
    cover: str
    running_lines: list[str] = field(default_factory=list)
    running_prefixes: list[str] = field(default_factory=list)
    page_breaks: int = 0


def _norm(line: str) -> str:
    return re.sub(r"\d+", "#", " ".join(line.split())).strip(" ·•")


def strip_site_noise(text: str) -> str:
    """Drop the document site's wrapper: the block before the transcript, its footer and noise lines."""
    start = _TRANSCRIPT_START.search(text)
    if start:
        text = text[start.end() :]
    tail = _SITE_TAIL.search(text)
    # Only cut a tail that sits in the last part of the document, never a line in the middle of it.
    while tail and tail.start() > len(text) * 0.6:
        text = text[: tail.start()]
        tail = _SITE_TAIL.search(text)
    return "\n".join(line for line in text.split("\n") if not _SITE_LINE.match(line))


def _page_number_breaks(lines: list[str]) -> list[int]:
    """Indices of page-number lines: the longest chain of numbers increasing by one down the text."""
    cands = [
        (i, int(re.findall(r"\d+", line)[0])) for i, line in enumerate(lines) if _PAGE_NUMBER.match(line)
    ]
    best: dict[int, list[int]] = {}
    last_seen: dict[int, list[int]] = {}
    for i, value in cands:
        chain = [*last_seen.get(value - 1, []), i]
        best[i] = chain
        if len(chain) >= len(last_seen.get(value, [])):
            last_seen[value] = chain
    chain = max(best.values(), key=len, default=[])
    return chain if len(chain) >= 2 else []


def _window(lines: list[str], index: int, step: int) -> list[int]:
    found: list[int] = []
    j = index + step
    while 0 <= j < len(lines) and len(found) < _WINDOW:
        if lines[j].strip() and lines[j] != PAGE_BREAK:
            found.append(j)
        j += step
    return found


def clean_text(raw: str) -> Cleaned:
    """Clean a document's text; see the module docstring."""
    text = strip_site_noise(raw.replace("\r\n", "\n"))
    if PAGE_BREAK in text:
        # PDF pages (or DOCX page breaks): the form feed is the break; keep it as its own line.
        text = text.replace(PAGE_BREAK, f"\n{PAGE_BREAK}\n")
        lines = text.split("\n")
        breaks = [i for i, line in enumerate(lines) if line == PAGE_BREAK]
    else:
        lines = text.split("\n")
        breaks = _page_number_breaks(lines)
    cover = "\n".join(lines[: breaks[0]]) if breaks else ""
    if len(breaks) < 2:
        body = "\n".join(line for line in lines if line != PAGE_BREAK)
        return Cleaned(text=_tidy(body), cover=cover or body[:2000], page_breaks=len(breaks))

    # Count, per break, the lines near it; those near most breaks are running headers/footers.
    near: Counter[str] = Counter()
    # On a short page one line can sit near two breaks; it still occurs only once.
    where: dict[str, set[int]] = {}
    after_lines: list[str] = []
    page_tops: set[int] = set()
    page_ends: set[int] = set()
    # Real pages (form feeds): the last page's footer sits at the end of the text, after no break.
    edges = [len(lines)] if PAGE_BREAK in text else []
    for b in [*breaks, *edges]:
        page_ends.update(_window(lines, b, -1))
        indices = _window(lines, b, -1) + (_window(lines, b, 1) if b < len(lines) else [])
        near.update({_norm(lines[j]) for j in indices})
        for j in indices:
            where.setdefault(_norm(lines[j]), set()).add(j)
        after = _window(lines, b, 1)
        page_tops.update(after)
        # Index entries ("I. OBJETIVOS ..... 3") open a page like the heading they point to; not a header.
        after_lines += [" ".join(lines[j].split()) for j in after if not _TOC_ENTRY.search(lines[j])]
    near = Counter({n: min(c, len(where[n])) for n, c in near.items()})
    need = max(2, int(len(breaks) * 0.4 + 0.5))
    everywhere = Counter(_norm(line) for line in lines if line.strip() and line != PAGE_BREAK)
    # A running line sits at the page edges (nearly) every time it occurs. With few pages, list markers
    # ("1.", "ii.") or labels ("b) Funciones") can fall near two breaks by chance; they occur elsewhere too.
    running = {
        n
        for n, c in near.items()
        if c >= need and n and n != "#" and not _LIST_MARKER.fullmatch(n) and c * 5 >= everywhere[n] * 4
    }
    prefixes = _running_prefixes(after_lines, need, running)
    # A running line found on its own on most pages can also be run into the first line of another page.
    glued = [_running_pattern(n) for n in sorted(running, key=len, reverse=True) if len(n) >= 15]

    out: list[str] = []
    joined_break = False
    for i, line in enumerate(lines):
        if i in breaks or line == PAGE_BREAK:
            joined_break = True
            continue
        flat = " ".join(line.split())
        if _norm(flat) in running or flat in prefixes:
            continue
        if _PAGE_NUMBER.match(flat) and ((i > breaks[0] and joined_break) or i in page_ends):
            continue  # a page number in the footer or header, next to a break
        if i >= _cover_end(lines, breaks[0]):
            # A header run into the first lines of a page; the same words in mid-page are content.
            flat = _strip_header(flat, prefixes, glued) if i in page_tops else flat
            if not flat:
                continue
        if joined_break and flat and out:
            prev = next((k for k in range(len(out) - 1, -1, -1) if out[k].strip()), None)
            # A page break in the middle of a sentence: glue the halves back together.
            if prev is not None and not out[prev].rstrip().endswith(tuple(_END_PUNCT)) and flat[0].islower():
                out[prev] = out[prev].rstrip() + " " + flat
                del out[prev + 1 :]
                joined_break = False
                continue
        if flat:
            joined_break = False
        out.append(flat)
    return Cleaned(
        text=_tidy(drop_table_of_contents("\n".join(out))),
        cover=cover,
        running_lines=sorted(running),
        running_prefixes=prefixes,
        page_breaks=len(breaks),
    )


def _running_pattern(norm: str) -> re.Pattern[str]:
    """A regex for a normalised running line ("# # MANUAL …") at the start of a line, digits as any."""
    parts = [re.escape(word).replace("\\#", r"\d+") for word in norm.split()]
    return re.compile(r"^" + r"\s+".join(parts) + r"\s+(?=\S)")


def _strip_header(flat: str, prefixes: list[str], glued: list[re.Pattern[str]]) -> str:
    """Remove a running header that was run into the first line of a page."""
    for prefix in prefixes:
        if flat.startswith(prefix + " ") or flat == prefix:
            return flat[len(prefix) :].strip()
    return _strip_glued(flat, glued)


def _strip_glued(flat: str, patterns: list[re.Pattern[str]]) -> str:
    for pattern in patterns:
        m = pattern.match(flat)
        if m:
            return flat[m.end() :]
    return flat


def _cover_end(lines: list[str], first_break: int) -> int:
    """Where the cover block ends: the line after the last metadata value before the first break."""
    for i in range(first_break):
        if re.match(r"^\s*(ÍNDICE|INDICE|CONTENIDO|TABLA DE CONTENIDO)\b", lines[i], re.I):
            return max(0, i - 1)
    return first_break


def _running_prefixes(after_lines: list[str], need: int, running: set[str]) -> list[str]:
    """Word prefixes (>= 3 words) that open the first lines of many pages: a header run into content."""
    counts: Counter[str] = Counter()
    for line in after_lines:
        words = line.split()
        seen = {" ".join(words[:n]) for n in range(3, min(len(words), 14) + 1)}
        counts.update(seen)
    found = [
        p
        for p, c in counts.items()
        if c >= need and len(p) >= 15 and not any(r.startswith(_norm(p)) for r in running)
    ]
    # Longest first, and drop prefixes of a longer accepted one with the same count.
    found.sort(key=len, reverse=True)
    kept: list[str] = []
    for p in found:
        if not any(k.startswith(p) and counts[k] >= counts[p] for k in kept):
            kept.append(p)
    return kept


_TOC_ENTRY = re.compile(r"\.{5,}\s*\d{1,4}")


def drop_table_of_contents(text: str) -> str:
    """Remove an index block ("INDICE ... 12"): its dot leaders would otherwise read as headings."""
    m = re.search(r"^\s*(ÍNDICE|INDICE|CONTENIDO|TABLA DE CONTENIDO)\b.*$", text, re.I | re.M)
    if not m:
        return text
    last = None
    for entry in _TOC_ENTRY.finditer(text, m.start()):
        if last is not None and entry.start() - last > 400:
            break
        last = entry.end()
    if last is None:
        return text
    return text[: m.start()] + text[last:]


def _tidy(text: str) -> str:
    text = re.sub(r"[ \t]+", " ", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip()
