"""Parse stage: turn a cleaned MOF text into a typed `Manual`.

It relies on what MOF manuals share, not on this file's line numbers: upper-case roman sections
("II. ORGANIGRAMA …", "III. ESTRUCTURA …", "IV. MODIFICACIONES …"), numbered groups ("1. Área …"), an org
chart of one position per line, "a) Objetivo", "b) Funciones" with lower-case roman numerals, and a change
history whose rows are numbered versions.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from assistant.clean import Cleaned, clean_text
from assistant.models import Document, Function, HistoryEntry, Manual, Unit
from assistant.safety import strip_instructions

MONTHS = {
    "enero": 1,
    "febrero": 2,
    "marzo": 3,
    "abril": 4,
    "mayo": 5,
    "junio": 6,
    "julio": 7,
    "agosto": 8,
    "septiembre": 9,
    "setiembre": 9,
    "octubre": 10,
    "noviembre": 11,
    "diciembre": 12,
}
DATE_RE = re.compile(r"(\d{1,2})\s+de\s+(" + "|".join(MONTHS) + r")\s+(?:de|del)\s+(\d{4})", re.I)
# First words of position titles in Spanish org charts; used to split "Agencia Santa Ana Jefe de Agencia".
POSITION_WORDS = frozenset(
    [
        "jefe",
        "jefa",
        "gerente",
        "subgerente",
        "director",
        "directora",
        "subdirector",
        "coordinador",
        "coordinadora",
        "supervisor",
        "supervisora",
        "asistente",
        "auxiliar",
        "secretaria",
        "secretario",
        "tecnico",
        "tecnica",
        "analista",
        "promotor",
        "promotora",
        "gestor",
        "gestora",
        "colaborador",
        "colaboradora",
        "ordenanza",
        "perito",
        "encargado",
        "encargada",
        "especialista",
        "oficial",
        "ejecutivo",
        "ejecutiva",
        "cajero",
        "cajera",
        "motorista",
        "asesor",
        "asesora",
        "administrador",
        "administradora",
        "contador",
        "contadora",
        "abogado",
        "abogada",
        "notario",
        "digitador",
        "digitadora",
        "recepcionista",
        "inspector",
        "inspectora",
        "operador",
        "operadora",
        "agente",
        "consultor",
        "ingeniero",
        "arquitecto",
        "valuador",
        "notificador",
        "archivista",
        "mensajero",
        "conserje",
        "vigilante",
        "responsable",
        "delegado",
        "representante",
    ]
)
SMALL_WORDS = frozenset(
    ["de", "del", "la", "las", "el", "los", "al", "y", "e", "o", "u", "en", "a", "para", "por", "con", "sin"]
)
_BULLET = "·•▪●◦*–-"
_SECTION_KINDS = (
    ("history", ("MODIFICACION", "HISTORIAL", "CONTROL DE CAMBIOS", "CONTROL DE VERSIONES", "CAMBIOS")),
    ("chart", ("ORGANIGRAMA",)),
    ("structure", ("ESTRUCTURA",)),
    ("purpose", ("OBJETIVO",)),
)


def fold(text: str) -> str:
    """Lower-case and strip accents (for matching, never for display)."""
    nfkd = unicodedata.normalize("NFKD", text)
    return "".join(c for c in nfkd if not unicodedata.combining(c)).lower()


def parse_spanish_date(text: str) -> dt.date | None:
    """The first "15 de marzo de 2016" style date in the text."""
    m = DATE_RE.search(text)
    if not m:
        return None
    try:
        return dt.date(int(m.group(3)), MONTHS[m.group(2).lower()], int(m.group(1)))
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
    words = text.lower().split()
    return " ".join(w if (i and w in SMALL_WORDS) else w[:1].upper() + w[1:] for i, w in enumerate(words))


def _flat(text: str) -> str:
    return " ".join(text.split())


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
        queue_dates = [d for d in (parse_spanish_date(x.group(0)) for x in DATE_RE.finditer(tail)) if d]
        queue_ints = [int(x) for x in re.findall(r"(?m)^\s*(\d{1,3})\s*$", tail)]
        for _start, end, kind in labels:
            line = cover[end:].split("\n", 1)[0]
            if kind == "version":
                inline = re.match(r"\s*(\d{1,3})\b", line)
                value_int = int(inline.group(1)) if inline else (queue_ints.pop(0) if queue_ints else None)
                out.version = out.version or value_int
                continue
            inline_date = parse_spanish_date(line) if DATE_RE.match(line.strip()) else None
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
        kind = next((k for k, words in _SECTION_KINDS if any(w in title for w in words)), "other")
        sections.append((kind, title, text[end:stop].strip()))
    return sections


def split_functions(text: str) -> list[Function]:
    """Split "i. … ii. … iii. …" into functions, looking for each next numeral in sequence."""
    functions: list[Function] = []
    starts: list[tuple[int, int, str]] = []
    pos = 0
    n = 1
    while True:
        m = re.compile(rf"(?:^|(?<=\s)){roman(n)}[.)]\s").search(text, pos)
        if not m:
            break
        starts.append((m.start(), m.end(), roman(n)))
        pos = m.end()
        n += 1
    for i, (_s, e, numeral) in enumerate(starts):
        stop = starts[i + 1][0] if i + 1 < len(starts) else len(text)
        body = _flat(text[e:stop])
        if body:
            functions.append(Function(numeral=numeral, text=body))
    return functions


_OBJ = re.compile(r"(?:^|(?<=\s))a\)\s*Objetivos?\b:?", re.I)
_FUN = re.compile(r"(?:^|(?<=\s))b\)\s*Funci[oó]n(?:es)?\b:?", re.I)


@dataclass
class _Block:
    chart: str
    objective: str
    functions: list[Function]


def parse_unit_block(block: str) -> _Block:
    """Org chart text, objective and functions of one unit's block."""
    obj = _OBJ.search(block)
    fun = _FUN.search(block, obj.end() if obj else 0)
    chart_end = obj.start() if obj else (fun.start() if fun else len(block))
    objective = _flat(block[obj.end() : fun.start() if fun else len(block)]) if obj else ""
    functions = split_functions(block[fun.end() :]) if fun else []
    return _Block(chart=block[:chart_end], objective=objective, functions=functions)


