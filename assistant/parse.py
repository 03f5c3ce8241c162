"""Parse stage: turn a cleaned MOF text into a typed `Manual`.

It relies on what MOF manuals of the template share, not on one manual's text: upper-case roman sections
("II. ORGANIGRAMA …", "III. ESTRUCTURA …", "IV. MODIFICACIONES …"), numbered unit headings ("1. Área …",
nested "2.1 Sección …" whose parent is the enclosing unit), an org chart of one position per line (offices
that share one objective and function list each open their chart with their name), "a) Objetivo",
"b) Funciones" with roman or arabic numerals, and a change history whose rows are numbered versions. The
vocabulary (months, section, unit and position words, labels) is data: `assistant/data/template.json`.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from assistant.clean import Cleaned, clean_text
from assistant.models import Document, Function, HistoryEntry, Manual, Unit
from assistant.safety import strip_instructions
from assistant.template import fold, template

_BULLET = "·•▪●◦*–-"


@lru_cache(maxsize=1)
def _date_re() -> re.Pattern[str]:
    months = "|".join(sorted(template().months, key=len, reverse=True))
    return re.compile(r"(\d{1,2})\s+de\s+(" + months + r")\s+(?:de|del)\s+(\d{4})", re.I)


def parse_spanish_date(text: str) -> dt.date | None:
    """The first "15 de marzo de 2016" style date in the text."""
    m = _date_re().search(text)
    if not m:
        return None
    try:
        return dt.date(int(m.group(3)), template().months[m.group(2).lower()], int(m.group(1)))
    except ValueError:
        return None


def roman(n: int) -> str:
    """Lower-case roman numeral of n (1..3999)."""
    out = []
    for value, sym in (
        (1000, "m"),
        (900, "cm"),
        (500, "d"),
        (400, "cd"),
        (100, "c"),
        (90, "xc"),
        (50, "l"),
        (40, "xl"),
        (10, "x"),
        (9, "ix"),
        (5, "v"),
        (4, "iv"),
        (1, "i"),
    ):
        while n >= value:
            out.append(sym)
            n -= value
    return "".join(out)


def smart_title(text: str) -> str:
    """Title case in the Spanish way: "GERENCIA DE SERVICIO AL CLIENTE" -> "Gerencia de Servicio al Cliente"."""
    small = template().small_words
    words = text.lower().split()
    return " ".join(w if (i and w in small) else w[:1].upper() + w[1:] for i, w in enumerate(words))


def _flat(text: str) -> str:
    return " ".join(text.split())


def _chart_lines(text: str) -> list[str]:
    """The non-empty lines of a chart, each with its spaces squashed: what a chart quote is made of (a bare
    bullet left at either end, the mark of the next office or the page, is not)."""
    lines = [line for line in (_flat(raw) for raw in text.split("\n")) if line]
    while lines and not _strip_bullets(lines[-1]):
        lines.pop()
    while lines and not _strip_bullets(lines[0]):
        lines.pop(0)
    return lines


def _strip_bullets(text: str) -> str:
    return text.strip().strip(_BULLET).strip()


# --- cover ---------------------------------------------------------------------------------------------


@dataclass
class _Cover:
    code: str = ""
    title: str = ""
    version: int | None = None
    effective_date: dt.date | None = None
    created_date: dt.date | None = None
    authorized_by: str = ""
    reviewed_by: list[str] = field(default_factory=list)
    process_owner: str = ""


def parse_cover(cover: str) -> _Cover:
    """Code, title, version, dates and authoriser from the cover block."""
    out = _Cover()
    # A long title wraps onto the next line(s), which are then still all capitals.
    m = re.search(
        r"C[ÓO]DIGO:?\s*(\d[\d .-]*\d)\s+(.+(?-i:\n[ \t]*[A-ZÁÉÍÓÚÑÜ][A-ZÁÉÍÓÚÑÜ ,]*$)*)", cover, re.I | re.M
    )
    if m:
        out.code = _flat(m.group(1))
        out.title = smart_title(_flat(m.group(2)))
    m = re.search(r"Autorizad[oa](?: por)?:\s*([^\n]+)", cover, re.I)
    if m:
        out.authorized_by = _flat(m.group(1))
    labels = [
        (lm.start(), lm.end(), kind)
        for kind, pat in (
            ("created", r"Fecha de creaci[óo]n:?"),
            ("effective", r"Fecha de vigencia:?"),
            ("version", r"Versi[óo]n:?"),
        )
        for lm in re.finditer(pat, cover, re.I)
    ]
    labels.sort()
    m = re.search(r"Revisad[oa](?: por)?:\s*(.*?)(?=\n[^\n:]*:|\Z)", cover, re.I | re.S)
    if m:
        out.reviewed_by = [_flat(x) for x in m.group(1).split("\n") if _flat(x)]
    m = re.search(r"Responsable de(?:l)? [Pp]roceso:\s*([^\n]+)", cover)
    if m:
        out.process_owner = _flat(m.group(1))
    bare = [end for _s, end, _k in labels if not cover[end:].split("\n", 1)[0].strip()]
    if labels:
        # Labels stacked above their values (a scraped table): values follow the last bare label.
        tail = cover[bare[-1] :] if bare else ""
        queue_dates = [d for d in (parse_spanish_date(x.group(0)) for x in _date_re().finditer(tail)) if d]
        queue_ints = [int(x) for x in re.findall(r"(?m)^\s*(\d{1,3})\s*$", tail)]
        for _start, end, kind in labels:
            line = cover[end:].split("\n", 1)[0]
            if kind == "version":
                inline = re.match(r"\s*(\d{1,3})\b", line)
                value_int = int(inline.group(1)) if inline else (queue_ints.pop(0) if queue_ints else None)
                out.version = out.version or value_int
                continue
            inline_date = parse_spanish_date(line) if _date_re().match(line.strip()) else None
            value = inline_date or (queue_dates.pop(0) if queue_dates else None)
            if kind == "created":
                out.created_date = out.created_date or value
            else:
                out.effective_date = out.effective_date or value
    return out


# --- sections and units ------------------------------------------------------------------------------------


def split_sections(text: str) -> list[tuple[str, str, str]]:
    """(kind, title, body) for each upper-case roman section, found in sequence I, II, III …"""
    found: list[tuple[int, int, str]] = []
    pos = 0
    n = 1
    while True:
        pat = re.compile(
            rf"(?:^|(?<=\s)){roman(n).upper()}\.\s+([A-ZÁÉÍÓÚÑÜ][A-ZÁÉÍÓÚÑÜ ,]*?[A-ZÁÉÍÓÚÑÜ])"
            r"(?=\s+[A-ZÁÉÍÓÚÑ][a-záéíóúñ]|\s*\n|\s*$)"
        )
        m = pat.search(text, pos)
        if not m:
            break
        found.append((m.start(), m.end(), m.group(1)))
        pos = m.end()
        n += 1
    sections = []
    for i, (_start, end, title) in enumerate(found):
        stop = found[i + 1][0] if i + 1 < len(found) else len(text)
        kinds = template().section_kinds.model_dump().items()
        kind = next((k for k, words in kinds if any(w in title for w in words)), "other")
        sections.append((kind, title, text[end:stop].strip()))
    return sections


def split_functions(text: str) -> list[Function]:
    """Split "i. … ii. …" (or "1. … 2. …") into functions, looking for each next numeral in sequence."""
    arabic = re.match(r"\s*1[.)]\s", text) is not None
    functions: list[Function] = []
    starts: list[tuple[int, int, str]] = []
    pos = 0
    n = 1
    while True:
        numeral = str(n) if arabic else roman(n)
        m = re.compile(rf"(?:^|(?<=\s)){numeral}[.)]\s").search(text, pos)
        if not m:
            break
        starts.append((m.start(), m.end(), numeral))
        pos = m.end()
        n += 1
    for i, (_s, e, numeral) in enumerate(starts):
        stop = starts[i + 1][0] if i + 1 < len(starts) else len(text)
        body = _flat(text[e:stop])
        if body:
            functions.append(Function(numeral=numeral, text=body))
    return functions


def _label_re(letter: str, labels: list[str]) -> re.Pattern[str]:
    alternatives = "|".join(r"\s+".join(re.escape(w) for w in label.split()) for label in labels)
    return re.compile(rf"(?:^|(?<=\s)){letter}\)\s*(?:{alternatives})\b:?", re.I)


@lru_cache(maxsize=1)
def _markers() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """The "a) Objetivo" and "b) Funciones" markers, with the template's label variants."""
    return _label_re("a", template().objective_labels), _label_re("b", template().function_labels)


