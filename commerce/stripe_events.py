"""Stripe webhooks, framework-free: signature verification and event handling.

Verification (https://docs.stripe.com/webhooks#verify-events): the ``Stripe-Signature`` header is
``t=<unix seconds>,v1=<hex HMAC-SHA256>[,v1=…]``; the signed payload is ``f"{t}.{raw body}"`` with
the endpoint's signing secret; a timestamp older than the tolerance (300 s by default) is refused to
stop replays. The SDK's ``stripe.WebhookSignature.verify_header`` does the check; the body is then
parsed as plain JSON (dicts are easier to match than ``StripeObject``). The SDK only bounds the age of
the timestamp, so a signature timestamp or an ``event.created`` more than the tolerance in the future
is refused here too (a delivery signed "later" would otherwise stay replayable for as long as it says).

Handling (:func:`handle_event`) runs in the caller's transaction. Each event id is claimed once by
inserting a ``WebhookEvent`` row (unique ``(provider, event_id)``) before anything else, so the claim
commits or rolls back with the change; a redelivery finds the row and changes nothing (Stripe may
deliver an event more than once and in any order: https://docs.stripe.com/webhooks#handle-duplicate-events,
https://docs.stripe.com/webhooks#event-ordering). The order row is locked (``SELECT … FOR UPDATE`` on
PostgreSQL) so concurrent events of one order apply one after the other, and every transition is
guarded by the current state: a ``completed`` for a paid order or an ``expired`` after ``paid``
changes nothing.

Events handled: ``checkout.session.completed`` (paid only when ``payment_status == "paid"``; delayed
methods wait for ``checkout.session.async_payment_succeeded``), ``…async_payment_failed`` (failed),
``…expired`` (expired; ``issue_payment_link`` then issues a new link), ``charge.refunded`` (a full
refund only; partial refunds are ignored), ``account.updated`` (onboarding state) and
``account.application.deauthorized`` (the business disconnected: charges disabled). A Checkout event
must name our order (``client_reference_id`` / ``metadata.order_id``), carry the order's tenant and
company in ``metadata``, and come from the company's connected account (``event.account``); anything
else is acknowledged and ignored.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import stripe
from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from commerce.bookings import on_payment_failed_or_expired
from commerce.payments import PaymentStateError, mark_paid
from commerce.stripe_connect import apply_account, company_by_account
from core.models import Company, Order, Payment, WebhookEvent
from core.timeutil import utcnow

PROVIDER = "stripe"
DEFAULT_TOLERANCE_SECONDS = 300

EventStatus = Literal["processed", "duplicate", "ignored"]


class StripeWebhookError(Exception):
    """The request is not a usable Stripe event (the route answers 400 and stores nothing)."""


class StripeSignatureError(StripeWebhookError):
    """The ``Stripe-Signature`` header is missing, malformed, wrong for every configured secret, or
    older than the tolerance."""


@dataclass(frozen=True, slots=True)
class EventResult:
    """What handling an event did. ``status``: processed (state changed), duplicate (event id seen
    before), ignored (``reason`` says why). ``conversation_id`` is set when a customer message was
    queued (the caller then triggers delivery)."""

    status: EventStatus
    event_id: str
    event_type: str
    reason: str | None = None
    order_id: uuid.UUID | None = None
    tenant_id: uuid.UUID | None = None
    conversation_id: uuid.UUID | None = None


def verify_event(
    payload: bytes | str,
    signature_header: str | None,
    *,
    secrets: Sequence[str],
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> dict[str, Any]:
    """Verify ``payload`` (the raw request body, unmodified) against ``signature_header`` with any of
    ``secrets`` (the platform endpoint's and the Connect endpoint's ``whsec_…``) and return the event
    as a dict. Raises ``StripeSignatureError`` for a bad/stale/missing signature and
    ``StripeWebhookError`` for a body that is not a Stripe event or one dated more than ``tolerance``
    seconds in the future (signature timestamp or ``created``, unix seconds)."""
    if not secrets:
        raise StripeSignatureError("no Stripe webhook signing secret is configured")
    error: Exception | None = None
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(payload, signature_header, secret, tolerance)
            break
        except (stripe.SignatureVerificationError, UnicodeDecodeError) as exc:
            error = exc
    else:
        raise StripeSignatureError(f"invalid Stripe-Signature: {error}") from error
    latest = time.time() + tolerance
    signed_at = _signature_timestamp(signature_header or "")
    if signed_at is None or signed_at > latest:
        raise StripeSignatureError(f"Stripe-Signature timestamp {signed_at} is more than {tolerance} s in the future")
    try:
        event = json.loads(payload)
    except ValueError as exc:
        raise StripeWebhookError("the body is not JSON") from exc
    if not isinstance(event, dict) or event.get("object") != "event" or not isinstance(event.get("id"), str) \
            or not isinstance(event.get("type"), str) or not isinstance(event.get("data"), dict):
        raise StripeWebhookError("the body is not a Stripe event")
    created = event.get("created")
    if isinstance(created, int | float) and created > latest:
        raise StripeWebhookError(f"the event was created {created}, more than {tolerance} s in the future")
    return event


def _signature_timestamp(header: str) -> int | None:
    """The ``t=`` element of a ``Stripe-Signature`` header (unix seconds), None when absent or not a number."""
    for element in header.split(","):
        key, _, value = element.strip().partition("=")
        if key == "t":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def handle_event(session: AsyncSession, event: Mapping[str, Any]) -> EventResult:
    """Apply a verified Stripe ``event`` (dict) once. Does not commit. Raises only on database
    errors (the caller's transaction then rolls back, the claim with it, and Stripe retries)."""
    event_id, event_type = str(event["id"]), str(event["type"])
    account = event.get("account")
    claimed = await _claim(session, event_id=event_id, event_type=event_type, account=account)
    if not claimed:
        return EventResult("duplicate", event_id, event_type, reason="event already handled")
    obj = (event.get("data") or {}).get("object") or {}
    handler = _HANDLERS.get(event_type)
    if handler is None:
        result = EventResult("ignored", event_id, event_type, reason="unhandled event type")
    else:
        result = await handler(session, event_id, event_type, account, obj)
    await session.execute(
        update(WebhookEvent)
        .where(WebhookEvent.provider == PROVIDER, WebhookEvent.event_id == event_id)
        .values(outcome=result.status, reason=(result.reason or "")[:255] or None, tenant_id=result.tenant_id)
    )
    return result


async def _claim(session: AsyncSession, *, event_id: str, event_type: str, account: str | None) -> bool:
    """Insert the event's row unless it exists (``INSERT … ON CONFLICT DO NOTHING``; on PostgreSQL a
    concurrent insert of the same id waits for the other transaction). True when this call owns it."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stmt = (
        insert(WebhookEvent)
        .values(id=uuid.uuid4(), provider=PROVIDER, event_id=event_id, event_type=event_type[:100],
                account=account, outcome="processed", created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["provider", "event_id"])
        .returning(WebhookEvent.id)
    )
    return (await session.execute(stmt)).scalar_one_or_none() is not None


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


async def _locked_order(session: AsyncSession, order_id: uuid.UUID) -> Order | None:
    stmt = select(Order).where(Order.id == order_id).with_for_update().execution_options(populate_existing=True)
    return (await session.execute(stmt)).scalar_one_or_none()


async def _latest_payment_id(session: AsyncSession, order: Order) -> uuid.UUID | None:
    return (
        await session.execute(
            select(Payment.id).where(Payment.tenant_id == order.tenant_id, Payment.order_id == order.id)
            .order_by(Payment.created_at.desc()).limit(1)
        )
    ).scalar_one_or_none()


@dataclass(slots=True)
class _CheckoutTarget:
    order: Order
    company: Company
    payment: Payment | None


async def _checkout_target(session: AsyncSession, account: str | None, obj: Mapping[str, Any]) -> _CheckoutTarget | str:
    """The order, company and payment a Checkout Session event is about, or the reason to ignore it."""
    metadata = obj.get("metadata") or {}
    ref, meta_order = _uuid(obj.get("client_reference_id")), _uuid(metadata.get("order_id"))
    if ref and meta_order and ref != meta_order:
        return "client_reference_id and metadata.order_id differ"
    order_id = ref or meta_order
    if order_id is None:
        return "the session names no order of ours"
    order = await _locked_order(session, order_id)
    if order is None:
        return "unknown order"
    if metadata.get("tenant_id") != str(order.tenant_id) or metadata.get("company_id") != str(order.company_id):
        return "metadata tenant/company do not match the order"
    company = await session.get(Company, order.company_id)
    if company is None or company.tenant_id != order.tenant_id:
        return "unknown company"
    if not company.stripe_account_id or account != company.stripe_account_id:
        return "the event's account is not the company's connected account"
    refs = [r for r in (obj.get("id"), obj.get("payment_intent")) if isinstance(r, str) and r]
    payment = None
    if refs:
        payment = (
            await session.execute(
                select(Payment)
                .where(Payment.tenant_id == order.tenant_id, Payment.order_id == order.id,
                       Payment.provider == PROVIDER, Payment.provider_ref.in_(refs))
                .order_by(Payment.created_at.desc()).limit(1)
                .execution_options(populate_existing=True)
            )
        ).scalar_one_or_none()
    return _CheckoutTarget(order=order, company=company, payment=payment)


def _amount_matches(order: Order, obj: Mapping[str, Any]) -> bool:
    """The session charged the order's total: ``amount_total``/``currency``, or under Adaptive Pricing
    (the customer paid in another currency) ``currency_conversion.amount_total``/``source_currency``."""
    conversion = obj.get("currency_conversion")
    if isinstance(conversion, Mapping) and conversion.get("source_currency"):
        amount, currency = conversion.get("amount_total"), conversion.get("source_currency")
    else:
        amount, currency = obj.get("amount_total"), obj.get("currency")
    if amount is None:
        return True  # older API versions / partial payloads: metadata, account and session id already matched
    return int(amount) == order.total_minor and str(currency or "").lower() == order.currency.lower()


async def _on_checkout_paid(session: AsyncSession, event_id: str, event_type: str, account: str | None,
                            obj: Mapping[str, Any]) -> EventResult:
    target = await _checkout_target(session, account, obj)
    if isinstance(target, str):
        return EventResult("ignored", event_id, event_type, reason=target)
    order = target.order
    ids = {"order_id": order.id, "tenant_id": order.tenant_id}
    if event_type == "checkout.session.completed" and obj.get("payment_status") != "paid":
        status = obj.get("payment_status")
        return EventResult("ignored", event_id, event_type,
                           reason=f"payment_status is {status!r}: waiting for the async payment", **ids)
    if not _amount_matches(order, obj):
        return EventResult("ignored", event_id, event_type,
                           reason="the session's amount differs from the order's total", **ids)
    provider_ref = obj.get("payment_intent") or obj.get("id")
    try:
        changed = await mark_paid(session, order=order, method="card", payment=target.payment,
                                  provider_ref=str(provider_ref) if provider_ref else None)
    except PaymentStateError as exc:
        return EventResult("ignored", event_id, event_type, reason=str(exc), **ids)
    if not changed:
        return EventResult("ignored", event_id, event_type, reason="order already paid", **ids)
    return EventResult("processed", event_id, event_type, conversation_id=order.conversation_id, **ids)


async def _on_checkout_closed(session: AsyncSession, event_id: str, event_type: str, account: str | None,
                              obj: Mapping[str, Any]) -> EventResult:
    """``async_payment_failed`` → failed, ``expired`` → expired: only a payment whose link is still
    out changes, and the order follows only when that payment is its latest attempt and not paid."""
    new_status = "failed" if event_type == "checkout.session.async_payment_failed" else "expired"
    target = await _checkout_target(session, account, obj)
    if isinstance(target, str):
        return EventResult("ignored", event_id, event_type, reason=target)
    order, payment = target.order, target.payment
    ids = {"order_id": order.id, "tenant_id": order.tenant_id}
    if payment is None:
        return EventResult("ignored", event_id, event_type, reason="no payment of the order has this session", **ids)
    if payment.status != "payment_link_sent":
        return EventResult("ignored", event_id, event_type, reason=f"payment is already {payment.status}", **ids)
    payment.status = new_status
    if order.payment_status not in ("paid", "refunded") and await _latest_payment_id(session, order) == payment.id:
        order.payment_status = new_status
        # "First the payment, then the calendar": an unpaid prepayment releases its held slot.
        await on_payment_failed_or_expired(session, order=order, now=utcnow(), reason=f"payment_{new_status}")
    await session.flush()
    return EventResult("processed", event_id, event_type, **ids)


async def _on_charge_refunded(session: AsyncSession, event_id: str, event_type: str, account: str | None,
                              obj: Mapping[str, Any]) -> EventResult:
    """A fully refunded charge marks its payment and order ``refunded`` (``order.status`` is left as
    it is: whether goods come back is the business's call). Partial refunds are ignored."""
    intent = obj.get("payment_intent")
    if not intent:
        return EventResult("ignored", event_id, event_type, reason="the charge has no payment intent")
    if not obj.get("refunded"):
        return EventResult("ignored", event_id, event_type,
                           reason=f"partial refund ({obj.get('amount_refunded')} of {obj.get('amount')})")
    candidates = (
        await session.execute(select(Payment).where(Payment.provider == PROVIDER, Payment.provider_ref == str(intent)))
    ).scalars().all()
    for payment in candidates:
        order = await _locked_order(session, payment.order_id)
        if order is None or order.tenant_id != payment.tenant_id:
            continue
        company = await session.get(Company, order.company_id)
        if company is None or not company.stripe_account_id or company.stripe_account_id != account:
            continue
        metadata = obj.get("metadata") or {}
        if metadata.get("order_id") and metadata.get("order_id") != str(order.id):
            continue
        ids = {"order_id": order.id, "tenant_id": order.tenant_id}
        await session.refresh(payment)
        if payment.status == "refunded" or order.payment_status == "refunded":
            return EventResult("ignored", event_id, event_type, reason="already refunded", **ids)
        payment.status = "refunded"
        order.payment_status = "refunded"
        await session.flush()
        return EventResult("processed", event_id, event_type, **ids)
    return EventResult("ignored", event_id, event_type,
                       reason="no payment of a connected company has this payment intent")


async def _on_account_updated(session: AsyncSession, event_id: str, event_type: str, account: str | None,
                              obj: Mapping[str, Any]) -> EventResult:
    account_id = obj.get("id")
    if not isinstance(account_id, str) or (account and account != account_id):
        return EventResult("ignored", event_id, event_type, reason="the event's account and object differ")
    company = await company_by_account(session, account_id)
    if company is None:
        return EventResult("ignored", event_id, event_type, reason="unknown connected account")
    apply_account(company, obj)
    await session.flush()
    return EventResult("processed", event_id, event_type, tenant_id=company.tenant_id)


async def _on_deauthorized(session: AsyncSession, event_id: str, event_type: str, account: str | None,
                           obj: Mapping[str, Any]) -> EventResult:
    company = await company_by_account(session, account or "")
    if company is None:
        return EventResult("ignored", event_id, event_type, reason="unknown connected account")
    company.stripe_charges_enabled = False
    await session.flush()
    return EventResult("processed", event_id, event_type, tenant_id=company.tenant_id)


_HANDLERS = {
    "checkout.session.completed": _on_checkout_paid,
    "checkout.session.async_payment_succeeded": _on_checkout_paid,
    "checkout.session.async_payment_failed": _on_checkout_closed,
    "checkout.session.expired": _on_checkout_closed,
    "charge.refunded": _on_charge_refunded,
    "account.updated": _on_account_updated,
    "account.application.deauthorized": _on_deauthorized,
}
