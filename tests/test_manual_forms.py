"""Every manual of the template, in each of its forms (scraped text, Word, PDF), parses to its expected.json.

The folders are discovered, not listed: a new manual folder is tested as soon as it exists. The held-out
manuals (evals/heldout_manual/) measure generalisation and are never used to tune the parser; their ids
start with "heldout-".
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from assistant.ingest import load_file
from assistant.parse import parse_document
from evals.manuals.render import render

ROOT = Path(__file__).resolve().parent.parent
FORMS = ("txt", "docx", "pdf")


def _folders() -> list[tuple[str, Path]]:
    found = [(p.name, p) for p in sorted((ROOT / "evals" / "manuals").glob("*/")) if p.is_dir()]
    found += [
        (f"heldout-{p.name}", p) for p in sorted((ROOT / "evals" / "heldout_manual").glob("*/")) if p.is_dir()
    ]
    return [(name, p) for name, p in found if (p / "expected.json").exists()]


CASES = [pytest.param(folder, form, id=f"{name}-{form}") for name, folder in _folders() for form in FORMS]


def _differences(got: dict[str, Any], want: dict[str, Any]) -> list[str]:
    """Readable paths of what differs (so a failure says which fields, not a wall of JSON)."""
    out = [key for key in want if key != "units" and got.get(key) != want[key]]
    got_units = {u["name"]: u for u in got["units"]}
    for unit in want["units"]:
        mine = got_units.get(unit["name"])
        if mine is None:
            out.append(f"units[{unit['name']}] missing")
            continue
        out += [f"units[{unit['name']}].{k}" for k in unit if mine.get(k) != unit[k]]
    extra = set(got_units) - {u["name"] for u in want["units"]}
    return out + [f"units[{name}] unexpected" for name in sorted(extra)]


@pytest.mark.parametrize(("folder", "form"), CASES)
def test_manual_form_parses_to_expected(folder: Path, form: str, tmp_path: Path) -> None:
    path = folder / f"manual.{form}"
    if not path.exists():
        if form == "txt":
            pytest.fail(f"{folder.name} has no manual.txt")
        # Not rendered yet (e.g. a new held-out folder): render this form into tmp_path.
        render(folder, tmp_path)
        path = tmp_path / f"manual.{form}"
    want = json.loads((folder / "expected.json").read_text(encoding="utf-8"))
    got = parse_document(load_file(path)).to_inspect_dict()
    diffs = _differences(got, want)
    assert got == want, f"{len(diffs)} differing fields: {', '.join(diffs[:12])}"


SEEDS = sorted((ROOT / "corpus").glob("*.txt"))


@pytest.mark.parametrize(("folder", "form"), [*CASES, *(pytest.param(p, "", id=p.stem) for p in SEEDS)])
def test_chart_quotes_are_verbatim_in_every_form(folder: Path, form: str, tmp_path: Path) -> None:
    """A structure answer quotes a unit's chart as the manual prints it: each one must occur, whitespace
    aside, in the cleaned text of that form, and a numbered unit's quote opens with its own heading."""
    from assistant.clean import clean_text

    path = folder if not form else folder / f"manual.{form}"
    if not path.exists():
        render(folder, tmp_path)
        path = tmp_path / f"manual.{form}"
    doc = load_file(path)
    manual = parse_document(doc)
    source = " ".join(clean_text(doc.text).text.split())
    charted = [u for u in manual.units if u.chart]
    assert len(charted) >= len(manual.units) - 1, "nearly every unit has a chart quote"
    for unit in charted:
        assert " ".join(unit.chart.split()) in source, f"{unit.name}: chart quote not verbatim"
        if unit.number is not None:
            assert unit.chart.split("\n")[0].startswith(f"{unit.number}."), unit.chart[:60]
