"""Parse stage: the real manual, the same manual as PDF and DOCX, and a manual never seen before."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest

from assistant.clean import clean_text
from assistant.ingest import load_file
from assistant.models import Manual
from assistant.parse import parse_document

MANUAL = Path(__file__).resolve().parents[1] / "corpus" / "mof-901-0905-gerencia-servicio-al-cliente-v10.txt"
GERENCIA = "Gerencia de Servicio al Cliente"
DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")

FUNCTION_COUNTS = {
    GERENCIA: 7,
    "Área de Atención al Cliente": 9,
    "Área de Activos Extraordinarios": 4,
    "Agencias": 9,
    "Área de Ventas": 11,
    "Área de Servicios en Línea": 4,
    "Sucursal Paseo": 5,
}
HEADS = {
    GERENCIA: "Gerente Servicio al Cliente",
    "Área de Atención al Cliente": "Jefe Área de Atención al Cliente",
    "Área de Activos Extraordinarios": "Jefe Área de Activos Extraordinarios",
    "Agencias": "Jefe de Agencia",
    "Agencia Santa Ana": "Jefe de Agencia",
    "Agencia San Miguel": "Jefe de Agencia",
    "Área de Ventas": "Jefe Área de Ventas",
    "Área de Servicios en Línea": "Jefe Área de Servicios en Línea",
    "Sucursal Paseo": "Coordinador de Sucursal",
}
# Each org chart as printed in the manual, one position per line (checked against the raw text below).
CHARTS = {
    "Área de Atención al Cliente": [
        "Jefe Área de Atención al Cliente", "Coordinador de Ventanilla", "Auxiliar de Ventanilla",
        "Técnico de Atención al Cliente", "Asistente de Ventanilla", "Asistente de Atención al Cliente",
        "Asistente Servicios Electrónicos",
    ],
    "Área de Activos Extraordinarios": [
        "Jefe Área de Activos Extraordinarios", "Secretaria", "Asistente Contable Activos Extraordinarios",
        "Asistente Activos Extraordinarios", "Auxiliar de Activos Extraordinarios",
    ],
    "Agencia Santa Ana": [
        "Jefe de Agencia", "Secretaria de Agencia", "Asistente de Agencia", "Promotor de Créditos",
        "Gestor Recuperación de Créditos", "Asistente de Ventanilla", "Colaborador Técnico Jurídico Agencia",
        "Asistente de Ventas", "Colaborador Jurídico Agencia", "Supervisor Técnico", "Analista de Créditos",
        "Ordenanza", "Auxiliar de Agencia",
    ],
    "Agencia San Miguel": [
        "Jefe de Agencia", "Secretaria de Agencia", "Promotor de Créditos",
        "Gestor Recuperación Administrativa y Judicial", "Supervisor Técnico", "Asistente de Ventanilla",
        "Técnico Jurídico Agencia", "Analista de Créditos", "Ordenanza",
    ],
    "Área de Ventas": [
        "Jefe Área de Ventas", "Secretaria", "Coordinador de Control de Calidad",
        "Coordinador de Vivienda Recuperada", "Promotor de Créditos", "Supervisor de Servicios Móviles",
        "Asistente de Servicios Móviles", "Promotor de Vivienda Recuperada",
        "Asistente de Vivienda Recuperada", "Auxiliar de Vivienda Recuperada", "Asistente de Ventas",
        "Asistente de Control de Calidad",
        "Asistente de Control Estadístico", "Asistente de Notificación", "Asistente de Solicitudes",
        "Auxiliar de Notificación", "Auxiliar de Ventas",
    ],
    "Área de Servicios en Línea": [
        "Jefe Área de Servicios en Línea", "Promotor de Servicios en Línea", "Auxiliar de Servicios en Línea",
    ],
    "Sucursal Paseo": [
        "Coordinador de Sucursal", "Promotor de Créditos de Sucursal", "Asistente de Ventanilla",
        "Auxiliar General de Servicios",
    ],
}  # fmt: skip
GERENCIA_STAFF = [
    "Gerente Servicio al Cliente",
    "Asistente de Gerencia Servicio al Cliente",
    "Secretaria Ejecutiva",
    "Asistente Administrativo en el Exterior",
]
HISTORY_DATES = [
    "2008-11-19", "2009-04-01", "2011-07-29", "2011-09-01", "2011-12-19",
    "2012-01-01", "2012-02-15", "2013-10-01", "2015-05-20", "2016-03-15",
]  # fmt: skip
VERSION_10_CHANGES = [
    "Creación de los puestos: Asistente Administrativo en el Exterior y Auxiliar de Ventanilla en el Área de "
    "Atención al Cliente.",
    "Renombramiento de puesto: Asistente Activación O/D por Asistente de Solicitudes el Área de Ventas.",
    "Eliminación de los puestos: Coordinador de Ventas, Asistente de Mercadeo, Perito Valuador, "
    "Técnico Jurídico Agencia y Gestor Recuperación Administrativa y Judicial de la Agencia Santa Ana.",
    "Separación de Organigrama de Agencia San Miguel y Agencia Santa Ana.",
    "Creación de organigrama, objetivos y funciones de la Sucursal Paseo.",
]
NOISE = [
    "Fecha de vigencia: 15 de marzo de 2016",
    "Autorizado por:",
    "901 0905 MANUAL",
    "Recommend",
    "downloads",
    "Copyright",
    "MYDOKUMENT",
    "Story Transcript",
    "Get in touch",
    "....",
]


@pytest.fixture(scope="module")
def raw() -> str:
    return MANUAL.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def manual() -> Manual:
    return parse_document(load_file(MANUAL))


def _unit(manual: Manual, name: str):
    unit = manual.unit(name)
    assert unit is not None, f"{name} is missing; units are {[u.name for u in manual.units]}"
    return unit


def _strings(value: Any) -> list[str]:
    """Every string anywhere in a dumped model."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list | tuple):
        return [s for v in value for s in _strings(v)]
    return []


