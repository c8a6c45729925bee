"""Stripe payment links, Stripe Connect and bookings end to end: the real app, the real dialogue engine.

The app is ``api.app.create_app`` with Stripe configured (secret key, both webhook signing secrets,
the API base pointing at ``StripeFixtureServer``, tests/doubles/stripe_server.py), demo mode and the
background workers off. Customers talk through the public web chat API; owners use the admin API;
Stripe's webhooks are signed here exactly as Stripe signs them and posted to ``POST /webhooks/stripe``.
The double records every request the official SDK sends, so the tests check the exact Checkout
Session parameters and headers.

The dialogue engine is the real ``DialogueEngine`` on the runtime's providers and knowledge index,
with one change: its clock reads 08:00 in Berlin on the next Tuesday, so "tomorrow afternoon" is a
Wednesday afternoon (the demo salon is open Tuesday to Saturday) and every hold and delivery window
lies ahead of the real clock that Stripe's webhooks are processed with.

20 concurrent attempts on one slot (exactly one booking) are covered on PostgreSQL by
tests/test_bookings.py::test_twenty_concurrent_holds_on_one_slot.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.app import create_app
from api.demo import DEMO_COMPANIES, DemoCompany, _configure
from api.services import Runtime
from bot import texts
from bot.engine import DialogueEngine
from bot.messages import InboundMessage, OutboundMessage
from commerce.delivery import order_delivery
from core.models import Booking, Company, Conversation, Order, Payment, WebhookEvent
from core.settings import Settings
from tests.conftest import STRIPE_FIXTURES
from tests.doubles.stripe_server import RecordedRequest, StripeFixtureServer, make_event, sign_payload
from tests.test_api import ADMIN_TOKEN, AUTH, import_file, make_company, poll, say

# stripe-python's HTTPXClient passes the form body as ``data=bytes``, which httpx 0.28 deprecates.
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")

BASE = "http://testserver"
TENANT = "acme"
PLATFORM_SECRET = "whsec_platform_e2e"
CONNECT_SECRET = "whsec_connect_e2e"
EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
BERLIN = ZoneInfo("Europe/Berlin")
APPAREL = next(c for c in DEMO_COMPANIES if c.slug == "apparel")  # delivery windows in Springfield
SALON = next(c for c in DEMO_COMPANIES if c.slug == "salon")  # Anna and Marco, Tue-Sat, 25 % prepayment


def next_tuesday_morning() -> datetime:
    """08:00 in Berlin on the first Tuesday after today (real clock), as aware UTC."""
    today = datetime.now(BERLIN).date()
    day = today + timedelta(days=(1 - today.weekday()) % 7 or 7)
    return datetime.combine(day, clock_time(8), tzinfo=BERLIN).astimezone(UTC)


class ClockedEngine:
    """The real ``DialogueEngine``, built on the running app's providers (manual and Stripe), knowledge
    index cache and payment TTL once the runtime exists, with a fixed clock."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        self.engine: DialogueEngine | None = None

    def bind(self, runtime: Runtime) -> None:
        self.engine = DialogueEngine(index_cache=runtime.index_cache, providers=runtime.providers,
                                     payment_ttl=runtime.payment_ttl, clock=lambda: self.now)

    async def respond(self, session: AsyncSession, *, inbound: InboundMessage, conversation: Conversation,
                      company: Company) -> list[OutboundMessage]:
        assert self.engine is not None, "bind() the engine to the runtime first"
        return await self.engine.respond(session, inbound=inbound, conversation=conversation, company=company)


@dataclass
class Reply:
    """What the customer saw after one message: the bot's last reply (text, buttons, link)."""

    text: str
    buttons: list[str]
    payloads: dict[str, str]
    url: str | None
    all_texts: list[str] = field(default_factory=list)


