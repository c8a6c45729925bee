"""Per-company order numbers on PostgreSQL: one sequence per company, ``order_numbers_<company hex>``.

``nextval`` takes no lock and is never rolled back (PostgreSQL docs, "Sequence Manipulation
Functions"), so checkouts of one company never wait for each other, whatever else their transactions
do (a payment provider's call); a rolled-back checkout leaves a gap in the numbers. The sequence is
made with the company (``core.accounts.create_company``; migration 0021 for older companies) and
dropped with it. On SQLite, which serialises writers, numbers are the highest plus one
(``commerce.orders.insert_with_next_number``) and nothing here does anything.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

FIRST_ORDER_NUMBER = 1001


def order_number_sequence(company_id: uuid.UUID) -> str:
    """The name of the sequence that numbers the company's orders: ``order_numbers_<company id as 32
    hex digits>`` (45 characters; PostgreSQL allows 63). Safe to put into SQL as it is."""
    return f"order_numbers_{company_id.hex}"


def create_sequence_sql(company_id: uuid.UUID, *, start: int = FIRST_ORDER_NUMBER) -> str:
    """``CREATE SEQUENCE IF NOT EXISTS …`` for the company, its first value ``start`` (DDL takes no
    bound parameters: the name is hex digits and ``start`` an int)."""
    return f"CREATE SEQUENCE IF NOT EXISTS {order_number_sequence(company_id)} START WITH {int(start)} MINVALUE 1"


async def create_order_numbers(session: AsyncSession, company_id: uuid.UUID, *,
                               start: int = FIRST_ORDER_NUMBER) -> None:
    """Make the company's sequence in the caller's transaction (PostgreSQL; nothing on SQLite). A
    sequence made inside a checkout's transaction would make the company's other first checkouts wait
    for that transaction: companies get theirs when they are created."""
    if (await session.connection()).dialect.name == "postgresql":
        await session.execute(text(create_sequence_sql(company_id, start=start)))


async def drop_order_numbers(session: AsyncSession, company_ids: Iterable[uuid.UUID]) -> None:
    """Drop the sequences of deleted companies in the caller's transaction (PostgreSQL's DDL is
    transactional; nothing on SQLite)."""
    if (await session.connection()).dialect.name != "postgresql":
        return
    for company_id in company_ids:
        await session.execute(text(f"DROP SEQUENCE IF EXISTS {order_number_sequence(company_id)}"))
