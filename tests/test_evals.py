"""Evaluation runs: metrics on hand-made results, question-file errors, and the runner end to end."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from assistant.errors import InvalidQuestionError
from assistant.models import Answer, Chunk, Citation, Hit
from evals.metrics import (
    Question,
    Response,
    Source,
    aggregate,
    check_gates,
    evidence_within,
    fold,
    hit_at_k,
    missing_must,
    ndcg_at_k,
    percentile,
    quote_is_verbatim,
    reciprocal_rank,
    relevance,
    score_question,
    squash,
    summarise,
)
from evals.run import QuestionFileError, load_questions, main
from tests.fakes import HashEmbedder

MANUAL = """Story Transcript

CÓDIGO 901 0905 MANUAL DE ORGANIZACIÓN Y FUNCIONES

1. Área de Atención al Cliente
Funciones:
i. Atender y solventar las quejas y
denuncias de los clientes.
ii. Actualizar y velar por la integridad de la base de datos de clientes.

2. Área de Activos Extraordinarios
Funciones:
i. Controlar los valúos y revalúos de los activos extraordinarios.
"""


def _q(**kw: Any) -> Question:
    base: dict[str, Any] = {
        "id": "q1",
        "lang": "es",
        "kind": "function",
        "question": "¿Quién?",
        "answerable": True,
        "evidence": ("Controlar los valúos",),
        "must": (("Activos Extraordinarios",),),
    }
    base.update(kw)
    return Question(**base)


# --- retrieval metrics ------------------------------------------------------------------------------


def test_evidence_matches_ignoring_accents_case_and_whitespace() -> None:
    assert fold("  Área de\n ATENCIÓN ") == "area de atencion"
    assert relevance(["controlar LOS   valuos y revaluos", "otra cosa"], ["Controlar los valúos"]) == [
        True,
        False,
    ]


def test_hit_at_k_and_mrr_follow_the_first_relevant_rank() -> None:
    rels = [False, False, True, False, True]
    assert not hit_at_k(rels, 1)
    assert not hit_at_k(rels, 2)
    assert hit_at_k(rels, 3)
    assert reciprocal_rank(rels) == pytest.approx(1 / 3)
    assert reciprocal_rank([False, False]) == 0.0


def test_ndcg_rewards_relevant_sources_ranked_first() -> None:
    assert ndcg_at_k([True, False, False], 5) == pytest.approx(1.0)
    assert ndcg_at_k([False, True], 5) == pytest.approx(1 / 1.5849625, rel=1e-6)
    assert ndcg_at_k([False, False, False], 5) == 0.0
    # Two relevant at ranks 1 and 3 against the ideal 1 and 2.
    assert ndcg_at_k([True, False, True], 5) == pytest.approx((1 + 0.5) / (1 + 1 / 1.5849625), rel=1e-6)


def test_evidence_at_1000_only_reads_the_first_thousand_characters() -> None:
    filler = "x" * 990
    assert evidence_within([filler, "CONTROLAR los valuos"], ["Controlar los valúos"]) is False
    assert evidence_within(["x" * 500, "Controlar   LOS VALÚOS"], ["controlar los valuos"]) is True
    # Short chunks: the window spans several of them, in rank order.
    assert evidence_within(["a" * 300, "b" * 300, "controlar los valúos"], ["Controlar los valúos"]) is True


# --- answer metrics ---------------------------------------------------------------------------------


def test_every_must_group_needs_one_alternative() -> None:
    must = [["Gerente Servicio al Cliente", "Gerencia de Servicio al Cliente"], ["6", "seis"]]
    assert missing_must("Depende de la GERENCIA de servicio al cliente y tiene seis grupos.", must) == []
    assert missing_must("Depende del Gerente Servicio al Cliente.", must) == [["6", "seis"]]


def test_correct_needs_the_must_groups_and_an_answer() -> None:
    q = _q()
    found = [Source(text="Área de Activos Extraordinarios, i. Controlar los valúos")]
    good = score_question(
        q, Response(answer="El Área de Activos Extraordinarios.", answered=True, sources=found), []
    )
    refused = score_question(q, Response(answer="Activos Extraordinarios", answered=False, sources=found), [])
    assert good["correct"] and good["hit_rank"] == 1 and good["evidence_at_1000"]
    assert not refused["correct"]


def test_refusal_accuracy_and_false_refusals() -> None:
    neg = _q(id="n", answerable=False, evidence=(), must=())
    records = [
        score_question(neg, Response(answer="No lo dice.", answered=False), []),
        score_question(
            _q(id="n2", answerable=False, evidence=(), must=()), Response("Sí", answered=True), []
        ),
        score_question(_q(id="a"), Response(answer="No lo dice.", answered=False), []),
        score_question(_q(id="b"), Response(answer="Activos Extraordinarios", answered=True), []),
    ]
    m = aggregate(records)
    assert m["refusal_accuracy"] == 0.5
    assert m["false_refusals"] == 0.5
    assert m["correctness"] == 0.5
    assert m["hit_at_1"] == 0.0  # retrieval counts answerable questions only
    assert records[0]["correct"] and records[0]["hit_at_1"] is None


def test_citation_validity_is_verbatim_up_to_whitespace() -> None:
    refs = [squash(MANUAL)]
    assert quote_is_verbatim("Atender y solventar las quejas y denuncias de los clientes.", refs)
    assert quote_is_verbatim("Atender y solventar … de los clientes", refs)
    assert not quote_is_verbatim("Atender y solventar las quejas de los clientes", refs)
    assert not quote_is_verbatim("ATENDER y solventar las quejas", refs)  # case matters in a verbatim quote
    assert not quote_is_verbatim("Controlar los valuos", refs)  # so do accents
    assert not quote_is_verbatim("  ", refs)
    cited = [{"quote": "Controlar los valúos y revalúos"}, {"quote": "Controlar el universo"}]
    record = score_question(_q(), Response(answer="x", answered=True, citations=cited), refs)
    assert [c["valid"] for c in record["citations"]] == [True, False]
    assert aggregate([record])["citation_validity"] == 0.5


def test_a_duty_answered_with_change_history_lines_only_is_wrong_whatever_units_it_names() -> None:
    history = [
        {"unit": None, "section": "modificaciones", "quote": "Creación del Área de Activos Extraordinarios"}
    ]
    duty = [
        *history,
        {"unit": "Área de Activos Extraordinarios", "section": "funciones", "quote": "Controlar"},
    ]
    answer = "Versión 3: Creación del Área de Activos Extraordinarios"
    assert not score_question(_q(), Response(answer, True, citations=history), [])["correct"]
    assert score_question(_q(), Response(answer, True, citations=duty), [])["correct"]
    # A question about the history itself is answered from it.
    assert score_question(_q(kind="history"), Response(answer, True, citations=history), [])["correct"]


def test_unit_precision_counts_right_answers_that_name_an_unlisted_unit() -> None:
    q = _q(units=("Área de Ventas",))
    only = [{"unit": "Area de ventas", "quote": "x"}]
    extra = [{"unit": "Área de Ventas", "quote": "x"}, {"unit": "Agencias", "quote": "y"}]
    records = [
        score_question(q, Response("Activos Extraordinarios", True, citations=only), []),
        score_question(replace(q, id="b"), Response("Activos Extraordinarios", True, citations=extra), []),
        score_question(replace(q, id="c"), Response("nada", True, citations=extra), []),  # wrong: not judged
        # A question that lists no units is not judged either.
        score_question(_q(id="d"), Response("Activos Extraordinarios", True, citations=extra), []),
    ]
    assert records[1]["unexpected_units"] == ["Agencias"]
    assert records[3]["unexpected_units"] is None
    assert aggregate(records)["unit_precision"] == 0.5


def test_latency_percentiles_and_groups() -> None:
    assert percentile([10.0, 20.0, 30.0, 40.0], 50) == 25.0
    assert percentile([1.0] * 19 + [100.0], 95) == pytest.approx(5.95)
    assert percentile([], 50) is None
    records = [
        score_question(_q(id="e", lang="en"), Response("Activos Extraordinarios", True, latency_ms=5), []),
        score_question(_q(id="s", lang="es"), Response("nada", True, latency_ms=7), []),
    ]
    summary = summarise(records)
    assert list(summary["by_lang"]) == ["es", "en"]
    assert summary["by_lang"]["en"]["correctness"] == 1.0
    assert summary["by_kind"]["function"]["n"] == 2


def test_gates_name_what_failed_and_skip_what_was_not_measured() -> None:
    ok = {"evidence_at_1000": 0.97, "correctness": 0.95, "refusal_accuracy": None}
    assert check_gates(ok) == []
    failures = check_gates({"evidence_at_1000": 0.97, "correctness": 0.80, "refusal_accuracy": 1.0})
    assert len(failures) == 1 and "correctness" in failures[0]


# --- question files ---------------------------------------------------------------------------------

GOOD = {"id": "q1", "lang": "es", "kind": "function", "question": "¿Quién atiende las quejas?",
        "answerable": True, "evidence": ["Atender y solventar las quejas"], "must": [["Atención al Cliente"]],
        "units": ["Área de Atención al Cliente"]}  # fmt: skip
NEGATIVE = {"id": "q2", "lang": "en", "kind": "negative", "question": "What is the CEO's salary?",
            "answerable": False, "evidence": [], "must": [], "units": []}  # fmt: skip


def _write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_question_file_loads_and_skips_blank_lines(tmp_path: Path) -> None:
    path = _write(tmp_path / "q.jsonl", [json.dumps(GOOD), "", json.dumps(NEGATIVE)])
    questions = load_questions(path)
    assert [q.id for q in questions] == ["q1", "q2"]
    assert questions[0].must == (("Atención al Cliente",),)


def test_bad_json_names_its_line(tmp_path: Path) -> None:
    path = _write(tmp_path / "q.jsonl", [json.dumps(GOOD), '{"id": "q2", "lang": '])
    with pytest.raises(QuestionFileError, match=r"q\.jsonl:2: not valid JSON"):
        load_questions(path)


def test_missing_key_names_its_line_and_key(tmp_path: Path) -> None:
    bad = {k: v for k, v in NEGATIVE.items() if k != "answerable"}
    path = _write(tmp_path / "q.jsonl", [json.dumps(GOOD), json.dumps(GOOD | {"id": "q3"}), json.dumps(bad)])
    with pytest.raises(QuestionFileError, match=r":3: missing key\(s\) 'answerable'"):
        load_questions(path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"lang": "fr"}, "'lang' is 'fr'"),
        ({"must": ["Atención"]}, "'must' must be a list of non-empty lists"),
        ({"answerable": "yes"}, "'answerable' must be a bool"),
        ({"evidence": [], "must": []}, "needs 'evidence' and 'must' filled in"),
    ],
)
def test_wrong_values_are_explained(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    path = _write(tmp_path / "q.jsonl", [json.dumps(GOOD | change)])
    with pytest.raises(QuestionFileError, match=f":1: .*{message}"):
        load_questions(path)


def test_duplicate_ids_and_empty_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(QuestionFileError, match=r":2: id 'q1' is already used on line 1"):
        load_questions(_write(tmp_path / "d.jsonl", [json.dumps(GOOD), json.dumps(GOOD)]))
    with pytest.raises(QuestionFileError, match="holds no questions"):
        load_questions(_write(tmp_path / "e.jsonl", [""]))
    with pytest.raises(QuestionFileError, match="does not exist"):
        load_questions(tmp_path / "missing.jsonl")


# --- the runner end to end --------------------------------------------------------------------------


def _hit(text: str, unit: str, numeral: str, score: float) -> Hit:
    chunk = Chunk(id=f"c-{numeral}-{unit}", text=f"{unit}. Funciones, {numeral}. {text}", quote=text,
                  manual_id="901 0905", section="funciones", unit=unit, numeral=numeral)  # fmt: skip
    return Hit(chunk=chunk, score=score, dense=score)


class FakeAssistant:
    """Answers from a fixed table, like the grounded engine would, without a model or an index."""

    def __init__(self, corpus_quote: str, judged: bool = False) -> None:
        self.embedder = HashEmbedder()
        self.manuals: list[Any] = []
        self.llm_judge = FakeJudge() if judged else None
        self.quote = corpus_quote
        self.asked: list[str] = []

    def ask(self, question: str) -> Answer:
        self.asked.append(question)
        if not question.strip():
            raise InvalidQuestionError("The question is empty; type a question about the manual.")
        if "salary" in question:
            return Answer(question=question, answer="The manual does not say.", answered=False, language="en",
                          latency_ms=3.0)  # fmt: skip
        hits = [_hit("Otra función.", "Área de Ventas", "i", 0.8),
                _hit(self.quote, "Área de Atención al Cliente", "i", 0.7)]  # fmt: skip
        citation = Citation(unit="Área de Atención al Cliente", section="funciones", numeral="i",
                            quote=self.quote, manual="901 0905", score=0.7)  # fmt: skip
        text = "El Área de Atención al Cliente."
        return Answer(question=question, answer=text, answered=True, language="es",
                      citations=[citation], sources=hits, latency_ms=12.0)  # fmt: skip


class FakeJudge:
    """An LLM judge that finds every answer faithful."""

    def judge_faithfulness(self, question: str, answer_text: str, sources: list[Hit]) -> float:
        return 1.0


@pytest.fixture
def eval_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A tiny corpus and question file, with the settings pointed at them."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "manual.txt").write_text(MANUAL, encoding="utf-8")
    monkeypatch.chdir(tmp_path)  # keep the repository's .env out of the settings
    monkeypatch.setenv("ASSISTANT_CORPUS_DIR", str(corpus))
    _write(tmp_path / "questions.jsonl", [json.dumps(GOOD), json.dumps(NEGATIVE)])
    return tmp_path


def test_runner_writes_json_markdown_and_chart_with_the_baseline(eval_env: Path) -> None:
    fake = FakeAssistant("Atender y solventar las quejas y denuncias de los clientes.")
    out = eval_env / "out" / "run.json"
    code = main(["--questions", str(eval_env / "questions.jsonl"), "--out", str(out), "--quiet"],
                factory=lambda settings, mode: fake)  # fmt: skip
    assert code == 0
    data = json.loads(out.read_text(encoding="utf-8"))
    assert set(data) >= {"config", "metrics", "results", "gate", "compared"}
    first, negative = data["results"]
    assert first["id"] == "q1" and first["correct"] and first["hit_rank"] == 2
    assert [s["unit"] for s in first["sources"]] == ["Área de Ventas", "Área de Atención al Cliente"]
    assert first["citations"][0]["valid"] is True
    assert negative["correct"] and not negative["answered"]
    overall = data["metrics"]["overall"]
    assert overall["correctness"] == 1.0 and overall["refusal_accuracy"] == 1.0 and overall["mrr"] == 0.5
    baseline = data["compared"][0]
    assert baseline["config"]["name"] == "baseline"
    assert all(r["answered"] for r in baseline["results"])  # the tutorial pipeline never declines
    assert baseline["metrics"]["overall"]["refusal_accuracy"] == 0.0
    assert baseline["results"][0]["sources"][0]["unit"] is None
    report = out.with_suffix(".md").read_text(encoding="utf-8")
    assert "ours (hybrid, grounded)" in report and "baseline" in report and "## Per language" in report
    assert out.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_gate_exits_non_zero_and_says_which_gate_failed(
    eval_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakeAssistant("Una cita que el manual no contiene.")
    fake.ask = lambda q: Answer(question=q, answer="No lo sé.", answered=False, language="es")  # type: ignore
    argv = ["--questions", str(eval_env / "questions.jsonl"), "--out", str(eval_env / "g.json"), "--quiet",
            "--no-compare"]  # fmt: skip
    assert main([*argv, "--gate"], factory=lambda s, m: fake) == 1
    assert "gate failed: correctness is 0.000" in capsys.readouterr().err
    assert main(argv, factory=lambda s, m: fake) == 0  # without --gate the run only reports it
    assert json.loads((eval_env / "g.json").read_text())["compared"] == []


def test_invalid_citations_and_judge_show_in_the_report(eval_env: Path) -> None:
    fake = FakeAssistant("Atender las quejas de todos los clientes.", judged=True)
    out = eval_env / "j.json"
    argv = ["--questions", str(eval_env / "questions.jsonl"), "--out", str(out), "--quiet", "--no-compare"]
    assert main(argv, factory=lambda s, m: fake) == 0
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["metrics"]["overall"]["citation_validity"] == 0.0
    assert data["metrics"]["overall"]["faithfulness"] == 1.0
    report = out.with_suffix(".md").read_text(encoding="utf-8")
    assert "faithful (LLM)" in report and "**q1**" in report and "citation not verbatim" in report


def test_a_bad_question_file_stops_the_run_before_loading_anything(
    eval_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = _write(eval_env / "bad.jsonl", [json.dumps(GOOD), "not json"])

    def factory(settings: Any, mode: str) -> Any:
        raise AssertionError("the assistant must not be loaded for a bad question file")

    assert main(["--questions", str(bad), "--out", str(eval_env / "x.json")], factory=factory) == 2
    assert "bad.jsonl:2: not valid JSON" in capsys.readouterr().err


def test_baseline_retrieves_raw_text_chunks(eval_env: Path) -> None:
    from evals.baseline import BaselineRAG

    baseline = BaselineRAG(HashEmbedder(), eval_env / "corpus")
    try:
        response = baseline.ask("¿Quién controla los valúos de los activos extraordinarios?")
    finally:
        baseline.close()
    assert response.answered and response.citations == []
    assert 1 <= len(response.sources) <= 4
    # The tutorial pipeline keeps the document site's noise the assistant's cleaner removes.
    assert "Story Transcript" in response.answer


def test_an_unreachable_judge_is_given_up_after_a_few_failures() -> None:
    from evals.run import ask_ours

    class BrokenJudge:
        calls = 0

        def judge_faithfulness(self, question: str, answer_text: str, sources: list[Hit]) -> float:
            BrokenJudge.calls += 1
            raise ConnectionError("LLM server unreachable")

    fake = FakeAssistant("Atender y solventar las quejas y denuncias de los clientes.")
    fake.llm_judge = BrokenJudge()  # type: ignore[assignment]
    ask = ask_ours(fake)
    responses = [ask(f"¿Quién atiende las quejas {i}?")[0] for i in range(6)]
    assert all(r.faithfulness is None and r.answered for r in responses)
    assert BrokenJudge.calls == 3


# --- manuals: the "manual" field and the per-manual breakdown ---------------------------------------

CREDITOS = GOOD | {"id": "c1", "manual": "901 0903"}


def test_the_manual_field_is_optional_and_validated(tmp_path: Path) -> None:
    path = _write(tmp_path / "q.jsonl", [json.dumps(CREDITOS | {"manual": "901  0903"}), json.dumps(GOOD)])
    first, second = load_questions(path)
    assert first.manual == "901 0903" and second.manual is None  # runs of spaces are squashed
    for bad in ("", 901, ["901 0903"]):
        with pytest.raises(QuestionFileError, match=r"q\.jsonl:1: 'manual' must be a manual's code"):
            load_questions(_write(tmp_path / "q.jsonl", [json.dumps(GOOD | {"manual": bad})]))


def test_reports_break_down_per_manual_and_never_tell_the_assistant(eval_env: Path) -> None:
    fake = FakeAssistant("Atender y solventar las quejas y denuncias de los clientes.")
    lines = [json.dumps(CREDITOS), json.dumps(GOOD), json.dumps(NEGATIVE | {"manual": "901 0903"})]
    questions = _write(eval_env / "m.jsonl", lines)
    out = eval_env / "m.json"
    argv = ["--questions", str(questions), "--out", str(out), "--quiet"]
    # FakeAssistant.ask takes the question alone: passing the manual on would raise a TypeError.
    assert main(argv, factory=lambda s, m: fake) == 0
    data = json.loads(out.read_text(encoding="utf-8"))
    by_manual = data["metrics"]["by_manual"]
    assert list(by_manual) == ["901 0903", "(none)"]
    assert by_manual["901 0903"]["n"] == 2 and by_manual["901 0903"]["refusal_accuracy"] == 1.0
    assert data["results"][0]["manual"] == "901 0903"
    assert data["compared"][0]["metrics"]["by_manual"]["901 0903"]["n"] == 2  # the baseline too
    report = out.with_suffix(".md").read_text(encoding="utf-8")
    assert "## Per manual" in report and "| 901 0903 | ours (hybrid, grounded) | 2 |" in report


def test_several_question_files_in_one_run(eval_env: Path) -> None:
    a = _write(eval_env / "a.jsonl", [json.dumps(CREDITOS)])
    b = _write(eval_env / "b.jsonl", [json.dumps(GOOD), json.dumps(NEGATIVE)])
    fake = FakeAssistant("Atender y solventar las quejas y denuncias de los clientes.")
    loads: list[str] = []

    def factory(settings: Any, mode: str) -> Any:
        loads.append(mode)
        return fake

    out = eval_env / "ab.json"
    argv = ["--questions", str(a), str(b), "--out", str(out), "--quiet", "--no-compare"]
    assert main(argv, factory=factory) == 0
    assert loads == ["hybrid"]  # one assistant for all the files
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["config"]["questions"] == [str(a), str(b)]
    assert {k: v["n"] for k, v in data["metrics"]["by_file"].items()} == {str(a): 1, str(b): 2}
    # Ids name questions in reports, so they may not repeat across the files of a run.
    dup = _write(eval_env / "dup.jsonl", [json.dumps(NEGATIVE | {"id": "c1"})])
    with pytest.raises(QuestionFileError, match=rf"dup\.jsonl:1: id 'c1' is already used on {a}:1"):
        from evals.questions import load_questions as load

        seen: dict[str, Any] = {}
        load(a, seen)
        load(dup, seen)


# --- --corpus: a temporary index of other manuals ----------------------------------------------------

CREDITOS_MANUAL = MANUAL.replace("901 0905", "901 0903").replace(
    "Atención al Cliente", "Recepción de Solicitudes"
)


def test_corpus_names_copies_after_their_folder(tmp_path: Path) -> None:
    from evals.corpus import CorpusArgumentError, plan_corpus

    for name in ("creditos", "planificacion"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "manual.txt").write_text(MANUAL, encoding="utf-8")
        (tmp_path / name / "questions.jsonl").write_text("{}", encoding="utf-8")
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "creditos.txt").write_text(MANUAL, encoding="utf-8")
    (tmp_path / "corpus" / "scope.json").write_text("{}", encoding="utf-8")
    plan = plan_corpus(
        [tmp_path / "creditos" / "manual.txt", tmp_path / "planificacion", tmp_path / "corpus",
         tmp_path / "creditos" / "manual.txt"]
    )  # fmt: skip
    assert [(f.source.relative_to(tmp_path).as_posix(), f.name) for f in plan] == [
        ("creditos/manual.txt", "creditos.txt"),
        ("planificacion/manual.txt", "manual.txt"),  # found in a folder: keeps its name
        ("corpus/creditos.txt", "creditos-2.txt"),  # taken: numbered; scope.json and .jsonl are not manuals
    ]
    with pytest.raises(CorpusArgumentError, match="no such file or folder"):
        plan_corpus([tmp_path / "missing.txt"])
    with pytest.raises(CorpusArgumentError, match="unsupported file type"):
        plan_corpus([tmp_path / "creditos" / "questions.jsonl"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(CorpusArgumentError, match="holds no manual"):
        plan_corpus([tmp_path / "empty"])


def test_corpus_runs_against_a_temporary_index_of_the_given_files(
    eval_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from assistant import indexer
    from assistant.store import Store

    embedder = HashEmbedder()
    monkeypatch.setattr(indexer, "get_embedder", lambda _settings: embedder)
    for name, text in (("gerencia-creditos", CREDITOS_MANUAL), ("gerencia-servicio", MANUAL)):
        (eval_env / name).mkdir()
        (eval_env / name / "manual.txt").write_text(text, encoding="utf-8")
    seen: dict[str, Any] = {}
    fake = FakeAssistant("Atender y solventar las quejas y denuncias de los clientes.")

    def factory(settings: Any, mode: str) -> Any:
        # The assistant is opened on the temporary index, which holds exactly the given manuals.
        index = Store(settings.store).open(embedder)
        seen.update(
            corpus_dir=settings.corpus_dir,
            store=settings.store.path,
            manuals=sorted(index.manifest.manuals),
            codes={c.manual_code for c in index.chunks},
            files=sorted(p.name for p in settings.corpus_dir.iterdir()),
        )
        return fake

    out = eval_env / "c.json"
    argv = ["--questions", str(eval_env / "questions.jsonl"), "--out", str(out), "--quiet", "--corpus",
            str(eval_env / "gerencia-creditos" / "manual.txt"), str(eval_env / "gerencia-servicio" / "manual.txt")]  # fmt: skip
    assert main(argv, factory=factory) == 0
    assert seen["files"] == ["gerencia-creditos.txt", "gerencia-servicio.txt"]
    assert seen["manuals"] == ["gerencia-creditos", "gerencia-servicio"]
    assert seen["codes"] == {"901 0903", "901 0905"}
    assert seen["corpus_dir"] != eval_env / "corpus" and not seen["corpus_dir"].exists()  # removed after
    assert not Path(seen["store"]).exists()
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["config"]["corpus_files"] == {
        "gerencia-creditos.txt": str(eval_env / "gerencia-creditos" / "manual.txt"),
        "gerencia-servicio.txt": str(eval_env / "gerencia-servicio" / "manual.txt"),
    }
    baseline = data["compared"][0]
    assert baseline["config"]["corpus_dir"] == str(seen["corpus_dir"])  # the baseline read the same files
    assert any("Recepción de Solicitudes" in s["text"] for r in baseline["results"] for s in r["sources"])
    assert data["results"][0]["citations"][0]["valid"]  # checked against the given manuals


def test_a_bad_corpus_path_stops_the_run_before_loading_anything(
    eval_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def factory(settings: Any, mode: str) -> Any:
        raise AssertionError("nothing may be loaded for a bad --corpus")

    argv = ["--questions", str(eval_env / "questions.jsonl"), "--out", str(eval_env / "x.json"),
            "--corpus", str(eval_env / "nowhere")]  # fmt: skip
    assert main(argv, factory=factory) == 2
    assert "no such file or folder" in capsys.readouterr().err


# --- conversations ----------------------------------------------------------------------------------

FOLLOW_UP = {"id": "t2", "lang": "es", "kind": "follow-up", "question": "¿Y quién la dirige?",
             "answerable": True, "evidence": ["Atender y solventar las quejas"],
             "must": [["Jefe Área de Atención al Cliente"]]}  # fmt: skip


class ConversationalAssistant(FakeAssistant):
    """Answers a follow-up right only when the previous turn is passed as history."""

    def __init__(self) -> None:
        super().__init__("Atender y solventar las quejas y denuncias de los clientes.")
        self.histories: list[list[tuple[str, str]] | None] = []

    def ask(self, question: str, history: list[tuple[str, str]] | None = None) -> Answer:
        self.histories.append(history)
        answer = super().ask(question)
        if question.startswith("¿Y quién") and history and "Atención al Cliente" in history[-1][1]:
            return answer.model_copy(update={"answer": "El Jefe Área de Atención al Cliente."})
        return answer


def test_conversation_turns_are_asked_with_the_history_and_scored(eval_env: Path) -> None:
    conversations = _write(
        eval_env / "conv.jsonl",
        [
            json.dumps({"id": "conv-1", "turns": [GOOD, FOLLOW_UP, NEGATIVE | {"id": "t3"}]}),
            json.dumps({"id": "conv-2", "turns": [FOLLOW_UP | {"id": "alone"}]}),
        ],
    )
    fake = ConversationalAssistant()
    out = eval_env / "conv.json"
    argv = ["--conversations", str(conversations), "--out", str(out), "--quiet"]
    assert main(argv, factory=lambda s, m: fake) == 0
    q1 = GOOD["question"]
    assert fake.histories[:3] == [
        None,
        [(q1, "El Área de Atención al Cliente.")],
        [
            (q1, "El Área de Atención al Cliente."),
            (FOLLOW_UP["question"], "El Jefe Área de Atención al Cliente."),
        ],
    ]
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["results"] == [] and data["metrics"]["overall"]["n"] == 0
    convs = data["conversations"]
    first, second = convs["results"]
    assert [t["correct"] for t in first["turns"]] == [True, True, True] and first["all_turns_right"]
    assert [t["turn"] for t in first["turns"]] == [1, 2, 3] and first["turns"][1]["conversation"] == "conv-1"
    assert not second["all_turns_right"]  # the same follow-up without its context misses the head
    m = convs["metrics"]
    assert m["conversations"] == {"n": 2, "n_turns": 4, "all_turns_right": 0.5}
    assert m["by_turn"]["1"]["accuracy"] == 0.5 and m["by_turn"]["2"]["accuracy"] == 1.0
    assert m["overall"]["accuracy"] == 0.75
    # Without questions, the gate reads the turns; the baseline (no memory) is in the report too.
    assert data["gate"]["name"] == "visible" and data["compared"][0]["conversations"]["results"]
    report = out.with_suffix(".md").read_text(encoding="utf-8")
    assert "## Conversations" in report and "### Per turn position" in report
    assert "**conv-2**: turn 1 (alone): answer lacks: Jefe Área de Atención al Cliente" in report


def test_conversation_files_are_validated_with_their_line(tmp_path: Path) -> None:
    from evals.questions import load_conversations

    ok = load_conversations(
        _write(tmp_path / "c.jsonl", [json.dumps({"id": "c", "turns": [GOOD, NEGATIVE]})])
    )
    assert [t.id for t in ok[0].turns] == ["q1", "q2"]
    no_id = {k: v for k, v in GOOD.items() if k != "id"}
    ok = load_conversations(_write(tmp_path / "c.jsonl", [json.dumps({"id": "c", "turns": [no_id]})]))
    assert ok[0].turns[0].id == "c#1"  # a turn's id may be left out
    cases = [
        ({"id": "c", "turns": []}, r"c\.jsonl:1: conversation 'c' needs 'turns'"),
        ({"turns": [GOOD]}, r"c\.jsonl:1: a conversation needs an 'id'"),
        ({"id": "c", "turns": [GOOD, GOOD | {"lang": "fr"}]}, r"c\.jsonl:1: turn 2: 'lang' is 'fr'"),
        (
            {"id": "c", "turns": [GOOD, GOOD]},
            r"c\.jsonl:1: turn 2: id 'q1' is already used on line 1 \(turn 1\)",
        ),
    ]
    for line, message in cases:
        with pytest.raises(QuestionFileError, match=message):
            load_conversations(_write(tmp_path / "c.jsonl", [json.dumps(line)]))
    with pytest.raises(QuestionFileError, match=r"c\.jsonl:2: conversation id 'c' is already used on line 1"):
        load_conversations(_write(tmp_path / "c.jsonl", [json.dumps({"id": "c", "turns": [GOOD]}),
                                                          json.dumps({"id": "c", "turns": [NEGATIVE]})]))  # fmt: skip


# --- the refusal trade-off curve --------------------------------------------------------------------


def _scored(
    qid: str, answerable: bool, answered: bool, support: float | None, right: bool = True
) -> dict[str, Any]:
    q = _q(id=qid) if answerable else _q(id=qid, answerable=False, evidence=(), must=())
    text = "Activos Extraordinarios" if right else "Otra área"
    return score_question(q, Response(answer=text, answered=answered, support=support), [])


def test_the_curve_sweeps_the_support_threshold_post_hoc() -> None:
    from evals.metrics import curve_point, refusal_curve

    operating = 0.5
    records = [
        _scored("a1", True, True, 0.9),
        _scored("a2", True, True, 0.6, right=False),
        _scored("a3", True, False, 0.3),  # declined for low support
        _scored("a4", True, True, None),  # a structure answer: never scored
        _scored("u1", False, False, 0.2),
        _scored("u2", False, False, 0.45),
        _scored("u3", False, True, 0.7),  # a false acceptance at the operating point
        _scored("u4", False, False, None),  # out of scope: declined before scoring, at any threshold
    ]
    curve = refusal_curve(records, operating)
    assert curve is not None
    points = {p["threshold"]: p for p in curve["points"]}
    assert len(points) == 101 and points[0.0]["threshold"] == 0.0 and points[1.0]["threshold"] == 1.0
    # The operating point is on the curve and reproduces what the engine actually did.
    actual = aggregate(records)
    op = curve["operating_point"]
    assert op == points[0.5]
    assert (op["refusal_accuracy"], op["false_refusals"], op["correctness"]) == (
        actual["refusal_accuracy"], actual["false_refusals"], actual["correctness"]
    )  # fmt: skip
    assert op == {"threshold": 0.5, "refusal_accuracy": 0.75, "false_refusals": 0.25, "correctness": 0.5,
                  "accuracy": 0.625}  # fmt: skip
    # Threshold 0: every scored answer is given; a would-be answer counts as given but wrong.
    assert points[0.0]["refusal_accuracy"] == 0.25 and points[0.0]["false_refusals"] == 0.0
    assert points[0.0]["correctness"] == 0.5  # a3 comes back, but its text is unknown
    # Threshold 1: only unscored answers survive.
    assert points[1.0]["refusal_accuracy"] == 1.0 and points[1.0]["false_refusals"] == 0.75
    # refusal acc. − false refusals peaks at 0.5 on three stretches of thresholds.
    assert curve["best"] == {"score": 0.5, "ranges": [[0.21, 0.3], [0.46, 0.6], [0.71, 0.9]]}
    # An operating point off the grid is added to it, so it is always on the curve.
    off = refusal_curve(records, 0.555)
    assert off is not None and off["operating_point"] == curve_point(records, 0.555, 0.555)
    assert 0.555 in [p["threshold"] for p in off["points"]]
    # Without unanswerable (or without answerable) questions there is no trade-off to draw.
    assert refusal_curve([r for r in records if r["answerable"]], operating) is None


def test_the_runner_writes_the_curve_beside_the_report(
    eval_env: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The operating point, whatever the default.
    monkeypatch.setenv("ASSISTANT_ANSWER__SUPPORT_THRESHOLD", "0.5")
    fake = FakeAssistant("Atender y solventar las quejas y denuncias de los clientes.")
    real_ask = fake.ask

    def ask(question: str) -> Answer:
        answer = real_ask(question)
        return answer.model_copy(update={"support": 0.2 if not answer.answered else 0.8})

    fake.ask = ask  # type: ignore[method-assign]
    out = eval_env / "curve.json"
    argv = ["--questions", str(eval_env / "questions.jsonl"), "--out", str(out), "--quiet", "--no-compare"]
    assert main(argv, factory=lambda s, m: fake) == 0
    data = json.loads(out.read_text(encoding="utf-8"))
    curve = data["curve"]
    assert curve["operating_threshold"] == 0.5 and curve["n_scored"] == 2
    assert curve["operating_point"] in curve["points"]
    assert data["results"][0]["support"] == 0.8
    png = eval_env / "curve-curve.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = out.with_suffix(".md").read_text(encoding="utf-8")
    assert "## Refusal trade-off curve" in report and "**0.50** (operating)" in report
    assert "![refusal trade-off curve](curve-curve.png)" in report
    assert "refusal curve: operating point t=0.50" in capsys.readouterr().out


# --- gate sets --------------------------------------------------------------------------------------


def test_gate_sets_hold_minima_and_maxima() -> None:
    from evals.metrics import GATE_SETS, GATES

    assert GATES is GATE_SETS["visible"]
    calibration = GATE_SETS["calibration"]
    good = {"refusal_accuracy": 0.96, "false_refusals": 0.03, "correctness": 0.95}
    assert calibration.check(good) == []
    bad = calibration.check({"refusal_accuracy": 0.99, "false_refusals": 0.05, "correctness": 0.9})
    assert bad == [
        "false_refusals is 0.050, above the gate of 0.03",
        "correctness is 0.900, below the gate of 0.95",
    ]
    assert calibration.check({"refusal_accuracy": None, "false_refusals": None, "correctness": None}) == []
    assert calibration.to_json()["bounds"][1] == {"metric": "false_refusals", "limit": 0.03, "at_most": True}


def test_the_ci_floor_gate_sits_under_the_issue_targets() -> None:
    from evals.metrics import GATE_SETS

    floor, target = GATE_SETS["calibration-floor"], GATE_SETS["calibration"]
    limits = {b.metric: b.limit for b in floor.bounds}
    assert {b.metric for b in floor.bounds} == {b.metric for b in target.bounds}
    for b in target.bounds:  # looser than each target, in its own direction
        assert limits[b.metric] > b.limit if b.upper else limits[b.metric] < b.limit
    assert floor.check({"refusal_accuracy": 0.6, "false_refusals": 0.05, "correctness": 0.9}) == [
        "refusal_accuracy is 0.600, below the gate of 0.70"
    ]


def test_gate_selects_a_set_and_plain_gate_keeps_the_visible_one(
    eval_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = FakeAssistant("Atender y solventar las quejas y denuncias de los clientes.")
    real_ask = fake.ask
    # Right answer, but no evidence retrieved: passes the calibration gate, misses the visible one.
    fake.ask = lambda q: real_ask(q).model_copy(update={"sources": []})  # type: ignore[method-assign, assignment]
    out = eval_env / "gate.json"
    argv = ["--questions", str(eval_env / "questions.jsonl"), "--out", str(out), "--quiet", "--no-compare"]
    assert main([*argv, "--gate"], factory=lambda s, m: fake) == 1
    assert "gate failed: evidence_at_1000 is 0.000" in capsys.readouterr().err
    assert main([*argv, "--gate", "calibration"], factory=lambda s, m: fake) == 0
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["gate"]["name"] == "calibration" and data["gate"]["passed"]
    assert "false_refusals ≤ 0.03: 0.000 — pass" in out.with_suffix(".md").read_text(encoding="utf-8")
