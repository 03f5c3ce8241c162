"""The routing table: the order the answerers are asked in, and the first draft wins; no model, no index."""

from __future__ import annotations

from pathlib import Path

import pytest

from assistant.engine import GroundedEngine
from assistant.engine import engine as engine_module
from assistant.engine.common import Draft
from assistant.engine.engine import HISTORY_FIRST, ROUTES, routes_for
from assistant.ingest import load_file
from assistant.parse import parse_document
from tests.fakes_ui import grounded_engine

ROOT = Path(__file__).resolve().parents[1]
DEFAULT = ["document", "history", "structure", "duties"]


@pytest.fixture(scope="module")
def engine() -> GroundedEngine:
    manual = parse_document(load_file(ROOT / "corpus" / "mof-901-0905-gerencia-servicio-al-cliente-v10.txt"))
    return grounded_engine([manual])


def _names(engine: GroundedEngine, question: str) -> list[str]:
    return [name for name, _answerer in routes_for(engine.analyse(question, question, ""))]


def test_the_table_order():
    assert [name for name, _a in ROUTES] == DEFAULT
    assert sorted(HISTORY_FIRST) == sorted(DEFAULT)
    assert HISTORY_FIRST[0] == "history"


@pytest.mark.parametrize("question", ["¿Qué cambió en la versión 2?", "What changed in version 3?"])
def test_a_version_question_asks_the_history_first(engine, question):
    assert _names(engine, question) == list(HISTORY_FIRST)


@pytest.mark.parametrize(
    "question",
    [
        "¿Quién autorizó el manual?",
        "¿Quién es el jefe del Área de Ventas?",
        "¿Quién se encarga de desarrollar el plan de ventas?",
    ],
)
def test_other_questions_use_the_default_order(engine, question):
    assert _names(engine, question) == DEFAULT


def _recording(calls: list[str], name: str, result: Draft | None):
    def answerer(_engine, _a, _lang, _hits):
        calls.append(name)
        return result

    return answerer


def test_the_first_draft_wins_and_later_answerers_are_not_asked(engine, monkeypatch):
    calls: list[str] = []
    table = [
        ("document", _recording(calls, "document", None)),
        ("history", _recording(calls, "history", None)),
        ("structure", _recording(calls, "structure", Draft("from structure", True))),
        ("duties", _recording(calls, "duties", Draft("from duties", True))),
    ]
    monkeypatch.setattr(engine_module, "ROUTES", table)
    d = engine.answer("¿Quién es el jefe del Área de Ventas?", "es", [])
    assert d.text == "from structure"
    assert calls == ["document", "history", "structure"]


def test_out_of_scope_declines_before_any_answerer(engine, monkeypatch):
    calls: list[str] = []
    monkeypatch.setattr(engine_module, "ROUTES", [(n, _recording(calls, n, Draft(n, True))) for n in DEFAULT])
    d = engine.answer("¿Cuál es el salario del Jefe Área de Ventas?", "es", [])
    assert not d.answered
    assert calls == []


@pytest.mark.parametrize(
    ("question", "declined"),
    [
        ("¿cuántas ferias tiene que hacer al año el Área de Ventas?", True),
        ("and how many days does a refund take?", True),
        ("¿Cada cuánto se actualiza el inventario de activos extraordinarios?", True),
        ("what software do they use to digitize the files?", True),
        ("¿Qué requisitos necesita un constructor para registrarse?", True),
        ("¿Cómo se llama la persona que ocupa el cargo de Jefe Área de Ventas?", True),
        ("What is the name of the person who holds the Jefe Área de Ventas position?", True),
        # Opinions and amounts: no manual holds a judgement of itself or what a post earns per sale.
        ("in your opinion, was it a good idea to create the Área de Servicios en Línea?", True),
        ("¿Fue buena idea eliminar el Área de Proyección Social?", True),
        ("¿Qué opinas del Área de Ventas?", True),
        ("how much commission does a Promotor de Créditos get per sale?", True),
        ("which antivirus does the Fondo use on its computers?", True),
        ("¿con qué aseguradora tiene contratada la póliza colectiva el Fondo?", True),
        ("¿y cuánto le cuesta al cliente esa cancelación?", True),
        ("which real estate companies do they work with currently?", True),
        ("¿Qué unidad califica a las empresas constructoras?", False),  # who does it: the manual may say
        ("Which units deal with the banks?", False),
        ("¿Qué firmas se autentican en las escrituras?", False),  # signatures
        ("¿Con qué empresas tiene relación comercial el Área de Ventas?", False),  # its duty line says
        ("what firms are hired for remodeling work?", False),
        ("What code did this manual use before it was recoded?", False),  # its history says
        ("how much authority does the Jefe Área de Ventas have?", False),  # no amount of money
        # Counts the manual does hold: positions, units, groups, versions.
        ("¿Cuántos puestos tiene el Área de Ventas?", False),
        ("How many working groups does the Gerencia have?", False),
        ("How many versions has the manual had?", False),
        ("¿Quién informa sobre los trámites y requisitos?", False),  # who handles it: the manual may say
        ("Who decides whether a new área is a good idea?", False),  # a duty, not an opinion asked of us
        ("¿Cuál es el objetivo del Área de Ventas?", False),
    ],
)
def test_quantities_tools_requirements_and_names_are_what_no_mof_holds(engine, question, declined):
    from assistant.engine.decline import out_of_scope

    a = engine.analyse(question, question, "")
    assert (out_of_scope(engine, a, "es", []) is not None) is declined


