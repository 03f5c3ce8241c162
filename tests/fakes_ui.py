"""A fake assistant with the interface of ``assistant.chain.Assistant``, for UI tests without a model."""

from __future__ import annotations

import json
import re
import time
import unicodedata
from datetime import date
from pathlib import Path
from typing import Any

from assistant.errors import InvalidQuestionError
from assistant.models import Answer, Chunk, Citation, Function, Hit, Manual, Unit

GERENCIA = "Gerencia de Servicio al Cliente"
ROOT = Path(__file__).resolve().parents[1]
CORPUS_MANUAL = ROOT / "corpus" / "mof-901-0905-gerencia-servicio-al-cliente-v10.txt"
EVAL_MANUALS = ROOT / "evals" / "manuals"


def _functions(*texts: str) -> list[Function]:
    numerals = ["i", "ii", "iii", "iv", "v", "vi", "vii", "viii", "ix", "x", "xi"]
    return [Function(numeral=numerals[i], text=t) for i, t in enumerate(texts)]


def fake_manual() -> Manual:
    """A hand-built manual shaped like the real one: a Gerencia, six numbered groups, two agencies."""
    units = [
        Unit(
            name=GERENCIA,
            head="Gerente Servicio al Cliente",
            positions=["Gerente Servicio al Cliente", "Secretaria Ejecutiva"],
            objective="Promover los productos y servicios que brinda la Institución a sus clientes.",
            functions=_functions(
                "Diseñar estrategias de venta, publicitarios, servicio al cliente y desarrollo de "
                "nuevos servicios.",
                "Coordinar la comercialización de los activos extraordinarios.",
            ),
        ),
        Unit(
            name="Área de Atención al Cliente",
            parent=GERENCIA,
            number=1,
            head="Jefe Área de Atención al Cliente",
            positions=[
                "Jefe Área de Atención al Cliente",
                "Coordinador de Ventanilla",
                "Auxiliar de Ventanilla",
            ],
            objective="Atender y facilitar los diferentes servicios a los clientes de la Institución.",
            functions=_functions(
                "Atender y solventar las quejas y denuncias de los clientes.",
                "Controlar las operaciones del Centro de Atención Telefónica y el sistema de filas.",
            ),
        ),
        Unit(
            name="Área de Activos Extraordinarios",
            parent=GERENCIA,
            number=2,
            head="Jefe Área de Activos Extraordinarios",
            positions=["Jefe Área de Activos Extraordinarios", "Secretaria"],
            objective="Administrar eficientemente el inventario de activos extraordinarios.",
            functions=_functions("Controlar los valúos y revalúos de los activos extraordinarios."),
        ),
        Unit(
            name="Agencias",
            parent=GERENCIA,
            number=3,
            objective="Promover los productos y servicios que ofrece la Institución.",
            functions=_functions(
                "Formalizar créditos hipotecarios.", "Recuperar judicialmente los créditos en mora."
            ),
        ),
        Unit(
            name="Agencia Santa Ana",
            parent="Agencias",
            head="Jefe de Agencia",
            positions=["Jefe de Agencia", "Secretaria de Agencia", "Promotor de Créditos"],
        ),
        Unit(
            name="Agencia San Miguel",
            parent="Agencias",
            head="Jefe de Agencia",
            positions=["Jefe de Agencia", "Supervisor Técnico"],
        ),
        Unit(
            name="Área de Ventas",
            parent=GERENCIA,
            number=4,
            head="Jefe Área de Ventas",
            positions=["Jefe Área de Ventas", "Promotor de Créditos", "Auxiliar de Ventas"],
            objective="Promover y controlar las actividades de venta de productos y servicios.",
            functions=_functions(
                "Desarrollar el plan de ventas.", "Organizar y ejecutar ferias y visitas empresariales."
            ),
        ),
        Unit(
            name="Área de Servicios en Línea",
            parent=GERENCIA,
            number=5,
            head="Jefe Área de Servicios en Línea",
            positions=["Jefe Área de Servicios en Línea", "Promotor de Servicios en Línea"],
            objective="Promover y mantener la disponibilidad de los servicios del Fondo en línea.",
            functions=_functions(
                "Servir de enlace entre el Fondo y las iniciativas de Gobierno Electrónico."
            ),
        ),
        Unit(
            name="Sucursal Paseo",
            parent=GERENCIA,
            number=6,
            head="Coordinador de Sucursal",
            positions=["Coordinador de Sucursal", "Asistente de Ventanilla"],
            objective="Proporcionar a todos los clientes un servicio ágil y oportuno.",
            functions=_functions("Dar seguimiento a expedientes en trámite y aprobados."),
        ),
    ]
    return Manual(
        id="mof-901-0905",
        source="fake.txt",
        code="901 0905",
        title="Manual de Organización y Funciones Gerencia de Servicio al Cliente",
        version=10,
        effective_date=date(2016, 3, 15),
        authorized_by="Presidente y Director Ejecutivo",
        units=units,
    )


