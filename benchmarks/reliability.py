"""Memory over many questions: RSS after load, after a warm-up pass, and after N ``ask`` calls in total.

Uses the live ``index/`` (``make index`` first) and the grounded engine; cycles through the evaluation
questions plus a few bad inputs (empty, 100,000 characters, NUL bytes) so that error paths are exercised too.
Bounded by ``--calls`` (at most 5,000) and ``--timeout`` seconds.

    python benchmarks/reliability.py --calls 2000 --out benchmarks/out/reliability.json
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BAD = ["", "   ", "\x00\x01", "¿Quién atiende las quejas? " * 3800]


# Time every question cold: the embedder's query cache would otherwise answer repeats for free.
import assistant.embed as _embed  # noqa: E402

_embed._QUERY_CACHE_SIZE = 0


def rss_mb() -> float:
    """Resident memory of this process in MB."""
    return psutil.Process().memory_info().rss / 1e6


def main(argv: list[str] | None = None) -> int:
    """Run the calls and print one JSON object."""
    from assistant.chain import Assistant
    from assistant.errors import InvalidQuestionError
    from assistant.settings import Settings

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if not 1 <= args.calls <= 5000 or not 0 <= args.warmup < args.calls:
        parser.error("--calls must be 1–5000 and --warmup below it")
    questions = [
        json.loads(line)["question"]
        for line in (ROOT / "evals" / "questions.jsonl").read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    rss_start = rss_mb()
    started = time.monotonic()
    assistant = Assistant.from_settings(Settings())
    rss_loaded = rss_mb()
    rss_warm = rss_loaded
    samples: list[tuple[int, float]] = []
    latencies: list[float] = []
    rejected = 0
    done = 0
    deadline = started + args.timeout
    for i in range(args.calls):
        if time.monotonic() > deadline:
            break
        q = BAD[(i // 50) % len(BAD)] if i % 50 == 49 else questions[i % len(questions)]
        history = [(questions[(i - 1) % len(questions)], "…")] if i % 7 == 0 else None
        t = time.perf_counter()
        try:
            assistant.ask(q, history)
        except InvalidQuestionError:
            rejected += 1
        latencies.append((time.perf_counter() - t) * 1000)
        done += 1
        if done == args.warmup:
            gc.collect()
            rss_warm = rss_mb()
        if done % 250 == 0:
            samples.append((done, round(rss_mb(), 1)))
    gc.collect()
    rss_end = rss_mb()
    latencies.sort()
    summary = {
        "calls": done,
        "rejected_bad_inputs": rejected,
        "rss_start_mb": round(rss_start, 1),
        "rss_loaded_mb": round(rss_loaded, 1),
        f"rss_after_{args.warmup}_calls_mb": round(rss_warm, 1),
        "rss_end_mb": round(rss_end, 1),
        "rss_growth_after_warmup_mb": round(rss_end - rss_warm, 1),
        "rss_samples": samples,
        "p50_ms": round(latencies[len(latencies) // 2], 1) if latencies else None,
        "p95_ms": round(latencies[int(len(latencies) * 0.95)], 1) if latencies else None,
        "wall_s": round(time.monotonic() - started, 1),
    }
    text = json.dumps(summary, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0 if done == args.calls else 1


if __name__ == "__main__":
    sys.exit(main())
