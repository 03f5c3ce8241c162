"""Open-loop throughput sweep of the web chat: questions arrive at a fixed rate, the rate rises until p95 > 1 s.

    python -m benchmarks.sweep                               # starts app.py; 10, 15, 20, … answers/s, 20 s each
    python -m benchmarks.sweep --rates 10 20 30 --seconds 15 --url http://127.0.0.1:7860/

Open loop: question i is due at ``start + i / rate`` whatever happened to the earlier ones, and its latency
is counted from that moment, so a server that falls behind shows it as queueing time (a closed loop of N
users would instead slow its own arrivals and hide it). Questions go through ``gradio_client`` like
``load_ui.py``'s users, from a pool of pre-connected sessions in this process (a separate process from the
server). The sustainable rate is the highest whose p95 stays within ``--p95-limit`` with no errors.
"""

from __future__ import annotations

import argparse
import json
import queue
import ssl
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.load_ui import _answer_ok, connect, load_questions, percentile, running_app  # noqa: E402

MAX_RATE = 200.0
MAX_SECONDS = 120.0


def step(
    url: str, rate: float, seconds: float, clients: queue.Queue[Any], questions: list[str]
) -> dict[str, Any]:
    """One rate: ``rate × seconds`` questions at fixed intervals; latency from each one's due time."""
    count = max(1, round(rate * seconds))
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    threads: list[threading.Thread] = []
    start = time.perf_counter() + 0.2

    def ask(i: int, due: float) -> None:
        client = clients.get()
        try:
            job = client.submit(questions[i % len(questions)], api_name="/chat")
            result = job.result(timeout=60)
            problem = _answer_ok(result)
        except Exception as exc:
            problem = f"{type(exc).__name__}: {exc}"
        finally:
            clients.put(client)
        with lock:
            if problem:
                errors.append(problem[:160])
            else:
                latencies.append((time.perf_counter() - due) * 1000)

    for i in range(count):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        thread = threading.Thread(target=ask, args=(i, due), daemon=True)
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join(timeout=90)
    wall = time.perf_counter() - start
    return {
        "rate": rate,
        "asked": count,
        "answered": len(latencies),
        "errors": len(errors) + (count - len(latencies) - len(errors)),
        "p50_ms": round(percentile(latencies, 50) or 0, 1) if latencies else None,
        "p95_ms": round(percentile(latencies, 95) or 0, 1) if latencies else None,
        "achieved_per_s": round(len(latencies) / wall, 2) if wall else None,
        "error_samples": errors[:3],
    }


def sweep(url: str, rates: list[float], seconds: float, pool: int, p95_limit_ms: float) -> dict[str, Any]:
    """Run the rates in order until one misses the p95 limit (or errs); the last good one is sustainable."""
    tls = ssl.create_default_context()
    questions = load_questions(ROOT / "evals" / "questions.jsonl")
    clients: queue.Queue[Any] = queue.Queue()
    for _ in range(pool):
        clients.put(connect(url, tls))
    warm = clients.get()
    warm.submit(questions[0], api_name="/chat").result(timeout=60)
    clients.put(warm)
    steps = []
    sustainable = None
    for rate in rates:
        result = step(url, rate, seconds, clients, questions)
        steps.append(result)
        print(json.dumps(result), file=sys.stderr, flush=True)
        if result["errors"] or result["p95_ms"] is None or result["p95_ms"] > p95_limit_ms:
            break
        sustainable = rate
    while not clients.empty():
        clients.get().close()
    return {"url": url, "seconds_per_rate": seconds, "p95_limit_ms": p95_limit_ms, "steps": steps,
            "sustainable_per_s": sustainable}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the sweep (starting app.py unless --url), print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[10, 15, 20, 25, 30, 35, 40, 50])
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds per rate")
    parser.add_argument("--pool", type=int, default=64, help="pre-connected chat sessions")
    parser.add_argument("--p95-limit", type=float, default=1000.0, help="ms")
    parser.add_argument("--url", help="a running app; default: start app.py on a free loopback port")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if not all(0 < r <= MAX_RATE for r in args.rates) or not 1 <= args.seconds <= MAX_SECONDS:
        parser.error(f"rates must be in (0, {MAX_RATE:.0f}] and --seconds 1–{MAX_SECONDS:.0f}")
    if args.url:
        result = sweep(args.url, args.rates, args.seconds, args.pool, args.p95_limit)
    else:
        with running_app(args.pool, 300) as url:
            result = sweep(url, args.rates, args.seconds, args.pool, args.p95_limit)
    text = json.dumps(result, ensure_ascii=False, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