@dataclass
class Env:
    app: FastAPI
    client: httpx.AsyncClient
    stripe: StripeFixtureServer
    now: datetime

    @property
    def runtime(self) -> Runtime:
        return self.app.state.runtime

    # -- the customer ------------------------------------------------------------------------------
    async def say(self, company: str, contact: str, text: str) -> Reply:
        replies = (await say(self.client, company, contact, text))["replies"]
        assert replies, f"no reply to {text!r}"
        last = replies[-1]
        return Reply(text=last["text"], buttons=[b["title"] for b in last["buttons"]],
                     payloads={b["title"]: b["payload"] for b in last["buttons"]}, url=last["url"],
                     all_texts=[x["text"] for x in replies])

    async def press(self, company: str, contact: str, reply: Reply, title: str) -> Reply:
        assert title in reply.payloads, f"{title!r} not among {reply.buttons}"
        return await self.say(company, contact, reply.payloads[title])

    async def chat(self, company: str, contact: str, after: int = 0) -> list[dict[str, Any]]:
        """The customer's conversation as the chat page polls it (both directions, in order)."""
        return (await poll(self.client, company, contact, after))["messages"]

    # -- the owner ---------------------------------------------------------------------------------
    async def admin(self, method: str, path: str, *, expect: int = 200, **kw: Any) -> Any:
        r = await self.client.request(method, f"/api/v1/tenants/{TENANT}/companies/{path}", headers=AUTH, **kw)
        assert r.status_code == expect, r.text
        return r.json()

    async def orders(self, company: str) -> list[dict[str, Any]]:
        return await self.admin("GET", f"{company}/orders")

    async def create_company(self, spec: DemoCompany, *, kb: list[tuple[str, bytes]]) -> None:
        """A company like the demo's ``spec`` (its fields, staff, schedule, delivery windows), created
        through the admin API, with the knowledge-base files ``kb`` uploaded there."""
        await make_company(self.client, TENANT, spec.slug, name=spec.name, type=spec.type, currency=spec.currency,
                           language=spec.language, timezone=spec.timezone)
        for filename, data in kb:
            assert (await import_file(self.client, TENANT, spec.slug, filename, data))["status"] == "done"
        async with self.runtime.sessionmaker() as s, s.begin():
            company = (await s.execute(select(Company).where(Company.slug == spec.slug))).scalar_one()
            await _configure(s, company, spec)

    async def connect_stripe(self, company: str) -> str:
        """Owner: connect a Stripe account, finish onboarding (Stripe then sends ``account.updated``),
        switch the company to Stripe. Returns the connected account's id."""
        connected = await self.admin("POST", f"{company}/stripe/connect", json={})
        account = connected["stripe_account_id"]
        self.stripe.complete_onboarding(account)
        r = await self.webhook(make_event(STRIPE_FIXTURES, type="account.updated", obj=self.stripe.account(account),
                                          account=account))
        assert r.json()["status"] == "processed", r.text
        assert (await self.admin("PUT", f"{company}/payment-provider", json={"provider": "stripe"}))[
            "charges_enabled"] is True
        return account

    # -- Stripe ------------------------------------------------------------------------------------
    async def webhook(self, event: dict[str, Any], *, secret: str = CONNECT_SECRET, timestamp: int | None = None,
                      expect: int = 200) -> httpx.Response:
        """POST ``event`` to ``/webhooks/stripe`` signed as Stripe signs it (``Stripe-Signature``)."""
        payload = json.dumps(event)
        r = await self.client.post("/webhooks/stripe", content=payload, headers={
            "Content-Type": "application/json", "Stripe-Signature": sign_payload(payload, secret, timestamp=timestamp)})
        assert r.status_code == expect, r.text
        return r

    def sessions_created(self) -> list[RecordedRequest]:
        return [r for r in self.stripe.requests_to("POST", "/v1/checkout/sessions") if r.status == 200]

    def session_event(self, session_id: str, type_: str, *, account: str, **changes: Any) -> dict[str, Any]:
        """A Checkout Session event about the session the double created (as Stripe would send it)."""
        obj = self.stripe.checkout_session(session_id)
        if type_ == "checkout.session.completed":
            obj.update(status="complete", payment_status="paid", payment_intent=f"pi_{uuid.uuid4().hex[:24]}")
        elif type_ == "checkout.session.expired":
            obj.update(status="expired", url=None)
        obj.update(changes)
        return make_event(STRIPE_FIXTURES, type=type_, obj=obj, account=account)


