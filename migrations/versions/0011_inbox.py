"""the manager's inbox: assignee, labels, private notes, canned replies

Adds ``conversations.assignee_user_id`` (nullable; no foreign key until a users table exists) and
the tables ``labels`` (a company's label set), ``conversation_labels``, ``conversation_notes`` and
``canned_replies``, and an index on ``orders.conversation_id`` (the inbox's "has an order" and
"payment status" filters). Existing rows are untouched (nobody is assigned).

Revision ID: 0011
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def _owned() -> list[sa.Column]:
    return [
        sa.Column('id', sa.Uuid(), nullable=False),
        sa.Column('tenant_id', sa.Uuid(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    ]


def upgrade() -> None:
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('assignee_user_id', sa.Uuid(), nullable=True))
        batch_op.create_index(batch_op.f('ix_conversations_assignee_user_id'), ['assignee_user_id'], unique=False)
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_orders_conversation_id'), ['conversation_id'], unique=False)

    op.create_table('labels',
    sa.Column('company_id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('color', sa.String(length=32), nullable=True),
    *_owned(),
    sa.ForeignKeyConstraint(['company_id'], ['companies.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('company_id', 'name', name='uq_label_name')
    )
    with op.batch_alter_table('labels', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_labels_company_id'), ['company_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_labels_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('conversation_labels',
    sa.Column('conversation_id', sa.Uuid(), nullable=False),
    sa.Column('label_id', sa.Uuid(), nullable=False),
    *_owned(),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['label_id'], ['labels.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('conversation_id', 'label_id', name='uq_conversation_label')
    )
    with op.batch_alter_table('conversation_labels', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_conversation_labels_conversation_id'), ['conversation_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_conversation_labels_label_id'), ['label_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_conversation_labels_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('conversation_notes',
    sa.Column('conversation_id', sa.Uuid(), nullable=False),
    sa.Column('author_user_id', sa.Uuid(), nullable=True),
    sa.Column('text', sa.Text(), nullable=False),
    *_owned(),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('conversation_notes', schema=None) as batch_op:
        batch_op.create_index('ix_conversation_notes_conversation', ['conversation_id', 'created_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_conversation_notes_tenant_id'), ['tenant_id'], unique=False)

    op.create_table('canned_replies',
    sa.Column('company_id', sa.Uuid(), nullable=False),
    sa.Column('shortcut', sa.String(length=64), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    *_owned(),
    sa.ForeignKeyConstraint(['company_id'], ['companies.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tenant_id'], ['tenants.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('company_id', 'shortcut', name='uq_canned_reply_shortcut')
    )
    with op.batch_alter_table('canned_replies', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_canned_replies_company_id'), ['company_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_canned_replies_tenant_id'), ['tenant_id'], unique=False)


def downgrade() -> None:
    for table in ('canned_replies', 'conversation_notes', 'conversation_labels', 'labels'):
        op.drop_table(table)
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_orders_conversation_id'))
    with op.batch_alter_table('conversations', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_conversations_assignee_user_id'))
        batch_op.drop_column('assignee_user_id')
