"""Evaluation runner: ask every question of a question file, score it, and write OUT.json, OUT.md and OUT.png.

    python -m evals.run --questions evals/questions.jsonl --out evals/out/visible.json [--gate]

By default the tutorial baseline (evals/baseline.py) runs beside our configuration, so every report shows
both. Exit codes: 0 done, 1 a gate failed (with --gate), 2 the question file or the arguments are wrong.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from evals.metrics import (
    GATES,
    Question,
    Response,
    Source,
    check_gates,
    score_question,
    squash,
    summarise,
)

log = logging.getLogger("evals")

RETRIEVERS = ("hybrid", "dense", "bm25", "baseline")
LANGS = ("es", "en", "mixed")
REQUIRED: dict[str, type | tuple[type, ...]] = {
    "id": str,
    "lang": str,
    "kind": str,
    "question": str,
    "answerable": bool,
    "evidence": list,
    "must": list,
}

AssistantFactory = Callable[[Any, str], Any]


class QuestionFileError(ValueError):
    """A question file that cannot be evaluated; the message names the line and what is wrong."""


@dataclass
class Run:
    """One configuration's results over the question file."""

    name: str
    config: dict[str, Any]
    records: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The ``{"config", "metrics", "results"}`` shape of OUT.json."""
        return {"config": self.config, "metrics": self.metrics, "results": self.records}


# --- question files --------------------------------------------------------------------------------


def _string_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and v.strip() for v in value)


def parse_question(data: Any, where: str) -> Question:
    """One question from a decoded JSON line; `where` ("file:line") starts every error message."""
    if not isinstance(data, dict):
        raise QuestionFileError(f"{where}: expected a JSON object, got {type(data).__name__}.")
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise QuestionFileError(f"{where}: missing key(s) {', '.join(repr(k) for k in missing)}.")
    for key, kind in REQUIRED.items():
        if not isinstance(data[key], kind):
            raise QuestionFileError(
                f"{where}: {key!r} must be a {getattr(kind, '__name__', kind)}, "
                f"got {type(data[key]).__name__}."
            )
    qid = data["id"].strip()
    if not qid:
        raise QuestionFileError(f"{where}: 'id' is empty.")
    if data["lang"] not in LANGS:
        raise QuestionFileError(f"{where}: 'lang' is {data['lang']!r}; use one of {', '.join(LANGS)}.")
    if not data["kind"].strip() or not data["question"].strip():
        raise QuestionFileError(f"{where}: 'kind' and 'question' must not be empty.")
    if not _string_list(data["evidence"]):
        raise QuestionFileError(f"{where}: 'evidence' must be a list of non-empty strings.")
    must = data["must"]
    if not all(_string_list(group) and group for group in must):
        raise QuestionFileError(f"{where}: 'must' must be a list of non-empty lists of alternative strings.")
    units = data.get("units", [])
    if not isinstance(units, list) or not all(isinstance(u, str) for u in units):
        raise QuestionFileError(f"{where}: 'units' must be a list of strings.")
    if data["answerable"] and not (data["evidence"] and must):
        # Feedback exports arrive with both empty; scoring them would count every answer as wrong.
        raise QuestionFileError(
            f"{where}: answerable question {qid!r} needs 'evidence' and 'must' filled in "
            "(see evals/README.md)."
        )
    return Question(
        id=qid,
        lang=data["lang"],
        kind=data["kind"].strip(),
        question=data["question"],
        answerable=data["answerable"],
        evidence=tuple(data["evidence"]),
        must=tuple(tuple(g) for g in must),
        units=tuple(units),
    )


def load_questions(path: str | Path) -> list[Question]:
    """Read and validate a JSON Lines question file; raise `QuestionFileError` naming the bad line."""
    p = Path(path)
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError as exc:
        raise QuestionFileError(f"The question file {p} does not exist.") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise QuestionFileError(f"The question file {p} could not be read as UTF-8 text ({exc}).") from exc
    questions: list[Question] = []
    seen: dict[str, int] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{p}:{number}"
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise QuestionFileError(f"{where}: not valid JSON ({exc.msg} at column {exc.colno}).") from exc
        question = parse_question(data, where)
        if question.id in seen:
            raise QuestionFileError(
                f"{where}: id {question.id!r} is already used on line {seen[question.id]}."
            )
        seen[question.id] = number
        questions.append(question)
    if not questions:
        raise QuestionFileError(f"The question file {p} holds no questions.")
    return questions


# --- what citations are checked against ------------------------------------------------------------


def corpus_references(corpus_dir: str | Path) -> list[str]:
    """Whitespace-squashed texts a citation may quote: each corpus file cleaned, and raw as a fallback."""
    from assistant.clean import clean_text
    from assistant.ingest import load_corpus

    loaded = load_corpus(corpus_dir)
    for error in loaded.errors:
        log.warning("%s", error)
    references: list[str] = []
    for doc in loaded.documents:
        references.append(squash(clean_text(doc.text).text))
        references.append(squash(doc.text))
    return references


# --- running one configuration ---------------------------------------------------------------------


class _Judge:
    """The assistant's LLM judge, given up after a few failures so an unreachable server is reported once."""

    MAX_FAILURES = 3

    def __init__(self, judge: Any) -> None:
        self.judge = judge
        self.failures = 0

    def score(self, question: str, answer: Any) -> float | None:
        """Faithfulness of an answered question, or None when there is no judge or it failed."""
        if self.judge is None or not answer.answered or self.failures >= self.MAX_FAILURES:
            return None
        try:
            return float(self.judge.judge_faithfulness(question, answer.answer, answer.sources))
        except Exception as exc:  # a judge outage should cost scores, not the whole run
            self.failures += 1
            log.warning("the LLM judge failed on %r (%s); its faithfulness is left empty", question[:60], exc)
            if self.failures == self.MAX_FAILURES:
                log.warning("the LLM judge failed %d times; no more faithfulness scores", self.failures)
            return None


