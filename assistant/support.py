"""Does a quoted duty line cover the question's topic? One calibrated score from measured features.

A "who handles X" answer quotes a manual line; sharing a place name or a generic word ("Fondo", "clientes")
with the question does not make that line an answer. For the question's *topic phrase* (the question without
question words, politeness, instructions and the names of the units it uses as places) and each candidate
line, `SupportScorer` measures:

- ``dense_topic``: e5 cosine between the topic phrase (one extra query pass) and the line's stored vector;
- ``coverage``: the share of the topic's words found in the line (stemmed, English words through the
  glossary), each word weighted by its IDF over every indexed chunk, so words found in many lines weigh
  little and no list of generic words is needed;
- ``agreement``: whether the dense and lexical rankings of all duty lines agree on this line;
- ``margin``: how far this line's dense score is above the best other line;
- ``dense_question``: the retrieval cosine of the whole question;
- ``known``: the IDF-weighted share of topic words the indexed manuals use at all (chit-chat has none).

A topic word no manual uses weighs by its everyday rarity (word frequency lists), so "been" or "tener" in
a paraphrase weigh little and "refinanciamientos" fully.

`SupportModel` combines them with a logistic regression fitted by ``python -m evals.calibrate`` on
``evals/calibration/dev.jsonl`` and stored in ``assistant/data/support.json`` (validated when loaded).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from assistant.errors import AssistantError
from assistant.models import Chunk
from assistant.text import STOP_EN, STOP_ES, fold, stem, stem_variants, tokens

FEATURES = (
    "dense_topic",
    "dense_z",
    "coverage",
    "missing_known",
    "missing",
    "agreement",
    "margin",
    "dense_question",
    "known",
)
DEFAULT_MODEL_PATH = Path(__file__).resolve().parent / "data" / "support.json"
DUTY_SECTIONS = ("funciones", "objetivo")
# Courtesy words: never part of a question's topic.
POLITE = frozenset(
    [
        "favor",
        "porfa",
        "pls",
        "plz",
        "kindly",
        "quick",
        "quickly",
        "rapido",
        "hey",
        "oye",
        "ok",
        "okay",
        "vale",
        "bueno",
    ]
)


class SupportModelError(AssistantError):
    """The calibrated support model file is missing or malformed."""


@dataclass(frozen=True)
class SupportModel:
    """Logistic regression over standardised features: P(the line covers the question's topic)."""

    features: tuple[str, ...]
    weights: tuple[float, ...]
    bias: float
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    threshold: float

    def score(self, values: dict[str, float]) -> float:
        """The calibrated support in [0, 1] for one line's features."""
        z = self.bias
        for name, w, mu, sd in zip(self.features, self.weights, self.mean, self.scale, strict=True):
            z += w * (values.get(name, 0.0) - mu) / sd
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))

    def to_json(self, **extra: Any) -> dict[str, Any]:
        """The file form written by `evals.calibrate`."""
        return {
            "features": list(self.features),
            "weights": list(self.weights),
            "bias": self.bias,
            "mean": list(self.mean),
            "scale": list(self.scale),
            "threshold": self.threshold,
            **extra,
        }

    @classmethod
    def from_json(cls, data: object, source: str = "support model") -> SupportModel:
        """Validate the file form; raise `SupportModelError` naming what is wrong and the fix."""
        fix = "run `python -m evals.calibrate` to write it again"
        if not isinstance(data, dict):
            raise SupportModelError(f"{source}: expected a JSON object; {fix}.")
        missing = [k for k in ("features", "weights", "bias", "mean", "scale", "threshold") if k not in data]
        if missing:
            raise SupportModelError(f"{source}: missing {', '.join(missing)}; {fix}.")
        features = tuple(str(f) for f in data["features"])
        unknown = [f for f in features if f not in FEATURES]
        if unknown or not features:
            raise SupportModelError(f"{source}: unknown feature(s) {unknown or '(none given)'}; {fix}.")
        n = len(features)
        numbers: dict[str, tuple[float, ...]] = {}
        for key in ("weights", "mean", "scale"):
            values = data[key]
            if not isinstance(values, list) or len(values) != n:
                raise SupportModelError(f"{source}: {key!r} must be a list of {n} numbers; {fix}.")
            try:
                numbers[key] = tuple(float(v) for v in values)
            except (TypeError, ValueError):
                raise SupportModelError(f"{source}: {key!r} holds a non-number; {fix}.") from None
            if not all(math.isfinite(v) for v in numbers[key]):
                raise SupportModelError(f"{source}: {key!r} holds a non-finite number; {fix}.")
        if any(s <= 0 for s in numbers["scale"]):
            raise SupportModelError(f"{source}: every 'scale' must be positive; {fix}.")
        try:
            bias, threshold = float(data["bias"]), float(data["threshold"])
        except (TypeError, ValueError):
            raise SupportModelError(f"{source}: 'bias' and 'threshold' must be numbers; {fix}.") from None
        if not math.isfinite(bias) or not 0.0 <= threshold <= 1.0:
            raise SupportModelError(f"{source}: 'bias' must be finite and 'threshold' in [0, 1]; {fix}.")
        return cls(features, numbers["weights"], bias, numbers["mean"], numbers["scale"], threshold)

    @classmethod
    def load(cls, path: str | Path = DEFAULT_MODEL_PATH) -> SupportModel:
        """Read and validate ``assistant/data/support.json`` (or another file)."""
        p = Path(path)
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SupportModelError(
                f"{p} is missing; run `python -m evals.calibrate` to fit the support model."
            ) from None
        except json.JSONDecodeError as exc:
            raise SupportModelError(
                f"{p} is not valid JSON ({exc}); run `python -m evals.calibrate`."
            ) from None
        return cls.from_json(data, str(p))


