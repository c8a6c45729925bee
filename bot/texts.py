"""The message catalogue: every text the dialogue engine sends, in English and Russian.

Texts live in gettext catalogues (``bot/locale/{en,ru}/LC_MESSAGES/messages.po``): English msgids,
Russian translations, Russian plural forms, each message under a ``msgctxt`` key that the code asks
for (``t("cart_total", language, total=...)``); placeholders are ``str.format`` fields. A catalogue is
read with ``babel.messages.pofile`` and compiled in memory into ``babel.support.Translations`` the
first time a language is used (no generated ``.mo`` in the repository). Dates and money are formatted
by Babel (CLDR) with patterns that are themselves catalogue entries (``format:day``, ``format:money``).

Button titles are catalogue entries too; a button's payload is a command reference (``bot.buttons``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from functools import cache
from io import BytesIO
from pathlib import Path

from babel.dates import format_date
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency
from babel.support import Translations

from bot.messages import Button
from core.money import exponent

LANGUAGES = ("en", "ru")
LOCALE_DIR = Path(__file__).resolve().parent / "locale"

# What each standard button runs (``bot.buttons`` references).
_BUTTON_REFERENCES = {
    "catalog": "c:show_catalog", "cart": "c:show_cart", "human": "c:handoff", "checkout": "c:start_checkout",
    "continue": "c:show_catalog", "clear": "c:clear_cart", "skip": "c:skip", "cancel": "c:cancel",
    "status": "c:order_status", "new_link": "c:new_payment_link", "pay": "c:new_payment_link",
    "services": "c:show_catalog", "book": "c:find_slots", "my_booking": "c:show_booking",
    "cancel_booking": "c:cancel_booking", "move_booking": "c:move_booking", "yes_cancel": "c:cancel_booking",
    "keep_booking": "c:skip",
}


@dataclass(frozen=True, slots=True)
class Catalogue:
    """One language's compiled catalogue: ``translations`` and the msgid(s) of each ``msgctxt`` key."""

    language: str
    translations: Translations
    msgids: dict[str, str | tuple[str, str]]

    def text(self, key: str, count: int | None = None) -> str:
        """The message ``key`` (its plural form for ``count`` when it has one). Raises ``KeyError``
        for an unknown key."""
        msgid = self.msgids[key]
        if isinstance(msgid, tuple):
            return self.translations.npgettext(key, msgid[0], msgid[1], 1 if count is None else count)
        return self.translations.pgettext(key, msgid)


@cache
def catalogue(language: str) -> Catalogue:
    """The compiled catalogue of ``language`` (``en`` or ``ru``; anything else is English)."""
    lang = lang_of(language)
    with (LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po").open("rb") as f:
        po = read_po(f, locale=lang)
    compiled = BytesIO()
    write_mo(compiled, po)
    compiled.seek(0)
    msgids = {m.context: (tuple(m.id[:2]) if isinstance(m.id, (tuple, list)) else m.id) for m in po if m.context}
    return Catalogue(language=lang, translations=Translations(fp=compiled, domain="messages"), msgids=msgids)


def lang_of(language: str | None) -> str:
    """``language`` when the engine speaks it, else English."""
    return language if language in LANGUAGES else "en"


def t(key: str, language: str, **values: object) -> str:
    """The text ``key`` in ``language`` (English when unsupported), formatted with ``values``
    (``{qname}``/``{qservice}`` are ``name``/``service`` in «quotes» unless they have their own; a
    message with plural forms takes its number from ``count`` or ``more``). Raises ``KeyError`` for an
    unknown key."""
    if "name" in values:
        values.setdefault("qname", quote(str(values["name"])))
    if "service" in values:
        values.setdefault("qservice", quote(str(values["service"])))
    count = values.get("count", values.get("more"))
    return catalogue(language).text(key, count if isinstance(count, int) else None).format(**values)


def money(amount_minor: int, currency: str, language: str) -> str:
    """An amount in minor units of ISO-4217 ``currency`` for customers, by Babel (CLDR) with the
    catalogue's ``format:money`` pattern: ``170.00 USD`` / ``1 020,00 ₽`` (plain spaces)."""
    value = Decimal(amount_minor).scaleb(-exponent(currency))
    text = format_currency(value, currency.upper(), format=t("format:money", language), locale=lang_of(language))
    return text.replace("\xa0", " ").replace("\u202f", " ")


def quote(name: str) -> str:
    """``«Роза»``; a name that already holds quotes (``Букет «Нежность»``) is left as it is."""
    return name if any(q in name for q in "«»\"“”") else f"«{name}»"


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






def line(quantity: int, name: str, variant: str | None, amount: str) -> str:
    """A cart or order line: ``2 × Classic Varsity Top (Medium) — 120.00 USD``."""
    return f"{quantity} × {item_label(name, variant)} — {amount}"


def bullet(label: str, value: str | None = None) -> str:
    """A list entry: ``• Ocean Blue Shirt — 50.00 USD``."""
    return f"• {label} — {value}" if value else f"• {label}"


def day_label(day: date, language: str) -> str:
    """A local date for customers: ``Fri 13 Mar`` / ``пт 13 марта``."""
    return format_date(day, t("format:day", language), locale=lang_of(language))


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
