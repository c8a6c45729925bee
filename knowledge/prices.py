"""Parsing of cell values: prices (to minor units), stock quantities and service durations.

Each parser takes a raw cell (``str`` from CSV; ``str``/``int``/``float``/``time``... from XLSX) and
raises :class:`CellValueError` with a message about the value only; the caller adds row and column.
Money never goes through ``float``: strings are parsed with ``decimal.Decimal``, and XLSX floats are
converted through their shortest ``repr``.
"""

from __future__ import annotations

import re
from datetime import time, timedelta
from decimal import Decimal
from typing import Any

from core.i18n import money
from core.money import exponent, to_minor
from knowledge.limits import MAX_DURATION_MINUTES, MAX_PRICE_MINOR, MAX_STOCK

# Spaces people and spreadsheet apps put inside numbers: NBSP, narrow NBSP, thin, figure, punctuation...
_SPACES = re.compile(r"[\s\u00a0\u2000-\u200b\u202f\u205f\u3000]+")
# A currency written before or after the amount, lower-cased and without dots; value: the ISO codes it
# may mean (empty set: any currency).
_DOLLAR = frozenset({"USD", "CAD", "AUD", "NZD", "SGD", "HKD", "MXN", "ARS", "CLP", "COP", "TWD", "BRL"})
_CURRENCY_WORDS: dict[str, frozenset[str]] = {
    "$": _DOLLAR,
    "us$": frozenset({"USD"}),
    "€": frozenset({"EUR"}),
    "eur": frozenset({"EUR"}),
    "euro": frozenset({"EUR"}),
    "£": frozenset({"GBP"}),
    "¥": frozenset({"JPY", "CNY"}),
    "₽": frozenset({"RUB"}),
    "р": frozenset({"RUB"}),
    "руб": frozenset({"RUB"}),
    "рубль": frozenset({"RUB"}),
    "рубля": frozenset({"RUB"}),
    "рублей": frozenset({"RUB"}),
    "rub": frozenset({"RUB"}),
    "rur": frozenset({"RUB"}),
    "₸": frozenset({"KZT"}),
    "тг": frozenset({"KZT"}),
    "₴": frozenset({"UAH"}),
    "грн": frozenset({"UAH"}),
    "₹": frozenset({"INR"}),
}
# "150 руб./шт", "$5 per stem": a price per unit is still the unit price.
_PER_UNIT = re.compile(r"\s*(?:/|за|per)\s*(?:шт|штук[ау]?|ед|стебель|pc|pcs|piece|item|unit|stem)\.?$")
_AMOUNT = re.compile(r"(?P<before>[^\d+\-.,]*?)\s*(?P<sign>[+-]?)\s*(?P<number>\d[\d\s.,'’]*)(?P<after>\D*)")
# Digits with one consistent grouping separator, then an optional decimal part.
_GROUPED = re.compile(r"(?P<int>\d{1,3}(?:(?P<g>[ ,.'’])\d{3})(?:(?P=g)\d{3})*|\d+)(?:(?P<d>[.,])(?P<frac>\d+))?")
_AMBIGUOUS = re.compile(r"(?P<int>\d{1,3})[.,](?P<frac>\d{3})")


class CellValueError(ValueError):
    """A cell value that cannot be read; the message names the value, not its row or column."""


def shown(value: Any, *, limit: int = 40) -> str:
    """``repr`` of a cell value for a message, cut to about ``limit`` characters (``'aaa…'``)."""
    if isinstance(value, str) and len(value) > limit:
        return repr(value[:limit] + "…")
    text = repr(value)
    return text if len(text) <= limit + 2 else text[:limit] + "…"


def _clean(text: str) -> str:
    return _SPACES.sub(" ", text).strip()


def _currency_ok(word: str, currency: str, raw: str) -> None:
    word = _PER_UNIT.sub("", word.strip().lower()).strip().rstrip(".").strip()
    if not word:
        return
    if re.fullmatch(r"[a-z]{3}", word) and word not in _CURRENCY_WORDS:
        codes = frozenset({word.upper()})
    elif word in _CURRENCY_WORDS:
        codes = _CURRENCY_WORDS[word]
    else:
        raise CellValueError(f"{shown(raw)} is not a price")
    if currency.upper() not in codes:
        raise CellValueError(f"{shown(raw)} is not in the company currency {currency.upper()}")