@dataclass
class _Block:
    chart: str
    objective: str
    functions: list[Function]


def parse_unit_block(block: str) -> _Block:
    """Org chart text, objective and functions of one unit's block."""
    obj_re, fun_re = _markers()
    obj = obj_re.search(block)
    fun = fun_re.search(block, obj.end() if obj else 0)
    chart_end = obj.start() if obj else (fun.start() if fun else len(block))
    objective = _flat(block[obj.end() : fun.start() if fun else len(block)]) if obj else ""
    functions = split_functions(block[fun.end() :]) if fun else []
    return _Block(chart=block[:chart_end], objective=objective, functions=functions)


def chart_positions(chart: str) -> list[str]:
    """One position per line of an org chart, bullets dropped; labelled lines ("Dependencia: …") are not."""
    lines = (_strip_bullets(_flat(line)) for line in chart.split("\n"))
    return [p for p in lines if p and ":" not in p]


def split_name_and_position(line: str) -> tuple[str, str | None]:
    """Split "Agencia Santa Ana Jefe de Agencia" into the unit name and its first position.

    A position title starts with a position word that does not follow a linking word ("Unidad de
    Secretaría …" is a name) and has at least two words ("Sección de Evaluación Técnica" is a name).
    """
    t = template()
    words = line.split()
    for i in range(1, len(words) - 1):
        starts_title = fold(words[i]) in t.position_words and words[i][:1].isupper()
        if starts_title and fold(words[i - 1]) not in t.small_words:
            return " ".join(words[:i]), " ".join(words[i:])
    return line, None


