"""Quantities in customer messages: digits ("3", "x3", "3 шт", "3pcs"), number words in English
and Russian in every case ("seven", "twenty one", "двумя", "трёх", "пятью" — vocabulary and
arithmetic from ``number-parser``), collective numerals ("двое", "семерых"), and colloquial
amounts ("a couple"/"a pair" = 2, "half a dozen"/"полдюжины" = 6, "a dozen"/"дюжина" = 12,
"two dozen" = 24, "десяток" = 10, "пяток" = 5, "пара"/"парочку" = 2).

Works on the tokens of :func:`knowledge.text.tokenize` (normalised, ``ё`` → ``е``, digits split
from letters: ``"3pcs"`` → ``["3", "pcs"]``). :func:`read_quantity` reads one quantity at a
token position (used by :mod:`bot.language.segments`); :func:`parse_quantity` finds the first one
in a text. Money ("$50", "500 руб"), times ("11:30", "at 11"), prices after "under"/"до",
phone numbers, dates, decimals, sizes ("size 42") and the pronoun "one" ("the red one") are not
quantities.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from knowledge.text import tokenize

__all__ = ["QuantityMatch", "is_number_word", "parse_quantity", "read_quantity", "words_to_number"]

# Largest quantity a customer plausibly orders in one line; longer digit runs are codes or money.
MAX_QUANTITY = 9999

_EN_COLLOQUIAL = {"couple": 2, "pair": 2, "dozen": 12, "dozens": 12}
_RU_COLLOQUIAL = {
    # пара / парочка
    **dict.fromkeys("пара пару пары парой паре парочка парочку парочки парочкой".split(), 2),
    # пяток ("a five"), десяток ("a ten"), дюжина; полдюжины / полдесятка
    **dict.fromkeys("пяток пятка пятком пяточек пяточка".split(), 5),
    **dict.fromkeys("десяток десятка десятком десятке".split(), 10),
    **dict.fromkeys("дюжина дюжину дюжины дюжиной дюжине дюжин".split(), 12),
    **dict.fromkeys("полдюжины полдюжина".split(), 6),
    **dict.fromkeys("полдесятка полдесяток".split(), 5),
}
# Collective numerals (number-parser has only cardinals): двое, трое ... десятеро, all cases.
_RU_COLLECTIVE = {
    **dict.fromkeys("двое двоих двоим двоими".split(), 2),
    **dict.fromkeys("трое троих троим троими".split(), 3),
    **dict.fromkeys("четверо четверых четверым четверыми".split(), 4),
    **dict.fromkeys("пятеро пятерых пятерым пятерыми".split(), 5),
    **dict.fromkeys("шестеро шестерых шестерым шестерыми".split(), 6),
    **dict.fromkeys("семеро семерых семерым семерыми".split(), 7),
    **dict.fromkeys("восьмеро восьмерых восьмерым восьмерыми".split(), 8),
    **dict.fromkeys("девятеро девятерых девятерым девятерыми".split(), 9),
    **dict.fromkeys("десятеро десятерых десятерым десятерыми".split(), 10),
}
_MULTIPLIERS = {"dozen": 12, "dozens": 12, "дюжины": 12, "дюжин": 12, "десятка": 10, "десятков": 10}
_ARTICLES = frozenset({"a", "an"})
_UNIT_WORDS = frozenset(
    "x х pcs pc pieces piece items item units unit шт штук штуки штука штуку штучки штучек".split()
)
_OF = frozenset({"of"})
# "one" used as a pronoun ("this one", "the red one", "one of them") is not a quantity.
_ONE_PRONOUN_BEFORE = frozenset(
    "the this that which any each every another other no some last first next same red".split()
)
_AFTER_PRONOUN_ONE = frozenset({"", "please", "pls", "plz", "too", "as", "and", "for", "in", "instead", "then"})
_ONE_COUNT_BEFORE = frozenset(
    "just only take want need add get buy order me to make it and also plus i'll ill id like have".split()
)
_SIZE_WORDS = frozenset("size sizes размер размера размеры размере eu us uk no номер".split())
# A number right after these words is a price, a time, a limit or a composition ("a bouquet of
# 15 roses", "букет из пяти роз"), not a quantity.
_NOT_QUANTITY_BEFORE = frozenset(
    """at by under over max maximum min minimum below above around about within upto approx approximately
    до от после в во к около примерно дороже дешевле максимум минимум макс мин бюджет budget за
    из of""".split()
)
_MONEY_OR_TIME = re.compile(
    r"""
    [$€£₽]\s*\d+(?:[.,]\d+)*
    | \d+(?:[.,]\d+)*\s*(?:[$€£₽%]
        | (?:руб(?:л[а-яё]*)?|р\.|usd|eur|rub|gbp|dollars?|euros?|bucks|pounds?|евро|долл(?:ар[а-яё]*)?|ml|мл|kg|кг|g|г
            |гр|cm|см|mm|мм|l|л|am|pm|h|ч|час(?:а|ов|ам|ами)?|min|мин(?:ут[а-яё]*)?|тыс(?:яч[а-яё]*)?|k|к)\b)
    | \d{1,2}:\d{2}
    | \d+(?:[./-]\d+)+
    | \d+,\d+
    | [№\#]\s*\d+
    """,
    re.VERBOSE | re.IGNORECASE,
)
_PHONE_LIKE = re.compile(r"\+?\d[\d\s()\-]{5,}\d")


@dataclass(frozen=True, slots=True)
class QuantityMatch:
    """A quantity read from tokens: ``value`` (int >= 1), tokens ``start`` (inclusive) to ``end``
    (exclusive) that spell it, including unit words ("шт", "pcs", "x") and "of" ("a couple of")."""

    value: int
    start: int
    end: int


@lru_cache(maxsize=2)
def _vocabulary(language: str) -> dict[str, int]:
    """Every cardinal number word number-parser knows for ``language`` (all case forms for
    Russian) with its value, built once per process."""
    from number_parser.parser import LanguageData  # lazy: nothing happens at import

    return dict(LanguageData(language).all_numbers)


def _number_language(token: str) -> str:
    return "ru" if re.search(r"[а-я]", token) else "en"


def is_number_word(token: str) -> bool:
    """True when the normalised ``token`` is a cardinal number word in English or Russian
    (``"seven"``, ``"двумя"``, ``"тысяч"``) or a Russian collective numeral (``"семерых"``)."""
    return token in _RU_COLLECTIVE or token in _vocabulary(_number_language(token))


@lru_cache(maxsize=4096)
def words_to_number(words: str, language: str) -> int | None:
    """Value of a run of number words (``"twenty one"`` → 21, ``"двадцать одну"`` → 21,
    ``"двух тысяч"`` → 2000, ``"семерых"`` → 7) or ``None`` if it is not one number.
    ``language`` is ``"en"`` or ``"ru"``; memoised (number-parser costs ~0.4 ms a call)."""
    if words in _RU_COLLECTIVE:
        return _RU_COLLECTIVE[words]
    if " " not in words:  # one word: number-parser's own table, without its ~0.4 ms set-up
        single = _vocabulary(language).get(words.replace("ё", "е"))
        if single is not None:
            return int(single)
    from number_parser import parse_number

    value = parse_number(words, language=language)
    return int(value) if value is not None else None


def _read_words(tokens: list[str], i: int) -> tuple[int, int] | None:
    """A run of number words starting at ``i`` → (value, end)."""
    token = tokens[i]
    if token in _RU_COLLECTIVE:
        return _RU_COLLECTIVE[token], i + 1
    language = _number_language(token)
    vocabulary = _vocabulary(language)
    if token not in vocabulary:
        return None
    end = i + 1
    while end < len(tokens):
        nxt = tokens[end]
        if nxt in vocabulary:
            end += 1
        elif (
            nxt == "and"
            and end + 1 < len(tokens)
            and tokens[end + 1] in vocabulary
            and tokens[end - 1] in {"hundred", "thousand"}
        ):
            end += 2
        else:
            break
    # Shrink the run until number-parser accepts it ("two three" is not one number).
    while end > i:
        value = words_to_number(" ".join(tokens[i:end]), language)
        if value is not None:
            return value, end
        end -= 1
    return None


def read_quantity(tokens: list[str], i: int, *, articles: bool = False) -> QuantityMatch | None:
    """Read a quantity starting exactly at token ``i`` of normalised ``tokens``, or ``None``.

    Reads digits (optionally preceded by ``x``/``х`` and followed by a unit word: ``x 3``,
    ``3 x``, ``3 шт``, ``3 pcs``), number words (``twenty one``, ``двумя``, ``трех``),
    collective numerals (``семерых``), colloquial amounts (``a couple of``, ``half a dozen``,
    ``two dozen``, ``десяток``, ``пяток``, ``пару``, ``полдюжины``) and, when ``articles`` is
    true, ``a``/``an`` as 1. The pronoun ``one`` (``the red one``, ``one of``) is refused.
    Context checks against money/times are the caller's job (see :func:`parse_quantity`).
    """
    n = len(tokens)
    if i >= n:
        return None
    token = tokens[i]
    start = i
    value: int | None = None
    end = i + 1
    if token in {"x", "х"} and i + 1 < n and tokens[i + 1].isdigit():
        i += 1
        token = tokens[i]
        end = i + 1
    if token.isdigit():
        if len(token) > 4:
            return None
        value = int(token)
    elif token == "half":
        # "half a dozen", "half dozen"
        rest = tokens[i + 1 : i + 3]
        if rest[:1] == ["dozen"]:
            value, end = 6, i + 2
        elif rest == ["a", "dozen"]:
            value, end = 6, i + 3
        else:
            return None
    elif token == "пол" and i + 1 < n and tokens[i + 1] in {"дюжины", "десятка"}:
        value, end = (6 if tokens[i + 1] == "дюжины" else 5), i + 2
    elif token in _ARTICLES and i + 1 < n and tokens[i + 1] in _EN_COLLOQUIAL:
        value, end = _EN_COLLOQUIAL[tokens[i + 1]], i + 2
    elif token in _EN_COLLOQUIAL and token not in {"dozens"}:
        value = _EN_COLLOQUIAL[token]
    elif token in _RU_COLLOQUIAL:
        value = _RU_COLLOQUIAL[token]
    elif token in _ARTICLES:
        if not articles:
            return None
        value = 1
    elif token == "one" and (words := _read_words(tokens, i)) is not None and words[1] > i + 1:
        value, end = words  # "one hundred and five"
    elif token == "one":
        previous = tokens[i - 1] if i else ""
        following = tokens[i + 1] if i + 1 < n else ""
        if previous in _ONE_PRONOUN_BEFORE or following == "of":
            return None
        # "the blue one please": a pronoun unless a cue makes it a count ("just one", "take one").
        if following in _AFTER_PRONOUN_ONE and i and previous not in _ONE_COUNT_BEFORE:
            return None
        value = 1
    else:
        words = _read_words(tokens, i)
        if words is None:
            return None
        value, end = words
    # "two dozen", "три десятка", "2 dozens"
    if end < n and tokens[end] in _MULTIPLIERS and tokens[end - 1] not in _MULTIPLIERS:
        value *= _MULTIPLIERS[tokens[end]]
        end += 1
    if end < n and tokens[end] in _UNIT_WORDS:
        end += 1
    if end < n and tokens[end] in _OF:
        end += 1
    if value is None or value < 1 or value > MAX_QUANTITY:
        return None
    return QuantityMatch(value=value, start=start, end=end)


def _clean(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold().replace("×", "x")
    text = _PHONE_LIKE.sub(lambda m: " " if sum(c.isdigit() for c in m.group()) >= 7 else m.group(), text)
    return _MONEY_OR_TIME.sub(" ", text)


def quantity_tokens(text: str) -> list[str]:
    """Tokens of ``text`` with money, times, dates, decimals and phone numbers blanked out, ready
    for :func:`read_quantity`."""
    return tokenize(_clean(text))


def is_quantity_context(tokens: list[str], i: int) -> bool:
    """False when token ``i`` follows a word that makes a number a price, time or size
    (``under 50``, ``до 2000``, ``at 11``, ``в 11``, ``size 42``)."""
    previous = tokens[i - 1] if i else ""
    return previous not in _NOT_QUANTITY_BEFORE and previous not in _SIZE_WORDS


def parse_quantity(text: str, language: str | None = None, *, articles: bool = False) -> int | None:
    """The first quantity in ``text`` (int >= 1), or ``None``.

    ``"a couple of mugs"`` → 2, ``"half a dozen roses"`` → 6, ``"дайте пяток"`` → 5, ``"с
    двумя лилиями"`` → 2, ``"3pcs"`` → 3, ``"roses x3"`` → 3, ``"нет, лучше 8 штук"`` → 8.
    ``articles=True`` also reads ``a``/``an`` as 1 (``"add a mug"``). ``language`` is accepted
    for symmetry with the other helpers; both languages are always recognised (customers mix).
    Prices, times, sizes, phone numbers and the pronoun ``one`` are skipped.
    """
    del language
    tokens = quantity_tokens(text)
    for i in range(len(tokens)):
        if not is_quantity_context(tokens, i):
            continue
        if i and is_number_word(tokens[i]) and is_number_word(tokens[i - 1]):
            continue  # inside a number already read or refused ("ten thousand")
        match = read_quantity(tokens, i, articles=articles)
        if match is not None:
            return match.value
    return None
