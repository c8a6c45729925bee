"""Guardrails on a model's reply: its facts must be values a tool returned in this turn.

``facts(texts, locale)`` collects the numbers (amounts of money, quantities, stock, day numbers) and
clock times of the tool results; ``problems(reply, ...)`` lists what is wrong with a reply: a number or
time no tool returned, a URL (links come only from actions), another language than the customer's, or
more characters than the channel takes. Numbers are read with Babel's locale-aware parser
(``babel.numbers.parse_decimal``: ``1,020.00`` in ``en``, ``1 020,00`` in ``ru``), so ``$40`` and
``40.00 USD`` are the same amount and ``$35`` is not.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from babel.numbers import NumberFormatError, parse_decimal

from knowledge.text import detect_language

_TIME = re.compile(r"(?<![\d:.,])([01]?\d|2[0-3])[:.]([0-5]\d)(?![\d:])")
_NUMBER = re.compile(r"\d+(?:[ \u00a0\u202f]\d{3})*(?:[.,]\d+)*")
_SIGN = r"(?:[$€£₽¥]|\b(?:USD|EUR|GBP|RUB|JPY)\b|руб\.?|(?i:\b(?:dollars?|euros?|pounds?|rubles?|roubles?)\b))"
_MONEY = re.compile(rf"{_SIGN}\s?(\d[\d \u00a0\u202f.,]*\d|\d)|(\d[\d \u00a0\u202f.,]*\d|\d)\s?{_SIGN}")
_URL = re.compile(r"(?i)\b(?:https?://|www\.)\S+|\b[a-z0-9-]+(?:\.[a-z0-9-]+)*\.(?:com|net|org|io|ru|shop|store|link|ly|me|app)\b(?:/\S*)?")

# Characters a reply may have per channel (Telegram Bot API sendMessage: 4096; WhatsApp via WAHA: 4096;
# the web chat widget: 4000); unknown channels get the smallest.
CHANNEL_LIMITS: dict[str, int] = {"telegram": 4096, "whatsapp": 4096, "waha": 4096, "webchat": 4000, "email": 20000}
DEFAULT_LIMIT = 4000


@dataclass(slots=True)
class Facts:
    """Values tools returned in one turn: ``money`` (amounts written with a currency), ``numbers``
    (``Decimal``) and ``times`` (``HH:MM``)."""

    numbers: set[Decimal] = field(default_factory=set)
    times: set[str] = field(default_factory=set)
    money: set[Decimal] = field(default_factory=set)

    def add_text(self, text: str, locale: str) -> None:
        """Collect every number and time of ``text`` (a tool result, a rendered reply)."""
        self.money.update(_amounts(text, locale))
        for hour, minute in _TIME.findall(text):
            self.times.add(f"{int(hour):02d}:{minute}")
        for token in _numbers(text, locale):
            self.numbers.add(token)
        for run in re.findall(r"\d+", text):  # each digit run alone too ("3 Dec 2026", "1 020")
            self.numbers.add(Decimal(run))


def facts(texts: Iterable[str], locale: str) -> Facts:
    """The facts of several tool results."""
    found = Facts()
    for text in texts:
        found.add_text(text, locale)
    return found


def problems(reply: str, *, facts: Facts, locale: str, language: str, channel: str) -> list[str]:
    """What makes ``reply`` unsayable (empty: it may be sent). Each problem is a short English sentence
    the model is told when asked to regenerate."""
    found: list[str] = []
    if _URL.search(reply):
        found.append("The reply contains a link or web address; never write URLs, the shop adds links itself.")
    for value in _amounts(reply, locale):
        if value not in facts.money:
            found.append(f"The amount {value} was not returned by a tool as a price or total in this turn.")
    without_times = _TIME.sub(" ", reply)
    for hour, minute in _TIME.findall(reply):
        if f"{int(hour):02d}:{minute}" not in facts.times:
            found.append(f"The time {hour}:{minute} was not returned by a tool in this turn.")
    for value in _numbers(without_times, locale):
        if value not in facts.numbers:
            found.append(f"The number {value} (a price, quantity, stock or date) was not returned by a tool "
                         "in this turn; use only values from tool results.")
    limit = CHANNEL_LIMITS.get(channel, DEFAULT_LIMIT)
    if len(reply) > limit:
        found.append(f"The reply is longer than {limit} characters.")
    if sum(ch.isalpha() for ch in reply) >= 12 and detect_language(reply, default=language) != language:
        found.append(f"The reply must be in the customer's language ({language}).")
    return found


def redact(text: str) -> str:
    """``text`` with every amount of money (``$40``, ``40.00 USD``, ``1 020,00 ₽``) replaced by
    ``[amount]`` and every web address by ``[link]`` (for text kept between turns, such as the running
    summary, which must not carry prices or links)."""
    return _URL.sub("[link]", _MONEY.sub("[amount]", text))


def _amounts(text: str, locale: str) -> list[Decimal]:
    """Numbers written with a currency sign, code or word: ``$40``, ``40.00 USD``, ``1 020,00 ₽``."""
    return [v for m in _MONEY.finditer(text) for v in _numbers(m.group(1) or m.group(2), locale)[:1]]


def _numbers(text: str, locale: str) -> list[Decimal]:
    values = []
    for token in _NUMBER.findall(text):
        token = token.rstrip(".,")
        try:
            values.append(parse_decimal(token.replace("\u00a0", " ").replace("\u202f", " "), locale=locale))
        except NumberFormatError:
            values.extend(Decimal(run) for run in re.findall(r"\d+", token))
    return values
