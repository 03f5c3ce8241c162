"""A structural diff between two versions of one manual, computed from the parsed manuals.

Not from the change-history table: units are matched by name, then a removed unit and an added one are taken
for a rename when they share enough positions and function lines (``RENAME_THRESHOLD``). Within matched
units, and across them, positions and function lines are compared: an identical line in another unit has
*moved*; a line at least ``REWORD_THRESHOLD`` similar in the same unit was *reworded*, in another unit it
*moved* with that rewording. Offices that only repeat their group's objective and functions (the agencies
under "Agencias") are compared on their positions only, so a duty of the group is counted once.

Similarity is the Dice coefficient of the two lines' bags of words (accent-folded, lower case):
``2 × shared words / (words in a + words in b)``, rounded to three decimals, so it can be checked by hand.
Every list is in document order (of the newer manual for what exists there, else of the older one).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from collections.abc import Callable

from pydantic import BaseModel, ConfigDict, Field

from assistant.errors import AssistantError
from assistant.models import Function, Manual, Unit
from assistant.phrases import say, say_both
from assistant.template import fold

RENAME_THRESHOLD = 0.5
REWORD_THRESHOLD = 0.6


class DiffError(AssistantError):
    """Two manuals that cannot be compared (different codes)."""


class _Item(BaseModel):
    model_config = ConfigDict(frozen=True)


class UnitChange(_Item):
    """A unit added or removed, with its parent."""

    unit: str
    parent: str | None = None


class UnitRename(_Item):
    """A unit whose name changed; ``similarity`` is the share of positions and lines the two have in common."""

    from_unit: str
    to_unit: str
    similarity: float


class PositionChange(_Item):
    """A position added to or removed from a unit."""

    unit: str
    position: str


class PositionMove(_Item):
    """A position that left one unit for another."""

    position: str
    from_unit: str
    to_unit: str


class FunctionChange(_Item):
    """A function line added or removed."""

    unit: str
    numeral: str
    text: str


class FunctionMove(_Item):
    """A function line now in another unit, identical (similarity 1.0) or reworded on the way."""

    from_unit: str
    from_numeral: str
    from_text: str
    to_unit: str
    to_numeral: str
    to_text: str
    similarity: float


class FunctionReword(_Item):
    """A function line of the same unit, reworded (``unit`` is the newer name)."""

    unit: str
    from_numeral: str
    from_text: str
    to_numeral: str
    to_text: str
    similarity: float


class ObjectiveChange(_Item):
    """A unit's objective, changed (``unit`` is the newer name)."""

    unit: str
    from_text: str
    to_text: str
    similarity: float


class ManualDiff(BaseModel):
    """Everything that changed between two versions of one manual."""

    model_config = ConfigDict(frozen=True)

    code: str
    from_version: int | None
    from_date: dt.date | None
    to_version: int | None
    to_date: dt.date | None
    units_added: list[UnitChange] = Field(default_factory=list)
    units_removed: list[UnitChange] = Field(default_factory=list)
    units_renamed: list[UnitRename] = Field(default_factory=list)
    positions_added: list[PositionChange] = Field(default_factory=list)
    positions_removed: list[PositionChange] = Field(default_factory=list)
    positions_moved: list[PositionMove] = Field(default_factory=list)
    functions_added: list[FunctionChange] = Field(default_factory=list)
    functions_removed: list[FunctionChange] = Field(default_factory=list)
    functions_moved: list[FunctionMove] = Field(default_factory=list)
    functions_reworded: list[FunctionReword] = Field(default_factory=list)
    objectives_changed: list[ObjectiveChange] = Field(default_factory=list)

    @property
    def empty(self) -> bool:
        """Whether nothing structural changed."""
        return not any(v for k, v in self if isinstance(v, list))

    def to_dict(self) -> dict[str, object]:
        """Plain JSON-ready data (dates as ISO strings)."""
        return self.model_dump(mode="json")

    def to_json(self) -> str:
        """The diff as pretty JSON, keys in field order (what ``diff --json`` prints)."""
        return json.dumps(self.to_dict(), ensure_ascii=False, indent=2)


# --- similarity ----------------------------------------------------------------------------------------------


def _tokens(text: str) -> Counter[str]:
    return Counter(re.findall(r"\w+", fold(text)))


def similarity(a: str, b: str) -> float:
    """Dice coefficient of the two texts' bags of words, rounded to 3 decimals (1.0 for equal texts)."""
    ta, tb = _tokens(a), _tokens(b)
    total = sum(ta.values()) + sum(tb.values())
    if not total:
        return 1.0
    return round(2 * sum((ta & tb).values()) / total, 3)


