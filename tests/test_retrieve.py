"""Hybrid retrieval: filters, ranking, k, glossary expansion, the LangChain retriever, real-manual hits."""

from __future__ import annotations

import json

import pytest
from langchain_core.documents import Document as LCDocument
from langchain_core.retrievers import BaseRetriever

from assistant.chunk import chunk_manual
from assistant.models import Function, Manual, Unit
from assistant.retrieve import (
    Glossary,
    GlossaryEntry,
    HybridRetriever,
    ManualRetriever,
    document_to_hit,
    hit_to_document,
)
from assistant.settings import RetrievalSettings, StoreSettings
from assistant.store import ManualSource, Store
from tests.conftest import REPO_ROOT

GERENCIA = "Gerencia de Prueba"
ATENCION = "Área de Atención al Cliente"
ACTIVOS = "Área de Activos Extraordinarios"
VENTAS = "Área de Ventas"
AGENCIAS = "Agencias"
SANTA_ANA = "Agencia Santa Ana"


def _functions(*texts: str) -> list[Function]:
    numerals = ["i", "ii", "iii", "iv", "v"]
    return [Function(numeral=numerals[i], text=t) for i, t in enumerate(texts)]


TINY = Manual(
    id="mof-tiny",
    source="corpus/mof-tiny.txt",
    code="900 0001",
    title="Manual de Organización y Funciones Gerencia de Prueba",
    version=3,
    units=[
        Unit(
            name=GERENCIA,
            head="Gerente de Prueba",
            positions=["Gerente de Prueba", "Secretaria Ejecutiva"],
            objective="Dirigir la gerencia.",
            functions=_functions("Supervisar la administración de las áreas."),
        ),
        Unit(
            name=ATENCION,
            parent=GERENCIA,
            head="Jefe Área de Atención al Cliente",
            positions=["Jefe Área de Atención al Cliente", "Asistente de Ventanilla"],
            objective="Atender a los clientes de la Institución.",
            functions=_functions(
                "Atender y solventar las quejas y denuncias de los clientes.",
                "Actualizar la base de datos de los clientes.",
            ),
        ),
        Unit(
            name=ACTIVOS,
            parent=GERENCIA,
            head="Jefe Área de Activos Extraordinarios",
            positions=["Jefe Área de Activos Extraordinarios"],
            objective="Administrar el inventario de activos extraordinarios.",
            functions=_functions(
                "Controlar los valúos y revalúos de los activos extraordinarios.",
                "Administrar el inventario de activos extraordinarios del Fondo.",
            ),
        ),
        Unit(
            name=VENTAS,
            parent=GERENCIA,
            head="Jefe Área de Ventas",
            positions=["Jefe Área de Ventas"],
            objective="Promover las ventas.",
            functions=_functions(
                "Desarrollar investigaciones de mercado.",
                "Controlar la recepción y desalojo de los activos extraordinarios.",
            ),
        ),
        Unit(
            name=AGENCIAS,
            parent=GERENCIA,
            head="Jefe de Agencia",
            objective="Atender a los clientes de la zona.",
            functions=_functions("Formalizar créditos hipotecarios."),
        ),
        Unit(
            name=SANTA_ANA,
            parent=AGENCIAS,
            head="Jefe de Agencia",
            positions=["Jefe de Agencia", "Ordenanza"],
            objective="Atender a los clientes de occidente.",
            functions=_functions("Atender y solventar las quejas y denuncias de los clientes de occidente."),
        ),
    ],
)


@pytest.fixture
def tiny_retriever(tmp_path, hash_embedder) -> HybridRetriever:
    """A retriever over the tiny manual: a tmp Chroma store, the hash embedder and the real glossary."""
    source = ManualSource(manual_id=TINY.id, source=TINY.source, sha256="0" * 64, chunks=chunk_manual(TINY))
    store = Store(StoreSettings(path=tmp_path / "index"))
    store.build([source], hash_embedder)
    glossary = Glossary.load(REPO_ROOT / "corpus" / "glossary.json")
    return HybridRetriever(store.open(hash_embedder), hash_embedder, RetrievalSettings(), glossary)


# --- filters and ranking


