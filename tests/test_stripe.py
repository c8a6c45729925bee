"""Stripe payment links, Stripe Connect and Stripe webhooks, on SQLite and PostgreSQL.

Stripe's API is replaced by ``StripeFixtureServer`` (tests/doubles/stripe_server.py): a local HTTP
test double answering with Stripe API objects (tests/fixtures/stripe/objects.json) and
recording every request, so the tests check the exact parameters and headers the official SDK sends.
Webhooks are signed here the way Stripe signs them and posted to the real route on a tiny app.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import func, select

from api.routes.stripe_webhook import build_router
from commerce.errors import PaymentUnavailable
from commerce.payments import issue_payment_link, mark_paid
from commerce.providers import ProviderRegistry
from commerce.stripe_connect import StripeConnect
from commerce.stripe_events import StripeSignatureError, StripeWebhookError, verify_event
from commerce.stripe_provider import StripeApi, StripeConfig, StripeProvider, checkout_expiry, checkout_locale
from core.accounts import create_company, create_tenant, inbox_of_kind
from core.models import Company, Contact, Conversation, Message, Order, OrderLine, Payment, WebhookEvent
from core.timeutil import utcnow
from tests.conftest import SHARED_STRIPE_FIXTURES, STRIPE_FIXTURES, require_shared
from tests.doubles.stripe_server import StripeFixtureServer, decode_stripe_form, make_event, sign_payload

# stripe-python's HTTPXClient passes the form body as ``data=bytes``, which httpx 0.28 deprecates.
pytestmark = pytest.mark.filterwarnings("ignore:Use 'content=<...>':DeprecationWarning")

PLATFORM_SECRET = "whsec_platform_test"
CONNECT_SECRET = "whsec_connect_test"


# --------------------------------------------------------------------------------------------- fixtures
@pytest.fixture
def stripe_server() -> Iterator[StripeFixtureServer]:
    with StripeFixtureServer(fixtures_path=STRIPE_FIXTURES) as server:
        yield server


@pytest.fixture
def config(stripe_server: StripeFixtureServer) -> StripeConfig:
    return StripeConfig(
        secret_key="sk_test_platform", public_base_url="https://shop.example", webhook_secret=PLATFORM_SECRET,
        connect_webhook_secret=CONNECT_SECRET, api_base=stripe_server.base_url, max_network_retries=0,
    )


@pytest.fixture
async def api(config: StripeConfig) -> AsyncIterator[StripeApi]:
    stripe_api = StripeApi(config=config)
    yield stripe_api
    await stripe_api.aclose()


@pytest.fixture
def registry(api: StripeApi) -> ProviderRegistry:
    return ProviderRegistry(providers={"stripe": StripeProvider(api=api)})


@dataclass
class Shop:
    tenant_id: uuid.UUID
    company_id: uuid.UUID
    order_id: uuid.UUID
    conversation_id: uuid.UUID
    account_id: str | None


async def make_shop(sessionmaker, *, slug: str, account_id: str | None, charges_enabled: bool = True) -> Shop:  # type: ignore[no-untyped-def]
    """A tenant with a Stripe company, a web-chat conversation and order #1001: 2 × T-shirt (Medium)
    at 12.50 USD and 1 × Mug at 9.90 USD (total 34.90 USD)."""
    async with sessionmaker() as s, s.begin():
        tenant = await create_tenant(s, name=slug.title(), slug=slug)
        company = await create_company(s, tenant_id=tenant.id, slug=slug, name=f"{slug.title()} Store",
                                       currency="USD", payment_provider="stripe")
        company.stripe_account_id = account_id
        company.stripe_charges_enabled = charges_enabled
        company.stripe_details_submitted = charges_enabled
        inbox = await inbox_of_kind(s, company, "webchat")
        contact = Contact(tenant_id=tenant.id, company_id=company.id, name="Ann")
        s.add(contact)
        await s.flush()
        conversation = Conversation(tenant_id=tenant.id, company_id=company.id, inbox_id=inbox.id,
                                    contact_id=contact.id, language="en", state={})
        s.add(conversation)
        await s.flush()
        order = Order(tenant_id=tenant.id, company_id=company.id, conversation_id=conversation.id,
                      contact_id=contact.id, number=1001, total_minor=2 * 1250 + 990, currency="USD",
                      customer_name="Ann", delivery_address="1 Main St")
        order.lines = [
            OrderLine(tenant_id=tenant.id, name="T-shirt", variant="Medium", sku="TS-M", quantity=2,
                      unit_price_minor=1250, position=0),
            OrderLine(tenant_id=tenant.id, name="Mug", variant=None, sku="MUG", quantity=1, unit_price_minor=990,
                      position=1),
        ]
        s.add(order)
        await s.flush()
        return Shop(tenant.id, company.id, order.id, conversation.id, account_id)


async def issue_link(sessionmaker, registry: ProviderRegistry, shop: Shop) -> Payment:  # type: ignore[no-untyped-def]
    async with sessionmaker() as s, s.begin():
        order = await s.get(Order, shop.order_id)
        company = await s.get(Company, shop.company_id)
        return await issue_payment_link(s, order=order, company=company, providers=registry)


async def state(sessionmaker, shop: Shop) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """The order's and its payments' statuses, and the conversation's outbound system messages."""
    async with sessionmaker() as s:
        order = await s.get(Order, shop.order_id)
        payments = (await s.execute(select(Payment).where(Payment.order_id == shop.order_id)
                                    .order_by(Payment.created_at))).scalars().all()
        messages = (await s.execute(select(Message).where(Message.conversation_id == shop.conversation_id,
                                                          Message.direction == "out"))).scalars().all()
        return {
            "order": (order.status, order.payment_status),
            "payments": [(p.status, p.method, p.provider_ref) for p in payments],
            "messages": [(m.sender, m.status, m.payload.get("event"), m.text) for m in messages],
        }


