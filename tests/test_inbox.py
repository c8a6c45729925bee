"""The manager's inbox through the admin API and the CLI, on a fixed data set, on SQLite and PostgreSQL:
conversation filters and cursor pages, contacts named from checkout, notes, labels, canned replies,
order/payment/booking lists, CSV exports (formula cells neutralised) and ``orders mark-paid 1001``.

The dialogue engine is the echo test double of tests/test_api.py.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from typer.testing import CliRunner

from api.cli import CliOptions
from api.cli import app as cli_app
from core.models import (
    Booking,
    Company,
    Contact,
    ContactInbox,
    Conversation,
    Inbox,
    Message,
    Order,
    OrderLine,
    Payment,
    Resource,
    User,
)
from tests.test_api import AUTH, EchoResponder, Env, make_company, place_order, say
from tests.test_api import env as env  # noqa: F401,PLC0414 - the fixture

SHOP = "/api/v1/tenants/acme/companies/acme-shop"
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
ASSIGNEE = uuid.UUID("00000000-0000-4000-8000-0000000000aa")


@dataclass
class Data:
    """Conversation ids of the fixed data set by the test's name for them."""

    ids: dict[str, str] = field(default_factory=dict)
    updated: dict[str, datetime] = field(default_factory=dict)

    def names(self, listed: list[dict]) -> list[str]:
        by_id = {v: k for k, v in self.ids.items()}
        return [by_id[c["id"]] for c in listed]


async def _company(session, slug: str) -> Company:  # type: ignore[no-untyped-def]
    return (await session.execute(select(Company).where(Company.slug == slug))).scalar_one()


async def build_data(env: Env) -> Data:
    """Companies acme-shop and acme-two (tenant acme) and beta-shop (tenant beta), and these conversations:

    ====  ===========  ========  =======  ==========================  =====================  =========
    name  company      channel   status   contact                     messages               order
    ====  ===========  ========  =======  ==========================  =====================  =========
    web   acme-shop    webchat   open     (no name)                   hello there            -
    ivan  acme-shop    telegram  pending  Иван Петров                 Сколько стоят РОЗЫ?    link sent
    zoe   acme-shop    telegram  open+HO  Zoe, assigned               is it 100% cotton?     paid
    max   acme-shop    console   resolv.  Max (same time as zoe)      bye                    -
    amy   acme-shop    webchat   open     Amy +1 555 0100             thanks                 no link
    two   acme-two     telegram  open     Other                       hello                  -
    beta  beta-shop    webchat   open     Beta                        hello there            -
    ====  ===========  ========  =======  ==========================  =====================  =========
    """
    for tenant, company in (("acme", "acme-shop"), ("acme", "acme-two"), ("beta", "beta-shop")):
        await make_company(env.client, tenant, company)
    rows = [
        ("web", "acme-shop", "webchat", "open", False, None, "hello there", None, 1),
        ("ivan", "acme-shop", "telegram", "pending", False, "Иван Петров", "Сколько стоят РОЗЫ?",
         "payment_link_sent", 2),
        ("zoe", "acme-shop", "telegram", "open", True, "Zoe", "is it 100% cotton?", "paid", 3),
        ("max", "acme-shop", "console", "resolved", False, "Max", "bye", None, 3),
        ("amy", "acme-shop", "webchat", "open", False, "Amy", "thanks", "no_payment_link", 5),
        ("two", "acme-two", "telegram", "open", False, "Other", "hello", None, 6),
        ("beta", "beta-shop", "webchat", "open", False, "Beta", "hello there", None, 7),
    ]
    data = Data()
    async with env.runtime.sessionmaker() as s, s.begin():
        s.add(User(id=ASSIGNEE, email="agent@example.com", is_active=True))  # zoe's assignee
        inboxes: dict[tuple[str, str], Inbox] = {}
        for name, slug, kind, status, handoff, contact_name, text, payment, hours in rows:
            company = await _company(s, slug)
            key = (slug, kind)
            if key not in inboxes:
                inboxes[key] = Inbox(tenant_id=company.tenant_id, company_id=company.id, kind=kind, name=kind,
                                     settings={})
                if kind == "telegram":
                    s.add(inboxes[key])
                else:
                    inboxes[key] = (await s.execute(select(Inbox).where(
                        Inbox.company_id == company.id, Inbox.kind == kind))).scalar_one()
                await s.flush()
            inbox = inboxes[key]
            contact = Contact(tenant_id=company.tenant_id, company_id=company.id, name=contact_name,
                              phone="+1 555 0100" if name == "amy" else None)
            s.add(contact)
            await s.flush()
            s.add(ContactInbox(tenant_id=company.tenant_id, contact_id=contact.id, inbox_id=inbox.id,
                               source_id=f"web-{uuid.uuid4()}" if kind == "webchat" else f"{name}-1"))
            conv = Conversation(tenant_id=company.tenant_id, company_id=company.id, inbox_id=inbox.id,
                                contact_id=contact.id, status=status, handoff=handoff, state={},
                                assignee_user_id=ASSIGNEE if name == "zoe" else None)
            s.add(conv)
            await s.flush()
            when = T0 + timedelta(hours=hours)
            s.add(Message(tenant_id=company.tenant_id, conversation_id=conv.id, inbox_id=inbox.id, channel=kind,
                          direction="in", sender="contact", text=text, payload={}, status="processed", seq=1,
                          created_at=when))
            if payment is not None:
                order = Order(tenant_id=company.tenant_id, company_id=company.id, conversation_id=conv.id,
                              contact_id=contact.id, number=1000 + hours, payment_status=payment,
                              status="paid" if payment == "paid" else "pending_payment", total_minor=1000 * hours,
                              currency="USD", customer_name=contact_name, created_at=when)
                s.add(order)
            await s.flush()
            conv.updated_at = when
            data.ids[name] = str(conv.id)
            data.updated[name] = when
    # The label "vip" on max, through the API.
    assert (await env.client.post(f"{SHOP}/labels", json={"name": "vip"}, headers=AUTH)).status_code == 201
    r = await env.client.put(f"{SHOP}/conversations/{data.ids['max']}/labels", json={"labels": ["vip"]},
                             headers=AUTH)
    assert r.status_code == 200 and r.json() == {"labels": ["vip"]}
    return data