# --- the real manual ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "count"), FUNCTION_COUNTS.items())
def test_each_unit_has_all_its_functions_numbered_in_order(manual: Manual, name: str, count: int) -> None:
    functions = _unit(manual, name).functions
    assert len(functions) == count
    assert [f.numeral for f in functions] == [
        "i",
        "ii",
        "iii",
        "iv",
        "v",
        "vi",
        "vii",
        "viii",
        "ix",
        "x",
        "xi",
    ][:count]
    assert all(f.text and f.text[0].isupper() and f.text.endswith(".") for f in functions)


@pytest.mark.parametrize("name", CHARTS)
def test_every_position_of_every_org_chart_is_in_its_unit(manual: Manual, raw: str, name: str) -> None:
    expected = CHARTS[name]
    # The expected chart really is the manual's: its lines follow each other there (the agencies' first line
    # carries the agency name).
    first = f"{name} {expected[0]}" if name.startswith("Agencia ") else expected[0]
    assert re.search(r"\n\s*".join(re.escape(p) for p in [first, *expected[1:]]), raw)
    assert _unit(manual, name).positions == expected


def test_the_two_agencies_keep_their_own_positions(manual: Manual) -> None:
    santa_ana = set(_unit(manual, "Agencia Santa Ana").positions)
    san_miguel = set(_unit(manual, "Agencia San Miguel").positions)
    assert {"Asistente de Agencia", "Auxiliar de Agencia"} <= santa_ana - san_miguel
    assert {
        "Gestor Recuperación Administrativa y Judicial",
        "Técnico Jurídico Agencia",
    } <= san_miguel - santa_ana
    assert len(santa_ana) == 13 and len(san_miguel) == 9


@pytest.mark.parametrize(("name", "head"), HEADS.items())
def test_every_unit_has_its_head(manual: Manual, name: str, head: str) -> None:
    assert _unit(manual, name).head == head


def test_gerencia_positions_are_the_gerente_and_direct_staff(manual: Manual) -> None:
    assert _unit(manual, GERENCIA).positions == GERENCIA_STAFF


def test_group_heads_report_to_the_gerente(manual: Manual) -> None:
    assert manual.units[0].name == GERENCIA and manual.units[0].parent is None
    groups = [u for u in manual.units if u.number is not None]
    assert [g.name for g in groups] == [n for n in FUNCTION_COUNTS if n != GERENCIA]
    assert {g.parent for g in groups} == {GERENCIA}
    assert [g.number for g in groups] == [1, 2, 3, 4, 5, 6]


