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
from knowledge.parsed import ParsedFaq, ParsedItem, ParsedKnowledge

# How often the plan is made again when another import of the company committed in between.
ATTEMPTS = 5
_CHUNK = 5000


class ConcurrentImportError(RuntimeError):
    """The company's knowledge base kept changing while this import was being written."""


@dataclass
class _Plan:
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
    existing = (
        await session.execute(
            select(KnowledgeItem.id, KnowledgeItem.handle, KnowledgeItem.name)
            .where(KnowledgeItem.tenant_id == company.tenant_id, KnowledgeItem.company_id == company.id)
            .order_by(KnowledgeItem.position)
        )
    ).all()
    variants_of: dict[uuid.UUID, dict[str, uuid.UUID]] = defaultdict(dict)
    for variant_id, item_id, name in (
        await session.execute(
            select(KnowledgeVariant.id, KnowledgeVariant.item_id, KnowledgeVariant.name)
            .where(KnowledgeVariant.tenant_id == company.tenant_id, KnowledgeVariant.company_id == company.id)
            .order_by(KnowledgeVariant.position)
        )
    ).all():
        variants_of[item_id][_name_key(name)] = variant_id
    by_handle: dict[str, uuid.UUID] = {}
    by_name: dict[str, uuid.UUID] = {}
    for item_id, handle, name in existing:
        if handle:
            by_handle.setdefault(handle, item_id)
        by_name.setdefault(_name_key(name), item_id)
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
            plan.update_items.append(_item_row(item_id, item, company=company, position=position))
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
            else:
                plan.update_variants.append({"id": variant_id, **row})
        plan.delete_variants.extend(old.values())
    plan.delete_items = [item_id for item_id, _handle, _name in existing if item_id not in used]
    return plan


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
    for rows in _chunks(plan.insert_items):
        await session.execute(insert(items), rows)
    for rows in _chunks(plan.update_variants):
        await session.execute(_update_by_id(variants, rows[0]), [_keyed(row) for row in rows])
    for rows in _chunks(plan.insert_variants):
        await session.execute(insert(variants), rows)


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
