"""Typed data passed between the pipeline stages."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Section = Literal["funciones", "objetivo", "organigrama", "modificaciones", "documento", "texto"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class Document(_Frozen):
    """A source file read and decoded, before cleaning."""

    path: str
    text: str
    encoding: str
    sha256: str


class Function(_Frozen):
    """One numbered function line of a unit (``numeral`` is the roman numeral, e.g. ``"viii"``)."""

    numeral: str
    text: str


class Unit(_Frozen):
    """An organisational unit: the Gerencia, one of its groups, or a sub-unit such as an agency."""

    name: str
    parent: str | None = None
    head: str | None = None
    positions: list[str] = Field(default_factory=list)
    objective: str = ""
    functions: list[Function] = Field(default_factory=list)
    # Groups are numbered in the manual ("1. Área de Atención al Cliente"); None for the Gerencia.
    number: int | None = None
    # The unit's org chart as the manual prints it, one line per line: its numbered heading, labelled lines
    # ("Dependencia jerárquica: …") and positions. What a structure answer quotes; not in ``inspect --json``.
    chart: str = ""

    def chart_quote(self) -> str:
        """What a citation of the unit's chart quotes: the chart as printed, else its positions, else its name."""
        return self.chart or "\n".join(self.positions) or self.name


class HistoryEntry(_Frozen):
    """One row of the change history."""

    version: int
    date: dt.date | None = None
    changes: list[str] = Field(default_factory=list)
    # Who prepared the change ("Analista: …", "Elaborado por: …"), kept apart from the changes themselves.
    prepared_by: str = ""
    # Each change as the source prints it, where that differs: its pieces joined by " … " around what the
    # parser left out (a table header repeated at a page break). Quoted in citations; not in ``inspect --json``.
    quotes: dict[str, str] = Field(default_factory=dict)

    def quote(self, change: str) -> str:
        """What a citation of one of its changes quotes: verbatim, elided where the source is interrupted."""
        return self.quotes.get(change, change)


class Manual(_Frozen):
    """A parsed MOF manual."""

    id: str
    source: str
    code: str = ""
    title: str = ""
    version: int | None = None
    effective_date: dt.date | None = None
    created_date: dt.date | None = None
    authorized_by: str = ""
    # Cover fields: who reviewed the manual and which position owns its process.
    reviewed_by: list[str] = Field(default_factory=list)
    process_owner: str = ""
    # "Objetivos del manual": what the manual itself is for.
    purpose: str = ""
    # The sentence that introduces the groups ("La Gerencia … está dividida en 6 grupos de trabajo:").
    structure_intro: str = ""
    units: list[Unit] = Field(default_factory=list)
    history: list[HistoryEntry] = Field(default_factory=list)
    # Plain sections, for a document with no recognisable MOF structure.
    sections: list[str] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)

    def unit(self, name: str) -> Unit | None:
        """The unit with exactly this name, if any."""
        return next((u for u in self.units if u.name == name), None)

    @property
    def gerencia(self) -> str:
        """The organisation the manual describes: its top unit ("Gerencia de …", "Dirección de …")."""
        top = next((u for u in self.units if u.parent is None), None)
        if top is not None:
            return top.name
        title = self.title
        prefix = "manual de organización y funciones"
        if title.lower().startswith(prefix):
            title = title[len(prefix) :].strip(" -:")
        return title or self.id

    @property
    def label(self) -> str:
        """How answers and the page name the manual: "Gerencia de … (901 0905, v10)"."""
        bits = [b for b in (self.code, f"v{self.version}" if self.version is not None else "") if b]
        return f"{self.gerencia} ({', '.join(bits)})" if bits else self.gerencia

    def to_inspect_dict(self) -> dict[str, Any]:
        """The shape printed by ``python -m assistant inspect --json``."""
        return {
            "code": self.code,
            "title": self.title,
            "version": self.version,
            "effective_date": self.effective_date.isoformat() if self.effective_date else None,
            "authorized_by": self.authorized_by,
            "units": [
                {
                    "name": u.name,
                    "parent": u.parent,
                    "head": u.head,
                    "positions": list(u.positions),
                    "objective": u.objective,
                    "functions": [{"numeral": f.numeral, "text": f.text} for f in u.functions],
                }
                for u in self.units
            ],
            "history": [
                {
                    "version": h.version,
                    "date": h.date.isoformat() if h.date else None,
                    "changes": list(h.changes),
                }
                for h in self.history
            ],
        }


class Chunk(_Frozen):
    """One retrievable piece of a manual, with the text that is embedded and the verbatim quote."""

    id: str
    text: str  # what is embedded and matched lexically; always names its unit
    quote: str  # the verbatim manual text a citation may show
    manual_id: str
    manual_version: int | None = None
    manual_code: str = ""
    gerencia: str = ""
    section: Section
    unit: str | None = None
    parent: str | None = None
    head: str | None = None
    numeral: str | None = None

    def metadata(self) -> dict[str, str | int]:
        """Flat metadata for the vector store (Chroma accepts no None values)."""
        meta: dict[str, str | int] = {
            "manual_id": self.manual_id,
            "section": self.section,
            "quote": self.quote,
            "unit": self.unit or "",
            "parent": self.parent or "",
            "head": self.head or "",
            "numeral": self.numeral or "",
            "manual_version": self.manual_version if self.manual_version is not None else -1,
            "manual_code": self.manual_code,
            "gerencia": self.gerencia,
        }
        return meta

    @classmethod
    def from_store(cls, chunk_id: str, text: str, meta: dict[str, Any]) -> Chunk:
        """Rebuild a chunk from what the vector store returns."""
        version = meta.get("manual_version", -1)
        return cls(
            id=chunk_id,
            text=text,
            quote=str(meta.get("quote", "")),
            manual_id=str(meta.get("manual_id", "")),
            manual_version=None if version in (-1, None) else int(version),
            manual_code=str(meta.get("manual_code", "")),
            gerencia=str(meta.get("gerencia", "")),
            section=meta.get("section", "texto"),
            unit=meta.get("unit") or None,
            parent=meta.get("parent") or None,
            head=meta.get("head") or None,
            numeral=meta.get("numeral") or None,
        )


class Hit(_Frozen):
    """A retrieved chunk with its fused score and the scores behind it."""

    chunk: Chunk
    score: float
    dense: float = 0.0  # cosine similarity in the embedding space
    lexical: float = 0.0  # BM25 score normalised to [0, 1] within the query


class Citation(_Frozen):
    """A quoted manual line supporting an answer; ``quote`` is verbatim from the source."""

    unit: str | None
    section: Section
    numeral: str | None
    quote: str
    manual: str  # the manual's id (its file name without extension)
    score: float
    manual_code: str = ""
    version: int | None = None
    gerencia: str = ""


class Answer(_Frozen):
    """What ``ask`` returns."""

    question: str
    answer: str
    answered: bool
    language: Literal["es", "en"]
    citations: list[Citation] = Field(default_factory=list)
    sources: list[Hit] = Field(default_factory=list)
    engine: str = "grounded"
    model: str | None = None
    latency_ms: float = 0.0
    standalone_question: str | None = None
    # Set when an LLM engine failed and the grounded engine answered instead.
    fallback_reason: str | None = None
    # The calibrated support of the best duty line for the question's topic (0..1), when one was scored:
    # an answer below the refusal threshold is declined. Evaluations sweep it to draw the refusal curve.
    support: float | None = None
