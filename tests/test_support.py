"""The support check of "who handles X" answers: measured features, a calibrated score, a validated file."""

from __future__ import annotations

import json

import numpy as np
import pytest

from assistant.models import Chunk
from assistant.support import (
    DEFAULT_MODEL_PATH,
    FEATURES,
    SupportModel,
    SupportModelError,
    SupportScorer,
    fit_logistic,
)
from tests.fakes import HashEmbedder

LINES = [
    ("Controlar los valúos y revalúos de los activos extraordinarios del Fondo.", "Activos"),
    ("Administrar el inventario de activos extraordinarios del Fondo.", "Activos"),
    ("Atender las quejas de los clientes del Fondo.", "Atención"),
    ("Promover los productos del Fondo a los clientes.", "Ventas"),
    ("Desarrollar investigaciones de mercado.", "Ventas"),
    ("Formalizar créditos hipotecarios en la zona de Santa Ana.", "Agencia"),
    ("Recuperar los créditos en mora del Fondo.", "Agencia"),
]


def _chunks() -> list[Chunk]:
    return [
        Chunk(
            id=f"c{i}",
            text=f"{unit}: {line}",
            quote=line,
            manual_id="m",
            section="funciones",
            unit=unit,
            numeral=str(i + 1),
        )
        for i, (line, unit) in enumerate(LINES)
    ]


def _model() -> SupportModel:
    """A hand-set model that trusts coverage most, as the fitted one does."""
    weights = {"coverage": 4.0, "missing_known": -2.0, "missing": -2.0, "dense_topic": 1.0, "known": 1.0}
    return SupportModel(
        FEATURES,
        tuple(weights.get(f, 0.0) for f in FEATURES),
        -1.5,
        tuple(0.0 for _ in FEATURES),
        tuple(1.0 for _ in FEATURES),
        0.5,
    )


@pytest.fixture
def scorer() -> SupportScorer:
    chunks = _chunks()
    embedder = HashEmbedder()
    vectors = embedder.encode_passages([c.text for c in chunks])
    return SupportScorer(chunks, vectors, embedder.embed_query, _model())


def _support(scorer: SupportScorer, topic: str, line: int) -> float:
    chunk = scorer.chunks[line]
    return scorer.score(topic, [(chunk, 0.8)])[0].support


def test_words_in_many_lines_weigh_less_than_rare_ones(scorer):
    assert scorer.weight("fond") < scorer.weight("valu")
    assert scorer.weight("never-seen") == 1.0


def test_a_covering_line_scores_above_a_line_sharing_only_a_generic_word(scorer):
    covering = _support(scorer, "valúos activos extraordinarios", 0)
    generic = _support(scorer, "contabilidad general del Fondo", 1)

    assert covering > scorer.model.threshold > generic


def test_place_name_overlap_alone_does_not_pass(scorer):
    # "Santa Ana" is in the line, the topic (the weather) is not.
    assert _support(scorer, "va a llover hoy en Santa Ana", 5) < scorer.model.threshold


def test_chit_chat_has_no_known_topic_word(scorer):
    scored = scorer.score("tell joke accountants", [(scorer.chunks[4], 0.8)])[0]

    assert scored.features["known"] == 0.0


def test_features_are_all_measured_and_finite(scorer):
    scored = scorer.score("quejas clientes", [(scorer.chunks[2], 0.8)])[0]

    assert set(scored.features) == set(FEATURES)
    assert all(np.isfinite(v) for v in scored.features.values())
    assert scored.features["agreement"] == 1.0  # dense and lexical ranks both put this line first
    assert 0.0 <= scored.support <= 1.0


def test_extra_lines_beyond_the_candidates_are_those_the_topic_ranks_best(scorer):
    covering = scorer.chunks[0]  # the valúos line
    scored = scorer.score("valúos activos extraordinarios", [(scorer.chunks[1], 0.8)], extra=2, question="x")

    assert [s.chunk.id for s in scored][:1] == [scorer.chunks[1].id]
    assert len(scored) == 3 and covering.id in {s.chunk.id for s in scored[1:]}
    assert max(scored, key=lambda s: s.support).chunk.id == covering.id
    only = scorer.score("valúos activos extraordinarios", [(covering, 0.8)], extra=2)
    assert len({s.chunk.id for s in only}) == 3  # a candidate is never added twice


