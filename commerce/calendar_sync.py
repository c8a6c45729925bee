"""Push a company's confirmed bookings to its Google Calendar, by reconciliation.

A company connects one calendar (``connect_google_calendar``): the calendar id (``primary`` or
``…@group.calendar.google.com``) and credentials (``commerce.google_calendar.GoogleCredentials``: a
service-account key or an OAuth refresh token), stored encrypted with ``core.security.SecretBox`` in
``google_calendar_links``. ``sync_company_calendar`` then compares the company's bookings with the
``calendar_events`` table (booking → Google event id, and the start/end/status/body digest last
written) and sends only the differences:

* a confirmed booking without an event → ``events.insert`` (created);
* a confirmed booking whose event body changed (moved, other staff...) → ``events.update`` (updated);
* an event whose booking is no longer confirmed (cancelled, released) or was deleted →
  ``events.delete`` (deleted).

It is idempotent: a second run with nothing changed sends no request. Event ids are stable
(``event_id_for``: ``cc`` + the booking id in hex, valid base32hex), so a run whose database
transaction was lost after Google accepted the insert repeats safely: the second insert gets ``409
duplicate`` and becomes an update; deleting an event that is already gone (``404``/``410``) counts as
deleted. Only confirmed bookings ending after ``now - past_days`` are created; events of older
bookings are left alone. Events deleted or edited by hand in Google are not restored until the
booking changes (the database is the source of truth, Google is written to, never read).

Events (https://developers.google.com/calendar/api/v3/reference/events#resource): ``summary``
``"<service> — <customer>"``; ``start``/``end`` ``dateTime`` in UTC (``Z``) with ``timeZone`` the
company's IANA zone; ``description`` with the booking id and order number; ``extendedProperties.private``
``booking_id``/``company``; ``sendUpdates=none``.

Concurrency: the write phase locks the company's link row (``SELECT … FOR UPDATE`` on PostgreSQL;
``BEGIN IMMEDIATE`` on SQLite), so two syncs of one company run one after the other; a run with
nothing to send takes no lock and writes nothing. API errors never raise: a failed booking is
counted in ``SyncResult.failed`` and retried on the next run; a fatal error (credentials refused, no
write access, rate limit, Google or network down) stops the run with ``SyncResult.error``, kept in
``GoogleCalendarLink.last_error``. Functions take an ``AsyncSession``, flush and never commit,
except ``sync_all_calendars`` which owns one transaction per company (the periodic job).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import structlog
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from commerce.errors import CommerceError
from commerce.google_calendar import CalendarApiError, CalendarClient, ClientFactory, GoogleCredentials
from commerce.schedule import begin_write
from core.db import transaction
from core.i18n import company_locale, money
from core.models import Booking, CalendarEvent, Company, GoogleCalendarLink, Order
from core.tenancy import TenantScope
from core.timeutil import utcnow
from core.vault import mask_mapping

log = structlog.get_logger(__name__)

EVENT_ID_PREFIX = "cc"
DEFAULT_PAST_DAYS = 30
MAX_CALENDAR_ID = 255


@dataclass
class CalendarNotConnected(CommerceError):
    """The company has no connected Google Calendar."""

    company_slug: str

    def __str__(self) -> str:
        return f"company {self.company_slug!r} has no connected Google Calendar"


@dataclass(frozen=True, slots=True)
class SyncResult:
    """Outcome of one sync: events ``created``, ``updated`` and ``deleted`` at Google; ``failed``
    bookings (retried next run; ``errors`` has one message each); ``error`` is set when the run
    stopped early on a fatal error (the remaining changes count as failed)."""

    created: int = 0
    updated: int = 0
    deleted: int = 0
    failed: int = 0
    errors: tuple[str, ...] = ()
    error: str | None = None

    @property
    def requests(self) -> int:
        """Changes that were sent successfully."""
        return self.created + self.updated + self.deleted

    def as_dict(self) -> dict[str, Any]:
        return {"created": self.created, "updated": self.updated, "deleted": self.deleted, "failed": self.failed,
                "errors": list(self.errors), "error": self.error}


# --- connection -----------------------------------------------------------------------------------


async def google_calendar_link(
    session: AsyncSession, *, company: Company, lock: bool = False
) -> GoogleCalendarLink | None:
    """The company's connection, or ``None``. ``lock`` takes the row lock (PostgreSQL) and re-reads it."""
    stmt = TenantScope(company.tenant_id).select(GoogleCalendarLink, GoogleCalendarLink.company_id == company.id)
    if lock:
        stmt = stmt.with_for_update().execution_options(populate_existing=True)
    return (await session.execute(stmt)).scalar_one_or_none()