def _response_from_answer(answer: Any, elapsed_ms: float, faithfulness: float | None) -> Response:
    sources = [
        Source(
            text=h.chunk.text,
            unit=h.chunk.unit,
            section=h.chunk.section,
            numeral=h.chunk.numeral,
            score=round(float(h.score), 4),
        )
        for h in answer.sources
    ]
    return Response(
        answer=answer.answer,
        answered=bool(answer.answered),
        citations=[c.model_dump(mode="json") for c in answer.citations],
        sources=sources,
        latency_ms=float(answer.latency_ms) or elapsed_ms,
        faithfulness=faithfulness,
    )


def ask_ours(assistant: Any) -> Callable[[str], tuple[Response, dict[str, Any]]]:
    """Wrap an `Assistant` so each question gives a `Response` plus the engine it was answered by."""
    from assistant.errors import AssistantError

    judge = _Judge(getattr(assistant, "llm_judge", None))

    def ask(question: str) -> tuple[Response, dict[str, Any]]:
        started = time.perf_counter()
        try:
            answer = assistant.ask(question)
        except AssistantError as exc:
            # The assistant rejecting a question is a refusal the user sees, so it is scored as one.
            elapsed = (time.perf_counter() - started) * 1000
            return Response(answer=str(exc), answered=False, latency_ms=elapsed), {"error": str(exc)}
        elapsed = (time.perf_counter() - started) * 1000
        extra = {"engine": answer.engine, "fallback_reason": answer.fallback_reason}
        return _response_from_answer(answer, elapsed, judge.score(question, answer)), extra

    return ask


