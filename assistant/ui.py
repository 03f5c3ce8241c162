"""The web chat: cited answers, feedback, and an onboarding tour of the organisation (Gradio Blocks).

The handlers live in ``ChatController`` and plain functions so they can be tested without a server;
``build_app`` only lays out components and wires events to them.
"""

from __future__ import annotations

import contextlib
import gc
import hmac
import html
import logging
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Protocol, TypeVar, get_type_hints

import gradio as gr

from assistant.errors import AssistantError, InvalidQuestionError
from assistant.feedback import FeedbackStore, Rating, feedback_url
from assistant.models import Answer, Citation, Hit, Manual, Unit
from assistant.orgchart import org_chart_svg
from assistant.querylog import QueryLog
from assistant.settings import Settings, UISettings
from assistant.text import of_article, with_article

log = logging.getLogger(__name__)

USERS_ENV = "ASSISTANT_UI_USERS"
# The roles a users entry may end with ("ana:secret:admin"); without one a user is a "user".
ROLES = ("admin", "user")
# How many suggested-question buttons a unit card has; the buttons exist once and are relabelled.
MAX_SUGGESTIONS = 4
# Longest question echoed back in the chat; a rejected 100 kB paste should not flood the page.
MAX_ECHO_CHARS = 400
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\ufeff]")

FALLBACK_NOTE = (
    "LLM no disponible; respuesta del motor fundamentado · LLM unavailable; grounded-engine answer"
)
THINKING = "Buscando en el manual… · Searching the manual…"
# The chat filter's "no filter" choice; any other value is a manual's code, passed to ``ask(manual=...)``.
ALL_MANUALS = "all"
ALL_MANUALS_LABEL = "Todas las gerencias · All"
# The tree's root: the manuals do not name the institution they belong to.
INSTITUTION = "Institución · Institution"
# Example questions per manual when several are served (all of them for one manual).
EXAMPLES_PER_MANUAL = 2
# An output Gradio leaves as it is.
_UNCHANGED = gr.skip()
QUEUE_STATUS_EVERY_S = 5.0
# Gradio's queue analytics (read by its monitoring page only): recomputed every million events, 100 kept.
_QUEUE_ANALYTICS_ENV = {"GRADIO_ANALYTICS_CACHE_FREQUENCY": "1000000", "GRADIO_ANALYTICS_MAX_EVENTS": "100"}

_F = TypeVar("_F", bound=Callable[..., Any])


def hints_evaluated(fn: _F) -> _F:
    """``fn`` with its annotations evaluated once, now, instead of on every event.

    Gradio reads an event function's type hints on every call to find ``gr.Request`` or ``gr.EventData``
    parameters. With postponed annotations (``from __future__ import annotations``) every hint is a string,
    so each call ran ``eval`` on each of them: a fifth of the server's Python time under load.
    """
    fn.__annotations__ = get_type_hints(fn)
    return fn


_MONTHS_SHORT_ES = ["ene", "feb", "mar", "abr", "may", "jun", "jul", "ago", "sep", "oct", "nov", "dic"]
_MONTHS_ES = [
    "enero", "febrero", "marzo", "abril", "mayo", "junio",
    "julio", "agosto", "septiembre", "octubre", "noviembre", "diciembre",
]  # fmt: skip
_SECTION_LABELS = {
    "funciones": "Funciones",
    "objetivo": "Objetivo",
    "organigrama": "Organigrama",
    "modificaciones": "Modificaciones",
    "documento": "Documento",
    "texto": "Texto",
}
# Spanish articles for the nouns that name organisational units; an unknown first word gets none.


class AuthConfigError(AssistantError):
    """Login is switched on but the credentials are missing or malformed."""


class AssistantLike(Protocol):
    """What the UI needs from ``assistant.chain.Assistant``."""

    manuals: list[Manual]

    @property
    def manifest(self) -> dict[str, Any]:
        """The index manifest, stored with every rating."""
        ...

    def ask(
        self, question: str, history: list[tuple[str, str]] | None = None, manual: str | None = None
    ) -> Answer:
        """Answer one question, given the earlier (question, answer) turns; ``manual`` (a code) restricts it."""
        ...


# ---------------------------------------------------------------- text helpers


def esc(text: object) -> str:
    """HTML-escape any value for a text node or a quoted attribute."""
    return html.escape(str(text), quote=True)


def esc_lines(text: str) -> str:
    """Escape ``text`` and turn its line breaks into ``<br>``.

    The chat renders Markdown, where a blank line ends an HTML block; HTML we build must stay on one line.
    """
    return "<br>".join(esc(line.strip()) for line in text.splitlines() if line.strip())


def format_date_es(value: date | None) -> str:
    """``15 de marzo de 2016``, or an empty string."""
    if value is None:
        return ""
    return f"{value.day} de {_MONTHS_ES[value.month - 1]} de {value.year}"


def format_date_short_es(value: date | None) -> str:
    """``2 feb 2015``, or an empty string."""
    if value is None:
        return ""
    return f"{value.day} {_MONTHS_SHORT_ES[value.month - 1]} {value.year}"


# ---------------------------------------------------------------- the organisation


def served_manuals(manuals: Sequence[Manual]) -> list[Manual]:
    """The MOFs the page shows, in the assistant's order: a plain document (minutes, notes) has no units
    and no place in the header, the filter or the org chart, unless nothing else was indexed."""
    with_units = [m for m in manuals if m.units]
    return with_units or list(manuals)


def manual_key(manual: Manual) -> str:
    """What the chat filter passes to ``ask(manual=...)``: the manual's code, or its id when it has none."""
    return manual.code or manual.id


def manual_tag(manual: Manual) -> str:
    """``901 0903 v6``: the short edition stamp of citations and the tree."""
    return " ".join(b for b in (manual.code, f"v{manual.version}" if manual.version is not None else "") if b)


def find_manual(manuals: Sequence[Manual], key: str | None) -> Manual | None:
    """The manual with this id (or, failing that, code), if any."""
    if not key:
        return None
    return next((m for m in manuals if m.id == key), None) or next(
        (m for m in manuals if m.code and m.code == key), None
    )


def root_unit(manual: Manual) -> Unit | None:
    """The unit the others hang from (the Gerencia): the first one without a parent."""
    return next((u for u in manual.units if u.parent is None), manual.units[0] if manual.units else None)


def children(manual: Manual, parent: str) -> list[Unit]:
    """Direct sub-units of ``parent``, in the manual's numbering and then reading order."""
    found = [u for u in manual.units if u.parent == parent]
    order = {u.name: i for i, u in enumerate(manual.units)}
    return sorted(found, key=lambda u: (u.number if u.number is not None else 10_000, order[u.name]))


def groups(manual: Manual) -> list[Unit]:
    """The work groups directly under the root unit (six in the Gerencia's manual)."""
    root = root_unit(manual)
    return children(manual, root.name) if root else []


def ancestors(manual: Manual, unit: Unit) -> list[Unit]:
    """Parents of ``unit`` from the root down (cycle-safe)."""
    chain: list[Unit] = []
    seen = {unit.name}
    current = manual.unit(unit.parent) if unit.parent else None
    while current is not None and current.name not in seen:
        chain.insert(0, current)
        seen.add(current.name)
        current = manual.unit(current.parent) if current.parent else None
    return chain


