"""Price limits in customer messages: "max 30 dollars", "under $50", "around 40", "between 20 and
40", "$20-40", "до 2000 рублей", "не дороже 1500", "от 500 до 1000 ₽", "до двух тысяч",
"в пределах 3к".

Amounts are major units as :class:`~decimal.Decimal` ("29.99", "1 500", "2к"/"2k"/"2 тыс" →
2000; number words through ``number-parser``); the engine converts to minor units with the
company's currency. The currency is the ISO-4217 code the customer named by symbol or word, or
``None`` when they named none (then it is the company's).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from bot.language.quantities import is_number_word, words_to_number
from knowledge.text import normalize

__all__ = ["AROUND_TOLERANCE", "Budget", "parse_budget"]

# "around 40" → 32..48: the spread a shop assistant would show for "about N".
AROUND_TOLERANCE = Decimal("0.2")


@dataclass(frozen=True, slots=True)
class Budget:
    """A price window in major units: ``min_amount``/``max_amount`` (``Decimal`` or ``None`` for
    an open side), ``currency`` (ISO-4217 or ``None`` = the company's), ``around`` (the amount
    said for "around/about N", whose window is N ± :data:`AROUND_TOLERANCE`)."""

    min_amount: Decimal | None = None
    max_amount: Decimal | None = None
    currency: str | None = None
    around: Decimal | None = None


# Currency symbols and words → ISO 4217 (checked on normalised text; symbols on the raw text).
_CURRENCY_SYMBOLS = {"$": "USD", "€": "EUR", "£": "GBP", "₽": "RUB", "₸": "KZT", "₴": "UAH", "¥": "JPY"}
_CURRENCY_WORDS = (
    (re.compile(r"^(?:usd|dollars?|bucks?|долл\w*|бакс\w*)$"), "USD"),
    (re.compile(r"^(?:eur|euros?|евро)$"), "EUR"),
    (re.compile(r"^(?:gbp|pounds?|quid|фунт\w*)$"), "GBP"),
    (re.compile(r"^(?:rub|rur|руб\w*|р|тенге)$"), "RUB"),
)
_KZT = re.compile(r"^(?:kzt|тенге)$")
_THOUSANDS = re.compile(r"^(?:k|к|тыс\w*|тысяч\w*|thousand)$")

# Limit words on normalised tokens (longest first when matching).
_MAX_WORDS = tuple(
    tuple(w.split())
    for w in sorted(
        """max|maximum|under|below|less than|no more than|not more than|up to|upto|within|at most|tops
        |cheaper than|no more|not over|budget is|budget of|budget|до|не дороже|не больше|не более|дешевле
        |меньше|в пределах|максимум|макс|не выше|бюджет|за""".replace("\n", "").split("|"),
        key=lambda w: -len(w.split()),
    )
)
_MIN_WORDS = tuple(
    tuple(w.split())
    for w in sorted(
        """min|minimum|over|above|more than|at least|from|starting at|от|не дешевле|дороже|больше|более
        |минимум|не меньше|не менее|свыше""".replace("\n", "").split("|"),
        key=lambda w: -len(w.split()),
    )
)
_AROUND_WORDS = tuple(
    tuple(w.split())
    for w in sorted(
        """around|about|approximately|approx|roughly|circa|ish|около|примерно|где то|в районе|порядка|приблизительно
        |плюс минус""".replace("\n", "").split("|"),
        key=lambda w: -len(w.split()),
    )
)
_RANGE_JOIN = frozenset({"to", "and", "до", "-", "–", "—", "и"})
_NUMBER = re.compile(r"^\d+(?:[.,]\d+)?$")


def _tokens(text: str) -> list[str]:
    """Normalised tokens keeping currency symbols, "~" and dashes as tokens; digit groups split by
    spaces ("1 500") are joined; "2к"/"$30"/"30$" are split."""
    text = text.replace("\u00a0", " ")
    text = re.sub(r"(?<=\d)[ \u202f](?=\d{3}(?!\d))", "", text)  # 1 500 → 1500
    text = re.sub(r"([$€£₽₸₴¥~–—-])", r" \1 ", text)
    text = re.sub(r"(?<=\d)(?=[^\W\d])|(?<=[^\W\d])(?=\d)", " ", text)
    out: list[str] = []
    for raw in text.split():
        if raw in _CURRENCY_SYMBOLS or raw in {"~", "-", "–", "—"}:
            out.append(raw)
            continue
        out.extend(normalize(raw).split())
    return out


def _currency_of(token: str) -> str | None:
    if token in _CURRENCY_SYMBOLS:
        return _CURRENCY_SYMBOLS[token]
    if _KZT.match(token):
        return "KZT"
    for pattern, code in _CURRENCY_WORDS:
        if pattern.match(token):
            return code
    return None


@dataclass(slots=True)
class _Amount:
    value: Decimal
    start: int
    end: int
    currency: str | None


def _amounts(tokens: list[str]) -> list[_Amount]:
    amounts: list[_Amount] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        currency = None
        start = i
        if token in _CURRENCY_SYMBOLS and i + 1 < len(tokens) and _NUMBER.match(tokens[i + 1]):
            currency = _CURRENCY_SYMBOLS[token]
            i += 1
            token = tokens[i]
        value: Decimal | None = None
        end = i + 1
        if _NUMBER.match(token):
            try:
                value = Decimal(token.replace(",", "."))
            except InvalidOperation:
                value = None
        elif is_number_word(token) and token not in {"one", "a"}:
            j = i + 1
            while j < len(tokens) and (is_number_word(tokens[j]) or tokens[j] == "and"):
                j += 1
            language = "ru" if re.search(r"[а-я]", token) else "en"
            while j > i:
                words = " ".join(tokens[i:j])
                number = words_to_number(words, language)
                if number is not None:
                    value, end = Decimal(number), j
                    break
                j -= 1
        if value is None:
            i += 1
            continue
        if end < len(tokens) and _THOUSANDS.match(tokens[end]):
            value *= 1000
            end += 1
        if end < len(tokens) and _currency_of(tokens[end]):
            currency = currency or _currency_of(tokens[end])
            end += 1
        amounts.append(_Amount(value=value, start=start, end=end, currency=currency))
        i = end
    return amounts


def _match_before(tokens: list[str], index: int, phrases: tuple[tuple[str, ...], ...]) -> int:
    """Length of the longest phrase of ``phrases`` ending right before ``index`` (one filler word
    allowed between: "max of $30", "under about 50"), 0 when none."""
    best = 0
    for phrase in phrases:
        n = len(phrase)
        if n <= best:
            continue
        if index - n >= 0 and tuple(tokens[index - n : index]) == phrase:
            best = n
        elif (
            index - n - 1 >= 0
            and tuple(tokens[index - n - 1 : index - 1]) == phrase
            and tokens[index - 1] in {"of", "a", "the", "is", "about", "around", "примерно", "около"}
        ):
            best = n
    return best


def _limit_before(tokens: list[str], index: int) -> str | None:
    """"max"/"min"/"around" for the longest limit phrase before ``index`` ("не меньше" is min
    although "меньше" alone is max)."""
    if index and tokens[index - 1] == "~":
        return "around"
    found = {
        kind: _match_before(tokens, index, phrases)
        for kind, phrases in (("max", _MAX_WORDS), ("min", _MIN_WORDS), ("around", _AROUND_WORDS))
    }
    kind, length = max(found.items(), key=lambda item: item[1])
    return kind if length else None


_AFTER = {
    ("or", "less"): "max", ("or", "under"): "max", ("or", "below"): "max", ("or", "cheaper"): "max",
    ("max",): "max", ("maximum",): "max", ("tops",): "max", ("максимум",): "max", ("макс",): "max",
    ("или", "меньше"): "max", ("или", "дешевле"): "max", ("и", "меньше"): "max", ("и", "дешевле"): "max",
    ("or", "more"): "min", ("or", "above"): "min", ("plus",): "min", ("+",): "min", ("и", "выше"): "min",
    ("или", "больше"): "min", ("и", "больше"): "min", ("или", "дороже"): "min", ("и", "дороже"): "min",
    ("ish",): "around",
}


def _limit_after(tokens: list[str], end: int) -> str | None:
    for length in (2, 1):
        kind = _AFTER.get(tuple(tokens[end : end + length]))
        if kind is not None and len(tokens[end : end + length]) == length:
            return kind
    return None


def parse_budget(text: str, language: str | None = None) -> Budget | None:
    """The price window in ``text``, or ``None`` when it names no price limit.

    "max 30 dollars" → max 30 USD; "under $50" → max 50 USD; "over 20" → min 20; "around 40"
    → 32..48 with ``around`` 40; "between 20 and 40"/"$20-40"/"от 500 до 1000 ₽" → 20..40 /
    500..1000 RUB; "до 2000 рублей" → max 2000 RUB; "не дороже 1500" → max 1500; "до двух тысяч"
    → max 2000. A bare amount with a currency ("a gift for $30", "за 2000 рублей") is read as
    the most the customer wants to pay. A bare number without currency or limit word is not a
    budget (it is probably a quantity). ``language`` is accepted for symmetry.
    """
    del language
    tokens = _tokens(text)
    amounts = _amounts(tokens)
    if not amounts:
        return None
    currency = next((a.currency for a in amounts if a.currency), None)
    # Ranges: "от 500 до 1000", "between 20 and 40", "20-40", "$20 to $40"
    for first, second in zip(amounts, amounts[1:], strict=False):
        joiner = tokens[first.end : second.start]
        if len(joiner) == 1 and joiner[0] in _RANGE_JOIN and first.value <= second.value:
            ranged = (
                joiner[0] in {"-", "–", "—"}
                or _limit_before(tokens, first.start) == "min"
                or (first.start > 0 and tokens[first.start - 1] in {"between", "между"})
                or first.currency is not None
                or second.currency is not None
            )
            if ranged:
                return Budget(min_amount=first.value, max_amount=second.value, currency=currency)
    low: Decimal | None = None
    high: Decimal | None = None
    around: Decimal | None = None
    for amount in amounts:
        kind = _limit_before(tokens, amount.start) or _limit_after(tokens, amount.end)
        if kind is None and amount.currency is not None and high is None:
            kind = "max"
        if kind == "around":
            around = amount.value
        elif kind == "max":
            high = amount.value if high is None else min(high, amount.value)
        elif kind == "min":
            low = amount.value if low is None else max(low, amount.value)
    if around is not None and low is None and high is None:
        spread = around * AROUND_TOLERANCE
        return Budget(min_amount=around - spread, max_amount=around + spread, currency=currency, around=around)
    if low is None and high is None:
        return None
    return Budget(min_amount=low, max_amount=high, currency=currency)
