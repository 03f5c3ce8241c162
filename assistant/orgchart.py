"""The org chart as a picture: a self-contained SVG drawn from a manual's parsed units.

Layout, top-down: a unit's box sits above its sub-units. Sub-units that have sub-units of their own are laid
side by side (a tidy tree: each subtree is as wide as its widest row, the parent centred over its children)
and wrap into rows hung from a spine on the left when a row would be wider than ``MAX_WIDTH``. Leaf
sub-units below the top level are stacked in a column under their parent, as printed org charts list
agencies or offices; this keeps the top row narrow enough to read at about 900 px without scaling.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from assistant.models import Manual, Unit

MAX_WIDTH = 900  # the chart is laid out to be read at this width (px) without being scaled down
BOX_W = 136
TOP_W = 200  # the top unit's box is wider: its name is the chart's title
PAD_X = 8
PAD_Y = 8
NAME_SIZE = 12
NAME_LINE = 14.5
HEAD_SIZE = 10
HEAD_LINE = 12.5
HEAD_GAP = 4  # between the name and the head position
# Average glyph widths (px) of the system sans-serif at the sizes above, bold and regular: text is wrapped
# by character count, since the SVG is measured without a browser.
NAME_CHAR_W = 6.9
HEAD_CHAR_W = 5.5
NAME_MAX_LINES = 4
HEAD_MAX_LINES = 3
GAP_X = 14  # between sibling subtrees
GAP_Y = 30  # from a parent's box to its children's row; the connector bus runs half-way
STACK_INDENT = 16  # stacked leaves sit this far right of their parent's left edge
STACK_GAP = 8
SPINE_INDENT = 18  # wrapped rows sit this far right of the spine that feeds them
MARGIN = 8
FONT = "system-ui, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"


@dataclass(frozen=True)
class Style:
    """Fill, border and text colours of one kind of box."""

    fill: str
    stroke: str
    name: str
    head: str


TOP = Style(fill="#0f3d66", stroke="#0f3d66", name="#ffffff", head="#cfe0f0")
LEVEL1 = Style(fill="#e8f1f9", stroke="#1d6fa5", name="#0f2a44", head="#3f5b74")
DEEPER = Style(fill="#f7f9fb", stroke="#a7b9ca", name="#1f2d3a", head="#52677a")
LINK = "#8fa3b6"

# Characters XML 1.0 does not allow at all; a stray one would make the whole picture unreadable.
_XML_INVALID = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def xml_text(value: object) -> str:
    """``value`` as XML text or attribute content: invalid characters dropped, markup escaped."""
    return escape(_XML_INVALID.sub("", str(value)), {'"': "&quot;", "'": "&apos;"})


def wrap(text: str, max_chars: int, max_lines: int) -> list[str]:
    """Greedy word wrap into at most ``max_lines`` lines; overlong words are split, overflow ends in ``…``."""
    words: list[str] = []
    for word in text.split():
        while len(word) > max_chars:
            words.append(word[: max_chars - 1] + "-")
            word = word[max_chars - 1 :]
        words.append(word)
    lines: list[str] = []
    for word in words:
        if lines and len(lines[-1]) + 1 + len(word) <= max_chars:
            lines[-1] += " " + word
        else:
            lines.append(word)
    if len(lines) > max_lines:
        last = lines[max_lines - 1]
        lines = [*lines[: max_lines - 1], last[: max_chars - 1].rstrip() + "…"]
    return lines


@dataclass
class _Node:
    unit: Unit
    depth: int
    children: list[_Node] = field(default_factory=list)


@dataclass
class _Box:
    node: _Node
    x: float
    y: float
    w: float
    h: float
    name_lines: list[str]
    head_lines: list[str]


@dataclass
class _Link:
    parent: str
    child: str
    points: list[tuple[float, float]]


@dataclass
class _Block:
    """A laid-out subtree in its own coordinates (top-left at 0, 0); its root's box comes first."""

    width: float
    height: float
    boxes: list[_Box]
    links: list[_Link]

    @property
    def top(self) -> _Box:
        return self.boxes[0]

    def shifted(self, dx: float, dy: float) -> _Block:
        boxes = [_Box(b.node, b.x + dx, b.y + dy, b.w, b.h, b.name_lines, b.head_lines) for b in self.boxes]
        links = [_Link(k.parent, k.child, [(x + dx, y + dy) for x, y in k.points]) for k in self.links]
        return _Block(self.width, self.height, boxes, links)


def _box(node: _Node, width: float) -> _Box:
    inner = width - 2 * PAD_X
    name_lines = wrap(node.unit.name, max(4, int(inner / NAME_CHAR_W)), NAME_MAX_LINES)
    head = node.unit.head or ""
    head_lines = wrap(head, max(4, int(inner / HEAD_CHAR_W)), HEAD_MAX_LINES) if head else []
    height = 2 * PAD_Y + len(name_lines) * NAME_LINE
    if head_lines:
        height += HEAD_GAP + len(head_lines) * HEAD_LINE
    return _Box(node, 0.0, 0.0, width, height, name_lines, head_lines)


