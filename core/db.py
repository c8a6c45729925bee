"""Async engine and session factory (SQLAlchemy 2). Built by the caller (app lifespan, CLI), never
at import time."""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from core.textsearch import register_sqlite_functions


def create_engine(database_url: str, **kwargs: Any) -> AsyncEngine:
    """Create an async engine for ``sqlite+aiosqlite://`` or ``postgresql+asyncpg://`` URLs.

    For SQLite the parent directory is created, foreign keys are enforced and WAL journaling is used
    so that the CLI and a running server can share the file; ``core.textsearch``'s
    case-folding function is registered on every SQLite connection. For PostgreSQL the pool keeps up
    to ``pool_size`` connections (default 20; ``max_overflow`` more in a burst, default 10, closed after
    use), recycles them after 30 minutes and does not ping them on checkout.
    """
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("connect_args", {"timeout": 30})
        engine = create_async_engine(url, **kwargs)

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.close()
            register_sqlite_functions(dbapi_conn)

        return engine
    # No pre-ping: it costs a round trip on every checkout. Connections older than ``pool_recycle``
    # seconds are replaced instead, and a connection that died anyway fails one transaction (which
    # the pipeline's callers retry or ``recover()`` picks up) and is dropped from the pool.
    kwargs.setdefault("pool_pre_ping", False)
    kwargs.setdefault("pool_recycle", 1800)
    kwargs.setdefault("pool_size", 20)
    kwargs.setdefault("max_overflow", 10)
    return create_async_engine(url, **kwargs)


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Session factory with ``expire_on_commit=False`` so objects stay usable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False)


@asynccontextmanager
async def transaction(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """Open a session, commit on success and roll back on any exception."""
    async with sessionmaker() as session, session.begin():
        yield session


async def begin_write(session: AsyncSession) -> None:
    """Open the database write transaction now.

    On SQLite the driver starts a transaction only at the first INSERT/UPDATE/DELETE, so a SAVEPOINT
    issued earlier would become the outer transaction (and its RELEASE would commit the caller's work),
    and reads made earlier would not be serialised with other writers. ``BEGIN IMMEDIATE`` takes the
    write lock (waiting up to the busy timeout) so the whole operation runs serialised. On PostgreSQL
    this does nothing: row locks and unique constraints do the work there.
    """
    conn = await session.connection()
    if conn.dialect.name != "sqlite":
        return
    raw = await conn.get_raw_connection()
    driver = raw.driver_connection
    if driver is not None and not driver.in_transaction:
        await conn.exec_driver_sql("BEGIN IMMEDIATE")


@dataclass
class SqlStats:
    """Counts of what one process asked of the database since ``track_sql`` was called:
    ``statements`` executed (cursor executions, ``executemany`` counting once), ``transactions``
    begun and ``checkouts`` of a pooled connection."""

    statements: int = 0
    transactions: int = 0
    checkouts: int = 0

    def write(self, path: str | Path) -> None:
        """Append these counts as one JSON line ``{"pid", "statements", "transactions", "checkouts"}``
        to ``path`` (one line per process, so several workers can share the file)."""
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps({"pid": os.getpid(), **asdict(self)}) + "\n")


def track_sql(engine: AsyncEngine) -> SqlStats:
    """Count statements, transactions and pool checkouts of ``engine`` (SQLAlchemy events; for
    benchmarks: ``CHATCOMMERCE_SQL_STATS_FILE``). Costs one Python call per event."""
    stats = SqlStats()
    sync = engine.sync_engine

    @event.listens_for(sync, "before_cursor_execute")
    def _statement(*_args: Any) -> None:
        stats.statements += 1

    @event.listens_for(sync, "begin")
    def _begin(*_args: Any) -> None:
        stats.transactions += 1

    @event.listens_for(sync.pool, "checkout")
    def _checkout(*_args: Any) -> None:
        stats.checkouts += 1

    return stats
