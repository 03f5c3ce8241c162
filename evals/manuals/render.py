"""Render a manual's Word and PDF forms from its expected structure and cover.

``python -m evals.manuals.render DIR`` writes ``DIR/manual.docx`` and ``DIR/manual.pdf`` from
``DIR/expected.json`` and ``DIR/cover.json``, laid out as the institution's template prints a MOF: a running
header and footer, a cover, sections I.–IV., one heading per unit, numbered function lists and the change
history as a table. The parser must read all three forms of a manual (txt, docx, pdf) to the same result.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.parse import roman
from assistant.template import template

TITLE = "MANUAL DE ORGANIZACIÓN Y FUNCIONES"
_HISTORY_COLUMNS = ("Versión", "Fecha", "Descripción de la modificación")


def spanish_date(iso: str | None) -> str:
    """ "2015-02-02" -> "2 de febrero de 2015"."""
    if not iso:
        return ""
    d = dt.date.fromisoformat(iso)
    names: dict[int, str] = {}
    for name, number in template().months.items():
        names.setdefault(number, name)
    return f"{d.day} de {names[d.month]} de {d.year}"


@dataclass
class Node:
    """A unit with its heading number and its children (nested units or offices sharing its duties)."""

    unit: dict[str, Any]
    number: str = ""
    children: list[Node] = field(default_factory=list)
    offices: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Manual:
    """What the renderer prints: expected.json and cover.json together."""

    expected: dict[str, Any]
    cover: dict[str, Any]

    @property
    def top(self) -> dict[str, Any]:
        return next(u for u in self.expected["units"] if u["parent"] is None)

    def tree(self) -> list[Node]:
        """The numbered units under the top unit, in document order."""
        units = self.expected["units"]

        def build(parent: str, prefix: str) -> list[Node]:
            nodes: list[Node] = []
            for u in (x for x in units if x["parent"] == parent):
                kids = [x for x in units if x["parent"] == u["name"]]
                shared = [
                    k for k in kids if k["objective"] == u["objective"] and k["functions"] == u["functions"]
                ]
                number = f"{prefix}{len(nodes) + 1}"
                node = Node(u, number)
                if kids and not u["positions"] and len(shared) == len(kids):
                    node.offices = kids
                else:
                    node.children = build(u["name"], number + ".")
                nodes.append(node)
            return nodes

        return build(self.top["name"], "")

    def top_chart(self) -> list[str]:
        """The general org chart: the top unit's staff, then the heads of its groups (and offices)."""
        chart = list(self.top["positions"])
        for node in self.tree():
            heads = [o["head"] for o in node.offices] if node.offices else [node.unit["head"]]
            chart += [h for h in heads if h and h not in chart]
        return chart

    def signature(self, version: int) -> str:
        return str(self.cover.get("signatures", {}).get(str(version), ""))


def _load(folder: Path) -> Manual:
    return Manual(
        expected=json.loads((folder / "expected.json").read_text(encoding="utf-8")),
        cover=json.loads((folder / "cover.json").read_text(encoding="utf-8")),
    )


def _cover_lines(m: Manual) -> list[str]:
    e, c = m.expected, m.cover
    lines = [
        "SISTEMA NORMATIVO",
        f"CÓDIGO {e['code']} {e['title'].upper()}",
        f"Autorizado: {e['authorized_by']}",
        "Revisado:",
        *c.get("reviewed_by", []),
        f"Responsable de Proceso: {c.get('process_owner', '')}",
        "“Este documento es conforme al original firmado”",
        f"Fecha de creación: {spanish_date(c.get('created_date'))}",
        f"Fecha de vigencia: {spanish_date(e['effective_date'])}",
        f"Versión: {e['version']}",
    ]
    return lines


def _numeral_format(unit: dict[str, Any]) -> str:
    first = unit["functions"][0]["numeral"] if unit["functions"] else "i"
    return "decimal" if first.isdigit() else "lowerRoman"


# --- Word --------------------------------------------------------------------------------------------------


class _Lists:
    """Numbering definitions added to the document's numbering part: one list per unit, restarting at 1."""

    def __init__(self, document: Any) -> None:
        self.root = document.part.numbering_part.element

    def new(self, fmt: str) -> int:
        from docx.oxml import OxmlElement
        from docx.oxml.ns import qn

        abstract_ids = [int(a.get(qn("w:abstractNumId"))) for a in self.root.findall(qn("w:abstractNum"))]
        num_ids = [int(n.get(qn("w:numId"))) for n in self.root.findall(qn("w:num"))]
        aid, nid = max(abstract_ids, default=0) + 1, max(num_ids, default=0) + 1
        abstract = OxmlElement("w:abstractNum")
        abstract.set(qn("w:abstractNumId"), str(aid))
        lvl = OxmlElement("w:lvl")
        lvl.set(qn("w:ilvl"), "0")
        text = "·" if fmt == "bullet" else "%1."
        for tag, val in (("w:start", "1"), ("w:numFmt", fmt), ("w:lvlText", text), ("w:lvlJc", "left")):
            el = OxmlElement(tag)
            el.set(qn("w:val"), val)
            lvl.append(el)
        ppr = OxmlElement("w:pPr")
        ind = OxmlElement("w:ind")
        ind.set(qn("w:left"), "720")
        ind.set(qn("w:hanging"), "360")
        ppr.append(ind)
        lvl.append(ppr)
        abstract.append(lvl)
        first_num = self.root.find(qn("w:num"))
        if first_num is not None:
            first_num.addprevious(abstract)
        else:
            self.root.append(abstract)
        num = OxmlElement("w:num")
        num.set(qn("w:numId"), str(nid))
        ref = OxmlElement("w:abstractNumId")
        ref.set(qn("w:val"), str(aid))
        num.append(ref)
        self.root.append(num)
        return nid


