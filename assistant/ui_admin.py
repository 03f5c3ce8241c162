"""The "Administración · Insight" tab, for admins only.

A non-admin gets no trace of it: the tab is not in the page's static config at all. It is created per browser
session by ``gr.render`` on the page's load event, from the user name of that request (the login cookie,
never anything the page sends), and only when that user is an admin; its events then exist in that session
alone. Every handler checks the user of its own request again and returns nothing to anyone else.
"""

from __future__ import annotations

import tempfile
import threading
import warnings
from collections.abc import Collection
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd
from gradio.context import LocalContext, get_render_context

from assistant.feedback import FeedbackStore
from assistant.insight import (
    CachedVectorizer,
    InsightReport,
    Vectorize,
    build_report,
    e5_vectorizer,
    lexical_vectorizer,
    topics_csv,
)
from assistant.querylog import QueryLog

TAB_LABEL = "Administración · Insight"
TAB_ID = "insight"
PERIODS = [("7 días · days", 7), ("30 días · days", 30), ("90 días · days", 90), ("365 días · days", 365)]
MAX_BARS = 15


def vectorizer_for(assistant: Any) -> Vectorize:
    """The assistant's own e5 model for the topics; word counts for a stand-in assistant without one."""
    embedder = getattr(assistant, "embedder", None)
    return e5_vectorizer(embedder) if embedder is not None else lexical_vectorizer


class InsightService:
    """Builds reports for the tab; one at a time, with the questions' vectors kept between refreshes."""

    def __init__(
        self,
        query_log: QueryLog | None,
        store: FeedbackStore | None,
        vectorize: Vectorize,
        max_cluster_questions: int = 2000,
    ) -> None:
        """Keep references; nothing is read until the first report."""
        self.query_log = query_log
        self.store = store
        self.vectorize = CachedVectorizer(vectorize)
        self.max_cluster_questions = max_cluster_questions
        self._lock = threading.Lock()
        self._exports = Path(tempfile.mkdtemp(prefix="mof-insight-"))

    def report(self, days: int) -> InsightReport:
        """The report of the last ``days`` days (the log's pending writes first, so it is up to date)."""
        since = datetime.now(UTC) - timedelta(days=max(1, int(days)))
        with self._lock:
            if self.query_log is not None:
                self.query_log.flush(timeout_s=5)
            return build_report(self.query_log, self.store, self.vectorize, since, self.max_cluster_questions)

    def exports(self, report: InsightReport) -> tuple[str, str | None]:
        """The topics as CSV and the 👎 items as evaluation questions (JSON Lines), as files to download."""
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        folder = Path(tempfile.mkdtemp(prefix=f"{stamp}-", dir=self._exports))
        topics = folder / f"temas-sin-respuesta-{stamp}.csv"
        topics.write_text(topics_csv(report), encoding="utf-8")
        if self.store is None:
            return str(topics), None
        thumbs = folder / f"feedback-evaluacion-{stamp}.jsonl"
        self.store.export(thumbs, since=report.since)
        return str(topics), str(thumbs)


def summary_markdown(report: InsightReport) -> str:
    """The key numbers of a report."""
    rate = "—" if report.refusal_rate is None else f"{100 * report.refusal_rate:.1f} %"

    def ms(v: float | None) -> str:
        return "—" if v is None else f"{v:.0f} ms"

    return (
        f"**{report.questions}** preguntas · questions  ·  **{report.answered}** respondidas · answered  ·  "
        f"**{rate}** sin respuesta · refused  ·  latencia p50 **{ms(report.latency_p50_ms)}**, "
        f"p95 **{ms(report.latency_p95_ms)}**  ·  👍 **{report.thumbs_up}**  ·  👎 **{len(report.thumbs_down)}**"
    )


def frames(report: InsightReport) -> dict[str, pd.DataFrame]:
    """The plots' data."""
    days = [pd.Timestamp(d) for d, _, _ in report.per_day]
    return {
        "per_day": pd.DataFrame({"día": days, "preguntas": [n for _, n, _ in report.per_day]}),
        "refusal": pd.DataFrame(
            {"día": days, "sin respuesta (%)": [100.0 * u / n if n else 0.0 for _, n, u in report.per_day]}
        ),
        "by_manual": pd.DataFrame(
            {
                "manual": list(report.by_manual)[:MAX_BARS],
                "preguntas": list(report.by_manual.values())[:MAX_BARS],
            }
        ),
        "by_unit": pd.DataFrame(
            {"unidad": list(report.by_unit)[:MAX_BARS], "preguntas": list(report.by_unit.values())[:MAX_BARS]}
        ),
    }


def join_strip(tab: gr.Tab, place: int) -> None:
    """Show ``tab``, made by a ``gr.render`` declared inside a ``gr.Tabs``, as one more tab of that strip.

    The render's container (a Column) stands between the two, and Gradio wraps a tab whose parent is not a
    ``gr.Tabs`` in a ``gr.Tabs`` of its own: a second strip, under the first, whose panel shows beside the
    selected one of the first. Left unwrapped, the tab registers in the browser with the ``gr.Tabs`` it sits
    in, at the position its ``order`` says (the one Gradio gives that ``gr.Tabs``' own tabs: their place
    among its children), so ``place`` is the render container's place among them.
    """
    config = tab.get_config
    # Per instance: a subclass of a Gradio component would have Gradio write a .pyi stub beside this module.
    tab.get_expected_parent = lambda: None  # type: ignore[method-assign, assignment, return-value]
    tab.get_config = lambda cls=None: {**config(cls), "order": place}  # type: ignore[method-assign]