def _decimal_from_text(raw: str, currency: str) -> Decimal:
    text = _clean(raw)
    match = _AMOUNT.fullmatch(text)
    if match is None:
        raise CellValueError(f"{shown(raw)} is not a price")
    _currency_ok(match["before"], currency, raw)
    _currency_ok(match["after"], currency, raw)
    number = match["number"].strip()
    ambiguous = _AMBIGUOUS.fullmatch(number)
    if ambiguous is not None:
        # "1,990" / "1.990": a thousands separator unless the currency has 3 decimals or it reads "0.500".
        if exponent(currency) >= 3 or ambiguous["int"] == "0":
            number = f"{ambiguous['int']}.{ambiguous['frac']}"
        else:
            number = ambiguous["int"] + ambiguous["frac"]
        value = Decimal(number)
    else:
        grouped = _GROUPED.fullmatch(number)
        if grouped is None or (grouped["g"] and grouped["g"] == grouped["d"]):
            raise CellValueError(f"{shown(raw)} is not a price")
        digits = re.sub(r"\D", "", grouped["int"])
        value = Decimal(f"{digits}.{grouped['frac']}" if grouped["frac"] else digits)
    if match["sign"] == "-" and value != 0:
        raise CellValueError(f"{shown(raw)} is a negative price")
    return value


def parse_price(value: Any, currency: str) -> int:
    """Read a price cell as integer minor units of ``currency`` (``"1 990,00 ₽"`` → ``199000`` for RUB).

    Accepts ``1990``, ``60.00``, ``$60``, ``1,990.00``, ``1.990,00 €``, ``1 990,00 ₽``, ``60 руб.``
    (any Unicode spaces), and ``int``/``float``/``Decimal`` cells. A lone separator followed by
    exactly three digits (``1,990``) is a thousands separator unless the currency has three decimals.
    A currency sign or code that cannot mean ``currency`` is refused. Raises :class:`CellValueError`
    for empty, non-numeric, negative values, for more decimals than the currency has, and for
    amounts above :data:`~knowledge.limits.MAX_PRICE_MINOR` minor units (the database keeps money in
    a signed 64-bit column; see :mod:`knowledge.limits`).
    """
    if value is None or isinstance(value, bool) or (isinstance(value, str) and not _clean(value)):
        raise CellValueError("price is empty")
    exact = True
    if isinstance(value, int):
        amount = Decimal(value)
    elif isinstance(value, float):
        # An XLSX number is a binary float: its shortest repr is what was typed; formula results are
        # rounded half-up to the currency's minor unit.
        amount, exact = Decimal(repr(value)), False
    elif isinstance(value, Decimal):
        amount = value
    elif isinstance(value, str):
        amount = _decimal_from_text(value, currency)
    else:
        raise CellValueError(f"{shown(value)} is not a price")
    if not amount.is_finite():
        raise CellValueError(f"{shown(value)} is not a price")
    if amount < 0:
        raise CellValueError(f"{shown(value)} is a negative price")
    places = exponent(currency)
    if amount > Decimal(MAX_PRICE_MINOR).scaleb(-places):
        most = money(MAX_PRICE_MINOR, currency, "en_US")  # the import report is in English
        raise CellValueError(f"{shown(value)} is more than the largest accepted price, {most}")
    if exact and amount != amount.quantize(Decimal(1).scaleb(-places)):
        raise CellValueError(f"{shown(value)} has more decimal places than {currency.upper()} allows ({places})")
    return to_minor(amount, currency)


_YES = frozenset({"yes", "y", "true", "да", "есть", "в наличии", "in stock", "available", "+", "✓", "✔"})
_NO = frozenset({"no", "n", "false", "нет", "нет в наличии", "out of stock", "sold out", "закончился", "-", "—"})
_QTY = re.compile(r"(?P<number>\d[\d ]*(?:[.,]0+)?)\s*(?:шт\.?|штук[аи]?|pcs\.?|pc\.?|units?|ед\.?)?")