def fixture_manuals() -> list[Manual]:
    """The MOFs of evals/manuals/*, built from their expected parse (no parser involved), by folder name."""
    manuals = []
    for folder in sorted(p for p in EVAL_MANUALS.iterdir() if (p / "expected.json").is_file()):
        expected = json.loads((folder / "expected.json").read_text(encoding="utf-8"))
        manuals.append(Manual(id=folder.name, source=str(folder / "manual.txt"), **expected))
    return manuals


def real_manuals() -> list[Manual]:
    """The corpus manual as the parser reads it, then the fixture manuals: several gerencias at once."""
    from assistant.ingest import load_file
    from assistant.parse import parse_document

    return [parse_document(load_file(str(CORPUS_MANUAL))), *fixture_manuals()]


def _words(text: str) -> set[str]:
    plain = unicodedata.normalize("NFKD", text.lower()).encode("ascii", "ignore").decode()
    return {w for w in re.findall(r"[a-z]{4,}", plain)}


# Question words only: unit names are Spanish even inside English questions.
_SPANISH = re.compile(r"^\s*[¿¡]|\b(qué|quién|quiénes|cuál|cuáles|cómo|dónde)\b", re.I)


class FakeAssistant:
    """Answers by word overlap with the fake manual's function lines; records what it was asked."""

    def __init__(
        self,
        max_question_chars: int = 2000,
        fallback_reason: str | None = None,
        manuals: list[Manual] | None = None,
    ) -> None:
        """Store config only; the fake has nothing heavy to load."""
        self.max_question_chars = max_question_chars
        self.fallback_reason = fallback_reason
        self.manuals = manuals if manuals is not None else [fake_manual()]
        self.manifest: dict[str, Any] = {"model": "fake", "dimension": 0, "chromadb": "none", "corpus": {}}
        self.calls: list[tuple[str, list[tuple[str, str]], str | None]] = []

    def ask(
        self, question: str, history: list[tuple[str, str]] | None = None, manual: str | None = None
    ) -> Answer:
        """Return an Answer citing the best-overlapping function lines, like the grounded engine.

        ``manual`` (a code, as the chat filter sends it) restricts the lines to that manual's.
        """
        if not isinstance(question, str) or not question.strip():
            raise InvalidQuestionError("Escribe una pregunta. / Please type a question.")
        if len(question) > self.max_question_chars:
            raise InvalidQuestionError(
                f"La pregunta es demasiado larga ({len(question)} caracteres; "
                f"máximo {self.max_question_chars}). "
                f"/ The question is too long (max {self.max_question_chars} characters)."
            )
        start = time.perf_counter()
        self.calls.append((question, list(history or []), manual))
        language = "es" if _SPANISH.search(question) else "en"
        asked = _words(question)
        scored: list[tuple[float, Manual, Unit, Function]] = []
        for book in self.manuals:
            if manual is not None and manual not in (book.code, book.id):
                continue
            for unit in book.units:
                for fn in unit.functions:
                    overlap = len(asked & (_words(fn.text) | _words(unit.name)))
                    if overlap:
                        scored.append((overlap / (len(asked) or 1), book, unit, fn))
        scored.sort(key=lambda s: -s[0])
        top = scored[:2]
        citations = [
            Citation(
                unit=u.name,
                section="funciones",
                numeral=f.numeral,
                quote=f.text,
                manual=m.id,
                score=s,
                manual_code=m.code,
                version=m.version,
                gerencia=m.gerencia,
            )
            for s, m, u, f in top
        ]
        sources = [
            Hit(
                chunk=Chunk(
                    id=f"{u.name}-{f.numeral}",
                    text=f"{u.name} — funciones — {f.numeral}. {f.text}",
                    quote=f.text,
                    manual_id=m.id,
                    manual_version=m.version,
                    manual_code=m.code,
                    gerencia=m.gerencia,
                    section="funciones",
                    unit=u.name,
                    parent=u.parent,
                    numeral=f.numeral,
                ),
                score=s,
            )
            for s, m, u, f in top
        ]
        if top:
            lead = "Según el manual:" if language == "es" else "According to the manual:"
            text = lead + "\n" + "\n".join(f"- {u.name} ({f.numeral}): {f.text}" for _, _, u, f in top)
        elif language == "es":
            text = "El manual no trata ese tema."
        else:
            text = "The manual does not cover that."
        return Answer(
            question=question,
            answer=text,
            answered=bool(top),
            language=language,
            citations=citations,
            sources=sources,
            engine="grounded",
            model=None,
            latency_ms=(time.perf_counter() - start) * 1000,
            fallback_reason=self.fallback_reason,
        )


def grounded_engine(manuals: list[Manual]):
    """The grounded engine over these manuals with the corpus's glossary and scope (no model, no index)."""
    from assistant.engine import GroundedEngine, load_scope
    from assistant.retrieve import Glossary
    from assistant.settings import AnswerSettings

    corpus = CORPUS_MANUAL.parent
    return GroundedEngine(
        manuals,
        AnswerSettings(),
        glossary=Glossary.load(corpus / "glossary.json"),
        scope=load_scope(corpus / "scope.json"),
    )