class Webhooks:
    """Posts signed events to the real route on a tiny app holding only the Stripe router."""

    def __init__(self, client: httpx.AsyncClient, delivered: list[uuid.UUID]) -> None:
        self.client = client
        self.delivered = delivered

    async def post(self, event: dict[str, Any], *, secret: str = CONNECT_SECRET, timestamp: int | None = None,
                   signature: str | None = None) -> httpx.Response:
        payload = json.dumps(event)
        header = signature if signature is not None else sign_payload(payload, secret, timestamp=timestamp)
        headers = {"Content-Type": "application/json"}
        if header:
            headers["Stripe-Signature"] = header
        return await self.client.post("/webhooks/stripe", content=payload, headers=headers)


@pytest.fixture
async def webhooks(sessionmaker, config: StripeConfig) -> AsyncIterator[Webhooks]:  # type: ignore[no-untyped-def]
    delivered: list[uuid.UUID] = []

    async def deliver(*, conversation_id: uuid.UUID) -> int:
        delivered.append(conversation_id)
        return 1

    app = FastAPI()
    app.include_router(build_router(sessionmaker=sessionmaker, config=config, deliver=deliver))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        yield Webhooks(client, delivered)


def session_event(stripe_server: StripeFixtureServer, payment: Payment, type_: str, *, account: str | None,
                  paid: bool = True, **changes: Any) -> dict[str, Any]:
    """A Checkout Session event whose object is the session the provider created for ``payment``."""
    obj = stripe_server.checkout_session(payment.provider_ref or "")
    if type_ in ("checkout.session.completed", "checkout.session.async_payment_succeeded",
                 "checkout.session.async_payment_failed"):
        obj.update(status="complete", payment_intent=f"pi_test_{payment.id.hex[:20]}",
                   payment_status="paid" if paid else "unpaid")
    elif type_ == "checkout.session.expired":
        obj.update(status="expired", url=None)
    obj.update(changes)
    return make_event(STRIPE_FIXTURES, type=type_, obj=obj, account=account)


async def count_events(sessionmaker) -> int:  # type: ignore[no-untyped-def]
    async with sessionmaker() as s:
        return (await s.execute(select(func.count()).select_from(WebhookEvent))).scalar_one()