def test_a_lines_support_does_not_change_when_another_manual_is_indexed(scorer):
    other = [
        Chunk(id=f"x{i}", text=line, quote=line, manual_id="other", section="funciones", unit="Contabilidad")
        for i, line in enumerate(
            ["Llevar la contabilidad general del Fondo.", "Controlar los valúos de los activos del Fondo."]
        )
    ]
    embedder = HashEmbedder()
    chunks = [*scorer.chunks, *other]
    both = SupportScorer(
        chunks, embedder.encode_passages([c.text for c in chunks]), embedder.embed_query, _model()
    )
    topic, line = "valúos activos extraordinarios", scorer.chunks[0]

    alone = scorer.score(topic, [(line, 0.8)])[0]
    beside = both.score(topic, [(line, 0.8)])[0]

    assert "contabil" in both.vocabulary and "contabil" not in scorer.vocabulary
    assert beside.features == pytest.approx(alone.features) and beside.support == pytest.approx(alone.support)
    # The other manual's line is judged against its own manual's words.
    assert both.score("contabilidad", [(other[0], 0.8)])[0].features["coverage"] == 1.0


def test_fit_logistic_separates_separable_data():
    x = np.array([[0.1, 0.0], [0.2, 0.1], [0.8, 0.9], [0.9, 1.0]])
    y = np.array([0.0, 0.0, 1.0, 1.0])
    w, b, mean, scale = fit_logistic(x, y)
    z = (x - mean) / scale @ w + b

    assert (z[y == 1] > 0).all() and (z[y == 0] < 0).all()


def test_the_shipped_model_loads_and_names_known_features():
    model = SupportModel.load(DEFAULT_MODEL_PATH)

    assert set(model.features) <= set(FEATURES)
    assert 0.0 <= model.threshold <= 1.0


def test_the_default_threshold_is_the_shipped_models_calibrated_one():
    """`python -m evals.calibrate` writes a new model and threshold: the setting must move with it."""
    from assistant.settings import AnswerSettings

    assert AnswerSettings().support_threshold == SupportModel.load(DEFAULT_MODEL_PATH).threshold


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"weights": [1.0]}, "'weights' must be a list of"),
        ({"features": ["dense_topic", "shoe_size"]}, "unknown feature"),
        ({"scale": None}, "'scale' must be a list"),
        ({"threshold": 3}, "'threshold' in \\[0, 1\\]"),
        ({"bias": "x"}, "must be numbers"),
    ],
)
def test_a_malformed_model_file_is_refused_with_the_fix(tmp_path, change, message):
    data = _model().to_json()
    data.update(change)
    path = tmp_path / "support.json"
    path.write_text(json.dumps(data), encoding="utf-8")

    with pytest.raises(SupportModelError, match=message) as err:
        SupportModel.load(path)
    assert "python -m evals.calibrate" in str(err.value)


def test_a_missing_model_file_names_the_command_that_writes_it(tmp_path):
    with pytest.raises(SupportModelError, match=r"evals\.calibrate"):
        SupportModel.load(tmp_path / "absent.json")


# --- topic terms ---------------------------------------------------------------------------------------------


class _Glossary:
    """Two entries whose phrases stem alike both match "plan": one span, not two terms."""

    def match_spans(self, text: str) -> list[tuple[int, int, str]]:
        words = text.lower().split()
        return [(i, i + 1, add) for i, w in enumerate(words) if w == "plan" for add in ("plan", "planificar")]

    def expand(self, text: str) -> str:
        return ""


def test_glossary_entries_matching_the_same_words_make_one_term():
    chunks = _chunks()
    embedder = HashEmbedder()
    vectors = embedder.encode_passages([c.text for c in chunks])
    scorer = SupportScorer(chunks, vectors, embedder.embed_query, _model(), spans=_Glossary().match_spans)
    terms = scorer.terms("plan capacitacion")
    assert [t.text for t in terms] == ["plan", "capacitacion"]  # the topic's order, "plan" once


def test_everyday_words_no_manual_uses_weigh_less_than_rare_ones(scorer):
    weights = {t.text: t.weight for t in scorer.terms("been tener refinanciamientos")}
    assert weights["been"] < 0.5 and weights["tener"] < 0.7
    assert weights["refinanciamientos"] == 1.0


