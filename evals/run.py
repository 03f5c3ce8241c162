"""Evaluation runner: ask every question of question/conversation files, score the answers, write the reports.

    python -m evals.run --questions evals/questions.jsonl --out evals/out/visible.json [--gate]
    python -m evals.run --questions Q.jsonl --corpus evals/manuals/gerencia-creditos/manual.txt --out OUT.json
    python -m evals.run --conversations evals/conversations/dev.jsonl --out evals/out/conversations.json

Writes OUT.json, OUT.md, OUT.png and, for a set with unanswerable questions, OUT-curve.png (the refusal
trade-off curve). By default the tutorial baseline (evals/baseline.py) runs beside our configuration, so
every report shows both. Exit codes: 0 done, 1 a gate failed (with --gate), 2 bad input files or arguments.
"""

from __future__ import annotations

import argparse
import contextlib
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

from evals.corpus import CorpusArgumentError, CorpusFile, plan_corpus, temporary_corpus
from evals.metrics import (
    GATE_SETS,
    Gates,
    Question,
    Response,
    Source,
    refusal_curve,
    score_question,
    squash,
    summarise,
    summarise_conversations,
)
from evals.questions import (
    LANGS,
    REQUIRED,
    Conversation,
    QuestionFileError,
    Seen,
    load_conversations,
    load_questions,
    parse_question,
)

__all__ = [
    "LANGS",
    "REQUIRED",
    "QuestionFileError",
    "Run",
    "ask_ours",
    "load_conversations",
    "load_questions",
    "main",
    "parse_question",
]

log = logging.getLogger("evals")

RETRIEVERS = ("hybrid", "dense", "bm25", "baseline")

AssistantFactory = Callable[[Any, str], Any]
History = Sequence[tuple[str, str]]
# Asks one question (with the conversation so far, if any): the scored response and extra record fields.
AskFn = Callable[..., tuple[Response, dict[str, Any]]]


@dataclass
class Run:
    """One configuration's results over the question and conversation files."""

    name: str
    config: dict[str, Any]
    records: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    conversations: list[dict[str, Any]] = field(default_factory=list)
    conversation_metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def is_ours(self) -> bool:
        """Whether this is one of our configurations (not the tutorial baseline)."""
        return self.name.startswith("ours")

    def gated_metrics(self) -> dict[str, Any]:
        """The overall figures the gate reads: the questions', or the conversation turns' without questions."""
        if self.records or not self.conversations:
            return dict(self.metrics["overall"])
        return dict(self.conversation_metrics["overall"])

    def to_json(self) -> dict[str, Any]:
        """The ``{"config", "metrics", "results"[, "conversations"]}`` shape of OUT.json."""
        data: dict[str, Any] = {"config": self.config, "metrics": self.metrics, "results": self.records}
        if self.conversations:
            data["conversations"] = {"metrics": self.conversation_metrics, "results": self.conversations}
        return data


@dataclass
class Inputs:
    """What one run evaluates: the questions, the conversations, and what citations are checked against."""

    questions: list[Question]
    conversations: list[Conversation]
    references: list[str]
    paths: dict[str, Any]  # the input paths, as written into every configuration's config
    progress: bool = True


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
            quote=h.chunk.quote,
        )
        for h in answer.sources
    ]
    support = getattr(answer, "support", None)
    return Response(
        answer=answer.answer,
        answered=bool(answer.answered),
        citations=[c.model_dump(mode="json") for c in answer.citations],
        sources=sources,
        latency_ms=float(answer.latency_ms) or elapsed_ms,
        faithfulness=faithfulness,
        support=None if support is None else float(support),
    )


