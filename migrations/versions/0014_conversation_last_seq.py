"""conversation last_seq

Adds ``conversations.last_seq``: the ``seq`` of the conversation's latest message, kept by
``core.conversations.append_message`` (``UPDATE … SET last_seq = last_seq + 1 RETURNING last_seq``)
instead of reading ``max(messages.seq)`` for every message. Filled from the existing messages.

Revision ID: 0014
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
# The brief's base is 0004; this branch already has 0005 on top of it (the lead re-chains at merge).
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_seq", sa.BigInteger(), nullable=False, server_default="0"))
    op.execute(
        "UPDATE conversations SET last_seq = COALESCE("
        "(SELECT MAX(messages.seq) FROM messages WHERE messages.conversation_id = conversations.id), 0)"
    )


def downgrade() -> None:
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_column("last_seq")
