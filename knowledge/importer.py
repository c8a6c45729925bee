"""Knowledge-base import: parse an uploaded CSV/TSV/TXT/XLSX file (Shopify product export, an owner's
own product/service sheet, FAQ sheets) and replace the company's knowledge base with it.

``parse_knowledge_file`` is pure; ``import_knowledge`` writes inside the caller's transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import Table as SqlTable
from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from core.models import Company, FaqEntry, KnowledgeImport, KnowledgeItem, KnowledgeVariant
from core.timeutil import utcnow
from knowledge.columns import ColumnMap, accepted, cell_text, map_columns, normalize_header
from knowledge.errors import MAX_REPORTED, ImportIssue, KnowledgeImportError
from knowledge.owner import parse_faq, parse_products
from knowledge.parsed import ParsedFaq, ParsedItem, ParsedKnowledge, ParsedVariant
from knowledge.prices import shown
from knowledge.problems import DUPLICATE_SKU, SKIPPED_SHEET, KnowledgeWarning, Problems
from knowledge.sheets import Table, read_tables
from knowledge.shopify import is_shopify, parse_shopify

__all__ = [
    "MAX_REPORTED",
    "ImportIssue",
    "ImportResult",
    "KnowledgeImportError",
    "KnowledgeWarning",
    "ParsedKnowledge",
    "import_knowledge",
    "parse_knowledge_file",
    "record_failed_import",
]

# How far down a sheet the header row is looked for (owners put titles above their tables).
HEADER_SEARCH_ROWS = 10


@dataclass(frozen=True)
class ImportResult:
    """Counts of what one import wrote: ``items`` and ``variants`` from product/service sheets (0 for
    a FAQ-only file), ``faq`` entries (0 without a FAQ sheet); ``warnings`` (see
    :attr:`ParsedKnowledge.warnings`) lists what was skipped or looks wrong but was imported."""

    items: int
    variants: int
    faq: int
    warnings: tuple[KnowledgeWarning, ...] = ()


@dataclass(frozen=True, slots=True)
class _Sheet:
    table: Table
    kind: str  # "shopify" | "products" | "faq"
    columns: ColumnMap
    header_position: int  # index into table.rows


def parse_knowledge_file(data: bytes, *, filename: str, currency: str) -> ParsedKnowledge:
    """Parse an uploaded knowledge file without touching the database.

    ``data`` is the raw upload; ``filename`` decides the format by extension (``.csv``, ``.tsv``,
    ``.txt``, ``.xlsx``; a workbook is also recognised by content); ``currency`` is the company's
    ISO-4217 code, used to turn prices into minor units. Each table (a CSV file, or each worksheet of
    a workbook) is recognised by its header row (searched in the first rows): a Shopify product
    export, an owner's product/service sheet (needs a name column) or a FAQ sheet (question and
    answer). Worksheets with no recognisable header at all are skipped with a warning when another
    worksheet is recognised.

    Returns :class:`ParsedKnowledge` (``items``/``faq`` are ``None`` when the file has no such sheet)
    with ``warnings`` (:class:`KnowledgeWarning`, at most :data:`MAX_REPORTED` then a "... and N
    more" one): skipped sheets and unpublished products, columns whose values were dropped, SKUs
    used twice, text cells that start like a formula (``=``, ``+``, ``-``, ``@``; imported as text),
    names longer than :data:`~knowledge.limits.LONG_NAME_WARNING` characters.

    Raises :class:`KnowledgeImportError` naming row, column and (for workbooks) sheet of every
    problem found (``errors``, up to :data:`MAX_REPORTED`, and ``total``): empty or unsupported
    file, wrong encoding, no name column, empty/non-numeric/negative price, bad quantity or
    duration, values beyond the database columns (:mod:`knowledge.limits`), repeated names.
    """
    currency = currency.upper()
    problems = Problems()
    sheets = _recognise(read_tables(data, filename=filename), problems)
    items: list[ParsedItem] | None = None
    faq: list[ParsedFaq] | None = None
    product_sheets = sum(1 for sheet in sheets if sheet.kind != "faq")
    names: dict[str, tuple[str | None, int | None]] = {}
    skus: dict[str, tuple[str | None, int | None]] = {}
    for sheet in sheets:
        rows = list(sheet.table.rows[sheet.header_position + 1 :])
        title = sheet.table.title
        header_row = sheet.table.rows[sheet.header_position][0]
        problems.sheet = title
        if sheet.kind == "faq":
            faq = (faq or []) + parse_faq(sheet.columns, rows, problems=problems, header_row=header_row)
            continue
        if sheet.kind == "shopify":
            parsed = parse_shopify(
                sheet.columns.headers, rows, currency=currency, problems=problems, header_row=header_row
            )
            sku_column = next((h for h in sheet.columns.headers if normalize_header(h) == "variant sku"), None)
        else:
            parsed = parse_products(
                sheet.columns,
                rows,
                currency=currency,
                problems=problems,
                default_category=title if product_sheets > 1 else None,
                header_row=header_row,
            )
            sku_column = sheet.columns.header("sku") if "sku" in sheet.columns.fields else None
        _check_unique(parsed, names, sheet=title, problems=problems)
        _warn_duplicate_skus(parsed, skus, sheet=title, column=sku_column, problems=problems)
        items = (items or []) + parsed
    problems.sheet = None
    problems.check()
    return ParsedKnowledge(
        currency=currency,
        items=tuple(items) if items is not None else None,
        faq=tuple(faq) if faq is not None else None,
        warnings=problems.warnings(),
    )


@dataclass(frozen=True, slots=True)
class _Refusal:
    """A table that is not a knowledge sheet: its first row's columns and the error to report."""

    table: Table
    columns: ColumnMap
    error: KnowledgeImportError
    header_only: bool = False


def _recognise(tables: list[Table], problems: Problems) -> list[_Sheet]:
    """Classify every table; record an error for each unusable one, except that beside recognised
    worksheets an unrelated one (nothing recognisable in it) or one with only a header row is
    skipped with a warning."""
    results = [_classify(table) for table in tables]
    sheets = [result for result in results if isinstance(result, _Sheet)]
    for result in results:
        if isinstance(result, _Refusal):
            problems.sheet = result.table.title
            if not sheets or (result.columns.recognised and not result.header_only):
                problems.add(result.error)
                continue
            reason = "it has a header row only" if result.header_only else "no recognisable header"
            text = f"sheet {result.table.title!r} was skipped: {reason}"
            problems.warn(SKIPPED_SHEET, f"was skipped: {reason}", text=text)
    problems.sheet = None
    return sheets


def _classify(table: Table) -> _Sheet | _Refusal:
    """Find the header row among the first rows and tell what kind of sheet the table is."""
    title = table.title
    for position, (number, cells) in enumerate(table.rows[:HEADER_SEARCH_ROWS]):
        headers = tuple(cell_text(cell) for cell in cells)
        columns = map_columns(headers)
        if is_shopify(headers):
            kind = "shopify"
        elif "question" in columns.fields and "answer" in columns.fields:
            kind = "faq"
        elif "name" in columns.fields:
            kind = "products"
        else:
            continue
        if position + 1 >= len(table.rows):
            error = KnowledgeImportError("the sheet has a header row but no rows under it", row=number, sheet=title)
            return _Refusal(table=table, columns=columns, error=error, header_only=True)
        return _Sheet(table=table, kind=kind, columns=columns, header_position=position)
    header_row, cells = table.rows[0]
    columns = map_columns(tuple(cell_text(cell) for cell in cells))
    found = ", ".join(repr(header) for header in columns.headers if header) or "none"
    if "question" in columns.fields or "answer" in columns.fields:
        message = f"a FAQ sheet needs a question and an answer column; found headers {found}"
    else:
        message = (
            f"no recognisable name column; found headers {found}; accepted name headers: {accepted('name')} "
            "(or 'question' and 'answer' for a FAQ sheet, or a Shopify product export)"
        )
    return _Refusal(table=table, columns=columns, error=KnowledgeImportError(message, row=header_row, sheet=title))


def _check_unique(
    items: list[ParsedItem], seen: dict[str, tuple[str | None, int | None]], *, sheet: str | None, problems: Problems
) -> None:
    """Owner items from several worksheets must not share a name (within a sheet rows are merged)."""
    local: set[str] = set()
    for item in items:
        key = item.handle or " ".join(item.name.split()).casefold()
        if key in seen and key not in local:
            other_sheet, other_row = seen[key]
            where = f"sheet {other_sheet!r} row {other_row}" if other_sheet else f"row {other_row}"
            problems.error(f"{shown(item.name)} also appears in {where}", row=item.row)
            continue
        seen[key] = (sheet, item.row)
        local.add(key)


def _warn_duplicate_skus(
    items: list[ParsedItem],
    seen: dict[str, tuple[str | None, int | None]],
    *,
    sheet: str | None,
    column: str | None,
    problems: Problems,
) -> None:
    """Warn about every SKU (compared case-insensitively) already used by an earlier item or variant."""
    for item in items:
        entries: list[ParsedItem | ParsedVariant] = [item, *item.variants]
        for entry in entries:
            if not entry.sku:
                continue
            key = entry.sku.casefold()
            if key not in seen:
                seen[key] = (sheet, entry.row)
                continue
            other_sheet, other_row = seen[key]
            where = f"sheet {other_sheet!r} row {other_row}" if other_sheet != sheet else f"row {other_row}"
            message = f"SKU {shown(entry.sku)} is also used in {where}"
            problems.warn(DUPLICATE_SKU, message, row=entry.row, column=column)


async def import_knowledge(session: AsyncSession, *, company: Company, data: bytes, filename: str) -> ImportResult:
    """Parse ``data`` (see :func:`parse_knowledge_file`) and replace the company's knowledge base.

    Nothing is written when parsing fails (:class:`KnowledgeImportError` propagates). Otherwise,
    inside the caller's transaction (no commit): a product/service sheet replaces the company's
    ``KnowledgeItem``/``KnowledgeVariant`` rows and a FAQ sheet its ``FaqEntry`` rows; kinds of data
    the file does not hold are kept. Items are matched to existing rows by Shopify handle or by name
    (and variants by name) so their ids, and cart lines pointing at them, survive a re-import.
    Money is stored in minor units of ``company.currency``; ``kind`` is ``"service"`` for a company
    of type ``service`` or a sheet with a duration column. Increments ``company.kb_version`` and adds
    a ``KnowledgeImport`` audit row with status ``"ok"``.
    """
    parsed = parse_knowledge_file(data, filename=filename, currency=company.currency)
    # Bumping the version first locks the company row, so concurrent imports of one company serialise.
    version = (
        await session.execute(
            update(Company)
            .where(Company.id == company.id, Company.tenant_id == company.tenant_id)
            .values(kb_version=Company.kb_version + 1)
            .returning(Company.kb_version)
            .execution_options(synchronize_session=False)
        )
    ).scalar_one()
    set_committed_value(company, "kb_version", version)
    if parsed.items is not None:
        await _replace_items(session, company, parsed.items)
    if parsed.faq is not None:
        await _replace_faq(session, company, parsed.faq)
    result = ImportResult(
        items=len(parsed.items or ()),
        variants=parsed.variant_count,
        faq=len(parsed.faq or ()),
        warnings=parsed.warnings,
    )
    session.add(
        KnowledgeImport(
            tenant_id=company.tenant_id,
            company_id=company.id,
            filename=filename[:500],
            status="ok",
            items=result.items,
            variants=result.variants,
            faq=result.faq,
            error=None,
        )
    )
    await session.flush()
    return result


async def record_failed_import(
    session: AsyncSession, *, company: Company, filename: str, error: KnowledgeImportError | str
) -> KnowledgeImport:
    """Add a ``KnowledgeImport`` audit row with status ``"failed"`` and the error text (call it in a
    new transaction after a refused import; the knowledge base itself is untouched)."""
    row = KnowledgeImport(
        tenant_id=company.tenant_id,
        company_id=company.id,
        filename=filename[:500],
        status="failed",
        items=0,
        variants=0,
        faq=0,
        error=str(error),
    )
    session.add(row)
    await session.flush()
    return row


def _name_key(name: str) -> str:
    return " ".join(name.split()).casefold()


# Rows per DELETE ... WHERE id IN (...): below SQLite's and asyncpg's bound-parameter limits (32,766).
_ID_CHUNK = 5_000
_ITEMS = KnowledgeItem.__table__
_VARIANTS = KnowledgeVariant.__table__
_FAQ = FaqEntry.__table__
_ITEM_FIELDS = ("kind", "handle", "sku", "name", "description", "category", "price_minor", "currency", "stock",
                "duration_minutes", "image_url", "attributes", "position")
_VARIANT_FIELDS = ("item_id", "name", "options", "sku", "price_minor", "stock", "image_url", "position")


async def _replace_items(session: AsyncSession, company: Company, items: tuple[ParsedItem, ...]) -> None:
    """Write ``items`` as the company's items with set-based Core statements (executemany): rows whose
    values changed are updated by id, new ones inserted, and rows no longer in the file deleted (their
    variants and cart lines by the database's ``ON DELETE CASCADE``). Items keep their id when matched
    by Shopify handle, else by name (whitespace and case ignored); variants when matched by name within
    their item. Everything runs in the caller's transaction, so an error leaves nothing written."""
    scope = (_ITEMS.c.tenant_id == company.tenant_id, _ITEMS.c.company_id == company.id)
    existing = {
        row["id"]: row
        for row in (
            await session.execute(select(*(_ITEMS.c[name] for name in ("id", *_ITEM_FIELDS))).where(*scope)
                                  .order_by(_ITEMS.c.position))
        ).mappings()
    }
    by_handle: dict[str, uuid.UUID] = {}
    by_name: dict[str, uuid.UUID] = {}
    for item_id, row in existing.items():
        if row["handle"]:
            by_handle.setdefault(row["handle"], item_id)
        by_name.setdefault(_name_key(row["name"]), item_id)
    old_variants: dict[uuid.UUID, dict[str, dict]] = {}
    variant_rows = await session.execute(
        select(*(_VARIANTS.c[name] for name in ("id", *_VARIANT_FIELDS)))
        .where(_VARIANTS.c.tenant_id == company.tenant_id, _VARIANTS.c.company_id == company.id)
        .order_by(_VARIANTS.c.item_id, _VARIANTS.c.position)
    )
    for row in variant_rows.mappings():
        old_variants.setdefault(row["item_id"], {}).setdefault(_name_key(row["name"]), dict(row))

    owner = {"tenant_id": company.tenant_id, "company_id": company.id}
    kind = "service" if company.type == "service" else None
    used: set[uuid.UUID] = set()
    kept_variants: set[uuid.UUID] = set()
    item_inserts: list[dict] = []
    item_updates: list[dict] = []
    variant_inserts: list[dict] = []
    variant_updates: list[dict] = []
    for position, item in enumerate(items):
        item_id = by_handle.get(item.handle) if item.handle else None
        if item_id is None or item_id in used:
            item_id = by_name.get(_name_key(item.name))
        if item_id is not None and item_id in used:
            item_id = None
        values = {
            "kind": kind or item.kind, "handle": item.handle, "sku": item.sku, "name": item.name,
            "description": item.description, "category": item.category, "price_minor": item.price_minor,
            "currency": company.currency, "stock": item.stock, "duration_minutes": item.duration_minutes,
            "image_url": item.image_url, "attributes": dict(item.attributes), "position": position,
        }
        if item_id is None:
            item_id = uuid.uuid4()
            item_inserts.append({"id": item_id, **owner, **values})
        elif any(existing[item_id][name] != value for name, value in values.items()):
            item_updates.append({"_id": item_id, **values})
        used.add(item_id)
        previous = old_variants.get(item_id, {})
        for index, variant in enumerate(item.variants):
            old = previous.pop(_name_key(variant.name), None)
            values = {
                "item_id": item_id, "name": variant.name, "options": dict(variant.options), "sku": variant.sku,
                "price_minor": variant.price_minor, "stock": variant.stock, "image_url": variant.image_url,
                "position": index,
            }
            if old is None:
                variant_inserts.append({"id": uuid.uuid4(), **owner, **values})
                continue
            kept_variants.add(old["id"])
            if any(old[name] != value for name, value in values.items()):
                variant_updates.append({"_id": old["id"], **values})
    gone_items = [item_id for item_id in existing if item_id not in used]
    gone_variants = [
        row["id"]
        for item_id, rows in old_variants.items()
        if item_id in used
        for row in rows.values()
        if row["id"] not in kept_variants
    ]
    # Order matters: deletions first (a deleted row's name or handle may be taken by a new one), then
    # items before the variants that point at them.
    await _delete_ids(session, _VARIANTS, gone_variants)
    await _delete_ids(session, _ITEMS, gone_items)  # their variants go by ON DELETE CASCADE
    await _update_by_id(session, _ITEMS, _ITEM_FIELDS, item_updates)
    await _insert(session, _ITEMS, item_inserts)
    await _update_by_id(session, _VARIANTS, _VARIANT_FIELDS, variant_updates)
    await _insert(session, _VARIANTS, variant_inserts)


async def _delete_ids(session: AsyncSession, table: SqlTable, ids: list[uuid.UUID]) -> None:
    for start in range(0, len(ids), _ID_CHUNK):
        await session.execute(delete(table).where(table.c.id.in_(ids[start : start + _ID_CHUNK])))


async def _update_by_id(session: AsyncSession, table: SqlTable, fields: tuple[str, ...], rows: list[dict]) -> None:
    """One executemany UPDATE ... WHERE id = :_id over ``rows`` (dicts of ``_id`` and ``fields``)."""
    if rows:
        statement = update(table).where(table.c.id == bindparam("_id")).values({f: bindparam(f) for f in fields})
        await session.execute(statement, rows)


async def _insert(session: AsyncSession, table: SqlTable, rows: list[dict]) -> None:
    """Insert ``rows`` with one executemany INSERT per batch (SQLAlchemy sends multi-row VALUES batches)."""
    if rows:
        now = utcnow()
        for row in rows:
            row.setdefault("created_at", now)
        await session.execute(insert(table), rows)


async def _replace_faq(session: AsyncSession, company: Company, faq: tuple[ParsedFaq, ...]) -> None:
    await session.execute(
        delete(_FAQ).where(_FAQ.c.tenant_id == company.tenant_id, _FAQ.c.company_id == company.id)
    )
    now = utcnow()
    await _insert(
        session,
        _FAQ,
        [
            {"id": uuid.uuid4(), "tenant_id": company.tenant_id, "company_id": company.id, "question": entry.question,
             "answer": entry.answer, "position": position, "created_at": now}
            for position, entry in enumerate(faq)
        ],
    )
