"""The credential vault: key rotation of every encrypted column (API and CLI), and masking of
credentials in every response that shows them — on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update
from typer.testing import CliRunner

from api.cli import CliOptions
from api.cli import app as cli_app
from api.visitor_tokens import VisitorSigner
from core.db import create_engine, create_sessionmaker
from core.models import GoogleCalendarLink, Inbox
from core.security import SecretBox, mask_secret
from core.settings import Settings
from core.vault import encrypted_columns
from tests.doubles.telegram_bot_api import FakeBotAPI
from tests.test_api import AUTH, EchoResponder, Env, make_company, make_settings, running

OLD, NEW = "old-key-material-2025", "new-key-material-2026"
INBOXES = "/api/v1/tenants/acme/companies/shop/inboxes"
GOOGLE = "/api/v1/tenants/acme/companies/shop/google-calendar"
OAUTH = {"refresh_token": "1//refresh-token-SECRET-q7Zp", "client_id": "client-123.apps.googleusercontent.com",
         "client_secret": "GOCSPX-client-secret-W4kx"}


@pytest.fixture
async def bot_api() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI() as server:
        yield server


async def connect_all(env: Env, bot_api: FakeBotAPI) -> dict[str, Any]:
    """A Telegram inbox and a Google Calendar (OAuth) for company ``shop`` of tenant ``acme``."""
    await make_company(env.client, "acme", "shop")
    r = await env.client.post(INBOXES, json={"kind": "telegram", "credentials": {"bot_token": bot_api.token},
                                             "settings": {"api_base": bot_api.api_base}}, headers=AUTH)
    assert r.status_code == 201, r.text
    g = await env.client.put(GOOGLE, json={"calendar_id": "primary", "oauth": OAUTH}, headers=AUTH)
    assert g.status_code == 200, g.text
    return {"inbox": r.json(), "google": g.json()}


async def stored(env: Env) -> list[str]:
    """Every value of every encrypted column."""
    out: list[str] = []
    async with env.runtime.sessionmaker() as s:
        for col in encrypted_columns():
            out += [v for v in (await s.execute(select(col.column).where(col.column.is_not(None)))).scalars()]
    return out


def test_encrypted_columns_are_found_from_the_marker_type() -> None:
    assert {c.name for c in encrypted_columns()} >= {"inboxes.credentials", "google_calendar_links.credentials"}


def test_settings_take_fallback_keys_as_json_or_comma_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHATCOMMERCE_SECRET_KEY", NEW)
    monkeypatch.setenv("CHATCOMMERCE_SECRET_KEY_FALLBACKS", f"{OLD}, older")
    assert Settings(_env_file=None).secret_materials() == (NEW, [OLD, "older"])  # type: ignore[call-arg]
    monkeypatch.setenv("CHATCOMMERCE_SECRET_KEY_FALLBACKS", json.dumps([OLD]))
    assert Settings(_env_file=None).secret_materials() == (NEW, [OLD])  # type: ignore[call-arg]
    monkeypatch.delenv("CHATCOMMERCE_SECRET_KEY_FALLBACKS")
    assert Settings(_env_file=None).secret_materials() == (NEW, [])  # type: ignore[call-arg]


def test_secret_box_reads_old_keys_and_writes_with_the_new_one() -> None:
    old, both, new = SecretBox(key_material=OLD), SecretBox(key_material=NEW, fallbacks=[OLD]), SecretBox(
        key_material=NEW)
    token = old.encrypt("bot-token")
    assert both.decrypt(token) == "bot-token" and not both.is_current(token)
    with pytest.raises(ValueError, match="cannot be decrypted"):
        new.decrypt(token)
    rotated = both.rotate(token)
    assert new.decrypt(rotated) == "bot-token" and both.is_current(rotated)
    assert new.decrypt(both.encrypt("x")) == "x"
    assert mask_secret("123456:ABCDEFGH") == "••••EFGH" and mask_secret("short") == "••••"


async def test_rotate_then_drop_the_old_key_and_everything_still_decrypts(
    database_url: str, tmp_path: Path, bot_api: FakeBotAPI
) -> None:
    async with running(make_settings(database_url, tmp_path, secret_key=OLD)) as env:
        await connect_all(env, bot_api)
        before = await stored(env)
    assert len(before) == 2 and all(SecretBox(key_material=OLD).decrypt(v) for v in before)

    # New key first, the old one as a fallback: everything is readable, then rotated.
    async with running(make_settings(database_url, tmp_path, secret_key=NEW, secret_key_fallbacks=[OLD])) as env:
        status = await env.client.get(f"{INBOXES}/{(await env.client.get(INBOXES, headers=AUTH)).json()[-1]['id']}"
                                      "/status", headers=AUTH)
        assert status.json()["provider"]["status"] == "WORKING"
        assert (await env.client.post("/api/v1/keys/rotate")).status_code == 401
        r = await env.client.post("/api/v1/keys/rotate", params={"batch_size": 1}, headers=AUTH)
        assert r.status_code == 200, r.text
        report = r.json()
        assert report["ok"] is True and report["rotated"] == 2
        tables = report["tables"]
        assert (tables["inboxes.credentials"]["rotated"], tables["inboxes.credentials"]["current"]) == (1, 0)
        assert tables["google_calendar_links.credentials"]["rotated"] == 1
        # Safe to re-run: nothing left to rotate.
        again = (await env.client.post("/api/v1/keys/rotate", headers=AUTH)).json()
        assert (again["rotated"], again["current"], again["unreadable"]) == (0, 2, 0)
        after = await stored(env)
    for value in after:
        with pytest.raises(ValueError):
            SecretBox(key_material=OLD).decrypt(value)
        assert SecretBox(key_material=NEW).decrypt(value)

    # The old key removed from the settings: the channel and the calendar still work.
    async with running(make_settings(database_url, tmp_path, secret_key=NEW)) as env:
        inbox = (await env.client.get(INBOXES, headers=AUTH)).json()[-1]
        assert inbox["credentials"]["bot_token"] == mask_secret(bot_api.token)
        status = await env.client.get(f"{INBOXES}/{inbox['id']}/status", headers=AUTH)
        assert status.json()["provider"]["status"] == "WORKING"
        google = (await env.client.get(GOOGLE, headers=AUTH)).json()
        assert google["credentials"]["refresh_token"] == "••••q7Zp"


async def test_unreadable_values_are_reported_and_left_alone(database_url: str, tmp_path: Path,
                                                             bot_api: FakeBotAPI) -> None:
    async with running(make_settings(database_url, tmp_path, secret_key=OLD)) as env:
        await connect_all(env, bot_api)
    stranger = SecretBox(key_material="a-key-nobody-configured").encrypt('{"bot_token": "x"}')
    async with running(make_settings(database_url, tmp_path, secret_key=NEW, secret_key_fallbacks=[OLD])) as env:
        async with env.runtime.sessionmaker() as s, s.begin():
            inbox = (await s.execute(select(Inbox).where(Inbox.kind == "webchat"))).scalars().first()
            assert inbox is not None
            await s.execute(update(Inbox).where(Inbox.id == inbox.id).values(credentials=stranger))
        report = (await env.client.post("/api/v1/keys/rotate", headers=AUTH)).json()
        assert report["ok"] is False
        assert report["tables"]["inboxes.credentials"]["unreadable_ids"] == [str(inbox.id)]
        assert report["tables"]["inboxes.credentials"]["rotated"] == 1
        async with env.runtime.sessionmaker() as s:
            assert (await s.get(Inbox, inbox.id)).credentials == stranger  # type: ignore[union-attr]
        listed = (await env.client.get(INBOXES, headers=AUTH)).json()
        assert {i["kind"]: i["credentials"] for i in listed}["webchat"] == {"unreadable": True}


def test_cli_keys_rotate_in_batches_prints_counts_per_column(database_url: str, tmp_path: Path) -> None:
    runner = CliRunner()
    base = {"CHATCOMMERCE_DATABASE_URL": database_url, "CHATCOMMERCE_DATA_DIR": str(tmp_path / "data"),
            "CHATCOMMERCE_PUBLIC_BASE_URL": "http://testserver"}

    def run(*args: str, env: dict[str, str]) -> Any:
        return runner.invoke(cli_app, list(args), env={**base, **env}, obj=CliOptions(responder=EchoResponder()))

    old_env = {"CHATCOMMERCE_SECRET_KEY": OLD}
    assert run("tenants", "create", "--name", "Acme", "--slug", "acme", env=old_env).exit_code == 0
    made = run("companies", "create", "--tenant", "acme", "--slug", "shop", "--name", "Shop", env=old_env)
    assert made.exit_code == 0

    async def seed() -> None:
        engine = create_engine(database_url)
        box = SecretBox(key_material=OLD)
        async with create_sessionmaker(engine)() as s, s.begin():
            first = (await s.execute(select(Inbox))).scalars().first()
            assert first is not None
            for n in range(5):
                s.add(Inbox(tenant_id=first.tenant_id, company_id=first.company_id, kind="telegram",
                            name=f"bot {n}", active=False, settings={},
                            credentials=box.encrypt(json.dumps({"bot_token": f"{n}:token-{uuid.uuid4().hex}"}))))
        await engine.dispose()

    asyncio.run(seed())
    new_env = {"CHATCOMMERCE_SECRET_KEY": NEW, "CHATCOMMERCE_SECRET_KEY_FALLBACKS": OLD}
    result = run("keys", "rotate", "--batch-size", "2", "--json", env=new_env)
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["tables"]["inboxes.credentials"]["rotated"] == 5
    assert report["tables"]["inboxes.credentials"]["batches"] == 3
    text = run("keys", "rotate", env=new_env).stdout.splitlines()
    assert text[0] == "column\trotated\talready current\tchanged meanwhile\tunreadable"
    assert "inboxes.credentials\t0\t5\t0\t0" in text
    listed = json.loads(run("inboxes", "list", "--company", "shop", "--json",
                            env={"CHATCOMMERCE_SECRET_KEY": NEW}).stdout)
    masks = [i["credentials"]["bot_token"] for i in listed if i["kind"] == "telegram"]
    assert len(masks) == 5 and all(m.startswith("••••") and len(m) == 8 for m in masks)
    assert len(run("keys", "generate", env={}).stdout.strip()) == 43


# -- masking ---------------------------------------------------------------------------------------


async def test_no_response_shows_a_secret_or_its_ciphertext(database_url: str, tmp_path: Path,
                                                           bot_api: FakeBotAPI) -> None:
    async with running(make_settings(database_url, tmp_path)) as env:
        made = await connect_all(env, bot_api)
        inbox_id = made["inbox"]["id"]
        c = env.client
        bodies = [made["inbox"], made["google"],
                  (await c.get(INBOXES, headers=AUTH)).json(),
                  (await c.get(f"{INBOXES}/{inbox_id}/status", headers=AUTH)).json(),
                  (await c.get(GOOGLE, headers=AUTH)).json(),
                  (await c.get("/api/v1/tenants/acme/companies/shop", headers=AUTH)).json(),
                  (await c.get("/api/v1/tenants/acme/companies/shop/stripe", headers=AUTH)).json()]
        plain = [json.loads(env.runtime.secret_box.decrypt(v)) for v in await stored(env)]
        [webhook_secret] = [p["webhook_secret"] for p in plain if "webhook_secret" in p]
        bodies.append((await c.delete(f"{INBOXES}/{inbox_id}", headers=AUTH)).json())
        ciphertexts = await stored(env)
        async with env.runtime.sessionmaker() as s:
            assert (await s.execute(select(GoogleCalendarLink))).scalar_one().credentials in ciphertexts
    text = json.dumps(bodies)
    for secret in (bot_api.token, bot_api.token.split(":")[1], webhook_secret, OAUTH["refresh_token"],
                   OAUTH["client_secret"], *ciphertexts):
        assert secret not in text
    assert "gAAAAA" not in text  # no Fernet token at all
    assert made["inbox"]["credentials"] == {"bot_token": mask_secret(bot_api.token),
                                            "webhook_secret": mask_secret(webhook_secret)}
    assert made["google"]["credentials"] == {"refresh_token": "••••q7Zp", "client_id": "••••.com",
                                             "client_secret": "••••W4kx"}


def test_visitor_tokens_signed_with_the_old_key_stay_valid_during_a_rotation() -> None:
    company = uuid.uuid4()
    old_token = VisitorSigner(key_material=OLD, max_age_seconds=60).sign(company_id=company, visitor_id="web-ann")
    rotating = VisitorSigner(key_material=NEW, fallbacks=[OLD], max_age_seconds=60)
    assert rotating.visitor_of(old_token, company_id=company) == "web-ann"
    new_token = rotating.sign(company_id=company, visitor_id="web-ann")
    assert VisitorSigner(key_material=NEW, max_age_seconds=60).visitor_of(new_token, company_id=company) == "web-ann"
    assert VisitorSigner(key_material=NEW, max_age_seconds=60).visitor_of(old_token, company_id=company) is None
