"""The PostgreSQL pool of a process is sized by its settings (``CHATCOMMERCE_DB_POOL_SIZE`` /
``CHATCOMMERCE_DB_MAX_OVERFLOW``): connections beyond the pool are opened per burst and closed after
use, so an undersized pool opens a PostgreSQL session every few messages."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import text

from api.services import build_runtime
from tests.test_api import make_settings


async def test_the_pool_keeps_the_configured_connections_open(pg_database: str, tmp_path: Path) -> None:
    # PostgreSQL only: SQLite has no connection pool to size.
    runtime = build_runtime(make_settings(pg_database, tmp_path, db_pool_size=3, db_max_overflow=2))
    try:
        assert (runtime.engine.pool.size(), runtime.engine.pool._max_overflow) == (3, 2)  # type: ignore[attr-defined]

        async def hold() -> None:
            async with runtime.engine.connect() as conn:
                await conn.execute(text("select pg_sleep(0.2)"))

        await asyncio.gather(*[hold() for _ in range(5)])  # 3 kept + 2 overflow, all at once
        assert runtime.engine.pool.checkedin() == 3  # the two overflow connections were closed
    finally:
        await runtime.aclose()
