"""Cold start: a fresh ``python -m assistant ask`` and a fresh ``python app.py``, each run several times.

    python -m benchmarks.cold_start                   # 3 runs of each, medians printed as JSON
    python -m benchmarks.cold_start --runs 5 --questions 50 --out benchmarks/out/cold_start.json
    python -m benchmarks.cold_start --project /path/to/other/checkout   # the same against another tree

For ``ask``: wall time, CPU time (user + system) and peak RSS of the child, from ``os.wait4``. For the app:
seconds until ``GET /`` answers (the page), until the first chat answer (through ``gradio_client``), and
the server's RSS after that answer and after ``--questions`` more. Both use the project's ``index/``
(``make index`` first). On a shared machine wall times follow the load average (recorded per run); CPU
time is the steadier figure.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from benchmarks import stop

ROOT = Path(__file__).resolve().parents[1]
QUESTION = "¿Quién dirige el Área de Ventas?"
MAX_RUNS = 20


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False"})
    env.update(extra or {})
    return env


def ask_once(project: Path, question: str = QUESTION, timeout_s: float = 300.0) -> dict[str, Any]:
    """One cold ``python -m assistant ask``: wall s, CPU s and peak RSS MB of the child."""
    load = _load()
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "assistant", "ask", question],
        cwd=project,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        return {"error": f"no answer within {timeout_s:.0f} s"}
    wall = time.perf_counter() - start
    # communicate() reaped the child; its resources are in the children's totals, read before and after.
    result: dict[str, Any] = {"wall_s": round(wall, 3), "load_average": load, "status": proc.returncode}
    if proc.returncode != 0:
        result["error"] = err.decode("utf-8", "replace")[-500:]
    result["answer"] = out.decode("utf-8", "replace").splitlines()[:1]
    return result


def _ask_with_usage(project: Path, question: str, timeout_s: float) -> dict[str, Any]:
    import resource

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = ask_once(project, question, timeout_s)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    result["cpu_s"] = round((after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime), 3)
    # ru_maxrss of the children is the largest of any child so far (KB on Linux); runs are in rising order
    # of nothing in particular, so it is reported only when it grew.
    result["peak_rss_mb_so_far"] = round(after.ru_maxrss * 1024 / 1e6, 1)
    return result


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_page(url: str, proc: subprocess.Popen[bytes], deadline: float) -> bool:
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return True
        except urllib.error.HTTPError:
            return True  # the server answers (a login page or an error is still an answer)
        except OSError:
            pass
        time.sleep(0.05)
    return False


# app.py started with gradio's stub generation skipped (assistant/startup.py), for a before/after of that
# step until app.py calls it itself.
SKIP_STUBS = (
    "from assistant.startup import skip_gradio_stub_generation; skip_gradio_stub_generation(); "
    "import runpy, sys; sys.argv = ['app.py']; runpy.run_path('app.py', run_name='__main__')"
)


def app_once(
    project: Path, questions: list[str], timeout_s: float = 300.0, skip_stubs: bool = False
) -> dict[str, Any]:
    """One cold ``python app.py``: s to the page, s to the first answer, server RSS after 1 and N answers."""
    import psutil

    sys.path.insert(0, str(ROOT))
    import ssl

    from benchmarks.load_ui import connect

    tls = ssl.create_default_context()
    port = _free_port()
    load = _load()
    with tempfile.TemporaryDirectory(prefix="cold-start-") as tmp:
        env = _env(
            {
                "GRADIO_ANALYTICS_ENABLED": "False",
                "ASSISTANT_ANSWER__ENGINE": "grounded",
                "ASSISTANT_UI__HOST": "127.0.0.1",
                "ASSISTANT_UI__PORT": str(port),
                "ASSISTANT_UI__AUTH_ENABLED": "false",
                "ASSISTANT_UI__FEEDBACK_DB": str(Path(tmp) / "feedback.sqlite3"),
            }
        )
        log = open(Path(tmp) / "app.log", "wb")  # noqa: SIM115 - closed in finally, after the process
        start = time.perf_counter()
        command = [sys.executable, "-c", SKIP_STUBS] if skip_stubs else [sys.executable, "app.py"]
        proc = subprocess.Popen(command, cwd=project, env=env, stdout=log, stderr=log)
        url = f"http://127.0.0.1:{port}/"
        result: dict[str, Any] = {"load_average": load}
        try:
            if not _wait_page(url, proc, time.monotonic() + timeout_s):
                log.flush()
                tail = (Path(tmp) / "app.log").read_text("utf-8", "replace")[-800:]
                return {**result, "error": f"the page did not answer: {tail}"}
            result["page_s"] = round(time.perf_counter() - start, 3)
            result["rss_page_mb"] = round(psutil.Process(proc.pid).memory_info().rss / 1e6, 1)
            client = connect(url, tls)
            try:
                client.submit(QUESTION, api_name="/chat").result(timeout=timeout_s)
                result["first_answer_s"] = round(time.perf_counter() - start, 3)
                result["rss_first_answer_mb"] = round(psutil.Process(proc.pid).memory_info().rss / 1e6, 1)
                for q in questions:
                    client.submit(q, api_name="/chat").result(timeout=timeout_s)
                result["rss_serving_mb"] = round(psutil.Process(proc.pid).memory_info().rss / 1e6, 1)
                result["questions_after_first"] = len(questions)
            finally:
                client.close()
        finally:
            stop(proc)
            log.close()
    return result


def _median(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in runs if isinstance(r.get(key), int | float)]
    return round(statistics.median(values), 3) if values else None


def main(argv: list[str] | None = None) -> int:
    """Run the cold starts and print (and optionally write) one JSON object with every run and the medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help=f"runs of each (1–{MAX_RUNS})")
    parser.add_argument("--questions", type=int, default=20, help="answers before the serving RSS (0–500)")
    parser.add_argument("--project", type=Path, default=ROOT, help="the checkout to run (default: this one)")
    parser.add_argument("--skip-app", action="store_true", help="only the CLI")
    parser.add_argument("--skip-ask", action="store_true", help="only the app")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per run")
    parser.add_argument(
        "--skip-gradio-stubs",
        action="store_true",
        help="start app.py with assistant.startup's stub skip first",
    )
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args(argv)
    if not 1 <= args.runs <= MAX_RUNS or not 0 <= args.questions <= 500:
        parser.error(f"--runs must be 1–{MAX_RUNS} and --questions 0–500")
    sys.path.insert(0, str(ROOT))
    from benchmarks import load_questions

    questions = load_questions()[: args.questions]
    project = args.project.resolve()
    result: dict[str, Any] = {"project": str(project), "cpus": os.cpu_count(), "runs": args.runs}
    if not args.skip_ask:
        asks = [_ask_with_usage(project, QUESTION, args.timeout) for _ in range(args.runs)]
        result["ask"] = {
            "runs": asks,
            "median_wall_s": _median(asks, "wall_s"),
            "median_cpu_s": _median(asks, "cpu_s"),
            "peak_rss_mb": max((r.get("peak_rss_mb_so_far", 0) for r in asks), default=None),
        }
    if not args.skip_app:
        apps = [app_once(project, questions, args.timeout, args.skip_gradio_stubs) for _ in range(args.runs)]
        result["app"] = {
            "runs": apps,
            "median_page_s": _median(apps, "page_s"),
            "median_first_answer_s": _median(apps, "first_answer_s"),
            "median_rss_serving_mb": _median(apps, "rss_serving_mb"),
        }
    text = json.dumps(result, ensure_ascii=False, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n", encoding="utf-8")
    failed = [r for part in ("ask", "app") for r in result.get(part, {}).get("runs", []) if "error" in r]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
