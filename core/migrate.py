"""Run Alembic migrations programmatically (``chatcommerce init-db``, tests, demo)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(database_url: str) -> Config:
    """An Alembic ``Config`` for the repository's ``migrations/`` and this database URL."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return cfg


def upgrade(database_url: str, revision: str = "head") -> None:
    """Migrate the database to ``revision`` (synchronous; call outside a running event loop or in a thread).

    The default ``heads`` also applies migrations of branches not chained yet (parallel work merged later)."""
    command.upgrade(alembic_config(database_url), revision)
