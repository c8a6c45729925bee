"""hashed payment-page and calendar-feed tokens

``payments.token`` (the manual payment page's ``/pay/{token}``) becomes ``payments.token_hash``: the
SHA-256 hex of the token, unique, nullable (a payment a manager marked paid has no page). Existing
rows get the hash of their token, so links already sent keep working. ``calendar_feeds`` already had
``token_hash`` next to the plaintext ``token``; the plaintext column is dropped (its hash is
recomputed first, so a row written by any earlier version is consistent).

The downgrade restores the columns but cannot restore the tokens (a hash does not give them back):
payments get a fresh random token (their old links stop working) and calendar feeds one that is
never shown (rotate the feed to get a working URL).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import hashlib
import secrets

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def _sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def upgrade() -> None:
    bind = op.get_bind()
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('token_hash', sa.String(length=64), nullable=True))
    payments = sa.table('payments', sa.column('id', sa.Uuid()), sa.column('token', sa.String()),
                        sa.column('token_hash', sa.String()))
    for row in bind.execute(sa.select(payments.c.id, payments.c.token)).all():
        bind.execute(sa.update(payments).where(payments.c.id == row.id).values(token_hash=_sha256(row.token)))
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.create_unique_constraint('uq_payments_token_hash', ['token_hash'])
        batch_op.drop_column('token')

    feeds = sa.table('calendar_feeds', sa.column('id', sa.Uuid()), sa.column('token', sa.String()),
                     sa.column('token_hash', sa.String()))
    for row in bind.execute(sa.select(feeds.c.id, feeds.c.token)).all():
        bind.execute(sa.update(feeds).where(feeds.c.id == row.id).values(token_hash=_sha256(row.token)))
    with op.batch_alter_table('calendar_feeds', schema=None) as batch_op:
        batch_op.drop_column('token')


def downgrade() -> None:
    bind = op.get_bind()
    with op.batch_alter_table('calendar_feeds', schema=None) as batch_op:
        batch_op.add_column(sa.Column('token', sa.String(length=64), nullable=True))
    feeds = sa.table('calendar_feeds', sa.column('id', sa.Uuid()), sa.column('token', sa.String()),
                     sa.column('token_hash', sa.String()))
    for row in bind.execute(sa.select(feeds.c.id)).all():
        token = secrets.token_urlsafe(32)
        bind.execute(sa.update(feeds).where(feeds.c.id == row.id).values(token=token, token_hash=_sha256(token)))
    with op.batch_alter_table('calendar_feeds', schema=None) as batch_op:
        batch_op.alter_column('token', existing_type=sa.String(length=64), nullable=False)

    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('token', sa.String(length=64), nullable=True))
    payments = sa.table('payments', sa.column('id', sa.Uuid()), sa.column('token', sa.String()))
    for row in bind.execute(sa.select(payments.c.id)).all():
        bind.execute(sa.update(payments).where(payments.c.id == row.id).values(token=secrets.token_urlsafe(32)))
    with op.batch_alter_table('payments', schema=None) as batch_op:
        batch_op.drop_constraint('uq_payments_token_hash', type_='unique')
        batch_op.drop_column('token_hash')
        batch_op.alter_column('token', existing_type=sa.String(length=64), nullable=False)
        batch_op.create_unique_constraint('uq_payments_token', ['token'])