# --------------------------------------------------------------------------------------------- provider
async def test_payment_link_sends_exact_checkout_params(sessionmaker, stripe_server, registry, api) -> None:  # type: ignore[no-untyped-def]
    account = stripe_server.add_account()
    shop = await make_shop(sessionmaker, slug="acme", account_id=account)
    before = int(time.time())

    payment = await issue_link(sessionmaker, registry, shop)

    (request,) = stripe_server.requests_to("POST", "/v1/checkout/sessions")
    assert request.status == 200
    assert request.headers["authorization"] == "Bearer sk_test_platform"
    assert request.stripe_account == account
    assert request.idempotency_key == f"order-{shop.order_id}-attempt-1"
    params = dict(request.params)
    expires_at = int(params.pop("expires_at"))
    oid, meta = str(shop.order_id), {"tenant_id": str(shop.tenant_id), "company_id": str(shop.company_id),
                                     "order_id": str(shop.order_id), "order_number": "1001"}
    assert params == {
        "mode": "payment",
        "line_items": [
            {"price_data": {"currency": "usd", "unit_amount": "1250", "product_data": {"name": "T-shirt (Medium)"}},
             "quantity": "2"},
            {"price_data": {"currency": "usd", "unit_amount": "990", "product_data": {"name": "Mug"}},
             "quantity": "1"},
        ],
        "client_reference_id": oid,
        "metadata": meta,
        "payment_intent_data": {"metadata": meta, "description": "Order #1001 — Acme Store"},
        "locale": "en",
        "success_url": f"https://shop.example/pay/return?order={oid}&result=success&session_id={{CHECKOUT_SESSION_ID}}",
        "cancel_url": f"https://shop.example/pay/return?order={oid}&result=cancel",
    }
    # Stripe accepts 30 min .. 24 h; we stay inside with margins and on a 5-minute step.
    assert before + 30 * 60 <= expires_at <= before + 24 * 3600 and expires_at % 300 == 0
    (session_id,) = stripe_server.session_ids()
    session = stripe_server.checkout_session(session_id)
    assert session["amount_total"] == 3490 and session["currency"] == "usd"
    assert payment.provider == "stripe" and payment.status == "payment_link_sent"
    assert payment.checkout_url == session["url"] and payment.provider_ref == session_id
    assert payment.expires_at == datetime.fromtimestamp(expires_at, tz=UTC)

    # A retry of the same attempt (e.g. after a rolled-back transaction) gets the same session back.
    async with sessionmaker() as s:
        order, company = await s.get(Order, shop.order_id), await s.get(Company, shop.company_id)
    link = await registry.get("stripe").create_link(company=company, order=order, token="other-token", attempt=1,
                                                    expires_at=utcnow() + timedelta(hours=24))
    assert link.provider_ref == session_id and link.checkout_url == session["url"]
    assert stripe_server.session_ids() == [session_id]
    first, second = stripe_server.requests_to("POST", "/v1/checkout/sessions")
    assert second.idempotency_key == first.idempotency_key and second.params == first.params

    # The same order with a live link gets the same payment back without calling Stripe.
    again = await issue_link(sessionmaker, registry, shop)
    assert again.id == payment.id and len(stripe_server.requests_to("POST", "/v1/checkout/sessions")) == 2


async def test_checkout_speaks_the_customers_language(sessionmaker, stripe_server, registry) -> None:  # type: ignore[no-untyped-def]
    """An English company's Russian-speaking customer gets a Russian Checkout page: the conversation's
    language is sent as the session's ``locale`` (Stripe shows the browser's language for "auto")."""
    account = stripe_server.add_account()
    shop = await make_shop(sessionmaker, slug="acme", account_id=account)
    async with sessionmaker() as s, s.begin():
        (await s.get(Conversation, shop.conversation_id)).language = "ru"
    await issue_link(sessionmaker, registry, shop)
    (request,) = stripe_server.requests_to("POST", "/v1/checkout/sessions")
    assert request.params["locale"] == "ru"
    (session_id,) = stripe_server.session_ids()
    assert stripe_server.checkout_session(session_id)["locale"] == "ru"


def test_checkout_locale_of_a_language() -> None:
    assert [checkout_locale(x) for x in ("en", "ru", "pt_BR", "en-US", "kk", None)] == \
        ["en", "ru", "pt-BR", "en", "auto", "auto"]


async def test_same_attempt_with_other_params_gets_one_new_session(sessionmaker, stripe_server, registry) -> None:  # type: ignore[no-untyped-def]
    """Stripe refuses a key reused with different parameters; the provider then makes one new session
    under a key naming the expiry (the earlier session of this attempt was never recorded)."""
    account = stripe_server.add_account()
    shop = await make_shop(sessionmaker, slug="acme", account_id=account)
    async with sessionmaker() as s:
        order, company = await s.get(Order, shop.order_id), await s.get(Company, shop.company_id)
    provider = registry.get("stripe")
    first = await provider.create_link(company=company, order=order, token="t", attempt=1,
                                       expires_at=utcnow() + timedelta(hours=2))
    second = await provider.create_link(company=company, order=order, token="t", attempt=1,
                                        expires_at=utcnow() + timedelta(hours=5))
    assert first.provider_ref != second.provider_ref
    statuses = [(r.status, r.idempotency_key) for r in stripe_server.requests_to("POST", "/v1/checkout/sessions")]
    key = f"order-{shop.order_id}-attempt-1"
    assert statuses[0] == (200, key) and statuses[1] == (400, key)
    assert statuses[2][0] == 200 and statuses[2][1].startswith(f"{key}-")


