"""The org chart picture: every unit once, one connector per sub-unit, escaped text, no overlapping boxes."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from itertools import combinations

import pytest
from fakes_ui import fake_manual, real_manuals

from assistant.models import Manual, Unit
from assistant.orgchart import MAX_WIDTH, org_chart_svg, wrap

SVG = "{http://www.w3.org/2000/svg}"


def _parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)


def _boxes(root: ET.Element) -> dict[str, tuple[float, float, float, float]]:
    """Unit name → (x, y, width, height) of its box; a unit drawn twice fails."""
    found: dict[str, tuple[float, float, float, float]] = {}
    for group in root.iter(f"{SVG}g"):
        name = group.get("data-unit")
        if name is None:
            continue
        assert name not in found, f"{name} is drawn twice"
        rect = group.find(f"{SVG}rect")
        assert rect is not None
        found[name] = tuple(float(rect.get(k, "nan")) for k in ("x", "y", "width", "height"))  # type: ignore[assignment]
    return found


def _links(root: ET.Element) -> list[tuple[str, str]]:
    return [(p.get("data-parent", ""), p.get("data-child", "")) for p in root.iter(f"{SVG}path")]


def _overlap(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    return ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah


def _nested() -> Manual:
    """Dirección → two Subgerencias (with Unidades) → and a direct Unidad: three levels."""
    units = [Unit(name="Dirección General", head="Director General")]
    for s in ("Norte", "Sur"):
        units.append(Unit(name=f"Subgerencia {s}", parent="Dirección General", head=f"Subgerente {s}"))
        for u in ("de Planillas", "de Transporte y Logística Institucional", "de Archivo"):
            units.append(Unit(name=f"Unidad {u} {s}", parent=f"Subgerencia {s}", head=f"Jefe Unidad {u}"))
    units.append(Unit(name="Unidad de Auditoría", parent="Dirección General"))
    return Manual(id="nested", source="x", units=units)


@pytest.mark.parametrize("manual", [_nested(), fake_manual(), *real_manuals()], ids=lambda m: m.id)
def test_every_unit_once_with_one_connector_to_its_parent(manual: Manual) -> None:
    root = _parse(org_chart_svg(manual))
    boxes = _boxes(root)
    assert sorted(boxes) == sorted(u.name for u in manual.units)
    links = _links(root)
    for unit in manual.units:
        to_parent = [link for link in links if link[1] == unit.name]
        if unit.parent is None:
            assert to_parent == [], unit.name
        else:
            assert to_parent == [(unit.parent, unit.name)], unit.name
    assert len(links) == len(manual.units) - 1


@pytest.mark.parametrize("manual", [_nested(), fake_manual(), *real_manuals()], ids=lambda m: m.id)
def test_boxes_do_not_overlap_and_fit_the_reading_width(manual: Manual) -> None:
    root = _parse(org_chart_svg(manual))
    boxes = _boxes(root)
    for (a, ra), (b, rb) in combinations(boxes.items(), 2):
        assert not _overlap(ra, rb), f"{a} overlaps {b}"
    assert float(root.get("width", "0")) <= MAX_WIDTH + 20
    # Children sit below their parent.
    for unit in manual.units:
        if unit.parent:
            assert boxes[unit.name][1] > boxes[unit.parent][1] + boxes[unit.parent][3] - 0.1


def test_three_levels_lay_out_top_down() -> None:
    boxes = _boxes(_parse(org_chart_svg(_nested())))
    top = boxes["Dirección General"]
    sub = boxes["Subgerencia Norte"]
    unit = boxes["Unidad de Planillas Norte"]
    assert top[1] < sub[1] < unit[1]
    # The top unit is centred over its children.
    first, last = boxes["Subgerencia Norte"], boxes["Unidad de Auditoría"]
    centre = (first[0] + first[2] / 2 + last[0] + last[2] / 2) / 2
    assert abs(top[0] + top[2] / 2 - centre) < 1


def test_the_top_unit_is_highlighted() -> None:
    root = _parse(org_chart_svg(fake_manual()))
    tops = [g.get("data-unit") for g in root.iter(f"{SVG}g") if "top" in (g.get("class") or "").split()]
    assert tops == ["Gerencia de Servicio al Cliente"]
    fills = {g.get("data-unit"): g.findtext(f"{SVG}title") and g[1].get("fill") for g in root.iter(f"{SVG}g")}
    assert fills["Gerencia de Servicio al Cliente"] != fills["Agencias"]


def test_hostile_names_are_escaped() -> None:
    manual = Manual(
        id="x<y>",
        source="x",
        units=[
            Unit(name="<script>alert(1)</script>", head="Jefe & \"Cía\" 'x'"),
            Unit(name="Área R&D <b>", parent="<script>alert(1)</script>", head="Jefe\x00 <i>"),
        ],
    )
    svg = org_chart_svg(manual)
    assert "<script>" not in svg and "<b>" not in svg and "<i>" not in svg
    assert "&lt;script&gt;" in svg and "R&amp;D" in svg
    root = _parse(svg)
    assert sorted(_boxes(root)) == ["<script>alert(1)</script>", "Área R&D <b>"]
    assert _links(root) == [("<script>alert(1)</script>", "Área R&D <b>")]
    texts = "".join(root.itertext())
    assert "Jefe & \"Cía\" 'x'" in texts


def test_long_names_wrap_and_many_children_wrap_into_rows() -> None:
    assert wrap("Departamento de Formalización y Escrituración", 16, 4) == [
        "Departamento de",
        "Formalización y",
        "Escrituración",
    ]
    assert wrap("uno dos tres cuatro cinco seis", 8, 2) == ["uno dos", "tres…"]
    wide = Manual(
        id="wide",
        source="x",
        units=[Unit(name="Gerencia"), *(Unit(name=f"Área número {i}", parent="Gerencia") for i in range(14))],
    )
    root = _parse(org_chart_svg(wide))
    boxes = _boxes(root)
    assert float(root.get("width", "0")) <= MAX_WIDTH + 20
    assert len({y for _x, y, _w, _h in boxes.values()}) >= 3, "the fourteen areas wrap into rows"
    for (a, ra), (b, rb) in combinations(boxes.items(), 2):
        assert not _overlap(ra, rb), f"{a} overlaps {b}"


def test_subtree_and_empty_manual() -> None:
    manual = fake_manual()
    boxes = _boxes(_parse(org_chart_svg(manual, root="Agencias")))
    assert sorted(boxes) == ["Agencia San Miguel", "Agencia Santa Ana", "Agencias"]
    with pytest.raises(ValueError, match="no unit named"):
        org_chart_svg(manual, root="Nada")
    empty = _parse(org_chart_svg(Manual(id="e", source="x")))
    assert _boxes(empty) == {} and "No units" in "".join(empty.itertext())


def test_a_parent_cycle_still_draws_every_unit_once() -> None:
    manual = Manual(
        id="c",
        source="x",
        units=[Unit(name="A", parent="B"), Unit(name="B", parent="A"), Unit(name="C")],
    )
    assert sorted(_boxes(_parse(org_chart_svg(manual)))) == ["A", "B", "C"]
