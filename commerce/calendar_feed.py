"""A company's secret iCalendar feed of confirmed bookings and chosen delivery windows.

The owner subscribes to ``/calendar/{company_slug}/{token}.ics`` in Google Calendar, Apple Calendar or
Outlook. The token is 256-bit random (``core.security.new_token``) and only its SHA-256 is stored
(``calendar_feeds.token_hash``, indexed and unique), so the URL is shown once, when it is issued
(``issue_feed_token``) or rotated (``rotate_feed_token``; the old URL stops working at once). Lookups
go through the hash of the presented token and are checked with
``core.security.token_matches_hash`` (constant time).

Events: one ``VEVENT`` per confirmed booking (``UID`` ``booking-<id>@chatcommerce``, stable across
moves and re-renders) and per chosen delivery window (``UID`` ``delivery-<order id>@chatcommerce``),
with ``DTSTART``/``DTEND`` in UTC. Built with the ``icalendar`` library.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from icalendar import Calendar, Event
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from commerce.schedule import begin_write
from core.i18n import company_locale, money
from core.models import Booking, CalendarFeed, Company, Order, OrderDelivery
from core.security import new_token, token_hash, token_matches_hash
from core.tenancy import TenantScope
from core.timeutil import utcnow

PRODID = "-//chatcommerce//bookings//EN"
UID_DOMAIN = "chatcommerce"


async def _feed_row(session: AsyncSession, company: Company) -> CalendarFeed | None:
    stmt = TenantScope(company.tenant_id).select(CalendarFeed, CalendarFeed.company_id == company.id)
    return (await session.execute(stmt)).scalar_one_or_none()


@dataclass(frozen=True, slots=True, kw_only=True)
class FeedToken:
    """The company's feed: ``token`` is the secret, present only when it was issued by this call
    (``None`` for a feed issued earlier: only its hash is kept); ``issued_at`` is aware UTC."""

    token: str | None
    issued_at: datetime


async def issue_feed_token(session: AsyncSession, *, company: Company) -> FeedToken:
    """The company's feed, issued on first use (flushes): the new token is returned once; an existing
    feed comes back with ``token=None``. Safe when two requests issue it at once (one row per
    company; the loser gets ``token=None``)."""
    row = await _feed_row(session, company)
    if row is not None:
        return FeedToken(token=None, issued_at=row.rotated_at)
    await begin_write(session)
    token, now = new_token(), utcnow()
    try:
        async with session.begin_nested():
            session.add(CalendarFeed(tenant_id=company.tenant_id, company_id=company.id, token_hash=token_hash(token),
                                     rotated_at=now))
            await session.flush()
        return FeedToken(token=token, issued_at=now)
    except IntegrityError:
        row = await _feed_row(session, company)
        assert row is not None
        return FeedToken(token=None, issued_at=row.rotated_at)


async def rotate_feed_token(session: AsyncSession, *, company: Company) -> str:
    """Replace the company's feed token with a new random one and return it (the only time it is
    shown); the old URL stops working."""
    row = await _feed_row(session, company)
    if row is None:
        issued = await issue_feed_token(session, company=company)
        if issued.token is not None:
            return issued.token
        row = await _feed_row(session, company)
        assert row is not None
    token = new_token()
    row.token_hash, row.rotated_at = token_hash(token), utcnow()
    await session.flush()
    return token


def feed_path(company: Company, token: str) -> str:
    """The feed's URL path, ``/calendar/{slug}/{token}.ics`` (prefix it with the public base URL)."""
    return f"/calendar/{company.slug}/{token}.ics"


async def company_by_feed_token(
    session: AsyncSession, token: str, *, company_slug: str | None = None
) -> Company | None:
    """The company whose feed token is ``token`` (constant-time check), or ``None``. With
    ``company_slug`` (the route's ``{company}``) the company must also have that slug. A trailing
    ``.ics`` is ignored."""
    if token.endswith(".ics"):
        token = token[:-4]
    if not token or len(token) > 128:
        return None
    stmt = select(CalendarFeed).where(CalendarFeed.token_hash == token_hash(token))
    row = (await session.execute(stmt)).scalar_one_or_none()
    if row is None or not token_matches_hash(token, row.token_hash):
        return None
    company = await session.get(Company, row.company_id)
    if company is None or company.tenant_id != row.tenant_id:
        return None
    if company_slug is not None and company.slug != company_slug:
        return None
    return company


