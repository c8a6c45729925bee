"""Test helper: put one row of a company into EVERY table of ``Base.metadata``, generically.

Tables are filled parents first; each column gets ``tenant_id``/``company_id`` of the company, a
foreign key the row made for the same company in the parent table, or a made-up value of its type
(unique-looking strings, so unique constraints hold). It knows no table by name, so a table added
to the schema later is filled too, and the deletion tests then check it.

``FilledRow.owned`` says whether the row is company data by the rule the issue states, decided here
row by row (not with ``core.purge``'s SQL): it names the company (``company_id``) or hangs off an
owned row through a foreign key that cascades or cannot be NULL. Rows that are not owned (a
tenant-level table such as ``webhook_events``) belong to the tenant only.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Enum, Table, TypeDecorator, insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.models import Base, EncryptedText

SKIPPED_TABLES = ("tenants", "companies")  # made through the API


@dataclass(frozen=True)
class FilledRow:
    table: str
    key: dict[str, Any]
    owned: bool


def _value(table: Table, column: Any, *, encrypt: Callable[[str], str]) -> Any:
    if isinstance(column.type, EncryptedText):
        return encrypt(json.dumps({"token": f"filler-secret-{uuid.uuid4().hex}"}))
    sql_type = column.type.impl_instance if isinstance(column.type, TypeDecorator) else column.type
    if isinstance(sql_type, Enum) and sql_type.enums:
        return sql_type.enums[0]
    try:
        kind = sql_type.python_type
    except NotImplementedError:
        kind = str
    if kind is uuid.UUID:
        return uuid.uuid4()
    if kind is bool:
        return False
    if kind is int:
        return uuid.uuid4().int % 1_000_000_000
    if kind is datetime:
        return datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    if kind is dict:
        return {}
    if kind is list:
        return []
    length = getattr(sql_type, "length", None) or 32
    return uuid.uuid4().hex[:length]


async def fill_company(session: AsyncSession, *, tenant_id: uuid.UUID, company_id: uuid.UUID,
                       encrypt: Callable[[str], str]) -> tuple[list[FilledRow], list[str]]:
    """Insert one row per table for the company; returns the rows and the tables it could not fill
    (a NOT NULL foreign key to a table it could not fill)."""
    made: dict[str, tuple[dict[str, Any], bool]] = {}
    rows: list[FilledRow] = []
    skipped: list[str] = []
    for table in Base.metadata.sorted_tables:
        if table.name in SKIPPED_TABLES:
            continue
        values: dict[str, Any] = {}
        owned = "company_id" in table.c
        possible = True
        for column in table.columns:
            fks = list(column.foreign_keys)
            if column.name == "tenant_id":
                values[column.name] = tenant_id
            elif column.name == "company_id":
                values[column.name] = company_id
            elif fks:
                target = fks[0].column
                if target.table.name == "tenants":
                    values[column.name] = tenant_id
                elif target.table.name == "companies":
                    values[column.name] = company_id
                    owned = True
                elif target.table.name in made and target.table is not table:
                    parent_key, parent_owned = made[target.table.name]
                    values[column.name] = parent_key[target.name]
                    cascades = (fks[0].ondelete or "").upper() == "CASCADE" or not column.nullable
                    owned = owned or (parent_owned and cascades)
                elif not column.nullable:
                    possible = False
            elif column.primary_key or (not column.nullable and column.default is None
                                        and column.server_default is None):
                values[column.name] = _value(table, column, encrypt=encrypt)
        if not possible:
            skipped.append(table.name)
            continue
        await session.execute(insert(table).values(values))
        key = {c.name: values[c.name] for c in table.columns if c.name in values}
        made[table.name] = (key, owned)
        rows.append(FilledRow(table=table.name, key={c.name: values[c.name] for c in table.primary_key.columns},
                              owned=owned))
    return rows, skipped
