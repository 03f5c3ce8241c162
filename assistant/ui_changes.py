"""The "Cambios · Changes" tab: what changed between two versions of a manual, and what the manual says changed.

For a chosen code and two of its versions (default: the one before the version in force → the one in force)
it shows the structural diff (``assistant.diff``) with each line marked by colour and symbol — added (+),
removed (−), moved (→), reworded (~), renamed (↻) — and the change-history rows the newer manual itself states
for the versions in between. With a single version of a code it says so and shows the history table.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import gradio as gr

from assistant.diff import ManualDiff, diff_manuals
from assistant.models import HistoryEntry, Manual
from assistant.phrases import say, say_both
from assistant.ui import esc, format_date_es, hints_evaluated, served_manuals
from assistant.versions import Catalogue

# Colour and symbol per kind of change; the symbol carries the meaning without colour too.
MARKS: dict[str, tuple[str, str, str]] = {
    "added": ("+", "#1a7f37", "#e6f4ea"),
    "removed": ("−", "#b42318", "#fdecea"),
    "moved": ("→", "#1d4ed8", "#e8effd"),
    "reworded": ("~", "#9a6700", "#fff4db"),
    "renamed": ("↻", "#6d28d9", "#f1eafd"),
}


def _labels() -> dict[str, str]:
    """The name of each kind of change, "añadido · added" (the ``diff_mark_*`` phrases)."""
    return {
        "added": say_both("diff_mark_added"),
        "removed": say_both("diff_mark_removed"),
        "moved": say_both("diff_mark_moved"),
        "reworded": say_both("diff_mark_reworded"),
        "renamed": say_both("diff_mark_renamed"),
    }


def _mark(kind: str, body: str) -> str:
    symbol, colour, background = MARKS[kind]
    return (
        f'<li class="chg chg-{kind}" data-kind="{kind}" style="list-style:none;margin:3px 0;padding:4px 8px;'
        f'border-left:4px solid {colour};background:{background};border-radius:4px">'
        f'<span class="chg-symbol" title="{esc(_labels()[kind])}" style="color:{colour};font-weight:700;'
        f'display:inline-block;width:1.4em">{symbol}</span>{body}</li>'
    )


def _legend() -> str:
    labels = _labels()
    items = "".join(
        f'<span class="chg-legend-{k}" style="margin-right:14px;color:{c}"><b>{s}</b> {esc(labels[k])}</span>'
        for k, (s, c, _bg) in MARKS.items()
    )
    return f'<div class="chg-legend" style="font-size:.85rem;margin:4px 0 10px">{items}</div>'


def _where(unit: str, numeral: str = "") -> str:
    return f'<span class="chg-where" style="font-weight:600">{esc(unit)}{" " + esc(numeral) if numeral else ""}</span>'


def _section(title: str, rows: list[str]) -> str:
    if not rows:
        return ""
    return f'<h4 style="margin:14px 0 4px">{esc(title)}</h4><ul style="padding-left:0;margin:0">{"".join(rows)}</ul>'


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def diff_html(diff: ManualDiff) -> str:
    """The computed diff, each line marked (colour + symbol); its labels are the ``diff_*`` phrases."""
    if diff.empty:
        none = f"{_capital(say('diff_no_changes', 'es'))} · {_capital(say('diff_no_changes', 'en'))}."
        return f'<p class="chg-empty">{esc(none)}</p>'
    under, similar, was = (
        esc(say_both("diff_under")),
        esc(say_both("diff_similarity")),
        esc(say_both("diff_was")),
    )
    units = (
        [
            _mark("added", f"{_where(u.unit)} <small>({under} {esc(u.parent)})</small>")
            for u in diff.units_added
        ]
        + [_mark("removed", _where(u.unit)) for u in diff.units_removed]
        + [
            _mark(
                "renamed",
                f"{_where(r.from_unit)} → {_where(r.to_unit)} <small>({similar} {r.similarity:.2f})</small>",
            )
            for r in diff.units_renamed
        ]
    )
    positions = (
        [_mark("added", f"{esc(p.position)} <small>[{esc(p.unit)}]</small>") for p in diff.positions_added]
        + [
            _mark("removed", f"{esc(p.position)} <small>[{esc(p.unit)}]</small>")
            for p in diff.positions_removed
        ]
        + [
            _mark("moved", f"{esc(p.position)}: {_where(p.from_unit)} → {_where(p.to_unit)}")
            for p in diff.positions_moved
        ]
    )
    functions = (
        [_mark("added", f"{_where(f.unit, f.numeral)} «{esc(f.text)}»") for f in diff.functions_added]
        + [_mark("removed", f"{_where(f.unit, f.numeral)} «{esc(f.text)}»") for f in diff.functions_removed]
        + [
            _mark(
                "moved",
                f"{_where(m.from_unit, m.from_numeral)} → {_where(m.to_unit, m.to_numeral)} «{esc(m.to_text)}»"
                + (
                    ""
                    if m.similarity == 1.0
                    else f"<br><small>{was}: <del>{esc(m.from_text)}</del> ({m.similarity:.2f})</small>"
                ),
            )
            for m in diff.functions_moved
        ]
        + [
            _mark(
                "reworded",
                f"{_where(r.unit, r.to_numeral)} <del>{esc(r.from_text)}</del><br>"
                f"<ins style='text-decoration:none'>{esc(r.to_text)}</ins> <small>({r.similarity:.2f})</small>",
            )
            for r in diff.functions_reworded
        ]
    )
    objectives = [
        _mark(
            "reworded",
            f"{_where(o.unit)} <del>{esc(o.from_text)}</del><br><ins style='text-decoration:none'>{esc(o.to_text)}</ins>",
        )
        for o in diff.objectives_changed
    ]
    return (
        _legend()
        + _section(say_both("diff_section_units"), units)
        + _section(say_both("diff_section_positions"), positions)
        + _section(say_both("diff_section_functions"), functions)
        + _section(say_both("diff_section_objectives"), objectives)
    )


def history_html(rows: Sequence[HistoryEntry], title: str) -> str:
    """Change-history rows as a table (version, date, what the manual states)."""
    if not rows:
        return ""
    body = "".join(
        f'<tr class="history-row" data-version="{h.version}"><td style="padding:4px 8px;vertical-align:top">'
        f"{h.version}</td><td style='padding:4px 8px;vertical-align:top;white-space:nowrap'>"
        f"{esc(format_date_es(h.date))}</td><td style='padding:4px 8px'>"
        + "<br>".join(f"· {esc(c)}" for c in h.changes)
        + "</td></tr>"
        for h in rows
    )
    return (
        f'<h4 style="margin:16px 0 4px">{esc(title)}</h4><table class="history" style="border-collapse:collapse">'
        "<thead><tr><th style='text-align:left;padding:4px 8px'>Versión</th>"
        "<th style='text-align:left;padding:4px 8px'>Fecha · Date</th>"
        "<th style='text-align:left;padding:4px 8px'>Modificación · Change</th></tr></thead>"
        f"<tbody>{body}</tbody></table>"
    )


def _status(catalogue: Catalogue, manual: Manual) -> str:
    return {
        "in_force": "vigente · in force",
        "superseded": "sustituida · superseded",
        "future": "futura · future",
    }[catalogue.status(manual)]


def version_choices(catalogue: Catalogue, code: str) -> list[tuple[str, int]]:
    """Dropdown choices for one code's versions: ("v10 · 15 de marzo de 2016 · sustituida", 10)."""
    out: list[tuple[str, int]] = []
    for m in catalogue.versions(code):
        if m.version is None or any(v == m.version for _l, v in out):
            continue
        date = format_date_es(m.effective_date)
        out.append((" · ".join(x for x in (f"v{m.version}", date, _status(catalogue, m)) if x), m.version))
    return out


