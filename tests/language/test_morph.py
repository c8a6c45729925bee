"""bot.language.morph: lemmas of cases, numbers and diminutives; matching keys; number–noun
agreement in replies (Russian and English)."""

from __future__ import annotations

import pytest

from bot.language.morph import agree, lemma, lemma_candidates, match_key, match_keys, phrase_key, plural


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        # Russian cases and numbers
        ("лилий", "лилия"),
        ("лилии", "лилия"),
        ("розу", "роза"),
        ("роз", "роза"),
        ("Розы", "роза"),
        ("пионов", "пион"),
        ("хризантем", "хризантема"),
        ("вазу", "ваза"),  # not the abbreviation "ВАЗ"
        ("свечей", "свеча"),
        ("стрижку", "стрижка"),
        ("красных", "красный"),
        ("ёлочку", "елка"),
        # diminutives, in any case
        ("ромашечек", "ромашка"),
        ("ромашечки", "ромашка"),
        ("кружечки", "кружка"),
        ("кружечку", "кружка"),
        ("розочки", "роза"),
        ("тюльпанчиков", "тюльпан"),
        ("чайничек", "чайник"),
        ("шарфики", "шарф"),
        ("букетик", "букет"),
        ("коробочку", "коробка"),
        ("тарелочки", "тарелка"),
        ("сумочку", "сумка"),
        ("пакетик", "пакет"),
        ("платочек", "платок"),
        # real words that only look diminutive stay
        ("подушку", "подушка"),
        ("цветок", "цветок"),
        # English plurals
        ("mugs", "mug"),
        ("lilies", "lily"),
        ("scarves", "scarf"),
        ("glasses", "glass"),
        ("boxes", "box"),
        ("Teapots", "teapot"),
        ("knives", "knife"),
        ("glass", "glass"),
        ("bus", "bus"),
        ("cactus", "cactus"),
        ("", ""),
    ],
)
def test_lemma(word: str, expected: str) -> None:
    assert lemma(word) == expected


@pytest.mark.parametrize(
    ("customer", "catalogue"),
    [
        ("ромашечек", "Ромашка"),
        ("кружечки", "Кружка"),
        ("лилий", "Лилия"),
        ("свечку", "Свеча"),
        ("чашечку", "чашка"),
        ("тюльпанчики", "Тюльпаны"),
        ("розочек", "розы"),
        ("lilies", "Lily"),
        ("Scarves", "scarf"),
        ("mugs", "Mug"),
    ],
)
def test_match_key_equal_for_customer_and_catalogue_forms(customer: str, catalogue: str) -> None:
    assert match_key(customer) == match_key(catalogue)


@pytest.mark.parametrize(
    ("first", "second"),
    [("роза", "лилия"), ("цветок", "цвет"), ("mug", "mat"), ("кружка", "круг"), ("сумка", "сумма")],
)
def test_match_key_keeps_different_words_apart(first: str, second: str) -> None:
    assert match_key(first) != match_key(second)


def test_phrase_key_drops_digits_and_reads_each_word() -> None:
    assert phrase_key("3 красные розочки") == (match_key("красный"), match_key("роза"))


@pytest.mark.parametrize(
    ("n", "noun", "language", "expected"),
    [
        (1, "роза", "ru", "1 роза"),
        (2, "роза", "ru", "2 розы"),
        (4, "роза", "ru", "4 розы"),
        (5, "роза", "ru", "5 роз"),
        (11, "роза", "ru", "11 роз"),
        (12, "роза", "ru", "12 роз"),
        (21, "роза", "ru", "21 роза"),
        (22, "роза", "ru", "22 розы"),
        (25, "роза", "ru", "25 роз"),
        (101, "роза", "ru", "101 роза"),
        (0, "роза", "ru", "0 роз"),
        (2, "чайник", "ru", "2 чайника"),
        (5, "чайник", "ru", "5 чайников"),
        (3, "Кружка", "ru", "3 Кружки"),  # capitalisation kept
        (2, "красная роза", "ru", "2 красные розы"),
        (5, "красная роза", "ru", "5 красных роз"),
        (21, "красная роза", "ru", "21 красная роза"),
        (2, "белый чайник", "ru", "2 белых чайника"),
        (5, "роза Эквадор", "ru", "5 роз Эквадор"),  # words after the head noun kept
        (3, "набор свечей", "ru", "3 набора свечей"),
        (1, "mug", "en", "1 mug"),
        (2, "mug", "en", "2 mugs"),
        (21, "mug", "en", "21 mugs"),
        (3, "lily", "en", "3 lilies"),
        (2, "scarf", "en", "2 scarves"),
        (3, "cup of tea", "en", "3 cups of tea"),
        (0, "box", "en", "0 boxes"),
    ],
)
def test_agree(n: int, noun: str, language: str, expected: str) -> None:
    assert agree(n, noun, language) == expected


def test_plural_keeps_unknown_words() -> None:
    assert plural("Zxqw", 5, "ru") == "Zxqw"
    assert plural("", 5, "ru") == ""


def test_agreement_is_the_same_for_every_hundred() -> None:
    assert [agree(n, "роза", "ru") for n in (100, 101, 102, 111, 1005)] == [
        "100 роз",
        "101 роза",
        "102 розы",
        "111 роз",
        "1005 роз",
    ]


@pytest.mark.parametrize(
    ("customer", "catalogue"),
    [("носков", "Носки"), ("носок", "носки"), ("часов", "Часы"), ("лилий", "Лилия"), ("mugs", "Mug")],
)
def test_match_keys_meet_for_ambiguous_forms(customer: str, catalogue: str) -> None:
    assert match_keys(customer) & match_keys(catalogue)


@pytest.mark.parametrize(("first", "second"), [("сливки", "слива"), ("ложку", "ложа"), ("роза", "лилия")])
def test_match_keys_stay_apart_for_different_nouns(first: str, second: str) -> None:
    assert not match_keys(first) & match_keys(second)


def test_lemma_prefers_the_word_as_written_when_it_is_a_dictionary_form() -> None:
    assert lemma("носок") == "носок"
    assert lemma_candidates("носки")[0] == lemma("носки")
    assert set(lemma_candidates("носки")) == {"носок", "носка"}