def test_checkout_expiry_is_clamped_into_stripes_bounds() -> None:
    now = datetime(2026, 1, 1, 12, 0, 7, tzinfo=UTC)
    assert checkout_expiry(now + timedelta(minutes=5), now=now) == datetime(2026, 1, 1, 12, 35, tzinfo=UTC)
    assert checkout_expiry(now + timedelta(days=3), now=now) == datetime(2026, 1, 2, 11, 55, tzinfo=UTC)
    assert checkout_expiry(now + timedelta(hours=2), now=now) == datetime(2026, 1, 1, 14, 0, tzinfo=UTC)


async def test_no_connected_account_or_incomplete_onboarding_is_unavailable(sessionmaker, stripe_server,  # type: ignore[no-untyped-def]
                                                                            registry) -> None:
    shop = await make_shop(sessionmaker, slug="acme", account_id=None)
    with pytest.raises(PaymentUnavailable) as unconnected:
        await issue_link(sessionmaker, registry, shop)
    assert unconnected.value.reason == "the business has not connected a Stripe account"

    pending = stripe_server.add_account(charges_enabled=False, details_submitted=False)
    other = await make_shop(sessionmaker, slug="beta", account_id=pending, charges_enabled=False)
    with pytest.raises(PaymentUnavailable) as onboarding:
        await issue_link(sessionmaker, registry, other)
    assert "onboarding" in onboarding.value.reason
    assert stripe_server.requests == []

    # Our copy says "enabled" but Stripe refuses (access revoked): still PaymentUnavailable, no payment row.
    revoked = await make_shop(sessionmaker, slug="gamma", account_id="acct_revoked0000000")
    with pytest.raises(PaymentUnavailable) as refused:
        await issue_link(sessionmaker, registry, revoked)
    assert refused.value.reason.startswith("Stripe refused the payment link: ")
    assert "does not have access to account" in refused.value.reason
    assert stripe_server.requests[-1].status == 403
    async with sessionmaker() as s:
        assert (await s.execute(select(func.count()).select_from(Payment))).scalar_one() == 0


# --------------------------------------------------------------------------------------------- connect
async def test_connect_account_onboarding_link_and_refresh(sessionmaker, stripe_server, api) -> None:  # type: ignore[no-untyped-def]
    shop = await make_shop(sessionmaker, slug="acme", account_id=None, charges_enabled=False)
    connect = StripeConnect(api=api)
    async with sessionmaker() as s, s.begin():
        company = await s.get(Company, shop.company_id)
        state_ = await connect.create_account(s, company=company, email="owner@acme.example", country="us")
        account_id = company.stripe_account_id
    assert account_id and account_id.startswith("acct_") and state_.account_id == account_id
    assert (state_.charges_enabled, state_.details_submitted) == (False, False)
    (create,) = stripe_server.requests_to("POST", "/v1/accounts")
    assert create.params == {
        "type": "standard", "email": "owner@acme.example", "country": "US",
        "business_profile": {"name": "Acme Store"},
        "metadata": {"tenant_id": str(shop.tenant_id), "company_id": str(shop.company_id)},
    }
    assert create.idempotency_key == f"company-{shop.company_id}-connect-account"
    assert create.stripe_account is None

    async with sessionmaker() as s:
        company = await s.get(Company, shop.company_id)
    url = await connect.onboarding_link(company=company, refresh_url="https://shop.example/connect/refresh",
                                        return_url="https://shop.example/connect/return")
    assert url.startswith(f"https://connect.stripe.com/setup/s/{account_id}/")
    (link,) = stripe_server.requests_to("POST", "/v1/account_links")
    assert link.params == {"account": account_id, "refresh_url": "https://shop.example/connect/refresh",
                           "return_url": "https://shop.example/connect/return", "type": "account_onboarding"}

    # Creating again does not make a second account: it refreshes the existing one.
    stripe_server.complete_onboarding(account_id)
    async with sessionmaker() as s, s.begin():
        company = await s.get(Company, shop.company_id)
        again = await connect.create_account(s, company=company)
    assert again.account_id == account_id and again.charges_enabled and again.details_submitted
    assert len(stripe_server.requests_to("POST", "/v1/accounts")) == 1
    assert len(stripe_server.requests_to("GET", f"/v1/accounts/{account_id}")) == 1
    async with sessionmaker() as s:
        company = await s.get(Company, shop.company_id)
        assert company.stripe_charges_enabled and company.stripe_details_submitted