@dataclass(frozen=True)
class Term:
    """One topic word (or glossary phrase): the stems that count as finding it, and its IDF weight."""

    text: str
    alternatives: tuple[frozenset[str], ...]  # any one group fully found covers the term
    weight: float
    known: bool
    # A Spanish word (by word frequency) the manuals never use: if the duty were theirs, they would.
    spanish: bool = False
    position: int = 0  # its first word's place in the topic: terms are kept in the topic's order


@dataclass(frozen=True)
class Scored:
    """A candidate line with its features and calibrated support."""

    chunk: Chunk
    features: dict[str, float]
    support: float


@dataclass(frozen=True)
class Statistics:
    """The word weights (IDF in [0, 1]) and duty lines of one manual, or of every indexed manual."""

    idf: dict[str, float]
    vocabulary: frozenset[str]
    duty_rows: list[int]

    @classmethod
    def over(cls, stems: Sequence[set[str]], rows: Sequence[int], duty: Sequence[int]) -> Statistics:
        """Statistics of the chunks at `rows` (their stems), `duty` being their duty lines."""
        df: dict[str, int] = {}
        for i in rows:
            for t in stems[i]:
                df[t] = df.get(t, 0) + 1
        n = max(2, len(rows))
        norm = math.log(n)
        return cls({t: math.log(n / d) / norm for t, d in df.items()}, frozenset(df), list(duty))


@dataclass
class _View:
    """A topic measured against one manual's duty lines: its terms, and each line's dense and lexical
    scores and ranks among them."""

    terms: list[Term]
    known: float
    dense: dict[int, float]
    coverage: dict[int, float]
    dense_rank: dict[int, int]
    coverage_rank: dict[int, int]
    mean: float
    sd: float


def content_stems(text: str) -> set[str]:
    """Stems of a text's content words (folded, stop words and single letters dropped)."""
    return {stem(t) for t in tokens(text) if t not in STOP_ES and t not in STOP_EN and len(t) > 1}


