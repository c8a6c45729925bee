"""The credential vault: where secrets live at rest, how they are re-encrypted under a new key
(key rotation) and how they are shown to people (masked).

Every column declared with ``core.models.EncryptedText`` holds ``core.security.SecretBox`` ciphertext;
:func:`encrypted_columns` finds them in ``Base.metadata``, so a table added later is rotated without
changes here.

Rotation (run by ``chatcommerce keys rotate`` or ``POST /api/v1/keys/rotate``): the operator sets the
new key as ``CHATCOMMERCE_SECRET_KEY`` and the old one in ``CHATCOMMERCE_SECRET_KEY_FALLBACKS``
(``MultiFernet``: encrypt with the first key, decrypt with any), runs the rotation, then removes the
fallback. Rows are read in primary-key order in batches, each batch in its own short transaction;
a value already readable with the primary key is left alone (re-running does nothing), and each
update is conditional on the value read (``UPDATE ... WHERE id = :id AND col = :old``), so a secret
replaced meanwhile by a running server (which encrypts with the primary key) is never overwritten.
This is a platform operation: it reads every tenant's rows, and only ever writes each row's own value.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Column, MetaData, Table, bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.db import begin_write
from core.models import Base, EncryptedText
from core.security import SecretBox, mask_secret

DEFAULT_BATCH_SIZE = 200


@dataclass(frozen=True, slots=True)
class EncryptedColumn:
    """One column holding SecretBox ciphertext, and the single-column primary key of its table."""

    table: Table
    column: Column[Any]
    key: Column[Any]

    @property
    def name(self) -> str:
        """``table.column``, e.g. ``inboxes.credentials``."""
        return f"{self.table.name}.{self.column.name}"


def encrypted_columns(metadata: MetaData | None = None) -> list[EncryptedColumn]:
    """Every ``EncryptedText`` column of ``metadata`` (default ``Base.metadata``), in table order.

    Raises ``ValueError`` for an encrypted column in a table without a single-column primary key
    (rotation addresses rows by it)."""
    found: list[EncryptedColumn] = []
    for table in (metadata or Base.metadata).sorted_tables:
        for column in table.columns:
            if isinstance(column.type, EncryptedText):
                keys = list(table.primary_key.columns)
                if len(keys) != 1:
                    raise ValueError(f"{table.name}.{column.name} is encrypted but {table.name} has no "
                                     "single-column primary key")
                found.append(EncryptedColumn(table=table, column=column, key=keys[0]))
    return found


@dataclass(kw_only=True)
class ColumnRotation:
    """What the rotation did to one column: ``rotated`` values re-encrypted under the primary key,
    ``current`` values already under it (untouched), ``changed`` values replaced by someone else
    between read and write (left as they are), ``unreadable`` values no configured key can decrypt
    (left as they are; ``unreadable_ids`` names their rows)."""

    column: str
    rotated: int = 0
    current: int = 0
    changed: int = 0
    unreadable: int = 0
    unreadable_ids: list[str] = field(default_factory=list)
    batches: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON shape: the counts above, ``unreadable_ids`` and ``batches`` (transactions used)."""
        return {"column": self.column, "rotated": self.rotated, "current": self.current, "changed": self.changed,
                "unreadable": self.unreadable, "unreadable_ids": self.unreadable_ids, "batches": self.batches}


@dataclass(kw_only=True)
class RotationReport:
    """Per-column results of one rotation run; ``ok`` is false when some value was unreadable."""

    columns: list[ColumnRotation]

    @property
    def ok(self) -> bool:
        return all(c.unreadable == 0 for c in self.columns)

    def as_dict(self) -> dict[str, Any]:
        """``{"ok", "tables": {"inboxes.credentials": {"rotated", "current", ...}}, "rotated", "current"}``."""
        return {"ok": self.ok, "rotated": sum(c.rotated for c in self.columns),
                "current": sum(c.current for c in self.columns),
                "unreadable": sum(c.unreadable for c in self.columns),
                "tables": {c.column: c.as_dict() for c in self.columns}}


