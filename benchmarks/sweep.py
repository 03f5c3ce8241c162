"""Open-loop throughput sweep of the web chat or the API: questions arrive at a fixed rate, which rises until p95 > 1 s.

    python -m benchmarks.sweep                               # starts app.py; 10, 15, 20, … answers/s, 20 s each
    python -m benchmarks.sweep --rates 10 20 30 --seconds 15 --url http://127.0.0.1:7860/
    python -m benchmarks.sweep --api --rates 60 80 100 120   # the same through /v1/chat/completions

Open loop: question i is due at ``start + i / rate`` whatever happened to the earlier ones, and its latency
is counted from that moment, so a server that falls behind shows it as queueing time (a closed loop of N
users would instead slow its own arrivals and hide it). Questions go through ``gradio_client`` like
``load_ui.py``'s users (or, with ``--api``, through ``/v1/chat/completions`` with ``httpx`` like
``load_api.py``'s clients), from a pool of pre-connected sessions in this process (a separate process from
the server). The sustainable rate is the highest whose p95 stays within ``--p95-limit`` with no errors.
"""

from __future__ import annotations

import argparse
import json
import queue
import secrets
import ssl
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.load_api import MODEL, _problem  # noqa: E402
from benchmarks.load_api import running_app as running_api_app  # noqa: E402
from benchmarks.load_ui import _answer_ok, connect, load_questions, percentile, running_app  # noqa: E402

MAX_RATE = 200.0
MAX_SECONDS = 120.0


def _ask_chat(client: Any, question: str) -> str | None:
    """One question through the web chat's ``/chat`` endpoint; None when a cited answer came back."""
    return _answer_ok(client.submit(question, api_name="/chat").result(timeout=60))


def _ask_api(client: Any, question: str) -> str | None:
    """One question through ``/v1/chat/completions``; None when a cited completion came back."""
    body = {"model": MODEL, "messages": [{"role": "user", "content": question}]}
    return _problem(client.post("/v1/chat/completions", json=body), stream=False)


def step(
    url: str,
    rate: float,
    seconds: float,
    clients: queue.Queue[Any],
    questions: list[str],
    ask_one: Callable[[Any, str], str | None] = _ask_chat,
    offset: int = 0,
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
            problem = ask_one(client, questions[(offset + i) % len(questions)])
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


def sweep(
    url: str,
    rates: list[float],
    seconds: float,
    pool: int,
    p95_limit_ms: float,
    token: str | None = None,
    files: list[Path] | None = None,
) -> dict[str, Any]:
    """Run the rates in order until one misses the p95 limit (or errs); the last good one is sustainable.

    With ``token``, the questions go to the API with that bearer token instead of the web chat. The questions
    of ``files`` are asked in order across the steps, so a step repeats an earlier question (whose vector the
    server has cached) only once the files run out."""
    files = files or [ROOT / "evals" / "questions.jsonl"]
    questions = list(dict.fromkeys(q for f in files for q in load_questions(f)))
    clients: queue.Queue[Any] = queue.Queue()
    ask_one = _ask_api if token else _ask_chat
    tls = ssl.create_default_context()
    for _ in range(pool):
        if token:
            headers = {"Authorization": f"Bearer {token}"}
            clients.put(httpx.Client(base_url=url, headers=headers, timeout=60, trust_env=False))
        else:
            clients.put(connect(url, tls))
    warm = clients.get()
    ask_one(warm, questions[0])
    clients.put(warm)
    steps = []
    sustainable = None
    offset = 1
    for rate in rates:
        result = step(url, rate, seconds, clients, questions, ask_one, offset)
        offset += result["asked"]
        result["new_questions"] = max(0, min(result["asked"], len(questions) - (offset - result["asked"])))
        steps.append(result)
        print(json.dumps(result), file=sys.stderr, flush=True)
        if result["errors"] or result["p95_ms"] is None or result["p95_ms"] > p95_limit_ms:
            break
        sustainable = rate
    while not clients.empty():
        clients.get().close()
    return {"url": url, "channel": "api" if token else "chat", "seconds_per_rate": seconds,
            "p95_limit_ms": p95_limit_ms, "steps": steps, "sustainable_per_s": sustainable}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the sweep (starting app.py unless --url), print JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[10, 15, 20, 25, 30, 35, 40, 50])
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds per rate")
    parser.add_argument("--pool", type=int, default=64, help="pre-connected chat sessions")
    parser.add_argument("--p95-limit", type=float, default=1000.0, help="ms")
    parser.add_argument("--url", help="a running app; default: start app.py on a free loopback port")
    parser.add_argument("--api", action="store_true", help="ask through /v1/chat/completions, not the chat")
    parser.add_argument(
        "--questions-file", type=Path, nargs="+", help="JSON Lines question files (default: the visible set)"
    )
    parser.add_argument("--token", help="the API token, with --api --url")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    if not all(0 < r <= MAX_RATE for r in args.rates) or not 1 <= args.seconds <= MAX_SECONDS:
        parser.error(f"rates must be in (0, {MAX_RATE:.0f}] and --seconds 1–{MAX_SECONDS:.0f}")
    if args.url:
        if args.api and not args.token:
            parser.error("--api --url needs --token")
        result = sweep(
            args.url, args.rates, args.seconds, args.pool, args.p95_limit, args.token if args.api else None
        )
    elif args.api:
        token = secrets.token_urlsafe(24)
        # One token for every question: its limit must stay above the highest rate tried.
        unlimited = {"ASSISTANT_API__RATE_PER_MINUTE": "600000", "ASSISTANT_API__BURST": "10000"}
        with running_api_app([token], 300, unlimited) as (url, _pid):
            result = sweep(
                url, args.rates, args.seconds, args.pool, args.p95_limit, token, args.questions_file
            )
    else:
        with running_app(args.pool, 300) as url:
            result = sweep(
                url, args.rates, args.seconds, args.pool, args.p95_limit, None, args.questions_file
            )
    text = json.dumps(result, ensure_ascii=False, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
