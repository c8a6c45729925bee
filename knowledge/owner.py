"""Owners' own sheets: products/services with free-form headers (see ``knowledge.columns``) and FAQ.

Rows that share a name and differ in their variant columns (size, colour, "вариант"...) become one
item with variants; a row with an empty name but a variant value continues the item above it.

Every problem is recorded in a :class:`~knowledge.problems.Problems` and parsing goes on with the
next row, so that one upload reports all of a sheet's errors; an item with an error is left out
(nothing is imported anyway when there are errors).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from knowledge.columns import ColumnMap, accepted, cell_text, column_letter, formula_like
from knowledge.limits import MAX_INT32, name_length_problem, text_limit
from knowledge.parsed import ParsedFaq, ParsedItem, ParsedVariant
from knowledge.prices import CellValueError, parse_duration, parse_price, parse_quantity, shown
from knowledge.problems import DROPPED_COLUMN, FORMULA, LONG_NAME, Problems
from knowledge.sheets import Cell

Rows = list[tuple[int, tuple[Cell, ...]]]


# Fields whose text is kept as text (and may land in CSV exports): checked for formula-like cells.
_TEXT_FIELDS = ("name", "description", "category", "sku", "staff", "image", "question", "answer")
# Field → KnowledgeItem column whose String(n) length bounds it.
_BOUNDED = {"name": "name", "sku": "sku", "category": "category", "image": "image_url"}


@dataclass(slots=True)
class _Line:
    """One data row seen through a column map; errors are recorded in ``problems`` and set ``failed``."""

    number: int
    cells: tuple[Cell, ...]
    columns: ColumnMap
    problems: Problems
    failed: bool = False

    def raw(self, index: int | None) -> Cell:
        return self.cells[index] if index is not None and index < len(self.cells) else None

    def text(self, field_name: str) -> str:
        return cell_text(self.raw(self.columns.fields.get(field_name)))

    def bounded(self, field_name: str) -> str:
        """``text(field_name)``, recording an error when it is longer than its database column."""
        value = self.text(field_name)
        limit = text_limit(_BOUNDED[field_name])
        if len(value) > limit:
            self.fail(field_name, f"{field_name} is {len(value)} characters long; at most {limit} are accepted")
        return value

    def read(self, field_name: str, parser: Callable[[Cell], Any]) -> Any:
        """Parse the cell of ``field_name`` (absent column → empty cell); an error naming row and
        column is recorded and ``None`` returned when the value is bad."""
        try:
            return parser(self.raw(self.columns.fields.get(field_name)))
        except CellValueError as exc:
            self.fail(field_name, str(exc))
            return None

    def fail(self, field_name: str | None, message: str) -> None:
        """Record an error at ``field_name``'s column (no column when the sheet has none)."""
        column = self.columns.header(field_name) if field_name in self.columns.fields else None
        self.problems.error(message, row=self.number, column=column)
        self.failed = True

    def warn_formulas(self, indices: tuple[int, ...]) -> None:
        """Warn about text cells a spreadsheet would take for formulas (they are kept as text)."""
        for index in indices:
            value = self.raw(index)
            if isinstance(value, str) and formula_like(value):
                self.problems.warn(
                    FORMULA,
                    f"starts with {value[0]!r}: a spreadsheet app would run it as a formula; imported as text "
                    "(CSV exports neutralise it)",
                    row=self.number,
                    column=self.columns.headers[index],
                )


def _text_columns(columns: ColumnMap) -> tuple[int, ...]:
    mapped = (columns.fields[name] for name in _TEXT_FIELDS if name in columns.fields)
    return tuple(sorted({*mapped, *columns.variant, *columns.unknown}))


