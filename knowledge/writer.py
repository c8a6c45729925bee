"""Writing a parsed knowledge file into the database with bulk statements.

A 100,000-item catalogue written object by object through the ORM's unit of work takes many seconds
of CPU inside the transaction, and on SQLite every other writer (every tenant's chat) waits for it.
Here the plan (which rows to insert, update and delete) is made from a light read of the existing ids
and names *before* the first write, and then carried out with a few executemany statements, so the
write transaction is short. A concurrent import of the same company is detected by the version check
(``kb_version`` is bumped only if it is still the value the plan was made from) and the plan is made
again.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.models import Company, FaqEntry, KnowledgeItem, KnowledgeVariant
from core.timeutil import utcnow
from knowledge.parsed import ParsedFaq, ParsedItem, ParsedKnowledge

# How often the plan is made again when another import of the company committed in between.
ATTEMPTS = 5
_CHUNK = 5000


class ConcurrentImportError(RuntimeError):
    """The company's knowledge base kept changing while this import was being written."""


@dataclass
class _Plan:
    # SQLite: INSERTs rendered to driver SQL and driver values before the write lock is taken.
    prepared_items: tuple[str, list[tuple[Any, ...]]] | None = None
    prepared_variants: tuple[str, list[tuple[Any, ...]]] | None = None
    insert_items: list[dict[str, Any]] = field(default_factory=list)
    update_items: list[dict[str, Any]] = field(default_factory=list)
    delete_items: list[uuid.UUID] = field(default_factory=list)
    insert_variants: list[dict[str, Any]] = field(default_factory=list)
    update_variants: list[dict[str, Any]] = field(default_factory=list)
    delete_variants: list[uuid.UUID] = field(default_factory=list)


async def write_knowledge(session: AsyncSession, *, company: Company, parsed: ParsedKnowledge) -> int:
    """Replace the company's items/variants (when ``parsed.items`` is not ``None``) and FAQ (when
    ``parsed.faq`` is not ``None``) inside the caller's transaction, bump ``company.kb_version`` and
    return the new version.

    Items are matched to existing rows by Shopify handle, else by name (whitespace and case ignored),
    and variants by name within their item, so ids (and cart lines pointing at them) survive a
    re-import; unmatched old rows are deleted (the database cascades to their variants and cart
    lines). ``kind`` is ``"service"`` for a company of type ``service``; money is in minor units of
    ``company.currency``. Raises :class:`ConcurrentImportError` when another import of the company
    commits between planning and writing :data:`ATTEMPTS` times in a row.
    """
    for _ in range(ATTEMPTS):
        seen = (
            await session.execute(
                select(Company.kb_version).where(Company.id == company.id, Company.tenant_id == company.tenant_id)
            )
        ).scalar_one()
        plan = await _plan_items(session, company, parsed.items) if parsed.items is not None else None
        if plan is not None:
            dialect = (await session.connection()).dialect
            if dialect.name == "sqlite":  # one writer at a time: keep its lock as short as possible
                plan.prepared_items = _prepare_insert(dialect, KnowledgeItem.__table__, plan.insert_items)
                plan.prepared_variants = _prepare_insert(dialect, KnowledgeVariant.__table__, plan.insert_variants)
        # The first write: on SQLite it takes the write lock, on PostgreSQL it locks the company row;
        # either way concurrent imports of one company serialise here.
        version = (
            await session.execute(
                update(Company)
                .where(Company.id == company.id, Company.tenant_id == company.tenant_id, Company.kb_version == seen)
                .values(kb_version=seen + 1)
                .returning(Company.kb_version)
                .execution_options(synchronize_session=False)
            )
        ).scalar_one_or_none()
        if version is not None:
            break
    else:
        raise ConcurrentImportError(f"the knowledge base of company {company.id} kept changing during the import")
    if plan is not None:
        await _apply(session, plan)
    if parsed.faq is not None:
        await _replace_faq(session, company, parsed.faq)
    _forget_loaded_rows(session, company)
    return version


