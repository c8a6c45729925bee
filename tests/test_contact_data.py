"""A contact's data export (GDPR access request) and the retention of old conversations, through
the admin API, the CLI and the background sweep with a fixed clock — on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, update
from typer.testing import CliRunner

from api.cli import CliOptions
from api.cli import app as cli_app
from api.jobs import BackgroundWorkers
from core.models import Booking, Conversation, Message, Order, Payment, Resource
from tests.test_api import AUTH, EchoResponder, Env, make_company, make_settings, place_order, running, say

SHOP = "/api/v1/tenants/acme/companies/shop"


@pytest.fixture
async def env(database_url: str, tmp_path: Path) -> AsyncIterator[Env]:
    async with running(make_settings(database_url, tmp_path, retention_sweep_seconds=0)) as e:
        yield e

FIXED_NOW = datetime(2031, 3, 1, 9, 30, tzinfo=UTC)


async def cli(database_url: str, tmp_path: Path, *args: str) -> Any:
    """Run the CLI in a worker thread (it runs its own event loop) against the test's database."""
    return await asyncio.to_thread(_cli, database_url, tmp_path, *args)


def _cli(database_url: str, tmp_path: Path, *args: str) -> Any:
    env = {"CHATCOMMERCE_DATABASE_URL": database_url, "CHATCOMMERCE_SECRET_KEY": "test-secret-key",
           "CHATCOMMERCE_DATA_DIR": str(tmp_path), "CHATCOMMERCE_PUBLIC_BASE_URL": "http://testserver"}
    return CliRunner().invoke(cli_app, list(args), env=env, obj=CliOptions(responder=EchoResponder()))


async def conversation_of(env: Env, conversation_id: str) -> Conversation:
    async with env.runtime.sessionmaker() as s:
        row = await s.get(Conversation, uuid.UUID(conversation_id))
        assert row is not None
        return row


# -- export ----------------------------------------------------------------------------------------


async def test_export_has_everything_of_the_contact_and_nothing_of_others(
    env: Env, database_url: str, tmp_path: Path
) -> None:
    c = env.client
    await make_company(c, "acme", "shop")
    await make_company(c, "rival", "rival-shop")
    first = await say(c, "shop", "ann", "hello")
    await say(c, "shop", "ann", "I want two shirts")
    await say(c, "shop", "bob", "bob's private question")
    await say(c, "rival-shop", "ann", "rival secret")
    placed = await place_order(env.runtime, first["conversation_id"])
    paid = await c.post(f"{SHOP}/orders/{placed.order_id}/mark-paid", json={"method": "cash"}, headers=AUTH)
    assert paid.status_code == 200, paid.text
    conversation = await conversation_of(env, first["conversation_id"])
    start = datetime(2026, 12, 24, 10, 0, tzinfo=UTC)
    async with env.runtime.sessionmaker() as s, s.begin():
        resource = Resource(tenant_id=conversation.tenant_id, company_id=conversation.company_id, name="Anna")
        s.add(resource)
        await s.flush()
        s.add(Booking(tenant_id=conversation.tenant_id, company_id=conversation.company_id,
                      resource_id=resource.id, contact_id=conversation.contact_id, conversation_id=conversation.id,
                      status="confirmed", start_at=start, end_at=start + timedelta(hours=1), service_name="Haircut",
                      resource_name="Anna", customer_name="Ann", price_minor=3000, currency="USD"))
    contact_id = str(conversation.contact_id)

    r = await c.get(f"{SHOP}/contacts/{contact_id}/export", headers=AUTH)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["format"] == "chatcommerce.contact-export/1" and doc["contact"]["id"] == contact_id
    [identity] = doc["identities"]
    assert identity["kind"] == "webchat" and identity["source_id"].startswith("web-")
    [conv] = doc["conversations"]
    texts = [(m["sender"], m["text"]) for m in conv["messages"]]
    assert texts[:4] == [("contact", "hello"), ("bot", "echo: hello"), ("contact", "I want two shirts"),
                         ("bot", "echo: I want two shirts")]
    assert texts[-1][0] == "system" and "Payment received for order #1001" in texts[-1][1]
    [order] = doc["orders"]
    assert (order["number"], order["status"], order["total_minor"], order["currency"]) == (1001, "paid", 10000, "USD")
    assert [(ln["name"], ln["quantity"], ln["unit_price_minor"]) for ln in order["lines"]] == [
        ("Ocean Blue Shirt", 2, 5000)]
    [payment] = order["payments"]
    assert (payment["status"], payment["amount_minor"], payment["method"]) == ("paid", 10000, "cash")
    assert "checkout_url" not in payment and "token_hash" not in payment
    [booking] = doc["bookings"]
    assert (booking["service"], booking["status"], booking["start_at"]) == ("Haircut", "confirmed", start.isoformat())
    text = json.dumps(doc)
    assert "bob's private question" not in text and "rival secret" not in text and placed.token not in text

    # The same contact by its channel id; the CLI gives the same document.
    by_source = (await c.get(f"{SHOP}/contacts/{identity['source_id']}/export", headers=AUTH)).json()
    assert {**by_source, "exported_at": None} == {**doc, "exported_at": None}
    out = await cli(database_url, tmp_path, "contacts", "export", "--company", "shop", "--contact", contact_id)
    assert out.exit_code == 0, out.stderr
    assert {**json.loads(out.stdout), "exported_at": None} == {**doc, "exported_at": None}

    # Tenant-scoped: another tenant's path, an unknown contact, no token.
    assert (await c.get(f"/api/v1/tenants/rival/companies/shop/contacts/{contact_id}/export",
                        headers=AUTH)).status_code == 404
    assert (await c.get(f"/api/v1/tenants/rival/companies/rival-shop/contacts/{contact_id}/export",
                        headers=AUTH)).status_code == 404
    assert (await c.get(f"{SHOP}/contacts/{uuid.uuid4()}/export", headers=AUTH)).status_code == 404
    assert (await c.get(f"{SHOP}/contacts/{contact_id}/export")).status_code == 401
    missing = await cli(database_url, tmp_path, "contacts", "export", "--company", "shop", "--contact", "nobody")
    assert missing.exit_code == 1 and "not found" in missing.stderr