def unit_label(unit: Unit) -> str:
    """``3. Agencias`` for numbered groups, the bare name otherwise."""
    return f"{unit.number}. {unit.name}" if unit.number is not None else unit.name


def suggested_questions(unit: Unit) -> list[str]:
    """Questions about ``unit`` that its own data can answer, mixing Spanish and English."""
    questions: list[str] = []
    if unit.head:
        questions.append(f"¿Quién dirige {with_article(unit.name)}?")
    if unit.functions:
        questions.append(f"What are the functions of the {unit.name}?")
    if unit.positions:
        questions.append(f"¿Qué puestos tiene {with_article(unit.name)}?")
    if unit.objective:
        questions.append(f"What is the objective of the {unit.name}?")
    return questions[:MAX_SUGGESTIONS]


def example_questions(manual: Manual) -> list[str]:
    """Example questions for an empty chat, two Spanish and two English, drawn from the manual's data."""
    examples: list[str] = []
    units_with_functions = [u for u in groups(manual) if u.functions] or [
        u for u in manual.units if u.functions
    ]
    if units_with_functions:
        unit = units_with_functions[0]
        examples.append(f"¿Cuáles son las funciones {of_article(unit.name)}?")
        # A function line turned into a "who does X?" question shows off unit lookup by duty.
        duty = units_with_functions[-1].functions[0].text.rstrip(". ")
        examples.append(f"¿Quién se encarga de {duty[:1].lower()}{duty[1:]}?")
    with_positions = [u for u in groups(manual) if u.positions]
    if with_positions:
        examples.append(f"Which positions are in the {with_positions[len(with_positions) // 2].name}?")
    root = root_unit(manual)
    if root is not None and root.objective:
        examples.append(f"What is the objective of the {root.name}?")
    return examples


def corpus_examples(manuals: Sequence[Manual], per_manual: int = EXAMPLES_PER_MANUAL) -> list[str]:
    """Example questions for an empty chat: all of one manual's, or a Spanish and an English one of each."""
    if len(manuals) == 1:
        return example_questions(manuals[0])
    examples: list[str] = []
    for manual in manuals:
        own = example_questions(manual)
        spanish = [q for q in own if q.startswith("¿")]
        english = [q for q in own if not q.startswith("¿")]
        mixed = [q for pair in zip(spanish, english, strict=False) for q in pair] or own
        examples += [q for q in mixed if q not in examples][:per_manual]
    return examples


def header_html(manuals: Manual | Sequence[Manual]) -> str:
    """The page header: what the assistant covers and which edition of each manual it quotes."""
    if isinstance(manuals, Manual):
        manuals = [manuals]
    if len(manuals) > 1:
        return _corpus_header_html(manuals)
    manual = manuals[0]
    root = root_unit(manual)
    scope = root.name if root else manual.title
    facts = []
    if manual.code:
        facts.append(f"<span class='fact'><b>Código</b> {esc(manual.code)}</span>")
    if manual.version is not None:
        facts.append(f"<span class='fact'><b>Versión</b> {esc(manual.version)}</span>")
    if manual.effective_date:
        facts.append(
            f"<span class='fact'><b>Vigente desde</b> {esc(format_date_es(manual.effective_date))}</span>"
        )
    if manual.authorized_by:
        facts.append(f"<span class='fact'><b>Autorizado</b> {esc(manual.authorized_by)}</span>")
    return (
        "<header class='mof-header'>"
        f"<div class='mof-kicker'>Manual de Organización y Funciones · {esc(scope)}</div>"
        "<h1>Asistente del MOF <span class='en'>· MOF assistant</span></h1>"
        f"<div class='mof-facts'>{''.join(facts)}</div>"
        "<p class='mof-lede'>Pregunte en español o en inglés; cada respuesta cita las líneas del manual. "
        "<span class='en'>Ask in Spanish or English; every answer quotes the manual.</span></p>"
        "</header>"
    )


def _corpus_header_html(manuals: Sequence[Manual]) -> str:
    chips = []
    for manual in manuals:
        bits = [
            esc(b) for b in (manual.code, f"v{manual.version}" if manual.version is not None else "") if b
        ]
        if manual.effective_date:
            bits.append(
                f"<span title='Vigente desde · In force since'>{esc(format_date_short_es(manual.effective_date))}</span>"
            )
        chips.append(
            f"<li class='manual' data-manual='{esc(manual.id)}'><b>{esc(manual.gerencia)}</b> "
            f"<span class='edition'>{' · '.join(bits)}</span></li>"
        )
    return (
        "<header class='mof-header'>"
        f"<div class='mof-kicker'>Manuales de Organización y Funciones · {len(manuals)} gerencias</div>"
        "<h1>Asistente del MOF <span class='en'>· MOF assistant</span></h1>"
        f"<ul class='mof-corpus' aria-label='Manuales · Manuals'>{''.join(chips)}</ul>"
        "<p class='mof-lede'>Pregunte en español o en inglés; cada respuesta cita las líneas del manual, "
        "con su código y versión. "
        "<span class='en'>Ask in Spanish or English; every answer quotes the manual it comes from.</span></p>"
        "</header>"
    )


def _positions_html(unit: Unit) -> str:
    if not unit.positions:
        return ""
    items = "".join(
        f"<li class='position{' head' if p == unit.head else ''}'>{esc(p)}</li>" for p in unit.positions
    )
    return (
        f"<li class='positions'><details><summary>Puestos · Positions ({len(unit.positions)})</summary>"
        f"<ul>{items}</ul></details></li>"
    )


def _tree_node(manual: Manual, unit: Unit, depth: int, seen: set[str], opened: bool) -> str:
    seen.add(unit.name)
    subs = [u for u in children(manual, unit.name) if u.name not in seen]
    inner = "".join(_tree_node(manual, u, depth + 1, seen, False) for u in subs) + _positions_html(unit)
    head = f"<span class='node-head'>{esc(unit.head)}</span>" if unit.head else ""
    # A gerencia names its manual's edition, since several manuals sit side by side under the root.
    tag = (
        f"<span class='node-tag'>{esc(manual_tag(manual))}</span>"
        if depth == 0 and manual_tag(manual)
        else ""
    )
    node = (
        f"<button type='button' class='node depth-{min(depth, 3)}' data-manual='{esc(manual.id)}' "
        f"data-unit='{esc(unit.name)}'>{esc(unit_label(unit))}</button>{tag}{head}"
    )
    return f"<li><details{' open' if opened else ''}><summary>{node}</summary><ul>{inner}</ul></details></li>"


def org_tree_html(manuals: Manual | Sequence[Manual], selected: str | None = None) -> str:
    """The organisation as nested lists: institution → gerencias → units → positions.

    Unit names are buttons carrying (manual id, unit name), the key of a unit everywhere on the page: two
    manuals may have units of the same name. The ``selected`` manual (by id; the first by default) starts
    unfolded down to its groups; the others start folded.
    """
    if isinstance(manuals, Manual):
        manuals = [manuals]
    chosen = find_manual(manuals, selected) or (manuals[0] if manuals else None)
    body = []
    for manual in manuals:
        seen: set[str] = set()
        roots = [u for u in manual.units if u.parent is None or manual.unit(u.parent) is None]
        body += [_tree_node(manual, u, 0, seen, manual is chosen) for u in roots if u.name not in seen]
    return (
        "<nav class='org-tree' aria-label='Organigrama'><ul><li><details open>"
        f"<summary><span class='node root'>{esc(INSTITUTION)}</span></summary>"
        f"<ul>{''.join(body)}</ul></details></li></ul></nav>"
    )


