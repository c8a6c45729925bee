"""Owners' own sheets: products/services with free-form headers (see ``knowledge.columns``) and FAQ.

Rows that share a name and differ in their variant columns (size, colour, "вариант"...) become one
item with variants; a row with an empty name but a variant value continues the item above it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from knowledge.columns import ColumnMap, accepted, cell_text
from knowledge.errors import KnowledgeImportError
from knowledge.parsed import ParsedFaq, ParsedItem, ParsedVariant
from knowledge.prices import CellValueError, parse_duration, parse_price, parse_quantity
from knowledge.sheets import Cell

Rows = list[tuple[int, tuple[Cell, ...]]]


@dataclass(slots=True)
class _Line:
    """One data row seen through a column map."""

    number: int
    cells: tuple[Cell, ...]
    columns: ColumnMap

    def raw(self, index: int | None) -> Cell:
        return self.cells[index] if index is not None and index < len(self.cells) else None

    def text(self, field_name: str) -> str:
        return cell_text(self.raw(self.columns.fields.get(field_name)))

    def read(self, field_name: str, parser: Callable[[Cell], Any]) -> Any:
        """Parse the cell of ``field_name`` (absent column → empty cell); errors name row and column."""
        try:
            return parser(self.raw(self.columns.fields.get(field_name)))
        except CellValueError as exc:
            column = self.columns.header(field_name) if field_name in self.columns.fields else None
            raise KnowledgeImportError(str(exc), row=self.number, column=column) from exc

    def error(self, field_name: str, message: str) -> KnowledgeImportError:
        return KnowledgeImportError(message, row=self.number, column=self.columns.header(field_name))


@dataclass(slots=True)
class _Draft:
    """An item being assembled from one or more rows."""

    name: str
    row: int
    base_row: int | None = None
    price: int | None = None
    stock: int | None = None
    sku: str | None = None
    description: str = ""
    category: str | None = None
    duration: int | None = None
    image: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    variants: list[ParsedVariant] = field(default_factory=list)

    def absorb(self, line: _Line, *, default_category: str | None, currency: str) -> None:
        """Take item-level fields the item does not have yet from ``line``.

        ``prepay`` (services) is a percentage (``25%`` → ``attributes["prepay_percent"] = 25``) or an
        amount (``20 €`` → ``attributes["prepay_minor"] = 2000``); ``staff`` names who performs the
        service (``attributes["staff"]``, comma-separated names allowed)."""
        prepay = line.text("prepay")
        if prepay and "prepay_percent" not in self.attributes and "prepay_minor" not in self.attributes:
            if prepay.rstrip().endswith("%"):
                try:
                    percent = int(prepay.rstrip().rstrip("%").strip())
                except ValueError:
                    raise line.error("prepay", f"{prepay!r} is not a percentage") from None
                if not 0 <= percent <= 100:
                    raise line.error("prepay", f"{prepay!r} is not between 0% and 100%")
                self.attributes["prepay_percent"] = percent
            else:
                self.attributes["prepay_minor"] = line.read("prepay", lambda cell: parse_price(cell, currency))
        staff = line.text("staff")
        if staff and "staff" not in self.attributes:
            self.attributes["staff"] = staff
        self.description = self.description or line.text("description")
        self.category = self.category or line.text("category") or default_category
        self.image = self.image or line.text("image") or None
        if self.duration is None:
            self.duration = line.read("duration", parse_duration)
        for index in line.columns.unknown:
            value = cell_text(line.raw(index))
            if value:
                self.attributes.setdefault(line.columns.headers[index], value)


def parse_products(
    columns: ColumnMap,
    rows: Rows,
    *,
    currency: str,
    default_category: str | None = None,
    header_row: int | None = None,
) -> list[ParsedItem]:
    """Items of an owner's product/service sheet (``rows`` exclude the header).

    Needs ``name`` and ``price`` columns (the caller checks ``name``; ``header_row`` is the header's
    row number, for the error about a missing price column); every product row needs a
    price, parsed to minor units of ``currency``. ``kind`` is ``"service"`` when the sheet has a
    duration column. Unrecognised columns go to ``attributes``. Raises :class:`KnowledgeImportError`
    for empty names or prices, bad values, and repeated names without distinct variants.
    """
    if "price" not in columns.fields:
        found = ", ".join(repr(h) for h in columns.headers if h)
        raise KnowledgeImportError(
            f"no price column; found headers {found}; accepted price headers: {accepted('price')}",
            row=header_row,
        )
    kind = "service" if "duration" in columns.fields else "product"
    drafts: dict[str, _Draft] = {}
    last: _Draft | None = None
    for number, cells in rows:
        line = _Line(number, cells, columns)
        name = line.text("name")
        options = {columns.headers[i]: cell_text(line.raw(i)) for i in columns.variant if cell_text(line.raw(i))}
        if not name:
            if not any(cell_text(line.raw(i)) for i in (*columns.fields.values(), *columns.variant)):
                continue  # only notes in unrecognised columns
            if last is None or not options:
                raise line.error("name", "name is empty")
            draft = last
        else:
            key = " ".join(name.split()).casefold()
            draft = drafts.get(key)
            if draft is None:
                draft = drafts[key] = _Draft(name=name, row=number)
        _add_row(draft, line, options, currency=currency, default_category=default_category)
        last = draft
    return [_finish(draft, kind, columns) for draft in drafts.values()]


def _add_row(
    draft: _Draft, line: _Line, options: dict[str, str], *, currency: str, default_category: str | None
) -> None:
    draft.absorb(line, default_category=default_category, currency=currency)
    stock = line.read("stock", parse_quantity)
    sku = line.text("sku") or None
    if not options:
        if draft.base_row is not None or draft.variants:
            first = draft.base_row or draft.row
            raise line.error("name", f"{draft.name!r} repeats row {first}; give the rows different variants")
        draft.base_row = line.number
        # A row without a price is allowed only as the header of variant rows (checked in _finish).
        if line.text("price"):
            draft.price = line.read("price", lambda cell: parse_price(cell, currency))
        draft.stock, draft.sku = stock, sku
        return
    name = " / ".join(options.values())
    for variant in draft.variants:
        if variant.name.casefold() == name.casefold():
            raise line.error("name", f"{draft.name!r} {name!r} repeats row {variant.row}")
    draft.variants.append(
        ParsedVariant(
            name=name,
            options=options,
            price_minor=line.read("price", lambda cell: parse_price(cell, currency)),
            sku=sku,
            stock=stock,
            image_url=line.text("image") or None,
            row=line.number,
        )
    )


def _finish(draft: _Draft, kind: str, columns: ColumnMap) -> ParsedItem:
    price_column = columns.header("price")
    if not draft.variants:
        if draft.price is None:
            raise KnowledgeImportError("price is empty", row=draft.base_row, column=price_column)
        price, stock, sku = draft.price, draft.stock, draft.sku
    else:
        if draft.price is not None:
            raise KnowledgeImportError(
                f"{draft.name!r} has variants (row {draft.variants[0].row}...), so this row must not have its own "
                "price; leave it empty or give the row a variant",
                row=draft.base_row,
                column=price_column,
            )
        stocks = [variant.stock for variant in draft.variants]
        price = min(variant.price_minor for variant in draft.variants)
        stock = None if None in stocks else sum(s for s in stocks if s is not None)
        sku = draft.sku
    return ParsedItem(
        name=draft.name,
        kind=kind,
        price_minor=price,
        sku=sku,
        description=" ".join(draft.description.split()),
        category=draft.category,
        stock=stock,
        duration_minutes=draft.duration,
        image_url=draft.image,
        attributes=draft.attributes,
        variants=tuple(draft.variants),
        row=draft.row,
    )


def parse_faq(columns: ColumnMap, rows: Rows) -> list[ParsedFaq]:
    """Question/answer pairs (``rows`` exclude the header). Raises :class:`KnowledgeImportError` when
    a row has a question without an answer or the reverse."""
    entries: list[ParsedFaq] = []
    for number, cells in rows:
        line = _Line(number, cells, columns)
        question, answer = line.text("question"), line.text("answer")
        if not question and not answer:
            continue
        if not question:
            raise line.error("question", "question is empty")
        if not answer:
            raise line.error("answer", "answer is empty")
        entries.append(ParsedFaq(question=question, answer=answer, row=number))
    return entries