def _name_key(name: str) -> str:
    return " ".join(name.split()).casefold()


async def _plan_items(session: AsyncSession, company: Company, items: tuple[ParsedItem, ...]) -> _Plan:
    item_table, variant_table = KnowledgeItem.__table__, KnowledgeVariant.__table__
    existing = [
        dict(row._mapping)
        for row in await session.execute(
            select(item_table)
            .where(item_table.c.tenant_id == company.tenant_id, item_table.c.company_id == company.id)
            .order_by(item_table.c.position)
        )
    ]
    stored: dict[uuid.UUID, dict[str, Any]] = {row["id"]: row for row in existing}
    variants_of: dict[uuid.UUID, dict[str, uuid.UUID]] = defaultdict(dict)
    for row in await session.execute(
        select(variant_table)
        .where(variant_table.c.tenant_id == company.tenant_id, variant_table.c.company_id == company.id)
        .order_by(variant_table.c.position)
    ):
        values = dict(row._mapping)
        stored[values["id"]] = values
        variants_of[values["item_id"]][_name_key(values["name"])] = values["id"]
    by_handle: dict[str, uuid.UUID] = {}
    by_name: dict[str, uuid.UUID] = {}
    for row in existing:
        if row["handle"]:
            by_handle.setdefault(row["handle"], row["id"])
        by_name.setdefault(_name_key(row["name"]), row["id"])
    plan = _Plan()
    used: set[uuid.UUID] = set()
    for position, item in enumerate(items):
        item_id = by_handle.get(item.handle) if item.handle else None
        if item_id is None or item_id in used:
            item_id = by_name.get(_name_key(item.name))
        if item_id is None or item_id in used:
            item_id = uuid.uuid4()
            plan.insert_items.append(_item_row(item_id, item, company=company, position=position))
        else:
            row = _item_row(item_id, item, company=company, position=position)
            if _changed(row, stored[item_id]):
                plan.update_items.append(row)
        used.add(item_id)
        old = variants_of.pop(item_id, {})
        for index, variant in enumerate(item.variants):
            variant_id = old.pop(_name_key(variant.name), None)
            row = {
                "tenant_id": company.tenant_id, "company_id": company.id, "item_id": item_id, "name": variant.name,
                "options": dict(variant.options), "sku": variant.sku, "price_minor": variant.price_minor,
                "stock": variant.stock, "image_url": variant.image_url, "position": index,
            }
            if variant_id is None:
                plan.insert_variants.append({"id": uuid.uuid4(), **row})
            elif _changed(row, stored[variant_id]):
                plan.update_variants.append({"id": variant_id, **row})
        plan.delete_variants.extend(old.values())
    plan.delete_items = [row["id"] for row in existing if row["id"] not in used]
    return plan


def _changed(row: dict[str, Any], stored: dict[str, Any]) -> bool:
    """Whether writing ``row`` would change the stored row (unchanged rows are not written again)."""
    return any(stored.get(name) != value for name, value in row.items())


def _item_row(item_id: uuid.UUID, item: ParsedItem, *, company: Company, position: int) -> dict[str, Any]:
    return {
        "id": item_id, "tenant_id": company.tenant_id, "company_id": company.id,
        "kind": "service" if company.type == "service" else item.kind, "handle": item.handle, "sku": item.sku,
        "name": item.name, "description": item.description, "category": item.category,
        "price_minor": item.price_minor, "currency": company.currency, "stock": item.stock,
        "duration_minutes": item.duration_minutes, "image_url": item.image_url,
        "attributes": dict(item.attributes), "position": position,
    }


def _chunks(rows: list[Any]) -> list[list[Any]]:
    return [rows[start : start + _CHUNK] for start in range(0, len(rows), _CHUNK)]


