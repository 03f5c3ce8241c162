"""Reports of an evaluation run: the Markdown beside OUT.json, the PNG chart and the console summary."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from evals.metrics import GATES, NO_MANUAL, Gates, failure_reasons

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
    ("unit_precision", "no extra unit", "share"),
    ("citation_validity", "citations valid", "share"),
    ("latency_p50_ms", "p50 ms", "ms"),
    ("latency_p95_ms", "p95 ms", "ms"),
)
FAITHFULNESS = ("faithfulness", "faithful (LLM)", "share")
# Conversation turns: what a follow-up gets right (answers and refusals), and whether it found the evidence.
TURN_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("n", "n", "count"),
    ("accuracy", "turns right", "share"),
    ("correctness", "correct", "share"),
    ("refusal_accuracy", "refusal acc.", "share"),
    ("false_refusals", "false refusals", "share"),
    ("hit_at_1", "hit@1", "share"),
    ("evidence_at_1000", "evidence@1000", "share"),
    ("citation_validity", "citations valid", "share"),
    ("latency_p50_ms", "p50 ms", "ms"),
)
CURVE_TABLE_STEP = 0.1  # the Markdown lists the curve every 0.1 (all points are in OUT.json)
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
    runs: Sequence[Run], section: str, columns: Sequence[tuple[str, str, str]], conversations: bool = False
) -> list[tuple[str, str, dict[str, Any]]]:
    def metrics(r: Run) -> dict[str, Any]:
        return (r.conversation_metrics if conversations else r.metrics).get(section, {})

    groups = list(dict.fromkeys(g for r in runs for g in metrics(r)))
    return [(g, r.config["name"], metrics(r)[g]) for g in groups for r in runs if g in metrics(r)]


def _has_manuals(groups: dict[str, Any]) -> bool:
    return any(g != NO_MANUAL for g in groups)


def _gate_lines(main: Run, gates: Gates, gate_failures: Sequence[str]) -> list[str]:
    overall = main.gated_metrics()
    what = "questions" if main.records or not main.conversations else "conversation turns"
    lines = [f"## Gate `{gates.name}` ({gates.purpose}): {main.config['name']}, on the {what}", ""]
    for bound in gates.bounds:
        value = overall.get(bound.metric)
        status = "not measured" if value is None else ("pass" if bound.passes(value) else "**FAIL**")
        lines.append(f"- {bound.metric} {bound.sign} {bound.limit:.2f}: {fmt(value)} — {status}")
    if gate_failures:
        lines += ["", "Gate failed: " + "; ".join(gate_failures) + "."]
    return [*lines, ""]


def _question_lines(
    runs: Sequence[Run], columns: Sequence[tuple[str, str, str]], chart_name: str
) -> list[str]:
    main = runs[0]
    lines = [
        "## Per language",
        "",
        _table(_breakdown(runs, "by_lang", columns), columns, "language"),
        "",
        "## Per kind",
        "",
        _table(_breakdown(runs, "by_kind", columns), columns, "kind"),
        "",
    ]
    if _has_manuals(main.metrics.get("by_manual", {})):
        lines += ["## Per manual", "", _table(_breakdown(runs, "by_manual", columns), columns, "manual"), ""]
    if "by_file" in main.metrics:
        lines += [
            "## Per question file",
            "",
            _table(_breakdown(runs, "by_file", columns), columns, "file"),
            "",
        ]
    lines += [
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
        manual = f", {record['manual']}" if record.get("manual") else ""
        lines.append(f"- **{record['id']}** ({record['lang']}, {record['kind']}{manual}): {'; '.join(why)}")
    return [*lines, ""]


def _curve_lines(curve: dict[str, Any], chart_name: str | None) -> list[str]:
    op = curve["operating_point"]
    best = curve["best"]
    lines = [
        "## Refusal trade-off curve",
        "",
        f"The support threshold swept post hoc over [0, 1] ({len(curve['points'])} points in OUT.json; "
        f"{curve['n_scored']} answers carried a support score). Operating point t = "
        f"{curve['operating_threshold']:.2f}: refusal accuracy {fmt(op['refusal_accuracy'])}, false refusals "
        f"{fmt(op['false_refusals'])}, correctness {fmt(op['correctness'])}. Refusal accuracy − false "
        f"refusals is highest ({best['score']:.3f}) at t = {_range(best)} on this file (information, not a "
        "choice: pick the threshold on the dev half)."
        + (
            " No answer carried a support score, so the curve is a single point."
            if not curve["n_scored"]
            else ""
        ),
        "",
        "| threshold | refusal acc. | false refusals | correct | accuracy |",
        "|---:|---:|---:|---:|---:|",
    ]
    for p in curve["points"]:
        on_grid = abs(p["threshold"] / CURVE_TABLE_STEP - round(p["threshold"] / CURVE_TABLE_STEP)) < 1e-9
        is_op = p["threshold"] == op["threshold"]
        if on_grid or is_op:
            t = f"**{p['threshold']:.2f}** (operating)" if is_op else f"{p['threshold']:.2f}"
            cells = [fmt(p[k]) for k in ("refusal_accuracy", "false_refusals", "correctness", "accuracy")]
            lines.append(f"| {t} | " + " | ".join(cells) + " |")
    lines.append("")
    if chart_name:
        lines += [f"![refusal trade-off curve]({chart_name})", ""]
    return lines


def _range(best: dict[str, Any]) -> str:
    return ", ".join(f"{a:.2f}" if a == b else f"{a:.2f}–{b:.2f}" for a, b in best["ranges"])


def _conversation_lines(runs: Sequence[Run]) -> list[str]:
    main = runs[0]
    with_convs = [r for r in runs if r.conversations]
    cols = TURN_COLUMNS
    lines = [
        "## Conversations",
        "",
        "Each turn is asked with the earlier turns of its conversation as history and scored as a question. "
        "A conversation is right when all its turns are.",
        "",
        "| configuration | conversations | all turns right |",
        "|---|---:|---:|",
    ]
    for r in with_convs:
        conv = r.conversation_metrics["conversations"]
        lines.append(f"| {r.config['name']} | {conv['n']} | {fmt(conv['all_turns_right'])} |")
    lines += [
        "",
        _table(
            [("all", r.config["name"], r.conversation_metrics["overall"]) for r in with_convs], cols, "turns"
        ),
        "",
        "### Per turn position",
        "",
        _table(_breakdown(with_convs, "by_turn", cols, conversations=True), cols, "turn"),
        "",
    ]
    if _has_manuals(main.conversation_metrics.get("by_manual", {})):
        lines += [
            "### Per manual",
            "",
            _table(_breakdown(with_convs, "by_manual", cols, conversations=True), cols, "manual"),
            "",
        ]
    lines += [f"### Failing conversations: {main.config['name']}", ""]
    failing = [c for c in main.conversations if not c["all_turns_right"]]
    if not failing:
        lines.append("None.")
    for conv in failing:
        bad = [(t, failure_reasons(t)) for t in conv["turns"]]
        why = "; ".join(
            f"turn {t['turn']} ({t['id']}): {', '.join(w) or 'wrong'}" for t, w in bad if not t["correct"]
        )
        lines.append(f"- **{conv['id']}**: {why}")
    return [*lines, ""]


def write_markdown(
    path: Path,
    runs: Sequence[Run],
    gates: Gates,
    gate_failures: Sequence[str],
    inputs: dict[str, Any],
    chart_name: str,
    curve: dict[str, Any] | None = None,
    curve_chart_name: str | None = None,
) -> None:
    """The human report: ours beside the baseline (overall, per language, kind and manual), the gate, the
    refusal curve, the conversations, and the failing questions with a reason each."""
    main = runs[0]
    overall = main.metrics["overall"]
    columns = _columns(runs)
    files = [*inputs.get("questions", []), *inputs.get("conversations", [])]
    corpus = inputs.get("corpus", [])
    lines = [
        "# Evaluation of " + ", ".join(f"`{f}`" for f in files),
        "",
        f"Corpus: {', '.join(f'`{c}`' for c in corpus)}. Configurations: "
        + ", ".join(f"**{r.config['name']}**" for r in runs)
        + ".",
        "",
    ]
    if main.records:
        lines += [
            f"{overall['n']} questions ({overall['n_answerable']} answerable, {overall['n_unanswerable']} not "
            "covered by the manual).",
            "",
            "## Overall",
            "",
            _table([("all", r.config["name"], r.metrics["overall"]) for r in runs], columns, "questions"),
            "",
        ]
    lines += _gate_lines(main, gates, gate_failures)
    if main.records:
        lines += _question_lines(runs, columns, chart_name)
    if curve:
        lines += _curve_lines(curve, curve_chart_name)
    if main.conversations:
        lines += _conversation_lines(runs)
    lines += [
        "## Reading the figures",
        "",
        "Retrieval metrics (hit@k, MRR, nDCG@5, evidence@1000) and correctness count answerable "
        "questions only; refusal accuracy counts only questions the manual does not cover. A source is "
        "relevant when it holds an `evidence` phrase; evidence@1000 looks at the first 1,000 characters of "
        "the sources joined in rank order. The baseline never declines, cites nothing and has no memory of "
        "a conversation. See `evals/README.md`.",
        "",
    ]
    path.write_text("\n".join(lines), encoding="utf-8")


def _chart_metrics(run: Run) -> dict[str, Any]:
    # Without questions, the chart shows the conversation turns.
    if run.records or not run.conversations:
        return run.metrics
    return run.conversation_metrics


def write_chart(path: Path, runs: Sequence[Run], gates: Gates = GATES) -> None:
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
        heights = [value(_chart_metrics(run)["overall"], key) for key, _ in CHART_METRICS]
        left.bar(x + (i - (len(runs) - 1) / 2) * width, heights, width, label=run.config["name"])
    names = [k for k, _ in CHART_METRICS]
    for bound in gates.bounds:
        if bound.metric in names:
            j = names.index(bound.metric)
            left.hlines(bound.limit, j - 0.45, j + 0.45, colors="black", linestyles="dashed", linewidth=1)
    left.set_xticks(x, [label for _, label in CHART_METRICS], fontsize=8)
    left.set_ylim(0, 1.05)
    left.set_title(f"Overall (dashed: gate '{gates.name}')")
    left.legend(fontsize=8, loc="lower left")

    langs = list(dict.fromkeys(g for r in runs for g in _chart_metrics(r)["by_lang"]))
    x2 = np.arange(len(langs))
    for i, run in enumerate(runs):
        heights = [value(_chart_metrics(run)["by_lang"].get(g, {}), "correctness") for g in langs]
        right.bar(x2 + (i - (len(runs) - 1) / 2) * width, heights, width, label=run.config["name"])
    right.set_xticks(x2, langs)
    right.set_ylim(0, 1.05)
    right.set_title("Correctness per language")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_curve_chart(path: Path, curve: dict[str, Any]) -> None:
    """The refusal trade-off curve: false refusals (x) against refusal accuracy (y), operating point marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = curve["points"]
    xs = [p["false_refusals"] for p in points]
    ys = [p["refusal_accuracy"] for p in points]
    op = curve["operating_point"]
    fig, ax = plt.subplots(figsize=(6.4, 5.2))
    ax.plot(xs, ys, "-o", markersize=3, linewidth=1.4, color="tab:blue", label="support threshold 0 → 1")
    # A few thresholds along the curve, so a reader can tell which end is which.
    labelled: set[tuple[float, float]] = set()
    for p in points:
        t = p["threshold"]
        where = (round(p["false_refusals"], 3), round(p["refusal_accuracy"], 3))
        on_quarter = abs(t * 4 - round(t * 4)) < 1e-9
        if on_quarter and where not in labelled and t != curve["operating_point"]["threshold"]:
            labelled.add(where)
            ax.annotate(f"t={t:.2f}", where, textcoords="offset points", xytext=(6, -12), fontsize=7,
                        color="tab:blue")  # fmt: skip
    ax.plot([op["false_refusals"]], [op["refusal_accuracy"]], "*", markersize=15, color="tab:red",
            label="operating point", zorder=5)  # fmt: skip
    ax.annotate(
        f"operating point t={curve['operating_threshold']:.2f}\n"
        f"refusal acc. {op['refusal_accuracy']:.3f}, false refusals {op['false_refusals']:.3f}",
        (op["false_refusals"], op["refusal_accuracy"]), textcoords="offset points", xytext=(12, -30),
        fontsize=8, color="tab:red", arrowprops={"arrowstyle": "-", "color": "tab:red", "lw": 0.8},
    )  # fmt: skip
    ax.set_xlim(-0.03, 1.03)
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("false refusals (answerable questions declined)")
    ax.set_ylabel("refusal accuracy (unanswerable questions declined)")
    ax.set_title("Refusal trade-off: sweeping the support threshold")
    ax.grid(True, linewidth=0.4, alpha=0.5)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def print_summary(runs: Sequence[Run], gate_failures: Sequence[str], gates: Gates = GATES) -> None:
    """The overall figures of each configuration on the console (questions, then conversation turns)."""
    if any(r.records for r in runs):
        _print_rows([(r.config["name"], r.metrics["overall"]) for r in runs], _columns(runs))
    with_convs = [r for r in runs if r.conversations]
    if with_convs:
        print("conversations:")
        rows = []
        for r in with_convs:
            m = {**r.conversation_metrics["overall"], **r.conversation_metrics["conversations"]}
            rows.append((r.config["name"], m))
        _print_rows(rows, (*TURN_COLUMNS, ("all_turns_right", "convs right", "share")))
        positions = ", ".join(
            f"turn {k}: {fmt(m['accuracy'])}"
            for k, m in with_convs[0].conversation_metrics["by_turn"].items()
        )
        print(f"  turns right by position ({with_convs[0].config['name']}): {positions}")
    verdict = "passed" if not gate_failures else "FAILED (" + "; ".join(gate_failures) + ")"
    print(f"gate {gates.name}: {verdict}")


def _print_rows(rows: Sequence[tuple[str, dict[str, Any]]], columns: Sequence[tuple[str, str, str]]) -> None:
    keys = [c for c in columns if c[0] != "n"]
    width = max(len(name) for name, _ in rows)
    print(" " * width + "  " + "  ".join(f"{title:>{max(len(title), 6)}}" for _, title, _ in keys))
    for name, m in rows:
        cells = "  ".join(f"{fmt(m.get(key), kind):>{max(len(title), 6)}}" for key, title, kind in keys)
        print(f"{name:<{width}}  {cells}")


def print_curve(curve: dict[str, Any]) -> None:
    """The operating point and the best threshold on this file, as information."""
    op, best = curve["operating_point"], curve["best"]
    if not curve["n_scored"]:
        print(
            "refusal curve: no answer carried a support score, so the threshold changes nothing (flat curve)"
        )
    print(
        f"refusal curve: operating point t={curve['operating_threshold']:.2f} gives refusal accuracy "
        f"{fmt(op['refusal_accuracy'])}, false refusals {fmt(op['false_refusals'])}; on this file refusal "
        f"accuracy − false refusals is highest ({best['score']:.3f}) at t={_range(best)} (information only)"
    )
