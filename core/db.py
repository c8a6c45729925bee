"""Async engine and session factory (SQLAlchemy 2). Built by the caller (app lifespan, CLI), never
at import time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
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
    case-folding function is registered on every SQLite connection.
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
    kwargs.setdefault("pool_pre_ping", True)
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