def _in_list(paragraph: Any, num_id: int) -> Any:
    num_pr = paragraph._p.get_or_add_pPr().get_or_add_numPr()
    num_pr.get_or_add_ilvl().val = 0
    num_pr.get_or_add_numId().val = num_id
    return paragraph


def _page_field(paragraph: Any) -> None:
    from docx.oxml import OxmlElement
    from docx.oxml.ns import qn

    def run_with(tag: str, **attrs: str) -> None:
        run = paragraph.add_run()
        el = OxmlElement(tag)
        for k, v in attrs.items():
            el.set(qn(k), v)
        if tag == "w:instrText":
            el.text = " PAGE "
        run._r.append(el)

    run_with("w:fldChar", **{"w:fldCharType": "begin"})
    run_with("w:instrText")
    run_with("w:fldChar", **{"w:fldCharType": "separate"})
    paragraph.add_run("1")
    run_with("w:fldChar", **{"w:fldCharType": "end"})


def _docx_unit(document: Any, lists: _Lists, unit: dict[str, Any], chart: list[str]) -> None:
    bullets = lists.new("bullet")
    for position in chart:
        _in_list(document.add_paragraph(position, style="List Paragraph"), bullets)
    document.add_paragraph("a) Objetivo")
    document.add_paragraph(unit["objective"])
    document.add_paragraph("b) Funciones")
    num_id = lists.new(_numeral_format(unit))
    for f in unit["functions"]:
        _in_list(document.add_paragraph(f["text"], style="List Paragraph"), num_id)


def _docx_node(document: Any, lists: _Lists, node: Node) -> None:
    depth = node.number.count(".") + 1
    number = f"{node.number}." if depth == 1 else node.number
    document.add_heading(f"{number} {node.unit['name']}", level=min(depth + 1, 9))
    if node.offices:
        for office in node.offices:
            document.add_paragraph(f"· {office['name']}")
            bullets = lists.new("bullet")
            for position in office["positions"]:
                _in_list(document.add_paragraph(position, style="List Paragraph"), bullets)
        _docx_unit(document, lists, node.unit, [])
    else:
        _docx_unit(document, lists, node.unit, node.unit["positions"])
    for child in node.children:
        _docx_node(document, lists, child)


def render_docx(m: Manual, path: Path) -> None:
    """Write the Word form: header/footer parts, cover, headings, numbered lists, history table."""
    import docx

    e = m.expected
    document = docx.Document()
    lists = _Lists(document)
    section = document.sections[0]
    section.header.paragraphs[0].text = f"{e['code']} {TITLE}"
    footer = section.footer
    footer.paragraphs[0].text = f"Fecha de vigencia: {spanish_date(e['effective_date'])}"
    _page_field(footer.add_paragraph())
    footer.add_paragraph(f"Autorizado por: {e['authorized_by']}")
    for line in _cover_lines(m):
        document.add_paragraph(line)
    document.add_page_break()
    document.add_heading("I. OBJETIVOS DEL MANUAL", level=1)
    document.add_paragraph(m.cover.get("purpose", ""))
    document.add_heading(f"II. ORGANIGRAMA GENERAL DE {m.top['name'].upper()}", level=1)
    _docx_unit(document, lists, m.top, m.top_chart())
    document.add_heading("III. ESTRUCTURA ORGANIZATIVA", level=1)
    document.add_paragraph(m.cover.get("structure_intro", ""))
    for node in m.tree():
        _docx_node(document, lists, node)
    document.add_heading("IV. MODIFICACIONES REALIZADAS", level=1)
    table = document.add_table(rows=1, cols=3)
    table.style = "Table Grid"
    for cell, text in zip(table.rows[0].cells, _HISTORY_COLUMNS, strict=True):
        cell.text = text
    for h in e["history"]:
        version, date, description = table.add_row().cells
        version.text = f"{h['version']}."
        date.text = spanish_date(h["date"])
        bullets = lists.new("bullet")
        for k, change in enumerate(h["changes"]):
            paragraph = description.paragraphs[0] if k == 0 else description.add_paragraph()
            paragraph.text = change
            _in_list(paragraph, bullets)
        if m.signature(h["version"]):
            description.add_paragraph(m.signature(h["version"]))
    document.save(str(path))


