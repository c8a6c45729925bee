"""Header recognition for owners' own sheets (English and Russian synonyms) and cell-to-text helpers."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal

from knowledge.sheets import Cell

# Field → accepted header texts (compared after normalize_header). Earlier synonyms win when a sheet
# has several columns for one field.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "name": (
        "name", "title", "product", "product name", "item", "item name", "service", "service name",
        "название", "наименование", "товар", "услуга", "название товара", "наименование товара",
        "название услуги", "наименование услуги", "продукт", "позиция",
    ),
    "price": (
        "price", "cost", "unit price", "price per unit", "цена", "стоимость", "цена за шт", "цена за единицу",
        "цена за штуку",
    ),
    "description": ("description", "desc", "details", "описание", "подробности"),
    "stock": (
        "stock", "qty", "quantity", "in stock", "inventory", "остаток", "остатки", "наличие", "в наличии",
        "количество", "кол-во",
    ),
    "category": ("category", "categories", "type", "group", "категория", "группа", "раздел", "тип"),
    "variant": (
        "variant", "size", "color", "colour", "option", "flavour", "flavor", "размер", "цвет", "вариант", "модификация",
        "вкус", "начинка",
    ),
    "duration": ("duration", "длительность", "продолжительность", "время"),
    "sku": ("sku", "code", "article", "артикул", "код"),
    "prepay": ("prepay", "prepayment", "deposit", "предоплата", "аванс", "депозит"),
    "staff": ("staff", "master", "specialist", "stylist", "мастер", "специалист", "сотрудник"),
    "image": (
        "image", "image url", "image src", "photo", "picture", "фото", "изображение", "картинка", "фотография",
    ),
    "question": ("question", "questions", "q", "вопрос", "вопросы"),
    "answer": ("answer", "answers", "a", "ответ", "ответы"),
}  # fmt: skip
PRODUCT_FIELDS = (
    "name", "price", "description", "stock", "category", "variant", "duration", "sku", "image", "prepay", "staff",
)
_SPACE = re.compile(r"\s+")
# "Цена, руб.", "Price (USD)", "Duration [min]", "Name:" → "цена", "price", "duration", "name".
_QUALIFIER = re.compile(r"\s*[(\[,:;*].*$")


def normalize_header(text: str) -> str:
    """Case-folded header with ``ё`` → ``е``, whitespace collapsed and trailing ``:``/``*`` removed."""
    text = _SPACE.sub(" ", text.replace("\u00a0", " ")).strip().casefold().replace("ё", "е")
    return text.rstrip(":*").strip()


@dataclass(frozen=True, slots=True)
class ColumnMap:
    """Which column (0-based index) holds which field; ``variant`` may have several columns (e.g. Size
    and Colour); ``unknown`` holds the remaining non-blank headers."""

    headers: tuple[str, ...]
    fields: dict[str, int]
    variant: tuple[int, ...]
    unknown: tuple[int, ...]

    def header(self, field: str) -> str:
        """The header text, as written, of ``field``'s column."""
        return self.headers[self.fields[field]]

    @property
    def recognised(self) -> bool:
        """True when any field at all was recognised."""
        return bool(self.fields or self.variant)


def map_columns(headers: tuple[str, ...]) -> ColumnMap:
    """Recognise the fields of a header row. An exact synonym beats one found after dropping a
    qualifier (``"Цена, руб."``); among equals the earlier synonym, then the earlier column wins."""
    best: dict[str, tuple[int, int]] = {}
    variant: list[int] = []
    unknown: list[int] = []
    for index, header in enumerate(headers):
        found = _field_of(header)
        if found is None:
            if header:
                unknown.append(index)
            continue
        field, score = found
        if field == "variant":
            variant.append(index)
        elif field not in best or score < best[field][0]:
            if field in best:
                unknown.append(best[field][1])
            best[field] = (score, index)
        else:
            unknown.append(index)
    return ColumnMap(
        headers=headers,
        fields={field: index for field, (_score, index) in best.items()},
        variant=tuple(variant),
        unknown=tuple(sorted(unknown)),
    )


def _field_of(header: str) -> tuple[str, int] | None:
    normal = normalize_header(header)
    if not normal:
        return None
    for penalty, candidate in ((0, normal), (100, _QUALIFIER.sub("", normal))):
        for field, synonyms in SYNONYMS.items():
            if candidate in synonyms:
                return field, penalty + synonyms.index(candidate)
    return None


# A cell of a text field that starts like a formula but is a plain number or phone number (``+1 555
# 0100``, ``-5``, ``+7 (912) 345-67-89``) or a lone dash: not worth a warning.
_NUMBER_OR_PHONE = re.compile(r"[+-]?[\d\s().\-/]*\d[\d\s().\-/]*|[+-]+")
FORMULA_STARTS = ("=", "+", "-", "@")


def formula_like(text: str) -> bool:
    """True when a spreadsheet app would read ``text`` as a formula if it landed in a CSV export: it
    starts with ``=``, ``+``, ``-`` or ``@`` (the OWASP "CSV injection" characters), unless it is
    just a number, a phone number (``+1 555 0100``) or a lone ``-``/``+``."""
    return text.startswith(FORMULA_STARTS) and _NUMBER_OR_PHONE.fullmatch(text) is None


def column_letter(index: int) -> str:
    """The spreadsheet letter of a 0-based column index (``0`` → ``A``, ``27`` → ``AB``)."""
    from openpyxl.utils import get_column_letter  # lazily: importing openpyxl is slow and rarely needed

    return get_column_letter(index + 1)


def accepted(field: str) -> str:
    """The accepted headers of ``field`` for error messages: ``'name', 'title', ...``."""
    return ", ".join(repr(s) for s in SYNONYMS[field])


def cell_text(value: Cell) -> str:
    """A cell as stripped text: whole floats lose ``.0`` (``12345.0`` → ``"12345"``), dates are ISO."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, Decimal):
        return format(value.normalize(), "f") if value == value.to_integral_value() else str(value)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="minutes") if value.time() != time(0) else value.date().isoformat()
    if isinstance(value, date | time):
        return value.isoformat()
    return str(value)
