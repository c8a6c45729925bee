"""Bookings of services: hold a slot, confirm it when the prepayment is paid, release, cancel, move.

"First the payment, then the calendar": ``hold_slot`` takes a free slot for ``hold_minutes`` (status
``held``) and creates an ``Order`` for the prepayment (one line: the service), so
``commerce.payments.issue_payment_link`` and ``mark_paid`` work unchanged. When the order is paid,
``on_order_paid`` makes the booking ``confirmed``; when the payment fails or expires, or the hold runs
out, the booking is ``released`` and its time is free again. A service with nothing to prepay (price
0, or a prepayment of 0) is ``confirmed`` at once and has no order.

Double booking is impossible in the database. Every active (held or confirmed) booking owns one
``booking_slots`` row per 5-minute cell of its time (``commerce.schedule.CELL_MINUTES``) and per seat,
with ``UNIQUE (resource_id, slot_start, seat)``; a resource of capacity N has seats 0..N-1. Taking a
slot inserts those rows inside a SAVEPOINT; when another transaction got there first, PostgreSQL makes
the second insert wait for the first transaction and then fails it with a unique violation (SQLite runs
writers one at a time: ``begin_write`` opens the write transaction with ``BEGIN IMMEDIATE``), the
savepoint is rolled back and the caller gets ``SlotTaken``. Releasing or cancelling deletes the rows.
A table of cells was chosen over a PostgreSQL exclusion constraint (``tstzrange`` + ``btree_gist``)
because it behaves the same on SQLite and handles capacity > 1 without triggers. Cells are inserted in
ascending time order so two overlapping holds cannot deadlock each other.

State changes lock the booking row (``SELECT ... FOR UPDATE`` on PostgreSQL) so a payment arriving
while the hold expires is resolved one way: confirmed, or released and (when the time is gone by
then) flagged ``refund_due``.

All instants are aware UTC; money is integer minor units of the booking's ``currency``. Functions
take an ``AsyncSession``, flush, and never commit (the caller owns the transaction).

Integration (not done here): ``commerce.payments.mark_paid`` must call ``on_order_paid(session,
order)`` after marking an order paid; payment webhooks for failed/expired payments call
``on_payment_failed_or_expired``; a periodic job calls ``release_expired_holds``; issue the payment
link with ``ttl=payment_ttl(booking, now=...)`` so it does not outlive the hold.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from commerce.contacts import remember_customer
from commerce.errors import CommerceError, PriceMissing
from commerce.notifications import booking_notice, prepayment_label
from commerce.orders import insert_with_next_number
from commerce.schedule import (
    NotBookable,
    Schedule,
    Slot,
    begin_write,
    candidate_slots,
    cells,
    check_service,
    company_zone,
    eligible_resources,
    free_slots,
    schedule_of,
    service_duration,
)
from core.alerts import record_alert
from core.conversations import append_message
from core.i18n import company_locale, lang_of, when_text
from core.models import (
    Booking,
    BookingSlot,
    Company,
    Contact,
    Conversation,
    KnowledgeItem,
    Order,
    OrderLine,
    Payment,
    Resource,
)
from core.tenancy import TenantScope
from core.timeutil import utcnow

Actor = Literal["customer", "company"]
ACTIVE_STATUSES: tuple[str, ...] = ("held", "confirmed")


@dataclass
class SlotTaken(CommerceError):
    """Someone else holds or booked this time (possibly a moment ago); offer other slots."""

    start: datetime
    resource_name: str | None = None

    def __str__(self) -> str:
        return f"the slot at {self.start.isoformat()} is already taken"


@dataclass
class SlotUnavailable(CommerceError):
    """The time is not bookable at all: outside opening hours, in a break, on a day off, in the past,
    not on the slot grid, or the chosen resource does not perform the service. ``reason`` says which."""

    start: datetime
    reason: str


@dataclass
class BookingStateError(CommerceError):
    """The booking's ``status`` does not allow ``action`` (e.g. cancelling a released booking)."""

    booking_id: uuid.UUID
    status: str
    action: str


@dataclass
class TooLateToChange(CommerceError):
    """A customer may not move a booking less than ``cancel_hours`` before its ``start``."""

    start: datetime
    cancel_hours: int