def _key(text: str) -> str:
    return " ".join(re.findall(r"\w+", fold(text)))


def _same_set_similarity(a: set[str], b: set[str]) -> float:
    return round(2 * len(a & b) / (len(a) + len(b)), 3) if a or b else 0.0


# --- units ---------------------------------------------------------------------------------------------------


def _inherits(manual: Manual, unit: Unit) -> bool:
    """An office that repeats its group's objective and functions (they are the group's, counted there)."""
    parent = manual.unit(unit.parent) if unit.parent else None
    return (
        parent is not None
        and parent is not unit
        and [f.text for f in unit.functions] == [f.text for f in parent.functions]
        and unit.objective == parent.objective
    )


def _own_functions(manual: Manual, unit: Unit) -> list[Function]:
    return [] if _inherits(manual, unit) else list(unit.functions)


def _unit_items(unit: Unit) -> set[str]:
    return {"p:" + _key(p) for p in unit.positions} | {"f:" + _key(f.text) for f in unit.functions}


def _match_units(old: Manual, new: Manual) -> tuple[dict[str, str], list[UnitRename]]:
    """Old unit name → new unit name, for units kept under the same name or renamed."""
    new_names = {u.name for u in new.units}
    old_names = {u.name for u in old.units}
    mapping = {u.name: u.name for u in old.units if u.name in new_names}
    gone = [u for u in old.units if u.name not in new_names]
    fresh = [u for u in new.units if u.name not in old_names]
    pairs = sorted(
        (
            (-_same_set_similarity(_unit_items(a), _unit_items(b)), i, j)
            for i, a in enumerate(gone)
            for j, b in enumerate(fresh)
        ),
    )
    used_old: set[int] = set()
    used_new: set[int] = set()
    renames: list[tuple[int, UnitRename]] = []
    new_order = {u.name: k for k, u in enumerate(new.units)}
    for score, i, j in pairs:
        if -score < RENAME_THRESHOLD or i in used_old or j in used_new:
            continue
        used_old.add(i)
        used_new.add(j)
        mapping[gone[i].name] = fresh[j].name
        rename = UnitRename(from_unit=gone[i].name, to_unit=fresh[j].name, similarity=-score)
        renames.append((new_order[fresh[j].name], rename))
    return mapping, [r for _k, r in sorted(renames, key=lambda x: x[0])]


# --- lines (positions and functions) ----------------------------------------------------------------------


class _Line(BaseModel):
    """One position or function line where it stands: unit, index in document order, numeral, text."""

    unit: str
    order: tuple[int, int]
    numeral: str = ""
    text: str


def _pair_exact(
    removed: list[_Line], added: list[_Line], same_unit: Callable[[_Line, _Line], bool] | None
) -> list[tuple[_Line, _Line]]:
    """Pair lines with equal text (in order), within the same unit when ``same_unit`` is given, else across."""
    pairs = []
    for a in list(removed):
        for b in added:
            if _key(a.text) == _key(b.text) and (same_unit is None or same_unit(a, b)):
                pairs.append((a, b))
                removed.remove(a)
                added.remove(b)
                break
    return pairs


def _pair_similar(
    removed: list[_Line], added: list[_Line], accept: Callable[[_Line, _Line], bool]
) -> list[tuple[_Line, _Line, float]]:
    """Greedy pairing by highest similarity (≥ the reword threshold) among the pairs ``accept`` allows."""
    candidates = sorted(
        (
            (-similarity(a.text, b.text), a.order, b.order, ia, ib)
            for ia, a in enumerate(removed)
            for ib, b in enumerate(added)
            if accept(a, b)
        ),
    )
    taken_a: set[int] = set()
    taken_b: set[int] = set()
    out = []
    for score, _oa, _ob, ia, ib in candidates:
        if -score < REWORD_THRESHOLD or ia in taken_a or ib in taken_b:
            continue
        taken_a.add(ia)
        taken_b.add(ib)
        out.append((removed[ia], added[ib], -score))
    for ia in sorted(taken_a, reverse=True):
        removed.pop(ia)
    for ib in sorted(taken_b, reverse=True):
        added.pop(ib)
    return out