def ask_ours(assistant: Any) -> AskFn:
    """Wrap an `Assistant` so each question gives a `Response` plus the engine it was answered by.

    The returned function takes the question and, for a conversation turn, the history so far as
    ``[(question, answer text), …]``. A question's ``manual`` field is never passed on: resolving the manual
    is part of answering.
    """
    from assistant.errors import AssistantError

    judge = _Judge(getattr(assistant, "llm_judge", None))

    def ask(question: str, history: History | None = None) -> tuple[Response, dict[str, Any]]:
        started = time.perf_counter()
        try:
            answer = assistant.ask(question, history=list(history)) if history else assistant.ask(question)
        except AssistantError as exc:
            # The assistant rejecting a question is a refusal the user sees, so it is scored as one.
            elapsed = (time.perf_counter() - started) * 1000
            return Response(answer=str(exc), answered=False, latency_ms=elapsed), {"error": str(exc)}
        elapsed = (time.perf_counter() - started) * 1000
        extra = {"engine": answer.engine, "fallback_reason": answer.fallback_reason}
        if getattr(answer, "standalone_question", None):
            extra["standalone_question"] = answer.standalone_question
        return _response_from_answer(answer, elapsed, judge.score(question, answer)), extra

    return ask


def evaluate(
    name: str,
    questions: Sequence[Question],
    ask: AskFn,
    references: Sequence[str],
    progress: bool = True,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Ask every question with a tqdm bar; return the per-question records and their metrics."""
    records: list[dict[str, Any]] = []
    for q in tqdm(questions, desc=name, unit="q", disable=not progress, file=sys.stderr):
        response, extra = ask(q.question)
        records.append({**score_question(q, response, references), **extra})
    return records, summarise(records)


def evaluate_conversations(
    name: str,
    conversations: Sequence[Conversation],
    ask: AskFn,
    references: Sequence[str],
    progress: bool = True,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Ask each conversation's turns in order, turn k with turns 1..k-1 as history; score every turn."""
    results: list[dict[str, Any]] = []
    n_turns = sum(len(c.turns) for c in conversations)
    with tqdm(total=n_turns, desc=f"{name} (conversations)", unit="turn", disable=not progress,
              file=sys.stderr) as bar:  # fmt: skip
        for conv in conversations:
            history: list[tuple[str, str]] = []
            turns: list[dict[str, Any]] = []
            for k, q in enumerate(conv.turns, start=1):
                response, extra = ask(q.question, list(history)) if history else ask(q.question)
                record = {**score_question(q, response, references), **extra}
                record.update(conversation=conv.id, turn=k)
                turns.append(record)
                history.append((q.question, response.answer))
                bar.update()
            results.append(
                {"id": conv.id, "file": conv.file, "all_turns_right": all(t["correct"] for t in turns),
                 "turns": turns}
            )  # fmt: skip
    return results, summarise_conversations(results)


def run_all(name: str, inputs: Inputs, ask: AskFn, config: dict[str, Any]) -> Run:
    """One configuration over every question and conversation of the run."""
    run = Run(name=name, config={**config, **inputs.paths})
    label = config["name"]
    if inputs.questions:
        run.records, run.metrics = evaluate(label, inputs.questions, ask, inputs.references, inputs.progress)
    else:
        run.metrics = summarise([])
    if inputs.conversations:
        run.conversations, run.conversation_metrics = evaluate_conversations(
            label, inputs.conversations, ask, inputs.references, inputs.progress
        )
    return run


def default_factory(settings: Any, retrieval_mode: str) -> Any:
    """The real assistant: loads the model and opens the index once."""
    from assistant.chain import Assistant

    return Assistant.from_settings(settings, retrieval_mode=retrieval_mode)  # type: ignore[arg-type]


def _ours_config(settings: Any, assistant: Any, mode: str) -> dict[str, Any]:
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
        "support_threshold": support_threshold(settings),
        "embedding_model": str(getattr(getattr(assistant, "embedder", None), "name", "")),
        "llm_judge": getattr(assistant, "llm_judge", None) is not None,
        "corpus_dir": str(settings.corpus_dir),
        "manuals": [_manual_label(m) for m in getattr(assistant, "manuals", [])],
    }
    if engine == "llm":
        config["llm_model"] = settings.llm.model
    return config


def _manual_label(manual: Any) -> str:
    label = getattr(manual, "label", None)
    return str(label) if label else str(getattr(manual, "id", manual))


