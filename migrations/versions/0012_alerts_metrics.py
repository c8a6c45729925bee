"""alerts, lead sources and no-shows

Adds the alert outbox: ``alert_subscriptions`` (who of a company is told about which events, by
e-mail, Telegram or a signed webhook), ``alert_events`` (written in the same transaction as the change
that causes them), ``alert_deliveries`` (one event to one subscription, claimed before sending) and
``alert_delivery_attempts`` (every call to the provider). ``conversations.lead_source`` records the
campaign code of a conversation's first message. A booking may now be ``no_show`` (a status value
only: the column is a plain string, nothing to alter).

Revision ID: 0012
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def _owned() -> list[sa.Column]:
    return [
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    ]


def upgrade() -> None:
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("lead_source", sa.String(length=64), nullable=True))
        batch_op.create_index(batch_op.f("ix_conversations_lead_source"), ["lead_source"], unique=False)

    op.create_table(
        "alert_subscriptions",
        sa.Column("company_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("target", sa.String(length=2000), nullable=False),
        sa.Column("events", sa.JSON(), nullable=False),
        sa.Column("secret", sa.Text(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        *_owned(),
        sa.ForeignKeyConstraint(["company_id"], ["companies.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("alert_subscriptions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alert_subscriptions_company_id"), ["company_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_alert_subscriptions_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "alert_events",
        sa.Column("company_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("conversation_id", sa.Uuid(), nullable=True),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True),
        *_owned(),
        sa.ForeignKeyConstraint(["company_id"], ["companies.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"], ondelete="SET NULL"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("alert_events", schema=None) as batch_op:
        batch_op.create_index("ix_alert_events_status", ["status", "created_at"], unique=False)
        batch_op.create_index("ix_alert_events_company", ["company_id", "kind", "created_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_alert_events_conversation_id"), ["conversation_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_alert_events_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "alert_deliveries",
        sa.Column("event_id", sa.Uuid(), nullable=False),
        sa.Column("subscription_id", sa.Uuid(), nullable=False),
        sa.Column("company_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        *_owned(),
        sa.ForeignKeyConstraint(["company_id"], ["companies.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["event_id"], ["alert_events.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["subscription_id"], ["alert_subscriptions.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id", "subscription_id", name="uq_alert_delivery"),
    )
    with op.batch_alter_table("alert_deliveries", schema=None) as batch_op:
        batch_op.create_index("ix_alert_deliveries_status", ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_alert_deliveries_event_id"), ["event_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_alert_deliveries_subscription_id"), ["subscription_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_alert_deliveries_company_id"), ["company_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_alert_deliveries_tenant_id"), ["tenant_id"], unique=False)

    op.create_table(
        "alert_delivery_attempts",
        sa.Column("delivery_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        *_owned(),
        sa.ForeignKeyConstraint(["delivery_id"], ["alert_deliveries.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("alert_delivery_attempts", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_alert_delivery_attempts_delivery_id"), ["delivery_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_alert_delivery_attempts_tenant_id"), ["tenant_id"], unique=False)


def downgrade() -> None:
    op.execute("UPDATE bookings SET status = 'confirmed' WHERE status = 'no_show'")
    op.drop_table("alert_delivery_attempts")
    op.drop_table("alert_deliveries")
    op.drop_table("alert_events")
    op.drop_table("alert_subscriptions")
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_conversations_lead_source"))
        batch_op.drop_column("lead_source")
