"""Knowledge-base import: parse an uploaded CSV/TSV/TXT/XLSX file (Shopify product export, an owner's
own product/service sheet, FAQ sheets) and replace the company's knowledge base with it.

``parse_knowledge_file`` is pure; ``import_knowledge`` writes inside the caller's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from core.models import Company, KnowledgeImport
from knowledge.columns import ColumnMap, accepted, cell_text, map_columns, normalize_header
from knowledge.errors import MAX_REPORTED, ImportIssue, KnowledgeImportError
from knowledge.limits import ImportLimits
from knowledge.owner import parse_faq, parse_products
from knowledge.parsed import ParsedFaq, ParsedItem, ParsedKnowledge, ParsedVariant
from knowledge.prices import shown
from knowledge.problems import DUPLICATE_SKU, SKIPPED_SHEET, KnowledgeWarning, Problems
from knowledge.sheets import Progress, Table, read_tables
from knowledge.shopify import is_shopify, parse_shopify
from knowledge.writer import write_knowledge

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


def parse_knowledge_file(
    data: bytes,
    *,
    filename: str,
    currency: str,
    limits: ImportLimits | None = None,
    on_progress: Progress | None = None,
) -> ParsedKnowledge:
    """Parse an uploaded knowledge file without touching the database.

    ``data`` is the raw upload; ``filename`` decides the format by extension (``.csv``, ``.tsv``,
    ``.txt``, ``.xlsx``; a workbook is also recognised by content); ``currency`` is the company's
    ISO-4217 code, used to turn prices into minor units. Each table (a CSV file, or each worksheet of
    a workbook) is recognised by its header row (searched in the first rows): a Shopify product
    export, an owner's product/service sheet (needs a name column) or a FAQ sheet (question and
    answer). Worksheets with no recognisable header at all are skipped with a warning when another
    worksheet is recognised. ``limits`` (size, rows, columns, cell length) default to
    :class:`ImportLimits`; ``on_progress(rows_done, total_rows)`` reports rows read
    (see :func:`knowledge.sheets.read_tables`). CPU-bound and synchronous: never call it on the event
    loop (``knowledge.import_jobs`` runs it in a worker process or thread).

    Returns :class:`ParsedKnowledge` (``items``/``faq`` are ``None`` when the file has no such sheet)
    with ``warnings`` (:class:`KnowledgeWarning`, at most :data:`MAX_REPORTED` then a "... and N
    more" one): skipped sheets and unpublished products, columns whose values were dropped, SKUs
    used twice, text cells that start like a formula (``=``, ``+``, ``-``, ``@``; imported as text),
    names longer than :data:`~knowledge.limits.LONG_NAME_WARNING` characters.

    Raises :class:`KnowledgeImportError` naming row, column and (for workbooks) sheet of every
    problem found (``errors``, up to :data:`MAX_REPORTED`, and ``total``): empty or unsupported
    file, wrong encoding, no name column, empty/non-numeric/negative price, bad quantity or
    duration, values beyond the database columns (:mod:`knowledge.limits`), repeated names;
    :class:`knowledge.limits.ImportLimitError` (a ``KnowledgeImportError`` naming the limit) for a
    file beyond ``limits``.
    """
    currency = currency.upper()
    problems = Problems()
    sheets = _recognise(read_tables(data, filename=filename, limits=limits, on_progress=on_progress), problems)
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


async def import_knowledge(
    session: AsyncSession, *, company: Company, data: bytes, filename: str, parsed: ParsedKnowledge | None = None
) -> ImportResult:
    """Parse ``data`` (see :func:`parse_knowledge_file`) and replace the company's knowledge base.

    Nothing is written when parsing fails (:class:`KnowledgeImportError` propagates). Otherwise,
    inside the caller's transaction (no commit): a product/service sheet replaces the company's
    ``KnowledgeItem``/``KnowledgeVariant`` rows and a FAQ sheet its ``FaqEntry`` rows; kinds of data
    the file does not hold are kept. Items are matched to existing rows by Shopify handle or by name
    (and variants by name) so their ids, and cart lines pointing at them, survive a re-import.
    Money is stored in minor units of ``company.currency``; ``kind`` is ``"service"`` for a company
    of type ``service`` or a sheet with a duration column. Increments ``company.kb_version`` and adds
    a ``KnowledgeImport`` audit row with status ``"ok"``.

    ``parsed`` is a result of :func:`parse_knowledge_file` made beforehand (off the event loop, in
    ``company.currency``); ``data`` is then not read. Without it ``data`` is parsed here, on the
    calling thread.
    """
    if parsed is None:
        parsed = parse_knowledge_file(data, filename=filename, currency=company.currency)
    elif parsed.currency != company.currency.upper():
        raise ValueError(f"parsed in {parsed.currency}, but the company's currency is {company.currency}")
    # Bulk statements after a light read (knowledge.writer): the write transaction stays short.
    version = await write_knowledge(session, company=company, parsed=parsed)
    set_committed_value(company, "kb_version", version)
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