async def listed(env: Env, data: Data, path: str = SHOP, **params: object) -> list[str]:
    r = await env.client.get(f"{path}/conversations", params=params, headers=AUTH)
    assert r.status_code == 200, r.text
    return data.names(r.json())


async def test_conversation_filters(env: Env) -> None:
    data = await build_data(env)
    zoe_max = sorted(["zoe", "max"], key=lambda n: uuid.UUID(data.ids[n]), reverse=True)  # same time: id desc
    assert await listed(env, data) == ["amy", *zoe_max, "ivan", "web"]
    assert await listed(env, data, channel="telegram") == ["zoe", "ivan"]
    assert await listed(env, data, channel=["console", "webchat"]) == ["amy", "max", "web"]
    assert await listed(env, data, status="pending") == ["ivan"]
    assert await listed(env, data, status=["open", "resolved"]) == ["amy", *zoe_max, "web"]
    assert await listed(env, data, needs_human="true") == ["zoe", "ivan"]
    assert await listed(env, data, needs_human="false") == ["amy", "max", "web"]
    assert await listed(env, data, assignee=str(ASSIGNEE)) == ["zoe"]
    assert await listed(env, data, has_order="true") == ["amy", "zoe", "ivan"]
    assert await listed(env, data, has_order="false") == ["max", "web"]
    assert await listed(env, data, payment_status="paid") == ["zoe"]
    assert await listed(env, data, payment_status=["payment_link_sent", "no_payment_link"]) == ["amy", "ivan"]
    assert await listed(env, data, label="vip") == ["max"]
    assert await listed(env, data, since=(T0 + timedelta(hours=2)).isoformat(),
                        until=(T0 + timedelta(hours=5)).isoformat()) == [*zoe_max, "ivan"]
    # Text search: any case, any script, message text or contact name/phone; % is a plain character.
    assert await listed(env, data, q="розы") == ["ivan"]
    assert await listed(env, data, q="ИВАН") == ["ivan"]
    assert await listed(env, data, q="100%") == ["zoe"]
    assert await listed(env, data, q="%") == ["zoe"]
    assert await listed(env, data, q="HELLO") == ["web"]  # not beta's "hello there", not acme-two's "hello"
    assert await listed(env, data, q="555 0100") == ["amy"]
    assert await listed(env, data, channel="telegram", needs_human="true", payment_status="paid") == ["zoe"]

    # The tenant-wide inbox: all its companies, or some; another tenant's company is a 404.
    tenant = "/api/v1/tenants/acme"
    assert await listed(env, data, tenant, q="hello") == ["two", "web"]
    assert await listed(env, data, tenant, company="acme-two") == ["two"]
    assert (await env.client.get(f"{tenant}/conversations", params={"company": "beta-shop"},
                                 headers=AUTH)).status_code == 404

    # Summaries: who needs a person, labels, a name to show for every contact.
    r = await env.client.get(f"{SHOP}/conversations", params={"channel": "webchat", "has_order": "false"},
                             headers=AUTH)
    [web] = r.json()
    assert web["needs_human"] is False and web["labels"] == []
    assert web["contact"]["display_name"].startswith("webchat visitor ")
    [mx] = (await env.client.get(f"{SHOP}/conversations", params={"label": "vip"}, headers=AUTH)).json()
    assert mx["labels"] == ["vip"] and mx["contact"]["display_name"] == "Max"

    for bad in ({"status": "closed"}, {"payment_status": "unpaid"}, {"since": "2026-03-01T09:00:00"},
                {"cursor": "not-a-cursor"}, {"limit": 0}, {"q": "a\x00b"}, {"channel": "\x00"},
                {"until": "0001-01-01T00:00:00+05:00"}):
        r = await env.client.get(f"{SHOP}/conversations", params=bad, headers=AUTH)
        assert r.status_code == 422, (bad, r.text)


