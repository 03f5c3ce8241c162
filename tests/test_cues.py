"""The engine's vocabulary file: every pattern compiles, a bad file is named in one sentence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.cues import CUES_PATH, CuesError, cue, cue_words, load_cues


def test_the_packaged_vocabulary_loads_and_every_pattern_compiles():
    cues = load_cues()
    assert {"head", "responsibility", "history", "version_num"} <= set(cues.patterns)
    assert cue("head").search("quien dirige el area")
    assert "quien" in cue_words("question_words")


def test_a_pattern_that_does_not_compile_names_the_file_and_the_entry(tmp_path: Path):
    data = json.loads(CUES_PATH.read_text(encoding="utf-8"))
    data["patterns"]["head"] = "(unclosed"
    bad = tmp_path / "cues.json"
    bad.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(CuesError, match=r"cues\.json has a bad entry 'patterns'.*'head' does not compile"):
        load_cues(bad)


def test_an_unreadable_file_is_a_clear_error(tmp_path: Path):
    bad = tmp_path / "cues.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(CuesError, match="cannot be read"):
        load_cues(bad)


def test_a_missing_name_is_a_clear_error():
    with pytest.raises(CuesError, match="no pattern 'no-such-cue'"):
        cue("no-such-cue")


def test_the_speller_knows_the_words_the_cues_spell_out():
    from assistant.cues import cue_vocabulary
    from assistant.text import Speller

    words = cue_vocabulary()
    assert {"dirige", "encabeza", "puestos"} <= words
    assert "jefatur" not in words and "pertenec" not in words  # word beginnings, not words
    assert Speller(set(words)).fix("dirije") == "dirige"  # "¿y quién la dirije?"


@pytest.mark.parametrize(
    "question, strong, weak",
    [("who checks loan applicants credit history with the credit bureaus", False, False),
     ("quien revisa el historial crediticio de los solicitantes", False, False),
     ("what is the history of the manual", True, True),
     ("que dice el historial de modificaciones", True, True),
     ("y cuando le agregaron el puesto de administrador de base de datos", False, True)],
)  # fmt: skip
def test_a_credit_history_is_no_change_history_and_added_positions_are(question, strong, weak):
    from assistant.cues import cue

    assert bool(cue("history_strong").search(question)) is strong
    assert bool(cue("history").search(question)) is weak


@pytest.mark.parametrize(
    "question, asks",
    [("and who do they have to send statistical reports to?", False),
     ("who does the jefe de agencia report to?", True),
     ("whom does the unidad de planillas report to?", True)],
)  # fmt: skip
def test_reports_sent_somewhere_are_a_duty_not_a_reporting_line(question, asks):
    from assistant.engine.query import _asks_reports

    assert _asks_reports(question) is asks


@pytest.mark.parametrize(
    "question, asks",
    [("when did it get its own organigrama y funciones en el manual? (sucursal paseo)", True),
     ("¿y cuando se creo la sucursal paseo?", True),
     ("¿desde cuando existe el area de ventas?", True),
     ("when buying new computers and software licencias, which units take part?", False),
     ("cuando compran equipo, ¿quien participa?", False)],
)  # fmt: skip
def test_when_asked_is_the_interrogative_not_the_conjunction(question, asks):
    from assistant.cues import cue

    assert bool(cue("when_asked").search(question)) is asks


@pytest.mark.parametrize(
    "question, asks",
    [("who approves the fund's annual budget?", True),
     ("¿quien autoriza los anticipos de salario?", True),
     ("¿quien sanciona a un notario externo?", True),
     ("¿que unidad decide que vehiculo se asigna a cada dependencia?", False),  # "decide" is often "does"
     ("¿quien define el plan de capacitacion?", False),
     ("las politicas que propone creditos, who gives them final approval?", True),
     ("¿quien da el visto bueno tecnico a las compras?", False),  # a check, as often as an approval
     ("ya me aprobaron el credito, who formalizes it?", False),
     ("¿quien revisa los reglamentos antes de que se aprueben?", False),
     ("¿quien resuelve las quejas de los clientes?", False),
     ("who gives talks to the staff?", False)],
)  # fmt: skip
def test_a_decision_is_asked_by_its_verb_right_after_who(question, asks):
    from assistant.cues import cue

    assert bool(cue("asks_decision").search(question)) is asks
