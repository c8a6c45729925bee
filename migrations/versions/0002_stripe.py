"""stripe payments and connect

Adds the company's Stripe Connect account (id + onboarding state) and the ``webhook_events`` table
(one row per handled provider event, unique per ``(provider, event_id)``).

SQLite: every operation here is one SQLite supports natively (ADD COLUMN with a constant default,
CREATE INDEX, CREATE TABLE), so batch mode never copies ``companies``. A copy would be harmful: with
``PRAGMA foreign_keys=ON`` the ``DROP TABLE`` of the copy cycle cascades to the rows referencing
companies. The downgrade uses ``ALTER TABLE ... DROP COLUMN`` (SQLite >= 3.35) for the same reason.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_COMPANY_COLUMNS = ("stripe_details_submitted", "stripe_charges_enabled", "stripe_account_id")


def upgrade() -> None:
    with op.batch_alter_table("companies", recreate="never") as batch_op:
        batch_op.add_column(sa.Column("stripe_account_id", sa.String(length=64), nullable=True))
        batch_op.add_column(
            sa.Column("stripe_charges_enabled", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.add_column(
            sa.Column("stripe_details_submitted", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
        batch_op.create_index("ix_companies_stripe_account_id", ["stripe_account_id"], unique=True)

    op.create_table(
        "webhook_events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("event_type", sa.String(length=100), nullable=False),
        sa.Column("account", sa.String(length=64), nullable=True),
        sa.Column("tenant_id", sa.Uuid(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("provider", "event_id", name="uq_webhook_event"),
    )
    with op.batch_alter_table("webhook_events", recreate="never") as batch_op:
        batch_op.create_index("ix_webhook_events_tenant_id", ["tenant_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("webhook_events", recreate="never") as batch_op:
        batch_op.drop_index("ix_webhook_events_tenant_id")
    op.drop_table("webhook_events")
    with op.batch_alter_table("companies", recreate="never") as batch_op:
        batch_op.drop_index("ix_companies_stripe_account_id")
    if op.get_bind().dialect.name == "sqlite":
        for column in _COMPANY_COLUMNS:
            op.execute(f"ALTER TABLE companies DROP COLUMN {column}")
    else:
        for column in _COMPANY_COLUMNS:
            op.drop_column("companies", column)
