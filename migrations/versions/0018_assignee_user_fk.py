"""assigned conversations and note authors point at users

``conversations.assignee_user_id`` and ``conversation_notes.author_user_id`` become foreign keys to
``users`` (``ON DELETE SET NULL``: deleting a person unassigns their conversations and keeps their
notes unsigned). Ids that name no user (written before accounts existed) are cleared first.

On SQLite the tables are rebuilt (batch mode); ``migrations/env.py`` runs migrations there with
foreign keys off, so rebuilding ``conversations`` does not cascade into its messages.

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

_KEYS = (("conversations", "assignee_user_id", "fk_conversations_assignee_user_id_users"),
         ("conversation_notes", "author_user_id", "fk_conversation_notes_author_user_id_users"))


def upgrade() -> None:
    for table, column, name in _KEYS:
        op.execute(f"UPDATE {table} SET {column} = NULL "  # noqa: S608 - constant identifiers
                   f"WHERE {column} IS NOT NULL AND {column} NOT IN (SELECT id FROM users)")
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_foreign_key(name, "users", [column], ["id"], ondelete="SET NULL")


def downgrade() -> None:
    for table, _column, name in reversed(_KEYS):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(name, type_="foreignkey")