def test_agencies_belong_to_agencias_and_share_its_objective_and_functions(manual: Manual) -> None:
    agencias = _unit(manual, "Agencias")
    assert agencias.objective.startswith("Promover los productos y servicios que ofrece la Institución;")
    for name in ("Agencia Santa Ana", "Agencia San Miguel"):
        agency = _unit(manual, name)
        assert agency.parent == "Agencias"
        assert agency.objective == agencias.objective
        assert agency.functions == agencias.functions


@pytest.mark.parametrize(
    ("name", "numeral", "text"),
    [
        (GERENCIA, "ii", "Promover los productos y servicios que la Institución ofrece al mercado."),
        ("Agencias", "vii", "Efectuar gestión de cobro de mora en los préstamos de la zona."),
        (
            "Agencias",
            "vi",
            "Gestionar en los diferentes registros de la zona, la pronta inscripción de las compra ventas e "
            "hipotecas, garantía de la Institución.",
        ),
        (
            "Sucursal Paseo",
            "iii",
            "Evaluar periódicamente los servicios de atención y satisfacción al cliente.",
        ),
        (
            "Área de Atención al Cliente",
            "i",
            "Brindar la información respecto a trámites y requisitos para los diferentes servicios que "
            "presta el Fondo.",
        ),
    ],
)
def test_functions_next_to_a_page_break_are_whole(manual: Manual, name: str, numeral: str, text: str) -> None:
    function = next(f for f in _unit(manual, name).functions if f.numeral == numeral)
    assert function.text == text


def test_no_site_noise_or_page_furniture_in_any_field(manual: Manual) -> None:
    strings = _strings(manual.model_dump(mode="json", exclude={"source", "id"}))
    assert len(strings) > 150
    for s in strings:
        for noise in NOISE:
            assert noise not in s, f"{noise!r} leaked into {s!r}"
        assert not re.fullmatch(r"\s*\d{1,3}\s*", s), f"a page number leaked: {s!r}"


def test_metadata_comes_from_the_cover(manual: Manual) -> None:
    assert manual.code == "901 0905"
    assert manual.title == "Manual de Organización y Funciones Gerencia de Servicio al Cliente"
    assert manual.version == 10
    assert manual.effective_date == dt.date(2016, 3, 15)
    assert manual.created_date == dt.date(2008, 11, 19)
    assert manual.authorized_by == "Presidente y Director Ejecutivo"
    assert manual.purpose.startswith("Mostrar a todo el personal que pertenece a la Gerencia")
    assert manual.warnings == []


def test_history_has_every_version_with_its_date(manual: Manual) -> None:
    assert [h.version for h in manual.history] == list(range(1, 11))
    assert [h.date.isoformat() if h.date else None for h in manual.history] == HISTORY_DATES
    assert all(h.changes for h in manual.history)
    assert manual.history[0].changes == ["Creación."]


def test_version_10_lists_all_five_changes_and_who_prepared_them(manual: Manual) -> None:
    assert manual.history[-1].changes == VERSION_10_CHANGES
    assert manual.history[-1].prepared_by == "Coralia Meardi"


# --- the same manual as PDF and DOCX --------------------------------------------------------------------

_ITEM = re.compile(r" (?=(?:[ivxl]+|\d+)\. [A-ZÁÉÍÓÚÑ])")


def _printed_lines(text: str) -> list[str]:
    """The cleaned lines as a printed MOF sets them: each numbered function and group on a line of its own.

    The scrape runs "… promocionales. 5. Área de Servicios en Línea" together; a real PDF never wraps a
    heading into the middle of a paragraph. The change history is left as scraped.
    """
    body, sep, history = text.partition("IV. MODIFICACIONES")
    lines = [part for line in body.split("\n") for part in (_ITEM.split(line) if line.strip() else [line])]
    return lines + (sep + history).split("\n")


