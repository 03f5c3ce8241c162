"""Insight for the manuals' owners: what people ask, what the manual did not answer, what got 👎.

``build_report`` reads the question log and the feedback store for a period and returns an ``InsightReport``:
counts per day and refusal rate, questions per manual and per unit, p50/p95 latency, the 👎 items, and the
unanswered questions grouped into topics. Topics come from clustering the questions' e5 vectors (spherical
k-means, the number of clusters chosen by the silhouette) and are labelled with their most characteristic
words (TF-IDF of the cluster against the rest, stop words removed). The same report feeds the admin tab,
``python -m assistant insight --json`` and the self-contained HTML report (``--html FILE``).
"""

from __future__ import annotations

import argparse
import csv
import html
import io
import json
import math
import re
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from assistant.text import STOP_EN, STOP_ES, fold

if TYPE_CHECKING:
    from assistant.feedback import FeedbackRow, FeedbackStore
    from assistant.querylog import LoggedQuestion, QueryLog
    from assistant.settings import Settings

# Texts → L2-normalised vectors, one row per text.
Vectorize = Callable[[list[str]], np.ndarray]

# Words that say how a question is asked, not what it is about.
_QUESTION_WORDS = frozenset(
    """puedo pueden podria quiero quisiera necesito saber favor decir dime hacer tengo tienen hay
    cual cuales cuanto cuanta cuantos cuantas quien quienes donde cuando como porque pregunta
    gracias hola buenos buenas dias tardes usted ustedes institucion
    know need want find get give tell please thanks hello hi does did something anyone""".split()
)
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)
MAX_TOPICS = 12
# Below this silhouette the questions are taken to be one topic: no split fits them better than none.
MIN_SILHOUETTE = 0.12
EXAMPLES = 3


@dataclass(frozen=True)
class Topic:
    """Unanswered questions about one thing: a short label, how many, and a few examples."""

    label: str
    count: int
    examples: list[str]
    words: list[str] = field(default_factory=list)


