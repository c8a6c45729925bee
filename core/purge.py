"""Deleting every row of a tenant or of one company, found generically from ``Base.metadata``.

No table is listed here: a row belongs to the tenant being deleted when its table has a
``tenant_id`` column equal to it, and to the company being deleted when its table has a
``company_id`` column equal to it (and the same ``tenant_id``, when the table has one). A table with
neither column is reached through its foreign keys: its rows go with a parent row being deleted
when the foreign key cascades (``ON DELETE CASCADE``) or cannot be NULL. So a table added later is
covered as soon as it carries ``tenant_id``/``company_id`` or such a foreign key; rows that merely
point at deleted rows through an ``ON DELETE SET NULL`` key stay (with the key nulled by the
database), as their owners designed.

Rows are deleted children first (reverse ``Base.metadata.sorted_tables`` order) with one
``DELETE ... WHERE`` per table, and counted per table. The caller owns the transaction (all or
nothing) and disconnects channels and removes files (``api.tenant_data``).
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from sqlalchemy import ColumnElement, MetaData, Table, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.models import Base, Company, Tenant

Scope = Literal["tenant", "company"]


def ownership(
    *, kind: Scope, tenant_id: uuid.UUID, company_id: uuid.UUID | None = None, metadata: MetaData | None = None
) -> dict[Table, ColumnElement[bool]]:
    """For each table holding rows of the tenant (``kind="tenant"``) or of the company
    (``kind="company"``, ``company_id`` required), the SQL condition selecting those rows; tables
    without any are absent. Tables come parents first (``sorted_tables`` order)."""
    meta = metadata or Base.metadata
    if kind == "company" and company_id is None:
        raise ValueError("company_id is required to delete a company")
    root = Company.__table__ if kind == "company" else Tenant.__table__
    root_id = company_id if kind == "company" else tenant_id
    direct = "company_id" if kind == "company" else "tenant_id"
    found: dict[Table, ColumnElement[bool]] = {}
    for table in meta.sorted_tables:
        condition = _condition(table, root=root, root_id=root_id, direct=direct, tenant_id=tenant_id,
                               kind=kind, found=found)
        if condition is not None:
            found[table] = condition
    return found


def _condition(
    table: Table, *, root: Any, root_id: Any, direct: str, tenant_id: uuid.UUID, kind: Scope,
    found: dict[Table, ColumnElement[bool]],
) -> ColumnElement[bool] | None:
    if table.name == root.name:
        condition = table.c.id == root_id
        return condition & (table.c.tenant_id == tenant_id) if kind == "company" else condition
    if direct in table.c:
        condition = table.c[direct] == root_id
        if kind == "company" and "tenant_id" in table.c:
            condition = condition & (table.c.tenant_id == tenant_id)
        return condition
    via: list[ColumnElement[bool]] = []
    for fk in table.foreign_keys:
        parent = fk.column.table
        if parent is table or parent not in found:
            continue
        if (fk.ondelete or "").upper() == "CASCADE" or not fk.parent.nullable:
            via.append(fk.parent.in_(select(fk.column).where(found[parent])))
    return or_(*via) if via else None


async def count_rows(session: AsyncSession, conditions: dict[Table, ColumnElement[bool]]) -> dict[str, int]:
    """How many rows each condition selects now (tables with none left out)."""
    counts: dict[str, int] = {}
    for table, condition in conditions.items():
        n = (await session.execute(select(func.count()).select_from(table).where(condition))).scalar_one()
        if n:
            counts[table.name] = int(n)
    return counts


async def delete_rows(session: AsyncSession, conditions: dict[Table, ColumnElement[bool]]) -> dict[str, int]:
    """Delete the selected rows, children first; returns rows deleted per table (tables with none
    left out). Nullable restricting foreign keys pointing at deleted rows are set to NULL first.
    Raises ``sqlalchemy.exc.IntegrityError`` when a row outside the selection still points at a
    deleted one through a NOT NULL restricting foreign key (nothing is deleted once the caller rolls
    back)."""
    await _detach(session, conditions)
    removed: dict[str, int] = {}
    for table in reversed(list(conditions)):
        result = await session.execute(delete(table).where(conditions[table]))
        count = int(result.rowcount or 0)  # type: ignore[attr-defined]
        if count:
            removed[table.name] = count
    return removed


async def _detach(session: AsyncSession, conditions: dict[Table, ColumnElement[bool]]) -> None:
    """NULL every nullable, non-cascading foreign key that points at a row about to be deleted, so a
    restricting key (no ``ON DELETE``) does not block the deletion; ``SET NULL`` keys would end the
    same way. Such keys never decide ownership (see :func:`ownership`), so this changes no selection."""
    for table in _all_tables(conditions):
        for fk in table.foreign_keys:
            parent = fk.column.table
            if parent not in conditions or parent is table or not fk.parent.nullable:
                continue
            if (fk.ondelete or "").upper() in ("CASCADE", "SET NULL"):
                continue
            await session.execute(update(table).where(fk.parent.in_(select(fk.column).where(conditions[parent])))
                                  .values({fk.parent.name: None}))


def _all_tables(conditions: dict[Table, ColumnElement[bool]]) -> list[Table]:
    """Every table of the metadata the selected tables belong to."""
    if not conditions:
        return []
    return list(next(iter(conditions)).metadata.sorted_tables)
