"""bot.language.smalltalk: greetings, thanks, acknowledgements, how-are-you, are-you-open,
goodbyes — alone or combined with a question — and the remainder left for the engine."""

from __future__ import annotations

import pytest

from bot.language.smalltalk import analyze, detect


@pytest.mark.parametrize(
    ("text", "kinds", "rest"),
    [
        ("good morning! busy day?", ("greet", "how_are_you"), ""),
        ("добрый вечер, вы работаете?", ("greet", "are_you_open"), ""),
        ("hi, do you have roses?", ("greet",), "do you have roses?"),
        ("Привет! Хочу 3 розы", ("greet",), "Хочу 3 розы"),
        ("Hiii 👋", ("greet",), ""),
        ("hey there", ("greet",), ""),
        ("Здравствуйте!!!", ("greet",), ""),
        ("доброе утро", ("greet",), ""),
        ("thanks so much!", ("thanks",), ""),
        ("Thank you!! 🙏", ("thanks",), ""),
        ("спасибооо", ("thanks",), ""),
        ("спасибо большое", ("thanks",), ""),
        ("ok", ("ack",), ""),
        ("Okay then", ("ack",), ""),
        ("👍", ("ack",), ""),
        ("хорошо, понятно", ("ack",), ""),
        ("ок, а доставка есть?", ("ack",), "а доставка есть?"),
        ("fine, I will take two", ("ack",), "I will take two"),
        ("how are you?", ("how_are_you",), ""),
        ("hi how are you", ("greet", "how_are_you"), ""),
        ("как дела?", ("how_are_you",), ""),
        ("are you open today?", ("are_you_open",), ""),
        ("are you guys open on sunday?", ("are_you_open",), ""),
        ("what are your opening hours?", ("are_you_open",), ""),
        ("до скольки вы работаете?", ("are_you_open",), ""),
        ("bye!", ("bye",), ""),
        ("До свидания!", ("bye",), ""),
        ("thank you, bye", ("thanks", "bye"), ""),
        ("great, thanks!", ("ack", "thanks"), ""),
        # not small talk: the words appear inside real requests
        ("two mugs", (), "two mugs"),
        ("do you sell good mugs?", (), "do you sell good mugs?"),
        ("your shop is great", (), "your shop is great"),
        ("как вы работаете с возвратами?", (), "как вы работаете с возвратами?"),
        ("I need my nails done Thursday morning", (), "I need my nails done Thursday morning"),
        ("how much is a teapot?", (), "how much is a teapot?"),
        ("", (), ""),
    ],
)
def test_analyze(text: str, kinds: tuple[str, ...], rest: str) -> None:
    result = analyze(text)
    assert result.kinds == kinds
    assert result.rest == rest
    assert result.only_small_talk == (bool(kinds) and not rest)


@pytest.mark.parametrize(
    ("text", "kind"),
    [("good morning! busy day?", "greet"), ("спс", "thanks"), ("пока-пока", "bye"), ("roses", None)],
)
def test_detect_returns_the_first_kind(text: str, kind: str | None) -> None:
    assert detect(text) == kind
