"""Load test of the web chat: N simulated users ask at once through ``gradio_client`` on loopback.

Starts ``app.py`` (grounded engine, temp feedback db) on a free port unless ``--url`` points at a running
app, then prints one JSON object with p50/p95 latency and the error count. Bounded in users, questions and
time: whatever is unfinished at ``--timeout`` counts as an error.

Every user connects first (as a browser loads the page), then all start asking at the same moment. The
clients share one TLS context: ``gradio_client`` opens a fresh ``httpx`` client for every request, and
each would otherwise load the system's CA bundle again (about 50 ms of CPU) even for plain HTTP, which
on a 2-core machine slowed the server it measures more than the answers did.

    python benchmarks/load_ui.py                      # 20 users × 3 questions
    python benchmarks/load_ui.py --users 50 --questions 10
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import stop  # noqa: E402

FALLBACK_QUESTIONS = [
    "¿Quién atiende las quejas y denuncias de los clientes?",
    "What are the functions of the Área de Ventas?",
    "¿Cuál es el objetivo del Área de Activos Extraordinarios?",
    "Who heads the Sucursal Paseo?",
    "¿Qué puestos tiene el Área de Servicios en Línea?",
    "Which unit manages the call center?",
]
MAX_USERS = 200
MAX_QUESTIONS = 50
CONNECT_ATTEMPTS = 3


@dataclass
class Results:
    """Latencies and failures collected by the user threads."""

    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    connect_retries: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def ok(self, ms: float) -> None:
        with self.lock:
            self.latencies_ms.append(ms)

    def retry(self) -> None:
        with self.lock:
            self.connect_retries += 1

    def fail(self, what: str) -> None:
        with self.lock:
            self.errors.append(what[:200])


def load_questions(path: Path) -> list[str]:
    """Questions from the evaluation set (JSON Lines with a ``question`` field), else a built-in list."""
    if path.is_file():
        questions = [
            json.loads(line)["question"]
            for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip()
        ]
        if questions:
            return questions
    return FALLBACK_QUESTIONS


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0–100) by nearest rank, or None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_up(url: str, proc: subprocess.Popen[bytes] | None, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"the app exited with status {proc.returncode} before answering at {url}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"the app did not answer at {url} within {timeout_s:.0f}s")


@contextmanager
def running_app(users: int, startup_timeout_s: float) -> Iterator[str]:
    """``app.py`` in a subprocess on a free loopback port with the grounded engine; yields its URL."""
    port = _free_port()
    with tempfile.TemporaryDirectory(prefix="load-ui-") as tmp:
        env = dict(os.environ)
        env.update(
            {
                "GRADIO_ANALYTICS_ENABLED": "False",
                "ASSISTANT_ANSWER__ENGINE": "grounded",
                "ASSISTANT_UI__HOST": "127.0.0.1",
                "ASSISTANT_UI__PORT": str(port),
                "ASSISTANT_UI__AUTH_ENABLED": "false",
                "ASSISTANT_UI__FEEDBACK_DB": str(Path(tmp) / "feedback.sqlite3"),
                # Every simulated user must fit in the queue, or the test measures rejections.
                "ASSISTANT_UI__MAX_QUEUE": str(max(users * 2, 64)),
            }
        )
        log = open(Path(tmp) / "app.log", "wb")  # noqa: SIM115 - closed in finally, after the process
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "app.py")], cwd=ROOT, env=env, stdout=log, stderr=log
        )
        url = f"http://127.0.0.1:{port}/"
        try:
            _wait_up(url, proc, startup_timeout_s)
            yield url
        except RuntimeError:
            log.flush()
            sys.stderr.write((Path(tmp) / "app.log").read_text(encoding="utf-8", errors="replace")[-3000:])
            raise
        finally:
            stop(proc)
            log.close()


def _answer_ok(result: Any) -> str | None:
    """None when the chat returned a finished answer, else what went wrong."""
    messages = (
        result[0] if isinstance(result, tuple | list) and result and isinstance(result[0], list) else result
    )
    if not isinstance(messages, list) or not messages:
        return f"unexpected result: {type(result).__name__}"
    last = messages[-1]
    content = last.get("content") if isinstance(last, dict) else None
    text = json.dumps(content, ensure_ascii=False) if not isinstance(content, str) else content
    if "Error interno" in text or "Buscando en el manual" in text:
        return "error or unfinished answer: " + text[:120]
    return None


def connect(url: str, tls: ssl.SSLContext) -> Any:
    """A ``gradio_client`` session on ``url`` that reuses ``tls`` and, on loopback, skips proxy lookups."""
    from gradio_client import Client

    loopback = urllib.parse.urlsplit(url).hostname in {"127.0.0.1", "localhost", "::1"}
    return Client(
        url,
        verbose=False,
        download_files=False,
        # Handed to httpx as `verify`, which takes a context as well as a bool.
        ssl_verify=tls,
        # Each request would otherwise scan the environment for proxy settings (about 3 ms of CPU).
        httpx_kwargs={"trust_env": False} if loopback else None,
    )


def _start_together(start_line: threading.Barrier, deadline: float) -> None:
    """Wait until every user is connected (or has given up), at most until the deadline."""
    # If someone timed out the barrier breaks; ask anyway, the deadline bounds the run.
    with contextlib.suppress(threading.BrokenBarrierError):
        start_line.wait(timeout=max(0.0, deadline - time.monotonic()))


def user(
    n: int,
    url: str,
    questions: list[str],
    count: int,
    deadline: float,
    results: Results,
    start_line: threading.Barrier,
    tls: ssl.SSLContext,
) -> None:
    """One simulated user: its own session, then ``count`` questions one after another."""
    client = None
    # A browser would retry a page load that timed out while the server is saturated; so does a user here,
    # and the retries are reported so that a slow start is visible, not hidden.
    for attempt in range(CONNECT_ATTEMPTS):
        try:
            client = connect(url, tls)
            break
        except Exception as exc:
            if attempt == CONNECT_ATTEMPTS - 1 or time.monotonic() > deadline:
                for _ in range(count):
                    results.fail(f"user {n}: connect: {exc!r}")
                _start_together(start_line, deadline)
                return
            results.retry()
            time.sleep(1 + attempt)
    assert client is not None
    _start_together(start_line, deadline)
    for i in range(count):
        if time.monotonic() > deadline:
            results.fail(f"user {n}: question {i} not asked before the deadline")
            continue
        question = questions[(n * count + i) % len(questions)]
        start = time.perf_counter()
        try:
            job = client.submit(question, api_name="/chat")
            result = job.result(timeout=max(1.0, deadline - time.monotonic()))
        except Exception as exc:
            results.fail(f"user {n}: {type(exc).__name__}: {exc}")
            continue
        problem = _answer_ok(result)
        if problem:
            results.fail(f"user {n}: {problem}")
        else:
            results.ok((time.perf_counter() - start) * 1000)
    client.close()


def warm_up(url: str, question: str, tls: ssl.SSLContext, timeout_s: float) -> float:
    """Ask one question before the users come, as any server has been asked something; its ms."""
    client = connect(url, tls)
    try:
        start = time.perf_counter()
        client.submit(question, api_name="/chat").result(timeout=timeout_s)
        return (time.perf_counter() - start) * 1000
    finally:
        client.close()


def run(url: str, users: int, count: int, timeout_s: float, questions: list[str]) -> dict[str, Any]:
    """Run the users against ``url`` and summarise."""
    tls = ssl.create_default_context()
    # The first answer of a fresh process pays one-off costs (lazy loads, first allocations); it is
    # measured and reported apart rather than mixed into the users' figures.
    first_ms = warm_up(url, questions[-1], tls, timeout_s)
    results = Results()
    start = time.monotonic()
    deadline = start + timeout_s
    start_line = threading.Barrier(users)
    threads = [
        threading.Thread(
            target=user,
            args=(n, url, questions, count, deadline, results, start_line, tls),
            daemon=True,
        )
        for n in range(users)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=max(0.0, deadline - time.monotonic()) + 5)
    wall = time.monotonic() - start
    expected = users * count
    with results.lock:
        latencies = list(results.latencies_ms)
        errors = list(results.errors)
    # Users still stuck after the deadline never reported; their questions count as errors.
    missing = expected - len(latencies) - len(errors)
    return {
        "url": url,
        "users": users,
        "questions_per_user": count,
        "requests": expected,
        "ok": len(latencies),
        "errors": len(errors) + max(0, missing),
        "p50_ms": round(percentile(latencies, 50) or 0, 1) if latencies else None,
        "p95_ms": round(percentile(latencies, 95) or 0, 1) if latencies else None,
        "max_ms": round(max(latencies), 1) if latencies else None,
        "mean_ms": round(statistics.fmean(latencies), 1) if latencies else None,
        "connect_retries": results.connect_retries,
        "first_answer_ms": round(first_ms, 1),
        "wall_s": round(wall, 2),
        "throughput_rps": round(len(latencies) / wall, 2) if wall else None,
        "error_samples": errors[:5],
    }


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run the load, print JSON; exit 1 if any request failed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20, help=f"simultaneous users (1–{MAX_USERS})")
    parser.add_argument("--questions", type=int, default=3, help=f"questions per user (1–{MAX_QUESTIONS})")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds for the whole run")
    parser.add_argument("--url", help="a running app; default: start app.py on a free loopback port")
    parser.add_argument("--startup-timeout", type=float, default=300.0, help="seconds to wait for app.py")
    parser.add_argument("--questions-file", type=Path, default=ROOT / "evals" / "questions.jsonl")
    parser.add_argument("--out", type=Path, help="also write the JSON summary here")
    args = parser.parse_args(argv)
    if not 1 <= args.users <= MAX_USERS or not 1 <= args.questions <= MAX_QUESTIONS:
        parser.error(f"--users must be 1–{MAX_USERS} and --questions 1–{MAX_QUESTIONS}")
    questions = load_questions(args.questions_file)
    if args.url:
        summary = run(args.url, args.users, args.questions, args.timeout, questions)
    else:
        with running_app(args.users, args.startup_timeout) as url:
            summary = run(url, args.users, args.questions, args.timeout, questions)
    text = json.dumps(summary, ensure_ascii=False, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n", encoding="utf-8")
    return 0 if summary["errors"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
