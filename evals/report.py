"""Reports of an evaluation run: the Markdown beside OUT.json, the PNG chart and the console summary."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evals.metrics import GATES, failure_reasons

if TYPE_CHECKING:
    from evals.run import Run

# (key in the metrics dict, column title, kind of figure)
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("n", "n", "count"),
    ("hit_at_1", "hit@1", "share"),
    ("hit_at_5", "hit@5", "share"),
    ("mrr", "MRR", "share"),
    ("ndcg_at_5", "nDCG@5", "share"),
    ("evidence_at_1000", "evidence@1000", "share"),
    ("correctness", "correct", "share"),
    ("refusal_accuracy", "refusal acc.", "share"),
    ("false_refusals", "false refusals", "share"),
    ("citation_validity", "citations valid", "share"),
    ("latency_p50_ms", "p50 ms", "ms"),
    ("latency_p95_ms", "p95 ms", "ms"),
)
FAITHFULNESS = ("faithfulness", "faithful (LLM)", "share")
CHART_METRICS = (
    ("hit_at_1", "hit@1"),
    ("hit_at_5", "hit@5"),
    ("mrr", "MRR"),
    ("ndcg_at_5", "nDCG@5"),
    ("evidence_at_1000", "evidence\n@1000"),
    ("correctness", "correct"),
    ("refusal_accuracy", "refusal\nacc."),
    ("citation_validity", "citations\nvalid"),
)


def fmt(value: Any, kind: str = "share") -> str:
    """A figure for a table cell; "–" when the metric had nothing to measure."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if kind == "count":
        return str(int(value))
    if kind == "ms":
        return f"{value:,.0f}"
    return f"{value:.3f}"


def _columns(runs: Sequence[Run]) -> tuple[tuple[str, str, str], ...]:
    # The LLM-judged column only appears when some run was judged.
    judged = any(r.metrics["overall"].get("faithfulness") is not None for r in runs)
    return (*COLUMNS, FAITHFULNESS) if judged else COLUMNS


def _table(
    rows: list[tuple[str, str, dict[str, Any]]], columns: Sequence[tuple[str, str, str]], first: str
) -> str:
    head = [first, "configuration", *(title for _, title, _ in columns)]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---", "---"] + ["---:"] * len(columns)) + "|"]
    for group, config, metrics in rows:
        cells = [group, config, *(fmt(metrics.get(key), kind) for key, _, kind in columns)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _breakdown(
    runs: Sequence[Run], section: str, columns: Sequence[tuple[str, str, str]]
) -> list[tuple[str, str, dict[str, Any]]]:
    groups = list(dict.fromkeys(g for r in runs for g in r.metrics[section]))
    return [
        (g, r.config["name"], r.metrics[section][g]) for g in groups for r in runs if g in r.metrics[section]
    ]


def write_markdown(
    path: Path, runs: Sequence[Run], gate_failures: Sequence[str], questions_path: str, chart_name: str
) -> None:
    """The human report: ours beside the baseline overall, per language and kind; gate; failing questions."""
    main = runs[0]
    overall = main.metrics["overall"]
    columns = _columns(runs)
    lines = [
        f"# Evaluation of `{questions_path}`",
        "",
        f"{overall['n']} questions ({overall['n_answerable']} answerable, {overall['n_unanswerable']} not "
        f"covered by the manual). Configurations: "
        + ", ".join(f"**{r.config['name']}**" for r in runs)
        + ".",
        "",
        "## Overall",
        "",
        _table([("all", r.config["name"], r.metrics["overall"]) for r in runs], columns, "questions"),
        "",
        "## Gate: " + main.config["name"],
        "",
    ]
    for key, minimum in GATES.__dict__.items():
        value = overall.get(key)
        status = "not measured" if value is None else ("pass" if value >= minimum else "**FAIL**")
        lines.append(f"- {key} ≥ {minimum:.2f}: {fmt(value)} — {status}")
    if gate_failures:
        lines += ["", "Gate failed: " + "; ".join(gate_failures) + "."]
    lines += [
        "",
        "## Per language",
        "",
        _table(_breakdown(runs, "by_lang", columns), columns, "language"),
        "",
        "## Per kind",
        "",
        _table(_breakdown(runs, "by_kind", columns), columns, "kind"),
        "",
        f"![metrics per configuration]({chart_name})",
        "",
        f"## Failing questions: {main.config['name']}",
        "",
    ]
    failing = [(r, failure_reasons(r)) for r in main.records]
    failing = [(r, why) for r, why in failing if why]
    if not failing:
        lines.append("None.")
    for record, why in failing:
        lines.append(f"- **{record['id']}** ({record['lang']}, {record['kind']}): {'; '.join(why)}")
    lines += [
        "",
        "## Reading the figures",
        "",
        "Retrieval metrics (hit@k, MRR, nDCG@5, evidence@1000) and correctness count answerable "
        "questions only; refusal accuracy counts only questions the manual does not cover. A source is "
        "relevant when it holds an `evidence` phrase; evidence@1000 looks at the first 1,000 characters of "
        "the sources joined in rank order. The baseline never declines and cites nothing. "
        "See `evals/README.md`.",
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")


def write_chart(path: Path, runs: Sequence[Run]) -> None:
    """A PNG comparing the configurations: overall metrics, and correctness per language."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and in CI
    import matplotlib.pyplot as plt
    import numpy as np

    def value(metrics: dict[str, Any], key: str) -> float:
        v = metrics.get(key)
        return float("nan") if v is None else float(v)

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.8), gridspec_kw={"width_ratios": [3, 1.4]})
    width = 0.8 / len(runs)
    x = np.arange(len(CHART_METRICS))
    for i, run in enumerate(runs):
        heights = [value(run.metrics["overall"], key) for key, _ in CHART_METRICS]
        left.bar(x + (i - (len(runs) - 1) / 2) * width, heights, width, label=run.config["name"])
    for key, minimum in GATES.__dict__.items():
        names = [k for k, _ in CHART_METRICS]
        if key in names:
            j = names.index(key)
            left.hlines(minimum, j - 0.45, j + 0.45, colors="black", linestyles="dashed", linewidth=1)
    left.set_xticks(x, [label for _, label in CHART_METRICS], fontsize=8)
    left.set_ylim(0, 1.05)
    left.set_title("Overall (dashed: CI gate)")
    left.legend(fontsize=8, loc="lower left")

    langs = list(dict.fromkeys(g for r in runs for g in r.metrics["by_lang"]))
    x2 = np.arange(len(langs))
    for i, run in enumerate(runs):
        heights = [value(run.metrics["by_lang"].get(g, {}), "correctness") for g in langs]
        right.bar(x2 + (i - (len(runs) - 1) / 2) * width, heights, width, label=run.config["name"])
    right.set_xticks(x2, langs)
    right.set_ylim(0, 1.05)
    right.set_title("Correctness per language")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def print_summary(runs: Sequence[Run], gate_failures: Sequence[str]) -> None:
    """The overall figures of each configuration on the console."""
    keys = [c for c in _columns(runs) if c[0] != "n"]
    width = max(len(r.config["name"]) for r in runs)
    print(" " * width + "  " + "  ".join(f"{title:>{max(len(title), 6)}}" for _, title, _ in keys))
    for run in runs:
        m = run.metrics["overall"]
        cells = "  ".join(f"{fmt(m.get(key), kind):>{max(len(title), 6)}}" for key, title, kind in keys)
        print(f"{run.config['name']:<{width}}  {cells}")
    print("gate: " + ("passed" if not gate_failures else "FAILED (" + "; ".join(gate_failures) + ")"))
