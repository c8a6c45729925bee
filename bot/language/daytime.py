"""Time of day in booking requests: a part of the day ("Thursday morning", "in the afternoon",
"after work", "ближе к вечеру", "после обеда", "с утра") and/or a clock time ("at 11", "at
3pm", "11:30", "в 11", "в 3 часа дня", "к 7 вечера", "at noon", "в полдень").

The day itself ("Thursday", "завтра") is for ``dateparser`` in the engine; this module only reads
the time of day, which ``dateparser`` does not turn into parts of the day.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = ["DayPart", "DayTime", "parse_daytime"]

DayPart = Literal["morning", "afternoon", "evening"]

# Hours written without am/pm and without a day part, from 1 to this, are read as afternoon
# ("at 3" → 15:00): shops and salons are rarely booked at 3 a.m.
LATEST_BARE_PM_HOUR = 7

_DAY_PARTS: tuple[tuple[DayPart, re.Pattern[str]], ...] = (
    ("afternoon", re.compile(
        r"\b(?:afternoon|after\s+lunch|after\s+noon|midday|lunch\s*time|днем|днём|после\s+обеда|в\s+обед|к\s+обеду"
        r"|во\s+второй\s+половине\s+дня|после\s+полудня|середине\s+дня|днeм)\b", re.IGNORECASE)),
    ("evening", re.compile(
        r"\b(?:evening|tonight|after\s+work|late|вечер\w*|ближе\s+к\s+вечеру|к\s+вечеру|после\s+работы|попозже"
        r"|поздно)\b", re.IGNORECASE)),
    ("morning", re.compile(
        r"\b(?:morning|before\s+noon|before\s+lunch|early|first\s+thing|утр\w*|с\s+утра|до\s+обеда|пораньше"
        r"|в\s+первой\s+половине\s+дня)\b", re.IGNORECASE)),
)
_CLOCK = re.compile(r"(?<![\d:.])([01]?\d|2[0-3])[:.]([0-5]\d)(?![\d:])(?:\s*(am|pm|a\.m\.|p\.m\.))?", re.IGNORECASE)
_AT_HOUR = re.compile(
    r"(?:\b(?:at|around|about|by|for|в|во|к|на|около|часов\s+в)\s+)(\d{1,2})(?:\s*(?:час\w*|o'?clock|h\b|ч\b))?"
    r"(?:\s*(am|pm|a\.m\.|p\.m\.|утра|дня|вечера|ночи))?(?![\d:./-]|\s*(?:%|руб|р\b|\$|€|шт|pcs|штук|мин|min))",
    re.IGNORECASE,
)
_HOUR_SUFFIX = re.compile(r"(?<![\d:.])(\d{1,2})\s*(am|pm|a\.m\.|p\.m\.)", re.IGNORECASE)
_EN_HOURS = {w: n for n, w in enumerate(
    "one two three four five six seven eight nine ten eleven twelve".split(), start=1)}
_RU_ORDINAL_HOURS = {w: n for n, w in enumerate(
    "первого второго третьего четвертого пятого шестого седьмого восьмого девятого десятого одиннадцатого "
    "двенадцатого".split(), start=1)}
_HOUR_WORD = r"(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|\d{1,2})"
_MINUTES = {"half": 30, "quarter": 15, "thirty": 30, "fifteen": 15, "forty five": 45, "forty-five": 45, "o'clock": 0,
            "oclock": 0}
# "half past ten", "quarter to four", "at ten", "at ten thirty", "в половине одиннадцатого" (10:30).
_PAST_TO = re.compile(rf"\b(half|quarter) (past|after|to) {_HOUR_WORD}\b", re.IGNORECASE)
_AT_WORD = re.compile(rf"\b(?:at|around|about|by) {_HOUR_WORD}(?: (thirty|fifteen|forty[ -]five|o'?clock))?\b",
                      re.IGNORECASE)
_RU_HALF = re.compile(r"\bв\s+половин[еу]\s+(" + "|".join(_RU_ORDINAL_HOURS) + r")\b", re.IGNORECASE)


def _word_clock(lowered: str, day_part: DayPart | None) -> str | None:
    """A clock time said in words ("half past ten" → 10:30 read like a bare hour), else ``None``."""
    hour: int | None = None
    minute = 0
    if match := _PAST_TO.search(lowered):
        word = match.group(3)
        hour = int(word) if word.isdigit() else _EN_HOURS[word]
        minute = _MINUTES[match.group(1)]
        if match.group(2) == "to":
            hour, minute = hour - 1, 60 - minute
    elif match := _RU_HALF.search(lowered):
        hour, minute = _RU_ORDINAL_HOURS[match.group(1)] - 1, 30
    elif (match := _AT_WORD.search(lowered)) and not match.group(1).isdigit():
        hour = _EN_HOURS[match.group(1)]
        minute = _MINUTES.get((match.group(2) or "oclock").replace("-", " "), 0)
    if hour is None:
        return None
    hour = _hour(hour or 12, None, day_part)
    return f"{hour:02d}:{minute:02d}" if hour is not None else None


_NOON = re.compile(r"\b(?:noon|midday|полдень|в\s+полдень)\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class DayTime:
    """``day_part``: "morning" | "afternoon" | "evening" | None; ``time``: "HH:MM" (24-hour,
    company-local as the customer meant it) | None."""

    day_part: DayPart | None = None
    time: str | None = None


def _hour(hour: int, suffix: str | None, day_part: DayPart | None) -> int | None:
    suffix = (suffix or "").lower().replace(".", "")
    if suffix in {"pm", "дня", "вечера"} or (not suffix and day_part in {"afternoon", "evening"}):
        if hour < 12:
            hour += 12
    elif suffix in {"am", "утра", "ночи"} or (not suffix and day_part == "morning"):
        if hour == 12:
            hour = 0
    elif 1 <= hour <= LATEST_BARE_PM_HOUR:
        hour += 12
    return hour if 0 <= hour <= 23 else None


def parse_daytime(text: str, language: str | None = None) -> DayTime:
    """Day part and clock time in ``text``; empty :class:`DayTime` when neither is said.

    "Thursday morning" → morning; "ближе к вечеру" → evening; "после обеда" → afternoon; "on
    Saturday at 11" → 11:00; "at 3pm"/"в 3 часа дня" → 15:00; "at 3" → 15:00 (bare 1–7 read as
    p.m., see ``LATEST_BARE_PM_HOUR``); "11:30" → 11:30; "в 7 вечера" → 19:00 with day part
    evening. Prices and quantities ("at $11", "в 2 шт") are not times. ``language`` is accepted
    for symmetry; both languages are always recognised.
    """
    del language
    lowered = text.replace("ё", "е")
    day_part: DayPart | None = None
    for part, pattern in _DAY_PARTS:
        if pattern.search(lowered):
            day_part = part
            break
    time: str | None = None
    clock = _CLOCK.search(lowered)
    if clock:
        hour = int(clock.group(1))
        if clock.group(3):
            hour = _hour(hour, clock.group(3), day_part) or hour
        elif day_part in {"afternoon", "evening"} and hour < 12:
            hour += 12
        time = f"{hour:02d}:{clock.group(2)}"
    else:
        match = _AT_HOUR.search(lowered) or _HOUR_SUFFIX.search(lowered)
        if match:
            suffix = match.group(2)
            if suffix and suffix.lower() in {"утра", "дня", "вечера", "ночи"}:
                day_part = {"утра": "morning", "дня": "afternoon", "вечера": "evening"}.get(suffix.lower(), day_part)
            hour = _hour(int(match.group(1)), suffix, day_part)
            if hour is not None:
                time = f"{hour:02d}:00"
        elif _NOON.search(lowered):
            time = "12:00"
        else:
            time = _word_clock(lowered, day_part)
    if time is not None and day_part is not None and not _agrees(time, day_part):
        day_part = None
    return DayTime(day_part=day_part, time=time)


def _agrees(time: str, day_part: DayPart) -> bool:
    hour = int(time[:2])
    return {"morning": hour < 12, "afternoon": 12 <= hour < 18, "evening": hour >= 17}[day_part]