# --- follow-ups (chain.condense) -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def catalog():
    from assistant.engine import Catalog
    from assistant.ingest import load_file
    from assistant.parse import parse_document
    from tests.conftest import REPO_ROOT

    path = REPO_ROOT / "corpus" / "mof-901-0905-gerencia-servicio-al-cliente-v10.txt"
    return Catalog([parse_document(load_file(path))])


def test_a_follow_up_swapping_the_version_repeats_the_question_for_it(catalog):
    from assistant.chain import condense

    history = [("What changed in version 3?", "Version 3 …")]
    assert condense("¿y en la versión 4?", history, catalog) == "What changed in version 4?"


def test_the_units_a_change_history_answer_lists_are_not_what_that_area_points_at(catalog):
    from assistant.chain import condense

    records = (
        "According to the change history of the manual *Gerencia de Servicio al Cliente (901 0905, v10)*:\n"
        "**Version 2** (April 1, 2009):\n- «Renombre del Área de Servicio al Cliente y Mercadeo, por Área de "
        "Ventas.»\n- «Creación del Área de Servicios en Línea.»"
    )
    history = [
        ("¿Qué pasó con el puesto de Coordinador de Activos Extraordinarios?", records),
        ("when was that?", records),
    ]
    assert condense("so who heads that area now?", history, catalog) == (
        "so who heads that area now? (Área de Activos Extraordinarios)"
    )


def test_a_chain_of_follow_ups_keeps_the_unit_of_the_first(catalog):
    from assistant.chain import condense

    history = [
        ("¿Qué funciones tiene la Sucursal Paseo?", "Funciones de **Sucursal Paseo** …"),
        ("¿Cuándo se creó?", "Según el historial del manual *Gerencia de Servicio al Cliente* …"),
    ]
    assert condense("who heads it?", history, catalog) == "who heads it? (Sucursal Paseo)"


def test_positions_of_that_area_follow_the_unit_that_answered(catalog):
    from assistant.chain import condense

    history = [
        (
            "¿Quién se ocupa de la base de datos de clientes?",
            "Según el manual, se encarga **Área de Atención al Cliente** (a cargo del Jefe …), función iii: …",
        )
    ]
    out = condense("what positions are in that area?", history, catalog)
    assert out == "what positions are in that area? (Área de Atención al Cliente)"


def test_a_radical_changing_verb_covers_its_infinitive(scorer):
    # "promueve" (o → ue) is "Promover"; the Snowball stems differ (promuev / promov), the coverage must not.
    [scored] = scorer.score("promueve productos", [(scorer.chunks[3], 0.8)])
    assert scored.features["coverage"] == 1.0
    assert scorer.score("investiga mercado", [(scorer.chunks[3], 0.8)])[0].features["coverage"] < 1.0


def test_a_follow_up_on_the_manuals_code_carries_the_code(catalog):
    from assistant.chain import condense

    history = [("¿Cuál es el código del manual?", "El código del manual es **901 0905**.")]
    assert condense("and what was it before?", history, catalog) == "and what was it before? (codigo manual)"


@pytest.mark.parametrize(
    ("previous", "follow_up", "carried"),
    [
        # "them": the last plural phrase of the object, not the taxes paid on it.
        ("Who pays the municipal taxes on repossessed properties?", "and who coordinates selling them?",
         "(repossessed properties)"),
        ("¿Quién paga los impuestos municipales de los inmuebles adjudicados?", "¿Y quién los vende?",
         "(inmuebles adjudicados)"),
        # One phrase: all of it, as before.
        ("¿Quién formaliza los créditos hipotecarios?", "¿Y quién los promueve?", "(creditos hipotecarios)"),
    ],
)  # fmt: skip
def test_a_pronoun_stands_for_the_last_phrase_agreeing_in_number(catalog, previous, follow_up, carried):
    from assistant.chain import condense

    history = [(previous, "Según el manual, se encarga **Área de Ventas** …")]
    assert condense(follow_up, history, catalog) == f"{follow_up} {carried}"