# --- PDF ---------------------------------------------------------------------------------------------------


def _latin1(text: str) -> str:
    text = text.replace("“", '"').replace("”", '"').replace("‘", "'").replace("’", "'")
    return text.replace("–", "-").replace("—", "-").replace("…", "...")


def _pdf_lines(m: Manual) -> list[tuple[str, str]]:
    """(style, text) lines of the body after the cover: "h" for a heading, "p" for a paragraph."""
    out: list[tuple[str, str]] = [("h", "I. OBJETIVOS DEL MANUAL"), ("p", m.cover.get("purpose", ""))]
    out.append(("h", f"II. ORGANIGRAMA GENERAL DE {m.top['name'].upper()}"))
    out += _pdf_unit(m.top, m.top_chart())
    out += [("h", "III. ESTRUCTURA ORGANIZATIVA"), ("p", m.cover.get("structure_intro", ""))]

    def node_lines(node: Node) -> list[tuple[str, str]]:
        number = f"{node.number}." if "." not in node.number else node.number
        lines = [("h", f"{number} {node.unit['name']}")]
        for office in node.offices:
            lines += [("p", f"· {office['name']}"), *(("p", p) for p in office["positions"])]
        lines += _pdf_unit(node.unit, [] if node.offices else node.unit["positions"])
        for child in node.children:
            lines += node_lines(child)
        return lines

    for node in m.tree():
        out += node_lines(node)
    out += [("h", "IV. MODIFICACIONES REALIZADAS"), ("p", "   ".join(_HISTORY_COLUMNS))]
    for h in m.expected["history"]:
        out += [("p", f"{h['version']}."), ("p", spanish_date(h["date"]))]
        out += [("p", f"· {change}") for change in h["changes"]]
        if m.signature(h["version"]):
            out.append(("p", m.signature(h["version"])))
    return out


def _pdf_unit(unit: dict[str, Any], chart: list[str]) -> list[tuple[str, str]]:
    lines = [("p", p) for p in chart]
    lines += [("p", "a) Objetivo"), ("p", unit["objective"]), ("p", "b) Funciones")]
    arabic = _numeral_format(unit) == "decimal"
    for n, f in enumerate(unit["functions"], start=1):
        lines.append(("p", f"{n if arabic else roman(n)}. {f['text']}"))
    return lines


def render_pdf(m: Manual, path: Path) -> None:
    """Write the PDF form: running header and footer on every page, pages breaking where the text falls."""
    from fpdf import FPDF

    e = m.expected
    header = _latin1(f"{e['code']} {TITLE}")
    footer = (
        _latin1(f"Fecha de vigencia: {spanish_date(e['effective_date'])}"),
        _latin1(f"Autorizado por: {e['authorized_by']}"),
    )

    class Pdf(FPDF):
        def header(self) -> None:
            self.set_font("Helvetica", size=8)
            self.cell(0, 5, header, new_x="LMARGIN", new_y="NEXT")
            self.ln(4)

        def footer(self) -> None:
            self.set_y(-20)
            self.set_font("Helvetica", size=8)
            self.cell(0, 4, footer[0], new_x="LMARGIN", new_y="NEXT")
            self.cell(0, 4, str(self.page_no()), align="C", new_x="LMARGIN", new_y="NEXT")
            self.cell(0, 4, footer[1], new_x="LMARGIN", new_y="NEXT")

    pdf = Pdf(format="A4")
    pdf.set_auto_page_break(True, margin=24)
    pdf.add_page()
    pdf.set_font("Helvetica", size=10)
    for line in _cover_lines(m):
        pdf.multi_cell(0, 6, _latin1(line), new_x="LMARGIN", new_y="NEXT")
    pdf.add_page()
    for style, text in _pdf_lines(m):
        pdf.set_font("Helvetica", style="B" if style == "h" else "", size=10)
        if style == "h":
            pdf.ln(2)
        pdf.multi_cell(0, 5, _latin1(text), new_x="LMARGIN", new_y="NEXT")
    pdf.output(str(path))


def render(folder: str | Path, out: str | Path | None = None) -> tuple[Path, Path]:
    """Write manual.docx and manual.pdf (into DIR, or `out`) from DIR/expected.json and DIR/cover.json."""
    root = Path(folder)
    manual = _load(root)
    target = Path(out) if out is not None else root
    docx_path, pdf_path = target / "manual.docx", target / "manual.pdf"
    render_docx(manual, docx_path)
    render_pdf(manual, pdf_path)
    return docx_path, pdf_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "folders", nargs="+", type=Path, help="manual folders holding expected.json + cover.json"
    )
    args = parser.parse_args(argv)
    for folder in args.folders:
        for path in render(folder):
            print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
