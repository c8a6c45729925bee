"""The HTTP app: admin API (auth, tenants, companies, knowledge base, conversations, orders), the public
web chat, the payment page and tenant isolation — on SQLite and PostgreSQL.

The dialogue engine is replaced by ``EchoResponder`` (a test double that answers ``echo: <text>``), so
these tests are about the HTTP layer; orders are made with the commerce functions directly.
"""

from __future__ import annotations

import asyncio
import csv
import io
import re
import uuid
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

import api.auth
from api.app import create_app
from api.services import Runtime
from bot.messages import Button, OutboundMessage
from commerce.cart import add_to_cart, open_cart
from commerce.orders import checkout
from commerce.payments import issue_payment_link
from core.models import Company, Conversation, KnowledgeImport, KnowledgeItem, Order, Payment
from core.security import tokens_match
from core.settings import Settings

ADMIN_TOKEN = "test-admin-token-7f3a"
AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


class EchoResponder:
    """Test double for the dialogue engine: one reply per message, ``echo: <text>``; the text
    ``menu`` gets two buttons and a link."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def respond(self, session, *, inbound, conversation, company):  # type: ignore[no-untyped-def]
        self.seen.append(inbound.text)
        if inbound.text == "menu":
            return [OutboundMessage(text="Pick one", buttons=(Button("Shirts", "shirts"), Button("Tops", "tops")),
                                    url="https://example.com/catalog")]
        return [OutboundMessage(text=f"echo: {inbound.text}")]


def make_settings(database_url: str, tmp_path: Path, **overrides: object) -> Settings:
    """Settings for a test app (no .env file; explicit values win over the environment)."""
    values: dict[str, object] = {
        "database_url": database_url,
        "admin_token": ADMIN_TOKEN,
        "admin_token_enabled": True,  # the bootstrap admin token, on in every test app
        "secret_key": "test-secret-key",
        "data_dir": tmp_path,
        "public_base_url": "http://testserver",
        "demo_mode": True,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[arg-type, call-arg]


@dataclass
class Env:
    client: httpx.AsyncClient
    app: FastAPI
    responder: EchoResponder | None

    @property
    def runtime(self) -> Runtime:
        return self.app.state.runtime


@asynccontextmanager
async def running(settings: Settings, *, echo: bool = True) -> AsyncIterator[Env]:
    """The app with its lifespan entered, and an HTTP client talking to it in-process; ``echo=False``
    keeps the real dialogue engine."""
    responder = EchoResponder() if echo else None
    app = create_app(settings, responder=responder)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield Env(client=client, app=app, responder=responder)


@pytest.fixture
async def env(database_url: str, tmp_path: Path) -> AsyncIterator[Env]:
    async with running(make_settings(database_url, tmp_path)) as e:
        yield e


# -- helpers ---------------------------------------------------------------------------------------


async def make_company(client: httpx.AsyncClient, tenant: str, company: str, **fields: str) -> dict:
    listed = await client.get("/api/v1/tenants", headers=AUTH)
    if tenant not in {t["slug"] for t in listed.json()}:
        r = await client.post("/api/v1/tenants", json={"name": tenant.title(), "slug": tenant}, headers=AUTH)
        assert r.status_code == 201, r.text
    body = {"slug": company, "name": fields.pop("name", company.title()), **fields}
    r = await client.post(f"/api/v1/tenants/{tenant}/companies", json=body, headers=AUTH)
    assert r.status_code == 201, r.text
    return r.json()


async def upload(client: httpx.AsyncClient, tenant: str, company: str, filename: str, data: bytes) -> httpx.Response:
    return await client.post(f"/api/v1/tenants/{tenant}/companies/{company}/knowledge-base",
                             files={"file": (filename, data, "text/csv")}, headers=AUTH)


async def wait_for_job(client: httpx.AsyncClient, job_url: str, *, seen: list[str] | None = None) -> dict:
    """Poll an import job until it is done or failed; returns it (``seen`` collects the statuses met)."""
    for _ in range(6000):  # a bound, not a timing: ~60 s
        r = await client.get(job_url, headers=AUTH)
        assert r.status_code == 200, r.text
        job = r.json()
        if seen is not None and (not seen or seen[-1] != job["status"]):
            seen.append(job["status"])
        if job["status"] in ("done", "failed"):
            return job
        await asyncio.sleep(0.01)
    raise AssertionError(f"import job {job_url} never ended")


async def import_file(client: httpx.AsyncClient, tenant: str, company: str, filename: str, data: bytes) -> dict:
    """Upload a knowledge file (202 with a queued job) and wait for the job to end; returns the job."""
    r = await upload(client, tenant, company, filename, data)
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "queued"
    return await wait_for_job(client, r.headers["location"])


async def items(client: httpx.AsyncClient, tenant: str, company: str) -> list[dict]:
    r = await client.get(f"/api/v1/tenants/{tenant}/companies/{company}/knowledge-base/items", headers=AUTH)
    assert r.status_code == 200, r.text
    return r.json()


# The visitor tokens the server issued, per test client and (company, the test's name for the visitor).
_VISITORS: weakref.WeakKeyDictionary[httpx.AsyncClient, dict[tuple[str, str], str]] = weakref.WeakKeyDictionary()


def visitor_headers(client: httpx.AsyncClient, company: str, contact: str) -> dict[str, str]:
    """The ``X-Visitor-Token`` header of the visitor the test calls ``contact`` (none before its first
    message, which makes the server start a new visitor)."""
    token = _VISITORS.setdefault(client, {}).get((company, contact))
    return {"X-Visitor-Token": token} if token else {}


async def say(client: httpx.AsyncClient, company: str, contact: str, text: str, message_id: str | None = None) -> dict:
    """Visitor ``contact`` (the test's name for it) sends ``text``, as an API client: the token the
    server issued on its first message goes back in ``X-Visitor-Token``; the client's cookie jar is
    not used (the cookie would make every visitor of the client the same)."""
    body = {"text": text, **({"message_id": message_id} if message_id else {})}
    r = await client.post(f"/api/v1/webchat/{company}/messages", json=body,
                          headers=visitor_headers(client, company, contact))
    client.cookies.delete("cc_visitor")
    assert r.status_code == 200, r.text
    data = r.json()
    if data.get("visitor_token"):
        _VISITORS.setdefault(client, {})[(company, contact)] = data["visitor_token"]
    return data


async def poll(client: httpx.AsyncClient, company: str, contact: str, after: int = 0) -> dict:
    """What visitor ``contact`` sees when polling its conversation."""
    r = await client.get(f"/api/v1/webchat/{company}/messages", params={"after": after},
                         headers=visitor_headers(client, company, contact))
    assert r.status_code == 200, r.text
    return r.json()


def pay_token(checkout_url: str | None) -> str:
    """The token of a manual payment link ``.../pay/{token}`` (what the customer was sent)."""
    assert checkout_url and "/pay/" in checkout_url, checkout_url
    return checkout_url.rsplit("/pay/", 1)[1]


@dataclass
class PlacedOrder:
    order_id: uuid.UUID
    token: str
    conversation_id: uuid.UUID


async def place_order(runtime: Runtime, conversation_id: str, *, item_name: str = "Ocean Blue Shirt",
                      price_minor: int = 5000, quantity: int = 2) -> PlacedOrder:
    """What the dialogue engine does at checkout: cart → order → payment link (the manual provider)."""
    async with runtime.sessionmaker() as s, s.begin():
        conversation = await s.get(Conversation, uuid.UUID(conversation_id))
        assert conversation is not None
        company = await s.get(Company, conversation.company_id)
        assert company is not None
        item = KnowledgeItem(tenant_id=company.tenant_id, company_id=company.id, name=item_name,
                             price_minor=price_minor, currency=company.currency, attributes={})
        s.add(item)
        await s.flush()
        cart = await open_cart(s, conversation)
        await add_to_cart(s, cart, item_id=item.id, variant_id=None, quantity=quantity)
        order = await checkout(s, cart=cart, conversation=conversation, company=company,
                               customer_name="Ann", delivery_address="1 Main St")
        payment = await issue_payment_link(s, order=order, company=company, providers=runtime.providers,
                                           ttl=runtime.payment_ttl)
        return PlacedOrder(order_id=order.id, token=pay_token(payment.checkout_url), conversation_id=conversation.id)


def broken_copy(path: Path, *, record: int, column: str, value: str) -> bytes:
    """``path`` with one cell replaced; ``record`` counts like a spreadsheet (header = 1)."""
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    rows[record - 1][rows[0].index(column)] = value
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode()


# -- app basics and admin auth ---------------------------------------------------------------------


async def test_healthz_and_openapi(env: Env) -> None:
    r = await env.client.get("/healthz")
    assert r.status_code == 200 and r.json()["status"] == "ok"
    docs = await env.client.get("/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
    paths = (await env.client.get("/openapi.json")).json()["paths"]
    assert "/api/v1/tenants" in paths and "/api/v1/webchat/{company}/messages" in paths


async def test_admin_token_is_required_and_compared_in_constant_time(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[str | None, str | None]] = []

    def spy(given: str | None, expected: str | None) -> bool:
        calls.append((given, expected))
        return tokens_match(given, expected)

    monkeypatch.setattr(api.auth, "tokens_match", spy)
    missing = await env.client.get("/api/v1/tenants")
    wrong = await env.client.get("/api/v1/tenants", headers={"Authorization": "Bearer nope"})
    basic = await env.client.get("/api/v1/tenants", headers={"Authorization": f"Basic {ADMIN_TOKEN}"})
    right = await env.client.get("/api/v1/tenants", headers=AUTH)
    assert (missing.status_code, wrong.status_code, basic.status_code, right.status_code) == (401, 401, 401, 200)
    assert missing.headers["www-authenticate"] == "Bearer"
    assert right.json() == []
    assert ("nope", ADMIN_TOKEN) in calls and (ADMIN_TOKEN, ADMIN_TOKEN) in calls
    # Unknown tenants are not revealed to a caller without the token.
    assert (await env.client.get("/api/v1/tenants/ghost/companies")).status_code == 401


async def test_admin_api_is_closed_without_a_configured_token(database_url: str, tmp_path: Path) -> None:
    async with running(make_settings(database_url, tmp_path, admin_token=None)) as e:
        r = await e.client.get("/api/v1/tenants", headers=AUTH)
        assert r.status_code == 401 and r.json() == {"detail": "invalid or missing credentials"}
        assert (await e.client.get("/healthz")).status_code == 200  # the rest of the app works


async def test_admin_token_is_off_by_default_outside_demo_mode(database_url: str, tmp_path: Path) -> None:
    # The bootstrap token is refused unless demo mode or CHATCOMMERCE_ADMIN_TOKEN_ENABLED turns it on.
    async with running(make_settings(database_url, tmp_path, demo_mode=False, admin_token_enabled=None)) as e:
        assert (await e.client.get("/api/v1/tenants", headers=AUTH)).status_code == 401
    async with running(make_settings(database_url, tmp_path, demo_mode=True, admin_token_enabled=None)) as e:
        assert (await e.client.get("/api/v1/tenants", headers=AUTH)).status_code == 200
    async with running(make_settings(database_url, tmp_path, demo_mode=False, admin_token_enabled=True)) as e:
        assert (await e.client.get("/api/v1/tenants", headers=AUTH)).status_code == 200
    async with running(make_settings(database_url, tmp_path, demo_mode=True, admin_token_enabled=False)) as e:
        assert (await e.client.get("/api/v1/tenants", headers=AUTH)).status_code == 401


# -- tenants, companies, knowledge base ------------------------------------------------------------


async def test_create_tenant_company_and_import_shopify_export(env: Env, shop_export: Path) -> None:
    c = env.client
    r = await c.post("/api/v1/tenants", json={"name": "Acme", "slug": "acme"}, headers=AUTH)
    assert r.status_code == 201 and r.json()["slug"] == "acme"
    taken = await c.post("/api/v1/tenants", json={"name": "Acme 2", "slug": "acme"}, headers=AUTH)
    assert taken.status_code == 422 and "taken" in taken.json()["detail"]
    bad = await c.post("/api/v1/tenants", json={"name": "X", "slug": "Not A Slug"}, headers=AUTH)
    assert bad.status_code == 422 and "slug" in bad.json()["detail"]

    company = await make_company(c, "acme", "acme-shop", name="Acme Apparel", currency="usd",
                                 timezone="America/New_York")
    assert company["currency"] == "USD" and company["human_id"] == "COMP001" and company["kb_version"] == 0
    bad_tz = await c.post("/api/v1/tenants/acme/companies",
                          json={"slug": "other", "name": "Other", "timezone": "Mars/Olympus"}, headers=AUTH)
    assert bad_tz.status_code == 422 and "timezone" in bad_tz.json()["detail"]
    listed = await c.get("/api/v1/tenants/acme/companies", headers=AUTH)
    assert [x["slug"] for x in listed.json()] == ["acme-shop"]
    assert (await c.get("/api/v1/tenants/nobody/companies", headers=AUTH)).status_code == 404

    job = await import_file(c, "acme", "acme-shop", "apparel.csv", shop_export.read_bytes())
    assert job["status"] == "done", job
    counts = job["counts"]
    assert (counts["items"], counts["variants"], counts["faq"], job["kb_version"]) == (34, 90, 0, 1)
    listed_items = await items(c, "acme", "acme-shop")
    assert len(listed_items) == counts["items"]
    shirt = next(i for i in listed_items if i["name"] == "Ocean Blue Shirt")
    assert shirt["price_minor"] == 5000 and shirt["currency"] == "USD"


async def test_broken_upload_is_refused_with_row_and_column_and_changes_nothing(env: Env, shop_export: Path) -> None:
    c = env.client
    await make_company(c, "acme", "acme-shop")
    good = shop_export.read_bytes()
    assert (await import_file(c, "acme", "acme-shop", "apparel.csv", good))["status"] == "done"
    before = await items(c, "acme", "acme-shop")

    broken = broken_copy(shop_export, record=4, column="Variant Price", value="abc")
    job = await import_file(c, "acme", "acme-shop", "apparel-v2.csv", broken)
    assert job["status"] == "failed" and job["counts"] is None
    detail = job["errors"][0]
    assert detail["row"] == 4 and detail["column"] == "Variant Price" and "abc" in detail["message"]

    assert await items(c, "acme", "acme-shop") == before
    company = (await c.get("/api/v1/tenants/acme/companies/acme-shop", headers=AUTH)).json()
    assert company["kb_version"] == 1
    async with env.runtime.sessionmaker() as s:
        audit = (await s.execute(select(KnowledgeImport.status).order_by(KnowledgeImport.created_at))).scalars()
        assert list(audit) == ["ok", "failed"]


# -- web chat --------------------------------------------------------------------------------------


async def test_webchat_post_duplicate_and_poll(env: Env) -> None:
    c = env.client
    await make_company(c, "acme", "acme-shop")
    first = await say(c, "acme-shop", "visitor-1", "hello", message_id="m-1")
    assert first["duplicate"] is False and first["conversation_id"]
    assert first["replies"] == [{"text": "echo: hello", "buttons": [], "url": None, "image_url": None}]
    again = await say(c, "acme-shop", "visitor-1", "hello", message_id="m-1")
    assert again["duplicate"] is True and again["replies"] == []
    assert env.responder is not None and env.responder.seen == ["hello"]

    menu = await say(c, "acme-shop", "visitor-1", "menu")
    assert menu["replies"][0]["buttons"] == [{"title": "Shirts", "payload": "shirts"},
                                             {"title": "Tops", "payload": "tops"}]
    assert menu["replies"][0]["url"] == "https://example.com/catalog"

    history = await poll(c, "acme-shop", "visitor-1")
    assert history["conversation_id"] == first["conversation_id"]
    assert [(m["direction"], m["text"]) for m in history["messages"]] == [
        ("in", "hello"), ("out", "echo: hello"), ("in", "menu"), ("out", "Pick one")]
    last = history["messages"][-1]
    assert last["buttons"][0]["title"] == "Shirts" and last["url"] == "https://example.com/catalog"
    assert (await poll(c, "acme-shop", "visitor-1", after=last["seq"]))["messages"] == []
    assert await poll(c, "acme-shop", "someone-else") == {"conversation_id": None, "messages": [], "language": None}

    empty = await c.post("/api/v1/webchat/acme-shop/messages", json={"text": "  "})
    assert empty.status_code == 422 and "text" in empty.json()["detail"]
    assert "set-cookie" not in empty.headers  # nothing stored, no visitor started
    unknown = await c.post("/api/v1/webchat/no-such-shop/messages", json={"text": "hi"})
    assert unknown.status_code == 404


async def test_chat_page_is_self_contained_and_escapes_the_company_name(env: Env) -> None:
    c = env.client
    await make_company(c, "acme", "acme-shop", name="<b>Bold & Co</b>")
    page = await c.get("/chat/acme-shop")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "&lt;b&gt;Bold &amp; Co&lt;/b&gt;" in html and "<b>Bold" not in html
    assert "/api/v1/webchat/acme-shop/messages" in html
    assert "localStorage" not in html and "contact" not in html  # the page never names the visitor
    assert not re.search(r"<(script|link)[^>]+(src|href)=\"?https?://", html)  # no CDN
    assert (await c.get("/chat/no-such-shop")).status_code == 404


# -- manager actions -------------------------------------------------------------------------------


async def test_manager_takes_over_replies_and_releases(env: Env) -> None:
    c = env.client
    await make_company(c, "acme", "acme-shop")
    base = "/api/v1/tenants/acme/companies/acme-shop/conversations"
    first = await say(c, "acme-shop", "visitor-1", "hello")
    conv_id = first["conversation_id"]

    listed = (await c.get(base, headers=AUTH)).json()
    assert len(listed) == 1
    assert listed[0]["contact"]["source_id"].startswith("web-") and listed[0]["channel"] == "webchat"
    assert listed[0]["handoff"] is False and listed[0]["last_message"]["text"] == "echo: hello"

    taken = await c.post(f"{base}/{conv_id}/handoff", headers=AUTH)
    assert taken.status_code == 200 and taken.json()["handoff"] is True
    silent = await say(c, "acme-shop", "visitor-1", "is anyone there?")
    assert silent["replies"] == [] and silent["handoff"] is True

    sent = await c.post(f"{base}/{conv_id}/messages", json={"text": "Hi, this is Maria."}, headers=AUTH)
    assert sent.status_code == 201
    assert sent.json()["sender"] == "manager" and sent.json()["direction"] == "out"
    assert sent.json()["status"] == "sent"
    seen_by_visitor = [m["text"] for m in (await poll(c, "acme-shop", "visitor-1"))["messages"]]
    assert seen_by_visitor[-2:] == ["is anyone there?", "Hi, this is Maria."]

    released = await c.post(f"{base}/{conv_id}/release", headers=AUTH)
    assert released.json()["handoff"] is False
    assert (await say(c, "acme-shop", "visitor-1", "thanks"))["replies"][0]["text"] == "echo: thanks"

    detail = (await c.get(f"{base}/{conv_id}", headers=AUTH)).json()
    assert [(m["direction"], m["sender"], m["text"]) for m in detail["messages"]] == [
        ("in", "contact", "hello"), ("out", "bot", "echo: hello"), ("in", "contact", "is anyone there?"),
        ("out", "manager", "Hi, this is Maria."), ("in", "contact", "thanks"), ("out", "bot", "echo: thanks")]
    assert {"payload", "status", "created_at"} <= detail["messages"][0].keys()
    assert (await c.get(f"{base}/{uuid.uuid4()}", headers=AUTH)).status_code == 404
    empty = await c.post(f"{base}/{conv_id}/messages", json={"text": ""}, headers=AUTH)
    assert empty.status_code == 422


# -- orders and payments ---------------------------------------------------------------------------


async def test_orders_listed_and_marked_paid_by_a_manager(env: Env) -> None:
    c = env.client
    await make_company(c, "acme", "acme-shop")
    chat = await say(c, "acme-shop", "visitor-1", "I want two shirts")
    placed = await place_order(env.runtime, chat["conversation_id"])
    base = "/api/v1/tenants/acme/companies/acme-shop/orders"

    orders = (await c.get(base, headers=AUTH)).json()
    assert len(orders) == 1
    order = orders[0]
    assert order["id"] == str(placed.order_id) and order["number"] == 1001
    assert (order["status"], order["payment_status"], order["total_minor"], order["currency"]) == (
        "pending_payment", "payment_link_sent", 10000, "USD")
    line = order["lines"][0]
    assert (line["name"], line["variant"], line["quantity"], line["unit_price_minor"]) == (
        "Ocean Blue Shirt", None, 2, 5000)

    bad = await c.post(f"{base}/{placed.order_id}/mark-paid", json={"method": "bitcoin"}, headers=AUTH)
    assert bad.status_code == 422
    paid = await c.post(f"{base}/{placed.order_id}/mark-paid", json={"method": "cash"}, headers=AUTH)
    assert paid.status_code == 200
    assert paid.json()["payment_status"] == "paid" and paid.json()["changed"] is True
    again = await c.post(f"{base}/{placed.order_id}/mark-paid", json={"method": "cash"}, headers=AUTH)
    assert again.json()["changed"] is False

    messages = (await poll(c, "acme-shop", "visitor-1"))["messages"]
    confirmations = [m for m in messages if m["sender"] == "system"]
    assert len(confirmations) == 1
    assert "order #1001" in confirmations[0]["text"] and "100.00 USD" in confirmations[0]["text"]


async def test_pay_page_and_test_payment_in_demo_mode(env: Env) -> None:
    c = env.client
    await make_company(c, "acme", "acme-shop")
    chat = await say(c, "acme-shop", "visitor-1", "checkout")
    placed = await place_order(env.runtime, chat["conversation_id"], item_name="Shirt <b>bold</b>", quantity=2)

    assert (await c.get("/pay/not-a-real-token")).status_code == 404
    assert (await c.post("/pay/not-a-real-token/test")).status_code == 404
    page = await c.get(f"/pay/{placed.token}")
    assert page.status_code == 200
    html = page.text
    assert "Order #1001" in html and "100.00 USD" in html and "50.00 USD" in html
    assert "Shirt &lt;b&gt;bold&lt;/b&gt;" in html and "<b>bold" not in html
    assert "Awaiting payment" in html and f'action="/pay/{placed.token}/test"' in html

    paid = await c.post(f"/pay/{placed.token}/test", follow_redirects=True)
    assert paid.status_code == 200
    assert 'data-state="paid"' in paid.text and ">Paid<" in paid.text and "/test" not in paid.text

    async with env.runtime.sessionmaker() as s:
        order = await s.get(Order, placed.order_id)
        payment = (await s.execute(select(Payment).where(Payment.order_id == placed.order_id))).scalar_one()
        assert order is not None and order.payment_status == "paid" and order.status == "paid"
        assert payment.method == "test" and payment.status == "paid"
    confirmation = (await poll(c, "acme-shop", "visitor-1"))["messages"][-1]
    assert confirmation["sender"] == "system" and "Payment received for order #1001" in confirmation["text"]
    # Paying twice changes nothing and sends no second confirmation.
    await c.post(f"/pay/{placed.token}/test", follow_redirects=True)
    texts = [m["text"] for m in (await poll(c, "acme-shop", "visitor-1"))["messages"]]
    assert sum("Payment received" in t for t in texts) == 1


async def test_test_payment_is_forbidden_outside_demo_mode(database_url: str, tmp_path: Path) -> None:
    async with running(make_settings(database_url, tmp_path, demo_mode=False)) as e:
        await make_company(e.client, "acme", "acme-shop", language="ru", currency="RUB")
        chat = await say(e.client, "acme-shop", "visitor-1", "хочу розы")
        placed = await place_order(e.runtime, chat["conversation_id"], item_name="Роза", price_minor=15000)
        page = await e.client.get(f"/pay/{placed.token}")
        assert page.status_code == 200
        assert "Заказ №1001" in page.text and "300,00 ₽" in page.text and "/test" not in page.text
        r = await e.client.post(f"/pay/{placed.token}/test")
        assert r.status_code == 403
        async with e.runtime.sessionmaker() as s:
            order = await s.get(Order, placed.order_id)
            assert order is not None and order.payment_status == "payment_link_sent"


# -- tenant isolation ------------------------------------------------------------------------------


async def test_tenants_cannot_see_each_others_companies_conversations_or_orders(env: Env) -> None:
    c = env.client
    await make_company(c, "alpha", "alpha-shop")
    await make_company(c, "beta", "beta-shop")
    chat = await say(c, "beta-shop", "visitor-b", "hello beta")
    placed = await place_order(env.runtime, chat["conversation_id"])
    beta_conv = chat["conversation_id"]

    assert (await c.get("/api/v1/tenants/alpha/companies/beta-shop", headers=AUTH)).status_code == 404
    for path in ("conversations", f"conversations/{beta_conv}", "orders", "knowledge-base/items"):
        r = await c.get(f"/api/v1/tenants/alpha/companies/beta-shop/{path}", headers=AUTH)
        assert r.status_code == 404, path
    # Beta's ids through alpha's own company are not found either.
    alpha = "/api/v1/tenants/alpha/companies/alpha-shop"
    assert (await c.get(f"{alpha}/conversations/{beta_conv}", headers=AUTH)).status_code == 404
    assert (await c.post(f"{alpha}/conversations/{beta_conv}/handoff", headers=AUTH)).status_code == 404
    assert (await c.post(f"{alpha}/conversations/{beta_conv}/messages", json={"text": "hi"},
                         headers=AUTH)).status_code == 404
    assert (await c.post(f"{alpha}/orders/{placed.order_id}/mark-paid", json={"method": "cash"},
                         headers=AUTH)).status_code == 404
    assert (await c.get(f"{alpha}/conversations", headers=AUTH)).json() == []
    assert (await c.get(f"{alpha}/orders", headers=AUTH)).json() == []
    assert [x["slug"] for x in (await c.get("/api/v1/tenants/alpha/companies", headers=AUTH)).json()] == ["alpha-shop"]

    async with env.runtime.sessionmaker() as s:
        order = await s.get(Order, placed.order_id)
        conv = await s.get(Conversation, uuid.UUID(beta_conv))
        assert order is not None and order.payment_status == "payment_link_sent"
        assert conv is not None and conv.handoff is False
    beta = (await c.get("/api/v1/tenants/beta/companies/beta-shop/orders", headers=AUTH)).json()
    assert [o["id"] for o in beta] == [str(placed.order_id)]


async def test_items_with_the_same_name_stay_in_their_own_tenants_kb(env: Env, shop_export: Path) -> None:
    c = env.client
    await make_company(c, "alpha", "alpha-shop")
    await make_company(c, "beta", "beta-shop")
    job = await import_file(c, "alpha", "alpha-shop", "apparel.csv", shop_export.read_bytes())
    assert job["status"] == "done"
    alpha_before = await items(c, "alpha", "alpha-shop")
    own_sheet = b"Name,Price,Description\nOcean Blue Shirt,99.00,Our own shirt\n"
    job = await import_file(c, "beta", "beta-shop", "beta.csv", own_sheet)
    assert job["status"] == "done" and job["counts"]["items"] == 1

    beta_items = await items(c, "beta", "beta-shop")
    assert [(i["name"], i["price_minor"]) for i in beta_items] == [("Ocean Blue Shirt", 9900)]
    alpha_after = await items(c, "alpha", "alpha-shop")
    assert alpha_after == alpha_before
    assert next(i for i in alpha_after if i["name"] == "Ocean Blue Shirt")["price_minor"] == 5000
    async with env.runtime.sessionmaker() as s:
        total = (await s.execute(select(func.count()).select_from(KnowledgeItem))).scalar_one()
        assert total == len(alpha_after) + 1


# -- the real dialogue engine ----------------------------------------------------------------------


async def test_real_engine_sells_through_the_web_chat_and_the_pay_page(database_url: str, tmp_path: Path) -> None:
    """What a visitor of the demo does: ask, add to cart, check out, open the link, pay, see the receipt."""
    examples = Path(__file__).resolve().parent.parent / "examples"
    async with running(make_settings(database_url, tmp_path), echo=False) as e:
        c = e.client
        await make_company(c, "acme", "apparel", name="Northwind Apparel")
        for name in ("apparel-shop.csv", "apparel-faq.csv"):
            assert (await import_file(c, "acme", "apparel", name, (examples / name).read_bytes()))["status"] == "done"
        pay_url = None
        for text in ("hi", "I want the Ocean Blue Shirt", "checkout", "Ann Smith", "1 Main St, Springfield", "skip"):
            replies = (await say(c, "apparel", "visitor-1", text))["replies"]
            assert replies and all(r["text"] for r in replies), text
            found = [r["url"] for r in replies if r["url"] and "/pay/" in r["url"]] + re.findall(
                r"http://testserver/pay/[\w-]+", " ".join(r["text"] for r in replies))
            if found:
                pay_url = found[0]
                break
        assert pay_url and pay_url.startswith("http://testserver/pay/"), "the bot never sent a payment link"
        path = pay_url.removeprefix("http://testserver")
        page = await c.get(path)
        assert page.status_code == 200 and "Ocean Blue Shirt" in page.text and "50.00 USD" in page.text
        assert (await c.post(f"{path}/test", follow_redirects=True)).status_code == 200
        last = (await poll(c, "apparel", "visitor-1"))["messages"][-1]
        assert last["sender"] == "system" and "Payment received" in last["text"]
