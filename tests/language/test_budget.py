"""bot.language.budget: price limits in words and symbols, English and Russian."""

from __future__ import annotations

from decimal import Decimal

import pytest

from bot.language.budget import Budget, parse_budget

D = Decimal


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a gift for a coworker, max 30 dollars", Budget(max_amount=D(30), currency="USD")),
        ("under $50", Budget(max_amount=D(50), currency="USD")),
        ("something under 50", Budget(max_amount=D(50))),
        ("less than fifty bucks", Budget(max_amount=D(50), currency="USD")),
        ("up to 29.99 usd", Budget(max_amount=D("29.99"), currency="USD")),
        ("30$ max", Budget(max_amount=D(30), currency="USD")),
        ("50 dollars or less", Budget(max_amount=D(50), currency="USD")),
        ("50 dollars or more", Budget(min_amount=D(50), currency="USD")),
        ("over 100 euros", Budget(min_amount=D(100), currency="EUR")),
        ("under £15", Budget(max_amount=D(15), currency="GBP")),
        ("something for €25", Budget(max_amount=D(25), currency="EUR")),
        ("budget is 200", Budget(max_amount=D(200))),
        ("between 20 and 40", Budget(min_amount=D(20), max_amount=D(40))),
        ("$20-40", Budget(min_amount=D(20), max_amount=D(40), currency="USD")),
        ("from 10 to 20 euros", Budget(min_amount=D(10), max_amount=D(20), currency="EUR")),
        ("around 40", Budget(min_amount=D(32), max_amount=D(48), around=D(40))),
        ("$30ish", Budget(min_amount=D(24), max_amount=D(36), currency="USD", around=D(30))),
        ("~40", Budget(min_amount=D(32), max_amount=D(48), around=D(40))),
        ("до 2000 рублей", Budget(max_amount=D(2000), currency="RUB")),
        ("что-нибудь до 2000 рублей", Budget(max_amount=D(2000), currency="RUB")),
        ("не дороже 1500", Budget(max_amount=D(1500))),
        ("не дешевле 300", Budget(min_amount=D(300))),
        ("от 500 до 1000 ₽", Budget(min_amount=D(500), max_amount=D(1000), currency="RUB")),
        ("до двух тысяч", Budget(max_amount=D(2000))),
        ("в пределах 3к", Budget(max_amount=D(3000))),
        ("за 1 500 руб", Budget(max_amount=D(1500), currency="RUB")),
        ("около 2 тыс рублей", Budget(min_amount=D(1600), max_amount=D(2400), currency="RUB", around=D(2000))),
        ("примерно 3000", Budget(min_amount=D(2400), max_amount=D(3600), around=D(3000))),
        ("не меньше 500 и не больше 900", Budget(min_amount=D(500), max_amount=D(900))),
        # not budgets
        ("two mugs", None),
        ("3 tulips and 2 lilies", None),
        ("хочу 5 роз", None),
        ("on Saturday at 11", None),
        ("", None),
    ],
)
def test_parse_budget(text: str, expected: Budget | None) -> None:
    assert parse_budget(text) == expected
