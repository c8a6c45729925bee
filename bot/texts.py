"""The dialogue engine's texts: buttons, cart lines, dates and slots, through the project's message catalogue.

The catalogue itself (gettext ``.po`` files read with Babel, one for the whole project) is
``core.i18n``; this module re-exports its ``t``/``catalogue``/``lang_of`` and adds what only the
engine writes. Money is formatted in the company's locale (``money(..., locale)``, see
``core.i18n.company_locale``); sentence text, weekday and month names follow the reply language.
Button titles are catalogue entries too; a button's payload is a command reference (``bot.buttons``).
In Russian a cart line whose item name is one noun agrees with its number (pymorphy3:
``1 роза``, ``2 розы``, ``5 роз``); other names keep ``2 × Букет «Нежность»``.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Any

from babel.dates import format_date

from bot.language.morph import is_russian, russian_parses
from bot.messages import Button
from core.i18n import LANGUAGES, LOCALE_DIR, Catalogue, catalogue, day_text, lang_of, money, quote, t

__all__ = ["LANGUAGES", "LOCALE_DIR", "Catalogue", "catalogue", "lang_of", "money", "quote", "t"]

# What each standard button runs (``bot.buttons`` references).
_BUTTON_REFERENCES = {
    "catalog": "c:show_catalog", "cart": "c:show_cart", "human": "c:handoff", "checkout": "c:start_checkout",
    "continue": "c:show_catalog", "clear": "c:clear_cart", "skip": "c:skip", "cancel": "c:cancel",
    "status": "c:order_status", "new_link": "c:new_payment_link", "pay": "c:new_payment_link",
    "services": "c:show_catalog", "book": "c:find_slots", "my_booking": "c:show_booking",
    "cancel_booking": "c:cancel_booking", "move_booking": "c:move_booking", "yes_cancel": "c:cancel_booking",
    "keep_booking": "c:skip",
}


def button(key: str, language: str) -> Button:
    """A standard button (``catalog``, ``cart``, ``human``, ``checkout``, ``continue``, ``clear``,
    ``skip``, ``cancel``, ``status``, ``new_link``, ``pay``, ``services``, ``book``, ``my_booking``,
    ``cancel_booking``, ``move_booking``, ``yes_cancel``, ``keep_booking``) in ``language``."""
    return Button(title=t(f"button:{key}", language), payload=_BUTTON_REFERENCES[key])


def status_other(language: str, *, number: int, total: str, status: str) -> str:
    """Order status text for payment statuses without a dedicated message (expired, failed...)."""
    try:
        label = t(f"payment_status:{status}", language)
    except KeyError:
        label = status
    return t("status_other", language, number=number, total=total, status=label)


def item_label(name: str, variant: str | None) -> str:
    """``Classic Varsity Top (Medium)`` or just the name."""
    return f"{name} ({variant})" if variant else name


def add_title(language: str) -> str:
    """The title of an "add to cart" button without a variant."""
    return t("button:add", language)


def line(quantity: int, name: str, variant: str | None, amount: str, language: str = "en") -> str:
    """A cart or order line: ``2 × Classic Varsity Top (Medium) — 120.00 USD``; in Russian a
    one-noun name agrees with the number (``5 роз (красная) — 750,00 ₽``, see :func:`counted`)."""
    return f"{counted(quantity, name, language)}{f' ({variant})' if variant else ''} — {amount}"


def counted(quantity: int, name: str, language: str) -> str:
    """``quantity`` of ``name`` for a reply: in Russian, a name that is one Russian noun in the
    nominative singular agrees with the number by pymorphy3's ``make_agree_with_number``, as a common
    noun in lower case (``Роза``: ``1 роза``, ``2 розы``, ``5 роз``, ``21 роза``); any other name
    (several words, a proper name, a word the dictionary does not know or cannot count, English) is
    ``2 × Name``, which reads for every number."""
    word = name.strip()
    parse = _countable_noun(word) if lang_of(language) == "ru" else None
    agreed = parse.make_agree_with_number(abs(quantity)) if parse is not None else None
    if agreed is None:
        return f"{quantity} × {name}"
    return f"{quantity} {agreed.word.upper() if word.isupper() and len(word) > 1 else agreed.word}"


_NOT_COUNTED = frozenset({"Fixd", "Sgtm", "Pltm", "Name", "Surn", "Patr", "Geox", "Orgn", "Abbr"})


def _countable_noun(word: str) -> Any:
    """The pymorphy3 parse of ``word`` as a known common noun in the nominative singular, or ``None``."""
    if " " in word or not word.isalpha() or not is_russian(word):
        return None
    for parse in russian_parses(word.lower()):
        if parse.is_known and {"NOUN", "nomn", "sing"} in parse.tag and not any(g in parse.tag for g in _NOT_COUNTED):
            return parse
    return None


def bullet(label: str, value: str | None = None) -> str:
    """A list entry: ``• Ocean Blue Shirt — 50.00 USD``."""
    return f"• {label} — {value}" if value else f"• {label}"


def day_label(day: date, language: str) -> str:
    """A local date for customers: ``Fri 13 Mar`` / ``пт 13 марта``."""
    return day_text(day, language)


def clock(moment: datetime | time) -> str:
    """``14:30``."""
    return f"{moment.hour:02d}:{moment.minute:02d}"


def slot_label(local: datetime, language: str, *, resource: str | None = None) -> str:
    """A slot button's title: ``Fri 14:30`` / ``пт 14:30``, with `` · Anna`` when staff differ."""
    label = f"{format_date(local.date(), t('format:weekday', language), locale=lang_of(language))} {clock(local)}"
    return f"{label} · {resource}" if resource else label


def when_label(local: datetime, language: str) -> str:
    """A local date and time: ``Fri 13 Mar, 14:30`` / ``пт 13 марта, 14:30``."""
    return f"{day_label(local.date(), language)}, {clock(local)}"


def window_label(start: datetime, end: datetime, language: str) -> str:
    """A delivery window in local time: ``Fri 13 Mar, 10:00–14:00``."""
    return f"{day_label(start.date(), language)}, {clock(start)}–{clock(end)}"


def with_resource(language: str, name: str | None) -> str:
    """`` with Anna`` / ``, мастер Anna`` (empty without a name)."""
    return t("with_resource", language, name=name) if name else ""


def part_label(language: str, *, part_of_day: str | None, after: time | None) -> str:
    """`` in the afternoon``, `` after 15:00`` / `` днём``, `` после 15:00`` (empty when neither)."""
    parts = []
    if part_of_day in ("morning", "afternoon", "evening"):
        parts.append(t(f"part:{part_of_day}", language))
    if after is not None:
        parts.append(t("after", language, time=clock(after)))
    return "".join(f" {p}" for p in parts)