class SupportScorer:
    """Features and calibrated support of duty lines for a topic phrase. Thread-safe for reads."""

    def __init__(
        self,
        chunks: Sequence[Chunk],
        vectors: np.ndarray | None,
        embed_query: Callable[[str], Sequence[float]] | None,
        model: SupportModel,
        expand: Callable[[str], str] | None = None,
        spans: Callable[[str], list[tuple[int, int, str]]] | None = None,
    ) -> None:
        self.chunks = chunks if isinstance(chunks, list) else list(chunks)
        self.model = model
        self.embed_query = embed_query
        self.expand = expand or (lambda _t: "")
        self.spans = spans or (lambda _t: [])
        ok = vectors is not None and len(vectors) == len(self.chunks) and len(self.chunks) > 0
        self.vectors = np.asarray(vectors, dtype=np.float32) if ok and vectors is not None else None
        self.row = {c.id: i for i, c in enumerate(self.chunks)}
        self._stems = [content_stems(c.quote or c.text) for c in self.chunks]
        duty = [i for i, c in enumerate(self.chunks) if c.section in DUTY_SECTIONS]
        # A line is judged against its own manual: the IDF of its words (a word in many of the manual's lines
        # says little about a topic), the manual's vocabulary and the other duty lines it is ranked among.
        # So a line's support does not change when other gerencias' manuals are indexed beside it.
        rows_of: dict[str, list[int]] = {}
        for i, c in enumerate(self.chunks):
            rows_of.setdefault(c.manual_id, []).append(i)
        duty_set = set(duty)
        self.by_manual = {
            m: Statistics.over(self._stems, rows, [i for i in rows if i in duty_set])
            for m, rows in rows_of.items()
        }
        self.overall = Statistics.over(self._stems, range(len(self.chunks)), duty)
        self.idf, self.vocabulary, self.duty_rows = self.overall.idf, self.overall.vocabulary, duty
        self.duty_vocabulary = frozenset(t for i in duty for t in self._stems[i])
        self._close_cache = lru_cache(maxsize=8192)(self._close_uncached)

    @classmethod
    def for_index(
        cls, index: Any, embedder: Any, glossary: Any = None, path: str | Path = DEFAULT_MODEL_PATH
    ) -> SupportScorer:
        """A scorer over an open index (its chunks and stored vectors), the e5 embedder and the glossary."""
        model = SupportModel.load(path)
        vectors = getattr(index, "vectors", None)
        return cls(
            index.chunks,
            vectors,
            getattr(embedder, "embed_query", None),
            model,
            expand=getattr(glossary, "expand", None),
            spans=getattr(glossary, "match_spans", None),
        )

    # --- the topic -------------------------------------------------------------------------------

    def weight(self, s: str, stats: Statistics | None = None) -> float:
        """IDF in [0, 1] of a stem (over every manual, or one manual's statistics); an unused word weighs 1."""
        return (stats or self.overall).idf.get(s, 1.0)

    def _close_uncached(self, s: str, vocabulary: frozenset[str]) -> frozenset[str]:
        """Stems of a vocabulary a topic stem may be a typo or variant of (``formalis`` ~ ``formaliz``)."""
        if s in vocabulary or len(s) < 5:
            return frozenset([s])
        alternating = {v for v in stem_variants(s) if v in vocabulary}
        if alternating:
            return frozenset([s, *alternating])
        import difflib

        pool = [v for v in vocabulary if v[:3] == s[:3]]
        return frozenset([s, *difflib.get_close_matches(s, pool, n=2, cutoff=0.8)])

    def terms(self, topic: str, stats: Statistics | None = None) -> list[Term]:
        """The topic's weighted terms (against every manual, or one manual's statistics): glossary phrases give
        their Spanish words as alternatives."""
        stats = stats or self.overall
        vocabulary = stats.vocabulary
        words = tokens(topic)
        found = self.spans(topic)
        out: list[Term] = []
        covered = [False] * len(words)
        # Entries whose phrases stem alike match the same words: one term per span, their words pooled.
        by_span: dict[tuple[int, int], set[str]] = {}
        for i, j, add in found:
            by_span.setdefault((i, j), set()).update(content_stems(add))
        for (i, j), adds in sorted(by_span.items()):
            own = {stem(w) for w in words[i:j] if w not in STOP_EN and w not in STOP_ES}
            spanish = frozenset(adds)
            alts = tuple(a for a in (frozenset(own), spanish) if a)
            if not alts:
                continue
            ws = [self.weight(s, stats) for s in spanish if s in vocabulary] or [
                self.weight(s, stats) for s in own
            ]
            known = any(s in vocabulary for a in alts for s in a)
            out.append(Term(" ".join(words[i:j]), alts, max(ws), known, position=i))
            covered[i:j] = [True] * (j - i)
        for k, w in enumerate(words):
            if covered[k] or w in STOP_EN or w in STOP_ES or len(w) < 2 or w.isdigit():
                continue
            s = stem(w)
            close = self._close_cache(s, vocabulary)
            known = bool(close & vocabulary)
            # A word no manual uses weighs by its everyday rarity: "been", "tener" say little about a duty.
            weight = max((self.weight(c, stats) for c in close if c in vocabulary), default=0.0) or _rarity(w)
            alts = tuple(frozenset([c]) for c in sorted(close))
            out.append(Term(w, alts, weight, known, not known and _spanish(w), position=k))
        out.sort(key=lambda t: t.position)
        return out

    def known_share(self, terms: list[Term]) -> float:
        """IDF-weighted share of topic terms the manuals use at all."""
        total = sum(t.weight for t in terms)
        return sum(t.weight for t in terms if t.known) / total if total else 0.0

    @staticmethod
    def found(term: Term, line: set[str]) -> float:
        """How much of a term a line holds (0..1): its best alternative's share of stems."""
        return max((len(a & line) / len(a) for a in term.alternatives if a), default=0.0)

    @classmethod
    def coverage(cls, terms: list[Term], line: set[str]) -> float:
        """IDF-weighted share of topic terms found in a line's stems."""
        total = sum(t.weight for t in terms)
        if not total:
            return 0.0
        return sum(t.weight * cls.found(t, line) for t in terms) / total

    @classmethod
    def missing(cls, terms: list[Term], line: set[str], known_only: bool) -> float:
        """The IDF weight of the most specific topic term the line lacks (a known word: one the manuals
        use elsewhere, so its absence here says the line is about something else)."""
        return max(
            (t.weight * (1.0 - cls.found(t, line)) for t in terms if t.known or t.spanish or not known_only),
            default=0.0,
        )

    def holds(self, topic: str) -> Callable[[str], set[str]]:
        """For a topic, a function giving the topic's terms (their text) a line holds (stemmed, English words
        through the glossary): what a line says of the question, to compare two lines."""
        terms: list[Term] = []  # computed on the first call: most answers never compare lines this way

        def held(quote: str) -> set[str]:
            if not terms:
                terms.extend(self.terms(topic))
            line = content_stems(quote)
            return {t.text for t in terms if self.found(t, line) > 0}

        return held

    # --- scoring ---------------------------------------------------------------------------------

    def topic_vector(self, topic: str) -> np.ndarray | None:
        """The topic phrase's e5 query vector (with its glossary words), or None without an embedder."""
        if self.embed_query is None or self.vectors is None or not topic.strip():
            return None
        text = f"{topic} {self.expand(topic)}".strip()
        return np.asarray(self.embed_query(text), dtype=np.float32)

    def score(
        self,
        topic: str,
        candidates: Sequence[tuple[Chunk, float]],
        manuals: set[str] | None = None,
        extra: int = 0,
        question: str = "",
    ) -> list[Scored]:
        """Features and support of each candidate (chunk, question cosine) for the topic phrase, then of the
        `extra` duty lines the topic's dense and lexical ranks agree on best that are not candidates already
        (retrieval's top hits are shared by every manual: the line that covers the topic may sit below them)."""
        qvec = self.topic_vector(topic)
        views: dict[str | None, _View] = {}

        def view(manual: str | None) -> _View:
            if manual not in views:
                views[manual] = self._view(topic, qvec, self.by_manual.get(manual or "", self.overall))
            return views[manual]

        candidates = list(candidates)
        if extra:
            candidates += self._extra(candidates, manuals, view, extra, question)
        out: list[Scored] = []
        for chunk, question_dense in candidates:
            i = self.row.get(chunk.id)
            v = view(chunk.manual_id if i is not None else None)
            line = self._stems[i] if i is not None else content_stems(chunk.quote or chunk.text)
            if i is not None and i in v.dense:
                d = v.dense[i]
                key = fold(chunk.quote)
                others = [x for j, x in v.dense.items() if fold(self.chunks[j].quote) != key]
                margin = d - max(others, default=d)
                agreement = 1.0 / (1.0 + v.dense_rank[i] + v.coverage_rank[i])
            else:
                d, margin, agreement = question_dense, 0.0, 0.0
            feats = {
                "dense_topic": d,
                "dense_z": (d - v.mean) / v.sd if v.dense else 0.0,
                "coverage": v.coverage[i] if i in v.coverage else self.coverage(v.terms, line),
                "missing_known": self.missing(v.terms, line, True),
                "missing": self.missing(v.terms, line, False),
                "agreement": agreement,
                "margin": margin,
                "dense_question": question_dense,
                "known": v.known,
            }
            out.append(Scored(chunk, feats, self.model.score(feats)))
        return out

    def _view(self, topic: str, qvec: np.ndarray | None, stats: Statistics) -> _View:
        """The topic against one manual's duty lines (its statistics)."""
        terms = self.terms(topic, stats)
        rows = stats.duty_rows
        dense: dict[int, float] = {}
        if qvec is not None and rows and self.vectors is not None:
            dense = dict(zip(rows, (self.vectors[rows] @ qvec).tolist(), strict=True))
        coverage = {i: self.coverage(terms, self._stems[i]) for i in rows}
        spread = np.asarray(list(dense.values()) or [0.0])
        return _View(
            terms,
            self.known_share(terms),
            dense,
            coverage,
            _ranks(dense),
            _ranks(coverage),
            float(spread.mean()),
            float(spread.std()) or 1.0,
        )

    def _extra(
        self,
        candidates: list[tuple[Chunk, float]],
        manuals: set[str] | None,
        view: Callable[[str | None], _View],
        n: int,
        question: str,
    ) -> list[tuple[Chunk, float]]:
        """The `n` duty lines of the manuals in scope that the topic's dense and lexical ranks (in each line's
        own manual) agree on best, that are not candidates already, with their cosine to the question."""
        have = {c.id for c, _ in candidates}
        ranked: list[tuple[int, float, int]] = []
        for m in self.by_manual:
            if manuals is not None and m not in manuals:
                continue
            v = view(m)
            ranked += [(v.dense_rank[i] + v.coverage_rank[i], -x, i) for i, x in v.dense.items()]
        more = [i for _, _, i in sorted(ranked) if self.chunks[i].id not in have][:n]
        if not more or self.vectors is None:
            return []
        if question and self.embed_query is not None:
            cos = (self.vectors[more] @ np.asarray(self.embed_query(question), dtype=np.float32)).tolist()
        else:
            topic_cosine = {i: -x for _, x, i in ranked}
            cos = [topic_cosine[i] for i in more]
        return [(self.chunks[i], c) for i, c in zip(more, cos, strict=True)]