def test_unit_filter_keeps_only_that_unit_and_its_sub_units(tiny_retriever):
    hits = tiny_retriever.search("atender las quejas de los clientes", k=20, unit=AGENCIAS)

    assert hits
    assert {h.chunk.unit for h in hits} == {AGENCIAS, SANTA_ANA}
    assert all(h.chunk.unit == AGENCIAS or h.chunk.parent == AGENCIAS for h in hits)


def test_section_filter_keeps_only_that_section(tiny_retriever):
    hits = tiny_retriever.search("Jefe de Agencia", k=20, section="organigrama")

    assert hits and {h.chunk.section for h in hits} == {"organigrama"}


def test_unit_and_section_filters_combine(tiny_retriever):
    hits = tiny_retriever.search("clientes", k=20, unit=ATENCION, section="funciones")

    assert [(h.chunk.unit, h.chunk.numeral) for h in sorted(hits, key=lambda h: h.chunk.numeral or "")] == [
        (ATENCION, "i"),
        (ATENCION, "ii"),
    ]


@pytest.mark.parametrize(
    ("query", "filters"),
    [
        ("atender las quejas de los clientes", {}),
        ("atender las quejas de los clientes", {"unit": AGENCIAS}),
        ("clientes", {"unit": ATENCION, "section": "funciones"}),
        ("Jefe de Agencia", {"section": "organigrama", "manual": TINY.id}),
        ("ventas", {"manual": "mof-other"}),
    ],
)
def test_exact_search_in_memory_finds_what_chroma_finds(tiny_retriever, query, filters):
    """A small index is searched in memory; it must rank, score and filter exactly as Chroma's search does."""
    chroma = HybridRetriever(
        tiny_retriever.index,
        tiny_retriever.embedder,
        RetrievalSettings(exact_search_max_chunks=0),
        tiny_retriever.glossary,
    )
    for mode in ("dense", "hybrid"):
        exact = tiny_retriever.search(query, k=20, mode=mode, **filters)
        searched = chroma.search(query, k=20, mode=mode, **filters)
        assert [h.chunk.id for h in exact] == [h.chunk.id for h in searched]
        assert [h.score for h in exact] == pytest.approx([h.score for h in searched], abs=1e-5)


def test_filter_on_an_unknown_unit_returns_nothing(tiny_retriever):
    assert tiny_retriever.search("quejas", unit="Gerencia de Finanzas") == []


@pytest.mark.parametrize("mode", ["hybrid", "dense", "bm25"])
def test_hits_come_best_first_with_scores_and_metadata(tiny_retriever, mode):
    # The chunk's own embedded text, so the hash embedder gives it a cosine of 1.
    query = f"{ACTIVOS}. Funciones, i. Controlar los valúos y revalúos de los activos extraordinarios."
    hits = tiny_retriever.search(query, k=5, mode=mode)

    assert len(hits) == 5
    scores = [h.score for h in hits]
    assert scores == sorted(scores, reverse=True)
    top = hits[0].chunk
    assert (top.unit, top.section, top.numeral) == (ACTIVOS, "funciones", "i")
    assert top.quote == "Controlar los valúos y revalúos de los activos extraordinarios."
    assert top.head == "Jefe Área de Activos Extraordinarios" and top.parent == GERENCIA
    assert top.manual_id == "mof-tiny" and top.manual_version == 3
    if mode == "dense":
        assert all(h.lexical == 0.0 and h.score == pytest.approx(h.dense) for h in hits)
        assert hits[0].dense == pytest.approx(1.0, abs=1e-3)  # the same words: the same text
    if mode == "bm25":
        assert all(h.dense == 0.0 for h in hits) and hits[0].lexical == pytest.approx(1.0)
    if mode == "hybrid":
        settings = tiny_retriever.settings
        for h in hits:
            assert h.score == pytest.approx(
                settings.dense_weight * h.dense + settings.lexical_weight * h.lexical
            )


@pytest.mark.parametrize("k", [1, 3, 7])
def test_search_returns_exactly_k_hits(tiny_retriever, k):
    assert len(tiny_retriever.search("clientes de la Institución", k=k)) == k


def test_k_larger_than_the_index_returns_every_chunk_once(tiny_retriever):
    hits = tiny_retriever.search("clientes", k=50, mode="dense")

    assert len(hits) == len(tiny_retriever.chunks)
    assert len({h.chunk.id for h in hits}) == len(hits)


