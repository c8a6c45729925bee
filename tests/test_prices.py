"""Cell parsers of the knowledge importer: prices, quantities, durations, HTML descriptions."""

from __future__ import annotations

import re
from datetime import time
from decimal import Decimal

import pytest

from knowledge.markup import html_to_text
from knowledge.prices import CellValueError, parse_duration, parse_price, parse_quantity

NBSP, THIN, NARROW = "\u00a0", "\u2009", "\u202f"


@pytest.mark.parametrize(
    ("raw", "currency", "minor"),
    [
        (f"1{NBSP}990,00{NBSP}₽", "RUB", 199000),
        ("1 990,00 ₽", "RUB", 199000),
        (f"1{THIN}990 р.", "RUB", 199000),
        (f"1{NARROW}990,50 руб", "RUB", 199050),
        ("1990", "RUB", 199000),
        ("60 руб.", "RUB", 6000),
        ("150 руб./шт", "RUB", 15000),
        ("$60", "USD", 6000),
        ("$ 60.00", "USD", 6000),
        ("60.00", "USD", 6000),
        ("19.9", "USD", 1990),
        ("1,990.00", "USD", 199000),
        ("1,990", "USD", 199000),
        ("12,5", "EUR", 1250),
        ("1.990,00 €", "EUR", 199000),
        ("€1.990", "EUR", 199000),
        ("1.990.000,50", "EUR", 199000050),
        ("60 USD", "USD", 6000),
        ("USD 60", "USD", 6000),
        ("1'990.50", "CHF", 199050),
        ("0", "USD", 0),
        ("1990", "JPY", 1990),
        ("¥1,990", "JPY", 1990),
        ("1,5", "KWD", 1500),
        ("0,500", "KWD", 500),
        (60, "USD", 6000),
        (19.9, "USD", 1990),
        (23.880000000000003, "USD", 2388),
        (Decimal("9.99"), "USD", 999),
        (1990, "JPY", 1990),
    ],
)
def test_parse_price(raw: object, currency: str, minor: int) -> None:
    assert parse_price(raw, currency) == minor


@pytest.mark.parametrize(
    ("raw", "currency", "message"),
    [
        ("abc", "USD", "'abc' is not a price"),
        ("", "USD", "price is empty"),
        (None, "USD", "price is empty"),
        ("-5", "USD", "negative price"),
        (-5, "USD", "negative price"),
        ("от 100", "RUB", "is not a price"),
        ("1 99", "USD", "is not a price"),
        ("1,99,000", "USD", "is not a price"),
        ("$60", "RUB", "not in the company currency RUB"),
        ("60 €", "USD", "not in the company currency USD"),
        ("1990.5", "JPY", "more decimal places than JPY allows (0)"),
        ("19.9999", "USD", "more decimal places than USD allows (2)"),
        ("1.50.3", "USD", "is not a price"),
    ],
)
def test_parse_price_refuses(raw: object, currency: str, message: str) -> None:
    with pytest.raises(CellValueError, match=re.escape(message)):
        parse_price(raw, currency)


@pytest.mark.parametrize(
    ("raw", "stock"),
    [
        ("5", 5),
        ("5 шт", 5),
        ("1 000", 1000),
        ("5.0", 5),
        (7, 7),
        (7.0, 7),
        ("", None),
        (None, None),
        ("да", None),
        ("в наличии", None),
        ("Yes", None),
        ("нет", 0),
        ("no", 0),
        ("sold out", 0),
        ("0", 0),
    ],
)
def test_parse_quantity(raw: object, stock: int | None) -> None:
    assert parse_quantity(raw) == stock


@pytest.mark.parametrize("raw", ["-3", -1, "2.5", 2.5, "много"])
def test_parse_quantity_refuses(raw: object) -> None:
    with pytest.raises(CellValueError):
        parse_quantity(raw)


@pytest.mark.parametrize(
    ("raw", "minutes"),
    [
        ("60", 60),
        (60, 60),
        (45.0, 45),
        ("60 мин", 60),
        ("60 min", 60),
        ("90 minutes", 90),
        ("1 h", 60),
        ("2 hours", 120),
        ("1,5 ч", 90),
        ("1:30", 90),
        ("1 ч 30 мин", 90),
        ("1ч30м", 90),
        (time(1, 30), 90),
        ("", None),
    ],
)
def test_parse_duration(raw: object, minutes: int | None) -> None:
    assert parse_duration(raw) == minutes


@pytest.mark.parametrize("raw", ["abc", "0", "-5", "1.5"])
def test_parse_duration_refuses(raw: object) -> None:
    with pytest.raises(CellValueError):
        parse_duration(raw)


@pytest.mark.parametrize(
    ("markup", "text"),
    [
        ("<p>Hi &amp; bye</p>", "Hi & bye"),
        ("<p>Gold pendant.</p><ul><li>14k gold</li><li>Leather</li></ul>", "Gold pendant. 14k gold. Leather"),
        ("a<br>b<br/>c", "a. b. c"),
        ("plain  text\n  here", "plain text here"),
        ("x &lt; 5&nbsp;cm <style>p{}</style>", "x < 5 cm"),
        ("", ""),
    ],
)
def test_html_to_text(markup: str, text: str) -> None:
    assert html_to_text(markup) == text