def support_threshold(settings: Any) -> float:
    """The engine's operating point on the refusal curve (`settings.answer.support_threshold`)."""
    return float(getattr(settings.answer, "support_threshold", 0.5))


def _warn_unknown_manuals(assistant: Any, inputs: Inputs) -> None:
    """Name question `manual` codes that no indexed manual has (a typo, or a manual missing from --corpus)."""
    known: set[str] = set()
    for m in getattr(assistant, "manuals", []):
        known.update(" ".join(str(v).split()) for v in (getattr(m, "code", ""), getattr(m, "id", "")) if v)
    if not known:
        return
    asked = [q for q in inputs.questions if q.manual] + [
        t for c in inputs.conversations for t in c.turns if t.manual
    ]
    unknown = sorted({str(q.manual) for q in asked} - known)
    if unknown:
        log.warning(
            "questions name manual(s) %s that the evaluated corpus does not hold (it has: %s)",
            ", ".join(unknown), ", ".join(sorted(known)),
        )  # fmt: skip


def run_ours(settings: Any, mode: str, inputs: Inputs, factory: AssistantFactory) -> tuple[Run, Any]:
    """Our configuration over the inputs, and the assistant (the baseline reuses its embedder)."""
    assistant = factory(settings, mode)
    _warn_unknown_manuals(assistant, inputs)
    run = run_all(f"ours-{mode}", inputs, ask_ours(assistant), _ours_config(settings, assistant, mode))
    return run, assistant


def run_baseline(embedder: Any, corpus_dir: str | Path, inputs: Inputs) -> Run:
    """The tutorial baseline over the same inputs and corpus files, with the same embedding model.

    It has no memory: a conversation's turns are asked as they are, without the history.
    """
    from evals.baseline import BaselineRAG

    baseline = BaselineRAG(embedder, corpus_dir)
    try:
        baseline.warm_up()

        def ask(question: str, history: History | None = None) -> tuple[Response, dict[str, Any]]:
            return baseline.ask(question), {}

        run = run_all("baseline", inputs, ask, baseline.config())
    finally:
        baseline.close()
    return run


# --- command line ----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m evals.run`` arguments."""
    parser = argparse.ArgumentParser(prog="python -m evals.run", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--questions", type=Path, nargs="+", action="extend", default=[], metavar="FILE",
        help="JSON Lines question file(s); ids must be unique across them",
    )  # fmt: skip
    parser.add_argument(
        "--conversations", type=Path, nargs="+", action="extend", default=[], metavar="FILE",
        help="JSON Lines conversation file(s): each turn is asked with the previous turns as history",
    )  # fmt: skip
    parser.add_argument(
        "--corpus", type=Path, nargs="+", action="extend", default=[], metavar="PATH",
        help="manual files and/or folders to evaluate against instead of the corpus folder of the settings "
        "(indexed into a temporary folder)",
    )  # fmt: skip
    parser.add_argument(
        "--out", type=Path, required=True,
        help="OUT.json; OUT.md, OUT.png and OUT-curve.png are written beside it",
    )  # fmt: skip
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
    parser.add_argument(
        "--gate", nargs="?", const="visible", choices=tuple(GATE_SETS), default=None, metavar="SET",
        help="exit 1 when ours misses a gate: 'visible' (the default set, the CI gate), 'calibration' "
        "(issue #13's targets for the calibration held-out half) or 'calibration-floor' (the CI floors on that "
        "half); see evals.metrics.GATE_SETS",
    )  # fmt: skip
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    return parser


def _load_inputs(args: argparse.Namespace) -> tuple[list[Question], list[Conversation], list[CorpusFile]]:
    """Every input file validated before anything heavy is loaded (raises with file:line)."""
    seen: Seen = {}
    questions = [q for path in args.questions for q in load_questions(path, seen)]
    conversations = [c for path in args.conversations for c in load_conversations(path, seen)]
    corpus = plan_corpus(args.corpus) if args.corpus else []
    return questions, conversations, corpus