def _booking_event(booking: Booking, order: Order | None, *, locale: str) -> Event:
    event = Event()
    event.add("uid", f"booking-{booking.id}@{UID_DOMAIN}")
    event.add("dtstamp", booking.updated_at or booking.created_at)
    event.add("dtstart", booking.start_at)
    event.add("dtend", booking.end_at)
    customer = booking.customer_name or booking.phone or "customer"
    event.add("summary", f"{booking.service_name} — {customer}")
    lines = [f"Service: {booking.service_name}", f"Staff: {booking.resource_name}"]
    if order is not None:
        lines.append(f"Order #{order.number}")
    if booking.prepay_minor:
        lines.append(f"Prepaid: {money(booking.prepay_minor, booking.currency, locale)}")
    if booking.customer_name:
        lines.append(f"Customer: {booking.customer_name}")
    if booking.phone:
        lines.append(f"Phone: {booking.phone}")
    event.add("description", "\n".join(lines))
    event.add("status", "CONFIRMED")
    event.add("categories", ["booking"])
    return event


def _delivery_event(delivery: OrderDelivery, order: Order, *, locale: str) -> Event:
    event = Event()
    event.add("uid", f"delivery-{order.id}@{UID_DOMAIN}")
    event.add("dtstamp", delivery.created_at)
    event.add("dtstart", delivery.start_at)
    event.add("dtend", delivery.end_at)
    customer = order.customer_name or order.phone or "customer"
    event.add("summary", f"Delivery #{order.number} — {customer}")
    lines = [f"Order #{order.number}", f"Total: {money(order.total_minor, order.currency, locale)}"]
    lines += [f"{ln.quantity} × {ln.name}" + (f" ({ln.variant})" if ln.variant else "") for ln in order.lines]
    if order.phone:
        lines.append(f"Phone: {order.phone}")
    where = ", ".join(p for p in (order.delivery_address, delivery.zone, delivery.city) if p)
    if where:
        event.add("location", where)
    event.add("description", "\n".join(lines))
    event.add("status", "CONFIRMED")
    event.add("categories", ["delivery"])
    return event


async def render_feed(
    session: AsyncSession, *, company: Company, now: datetime | None = None, past_days: int = 90
) -> bytes:
    """The company's feed as iCalendar bytes (``text/calendar; charset=utf-8``): confirmed bookings
    and chosen delivery windows that end after ``now - past_days`` (all future ones), earliest first.
    Only this company's rows (tenant-scoped). Amounts are written in the company's locale
    (``core.i18n.company_locale``: ``Prepaid: 1 020,00 ₽``)."""
    since = (now or utcnow()) - timedelta(days=past_days)
    scope = TenantScope(company.tenant_id)
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", f"{company.name} — bookings")
    cal.add("x-wr-timezone", company.timezone or "UTC")
    bookings = (await session.execute(
        scope.select(Booking, Booking.company_id == company.id, Booking.status == "confirmed", Booking.end_at > since)
        .order_by(Booking.start_at)
    )).scalars().all()
    order_ids = {b.order_id for b in bookings if b.order_id}
    deliveries = (await session.execute(
        scope.select(OrderDelivery, OrderDelivery.company_id == company.id, OrderDelivery.end_at > since)
        .order_by(OrderDelivery.start_at)
    )).scalars().all()
    order_ids |= {d.order_id for d in deliveries}
    orders: dict[object, Order] = {}
    if order_ids:
        orders = {o.id: o for o in (await session.execute(scope.select(Order, Order.id.in_(order_ids)))).scalars()}
    locale = company_locale(company)
    for b in bookings:
        cal.add_component(_booking_event(b, orders.get(b.order_id) if b.order_id else None, locale=locale))
    for d in deliveries:
        order = orders.get(d.order_id)
        if order is not None and order.payment_status == "paid":
            cal.add_component(_delivery_event(d, order, locale=locale))
    return cal.to_ical()