def org_chart_html(manual: Manual) -> str:
    """The manual's org chart as a picture (SVG drawn from the parsed units); boxes select their unit."""
    return f"<figure class='org-chart-wrap'>{org_chart_svg(manual)}</figure>"


# Clicking a unit name selects it instead of folding its branch; the arrow still folds.
TREE_JS = """
element.addEventListener('click', (e) => {
  const btn = e.target.closest('button[data-unit]');
  if (!btn) return;
  e.preventDefault();
  element.querySelectorAll('button.node.selected').forEach((b) => b.classList.remove('selected'));
  btn.classList.add('selected');
  trigger('click', {manual: btn.dataset.manual, unit: btn.dataset.unit});
});
"""

# A box of the SVG chart selects its unit, like the tree's buttons.
CHART_JS = """
element.addEventListener('click', (e) => {
  const box = e.target.closest('g[data-unit]');
  const svg = box && box.closest('svg[data-manual]');
  if (!box || !svg) return;
  trigger('click', {manual: svg.dataset.manual, unit: box.dataset.unit});
});
"""


def unit_card_html(manual: Manual, unit: Unit | None) -> str:
    """A card with everything the manual says about one unit."""
    if unit is None:
        return "<article class='unit-card empty'>Elija una unidad en el organigrama. · Pick a unit.</article>"
    crumbs = " › ".join(esc(u.name) for u in ancestors(manual, unit))
    parts = [f"<div class='crumbs'>{crumbs}</div>" if crumbs else ""]
    parts.append(f"<h3>{esc(unit_label(unit))}</h3>")
    if unit.head:
        parts.append(f"<p class='unit-head'>Dirige · Head: <b>{esc(unit.head)}</b></p>")
    parent = manual.unit(unit.parent) if unit.parent else None
    if unit.objective:
        parts.append(f"<h4>Objetivo · Objective</h4><p class='objective'>{esc(unit.objective)}</p>")
    if unit.functions:
        rows = "".join(
            f"<li><span class='numeral'>{esc(f.numeral)}.</span> {esc(f.text)}</li>" for f in unit.functions
        )
        parts.append(
            f"<h4>Funciones · Functions ({len(unit.functions)})</h4><ol class='functions'>{rows}</ol>"
        )
    if (
        not unit.objective
        and not unit.functions
        and parent is not None
        and (parent.objective or parent.functions)
    ):
        parts.append(
            f"<p class='shared'>Comparte el objetivo y las funciones de <b>{esc(parent.name)}</b>. "
            f"<span class='en'>Shares the objective and functions of {esc(parent.name)}.</span></p>"
        )
    if unit.positions:
        chips = "".join(
            f"<li class='chip{' head' if p == unit.head else ''}'>{esc(p)}</li>" for p in unit.positions
        )
        parts.append(f"<h4>Puestos · Positions ({len(unit.positions)})</h4><ul class='chips'>{chips}</ul>")
    subs = children(manual, unit.name)
    if subs:
        names = "".join(f"<li>{esc(unit_label(u))}</li>" for u in subs)
        parts.append(f"<h4>Dependencias · Sub-units</h4><ul class='subs'>{names}</ul>")
    return f"<article class='unit-card'>{''.join(parts)}</article>"


def tour_html(manual: Manual, step: int) -> str:
    """One step of the guided tour through the groups, with progress dots."""
    steps = groups(manual)
    if not steps:
        return "<section class='tour'>El manual no define grupos de trabajo.</section>"
    step = max(0, min(step, len(steps) - 1))
    unit = steps[step]
    dots = "".join(f"<span class='dot{' on' if i == step else ''}'></span>" for i in range(len(steps)))
    subs = children(manual, unit.name)
    facts = []
    if unit.head:
        facts.append(f"Dirige · Head: <b>{esc(unit.head)}</b>")
    if unit.positions:
        facts.append(f"{len(unit.positions)} puestos · positions")
    if unit.functions:
        facts.append(f"{len(unit.functions)} funciones · functions")
    if subs:
        facts.append("Incluye · Includes: " + ", ".join(esc(u.name) for u in subs))
    return (
        "<section class='tour'>"
        f"<div class='tour-step'>Paso {step + 1} de {len(steps)} · Step {step + 1} of {len(steps)}"
        f"<span class='dots'>{dots}</span></div>"
        f"<h3>{esc(unit_label(unit))}</h3>"
        f"<p>{esc(unit.objective) if unit.objective else ''}</p>"
        f"<p class='tour-facts'>{' · '.join(facts)}</p>"
        "</section>"
    )


# ---------------------------------------------------------------- answers


def _matching_hit(citation: Citation, sources: list[Hit]) -> Hit | None:
    for hit in sources:
        c = hit.chunk
        if c.unit == citation.unit and c.section == citation.section and c.numeral == citation.numeral:
            return hit
    return next((h for h in sources if citation.quote and citation.quote in h.chunk.quote), None)


def with_edition(citation: Citation, manuals: Sequence[Manual] = ()) -> Citation:
    """``citation`` with its manual's code, version and gerencia, looked up by manual id when missing."""
    if citation.manual_code and citation.version is not None and citation.gerencia:
        return citation
    manual = find_manual(manuals, citation.manual)
    if manual is None:
        return citation
    return citation.model_copy(
        update={
            "manual_code": citation.manual_code or manual.code,
            "version": citation.version if citation.version is not None else manual.version,
            "gerencia": citation.gerencia or manual.gerencia,
        }
    )


def citation_label(citation: Citation) -> str:
    """``901 0903 v6 · Área de Recepción de Solicitudes · función iii`` (``· Objetivo`` and so on)."""
    edition = " ".join(
        b for b in (citation.manual_code, f"v{citation.version}" if citation.version is not None else "") if b
    )
    bits = [edition] if edition else []
    bits.append(citation.unit or citation.gerencia or citation.manual)
    if citation.section == "funciones" and citation.numeral:
        bits.append(f"función {citation.numeral}")
    else:
        bits.append(_SECTION_LABELS.get(citation.section, citation.section))
        if citation.numeral:
            bits.append(citation.numeral)
    return " · ".join(bits)


def citations_html(answer: Answer, manuals: Sequence[Manual] = ()) -> str:
    """The citations under an answer; each opens to the source excerpt it was quoted from."""
    if not answer.citations:
        return ""
    items = []
    for n, cited in enumerate(answer.citations, start=1):
        citation = with_edition(cited, manuals)
        hit = _matching_hit(cited, answer.sources)
        excerpt = hit.chunk.text if hit else citation.quote
        manual = find_manual(manuals, citation.manual)
        source = manual.label if manual else citation.gerencia or citation.manual
        items.append(
            "<details class='cite'>"
            f"<summary><span class='cite-n'>{n}</span> "
            f"<span class='cite-where'>{esc(citation_label(citation))}</span>"
            f"<span class='cite-quote'>“{esc_lines(citation.quote)}”</span></summary>"
            f"<div class='excerpt'><div class='excerpt-text'>{esc_lines(excerpt)}</div>"
            f"<div class='excerpt-meta'>Manual {esc(source)} · "
            f"relevancia {citation.score:.2f}</div></div>"
            "</details>"
        )
    return f"<div class='cites'><div class='cites-title'>Fuentes · Sources</div>{''.join(items)}</div>"


