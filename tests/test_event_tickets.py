"""Live events for browsers: ``EventSource`` cannot send an ``Authorization`` header, so a signed-in
person gets a 60-second stream ticket for one company and opens ``events?ticket=...``. Over a real
HTTP server, on SQLite and PostgreSQL: the ticket opens its company's stream and no other, an expired,
forged or foreign ticket is refused, header sign-in still works, and the access log hides the ticket."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from api.auth_tokens import TokenService
from core.logging import RedactTokenPaths
from core.models import Company, Tenant
from core.passwords import hash_password
from core.tenancy import TenantScope
from core.timeutil import utcnow
from core.users import add_owner, assign_manager, create_api_key, create_user
from tests.test_api import AUTH, make_company, say
from tests.test_live_events import EVENTS, Stream, served

pytestmark = pytest.mark.postgres
PASSWORD = "correct horse battery"
A = "/api/v1/tenants/alpha/companies/shop-a"


async def _people(app: object) -> str:
    """Ann owns alpha; Max manages shop-a only. Returns an API key of alpha."""
    async with app.state.runtime.sessionmaker() as s, s.begin():  # type: ignore[attr-defined]
        alpha = (await s.execute(select(Tenant).where(Tenant.slug == "alpha"))).scalar_one()
        shop_a = (await s.execute(select(Company).where(Company.slug == "shop-a"))).scalar_one()
        ann = await create_user(s, email="ann@example.com", password_hash=await hash_password(PASSWORD),
                                verified=True)
        await add_owner(s, tenant=alpha, user=ann)
        max_ = await create_user(s, email="max@example.com", password_hash=await hash_password(PASSWORD),
                                 verified=True)
        await assign_manager(s, company=shop_a, user=max_, assigned_by=ann.id)
        return (await create_api_key(s, scope=TenantScope(alpha.id), name="script", created_by=None))[1]


async def _bearer(client: httpx.AsyncClient, email: str) -> dict[str, str]:
    r = await client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


async def _ticket(client: httpx.AsyncClient, company_path: str, headers: dict[str, str]) -> dict:
    r = await client.post(f"{company_path}/events/ticket", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


async def test_a_ticket_opens_its_company_stream_only(database_url: str, tmp_path: Path) -> None:
    async with served(database_url, tmp_path) as (client, app):
        await make_company(client, "alpha", "shop-a")
        await make_company(client, "alpha", "shop-a2")
        await make_company(client, "beta", "shop-b")
        key = await _people(app)
        max_ = await _bearer(client, "max@example.com")

        issued = await _ticket(client, A, max_)
        assert issued["expires_in"] == 60 and issued["url"] == f"{A}/events?ticket={issued['ticket']}"
        stream = Stream(client, issued["url"], headers={})  # no Authorization header, as EventSource
        try:
            assert await stream.next() == ("ready", {"company": "shop-a"})
            sent = await say(client, "shop-a", "ann", "hello")
            got = await stream.until(lambda e, d: e == "message.created")
            assert got[-1][1]["conversation_id"] == sent["conversation_id"] and got[-1][1]["text"] == "hello"
        finally:
            await stream.close()

        # The same ticket opens no other company: another of the tenant's, or another tenant's.
        ticket = issued["ticket"]
        for path in (EVENTS.format(t="alpha", c="shop-a2"), EVENTS.format(t="beta", c="shop-b")):
            assert (await client.get(path, params={"ticket": ticket})).status_code == 404, path
        # The owner's ticket for shop-a2 does not open shop-a either (the ticket names one company).
        ann = await _bearer(client, "ann@example.com")
        other = await _ticket(client, "/api/v1/tenants/alpha/companies/shop-a2", ann)
        assert (await client.get(f"{A}/events", params={"ticket": other["ticket"]})).status_code == 404
        # Only on the events route: a ticket is no credential for anything else.
        r = await client.get(f"{A}/conversations", params={"ticket": ticket})
        assert r.status_code == 401

        # Expired, forged, or an access token passed as a ticket: 401.
        tokens: TokenService = app.state.auth_services.tokens
        async with app.state.runtime.sessionmaker() as s:
            shop = (await s.execute(select(Company).where(Company.slug == "shop-a"))).scalar_one()
        me = (await client.get("/api/v1/auth/me", headers=max_)).json()["user_id"]
        expired = tokens.stream_ticket(user_id=uuid.UUID(me), tenant_id=shop.tenant_id, company_id=shop.id,
                                       issued_at=utcnow() - timedelta(seconds=61))
        forged = TokenService(key_material="another server", access_minutes=15, refresh_days=1, code_minutes=5,
                              reset_minutes=5).stream_ticket(user_id=uuid.UUID(me), tenant_id=shop.tenant_id,
                                                             company_id=shop.id)
        for bad in (expired, forged, max_["Authorization"].removeprefix("Bearer "), "not-a-ticket"):
            r = await client.get(f"{A}/events", params={"ticket": bad})
            assert r.status_code == 401, bad

        # Max no longer manages shop-a: his still-fresh ticket stops working.
        fresh = (await _ticket(client, A, max_))["ticket"]
        assert (await client.delete("/api/v1/tenants/alpha/managers/shop-a", headers=ann)).status_code == 200
        assert (await client.get(f"{A}/events", params={"ticket": fresh})).status_code == 401

        # Tickets are for people: an API key gets 403, the admin token (nobody) a 400.
        assert (await client.post(f"{A}/events/ticket", headers={"Authorization": f"Bearer {key}"})).status_code == 403
        r = await client.post(f"{A}/events/ticket", headers=AUTH)
        assert r.status_code == 400 and "person" in r.json()["detail"]
        assert (await client.post(f"{A}/events/ticket")).status_code == 401

        # The Authorization header still opens the stream.
        by_header = Stream(client, f"{A}/events", headers=ann)
        try:
            assert await by_header.next() == ("ready", {"company": "shop-a"})
        finally:
            await by_header.close()


def test_the_access_log_hides_the_ticket() -> None:
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5000", "GET", f"{A}/events?ticket=eyJhbGciOi.x-y_z&retry=1", "1.1", 200),
                               None)
    assert RedactTokenPaths().filter(record) is True
    assert record.getMessage() == f'127.0.0.1:5000 - "GET {A}/events?ticket=***&retry=1 HTTP/1.1" 200'