def _write_pdf(lines: list[str], path: Path) -> None:
    from fpdf import FPDF

    unicode_font = DEJAVU.exists()

    class Pdf(FPDF):
        def header(self) -> None:
            self.set_font(family, size=8)
            self.cell(
                0, 5, "FONDO SOCIAL - MOF GERENCIA DE SERVICIO AL CLIENTE - USO INTERNO", new_x="LMARGIN"
            )
            self.ln(8)

        def footer(self) -> None:
            self.set_y(-12)
            self.set_font(family, size=8)
            self.cell(0, 5, f"Documento controlado. Página {self.page_no()} de {{nb}}", align="C")

    pdf = Pdf(format="A4")
    family = "Helvetica"
    if unicode_font:
        pdf.add_font("DejaVu", fname=str(DEJAVU))
        family = "DejaVu"
    pdf.set_auto_page_break(True, margin=15)
    pdf.add_page()
    pdf.set_font(family, size=10)
    for line in lines:
        if line.startswith("I. OBJETIVOS"):
            pdf.add_page()  # the cover is a page of its own
        if not unicode_font:
            line = line.replace("“", '"').replace("”", '"')  # the core fonts are latin-1
        if line.strip():
            pdf.multi_cell(0, 5, line, new_x="LMARGIN", new_y="NEXT")
        else:
            pdf.ln(3)
    pdf.output(str(path))


def _write_docx(lines: list[str], path: Path, per_page: int = 18) -> None:
    import docx

    document = docx.Document()
    section = document.sections[0]
    section.header.paragraphs[0].text = "Encabezado de sección (no aparece en el cuerpo)"
    start = next(i for i, line in enumerate(lines) if line.startswith("I. OBJETIVOS"))
    body = lines[start:]
    # The cover is a page of its own, as in the PDF.
    pages = [lines[:start]] + [body[i : i + per_page] for i in range(0, len(body), per_page)]
    for number, page in enumerate(pages, start=1):
        document.add_paragraph("FONDO SOCIAL - MOF GERENCIA DE SERVICIO AL CLIENTE - USO INTERNO")
        for line in page:
            document.add_paragraph(line)
        document.add_paragraph(f"Documento controlado. Página {number} de {len(pages)}")
        if number < len(pages):
            document.add_page_break()
    document.save(str(path))


@pytest.fixture(scope="module")
def printed(raw: str) -> list[str]:
    return _printed_lines(clean_text(raw).text)


def test_manual_as_pdf_with_its_own_header_and_footer_parses_the_same(
    manual: Manual, printed: list[str], tmp_path: Path
) -> None:
    path = tmp_path / "mof-901-0905.pdf"
    _write_pdf(printed, path)
    doc = load_file(path)
    assert doc.text.count("\f") >= 4  # several pages, so functions do cross page breaks
    from_pdf = parse_document(doc)
    assert from_pdf.to_inspect_dict() == manual.to_inspect_dict()
    assert [h.prepared_by for h in from_pdf.history] == [h.prepared_by for h in manual.history]
    strings = _strings(from_pdf.model_dump(mode="json", exclude={"source", "id"}))
    assert not any("Documento controlado" in s or "USO INTERNO" in s for s in strings)


def test_manual_as_docx_with_visible_header_and_footer_parses_the_same(
    manual: Manual, printed: list[str], tmp_path: Path
) -> None:
    path = tmp_path / "mof-901-0905.docx"
    _write_docx(printed, path)
    doc = load_file(path)
    assert doc.text.count("\f") >= 4
    from_docx = parse_document(doc)
    assert from_docx.to_inspect_dict() == manual.to_inspect_dict()
    strings = _strings(from_docx.model_dump(mode="json", exclude={"source", "id"}))
    assert not any("Documento controlado" in s or "USO INTERNO" in s or "Encabezado" in s for s in strings)


# --- a manual never seen before -------------------------------------------------------------------------