# -- retention -------------------------------------------------------------------------------------


async def test_retention_sweep_deletes_old_resolved_conversations_and_keeps_orders(
    env: Env, database_url: str, tmp_path: Path
) -> None:
    c = env.client
    await make_company(c, "acme", "shop")
    await make_company(c, "acme", "keep")
    assert (await c.get(f"{SHOP}/retention", headers=AUTH)).json() == {"company": "shop", "retention_days": None}
    assert (await c.put(f"{SHOP}/retention", json={"retention_days": 0}, headers=AUTH)).status_code == 422
    r = await c.put(f"{SHOP}/retention", json={"retention_days": 30}, headers=AUTH)
    assert r.json() == {"company": "shop", "retention_days": 30}
    assert (await c.put("/api/v1/tenants/rival/companies/shop/retention", json={"retention_days": 1},
                        headers=AUTH)).status_code == 404

    old_resolved = (await say(c, "shop", "v1", "old and done"))["conversation_id"]
    recent_resolved = (await say(c, "shop", "v2", "recent and done"))["conversation_id"]
    old_open = (await say(c, "shop", "v3", "old but open"))["conversation_id"]
    other_company = (await say(c, "keep", "v4", "old, done, kept forever"))["conversation_id"]
    placed = await place_order(env.runtime, old_resolved)
    day = timedelta(days=1)
    ages = {old_resolved: ("resolved", 31 * day), recent_resolved: ("resolved", 29 * day),
            old_open: ("open", 400 * day), other_company: ("resolved", 400 * day)}
    async with env.runtime.sessionmaker() as s, s.begin():
        for conversation_id, (status, age) in ages.items():
            await s.execute(update(Conversation).where(Conversation.id == uuid.UUID(conversation_id))
                            .values(status=status, updated_at=FIXED_NOW - age))

    workers = BackgroundWorkers(runtime=env.runtime, interval_seconds=3600, clock=lambda: FIXED_NOW)
    done = await workers.sweep_once()
    assert done["retention"] == {"conversations": 1, "messages": 2, "orders_kept": 1, "bookings_kept": 0}

    async with env.runtime.sessionmaker() as s:
        left = set((await s.execute(select(Conversation.id))).scalars())
        assert left == {uuid.UUID(i) for i in (recent_resolved, old_open, other_company)}
        assert (await s.execute(select(func.count()).select_from(Message).where(
            Message.conversation_id == uuid.UUID(old_resolved)))).scalar_one() == 0
        order = await s.get(Order, placed.order_id)
        assert order is not None and order.conversation_id is None and order.total_minor == 10000
        assert (await s.execute(select(func.count()).select_from(Payment).where(
            Payment.order_id == placed.order_id))).scalar_one() == 1
    orders = (await c.get(f"{SHOP}/orders", headers=AUTH)).json()
    assert [o["number"] for o in orders] == [1001]

    again = await workers.sweep_once()
    assert again["retention"]["conversations"] == 0
    # A day later the recent one is old enough too.
    later = BackgroundWorkers(runtime=env.runtime, interval_seconds=3600, clock=lambda: FIXED_NOW + 2 * day)
    assert (await later.sweep_once())["retention"]["conversations"] == 1

    # The CLI shows and changes the same setting.
    out = await cli(database_url, tmp_path, "companies", "retention", "--company", "shop")
    assert out.stdout.strip() == "shop: resolved conversations kept 30 days"
    out = await cli(database_url, tmp_path, "companies", "retention", "--company", "shop", "--forever")
    assert out.stdout.strip() == "shop: resolved conversations kept forever"
    assert (await c.get(f"{SHOP}/retention", headers=AUTH)).json()["retention_days"] is None
    out = await cli(database_url, tmp_path, "companies", "retention", "--company", "shop", "--days", "7", "--json")
    assert json.loads(out.stdout) == {"company": "shop", "retention_days": 7}