def settings_for(database_url: str, tmp_path: Path, stripe: StripeFixtureServer) -> Settings:
    return Settings(  # type: ignore[call-arg]
        _env_file=None, database_url=database_url, admin_token=ADMIN_TOKEN, admin_token_enabled=True,
        secret_key="e2e-secret-key", data_dir=tmp_path, public_base_url=BASE, demo_mode=False, workers_enabled=False,
        stripe_secret_key="sk_test_platform_e2e", stripe_webhook_secret=PLATFORM_SECRET,
        stripe_connect_webhook_secret=CONNECT_SECRET, stripe_api_base=stripe.base_url,
    )


@asynccontextmanager
async def running(database_url: str, tmp_path: Path, stripe: StripeFixtureServer) -> AsyncIterator[Env]:
    now = next_tuesday_morning()
    engine = ClockedEngine(now)
    app = create_app(settings_for(database_url, tmp_path, stripe), responder=engine)
    async with app.router.lifespan_context(app):
        engine.bind(app.state.runtime)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
            tenant = await client.post("/api/v1/tenants", json={"name": "Acme", "slug": TENANT}, headers=AUTH)
            assert tenant.status_code == 201, tenant.text
            yield Env(app=app, client=client, stripe=stripe, now=now)


@pytest.fixture
def stripe_server() -> Iterator[StripeFixtureServer]:
    with StripeFixtureServer(fixtures_path=STRIPE_FIXTURES) as server:
        yield server


@pytest.fixture
async def env(database_url: str, tmp_path: Path, stripe_server: StripeFixtureServer) -> AsyncIterator[Env]:
    async with running(database_url, tmp_path, stripe_server) as e:
        yield e


async def count(env: Env, model: Any, *where: Any) -> int:
    async with env.runtime.sessionmaker() as s:
        return (await s.execute(select(func.count()).select_from(model).where(*where))).scalar_one()


def only(items: list[Any], what: Callable[[Any], bool]) -> Any:
    found = [x for x in items if what(x)]
    assert len(found) == 1, found
    return found[0]


# --- 1-3: Connect, a product order paid on Stripe, its delivery window, replays and forged webhooks ---------


