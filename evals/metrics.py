"""Metrics with no LLM judge: retrieval, answers, citations and latency, overall and per group.

Everything here is a pure function of plain data, so each metric is unit-tested on hand-made results.
Evidence and `must` phrases are compared accent-, case- and whitespace-insensitively; citation quotes
only whitespace-insensitively, because a citation claims to be verbatim.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

EVIDENCE_WINDOW = 1000  # characters of the concatenated sources a reader would see
RANK_K = 5
LANG_ORDER = ("es", "en", "mixed")
NO_MANUAL = "(none)"  # the by-manual group of questions without a "manual" field
CURVE_STEPS = 101  # thresholds 0.00, 0.01, … 1.00 for the refusal trade-off curve


# --- gates -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Bound:
    """One gate: `metric` must be at least `limit`, or at most it when `upper` is set."""

    metric: str
    limit: float
    upper: bool = False

    @property
    def sign(self) -> str:
        """ "≤" or "≥", for reports."""
        return "≤" if self.upper else "≥"

    def passes(self, value: float) -> bool:
        """Whether a measured value meets this bound."""
        return value <= self.limit if self.upper else value >= self.limit

    def describe_failure(self, value: float) -> str:
        """One sentence for a value that misses this bound."""
        side = "above" if self.upper else "below"
        return f"{self.metric} is {value:.3f}, {side} the gate of {self.limit:.2f}"


@dataclass(frozen=True)
class Gates:
    """A named set of bounds on our overall figures; `GATE_SETS` is the one place thresholds are kept."""

    name: str
    purpose: str
    bounds: tuple[Bound, ...]

    def check(self, overall: Mapping[str, Any]) -> list[str]:
        """One sentence per bound the figures miss; a metric the file cannot measure (None) is not gated."""
        failures: list[str] = []
        for bound in self.bounds:
            value = overall.get(bound.metric)
            if value is not None and not bound.passes(float(value)):
                failures.append(bound.describe_failure(float(value)))
        return failures

    def to_json(self) -> dict[str, Any]:
        """The gate as written to OUT.json."""
        return {
            "name": self.name,
            "purpose": self.purpose,
            "bounds": [{"metric": b.metric, "limit": b.limit, "at_most": b.upper} for b in self.bounds],
        }


GATE_SETS: dict[str, Gates] = {
    # The CI gate of `make eval` on the visible set (issue #5).
    "visible": Gates(
        name="visible",
        purpose="CI gate on the visible question set",
        bounds=(Bound("evidence_at_1000", 0.95), Bound("correctness", 0.90), Bound("refusal_accuracy", 0.90)),
    ),
    # Issue #13's targets, checked on the calibration held-out half (never used to pick the threshold).
    "calibration": Gates(
        name="calibration",
        purpose="issue #13 targets on the calibration held-out half",
        bounds=(
            Bound("refusal_accuracy", 0.95),
            Bound("false_refusals", 0.03, upper=True),
            Bound("correctness", 0.95),
        ),
    ),
    # The CI gate on the same held-out half (`make eval`): floors a little under the figures measured when it
    # was set (2026-12-02: refusal 0.743, false refusals 0.085, correctness 0.851), so that a change that makes
    # the refusals on unseen questions worse fails CI while the targets above are not yet met.
    "calibration-floor": Gates(
        name="calibration-floor",
        purpose="CI floors on the calibration held-out half (regressions of the refusal figures)",
        bounds=(
            Bound("refusal_accuracy", 0.70),
            Bound("false_refusals", 0.12, upper=True),
            Bound("correctness", 0.80),
        ),
    ),
}
GATES = GATE_SETS["visible"]


@dataclass(frozen=True)
class Question:
    """One evaluation question (one line of a question file)."""

    id: str
    lang: str
    kind: str
    question: str
    answerable: bool
    evidence: tuple[str, ...] = ()
    must: tuple[tuple[str, ...], ...] = ()
    units: tuple[str, ...] = ()
    # The manual the question is about (its code, e.g. "901 0903"): for the per-manual breakdown only; the
    # assistant is never told it, since finding the right manual is part of answering.
    manual: str | None = None
    file: str = ""  # the question file it came from


@dataclass
class Source:
    """One retrieved passage, in rank order; unit/section/numeral are None for the baseline's chunks."""

    text: str
    unit: str | None = None
    section: str | None = None
    numeral: str | None = None
    score: float | None = None
    # The verbatim manual text the passage stands for, when its indexed text is rewritten (an org chart's
    # "Jefatura: …" text stands for the chart as printed); "" when the text is the manual's own.
    quote: str = ""

    @property
    def retrieved(self) -> str:
        """What evidence is looked for in: the text, then the verbatim quote when the text does not hold it."""
        if not self.quote or squash(self.quote) in squash(self.text):
            return self.text
        return f"{self.text}\n{self.quote}"


