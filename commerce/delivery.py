"""Delivery windows for paid product orders.

A company defines recurring ``DeliveryWindow`` rows per city (and optional zone): a local wall-clock
time range (company timezone), the weekdays it runs, how many orders it takes per day
(``capacity``) and a ``cutoff_minutes`` before its start after which it can no longer be chosen. The
company's schedule days off (``Company.settings["schedule"]["days_off"]``) have no deliveries.

A paid order chooses one window on one day (``choose_window``); the choice is an ``OrderDelivery``
row (unique per order). Capacity is enforced in the database the same way as bookings: each choice
takes a seat 0..capacity-1 and ``UNIQUE (window_id, day, seat)`` refuses a second order on the same
seat, so concurrent choices of the last seat leave exactly one winner (the others get ``WindowFull``).
All instants are aware UTC; ``day`` values are local dates of the company.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from commerce.errors import CommerceError
from commerce.schedule import begin_write, company_zone, schedule_of
from core.models import Booking, Company, DeliveryWindow, Order, OrderDelivery
from core.tenancy import TenantScope

_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")


@dataclass
class OrderNotPaid(CommerceError):
    """Only a paid order can choose a delivery window (``payment_status`` says where it stands)."""

    order_number: int
    payment_status: str


@dataclass
class WindowUnavailable(CommerceError):
    """The window does not exist for this company, is inactive, does not run that day, or is past its
    cutoff; or the order is a booking prepayment rather than a product order. ``reason`` says which."""

    reason: str


@dataclass
class WindowFull(CommerceError):
    """Every seat of the window on that day is taken (possibly a moment ago)."""

    window_id: uuid.UUID
    day: date


@dataclass(frozen=True, slots=True)
class WindowOffer:
    """A window on a given local ``day``: ``start``/``end`` aware UTC, ``seats_left`` of ``capacity``."""

    window_id: uuid.UUID
    day: date
    start: datetime
    end: datetime
    city: str
    zone: str | None
    seats_left: int
    capacity: int


def _minutes(value: str, what: str) -> int:
    if not _HHMM.match(value or ""):
        raise ValueError(f"{what} must be HH:MM (00:00-24:00), not {value!r}")
    hours, minutes = value.split(":")
    return int(hours) * 60 + int(minutes)


def _local(day: date, hhmm: str, tz: Any) -> datetime:
    naive = datetime.combine(day, time(0)) + timedelta(minutes=_minutes(hhmm, "time"))
    return naive.replace(tzinfo=tz).astimezone(UTC)


def _norm(text: str | None) -> str:
    return " ".join((text or "").split()).casefold()


async def add_delivery_window(
    session: AsyncSession,
    *,
    company: Company,
    city: str,
    start_time: str,
    end_time: str,
    capacity: int = 1,
    weekdays: tuple[int, ...] | list[int] = (),
    zone: str | None = None,
    cutoff_minutes: int = 0,
) -> DeliveryWindow:
    """Create a delivery window. ``start_time``/``end_time`` are local ``"HH:MM"`` (end after start),
    ``weekdays`` 0 = Monday .. 6 = Sunday (empty = every day), ``capacity`` >= 1 orders per day.
    Raises ``ValueError`` for bad input."""
    if _minutes(end_time, "end_time") <= _minutes(start_time, "start_time"):
        raise ValueError("end_time must be after start_time")
    if capacity < 1:
        raise ValueError("capacity must be at least 1")
    if any(d not in range(7) for d in weekdays):
        raise ValueError("weekdays are 0 (Monday) .. 6 (Sunday)")
    if not city.strip():
        raise ValueError("city is required")
    window = DeliveryWindow(tenant_id=company.tenant_id, company_id=company.id, city=city.strip()[:200],
                            zone=zone.strip()[:200] if zone else None, weekdays=sorted(set(weekdays)),
                            start_time=start_time, end_time=end_time, capacity=capacity,
                            cutoff_minutes=max(cutoff_minutes, 0), active=True)
    session.add(window)
    await session.flush()
    return window


def _offer_times(company: Company, window: DeliveryWindow, day: date) -> tuple[datetime, datetime] | None:
    if window.weekdays and day.weekday() not in window.weekdays:
        return None
    if day in schedule_of(company).days_off:
        return None
    tz = company_zone(company)
    return _local(day, window.start_time, tz), _local(day, window.end_time, tz)


async def _seats_taken(
    session: AsyncSession, window_id: uuid.UUID, day: date, *, except_order: uuid.UUID | None = None
) -> set[int]:
    stmt = select(OrderDelivery.seat).where(OrderDelivery.window_id == window_id,
                                            OrderDelivery.day == day.isoformat())
    if except_order is not None:
        stmt = stmt.where(OrderDelivery.order_id != except_order)
    return set((await session.execute(stmt)).scalars())


async def available_windows(
    session: AsyncSession, *, company: Company, city: str, day: date, now: datetime, zone: str | None = None
) -> list[WindowOffer]:
    """The company's windows for ``city`` (case-insensitive; ``zone`` too when given) on local ``day``
    that still have a free seat and whose cutoff (``start - cutoff_minutes``) is after ``now``,
    earliest first."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    scope = TenantScope(company.tenant_id)
    stmt = scope.select(DeliveryWindow, DeliveryWindow.company_id == company.id, DeliveryWindow.active.is_(True))
    out: list[WindowOffer] = []
    for window in (await session.execute(stmt)).scalars():
        if _norm(window.city) != _norm(city) or (zone is not None and _norm(window.zone) != _norm(zone)):
            continue
        times = _offer_times(company, window, day)
        if times is None or times[0] - timedelta(minutes=window.cutoff_minutes) <= now:
            continue
        left = window.capacity - len(await _seats_taken(session, window.id, day))
        if left > 0:
            out.append(WindowOffer(window_id=window.id, day=day, start=times[0], end=times[1], city=window.city,
                                   zone=window.zone, seats_left=left, capacity=window.capacity))
    out.sort(key=lambda o: (o.start, o.end, o.city))
    return out


