"""Shopify's product CSV export (``Handle,Title,Body (HTML),...``), read exactly as Shopify writes it.

One product per ``Handle``; its first row carries the product fields and the option names, following
rows with the same handle carry more variants (option values and a price) or only extra images.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from knowledge.columns import cell_text, normalize_header
from knowledge.errors import KnowledgeImportError
from knowledge.markup import html_to_text
from knowledge.parsed import ParsedItem, ParsedVariant
from knowledge.prices import CellValueError, parse_price, parse_quantity
from knowledge.sheets import Cell

REQUIRED = ("handle", "title", "variant price")
DEFAULT_TITLE = "default title"
_OPTIONS = (1, 2, 3)


def is_shopify(headers: tuple[str, ...]) -> bool:
    """True for a Shopify product export header (it has ``Handle``, ``Title`` and ``Variant Price``)."""
    normal = {normalize_header(header) for header in headers}
    return all(name in normal for name in REQUIRED)


class _Row:
    """Cells of one data row addressed by Shopify header name (case-insensitive)."""

    def __init__(self, number: int, cells: tuple[Cell, ...], index: dict[str, int], headers: tuple[str, ...]):
        self.number = number
        self._cells = cells
        self._index = index
        self._headers = headers

    def text(self, name: str) -> str:
        position = self._index.get(name)
        if position is None or position >= len(self._cells):
            return ""
        return cell_text(self._cells[position])

    def raw(self, name: str) -> Cell:
        position = self._index.get(name)
        return self._cells[position] if position is not None and position < len(self._cells) else None

    def header(self, name: str) -> str:
        return self._headers[self._index[name]]

    def read(self, name: str, parser: Callable[[Cell], Any]) -> Any:
        """Parse one cell; a :class:`CellValueError` becomes a located :class:`KnowledgeImportError`."""
        try:
            return parser(self.raw(name))
        except CellValueError as exc:
            raise KnowledgeImportError(str(exc), row=self.number, column=self.header(name)) from exc

    def error(self, name: str, message: str) -> KnowledgeImportError:
        column = self.header(name) if name in self._index else None
        return KnowledgeImportError(message, row=self.number, column=column)


def parse_shopify(
    headers: tuple[str, ...], rows: list[tuple[int, tuple[Cell, ...]]], *, currency: str
) -> tuple[list[ParsedItem], list[str]]:
    """Items of a Shopify export (``rows`` exclude the header) and warnings for skipped products.

    ``Variant Price`` → price in minor units of ``currency``; ``Variant Inventory Qty`` is stock only
    when ``Variant Inventory Tracker`` is ``shopify``; ``Body (HTML)`` → plain text; a single
    ``Default Title`` row means no variants. Products with ``Published`` false or ``Status``
    draft/archived are skipped with a warning. Raises :class:`KnowledgeImportError`.
    """
    index: dict[str, int] = {}
    for position, header in enumerate(headers):
        index.setdefault(normalize_header(header), position)
    groups: dict[str, list[_Row]] = {}
    for number, cells in rows:
        row = _Row(number, cells, index, headers)
        handle = row.text("handle")
        if not handle:
            raise row.error("handle", "handle is empty")
        groups.setdefault(handle, []).append(row)
    items: list[ParsedItem] = []
    warnings: list[str] = []
    for handle, group in groups.items():
        first = group[0]
        title = first.text("title")
        if not title:
            raise first.error("title", f"product {handle!r} has no title (its first row must have one)")
        status = first.text("status").casefold()
        if first.text("published").casefold() == "false" or status in ("draft", "archived"):
            warnings.append(f"row {first.number}: {title!r} is not published and was skipped")
            continue
        items.append(_item(handle, title, group, currency=currency))
    return items, warnings


def _variant_rows(group: list[_Row]) -> list[_Row]:
    """Rows that define a variant: any option value, price or SKU (image-only rows are not variants)."""
    fields = [f"option{n} value" for n in _OPTIONS] + ["variant price", "variant sku"]
    return [row for row in group if any(row.text(name) for name in fields)]


def _stock(row: _Row) -> int | None:
    if row.text("variant inventory tracker").casefold() != "shopify":
        return None
    return row.read("variant inventory qty", parse_quantity)


def _item(handle: str, title: str, group: list[_Row], *, currency: str) -> ParsedItem:
    first = group[0]
    defining = _variant_rows(group)
    if not defining:
        raise first.error("variant price", "price is empty")
    option_names = [first.text(f"option{n} name") or f"Option {n}" for n in _OPTIONS]
    variants: list[ParsedVariant] = []
    seen: dict[str, int] = {}
    for row in defining:
        price = row.read("variant price", lambda cell: parse_price(cell, currency))
        values = [row.text(f"option{n} value") for n in _OPTIONS]
        options = {name: value for name, value in zip(option_names, values, strict=True) if value}
        name = " / ".join(options.values())
        if not name or name.casefold() == DEFAULT_TITLE:
            if len(defining) > 1:
                raise row.error("option1 value", f"a variant of {handle!r} has no option value")
            name = ""
        elif name.casefold() in seen:
            raise row.error("option1 value", f"variant {name!r} of {handle!r} repeats row {seen[name.casefold()]}")
        seen[name.casefold()] = row.number
        variants.append(
            ParsedVariant(
                name=name,
                options=options,
                price_minor=price,
                sku=row.text("variant sku") or None,
                stock=_stock(row),
                image_url=row.text("variant image") or None,
                row=row.number,
            )
        )
    image = next((row.text("image src") for row in group if row.text("image src")), None)
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
    return ParsedItem(
        name=title,
        kind="product",
        price_minor=price,
        handle=handle,
        sku=sku,
        description=html_to_text(first.text("body (html)")),
        category=first.text("type") or None,
        stock=stock,
        image_url=image,
        attributes=attributes,
        variants=kept,
        row=first.number,
    )
