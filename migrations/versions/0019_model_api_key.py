"""model API key in an encrypted column (issue 9)

Adds ``companies.model_api_key`` (``EncryptedText``: SecretBox ciphertext, so key rotation and tenant
deletion cover it) and moves each company's model-server API key there from the JSON
``companies.settings["model_server"]["api_key_secret"]``, which is removed. The ciphertext moves as it
is (no key is needed to migrate). Inbox overrides carry no key (they override the voice and mode only).
The downgrade moves the keys back into the JSON.

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

_companies = sa.table("companies", sa.column("id", sa.Uuid()), sa.column("settings", sa.JSON()),
                      sa.column("model_api_key", sa.Text()))


def _server(settings: Any) -> dict[str, Any] | None:
    server = settings.get("model_server") if isinstance(settings, dict) else None
    return server if isinstance(server, dict) else None


def upgrade() -> None:
    with op.batch_alter_table("companies", schema=None) as batch_op:
        batch_op.add_column(sa.Column("model_api_key", sa.Text(), nullable=True))
    bind = op.get_bind()
    for row in bind.execute(sa.select(_companies.c.id, _companies.c.settings)).all():
        server = _server(row.settings)
        if server is None or not ({"api_key_secret", "api_key"} & server.keys()):
            continue
        secret = server.get("api_key_secret") or None
        kept = {k: v for k, v in server.items() if k not in ("api_key_secret", "api_key")}
        bind.execute(sa.update(_companies).where(_companies.c.id == row.id).values(
            settings={**row.settings, "model_server": kept}, model_api_key=secret))


def downgrade() -> None:
    bind = op.get_bind()
    rows = bind.execute(sa.select(_companies.c.id, _companies.c.settings, _companies.c.model_api_key)
                        .where(_companies.c.model_api_key.is_not(None))).all()
    for row in rows:
        settings = row.settings if isinstance(row.settings, dict) else {}
        server = {**(_server(settings) or {}), "api_key_secret": row.model_api_key}
        bind.execute(sa.update(_companies).where(_companies.c.id == row.id).values(
            settings={**settings, "model_server": server}))
    with op.batch_alter_table("companies", schema=None) as batch_op:
        batch_op.drop_column("model_api_key")