def _proper_name(upper: str, text: str) -> str:
    """Find how a name written in capitals is spelt in running text; fall back to Spanish title case."""
    pattern = re.compile(r"\s+".join(re.escape(w) for w in upper.split()), re.I)
    for m in pattern.finditer(text):
        if m.group(0) != m.group(0).upper():
            return _flat(m.group(0))
    return smart_title(upper)


@dataclass
class _Heading:
    start: int
    end: int
    number: tuple[int, ...]
    name: str
    first_position: str | None


_MAX_DEPTH = 3


def _next_numbers(path: tuple[int, ...]) -> list[tuple[int, ...]]:
    """The numbers that may follow heading `path`: its first child, or the next sibling at any level."""
    if not path:
        return [(1,)]
    out = [(*path, 1)] if len(path) < _MAX_DEPTH else []
    out += [(*path[:i], path[i] + 1) for i in range(len(path) - 1, -1, -1)]
    return out


def _find_heading(text: str, number: tuple[int, ...], pos: int) -> _Heading | None:
    """The first "2." / "2.1" / "2.1." heading at or after pos whose title starts with a unit word."""
    num = r"\.".join(str(n) for n in number) + (r"\." if len(number) == 1 else r"\.?")
    pattern = re.compile(rf"(?:^|(?<=\s)){num}[ \t]+([A-ZÁÉÍÓÚÑ][^\n]*)")
    obj_re, _fun = _markers()
    for m in pattern.finditer(text, pos):
        line = m.group(1)
        label = obj_re.search(line)
        raw = _strip_bullets(line[: label.start()] if label else line)
        if raw and fold(raw.split()[0]) in template().unit_words:
            name, first = split_name_and_position(raw)
            end = m.start(1) + (label.start() if label else len(line))
            return _Heading(m.start(), end, number, name, first)
    return None


def _unit_headings(text: str) -> list[_Heading]:
    """Numbered unit headings ("1. Área …", "2.1 Sección …"), found in sequence."""
    out: list[_Heading] = []
    pos = 0
    path: tuple[int, ...] = ()
    while True:
        found = [h for h in (_find_heading(text, n, pos) for n in _next_numbers(path)) if h]
        if not found:
            return out
        heading = min(found, key=lambda h: h.start)
        out.append(heading)
        pos = heading.end
        path = heading.number


