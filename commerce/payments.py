"""Payments for orders (customer → business). ``mark_paid`` is the single path by which an order
becomes paid: the manual page, a manager, and payment webhooks all call it.

A payment page token (``/pay/{token}``) is 256-bit random (``core.security.new_token``) and only its
SHA-256 is stored (``Payment.token_hash``); ``payment_by_token`` looks it up by hash and compares in
constant time. The token travels to the customer inside ``Payment.checkout_url`` (the manual
provider's link, kept so a live link can be sent again) and the chat message that carried it: it is
the customer's link, like their conversation, and the hash column alone cannot give it back.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import structlog
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from commerce.bookings import on_order_paid
from commerce.notifications import payment_confirmation
from commerce.providers import ProviderRegistry
from core.alerts import record_alert
from core.conversations import append_message
from core.i18n import company_locale, likely_locale
from core.models import Company, Conversation, Message, Order, Payment
from core.security import new_token, token_hash, token_matches_hash
from core.timeutil import utcnow

log = structlog.get_logger(__name__)

PAID_METHODS = ("test", "cash", "bank_transfer", "card", "other")


class PaymentStateError(Exception):
    """The payment is in a state that does not allow the requested change."""


async def issue_payment_link(
    session: AsyncSession,
    *,
    order: Order,
    company: Company,
    providers: ProviderRegistry,
    ttl: timedelta = timedelta(hours=24),
) -> Payment:
    """Create a payment link for ``order`` with the company's provider (its page in the customer's
    language: the order's conversation) and set the order's ``payment_status`` to ``payment_link_sent``.
    An order with a live link gets the same one back.

    Raises ``KeyError`` for an unknown provider, ``PaymentStateError`` for a paid order (also one paid
    while the link was being created: that link is expired at once), and whatever the provider raises
    (``commerce.errors.PaymentUnavailable``).
    """
    if order.payment_status == "paid":
        raise PaymentStateError(f"order #{order.number} is already paid")
    now = utcnow()
    current = (
        await session.execute(
            select(Payment)
            .where(Payment.tenant_id == order.tenant_id, Payment.order_id == order.id,
                   Payment.status == "payment_link_sent")
            .order_by(Payment.created_at.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    if current is not None and (current.expires_at is None or current.expires_at > now):
        return current
    attempts = (
        await session.execute(select(func.count()).where(Payment.order_id == order.id))
    ).scalar_one()
    provider = providers.get(company.payment_provider)
    token = new_token()
    expires_at = now + ttl
    link = await provider.create_link(company=company, order=order, token=token, attempt=attempts + 1,
                                      expires_at=expires_at, language=await _customer_language(session, order))
    payment = Payment(
        tenant_id=order.tenant_id, order_id=order.id, provider=provider.name, status="payment_link_sent",
        amount_minor=order.total_minor, currency=order.currency, token_hash=token_hash(token),
        checkout_url=link.checkout_url,
        provider_ref=link.provider_ref, expires_at=link.expires_at or expires_at,
    )
    session.add(payment)
    await session.flush()
    # The provider call takes a while and the order may have been paid meanwhile (a manager, the
    # webhook of an earlier link): the order follows the new link only if it is still unpaid, in one
    # conditional statement, so a paid order is never turned back into "payment_link_sent".
    followed = await session.execute(
        update(Order).where(Order.id == order.id, Order.payment_status != "paid")
        .values(payment_status="payment_link_sent").execution_options(synchronize_session=False)
    )
    if followed.rowcount != 1:
        payment.status = "expired"
        await session.flush()
        await session.refresh(order, ["payment_status", "status", "paid_at"])
        try:
            await provider.expire_link(company=company, provider_ref=payment.provider_ref)
        except Exception as exc:  # noqa: BLE001 - the order is paid either way; the owner sees the log
            log.warning("payment_link_not_expired", order_id=str(order.id), provider=provider.name,
                        error=type(exc).__name__)
        raise PaymentStateError(f"order #{order.number} is already paid")
    set_committed_value(order, "payment_status", "payment_link_sent")
    return payment


async def withdraw_link(payment: Payment, *, company: Company, providers: ProviderRegistry) -> None:
    """Make the link of a payment that is being rolled back unpayable at its provider (the checkout it
    belonged to did not happen: its rows are gone with the savepoint, so nothing is recorded). A
    provider error is logged, not raised: a payment that still arrives for an unknown session is the
    webhook's to report."""
    try:
        provider = providers.get(payment.provider)
        await provider.expire_link(company=company, provider_ref=payment.provider_ref)
    except Exception as exc:  # noqa: BLE001 - the customer is told the item ran out either way
        log.warning("payment_link_not_withdrawn", provider=payment.provider, error=type(exc).__name__)