async def test_account_updated_webhook_refreshes_onboarding(sessionmaker, stripe_server, webhooks) -> None:  # type: ignore[no-untyped-def]
    account = stripe_server.add_account(charges_enabled=False, details_submitted=False)
    shop = await make_shop(sessionmaker, slug="acme", account_id=account, charges_enabled=False)
    stripe_server.complete_onboarding(account)
    event = make_event(STRIPE_FIXTURES, type="account.updated", obj=stripe_server.account(account), account=account)
    response = await webhooks.post(event)
    assert response.status_code == 200 and response.json()["status"] == "processed"
    async with sessionmaker() as s:
        company = await s.get(Company, shop.company_id)
        assert company.stripe_charges_enabled and company.stripe_details_submitted

    unknown = stripe_server.add_account()
    response = await webhooks.post(make_event(STRIPE_FIXTURES, type="account.updated",
                                              obj=stripe_server.account(unknown), account=unknown))
    assert response.json() == {"status": "ignored", "reason": "unknown connected account"}

    deauthorized = make_event(STRIPE_FIXTURES, type="account.application.deauthorized",
                              obj={"id": "ca_platform", "object": "application", "name": "chatcommerce"},
                              account=account)
    assert (await webhooks.post(deauthorized)).json()["status"] == "processed"
    async with sessionmaker() as s:
        assert not (await s.get(Company, shop.company_id)).stripe_charges_enabled


# --------------------------------------------------------------------------------------------- webhooks
async def test_completed_marks_paid_once_with_one_confirmation(sessionmaker, stripe_server, registry,  # type: ignore[no-untyped-def]
                                                               webhooks) -> None:
    account = stripe_server.add_account()
    shop = await make_shop(sessionmaker, slug="acme", account_id=account)
    payment = await issue_link(sessionmaker, registry, shop)
    event = session_event(stripe_server, payment, "checkout.session.completed", account=account)

    responses = [await webhooks.post(event) for _ in range(3)]

    assert [r.status_code for r in responses] == [200, 200, 200]
    assert [r.json()["status"] for r in responses] == ["processed", "duplicate", "duplicate"]
    after = await state(sessionmaker, shop)
    pi = event["data"]["object"]["payment_intent"]
    assert after["order"] == ("paid", "paid")
    assert after["payments"] == [("paid", "card", pi)]
    assert len(after["messages"]) == 1
    sender, status, kind, text = after["messages"][0]
    assert (sender, status, kind) == ("system", "pending", "order.paid")
    assert "#1001" in text and "34.90 USD" in text
    assert webhooks.delivered == [shop.conversation_id]
    assert await count_events(sessionmaker) == 1


async def test_concurrent_redeliveries_apply_once(sessionmaker, stripe_server, registry, webhooks) -> None:  # type: ignore[no-untyped-def]
    account = stripe_server.add_account()
    shop = await make_shop(sessionmaker, slug="acme", account_id=account)
    payment = await issue_link(sessionmaker, registry, shop)
    event = session_event(stripe_server, payment, "checkout.session.completed", account=account)
    responses = await asyncio.gather(*(webhooks.post(event) for _ in range(3)))
    assert sorted(r.json()["status"] for r in responses) == ["duplicate", "duplicate", "processed"]
    assert len((await state(sessionmaker, shop))["messages"]) == 1


async def test_bad_missing_or_stale_signature_is_400_and_changes_nothing(sessionmaker, stripe_server,  # type: ignore[no-untyped-def]
                                                                         registry, webhooks) -> None:
    account = stripe_server.add_account()
    shop = await make_shop(sessionmaker, slug="acme", account_id=account)
    payment = await issue_link(sessionmaker, registry, shop)
    event = session_event(stripe_server, payment, "checkout.session.completed", account=account)
    before = await state(sessionmaker, shop)

    wrong_secret = await webhooks.post(event, secret="whsec_someone_else")
    missing = await webhooks.post(event, signature="")
    garbage = await webhooks.post(event, signature="t=abc,v1=zzz")
    stale = await webhooks.post(event, timestamp=int(time.time()) - 301)
    payload = json.dumps(event)
    tampered = await webhooks.client.post(
        "/webhooks/stripe", content=payload.replace('"paid"', '"unpaid"'),
        headers={"Stripe-Signature": sign_payload(payload, CONNECT_SECRET)},
    )

    for response in (wrong_secret, missing, garbage, stale, tampered):
        assert response.status_code == 400
    assert await state(sessionmaker, shop) == before
    assert await count_events(sessionmaker) == 0 and webhooks.delivered == []
    # Within the tolerance and signed with the platform endpoint's secret: accepted.
    ok = await webhooks.post(event, secret=PLATFORM_SECRET, timestamp=int(time.time()) - 120)
    assert ok.json()["status"] == "processed"


