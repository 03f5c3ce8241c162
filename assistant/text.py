"""Text helpers shared by retrieval and answering: accent folding, tokens, Spanish stems, language."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache
from typing import Literal

import snowballstemmer

_STEMMER = snowballstemmer.stemmer("spanish")
_EN_STEMMER = snowballstemmer.stemmer("english")
_TOKEN = re.compile(r"[a-z0-9ñ]+")

STOP_ES = frozenset(
    """a al algo ante como con cual cuales de del desde donde el ella ellas ellos en entre era es esa ese eso
    esta estan este esto fue ha han hay la las le les lo los mas me mi mis muy no nos o otra otro para pero
    por que quien quienes se segun ser si sin sobre son su sus tambien tiene todo tu un una unas uno unos y ya
    cual cuales cuanto cuantos cuantas como donde cuando hace hacen puede debe esta estas estos otros otras demas
    ahora entonces actualmente todavia aun propio propia propios propias directamente""".split()
)
STOP_EN = frozenset(
    """a an and are as at be by can do does for from has have how i in is it its of on or the their there this
    to was what when where which who whom whose why will with you your me my our we they them that these those
    about into any all also should would could tell please many much more most number other others else so now
    then just only still already currently own directly did""".split()
)
_EN_MARKERS = frozenset(
    "who what which how where when why does do is are the of and handles handle in charge responsible".split()
)
_ES_MARKERS = frozenset(
    "quien quienes que cual cuales como donde cuando cuantos cuantas el la los las de del y se es son "
    "encarga maneja responsable puestos funciones".split()
)


@lru_cache(maxsize=16384)
def fold(text: str) -> str:
    """Lower-case and strip accents (keeps ñ as n): for matching, never for display.

    Cached: answering folds the same manual lines and unit names many times per question.
    """
    if text.isascii():
        return text.lower()
    nfkd = unicodedata.normalize("NFKD", text)
    return "".join(c for c in nfkd if not unicodedata.combining(c)).lower()


def tokens(text: str) -> list[str]:
    """Folded word tokens."""
    return _TOKEN.findall(fold(text))


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """Spanish Snowball stem of a folded word."""
    return str(_STEMMER.stemWord(word))


def stem_variants(s: str) -> set[str]:
    """Stems a Spanish stem may alternate with in a radical-changing verb: ``promuev`` (promueve) →
    ``promov`` (promover), ``ciert`` (cierra) → ``cert``... each diphthong (ue → o, ie → e) undone once."""
    out = set()
    for diphthong, vowel in (("ue", "o"), ("ie", "e")):
        start = s.find(diphthong, 1)
        while start != -1:
            out.add(s[:start] + vowel + s[start + 2 :])
            start = s.find(diphthong, start + 1)
    return out


@lru_cache(maxsize=65536)
def english_stem(word: str) -> str:
    """English Snowball stem of a folded word (for matching glossary phrases)."""
    return str(_EN_STEMMER.stemWord(word))


def lexical_terms(text: str) -> list[str]:
    """Tokens for BM25: folded, stop words dropped, Spanish-stemmed."""
    return [stem(t) for t in tokens(text) if t not in STOP_ES and t not in STOP_EN and len(t) > 1]


def detect_language(text: str) -> Literal["es", "en"]:
    """Spanish or English, from interrogatives, marker words and Spanish-only characters."""
    if re.search(r"[¿¡]", text):
        return "es"
    words = tokens(text)
    if not words:
        return "es"
    en = sum(1 for w in words if w in _EN_MARKERS or w in STOP_EN)
    es = sum(1 for w in words if w in _ES_MARKERS or w in STOP_ES)
    # An English interrogative opening the question decides a mixed question ("who handles activos …").
    if words[0] in {
        "who",
        "what",
        "which",
        "how",
        "where",
        "when",
        "why",
        "does",
        "do",
        "is",
        "are",
        "can",
        "list",
        "tell",
        "show",
        "name",
        "give",
        "has",
        "have",
        "had",
        "was",
        "were",
        "did",
        "will",
        "would",
        "could",
        "should",
    }:
        return "en"
    if words[0] in {
        "quien",
        "quienes",
        "que",
        "cual",
        "cuales",
        "como",
        "donde",
        "cuando",
        "cuantos",
        "cuantas",
        "lista",
        "dime",
        "muestra",
        "menciona",
    }:
        return "es"
    if "ñ" in text.lower():
        return "es"  # after the openers: "Has the Área de … Daños always been …?" is English
    return "en" if en > es else "es"


_MAX_REMEMBERED_FIXES = 4096


class Speller:
    """Corrects misspelt words against the vocabulary the assistant knows (manual, glossary, question words)."""

    def __init__(self, vocabulary: set[str], min_zipf: float = 3.0) -> None:
        self.vocabulary = {w for w in vocabulary if len(w) > 1}
        self.min_zipf = min_zipf
        self._by_length: dict[int, list[str]] = {}
        for w in sorted(self.vocabulary):
            self._by_length.setdefault(len(w), []).append(w)
        # Unknown words come back (names, "please", the same typo from many users); each costs a fuzzy
        # search of the vocabulary (up to ~40 ms), so results are kept, a bounded number of them.
        self._fixed: dict[str, str | None] = {}

    def warm_up(self) -> None:
        """Load the word-frequency lists now (about half a second) instead of in the first user's question."""
        self.is_common_word("manual")

    def fix(self, word: str) -> str | None:
        """The closest known word to an unknown one, or None when the word is known or nothing is close."""
        if len(word) < 3 or word in self.vocabulary or word.isdigit():
            return None
        try:
            return self._fixed[word]
        except KeyError:
            pass
        fixed = self._closest(word)
        if len(self._fixed) >= _MAX_REMEMBERED_FIXES:
            self._fixed.clear()
        self._fixed[word] = fixed
        return fixed

    def _closest(self, word: str) -> str | None:
        if self.is_common_word(word):
            return None
        verb = _ENCLITIC.fullmatch(word)
        if verb and (verb.group(1) in self.vocabulary or self.is_common_word(verb.group(1))):
            # "administrarlas" is "administrar" with its object pronoun, not a typo of "administrativas".
            return verb.group(1) if verb.group(1) in self.vocabulary else None
        if len(word) == 3 and self.is_common_word(word, 1.0):
            return None  # short words are corrected only when they are no word at all ("mny")
        import difflib

        pool = [w for n in range(len(word) - 2, len(word) + 3) for w in self._by_length.get(n, [])]
        found = difflib.get_close_matches(word, pool, n=1, cutoff=0.8)
        return found[0] if found else None

    def is_common_word(self, word: str, min_zipf: float | None = None) -> bool:
        """A real English or Spanish word ("properly", "tasa") is never "corrected" into a manual word; words
        reach here folded, so a Spanish word is also looked up with the accent or the ñ folding took away
        ("elaboro" is "elaboró", not a typo of "labor")."""
        from wordfreq import zipf_frequency

        floor = self.min_zipf if min_zipf is None else min_zipf
        if max(zipf_frequency(word, "en"), zipf_frequency(word, "es")) >= floor:
            return True
        return any(zipf_frequency(v, "es") >= floor for v in _accented(word))

    def corrections(self, text: str) -> dict[str, str]:
        """Misspelt word -> correction, for every word of the text that has one."""
        out: dict[str, str] = {}
        for w in tokens(text):
            fixed = self.fix(w)
            if fixed:
                out[w] = fixed
        return out

    def correct(self, text: str) -> str:
        """The folded text with misspelt words replaced."""
        fixes = self.corrections(text)
        return " ".join(fixes.get(w, w) for w in tokens(text))