def _partition(widths: list[float], max_width: float) -> list[list[int]]:
    """Consecutive rows of about equal length, as few as fit ``max_width`` (one item per row at worst)."""
    n = len(widths)
    for k in range(1, n + 1):
        per = math.ceil(n / k)
        rows = [list(range(i, min(i + per, n))) for i in range(0, n, per)]
        limit = max_width if len(rows) == 1 else max_width - SPINE_INDENT
        if all(sum(widths[j] for j in row) + GAP_X * (len(row) - 1) <= limit for row in rows):
            return rows
    return [[i] for i in range(n)]


def _layout(node: _Node) -> _Block:
    box = _box(node, TOP_W if node.depth == 0 else BOX_W)
    if not node.children:
        return _Block(box.w, box.h, [box], [])
    if node.depth > 0 and all(not c.children for c in node.children):
        return _stack(node, box)
    return _rows(node, box, [_layout(c) for c in node.children])


def _stack(node: _Node, box: _Box) -> _Block:
    """Leaf sub-units in a column under their parent, each joined to a line down the parent's left side."""
    boxes, links = [box], []
    spine_x = box.x + STACK_INDENT / 2
    y = box.h
    for child in node.children:
        child_box = _box(child, box.w - STACK_INDENT)
        y += STACK_GAP
        child_box.x, child_box.y = STACK_INDENT, y
        mid = y + child_box.h / 2
        links.append(
            _Link(node.unit.name, child.unit.name, [(spine_x, box.h), (spine_x, mid), (STACK_INDENT, mid)])
        )
        boxes.append(child_box)
        y += child_box.h
    return _Block(box.w, y, boxes, links)


def _rows(node: _Node, box: _Box, blocks: list[_Block]) -> _Block:
    """Child subtrees side by side under the parent, wrapped into rows fed by a spine when too wide."""
    rows = _partition([b.width for b in blocks], MAX_WIDTH)
    indent = 0.0 if len(rows) == 1 else SPINE_INDENT
    row_widths = [sum(blocks[i].width for i in row) + GAP_X * (len(row) - 1) for row in rows]
    placed: list[_Block] = []
    row_tops: list[float] = []
    y = box.h + GAP_Y
    for row in rows:
        x = indent
        row_tops.append(y)
        for i in row:
            placed.append(blocks[i].shifted(x, y))
            x += blocks[i].width + GAP_X
        y += max(blocks[i].height for i in row) + GAP_Y
    height = y - GAP_Y
    if len(rows) == 1:
        # A tidy tree: the parent centred over its first and last child.
        first, last = placed[0].top, placed[-1].top
        centre = (first.x + first.w / 2 + last.x + last.w / 2) / 2
    else:
        centre = indent + max(row_widths) / 2
    box.x = centre - box.w / 2
    shift = max(0.0, -box.x)
    width = max(indent + max(row_widths), box.x + box.w) + shift
    parent_x, parent_bottom = box.x + box.w / 2, box.h
    bus = box.h + GAP_Y / 2
    spine = indent / 2
    links: list[_Link] = []
    row_of = {i: r for r, row in enumerate(rows) for i in row}
    for i, block in enumerate(placed):
        child = block.top
        child_x = child.x + child.w / 2
        points = [(parent_x, parent_bottom), (parent_x, bus)]
        r = row_of[i]
        if r > 0:
            row_bus = row_tops[r] - GAP_Y / 2
            points += [(spine, bus), (spine, row_bus), (child_x, row_bus)]
        else:
            points.append((child_x, bus))
        points.append((child_x, child.y))
        links.append(_Link(node.unit.name, child.node.unit.name, points))
    block = _Block(
        width,
        height,
        [box, *(b for p in placed for b in p.boxes)],
        [*links, *(k for p in placed for k in p.links)],
    )
    return block.shifted(shift, 0) if shift else block


def _ordered_children(manual: Manual, parent: str) -> list[int]:
    order = [
        (u.number if u.number is not None else 10_000, i)
        for i, u in enumerate(manual.units)
        if u.parent == parent
    ]
    return [i for _, i in sorted(order)]


def _forest(manual: Manual, root: str | None) -> list[_Node]:
    """The units as trees (cycle-safe); every unit of the manual, or of ``root``'s subtree, once."""
    names = {u.name for u in manual.units}
    seen: set[int] = set()

    def build(index: int, depth: int) -> _Node:
        seen.add(index)
        node = _Node(manual.units[index], depth)
        for child in _ordered_children(manual, manual.units[index].name):
            if child not in seen:
                node.children.append(build(child, depth + 1))
        return node

    if root is not None:
        index = next((i for i, u in enumerate(manual.units) if u.name == root), None)
        if index is None:
            raise ValueError(f"The manual {manual.id} has no unit named {root!r}.")
        return [build(index, 0)]
    trees = [
        build(i, 0)
        for i, u in enumerate(manual.units)
        if (u.parent is None or u.parent not in names) and i not in seen
    ]
    # Units caught in a parent cycle never hang from a root: each first one left starts a tree of its own.
    for i in range(len(manual.units)):
        if i not in seen:
            trees.append(build(i, 0))
    return trees