NEXT_HEADER = "902 0100 MANUAL DE ORGANIZACIÓN Y FUNCIONES · GERENCIA DE RECURSOS HUMANOS"
NEXT_FOOTER = "Vigente desde el 2 de enero de 2020 | Aprobado por: Junta Directiva"
NEXT_PAGES = [
    [
        "CÓDIGO 902 0100 MANUAL DE ORGANIZACIÓN Y FUNCIONES GERENCIA DE RECURSOS HUMANOS",
        "Autorizado por: Junta Directiva",
        "Fecha de creación: 10 de junio de 2015",
        "Fecha de vigencia: 2 de enero de 2020",
        "Versión: 3",
        "I. OBJETIVOS DEL MANUAL Dar a conocer la estructura de la Gerencia de Recursos Humanos.",
        "II. ORGANIGRAMA GENERAL DE GERENCIA DE RECURSOS HUMANOS",
        "Gerente de Recursos Humanos",
        "Secretaria de Gerencia",
        "Jefe Área de Nóminas",
        "Jefe Área de Capacitación",
    ],
    [
        "a) Objetivo",
        "Gestionar el talento humano de la Institución.",
        "b) Funciones",
        "i. Dirigir la política de personal de la Institución.",
        "ii. Aprobar los planes de capacitación y",
        "desarrollo del personal.",
        "III. ESTRUCTURA ORGANIZATIVA La Gerencia de Recursos Humanos está dividida en 2 grupos de trabajo:",
        "1. Área de Nóminas",
        "Jefe Área de Nóminas",
        "Analista de Nóminas",
        "a) Objetivo",
        "Pagar los salarios a tiempo.",
    ],
    [
        "b) Funciones",
        "i. Calcular la planilla mensual. ii. Registrar las deducciones de ley.",
        "2. Área de Capacitación",
        "Jefe Área de Capacitación",
        "Técnico de Capacitación",
        "Auxiliar de Capacitación",
        "a) Objetivo",
        "Desarrollar las competencias del personal.",
        "b) Funciones",
        "i. Detectar necesidades de capacitación. ii. Ejecutar el plan anual de capacitación.",
    ],
]


def _scraped(pages: list[list[str]]) -> str:
    out = ["Otro manual", "5 downloads 20 Views", "Story Transcript", ""]
    for number, body in enumerate(pages, start=1):
        out += [NEXT_HEADER, "", *body, "", NEXT_FOOTER, "", str(number), ""]
    return "\n".join([*out, "© Copyright 2013 - 2024 MYDOKUMENT.COM - All rights reserved."])


def test_next_manual_with_another_header_and_footer_is_cleaned_and_parsed(tmp_path: Path) -> None:
    path = tmp_path / "mof-902-0100-recursos-humanos.txt"
    path.write_text(_scraped(NEXT_PAGES), encoding="utf-8")
    parsed = parse_document(load_file(path))
    assert parsed.code == "902 0100"
    assert parsed.version == 3
    assert parsed.effective_date == dt.date(2020, 1, 2)
    assert [(u.name, u.parent, u.head) for u in parsed.units] == [
        ("Gerencia de Recursos Humanos", None, "Gerente de Recursos Humanos"),
        ("Área de Nóminas", "Gerencia de Recursos Humanos", "Jefe Área de Nóminas"),
        ("Área de Capacitación", "Gerencia de Recursos Humanos", "Jefe Área de Capacitación"),
    ]
    assert parsed.units[0].positions == ["Gerente de Recursos Humanos", "Secretaria de Gerencia"]
    assert parsed.units[2].positions == [
        "Jefe Área de Capacitación",
        "Técnico de Capacitación",
        "Auxiliar de Capacitación",
    ]
    assert [f.text for f in parsed.units[0].functions] == [
        "Dirigir la política de personal de la Institución.",
        "Aprobar los planes de capacitación y desarrollo del personal.",
    ]
    assert [f.text for f in parsed.units[1].functions] == [
        "Calcular la planilla mensual.",
        "Registrar las deducciones de ley.",
    ]
    strings = _strings(parsed.model_dump(mode="json", exclude={"source", "id"}))
    for s in strings:
        assert "Vigente desde" not in s and "GERENCIA DE RECURSOS HUMANOS" not in s.replace(
            "II. ORGANIGRAMA", ""
        ), s
        assert "downloads" not in s and "Copyright" not in s


def test_file_without_mof_structure_is_kept_as_plain_sections_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "circular-vacaciones.txt"
    path.write_text(
        "Circular interna\n\nLas vacaciones anuales se solicitan con un mes de anticipación.\n\n"
        "El jefe inmediato aprueba la solicitud.\n",
        encoding="utf-8",
    )
    parsed = parse_document(load_file(path))
    assert parsed.units == [] and parsed.history == []
    assert parsed.sections == [
        "Circular interna",
        "Las vacaciones anuales se solicitan con un mes de anticipación.",
        "El jefe inmediato aprueba la solicitud.",
    ]
    assert len(parsed.warnings) == 1
    assert parsed.warnings[0].startswith("circular-vacaciones.txt: no MOF structure was recognised")