def parse_quantity(value: Any) -> int | None:
    """Read a stock cell: a whole non-negative number (``5``, ``"5 шт"``, ``"1 000"``, ``5.0``) is that
    stock; yes-words (``да``, ``в наличии``, ``yes``) and an empty cell mean "available, not tracked"
    (``None``); no-words (``нет``, ``no``, ``sold out``) mean ``0``. Raises :class:`CellValueError`
    for negative, fractional or unreadable values and for more than
    :data:`~knowledge.limits.MAX_STOCK` (stock is a 32-bit column)."""
    if value is None or (isinstance(value, str) and not _clean(value)):
        return None
    if isinstance(value, bool):
        return None if value else 0
    if isinstance(value, int | float | Decimal):
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
        if not number.is_finite() or number != number.to_integral_value():
            raise CellValueError(f"{shown(value)} is not a whole quantity")
        if number < 0:
            raise CellValueError(f"{shown(value)} is a negative quantity")
        return _stock_in_range(number, value)
    text = _clean(str(value)).lower()
    if text in _YES:
        return None
    if text in _NO:
        return 0
    if text.startswith("-") and _QTY.fullmatch(text[1:].strip()):
        raise CellValueError(f"{shown(value)} is a negative quantity")
    match = _QTY.fullmatch(text)
    if match is None:
        raise CellValueError(f"{shown(value)} is not a quantity (use a number, or yes/no)")
    return _stock_in_range(Decimal(match["number"].replace(" ", "").replace(",", ".")), value)


def _stock_in_range(number: Decimal, value: Any) -> int:
    if number > MAX_STOCK:
        raise CellValueError(f"{shown(value)} is more than the largest accepted stock, {MAX_STOCK:,}")
    return int(number)


_HOURS = r"(?:h|hr|hrs|hours?|ч|час|часа|часов)\.?"
_MINUTES = r"(?:m|min|mins|minutes?|м|мин|минут[аы]?)\.?"
_NUM = r"\d+(?:[.,]\d+)?"
_DURATION_FORMS = (
    re.compile(rf"(?P<m>{_NUM})\s*(?:{_MINUTES})?"),
    re.compile(rf"(?P<h>{_NUM})\s*{_HOURS}"),
    re.compile(rf"(?P<h>\d+)\s*{_HOURS}\s*(?P<m>\d+)\s*(?:{_MINUTES})?"),
    re.compile(r"(?P<h>\d+):(?P<m>[0-5]\d)(?::00)?"),
)


def parse_duration(value: Any) -> int | None:
    """Read a duration cell as whole minutes: ``60``, ``"60 мин"``, ``"1 h"``, ``"1,5 ч"``, ``"1:30"``,
    ``"1 ч 30 мин"``, or an XLSX ``time``/``timedelta``. Empty → ``None``. Raises
    :class:`CellValueError` for unreadable, negative or zero-length values and for more than
    :data:`~knowledge.limits.MAX_DURATION_MINUTES` (a year)."""
    if value is None or (isinstance(value, str) and not _clean(value)):
        return None
    if isinstance(value, bool):
        raise CellValueError(f"{shown(value)} is not a duration")
    if isinstance(value, time):
        minutes = Decimal(value.hour * 60 + value.minute)
    elif isinstance(value, timedelta):
        minutes = Decimal(int(value.total_seconds())) / 60
    elif isinstance(value, int | float | Decimal):
        minutes = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    else:
        text = _clean(str(value)).lower()
        for form in _DURATION_FORMS:
            match = form.fullmatch(text)
            if match is not None:
                parts = match.groupdict()
                hours = Decimal(parts["h"].replace(",", ".")) if parts.get("h") else Decimal(0)
                mins = Decimal(parts["m"].replace(",", ".")) if parts.get("m") else Decimal(0)
                minutes = hours * 60 + mins
                break
        else:
            raise CellValueError(f"{shown(value)} is not a duration (write minutes, e.g. 60, '60 min', '1 h', '1:30')")
    if not minutes.is_finite() or minutes <= 0:
        raise CellValueError(f"{shown(value)} is not a positive duration")
    if minutes > MAX_DURATION_MINUTES:
        raise CellValueError(
            f"{shown(value)} is longer than the longest accepted duration, {MAX_DURATION_MINUTES} minutes (a year)"
        )
    if minutes != minutes.to_integral_value():
        raise CellValueError(f"{shown(value)} is not a whole number of minutes")
    return int(minutes)