async def test_connect_sell_pay_on_stripe_and_choose_a_delivery_window(env: Env, shop_export: Path) -> None:
    await env.create_company(APPAREL, kb=[("apparel.csv", shop_export.read_bytes())])

    # The owner connects Stripe: a Standard account and a Stripe-hosted onboarding link.
    connected = await env.admin("POST", "apparel/stripe/connect", json={})
    account = connected["stripe_account_id"]
    [created] = env.stripe.requests_to("POST", "/v1/accounts")
    [link] = env.stripe.requests_to("POST", "/v1/account_links")
    assert created.status == 200 and created.stripe_account is None
    assert created.params["type"] == "standard" and created.params["business_profile"] == {"name": APPAREL.name}
    assert link.status == 200 and link.params == {
        "account": account, "type": "account_onboarding",
        "refresh_url": f"{BASE}/stripe/onboarding?company=apparel&result=refresh",
        "return_url": f"{BASE}/stripe/onboarding?company=apparel&result=return"}
    assert connected["onboarding_url"].startswith(f"https://connect.stripe.com/setup/s/{account}/")
    assert (connected["charges_enabled"], connected["payment_provider"]) == (False, "manual")
    # Asking again (the link expired) gives a fresh link for the same account, not a second account.
    again = await env.admin("POST", "apparel/stripe/connect", json={})
    assert again["stripe_account_id"] == account and again["onboarding_url"] != connected["onboarding_url"]
    assert len(env.stripe.requests_to("POST", "/v1/accounts")) == 1
    assert len(env.stripe.requests_to("POST", "/v1/account_links")) == 2
    switched = await env.admin("PUT", "apparel/payment-provider", json={"provider": "stripe"})
    assert (switched["payment_provider"], switched["charges_enabled"]) == ("stripe", False)

    # Onboarding is not finished: a customer who checks out gets the polite answer, the order is kept
    # for a manager, and nothing is sent to Stripe.
    for text in ("2 classic varsity tops size medium", "checkout", "Bob Jones", "3 Elm Street, Springfield"):
        await env.say("apparel", "bob", text)
    unavailable = await env.say("apparel", "bob", "skip")
    assert "Your order #1001 is saved, but online payment isn't available right now. A manager will contact you " \
           "to arrange the payment." in unavailable.text
    assert unavailable.url is None and "http" not in unavailable.text
    assert env.sessions_created() == [] and env.stripe.requests_to("POST", "/v1/checkout/sessions") == []
    [bob_order] = await env.orders("apparel")
    assert (bob_order["number"], bob_order["payment_status"]) == (1001, "no_payment_link")
    async with env.runtime.sessionmaker() as s:
        flagged = (await s.execute(select(Conversation.status).join(Order, Order.conversation_id == Conversation.id)
                                   .where(Order.id == uuid.UUID(bob_order["id"])))).scalar_one()
    assert flagged == "pending"

    # The owner finishes onboarding; Stripe sends account.updated (a Connect event) and charges are on.
    env.stripe.complete_onboarding(account)
    updated = await env.webhook(make_event(STRIPE_FIXTURES, type="account.updated", obj=env.stripe.account(account),
                                           account=account))
    assert updated.json() == {"status": "processed", "reason": None}
    async with env.runtime.sessionmaker() as s:
        company = (await s.execute(select(Company).where(Company.slug == "apparel"))).scalar_one()
        assert (company.stripe_account_id, company.stripe_charges_enabled, company.stripe_details_submitted) == (
            account, True, True)
    assert (await env.admin("GET", "apparel/stripe"))["charges_enabled"] is True

    # Alice buys 2 tops and a shirt, delivered in Springfield: the reply carries the Checkout link.
    added = await env.say("apparel", "alice", "2 classic varsity tops size medium")
    assert "Added 2 × Classic Varsity Top (Medium) — 120.00 USD" in added.text
    more = await env.say("apparel", "alice", "add an ocean blue shirt")
    assert "Cart total: 170.00 USD" in more.text
    asked = await env.press("apparel", "alice", more, "Checkout")
    assert "Total: 170.00 USD" in asked.text and "What name" in asked.text
    await env.say("apparel", "alice", "Alice Smith")
    await env.say("apparel", "alice", "12 Main Street, Springfield")
    pay = await env.say("apparel", "alice", "skip")
    [request] = env.sessions_created()
    [session_id] = env.stripe.session_ids()
    session = env.stripe.checkout_session(session_id)
    assert pay.url == session["url"] and session["url"].startswith("https://checkout.stripe.com/c/pay/cs_test_")
    assert f"To pay 170.00 USD, open this link: {session['url']}" in pay.text and "Order #1002" in pay.text

    # Exactly what Stripe was asked: direct charge on the connected account, one session per attempt.
    order = only(await env.orders("apparel"), lambda o: o["customer_name"] == "Alice Smith")
    metadata = {"tenant_id": str(company.tenant_id), "company_id": str(company.id), "order_id": order["id"],
                "order_number": "1002"}
    assert request.headers["authorization"] == "Bearer sk_test_platform_e2e"
    assert request.stripe_account == account
    assert request.idempotency_key == f"order-{order['id']}-attempt-1"
    assert request.params["mode"] == "payment"
    assert request.params["line_items"] == [
        {"price_data": {"currency": "usd", "unit_amount": "6000",
                        "product_data": {"name": "Classic Varsity Top (Medium)"}}, "quantity": "2"},
        {"price_data": {"currency": "usd", "unit_amount": "5000", "product_data": {"name": "Ocean Blue Shirt"}},
         "quantity": "1"},
    ]
    assert request.params["client_reference_id"] == order["id"]
    assert request.params["metadata"] == metadata and request.params["payment_intent_data"]["metadata"] == metadata
    assert session["amount_total"] == 17000 and session["currency"] == "usd"
    assert order["payment_status"] == "payment_link_sent"

    # Stripe reports the payment (Connect endpoint): the order is paid and Alice reads it in her chat.
    # Stripe delivers it three times (retries may overlap): one payment change, one confirmation.
    seen = (await env.chat("apparel", "alice"))[-1]["seq"]
    completed = env.session_event(session_id, "checkout.session.completed", account=account)
    assert completed["data"]["object"]["client_reference_id"] == order["id"]
    assert completed["data"]["object"]["metadata"] == metadata
    deliveries = await asyncio.gather(*(env.webhook(completed) for _ in range(3)))
    assert sorted(r.json()["status"] for r in deliveries) == ["duplicate", "duplicate", "processed"]
    paid = only(await env.orders("apparel"), lambda o: o["id"] == order["id"])
    assert (paid["status"], paid["payment_status"]) == ("paid", "paid") and paid["paid_at"]
    [confirmation] = await env.chat("apparel", "alice", after=seen)
    assert confirmation["sender"] == "system" and confirmation["direction"] == "out"
    assert confirmation["text"] == ("Payment received for order #1002: 170.00 USD. Thank you! We will deliver it to "
                                    "12 Main Street, Springfield and let you know about the delivery time.")
    assert (await env.webhook(completed)).json() == {"status": "duplicate", "reason": "event already handled"}
    assert await count(env, Payment, Payment.order_id == uuid.UUID(order["id"]), Payment.status == "paid") == 1
    assert await count(env, Payment, Payment.order_id == uuid.UUID(order["id"])) == 1
    assert await env.chat("apparel", "alice", after=seen) == [confirmation]
    assert await count(env, WebhookEvent, WebhookEvent.event_id == completed["id"]) == 1

    # Bob asks again now that Stripe is on, and gets his link (his order's first attempt).
    bob_link = await env.say("apparel", "bob", "send me the payment link")
    bob_request = env.sessions_created()[-1]
    assert bob_request.idempotency_key == f"order-{bob_order['id']}-attempt-1"
    bob_session = env.stripe.checkout_session(env.stripe.session_ids()[-1])
    assert bob_link.url == bob_session["url"]
    assert f"Here is the payment link for order #1001 (120.00 USD): {bob_session['url']}" in bob_link.text
    assert bob_session["amount_total"] == 12000
    # Forged or replayed-late webhooks for Bob's session: 400, nothing stored, nothing changed.
    events_before = await count(env, WebhookEvent)
    bob_paid = env.session_event(bob_session["id"], "checkout.session.completed", account=account)
    await env.webhook(bob_paid, secret="whsec_not_ours", expect=400)
    await env.webhook(bob_paid, timestamp=int(time.time()) - 600, expect=400)
    bad = await env.client.post("/webhooks/stripe", content=json.dumps(bob_paid),
                                headers={"Content-Type": "application/json", "Stripe-Signature": "t=1,v1=00"})
    assert bad.status_code == 400 and bad.json() == {"error": "invalid webhook request"}
    assert await count(env, WebhookEvent) == events_before
    bob_now = only(await env.orders("apparel"), lambda o: o["id"] == bob_order["id"])
    assert (bob_now["status"], bob_now["payment_status"]) == ("pending_payment", "payment_link_sent")
    assert not [m for m in await env.chat("apparel", "bob") if m["sender"] == "system"]

    # Bob lets his Checkout Session expire, then asks for a new link: a second attempt, a new session.
    bob_expired = env.session_event(bob_session["id"], "checkout.session.expired", account=account)
    assert (await env.webhook(bob_expired)).json()["status"] == "processed"
    assert only(await env.orders("apparel"), lambda o: o["id"] == bob_order["id"])["payment_status"] == "expired"
    fresh = await env.say("apparel", "bob", "the link expired, send a new one")
    assert env.sessions_created()[-1].idempotency_key == f"order-{bob_order['id']}-attempt-2"
    fresh_session = env.stripe.checkout_session(env.stripe.session_ids()[-1])
    assert fresh_session["id"] != bob_session["id"] and fresh.url == fresh_session["url"]
    assert f"Here is the payment link for order #1001 (120.00 USD): {fresh_session['url']}" in fresh.text

    # Alice's next message also asks when to deliver (windows in Springfield); she picks the first.
    thanks = await env.say("apparel", "alice", "thank you")
    assert "When should we deliver order #1002? Choose a delivery window:" in thanks.text
    assert len(thanks.buttons) >= 2
    choice = thanks.buttons[0]
    chosen = await env.press("apparel", "alice", thanks, choice)
    assert chosen.text == f"Done! Order #1002 will be delivered on {choice}."
    async with env.runtime.sessionmaker() as s:
        delivery = await order_delivery(s, await s.get(Order, uuid.UUID(order["id"])))
    assert delivery is not None and delivery.city == "Springfield"
    tz = ZoneInfo(APPAREL.timezone)
    assert texts.window_label(delivery.start_at.astimezone(tz), delivery.end_at.astimezone(tz), "en") == choice
    assert delivery.start_at > env.now