@pytest.mark.parametrize("k", [0, -1])
def test_k_below_one_is_rejected(tiny_retriever, k):
    with pytest.raises(ValueError, match="k must be at least 1"):
        tiny_retriever.search("quejas", k=k)


def test_default_k_comes_from_settings(tiny_retriever):
    assert len(tiny_retriever.search("clientes")) == tiny_retriever.settings.k


# --- glossary


@pytest.fixture(scope="module")
def real_glossary() -> Glossary:
    return Glossary.load(REPO_ROOT / "corpus" / "glossary.json")


def test_glossary_adds_the_manuals_spanish_words_for_an_english_term(real_glossary):
    assert "valúos" in real_glossary.expand("Who handles appraisals of foreclosed houses?")
    assert "valúos" in real_glossary.expand("who is in charge of the APPRAISAL?")


def test_glossary_matches_inflected_english_words_through_stemming(real_glossary):
    assert "desalojo" in real_glossary.expand("Who is evicting the occupants?")
    assert "desalojo" in real_glossary.expand("who handles evictions")


@pytest.mark.parametrize(
    ("question", "absent"),
    [
        # Matching is by English stem: an entry must not catch an everyday word that stems alike.
        ("what is 17 times 23?", "oportuno"),  # not "timely"
        ("who forecasts the cash flow for the coming months?", "mensual"),  # not "monthly"
        ("who audits employers that do not pay?", "laboral"),  # not "employment"
        ("who analyses the loan applications?", "solicitantes"),  # not "applicants"
        ("which rules apply to suppliers?", "dictamen"),  # not "ruling"
        ("who awards the contracts?", "otorgar"),  # a contract is awarded (adjudicar), a loan granted
    ],
)
def test_glossary_entries_do_not_catch_words_that_only_stem_alike(real_glossary, question, absent):
    assert absent not in real_glossary.expand(question)


def test_glossary_translates_the_manuals_nouns(real_glossary):
    # The manuals' own nouns that no entry translated: furniture, disbursements, legal opinions, guidelines.
    assert "mobiliario" in real_glossary.expand("who keeps the furniture inventory?")
    assert "desembolso" in real_glossary.expand("who requests the disbursement of approved loans?")
    assert "dictamen" in real_glossary.expand("who gives the legal opinion?")
    assert "lineamientos" in real_glossary.expand("who sets the guidelines?")
    # "directs" is the verb "dirigir", not the Dirección it would otherwise name.
    assert "dirigir" in real_glossary.expand("who directs the agencies?").split()
    assert "dirección" not in real_glossary.expand("who directs the agencies?").split()
    # A longer phrase keeps the words of the shorter one it takes over: insurance policies are "seguros" too.
    assert {"pólizas", "seguros"} <= set(real_glossary.expand("who handles the insurance policies?").split())
    # The manuals say "de la zona" / "de la región" where English says "in the regions".
    assert "zona" in real_glossary.expand("who collects late payments in the regions?").split()


def test_glossary_adds_nothing_to_a_question_without_known_terms(real_glossary):
    assert real_glossary.expand("zzz qqq") == ""


def test_glossary_prefers_the_longest_phrase_without_overlaps():
    glossary = Glossary(
        [
            GlossaryEntry(("customer service",), "servicio al cliente"),
            GlossaryEntry(("customer service management",), "Gerencia de Servicio al Cliente"),
            GlossaryEntry(("customer",), "clientes"),
        ]
    )

    assert glossary.expand("Who leads customer service management?") == "Gerencia de Servicio al Cliente"
    assert glossary.expand("customer service and every customer") == "servicio al cliente clientes"


def test_glossary_file_missing_means_no_expansion(tmp_path):
    assert Glossary.load(tmp_path / "nope.json").expand("appraisals") == ""


def test_glossary_loads_entries_from_json(tmp_path):
    path = tmp_path / "glossary.json"
    path.write_text(json.dumps({"entries": [{"match": ["appraisal"], "add": "valúos"}]}), encoding="utf-8")

    assert Glossary.load(path).expand("Who does appraisals?") == "valúos"


