"""message claimed_at

Adds ``messages.claimed_at``: when an outbound message was claimed for sending (``pending`` →
``sending``). Replies of one conversation are delivered in ``seq`` order: a reply is claimed only when
no earlier reply of its conversation is still ``pending``, or ``sending`` with a claim younger than
``channels.pipeline.SENDING_STALE`` (a process that died mid-send does not hold the conversation back).
Existing ``sending`` rows keep ``NULL`` and count as stale.

Revision ID: 0020
Revises: 0019
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("claimed_at")