# --- 4-5: a prepaid booking on Stripe; an expired Checkout Session releases its hold -------------------------


async def test_booking_prepaid_on_stripe_is_confirmed_and_an_expired_session_releases_the_hold(env: Env) -> None:
    kb = [(name, (EXAMPLES / name).read_bytes()) for name in (SALON.products_file, SALON.faq_file)]
    await env.create_company(SALON, kb=kb)
    account = await env.connect_stripe("salon")
    day = texts.day_label((env.now.astimezone(BERLIN) + timedelta(days=1)).date(), "en")  # tomorrow, a Wednesday

    # Alice books a women's haircut tomorrow afternoon; the time is held and she gets the Stripe link
    # for the 25 % prepayment (11.25 of 45.00 EUR).
    slots = await env.say("salon", "alice", "book a women's haircut tomorrow afternoon")
    assert f"Free times for Women's haircut (60 min, 45.00 EUR) on {day} in the afternoon:" in slots.text
    assert slots.buttons == ["Wed 12:00 · Anna", "Wed 14:00 · Anna", "Wed 14:30 · Anna", "Wed 15:00 · Anna",
                             "Wed 15:30 · Anna", "Wed 16:00 · Anna", "Wed 16:30 · Anna"]
    held = await env.press("salon", "alice", slots, "Wed 14:00 · Anna")
    assert f"Women's haircut, {day}, 14:00 with Anna: I'm holding this time for you until 08:15." in held.text
    link = await env.say("salon", "alice", "Alice Smith")
    [request] = env.sessions_created()
    session = env.stripe.checkout_session(env.stripe.session_ids()[-1])
    assert link.url == session["url"]
    assert f"To confirm the booking, please pay the prepayment of 11.25 EUR: {session['url']}" in link.text
    assert "The time is held for you until 08:15" in link.text and "You pay 33.75 EUR at the visit." in link.text
    [booking] = await env.admin("GET", "salon/bookings")
    assert (booking["status"], booking["customer_name"], booking["prepay_minor"]) == ("held", "Alice Smith", 1125)
    assert booking["resource"] == "Anna" and booking["local_start"][11:16] == "14:00"
    assert request.stripe_account == account
    assert request.idempotency_key == f"order-{booking['order_id']}-attempt-1"
    assert request.params["client_reference_id"] == booking["order_id"]
    assert request.params["metadata"]["order_id"] == booking["order_id"]
    assert request.params["line_items"] == [{"price_data": {
        "currency": "eur", "unit_amount": "1125",
        "product_data": {"name": f"Women's haircut (prepayment) ({day}, 14:00 · Anna)"}}, "quantity": "1"}]
    assert session["amount_total"] == 1125 and session["currency"] == "eur"

    # She pays; Stripe's webhook confirms the booking and she reads it in her chat (once, however often
    # Stripe delivers the event).
    seen = (await env.chat("salon", "alice"))[-1]["seq"]
    completed = env.session_event(session["id"], "checkout.session.completed", account=account)
    assert (await env.webhook(completed)).json()["status"] == "processed"
    assert (await env.webhook(completed)).json()["status"] == "duplicate"
    [confirmed] = await env.admin("GET", "salon/bookings", params={"status": "confirmed"})
    assert confirmed["id"] == booking["id"] and confirmed["hold_expires_at"] is None
    news = [m["text"] for m in await env.chat("salon", "alice", after=seen)]
    assert news == ["Payment received for order #1001: 11.25 EUR. Thank you!",
                    f"Your booking is confirmed: Women's haircut, {day}, 14:00 (Anna)."]

    # Bob holds 15:00 (14:00 with Anna is taken now), but his Checkout Session expires unpaid: the hold
    # is released and the time is free again.
    offered = await env.say("salon", "bob", "book a women's haircut tomorrow afternoon")
    assert "Wed 14:00 · Anna" not in offered.buttons and "Wed 15:00 · Anna" in offered.buttons
    await env.press("salon", "bob", offered, "Wed 15:00 · Anna")
    bob_link = await env.say("salon", "bob", "Bob Brown")
    bob_session = env.stripe.checkout_session(env.stripe.session_ids()[-1])
    assert bob_link.url == bob_session["url"] and "11.25 EUR" in bob_link.text
    bob = only(await env.admin("GET", "salon/bookings"), lambda b: b["customer_name"] == "Bob Brown")
    assert bob["status"] == "held"
    expired = env.session_event(bob_session["id"], "checkout.session.expired", account=account)
    assert (await env.webhook(expired)).json() == {"status": "processed", "reason": None}
    released = only(await env.admin("GET", "salon/bookings"), lambda b: b["id"] == bob["id"])
    assert released["status"] == "released"
    bob_order = only(await env.orders("salon"), lambda o: o["id"] == bob["order_id"])
    assert (bob_order["status"], bob_order["payment_status"]) == ("pending_payment", "expired")
    assert not [m for m in await env.chat("salon", "bob") if m["sender"] == "system"]

    # Bob asks for a new link: the hold is gone, so no link for it; the bot offers that day's free
    # times again, 15:00 with Anna among them. Choosing it holds it again under a new prepayment order
    # (his name is remembered) with its own first Checkout Session.
    sessions = len(env.sessions_created())
    again = await env.say("salon", "bob", "send me a new payment link")
    assert f"Sorry, the time {day}, 15:00 is no longer held for you. Let's find another one." in again.text
    assert f"Free times for Women's haircut (60 min, 45.00 EUR) on {day}:" in again.text
    assert "Wed 15:00 · Anna" in again.buttons and again.url is None
    assert len(env.sessions_created()) == sessions
    rebooked = await env.press("salon", "bob", again, "Wed 15:00 · Anna")
    new_session = env.stripe.checkout_session(env.stripe.session_ids()[-1])
    assert new_session["id"] != bob_session["id"] and rebooked.url == new_session["url"]
    assert f"Women's haircut, {day}, 15:00 with Anna." in rebooked.text and "11.25 EUR" in rebooked.text
    [rebooking] = await env.admin("GET", "salon/bookings", params={"status": "held"})
    assert (rebooking["customer_name"], rebooking["start_at"]) == ("Bob Brown", bob["start_at"])
    assert rebooking["order_id"] != bob["order_id"]
    assert env.sessions_created()[-1].idempotency_key == f"order-{rebooking['order_id']}-attempt-1"


