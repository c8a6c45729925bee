"""Which of the last offered options a customer picks: by position ("the second", "вторую",
"2nd", "option 2", "номер 3", "#2", "the last one", "последний") or by price ("the cheaper one",
"подешевле", "the most expensive", "самый дорогой"). The engine resolves the pick against the
options it keeps in state (``choose(option)`` in the command vocabulary).

English ordinals are read with ``number-parser``; Russian ordinals in any case and gender
("вторую", "третьего") through pymorphy3's dictionary form.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from knowledge.text import tokenize

__all__ = ["Choice", "parse_choice"]

PriceRank = Literal["cheapest", "most_expensive"]

# Dictionary forms of Russian ordinals (pymorphy3 gives "второй" for "вторую", "второго"...).
_RU_ORDINALS = {
    "первый": 1, "второй": 2, "третий": 3, "четвертый": 4, "пятый": 5,
    "шестой": 6, "седьмой": 7, "восьмой": 8, "девятый": 9, "десятый": 10,
}
_LAST = frozenset({"last", "последний", "последняя", "последнюю", "последнее", "последнего", "последней"})
_NUMBER_MARKERS = frozenset({"option", "number", "no", "item", "variant", "вариант", "номер", "позиция", "позицию"})
_CHEAP = re.compile(
    r"\b(?:cheap(?:er|est)|less\s+expensive|least\s+expensive|lower\s+price(?:d)?|(?:по)?дешевле|самый\s+дешев\w*"
    r"|самую\s+дешев\w*|самое\s+дешев\w*|подешевле|дешевый|дешевую|дешевое|бюджетн\w*)\b",
    re.IGNORECASE,
)
_EXPENSIVE = re.compile(
    r"\b(?:(?:more|most)\s+expensive|pricier|priciest|(?:по)?дороже|самый\s+дорог\w*|самую\s+дорог\w*"
    r"|самое\s+дорог\w*|подороже|дорогой|дорогую|дорогое)\b",
    re.IGNORECASE,
)
_NUMERIC_ORDINAL = re.compile(r"\b(\d{1,2})\s*(?:st|nd|rd|th|-?[йяюеоь]|-?ая|-?ую|-?ое|-?ой|-?ий)\b", re.IGNORECASE)
# "second-hand", "first-class": hyphenated compounds are not picks.
_COMPOUND = re.compile(r"\b\w+-(?:hand|class|rate|time|aid|ever|born)\b|\bпол\w*-\w+", re.IGNORECASE)
_NOT_A_PICK_AFTER = frozenset({"time", "times", "раз", "class", "place", "aid", "day", "очередь"})
_NOT_ORDINALS = frozenset("with both month worth north south east west best most just must".split())
_HASH = re.compile(r"(?:#|№)\s*(\d{1,2})\b")


@dataclass(frozen=True, slots=True)
class Choice:
    """A pick among offered options: ``index`` is 1-based, ``-1`` for "the last", ``None`` when
    the pick is by price; ``price`` is "cheapest"/"most_expensive" or ``None``."""

    index: int | None = None
    price: PriceRank | None = None


@lru_cache(maxsize=16384)
def _ordinal_word(token: str) -> int | None:
    if token in _LAST:
        return -1
    if re.search(r"[а-я]", token):
        from bot.language.morph import russian_parses

        for parse in russian_parses(token):
            if "Anum" in parse.tag:
                return _RU_ORDINALS.get(parse.normal_form.replace("ё", "е"))
        return None
    if token.endswith(("st", "nd", "rd", "th")) and token.isalpha() and token not in _NOT_ORDINALS:
        from number_parser import parse_ordinal

        value = parse_ordinal(token, language="en")
        return int(value) if value is not None else None
    return None


def parse_choice(text: str, language: str | None = None) -> Choice | None:
    """The option the customer picks in ``text``, or ``None`` when the text names none.

    "the second" → ``Choice(index=2)``; "вторую, пожалуйста" → 2; "2nd" / "2-й" / "#2" /
    "option 2" / "номер 2" → 2; "the last one" / "последний" → -1; "the cheaper one" /
    "подешевле" → ``Choice(price="cheapest")``; "самый дорогой" → ``Choice(price=
    "most_expensive")``. A bare number ("2") is not a pick here (it may be a quantity); the
    engine reads buttons ("o:2") before understanding. ``language`` is accepted for symmetry.
    """
    del language
    lowered = text.replace("ё", "е").replace("Ё", "Е")
    if _CHEAP.search(lowered):
        return Choice(price="cheapest")
    if _EXPENSIVE.search(lowered):
        return Choice(price="most_expensive")
    match = _HASH.search(lowered) or _NUMERIC_ORDINAL.search(lowered)
    if match:
        return Choice(index=int(match.group(1))) if int(match.group(1)) >= 1 else None
    tokens = tokenize(_COMPOUND.sub(" ", lowered))
    for i, token in enumerate(tokens):
        if (i + 1 < len(tokens) and tokens[i + 1] in _NOT_A_PICK_AFTER) or (i and tokens[i - 1] in {"at"}):
            continue  # "first time", "в первый раз", "at first"
        if token in _NUMBER_MARKERS and i + 1 < len(tokens) and tokens[i + 1].isdigit():
            return Choice(index=int(tokens[i + 1])) if int(tokens[i + 1]) >= 1 else None
        value = _ordinal_word(token)
        if value is not None:
            return Choice(index=value)
    return None