def default_pair(catalogue: Catalogue, code: str) -> tuple[int | None, int | None]:
    """Previous → in force (or the two newest when none is in force yet); one version: (it, it)."""
    versions = [m for m in catalogue.versions(code) if m.version is not None]
    if not versions:
        return None, None
    newer = catalogue.current(code) or versions[-1]
    older = catalogue.predecessor(newer) or newer
    return older.version, newer.version


def changes_html(
    manuals: Sequence[Manual],
    code: str | None,
    old: int | None,
    new: int | None,
    as_of: dt.date | None = None,
) -> str:
    """The tab's content for one code and two of its versions."""
    catalogue = Catalogue(manuals, as_of)
    if not code or code not in catalogue.codes:
        return '<p class="chg-note">Elija un manual · Choose a manual.</p>'
    versions = catalogue.versions(code)
    if not catalogue.has_several(code):
        only = versions[-1]
        note = (
            f'<p class="chg-single">Solo hay una versión de este manual (versión {esc(only.version)}); '
            f"abajo, el historial de cambios que el propio manual declara. · Only one version of this manual "
            f"is served; below, the change history the manual itself states.</p>"
        )
        return note + history_html(only.history, "Historial de cambios · Change history")
    first = catalogue.version(code, old) if old is not None else None
    second = catalogue.version(code, new) if new is not None else None
    if first is None or second is None:
        return '<p class="chg-note">Elija dos versiones · Choose two versions.</p>'
    if first is second or first.version == second.version:
        return '<p class="chg-note">Elija dos versiones distintas · Choose two different versions.</p>'
    flipped = (first.effective_date or dt.date.min, first.version or 0) > (
        second.effective_date or dt.date.min,
        second.version or 0,
    )
    older, newer = (second, first) if flipped else (first, second)
    diff = diff_manuals(older, newer)
    low, high = older.version or 0, newer.version or 0
    stated = [h for h in newer.history if low < h.version <= high]
    head = (
        f'<p class="chg-title" style="margin:0 0 4px"><b>{esc(newer.gerencia)}</b> · {esc(code)}: '
        f"versión {esc(older.version)} ({esc(format_date_es(older.effective_date))}) → "
        f"versión {esc(newer.version)} ({esc(format_date_es(newer.effective_date))})"
        + (" <small>(orden invertido · swapped to oldest first)</small>" if flipped else "")
        + "</p>"
    )
    return (
        head
        + '<div class="chg-diff">'
        + diff_html(diff)
        + "</div>"
        + history_html(stated, "Lo que declara el manual · What the manual states it changed")
    )