def _warn_dropped(
    columns: ColumnMap, rows: Rows, problems: Problems, *, header_row: int | None, kept: set[int]
) -> None:
    """Warn about columns with values that are not imported: any outside ``kept`` (a header-less
    column; in a FAQ sheet, any column but question and answer)."""
    width = max((len(cells) for _number, cells in rows), default=0)
    for index in range(width):
        if index in kept or not any(index < len(cells) and cell_text(cells[index]) for _n, cells in rows):
            continue
        header = columns.headers[index] if index < len(columns.headers) else ""
        if header:
            problems.warn(DROPPED_COLUMN, "unknown column; its values were not imported", row=header_row, column=header)
        else:
            problems.warn(
                DROPPED_COLUMN,
                f"column {column_letter(index)} has no header; its values were not imported",
                row=header_row,
            )


@dataclass(slots=True)
class _Draft:
    """An item being assembled from one or more rows; ``failed`` once any of its rows had an error."""

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
    failed: bool = False

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
                    line.fail("prepay", f"{shown(prepay)} is not a percentage")
                else:
                    if 0 <= percent <= 100:
                        self.attributes["prepay_percent"] = percent
                    else:
                        line.fail("prepay", f"{shown(prepay)} is not between 0% and 100%")
            else:
                amount = line.read("prepay", lambda cell: parse_price(cell, currency))
                if amount is not None:
                    self.attributes["prepay_minor"] = amount
        staff = line.text("staff")
        if staff and "staff" not in self.attributes:
            self.attributes["staff"] = staff
        self.description = self.description or line.text("description")
        self.category = self.category or line.bounded("category") or default_category
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
    problems: Problems,
    default_category: str | None = None,
    header_row: int | None = None,
) -> list[ParsedItem]:
    """Items of an owner's product/service sheet (``rows`` exclude the header).

    Needs ``name`` and ``price`` columns (the caller checks ``name``; ``header_row`` is the header's
    row number, for the error about a missing price column); every product row needs a
    price, parsed to minor units of ``currency``. ``kind`` is ``"service"`` when the sheet has a
    duration column. Unrecognised columns go to ``attributes``.

    Records in ``problems`` an error (row and column) for each empty name or price, bad value
    (see :mod:`knowledge.prices`), text longer than its database column (see
    :mod:`knowledge.limits`) and repeated name without distinct variants; and a warning for each
    name longer than :data:`~knowledge.limits.LONG_NAME_WARNING` characters, each text cell that
    starts like a formula (:func:`~knowledge.columns.formula_like`) and each column with values but
    no header (dropped). Items with errors are left out of the result.
    """
    if "price" not in columns.fields:
        found = ", ".join(repr(h) for h in columns.headers if h)
        problems.error(f"no price column; found headers {found}; accepted price headers: {accepted('price')}",
                       row=header_row)
        return []
    kept = {*columns.fields.values(), *columns.variant, *columns.unknown}
    _warn_dropped(columns, rows, problems, header_row=header_row, kept=kept)
    text_columns = _text_columns(columns)
    kind = "service" if "duration" in columns.fields else "product"
    drafts: dict[str, _Draft] = {}
    last: _Draft | None = None
    for number, cells in rows:
        line = _Line(number, cells, columns, problems)
        name = line.text("name")
        options = {columns.headers[i]: cell_text(line.raw(i)) for i in columns.variant if cell_text(line.raw(i))}
        if not name:
            if not any(cell_text(line.raw(i)) for i in (*columns.fields.values(), *columns.variant)):
                continue  # only notes in unrecognised columns
            if last is None or not options:
                line.fail("name", "name is empty")
                continue
            draft = last
        else:
            key = " ".join(name.split()).casefold()
            draft = drafts.get(key)
            if draft is None:
                draft = drafts[key] = _Draft(name=name, row=number)
                _check_name(line, name)
        line.warn_formulas(text_columns)
        _add_row(draft, line, options, currency=currency, default_category=default_category)
        draft.failed = draft.failed or line.failed
        last = draft
    items = [_finish(draft, kind, columns, problems) for draft in drafts.values() if not draft.failed]
    return [item for item in items if item is not None]