async def expire_payment(
    session: AsyncSession, *, order: Order, payment: Payment, company: Company, providers: ProviderRegistry
) -> None:
    """Expire an issued link at its provider and record it: the payment becomes ``expired`` and so
    does the order's ``payment_status`` when this was its latest attempt (a paid order is untouched).
    Used when a booking hold runs out before payment: "first the payment, then the calendar"."""
    if payment.status != "payment_link_sent" or order.payment_status == "paid":
        return
    try:
        provider = providers.get(payment.provider)
    except KeyError:
        provider = None
    if provider is not None:
        await provider.expire_link(company=company, provider_ref=payment.provider_ref)
    # The provider call takes a while and the customer may have paid meanwhile (the webhook's
    # ``mark_paid`` committed): each change is one conditional statement, so a paid payment or order
    # is never turned back into "expired" (on SQLite as on PostgreSQL).
    await session.flush()
    expired = await session.execute(
        update(Payment).where(Payment.id == payment.id, Payment.status == "payment_link_sent")
        .values(status="expired").execution_options(synchronize_session=False)
    )
    if expired.rowcount != 1:
        await session.refresh(payment, ["status"])
        await session.refresh(order, ["payment_status", "status", "paid_at"])
        return
    set_committed_value(payment, "status", "expired")
    latest = await latest_payment(session, order)
    if latest is None or latest.id == payment.id:
        await session.execute(
            update(Order).where(Order.id == order.id, Order.payment_status.not_in(("paid", "refunded")))
            .values(payment_status="expired").execution_options(synchronize_session=False)
        )
    await session.refresh(order, ["payment_status"])


MAX_TOKEN_LENGTH = 128


async def payment_by_token(session: AsyncSession, token: str) -> Payment | None:
    """The payment addressed by a payment page token (the token is the secret; no tenant needed):
    looked up by its SHA-256 and compared in constant time. ``None`` for an empty, overlong or
    unknown token."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    digest = token_hash(token)
    payment = (await session.execute(select(Payment).where(Payment.token_hash == digest))).scalar_one_or_none()
    if payment is None or not token_matches_hash(token, payment.token_hash):
        return None
    return payment


async def latest_payment(session: AsyncSession, order: Order) -> Payment | None:
    """The order's most recent payment attempt, if any."""
    return (
        await session.execute(
            select(Payment).where(Payment.tenant_id == order.tenant_id, Payment.order_id == order.id)
            .order_by(Payment.created_at.desc()).limit(1)
        )
    ).scalar_one_or_none()