def add_admin_tab(
    app: gr.Blocks,
    admins: Collection[str],
    query_log: QueryLog | None,
    store: FeedbackStore | None,
    vectorize: Vectorize,
    max_cluster_questions: int = 2000,
) -> None:
    """Declare the admin tab inside ``app``'s ``gr.Tabs``; without admins (or without login) nothing at all."""
    admins = frozenset(admins)
    if not admins:
        return
    service = InsightService(query_log, store, vectorize, max_cluster_questions)

    def is_admin(request: gr.Request | None) -> bool:
        user = getattr(request, "username", None)
        return isinstance(user, str) and user in admins

    # The render's container is a Column among the Tabs' children; the tab it creates inside joins the Tabs'
    # strip on the page (see ``join_strip``; the browser test checks it), so Gradio's warning is not shown.
    warnings.filterwarnings("ignore", message=r"gr\.Tabs\(\) can only contain", category=UserWarning)
    tabs = get_render_context()
    place = len(tabs.children) if isinstance(tabs, gr.Tabs) else None  # the render's container goes there

    @gr.render(triggers=[app.load], queue=False)
    def admin_tab() -> None:
        # A render function gets no request parameter; the request of the load event that runs it is here.
        if not is_admin(LocalContext.request.get(None)):
            return
        with gr.Tab(TAB_LABEL, id=TAB_ID, elem_id="insight-tab") as tab:
            if place is not None:
                join_strip(tab, place)
            with gr.Row():
                period = gr.Dropdown(
                    PERIODS, value=30, label="Periodo · Period", scale=2, elem_id="insight-period"
                )
                refresh = gr.Button("Actualizar · Refresh", scale=1, elem_id="insight-refresh")
            summary = gr.Markdown(elem_id="insight-summary")
            with gr.Row():
                per_day = gr.LinePlot(
                    x="día",
                    y="preguntas",
                    label="Preguntas por día · Questions per day",
                    elem_id="insight-per-day",
                )
                refusal = gr.LinePlot(
                    x="día",
                    y="sin respuesta (%)",
                    y_lim=[0, 100],
                    label="Sin respuesta (%) · Refusal rate",
                    elem_id="insight-refusal",
                )
            gr.Markdown("### Preguntas sin respuesta, por tema · Unanswered questions by topic")
            topics = gr.Dataframe(
                headers=["Tema · Topic", "N", "Ejemplos · Examples"],
                interactive=False,
                wrap=True,
                elem_id="insight-topics",
            )
            with gr.Row():
                by_manual = gr.BarPlot(
                    x="manual", y="preguntas", label="Por manual · By manual", elem_id="insight-by-manual"
                )
                by_unit = gr.BarPlot(
                    x="unidad",
                    y="preguntas",
                    x_label_angle=-30,
                    label="Por unidad · By unit",
                    elem_id="insight-by-unit",
                )
            gr.Markdown("### 👎 con comentario y respuesta · 👎 with comment and answer")
            thumbs = gr.Dataframe(
                headers=["Fecha · Date", "Pregunta · Question", "Comentario · Comment", "Respuesta · Answer"],
                interactive=False,
                wrap=True,
                elem_id="insight-thumbs-down",
            )
            with gr.Row():
                topics_file = gr.DownloadButton(
                    "Temas (CSV) · Topics (CSV)", elem_id="insight-export-topics", interactive=False
                )
                thumbs_file = gr.DownloadButton(
                    "👎 como preguntas de evaluación · 👎 as eval questions (JSONL)",
                    elem_id="insight-export-feedback",
                    interactive=False,
                )
        outputs = [summary, per_day, refusal, topics, by_manual, by_unit, thumbs, topics_file, thumbs_file]

        def show(days: int, request: gr.Request) -> list[Any]:
            # Checked again here: an event of this tab must answer its admin and nobody else.
            if not is_admin(request):
                return [gr.skip()] * len(outputs)
            report = service.report(days)
            data = frames(report)
            csv_path, jsonl_path = service.exports(report)
            return [
                summary_markdown(report),
                data["per_day"],
                data["refusal"],
                [[t.label, t.count, "\n".join(t.examples)] for t in report.topics],
                data["by_manual"],
                data["by_unit"],
                [
                    [r.created_at[:16].replace("T", " "), r.question, r.comment, r.answer]
                    for r in report.thumbs_down
                ],
                gr.update(value=csv_path, interactive=True),
                gr.update(value=jsonl_path, interactive=jsonl_path is not None),
            ]

        gr.on(
            [tab.select, refresh.click, period.input],
            show,
            [period],
            outputs,
            api_visibility="private",
            concurrency_limit=1,
            concurrency_id="insight",
        )