async def test_events_dated_in_the_future_are_refused(sessionmaker, stripe_server, registry, webhooks) -> None:  # type: ignore[no-untyped-def]
    account = stripe_server.add_account()
    shop = await make_shop(sessionmaker, slug="acme", account_id=account)
    payment = await issue_link(sessionmaker, registry, shop)
    before = await state(sessionmaker, shop)
    event = session_event(stripe_server, payment, "checkout.session.completed", account=account)
    now = int(time.time())
    # Correctly signed, but the signature claims to be from 10 minutes ahead: replayable for that long.
    signed_later = await webhooks.post(event, timestamp=now + 600)
    # Signed now, but the event says it was created an hour from now.
    created_later = await webhooks.post(dict(event, created=now + 3600))
    for response in (signed_later, created_later):
        assert response.status_code == 400 and response.json() == {"error": "invalid webhook request"}
    assert await state(sessionmaker, shop) == before
    assert await count_events(sessionmaker) == 0 and webhooks.delivered == []
    # A clock a little ahead of ours (within the tolerance) is fine.
    ok = await webhooks.post(dict(event, created=now + 60), timestamp=now + 60)
    assert ok.status_code == 200 and ok.json()["status"] == "processed"


def test_verify_event_refuses_future_timestamps_beyond_the_tolerance() -> None:
    payload = json.dumps(make_event(STRIPE_FIXTURES, type="plan.created", obj={"id": "plan_1"}))
    now = int(time.time())
    with pytest.raises(StripeSignatureError, match="in the future"):
        verify_event(payload, sign_payload(payload, CONNECT_SECRET, timestamp=now + 400), secrets=[CONNECT_SECRET])
    assert verify_event(payload, sign_payload(payload, CONNECT_SECRET, timestamp=now + 400), secrets=[CONNECT_SECRET],
                        tolerance=600)["type"] == "plan.created"
    future = json.dumps(make_event(STRIPE_FIXTURES, type="plan.created", obj={"id": "plan_1"}, created=now + 400))
    with pytest.raises(StripeWebhookError, match="in the future"):
        verify_event(future, sign_payload(future, CONNECT_SECRET), secrets=[CONNECT_SECRET])


def test_own_stripe_objects_have_the_fields_of_stripes_published_fixtures() -> None:
    """Extra coverage (../shared): our hand-written objects carry every top-level field of Stripe's own
    example objects and no other, so the double answers like Stripe."""
    published = json.loads(require_shared(SHARED_STRIPE_FIXTURES).read_text())["resources"]
    ours = json.loads(STRIPE_FIXTURES.read_text())["resources"]
    assert set(ours) == {"account", "account_link", "charge", "checkout.session", "event"}
    for name, obj in ours.items():
        assert set(obj) == set(published[name]), name
        assert obj["object"] == published[name]["object"]


def test_verify_event_uses_tolerance_and_all_secrets() -> None:
    payload = json.dumps(make_event(STRIPE_FIXTURES, type="plan.created", obj={"id": "plan_1"}))
    header = sign_payload(payload, CONNECT_SECRET, timestamp=int(time.time()) - 1000)
    with pytest.raises(StripeSignatureError):
        verify_event(payload, header, secrets=[PLATFORM_SECRET, CONNECT_SECRET])
    assert verify_event(payload, header, secrets=[PLATFORM_SECRET, CONNECT_SECRET], tolerance=2000)["type"] == \
        "plan.created"
    with pytest.raises(StripeSignatureError):
        verify_event(payload, sign_payload(payload, CONNECT_SECRET), secrets=[])


async def test_async_payment_waits_then_succeeds(sessionmaker, stripe_server, registry, webhooks) -> None:  # type: ignore[no-untyped-def]
    account = stripe_server.add_account()
    shop = await make_shop(sessionmaker, slug="acme", account_id=account)
    payment = await issue_link(sessionmaker, registry, shop)
    completed = session_event(stripe_server, payment, "checkout.session.completed", account=account, paid=False)
    response = await webhooks.post(completed)
    assert response.json()["status"] == "ignored" and "waiting" in response.json()["reason"]
    assert (await state(sessionmaker, shop))["order"] == ("pending_payment", "payment_link_sent")

    succeeded = session_event(stripe_server, payment, "checkout.session.async_payment_succeeded", account=account)
    assert (await webhooks.post(succeeded)).json()["status"] == "processed"
    after = await state(sessionmaker, shop)
    assert after["order"] == ("paid", "paid") and len(after["messages"]) == 1