@pytest.mark.parametrize(
    "question",
    [
        "¿Cuándo pasó el Asistente de Ventanilla al Área de Atención al Cliente?",
        "¿y de qué área venía el Asistente de Ventanilla?",
        "Which area did the Asistente de Ventanilla come from?",
    ],
)
def test_a_position_moving_between_units_is_a_history_question(engine, question):
    d = engine.answer(question, "es", [])
    assert d.answered and any(c.section == "modificaciones" for c in d.citations)


@pytest.fixture(scope="module")
def administracion() -> GroundedEngine:
    path = ROOT / "evals" / "manuals" / "direccion-administracion" / "manual.txt"
    return grounded_engine([parse_document(load_file(path))])


@pytest.mark.parametrize(
    "question",
    [
        "¿Quién autoriza los traslados del personal?",
        "who autoriza los traslados, ascensos y permisos del personal?",
    ],
)
def test_a_history_word_a_duty_line_uses_with_the_question_is_the_duty(administracion, question):
    # "Autorizar los movimientos de personal, como traslados, ascensos, permisos y licencias.": "traslados" is
    # the duty's object here, not a change-history cue.
    a = administracion.analyse(question, question, "")
    assert a.duty_cues == {"traslados"}
    assert _names(administracion, question) == DEFAULT


@pytest.mark.parametrize(
    "question",
    [
        "¿Quién tramita los traslados de fondos?",  # no duty line says "traslados" with "fondos"
        "¿Quién autorizó los traslados de la versión 2?",  # a version asks the past, whatever the words
        "¿Qué unidades se trasladaron en 2012?",  # not a "who …?" question
    ],
)
def test_a_history_word_without_a_duty_beside_it_still_asks_the_history(administracion, question):
    a = administracion.analyse(question, question, "")
    assert a.duty_cues == frozenset()
    assert _names(administracion, question) == list(HISTORY_FIRST)


@pytest.mark.parametrize(
    "question, asks",
    [
        # Present-day "who …?" whose only history word is the object of an unknown duty: no history speaks of it.
        ("¿Quién aprueba las modificaciones presupuestarias de la Gerencia?", False),
        # The history itself, a unit or position named outright, a name only the history knows, or a version.
        ("¿Qué unidades fueron eliminadas según el historial de cambios?", True),
        ("who was removed from the Área de Ventas?", True),
        ("¿Quién reemplazó al Asistente Comercial?", True),
        ("¿Quién dirigía el Área de Ventas antes del cambio?", True),
        ("¿Quién aprobó las modificaciones de la versión 7?", True),
    ],
)
def test_a_who_question_is_a_history_question_only_if_a_history_speaks_of_it(engine, question, asks):
    from assistant.engine.history import _asks_history

    assert _asks_history(engine, engine.analyse(question, question, ""), []) is asks


def test_a_unit_named_only_in_translation_does_not_make_a_duty_a_history_question(engine):
    from assistant.engine.history import _asks_history

    question = "At the customer service management level, who proposes amendments to the Fund's law?"
    a = engine.analyse(question, question, "gerencia de servicio al cliente proponer reformas ley fondo")
    assert a.units  # the gerencia, named in the glossary's translation
    assert _asks_history(engine, a, []) is False


def test_a_unit_asked_to_belong_to_another_gerencia_is_looked_for_in_every_manual():
    paths = [
        ROOT / "evals" / "manuals" / n / "manual.txt"
        for n in ("gerencia-creditos", "direccion-administracion")
    ]
    credit, admin = (parse_document(load_file(p)) for p in paths)
    engine = grounded_engine([credit, admin])
    unit = next(u for u in credit.units if u.parent is not None)
    question = f"¿La {unit.name} pertenece a la {admin.gerencia}?"
    a = engine.analyse(question, question, "")
    assert [m.unit.name for m in a.units] == [unit.name]
    assert not a.scoped
    # Asked of a duty, the gerencia named is where to look: the other gerencia's unit is only topic words.
    duty = f"¿Quién en la {admin.gerencia} coordina con la {unit.name}?"
    assert engine.analyse(duty, duty, "").scoped