def chart_positions(chart: str) -> list[str]:
    """One position per line of an org chart, bullets dropped."""
    return [p for p in (_strip_bullets(_flat(line)) for line in chart.split("\n")) if p]


def split_name_and_position(line: str) -> tuple[str, str | None]:
    """Split "Agencia Santa Ana Jefe de Agencia" into the unit name and its first position."""
    words = line.split()
    for i in range(1, len(words)):
        if fold(words[i]) in POSITION_WORDS:
            return " ".join(words[:i]), " ".join(words[i:])
    return line, None


def _proper_name(upper: str, text: str) -> str:
    """Find how a name written in capitals is spelt in running text; fall back to Spanish title case."""
    pattern = re.compile(r"\s+".join(re.escape(w) for w in upper.split()), re.I)
    for m in pattern.finditer(text):
        if m.group(0) != m.group(0).upper():
            return _flat(m.group(0))
    return smart_title(upper)


def _group_headings(text: str) -> list[tuple[int, int, int, str]]:
    """(start, end, number, name) of numbered groups "1. Área …", found in sequence."""
    out = []
    pos = 0
    n = 1
    while True:
        m = re.compile(rf"(?:^|(?<=\s)){n}\.\s+([A-ZÁÉÍÓÚÑ][^\n]*)").search(text, pos)
        if not m:
            break
        name = _strip_bullets(m.group(1))
        out.append((m.start(), m.end(), n, name))
        pos = m.end()
        n += 1
    return out


def _parse_groups(body: str, top: str, warnings: list[str]) -> list[Unit]:
    units: list[Unit] = []
    headings = _group_headings(body)
    declared = re.search(r"dividid[ao]s? en (\d+)", body)
    if declared and int(declared.group(1)) != len(headings):
        warnings.append(f"The manual says {declared.group(1)} groups but {len(headings)} were found.")
    for i, (_start, end, number, raw_name) in enumerate(headings):
        stop = headings[i + 1][0] if i + 1 < len(headings) else len(body)
        block = parse_unit_block(body[end:stop])
        name, first = split_name_and_position(raw_name)
        chart_lines = ([first] if first else []) + chart_positions(block.chart)
        sub_chunks = [c for c in re.split(rf"(?m)^\s*[{_BULLET}]\s*$|\n\s*[{_BULLET}]\s+", block.chart)]
        sub_chunks = [c for c in sub_chunks if c.strip()]
        if len(sub_chunks) >= 2 or (block.chart.strip()[:1] in _BULLET and sub_chunks):
            subs: list[Unit] = []
            for chunk in sub_chunks:
                lines = chart_positions(chunk)
                if not lines:
                    continue
                sub_name, sub_first = split_name_and_position(lines[0])
                positions = ([sub_first] if sub_first else []) + lines[1:]
                subs.append(
                    Unit(
                        name=sub_name,
                        parent=name,
                        head=positions[0] if positions else None,
                        positions=positions,
                        objective=block.objective,
                        functions=list(block.functions),
                    )
                )
            heads = {s.head for s in subs}
            units.append(
                Unit(
                    name=name,
                    parent=top,
                    head=heads.pop() if len(heads) == 1 else None,
                    positions=[],
                    objective=block.objective,
                    functions=block.functions,
                    number=number,
                )
            )
            units.extend(subs)
        else:
            units.append(
                Unit(
                    name=name,
                    parent=top,
                    head=chart_lines[0] if chart_lines else None,
                    positions=chart_lines,
                    objective=block.objective,
                    functions=block.functions,
                    number=number,
                )
            )
    return units


