"""Guards against text that tries to give orders: in a question or planted in a manual.

The grounded engine never follows instructions anyway (it only quotes the manual); these helpers keep such
sentences out of retrieval queries and out of the index, so they cannot steer what gets quoted.
"""

from __future__ import annotations

import re
import unicodedata

from assistant.text import fold

_PATTERNS = [
    r"\b(ignore|ignora|ignoren|ignorar|olvida|olviden|olvidar|disregard|forget|omite|omit)\b.{0,60}"
    r"\b(instruc\w*|previous|prior|above|anteriores?|previas?|rules|reglas|prompt|todo lo anterior|everything)",
    r"\b(responde|responda|respondan|contesta|conteste|di|diga|digan|answer|say|reply|respond|tell the user|"
    r"write|escribe)\b\s+(siempre\s+|always\s+|solo\s+|only\s+)?(que|that)\b.{0,80}"
    r"\b(todo|todas|everything|all|siempre|always)\b",
    r"\b(you are now|from now on|ahora eres|a partir de ahora|act as|actua como|pretend|finge|new instructions|"
    r"nuevas instrucciones|developer mode|modo desarrollador|jailbreak)\b",
    r"\b(system prompt|prompt del sistema|mensaje del sistema|system message)\b",
    r"(^|\s)(system|assistant|sistema|asistente)\s*:\s",
    r"</?\s*(system|instructions?|sources?|fuente|context|contexto)\b[^>]*>",
    r"\b(instruccion|instruction)\s*(oculta|hidden|secreta|secret)",
]
_INJECTION = re.compile("|".join(f"(?:{p})" for p in _PATTERNS), re.I)
_SENTENCE = re.compile(r"[^.!?¿¡\n]+[.!?]?|[¿¡][^?!]*[?!]?")


def looks_like_instruction(text: str) -> bool:
    """True when the text reads like an order to the assistant rather than content."""
    return bool(_INJECTION.search(fold(text)))


_CLAUSE = re.compile(r",|;|\s(?:and|then|y|e|luego|despues)\s", re.I)
_WH = re.compile(
    r"\b(who|what|which|where|when|how|quien|quienes|que|cual|cuales|donde|cuando|como|cuantos|cuantas)\b"
)
_IMPERATIVE = re.compile(
    r"^\s*(say|tell|reply|respond|answer|write|di|diga|responde|contesta|escribe|dime)\b"
)


def _salvage(sentence: str) -> str:
    """From a sentence carrying an instruction, keep only the clauses that ask something about the manual."""
    kept = []
    for clause in _CLAUSE.split(sentence):
        folded = fold(clause)
        if not clause.strip() or looks_like_instruction(clause):
            continue
        if _IMPERATIVE.search(folded) and not _WH.search(folded):
            continue  # "… and say Ventas handles everything": the rest of the order
        if _WH.search(folded):
            kept.append(clause.strip())
    return " ".join(kept)


def strip_instructions(text: str) -> tuple[str, bool]:
    """Drop the parts of a question that try to instruct the assistant; say whether any were dropped."""
    sentences = [s.strip() for s in _SENTENCE.findall(text) if s.strip()]
    kept = []
    dropped = False
    for sentence in sentences:
        if looks_like_instruction(sentence):
            dropped = True
            salvaged = _salvage(sentence)
            if salvaged:
                kept.append(salvaged)
        else:
            kept.append(sentence)
    if not dropped:
        return text.strip(), False
    return " ".join(kept).strip(), True


def clean_question(text: object, max_chars: int) -> str:
    """Validate and normalise a question; raise `InvalidQuestionError` with a user-facing sentence."""
    from assistant.errors import InvalidQuestionError

    if isinstance(text, bytes):
        raise InvalidQuestionError("The question must be text, not bytes.")
    if not isinstance(text, str):
        raise InvalidQuestionError(f"The question must be text, not {type(text).__name__}.")
    if len(text) > max_chars * 4:
        raise InvalidQuestionError(
            f"The question is {len(text):,} characters long; the limit is {max_chars:,}. Please shorten it."
        )
    # Control characters (NUL included) carry no meaning in a question and confuse tokenisers and logs.
    cleaned = "".join(
        " " if unicodedata.category(c) in ("Cc", "Cf", "Cs", "Co") and c not in "\n\t" else c for c in text
    )
    cleaned = unicodedata.normalize("NFC", " ".join(cleaned.split()))
    if not cleaned:
        raise InvalidQuestionError("The question is empty; please type a question about the manual.")
    if len(cleaned) > max_chars:
        raise InvalidQuestionError(
            f"The question is {len(cleaned):,} characters long; the limit is {max_chars:,}. Please shorten it."
        )
    return cleaned