async def order_delivery(session: AsyncSession, order: Order) -> OrderDelivery | None:
    """The delivery window chosen for ``order``, if any."""
    stmt = select(OrderDelivery).where(OrderDelivery.tenant_id == order.tenant_id, OrderDelivery.order_id == order.id)
    return (await session.execute(stmt)).scalar_one_or_none()


async def choose_window(
    session: AsyncSession,
    *,
    order: Order,
    window: WindowOffer | DeliveryWindow | uuid.UUID,
    now: datetime,
    day: date | None = None,
) -> OrderDelivery:
    """Record that paid product ``order`` is delivered in ``window`` on local ``day`` (taken from a
    ``WindowOffer``; required otherwise). Choosing again moves the order to the new window (its old
    seat is freed in the same savepoint); choosing the same window again changes nothing.

    Raises ``OrderNotPaid`` (the order is not paid), ``WindowUnavailable`` (unknown/inactive window,
    another company's, not running that day, past its cutoff, or a booking's prepayment order),
    ``WindowFull`` (no seat left), ``ValueError`` (naive ``now`` or missing ``day``).
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if order.payment_status != "paid":
        raise OrderNotPaid(order.number, order.payment_status)
    if isinstance(window, WindowOffer):
        window_id, day = window.window_id, window.day
    else:
        window_id = window if isinstance(window, uuid.UUID) else window.id
    if day is None:
        raise ValueError("day is required unless a WindowOffer is given")
    is_booking = (await session.execute(select(Booking.id).where(Booking.order_id == order.id).limit(1))).first()
    if is_booking:
        raise WindowUnavailable("this order is a booking prepayment, not a product order")
    scope = TenantScope(order.tenant_id)
    row = (await session.execute(scope.select(DeliveryWindow, DeliveryWindow.id == window_id,
                                              DeliveryWindow.company_id == order.company_id))).scalar_one_or_none()
    if row is None or not row.active:
        raise WindowUnavailable("no such delivery window")
    company = await session.get(Company, order.company_id)
    assert company is not None
    times = _offer_times(company, row, day)
    if times is None:
        raise WindowUnavailable("the window does not run on that day")
    if times[0] - timedelta(minutes=row.cutoff_minutes) <= now:
        raise WindowUnavailable("the window is past its cutoff")
    await begin_write(session)
    current = await order_delivery(session, order)
    if current is not None and current.window_id == row.id and current.day == day.isoformat():
        return current
    for _attempt in range(3):
        taken = await _seats_taken(session, row.id, day, except_order=order.id)
        seat = next((k for k in range(row.capacity) if k not in taken), None)
        if seat is None:
            raise WindowFull(row.id, day)
        values = {"id": uuid.uuid4(), "tenant_id": order.tenant_id, "order_id": order.id,
                  "company_id": order.company_id, "window_id": row.id, "day": day.isoformat(), "seat": seat,
                  "start_at": times[0], "end_at": times[1], "city": row.city, "zone": row.zone,
                  "created_at": now}
        try:
            async with session.begin_nested():
                await session.execute(delete(OrderDelivery).where(OrderDelivery.order_id == order.id))
                await session.execute(insert(OrderDelivery).values(**values))
        except IntegrityError:
            continue
        if current is not None:
            session.expunge(current)
        chosen = await order_delivery(session, order)
        assert chosen is not None
        return chosen
    raise WindowFull(row.id, day)


async def release_window(session: AsyncSession, *, order: Order) -> bool:
    """Free the window seat of ``order`` (cancelled or refunded order). Returns whether it had one."""
    await begin_write(session)
    result = await session.execute(delete(OrderDelivery).where(OrderDelivery.tenant_id == order.tenant_id,
                                                               OrderDelivery.order_id == order.id))
    return bool(getattr(result, "rowcount", 0))


def delivery_as_dict(delivery: OrderDelivery) -> dict[str, Any]:
    """JSON shape of a chosen window (instants ISO-8601 UTC, ``day`` the local date)."""
    return {"window_id": str(delivery.window_id), "day": delivery.day, "start_at": delivery.start_at.isoformat(),
            "end_at": delivery.end_at.isoformat(), "city": delivery.city, "zone": delivery.zone}
