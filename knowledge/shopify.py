"""Shopify's product CSV export (``Handle,Title,Body (HTML),...``), read exactly as Shopify writes it.

One product per ``Handle``; its first row carries the product fields and the option names, following
rows with the same handle carry more variants (option values and a price) or only extra images.
Column meanings: https://help.shopify.com/en/manual/products/import-export/using-csv
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from knowledge.columns import cell_text, column_letter, formula_like, normalize_header
from knowledge.limits import MAX_INT32, name_length_problem, text_limit
from knowledge.markup import html_to_text
from knowledge.parsed import ParsedItem, ParsedVariant
from knowledge.prices import CellValueError, parse_price, parse_quantity, shown
from knowledge.problems import DROPPED_COLUMN, FORMULA, LONG_NAME, SKIPPED_PRODUCT, Problems
from knowledge.sheets import Cell

REQUIRED = ("handle", "title", "variant price")
DEFAULT_TITLE = "default title"
_OPTIONS = (1, 2, 3)
# Columns Shopify writes (normalised headers, and prefixes of column families) that this importer
# reads or ignores on purpose; other columns with values get a "dropped" warning.
_KNOWN = frozenset({
    "handle", "title", "body (html)", "vendor", "product category", "type", "tags", "published", "gift card",
    "cost per item", "status", "seo title", "seo description",
})  # fmt: skip
_KNOWN_PREFIXES = (
    "option1 ", "option2 ", "option3 ", "variant ", "image ", "google shopping / ", "included / ", "price / ",
    "compare at price / ", "compare-at price / ", "unit price ",
)  # fmt: skip
# Text kept in the knowledge base (and possibly exported later): checked for formula-like cells.
_TEXT = ("title", "body (html)", "vendor", "type", "tags", "option1 value", "option2 value", "option3 value",
         "variant sku")  # fmt: skip


def is_shopify(headers: tuple[str, ...]) -> bool:
    """True for a Shopify product export header (it has ``Handle``, ``Title`` and ``Variant Price``)."""
    normal = {normalize_header(header) for header in headers}
    return all(name in normal for name in REQUIRED)


def _known(header: str) -> bool:
    normal = normalize_header(header)
    return normal in _KNOWN or normal.startswith(_KNOWN_PREFIXES) or "metafields." in normal


class _Row:
    """Cells of one data row addressed by Shopify header name (case-insensitive); errors are
    recorded in ``problems`` and set ``failed``."""

    def __init__(
        self,
        number: int,
        cells: tuple[Cell, ...],
        index: dict[str, int],
        headers: tuple[str, ...],
        problems: Problems,
    ) -> None:
        self.number = number
        self._cells = cells
        self._index = index
        self._headers = headers
        self.problems = problems
        self.failed = False

    def text(self, name: str) -> str:
        position = self._index.get(name)
        if position is None or position >= len(self._cells):
            return ""
        return cell_text(self._cells[position])

    def bounded(self, name: str, limit: int) -> str:
        """``text(name)``, recording an error when it is longer than ``limit`` (its database column)."""
        value = self.text(name)
        if len(value) > limit:
            self.fail(name, f"{name} is {len(value)} characters long; at most {limit} are accepted")
        return value

    def raw(self, name: str) -> Cell:
        position = self._index.get(name)
        return self._cells[position] if position is not None and position < len(self._cells) else None

    def header(self, name: str) -> str:
        return self._headers[self._index[name]]

    def read(self, name: str, parser: Callable[[Cell], Any]) -> Any:
        """Parse one cell; a bad value records an error naming row and column and gives ``None``."""
        try:
            return parser(self.raw(name))
        except CellValueError as exc:
            self.fail(name, str(exc))
            return None

    def fail(self, name: str, message: str) -> None:
        column = self.header(name) if name in self._index else None
        self.problems.error(message, row=self.number, column=column)
        self.failed = True

    def warn_formulas(self) -> None:
        for name in _TEXT:
            value = self.raw(name)
            if isinstance(value, str) and formula_like(value):
                self.problems.warn(
                    FORMULA,
                    f"starts with {value[0]!r}: a spreadsheet app would run it as a formula; imported as text "
                    "(CSV exports neutralise it)",
                    row=self.number,
                    column=self.header(name),
                )


def parse_shopify(
    headers: tuple[str, ...],
    rows: list[tuple[int, tuple[Cell, ...]]],
    *,
    currency: str,
    problems: Problems,
    header_row: int | None = None,
) -> list[ParsedItem]:
    """Items of a Shopify export (``rows`` exclude the header; ``header_row`` is its row number).

    ``Variant Price`` → price in minor units of ``currency``; ``Variant Inventory Qty`` is stock only
    when ``Variant Inventory Tracker`` is ``shopify``; ``Body (HTML)`` → plain text; a single
    ``Default Title`` row means no variants. Products with ``Published`` false or ``Status``
    draft/archived are skipped with a warning.

    Records in ``problems`` an error (row and column) for each empty handle or title, bad price or
    quantity, repeated variant and text longer than its database column (:mod:`knowledge.limits`),
    and warnings for titles longer than :data:`~knowledge.limits.LONG_NAME_WARNING`, text cells that
    start like a formula and columns with values that are not Shopify product columns (dropped).
    Products with errors are left out of the result.
    """
    index: dict[str, int] = {}
    for position, header in enumerate(headers):
        index.setdefault(normalize_header(header), position)
    _warn_unknown(headers, rows, problems, header_row=header_row)
    groups: dict[str, list[_Row]] = {}
    for number, cells in rows:
        row = _Row(number, cells, index, headers, problems)
        handle = row.bounded("handle", text_limit("handle"))
        if not handle:
            row.fail("handle", "handle is empty")
            continue
        row.warn_formulas()
        groups.setdefault(handle, []).append(row)
    items: list[ParsedItem] = []
    for handle, group in groups.items():
        first = group[0]
        title = first.text("title")
        if not title:
            first.fail("title", f"product {shown(handle)} has no title (its first row must have one)")
            continue
        status = first.text("status").casefold()
        if first.text("published").casefold() == "false" or status in ("draft", "archived"):
            problems.warn(SKIPPED_PRODUCT, f"{shown(title)} is not published and was skipped", row=first.number)
            continue
        item = _item(handle, title, group, currency=currency)
        if item is not None and not any(row.failed for row in group):
            items.append(item)
    return items


def _warn_unknown(
    headers: tuple[str, ...], rows: list[tuple[int, tuple[Cell, ...]]], problems: Problems, *, header_row: int | None
) -> None:
    for position, header in enumerate(headers):
        if header and _known(header):
            continue
        if not any(position < len(cells) and cell_text(cells[position]) for _number, cells in rows):
            continue
        if header:
            message, column = "not a Shopify product column; its values were not imported", header
        else:
            message, column = f"column {column_letter(position)} has no header; its values were not imported", None
        problems.warn(DROPPED_COLUMN, message, row=header_row, column=column)


def _variant_rows(group: list[_Row]) -> list[_Row]:
    """Rows that define a variant: any option value, price or SKU (image-only rows are not variants)."""
    fields = [f"option{n} value" for n in _OPTIONS] + ["variant price", "variant sku"]
    return [row for row in group if any(row.text(name) for name in fields)]


def _stock(row: _Row) -> int | None:
    if row.text("variant inventory tracker").casefold() != "shopify":
        return None
    return row.read("variant inventory qty", parse_quantity)


def _check_title(row: _Row, title: str) -> None:
    found = name_length_problem(title, label="title")
    if found is not None and found[0]:
        row.fail("title", found[1])
    elif found is not None:
        row.problems.warn(LONG_NAME, found[1], row=row.number, column=row.header("title"))


def _item(handle: str, title: str, group: list[_Row], *, currency: str) -> ParsedItem | None:
    """The product of one handle's rows, or ``None`` when an error was recorded for it."""
    first = group[0]
    _check_title(first, title)
    defining = _variant_rows(group)
    if not defining:
        first.fail("variant price", "price is empty")
        return None
    option_names = [first.text(f"option{n} name") or f"Option {n}" for n in _OPTIONS]
    variants: list[ParsedVariant] = []
    seen: dict[str, int] = {}
    variant_limit, sku_limit, image_limit = (
        text_limit("name", variant=True), text_limit("sku", variant=True), text_limit("image_url", variant=True)
    )
    for row in defining:
        price = row.read("variant price", lambda cell: parse_price(cell, currency))
        values = [row.text(f"option{n} value") for n in _OPTIONS]
        options = {name: value for name, value in zip(option_names, values, strict=True) if value}
        name = " / ".join(options.values())
        if not name or name.casefold() == DEFAULT_TITLE:
            if len(defining) > 1:
                row.fail("option1 value", f"a variant of {shown(handle)} has no option value")
            name = ""
        elif name.casefold() in seen:
            row.fail("option1 value", f"variant {shown(name)} of {shown(handle)} repeats row {seen[name.casefold()]}")
        elif len(name) > variant_limit:
            row.fail("option1 value", f"variant is {len(name)} characters long; at most {variant_limit} are accepted")
        seen.setdefault(name.casefold(), row.number)
        sku = row.bounded("variant sku", sku_limit) or None
        stock = _stock(row)
        image_url = row.bounded("variant image", image_limit) or None
        if row.failed:
            continue
        variants.append(
            ParsedVariant(
                name=name,
                options=options,
                price_minor=price,
                sku=sku,
                stock=stock,
                image_url=image_url,
                row=row.number,
            )
        )
    image_limit = text_limit("image_url")
    image = next((row.bounded("image src", image_limit) for row in group if row.text("image src")), None)
    category = first.bounded("type", text_limit("category")) or None
    if any(row.failed for row in group):
        return None
    tags = [tag.strip() for tag in first.text("tags").split(",") if tag.strip()]
    attributes: dict[str, Any] = {}
    if tags:
        attributes["tags"] = tags
    if first.text("vendor"):
        attributes["vendor"] = first.text("vendor")
    if len(variants) == 1 and not variants[0].name:
        only = variants[0]
        price, sku, stock, kept = only.price_minor, only.sku, only.stock, ()
    else:
        stocks = [variant.stock for variant in variants]
        price = min(variant.price_minor for variant in variants)
        sku, stock, kept = None, (None if None in stocks else sum(s for s in stocks if s is not None)), tuple(variants)
        if stock is not None and stock > MAX_INT32:
            first.fail(
                "variant inventory qty",
                f"the variants of {shown(handle)} have {stock:,} in stock together; at most {MAX_INT32:,} are accepted",
            )
            return None
    return ParsedItem(
        name=title,
        kind="product",
        price_minor=price,
        handle=handle,
        sku=sku,
        description=html_to_text(first.text("body (html)")),
        category=category,
        stock=stock,
        image_url=image,
        attributes=attributes,
        variants=kept,
        row=first.number,
    )
