"""Chunk stage: one retrievable chunk per function, objective, org chart, history entry, plus a document card.

Every embedded text names its unit, so a function line is never orphaned; the verbatim manual text a
citation may quote is kept apart in `Chunk.quote`.
"""

from __future__ import annotations

import hashlib

from assistant.models import Chunk, Manual, Section, Unit

_MONTHS_ES = [
    "enero",
    "febrero",
    "marzo",
    "abril",
    "mayo",
    "junio",
    "julio",
    "agosto",
    "septiembre",
    "octubre",
    "noviembre",
    "diciembre",
]


def spanish_date(d: object) -> str:
    """A date as the manual writes it: "15 de marzo de 2016"."""
    import datetime as dt

    if not isinstance(d, dt.date):
        return ""
    return f"{d.day:02d} de {_MONTHS_ES[d.month - 1]} de {d.year}"


def chunk_id(manual_id: str, section: str, unit: str | None, numeral: str | None, text: str) -> str:
    """Deterministic id from the content, so re-indexing the same manual is a no-op."""
    key = "\x1f".join([manual_id, section, unit or "", numeral or "", text])
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


def _make(
    manual: Manual,
    section: Section,
    text: str,
    quote: str,
    unit: Unit | None = None,
    numeral: str | None = None,
) -> Chunk:
    return Chunk(
        id=chunk_id(manual.id, section, unit.name if unit else None, numeral, text),
        text=text,
        quote=quote,
        manual_id=manual.id,
        manual_version=manual.version,
        manual_code=manual.code,
        gerencia=manual.gerencia,
        section=section,
        unit=unit.name if unit else None,
        parent=unit.parent if unit else None,
        head=unit.head if unit else None,
        numeral=numeral,
    )


def _unit_label(manual: Manual, unit: Unit) -> str:
    children = [u.name for u in manual.units if u.parent == unit.name]
    if children and unit.parent is not None:
        return f"{unit.name} ({', '.join(children)})"
    return unit.name


def _shares_parent_content(manual: Manual, unit: Unit) -> bool:
    parent = manual.unit(unit.parent) if unit.parent else None
    return bool(parent and parent.parent is not None and parent.functions == unit.functions)


def chunk_manual(manual: Manual) -> list[Chunk]:
    """All chunks of a manual, in document order."""
    chunks: list[Chunk] = [document_card(manual)]
    for unit in manual.units:
        label = _unit_label(manual, unit)
        chunks.append(org_chart_chunk(manual, unit))
        if _shares_parent_content(manual, unit):
            continue  # Sub-units sharing their group's objective and functions are indexed once, under it.
        if unit.objective:
            chunks.append(
                _make(manual, "objetivo", f"{label}. Objetivo: {unit.objective}", unit.objective, unit)
            )
        for f in unit.functions:
            chunks.append(
                _make(
                    manual, "funciones", f"{label}. Funciones, {f.numeral}. {f.text}", f.text, unit, f.numeral
                )
            )
    for h in manual.history:
        changes = " ".join(f"· {c}" for c in h.changes)  # the manual's own bullet, kept for verbatim quotes
        when = f" Fecha de vigencia: {spanish_date(h.date)}." if h.date else ""
        text = f"Modificaciones realizadas. Versión {h.version}. {changes}{when}".strip()
        chunks.append(
            _make(manual, "modificaciones", text, changes or f"Versión {h.version}", None, str(h.version))
        )
    for i, section in enumerate(manual.sections, start=1):
        chunks.append(_make(manual, "texto", section, section, None, str(i)))
    return chunks


def document_card(manual: Manual) -> Chunk:
    """The card a "which version / when / who authorised" question retrieves."""
    parts = [manual.title or manual.id]
    if manual.code:
        parts.append(f"Código {manual.code}")
    if manual.version is not None:
        parts.append(f"Versión {manual.version}")
    if manual.effective_date:
        parts.append(f"Fecha de vigencia: {spanish_date(manual.effective_date)}")
    if manual.created_date:
        parts.append(f"Fecha de creación: {spanish_date(manual.created_date)}")
    if manual.authorized_by:
        parts.append(f"Autorizado: {manual.authorized_by}")
    if manual.reviewed_by:
        parts.append(f"Revisado: {'; '.join(manual.reviewed_by)}")
    if manual.process_owner:
        parts.append(f"Responsable de Proceso: {manual.process_owner}")
    if manual.purpose:
        parts.append(f"Objetivo del manual: {manual.purpose}")
    text = ". ".join(parts) + "."
    return _make(manual, "documento", text, text)


def org_chart_chunk(manual: Manual, unit: Unit) -> Chunk:
    """A unit's org chart: its head, positions, parent and sub-units."""
    children = [u for u in manual.units if u.parent == unit.name]
    parts = [f"Organigrama de {unit.name}"]
    if unit.head:
        parts.append(f"Jefatura: {unit.head}")
    if unit.parent:
        parent = manual.unit(unit.parent)
        boss = f" ({parent.head})" if parent and parent.head else ""
        parts.append(f"Depende de: {unit.parent}{boss}")
    if unit.positions:
        parts.append("Puestos: " + "; ".join(unit.positions))
    if unit.parent is None and manual.structure_intro:
        parts.append(manual.structure_intro.rstrip(":"))
    if children:
        kind = "grupos de trabajo" if unit.parent is None else "dependencias"
        parts.append(
            f"{len(children)} {kind}: "
            + "; ".join(f"{c.name} ({c.head})" if c.head else c.name for c in children)
        )
    text = ". ".join(parts) + "."
    # The chart as the manual prints it (heading, labelled lines, positions), else one position per line.
    quote = unit.chart_quote()
    return _make(manual, "organigrama", text, quote, unit)