def _plan_batch(box: SecretBox, values: list[tuple[Any, str]]) -> list[tuple[Any, str, str | None]]:
    """``(id, old, new)`` per row: ``new`` is ``old`` when already current, ``None`` when unreadable."""
    out: list[tuple[Any, str, str | None]] = []
    for key, value in values:
        if box.is_current(value):
            out.append((key, value, value))
            continue
        try:
            out.append((key, value, box.rotate(value)))
        except ValueError:
            out.append((key, value, None))
    return out


async def rotate_column(
    sessionmaker: async_sessionmaker[AsyncSession], target: EncryptedColumn, *, box: SecretBox,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> ColumnRotation:
    """Re-encrypt every non-NULL value of ``target`` under ``box``'s primary key, ``batch_size`` rows
    per transaction (keyset pagination on the primary key). The Fernet work of a batch runs in a worker
    thread. Never raises for an unreadable value: it is counted and left in place."""
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    result = ColumnRotation(column=target.name)
    statement = (update(target.table)
                 .where(target.key == bindparam("_key"), target.column == bindparam("_old"))
                 .values({target.column.name: bindparam("_new")}))
    params: list[dict[str, Any]] = []
    last: Any = None
    while True:
        async with sessionmaker() as session, session.begin():
            await begin_write(session)  # SQLite: take the write lock before reading (no stale snapshot)
            query = (select(target.key, target.column).where(target.column.is_not(None))
                     .order_by(target.key).limit(batch_size))
            if last is not None:
                query = query.where(target.key > last)
            rows = [(r[0], r[1]) for r in (await session.execute(query)).all()]
            if not rows:
                return result
            result.batches += 1
            planned = await asyncio.to_thread(_plan_batch, box, rows)
            changes: dict[Any, str] = {}
            for key, old, new in planned:
                if new is None:
                    result.unreadable += 1
                    result.unreadable_ids.append(str(key))
                elif new == old:
                    result.current += 1
                else:
                    changes[key] = new
                    params.append({"_key": key, "_old": old, "_new": new})
            if params:
                # One compare-and-set UPDATE per row, sent as one executemany; then read back which
                # rows now hold the new value (drivers do not all count executemany rows).
                await session.execute(statement, params)
                now = dict((await session.execute(
                    select(target.key, target.column).where(target.key.in_(list(changes)))
                )).all())
                done = sum(1 for key, value in changes.items() if now.get(key) == value)
                result.rotated += done
                result.changed += len(changes) - done
                params.clear()
            last = rows[-1][0]


async def rotate_all(
    sessionmaker: async_sessionmaker[AsyncSession], *, box: SecretBox, batch_size: int = DEFAULT_BATCH_SIZE,
    metadata: MetaData | None = None,
) -> RotationReport:
    """Rotate every encrypted column of ``metadata`` (default ``Base.metadata``); see the module doc."""
    columns = [await rotate_column(sessionmaker, target, box=box, batch_size=batch_size)
               for target in encrypted_columns(metadata)]
    return RotationReport(columns=columns)


# -- masking ---------------------------------------------------------------------------------------


def mask_mapping(values: Mapping[str, Any]) -> dict[str, Any]:
    """Every string value masked (``core.security.mask_secret``: ``"••••"`` + last 4 characters),
    nested objects masked recursively, other scalars (numbers, booleans) replaced by ``"••••"``."""
    out: dict[str, Any] = {}
    for name, value in values.items():
        out[name] = mask_mapping(value) if isinstance(value, Mapping) else mask_secret(value)
    return out


def masked_credentials(ciphertext: str | None, *, decrypt: Callable[[str], str]) -> dict[str, Any] | None:
    """The masked view of a stored JSON-object secret (``{"bot_token": "••••a1b2"}``): ``None`` when
    nothing is stored, ``{"unreadable": true}`` when the configured keys cannot decrypt it (the
    ciphertext itself is never shown)."""
    if not ciphertext:
        return None
    try:
        data = json.loads(decrypt(ciphertext))
    except (ValueError, TypeError):
        return {"unreadable": True}
    if not isinstance(data, Mapping):
        return {"value": mask_secret(data if isinstance(data, str) else "")}
    return mask_mapping(data)