@dataclass(frozen=True, slots=True)
class CancelResult:
    """Outcome of a cancellation. ``late``: within the company's ``cancel_hours`` before the start;
    ``refundable``: a paid prepayment goes back (``refund_minor`` in minor units of ``currency``; 0 when
    nothing was paid or the cancellation was late). The refund itself is the payment provider's job."""

    booking: Booking
    late: bool
    refundable: bool
    refund_minor: int
    currency: str


def _check_aware(**values: datetime) -> None:
    for name, value in values.items():
        if value.tzinfo is None:
            raise ValueError(f"{name} must be a timezone-aware datetime")


def prepayment_minor(service: KnowledgeItem, schedule: Schedule) -> int:
    """What a customer prepays for ``service``, in minor units of ``service.currency``.

    ``service.attributes["prepay_minor"]`` (an amount, capped at the price) wins over
    ``attributes["prepay_percent"]`` (0..100, rounded half up), which wins over the schedule's
    ``prepay_percent`` (default 100 = the whole price). A free service prepays 0. Raises ``PriceMissing``
    when a percentage applies and the service has no price, ``ValueError`` for a bad attribute."""
    attrs = service.attributes or {}
    price = service.price_minor
    if attrs.get("prepay_minor") is not None:
        amount = attrs["prepay_minor"]
        if isinstance(amount, bool) or not isinstance(amount, int) or amount < 0:
            raise ValueError(f"service {service.name!r}: prepay_minor must be a non-negative integer")
        return min(amount, price) if price is not None else amount
    percent = attrs.get("prepay_percent", schedule.prepay_percent)
    if isinstance(percent, bool) or not isinstance(percent, int | float) or not 0 <= percent <= 100:
        raise ValueError(f"service {service.name!r}: prepay_percent must be 0..100")
    if percent == 0:
        return 0
    if price is None:
        raise PriceMissing(service.name)
    return int((Decimal(price) * Decimal(str(percent)) / 100).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def payment_ttl(booking: Booking, *, now: datetime) -> timedelta:
    """How long the prepayment link of a held booking should live (until the hold expires; at least a
    minute). Pass it as ``ttl`` to ``commerce.payments.issue_payment_link``."""
    if booking.hold_expires_at is None:
        return timedelta(minutes=15)
    return max(booking.hold_expires_at - now, timedelta(minutes=1))


# --- cells (the database guard) ---


async def _resource(session: AsyncSession, booking: Booking) -> Resource:
    resource = await session.get(Resource, booking.resource_id)
    if resource is None:  # pragma: no cover - FK guarantees it
        raise LookupError(f"resource {booking.resource_id} not found")
    return resource


async def _claim(
    session: AsyncSession, *, booking: Booking, slot: Slot, capacity: int, replace: bool = False
) -> bool:
    """Insert the booking's cell rows for ``slot`` (one free seat per cell) inside a savepoint. With
    ``replace`` the booking's current rows are deleted in the same savepoint (a move). Returns False
    when a cell has no free seat (also after a lost race, re-reading up to 3 times)."""
    wanted = cells(slot.start, slot.end)
    for _attempt in range(3):
        stmt = select(BookingSlot.slot_start, BookingSlot.seat).where(
            BookingSlot.resource_id == slot.resource_id, BookingSlot.slot_start.in_(wanted))
        if replace:
            stmt = stmt.where(BookingSlot.booking_id != booking.id)
        taken: dict[datetime, set[int]] = {}
        for ts, seat in (await session.execute(stmt)).all():
            taken.setdefault(ts, set()).add(seat)
        rows: list[dict[str, Any]] = []
        for cell in wanted:
            seat = next((k for k in range(max(capacity, 1)) if k not in taken.get(cell, set())), None)
            if seat is None:
                return False
            rows.append({"id": uuid.uuid4(), "tenant_id": booking.tenant_id, "booking_id": booking.id,
                         "resource_id": slot.resource_id, "slot_start": cell, "seat": seat,
                         "created_at": booking.created_at})
        try:
            async with session.begin_nested():
                if replace:
                    await session.execute(delete(BookingSlot).where(BookingSlot.booking_id == booking.id))
                await session.execute(insert(BookingSlot), rows)
            return True
        except IntegrityError:
            continue
    return False


async def _free_cells(session: AsyncSession, booking_ids: list[uuid.UUID]) -> None:
    if booking_ids:
        await session.execute(delete(BookingSlot).where(BookingSlot.booking_id.in_(booking_ids)))


def _locked(stmt: Any) -> Any:
    return stmt.with_for_update().execution_options(populate_existing=True)


async def _release(session: AsyncSession, bookings: list[Booking], *, now: datetime, reason: str) -> None:
    for b in bookings:
        b.status = "released"
        b.released_at = now
        b.release_reason = reason
    await _free_cells(session, [b.id for b in bookings])
    await session.flush()


async def _release_expired(session: AsyncSession, *, now: datetime, company_id: uuid.UUID | None) -> list[Booking]:
    stmt = select(Booking).where(Booking.status == "held", Booking.hold_expires_at <= now)
    if company_id is not None:
        stmt = stmt.where(Booking.company_id == company_id)
    # SKIP LOCKED: a hold being confirmed by a payment right now is left to that transaction.
    stmt = stmt.with_for_update(skip_locked=True).execution_options(populate_existing=True)
    expired = list((await session.execute(stmt)).scalars())
    await _release(session, expired, now=now, reason="hold_expired")
    return expired


async def release_expired_holds(session: AsyncSession, *, now: datetime, company: Company | None = None) -> int:
    """Release every held booking whose hold expired at or before ``now`` (all tenants, or one
    ``company``): status ``released`` (``release_reason`` "hold_expired"), its time free again. Returns
    how many were released. Meant for a periodic job; ``free_slots`` and ``hold_slot`` already treat
    expired holds as free, so correctness does not depend on the job's timing."""
    _check_aware(now=now)
    await begin_write(session)
    return len(await _release_expired(session, now=now, company_id=company.id if company else None))


async def open_links_of_released_holds(session: AsyncSession) -> list[tuple[Order, Payment]]:
    """Unpaid prepayment orders whose bookings were all released (hold expired, payment failed) but
    whose payment link is still out (``payment_link_sent``): (order, payment) pairs, all tenants.
    The link should be expired so the customer cannot pay for a time no longer held."""
    released = select(Booking.order_id).where(Booking.order_id.is_not(None), Booking.status == "released")
    still_held = select(Booking.order_id).where(Booking.order_id.is_not(None), Booking.status != "released")
    stmt = (
        select(Order, Payment)
        .join(Payment, Payment.order_id == Order.id)
        .where(Order.id.in_(released), Order.id.not_in(still_held), Order.payment_status == "payment_link_sent",
               Payment.status == "payment_link_sent", Payment.tenant_id == Order.tenant_id)
    )
    return [(row[0], row[1]) for row in (await session.execute(stmt)).all()]


# --- holding ---


async def _prepayment_order(
    session: AsyncSession, *, company: Company, booking: Booking, service: KnowledgeItem
) -> Order:
    tz = company_zone(company)
    lang = lang_of(company.language)
    name = service.name if booking.prepay_minor == booking.price_minor else prepayment_label(service.name, lang)
    when = format_when(booking.start_at, tz, lang)

    def make(number: int) -> Order:
        order = Order(
            tenant_id=company.tenant_id, company_id=company.id, conversation_id=booking.conversation_id,
            contact_id=booking.contact_id, number=number, status="pending_payment",
            payment_status="no_payment_link", total_minor=booking.prepay_minor, currency=booking.currency,
            customer_name=booking.customer_name, delivery_address=None, phone=booking.phone,
        )
        order.lines = [OrderLine(tenant_id=company.tenant_id, item_id=service.id, variant_id=None, sku=service.sku,
                                 name=name[:500], variant=f"{when} · {booking.resource_name}"[:255], quantity=1,
                                 unit_price_minor=booking.prepay_minor, position=0)]
        return order

    return await insert_with_next_number(session, make=make, company_id=company.id)


async def hold_slot(
    session: AsyncSession,
    *,
    company: Company,
    service: KnowledgeItem,
    start: datetime,
    now: datetime,
    resource: Resource | uuid.UUID | None = None,
    contact_id: uuid.UUID | None = None,
    conversation_id: uuid.UUID | None = None,
    customer_name: str | None = None,
    phone: str | None = None,
) -> Booking:
    """Take the slot of ``service`` starting at ``start`` (aware; one of ``free_slots``' starts).

    With ``resource`` None any eligible resource with a free seat is taken (in ``free_slots`` order).
    When something must be prepaid (``prepayment_minor``) the booking is ``held`` until ``now +
    hold_minutes`` and ``booking.order_id`` points to a new ``pending_payment`` order whose total is the
    prepayment (issue its payment link with ``commerce.payments.issue_payment_link``); otherwise it is
    ``confirmed`` at once and has no order. Customer name/phone default to the contact's.

    Raises ``SlotTaken`` (someone else has it; the transaction stays usable), ``SlotUnavailable`` (not
    a bookable time), ``NotBookable``, ``PriceMissing``, ``ScheduleError`` and ``ValueError`` for naive
    datetimes.
    """
    _check_aware(start=start, now=now)
    check_service(company, service)
    schedule = schedule_of(company)
    tz = company_zone(company)
    prepay = prepayment_minor(service, schedule)
    await begin_write(session)
    await _release_expired(session, now=now, company_id=company.id)
    resources = await eligible_resources(session, company=company, service=service)
    if resource is not None:
        rid = resource if isinstance(resource, uuid.UUID) else resource.id
        resources = [r for r in resources if r.id == rid]
        if not resources:
            raise SlotUnavailable(start, "resource does not perform this service")
    if not resources:
        raise SlotUnavailable(start, "no staff performs this service")
    duration = service_duration(service, schedule)
    day = start.astimezone(tz).date()
    candidates = [s for s in candidate_slots(schedule=schedule, tz=tz, resources=resources, day=day,
                                             duration_minutes=duration, now=now) if s.start == start]
    if not candidates:
        raise SlotUnavailable(start, "not a bookable time (hours, breaks, days off, past or off the grid)")
    if contact_id is not None and (customer_name is None or phone is None):
        contact = await session.get(Contact, contact_id)
        if contact is not None and contact.tenant_id == company.tenant_id:
            customer_name = customer_name or contact.name
            phone = phone or contact.phone
    capacity = {r.id: r.capacity for r in resources}
    booking = Booking(
        tenant_id=company.tenant_id, company_id=company.id, service_id=service.id,
        resource_id=candidates[0].resource_id, contact_id=contact_id, conversation_id=conversation_id,
        status="held" if prepay > 0 else "confirmed", start_at=start, end_at=candidates[0].end,
        hold_expires_at=now + timedelta(minutes=schedule.hold_minutes) if prepay > 0 else None,
        service_name=service.name[:500], resource_name=candidates[0].resource_name,
        customer_name=customer_name, phone=phone, price_minor=service.price_minor, prepay_minor=prepay,
        currency=(service.currency or company.currency).upper(), confirmed_at=None if prepay > 0 else now,
        refund_due=False,
    )
    session.add(booking)
    await session.flush()
    for slot in candidates:
        if await _claim(session, booking=booking, slot=slot, capacity=capacity[slot.resource_id]):
            booking.resource_id = slot.resource_id
            booking.resource_name = slot.resource_name
            break
    else:
        await session.delete(booking)
        await session.flush()
        raise SlotTaken(start, candidates[0].resource_name if len(candidates) == 1 else None)
    if prepay > 0:
        order = await _prepayment_order(session, company=company, booking=booking, service=service)
        booking.order_id = order.id
    await remember_customer(session, tenant_id=company.tenant_id, contact_id=contact_id, name=customer_name,
                            phone=phone)
    await session.flush()
    if booking.status == "confirmed":
        await _alert(session, booking, "booking.confirmed")
    return booking


# --- payment outcome ---


async def bookings_for_order(session: AsyncSession, order: Order) -> list[Booking]:
    """The bookings whose prepayment is ``order`` (normally one)."""
    stmt = select(Booking).where(Booking.tenant_id == order.tenant_id, Booking.order_id == order.id)
    return list((await session.execute(stmt.order_by(Booking.start_at))).scalars())


async def confirm_paid_bookings(
    session: AsyncSession, *, order: Order, now: datetime | None = None, notify: bool = True
) -> list[Booking]:
    """Confirm the bookings prepaid by ``order`` (which must already be ``paid``; otherwise nothing
    happens and ``[]`` is returned). A ``held`` booking becomes ``confirmed``. A booking ``released``
    before the money arrived is re-taken when its time is still free and in the future, else it stays
    released with ``refund_due`` (as does a ``cancelled`` one). With ``notify`` the customer gets a
    pending outbound message in the order's conversation (booking confirmed / time lost, refund due).
    Idempotent. Returns the order's bookings."""
    if order.payment_status != "paid":
        return []
    when = now or order.paid_at or utcnow()
    await begin_write(session)
    stmt = _locked(select(Booking).where(Booking.tenant_id == order.tenant_id, Booking.order_id == order.id))
    bookings = list((await session.execute(stmt)).scalars())
    changed: list[tuple[Booking, str]] = []
    for b in bookings:
        if b.status == "held":
            b.status, b.confirmed_at, b.hold_expires_at = "confirmed", when, None
            changed.append((b, "confirmed"))
        elif b.status == "released":
            await _release_expired(session, now=when, company_id=b.company_id)
            resource = await _resource(session, b)
            slot = Slot(start=b.start_at, end=b.end_at, resource_id=b.resource_id, resource_name=b.resource_name)
            if b.start_at > when and resource.active and await _claim(
                    session, booking=b, slot=slot, capacity=resource.capacity):
                b.status, b.confirmed_at, b.hold_expires_at = "confirmed", when, None
                b.released_at = b.release_reason = None
                changed.append((b, "confirmed"))
            elif not b.refund_due:
                b.refund_due, b.release_reason = True, "slot_lost"
                changed.append((b, "lost"))
        elif b.status == "cancelled" and not b.refund_due:
            b.refund_due = True
    await session.flush()
    for b, what in changed:
        if what == "confirmed":
            await _alert(session, b, "booking.confirmed")
    if notify:
        for b, what in changed:
            await _notify(session, b, what)
    return bookings


async def on_order_paid(session: AsyncSession, order: Order, *, now: datetime | None = None) -> list[Booking]:
    """Hook for ``commerce.payments.mark_paid``: call it right after an order became paid (same
    transaction). Confirms the bookings the order prepays (``confirm_paid_bookings``); a no-op for
    orders without bookings. Returns the affected bookings."""
    return await confirm_paid_bookings(session, order=order, now=now)


async def on_payment_failed_or_expired(
    session: AsyncSession, *, order: Order, now: datetime, reason: str = "payment_failed"
) -> list[Booking]:
    """Release the ``held`` bookings of an unpaid ``order`` whose payment failed or expired: status
    ``released`` with ``release_reason`` (``payment_failed`` / ``payment_expired``...), time free again.
    Does nothing for a paid order. Returns the released bookings."""
    _check_aware(now=now)
    if order.payment_status == "paid":
        return []
    await begin_write(session)
    stmt = _locked(select(Booking).where(Booking.tenant_id == order.tenant_id, Booking.order_id == order.id,
                                         Booking.status == "held"))
    held = list((await session.execute(stmt)).scalars())
    await _release(session, held, now=now, reason=reason[:32])
    return held


async def _alert(session: AsyncSession, booking: Booking, kind: str, **extra: Any) -> None:
    """Tell the company's staff (``core.alerts``): ``booking.confirmed`` or ``booking.cancelled``."""
    await record_alert(
        session, tenant_id=booking.tenant_id, company_id=booking.company_id, kind=kind,
        conversation_id=booking.conversation_id,
        data={"booking_id": str(booking.id), "service": booking.service_name, "resource": booking.resource_name,
              "start_at": booking.start_at.isoformat(), "end_at": booking.end_at.isoformat(),
              "customer_name": booking.customer_name, "phone": booking.phone,
              "prepay_minor": booking.prepay_minor, "currency": booking.currency,
              "conversation_id": str(booking.conversation_id) if booking.conversation_id else None, **extra},
    )


# --- cancel / move ---


async def _lock_booking(session: AsyncSession, booking: Booking) -> Booking:
    await begin_write(session)
    return (await session.execute(_locked(select(Booking).where(Booking.id == booking.id)))).scalar_one()


async def _company(session: AsyncSession, booking: Booking) -> Company:
    company = await session.get(Company, booking.company_id)
    if company is None:  # pragma: no cover - FK guarantees it
        raise LookupError(f"company {booking.company_id} not found")
    return company


def _is_late(booking: Booking, schedule: Schedule, now: datetime) -> bool:
    return now >= booking.start_at - timedelta(hours=schedule.cancel_hours)


async def cancel_booking(
    session: AsyncSession, *, booking: Booking, now: datetime, by: Actor = "customer"
) -> CancelResult:
    """Cancel a held or confirmed booking and free its time.

    Late-cancellation rule: when the customer cancels less than the company's ``cancel_hours`` before
    the start (``late``), a paid prepayment is kept; earlier, or when the company cancels, it is
    refundable (``booking.refund_due`` is set; the refund is made by whoever handles payments). An
    unpaid prepayment order is marked ``cancelled``. Raises ``BookingStateError`` for a booking that is
    not held or confirmed, ``ValueError`` for a naive ``now``.
    """
    _check_aware(now=now)
    booking = await _lock_booking(session, booking)
    if booking.status not in ACTIVE_STATUSES:
        raise BookingStateError(booking.id, booking.status, "cancel")
    company = await _company(session, booking)
    late = _is_late(booking, schedule_of(company), now)
    order = await session.get(Order, booking.order_id) if booking.order_id else None
    paid = order is not None and order.payment_status == "paid"
    refundable = paid and (by == "company" or not late)
    booking.status, booking.cancelled_at, booking.cancelled_by = "cancelled", now, by
    booking.hold_expires_at = None
    booking.refund_due = refundable
    if order is not None and not paid and order.status == "pending_payment":
        order.status = "cancelled"
    await _free_cells(session, [booking.id])
    await session.flush()
    await _alert(session, booking, "booking.cancelled", by=by, late=late, refund_due=refundable)
    return CancelResult(booking=booking, late=late, refundable=refundable,
                        refund_minor=booking.prepay_minor if refundable else 0, currency=booking.currency)


async def mark_no_show(session: AsyncSession, *, booking: Booking, now: datetime) -> Booking:
    """Record that the customer of a ``confirmed`` booking did not come: status ``no_show`` (counted by
    the company's metrics). Only once the booking has started (``start_at <= now``); the time stays
    taken (it is in the past). Raises ``BookingStateError`` for another status or a booking that has
    not started yet, ``ValueError`` for a naive ``now``."""
    _check_aware(now=now)
    booking = await _lock_booking(session, booking)
    if booking.status != "confirmed":
        raise BookingStateError(booking.id, booking.status, "mark as no-show")
    if booking.start_at > now:
        raise BookingStateError(booking.id, "not started yet", "mark as no-show")
    booking.status = "no_show"
    await session.flush()
    return booking


async def move_booking(
    session: AsyncSession,
    *,
    booking: Booking,
    start: datetime,
    now: datetime,
    resource: Resource | uuid.UUID | None = None,
    by: Actor = "customer",
) -> Booking:
    """Move a held or confirmed booking to another free slot of the same service (same duration,
    same prepayment; a held booking keeps its hold deadline). ``resource`` None keeps the current
    resource when it is free at ``start``, else takes any eligible one. The old time is freed only when
    the new one is taken (one savepoint), so a failed move changes nothing.

    Raises ``TooLateToChange`` (the customer moves within ``cancel_hours`` of the current start; the
    company may), ``BookingStateError``, ``SlotTaken``, ``SlotUnavailable``, ``NotBookable`` when the
    service was deleted, ``ValueError`` for naive datetimes.
    """
    _check_aware(start=start, now=now)
    booking = await _lock_booking(session, booking)
    if booking.status == "held" and booking.hold_expires_at is not None and booking.hold_expires_at <= now:
        await _release(session, [booking], now=now, reason="hold_expired")
    if booking.status not in ACTIVE_STATUSES:
        raise BookingStateError(booking.id, booking.status, "move")
    company = await _company(session, booking)
    schedule = schedule_of(company)
    if by == "customer" and _is_late(booking, schedule, now):
        raise TooLateToChange(booking.start_at, schedule.cancel_hours)
    await _release_expired(session, now=now, company_id=company.id)
    service = await session.get(KnowledgeItem, booking.service_id) if booking.service_id else None
    if service is None:
        raise NotBookable(booking.service_name)
    tz = company_zone(company)
    day = start.astimezone(tz).date()
    resources = await eligible_resources(session, company=company, service=service)
    if resource is not None:
        rid = resource if isinstance(resource, uuid.UUID) else resource.id
        resources = [r for r in resources if r.id == rid]
    duration = service_duration(service, schedule)
    candidates = [s for s in candidate_slots(schedule=schedule, tz=tz, resources=resources, day=day,
                                             duration_minutes=duration, now=now) if s.start == start]
    if not candidates:
        raise SlotUnavailable(start, "not a bookable time (hours, breaks, days off, past or off the grid)")
    candidates.sort(key=lambda s: s.resource_id != booking.resource_id)
    free = {(s.start, s.resource_id) for s in await free_slots(
        session, company=company, service=service, day=day, now=now, ignore_booking_id=booking.id)}
    capacity = {r.id: r.capacity for r in resources}
    for slot in candidates:
        if (slot.start, slot.resource_id) not in free:
            continue
        if await _claim(session, booking=booking, slot=slot, capacity=capacity[slot.resource_id], replace=True):
            booking.start_at, booking.end_at = slot.start, slot.end
            booking.resource_id, booking.resource_name = slot.resource_id, slot.resource_name
            booking.updated_at = now
            await _relabel_order(session, booking, tz, company.language)
            await session.flush()
            return booking
    raise SlotTaken(start)


async def _relabel_order(session: AsyncSession, booking: Booking, tz: ZoneInfo, language: str) -> None:
    if booking.order_id is None:
        return
    order = await session.get(Order, booking.order_id)
    if order is None:
        return
    lang = lang_of(language)
    for line in order.lines:
        line.variant = f"{format_when(booking.start_at, tz, lang)} · {booking.resource_name}"[:255]


# --- reading ---


async def list_bookings(
    session: AsyncSession,
    *,
    company: Company,
    start: datetime | None = None,
    end: datetime | None = None,
    statuses: tuple[str, ...] | None = ("held", "confirmed"),
) -> list[Booking]:
    """The company's bookings starting in [start, end) (aware UTC; open-ended when None) with one of
    ``statuses`` (None = all), earliest first."""
    stmt = TenantScope(company.tenant_id).select(Booking, Booking.company_id == company.id)
    if start is not None:
        stmt = stmt.where(Booking.start_at >= start)
    if end is not None:
        stmt = stmt.where(Booking.start_at < end)
    if statuses is not None:
        stmt = stmt.where(Booking.status.in_(statuses))
    return list((await session.execute(stmt.order_by(Booking.start_at))).scalars())


def booking_as_dict(booking: Booking, *, tz: ZoneInfo | None = None) -> dict[str, Any]:
    """JSON shape of a booking for the API/CLI: instants as ISO-8601 UTC (plus ``local_start`` in ``tz``
    when given), money in minor units with ``currency``."""
    out: dict[str, Any] = {
        "id": str(booking.id),
        "status": booking.status,
        "service": booking.service_name,
        "resource": booking.resource_name,
        "start_at": booking.start_at.isoformat(),
        "end_at": booking.end_at.isoformat(),
        "hold_expires_at": booking.hold_expires_at.isoformat() if booking.hold_expires_at else None,
        "customer_name": booking.customer_name,
        "phone": booking.phone,
        "price_minor": booking.price_minor,
        "prepay_minor": booking.prepay_minor,
        "currency": booking.currency,
        "order_id": str(booking.order_id) if booking.order_id else None,
        "refund_due": booking.refund_due,
    }
    if tz is not None:
        out["local_start"] = booking.start_at.astimezone(tz).isoformat()
    return out


# --- customer texts (sentences in the catalogue, see ``commerce.notifications``) ---


def format_when(instant: datetime, tz: ZoneInfo, language: str = "en") -> str:
    """A local date and time for customers: ``Fri 13 Mar, 15:00`` / ``пт 13 марта, 15:00`` (Babel,
    the catalogue's ``format:when`` pattern). Raises ``ValueError`` for a naive ``instant``."""
    return when_text(instant, tz, language)


async def _notify(session: AsyncSession, booking: Booking, what: Literal["confirmed", "lost"]) -> None:
    if booking.conversation_id is None:
        return
    conversation = await session.get(Conversation, booking.conversation_id)
    if conversation is None or conversation.tenant_id != booking.tenant_id:
        return
    company = await _company(session, booking)
    language = conversation.language or company.language
    await append_message(
        session, conversation=conversation, direction="out", sender="system",
        text=booking_notice(booking, tz=company_zone(company), language=language, locale=company_locale(company),
                            what=what),
        payload={"buttons": [], "url": None, "image_url": None, "event": f"booking.{what}",
                 "booking_id": str(booking.id)},
    )