@dataclass
class Response:
    """What one system returned for one question, in the shape every metric reads."""

    answer: str
    answered: bool
    citations: list[dict[str, Any]] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list)
    latency_ms: float = 0.0
    faithfulness: float | None = None
    # The engine's calibrated support of its best duty line (0..1), when it scored one; the curve sweeps it.
    support: float | None = None


# --- normalisation ---------------------------------------------------------------------------------


def fold(text: str) -> str:
    """Accent-, case- and whitespace-insensitive form of a text, for evidence and `must` matching."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(plain.casefold().split())


def squash(text: str) -> str:
    """Whitespace-normalised text: runs of spaces and line breaks become one space."""
    return " ".join(text.split())


def contains_any(text: str, phrases: Iterable[str]) -> bool:
    """Whether any phrase occurs in the text, compared with `fold`."""
    haystack = fold(text)
    return any(fold(p) and fold(p) in haystack for p in phrases)


# --- retrieval -------------------------------------------------------------------------------------


def relevance(texts: Sequence[str], evidence: Sequence[str]) -> list[bool]:
    """Per retrieved text (rank order): does it contain any evidence phrase?"""
    return [contains_any(t, evidence) for t in texts]


def first_hit_rank(rels: Sequence[bool]) -> int | None:
    """1-based rank of the first relevant source, or None when none is relevant."""
    return next((i for i, r in enumerate(rels, start=1) if r), None)


def hit_at_k(rels: Sequence[bool], k: int) -> bool:
    """Whether a relevant source is among the first k."""
    return any(rels[:k])


def reciprocal_rank(rels: Sequence[bool]) -> float:
    """1 / rank of the first relevant source (0 when there is none)."""
    rank = first_hit_rank(rels)
    return 1.0 / rank if rank else 0.0


def ndcg_at_k(rels: Sequence[bool], k: int = RANK_K) -> float:
    """Binary nDCG@k; the ideal ranking puts the relevant sources that were retrieved first.

    The manual has no exhaustive relevance judgements, so the ideal is built from what was retrieved:
    the metric measures ordering, while hit@k measures whether anything relevant came back at all.
    """
    top = list(rels[:k])
    dcg = sum(1.0 / math.log2(i + 2) for i, r in enumerate(top) if r)
    n_relevant = sum(1 for r in rels if r)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(k, n_relevant)))
    return dcg / ideal if ideal else 0.0


def evidence_within(texts: Sequence[str], evidence: Sequence[str], window: int = EVIDENCE_WINDOW) -> bool:
    """Whether an evidence phrase lies in the first `window` characters of the texts joined in rank order."""
    return contains_any("\n".join(texts)[:window], evidence)


# --- answers ---------------------------------------------------------------------------------------


def missing_must(answer: str, must: Sequence[Sequence[str]]) -> list[list[str]]:
    """The `must` groups none of whose alternatives occurs in the answer (empty list: all satisfied)."""
    return [list(group) for group in must if not contains_any(answer, group)]


_ELLIPSIS = re.compile(r"\s*(?:…|\.\.\.)\s*")


def quote_is_verbatim(quote: str, references: Sequence[str]) -> bool:
    """Whether the quote occurs verbatim (whitespace-normalised) in one of the squashed reference texts.

    An elided quote ("Atender … clientes") is valid when each of its pieces occurs in the same reference.
    """
    pieces = [p for p in _ELLIPSIS.split(squash(quote)) if p]
    if not pieces:
        return False
    return any(all(p in ref for p in pieces) for ref in references)


# --- one question ----------------------------------------------------------------------------------


def unexpected_units(question: Question, response: Response) -> list[str] | None:
    """The units an answer cites that the question's `units` do not list (accent- and case-insensitive), or
    None when it cannot be told: the question lists no units, or the answer cites no unit."""
    cited = list(dict.fromkeys(str(c["unit"]) for c in response.citations if c.get("unit")))
    if not question.units or not cited or not response.answered:
        return None
    expected = {fold(u) for u in question.units}
    return [u for u in cited if fold(u) not in expected]


def _answered_elsewhere(question: Question, response: Response) -> bool:
    """An answer to a question about manual X that cites only other manuals (by code)."""
    if not question.manual or not response.answered or not response.citations:
        return False
    codes = [str(c.get("manual_code") or "") for c in response.citations]
    return all(code and code != question.manual for code in codes)


def _duty_from_history(question: Question, response: Response) -> bool:
    """A duty question answered with change-history lines only: a version's changes that happen to name the
    expected unit do not say that it holds the duty."""
    sections = {str(c.get("section") or "") for c in response.citations}
    return question.kind == "function" and sections == {"modificaciones"}


def score_question(question: Question, response: Response, references: Sequence[str]) -> dict[str, Any]:
    """The per-question record written to OUT.json: the response plus every flag the metrics read."""
    texts = [s.retrieved for s in response.sources]
    citations = [
        {**c, "valid": quote_is_verbatim(str(c.get("quote", "")), references)} for c in response.citations
    ]
    record: dict[str, Any] = {
        "id": question.id,
        "lang": question.lang,
        "kind": question.kind,
        "manual": question.manual,
        "file": question.file,
        "answerable": question.answerable,
        "question": question.question,
        "answer": response.answer,
        "answered": response.answered,
        "support": response.support,
        "citations": citations,
        "sources": [],
        "latency_ms": round(response.latency_ms, 1),
        "faithfulness": response.faithfulness,
        "citations_valid": all(c["valid"] for c in citations) if citations else None,
    }
    if question.answerable:
        rels = relevance(texts, question.evidence)
        missing = missing_must(response.answer, question.must)
        record["unexpected_units"] = unexpected_units(question, response)
        record.update(
            hit_rank=first_hit_rank(rels),
            hit_at_1=hit_at_k(rels, 1),
            hit_at_5=hit_at_k(rels, 5),
            reciprocal_rank=reciprocal_rank(rels),
            ndcg_at_5=ndcg_at_k(rels, 5),
            evidence_at_1000=evidence_within(texts, question.evidence),
            missing_must=missing,
            correct=response.answered and not missing and not _duty_from_history(question, response),
        )
    else:
        rels = [False] * len(texts)
        record.update(
            hit_rank=None,
            hit_at_1=None,
            hit_at_5=None,
            reciprocal_rank=None,
            ndcg_at_5=None,
            evidence_at_1000=None,
            missing_must=[],
            # For a question the manual does not cover, declining is the correct answer. When several manuals
            # are served, another gerencia's manual may cover it: an answer that cites only other manuals than
            # the one the question is about is right too (it names no unit of this manual).
            answered_elsewhere=_answered_elsewhere(question, response),
            correct=not response.answered or _answered_elsewhere(question, response),
        )
    record["sources"] = [
        {"text": s.text, "unit": s.unit, "section": s.section, "numeral": s.numeral, "score": s.score,
         "relevant": rel}
        for s, rel in zip(response.sources, rels, strict=True)
    ]  # fmt: skip
    return record


def failure_reasons(record: Mapping[str, Any]) -> list[str]:
    """Short reasons a question failed (empty when it passed), for the report's failure list."""
    reasons: list[str] = []
    if record["answerable"]:
        if not record["answered"]:
            reasons.append("false refusal")
        elif record["missing_must"]:
            groups = "; ".join(" | ".join(g) for g in record["missing_must"])
            reasons.append(f"answer lacks: {groups}")
        if record["hit_rank"] is None:
            reasons.append("evidence not retrieved")
        elif not record["evidence_at_1000"]:
            reasons.append(f"evidence only at rank {record['hit_rank']}, beyond 1,000 chars")
    elif record["answered"]:
        reasons.append("answered an unanswerable question")
    bad = [c for c in record["citations"] if not c["valid"]]
    if bad:
        quote = squash(str(bad[0].get("quote", "")))
        short = quote if len(quote) <= 60 else quote[:57] + "..."
        more = f" (+{len(bad) - 1} more)" if len(bad) > 1 else ""
        reasons.append(f"citation not verbatim: «{short}»{more}")
    return reasons