@pytest.mark.parametrize(
    ("follow_up", "carried"),
    [
        ("which manual lost validity then?", "(version 2)"),
        ("¿y qué puestos se eliminaron entonces?", "(versión 2)"),
    ],
)
def test_then_points_back_to_the_version_asked_before(catalog, follow_up, carried):
    from assistant.chain import condense

    history = [("¿Qué cambió en la versión 2?", "Según el historial de modificaciones …")]
    assert condense(follow_up, history, catalog) == f"{follow_up} {carried}"
    assert (
        condense(follow_up, [("¿Quién dirige el Área de Ventas?", "…")], catalog) != f"{follow_up} {carried}"
    )


@pytest.mark.parametrize(
    ("follow_up", "pronoun"),
    [
        ("¿Y quién los promueve?", "los"),  # before the verb: a pronoun
        ("¿y quién hace los borradores de esas escrituras?", None),  # an article, a determiner
        ("and who approves them?", "them"),
        ("and who chairs that committee?", None),  # "that" before its own noun
        ("¿y quién le avisa al solicitante?", None),  # "le" doubles the person named after it
        ("¿y quién les da seguimiento?", "les"),
    ],
)
def test_an_object_pronoun_is_told_from_an_article_or_a_determiner(follow_up, pronoun):
    from assistant.chain import _pronoun
    from assistant.text import fold

    assert _pronoun(fold(follow_up)) == pronoun


def test_a_follow_up_on_a_manual_named_by_its_gerencia_carries_the_manual(catalog):
    from assistant.chain import condense

    gerencia = catalog.manuals[0].gerencia
    history = [(f"¿En qué versión va el manual de la {gerencia}?", "La versión vigente es la **10**.")]
    out = condense("and when was it first created?", history, catalog)
    assert out == f"and when was it first created? (manual {gerencia})"


def test_that_position_is_the_position_the_last_answer_named(catalog):
    from assistant.chain import condense

    history = [
        ("¿Quién dirige el Área de Ventas?", "**Área de Ventas** está a cargo del **Jefe Área de Ventas**.")
    ]
    out = condense("has that position always had that name?", history, catalog)
    assert out == "has that position always had that name? (Jefe Área de Ventas)"


def test_that_position_is_the_one_the_user_named_not_the_head_an_answer_mentions(catalog):
    from assistant.chain import condense

    history = [
        (
            "¿Qué hace el Promotor de Créditos?",
            "Según el manual, se encarga **Área de Ventas** (a cargo del Jefe Área de Ventas), función i: …",
        )
    ]
    out = condense("¿desde cuándo existe ese puesto?", history, catalog)
    assert out == "¿desde cuándo existe ese puesto? (Promotor de Créditos)"


def test_a_position_removed_in_a_version_asks_the_change_history_first():
    from assistant.engine.engine import routes_for
    from assistant.engine.query import Query

    q = "¿y en el manual de servicio al cliente en que version se elimino ese puesto?"
    query = Query(q=q, units=[], explicit=False, positions=[], leftover=[], text=q)
    assert routes_for(query)[0][0] == "history"


def test_the_next_version_is_the_one_after_the_version_the_last_answer_was_about(catalog):
    from assistant.chain import condense

    history = [("¿Qué unidad se incorporó en la versión 3?", "**Versión 3** (29 de julio de 2011):\n- «…»")]
    assert condense("and what happened to it in the next version?", history, catalog) == (
        "and what happened to it in the next version? (version 4)"
    )


def test_that_version_beside_a_named_unit_is_the_version_the_last_answer_was_about(catalog):
    from assistant.chain import condense

    history = [("¿Desde cuándo está vigente la versión 10?", "**Versión 10** (15 de marzo de 2016):\n- «…»")]
    question = "what positions did that version add to the Área de Atención al Cliente?"
    assert condense(question, history, catalog) == f"{question} (version 10)"


def test_a_kind_of_position_asked_alone_is_asked_of_the_unit_that_answered(catalog):
    from assistant.chain import condense

    history = [
        (
            "¿Quién evalúa la satisfacción de los clientes?",
            "Según el manual, se encarga **Sucursal Paseo** (a cargo del Coordinador de Sucursal), función iii: …",
        )
    ]
    assert condense("does it have any assistants?", history, catalog) == (
        "does it have any assistants? (Sucursal Paseo)"
    )
    assert catalog.says_a_title(["asistentes"]) and catalog.says_a_title(["assistants"])
    assert not catalog.says_a_title(["promotes"])  # a verb, not the Promotor