async def mark_paid(
    session: AsyncSession,
    *,
    order: Order,
    method: str,
    payment: Payment | None = None,
    provider_ref: str | None = None,
    paid_at: datetime | None = None,
) -> bool:
    """Record that ``order`` is paid and tell the customer in the order's conversation.

    ``method`` is one of ``PAID_METHODS``. Uses ``payment`` or the latest attempt (a manager marking an
    order without a link creates a manual payment). Idempotent: returns ``False`` and changes nothing
    when the order is already paid, ``True`` when it was marked now. The confirmation is an outbound
    ``Message`` with status ``pending`` (delivered by the channel layer); bookings the order prepays
    are confirmed in the same transaction (``commerce.bookings.on_order_paid``). Raises ``PaymentStateError``
    for a refunded order and ``ValueError`` for an unknown method.
    """
    if method not in PAID_METHODS:
        raise ValueError(f"payment method must be one of {', '.join(PAID_METHODS)}, not {method!r}")
    if order.payment_status == "paid":
        return False
    if order.payment_status == "refunded":
        raise PaymentStateError(f"order #{order.number} was refunded")
    when = paid_at or utcnow()
    if not await _claim_paid(session, order=order, when=when):
        # Someone else marked it paid (or refunded it) since ``order`` was read: report what it is now.
        await session.refresh(order, ["payment_status", "status", "paid_at"])
        if order.payment_status == "refunded":
            raise PaymentStateError(f"order #{order.number} was refunded")
        return False
    payment = payment or await latest_payment(session, order)
    if payment is None:
        payment = Payment(tenant_id=order.tenant_id, order_id=order.id, provider="manual", status="paid",
                          amount_minor=order.total_minor, currency=order.currency)
        session.add(payment)
    payment.status = "paid"
    payment.method = method
    payment.paid_at = when
    if provider_ref:
        payment.provider_ref = provider_ref
    await session.flush()
    await _notify_paid(session, order)
    await record_alert(
        session, tenant_id=order.tenant_id, company_id=order.company_id, kind="order.paid",
        conversation_id=order.conversation_id,
        data={"order_id": str(order.id), "order_number": order.number, "total_minor": order.total_minor,
              "currency": order.currency, "method": method, "paid_at": when.isoformat(),
              "customer_name": order.customer_name,
              "conversation_id": str(order.conversation_id) if order.conversation_id else None},
    )
    await on_order_paid(session, order, now=when)
    return True


async def _claim_paid(session: AsyncSession, *, order: Order, when: datetime) -> bool:
    """Mark ``order`` paid in ONE conditional statement (``UPDATE orders SET payment_status='paid' …
    WHERE id=… AND payment_status NOT IN ('paid', 'refunded')``) and return whether this call did it.

    Whoever reads the order first, exactly one of any number of concurrent ``mark_paid`` calls (the
    payment page, a manager, a Stripe webhook) sees a row count of 1, on SQLite (which ignores
    ``SELECT … FOR UPDATE``) as on PostgreSQL (where the losers wait for the winner's row lock and then
    re-check the condition). Pending changes of the session are flushed first; ``order`` is updated
    in memory when the claim succeeds."""
    await session.flush()
    result = await session.execute(
        update(Order)
        .where(Order.id == order.id, Order.payment_status.not_in(("paid", "refunded")))
        .values(payment_status="paid", status="paid", paid_at=when)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:
        return False
    for key, value in (("payment_status", "paid"), ("status", "paid"), ("paid_at", when)):
        set_committed_value(order, key, value)
    return True


async def _order_conversation(session: AsyncSession, order: Order) -> Conversation | None:
    """The order's conversation (same tenant), ``None`` without one."""
    if order.conversation_id is None:
        return None
    conversation = await session.get(Conversation, order.conversation_id)
    if conversation is None or conversation.tenant_id != order.tenant_id:
        return None
    return conversation


async def _customer_language(session: AsyncSession, order: Order) -> str | None:
    """The language of the order's conversation (``en``, ``ru``), ``None`` without one."""
    conversation = await _order_conversation(session, order)
    if conversation is None:
        return None
    return conversation.language or None


async def _notify_paid(session: AsyncSession, order: Order) -> Message | None:
    conversation = await _order_conversation(session, order)
    if conversation is None:
        return None
    company = await session.get(Company, order.company_id)
    language = conversation.language or (company.language if company else "en")
    locale = company_locale(company) if company else likely_locale(language)
    return await append_message(
        session, conversation=conversation, direction="out", sender="system",
        text=payment_confirmation(order, language=language, locale=locale),
        payload={"buttons": [], "url": None, "image_url": None, "event": "order.paid", "order_id": str(order.id)},
    )