def validate_calendar_id(calendar_id: str) -> str:
    """A trimmed calendar id (``primary`` or an e-mail-like id). Raises ``ValueError``."""
    value = (calendar_id or "").strip()
    if not value or len(value) > MAX_CALENDAR_ID or any(c in value for c in "/?#\\") or any(
            c.isspace() for c in value):
        raise ValueError("calendar_id must be 'primary' or a calendar id such as abc@group.calendar.google.com")
    return value


async def connect_google_calendar(
    session: AsyncSession,
    *,
    company: Company,
    calendar_id: str,
    credentials: GoogleCredentials,
    encrypt: Callable[[str], str],
) -> GoogleCalendarLink:
    """Connect (or re-connect) the company's Google Calendar: store ``calendar_id`` and the
    credentials encrypted with ``encrypt`` (``SecretBox.encrypt``). When the calendar changes, the
    event mappings of the previous calendar are forgotten (its events stay there) and the next sync
    creates the events in the new one. Raises ``ValueError`` for a bad calendar id."""
    calendar_id = validate_calendar_id(calendar_id)
    await begin_write(session)
    link = await google_calendar_link(session, company=company, lock=True)
    if link is None:
        link = GoogleCalendarLink(tenant_id=company.tenant_id, company_id=company.id, calendar_id=calendar_id,
                                  auth_kind=credentials.kind, credentials="")
        session.add(link)
    link.calendar_id = calendar_id
    link.auth_kind = credentials.kind
    link.account = credentials.account[:320]
    link.credentials = encrypt(credentials.to_json())
    link.last_error = None
    await session.execute(delete(CalendarEvent).where(
        CalendarEvent.tenant_id == company.tenant_id, CalendarEvent.company_id == company.id,
        CalendarEvent.calendar_id != calendar_id))
    await session.flush()
    return link


async def disconnect_google_calendar(session: AsyncSession, *, company: Company) -> bool:
    """Remove the company's connection (credentials included). Events already in Google stay there;
    the event mappings are kept, so re-connecting the same calendar carries on where it stopped.
    Returns whether there was a connection."""
    link = await google_calendar_link(session, company=company)
    if link is None:
        return False
    await session.delete(link)
    await session.flush()
    return True


def link_as_dict(link: GoogleCalendarLink | None, *, decrypt: Callable[[str], str] | None = None) -> dict[str, Any]:
    """JSON shape of a connection for the API/CLI (never the credentials). ``synced_at`` is when a
    sync last had changes to send (whether or not Google accepted them); ``last_error`` the reason the
    last such sync failed (``None`` once one succeeds). With ``decrypt`` (``SecretBox.decrypt``),
    ``credentials`` shows the stored fields masked to their last 4 characters
    (``{"refresh_token": "••••x9Yz", ...}``; ``{"unreadable": true}`` when no key can read them)."""
    if link is None:
        return {"connected": False}
    out: dict[str, Any] = {
        "connected": True, "calendar_id": link.calendar_id, "auth": link.auth_kind, "account": link.account,
        "synced_at": link.synced_at.isoformat() if link.synced_at else None, "last_error": link.last_error}
    if decrypt is not None:
        try:
            out["credentials"] = mask_mapping(GoogleCredentials.from_json(decrypt(link.credentials)).info)
        except ValueError:
            out["credentials"] = {"unreadable": True}
    return out


# --- events ---------------------------------------------------------------------------------------


def event_id_for(booking_id: uuid.UUID) -> str:
    """The stable Google event id of a booking: ``cc`` + 32 hex digits (base32hex, as Google requires
    for client-supplied ids)."""
    return f"{EVENT_ID_PREFIX}{booking_id.hex}"


