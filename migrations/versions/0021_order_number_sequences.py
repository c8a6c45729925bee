"""order number sequences

PostgreSQL: one sequence per company numbers its orders (``core.order_numbers``), instead of the
highest number plus one under a lock on the company row, which every checkout of the company held
until its transaction ended, payment provider call included. Each existing company gets its sequence,
starting after its highest order number. SQLite: nothing (writers are serialised there).

Revision ID: 0021
Revises: 0020
"""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from alembic import op

from core.order_numbers import FIRST_ORDER_NUMBER, create_sequence_sql, order_number_sequence

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    rows = bind.execute(sa.text(
        "SELECT companies.id, max(orders.number) FROM companies LEFT JOIN orders ON orders.company_id = companies.id "
        "GROUP BY companies.id")).all()
    for company_id, highest in rows:
        start = max(int(highest) + 1, 1) if highest is not None else FIRST_ORDER_NUMBER
        op.execute(create_sequence_sql(uuid.UUID(str(company_id)), start=start))


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    for (company_id,) in bind.execute(sa.text("SELECT id FROM companies")).all():
        op.execute(f"DROP SEQUENCE IF EXISTS {order_number_sequence(uuid.UUID(str(company_id)))}")
