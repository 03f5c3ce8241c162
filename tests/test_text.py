"""Text helpers: accent folding, tokens, BM25 terms, language detection and the speller."""

from __future__ import annotations

import pytest

from assistant.text import (
    Speller,
    detect_language,
    english_stem,
    fold,
    lexical_terms,
    of_article,
    stem,
    stem_variants,
    tokens,
    with_article,
)


def test_fold_lower_cases_and_strips_accents():
    assert fold("Área de ATENCIÓN, Año, pingüino") == "area de atencion, ano, pinguino"


def test_tokens_are_folded_words_without_punctuation():
    assert tokens("¿Quién atiende las quejas, ÁREA 10?") == [
        "quien",
        "atiende",
        "las",
        "quejas",
        "area",
        "10",
    ]


def test_lexical_terms_drop_stop_words_and_stem_in_spanish():
    assert lexical_terms("¿Quién atiende las quejas de los clientes?") == ["atiend", "quej", "client"]
    assert lexical_terms("Who handles the complaints?") == ["handl", "complaints"]


def test_lexical_terms_match_across_accents_and_inflection():
    assert lexical_terms("valúos") == lexical_terms("VALUOS")
    assert lexical_terms("créditos hipotecarios") == lexical_terms("credito hipotecario")


def test_stemmers_reduce_inflected_forms_to_one_stem():
    assert stem("quejas") == stem("queja")
    assert english_stem("evicting") == english_stem("eviction") == english_stem("evicted")


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("¿Quién atiende las quejas?", "es"),
        ("quien atiende las quejas", "es"),
        ("¿Qué puestos tiene la Agencia Santa Ana?", "es"),
        ("Dime los puestos del Área de Ventas", "es"),
        ("Área de Ventas funciones", "es"),
        ("Who handles customer complaints?", "en"),
        ("What positions does the Online Services Area have?", "en"),
        ("what about San Miguel?", "en"),
        # Mixed: an English question about Spanish names stays English, and vice versa.
        ("who handles activos extraordinarios appraisals?", "en"),
        ("Who heads the Área de Ventas?", "en"),
        ("the functions of Área de Ventas", "en"),
        ("¿Quién maneja los appraisals?", "es"),
        ("Has the Área de Seguros de Deuda y Daños always been part of the credit management?", "en"),
        ("Was the Departamento de Contratación y Escrituración always a department?", "en"),
        ("y San Miguel?", "es"),
    ],
)
def test_detect_language(text, language):
    assert detect_language(text) == language


@pytest.mark.parametrize("text", ["", "   ", "12345", "Agencia Santa Ana"])
def test_detect_language_defaults_to_spanish_without_english_cues(text):
    assert detect_language(text) == "es"


@pytest.fixture(scope="module")
def speller() -> Speller:
    return Speller(
        {"customer", "quien", "quejas", "clientes", "atiende", "valuos", "who", "handles", "complaints"}
    )


@pytest.mark.parametrize(("word", "fixed"), [("custmer", "customer"), ("qien", "quien"), ("quejs", "quejas")])
def test_speller_corrects_misspelt_words_to_known_ones(speller, word, fixed):
    assert speller.fix(word) == fixed


@pytest.mark.parametrize("word", ["properly", "tasa", "cliente", "customer", "xyzzyq", "ab", "2016"])
def test_speller_leaves_known_common_short_or_hopeless_words_alone(speller, word):
    assert speller.fix(word) is None


def test_a_verb_with_attached_pronouns_is_its_infinitive_not_a_near_word():
    speller = Speller({"administrar", "administrativas", "entregar", "firmar"})
    assert speller.fix("administrarlas") == "administrar"  # not the manual's "administrativas"
    assert speller.fix("firmarlos") == "firmar"
    assert speller.fix("tramitarselos") is None  # a verb the manuals do not use stays as it is


def test_a_folded_spanish_word_is_known_by_its_accented_spelling():
    speller = Speller({"labor", "dirigir"})
    assert speller.fix("elaboro") is None  # "elaboró", folded: a word, not a typo of "labor"
    assert speller.fix("laborr") == "labor"


def test_speller_corrects_a_whole_question(speller):
    assert speller.corrections("Qien atiende las quejs del custmer properly") == {
        "qien": "quien",
        "quejs": "quejas",
        "custmer": "customer",
    }
    assert speller.correct("Qien atiende") == "quien atiende"


def test_speller_remembers_its_fuzzy_search_results(monkeypatch):
    speller = Speller({"customer", "quejas"})
    searched: list[str] = []
    closest = speller._closest
    monkeypatch.setattr(speller, "_closest", lambda w: (searched.append(w), closest(w))[1])
    assert [speller.fix("custmer") for _ in range(3)] == ["customer"] * 3
    assert [speller.fix("xyzzyq") for _ in range(2)] == [None, None]
    assert searched == ["custmer", "xyzzyq"]


def test_speller_memory_is_bounded(monkeypatch):
    from assistant import text

    monkeypatch.setattr(text, "_MAX_REMEMBERED_FIXES", 3)
    speller = Speller({"customer"})
    for word in ("aaaqq", "bbbqq", "cccqq", "dddqq", "eeeqq"):
        speller.fix(word)
    assert len(speller._fixed) <= 3


def test_speller_warm_up_loads_the_word_lists():
    Speller(set()).warm_up()  # raises if wordfreq's lists cannot be read
    assert Speller(set()).is_common_word("properly")


@pytest.mark.parametrize(
    ("word", "infinitive"), [("promueve", "promover"), ("cierra", "cerrar"), ("entiende", "entender")]
)
def test_stem_variants_undo_a_radical_changing_verbs_diphthong(word, infinitive):
    assert stem(infinitive) in stem_variants(stem(word))
    assert stem_variants("fond") == set()


def test_articles_agree_with_the_units_noun():
    assert with_article("Área de Ventas") == "el Área de Ventas"
    assert of_article("Departamento de Análisis") == "del Departamento de Análisis"
    assert of_article("Gerencia de Créditos", bold=True) == "de la **Gerencia de Créditos**"
    assert of_article("Comité X") == "de Comité X"