def _sub_units(chart: str, parent: str, block: _Block) -> list[Unit]:
    """Offices listed under one group ("· Agencia Santa Ana Jefe de Agencia" + its chart) sharing its duties.

    An office's chart opens with a line that starts with a unit word; a position never does.
    """
    lines = chart_positions(chart)
    starts = [i for i, line in enumerate(lines) if fold(line.split()[0]) in template().unit_words]
    if not starts or starts[0] != 0:
        return []
    # Each office's own lines of the chart as printed (labelled lines included), for its quote.
    raw = _chart_lines(chart)
    raw_starts = [i for i, line in enumerate(raw) if _strip_bullets(line) in {lines[s] for s in starts}]
    subs: list[Unit] = []
    for k, start in enumerate(starts):
        chunk = lines[start : starts[k + 1] if k + 1 < len(starts) else len(lines)]
        own = raw[raw_starts[k] : raw_starts[k + 1] if k + 1 < len(raw_starts) else len(raw)]
        sub_name, sub_first = split_name_and_position(chunk[0])
        positions = ([sub_first] if sub_first else []) + chunk[1:]
        subs.append(
            Unit(
                name=sub_name,
                parent=parent,
                head=positions[0] if positions else None,
                positions=positions,
                objective=block.objective,
                functions=list(block.functions),
                chart="\n".join(own) if len(raw_starts) == len(starts) else "",
            )
        )
    return subs


def _parse_groups(body: str, top: str, warnings: list[str]) -> list[Unit]:
    units: list[Unit] = []
    headings = _unit_headings(body)
    declared = re.search(r"dividid[ao]s? en (\d+)", body)
    first_level = [h for h in headings if len(h.number) == 1]
    if declared and int(declared.group(1)) != len(first_level):
        warnings.append(f"The manual says {declared.group(1)} groups but {len(first_level)} were found.")
    names = {h.number: h.name for h in headings}
    for i, heading in enumerate(headings):
        stop = headings[i + 1].start if i + 1 < len(headings) else len(body)
        block = parse_unit_block(body[heading.end : stop])
        name = heading.name
        parent = names.get(heading.number[:-1], top) if len(heading.number) > 1 else top
        number = heading.number[0] if len(heading.number) == 1 else None
        chart = "\n".join(_chart_lines(body[heading.start : heading.end] + "\n" + block.chart))
        subs = _sub_units(block.chart, name, block)
        if subs:
            heads = {s.head for s in subs}
            units.append(
                Unit(
                    name=name,
                    parent=parent,
                    head=heads.pop() if len(heads) == 1 else None,
                    positions=[],
                    objective=block.objective,
                    functions=block.functions,
                    number=number,
                    chart=chart,
                )
            )
            units.extend(subs)
            continue
        chart_lines = ([heading.first_position] if heading.first_position else []) + chart_positions(
            block.chart
        )
        units.append(
            Unit(
                name=name,
                parent=parent,
                head=chart_lines[0] if chart_lines else None,
                positions=chart_lines,
                objective=block.objective,
                functions=block.functions,
                number=number,
                chart=chart,
            )
        )
    return units


def _children(units: list[Unit]) -> dict[str | None, list[Unit]]:
    """Each parent's units, in the manual's order."""
    children: dict[str | None, list[Unit]] = {}
    for u in units:
        children.setdefault(u.parent, []).append(u)
    return children


def _chartless_heads(units: list[Unit]) -> list[Unit]:
    """A unit with no chart of its own gets its head from its parent's chart, when that chart ends with the
    heads of the parent's units in their order: every other unit's head is where it should be, so the one
    position at the chartless unit's place is its head (the template lists the groups' heads in order)."""
    children = _children(units)
    heads: dict[str, str] = {}
    for parent in units:
        kids = [k for k in children.get(parent.name, []) if k.name != parent.name]
        if not kids or len(parent.positions) <= len(kids):
            continue
        tail = parent.positions[-len(kids) :]
        known = [(k, t) for k, t in zip(kids, tail, strict=True) if k.head]
        blank = [(k, t) for k, t in zip(kids, tail, strict=True) if not k.head]
        if len(known) < 2 or not blank or any(k.head != t for k, t in known):
            continue
        for k, t in blank:
            if not k.positions and not children.get(k.name) and t not in {h for _, h in known}:
                heads[k.name] = t
    return [
        u.model_copy(update={"head": heads[u.name], "positions": [heads[u.name]]}) if u.name in heads else u
        for u in units
    ]