def test_glossary_lets_an_english_question_find_the_spanish_line_lexically(tiny_retriever):
    hits = tiny_retriever.search("Who handles the appraisals?", k=1, mode="bm25")

    assert hits and hits[0].chunk.quote == "Controlar los valúos y revalúos de los activos extraordinarios."


def test_without_glossary_the_english_question_finds_no_spanish_line_lexically(tiny_retriever):
    plain = HybridRetriever(tiny_retriever.index, tiny_retriever.embedder, RetrievalSettings(), Glossary([]))

    assert plain.search("Who handles the appraisals?", k=1, mode="bm25") == []


# --- LangChain face


def test_manual_retriever_returns_langchain_documents_with_scores(tiny_retriever):
    retriever = ManualRetriever(retriever=tiny_retriever, k=3)

    docs = retriever.invoke("quejas y denuncias de los clientes")

    assert isinstance(retriever, BaseRetriever)
    assert len(docs) == 3 and all(isinstance(d, LCDocument) for d in docs)
    assert "quejas y denuncias" in docs[0].page_content
    assert docs[0].metadata["section"] == "funciones"
    assert docs[0].metadata["unit"] in {ATENCION, SANTA_ANA}
    assert docs[0].metadata["score"] >= docs[1].metadata["score"] >= docs[2].metadata["score"]
    assert docs[0].id == tiny_retriever.search("quejas y denuncias de los clientes", k=1)[0].chunk.id


def test_hit_survives_the_round_trip_through_a_langchain_document(tiny_retriever):
    hit = tiny_retriever.search("valúos", k=1)[0]

    assert document_to_hit(hit_to_document(hit)) == hit


# --- the real manual, real model


@pytest.fixture(scope="module")
def real_retriever(real_assistant) -> HybridRetriever:
    return real_assistant.retriever


@pytest.mark.integration
@pytest.mark.parametrize(
    ("question", "unit", "numeral"),
    [
        ("who handles activos extraordinarios appraisals?", ACTIVOS, "ii"),
        ("¿Quién desarrolla investigaciones de mercado?", VENTAS, "ix"),
        ("Who evicts the occupants of foreclosed properties?", VENTAS, "viii"),
        ("¿Quién formaliza los créditos hipotecarios?", AGENCIAS, "iii"),
        ("¿Quién controla el centro de atención telefónica?", ATENCION, "viii"),
        ("Who keeps the customer database up to date?", ATENCION, "iii"),
    ],
)
def test_expected_function_line_is_the_first_hit(real_retriever, question, unit, numeral):
    top = real_retriever.search(question, k=1)[0].chunk

    assert (top.unit, top.section, top.numeral) == (unit, "funciones", numeral)


@pytest.mark.integration
@pytest.mark.parametrize(
    ("question", "unit", "numeral"),
    [
        ("Who is the liaison with the e-government initiatives?", "Área de Servicios en Línea", "iv"),
        ("Which unit organises housing fairs?", VENTAS, "vii"),
        ("Who handles the refund of contributions when someone retires?", AGENCIAS, "v"),
    ],
)
def test_expected_function_line_is_in_the_top_three(real_retriever, question, unit, numeral):
    top3 = [(h.chunk.unit, h.chunk.section, h.chunk.numeral) for h in real_retriever.search(question, k=3)]

    assert (unit, "funciones", numeral) in top3


@pytest.mark.integration
@pytest.mark.parametrize(
    "question", ["¿Quién atiende las quejas de los clientes?", "Who handles customer complaints?"]
)
def test_complaints_question_finds_a_quejas_y_denuncias_line_in_the_top_three(real_retriever, question):
    quotes = [h.chunk.quote for h in real_retriever.search(question, k=3)]

    assert any("quejas y denuncias" in q for q in quotes)


@pytest.mark.integration
def test_real_unit_filter_finds_the_agencies_line_only(real_retriever):
    hits = real_retriever.search(
        "quejas y denuncias de los clientes", k=3, unit=AGENCIAS, section="funciones"
    )

    assert hits[0].chunk.unit == AGENCIAS and hits[0].chunk.numeral == "ix"
    assert all(h.chunk.unit == AGENCIAS or h.chunk.parent == AGENCIAS for h in hits)