def _check_name(line: _Line, name: str) -> None:
    """An error for a name longer than its database column, a warning for a merely long one."""
    found = name_length_problem(name, label="name")
    if found is not None and found[0]:
        line.fail("name", found[1])
    elif found is not None:
        line.problems.warn(LONG_NAME, found[1], row=line.number, column=line.columns.header("name"))


def _add_row(
    draft: _Draft, line: _Line, options: dict[str, str], *, currency: str, default_category: str | None
) -> None:
    image = line.bounded("image") or None
    draft.absorb(line, default_category=default_category, currency=currency)
    stock = line.read("stock", parse_quantity)
    sku = line.bounded("sku") or None
    if not options:
        if draft.base_row is not None or draft.variants:
            first = draft.base_row or draft.row
            line.fail("name", f"{shown(draft.name)} repeats row {first}; give the rows different variants")
            return
        draft.base_row = line.number
        # A row without a price is allowed only as the header of variant rows (checked in _finish).
        if line.text("price"):
            draft.price = line.read("price", lambda cell: parse_price(cell, currency))
        draft.stock, draft.sku = stock, sku
        return
    name = " / ".join(options.values())
    for variant in draft.variants:
        if variant.name.casefold() == name.casefold():
            line.fail("name", f"{shown(draft.name)} {shown(name)} repeats row {variant.row}")
            return
    limit = text_limit("name", variant=True)
    if len(name) > limit:
        first_option = line.columns.headers[line.columns.variant[0]]
        line.problems.error(
            f"variant {shown(name)} is {len(name)} characters long; at most {limit} are accepted",
            row=line.number,
            column=first_option,
        )
        line.failed = True
    price = line.read("price", lambda cell: parse_price(cell, currency))
    if line.failed:
        return
    draft.variants.append(
        ParsedVariant(
            name=name,
            options=options,
            price_minor=price,
            sku=sku,
            stock=stock,
            image_url=image,
            row=line.number,
        )
    )


def _finish(draft: _Draft, kind: str, columns: ColumnMap, problems: Problems) -> ParsedItem | None:
    price_column = columns.header("price")
    if not draft.variants:
        if draft.price is None:
            problems.error("price is empty", row=draft.base_row, column=price_column)
            return None
        price, stock, sku = draft.price, draft.stock, draft.sku
    else:
        if draft.price is not None:
            problems.error(
                f"{shown(draft.name)} has variants (row {draft.variants[0].row}...), so this row must not have its "
                "own price; leave it empty or give the row a variant",
                row=draft.base_row,
                column=price_column,
            )
            return None
        stocks = [variant.stock for variant in draft.variants]
        price = min(variant.price_minor for variant in draft.variants)
        stock = None if None in stocks else sum(s for s in stocks if s is not None)
        if stock is not None and stock > MAX_INT32:
            problems.error(
                f"the variants of {shown(draft.name)} have {stock:,} in stock together; at most {MAX_INT32:,} "
                "are accepted",
                row=draft.row,
                column=columns.header("stock"),
            )
            return None
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


def parse_faq(columns: ColumnMap, rows: Rows, *, problems: Problems, header_row: int | None = None) -> list[ParsedFaq]:
    """Question/answer pairs (``rows`` exclude the header; ``header_row`` is the header's row number).

    Records in ``problems`` an error for each row with a question without an answer or the reverse,
    and warnings for questions/answers that start like a formula and for other columns with values
    (they are not imported)."""
    kept = {columns.fields["question"], columns.fields["answer"]}
    _warn_dropped(columns, rows, problems, header_row=header_row, kept=kept)
    entries: list[ParsedFaq] = []
    for number, cells in rows:
        line = _Line(number, cells, columns, problems)
        question, answer = line.text("question"), line.text("answer")
        if not question and not answer:
            continue
        if not question:
            line.fail("question", "question is empty")
        if not answer:
            line.fail("answer", "answer is empty")
        if line.failed:
            continue
        line.warn_formulas(tuple(sorted(kept)))
        entries.append(ParsedFaq(question=question, answer=answer, row=number))
    return entries
