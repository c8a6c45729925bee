"""bot.language.quantities: digits, number words in every Russian case, collective numerals and
colloquial amounts; prices, times, sizes, phones and the pronoun "one" are not quantities."""

from __future__ import annotations

import pytest

from bot.language.quantities import parse_quantity, quantity_tokens, read_quantity


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # digits and markers
        ("3", 3),
        ("3 tulips", 3),
        ("x3", 3),
        ("roses x3", 3),
        ("3x mugs", 3),
        ("roses ×2", 2),
        ("3 шт", 3),
        ("3шт.", 3),
        ("3pcs", 3),
        ("3 pcs please", 3),
        ("нет, лучше 8 штук", 8),
        ("change that to 6", 6),
        # English words
        ("seven roses", 7),
        ("twenty one roses", 21),
        ("one hundred and five napkins", 105),
        ("one mug", 1),
        ("just one", 1),
        ("one more mug", 1),
        ("a couple of mugs", 2),
        ("couple mugs", 2),
        ("a pair of socks", 2),
        ("half a dozen roses", 6),
        ("half dozen eggs", 6),
        ("a dozen tulips", 12),
        ("two dozen roses", 24),
        # Russian cardinals in every case
        ("семь роз", 7),
        ("одну лилию", 1),
        ("две лилии", 2),
        ("с двумя лилиями", 2),
        ("трёх роз", 3),
        ("трех роз", 3),
        ("четырёх роз хватит", 4),
        ("с пятью розами", 5),
        ("двадцать одну розу", 21),
        ("двадцати пяти", 25),
        ("ромашек пять", 5),
        # collective numerals
        ("нас двое", 2),
        ("на семерых", 7),
        ("для пятерых", 5),
        # colloquial Russian
        ("пару роз", 2),
        ("парочку кружек", 2),
        ("десяток ромашек", 10),
        ("пяток тюльпанов", 5),
        ("полдюжины роз", 6),
        ("пол дюжины", 6),
        ("дюжину роз", 12),
        ("две дюжины роз", 24),
        ("три десятка роз", 30),
        # not quantities
        ("the red one", None),
        ("the blue one please", None),
        ("this one", None),
        ("one of them", None),
        ("under $50", None),
        ("max 30 dollars", None),
        ("до 2000 рублей", None),
        ("500 руб", None),
        ("at 11", None),
        ("в 11", None),
        ("11:30", None),
        ("size 42", None),
        ("размер 38", None),
        ("+7 912 345-67-89", None),
        ("call 503 555 0142", None),
        ("12.05", None),
        ("2.5 kg", None),
        ("order #12345", None),
        ("a mug", None),
        ("букет из пяти роз", None),
        ("a bouquet of 15 roses", None),
        ("2 bouquets of 15 roses", 2),
        ("hello", None),
        ("", None),
    ],
)
def test_parse_quantity(text: str, expected: int | None) -> None:
    assert parse_quantity(text, "ru" if any("а" <= c <= "я" for c in text.lower()) else "en") == expected


@pytest.mark.parametrize(("text", "expected"), [("a mug", 1), ("an apron", 1), ("add a mug", 1), ("a dozen", 12)])
def test_articles_count_as_one_when_asked(text: str, expected: int) -> None:
    assert parse_quantity(text, "en", articles=True) == expected


def test_read_quantity_reports_the_tokens_it_used() -> None:
    tokens = quantity_tokens("a couple of red mugs")
    match = read_quantity(tokens, 0)
    assert match is not None
    assert (match.value, tokens[match.end :]) == (2, ["red", "mugs"])
    tokens = quantity_tokens("5 шт роз")
    match = read_quantity(tokens, 0)
    assert match is not None and tokens[match.end :] == ["роз"]


def test_quantities_beyond_any_order_are_refused() -> None:
    assert parse_quantity("10000 roses", "en") is None
    assert parse_quantity("ten thousand roses", "en") is None
