"""The model server's API key (issue 9) is a secret at rest like the channels' credentials: it lives in
the encrypted column ``companies.model_api_key``, key rotation re-encrypts it, the admin API shows it
only masked, deleting the tenant removes it, no log line carries it, and migration 0019 moves keys
stored by earlier releases out of the settings JSON."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from sqlalchemy import func, select

from core.db import create_engine
from core.migrate import alembic_config, upgrade
from core.models import Company
from core.security import SecretBox
from tests.doubles.openai_server import OpenAIServerDouble, reply
from tests.test_api import AUTH, make_company, make_settings, running, say
from tests.test_secret_tokens import empty_database  # noqa: F401 - the migration tests' fixture

OLD, NEW = "old-key-material-2025", "new-key-material-2026"
KEY = "sk-proj-Vq93ZtLmWc1xR7pK4d2e"
_C = "/api/v1/tenants/acme/companies/shop"


async def _stored_key(env) -> str | None:
    async with env.runtime.sessionmaker() as s:
        company = (await s.execute(select(Company).where(Company.slug == "shop"))).scalar_one()
        assert KEY not in str(company.settings) and "gAAAAA" not in str(company.settings)
        return company.model_api_key


async def test_the_key_is_rotated_masked_used_and_deleted_with_its_tenant_and_never_logged(
        database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with OpenAIServerDouble() as model:
        async with running(make_settings(database_url, tmp_path, secret_key=OLD), echo=False) as env:
            await make_company(env.client, "acme", "shop")
            body = {"assistant": {"mode": "llm"},
                    "model_server": {"base_url": model.base_url, "model": "m", "api_key": KEY}}
            put = await env.client.put(_C + "/assistant", json=body, headers=AUTH)
            assert put.status_code == 200, put.text
            shown = (await env.client.get(_C + "/assistant", headers=AUTH)).json()
            assert shown["model_server"]["api_key"] == "••••4d2e" and shown["model_server"]["api_key_set"] is True
            before = await _stored_key(env)
            assert before is not None and SecretBox(key_material=OLD).decrypt(before) == KEY
            assert before not in put.text + str(shown)
            model.play(reply("Hello from the model."))
            assert (await say(env.client, "shop", "ann", "hello"))["replies"][0]["text"] == "Hello from the model."
            assert model.authorizations[-1] == f"Bearer {KEY}"  # the column's key is the one sent

        # Rotation (new key first, the old one as a fallback) re-encrypts it like every secret column.
        async with running(make_settings(database_url, tmp_path, secret_key=NEW, secret_key_fallbacks=[OLD]),
                           echo=False) as env:
            report = (await env.client.post("/api/v1/keys/rotate", headers=AUTH)).json()
            assert report["tables"]["companies.model_api_key"]["rotated"] == 1 and report["ok"] is True

        # Without the old key: still readable, still masked, still used.
        async with running(make_settings(database_url, tmp_path, secret_key=NEW), echo=False) as env:
            after = await _stored_key(env)
            assert after is not None and after != before and SecretBox(key_material=NEW).decrypt(after) == KEY
            shown = (await env.client.get(_C + "/assistant", headers=AUTH)).json()
            assert shown["model_server"]["api_key"] == "••••4d2e"
            model.play(reply("Still here."))
            assert (await say(env.client, "shop", "bob", "hello"))["replies"][0]["text"] == "Still here."
            assert model.authorizations[-1] == f"Bearer {KEY}"
            # "" removes the key, nothing keeps it.
            cleared = await env.client.put(_C + "/assistant", json={"model_server": {"api_key": ""}}, headers=AUTH)
            assert cleared.json()["model_server"]["api_key"] is None and await _stored_key(env) is None
            await env.client.put(_C + "/assistant", json={"model_server": {"api_key": KEY}}, headers=AUTH)

            # Deleting the tenant removes the key with its company.
            assert (await env.client.delete("/api/v1/tenants/acme", headers=AUTH)).status_code == 200
            async with env.runtime.sessionmaker() as s:
                left = (await s.execute(select(func.count()).select_from(Company)
                                        .where(Company.model_api_key.is_not(None)))).scalar_one()
            assert left == 0

    # The key itself at no level (DEBUG included: SQL parameters, the SDK's request logs); its ciphertext
    # only in aiosqlite's DEBUG lines of the SQL parameters, never at INFO or above.
    logged = "\n".join(r.getMessage() + " " + repr(r.args) for r in caplog.records)
    assert caplog.records and KEY not in logged and KEY[-12:] not in logged
    info = "\n".join(r.getMessage() for r in caplog.records if r.levelno >= logging.INFO)
    assert before not in info and after not in info


def _company_at_0017(url: str, *, settings: dict) -> uuid.UUID:
    """A tenant and a company written with the 0017 schema (the key inside the settings JSON)."""
    ids = {"tenant": uuid.uuid4(), "company": uuid.uuid4()}
    now = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    meta = sa.MetaData()
    tenants = sa.Table("tenants", meta, sa.Column("id", sa.Uuid()), sa.Column("name", sa.String()),
                       sa.Column("slug", sa.String()), sa.Column("created_at", sa.DateTime(timezone=True)))
    companies = sa.Table("companies", meta, *(sa.Column(n, sa.String()) for n in (
        "slug", "human_id", "name", "type", "currency", "language", "timezone", "payment_provider")),
        sa.Column("kb_version", sa.Integer()), sa.Column("settings", sa.JSON()), sa.Column("id", sa.Uuid()),
        sa.Column("tenant_id", sa.Uuid()), sa.Column("created_at", sa.DateTime(timezone=True)))

    async def write() -> None:
        engine = create_engine(url)
        async with engine.begin() as conn:
            await conn.execute(tenants.insert().values(id=ids["tenant"], name="Old", slug="old", created_at=now))
            await conn.execute(companies.insert().values(
                slug="old-shop", human_id="COMP001", name="Old Shop", type="product", currency="USD", language="en",
                timezone="UTC", payment_provider="manual", kb_version=0, settings=settings, id=ids["company"],
                tenant_id=ids["tenant"], created_at=now))
        await engine.dispose()

    asyncio.run(write())
    return ids["company"]


def _read(url: str, sql: str) -> list[tuple]:
    async def go() -> list[tuple]:
        engine = create_engine(url)
        try:
            async with engine.connect() as conn:
                return [tuple(r) for r in (await conn.execute(sa.text(sql))).all()]
        finally:
            await engine.dispose()

    return asyncio.run(go())


def test_migration_moves_stored_keys_into_the_encrypted_column_and_back(empty_database: str) -> None:  # noqa: F811
    url = empty_database
    upgrade(url, "0017")
    secret = SecretBox(key_material=OLD).encrypt(KEY)
    server = {"base_url": "http://127.0.0.1:11434/v1", "model": "llama3", "api_key_secret": secret}
    _company_at_0017(url, settings={"assistant": {"mode": "llm"}, "model_server": server})
    upgrade(url, "head")
    [(settings, column)] = _read(url, "SELECT settings, model_api_key FROM companies")
    assert column == secret and "api_key" not in str(settings) and secret not in str(settings)
    assert "llama3" in str(settings) and "assistant" in str(settings)
    command.downgrade(alembic_config(url), "0017")
    [(settings,)] = _read(url, "SELECT settings FROM companies")
    assert secret in str(settings)
    upgrade(url, "head")
    assert _read(url, "SELECT model_api_key FROM companies") == [(secret,)]
