"""Speed and memory benchmarks of the assistant (``python -m benchmarks.run``); shared helpers live here."""

from __future__ import annotations

import json
import math
import os
import resource
import statistics
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / "benchmarks" / "out"
QUESTION_FILES = (ROOT / "evals" / "questions.jsonl", ROOT / "evals" / "heldout.jsonl")

# Offline always: no model hub is reachable, and telemetry must not try to phone home.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")


def bench_settings(root: Path) -> Any:
    """Default settings with the repo's corpus and model, but the index and feedback db under ``root``."""
    from assistant.settings import EmbeddingSettings, Settings, StoreSettings

    return Settings(
        corpus_dir=ROOT / "corpus",
        embedding=EmbeddingSettings(model_dir=ROOT / ".models" / "multilingual-e5-small"),
        store=StoreSettings(path=root / "index"),
        retrieval={"glossary": ROOT / "corpus" / "glossary.json"},
        answer={"scope": ROOT / "corpus" / "scope.json", "engine": "grounded"},
        ui={"feedback_db": root / "feedback.sqlite3"},
    )


def load_questions(files: Sequence[Path] = QUESTION_FILES[:1]) -> list[str]:
    """The question texts of the given JSONL files, in file order."""
    questions: list[str] = []
    for path in files:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                questions.append(json.loads(line)["question"])
    return questions


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0–100) by linear interpolation, like numpy's default."""
    if not values:
        return math.nan
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def summarize(values_ms: Sequence[float]) -> dict[str, float | int]:
    """Count, p50, p95, mean and max of latencies in milliseconds (rounded to 0.01 ms)."""
    if not values_ms:
        return {"n": 0}
    return {
        "n": len(values_ms),
        "p50_ms": round(percentile(values_ms, 50), 2),
        "p95_ms": round(percentile(values_ms, 95), 2),
        "mean_ms": round(statistics.fmean(values_ms), 2),
        "max_ms": round(max(values_ms), 2),
    }


def rss_mb() -> float:
    """Resident memory of this process in MB of 10^6 bytes (psutil, or /proc when psutil is missing)."""
    try:
        import psutil

        return round(psutil.Process().memory_info().rss / 1e6, 1)
    except ImportError:
        with open("/proc/self/statm") as fh:
            return round(int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6, 1)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far in MB (getrusage: KiB on Linux, bytes on macOS)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / 1e6 if sys.platform == "darwin" else peak * 1024 / 1e6, 1)


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages (how busy the machine was)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def target(
    name: str, value: float | None, limit: float, unit: str, higher_is_better: bool = False
) -> dict[str, Any]:
    """One target row: the measured value, its limit and whether it was met."""
    met = (
        None
        if value is None or math.isnan(value)
        else (value >= limit if higher_is_better else value <= limit)
    )
    return {
        "target": name,
        "value": value,
        "limit": limit,
        "unit": unit,
        "op": ">=" if higher_is_better else "<=",
        "met": met,
    }


def emit(result: dict[str, Any], out: Path | None) -> None:
    """Print a benchmark's JSON and, if ``out`` is given, write it there too."""
    text = json.dumps(result, ensure_ascii=False, indent=2)
    print(text)
    if out:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text + "\n", encoding="utf-8")


def stop(proc: subprocess.Popen[bytes], timeout_s: float = 20.0) -> None:
    """Ask a started app to exit (SIGTERM), and kill it if it has not within ``timeout_s``."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