def _rfc3339_utc(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def event_body(booking: Booking, *, company: Company, order_number: int | None) -> dict[str, Any]:
    """The Calendar ``Event`` resource of a confirmed booking (the body of insert and update); the
    prepaid amount in the company's locale (``core.i18n.company_locale``)."""
    customer = booking.customer_name or booking.phone or "customer"
    lines = [f"Booking {booking.id}"]
    if order_number is not None:
        lines.append(f"Order #{order_number}")
    lines += [f"Service: {booking.service_name}", f"Staff: {booking.resource_name}"]
    if booking.prepay_minor:
        lines.append(f"Prepaid: {money(booking.prepay_minor, booking.currency, company_locale(company))}")
    if booking.customer_name:
        lines.append(f"Customer: {booking.customer_name}")
    if booking.phone:
        lines.append(f"Phone: {booking.phone}")
    tz = company.timezone or "UTC"
    return {
        "id": event_id_for(booking.id),
        "summary": f"{booking.service_name} — {customer}",
        "description": "\n".join(lines),
        "start": {"dateTime": _rfc3339_utc(booking.start_at), "timeZone": tz},
        "end": {"dateTime": _rfc3339_utc(booking.end_at), "timeZone": tz},
        "status": "confirmed",
        "transparency": "opaque",
        "extendedProperties": {"private": {"booking_id": str(booking.id), "company": company.slug}},
    }


def body_digest(body: dict[str, Any]) -> str:
    """SHA-256 hex of the canonical JSON of an event body (what ``calendar_events.digest`` stores)."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


# --- reconciliation -------------------------------------------------------------------------------


@dataclass
class _Op:
    action: Literal["create", "update", "delete"]
    mapping: CalendarEvent | None
    booking: Booking | None = None
    body: dict[str, Any] = field(default_factory=dict)


async def _plan(session: AsyncSession, *, company: Company, calendar_id: str, now: datetime,
                past_days: int) -> list[_Op]:
    scope = TenantScope(company.tenant_id)
    fresh = {"populate_existing": True}
    since = now - timedelta(days=past_days)
    wanted = list((await session.execute(
        scope.select(Booking, Booking.company_id == company.id, Booking.status == "confirmed", Booking.end_at > since)
        .order_by(Booking.start_at).execution_options(**fresh))).scalars())
    mappings = list((await session.execute(
        scope.select(CalendarEvent, CalendarEvent.company_id == company.id, CalendarEvent.calendar_id == calendar_id)
        .execution_options(**fresh))).scalars())
    by_booking = {m.booking_id: m for m in mappings if m.booking_id is not None}
    order_ids = {b.order_id for b in wanted if b.order_id}
    numbers: dict[uuid.UUID, int] = {}
    if order_ids:
        rows = await session.execute(select(Order.id, Order.number).where(
            Order.tenant_id == company.tenant_id, Order.id.in_(order_ids)))
        numbers = {oid: number for oid, number in rows.all()}
    ops: list[_Op] = []
    wanted_ids: set[uuid.UUID] = set()
    for b in wanted:
        wanted_ids.add(b.id)
        body = event_body(b, company=company, order_number=numbers.get(b.order_id) if b.order_id else None)
        m = by_booking.get(b.id)
        if m is None:
            ops.append(_Op("create", None, b, body))
        elif (m.digest, m.start_at, m.end_at, m.status) != (body_digest(body), b.start_at, b.end_at, "confirmed"):
            ops.append(_Op("update", m, b, body))
    others = [m for m in mappings if m.booking_id not in wanted_ids]
    statuses: dict[uuid.UUID, str] = {}
    ids = [m.booking_id for m in others if m.booking_id is not None]
    if ids:
        rows = await session.execute(select(Booking.id, Booking.status).where(
            Booking.tenant_id == company.tenant_id, Booking.company_id == company.id, Booking.id.in_(ids)))
        statuses = {bid: status for bid, status in rows.all()}
    for m in others:
        # Confirmed but older than the window: leave the event alone.
        if m.booking_id is None or statuses.get(m.booking_id) != "confirmed":
            ops.append(_Op("delete", m))
    return ops


async def _apply(session: AsyncSession, *, client: CalendarClient, company: Company, calendar_id: str, op: _Op,
                 now: datetime) -> str:
    """Send one change and record it; returns "created", "updated" or "deleted". Raises ``CalendarApiError``."""
    if op.action == "delete":
        assert op.mapping is not None
        try:
            await client.delete(calendar_id, op.mapping.event_id)
        except CalendarApiError as exc:
            if exc.status not in (404, 410):
                raise
        await session.delete(op.mapping)
        await session.flush()
        return "deleted"
    assert op.booking is not None
    booking, body = op.booking, op.body
    event_id = body["id"] if op.mapping is None else op.mapping.event_id
    outcome = "created" if op.mapping is None else "updated"
    try:
        if op.mapping is None:
            await client.insert(calendar_id, body)
        else:
            await client.update(calendar_id, event_id, {**body, "id": event_id})
    except CalendarApiError as exc:
        if op.mapping is None and exc.status == 409:  # made by an earlier run whose transaction was lost
            await client.update(calendar_id, event_id, body)
        elif op.mapping is not None and exc.status == 404:  # the event is gone for good: make it again
            await client.insert(calendar_id, {**body, "id": event_id})
        else:
            raise
    mapping = op.mapping
    if mapping is None:
        mapping = CalendarEvent(tenant_id=company.tenant_id, company_id=company.id, booking_id=booking.id,
                                calendar_id=calendar_id, event_id=event_id)
        session.add(mapping)
    mapping.start_at, mapping.end_at, mapping.status = booking.start_at, booking.end_at, "confirmed"
    mapping.digest, mapping.synced_at = body_digest(body), now
    await session.flush()
    return outcome


async def sync_company_calendar(
    session: AsyncSession,
    *,
    company: Company,
    client_factory: ClientFactory,
    now: datetime,
    past_days: int = DEFAULT_PAST_DAYS,
) -> SyncResult:
    """Bring the company's Google Calendar in line with its confirmed bookings (see the module
    docstring) and return the counts. ``client_factory`` builds the client of the company's
    ``GoogleCalendarLink`` (``commerce.google_calendar.google_client_factory``); ``now`` is aware UTC.

    Raises ``CalendarNotConnected`` when the company has no connection and ``ValueError`` for a naive
    ``now``; Google errors are reported in the result, not raised. Does not commit."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    link = await google_calendar_link(session, company=company)
    if link is None:
        raise CalendarNotConnected(company.slug)
    if not await _plan(session, company=company, calendar_id=link.calendar_id, now=now, past_days=past_days):
        if link.last_error is not None:  # in line again (e.g. the failing booking was cancelled)
            await begin_write(session)
            link.last_error = None
            await session.flush()
        return SyncResult()
    # Something to send: serialise with other syncs of this company, then plan again on fresh rows.
    await begin_write(session)
    link = await google_calendar_link(session, company=company, lock=True)
    if link is None:
        raise CalendarNotConnected(company.slug)
    ops = await _plan(session, company=company, calendar_id=link.calendar_id, now=now, past_days=past_days)
    counts = {"created": 0, "updated": 0, "deleted": 0}
    errors: list[str] = []
    fatal: str | None = None
    failed = 0
    try:
        client = client_factory(link)
    except (ValueError, CommerceError) as exc:
        fatal, failed = f"Google Calendar credentials unusable: {exc}", len(ops)
        ops = []
    for i, op in enumerate(ops):
        try:
            counts[await _apply(session, client=client, company=company, calendar_id=link.calendar_id, op=op,
                                now=now)] += 1
        except CalendarApiError as exc:
            target = op.booking.id if op.booking is not None else (op.mapping.booking_id if op.mapping else None)
            if exc.fatal:
                fatal, failed = str(exc), failed + len(ops) - i
                break
            failed += 1
            errors.append(f"booking {target}: {exc}")
    link.synced_at = now
    link.last_error = fatal or (errors[0] if errors else None)
    await session.flush()
    result = SyncResult(created=counts["created"], updated=counts["updated"], deleted=counts["deleted"],
                        failed=failed, errors=tuple(errors), error=fatal)
    log.info("google_calendar_synced", company=company.slug, **{k: v for k, v in result.as_dict().items()
                                                                  if k != "errors"})
    return result


async def sync_all_calendars(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    client_factory: ClientFactory,
    now: datetime | None = None,
    past_days: int = DEFAULT_PAST_DAYS,
) -> dict[str, SyncResult]:
    """Sync every connected company (all tenants), each in its own transaction, for a periodic job.
    An unexpected error of one company is logged and does not stop the others. Returns the results
    by company slug (companies with nothing to do included)."""
    async with sessionmaker() as session:
        rows = (await session.execute(select(GoogleCalendarLink.tenant_id, GoogleCalendarLink.company_id))).all()
    out: dict[str, SyncResult] = {}
    for tenant_id, company_id in rows:
        try:
            async with transaction(sessionmaker) as session:
                company = await TenantScope(tenant_id).get(session, Company, company_id)
                out[company.slug] = await sync_company_calendar(
                    session, company=company, client_factory=client_factory, now=now or utcnow(),
                    past_days=past_days)
        except CalendarNotConnected:
            continue  # disconnected meanwhile
        except Exception:  # noqa: BLE001 - one company's failure must not stop the job
            log.exception("google_calendar_sync_failed", company_id=str(company_id))
    return out
