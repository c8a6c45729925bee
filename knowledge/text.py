"""Text helpers for English and Russian customer messages: normalisation, language detection by
script, tokenisation, Snowball stemming (PyStemmer) and explicit quantities ("2", "x2", "two",
"пять", "пару", "a dozen").

Everything here is pure and cheap; stemmers are created lazily, one per thread (PyStemmer objects
are not thread-safe), and stems are memoised.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from functools import lru_cache
from typing import Any

__all__ = [
    "detect_language",
    "has_cyrillic",
    "normalize",
    "parse_quantity",
    "stem",
    "stems",
    "tokenize",
]

_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
_LATIN = re.compile(r"[a-z\u00c0-\u024f]", re.IGNORECASE)
_APOSTROPHES = re.compile(r"(?<=\w)['\u2019\u02bc`](?=\w)")
# Any punctuation/symbol, except "." or "," between two digits (2.5, 1,000).
_PUNCT = re.compile(r"(?<!\d)[.,]|[.,](?!\d)|[^\w\s.,]|_")
_SPACES = re.compile(r"\s+")
# Boundaries between digits and letters: "2шт" -> "2 шт", "x2" -> "x 2".
_DIGIT_LETTER = re.compile(r"(?<=\d)(?=[^\W\d])|(?<=[^\W\d])(?=\d)")


def has_cyrillic(text: str) -> bool:
    """True when ``text`` contains at least one Cyrillic letter."""
    return _CYRILLIC.search(text) is not None


def detect_language(text: str, default: str = "en") -> str:
    """Guess the language of ``text`` from its script.

    Returns ``"ru"`` when Cyrillic letters outnumber Latin ones, ``"en"`` when Latin letters
    outnumber Cyrillic ones, and ``default`` otherwise (no letters, digits/emoji only, a tie).
    """
    cyrillic = len(_CYRILLIC.findall(text))
    latin = len(_LATIN.findall(text))
    if cyrillic > latin:
        return "ru"
    if latin > cyrillic:
        return "en"
    return default


def normalize(text: str) -> str:
    """Canonical form for matching: NFKC, casefolded, ``ё`` → ``е``, apostrophes inside words
    dropped (``what's`` → ``whats``), every other punctuation mark or symbol replaced by a space
    except ``.``/``,`` between digits (``2.5``), whitespace collapsed and stripped."""
    text = unicodedata.normalize("NFKC", text).casefold().replace("ё", "е")
    text = _APOSTROPHES.sub("", text)
    text = _PUNCT.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


def tokenize(text: str) -> list[str]:
    """Normalised word tokens of ``text``; digits and letters glued together are split
    (``"2шт"`` → ``["2", "шт"]``, ``"x2"`` → ``["x", "2"]``)."""
    return _DIGIT_LETTER.sub(" ", normalize(text)).split()


_local = threading.local()


def _stemmer(language: str) -> Any:
    stemmers = getattr(_local, "stemmers", None)
    if stemmers is None:
        stemmers = _local.stemmers = {}
    stemmer = stemmers.get(language)
    if stemmer is None:
        import Stemmer  # PyStemmer; imported lazily so importing this module does no work

        stemmer = stemmers[language] = Stemmer.Stemmer(language)
    return stemmer


@lru_cache(maxsize=65536)
def stem(token: str) -> str:
    """Snowball stem of one normalised token: the Russian stemmer for Cyrillic tokens, the English
    one for Latin tokens; other tokens (digits, mixed, other scripts) are returned unchanged.
    ``"tops"`` → ``"top"``, ``"розы"``/``"роз"``/``"роза"`` → ``"роз"``, ``"красных"`` → ``"красн"``."""
    if not token or token.isdigit():
        return token
    if _CYRILLIC.search(token):
        if _LATIN.search(token):
            return token
        return str(_stemmer("russian").stemWord(token))
    if _LATIN.search(token):
        return str(_stemmer("english").stemWord(token))
    return token


def stems(text: str) -> list[str]:
    """``[stem(t) for t in tokenize(text)]``."""
    return [stem(t) for t in tokenize(text)]


# --- quantities --------------------------------------------------------------------------------

_EN_NUMBERS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "pair": 2,
    "couple": 2,
    "dozen": 12,
}
_RU_NUMBER_FORMS = {
    1: "один одна одно одну одного одной одному одним одном",
    2: "два две двух двум двумя пара пару пары парой",
    3: "три трех трем тремя",
    4: "четыре четырех четырем четырьмя",
    5: "пять пяти пятью",
    6: "шесть шести шестью полдюжины",
    7: "семь семи",
    8: "восемь восьми восемью восьмью",
    9: "девять девяти девятью",
    10: "десять десяти десятью",
    11: "одиннадцать одиннадцати одиннадцатью",
    12: "двенадцать двенадцати двенадцатью дюжина дюжину дюжины дюжиной",
}
_NUMBER_WORDS: dict[str, int] = dict(_EN_NUMBERS)
for _value, _forms in _RU_NUMBER_FORMS.items():
    _NUMBER_WORDS.update(dict.fromkeys(_forms.split(), _value))
del _value, _forms

_DOZEN = frozenset({"dozen", "dozens", "дюжина", "дюжину", "дюжины", "дюжин"})
# "one" used as a pronoun ("this one", "which one") is not a quantity.
_ONE_PRONOUN_BEFORE = frozenset(
    "the this that which any each every another other no some someone anyone last first next".split()
)
_SIZE_WORDS = frozenset({"size", "sizes", "размер", "размера", "размеры", "размере", "eu", "us", "uk", "no", "номер"})
# Money, phone numbers, times, dates, decimals and percentages are never quantities.
_NOT_QUANTITIES = re.compile(
    r"""
    [$€£₽]\s*\d+(?:[.,]\d+)*
    | \d+(?:[.,]\d+)*\s*(?:[$€£₽%]
        | (?:руб\w*|р\.|usd|eur|rub|dollars?|euros?|bucks|евро|долл\w*|ml|мл|kg|кг|cm|см|mm|мм)\b)
    | \d{1,2}:\d{2}
    | \d+(?:[./]\d+)+
    | \d+,\d+
    | №\s*\d+
    | \#\s*\d+
    """,
    re.VERBOSE | re.IGNORECASE,
)
_PHONE_LIKE = re.compile(r"\+?\d[\d\s()\-]{5,}\d")


def _blank_phone(match: re.Match[str]) -> str:
    return " " if sum(ch.isdigit() for ch in match.group()) >= 7 else match.group()


def parse_quantity(text: str) -> int | None:
    """The first explicit quantity in ``text``, or ``None``.

    Understands digits (``"2"``, ``"x2"``, ``"2x"``, ``"2шт"``, ``"2 pcs"``), English number
    words ``one``..``twelve``, ``a pair``/``a couple`` (2) and ``a dozen`` (12), ``half a dozen``
    (6), ``two dozen`` (24), and Russian ``один``..``двенадцать`` in their case forms (``одну``,
    ``две``, ``пяти``), ``пару`` (2), ``дюжина`` (12), ``полдюжины`` (6). Prices (``$50``,
    ``500 руб``), phone numbers, times, dates, decimals, sizes (``size 42``) and the pronoun
    ``one`` (``this one``) are not quantities.
    """
    cleaned = _PHONE_LIKE.sub(_blank_phone, unicodedata.normalize("NFKC", text).casefold())
    cleaned = _NOT_QUANTITIES.sub(" ", cleaned)
    tokens = tokenize(cleaned)
    for i, token in enumerate(tokens):
        previous = tokens[i - 1] if i else ""
        following = tokens[i + 1] if i + 1 < len(tokens) else ""
        value: int | None = None
        if token.isdigit():
            if previous in _SIZE_WORDS or len(token) > 4:
                continue
            value = int(token)
        elif token == "half" and following in {"a", "dozen"}:
            return 6
        elif token in _NUMBER_WORDS:
            if token == "one" and (previous in _ONE_PRONOUN_BEFORE or following == "of"):
                continue
            value = _NUMBER_WORDS[token]
        if value is None:
            continue
        if token not in _DOZEN and following in _DOZEN:
            value *= 12
        return value
    return None