def evaluate(
    name: str,
    questions: Sequence[Question],
    ask: Callable[[str], tuple[Response, dict[str, Any]]],
    references: Sequence[str],
    progress: bool = True,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Ask every question with a tqdm bar; return the per-question records and their metrics."""
    records: list[dict[str, Any]] = []
    for q in tqdm(questions, desc=name, unit="q", disable=not progress, file=sys.stderr):
        response, extra = ask(q.question)
        records.append({**score_question(q, response, references), **extra})
    return records, summarise(records)


def default_factory(settings: Any, retrieval_mode: str) -> Any:
    """The real assistant: loads the model and opens the index once."""
    from assistant.chain import Assistant

    return Assistant.from_settings(settings, retrieval_mode=retrieval_mode)  # type: ignore[arg-type]


def _ours_config(settings: Any, assistant: Any, mode: str, questions_path: str) -> dict[str, Any]:
    engine = settings.answer.engine
    config: dict[str, Any] = {
        "name": f"ours ({mode}, {engine})",
        "engine": engine,
        "retriever": mode,
        "k": settings.retrieval.k,
        "candidates": settings.retrieval.candidates,
        "dense_weight": settings.retrieval.dense_weight,
        "lexical_weight": settings.retrieval.lexical_weight,
        "refusal_threshold": settings.answer.refusal_threshold,
        "embedding_model": str(getattr(getattr(assistant, "embedder", None), "name", "")),
        "llm_judge": getattr(assistant, "llm_judge", None) is not None,
        "corpus_dir": str(settings.corpus_dir),
        "questions": questions_path,
    }
    if engine == "llm":
        config["llm_model"] = settings.llm.model
    return config


def run_ours(
    settings: Any, mode: str, questions: Sequence[Question], references: Sequence[str], questions_path: str,
    factory: AssistantFactory, progress: bool,
) -> tuple[Run, Any]:  # fmt: skip
    """Our configuration over the questions, and the assistant (the baseline reuses its embedder)."""
    assistant = factory(settings, mode)
    run = Run(name=f"ours-{mode}", config=_ours_config(settings, assistant, mode, questions_path))
    run.records, run.metrics = evaluate(
        run.config["name"], questions, ask_ours(assistant), references, progress
    )
    return run, assistant


def run_baseline(
    embedder: Any, corpus_dir: str | Path, questions: Sequence[Question], references: Sequence[str],
    questions_path: str, progress: bool,
) -> Run:  # fmt: skip
    """The tutorial baseline over the same questions, with the same embedding model."""
    from evals.baseline import BaselineRAG

    baseline = BaselineRAG(embedder, corpus_dir)
    try:
        baseline.warm_up()

        def ask(question: str) -> tuple[Response, dict[str, Any]]:
            return baseline.ask(question), {}

        records, metrics = evaluate("baseline", questions, ask, references, progress)
        config = {**baseline.config(), "questions": questions_path}
    finally:
        baseline.close()
    return Run(name="baseline", config=config, records=records, metrics=metrics)


# --- command line ----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m evals.run`` arguments."""
    parser = argparse.ArgumentParser(prog="python -m evals.run", description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=Path, required=True, help="a JSON Lines question file")
    parser.add_argument(
        "--out", type=Path, required=True, help="OUT.json; OUT.md and OUT.png are written beside it"
    )
    parser.add_argument("--engine", choices=("grounded", "llm"), help="answer engine (default: settings)")
    parser.add_argument(
        "--retriever", choices=RETRIEVERS, default="hybrid",
        help="our retrieval mode, or 'baseline' to run only the tutorial pipeline (default: hybrid)",
    )  # fmt: skip
    parser.add_argument(
        "--compare", action=argparse.BooleanOptionalAction, default=True,
        help="run the tutorial baseline beside ours (default: on)",
    )  # fmt: skip
    parser.add_argument(
        "--also", nargs="*", choices=("hybrid", "dense", "bm25"), default=[],
        help="more of our retrieval modes to add as columns",
    )  # fmt: skip
    parser.add_argument("--gate", action="store_true", help="exit 1 when ours misses a CI gate")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def main(argv: Sequence[str] | None = None, factory: AssistantFactory | None = None) -> int:
    """Run the evaluation and write the outputs; returns the exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        questions = load_questions(args.questions)
    except QuestionFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    from assistant.settings import Settings

    settings = Settings()
    if args.engine:
        settings.answer.engine = args.engine
    factory = factory or default_factory
    progress = not args.quiet
    qpath = str(args.questions)
    references = corpus_references(settings.corpus_dir)
    started = time.perf_counter()

    runs: list[Run] = []
    if args.retriever == "baseline":
        from assistant.embed import get_embedder

        embedder = get_embedder(settings.embedding)
    else:
        ours, assistant = run_ours(settings, args.retriever, questions, references, qpath, factory, progress)
        runs.append(ours)
        embedder = assistant.embedder
    if args.compare or args.retriever == "baseline":
        runs.append(run_baseline(embedder, settings.corpus_dir, questions, references, qpath, progress))
    for mode in dict.fromkeys(args.also):
        if mode != args.retriever:
            runs.append(run_ours(settings, mode, questions, references, qpath, factory, progress)[0])

    from evals.report import print_summary, write_chart, write_markdown

    main_run = runs[0]
    failures = check_gates(main_run.metrics["overall"])
    out: dict[str, Any] = {
        **main_run.to_json(),
        "gate": {"thresholds": GATES.__dict__, "failures": failures, "passed": not failures},
        "compared": [r.to_json() for r in runs[1:]],
        "run": {
            "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "seconds": round(time.perf_counter() - started, 1),
            "n_questions": len(questions),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    md_path, png_path = args.out.with_suffix(".md"), args.out.with_suffix(".png")
    write_markdown(md_path, runs, failures, questions_path=qpath, chart_name=png_path.name)
    write_chart(png_path, runs)
    print_summary(runs, failures)
    print(f"wrote {args.out}, {md_path} and {png_path}")
    if failures:
        for failure in failures:
            print(f"gate failed: {failure}", file=sys.stderr)
        if args.gate:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