def curve_path(out: Path) -> Path:
    """Where the refusal curve's chart goes: OUT-curve.png beside OUT.json."""
    return out.with_name(f"{out.stem}-curve.png")


def main(argv: Sequence[str] | None = None, factory: AssistantFactory | None = None) -> int:
    """Run the evaluation and write the outputs; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.questions and not args.conversations:
        parser.error("give --questions and/or --conversations")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        questions, conversations, corpus = _load_inputs(args)
    except (QuestionFileError, CorpusArgumentError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    from assistant.settings import Settings

    settings = Settings()
    if args.engine:
        settings.answer.engine = args.engine
    gates = GATE_SETS[args.gate or "visible"]
    needs_ours = args.retriever != "baseline" or bool(args.also)
    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        if corpus:
            # Our index is only built when one of our configurations runs; the baseline embeds on its own.
            settings = stack.enter_context(temporary_corpus(settings, corpus, build=needs_ours))
        paths = {
            "questions": [str(p) for p in args.questions],
            "conversations": [str(p) for p in args.conversations],
            "corpus": [str(p) for p in args.corpus] or [str(settings.corpus_dir)],
            "corpus_files": {f.name: str(f.source) for f in corpus},
        }
        inputs = Inputs(
            questions, conversations, corpus_references(settings.corpus_dir), paths, not args.quiet
        )
        runs = _run_configurations(args, settings, inputs, factory or default_factory)
    seconds = time.perf_counter() - started
    return _write_outputs(args, settings, gates, runs, inputs, seconds)


def _run_configurations(
    args: argparse.Namespace, settings: Any, inputs: Inputs, factory: AssistantFactory
) -> list[Run]:
    runs: list[Run] = []
    if args.retriever == "baseline":
        from assistant.embed import get_embedder

        embedder = get_embedder(settings.embedding)
    else:
        ours, assistant = run_ours(settings, args.retriever, inputs, factory)
        runs.append(ours)
        embedder = assistant.embedder
    if args.compare or args.retriever == "baseline":
        runs.append(run_baseline(embedder, settings.corpus_dir, inputs))
    for mode in dict.fromkeys(args.also):
        if mode != args.retriever:
            runs.append(run_ours(settings, mode, inputs, factory)[0])
    return runs


def _write_outputs(
    args: argparse.Namespace, settings: Any, gates: Gates, runs: list[Run], inputs: Inputs, seconds: float
) -> int:
    from evals.report import print_curve, print_summary, write_chart, write_curve_chart, write_markdown

    main_run = runs[0]
    failures = gates.check(main_run.gated_metrics())
    operating = support_threshold(settings)
    curve = refusal_curve(main_run.records, operating) if main_run.is_ours else None
    out: dict[str, Any] = {
        **main_run.to_json(),
        "gate": {**gates.to_json(), "failures": failures, "passed": not failures},
        "curve": curve,
        "compared": [r.to_json() for r in runs[1:]],
        "run": {
            "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "seconds": round(seconds, 1),
            "n_questions": len(inputs.questions),
            "n_conversations": len(inputs.conversations),
            "n_turns": sum(len(c.turns) for c in inputs.conversations),
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    md_path, png_path = args.out.with_suffix(".md"), args.out.with_suffix(".png")
    written = [str(args.out), str(md_path), str(png_path)]
    curve_png = curve_path(args.out) if curve else None
    if curve and curve_png:
        write_curve_chart(curve_png, curve)
        written.append(str(curve_png))
    write_markdown(
        md_path, runs, gates, failures, inputs=inputs.paths, chart_name=png_path.name, curve=curve,
        curve_chart_name=curve_png.name if curve_png else None,
    )  # fmt: skip
    write_chart(png_path, runs, gates)
    print_summary(runs, failures, gates)
    if curve:
        print_curve(curve)
    print("wrote " + ", ".join(written))
    if failures:
        for failure in failures:
            print(f"gate failed: {failure}", file=sys.stderr)
        if args.gate:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