_ACCENTS = {"a": "á", "e": "é", "i": "í", "o": "ó", "u": "ú", "n": "ñ"}


def _accented(word: str) -> list[str]:
    """The word with one accent (or ñ) put back: the spellings folding maps onto it."""
    return [word[:i] + _ACCENTS[c] + word[i + 1 :] for i, c in enumerate(word) if c in _ACCENTS]


# A Spanish infinitive or gerund with object pronouns attached ("administrarlas", "entregándoselos").
_ENCLITIC = re.compile(r"(\w+?(?:ar|er|ir|ando|iendo))(?:me|te|se|nos|os|lo|la|le)s?(?:lo|la|le)?s?")

# Spanish articles of the nouns units are named with: "Área de Ventas" → "el Área de Ventas".
ARTICLES = {
    "área": "el", "areas": "las", "áreas": "las", "gerencia": "la", "gerencias": "las",
    "agencia": "la", "agencias": "las", "sucursal": "la", "sucursales": "las", "departamento": "el",
    "departamentos": "los", "unidad": "la", "unidades": "las", "sección": "la", "división": "la",
    "oficina": "la", "oficinas": "las", "centro": "el", "grupo": "el", "dirección": "la", "subgerencia": "la",
}  # fmt: skip


def with_article(name: str) -> str:
    """``Área de Ventas`` → ``el Área de Ventas``; unknown nouns are left bare."""
    first = name.split(" ", 1)[0].lower()
    article = ARTICLES.get(first)
    return f"{article} {name}" if article else name


def of_article(name: str, bold: bool = False) -> str:
    """``Departamento X`` → ``del Departamento X``, ``Gerencia X`` → ``de la Gerencia X`` (the name in ``**``
    when ``bold``)."""
    shown = f"**{name}**" if bold else name
    article = ARTICLES.get(name.split(" ", 1)[0].lower())
    if article == "el":
        return f"del {shown}"
    return f"de {article} {shown}" if article else f"de {shown}"