# --- the template's variations (other Gerencias, other authors) --------------------------------------------

VARIED = "\n".join(
    [
        "CÓDIGO 903 0001 MANUAL DE ORGANIZACIÓN Y FUNCIONES DIRECCIÓN DE OPERACIONES",
        "Autorizado: Junta Directiva",
        "Fecha de vigencia: 02 de febrero de 2015",
        "Versión: 2",
        "I. OBJETIVOS DEL MANUAL Dar a conocer la estructura de la Dirección de Operaciones.",
        "II. ORGANIGRAMA GENERAL DE LA DIRECCIÓN DE OPERACIONES",
        "Director de Operaciones",
        "Secretaria Ejecutiva",
        "Subgerente de Logística",
        "Jefe Unidad de Bodega",
        "a) Objetivo",
        "Dirigir las operaciones.",
        "b) Funciones",
        "i. Dirigir la logística.",
        "III. ESTRUCTURA ORGANIZATIVA La Dirección de Operaciones está conformada por: 1. Subgerencia de Logística",
        "Subgerente de Logística",
        "Técnico de Logística",
        "a) Objetivo General",
        "Abastecer a las dependencias.",
        "b) Funciones",
        "i. Planificar las compras. ii. Revisar los casos, tales como: a) urgencias; b) donaciones.",
        "1.1 Unidad de Bodega",
        "Dependencia jerárquica: Subgerencia de Logística",
        "Jefe Unidad de Bodega",
        "Auxiliar de Bodega",
        "a) Objetivo Custodiar los bienes.",
        "b) Funciones",
        "1. Recibir los bienes.",
        "2. Entregar los bienes.",
        "1.2 Unidad de Inventarios",
        "a) Objetivo",
        "Controlar el inventario.",
        "b) Funciones i. Contar los bienes.",
        "IV. MODIFICACIONES REALIZADAS",
        "Versión",
        "Fecha",
        "Descripción de la modificación",
        "1.",
        "10 de enero de 2010",
        "· Creación.",
        "2.",
        "02 de febrero de 2015",
        "· Creación de la Unidad de Inventarios.",
        "· Eliminación del puesto Digitador.",
        "Elaborado por: Ana Pérez.",
    ]
)


@pytest.fixture(scope="module")
def varied(tmp_path_factory: pytest.TempPathFactory) -> Manual:
    path = tmp_path_factory.mktemp("varied") / "mof-903-0001.txt"
    path.write_text(VARIED, encoding="utf-8")
    return parse_document(load_file(path))


def test_nested_units_hang_from_the_enclosing_unit(varied: Manual) -> None:
    assert [(u.name, u.parent) for u in varied.units] == [
        ("Dirección de Operaciones", None),
        ("Subgerencia de Logística", "Dirección de Operaciones"),
        ("Unidad de Bodega", "Subgerencia de Logística"),
        ("Unidad de Inventarios", "Subgerencia de Logística"),
    ]


def test_heads_of_units_below_are_not_the_staff_of_the_unit_above(varied: Manual) -> None:
    top = varied.units[0]
    assert top.head == "Director de Operaciones"
    assert top.positions == ["Director de Operaciones", "Secretaria Ejecutiva"]


def test_dependency_line_is_neither_a_position_nor_the_head(varied: Manual) -> None:
    bodega = varied.unit("Unidad de Bodega")
    assert bodega is not None
    assert bodega.head == "Jefe Unidad de Bodega"
    assert bodega.positions == ["Jefe Unidad de Bodega", "Auxiliar de Bodega"]


def test_unit_without_a_chart_has_no_head(varied: Manual) -> None:
    unit = varied.unit("Unidad de Inventarios")
    assert unit is not None
    assert (unit.head, unit.positions, unit.objective) == (None, [], "Controlar el inventario.")
    assert [f.text for f in unit.functions] == ["Contar los bienes."]