def _arrange(blocks: list[_Block]) -> _Block | None:
    """Several trees side by side (wrapped into rows), with no connectors between them."""
    if not blocks:
        return None
    if len(blocks) == 1:
        return blocks[0]
    rows = _partition([b.width for b in blocks], MAX_WIDTH)
    boxes: list[_Box] = []
    links: list[_Link] = []
    y = 0.0
    width = 0.0
    for row in rows:
        x = 0.0
        for i in row:
            placed = blocks[i].shifted(x, y)
            boxes += placed.boxes
            links += placed.links
            x += blocks[i].width + GAP_X
        width = max(width, x - GAP_X)
        y += max(blocks[i].height for i in row) + GAP_Y
    return _Block(width, y - GAP_Y, boxes, links)


def _style(box: _Box) -> Style:
    depth = box.node.depth
    return TOP if depth == 0 else LEVEL1 if depth == 1 else DEEPER


def _svg_box(box: _Box) -> str:
    style = _style(box)
    unit = box.node.unit
    cx = box.x + box.w / 2
    tip = unit.name + (f" — {unit.head}" if unit.head else "")
    depth = box.node.depth
    classes = f"unit depth-{min(depth, 3)}" + (" top" if depth == 0 else "")
    parts = [
        f'<g class="{classes}" data-unit="{xml_text(unit.name)}">',
        f"<title>{xml_text(tip)}</title>",
        f'<rect class="box" x="{box.x:.1f}" y="{box.y:.1f}" width="{box.w:.1f}" height="{box.h:.1f}" '
        f'rx="7" fill="{style.fill}" stroke="{style.stroke}" stroke-width="{1.6 if depth < 2 else 1.1}"/>',
    ]
    y = box.y + PAD_Y + NAME_SIZE * 0.9
    spans = []
    for i, line in enumerate(box.name_lines):
        spans.append(f'<tspan x="{cx:.1f}" y="{y + i * NAME_LINE:.1f}">{xml_text(line)}</tspan>')
    parts.append(
        f'<text class="name" text-anchor="middle" font-size="{NAME_SIZE}" font-weight="700" '
        f'fill="{style.name}">{"".join(spans)}</text>'
    )
    if box.head_lines:
        y = box.y + PAD_Y + len(box.name_lines) * NAME_LINE + HEAD_GAP + HEAD_SIZE * 0.9
        spans = [
            f'<tspan x="{cx:.1f}" y="{y + i * HEAD_LINE:.1f}">{xml_text(line)}</tspan>'
            for i, line in enumerate(box.head_lines)
        ]
        parts.append(
            f'<text class="head" text-anchor="middle" font-size="{HEAD_SIZE}" '
            f'fill="{style.head}">{"".join(spans)}</text>'
        )
    parts.append("</g>")
    return "".join(parts)


def _svg_link(link: _Link) -> str:
    (x0, y0), *rest = link.points
    path = f"M{x0:.1f} {y0:.1f}" + "".join(f" L{x:.1f} {y:.1f}" for x, y in rest)
    return (
        f'<path class="link" data-parent="{xml_text(link.parent)}" data-child="{xml_text(link.child)}" '
        f'd="{path}"/>'
    )


def org_chart_svg(manual: Manual, root: str | None = None) -> str:
    """The manual's org chart (or ``root``'s part of it) as one self-contained SVG document."""
    block = _arrange([_layout(tree) for tree in _forest(manual, root)])
    title = xml_text(f"Organigrama · Org chart: {manual.gerencia}")
    if block is None:
        return (
            '<svg xmlns="http://www.w3.org/2000/svg" class="org-chart empty" viewBox="0 0 320 40" '
            f'width="320" height="40" role="img" aria-label="{title}"><title>{title}</title>'
            f'<text x="8" y="24" font-family="{FONT}" font-size="13" fill="#52677a">'
            "El manual no define unidades · No units in this manual</text></svg>"
        )
    width = math.ceil(block.width + 2 * MARGIN)
    height = math.ceil(block.height + 2 * MARGIN)
    block = block.shifted(MARGIN, MARGIN)
    links = "".join(_svg_link(k) for k in block.links)
    boxes = "".join(_svg_box(b) for b in block.boxes)
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" class="org-chart" data-manual="{xml_text(manual.id)}" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
        f'aria-label="{title}" font-family="{xml_text(FONT)}" style="max-width:100%;height:auto">'
        f"<title>{title}</title>"
        f'<g class="links" fill="none" stroke="{LINK}" stroke-width="1.4">{links}</g>'
        f'<g class="units">{boxes}</g>'
        "</svg>"
    )
