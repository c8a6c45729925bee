"""The message catalogue of every customer-facing text in the project, and money in a company's locale.

Texts live in gettext catalogues (``core/locale/{en,ru}/LC_MESSAGES/messages.po``): English msgids,
Russian translations and plural forms, each message under a ``msgctxt`` key that the code asks for
(``t("cart_total", language, total=...)``); placeholders are ``str.format`` fields. The dialogue
engine (``bot.texts``), the commerce layer's notices (``commerce.notifications``) and the public
pages (``api.pages``, Jinja's i18n extension calling ``pgettext``) all read the same files. A
catalogue is read with ``babel.messages.pofile`` and compiled in memory into
``babel.support.Translations`` the first time a language is used (no generated ``.mo`` in the repo).

Sentence text follows the customer's language; money follows the COMPANY's locale
(:func:`company_locale`: ``Company.settings["locale"]`` when set, else the likely locale of the
company's language, ``en`` → ``en_US``, ``ru`` → ``ru_RU``), so a Russian customer of a euro shop
that speaks English reads ``15.00 EUR`` in a Russian sentence.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import cache
from io import BytesIO
from pathlib import Path
from typing import TYPE_CHECKING

from babel import Locale, UnknownLocaleError
from babel.core import get_global
from babel.dates import format_date, format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency
from babel.support import Translations

from core.money import exponent

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from core.models import Company

LANGUAGES = ("en", "ru")
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
LOCALE_SETTING = "locale"  # Company.settings key of the company's own locale (``de_DE``)


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
def catalogue(language: str | None) -> Catalogue:
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
    """The catalogue language of ``language`` (``ru``, ``ru_RU`` and ``ru-RU`` are ``ru``), English
    when the project does not speak it."""
    base = (language or "").replace("-", "_").split("_")[0].lower()
    return base if base in LANGUAGES else "en"


def t(key: str, language: str | None, **values: object) -> str:
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


def quote(name: str) -> str:
    """``«Роза»``; a name that already holds quotes (``Букет «Нежность»``) is left as it is."""
    return name if any(q in name for q in "«»\"“”") else f"«{name}»"


@cache
def likely_locale(language: str | None) -> str:
    """The usual locale of a language by CLDR's likely subtags: ``en`` → ``en_US``, ``ru`` → ``ru_RU``;
    a full locale (``en_GB``) is kept; an unknown language is ``en_US``."""
    try:
        parsed = Locale.parse((language or "en").replace("-", "_"))
    except (UnknownLocaleError, ValueError, TypeError):
        parsed = Locale.parse("en")
    if parsed.territory:
        return f"{parsed.language}_{parsed.territory}"
    try:
        territory = Locale.parse(get_global("likely_subtags").get(parsed.language, "")).territory
        return str(Locale.parse(f"{parsed.language}_{territory}"))
    except (UnknownLocaleError, ValueError, TypeError):
        return str(parsed)


def company_locale(company: Company) -> str:
    """The locale money (and numbers) of ``company`` are written in: ``Company.settings["locale"]``
    when it names a locale Babel knows (``de_DE``), else :func:`likely_locale` of ``company.language``."""
    wanted = (company.settings or {}).get(LOCALE_SETTING)
    if isinstance(wanted, str) and wanted.strip():
        try:
            parsed = Locale.parse(wanted.strip().replace("-", "_"))
        except (UnknownLocaleError, ValueError):
            parsed = None
        if parsed is not None:
            return str(parsed) if parsed.territory else likely_locale(parsed.language)
    return likely_locale(company.language)


def valid_locale(value: str) -> str:
    """``value`` as a Babel locale identifier (``ru-RU`` → ``ru_RU``). Raises ``ValueError`` for a
    locale Babel (CLDR) does not know."""
    try:
        return str(Locale.parse(value.strip().replace("-", "_")))
    except (UnknownLocaleError, ValueError) as exc:
        raise ValueError(f"unknown locale {value!r}") from exc


def money(amount_minor: int, currency: str, locale: str | None) -> str:
    """An amount in minor units of ISO-4217 ``currency`` for customers, by Babel (CLDR) in ``locale``
    (the company's, :func:`company_locale`): ``170.00 USD`` (``en_US``), ``1 020,00 ₽`` (``ru_RU``),
    ``1,700 JPY`` (decimals follow the currency). For the project's languages the pattern is the
    catalogue's ``format:money``; other locales use their CLDR pattern (``de_DE``: ``15,00 €``).
    Narrow and no-break spaces become plain spaces (messengers render them unevenly)."""
    loc = likely_locale(locale)
    value = Decimal(amount_minor).scaleb(-exponent(currency))
    pattern = t("format:money", loc) if lang_of(loc) == Locale.parse(loc).language else None
    text = format_currency(value, currency.upper(), format=pattern, locale=loc)
    return text.replace("\xa0", " ").replace("\u202f", " ")


def day_text(day: date, language: str | None) -> str:
    """A local date for customers with the catalogue's ``format:day`` pattern: ``Fri 13 Mar`` /
    ``пт 13 марта`` (weekday and month are words of the sentence, so they follow ``language``)."""
    return format_date(day, t("format:day", language), locale=lang_of(language))


def when_text(instant: datetime, tz: ZoneInfo, language: str | None) -> str:
    """An aware instant as a local date and time for customers, by Babel's ``format_datetime`` with
    the catalogue's ``format:when`` pattern in ``tz``: ``Fri 13 Mar, 15:00`` / ``пт 13 марта, 15:00``.
    Raises ``ValueError`` for a naive ``instant``."""
    if instant.tzinfo is None:
        raise ValueError("instant must be timezone-aware")
    return format_datetime(instant, t("format:when", language), tzinfo=tz, locale=lang_of(language))
