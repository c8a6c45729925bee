"""Understanding when a customer wants an appointment ("tomorrow afternoon", "в пятницу после 15:00").

``parse_when`` pulls out, in this order: a time ("after 3pm", "после 15:00", "at 10:30", "в 9 утра"),
a part of day ("morning/afternoon/evening/tonight", "утром/днём/после обеда/вечером"), a period of a
week said without a day ("next week", "на выходных": its first day that is not past), and a date
from what is left with ``dateparser`` (today, tomorrow, weekdays, "12 марта", "in 3 days"...) in the
company's timezone, preferring future dates relative to ``now``; ``DD.MM`` dates are read by a rule
of our own (dateparser reads "12.03" as a time). Clock times without am/pm from 1 to 7 are read as
afternoon hours (a salon's "after 3" is 15:00). Nothing found means ``None`` for that field; the
dialogue decides (e.g. today, or ask).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from commerce.schedule import PartOfDay

_AMPM = r"(a\.?\s?m\.?|p\.?\s?m\.?)"
_RU_MONTHS = r"(?:январ|феврал|март|апрел|ма[йя]|июн|июл|август|сентябр|октябр|ноябр|декабр)"
_RU_SUFFIX = r"(?:\s*(?:ч\.?|час(?:а|ов)?))?(?:\s*(утра|дня|вечера|ночи))?"
_TIME_RULES: dict[str, list[re.Pattern[str]]] = {
    "en": [
        re.compile(rf"\b(?:after|from|since|not before|later than|past|at|around|about)\s+(\d{{1,2}})"
                   rf"(?:[:.](\d{{2}}))?\s*{_AMPM}?(?![\w/])"),
        re.compile(rf"\b(\d{{1,2}})(?::(\d{{2}}))?\s*{_AMPM}(?!\w)"),
        re.compile(r"\b(\d{1,2}):(\d{2})()\b"),
    ],
    "ru": [
        re.compile(rf"(?<!\w)(?:после|с|со|начиная с|не раньше|в|к|около)\s+(\d{{1,2}})(?:[:.](\d{{2}}))?"
                   rf"(?!\s*{_RU_MONTHS})(?![\d./]){_RU_SUFFIX}(?!\w)"),
        re.compile(r"(?<![\d.])(\d{1,2}):(\d{2})()(?!\d)"),
    ],
}
_PARTS: dict[str, list[tuple[re.Pattern[str], PartOfDay | None, bool]]] = {
    # (pattern, part of day (None: the pattern's first group names it), implies today)
    "en": [
        (re.compile(r"\btonight\b"), "evening", True),
        (re.compile(r"\bthis (morning|afternoon|evening)\b"), None, True),
        (re.compile(r"\bafter lunch\b"), "afternoon", False),
        (re.compile(r"\b(?:in the )?mornings?\b"), "morning", False),
        (re.compile(r"\b(?:in the )?afternoons?\b"), "afternoon", False),
        (re.compile(r"\b(?:in the )?evenings?\b"), "evening", False),
    ],
    "ru": [
        (re.compile(r"(?<!\w)(?:с утра|утром|утречком|утро|в первой половине дня)(?!\w)"), "morning", False),
        (re.compile(r"(?<!\w)(?:после обеда|во второй половине дня|днём|днем)(?!\w)"), "afternoon", False),
        (re.compile(r"(?<!\w)(?:вечером|вечерком|вечер)(?!\w)"), "evening", False),
    ],
}
_FILLERS = {
    "en": {"on", "at", "for", "please", "the", "this", "coming", "i", "id", "i'd", "want", "would", "like", "to",
           "book", "can", "could", "you", "me", "a", "an", "slot", "time", "appointment", "is", "are", "there",
           "any", "available", "free", "something", "some", "maybe", "perhaps", "how", "about", "what", "us", "we",
           "or", "and", "ok", "okay", "yes", "let's", "lets", "do", "have", "get", "hi", "hello", "also"},
    "ru": {"на", "в", "во", "пожалуйста", "хочу", "хотел", "хотела", "бы", "можно", "записаться", "запишите",
           "меня", "есть", "ли", "время", "свободное", "окно", "окошко", "как", "нибудь", "этот", "эту", "это",
           "давайте", "а", "и", "или", "что", "насчёт", "насчет", "мне", "нам", "удобно", "будет", "тогда",
           "да", "ок", "здравствуйте", "привет", "когда"},
}
_NUMERIC_DATE = re.compile(r"(?<![\d:])(\d{1,2})[./](\d{1,2})(?:[./](\d{2,4}))?(?![\d:])")


@dataclass(frozen=True, slots=True)
class WhenQuery:
    """What the customer asked for: a local ``day``, a ``part_of_day`` and/or a local time ``after``
    which the appointment should start; each ``None`` when not said."""

    day: date | None = None
    part_of_day: PartOfDay | None = None
    after: time | None = None

    @property
    def is_empty(self) -> bool:
        return self.day is None and self.part_of_day is None and self.after is None


def _hour(hour: int, minute: int, marker: str | None, part: PartOfDay | None) -> time | None:
    marker = (marker or "").replace(".", "").replace(" ", "").lower()
    if marker in ("pm", "дня", "вечера") and hour < 12:
        hour += 12
    elif marker in ("am", "утра", "ночи") and hour == 12:
        hour = 0
    elif not marker and 1 <= hour <= 7:
        hour += 12
    elif not marker and part in ("afternoon", "evening") and hour < 12:
        hour += 12
    if not (0 <= hour <= 23 and 0 <= minute <= 59):
        return None
    return time(hour, minute)


def _take_part(text: str, lang: str) -> tuple[str, PartOfDay | None, bool]:
    for pattern, part, today in _PARTS.get(lang, []):
        m = pattern.search(text)
        if m:
            found: PartOfDay = part if part is not None else m.group(1)  # type: ignore[assignment]
            return text[: m.start()] + " " + text[m.end():], found, today
    return text, None, False


def _take_time(text: str, lang: str, part: PartOfDay | None) -> tuple[str, time | None]:
    for pattern in _TIME_RULES.get(lang, []):
        m = pattern.search(text)
        if not m:
            continue
        hour, minute, marker = int(m.group(1)), int(m.group(2) or 0), (m.group(3) or None)
        at = _hour(hour, minute, marker, part)
        if at is not None:
            return text[: m.start()] + " " + text[m.end():], at
    return text, None


def _numeric_date(text: str, lang: str, today: date) -> tuple[str, date | None]:
    m = _NUMERIC_DATE.search(text)
    if not m:
        return text, None
    a, b = int(m.group(1)), int(m.group(2))
    day, month = (b, a) if lang == "en" and "/" in m.group(0) else (a, b)
    year = int(m.group(3)) if m.group(3) else today.year
    if year < 100:
        year += 2000
    try:
        found = date(year, month, day)
    except ValueError:
        return text, None
    if not m.group(3) and found < today:
        try:
            found = date(year + 1, month, day)
        except ValueError:
            return text, None
    return text[: m.start()] + " " + text[m.end():], found


_WEEKDAY_WORDS = re.compile(
    r"\b(?:mon(?:day)?|tue(?:s|sday)?|wed(?:nesday)?|thu(?:r|rs|rsday)?|fri(?:day)?|sat(?:urday)?|sun(?:day)?)\b"
    r"|(?<!\w)(?:понедельник|вторник|сред[аыу]|четверг|пятниц|суббот"
    r"|воскресень)\w*")
# Periods of a week said without a day: the first day of the period that is not past (dateparser reads
# "next week" as today + 7 days, and knows neither "на следующей неделе" nor "weekend"). Offers then
# start there, and the nearest days with free times follow (``bot.actions.booking``).
# (pattern, weeks ahead, first weekday of the period: 0 Monday, 5 Saturday)
_WEEK_PERIODS: dict[str, list[tuple[re.Pattern[str], int, int]]] = {
    "en": [
        (re.compile(r"\b(?:the )?week after next\b"), 2, 0),
        (re.compile(r"\bnext week\b"), 1, 0),
        (re.compile(r"\bnext weekend\b"), 1, 5),
        (re.compile(r"\b(?:this|the|on the|at the|over the) weekend\b|\bweekend\b"), 0, 5),
        (re.compile(r"\bthis week\b"), 0, 0),
    ],
    "ru": [
        (re.compile(r"(?<!\w)через неделю(?!\w)"), -1, 0),  # "in a week": a day, left to dateparser
        (re.compile(r"(?<!\w)(?:на|в) (?:следующей|след\.?|будущей) неделе(?!\w)|(?<!\w)на следующую неделю(?!\w)"),
         1, 0),
        (re.compile(r"(?<!\w)(?:на|в) (?:следующих|следующие|будущих|будущие) выходн\w*"), 1, 5),
        (re.compile(r"(?<!\w)(?:на|в) (?:этих |эти )?выходн\w*"), 0, 5),
        (re.compile(r"(?<!\w)на этой неделе(?!\w)"), 0, 0),
    ],
}


_WEEKDAY_STEMS = (("mon", 0), ("tue", 1), ("wed", 2), ("thu", 3), ("fri", 4), ("sat", 5), ("sun", 6),
                  ("понедельник", 0), ("вторник", 1), ("сред", 2), ("четверг", 3), ("пятниц", 4), ("суббот", 5),
                  ("воскресень", 6))


# Spans of days dateparser misreads: "in a week" (it drops the "a" filler and finds nothing), "a week
# from today" (it reads today).
_DAYS_AHEAD: dict[str, list[tuple[re.Pattern[str], int]]] = {
    "en": [(re.compile(r"\bin a week\b|\ba week from (?:today|now)\b"), 7),
           (re.compile(r"\bin a fortnight\b|\btwo weeks from (?:today|now)\b"), 14)],
}


def _week_period(text: str, lang: str, today: date) -> tuple[str, date | None]:
    """The first not-past day of a week period said without a weekday ("next week" → next Monday,
    "на выходных" → this Saturday, or today on a weekend), or the weekday named in a later week ("в
    субботу на следующей неделе" → the Saturday after next Monday); the text without the phrase."""
    for pattern, days in _DAYS_AHEAD.get(lang, []):
        m = pattern.search(text)
        if m:
            return text[: m.start()] + " " + text[m.end():], today + timedelta(days=days)
    named = _WEEKDAY_WORDS.search(text)
    for pattern, weeks, weekday in _WEEK_PERIODS.get(lang, []):
        m = pattern.search(text)
        if not m:
            continue
        if weeks < 0 or (named is not None and (weekday != 0 or weeks == 0)):
            return text, None  # "in a week", "friday this week", "saturday at the weekend": dateparser's
        monday = today - timedelta(days=today.weekday()) + timedelta(weeks=weeks)
        if named is not None:
            weekday = next(i for stem, i in _WEEKDAY_STEMS if named.group(0).startswith(stem))
            text = text[: named.start()] + " " + text[named.end():]
            m = pattern.search(text)
            assert m is not None
        return text[: m.start()] + " " + text[m.end():], max(monday + timedelta(days=weekday), today)
    return text, None


def _dateparser_day(text: str, lang: str, tz: ZoneInfo, now: datetime) -> date | None:
    import dateparser  # slow to import (loads language data); only needed here
    from dateparser.search import search_dates

    settings = {
        "TIMEZONE": tz.key,
        "RETURN_AS_TIMEZONE_AWARE": True,
        "PREFER_DATES_FROM": "future",
        "RELATIVE_BASE": now.astimezone(tz).replace(tzinfo=None),
    }
    languages = [lang] if lang in ("en", "ru") else ["en"]
    found = dateparser.parse(text, languages=languages, settings=settings)  # type: ignore[arg-type]
    if found is None:
        hits = search_dates(text, languages=languages, settings=settings)  # type: ignore[arg-type]
        if hits:
            found = hits[0][1]
    if found is None:
        return None
    return (found.astimezone(tz) if found.tzinfo else found).date()


def parse_when(text: str, *, language: str, tz: ZoneInfo | str, now: datetime) -> WhenQuery:
    """Read a day, part of day and earliest time from a customer's message.

    ``language`` is ``en`` or ``ru`` (others are read as English), ``tz`` the company's IANA timezone,
    ``now`` an aware datetime (relative words count from it, dates prefer the future). Returns a
    ``WhenQuery`` whose ``day`` is a local date, ``after`` a local time. Raises ``ValueError`` for a
    naive ``now``.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    zone = tz if isinstance(tz, ZoneInfo) else ZoneInfo(tz)
    lang = language if language in ("en", "ru") else "en"
    today = now.astimezone(zone).date()
    rest = " ".join(text.lower().replace("ё", "е").split()) if lang == "ru" else " ".join(text.lower().split())
    rest, part, implies_today = _take_part(rest, lang)
    rest, after = _take_time(rest, lang, part)
    rest, day = _numeric_date(rest, lang, today)
    if day is None:
        rest, day = _week_period(rest, lang, today)
    words = [w for w in re.split(r"[\s,;!?()]+", rest) if w and w.strip(".'\"-") not in _FILLERS[lang]]
    words = [w.strip(".'\"") for w in words if w.strip(".'\"-")]
    if day is None and words:
        day = _dateparser_day(" ".join(words), lang, zone, now)
    if day is None and implies_today:
        day = today
    if day is not None and day < today:
        day = None
    return WhenQuery(day=day, part_of_day=part, after=after)