def diff_manuals(old: Manual, new: Manual) -> ManualDiff:
    """What changed from ``old`` to ``new`` (two versions of one code), from their parsed structure."""
    if old.code and new.code and old.code != new.code:
        raise DiffError(f"Manuals {old.code} and {new.code} are different manuals; a diff needs one code.")
    mapping, renames = _match_units(old, new)
    renamed_to = set(mapping.values())
    old_units = {u.name: (k, u) for k, u in enumerate(old.units)}
    new_units = {u.name: (k, u) for k, u in enumerate(new.units)}

    def counterpart(old_name: str) -> str | None:
        return mapping.get(old_name)

    units_added = [UnitChange(unit=u.name, parent=u.parent) for u in new.units if u.name not in renamed_to]
    units_removed = [UnitChange(unit=u.name, parent=u.parent) for u in old.units if u.name not in mapping]

    # Positions: per unit, what left and what arrived; a position that left one unit for another moved.
    gone_pos: list[_Line] = []
    new_pos: list[_Line] = []
    for name, (k, unit) in old_units.items():
        mate = counterpart(name)
        remaining = list(new_units[mate][1].positions) if mate else []
        for p, position in enumerate(unit.positions):
            if position in remaining:
                remaining.remove(position)
            else:
                gone_pos.append(_Line(unit=name, order=(k, p), text=position))
    reverse = {v: k for k, v in mapping.items()}
    for name, (k, unit) in new_units.items():
        mate = reverse.get(name)
        remaining = list(old_units[mate][1].positions) if mate else []
        for p, position in enumerate(unit.positions):
            if position in remaining:
                remaining.remove(position)
            else:
                new_pos.append(_Line(unit=name, order=(k, p), text=position))
    moved_pos = _pair_exact(gone_pos, new_pos, None)

    # Functions: the same line in the same unit is unchanged; then identical lines elsewhere moved; then
    # similar lines in the same unit were reworded, and similar lines elsewhere moved with a rewording.
    old_fn = [
        _Line(unit=u.name, order=(k, i), numeral=f.numeral, text=f.text)
        for k, u in enumerate(old.units)
        for i, f in enumerate(_own_functions(old, u))
    ]
    new_fn = [
        _Line(unit=u.name, order=(k, i), numeral=f.numeral, text=f.text)
        for k, u in enumerate(new.units)
        for i, f in enumerate(_own_functions(new, u))
    ]

    def same_unit(a: _Line, b: _Line) -> bool:
        return counterpart(a.unit) == b.unit

    _pair_exact(old_fn, new_fn, same_unit)
    moved_fn = [(a, b, 1.0) for a, b in _pair_exact(old_fn, new_fn, None)]
    reworded = _pair_similar(old_fn, new_fn, same_unit)
    moved_fn += _pair_similar(old_fn, new_fn, lambda a, b: not same_unit(a, b))

    objectives = []
    for name, (_k, unit) in sorted(new_units.items(), key=lambda x: x[1][0]):
        mate = reverse.get(name)
        if mate is None or _inherits(new, unit):
            continue
        before = old_units[mate][1].objective
        if _key(before) != _key(unit.objective):
            objectives.append(
                ObjectiveChange(
                    unit=name,
                    from_text=before,
                    to_text=unit.objective,
                    similarity=similarity(before, unit.objective),
                )
            )

    return ManualDiff(
        code=new.code or old.code,
        from_version=old.version,
        from_date=old.effective_date,
        to_version=new.version,
        to_date=new.effective_date,
        units_added=units_added,
        units_removed=units_removed,
        units_renamed=renames,
        positions_added=[PositionChange(unit=b.unit, position=b.text) for b in sorted(new_pos, key=_order)],
        positions_removed=[
            PositionChange(unit=a.unit, position=a.text) for a in sorted(gone_pos, key=_order)
        ],
        positions_moved=[
            PositionMove(position=b.text, from_unit=a.unit, to_unit=b.unit)
            for a, b in sorted(moved_pos, key=lambda p: p[1].order)
        ],
        functions_added=[FunctionChange(unit=b.unit, numeral=b.numeral, text=b.text) for b in new_fn],
        functions_removed=[FunctionChange(unit=a.unit, numeral=a.numeral, text=a.text) for a in old_fn],
        functions_moved=[
            FunctionMove(
                from_unit=a.unit,
                from_numeral=a.numeral,
                from_text=a.text,
                to_unit=b.unit,
                to_numeral=b.numeral,
                to_text=b.text,
                similarity=score,
            )
            for a, b, score in sorted(moved_fn, key=lambda p: p[1].order)
        ],
        functions_reworded=[
            FunctionReword(
                unit=b.unit,
                from_numeral=a.numeral,
                from_text=a.text,
                to_numeral=b.numeral,
                to_text=b.text,
                similarity=score,
            )
            for a, b, score in sorted(reworded, key=lambda p: p[1].order)
        ],
        objectives_changed=objectives,
    )


def _order(line: _Line) -> tuple[int, int]:
    return line.order


