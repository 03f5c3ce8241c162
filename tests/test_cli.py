"""The command line: inspect, index, search and ask, their JSON shapes and their one-line errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.cli import main
from tests.conftest import REPO_ROOT

MANUAL_FILE = REPO_ROOT / "corpus" / "mof-901-0905-gerencia-servicio-al-cliente-v10.txt"
UNITS = [
    "Gerencia de Servicio al Cliente",
    "Área de Atención al Cliente",
    "Área de Activos Extraordinarios",
    "Agencias",
    "Agencia Santa Ana",
    "Agencia San Miguel",
    "Área de Ventas",
    "Área de Servicios en Línea",
    "Sucursal Paseo",
]


def _use_settings(monkeypatch: pytest.MonkeyPatch, store_path: Path) -> None:
    """Point `Settings()` (read by `main`) at the repository's corpus and model and at this store."""
    monkeypatch.setenv("ASSISTANT_CORPUS_DIR", str(REPO_ROOT / "corpus"))
    monkeypatch.setenv("ASSISTANT_STORE__PATH", str(store_path))
    monkeypatch.setenv("ASSISTANT_STORE__MODE", "embedded")
    monkeypatch.setenv("ASSISTANT_EMBEDDING__MODEL_DIR", str(REPO_ROOT / ".models" / "multilingual-e5-small"))
    monkeypatch.setenv("ASSISTANT_RETRIEVAL__GLOSSARY", str(REPO_ROOT / "corpus" / "glossary.json"))
    monkeypatch.setenv("ASSISTANT_ANSWER__SCOPE", str(REPO_ROOT / "corpus" / "scope.json"))
    monkeypatch.setenv("ASSISTANT_ANSWER__ENGINE", "grounded")


# --- inspect


def test_inspect_json_gives_the_manuals_metadata_and_units(capsys):
    assert main(["inspect", str(MANUAL_FILE), "--json"]) == 0

    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"code", "title", "version", "effective_date", "authorized_by", "units", "history"}
    assert data["code"] == "901 0905"
    assert data["version"] == 10
    assert data["effective_date"] == "2016-03-15"
    assert data["authorized_by"] == "Presidente y Director Ejecutivo"
    assert [u["name"] for u in data["units"]] == UNITS
    assert set(data["units"][0]) == {"name", "parent", "head", "positions", "objective", "functions"}
    ventas = next(u for u in data["units"] if u["name"] == "Área de Ventas")
    assert ventas["parent"] == "Gerencia de Servicio al Cliente"
    assert ventas["head"] == "Jefe Área de Ventas"
    assert ventas["functions"][8] == {"numeral": "ix", "text": "Desarrollar investigaciones de mercado."}
    assert [h["version"] for h in data["history"]] == list(range(1, 11))
    assert data["history"][4]["date"] == "2011-12-19"


def test_inspect_of_the_corpus_folder_reads_the_same_manual(capsys):
    assert main(["inspect", str(REPO_ROOT / "corpus"), "--json"]) == 0

    assert json.loads(capsys.readouterr().out)["code"] == "901 0905"


def test_inspect_without_json_prints_a_readable_outline(capsys):
    assert main(["inspect", str(MANUAL_FILE)]) == 0

    out = capsys.readouterr().out
    assert out.splitlines()[0].endswith("[901 0905]  versión 10, vigente desde 2016-03-15")
    assert "■ Área de Ventas  — jefatura: Jefe Área de Ventas" in out
    assert "    ■ Agencia Santa Ana" in out  # a sub-unit is indented under its group
    assert "ix. Desarrollar investigaciones de mercado." in out
    assert "Modificaciones:" in out and "v10 (2016-03-15):" in out
    assert not out.lstrip().startswith("{")


def test_inspect_of_a_missing_file_exits_1_with_one_line(tmp_path, capsys):
    assert main(["inspect", str(tmp_path / "nope.txt")]) == 1

    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == "error: no readable manual found."
    assert all(line.startswith("error: ") for line in err)


def test_python_dash_m_assistant_runs_inspect():
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "assistant", "inspect", str(MANUAL_FILE), "--json"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["effective_date"] == "2016-03-15"


def test_output_piped_into_a_reader_that_leaves_early_ends_quietly():
    # `python -m assistant inspect … --json | head -1`: no traceback when the reader has closed the pipe.
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before anything is written
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "assistant", "inspect", str(MANUAL_FILE), "--json"],
            cwd=REPO_ROOT,
            env={**os.environ, "HF_HUB_OFFLINE": "1"},
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write_end)
    assert proc.returncode == 141
    assert proc.stderr == ""


