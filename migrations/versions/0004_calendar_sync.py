"""google calendar sync

Adds ``google_calendar_links`` (a company's connected Google Calendar: calendar id and SecretBox-
encrypted credentials, one per company) and ``calendar_events`` (booking → Google event id and what
was last written, so ``commerce.calendar_sync`` only sends changes). New tables only: nothing
existing is altered, so SQLite never copies a table (batch mode is used for the indexes only).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('google_calendar_links',
    sa.Column('company_id', sa.Uuid(), nullable=False),
    sa.Column('calendar_id', sa.String(length=255), nullable=False),
    sa.Column('auth_kind', sa.String(length=16), nullable=False),
    sa.Column('account', sa.String(length=320), nullable=True),
    sa.Column('credentials', sa.Text(), nullable=False),
    sa.Column('synced_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['company_id'], ['companies.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('company_id')
    )
    with op.batch_alter_table('google_calendar_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_google_calendar_links_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('calendar_events',
    sa.Column('company_id', sa.Uuid(), nullable=False),
    sa.Column('booking_id', sa.Uuid(), nullable=True),
    sa.Column('calendar_id', sa.String(length=255), nullable=False),
    sa.Column('event_id', sa.String(length=255), nullable=False),
    sa.Column('start_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('end_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('digest', sa.String(length=64), nullable=False),
    sa.Column('synced_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('tenant_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['booking_id'], ['bookings.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['company_id'], ['companies.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('booking_id')
    )
    with op.batch_alter_table('calendar_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_calendar_events_company_id'), ['company_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_calendar_events_tenant_id'), ['tenant_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('calendar_events', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_calendar_events_tenant_id'))
        batch_op.drop_index(batch_op.f('ix_calendar_events_company_id'))

    op.drop_table('calendar_events')
    with op.batch_alter_table('google_calendar_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_google_calendar_links_tenant_id'))

    op.drop_table('google_calendar_links')
