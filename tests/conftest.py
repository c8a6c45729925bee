"""Shared fixtures.

Database tests run twice: on an embedded SQLite file and on the machine's PostgreSQL
(127.0.0.1:5432, a fresh database per test run, dropped at the end). Without PostgreSQL the
PostgreSQL half is skipped with the reason, except under ``CI=true`` where it fails.

Test data is the project's own, under ``tests/fixtures/``: a Shopify product export of a fictional
shop (``shop_export``) and Stripe API objects (``STRIPE_FIXTURES``). Real datasets from outside the
project in ``../shared`` (``shared_shopify_dir``, ``SHARED_STRIPE_FIXTURES``) are extra coverage: tests
that read them are skipped with the reason when ``../shared`` is absent, except under ``CI=true``
where they fail (CI always has it).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from core.db import create_engine, create_sessionmaker
from core.migrate import upgrade
from core.models import Base

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
# A Shopify product export (Shopify's column set) of the fictional "Acme Apparel": 36 products, 34 of them
# published, variants over one to two options, image-only rows, tracked and untracked inventory.
SHOP_EXPORT = FIXTURES / "shopify" / "acme-apparel-export.csv"
# Stripe API objects (``resources["checkout.session"|"account"|"account_link"|"event"|"charge"]``).
STRIPE_FIXTURES = FIXTURES / "stripe" / "objects.json"
SHARED = REPO.parent / "shared"
SHOPIFY = SHARED / "datasets" / "shopify"
SHARED_STRIPE_FIXTURES = SHARED / "fixtures" / "stripe" / "fixtures3.json"
PG_ADMIN_URL = os.environ.get("CHATCOMMERCE_TEST_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")


def require_shared(path: Path) -> Path:
    """``path`` inside ``../shared`` (real datasets from outside the project, extra coverage). Absent:
    the test is skipped with the reason, or fails under ``CI=true`` (CI always has ``../shared``)."""
    if path.exists():
        return path
    reason = f"extra coverage on real data: {path} not found (../shared is not beside the repository)"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI=true requires it")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def shop_export() -> Path:
    """The project's own Shopify export (``tests/fixtures/shopify/acme-apparel-export.csv``)."""
    return SHOP_EXPORT


@pytest.fixture(scope="session")
def shopify_dir() -> Path:
    """The real public Shopify exports in ``../shared/datasets/shopify`` (see :func:`require_shared`)."""
    return require_shared(SHOPIFY)


async def _pg_admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN_URL, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite file migrated once with Alembic; each test gets a copy."""
    path = tmp_path_factory.mktemp("sqlite") / "template.db"
    upgrade(f"sqlite+aiosqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh PostgreSQL database for this run, migrated with Alembic, dropped afterwards."""
    name = f"chatcommerce_test_{uuid.uuid4().hex[:10]}"
    try:
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - any connection failure means "no server"
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL is required under CI=true but is not reachable: {exc!r}")
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc!r}")
    url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    upgrade(url)
    yield url
    asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database URL; the test runs once per backend."""
    if request.param == "sqlite":
        template = request.getfixturevalue("sqlite_template")
        target = tmp_path / "chatcommerce.db"
        shutil.copy(template, target)
        return f"sqlite+aiosqlite:///{target}"
    url = request.getfixturevalue("pg_database")
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    asyncio.run(_pg_admin_on(url, f"TRUNCATE {tables} CASCADE"))
    return url


async def _pg_admin_on(url: str, sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(url.replace("postgresql+asyncpg", "postgresql"), timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    eng = create_engine(database_url)
    yield eng
    await eng.dispose()


@pytest.fixture
def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_sessionmaker(engine)