@dataclass
class InsightReport:
    """Everything the admin tab, the JSON and the HTML report show, for one period."""

    since: datetime | None
    until: datetime
    questions: int
    answered: int
    per_day: list[tuple[date, int, int]]  # (day, questions, unanswered)
    by_manual: dict[str, int]
    by_unit: dict[str, int]
    by_channel: dict[str, int]
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    topics: list[Topic]
    thumbs_down: list[FeedbackRow]
    thumbs_up: int

    @property
    def unanswered(self) -> int:
        """Questions the manual did not answer."""
        return self.questions - self.answered

    @property
    def refusal_rate(self) -> float | None:
        """Share of questions not answered (None without questions)."""
        return self.unanswered / self.questions if self.questions else None

    def to_json(self) -> dict[str, Any]:
        """The report as the CLI prints it (the first five keys are the documented ones)."""
        return {
            "questions": self.questions,
            "answered": self.answered,
            "unanswered_topics": [
                {"label": t.label, "count": t.count, "examples": t.examples} for t in self.topics
            ],
            "by_unit": self.by_unit,
            "thumbs_down": len(self.thumbs_down),
            "since": self.since.isoformat() if self.since else None,
            "until": self.until.isoformat(),
            "refusal_rate": None if self.refusal_rate is None else round(self.refusal_rate, 4),
            "by_manual": self.by_manual,
            "by_channel": self.by_channel,
            "latency_ms": {"p50": _round(self.latency_p50_ms), "p95": _round(self.latency_p95_ms)},
            "per_day": [{"day": d.isoformat(), "questions": n, "unanswered": u} for d, n, u in self.per_day],
            "thumbs_down_items": [
                {
                    "created_at": r.created_at,
                    "question": r.question,
                    "comment": r.comment,
                    "answer": r.answer,
                    "answered": r.answered,
                }
                for r in self.thumbs_down
            ],
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


# ---------------------------------------------------------------- periods


def parse_since(value: str | None, now: datetime | None = None) -> datetime | None:
    """``30d``, ``12w``, ``24h``, an ISO date (``2025-01-31``) or ``all`` (None) as a UTC moment."""
    if value is None or value.strip().lower() in ("", "all", "todo"):
        return None
    now = now or datetime.now(UTC)
    text = value.strip().lower()
    match = re.fullmatch(r"(\d+)\s*([hdw])", text)
    if match:
        n, unit = int(match.group(1)), match.group(2)
        delta = {"h": timedelta(hours=n), "d": timedelta(days=n), "w": timedelta(weeks=n)}[unit]
        return now - delta
    return parse_date(value)


def parse_date(value: str) -> datetime:
    """An ISO date or date-time as a UTC moment (a date means its midnight, UTC)."""
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValueError(
            f"{value!r} is neither a period (30d, 12w, 24h), an ISO date (2025-01-31) nor 'all'."
        ) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


# ---------------------------------------------------------------- clustering


def _unit_rows(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.asarray(x / np.where(norms == 0, 1.0, norms), dtype=np.float64)


def _kmeans(x: np.ndarray, k: int, rng: np.random.Generator, n_init: int = 8, iters: int = 50) -> np.ndarray:
    """Spherical k-means (cosine) with k-means++ seeding; the best of ``n_init`` runs."""
    n = len(x)
    best_labels = np.zeros(n, dtype=int)
    best_score = -math.inf
    for _ in range(n_init):
        centres = [x[rng.integers(n)]]
        for _ in range(1, k):
            dist = np.clip(1.0 - np.max(x @ np.array(centres).T, axis=1), 0.0, None)
            total = dist.sum()
            pick = rng.choice(n, p=dist / total) if total > 0 else rng.integers(n)
            centres.append(x[pick])
        c = np.array(centres)
        labels = np.zeros(n, dtype=int)
        for step in range(iters):
            sims = x @ c.T
            new = np.argmax(sims, axis=1)
            if step and np.array_equal(new, labels):
                break
            labels = new
            for j in range(k):
                members = x[labels == j]
                if len(members):
                    c[j] = members.sum(axis=0)
                else:  # an empty cluster restarts at the point its neighbours fit worst
                    c[j] = x[int(np.argmin(np.max(sims, axis=1)))]
            c = _unit_rows(c)
        score = float(np.max(x @ c.T, axis=1).sum())
        if score > best_score:
            best_score, best_labels = score, labels.copy()
    return best_labels


def silhouette(dist: np.ndarray, labels: np.ndarray) -> float:
    """Mean silhouette of a clustering, from a full distance matrix (singletons count 0)."""
    k = int(labels.max()) + 1
    if k < 2:
        return 0.0
    onehot = np.eye(k)[labels]
    sums = dist @ onehot  # (n, k): total distance from each point to each cluster
    counts = onehot.sum(axis=0)
    idx = np.arange(len(labels))
    own = counts[labels]
    a = sums[idx, labels] / np.maximum(own - 1, 1)
    mean_other = sums / np.maximum(counts, 1)
    mean_other[idx, labels] = np.inf
    mean_other[:, counts == 0] = np.inf
    b = mean_other.min(axis=1)
    s = (b - a) / np.maximum(np.maximum(a, b), 1e-12)
    s[own <= 1] = 0.0
    return float(s.mean())


def cluster(vectors: np.ndarray, max_k: int = MAX_TOPICS, seed: int = 0) -> np.ndarray:
    """A cluster number per vector; the count of clusters is the one with the best silhouette.

    The vectors are centred first: e5 puts every question in one narrow cone, and what tells topics apart is
    the direction from its axis.
    """
    n = len(vectors)
    if n < 4:
        return np.zeros(n, dtype=int)
    x = _unit_rows(np.asarray(vectors, dtype=np.float64))
    x = _unit_rows(x - x.mean(axis=0))
    dist = np.clip(1.0 - x @ x.T, 0.0, 2.0)
    rng = np.random.default_rng(seed)
    best_labels, best_score = np.zeros(n, dtype=int), MIN_SILHOUETTE
    # At most about √n clusters: small logs are not split into pairs whose silhouette looks good by chance.
    for k in range(2, min(max_k, n - 1, max(2, round(math.sqrt(n)))) + 1):
        labels = _kmeans(x, k, rng)
        score = silhouette(dist, labels)
        if score > best_score:
            best_labels, best_score = labels, score
    return best_labels


def _words(text: str) -> list[tuple[str, str]]:
    """(folded, surface) content words of a question."""
    out = []
    for word in _WORD.findall(text.lower()):
        key = fold(word)
        if len(key) < 3 or key in STOP_ES or key in STOP_EN or key in _QUESTION_WORDS:
            continue
        out.append((key, word))
    return out


def label_clusters(texts: Sequence[str], labels: np.ndarray, n_words: int = 3) -> dict[int, list[str]]:
    """Each cluster's most characteristic words: frequent in it, rare in the rest (TF-IDF, stop words out)."""
    docs = [{k for k, _ in _words(t)} for t in texts]
    surface: dict[str, Counter[str]] = {}
    for t in texts:
        for k, w in _words(t):
            surface.setdefault(k, Counter())[w] += 1
    n = len(texts)
    df = Counter(k for d in docs for k in d)
    out: dict[int, list[str]] = {}
    for c in sorted(set(labels.tolist())):
        inside = [d for d, lab in zip(docs, labels, strict=True) if lab == c]
        rest = [d for d, lab in zip(docs, labels, strict=True) if lab != c]
        tf_in = Counter(k for d in inside for k in d)
        tf_out = Counter(k for d in rest for k in d)
        scores = {}
        for term, hits in tf_in.items():
            p_in = hits / len(inside)
            p_out = tf_out[term] / len(rest) if rest else 0.0
            idf = math.log((1 + n) / (1 + df[term])) + 1.0
            scores[term] = p_in * idf * (p_in / (p_in + p_out))
        ranked = sorted(scores, key=lambda t: (-scores[t], t))[:n_words]
        out[c] = [surface[t].most_common(1)[0][0] for t in ranked]
    return out


def find_topics(
    questions: Sequence[str], vectorize: Vectorize, max_questions: int = 2000, seed: int = 0
) -> list[Topic]:
    """The questions grouped into topics, largest first; a repeated question counts each time it was asked."""
    counts: Counter[str] = Counter()
    shown: dict[str, str] = {}
    for q in reversed(questions):  # the most recent wording of a repeated question is the one shown
        key = " ".join(fold(q).split())
        if not key:
            continue
        counts[key] += 1
        shown.setdefault(key, q.strip())
    keys = list(shown)[:max_questions]
    if not keys:
        return []
    texts = [shown[k] for k in keys]
    vectors = _unit_rows(np.asarray(vectorize(texts), dtype=np.float64))
    labels = cluster(vectors, seed=seed)
    words = label_clusters(texts, labels)
    centred = _unit_rows(vectors - vectors.mean(axis=0)) if len(texts) > 1 else vectors
    topics = []
    for c, terms in words.items():
        members = np.flatnonzero(labels == c)
        centre = _unit_rows(centred[members].sum(axis=0, keepdims=True))[0]
        order = members[np.argsort(-(centred[members] @ centre), kind="stable")]
        topics.append(
            Topic(
                label=" · ".join(terms) or texts[order[0]][:40],
                count=sum(counts[keys[i]] for i in members),
                examples=[texts[i] for i in order[:EXAMPLES]],
                words=terms,
            )
        )
    return sorted(topics, key=lambda t: (-t.count, t.label))


def e5_vectorizer(embedder: Any) -> Vectorize:
    """Questions through the e5 model with its query prompt (as they were asked)."""

    def vectorize(texts: list[str]) -> np.ndarray:
        encode = getattr(embedder, "encode_queries", None)
        if encode is not None:
            return np.asarray(encode(texts), dtype=np.float64)
        return np.asarray([embedder.embed_query(t) for t in texts], dtype=np.float64)

    return vectorize


def lexical_vectorizer(texts: list[str], dim: int = 512) -> np.ndarray:
    """Hashed bag of content words: topics without a model (tests, an app served by a stand-in engine)."""
    import hashlib

    out = np.zeros((len(texts), dim))
    for i, t in enumerate(texts):
        for key, _ in _words(t):
            h = int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big")
            out[i, h % dim] += 1.0
    return out


class CachedVectorizer:
    """Keeps each question's vector: a refresh of the admin tab embeds only the questions new since the last."""

    def __init__(self, vectorize: Vectorize, max_items: int = 20_000) -> None:
        """Wrap ``vectorize``; at most ``max_items`` vectors are kept."""
        self.vectorize = vectorize
        self.max_items = max_items
        self._cache: dict[str, np.ndarray] = {}

    def __call__(self, texts: list[str]) -> np.ndarray:
        """Vectors for ``texts``, computing only the missing ones."""
        missing = [t for t in dict.fromkeys(texts) if t not in self._cache]
        if missing:
            if len(self._cache) + len(missing) > self.max_items:
                self._cache.clear()
            for text, vec in zip(missing, np.asarray(self.vectorize(missing)), strict=True):
                self._cache[text] = vec
        return np.array([self._cache[t] for t in texts])


# ---------------------------------------------------------------- the report


def _percentile(values: Sequence[float], q: float) -> float | None:
    return float(np.percentile(np.asarray(values), q)) if values else None


def summarize(
    entries: Sequence[LoggedQuestion],
    thumbs_down: Sequence[FeedbackRow],
    vectorize: Vectorize,
    since: datetime | None,
    until: datetime | None = None,
    thumbs_up: int = 0,
    max_cluster_questions: int = 2000,
) -> InsightReport:
    """The report over already-read log entries and 👎 rows."""
    per_day: dict[date, list[int]] = {}
    by_manual: Counter[str] = Counter()
    by_unit: Counter[str] = Counter()
    by_channel: Counter[str] = Counter()
    for e in entries:
        day = per_day.setdefault(e.created_at.date(), [0, 0])
        day[0] += 1
        day[1] += 0 if e.answered else 1
        by_channel[e.channel] += 1
        by_manual.update(e.manuals)
        by_unit.update(e.units)
    if per_day:  # days without questions are drawn as zero, not skipped
        first, last = min(per_day), max(per_day)
        for i in range((last - first).days + 1):
            per_day.setdefault(first + timedelta(days=i), [0, 0])
    latencies = [e.latency_ms for e in entries]
    unanswered = [e.question for e in entries if not e.answered]
    return InsightReport(
        since=since,
        until=until or datetime.now(UTC),
        questions=len(entries),
        answered=sum(1 for e in entries if e.answered),
        per_day=[(d, v[0], v[1]) for d, v in sorted(per_day.items())],
        by_manual=dict(by_manual.most_common()),
        by_unit=dict(by_unit.most_common()),
        by_channel=dict(by_channel.most_common()),
        latency_p50_ms=_percentile(latencies, 50),
        latency_p95_ms=_percentile(latencies, 95),
        topics=find_topics(unanswered, vectorize, max_questions=max_cluster_questions),
        thumbs_down=list(thumbs_down),
        thumbs_up=thumbs_up,
    )


def build_report(
    query_log: QueryLog | None,
    store: FeedbackStore | None,
    vectorize: Vectorize,
    since: datetime | None,
    max_cluster_questions: int = 2000,
) -> InsightReport:
    """Read the period from the question log and the feedback store and summarise it."""
    until = datetime.now(UTC)
    entries = query_log.entries(since=since) if query_log is not None else []
    down = store.rows("down", since=since) if store is not None else []
    up = len(store.rows("up", since=since)) if store is not None else 0
    return summarize(entries, down, vectorize, since, until, up, max_cluster_questions)


def topics_csv(report: InsightReport) -> str:
    """The unanswered topics as CSV for the manuals' owners (one row per topic, examples in columns)."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["topic", "count", *(f"example_{i + 1}" for i in range(EXAMPLES))])
    for t in report.topics:
        writer.writerow([t.label, t.count, *t.examples, *[""] * (EXAMPLES - len(t.examples))])
    return buf.getvalue()


# ---------------------------------------------------------------- the HTML report


def _svg(fig: Any) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight")
    text = buf.getvalue()
    return text[text.index("<svg") :]


def charts(report: InsightReport) -> dict[str, str]:
    """The report's charts as inline SVG, by name (a chart without data is left out)."""
    import matplotlib

    matplotlib.use("agg")
    from matplotlib.figure import Figure

    out: dict[str, str] = {}
    if report.per_day:
        days = np.array([d for d, _, _ in report.per_day], dtype="datetime64[D]")
        totals = [n for _, n, _ in report.per_day]
        rates = [100.0 * u / n if n else 0.0 for _, n, u in report.per_day]
        fig = Figure(figsize=(7.5, 2.6))
        ax = fig.subplots()
        ax.bar(days, totals, color="#1d6fa5")
        ax.set_title("Preguntas por día · Questions per day")
        fig.autofmt_xdate()
        out["per_day"] = _svg(fig)
        fig = Figure(figsize=(7.5, 2.6))
        ax = fig.subplots()
        ax.plot(days, rates, marker="o", color="#c0392b")
        ax.set_ylim(0, 100)
        ax.set_ylabel("%")
        ax.set_title("Sin respuesta (%) · Refusal rate")
        fig.autofmt_xdate()
        out["refusal_rate"] = _svg(fig)
    for name, data, title in (
        ("by_manual", report.by_manual, "Por manual · By manual"),
        ("by_unit", report.by_unit, "Por unidad · By unit"),
    ):
        if not data:
            continue
        items = list(data.items())[:15][::-1]
        fig = Figure(figsize=(7.5, 0.8 + 0.32 * len(items)))
        ax = fig.subplots()
        ax.barh([k for k, _ in items], [v for _, v in items], color="#1d6fa5")
        ax.set_title(title)
        out[name] = _svg(fig)
    return out


def render_html(report: InsightReport, title: str = "Asistente del MOF · Insight") -> str:
    """A self-contained HTML page (charts inline, no external file) to be mailed to a manual's owner."""
    e = html.escape
    period = (
        f"{report.since:%Y-%m-%d} → {report.until:%Y-%m-%d}" if report.since else f"→ {report.until:%Y-%m-%d}"
    )
    rate = "—" if report.refusal_rate is None else f"{100 * report.refusal_rate:.1f} %"

    def ms(v: float | None) -> str:
        return "—" if v is None else f"{v:.0f} ms"

    figs = charts(report)
    parts = [
        "<!doctype html><html lang='es'><head><meta charset='utf-8'>",
        f"<title>{e(title)}</title><style>",
        "body{font-family:system-ui,Segoe UI,Roboto,Arial,sans-serif;max-width:980px;margin:24px auto;"
        "color:#1b2733;padding:0 16px}h1{color:#0f3d66}h2{margin-top:28px;border-bottom:2px solid #1d6fa5}"
        ".kpis{display:flex;gap:12px;flex-wrap:wrap}.kpi{background:#eef4fa;border-radius:10px;padding:10px 16px}"
        ".kpi b{display:block;font-size:1.5rem}table{border-collapse:collapse;width:100%;font-size:.9rem}"
        "td,th{border-bottom:1px solid #dde;padding:5px 8px;text-align:left;vertical-align:top}"
        "figure{margin:8px 0}svg{max-width:100%;height:auto}",
        "</style></head><body>",
        f"<h1>{e(title)}</h1><p>Periodo · Period: {e(period)}</p>",
        "<div class='kpis'>",
        f"<div class='kpi'><b id='kpi-questions'>{report.questions}</b>preguntas · questions</div>",
        f"<div class='kpi'><b id='kpi-answered'>{report.answered}</b>respondidas · answered</div>",
        f"<div class='kpi'><b>{e(rate)}</b>sin respuesta · refused</div>",
        f"<div class='kpi'><b>{e(ms(report.latency_p50_ms))}</b>p50</div>",
        f"<div class='kpi'><b>{e(ms(report.latency_p95_ms))}</b>p95</div>",
        f"<div class='kpi'><b>{len(report.thumbs_down)}</b>👎</div>",
        "</div>",
    ]
    for name in ("per_day", "refusal_rate"):
        if name in figs:
            parts.append(f"<figure class='chart' id='chart-{name}'>{figs[name]}</figure>")
    parts.append("<h2>Preguntas sin respuesta, por tema · Unanswered questions by topic</h2>")
    if report.topics:
        parts.append(
            "<table id='topics'><tr><th>Tema · Topic</th><th>N</th><th>Ejemplos · Examples</th></tr>"
        )
        for t in report.topics:
            examples = "<br>".join(e(x) for x in t.examples)
            parts.append(f"<tr><td>{e(t.label)}</td><td>{t.count}</td><td>{examples}</td></tr>")
        parts.append("</table>")
    else:
        parts.append("<p>Ninguna · None.</p>")
    parts.append("<h2>Por manual y por unidad · By manual and by unit</h2>")
    for name in ("by_manual", "by_unit"):
        if name in figs:
            parts.append(f"<figure class='chart' id='chart-{name}'>{figs[name]}</figure>")
    parts.append("<h2>👎 con comentario y respuesta · 👎 with comment and answer</h2>")
    if report.thumbs_down:
        parts.append(
            "<table id='thumbs-down'><tr><th>Fecha</th><th>Pregunta · Question</th>"
            "<th>Comentario · Comment</th><th>Respuesta · Answer</th></tr>"
        )
        for r in report.thumbs_down:
            parts.append(
                f"<tr><td>{e(r.created_at[:10])}</td><td>{e(r.question)}</td><td>{e(r.comment)}</td>"
                f"<td>{e(r.answer)}</td></tr>"
            )
        parts.append("</table>")
    else:
        parts.append("<p>Ninguno · None.</p>")
    parts.append("</body></html>")
    return "\n".join(parts)


# ---------------------------------------------------------------- command line


def _vectorizer_from_settings(settings: Settings) -> Vectorize:
    from assistant.embed import get_embedder

    embedder = get_embedder(settings.embedding)
    embedder.warm_up()
    return e5_vectorizer(embedder)


def insight_cli(argv: Sequence[str], settings: Settings, vectorize: Vectorize | None = None) -> int:
    """``insight [--since 30d] [--json] [--html FILE]`` and ``insight purge --before DATE`` (exit code)."""
    parser = argparse.ArgumentParser(prog="python -m assistant insight", description=__doc__.splitlines()[0])
    parser.add_argument("--since", default="30d", help="30d, 12w, 24h, an ISO date, or 'all' (default 30d)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.add_argument("--html", type=Path, help="write a self-contained HTML report to this file")
    sub = parser.add_subparsers(dest="action")
    purge = sub.add_parser("purge", help="delete logged questions older than a date")
    purge.add_argument("--before", required=True, help="an ISO date (2025-01-31) or a period (90d)")
    args = parser.parse_args(list(argv))
    if args.action == "purge":
        return run_purge(settings, args.before)
    return run_insight(settings, args.since, as_json=args.json, html_path=args.html, vectorize=vectorize)


def run_purge(settings: Settings, before_text: str, out: Any = None) -> int:
    """Delete the questions logged before a date or period; print how many."""
    from assistant.querylog import QueryLog, question_log_url

    out = out or sys.stdout
    try:
        before = parse_since(before_text)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if before is None:
        print("error: --before needs a date or a period, not 'all'.", file=sys.stderr)
        return 2
    log = QueryLog(question_log_url(settings))
    try:
        n = log.purge(before)
    finally:
        log.close()
    print(f"deleted {n} question(s) logged before {before:%Y-%m-%d %H:%M} UTC", file=out)
    return 0


def run_insight(
    settings: Settings,
    since_text: str | None,
    *,
    as_json: bool = False,
    html_path: Path | None = None,
    vectorize: Vectorize | None = None,
    out: Any = None,
) -> int:
    """Print the report (text or JSON) and/or write it as HTML."""
    from assistant.feedback import FeedbackStore, feedback_url
    from assistant.querylog import QueryLog, question_log_url

    out = out or sys.stdout
    try:
        since = parse_since(since_text)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    log = QueryLog(question_log_url(settings))
    store = FeedbackStore(feedback_url(settings))
    try:
        entries = log.entries(since=since)
        unanswered = any(not e.answered for e in entries)
        # The e5 model is loaded only when there are unanswered questions to group.
        vec = vectorize or (_vectorizer_from_settings(settings) if unanswered else lexical_vectorizer)
        down = store.rows("down", since=since)
        up = len(store.rows("up", since=since))
        report = summarize(
            entries,
            down,
            vec,
            since,
            thumbs_up=up,
            max_cluster_questions=settings.insight.max_cluster_questions,
        )
    finally:
        store.close()
        log.close()
    if html_path:
        html_path.parent.mkdir(parents=True, exist_ok=True)
        html_path.write_text(render_html(report), encoding="utf-8")
        if not as_json:
            print(f"wrote {html_path}", file=out)
    if as_json:
        print(json.dumps(report.to_json(), ensure_ascii=False, indent=2), file=out)
    elif not html_path:
        _print_text(report, out)
    return 0


def _print_text(report: InsightReport, out: Any) -> None:
    rate = "—" if report.refusal_rate is None else f"{100 * report.refusal_rate:.1f} %"
    print(f"questions: {report.questions}   answered: {report.answered}   refused: {rate}", file=out)
    if report.latency_p50_ms is not None:
        print(f"latency p50 {report.latency_p50_ms:.0f} ms, p95 {report.latency_p95_ms:.0f} ms", file=out)
    print(f"👎: {len(report.thumbs_down)}", file=out)
    if report.topics:
        print("\nunanswered topics:", file=out)
        for t in report.topics:
            print(f"  {t.count:4d}  {t.label}", file=out)
            for x in t.examples:
                print(f"          · {x}", file=out)
    if report.by_unit:
        print("\nby unit:", file=out)
        for unit, n in report.by_unit.items():
            print(f"  {n:4d}  {unit}", file=out)


__all__ = [
    "CachedVectorizer",
    "InsightReport",
    "Topic",
    "build_report",
    "cluster",
    "e5_vectorizer",
    "find_topics",
    "insight_cli",
    "lexical_vectorizer",
    "parse_since",
    "render_html",
    "run_insight",
    "run_purge",
    "summarize",
    "topics_csv",
]