async def test_a_hold_that_runs_out_expires_its_stripe_session(env: Env) -> None:
    """A Stripe session lives at least 30 minutes, a hold 15: when the hold runs out, the background
    sweep expires the session on the connected account, so the customer cannot pay for a time that is
    no longer theirs (and the slot is free again)."""
    kb = [(name, (EXAMPLES / name).read_bytes()) for name in (SALON.products_file, SALON.faq_file)]
    await env.create_company(SALON, kb=kb)
    account = await env.connect_stripe("salon")
    slots = await env.say("salon", "carol", "book a women's haircut tomorrow afternoon")
    await env.press("salon", "carol", slots, "Wed 14:00 · Anna")
    link = await env.say("salon", "carol", "Carol White")
    session_id = env.stripe.session_ids()[-1]
    assert link.url == env.stripe.checkout_session(session_id)["url"]
    [booking] = await env.admin("GET", "salon/bookings")
    async with env.runtime.sessionmaker() as s, s.begin():  # fifteen minutes pass without a payment
        row = await s.get(Booking, uuid.UUID(booking["id"]))
        row.hold_expires_at = datetime.now(UTC) - timedelta(minutes=1)

    done = await env.app.state.workers.sweep_once()
    assert done["released_holds"] == 1 and done["expired_links"] == 1
    [expire] = env.stripe.requests_to("POST", f"/v1/checkout/sessions/{session_id}/expire")
    assert expire.status == 200 and expire.stripe_account == account
    assert env.stripe.checkout_session(session_id)["status"] == "expired"
    [released] = await env.admin("GET", "salon/bookings")
    assert released["status"] == "released"
    order = only(await env.orders("salon"), lambda o: o["id"] == booking["order_id"])
    assert order["payment_status"] == "expired"
    # The next sweep has nothing left to do.
    assert (await env.app.state.workers.sweep_once())["expired_links"] == 0