# --- aggregates ------------------------------------------------------------------------------------


def mean(values: Iterable[Any]) -> float | None:
    """Mean of the non-None values (booleans count as 0/1), or None when there are none."""
    kept = [float(v) for v in values if v is not None]
    return sum(kept) / len(kept) if kept else None


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) with linear interpolation, as numpy's default; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100.0
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def aggregate(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The metrics over a set of per-question records; a metric with nothing to measure is None."""
    answerable = [r for r in records if r["answerable"]]
    unanswerable = [r for r in records if not r["answerable"]]
    citations = [c for r in records for c in r["citations"]]
    latencies = [float(r["latency_ms"]) for r in records]
    faithful = [r.get("faithfulness") for r in records]
    return {
        "n": len(records),
        "n_answerable": len(answerable),
        "n_unanswerable": len(unanswerable),
        "hit_at_1": mean(r["hit_at_1"] for r in answerable),
        "hit_at_5": mean(r["hit_at_5"] for r in answerable),
        "mrr": mean(r["reciprocal_rank"] for r in answerable),
        "ndcg_at_5": mean(r["ndcg_at_5"] for r in answerable),
        "evidence_at_1000": mean(r["evidence_at_1000"] for r in answerable),
        "correctness": mean(r["correct"] for r in answerable),
        "false_refusals": mean(not r["answered"] for r in answerable),
        "refusal_accuracy": mean(bool(r["correct"]) for r in unanswerable),
        "accuracy": mean(r["correct"] for r in records),
        "citation_validity": mean(c["valid"] for c in citations),
        # Of the right answers whose question lists its units: the share that name no other unit (an answer
        # that also names a unit whose line does not cover the question is still counted right above).
        "unit_precision": mean(not r["unexpected_units"] for r in answerable if _judgeable_units(r)),
        "n_citations": len(citations),
        "latency_p50_ms": percentile(latencies, 50),
        "latency_p95_ms": percentile(latencies, 95),
        "faithfulness": mean(faithful),
    }


def _judgeable_units(record: Mapping[str, Any]) -> bool:
    return bool(record["correct"]) and record.get("unexpected_units") is not None


def _group_key(record: Mapping[str, Any], key: str) -> str:
    value = record.get(key)
    if key == "manual":
        return str(value) if value else NO_MANUAL
    return str(value)


def breakdown(records: Sequence[Mapping[str, Any]], key: str, first: Sequence[str] = ()) -> dict[str, Any]:
    """`aggregate` per value of `key` (the values in `first` first, then the others in record order)."""
    seen = list(dict.fromkeys(_group_key(r, key) for r in records))
    order = [g for g in first if g in seen] + [g for g in seen if g not in first]
    return {g: aggregate([r for r in records if _group_key(r, key) == g]) for g in order}


def summarise(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Metrics overall, per language (es, en, mixed, then any other), per kind and per manual (file order).

    With records from more than one question file, `by_file` is added.
    """
    summary = {
        "overall": aggregate(records),
        "by_lang": breakdown(records, "lang", LANG_ORDER),
        "by_kind": breakdown(records, "kind"),
        "by_manual": breakdown(records, "manual"),
    }
    if len({r.get("file", "") for r in records}) > 1:
        summary["by_file"] = breakdown(records, "file")
    return summary


def check_gates(overall: Mapping[str, Any], gates: Gates = GATES) -> list[str]:
    """One sentence per gate our overall metrics miss; a metric the file cannot measure is not gated."""
    return gates.check(overall)


# --- conversations ---------------------------------------------------------------------------------


def summarise_conversations(conversations: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Turn metrics (as `summarise`, plus `by_turn` position) and the share of conversations all right.

    Each conversation is ``{"id", "turns": [turn records]}``; a turn is right when its record is `correct`
    (answerable: answered with every `must` group; unanswerable: declined).
    """
    turns = [t for c in conversations for t in c["turns"]]
    summary = summarise(turns)
    summary["by_turn"] = breakdown(turns, "turn")
    summary["conversations"] = {
        "n": len(conversations),
        "n_turns": len(turns),
        "all_turns_right": mean(all(t["correct"] for t in c["turns"]) for c in conversations),
    }
    return summary


# --- the refusal trade-off curve ---------------------------------------------------------------------


def answered_at(record: Mapping[str, Any], threshold: float, operating: float) -> bool:
    """Whether the answer would be given if the support threshold were `threshold` instead of `operating`.

    An answer given stays given while its support (None: not scored) reaches the threshold; an answer the
    engine declined for low support (scored, below `operating`) comes back once the threshold falls to its
    support. An answer declined for any other reason (scope, no support scored) stays declined.
    """
    support = record.get("support")
    if record["answered"]:
        return support is None or support >= threshold
    return support is not None and threshold <= support < operating


def curve_point(records: Sequence[Mapping[str, Any]], threshold: float, operating: float) -> dict[str, Any]:
    """Refusal accuracy, false refusals, correctness and accuracy if the threshold were `threshold`.

    A would-be answer the engine declined is unknown text, so it counts as answered but incorrect: a false
    acceptance for an unanswerable question, a wrong answer for an answerable one.
    """
    answerable = [r for r in records if r["answerable"]]
    unanswerable = [r for r in records if not r["answerable"]]

    def right(r: Mapping[str, Any]) -> bool:
        given = answered_at(r, threshold, operating)
        if not r["answerable"]:
            return not given
        return given and bool(r["answered"]) and bool(r["correct"])

    return {
        "threshold": round(threshold, 4),
        "refusal_accuracy": mean(not answered_at(r, threshold, operating) for r in unanswerable),
        "false_refusals": mean(not answered_at(r, threshold, operating) for r in answerable),
        "correctness": mean(right(r) for r in answerable),
        "accuracy": mean(right(r) for r in records),
    }


def refusal_curve(
    records: Sequence[Mapping[str, Any]], operating: float, steps: int = CURVE_STEPS
) -> dict[str, Any] | None:
    """The support threshold swept over [0, 1] post hoc; None when the set cannot draw it.

    Drawing it needs answerable and unanswerable questions. ``best`` is where refusal accuracy minus false
    refusals is highest (the thresholds reaching it, as runs ``[from, to]``); information, not a choice.
    """
    if steps < 2:
        raise ValueError("steps must be at least 2.")
    if not any(r["answerable"] for r in records) or all(r["answerable"] for r in records):
        return None
    grid = {round(i / (steps - 1), 4) for i in range(steps)} | {round(operating, 4)}
    points = [curve_point(records, t, operating) for t in sorted(grid)]
    scores = [p["refusal_accuracy"] - p["false_refusals"] for p in points]
    top = max(scores)
    # The maximising thresholds as runs of neighbouring grid points: [[from, to], …].
    ranges: list[list[float]] = []
    previous_best = False
    for p, score in zip(points, scores, strict=True):
        is_best = math.isclose(score, top)
        if is_best and previous_best:
            ranges[-1][1] = p["threshold"]
        elif is_best:
            ranges.append([p["threshold"], p["threshold"]])
        previous_best = is_best
    operating_point = next(p for p in points if p["threshold"] == round(operating, 4))
    return {
        "operating_threshold": operating,
        "operating_point": operating_point,
        "best": {"score": round(top, 4), "ranges": ranges},
        "n_scored": sum(1 for r in records if r.get("support") is not None),
        "points": points,
    }
