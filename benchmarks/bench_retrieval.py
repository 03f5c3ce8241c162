"""Retrieval benchmark: model load, passage throughput, index build, warm query latency (1 vs 2 threads), RSS.

Thread counts are compared with one embedder per count, since ONNX Runtime fixes them per session.

    python -m benchmarks.bench_retrieval --root /tmp/x [--quick] [--out file.json]

Runs in its own process so the model load time and the resident memory are those of a fresh server.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import bench_settings, emit, load_average, load_questions, peak_rss_mb, rss_mb, summarize

QUERY_K = 5


# Time every question cold: the embedder's query cache would otherwise answer repeats for free.
import assistant.embed as _embed  # noqa: E402

_embed._QUERY_CACHE_SIZE = 0


def _timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[float, Any]:
    """Seconds taken by one call, and its result."""
    start = time.perf_counter()
    result = fn(*args, **kwargs)
    return time.perf_counter() - start, result


def _latencies_ms(
    fn: Any, queries: list[str], deadline: float = math.inf, cpu: list[float] | None = None
) -> list[float]:
    """Wall ms of ``fn(q)`` per query, stopping at ``deadline`` (monotonic); process CPU ms go to ``cpu``."""
    out: list[float] = []
    for q in queries:
        if time.monotonic() > deadline:
            break
        c0, start = time.process_time(), time.perf_counter()
        fn(q)
        out.append((time.perf_counter() - start) * 1000)
        if cpu is not None:
            cpu.append((time.process_time() - c0) * 1000)
    return out


def _cycle(items: list[str], n: int) -> list[str]:
    """The first n items of the list repeated."""
    return [items[i % len(items)] for i in range(n)]


def run(root: Path, quick: bool = False, budget_s: float = 240.0) -> dict[str, Any]:
    """Measure everything retrieval-side in this process; returns a JSON-ready dict.

    Each query phase stops early once its share of ``budget_s`` is spent (``n`` then says how many ran).
    """
    n_queries = 60 if quick else 200
    reps = 1 if quick else 3
    block = 20 if quick else 25
    res: dict[str, Any] = {"quick": quick, "load_average_start": load_average(), "rss_start_mb": rss_mb()}

    start = time.perf_counter()
    from sentence_transformers import SentenceTransformer  # noqa: F401  (import cost measured apart)

    from assistant.chain import Assistant
    from assistant.embed import Embedder, get_embedder
    from assistant.indexer import read_corpus
    from assistant.store import Store

    res["import_s"] = round(time.perf_counter() - start, 3)
    settings = bench_settings(root)
    embedder = get_embedder(settings.embedding)
    load_s, _ = _timed(embedder.warm_up)
    res["model_load_s"] = round(load_s, 3)
    res["backend"] = embedder.backend
    res["threads_default"] = settings.embedding.threads or "all CPUs"
    res["rss_model_loaded_mb"] = rss_mb()
    embedders = {t: Embedder(settings.embedding.model_copy(update={"threads": t})) for t in (1, 2)}
    for other in embedders.values():
        other.warm_up()

    corpus_s, report = _timed(read_corpus, settings.corpus_dir)
    texts = [c.text for s in report.sources for c in s.chunks]
    res["read_corpus_s"] = round(corpus_s, 3)
    res["chunks"] = len(texts)
    res["chunk_chars_mean"] = round(statistics.fmean(len(t) for t in texts), 1) if texts else 0

    # Passage throughput at 1 and 2 threads, alternated; one untimed batch warms the kernels first.
    for other in embedders.values():
        other.encode_passages(texts[:8])
    runs: dict[int, list[float]] = {1: [], 2: []}
    for r in range(reps):
        for threads in (2, 1) if r % 2 == 0 else (1, 2):
            runs[threads].append(_timed(embedders[threads].encode_passages, texts)[0])
    res["passages_per_s"] = {str(t): round(len(texts) / statistics.median(v), 1) for t, v in runs.items()}

    # Index build from parsed sources with the model warm, as `build_index` runs it (every CPU): a full
    # rebuild into the temp store.
    indexing = embedders[2]
    builds = [
        _timed(Store(settings.store).build, report.sources, indexing, rebuild=True)[0] for _ in range(reps)
    ]
    res["index_build_s"] = {
        "median": round(statistics.median(builds), 3),
        "runs": [round(b, 3) for b in builds],
    }

    assistant = Assistant.from_settings(settings)
    retriever = assistant.retriever
    questions = load_questions()
    queries = _cycle(questions, n_queries)
    started = time.monotonic()

    def search(q: str) -> None:
        retriever.search(q, k=QUERY_K)

    _latencies_ms(search, questions[:20], started + 0.05 * budget_s)  # warm-up, untimed
    res["rss_before_queries_mb"] = rss_mb()
    res["search"] = summarize(_latencies_ms(search, queries, started + 0.4 * budget_s))
    res["embed_query"] = summarize(_latencies_ms(embedder.embed_query, queries, started + 0.55 * budget_s))
    res["bm25_only"] = summarize(
        _latencies_ms(
            lambda q: retriever.search(q, k=QUERY_K, mode="bm25"), queries, started + 0.6 * budget_s
        )
    )
    res["rss_after_queries_mb"] = rss_mb()
    res["peak_rss_mb"] = peak_rss_mb()

    # 1 vs 2 intra-op threads, interleaved in blocks so a burst of load from elsewhere hits both alike.
    by_threads: dict[int, list[float]] = {1: [], 2: []}
    cpu_by_threads: dict[int, list[float]] = {1: [], 2: []}
    deadline = started + budget_s
    for i in range(0, n_queries, block):
        if time.monotonic() > deadline:
            break
        for threads in (1, 2) if (i // block) % 2 == 0 else (2, 1):
            retriever.embedder = embedders[threads]
            by_threads[threads] += _latencies_ms(
                search, queries[i : i + block], deadline, cpu_by_threads[threads]
            )
    retriever.embedder = embedder
    res["search_by_threads"] = {str(t): summarize(v) for t, v in by_threads.items()}
    # Process CPU time per search: at 1 thread, close to the wall time the search would take on an idle core.
    res["search_cpu_by_threads"] = {str(t): summarize(v) for t, v in cpu_by_threads.items()}
    p1, p2 = (res["search_by_threads"][t].get("p50_ms") for t in ("1", "2"))
    res["threads_p50_ratio_1_over_2"] = round(p1 / p2, 3) if p1 and p2 else None
    res["load_average_end"] = load_average()
    res["wall_s"] = round(time.perf_counter() - start, 1)
    return res


def main(argv: list[str] | None = None) -> int:
    """Run the retrieval benchmark and print (and optionally write) its JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, help="folder for the temp index (default: a fresh temp dir)")
    parser.add_argument("--quick", action="store_true", help="fewer queries and repetitions")
    parser.add_argument("--budget", type=float, default=240.0, help="seconds for the query phases")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-retrieval-") as tmp:
        result = run(args.root or Path(tmp), quick=args.quick, budget_s=args.budget)
    emit(result, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
