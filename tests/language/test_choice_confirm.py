"""bot.language.choice (which offered option) and bot.language.confirm (plain yes/no)."""

from __future__ import annotations

import pytest

from bot.language.choice import Choice, parse_choice
from bot.language.confirm import parse_yes_no


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("the second", Choice(index=2)),
        ("the first one please", Choice(index=1)),
        ("I want the 3rd one", Choice(index=3)),
        ("2nd", Choice(index=2)),
        ("option 2", Choice(index=2)),
        ("#2", Choice(index=2)),
        ("the last one", Choice(index=-1)),
        ("вторую, пожалуйста", Choice(index=2)),
        ("давайте первый", Choice(index=1)),
        ("покажите третьего", Choice(index=3)),
        ("2-й", Choice(index=2)),
        ("номер 3", Choice(index=3)),
        ("третий вариант", Choice(index=3)),
        ("последний", Choice(index=-1)),
        ("the cheaper one", Choice(price="cheapest")),
        ("the most expensive", Choice(price="most_expensive")),
        ("подешевле", Choice(price="cheapest")),
        ("самый дорогой", Choice(price="most_expensive")),
        ("самую дешёвую", Choice(price="cheapest")),
        # not picks
        ("2", None),
        ("ten roses", None),
        ("red roses", None),
        ("second-hand books", None),
        ("first-class roses", None),
        ("at first", None),
        ("в первый раз", None),
        ("в первую очередь доставка", None),
        ("", None),
    ],
)
def test_parse_choice(text: str, expected: Choice | None) -> None:
    assert parse_choice(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("yes", True),
        ("Yes please", True),
        ("yesss!", True),
        ("sure", True),
        ("go ahead", True),
        ("да", True),
        ("Да, конечно", True),
        ("давайте", True),
        ("ага", True),
        ("👍", True),
        ("no", False),
        ("nope", False),
        ("no thanks", False),
        ("not now", False),
        ("нет", False),
        ("нет, спасибо", False),
        ("не надо", False),
        ("пока нет", False),
        # not plain answers: their content must reach understanding
        ("no, the red one", None),
        ("yes, and add a vase", None),
        ("да, и ещё розу", None),
        ("maybe", None),
        ("two mugs", None),
        ("", None),
    ],
)
def test_parse_yes_no(text: str, expected: bool | None) -> None:
    assert parse_yes_no(text) is expected
