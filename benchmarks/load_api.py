"""Load test of the HTTP API: N clients, each with its own token, ask through /v1/chat/completions at once.

Starts ``app.py`` (grounded engine, temp feedback db, one API token per client) on a free loopback port
unless ``--url`` points at a running app (then ``--token`` is every client's token), asks one warm-up
question, then runs ``--runs`` rounds: in each, every client opens its own HTTP connection, all start at the
same moment and each asks ``--questions`` questions one after another, as an OpenAI client would. Prints
one JSON object: each round's p50/p95/max latency, errors and throughput, and the median round.

A request counts as an error unless it returns 200 with a message and the ``answered``/``citations`` fields.
The clients are asyncio tasks in this one process (one event loop), so the client side costs the 2-core
machine it shares with the server as little as possible.

    python benchmarks/load_api.py                                 # 50 clients × 10 questions, 3 rounds
    python benchmarks/load_api.py --clients 20 --questions 5 --runs 1 --stream
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import stop  # noqa: E402
from benchmarks.load_ui import load_questions, percentile  # noqa: E402

MAX_CLIENTS = 200
MAX_QUESTIONS = 50
MODEL = "mof-assistant"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_up(url: str, token: str, proc: subprocess.Popen[bytes] | None, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the app exited with status {proc.returncode} before answering at {url}")
        try:
            response = httpx.get(f"{url}/v1/models", headers={"Authorization": f"Bearer {token}"}, timeout=2)
            if response.status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the app did not answer at {url} within {timeout_s:.0f}s")


@contextmanager
def running_app(
    tokens: list[str], startup_timeout_s: float, extra_env: dict[str, str] | None = None
) -> Iterator[tuple[str, int]]:
    """``app.py`` in a subprocess on a free loopback port, one API token per client; yields its base URL
    and process id."""
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="load-api-") as tmp:
        env = dict(os.environ)
        env.update(
            {
                "GRADIO_ANALYTICS_ENABLED": "False",
                "ASSISTANT_ANSWER__ENGINE": "grounded",
                "ASSISTANT_UI__HOST": "127.0.0.1",
                "ASSISTANT_UI__PORT": str(port),
                "ASSISTANT_UI__AUTH_ENABLED": "false",
                "ASSISTANT_UI__FEEDBACK_DB": str(Path(tmp) / "feedback.sqlite3"),
                "ASSISTANT_API__TOKENS": ",".join(f"bench-{i:03d}:{t}" for i, t in enumerate(tokens)),
                # Rounds run back to back: the limiter still runs on every call, but must not be what is measured.
                "ASSISTANT_API__RATE_PER_MINUTE": "6000",
                "ASSISTANT_API__BURST": "100",
                **(extra_env or {}),
            }
        )
        log = open(Path(tmp) / "app.log", "wb")  # noqa: SIM115 - closed in finally, after the process
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "app.py")], cwd=ROOT, env=env, stdout=log, stderr=log
        )
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_up(url, tokens[0], proc, startup_timeout_s)
            yield url, proc.pid
        except RuntimeError:
            log.flush()
            sys.stderr.write((Path(tmp) / "app.log").read_text(encoding="utf-8", errors="replace")[-3000:])
            raise
        finally:
            stop(proc)
            log.close()


def _problem(response: httpx.Response, stream: bool) -> str | None:
    """None when the reply is a complete, cited-answer-shaped completion; else what is wrong."""
    if response.status_code != 200:
        return f"HTTP {response.status_code}: {response.text[:120]}"
    if stream:
        events = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
        if not events or events[-1] != "[DONE]":
            return "stream did not end with [DONE]"
        last = json.loads(events[-2])
        text = "".join(json.loads(e)["choices"][0]["delta"].get("content", "") for e in events[:-1] if e)
    else:
        last = response.json()
        text = last["choices"][0]["message"]["content"]
    if not text or "answered" not in last or "citations" not in last:
        return "no message, or no answered/citations fields"
    return None


async def _client(
    n: int,
    url: str,
    token: str,
    questions: list[str],
    count: int,
    stream: bool,
    start: asyncio.Event,
    latencies: list[float],
    errors: list[str],
) -> None:
    """One API client: its own connection, then ``count`` questions one after another."""
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(
        base_url=url, headers=headers, limits=limits, timeout=60, trust_env=False
    ) as c:
        await c.get("/v1/models")  # connect first, as a client does before it is used
        await start.wait()
        for i in range(count):
            question = questions[(n * count + i) % len(questions)]
            body = {"model": MODEL, "messages": [{"role": "user", "content": question}], "stream": stream}
            began = time.perf_counter()
            try:
                response = await c.post("/v1/chat/completions", json=body)
                problem = _problem(response, stream)
            except (httpx.HTTPError, ValueError, KeyError, IndexError) as exc:
                problem = f"{type(exc).__name__}: {exc}"
            if problem:
                errors.append(f"client {n}: {problem}"[:200])
            else:
                latencies.append((time.perf_counter() - began) * 1000)


async def _round(
    url: str, tokens: list[str], questions: list[str], count: int, stream: bool
) -> dict[str, Any]:
    latencies: list[float] = []
    errors: list[str] = []
    start = asyncio.Event()
    tasks = [
        asyncio.create_task(_client(n, url, t, questions, count, stream, start, latencies, errors))
        for n, t in enumerate(tokens)
    ]
    await asyncio.sleep(1.0)  # every client connected
    began, cpu_began = time.monotonic(), time.process_time()
    start.set()
    await asyncio.gather(*tasks)
    wall = time.monotonic() - began
    client_cpu = time.process_time() - cpu_began
    return {
        "requests": len(tokens) * count,
        "ok": len(latencies),
        "errors": len(errors),
        "p50_ms": round(percentile(latencies, 50) or 0, 1) if latencies else None,
        "p95_ms": round(percentile(latencies, 95) or 0, 1) if latencies else None,
        "max_ms": round(max(latencies), 1) if latencies else None,
        "mean_ms": round(statistics.fmean(latencies), 1) if latencies else None,
        "wall_s": round(wall, 2),
        "throughput_rps": round(len(latencies) / wall, 1) if wall else None,
        # The clients share the server's machine: their CPU is CPU the server did not get.
        "client_cpu_ms_per_request": round(1000 * client_cpu / (len(tokens) * count), 1),
        "error_samples": errors[:5],
    }


def _cpu_s(pid: int | None) -> float | None:
    """User + system CPU seconds the process has used so far (Linux), or None."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError, TypeError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def one_server(
    url: str,
    tokens: list[str],
    count: int,
    rounds: int,
    stream: bool,
    questions: list[str],
    server_pid: int | None = None,
) -> list[dict[str, Any]]:
    """Warm up with one question, then ``rounds`` rounds against ``url``: the first meets a cold server (no
    question seen yet), later ones ask questions whose vectors the server has cached. With the server's
    process id, each round also reports the server's CPU time per answer, which the load of the machine
    disturbs far less than latency."""
    body = {"model": MODEL, "messages": [{"role": "user", "content": questions[-1]}]}
    began = time.perf_counter()
    httpx.post(
        f"{url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {tokens[0]}"}, timeout=60
    )
    first_ms = (time.perf_counter() - began) * 1000
    results = []
    for n in range(rounds):
        if n:
            time.sleep(2.0)  # the machine settles between rounds
        cpu_before = _cpu_s(server_pid)
        result = asyncio.run(_round(url, tokens, questions, count, stream))
        cpu_after = _cpu_s(server_pid)
        if cpu_before is not None and cpu_after is not None:
            result["server_cpu_ms_per_request"] = round(
                1000 * (cpu_after - cpu_before) / (len(tokens) * count), 1
            )
        load = [round(x, 2) for x in os.getloadavg()]
        result.update(first_answer_ms=round(first_ms, 1), cold=n == 0, load_average=load)
        results.append(result)
    return results