def _without_descendant_heads(units: list[Unit]) -> list[Unit]:
    """A unit's chart lists the heads of the units under it; they belong to those units, not its staff."""
    units = _chartless_heads(units)
    children = _children(units)

    def heads_below(name: str) -> set[str]:
        out: set[str] = set()
        for child in children.get(name, []):
            if child.name == name:
                continue
            if child.head:
                out.add(child.head)
            out |= heads_below(child.name)
        return out

    fixed = []
    for u in units:
        below = heads_below(u.name) if u.positions else set()
        staff = [p for p in u.positions[1:] if p not in below]
        fixed.append(u.model_copy(update={"positions": [u.positions[0], *staff]}) if below else u)
    return fixed


# --- history ---------------------------------------------------------------------------------------------

_SIGNATURE = re.compile(
    r"(?:Analista|Elaborad[oa](?:\s*/\s*actualizad[oa])?\s+por|Actualizad[oa]\s+por|Revisad[oa]\s+por|"
    # A name wrapped onto the next line ("Analista: Esmeralda\nNajarro de Artiga.") continues the signature.
    r"Preparad[oa]\s+por)\s*:\s*(?P<who>[^·\n]*?"
    r"(?-i:\n(?:[A-ZÁÉÍÓÚÑ]\w*|de|del|la|y)(?:[ /]+(?:[A-ZÁÉÍÓÚÑ]\w*|de|del|la|y))*(?=\.(?:\s|$)))?)"
    r"(?:\.(?=\s|$)|(?=\s*·)|(?=\n)|$)",
    re.I,
)


@lru_cache(maxsize=1)
def _date_statement() -> re.Pattern[str]:
    pattern = r"[·\s]*(?:Fecha de (?:última modificación|vigencia)\s*:\s*)?" + _date_re().pattern + r"\.?"
    return re.compile(pattern, re.I)


@lru_cache(maxsize=1)
def _date_terminator() -> re.Pattern[str]:
    return re.compile(r"[·\s]*Fecha de vigencia\s*:\s*" + _date_re().pattern + r"\.?", re.I)


def _cell(phrase: str) -> re.Pattern[str]:
    """A phrase standing alone between line starts/ends, sentence ends or bullets."""
    return re.compile(rf"(?:^|(?<=[.·:])|(?<=[.·:]\s))[ \t·]*{re.escape(phrase)}[ \t]*(?=[·\n]|$)", re.M)


def parse_history(body: str) -> list[HistoryEntry]:
    """Reconstruct the change history: from a table read row by row, or one whose columns are interleaved."""
    lines = body.split("\n")
    markers: list[tuple[int, int]] = []
    for i, line in enumerate(lines):
        m = re.fullmatch(r"\s*(\d{1,3})\.\s*", line)
        if m and int(m.group(1)) == len(markers) + 1:
            markers.append((i, int(m.group(1))))
    if not markers:
        return []
    segments: dict[int, str] = {}
    dates: dict[int, dt.date | None] = {}
    previous: dt.date | None = None
    for k, (i, version) in enumerate(markers):
        stop = markers[k + 1][0] if k + 1 < len(markers) else len(lines)
        segments[version] = "\n".join(lines[i + 1 : stop])
        dates[version] = _version_date(segments[version], previous)
        previous = dates[version] or previous

    # Column headers and the authorisation column repeat on every page: drop phrases that do.
    section = "\n".join(lines)
    candidates = {
        _strip_bullets(_flat(line))
        for line in lines
        if line.strip() and not re.search(r"[\d:]", line) and len(line.split()) <= 8
    }
    # Count only occurrences that stand as a cell (between line or sentence boundaries): "Jurídico Agencia"
    # wrapped onto its own line is not a column cell just because "Técnico Jurídico Agencia" occurs elsewhere.
    repeated = sorted(
        (c for c in candidates if c and len(re.findall(_cell(c), section)) >= 2), key=len, reverse=True
    )
    for version, segment in segments.items():
        segments[version] = _drop_own_dates(segment, dates[version])
    if _interleaved(segments, dates):
        groups = _interleaved_groups(segments, dates, repeated)
    else:
        groups = {v: _row_group(segment, repeated) for v, segment in segments.items()}
    history = []
    for _i, version in markers:
        text, who = groups.get(version, ("", ""))
        history.append(
            HistoryEntry(version=version, date=dates[version], changes=_changes(text), prepared_by=who)
        )
    return history


