"""The message catalogue (gettext .po files read with Babel): complete, consistent and used."""

from __future__ import annotations

import re
import string
from pathlib import Path

from babel.messages.pofile import read_po

from bot import texts

ROOT = Path(__file__).resolve().parent.parent


def _po(language: str):  # noqa: ANN202
    with (texts.LOCALE_DIR / language / "LC_MESSAGES" / "messages.po").open("rb") as f:
        return read_po(f, locale=language)


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def test_every_message_is_translated_into_russian_with_the_same_placeholders() -> None:
    en, ru = _po("en"), _po("ru")
    en_keys = {m.context for m in en if m.context}
    ru_messages = {m.context: m for m in ru if m.context}
    assert en_keys == set(ru_messages) and len(en_keys) > 150
    for key, message in ru_messages.items():
        ids = message.id if isinstance(message.id, (tuple, list)) else (message.id,)
        strings = message.string if isinstance(message.string, (tuple, list)) else (message.string,)
        assert all(strings), f"{key}: untranslated"
        allowed = _fields(ids[0]) | {"qname", "qservice", "count"}
        for s in strings:
            assert _fields(s) <= allowed, f"{key}: {_fields(s) - allowed} not in the English text"


def test_every_key_the_code_asks_for_exists() -> None:
    keys = {m.context for m in _po("en") if m.context}
    asked: set[str] = set()
    for path in (ROOT / "bot").rglob("*.py"):
        source = path.read_text(encoding="utf-8")
        asked |= set(re.findall(r"""\bt\(\s*["']([a-z_:]+)["']""", source))
    assert asked and asked <= keys, sorted(asked - keys)


def test_russian_plural_forms_come_from_the_catalogue() -> None:
    forms = [texts.t("catalog_more", "ru", more=n).split(".")[0] for n in (1, 2, 5, 21)]
    assert forms == ["…и ещё 1 товар", "…и ещё 2 товара", "…и ещё 5 товаров", "…и ещё 21 товар"]
    assert texts.t("catalog_more", "en", more=5).startswith("…and 5 more.")


def test_money_and_dates_are_formatted_by_babel_for_the_language() -> None:
    from datetime import date, datetime

    assert texts.money(102000, "RUB", "ru") == "1 020,00 ₽"
    assert texts.money(17000, "USD", "en") == "170.00 USD"
    assert texts.money(1700, "JPY", "en") == "1,700 JPY"  # zero-decimal currency
    assert texts.day_label(date(2026, 3, 10), "ru") == "вт 10 марта"
    assert texts.day_label(date(2026, 3, 10), "en") == "Tue 10 Mar"
    assert texts.slot_label(datetime(2026, 3, 10, 14), "ru", resource="Anna") == "вт 14:00 · Anna"
    assert texts.button("cart", "ru").title == "Корзина"