async def test_async_payment_failed_marks_failed(sessionmaker, stripe_server, registry, webhooks) -> None:  # type: ignore[no-untyped-def]
    account = stripe_server.add_account()
    shop = await make_shop(sessionmaker, slug="acme", account_id=account)
    payment = await issue_link(sessionmaker, registry, shop)
    failed = session_event(stripe_server, payment, "checkout.session.async_payment_failed", account=account,
                           paid=False)
    assert (await webhooks.post(failed)).json()["status"] == "processed"
    after = await state(sessionmaker, shop)
    assert after["order"] == ("pending_payment", "failed")
    assert after["payments"][0][0] == "failed" and after["messages"] == []


async def test_expired_then_a_new_link_can_be_issued(sessionmaker, stripe_server, registry, webhooks) -> None:  # type: ignore[no-untyped-def]
    account = stripe_server.add_account()
    shop = await make_shop(sessionmaker, slug="acme", account_id=account)
    first = await issue_link(sessionmaker, registry, shop)
    expired = session_event(stripe_server, first, "checkout.session.expired", account=account)
    assert (await webhooks.post(expired)).json()["status"] == "processed"
    assert (await state(sessionmaker, shop))["order"] == ("pending_payment", "expired")

    second = await issue_link(sessionmaker, registry, shop)
    assert second.id != first.id and second.provider_ref != first.provider_ref
    assert stripe_server.requests_to("POST", "/v1/checkout/sessions")[-1].idempotency_key == \
        f"order-{shop.order_id}-attempt-2"
    after = await state(sessionmaker, shop)
    assert after["order"] == ("pending_payment", "payment_link_sent")
    assert [p[0] for p in after["payments"]] == ["expired", "payment_link_sent"]

    # A late failure of the first session does not touch the order's live second link.
    late = session_event(stripe_server, first, "checkout.session.async_payment_failed", account=account, paid=False)
    assert (await webhooks.post(late)).json()["status"] == "ignored"
    assert (await state(sessionmaker, shop))["order"] == ("pending_payment", "payment_link_sent")

    paid = session_event(stripe_server, second, "checkout.session.completed", account=account)
    assert (await webhooks.post(paid)).json()["status"] == "processed"
    assert (await state(sessionmaker, shop))["payments"][1][0] == "paid"


async def test_out_of_order_events_never_unpay(sessionmaker, stripe_server, registry, webhooks) -> None:  # type: ignore[no-untyped-def]
    account = stripe_server.add_account()
    shop = await make_shop(sessionmaker, slug="acme", account_id=account)
    payment = await issue_link(sessionmaker, registry, shop)
    succeeded = session_event(stripe_server, payment, "checkout.session.async_payment_succeeded", account=account)
    completed = session_event(stripe_server, payment, "checkout.session.completed", account=account)
    expired = session_event(stripe_server, payment, "checkout.session.expired", account=account)
    failed = session_event(stripe_server, payment, "checkout.session.async_payment_failed", account=account)
    assert (await webhooks.post(succeeded)).json()["status"] == "processed"
    for event in (completed, expired, failed):
        assert (await webhooks.post(event)).json()["status"] == "ignored"
    after = await state(sessionmaker, shop)
    assert after["order"] == ("paid", "paid") and after["payments"][0][0] == "paid"
    assert len(after["messages"]) == 1


async def test_charge_refunded_marks_refunded(sessionmaker, stripe_server, registry, webhooks) -> None:  # type: ignore[no-untyped-def]
    account = stripe_server.add_account()
    shop = await make_shop(sessionmaker, slug="acme", account_id=account)
    payment = await issue_link(sessionmaker, registry, shop)
    completed = session_event(stripe_server, payment, "checkout.session.completed", account=account)
    await webhooks.post(completed)
    pi = completed["data"]["object"]["payment_intent"]
    charge = json.loads(STRIPE_FIXTURES.read_text())["resources"]["charge"]

    partial = dict(charge, payment_intent=pi, amount=3490, amount_refunded=1000, refunded=False)
    response = await webhooks.post(make_event(STRIPE_FIXTURES, type="charge.refunded", obj=partial, account=account))
    assert response.json()["status"] == "ignored" and "partial" in response.json()["reason"]

    other_account = stripe_server.add_account()
    full = dict(charge, payment_intent=pi, amount=3490, amount_refunded=3490, refunded=True)
    response = await webhooks.post(make_event(STRIPE_FIXTURES, type="charge.refunded", obj=full,
                                              account=other_account))
    assert response.json()["status"] == "ignored"
    assert (await state(sessionmaker, shop))["order"] == ("paid", "paid")

    response = await webhooks.post(make_event(STRIPE_FIXTURES, type="charge.refunded", obj=full, account=account))
    assert response.json()["status"] == "processed"
    after = await state(sessionmaker, shop)
    assert after["order"] == ("paid", "refunded") and after["payments"][0][0] == "refunded"
    # A completed event arriving after the refund does not make it paid again.
    late = session_event(stripe_server, payment, "checkout.session.completed", account=account)
    assert (await webhooks.post(late)).json()["status"] == "ignored"
    assert (await state(sessionmaker, shop))["order"] == ("paid", "refunded")