def verbatim(text: str, source: str) -> str:
    """The text as a whitespace-squashed source has it: itself, or its longest runs of words joined by " … "
    where something sits between them in the source; the text itself when a word cannot be found."""
    flat = " ".join(text.split())
    if flat in source:
        return flat
    words = flat.split()
    pieces: list[str] = []
    i = 0
    while i < len(words):
        j = len(words)
        while j > i and " ".join(words[i:j]) not in source:
            j -= 1
        if j == i:
            return flat
        pieces.append(" ".join(words[i:j]))
        i = j
    return " … ".join(pieces)


def _with_quotes(entry: HistoryEntry, text: str) -> HistoryEntry:
    """A history row with the verbatim form of each change that the source interrupts."""
    source = " ".join(text.split())
    quotes = {c: q for c in entry.changes if (q := verbatim(c, source)) != " ".join(c.split())}
    return entry.model_copy(update={"quotes": quotes}) if quotes else entry


def _drop_own_dates(segment: str, own: dt.date | None) -> str:
    """Each version's own date statements, under its number, are the date column: not a change."""
    if own is None:
        return segment

    def _drop(m: re.Match[str]) -> str:
        return "" if parse_spanish_date(m.group(0)) == own else m.group(0)

    return _date_statement().sub(_drop, segment)


def _interleaved(segments: dict[int, str], dates: dict[int, dt.date | None]) -> bool:
    """Whether the scrape interleaved the columns: an earlier version's "Fecha de vigencia" under a number."""
    for version, segment in segments.items():
        own = dates[version]
        for m in _date_terminator().finditer(segment):
            date = parse_spanish_date(m.group(0))
            if own and date and date < own:
                return True
    return False


def _without_phrases(text: str, phrases: list[str]) -> str:
    for phrase in phrases:
        text = re.sub(rf"(?<!\w){re.escape(phrase)}(?!\w)", " ", text)
    return text


def _row_group(segment: str, repeated: list[str]) -> tuple[str, str]:
    """A version's changes and signature when the table was read row by row."""
    text = _without_phrases(segment, repeated)
    who = ""
    for m in _SIGNATURE.finditer(text):
        who = who or _flat(m.group("who") or "")
    return _SIGNATURE.sub(" ", text), who


def _interleaved_groups(
    segments: dict[int, str], dates: dict[int, dt.date | None], repeated: list[str]
) -> dict[int, tuple[str, str]]:
    """Split the interleaved description column into versions at signatures and labelled dates."""
    stream = _without_phrases("\n".join(segments.values()), repeated)
    by_date = {d: v for v, d in dates.items() if d}
    groups: dict[int, tuple[str, str]] = {}
    cursor = 0
    last_version = 0
    # A version's description ends at a signature, or at a labelled date that belongs to it.
    pattern = re.compile(f"{_SIGNATURE.pattern}|{_date_terminator().pattern}", re.I)
    for m in pattern.finditer(stream):
        is_signature = _SIGNATURE.fullmatch(m.group(0).strip()) is not None or m.group("who") is not None
        date = None if is_signature else parse_spanish_date(m.group(0))
        if not is_signature and date not in by_date:
            continue
        text = stream[cursor : m.start()]
        version = by_date[date] if date in by_date else last_version + 1
        if version <= last_version:
            version = last_version + 1
        who = _flat(m.group("who") or "") if is_signature else ""
        if version in dates:
            groups[version] = (text, who)
            last_version = version
        cursor = m.end()
    tail = stream[cursor:]
    if _flat(tail).strip(_BULLET + " ") and last_version + 1 in dates:
        groups[last_version + 1] = (tail, "")
    return groups


def _version_date(segment: str, previous: dt.date | None) -> dt.date | None:
    """A version's date: the first date under its number that is later than the previous version's.

    The scrape interleaves columns, so an earlier version's "Fecha de vigencia" can sit under this number.
    """
    for m in _date_re().finditer(segment):
        date = parse_spanish_date(m.group(0))
        if date and (previous is None or date > previous):
            return date
    return None


def _changes(text: str) -> list[str]:
    items = [_flat(x) for x in re.split(rf"[{_BULLET}]", text)]
    items = [x for x in items if x and x.strip(_BULLET + " .")]
    # A wrapped column can leave "… Regionales. de los puestos de" + "Eliminación Coordinador …":
    # move the orphaned lower-case fragment back after the next item's first word.
    for k in range(len(items) - 1):
        m = re.search(r"(?<=\.)\s+([a-záéíóúñ][^.]*)$", items[k])
        if m:
            fragment = m.group(1).strip()
            items[k] = items[k][: m.start()].strip()
            first, _, rest = items[k + 1].partition(" ")
            items[k + 1] = f"{first} {fragment} {rest}".strip()
    return items