@lru_cache(maxsize=16384)
def _spanish(word: str) -> bool:
    """Whether a folded word is more common in Spanish than in English (word frequency lists)."""
    from wordfreq import zipf_frequency

    es, en = zipf_frequency(word, "es"), zipf_frequency(word, "en")
    return es >= 2.0 and es > en + 0.5


@lru_cache(maxsize=16384)
def _rarity(word: str) -> float:
    """Weight in [0.2, 1] of a word no manual uses, from its everyday frequency (Zipf) in English or Spanish:
    the most common words ("been", "tener") weigh least."""
    from wordfreq import zipf_frequency

    zipf = max(zipf_frequency(word, "es"), zipf_frequency(word, "en"))
    return min(1.0, max(0.2, (7.0 - zipf) / 2.5))


def _ranks(values: dict[int, float]) -> dict[int, int]:
    """0-based rank of each key by value, best first; ties share the better rank."""
    order = sorted(values.items(), key=lambda kv: -kv[1])
    ranks: dict[int, int] = {}
    prev: float | None = None
    rank = 0
    for pos, (k, v) in enumerate(order):
        if prev is None or v < prev - 1e-9:
            rank = pos
        ranks[k] = rank
        prev = v
    return ranks


def fit_logistic(
    x: np.ndarray, y: np.ndarray, l2: float = 1.0, steps: int = 5000, lr: float = 0.1
) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
    """(weights, bias, mean, scale) of an L2-regularised logistic regression on standardised features."""
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-6] = 1.0
    z = (x - mean) / scale
    w = np.zeros(x.shape[1])
    b = 0.0
    n = len(y)
    for _ in range(steps):
        p = 1.0 / (1.0 + np.exp(-(z @ w + b)))
        g = p - y
        w -= lr * (z.T @ g / n + l2 * w / n)
        b -= lr * float(g.mean())
    return w, b, mean, scale


def attach_support(assistant: Any) -> None:
    """Give an assistant's engines the calibrated scorer over its live index (built once per index)."""
    scorer: SupportScorer | None = getattr(assistant, "_support_scorer", None)
    index = assistant.index
    if scorer is not None and scorer.chunks is index.chunks:
        return
    if not len(getattr(index, "vectors", [])):
        return  # an index without stored vectors: the engines keep their older gate
    scorer = SupportScorer.for_index(index, assistant.embedder, assistant.glossary)
    assistant._support_scorer = scorer
    for engine in (assistant.grounded, *assistant._engines.values()):
        engine.support_scorer = scorer