# --- search and ask over the real index


@pytest.mark.integration
def test_search_json_lists_hits_best_first_with_their_metadata(real_index, monkeypatch, capsys):
    _use_settings(monkeypatch, Path(real_index.store.path))

    assert main(["search", "who handles activos extraordinarios appraisals?", "--k", "3", "--json"]) == 0

    hits = json.loads(capsys.readouterr().out)
    assert len(hits) == 3
    assert {"id", "score", "dense", "lexical", "unit", "section", "numeral", "quote", "text"} <= set(hits[0])
    assert (hits[0]["unit"], hits[0]["section"], hits[0]["numeral"]) == (
        "Área de Activos Extraordinarios",
        "funciones",
        "ii",
    )
    assert hits[0]["quote"] == "Controlar los valúos y revalúos de los activos extraordinarios."
    assert [h["score"] for h in hits] == sorted((h["score"] for h in hits), reverse=True)


@pytest.mark.integration
def test_search_filters_by_unit_and_section(real_index, monkeypatch, capsys):
    _use_settings(monkeypatch, Path(real_index.store.path))

    code = main(
        [
            "search",
            "quejas de los clientes",
            "--unit",
            "Sucursal Paseo",
            "--section",
            "funciones",
            "--k",
            "10",
            "--json",
        ]
    )

    assert code == 0
    hits = json.loads(capsys.readouterr().out)
    assert len(hits) == 5  # the branch has five function lines
    assert {(h["unit"], h["section"]) for h in hits} == {("Sucursal Paseo", "funciones")}


@pytest.mark.integration
def test_ask_json_gives_the_answer_with_verbatim_citations(real_index, monkeypatch, capsys):
    _use_settings(monkeypatch, Path(real_index.store.path))

    assert main(["ask", "¿Quién controla los valúos de los activos extraordinarios?", "--json"]) == 0

    data = json.loads(capsys.readouterr().out)
    assert data["answered"] is True
    assert data["language"] == "es"
    assert data["engine"] == "grounded"
    assert "Área de Activos Extraordinarios" in data["answer"]
    assert data["citations"][0]["unit"] == "Área de Activos Extraordinarios"
    assert data["citations"][0]["numeral"] == "ii"
    assert data["citations"][0]["quote"] == "Controlar los valúos y revalúos de los activos extraordinarios."
    assert data["sources"][0]["chunk"]["unit"] == "Área de Activos Extraordinarios"


@pytest.mark.integration
def test_ask_prints_the_answer_and_its_quotes(real_index, monkeypatch, capsys):
    _use_settings(monkeypatch, Path(real_index.store.path))

    assert main(["ask", "Who heads the Área de Ventas?"]) == 0

    captured = capsys.readouterr()
    assert "Jefe Área de Ventas" in captured.out
    assert "«Jefe Área de Ventas" in captured.out
    assert "(grounded," in captured.err


@pytest.mark.integration
def test_ask_with_an_empty_question_exits_1_with_one_line(real_index, monkeypatch, capsys):
    _use_settings(monkeypatch, Path(real_index.store.path))

    assert main(["ask", "   "]) == 1

    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "empty" in err[0]


@pytest.mark.integration
def test_index_on_an_up_to_date_index_reuses_every_vector(real_index, monkeypatch, capsys, tmp_path):
    store_path = tmp_path / "index"
    shutil.copytree(Path(real_index.store.path), store_path)
    _use_settings(monkeypatch, store_path)
    before = json.loads((store_path / "manifest.json").read_text(encoding="utf-8"))

    assert main(["index", "--quiet"]) == 0

    out = capsys.readouterr().out
    after = json.loads((store_path / "manifest.json").read_text(encoding="utf-8"))
    assert after["build"] != before["build"]
    assert after["chunks"] == before["chunks"]
    assert f"index ready: {before['chunks']} chunks from 1 manual(s)" in out


@pytest.mark.integration
@pytest.mark.parametrize("command", [["ask", "¿Quién atiende las quejas?"], ["search", "quejas"]])
def test_without_an_index_the_cli_exits_1_and_says_to_run_make_index(
    e5_embedder, monkeypatch, capsys, tmp_path, command
):
    _use_settings(monkeypatch, tmp_path / "no-index")

    assert main(command) == 1

    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("error: No index found") and "make index" in err[0]
