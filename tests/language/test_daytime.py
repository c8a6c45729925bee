"""bot.language.daytime: parts of the day and clock times in booking requests."""

from __future__ import annotations

import pytest

from bot.language.daytime import DayTime, parse_daytime


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("I need my nails done Thursday morning", DayTime(day_part="morning")),
        ("in the afternoon", DayTime(day_part="afternoon")),
        ("late afternoon", DayTime(day_part="afternoon")),
        ("after work", DayTime(day_part="evening")),
        ("хочу подстричься в четверг ближе к вечеру", DayTime(day_part="evening")),
        ("после обеда", DayTime(day_part="afternoon")),
        ("с утра пораньше", DayTime(day_part="morning")),
        ("днём в субботу", DayTime(day_part="afternoon")),
        ("on Saturday at 11", DayTime(time="11:00")),
        ("at 3pm", DayTime(time="15:00")),
        ("7pm", DayTime(time="19:00")),
        ("at 3", DayTime(time="15:00")),
        ("at 12", DayTime(time="12:00")),
        ("11:30", DayTime(time="11:30")),
        ("tomorrow at 9:15 am", DayTime(time="09:15")),
        ("at 11 o'clock", DayTime(time="11:00")),
        ("at noon", DayTime(time="12:00")),
        ("at 10 in the morning", DayTime(day_part="morning", time="10:00")),
        ("friday evening at 6", DayTime(day_part="evening", time="18:00")),
        ("в 11", DayTime(time="11:00")),
        ("в 3 часа дня", DayTime(day_part="afternoon", time="15:00")),
        ("в 7 вечера", DayTime(day_part="evening", time="19:00")),
        ("в 10 утра", DayTime(day_part="morning", time="10:00")),
        ("утром в 9", DayTime(day_part="morning", time="09:00")),
        ("в полдень", DayTime(time="12:00")),
        ("к 5 часам", DayTime(time="17:00")),
        # not times
        ("завтра", DayTime()),
        ("в 2 шт", DayTime()),
        ("at $11", DayTime()),
        ("size 11", DayTime()),
        ("", DayTime()),
    ],
)
def test_parse_daytime(text: str, expected: DayTime) -> None:
    assert parse_daytime(text) == expected


def test_clock_times_in_words() -> None:
    from bot.language.daytime import parse_daytime as read

    assert read("classic manicure tomorrow at half past ten", "en").time == "10:30"
    assert read("quarter to four", "en").time == "15:45"
    assert read("at ten thirty", "en").time == "10:30"
    assert read("at seven in the evening", "en").time == "19:00"
    assert read("можно в половине одиннадцатого?", "ru").time == "10:30"
    assert read("at ten items", "en").time == "10:00" and read("ten items", "en").time is None