async def test_cursor_pages_walk_every_conversation_once(env: Env) -> None:
    data = await build_data(env)
    everything = await listed(env, data)
    for limit in (1, 2, 3):
        seen: list[str] = []
        params: dict[str, object] = {"limit": limit}
        pages = 0
        while True:
            r = await env.client.get(f"{SHOP}/conversations", params=params, headers=AUTH)
            assert r.status_code == 200, r.text
            seen += data.names(r.json())
            pages += 1
            cursor = r.headers.get("x-next-cursor")
            if cursor is None:
                assert "link" not in r.headers
                break
            assert 'rel="next"' in r.headers["link"] and f"cursor={cursor}" in r.headers["link"]
            params = {"limit": limit, "cursor": cursor}
        assert seen == everything, limit
        assert pages == -(-len(everything) // limit)
    # Filters and pages combine.
    r = await env.client.get(f"{SHOP}/conversations", params={"limit": 1, "channel": "telegram"}, headers=AUTH)
    assert data.names(r.json()) == ["zoe"]
    r = await env.client.get(f"{SHOP}/conversations", params={"limit": 1, "channel": "telegram",
                                                              "cursor": r.headers["x-next-cursor"]}, headers=AUTH)
    assert data.names(r.json()) == ["ivan"] and "x-next-cursor" not in r.headers


async def test_cli_conversations_list_has_headers_filters_and_pages(env: Env, database_url: str,
                                                                    tmp_path: Path) -> None:
    data = await build_data(env)
    runner = CliRunner()
    cli_env = {"CHATCOMMERCE_DATABASE_URL": database_url, "CHATCOMMERCE_DATA_DIR": str(tmp_path),
               "CHATCOMMERCE_SECRET_KEY": "test-secret-key"}

    async def cli(*args: str) -> str:
        result = await asyncio.to_thread(runner.invoke, cli_app, list(args), env=cli_env,
                                         obj=CliOptions(responder=EchoResponder()))
        assert result.exit_code == 0, (result.stdout, result.stderr)
        return result.stdout

    text = await cli("conversations", "list", "--company", "acme-shop", "--channel", "telegram", "--limit", "1")
    header, row, more = text.splitlines()
    assert header == "ID\tCHANNEL\tSTATUS\tHUMAN\tCONTACT\tLABELS\tLAST MESSAGE\tUPDATED"
    assert row.split("\t")[:5] == [data.ids["zoe"], "telegram", "open", "manager", "Zoe"]
    cursor = more.removeprefix("more: --cursor ")
    page = await cli("conversations", "list", "--company", "acme-shop", "--channel", "telegram", "--limit", "1",
                     "--cursor", cursor, "--json")
    second = json.loads(page)
    assert data.names(second["items"]) == ["ivan"] and second["next_cursor"] is None
    found = json.loads(await cli("conversations", "list", "--tenant", "acme", "-q", "hello", "--json"))
    assert data.names(found["items"]) == ["two", "web"]


async def test_checkout_names_the_contact(env: Env) -> None:
    await make_company(env.client, "acme", "acme-shop")
    await say(env.client, "acme-shop", "v1", "hi")
    [conv] = (await env.client.get(f"{SHOP}/conversations", headers=AUTH)).json()
    assert conv["contact"]["name"] is None and conv["contact"]["display_name"].startswith("webchat visitor ")
    await place_order(env.runtime, conv["id"])  # checkout as the bot does it: customer name "Ann"
    [conv] = (await env.client.get(f"{SHOP}/conversations", headers=AUTH)).json()
    assert conv["contact"]["name"] == "Ann" and conv["contact"]["display_name"] == "Ann"
    detail = (await env.client.get(f"{SHOP}/conversations/{conv['id']}", headers=AUTH)).json()
    [order] = detail["orders"]
    assert order["number"] == 1001 and order["payment_status"] == "payment_link_sent"
    [payment] = order["payments"]
    assert payment["status"] == "payment_link_sent" and payment["link_sent"] is True and payment["paid_at"] is None


async def test_notes_labels_and_canned_replies(env: Env) -> None:
    data = await build_data(env)
    conv = f"{SHOP}/conversations/{data.ids['web']}"
    c = env.client

    # Private notes: listed with the conversation, never among its messages.
    r = await c.post(f"{conv}/notes", json={"text": "Wants gift wrapping"}, headers=AUTH)
    assert r.status_code == 201, r.text
    note = r.json()
    assert (await c.post(f"{conv}/notes", json={"text": "   "}, headers=AUTH)).status_code == 422
    assert (await c.post(f"{conv}/notes", json={"text": "a\x00"}, headers=AUTH)).status_code == 422
    detail = (await c.get(conv, headers=AUTH)).json()
    assert [n["text"] for n in detail["notes"]] == ["Wants gift wrapping"]
    assert "Wants gift wrapping" not in [m["text"] for m in detail["messages"]]
    assert [n["id"] for n in (await c.get(f"{conv}/notes", headers=AUTH)).json()] == [note["id"]]
    other = f"/api/v1/tenants/acme/companies/acme-two/conversations/{data.ids['web']}"
    assert (await c.get(f"{other}/notes", headers=AUTH)).status_code == 404
    assert (await c.delete(f"{conv}/notes/{note['id']}", headers=AUTH)).status_code == 204
    assert (await c.get(f"{conv}/notes", headers=AUTH)).json() == []

    # Labels: a company's set; a conversation carries names from it.
    assert (await c.post(f"{SHOP}/labels", json={"name": "vip"}, headers=AUTH)).status_code == 422  # taken
    r = await c.post(f"{SHOP}/labels", json={"name": "wholesale", "color": "#0a0"}, headers=AUTH)
    assert r.status_code == 201
    wholesale = r.json()
    assert [lb["name"] for lb in (await c.get(f"{SHOP}/labels", headers=AUTH)).json()] == ["vip", "wholesale"]
    r = await c.put(f"{conv}/labels", json={"labels": ["wholesale", "vip"]}, headers=AUTH)
    assert r.json() == {"labels": ["vip", "wholesale"]}
    r = await c.put(f"{conv}/labels", json={"labels": ["vip", "nope"]}, headers=AUTH)
    assert r.status_code == 422 and "nope" in r.text
    assert (await c.get(conv, headers=AUTH)).json()["labels"] == ["vip", "wholesale"]  # unchanged
    assert (await c.delete(f"{SHOP}/labels/{wholesale['id']}", headers=AUTH)).status_code == 204
    assert (await c.get(conv, headers=AUTH)).json()["labels"] == ["vip"]
    assert (await c.get("/api/v1/tenants/acme/companies/acme-two/labels", headers=AUTH)).json() == []

    # Canned replies: per company, picked by shortcut, sent as the person's reply.
    canned = f"{SHOP}/canned-replies"
    r = await c.post(canned, json={"shortcut": "hours", "text": "We are open 9-18."}, headers=AUTH)
    assert r.status_code == 201
    hours = r.json()
    assert (await c.post(canned, json={"shortcut": "hours", "text": "x"}, headers=AUTH)).status_code == 422
    assert (await c.post(canned, json={"shortcut": "two words", "text": "x"}, headers=AUTH)).status_code == 422
    r = await c.patch(f"{canned}/{hours['id']}", json={"text": "We are open 9-19."}, headers=AUTH)
    assert r.status_code == 200 and r.json()["text"] == "We are open 9-19."
    r = await c.post(f"{conv}/messages", json={"canned_reply": "/hours"}, headers=AUTH)
    assert r.status_code == 201 and r.json()["text"] == "We are open 9-19." and r.json()["sender"] == "manager"
    assert (await c.post(f"{conv}/messages", json={"canned_reply": "nope"}, headers=AUTH)).status_code == 404
    assert (await c.post(f"{conv}/messages", json={}, headers=AUTH)).status_code == 422
    assert (await c.get("/api/v1/tenants/acme/companies/acme-two/canned-replies", headers=AUTH)).json() == []
    assert (await c.delete(f"/api/v1/tenants/acme/companies/acme-two/canned-replies/{hours['id']}",
                           headers=AUTH)).status_code == 404
    assert (await c.delete(f"{canned}/{hours['id']}", headers=AUTH)).status_code == 204
    assert (await c.get(canned, headers=AUTH)).json() == []

    # Resolve: closed, and no longer waiting for anyone.
    r = await c.post(f"{SHOP}/conversations/{data.ids['ivan']}/resolve", headers=AUTH)
    assert r.status_code == 200 and (r.json()["status"], r.json()["needs_human"]) == ("resolved", False)


def parse_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


async def test_order_payment_booking_lists_and_csv_exports_are_spreadsheet_safe(env: Env) -> None:
    await make_company(env.client, "acme", "acme-shop")
    async with env.runtime.sessionmaker() as s, s.begin():
        company = await _company(s, "acme-shop")
        tid = company.tenant_id
        contact = Contact(tenant_id=tid, company_id=company.id, name="Eve")
        s.add(contact)
        await s.flush()
        evil = Order(tenant_id=tid, company_id=company.id, contact_id=contact.id, number=1001,
                     status="paid", payment_status="paid", total_minor=123456, currency="USD",
                     customer_name='=HYPERLINK("http://evil.test","click")', phone="+1 555 0100",
                     delivery_address="@SUM(A1:A9)", created_at=T0, paid_at=T0 + timedelta(hours=1))
        evil.lines = [OrderLine(tenant_id=tid, name="-2+3+cmd|' /C calc'!A0", quantity=1, unit_price_minor=123456)]
        plain = Order(tenant_id=tid, company_id=company.id, number=1002, status="pending_payment",
                      payment_status="expired", total_minor=500, currency="USD", customer_name="Bob",
                      created_at=T0 + timedelta(days=1))
        s.add_all([evil, plain])
        await s.flush()
        s.add_all([
            Payment(tenant_id=tid, order_id=evil.id, provider="manual", status="expired", amount_minor=123456,
                    currency="USD", checkout_url="http://testserver/pay/a", created_at=T0,
                    expires_at=T0 + timedelta(minutes=30)),
            Payment(tenant_id=tid, order_id=evil.id, provider="manual", status="paid", amount_minor=123456,
                    currency="USD", checkout_url="http://testserver/pay/b", created_at=T0 + timedelta(minutes=40),
                    paid_at=T0 + timedelta(hours=1), method="test"),
            Payment(tenant_id=tid, order_id=plain.id, provider="manual", status="expired", amount_minor=500,
                    currency="USD", checkout_url="http://testserver/pay/c", created_at=T0 + timedelta(days=1)),
        ])
        resource = Resource(tenant_id=tid, company_id=company.id, name="Anna")
        s.add(resource)
        await s.flush()
        s.add(Booking(tenant_id=tid, company_id=company.id, resource_id=resource.id, contact_id=contact.id,
                      order_id=evil.id, status="confirmed", start_at=T0 + timedelta(days=2),
                      end_at=T0 + timedelta(days=2, hours=1), service_name="+Cut", resource_name="Anna",
                      customer_name="=1+1", prepay_minor=1100, currency="USD"))
    c = env.client

    # Lists with filters.
    orders = lambda **p: c.get(f"{SHOP}/orders", params=p, headers=AUTH)  # noqa: E731
    assert [o["number"] for o in (await orders()).json()] == [1002, 1001]
    assert [o["number"] for o in (await orders(status="paid")).json()] == [1001]
    assert [o["number"] for o in (await orders(payment_status="expired")).json()] == [1002]
    assert [o["number"] for o in (await orders(since=(T0 + timedelta(hours=2)).isoformat())).json()] == [1002]
    assert [o["number"] for o in (await orders(contact_id=str(contact.id))).json()] == [1001]
    assert [o["number"] for o in (await orders(q="bob")).json()] == [1002]
    assert [o["number"] for o in (await orders(q="#1001")).json()] == [1001]
    assert (await orders(status="lost")).status_code == 422
    assert (await orders(q="\x00")).status_code == 422

    # Who got a payment link, when, and whether it was paid.
    payments = (await c.get(f"{SHOP}/payments", headers=AUTH)).json()
    assert [(p["order_number"], p["status"], p["paid"]) for p in payments] == [
        (1002, "expired", False), (1001, "paid", True), (1001, "expired", False)]
    assert payments[1]["sent_at"] == (T0 + timedelta(minutes=40)).isoformat()
    assert payments[1]["paid_at"] == (T0 + timedelta(hours=1)).isoformat()
    assert payments[1]["customer_name"].startswith("=")  # JSON is not a spreadsheet: kept as typed
    assert all("/pay/" not in str(v) for p in payments for v in p.values())  # the links carry tokens
    paid_only = (await c.get(f"{SHOP}/payments", params={"status": "paid"}, headers=AUTH)).json()
    assert [p["order_number"] for p in paid_only] == [1001]

    bookings = (await c.get(f"{SHOP}/bookings", params={"payment_status": "paid"}, headers=AUTH)).json()
    assert [(b["service"], b["payment_status"], b["contact_id"]) for b in bookings] == [
        ("+Cut", "paid", str(contact.id))]
    assert (await c.get(f"{SHOP}/bookings", params={"payment_status": "expired"}, headers=AUTH)).json() == []

    # CSV exports: a header row, and no cell a spreadsheet would run as a formula.
    r = await c.get(f"{SHOP}/exports/orders.csv", params={"status": "paid"}, headers=AUTH)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert 'filename="acme-shop-orders.csv"' in r.headers["content-disposition"]
    [row] = parse_csv(r.text)
    assert row["customer_name"] == '\'=HYPERLINK("http://evil.test","click")'
    assert row["phone"] == "'+1 555 0100" and row["delivery_address"] == "'@SUM(A1:A9)"
    assert row["items"] == "1 x -2+3+cmd|' /C calc'!A0"  # starts with "1": not a formula
    assert (row["number"], row["total"], row["currency"]) == ("1001", "1234.56", "USD")
    payments_csv = parse_csv((await c.get(f"{SHOP}/exports/payments.csv", headers=AUTH)).text)
    assert [(p["order_number"], p["status"], p["paid"]) for p in payments_csv] == [
        ("1002", "expired", "no"), ("1001", "paid", "yes"), ("1001", "expired", "no")]
    assert payments_csv[1]["customer_name"].startswith("'=")
    [booking] = parse_csv((await c.get(f"{SHOP}/exports/bookings.csv", headers=AUTH)).text)
    assert (booking["service"], booking["customer_name"], booking["prepay"]) == ("'+Cut", "'=1+1", "11.00")
    for text in (r.text, (await c.get(f"{SHOP}/exports/payments.csv", headers=AUTH)).text):
        for cells in csv.reader(io.StringIO(text, newline="")):
            assert not any(cell[:1] in "=+-@" and cell for cell in cells), cells


async def test_cli_mark_paid_by_the_number_a_person_sees(env: Env, database_url: str, tmp_path: Path) -> None:
    await make_company(env.client, "acme", "acme-shop")
    await say(env.client, "acme-shop", "v1", "hi")
    [conv] = (await env.client.get(f"{SHOP}/conversations", headers=AUTH)).json()
    await place_order(env.runtime, conv["id"])
    runner = CliRunner()
    cli_env = {"CHATCOMMERCE_DATABASE_URL": database_url, "CHATCOMMERCE_DATA_DIR": str(tmp_path),
               "CHATCOMMERCE_SECRET_KEY": "test-secret-key"}

    def run(*args: str):  # type: ignore[no-untyped-def]
        return asyncio.to_thread(runner.invoke, cli_app, list(args), env=cli_env,
                                 obj=CliOptions(responder=EchoResponder()))

    no_company = await run("orders", "mark-paid", "1001")
    assert no_company.exit_code == 1 and "--company" in no_company.stderr
    missing = await run("orders", "mark-paid", "1002", "--company", "acme-shop")
    assert missing.exit_code == 1 and "#1002 not found" in missing.stderr
    paid = await run("orders", "mark-paid", "1001", "--company", "acme-shop")
    assert paid.exit_code == 0 and paid.stdout.strip() == "order #1001 marked paid"
    again = await run("orders", "mark-paid", "#1001", "--company", "acme-shop", "--method", "bank_transfer")
    assert again.stdout.strip() == "order #1001 was already paid"
    [order] = (await env.client.get(f"{SHOP}/orders", headers=AUTH)).json()
    assert order["payment_status"] == "paid"
    listed = await run("orders", "list", "--company", "acme-shop", "--payment-status", "paid")
    assert listed.stdout.splitlines()[0] == "NUMBER\tSTATUS\tPAYMENT\tTOTAL\tITEMS\tID"
    links = await run("payments", "links", "--company", "acme-shop")
    header, row = links.stdout.splitlines()
    assert header.startswith("ORDER\tCUSTOMER\tSENT") and row.startswith("#1001\tAnn\t")
    export = await run("orders", "export", "--company", "acme-shop")
    assert [r["number"] for r in parse_csv(export.stdout)] == ["1001"]
    kb = await run("kb", "list", "--company", "acme-shop")
    assert kb.stdout.splitlines()[0] == "NAME\tKIND\tPRICE\tSTOCK\tVARIANTS\tCATEGORY\tSKU"
    assert kb.stdout.splitlines()[1].startswith("Ocean Blue Shirt\tproduct\t50.00 USD")