def summarise(runs: list[dict[str, Any]], clients: int, count: int, stream: bool) -> dict[str, Any]:
    """Every round, and the median of the cold rounds (one per fresh server) by p95."""
    cold = [r for r in runs if r["cold"]] or runs
    median = sorted(cold, key=lambda r: r["p95_ms"] or float("inf"))[len(cold) // 2]
    return {
        "clients": clients,
        "questions_per_client": count,
        "stream": stream,
        "rounds": runs,
        "median_cold_round": {
            k: median.get(k)
            for k in ("p50_ms", "p95_ms", "max_ms", "errors", "throughput_rps", "server_cpu_ms_per_request")
        },
        "p95_ms_cold": [r["p95_ms"] for r in cold],
        "p95_ms_warm": [r["p95_ms"] for r in runs if not r["cold"]],
        "errors_total": sum(r["errors"] for r in runs),
    }


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the load, print JSON; exit 1 if any request failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50, help=f"simultaneous clients (1–{MAX_CLIENTS})")
    parser.add_argument("--questions", type=int, default=10, help=f"questions per client (1–{MAX_QUESTIONS})")
    parser.add_argument("--runs", type=int, default=3, help="runs, each on a fresh app (median reported)")
    parser.add_argument("--warm-rounds", type=int, default=0, help="rounds per app after the cold one")
    parser.add_argument("--stream", action="store_true", help="ask with stream=true (server-sent events)")
    parser.add_argument("--url", help="a running app (its base URL); default: start app.py on a free port")
    parser.add_argument("--token", help="the API token every client uses with --url")
    parser.add_argument("--startup-timeout", type=float, default=300.0, help="seconds to wait for app.py")
    parser.add_argument("--questions-file", type=Path, default=ROOT / "evals" / "questions.jsonl")
    parser.add_argument("--out", type=Path, help="also write the JSON summary here")
    parser.add_argument(
        "--set", action="append", default=[], metavar="ENV=VALUE", help="a setting for app.py"
    )
    args = parser.parse_args(argv)
    if not 1 <= args.clients <= MAX_CLIENTS or not 1 <= args.questions <= MAX_QUESTIONS or args.runs < 1:
        parser.error(f"--clients must be 1–{MAX_CLIENTS}, --questions 1–{MAX_QUESTIONS}, --runs ≥ 1")
    questions = load_questions(args.questions_file)
    if args.url:
        if not args.token:
            parser.error("--url needs --token")
        tokens = [args.token] * args.clients
        runs = one_server(args.url.rstrip("/"), tokens, args.questions, args.runs, args.stream, questions)
        summary = summarise(runs, args.clients, args.questions, args.stream)
    else:
        extra = dict(item.split("=", 1) for item in args.set)
        runs = []
        for _ in range(args.runs):  # a fresh app each time: every run starts cold
            tokens = [secrets.token_urlsafe(24) for _ in range(args.clients)]
            with running_app(tokens, args.startup_timeout, extra) as (url, pid):
                runs += one_server(
                    url, tokens, args.questions, 1 + args.warm_rounds, args.stream, questions, pid
                )
        summary = summarise(runs, args.clients, args.questions, args.stream)
        summary["set"] = extra
    text = json.dumps(summary, ensure_ascii=False, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0 if summary["errors_total"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