def changes_tab(manuals: Sequence[Manual], as_of: dt.date | None = None) -> None:
    """Lay out the tab's components inside the current ``gr.Tab`` and wire their events."""
    shown = served_manuals(manuals)
    catalogue = Catalogue(shown, as_of)
    codes = catalogue.codes
    start = next((c for c in codes if catalogue.has_several(c)), codes[0] if codes else None)

    def label(code: str) -> str:
        newest = catalogue.current(code) or catalogue.versions(code)[-1]
        count = len(version_choices(catalogue, code))
        return f"{newest.gerencia} ({code}) · {count} versión(es)"

    old, new = default_pair(catalogue, start) if start else (None, None)
    choices = version_choices(catalogue, start) if start else []
    several = bool(start and catalogue.has_several(start))
    code_pick = gr.Dropdown(
        choices=[(label(c), c) for c in codes],
        value=start,
        label="Manual · Manual",
        elem_id="changes-manual",
    )
    with gr.Row():
        old_pick = gr.Dropdown(
            choices=choices, value=old, label="Desde · From", visible=several, elem_id="changes-from"
        )
        new_pick = gr.Dropdown(
            choices=choices, value=new, label="Hasta · To", visible=several, elem_id="changes-to"
        )
    view = gr.HTML(changes_html(shown, start, old, new, as_of), elem_id="changes-view")

    @hints_evaluated
    def pick_code(code: str | None) -> tuple[Any, Any, str]:
        if not code:
            return gr.skip(), gr.skip(), changes_html(shown, None, None, None, as_of)
        first, second = default_pair(catalogue, code)
        options = version_choices(catalogue, code)
        visible = catalogue.has_several(code)
        return (
            gr.update(choices=options, value=first, visible=visible),
            gr.update(choices=options, value=second, visible=visible),
            changes_html(shown, code, first, second, as_of),
        )

    @hints_evaluated
    def pick_versions(code: str | None, first: int | None, second: int | None) -> str:
        return changes_html(shown, code, first, second, as_of)

    private: dict[str, Any] = {"queue": False, "api_visibility": "private"}
    code_pick.input(pick_code, code_pick, [old_pick, new_pick, view], **private)
    old_pick.input(pick_versions, [code_pick, old_pick, new_pick], view, **private)
    new_pick.input(pick_versions, [code_pick, old_pick, new_pick], view, **private)
