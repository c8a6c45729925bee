"""bot.language.segments: several items in one message, items with a question, "and also"/
"и ещё", quantities in words, lists, and clauses that are not items."""

from __future__ import annotations

import pytest

from bot.language.segments import split_items

Item = tuple[int | None, str]


@pytest.mark.parametrize(
    ("text", "items", "rest"),
    [
        ("a teapot and two mugs", [(1, "teapot"), (2, "mugs")], []),
        ("teapot and two mugs", [(None, "teapot"), (2, "mugs")], []),
        ("3 tulips and 2 lilies", [(3, "tulips"), (2, "lilies")], []),
        ("3 tulips, 2 lilies and a vase", [(3, "tulips"), (2, "lilies"), (1, "vase")], []),
        ("give me half a dozen roses and a dozen tulips", [(6, "roses"), (12, "tulips")], []),
        ("I'll take a couple of mugs please", [(2, "mugs")], []),
        ("add 2 red roses to my cart", [(2, "red roses")], []),
        ("roses x3", [(3, "roses")], []),
        ("can I get two mugs?", [(2, "mugs")], []),
        ("put two scarves in, and do you ship abroad?", [(2, "scarves")], ["do you ship abroad?"]),
        ("two mugs. How long is delivery?", [(2, "mugs")], ["How long is delivery?"]),
        ("hi! I want 2 mugs", [(2, "mugs")], ["hi!"]),
        ("дайте три ромашки и две лилии", [(3, "ромашки"), (2, "лилии")], []),
        ("мне пару кружечек и десяток ромашек", [(2, "кружечек"), (10, "ромашек")], []),
        (
            "мне пару кружечек и десяток ромашек, и сколько стоит доставка?",
            [(2, "кружечек"), (10, "ромашек")],
            ["сколько стоит доставка?"],
        ),
        ("хочу пять тюльпанчиков и семь лилий", [(5, "тюльпанчиков"), (7, "лилий")], []),
        ("розы 5 штук", [(5, "розы")], []),
        ("дайте ромашку, лилию и вазу", [(None, "ромашку"), (None, "лилию"), (None, "вазу")], []),
        ("мне две розы. А доставка бесплатная?", [(2, "розы")], ["доставка бесплатная?"]),
        ("положите полдюжины роз, пожалуйста", [(6, "роз")], []),
        ("с двумя лилиями и тремя розами", [(2, "лилиями"), (3, "розами")], []),
        # not items: questions, bare names, combined product names, corrections without a noun
        ("how much is a teapot?", [], ["how much is a teapot?"]),
        ("do you have red roses?", [], ["do you have red roses?"]),
        ("есть ли у вас пионы?", [], ["есть ли у вас пионы?"]),
        ("salt and pepper set", [], ["salt and pepper set"]),
        ("ромашки и лилии", [], ["ромашки и лилии"]),
        ("нет, лучше 8 штук", [], ["нет", "лучше 8 штук"]),
        ("the red one", [], ["the red one"]),
        ("another one", [], ["another one"]),
        ("дайте две такие", [], ["дайте две такие"]),
        ("take 2", [], ["take 2"]),
        ("one teapot, two cups, and a tray please", [(1, "teapot"), (2, "cups"), (1, "tray")], []),
        ("Можно 3 розы? И доставку на завтра", [(3, "розы")], ["доставку на завтра"]),
        ("семь лилий и пару роз", [(7, "лилий"), (2, "роз")], []),
        ("a gift for a coworker, max 30 dollars", [(1, "gift for a coworker")], ["max 30 dollars"]),
        ("Li Wei, 4 Cedar Lane, Portland OR 97205", [], ["Li Wei", "4 Cedar Lane", "Portland OR 97205"]),
        ("", [], []),
    ],
)
def test_split_items(text: str, items: list[Item], rest: list[str]) -> None:
    split = split_items(text)
    assert [(s.quantity, s.phrase) for s in split.items] == items
    assert list(split.rest) == rest


@pytest.mark.parametrize(
    ("text", "items", "cue"),
    [
        ("and also a vase", [(1, "vase")], "also"),
        ("also the card", [(None, "card")], "also"),
        ("и ещё розу", [(None, "розу")], "also"),
        ("ещё две лилии", [(2, "лилии")], "also"),
        ("two mugs too", [(2, "mugs")], "also"),
        ("лилию тоже", [(None, "лилию")], "also"),
        ("put two scarves in", [(2, "scarves")], "add"),
        ("дайте розу", [(None, "розу")], "add"),
        ("хочу букетик", [(None, "букетик")], "add"),
        ("можно мне кружечку?", [(None, "кружечку")], "add"),
        ("3 tulips", [(3, "tulips")], None),
        ("and 2 more mugs", [(2, "mugs")], "also"),
        ("add another mug", [(1, "mug")], "add"),
        ("ещё одну розу", [(1, "розу")], "also"),
        ("2 кружки и ещё вазу", [(2, "кружки"), (None, "вазу")], "also"),
    ],
)
def test_cues(text: str, items: list[Item], cue: str | None) -> None:
    split = split_items(text)
    assert [(s.quantity, s.phrase) for s in split.items] == items
    assert split.cue == cue


def test_questions_are_reported_separately_from_other_leftovers() -> None:
    split = split_items("hi! two mugs, and do you ship abroad?")
    assert [(s.quantity, s.phrase) for s in split.items] == [(2, "mugs")]
    assert split.rest == ("hi!", "do you ship abroad?")
    assert split.questions == ("do you ship abroad?",)


def test_segment_keeps_the_clause_as_written_and_its_words() -> None:
    (segment,) = split_items("Put 2 Red Roses in please").items
    assert segment.text == "Put 2 Red Roses in please"
    assert segment.words == ("red", "roses")
