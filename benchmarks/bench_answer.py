"""Answer benchmark: warm end-to-end ``Assistant.ask`` latency (grounded engine) and RSS over many calls.

    python -m benchmarks.bench_answer --root /tmp/x [--quick] [--calls 5000] [--manuals] [--out file.json]

Cycles through the visible and held-out question files (with ``--manuals``: the corpus manual and the three
dev manuals of evals/manuals/ indexed together, and their questions added: what a deployment serving several
gerencias pays, the support check scoring each manual's own candidate lines); the first ``WARMUP`` calls are untimed and every
later call is timed (the rest of the first pass is also summarised alone, as questions seen once). RSS is
sampled every ``sample_every`` calls to show whether memory stays flat. Thread counts are compared in the
retrieval benchmark, which can afford a second model.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import (
    QUESTION_FILES,
    ROOT,
    bench_settings,
    emit,
    load_average,
    load_questions,
    peak_rss_mb,
    rss_mb,
    summarize,
)

SERVING_CALLS = 200
WARMUP = 20


# Time every question cold: the embedder's query cache would otherwise answer repeats for free.
import assistant.embed as _embed  # noqa: E402

_embed._QUERY_CACHE_SIZE = 0


def _several_manuals(root: Path, settings: Any) -> tuple[Any, list[Path]]:
    """Settings whose corpus is the repo's manuals plus the dev manuals (copied under ``root``), and the dev
    manuals' question files."""
    import shutil

    corpus = root / "corpus-several"
    corpus.mkdir(parents=True, exist_ok=True)
    for path in sorted((ROOT / "corpus").glob("*.txt")):
        shutil.copy(path, corpus / path.name)
    folders = sorted(p for p in (ROOT / "evals" / "manuals").glob("*/") if (p / "manual.txt").is_file())
    for folder in folders:
        shutil.copy(folder / "manual.txt", corpus / f"{folder.name}.txt")
    return settings.model_copy(update={"corpus_dir": corpus}), [f / "questions.jsonl" for f in folders]


def run(
    root: Path, quick: bool = False, calls: int | None = None, budget_s: float = 240.0, manuals: bool = False
) -> dict[str, Any]:
    """Load the assistant, ask ``calls`` questions (bounded by ``budget_s``); returns a JSON-ready dict."""
    calls = calls or (300 if quick else 5000)
    sample_every = 50 if quick else 100
    started = time.perf_counter()
    res: dict[str, Any] = {"quick": quick, "load_average_start": load_average()}

    from assistant.chain import Assistant
    from assistant.indexer import build_index

    settings = bench_settings(root)
    more: list[Path] = []
    if manuals:
        settings, more = _several_manuals(root, settings)
        settings = settings.model_copy(
            update={"store": settings.store.model_copy(update={"path": root / "index-several"})}
        )
    if not (settings.store.path / "manifest.json").exists():
        build_index(settings)  # standalone run: the runner normally hands over a built temp index
    res["rss_before_load_mb"] = rss_mb()
    t0 = time.perf_counter()
    assistant = Assistant.from_settings(settings)
    res["assistant_load_s"] = round(time.perf_counter() - t0, 3)
    res["engine"] = settings.answer.engine
    res["rss_loaded_mb"] = rss_mb()

    visible = load_questions(QUESTION_FILES[:1])
    questions = visible + load_questions([*QUESTION_FILES[1:], *more])
    one_pass = len(questions)
    res["questions"] = {"visible": len(visible), "all": len(questions)}
    res["manuals"] = len(assistant.manuals)
    deadline = time.monotonic() + budget_s
    cpu: list[float] = []
    first_pass: list[float] = []
    latencies: list[float] = []
    visible_lat: list[float] = []
    answered = 0
    rss_samples: list[tuple[int, float]] = [(0, rss_mb())]
    done = 0
    for i in range(calls):
        if time.monotonic() > deadline:
            break
        q = questions[i % len(questions)]
        c0, t = time.process_time(), time.perf_counter()
        answer = assistant.ask(q)
        ms = (time.perf_counter() - t) * 1000
        cpu_ms = (time.process_time() - c0) * 1000
        done = i + 1
        answered += bool(answer.answered)
        if done % sample_every == 0:
            rss_samples.append((done, rss_mb()))
        if i < WARMUP:
            continue
        cpu.append(cpu_ms)
        latencies.append(ms)
        if i < one_pass:
            first_pass.append(ms)
        if i % one_pass < len(visible):
            visible_lat.append(ms)
    if rss_samples[-1][0] != done:
        rss_samples.append((done, rss_mb()))

    res["calls"] = {"asked": done, "planned": calls, "stopped_by_budget": done < calls}
    res["answered_share"] = round(answered / done, 3) if done else None
    res["warmup_calls"] = WARMUP
    res["first_pass"] = summarize(first_pass)
    res["ask"] = summarize(latencies)
    res["ask_cpu"] = summarize(cpu)
    res["ask_visible"] = summarize(visible_lat)
    res["rss_samples"] = [{"calls": c, "rss_mb": m} for c, m in rss_samples]
    # Memory growth is judged from the end of the first full pass: by then every question has been seen.
    after_warm = next((m for c, m in rss_samples if c >= one_pass), rss_samples[-1][1])
    res["rss_after_warmup_mb"] = after_warm
    # A serving process: model + index + engine loaded, 200 questions answered (issue 3's memory target).
    res["rss_serving_mb"] = next((m for c, m in rss_samples if c >= SERVING_CALLS), rss_samples[-1][1])
    res["rss_end_mb"] = rss_samples[-1][1]
    res["rss_growth_after_warmup_mb"] = round(rss_samples[-1][1] - after_warm, 1)
    res["rss_growth_after_warmup_pct"] = round(100 * (rss_samples[-1][1] - after_warm) / after_warm, 2)
    res["rss_growth_from_load_mb"] = round(rss_samples[-1][1] - res["rss_loaded_mb"], 1)
    res["peak_rss_mb"] = peak_rss_mb()
    res["load_average_end"] = load_average()
    res["wall_s"] = round(time.perf_counter() - started, 1)
    return res


def main(argv: list[str] | None = None) -> int:
    """Run the answer benchmark and print (and optionally write) its JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, help="folder holding (or to hold) the temp index")
    parser.add_argument("--quick", action="store_true", help="300 calls instead of 5,000")
    parser.add_argument("--calls", type=int, help="how many ask() calls (1–20000)")
    parser.add_argument("--budget", type=float, default=240.0, help="seconds for the ask() loop")
    parser.add_argument("--manuals", action="store_true", help="index the dev manuals beside the corpus one")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args(argv)
    if args.calls is not None and not 1 <= args.calls <= 20000:
        parser.error("--calls must be 1–20000")
    with tempfile.TemporaryDirectory(prefix="bench-answer-") as tmp:
        result = run(
            args.root or Path(tmp),
            quick=args.quick,
            calls=args.calls,
            budget_s=args.budget,
            manuals=args.manuals,
        )
    emit(result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