# --- history ---------------------------------------------------------------------------------------------

_SIGNATURE = re.compile(
    r"(?:Analista|Elaborad[oa](?:\s*/\s*actualizad[oa])?\s+por|Actualizad[oa]\s+por|Revisad[oa]\s+por|"
    # A name wrapped onto the next line ("Analista: Esmeralda\nNajarro de Artiga.") continues the signature.
    r"Preparad[oa]\s+por)\s*:\s*(?P<who>[^·\n]*?"
    r"(?-i:\n(?:[A-ZÁÉÍÓÚÑ]\w*|de|del|la|y)(?:[ /]+(?:[A-ZÁÉÍÓÚÑ]\w*|de|del|la|y))*(?=\.(?:\s|$)))?)"
    r"(?:\.(?=\s|$)|(?=\s*·)|(?=\n)|$)",
    re.I,
)
_DATE_STATEMENT = re.compile(
    r"[·\s]*(?:Fecha de (?:última modificación|vigencia)\s*:\s*)?" + DATE_RE.pattern + r"\.?", re.I
)


_DATE_TERMINATOR = re.compile(r"[·\s]*Fecha de vigencia\s*:\s*" + DATE_RE.pattern + r"\.?", re.I)


def _cell(phrase: str) -> re.Pattern[str]:
    """A phrase standing alone between line starts/ends, sentence ends or bullets."""
    return re.compile(rf"(?:^|(?<=[.·:])|(?<=[.·:]\s))[ \t·]*{re.escape(phrase)}[ \t]*(?=[·\n]|$)", re.M)


def parse_history(body: str) -> list[HistoryEntry]:
    """Reconstruct the change history from a table whose columns the scrape has interleaved."""
    lines = body.split("\n")
    markers: list[tuple[int, int]] = []
    for i, line in enumerate(lines):
        m = re.fullmatch(r"\s*(\d{1,3})\.\s*", line)
        if m and int(m.group(1)) == len(markers) + 1:
            markers.append((i, int(m.group(1))))
    if not markers:
        return []
    dates: dict[int, dt.date | None] = {}
    for k, (i, version) in enumerate(markers):
        stop = markers[k + 1][0] if k + 1 < len(markers) else len(lines)
        dates[version] = parse_spanish_date("\n".join(lines[i + 1 : stop]))

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
    # Each version's own date statements, right under its number, are the date column.
    stream_parts: list[str] = []
    for k, (i, version) in enumerate(markers):
        stop = markers[k + 1][0] if k + 1 < len(markers) else len(lines)
        segment = "\n".join(lines[i + 1 : stop])
        own = dates[version]
        if own:

            def _drop_own(m: re.Match[str], own: dt.date = own) -> str:
                return "" if parse_spanish_date(m.group(0)) == own else m.group(0)

            segment = _DATE_STATEMENT.sub(_drop_own, segment)
        stream_parts.append(segment)
    stream = "\n".join(stream_parts)
    for phrase in repeated:
        stream = re.sub(rf"(?<!\w){re.escape(phrase)}(?!\w)", " ", stream)

    by_date = {d: v for v, d in dates.items() if d}
    groups: dict[int, tuple[str, str]] = {}
    cursor = 0
    last_version = 0
    # A version's description ends at a signature, or at a labelled date that belongs to it.
    pattern = re.compile(f"{_SIGNATURE.pattern}|{_DATE_TERMINATOR.pattern}", re.I)
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

    history = []
    for _i, version in markers:
        text, who = groups.get(version, ("", ""))
        history.append(
            HistoryEntry(version=version, date=dates[version], changes=_changes(text), prepared_by=who)
        )
    return history


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
    return unit.model_copy(update={"functions": functions, "objective": objective})


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
                ),
            )
        elif kind == "structure":
            units.extend(_parse_groups(body, top_name or cover.title, warnings))
            first = _group_headings(body)
            structure_intro = _flat(body[: first[0][0]]) if first else ""
        elif kind == "history":
            history = parse_history(body)
    if units and units[0].parent is None:
        # Group heads appear in the Gerencia's chart; they belong to their groups, not to its direct staff.
        heads = {u.head for u in units[1:] if u.head}
        top = units[0]
        staff = [p for p in top.positions[1:] if p not in heads]
        units[0] = top.model_copy(update={"positions": [top.positions[0], *staff]} if top.positions else {})
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