async def _apply(session: AsyncSession, plan: _Plan) -> None:
    """Core executemany statements on the tables (the ORM's per-row bookkeeping is what is slow)."""
    items, variants = KnowledgeItem.__table__, KnowledgeVariant.__table__
    # Variants of deleted items go with them (ON DELETE CASCADE), as do cart lines.
    for ids in _chunks(plan.delete_variants):
        await session.execute(delete(variants).where(variants.c.id.in_(ids)))
    for ids in _chunks(plan.delete_items):
        await session.execute(delete(items).where(items.c.id.in_(ids)))
    for rows in _chunks(plan.update_items):
        await session.execute(_update_by_id(items, rows[0]), [_keyed(row) for row in rows])
    await _insert(session, items, plan.insert_items, plan.prepared_items)
    for rows in _chunks(plan.update_variants):
        await session.execute(_update_by_id(variants, rows[0]), [_keyed(row) for row in rows])
    await _insert(session, variants, plan.insert_variants, plan.prepared_variants)


async def _insert(
    session: AsyncSession, table: Any, rows: list[dict[str, Any]], prepared: tuple[str, list[tuple[Any, ...]]] | None
) -> None:
    if prepared is not None:
        sql, params = prepared
        connection = await session.connection()
        for chunk in _chunks(params):
            await connection.exec_driver_sql(sql, chunk)
        return
    for chunk in _chunks(rows):
        await session.execute(insert(table), chunk)


def _prepare_insert(dialect: Any, table: Any, rows: list[dict[str, Any]]) -> tuple[str, list[tuple[Any, ...]]] | None:
    """The INSERT of ``rows`` as driver SQL and driver values (each column's bind processor applied,
    ``created_at`` filled in), i.e. what Core would send, computed now rather than under the lock."""
    if not rows:
        return None
    names = list(rows[0]) + ([] if "created_at" in rows[0] else ["created_at"])
    compiled = insert(table).values({name: bindparam(name) for name in names}).compile(dialect=dialect)
    order = list(compiled.positiontup or ())
    processors = [table.c[name].type.bind_processor(dialect) for name in order]
    now = utcnow()
    params = []
    for row in rows:
        values = []
        for name, processor in zip(order, processors, strict=True):
            value = row.get(name, now) if name == "created_at" else row[name]
            values.append(processor(value) if processor is not None else value)
        params.append(tuple(values))
    return str(compiled), params


def _update_by_id(table: Any, sample: dict[str, Any]) -> Any:
    """``UPDATE table SET col = :v_col ... WHERE id = :v_id`` for rows shaped like ``sample``."""
    return (
        update(table)
        .where(table.c.id == bindparam("v_id"))
        .values({name: bindparam(f"v_{name}") for name in sample if name != "id"})
    )


def _keyed(row: dict[str, Any]) -> dict[str, Any]:
    return {f"v_{name}": value for name, value in row.items()}


async def _replace_faq(session: AsyncSession, company: Company, faq: tuple[ParsedFaq, ...]) -> None:
    await session.execute(
        delete(FaqEntry)
        .where(FaqEntry.tenant_id == company.tenant_id, FaqEntry.company_id == company.id)
        .execution_options(synchronize_session=False)
    )
    rows = [
        {"id": uuid.uuid4(), "tenant_id": company.tenant_id, "company_id": company.id, "question": entry.question,
         "answer": entry.answer, "position": position}
        for position, entry in enumerate(faq)
    ]
    for chunk in _chunks(rows):
        await session.execute(insert(FaqEntry.__table__), chunk)


def _forget_loaded_rows(session: AsyncSession, company: Company) -> None:
    """Bulk statements bypass the identity map: drop this company's knowledge rows already loaded in
    the session so that later queries read what was written."""
    for obj in list(session.identity_map.values()):
        if isinstance(obj, KnowledgeItem | KnowledgeVariant | FaqEntry) and obj.company_id == company.id:
            session.expunge(obj)
