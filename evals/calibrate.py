"""Fit the support model of "who handles X" answers on the dev question sets.

    python -m evals.calibrate [--questions evals/calibration/dev.jsonl evals/questions.jsonl]
                              [--out assistant/data/support.json]

The default fits on the calibration dev half and the visible question set (both dev data: the visible set
is the one the retrieval weights were tuned on); held-out files are refused.

Every question of the dev file is asked with the support threshold at 0, so that each one reaching the
"who handles" path records the features of its lead line (see `assistant.support`). A record is labelled 1
when the question is answerable and the answer is correct (every `must` group found), 0 when the question is
unanswerable; answerable questions answered wrongly are left out (no threshold can make them right). A
logistic regression (numpy, L2) is fitted on the records and the threshold is chosen on the same dev records:
the highest refusal of unanswerable questions with at most ``--max-false-refusals`` of the correct ones
refused. Never run this on a held-out file: those are for reporting only.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import unicodedata
from pathlib import Path
from typing import Any

import numpy as np

from assistant.support import DEFAULT_MODEL_PATH, FEATURES, SupportModel, fit_logistic


def _norm(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return " ".join("".join(c for c in decomposed if not unicodedata.combining(c)).lower().split())


def _correct(item: dict[str, Any], text: str) -> bool:
    body = _norm(text)
    return all(any(_norm(alt) in body for alt in group) for group in item.get("must", []))


def collect(assistant: Any, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Ask each question (threshold 0) and keep the lead line's features where the support was scored."""
    seen: list[Any] = []

    def hook(topic: str, lead: Any, scored: list[Any]) -> None:
        seen.append((topic, lead))

    for engine in (assistant.grounded, *assistant._engines.values()):
        engine.on_support = hook
    saved = assistant.settings.answer.support_threshold
    assistant.settings.answer.support_threshold = 0.0
    records = []
    try:
        for item in items:
            seen.clear()
            answer = assistant.ask(item["question"])
            if not seen or seen[-1][1] is None:
                continue
            topic, lead = seen[-1]
            if item["answerable"]:
                label: int | None = 1 if answer.answered and _correct(item, answer.answer) else None
            else:
                label = 0
            records.append(
                {
                    "id": item["id"],
                    "kind": item.get("kind", ""),
                    "question": item["question"],
                    "topic": topic,
                    "line": lead.chunk.quote,
                    "features": lead.features,
                    "label": label,
                }
            )
    finally:
        assistant.settings.answer.support_threshold = saved
        for engine in (assistant.grounded, *assistant._engines.values()):
            engine.on_support = None
    return records


def choose_threshold(
    scores: np.ndarray, labels: np.ndarray, max_false: float
) -> tuple[float, dict[str, float]]:
    """The threshold refusing most negatives with at most ``max_false`` of positives refused."""
    pos, neg = scores[labels == 1], scores[labels == 0]
    best_t, best = 0.5, (-1.0, 0.0)
    for t in np.unique(np.concatenate([scores, [0.0, 1.0]])):
        false = float((pos < t).mean()) if len(pos) else 0.0
        refused = float((neg < t).mean()) if len(neg) else 0.0
        if false <= max_false and (refused, -t) > best:
            best, best_t = (refused, -t), float(t)
    # Midway down to the next lower score: the same questions pass, with no score sitting on the edge.
    below = scores[scores < best_t]
    t = (best_t + float(below.max())) / 2 if len(below) else best_t
    false = float((pos < t).mean()) if len(pos) else 0.0
    refused = float((neg < t).mean()) if len(neg) else 0.0
    return float(t), {"false_refusals": false, "refused_negatives": refused}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--questions", nargs="+", default=["evals/calibration/dev.jsonl", "evals/questions.jsonl"]
    )
    parser.add_argument("--out", default=str(DEFAULT_MODEL_PATH))
    parser.add_argument("--max-false-refusals", type=float, default=0.02)
    parser.add_argument("--l2", type=float, default=1.0)
    parser.add_argument("--dump", help="write the records (features, labels, scores) to this JSONL file")
    args = parser.parse_args(argv)
    if any("heldout" in Path(q).name for q in args.questions):
        print("Refusing to fit on a held-out file; use the dev half.", file=sys.stderr)
        return 2
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from assistant.chain import Assistant
    from assistant.settings import Settings

    items = [
        json.loads(line)
        for q in args.questions
        for line in Path(q).read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    assistant = Assistant.from_settings(Settings())
    records = collect(assistant, items)
    usable = [r for r in records if r["label"] is not None]
    x = np.array([[r["features"][f] for f in FEATURES] for r in usable], dtype=float)
    y = np.array([r["label"] for r in usable], dtype=float)
    w, b, mean, scale = fit_logistic(x, y, l2=args.l2)
    model = SupportModel(
        FEATURES, tuple(w.tolist()), float(b), tuple(mean.tolist()), tuple(scale.tolist()), 0.5
    )
    scores = np.array([model.score(r["features"]) for r in usable])
    threshold, dev = choose_threshold(scores, y, args.max_false_refusals)
    model = SupportModel(
        model.features, model.weights, model.bias, model.mean, model.scale, round(threshold, 4)
    )
    out = model.to_json(
        fitted_on=args.questions,
        records=len(usable),
        positives=int(y.sum()),
        negatives=int(len(y) - y.sum()),
        left_out_wrong=len(records) - len(usable),
        dev=dev,
    )
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    SupportModel.load(args.out)  # what was written must load
    print(json.dumps({k: v for k, v in out.items() if k not in ("mean", "scale")}, indent=1))
    if args.dump:
        with open(args.dump, "w", encoding="utf-8") as fh:
            for r in records:
                fh.write(json.dumps({**r, "score": model.score(r["features"])}, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