def test_arabic_numerals_and_objetivo_general(varied: Manual) -> None:
    bodega = varied.unit("Unidad de Bodega")
    logistica = varied.unit("Subgerencia de Logística")
    assert bodega is not None and logistica is not None
    assert [(f.numeral, f.text) for f in bodega.functions] == [
        ("1", "Recibir los bienes."),
        ("2", "Entregar los bienes."),
    ]
    assert logistica.objective == "Abastecer a las dependencias."


def test_enumeration_inside_a_function_stays_in_it(varied: Manual) -> None:
    logistica = varied.unit("Subgerencia de Logística")
    assert logistica is not None
    assert logistica.functions[-1].text == "Revisar los casos, tales como: a) urgencias; b) donaciones."


def test_history_table_read_row_by_row(varied: Manual) -> None:
    assert [(h.version, h.date, h.changes, h.prepared_by) for h in varied.history] == [
        (1, dt.date(2010, 1, 10), ["Creación."], ""),
        (
            2,
            dt.date(2015, 2, 2),
            ["Creación de la Unidad de Inventarios.", "Eliminación del puesto Digitador."],
            "Ana Pérez",
        ),
    ]


def test_a_malformed_template_file_names_the_file_and_the_field(tmp_path: Path) -> None:
    import json

    from assistant.template import TEMPLATE_PATH, TemplateError, load_template

    data = json.loads(TEMPLATE_PATH.read_text(encoding="utf-8"))
    data["position_words"] = "jefe"
    bad = tmp_path / "template.json"
    bad.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(TemplateError, match=r"template\.json has a bad field 'position_words'"):
        load_template(bad)
    bad.write_text("{", encoding="utf-8")
    with pytest.raises(TemplateError, match="is not valid JSON"):
        load_template(bad)


def test_a_unit_without_a_chart_takes_its_head_from_its_parents_chart_when_the_heads_line_up():
    from assistant.models import Unit
    from assistant.parse import _without_descendant_heads

    top = Unit(
        name="G",
        parent=None,
        head="Gerente",
        positions=["Gerente", "Secretaria", "Jefe A", "Jefe B", "Oficial C"],
    )
    kids = [
        Unit(name="A", parent="G", head="Jefe A", positions=["Jefe A", "Auxiliar"]),
        Unit(name="B", parent="G", head="Jefe B", positions=["Jefe B"]),
        Unit(name="C", parent="G", head=None, positions=[]),
    ]
    units = {u.name: u for u in _without_descendant_heads([top, *kids])}
    assert (units["C"].head, units["C"].positions) == ("Oficial C", ["Oficial C"])
    assert units["G"].positions == ["Gerente", "Secretaria"]
    # When the known heads do not line up with the chart's end, nothing is guessed.
    shuffled = top.model_copy(update={"positions": ["Gerente", "Jefe B", "Jefe A", "Oficial C"]})
    units = {u.name: u for u in _without_descendant_heads([shuffled, *kids])}
    assert units["C"].head is None


def test_a_change_the_source_interrupts_is_quoted_verbatim_with_an_ellipsis():
    """A table header repeated at a page break sits inside a change's text: the parsed change reads on, and
    its quote keeps to the source, its pieces joined by " … "."""
    from assistant.parse import verbatim

    source = "· Renombramiento del puesto Jefe de Agencia Regional por Jefe de Versión Descripción Oficina Regional."
    assert (
        verbatim("Renombramiento del puesto Jefe de Agencia Regional por Jefe de Oficina Regional.", source)
        == "Renombramiento del puesto Jefe de Agencia Regional por Jefe de … Oficina Regional."
    )
    assert verbatim("Creación de la Oficina Regional Paracentral.", source) == (
        "Creación de la Oficina Regional Paracentral."  # a word the source lacks: no quote is made up
    )
    manual = parse_document(
        load_file(str(MANUAL.parents[1] / "evals" / "manuals" / "gerencia-creditos" / "manual.txt"))
    )
    [entry] = [h for h in manual.history if any(c.startswith("Renombramiento del puesto") for c in h.changes)]
    change = next(c for c in entry.changes if c.startswith("Renombramiento del puesto"))
    assert " … " in entry.quote(change) and entry.quote(change) != change