def render_answer(answer: Answer, manuals: Sequence[Manual] = ()) -> str:
    """The full assistant message: the answer, the fallback note if any, and the citations.

    ``manuals`` fill in a citation's code and version when the engine did not set them.
    """
    parts = [answer.answer.strip()]
    if answer.fallback_reason:
        parts.append(f"<div class='fallback-note'>ⓘ {esc(FALLBACK_NOTE)}</div>")
    cites = citations_html(answer, manuals)
    if cites:
        parts.append(cites)
    return "\n\n".join(parts)


def stream_pieces(text: str, max_updates: int = 8) -> Iterator[str]:
    """Growing prefixes of ``text`` ending on word boundaries, at most ``max_updates`` of them."""
    tokens = re.findall(r"\S+\s*", text)
    if not tokens:
        return
    step = max(1, -(-len(tokens) // max_updates))
    for end in range(step, len(tokens) + step, step):
        yield "".join(tokens[:end]).rstrip()


# ---------------------------------------------------------------- chat handlers


@dataclass
class ChatSession:
    """One browser tab's conversation, kept on the server (never trusted from the page)."""

    messages: list[dict[str, str]] = field(default_factory=list)
    turns: list[tuple[str, str]] = field(default_factory=list)
    answers: dict[int, Answer] = field(default_factory=dict)  # message index → answer
    feedback: dict[int, int] = field(default_factory=dict)  # message index → feedback row id
    last_feedback: int | None = None
    manual: str | None = None  # the chat filter: a manual's code for ``ask(manual=...)``, None for all


class ChatController:
    """The chat's behaviour, independent of Gradio's components so it can be unit-tested.

    An answer is shown in steps (a placeholder, then the text growing word by word) only while nobody else
    is being answered or waiting in the queue. Under load the steps would cost everyone time and show nothing
    the final message does not, so each answer is then sent once, complete; an answer already being typed
    out stops the effect and is sent whole as soon as someone else is waiting.
    """

    # Where every answered question is logged for the insight tab (None: not logged). Set by build_app.
    query_log: QueryLog | None = None

    def __init__(
        self,
        assistant: AssistantLike,
        store: FeedbackStore,
        settings: Settings,
        stream_delay_s: float | None = None,
        waiting: Callable[[], int] | None = None,
    ) -> None:
        """Keep references only; the assistant is already loaded.

        ``waiting`` counts the requests queued and not yet started (Gradio's queue, once the app is built).
        """
        self.assistant = assistant
        self.store = store
        self.settings = settings
        ui = settings.ui
        self.stream_delay_s = ui.stream_delay_ms / 1000 if stream_delay_s is None else stream_delay_s
        self.stream_updates = ui.stream_updates
        self.waiting = waiting or (lambda: 0)
        self._active = 0
        self._active_lock = threading.Lock()

    def busy(self) -> bool:
        """Whether another answer is being prepared or waits to be started."""
        with self._active_lock:
            if self._active > 1:
                return True
        return self.waiting() > 0

    @hints_evaluated
    def respond(
        self, message: Any, session: ChatSession, request: gr.Request | None = None
    ) -> Iterator[tuple[list[dict[str, str]], ChatSession | Any]]:
        """Ask the assistant and stream the answer into the conversation; errors become chat messages.

        The session object is updated in place and handed to Gradio once, with the final message: storing
        a State output costs the server more than rendering a message.
        """
        with self._active_lock:
            self._active += 1
        try:
            yield from self._respond(message, session, request)
        finally:
            with self._active_lock:
                self._active -= 1

    def _respond(
        self, message: Any, session: ChatSession, request: gr.Request | None = None
    ) -> Iterator[tuple[list[dict[str, str]], ChatSession | Any]]:
        question = message if isinstance(message, str) else ""
        # The echo is what the user typed minus control characters (NUL, escapes), which only garble the page.
        echo = _CONTROL.sub(" ", question[: MAX_ECHO_CHARS + 1]).strip()
        echo = echo if len(echo) <= MAX_ECHO_CHARS else echo[:MAX_ECHO_CHARS] + "…"
        session.messages.append({"role": "user", "content": echo})
        session.messages.append({"role": "assistant", "content": THINKING})
        index = len(session.messages) - 1
        if not self.busy():
            yield session.messages, _UNCHANGED
        # Only a filtered question names a manual, so an engine without the parameter still answers the rest.
        only = {"manual": session.manual} if session.manual else {}
        try:
            answer = self.assistant.ask(message, history=list(session.turns), **only)
        except InvalidQuestionError as exc:
            session.messages[index] = {"role": "assistant", "content": f"⚠ {exc}"}
            log.info("question rejected: %s", exc)
            yield session.messages, session
            return
        except AssistantError as exc:
            session.messages[index] = {"role": "assistant", "content": f"⚠ {exc}"}
            log.error("assistant failed: %s", exc)
            yield session.messages, session
            return
        except Exception:
            log.exception("unexpected error while answering")
            session.messages[index] = {
                "role": "assistant",
                "content": "⚠ Error interno; inténtelo de nuevo. · Internal error; please try again.",
            }
            yield session.messages, session
            return
        self._log(answer, getattr(request, "username", None))
        if self.stream_updates and not self.busy():
            for partial in stream_pieces(answer.answer, self.stream_updates):
                if self.busy():
                    break
                session.messages[index] = {"role": "assistant", "content": partial + " ▍"}
                yield session.messages, _UNCHANGED
                if self.stream_delay_s:
                    time.sleep(self.stream_delay_s)
        session.messages[index] = {
            "role": "assistant",
            "content": render_answer(answer, self.assistant.manuals),
        }
        session.answers[index] = answer
        session.turns.append((answer.question, answer.answer))
        yield session.messages, session

    def _log(self, answer: Answer, user: str | None = None) -> None:
        if self.query_log is not None:
            # Queued, never waited for; the user name only when login is on (else there is none to trust).
            named = user if self.settings.ui.auth_enabled else None
            self.query_log.record(answer, user=named, channel="chat")
        if self.settings.log_questions:
            log.info(
                "answered question=%r lang=%s answered=%s engine=%s citations=%d latency_ms=%.0f",
                answer.question, answer.language, answer.answered, answer.engine,
                len(answer.citations), answer.latency_ms,
            )  # fmt: skip
        else:
            log.info(
                "answered chars=%d lang=%s answered=%s engine=%s citations=%d latency_ms=%.0f",
                len(answer.question), answer.language, answer.answered, answer.engine,
                len(answer.citations), answer.latency_ms,
            )  # fmt: skip

    def rate(self, session: ChatSession, index: int, liked: Any) -> int | None:
        """Record 👍 (``liked`` true) or 👎 (false) on the answer at ``index``; anything else withdraws it."""
        answer = session.answers.get(index)
        if answer is None:
            return None  # an error message or a stale index: nothing to rate
        rating: Rating | None = "up" if liked is True else "down" if liked is False else None
        row_id = session.feedback.get(index)
        if rating is None:
            if row_id is not None:
                self.store.delete(row_id)
                del session.feedback[index]
            session.last_feedback = None
            return None
        if row_id is None:
            row_id = self.store.add(answer, rating, manifest=self.assistant.manifest)
            session.feedback[index] = row_id
        else:
            self.store.set_rating(row_id, rating)
        session.last_feedback = row_id
        return row_id

    def comment(self, session: ChatSession, text: str) -> bool:
        """Attach ``text`` to the latest rating; False when there is no rating to attach it to."""
        if session.last_feedback is None or not text.strip():
            return False
        return self.store.set_comment(session.last_feedback, text[:2000])

    @staticmethod
    def reset(manual: str | None = None) -> ChatSession:
        """A fresh conversation, keeping the manual filter."""
        return ChatSession(manual=manual)

    def set_filter(self, session: ChatSession, choice: str | None) -> ChatSession:
        """Restrict the session's next questions to the manual with this code (``ALL_MANUALS``: none)."""
        codes = {manual_key(m) for m in self.assistant.manuals}
        session.manual = choice if choice in codes else None
        return session


# ---------------------------------------------------------------- login


@dataclass(frozen=True)
class UserAccount:
    """A login: name, password and whether the user is an admin (sees the insight tab and its API)."""

    name: str
    password: str
    admin: bool = False


def load_users(ui: UISettings, environ: Mapping[str, str] | None = None) -> list[UserAccount]:
    """Users from ``ASSISTANT_UI_USERS`` ("ana:pass:admin,luis:pass2"), else from ``ui.auth_file`` lines.

    An entry is ``user:password`` with an optional trailing role, ``:admin`` or ``:user``; any other colon
    belongs to the password.
    """
    env = os.environ if environ is None else environ
    raw = env.get(USERS_ENV, "").strip()
    if raw:
        entries = [
            (f"{USERS_ENV} entry {i}", e.strip()) for i, e in enumerate(raw.split(","), 1) if e.strip()
        ]
    elif ui.auth_file is not None:
        if not ui.auth_file.is_file():
            raise AuthConfigError(
                f"The login file {ui.auth_file} does not exist: create it with one user:password per line, "
                f"or set {USERS_ENV}."
            )
        lines = ui.auth_file.read_text(encoding="utf-8").splitlines()
        entries = [
            (f"{ui.auth_file} line {i}", line.strip())
            for i, line in enumerate(lines, 1)
            if line.strip() and not line.lstrip().startswith("#")
        ]
    else:
        entries = []
    users: list[UserAccount] = []
    for where, entry in entries:
        user, sep, password = entry.partition(":")
        role = "user"
        head, sep2, tail = password.rpartition(":")
        if sep2 and head and tail.strip().lower() in ROLES:
            password, role = head, tail.strip().lower()
        if not sep or not user.strip() or not password:
            # Name the place, never the content: the line may hold a password.
            raise AuthConfigError(f"{where} is not of the form user:password[:admin]; fix it and restart.")
        users.append(UserAccount(user.strip(), password, admin=role == "admin"))
    return users


def load_credentials(ui: UISettings, environ: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """The (user, password) pairs of ``load_users``."""
    return [(u.name, u.password) for u in load_users(ui, environ)]


def admin_names(ui: UISettings, environ: Mapping[str, str] | None = None) -> frozenset[str]:
    """The admins' user names; none while login is off (an anonymous visitor is never an admin)."""
    if not ui.auth_enabled:
        return frozenset()
    return frozenset(u.name for u in load_users(ui, environ) if u.admin)


def make_auth(ui: UISettings, environ: Mapping[str, str] | None = None) -> Callable[[str, str], bool] | None:
    """The login check for ``launch(auth=...)``, or None when login is off; refuses on-but-empty."""
    if not ui.auth_enabled:
        return None
    users = load_credentials(ui, environ)
    if not users:
        raise AuthConfigError(
            f"Login is on (ASSISTANT_UI__AUTH_ENABLED=true) but no users are configured: set {USERS_ENV}="
            "'user:password' or ASSISTANT_UI__AUTH_FILE to a file of user:password lines."
        )
    table = [(u.encode(), p.encode()) for u, p in users]

    def check(username: str, password: str) -> bool:
        ok = False
        # Compare against every entry in constant time so timing does not reveal valid user names.
        for user, secret in table:
            match = hmac.compare_digest(user, username.encode()) & hmac.compare_digest(
                secret, password.encode()
            )
            ok |= match
        return ok

    return check


# ---------------------------------------------------------------- the app

CSS = """
.gradio-container { max-width: 1120px !important; margin: 0 auto; }
.mof-header { padding: 18px 22px; border-radius: 14px; margin-bottom: 4px;
  background: linear-gradient(120deg, #0f3d66 0%, #1d6fa5 100%); color: #fff; }
.mof-header, .mof-header * { color: #fff !important; }
.mof-header h1 { margin: 2px 0 8px; font-size: 1.6rem; }
.mof-header .en { opacity: .75; font-weight: 400; }
.mof-kicker { text-transform: uppercase; letter-spacing: .06em; font-size: .78rem; opacity: .85; }
.mof-facts { display: flex; flex-wrap: wrap; gap: 8px; margin-bottom: 8px; }
.mof-facts .fact { background: rgba(255,255,255,.16); border-radius: 999px; padding: 3px 12px;
  font-size: .85rem; }
.mof-lede { margin: 0; font-size: .92rem; opacity: .95; }
.mof-corpus { list-style: none; padding: 0; margin: 0 0 8px; display: flex; flex-wrap: wrap; gap: 6px 8px; }
.mof-corpus .manual { background: rgba(255,255,255,.16); border-radius: 999px; padding: 3px 12px;
  font-size: .85rem; }
.mof-corpus .edition { opacity: .85; margin-left: 4px; }
.cites { margin-top: 10px; border-top: 1px solid var(--border-color-primary); padding-top: 8px; }
.cites-title { font-size: .75rem; text-transform: uppercase; letter-spacing: .05em; opacity: .7;
  margin-bottom: 4px; }
details.cite { margin: 4px 0; border-radius: 8px; background: var(--background-fill-secondary);
  padding: 6px 10px; }
details.cite summary { cursor: pointer; line-height: 1.4; }
.cite-n { display: inline-block; min-width: 1.4em; text-align: center; border-radius: 999px;
  font-size: .75rem;
  background: #1d6fa5; color: #fff; margin-right: 4px; }
.cite-where { font-weight: 600; }
.cite-quote { display: block; font-style: italic; margin-left: 1.9em; }
.excerpt { margin: 6px 0 2px 1.9em; padding-left: 10px; border-left: 3px solid #1d6fa5; font-size: .9rem; }
.excerpt-meta { font-size: .75rem; opacity: .65; margin-top: 4px; }
.fallback-note { font-size: .78rem; opacity: .7; margin-top: 6px; }
.org-tree ul { list-style: none; padding-left: 18px; margin: 2px 0; }
.org-tree > ul { padding-left: 0; }
.org-tree summary { cursor: pointer; padding: 2px 0; }
.org-tree button.node { border: 1px solid var(--border-color-primary);
  background: var(--background-fill-primary);
  border-radius: 8px; padding: 3px 10px; cursor: pointer; font-weight: 600; }
.org-tree button.node:hover { border-color: #1d6fa5; }
.org-tree button.node.selected { background: #1d6fa5; color: #fff; border-color: #1d6fa5; }
.org-tree button.node { font-size: .9rem; }
.org-tree button.depth-0 { font-size: 1rem; }
.org-tree .node.root { font-weight: 700; font-size: .85rem; text-transform: uppercase; letter-spacing: .05em;
  opacity: .75; }
.org-tree .node-tag { font-size: .72rem; margin-left: 6px; padding: 1px 7px; border-radius: 999px;
  background: var(--background-fill-secondary); opacity: .85; white-space: nowrap; }
.org-chart-wrap { margin: 0; overflow-x: auto; }
.org-chart-wrap svg { display: block; margin: 0 auto; }
.org-chart-wrap g[data-unit] { cursor: pointer; }
.org-chart-wrap g[data-unit]:hover rect { stroke-width: 2.4; }
.org-tree .node-head { display: block; font-size: .78rem; opacity: .65; margin: 0 0 2px 20px; }
.org-tree li.positions summary { font-size: .82rem; opacity: .8; }
.org-tree li.position { font-size: .85rem; padding: 1px 0; }
.org-tree li.position::before { content: "• "; opacity: .5; }
.org-tree li.position.head { font-weight: 600; }
.unit-card { border: 1px solid var(--border-color-primary); border-radius: 14px; padding: 16px 20px; }
.unit-card h3 { margin: 2px 0 6px; }
.unit-card h4 { margin: 14px 0 6px; font-size: .8rem; text-transform: uppercase; letter-spacing: .05em;
  opacity: .7; }
.unit-card .crumbs { font-size: .8rem; opacity: .65; }
.unit-card ol.functions { list-style: none; padding-left: 0; }
.unit-card ol.functions li { margin: 3px 0; display: flex; gap: .3em; }
.unit-card .numeral { flex: 0 0 2.6em; font-weight: 600; color: #1d6fa5; }
.unit-card ul.chips { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: 6px; }
.unit-card .chip { border-radius: 999px; padding: 2px 10px; background: var(--background-fill-secondary);
  font-size: .85rem; }
.unit-card .chip.head { background: #1d6fa5; color: #fff; }
.tour { border-radius: 14px; padding: 14px 20px; background: var(--background-fill-secondary); }
.tour h3 { margin: 6px 0; }
.tour-step { font-size: .8rem; text-transform: uppercase; letter-spacing: .05em; opacity: .75;
  display: flex; justify-content: space-between; align-items: center; }
.tour .dot { display: inline-block; width: 9px; height: 9px; border-radius: 50%; margin-left: 5px;
  background: var(--border-color-primary); }
.tour .dot.on { background: #1d6fa5; }
.tour-facts { font-size: .88rem; opacity: .85; }
button.suggest { justify-content: flex-start; text-align: left; }
"""


# System fonts: the page must render the same offline, and every glyph of a weight from one font.
THEME = gr.themes.Default(
    primary_hue="blue",
    font=("system-ui", "Segoe UI", "Roboto", "Helvetica Neue", "Arial", "sans-serif"),
    font_mono=("ui-monospace", "SFMono-Regular", "Menlo", "Consolas", "monospace"),
)


def build_app(  # noqa: C901 -- one Gradio layout; its event handlers are closures over its blocks
    assistant: AssistantLike,
    settings: Settings,
    store: FeedbackStore | None = None,
    stream_delay_s: float | None = None,
    query_log: QueryLog | None = None,
    environ: Mapping[str, str] | None = None,
) -> gr.Blocks:
    """The Blocks app: a chat tab (with a manual filter) and an onboarding tab over every served manual."""
    if not assistant.manuals:
        raise AssistantError("The assistant has no parsed manual to show: run `make index` and restart.")
    manuals = served_manuals(assistant.manuals)
    several = len(manuals) > 1
    by_id = {m.id: m for m in manuals}
    store = store or FeedbackStore(feedback_url(settings))
    chat = ChatController(assistant, store, settings, stream_delay_s=stream_delay_s)
    # The question log (issue #15): ``query_log`` or the configured one; admins (login on) get its insight tab.
    chat.query_log = query_log if query_log is not None else QueryLog.from_settings(settings)
    admins = admin_names(settings.ui, environ)
    start = manuals[0]
    first = root_unit(start)

    def manual_of(manual_id: str | None) -> Manual:
        return by_id.get(manual_id or "", start)

    def unit_outputs(manual: Manual, name: str | None) -> list[Any]:
        """The unit card and its suggested questions."""
        unit = manual.unit(name) if name else None
        questions = suggested_questions(unit) if unit else []
        buttons = [
            gr.update(value=questions[i], visible=True) if i < len(questions) else gr.update(visible=False)
            for i in range(MAX_SUGGESTIONS)
        ]
        return [unit_card_html(manual, unit), *buttons]

    def manual_outputs(manual: Manual, name: str | None) -> list[Any]:
        """Everything the onboarding tab shows for one manual, with unit ``name`` (default: the top) open."""
        unit = manual.unit(name) if name else None
        unit = unit or root_unit(manual)
        steps = groups(manual)
        return [
            gr.update(value=manual.id),
            0,
            tour_html(manual, 0),
            gr.update(interactive=False),
            gr.update(interactive=len(steps) > 1),
            org_chart_html(manual),
            gr.update(choices=[u.name for u in manual.units], value=unit.name if unit else None),
            *unit_outputs(manual, unit.name if unit else None),
        ]

    @hints_evaluated
    def on_like(session: ChatSession, evt: gr.LikeData) -> tuple[ChatSession, Any, Any]:
        index = evt.index[0] if isinstance(evt.index, list | tuple) else evt.index
        row_id = chat.rate(session, int(index), evt.liked)
        if row_id is None:
            return session, gr.update(visible=False), gr.update(value="")
        hint = (
            "¿Qué faltó o estaba mal? (opcional) · What was missing or wrong? (optional)"
            if evt.liked is False
            else "¿Algo que añadir? (opcional) · Anything to add? (optional)"
        )
        return session, gr.update(visible=True), gr.update(value="", placeholder=hint)

    @hints_evaluated
    def on_comment(session: ChatSession, text: str) -> tuple[Any, Any]:
        if chat.comment(session, text):
            gr.Info("¡Gracias por su comentario! · Thanks for your feedback!")
        return gr.update(visible=False), gr.update(value="")

    @hints_evaluated
    def on_new(choice: str | None) -> tuple[list[dict[str, str]], ChatSession, Any, str]:
        return [], chat.set_filter(chat.reset(), choice), gr.update(visible=False), ""

    @hints_evaluated
    def on_filter(session: ChatSession, choice: str | None) -> ChatSession:
        return chat.set_filter(session, choice)

    @hints_evaluated
    def pick_manual(manual_id: str | None) -> list[Any]:
        return manual_outputs(manual_of(manual_id), None)

    @hints_evaluated
    def pick_unit(manual_id: str | None, name: str | None) -> list[Any]:
        return unit_outputs(manual_of(manual_id), name)

    @hints_evaluated
    def example_text(evt: gr.SelectData) -> str:
        return str(evt.value.get("text", "")) if isinstance(evt.value, dict) else ""

    @hints_evaluated
    def unit_click(current: str | None, evt: gr.EventData) -> list[Any]:
        """A unit chosen in the tree or the chart: its manual (when another) and its card."""
        manual = by_id.get(str(getattr(evt, "manual", "")))
        name = getattr(evt, "unit", None)
        if manual is None or not isinstance(name, str) or manual.unit(name) is None:
            return [_UNCHANGED] * (7 + 1 + MAX_SUGGESTIONS)
        if manual.id != current:
            return manual_outputs(manual, name)
        return [*[_UNCHANGED] * 6, gr.update(value=name), *unit_outputs(manual, name)]

    @hints_evaluated
    def tour_move(manual_id: str | None, step: int, delta: int) -> tuple[int, str, Any, Any]:
        manual = manual_of(manual_id)
        last = len(groups(manual)) - 1
        step = max(0, min(step + delta, last))
        return (
            step,
            tour_html(manual, step),
            gr.update(interactive=step > 0),
            gr.update(interactive=step < last),
        )

    @hints_evaluated
    def tour_prev(manual_id: str | None, step: int) -> tuple[int, str, Any, Any]:
        return tour_move(manual_id, step, -1)

    @hints_evaluated
    def tour_next(manual_id: str | None, step: int) -> tuple[int, str, Any, Any]:
        return tour_move(manual_id, step, +1)

    @hints_evaluated
    def tour_open(manual_id: str | None, step: int) -> list[Any]:
        manual = manual_of(manual_id)
        steps = groups(manual)
        if not steps:
            return [_UNCHANGED] * (2 + MAX_SUGGESTIONS)
        unit = steps[max(0, min(step, len(steps) - 1))]
        return [gr.update(value=unit.name), *unit_outputs(manual, unit.name)]

    @hints_evaluated
    def ask_suggestion(
        text: str, manual_id: str | None, session: ChatSession
    ) -> tuple[str, Any, Any, ChatSession]:
        # A unit's question is asked of its own manual: another gerencia may have a unit of the same name.
        choice = manual_key(manual_of(manual_id)) if several else ALL_MANUALS
        return text, gr.Tabs(selected="chat"), gr.update(value=choice), chat.set_filter(session, choice)

    filter_choices = [(ALL_MANUALS_LABEL, ALL_MANUALS), *((m.label, manual_key(m)) for m in manuals)]
    scope = "las gerencias" if several else with_article(start.gerencia)
    with gr.Blocks(title="Asistente del MOF", analytics_enabled=False) as app:
        chat.waiting = lambda: queued(app)
        session = gr.State(ChatSession())
        gr.HTML(header_html(manuals), elem_id="mof-header")
        with gr.Tabs(selected="chat") as tabs:
            with gr.Tab("Chat", id="chat"):
                chat_filter = gr.Dropdown(
                    choices=filter_choices,
                    value=ALL_MANUALS,
                    label="Manual · Filter",
                    visible=several,
                    elem_id="chat-filter",
                )
                chatbot = gr.Chatbot(
                    elem_id="chatbot",
                    height=520,
                    buttons=["copy"],
                    feedback_options=["Like", "Dislike"],
                    examples=[{"text": q} for q in corpus_examples(manuals)],
                    placeholder=f"<b>Pregunte sobre {esc(scope)}</b><br>Ask about the organisation",
                    show_label=False,
                    layout="bubble",
                )
                with gr.Group(visible=False, elem_id="comment-box") as comment_box, gr.Row():
                    comment = gr.Textbox(show_label=False, scale=5, max_lines=3, elem_id="comment")
                    send_comment = gr.Button("Enviar · Send", scale=1, elem_id="send-comment")
                with gr.Row():
                    question = gr.Textbox(
                        placeholder="Escriba su pregunta… · Type your question…",
                        show_label=False,
                        scale=6,
                        autofocus=True,
                        elem_id="question",
                    )
                    ask = gr.Button(
                        "Preguntar · Ask", variant="primary", scale=1, min_width=180, elem_id="ask"
                    )
                new = gr.Button("Nueva conversación · New conversation", size="sm", elem_id="new-chat")
            with gr.Tab("Conoce la organización · Explore the organisation", id="onboarding"):
                book = gr.Dropdown(
                    choices=[(m.label, m.id) for m in manuals],
                    value=start.id,
                    label="Gerencia · Manual",
                    visible=several,
                    elem_id="onboarding-manual",
                )
                tour_step = gr.State(0)
                tour = gr.HTML(tour_html(start, 0), elem_id="tour")
                with gr.Row():
                    prev_btn = gr.Button(
                        "◀ Anterior · Previous", size="sm", interactive=False, elem_id="tour-prev"
                    )
                    open_btn = gr.Button("Ver ficha · Open card", size="sm", elem_id="tour-open")
                    next_btn = gr.Button(
                        "Siguiente · Next ▶",
                        size="sm",
                        interactive=len(groups(start)) > 1,
                        elem_id="tour-next",
                    )
                # The picture first, at full width (it is laid out to be read at ~900 px without scaling);
                # the tree beside the unit card below, as the way to walk the structure and its positions.
                gr.Markdown("### Organigrama · Org chart")
                chart = gr.HTML(org_chart_html(start), js_on_load=CHART_JS, elem_id="org-chart")
                with gr.Row(equal_height=False):
                    with gr.Column(scale=2):
                        gr.Markdown("### Estructura · Structure")
                        tree = gr.HTML(
                            org_tree_html(manuals, start.id), js_on_load=TREE_JS, elem_id="org-tree"
                        )
                    with gr.Column(scale=3):
                        unit_pick = gr.Dropdown(
                            choices=[u.name for u in start.units],
                            value=first.name if first else None,
                            label="Unidad · Unit",
                            elem_id="unit-pick",
                        )
                        card = gr.HTML(unit_card_html(start, first), elem_id="unit-card")
                        gr.Markdown("**Preguntas sugeridas · Suggested questions** — se abren en el chat")
                        first_questions = suggested_questions(first) if first else []
                        suggestions = [
                            gr.Button(
                                first_questions[i] if i < len(first_questions) else "",
                                visible=i < len(first_questions),
                                size="sm",
                                elem_classes=["suggest"],
                                elem_id=f"suggest-{i}",
                            )
                            for i in range(MAX_SUGGESTIONS)
                        ]
            with gr.Tab("Cambios · Changes", id="changes"):
                from assistant.ui_changes import changes_tab  # imports this module: loaded once it exists

                changes_tab(assistant.manuals, settings.as_of)
            if admins:
                from assistant.ui_admin import add_admin_tab, vectorizer_for

                add_admin_tab(
                    app,
                    admins,
                    chat.query_log,
                    store,
                    vectorizer_for(assistant),
                    settings.insight.max_cluster_questions,
                )

        answer_io: dict[str, Any] = {
            "fn": chat.respond,
            "inputs": [question, session],
            "outputs": [chatbot, session],
            "show_progress": "hidden",
        }
        clear_box = {"fn": lambda: "", "outputs": [question], "queue": False, "api_visibility": "private"}
        private: dict[str, Any] = {"queue": False, "api_visibility": "private"}
        # The textbox is read by the answer event first, then cleared; clearing first would send "".
        question.submit(**answer_io, api_name="chat").then(**clear_box)
        ask.click(**answer_io, api_visibility="private").then(**clear_box)
        chatbot.example_select(example_text, None, question, **private).then(
            **answer_io, api_visibility="private"
        ).then(**clear_box)
        chatbot.like(on_like, [session], [session, comment_box, comment], api_visibility="private")
        send_comment.click(on_comment, [session, comment], [comment_box, comment], api_visibility="private")
        comment.submit(on_comment, [session, comment], [comment_box, comment], api_visibility="private")
        # The chatbot's own trash button must forget the server-side conversation too.
        for reset in (new.click, chatbot.clear):
            reset(on_new, chat_filter, [chatbot, session, comment_box, question], **private)
        chat_filter.change(on_filter, [session, chat_filter], session, **private)

        # The manual picker, the tree and the chart each render the whole tab from (manual id, unit name);
        # `.input` (user changes only) keeps these updates from setting off one another.
        manual_view = [book, tour_step, tour, prev_btn, next_btn, chart, unit_pick, card, *suggestions]
        book.input(pick_manual, book, manual_view, **private)
        unit_pick.input(pick_unit, [book, unit_pick], [card, *suggestions], **private)
        tree.click(unit_click, book, manual_view, **private)
        chart.click(unit_click, book, manual_view, **private)
        for button in suggestions:
            button.click(
                ask_suggestion, [button, book, session], [question, tabs, chat_filter, session], **private
            ).then(**answer_io, api_visibility="private").then(**clear_box)
        tour_io = [tour_step, tour, prev_btn, next_btn]
        prev_btn.click(tour_prev, [book, tour_step], tour_io, **private)
        next_btn.click(tour_next, [book, tour_step], tour_io, **private)
        open_btn.click(tour_open, [book, tour_step], [unit_pick, card, *suggestions], **private)
    return app


def queued(app: gr.Blocks) -> int:
    """Requests in the app's queue that have not started yet (0 before the queue exists)."""
    queue = getattr(app, "_queue", None)  # Gradio keeps its queue private; the count is all that is read
    try:
        return len(queue) if queue is not None else 0
    except TypeError:
        return 0


def prepare_process() -> None:
    """One-off process settings for serving, applied once everything long-lived is loaded.

    - Gradio sets matplotlib's backend around every event. Left unset, the first event resolves it by
      importing pyplot: about half a second added to the first user's answer. Set here, it costs nothing.
    - The objects loaded so far (model, index, manual, Gradio app: about 600,000 of them) live as long as
      the process. Frozen out of the garbage collector, they are no longer walked by every full collection,
      which took about 0.4 s each and stopped every request in flight; under load one now takes about 60 ms.
    """
    with contextlib.suppress(ImportError):
        import matplotlib

        matplotlib.use("agg")
    gc.collect()
    gc.freeze()


def _chat_behind(app: gr.Blocks) -> ChatController | None:
    """The ``ChatController`` that answers the app's chat events (its assistant, question log and feedback)."""
    for block_fn in app.fns.values():
        owner = getattr(block_fn.fn, "__self__", None)
        if isinstance(owner, ChatController):
            return owner
    return None


def _assistant_behind(app: gr.Blocks) -> AssistantLike | None:
    """The assistant whose ``ChatController`` answers the app's chat events (for ``serve`` without one)."""
    chat = _chat_behind(app)
    return chat.assistant if chat is not None else None


def serve(
    app: gr.Blocks,
    settings: Settings,
    *,
    prevent_thread_lock: bool = False,
    environ: Mapping[str, str] | None = None,
    assistant: AssistantLike | None = None,
) -> Any:
    """Serve the chat and the HTTP API (``assistant.api``) from one FastAPI app on ``settings.ui``'s address.

    Gradio is mounted at ``/`` on the API's FastAPI app, so ``/v1/…``, ``/api/…``, ``/docs`` and (when on)
    ``/mcp/…`` are matched first and everything else is the chat, with its login. ``assistant`` defaults to
    the one behind the app's chat. Returns the FastAPI app; ``app.close()`` stops the server.
    """
    import uvicorn
    from gradio.http_server import Server

    from assistant.api import create_api

    ui = settings.ui
    auth = make_auth(ui, environ)  # before anything starts: a login misconfiguration must not serve openly
    assistant = assistant if assistant is not None else _assistant_behind(app)
    if assistant is None:
        raise AssistantError("serve() needs the assistant for the API: pass assistant=… .")
    # Gradio's queue rebuilds a pandas table of up to 10,000 past events after every event, for a monitoring
    # page this app keeps off: a third of the server's time under load. Built rarely and kept small instead.
    for name, value in _QUEUE_ANALYTICS_ENV.items():
        os.environ.setdefault(name, value)
    # Queue positions are pushed to waiting clients every few seconds rather than on every change, which
    # sent each waiting client a message whenever any answer started; the chat does not display them.
    app.queue(
        default_concurrency_limit=ui.concurrency_limit,
        max_size=ui.max_queue,
        status_update_rate=QUEUE_STATUS_EVERY_S,
    )
    # The API logs its questions in the chat's question log, and the admins' insight routes read it.
    chat = _chat_behind(app)
    query_log = chat.query_log if chat is not None else None
    server_app = create_api(assistant, settings, query_log=query_log)  # malformed tokens stop here too
    from assistant.insight_api import insight_router
    from assistant.ui_admin import vectorizer_for

    feedback = chat.store if chat is not None else None
    server_app.include_router(
        insight_router(settings, query_log, feedback, vectorizer_for(assistant), environ=environ)
    )
    gr.mount_gradio_app(
        server_app,
        app,
        path="/",
        server_name=ui.host,
        server_port=ui.port,
        root_path=ui.root_path or None,
        auth=auth,
        auth_message="Asistente del MOF · Inicie sesión / Sign in" if auth else None,
        show_error=False,
        ssr_mode=False,
        pwa=False,
        mcp_server=False,
        enable_monitoring=False,
        footer_links=[],
        max_file_size="1mb",
        theme=THEME,
        css=CSS,
    )
    # What Blocks.launch records about the server it starts, so that app.close() stops this one.
    mounted = server_app.routes[-1].app  # type: ignore[attr-defined]
    app.app = app.server_app = mounted
    from assistant.throttle import install_login_guard

    install_login_guard(server_app, mounted, ui)  # throttled logins; no-op when login is off
    prepare_process()
    server = Server(
        config=uvicorn.Config(server_app, host=ui.host, port=ui.port, log_level="warning", access_log=False)
    )
    server.run_in_thread()  # returns once the server listens; fails if the port is taken
    app.server, app.server_name, app.server_port = server, ui.host, ui.port
    app.is_running = app.has_launched = True
    url = f"http://{'localhost' if ui.host == '0.0.0.0' else ui.host}:{ui.port}/"
    log.info("serving the chat on %s and the API on %sv1 (docs: %sdocs)", url, url, url)
    if not prevent_thread_lock:
        app.block_thread()
    return server_app


def launch(settings: Settings) -> None:
    """Load the assistant once and serve the web chat and the API until interrupted."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    make_auth(settings.ui)  # fail on a login misconfiguration before paying for the model load
    from assistant.api import load_tokens
    from assistant.chain import Assistant

    load_tokens(settings.api)  # and on malformed API tokens
    assistant = Assistant.from_settings(settings)
    serve(build_app(assistant, settings), settings, assistant=assistant)
