"""The answer phrases file: both languages with the same placeholders, every phrase the code says is there
(with the values it needs) and used, the bilingual labels say both languages, and a bad file or a bad call is
named in one sentence."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

import assistant
from assistant.phrases import (
    PHRASES_PATH,
    Phrases,
    PhrasesError,
    load_phrases,
    phrases,
    placeholders,
    say,
    say_both,
)
from tests.fakes_ui import grounded_engine, real_manuals

PACKAGE = Path(assistant.__file__).parent
SAYERS = {"say", "say_both"}  # both take the phrase name first


def _say_calls() -> list[tuple[str, int, ast.Call]]:
    """Every ``say(...)`` and ``say_both(...)`` call in the package: (file, line, call)."""
    calls = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in SAYERS:
                calls.append((str(path.relative_to(PACKAGE.parent)), node.lineno, node))
    return calls


def _write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "phrases.json"
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    return path


def _packaged() -> dict:
    return json.loads(PHRASES_PATH.read_text(encoding="utf-8"))


def test_the_packaged_phrases_load_and_speak_both_languages():
    assert say("structure_head", "es", unit="**Área de Ventas**", head="Jefe de Ventas") == (
        "**Área de Ventas** está a cargo del **Jefe de Ventas**."
    )
    assert say("structure_head", "en", unit="**Área de Ventas**", head="Jefe de Ventas") == (
        "**Área de Ventas** is headed by the **Jefe de Ventas**."
    )


def test_the_engine_finds_every_phrase_it_says_with_the_values_it_gives():
    known = phrases().phrases
    calls = _say_calls()
    assert len(calls) > 40  # the scan sees the answerers
    problems = []
    for where, line, call in calls:
        key = call.args[0] if call.args else None
        if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
            problems.append(f"{where}:{line}: say() and say_both() need the phrase name as a literal string")
            continue
        if key.value not in known:
            problems.append(f"{where}:{line}: no phrase {key.value!r} in {PHRASES_PATH.name}")
            continue
        if any(k.arg is None for k in call.keywords):
            continue  # say(key, lang, **values): checked when it runs
        given = {k.arg for k in call.keywords if k.arg is not None}
        wanted = placeholders(known[key.value].es)
        if given != wanted:
            problems.append(
                f"{where}:{line}: {key.value!r} takes {sorted(wanted)}, the code gives {sorted(given)}"
            )
    assert not problems, "\n".join(problems)


def test_no_phrase_in_the_file_is_unused():
    used = {
        call.args[0].value
        for _w, _l, call in _say_calls()
        if call.args and isinstance(call.args[0], ast.Constant)
    }
    unused = sorted(set(phrases().phrases) - used)
    assert not unused, f"phrases no code says (remove them or use them): {unused}"


def test_the_diff_and_version_sentences_are_said_from_the_file():
    assert say(
        "diff_function_moved", "en", old_unit="A", old_numeral="i", unit="B", numeral="iv", text="t"
    ) == ("Function moved from A (i) to **B** (iv): «t»")
    assert say("versions_reason_present", "es", editions="la versión 11 (vigente)") == (
        "Según la versión 11 (vigente)."
    )
    assert say_both("diff_section_units") == "Unidades · Units"
    assert say_both("diff_under") == "en · under"


def test_an_owners_edit_of_a_diff_line_changes_the_history_answer(monkeypatch: pytest.MonkeyPatch):
    from assistant.diff import ManualDiff, UnitRename, render_text, summarise

    data = _packaged()
    data["phrases"]["diff_unit_renamed"]["es"] = "{old} pasó a llamarse **{unit}**"
    data["phrases"]["diff_section_units"]["en"] = "Organisational units"
    edited = Phrases.model_validate(data)
    monkeypatch.setattr("assistant.phrases.phrases", lambda: edited)
    diff = ManualDiff(
        code="X",
        from_version=1,
        from_date=None,
        to_version=2,
        to_date=None,
        units_renamed=[UnitRename(from_unit="Área A", to_unit="Área B", similarity=0.8)],
    )
    assert summarise(diff, "es") == ["Área A pasó a llamarse **Área B**"]
    assert "\nUnidades · Organisational units\n" in render_text(diff)


def test_an_owners_edit_of_the_file_changes_the_answer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    data = _packaged()
    data["phrases"]["structure_head"]["es"] = "Dirige {unit}: **{head}**."
    edited = load_phrases(_write(tmp_path, data))
    monkeypatch.setattr("assistant.phrases.phrases", lambda: edited)
    manuals = real_manuals()
    unit = next(u for m in manuals for u in m.units if u.name == "Unidad de Transporte")
    d = grounded_engine(manuals).answer("¿Quién es el jefe de la Unidad de Transporte?", "es", [])
    assert d.answered and d.text.startswith("Dirige ") and d.text.endswith(f": **{unit.head}**.")


def test_placeholders_that_differ_between_languages_are_rejected(tmp_path: Path):
    data = _packaged()
    data["phrases"]["structure_head"]["en"] = "{unit} is headed by the **{boss}**."
    with pytest.raises(
        PhrasesError,
        match=r"phrases\.json has a bad entry 'phrases\.structure_head': the es and en texts must use the same "
        r"placeholders \(only in es: head; only in en: boss\)",
    ):
        load_phrases(_write(tmp_path, data))


def test_a_phrase_without_its_english_text_is_rejected(tmp_path: Path):
    data = _packaged()
    del data["phrases"]["decline_not_covered"]["en"]
    with pytest.raises(PhrasesError, match=r"bad entry 'phrases\.decline_not_covered\.en': Field required"):
        load_phrases(_write(tmp_path, data))


@pytest.mark.parametrize(
    "text", ["Lo revisaron: {}.", "Lo revisaron: {0}.", "Lo revisaron: {who.name}.", "{who"]
)
def test_a_placeholder_that_is_not_a_plain_name_is_rejected(tmp_path: Path, text: str):
    data = _packaged()
    data["phrases"]["document_reviewed"]["es"] = text
    with pytest.raises(PhrasesError, match=r"bad entry 'phrases\.document_reviewed\.es'"):
        load_phrases(_write(tmp_path, data))


def test_a_badly_named_phrase_is_rejected(tmp_path: Path):
    data = _packaged()
    data["phrases"]["Head Of Unit"] = {"es": "x", "en": "x"}
    with pytest.raises(PhrasesError, match="phrase name 'Head Of Unit' must be lower case"):
        load_phrases(_write(tmp_path, data))


def test_an_unreadable_file_is_a_clear_error(tmp_path: Path):
    bad = tmp_path / "phrases.json"
    bad.write_text('{"phrases": {', encoding="utf-8")
    with pytest.raises(PhrasesError, match=r"phrases\.json cannot be read"):
        load_phrases(bad)
    with pytest.raises(PhrasesError, match="cannot be read"):
        load_phrases(tmp_path / "missing.json")


def test_a_missing_value_is_a_clear_error_not_a_key_error():
    with pytest.raises(
        PhrasesError, match=r"The phrase 'structure_head' of .*phrases\.json needs a value for head"
    ):
        say("structure_head", "en", unit="**Área de Ventas**")


def test_an_unknown_phrase_is_a_clear_error():
    with pytest.raises(PhrasesError, match="has no phrase 'no_such_phrase'"):
        say("no_such_phrase", "es")
