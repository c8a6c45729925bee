"""The project's message catalogue (gettext .po files read with Babel): complete, consistent and used.

The walk extracts what the code asks for with Babel's own extractors, not a hand list: Python
sources with ``babel.messages.extract`` (keyword ``t``: the first argument is the key) and the page
templates with Jinja's ``babel_extract`` (``pgettext(key, English msgid)``).
"""

from __future__ import annotations

import ast
import string
from pathlib import Path

from babel.messages.extract import extract
from babel.messages.pofile import read_po
from jinja2.ext import babel_extract

from bot import texts
from core import i18n

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("core", "knowledge", "commerce", "bot", "channels", "api")


def _po(language: str):  # noqa: ANN202
    with (i18n.LOCALE_DIR / language / "LC_MESSAGES" / "messages.po").open("rb") as f:
        return read_po(f, locale=language)


def _keys_asked_by_code() -> dict[str, str]:
    """Every literal key passed to ``t(...)``/``turn.t(...)`` in the layers' sources → where."""
    asked: dict[str, str] = {}
    for layer in LAYERS:
        for path in sorted((ROOT / layer).rglob("*.py")):
            with path.open("rb") as f:
                for lineno, key, _comments, _context in extract("python", f, keywords={"t": None},
                                                                 comment_tags=(), options={}):
                    asked.setdefault(key, f"{path.relative_to(ROOT)}:{lineno}")
    return asked


def _template_messages() -> dict[tuple[str, str], str]:
    """Every ``pgettext(key, msgid)`` of the page templates → where."""
    found: dict[tuple[str, str], str] = {}
    for path in sorted((ROOT / "api" / "templates").glob("*.html")):
        with path.open("rb") as f:
            for lineno, function, message, _comments in babel_extract(f, ("pgettext", "gettext", "_"), [], {}):
                assert function == "pgettext", f"{path.name}:{lineno}: a page text without its catalogue key"
                found[(message[0], message[1])] = f"{path.name}:{lineno}"
    return found


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


def test_every_key_the_code_asks_for_exists_in_english_and_russian() -> None:
    asked = _keys_asked_by_code()
    for language in ("en", "ru"):
        keys = {m.context for m in _po(language) if m.context}
        missing = {key: where for key, where in asked.items() if key not in keys}
        assert not missing, f"{language}: {missing}"
    # the walk reaches every layer that speaks to customers
    assert {"notice:paid", "notice:booking_lost", "label:prepayment", "pay:demo_only", "cart_total"} <= set(asked)


def test_every_page_text_is_a_catalogue_message_with_the_same_english() -> None:
    found = _template_messages()
    assert {key for key, _ in found} >= {"pay:title", "pay:total", "chat:send", "page:chat_not_found"}
    for language in ("en", "ru"):
        messages = {m.context: m for m in _po(language) if m.context}
        for (key, msgid), where in found.items():
            assert key in messages, f"{where}: {key} is not in the {language} catalogue"
            assert messages[key].id == msgid, f"{where}: {key} says {msgid!r}, the catalogue {messages[key].id!r}"
            assert language == "en" or messages[key].string, f"{where}: {key} is not translated"


def test_no_customer_facing_f_string_in_the_notifications() -> None:
    source = (ROOT / "commerce" / "notifications.py").read_text(encoding="utf-8")
    tree = ast.parse(source)
    assert not [node.lineno for node in ast.walk(tree) if isinstance(node, ast.JoinedStr)]
    keys = {m.context for m in _po("en") if m.context}
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.FunctionDef)) and node.body
                  and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
    words = [node.value for node in ast.walk(tree) if isinstance(node, ast.Constant) and isinstance(node.value, str)
             and id(node) not in docstrings and any(ch.isalpha() for ch in node.value)]
    # every literal with letters is a catalogue key or a result kind, never a sentence
    assert words and all(w in keys or w in ("confirmed", "lost") for w in words), words


def test_russian_plural_forms_come_from_the_catalogue() -> None:
    forms = [texts.t("catalog_more", "ru", more=n).split(".")[0] for n in (1, 2, 5, 21)]
    assert forms == ["…и ещё 1 товар", "…и ещё 2 товара", "…и ещё 5 товаров", "…и ещё 21 товар"]
    assert texts.t("catalog_more", "en", more=5).startswith("…and 5 more.")


def test_money_and_dates_are_formatted_by_babel_for_the_language() -> None:
    from datetime import date, datetime

    assert texts.money(102000, "RUB", "ru_RU") == "1 020,00 ₽"
    assert texts.money(17000, "USD", "en_US") == "170.00 USD"
    assert texts.money(1700, "JPY", "en_US") == "1,700 JPY"  # zero-decimal currency
    assert texts.money(1500, "EUR", "de_DE") == "15,00 €"  # a locale outside the catalogue: CLDR's pattern
    assert texts.day_label(date(2026, 3, 10), "ru") == "вт 10 марта"
    assert texts.day_label(date(2026, 3, 10), "en") == "Tue 10 Mar"
    assert texts.slot_label(datetime(2026, 3, 10, 14), "ru", resource="Anna") == "вт 14:00 · Anna"
    assert texts.button("cart", "ru").title == "Корзина"