def _without_instructions(unit: Unit, source: str, warnings: list[str]) -> Unit:
    """Drop sentences that give orders to an assistant: planted text must never be quoted as a duty."""
    functions = []
    for f in unit.functions:
        text, dropped = strip_instructions(f.text)
        if dropped:
            warnings.append(
                f"{Path(source).name}: an instruction-like sentence in {unit.name} {f.numeral} was ignored."
            )
        if text:
            functions.append(Function(numeral=f.numeral, text=text))
    objective, dropped = strip_instructions(unit.objective) if unit.objective else ("", False)
    if dropped:
        warnings.append(
            f"{Path(source).name}: an instruction-like sentence in the objective of {unit.name} was ignored."
        )
    chart = unit.chart
    if any(strip_instructions(line)[1] for line in chart.split("\n")):
        chart = ""  # planted text in a chart: quote the parsed positions instead
    return unit.model_copy(update={"functions": functions, "objective": objective, "chart": chart})


# --- manual ----------------------------------------------------------------------------------------------


def manual_id(path: str) -> str:
    """A stable id for a manual: its file name without extension."""
    return Path(path).stem


def parse_document(doc: Document) -> Manual:
    """Parse one ingested document into a `Manual` (plain sections and a warning if it is not a MOF)."""
    cleaned = clean_text(doc.text)
    return parse_text(cleaned, doc.path)


def parse_text(cleaned: Cleaned, source: str) -> Manual:
    """Parse cleaned text; see the module docstring."""
    text = cleaned.text
    cover = parse_cover(cleaned.cover or text[:3000])
    if cover.effective_date is None:
        # The running footer often carries the effective date ("Fecha de vigencia: …").
        for line in cleaned.running_lines:
            if "vigencia" in fold(line):
                cover.effective_date = parse_spanish_date(
                    next((raw for raw in text.split("\n") if "vigencia" in fold(raw)), "")
                )
    warnings: list[str] = []
    units: list[Unit] = []
    history: list[HistoryEntry] = []
    purpose = ""
    structure_intro = ""
    sections = split_sections(text)
    top_name: str | None = None
    for kind, title, body in sections:
        if kind == "purpose" and "ORGANIGRAMA" not in title:
            purpose = _flat(body)
        elif kind == "chart":
            name_upper = re.sub(r"^ORGANIGRAMA\s+(GENERAL\s+)?(DE\s+LA\s+|DEL\s+|DE\s+)?", "", title)
            top_name = _proper_name(name_upper, text) if name_upper else smart_title(title)
            block = parse_unit_block(body)
            lines = chart_positions(block.chart)
            units.insert(
                0,
                Unit(
                    name=top_name,
                    parent=None,
                    head=lines[0] if lines else None,
                    positions=lines,
                    objective=block.objective,
                    functions=block.functions,
                    chart="\n".join(_chart_lines(block.chart)),
                ),
            )
        elif kind == "structure":
            units.extend(_parse_groups(body, top_name or cover.title, warnings))
            first = _unit_headings(body)
            structure_intro = _flat(body[: first[0].start]) if first else ""
        elif kind == "history":
            history = [_with_quotes(h, text) for h in parse_history(body)]
    units = _without_descendant_heads(units)
    units = [_without_instructions(u, source, warnings) for u in units]
    sections_plain: list[str] = []
    if not any(u.functions for u in units):
        warnings.append(
            f"{Path(source).name}: no MOF structure was recognised (no 'a) Objetivo' / 'b) Funciones'); "
            "it is indexed as plain sections."
        )
        sections_plain = [_flat(p) for p in re.split(r"\n\s*\n", text) if _flat(p)]
        sections_plain = [s for s in (strip_instructions(p)[0] for p in sections_plain) if s]
    return Manual(
        id=manual_id(source),
        source=source,
        code=cover.code,
        title=cover.title,
        version=cover.version,
        effective_date=cover.effective_date,
        created_date=cover.created_date,
        authorized_by=cover.authorized_by,
        reviewed_by=cover.reviewed_by,
        process_owner=cover.process_owner,
        purpose=purpose,
        structure_intro=structure_intro,
        units=units,
        history=history,
        sections=sections_plain,
        warnings=warnings,
    )
