"""Russian number agreement in cart lines and added-to-cart replies (pymorphy3): «1 роза, 2 розы, 5 роз»."""

from __future__ import annotations

import pytest

from bot import texts


@pytest.mark.parametrize(("quantity", "expected"), [
    (1, "1 роза — 150,00 ₽"), (2, "2 розы — 150,00 ₽"), (4, "4 розы — 150,00 ₽"), (5, "5 роз — 150,00 ₽"),
    (11, "11 роз — 150,00 ₽"), (21, "21 роза — 150,00 ₽"), (22, "22 розы — 150,00 ₽"), (25, "25 роз — 150,00 ₽"),
])
def test_a_one_noun_name_agrees_with_its_number(quantity: int, expected: str) -> None:
    assert texts.line(quantity, "Роза", None, "150,00 ₽", "ru") == expected


def test_other_nouns_genders_and_the_variant() -> None:
    assert texts.line(5, "Тюльпан", "жёлтый", "450,00 ₽", "ru") == "5 тюльпанов (жёлтый) — 450,00 ₽"
    assert texts.line(3, "Лилия", None, "900,00 ₽", "ru") == "3 лилии — 900,00 ₽"
    assert texts.line(2, "Сертификат", None, "2 000,00 ₽", "ru") == "2 сертификата — 2 000,00 ₽"
    assert texts.line(5, "Ёлка", None, "5 000,00 ₽", "ru") == "5 ёлок — 5 000,00 ₽"


def test_names_where_agreement_is_unsafe_are_left_as_they_are() -> None:
    assert texts.line(5, "Букет «Нежность»", None, "12 450,00 ₽", "ru") == "5 × Букет «Нежность» — 12 450,00 ₽"
    assert texts.line(2, "Красная роза", None, "300,00 ₽", "ru") == "2 × Красная роза — 300,00 ₽"
    assert texts.line(3, "Кофе", None, "600,00 ₽", "ru") == "3 × Кофе — 600,00 ₽"  # indeclinable
    assert texts.line(2, "Ножницы", None, "800,00 ₽", "ru") == "2 × Ножницы — 800,00 ₽"  # plural-only
    assert texts.line(2, "Москва", None, "800,00 ₽", "ru") == "2 × Москва — 800,00 ₽"  # a proper name
    assert texts.line(2, "Rose", None, "3.00 USD", "ru") == "2 × Rose — 3.00 USD"


def test_english_replies_keep_the_times_sign() -> None:
    assert texts.line(5, "Роза", None, "150,00 ₽", "en") == "5 × Роза — 150,00 ₽"
    assert texts.line(2, "Mug", "Blue", "24.00 USD", "en") == "2 × Mug (Blue) — 24.00 USD"