async def test_events_for_another_tenant_or_account_are_ignored(sessionmaker, stripe_server, registry,  # type: ignore[no-untyped-def]
                                                                webhooks) -> None:
    account_a, account_b = stripe_server.add_account(), stripe_server.add_account()
    shop_a = await make_shop(sessionmaker, slug="acme", account_id=account_a)
    shop_b = await make_shop(sessionmaker, slug="beta", account_id=account_b)
    payment_a = await issue_link(sessionmaker, registry, shop_a)

    # Shop B's connected account reports a session naming shop A's order.
    wrong_account = session_event(stripe_server, payment_a, "checkout.session.completed", account=account_b)
    # Metadata of tenant B on shop A's order.
    wrong_meta = session_event(stripe_server, payment_a, "checkout.session.completed", account=account_a,
                               metadata={"tenant_id": str(shop_b.tenant_id), "company_id": str(shop_b.company_id),
                                         "order_id": str(shop_a.order_id)})
    # A platform (non-Connect) event for the order: direct charges never produce one.
    no_account = session_event(stripe_server, payment_a, "checkout.session.completed", account=None)
    unknown_order = session_event(stripe_server, payment_a, "checkout.session.completed", account=account_a,
                                  client_reference_id=str(uuid.uuid4()), metadata={})
    wrong_amount = session_event(stripe_server, payment_a, "checkout.session.completed", account=account_a,
                                 amount_total=1)
    reasons = []
    for event in (wrong_account, wrong_meta, no_account, unknown_order, wrong_amount):
        response = await webhooks.post(event)
        assert response.status_code == 200 and response.json()["status"] == "ignored"
        reasons.append(response.json()["reason"])
    assert reasons == [
        "the event's account is not the company's connected account",
        "metadata tenant/company do not match the order",
        "the event's account is not the company's connected account",
        "unknown order",
        "the session's amount differs from the order's total",
    ]
    assert (await state(sessionmaker, shop_a))["order"] == ("pending_payment", "payment_link_sent")
    assert (await state(sessionmaker, shop_b))["order"] == ("pending_payment", "no_payment_link")
    async with sessionmaker() as s:
        rows = (await s.execute(select(WebhookEvent.outcome, WebhookEvent.tenant_id))).all()
    assert len(rows) == 5 and {r.outcome for r in rows} == {"ignored"}
    # Unhandled types are acknowledged too.
    plan = make_event(STRIPE_FIXTURES, type="plan.created", obj={"id": "plan_1", "object": "plan"})
    assert (await webhooks.post(plan, secret=PLATFORM_SECRET)).json() == {"status": "ignored",
                                                                          "reason": "unhandled event type"}


async def test_manual_mark_paid_then_stripe_completed_changes_nothing(sessionmaker, stripe_server, registry,  # type: ignore[no-untyped-def]
                                                                      webhooks) -> None:
    account = stripe_server.add_account()
    shop = await make_shop(sessionmaker, slug="acme", account_id=account)
    payment = await issue_link(sessionmaker, registry, shop)
    async with sessionmaker() as s, s.begin():
        await mark_paid(s, order=await s.get(Order, shop.order_id), method="cash")
    response = await webhooks.post(session_event(stripe_server, payment, "checkout.session.completed", account=account))
    assert response.json() == {"status": "ignored", "reason": "order already paid"}
    after = await state(sessionmaker, shop)
    assert after["payments"][0][:2] == ("paid", "cash") and len(after["messages"]) == 1


def test_decode_stripe_form() -> None:
    body = "a[b][0][c]=1&a[b][1][c]=2&x=y&tags[]=p&tags[]=q&m[k]="
    assert decode_stripe_form(body) == {"a": {"b": [{"c": "1"}, {"c": "2"}]}, "x": "y", "tags": ["p", "q"],
                                        "m": {"k": ""}}