def render_text(diff: ManualDiff) -> str:
    """The diff as readable text (``diff`` without ``--json``): + added, - removed, → moved, ~ reworded.

    Its labels are bilingual, "Unidades · Units" (`say_both`, from ``assistant/data/phrases.json``)."""

    def when(version: int | None, date: dt.date | None) -> str:
        return f"v{version}" + (f" ({date.isoformat()})" if date else "")

    lines = [
        f"{diff.code}: {when(diff.from_version, diff.from_date)} → {when(diff.to_version, diff.to_date)}"
    ]
    if diff.empty:
        return lines[0] + f"\n  {say_both('diff_no_changes')}"

    def section(title: str, rows: list[str]) -> None:
        if rows:
            lines.append(f"\n{title}")
            lines.extend(f"  {row}" for row in rows)

    under, renamed, was = say_both("diff_under"), say_both("diff_renamed"), say_both("diff_was")
    section(
        say_both("diff_section_units"),
        [f"+ {u.unit} ({under} {u.parent})" for u in diff.units_added]
        + [f"- {u.unit}" for u in diff.units_removed]
        + [f"↻ {r.from_unit} → {r.to_unit} ({renamed}, {r.similarity:.3f})" for r in diff.units_renamed],
    )
    section(
        say_both("diff_section_positions"),
        [f"+ {p.position} [{p.unit}]" for p in diff.positions_added]
        + [f"- {p.position} [{p.unit}]" for p in diff.positions_removed]
        + [f"→ {p.position}: {p.from_unit} → {p.to_unit}" for p in diff.positions_moved],
    )
    section(
        say_both("diff_section_functions"),
        [f"+ [{f.unit} {f.numeral}] {f.text}" for f in diff.functions_added]
        + [f"- [{f.unit} {f.numeral}] {f.text}" for f in diff.functions_removed]
        + [
            f"→ [{m.from_unit} {m.from_numeral} → {m.to_unit} {m.to_numeral}] {m.to_text}"
            + ("" if m.similarity == 1.0 else f"  ({was}: {m.from_text}; {m.similarity:.3f})")
            for m in diff.functions_moved
        ]
        + [
            f"~ [{r.unit} {r.from_numeral}→{r.to_numeral}] {r.from_text}\n      ⇒ {r.to_text}  ({r.similarity:.3f})"
            for r in diff.functions_reworded
        ],
    )
    section(
        say_both("diff_section_objectives"),
        [
            f"~ [{o.unit}] {o.from_text}\n      ⇒ {o.to_text}  ({o.similarity:.3f})"
            for o in diff.objectives_changed
        ],
    )
    return "\n".join(lines)


def summarise(diff: ManualDiff, language: str = "es", limit: int = 12) -> list[str]:
    """The diff as short answer lines in Spanish or English (at most ``limit``; the CLI shows everything).

    The sentences are the ``diff_*`` phrases of ``assistant/data/phrases.json``."""
    lang = language
    lines = [say("diff_unit_renamed", lang, old=r.from_unit, unit=r.to_unit) for r in diff.units_renamed]
    lines += [say("diff_unit_added", lang, unit=u.unit) for u in diff.units_added]
    lines += [say("diff_unit_removed", lang, unit=u.unit) for u in diff.units_removed]
    lines += [
        say(
            "diff_function_moved",
            lang,
            old_unit=mv.from_unit,
            old_numeral=mv.from_numeral,
            unit=mv.to_unit,
            numeral=mv.to_numeral,
            text=mv.to_text,
        )
        for mv in diff.functions_moved
    ]
    lines += [
        say("diff_function_added", lang, unit=f.unit, numeral=f.numeral, text=f.text)
        for f in diff.functions_added
    ]
    lines += [
        say("diff_function_removed", lang, unit=f.unit, numeral=f.numeral, text=f.text)
        for f in diff.functions_removed
    ]
    lines += [
        say("diff_function_reworded", lang, unit=w.unit, numeral=w.to_numeral, text=w.to_text)
        for w in diff.functions_reworded
    ]
    lines += [
        say("diff_position_moved", lang, position=pm.position, old_unit=pm.from_unit, unit=pm.to_unit)
        for pm in diff.positions_moved
    ]
    lines += [
        say("diff_position_added", lang, unit=p.unit, position=p.position) for p in diff.positions_added
    ]
    lines += [
        say("diff_position_removed", lang, unit=p.unit, position=p.position) for p in diff.positions_removed
    ]
    lines += [say("diff_objective_changed", lang, unit=o.unit) for o in diff.objectives_changed]
    if len(lines) > limit:
        lines = [*lines[:limit], say("diff_more_changes", lang, count=len(lines) - limit)]
    return lines
