"""Bookings admin API and the public iCalendar feed.

Admin routes live under ``/api/v1/tenants/{tenant}/companies/{company}/`` and need
``Authorization: Bearer <CHATCOMMERCE_ADMIN_TOKEN>`` (``api.deps.require_admin``, checked first);
the tenant and company come from ``TenantScopeDep`` / ``CompanyDep`` (a company of another tenant
is a 404):

* ``GET|PUT schedule`` — opening hours, breaks, days off and booking rules (``commerce.schedule``);
* ``GET|POST resources`` — staff and rooms; ``GET|POST delivery-windows`` (``commerce.delivery``);
* ``GET bookings`` (filters: ``status``, local ``date`` or ``from``/``to``) and
  ``POST bookings/{id}/cancel`` (a company cancellation: a paid prepayment becomes refundable) and
  ``POST bookings/{id}/no-show`` (the customer of a confirmed booking did not come);
* ``GET calendar-feed`` / ``POST calendar-feed/rotate`` — the secret iCalendar subscription URL
  (shown once, when issued or rotated: only its hash is stored);
* ``GET|PUT|DELETE google-calendar`` and ``POST google-calendar/sync`` — the Google Calendar
  connection (credentials stored encrypted, never returned) and an immediate sync
  (``commerce.calendar_sync``).

Public route: ``GET /calendar/{company}/{token}.ics`` — the feed (iCalendar, RFC 5545:
https://www.rfc-editor.org/rfc/rfc5545, media type ``text/calendar``); an unknown or rotated token
is a 404. Google Calendar sync: events.insert/update/delete of the Calendar API v3
(https://developers.google.com/calendar/api/v3/reference/events), see ``commerce.calendar_sync``.

``router`` bundles both (``app.include_router(bookings.router)``).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Response, status
from pydantic import BaseModel, Field
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import AdminDep, CompanyDep, Requires, RuntimeDep, SessionDep, SettingsDep, TenantScopeDep
from api.sales import SalesFilter
from api.sales import list_bookings as list_sales_bookings
from commerce.bookings import BookingStateError, booking_as_dict, cancel_booking, mark_no_show
from commerce.calendar_feed import (
    company_by_feed_token,
    feed_path,
    issue_feed_token,
    render_feed,
    rotate_feed_token,
)
from commerce.calendar_sync import (
    CalendarNotConnected,
    connect_google_calendar,
    disconnect_google_calendar,
    google_calendar_link,
    link_as_dict,
    sync_company_calendar,
)
from commerce.delivery import add_delivery_window
from commerce.google_calendar import (
    CalendarCredentialsError,
    ClientFactory,
    GoogleCredentials,
    client_factory_from_settings,
)
from commerce.schedule import (
    Schedule,
    ScheduleError,
    company_resources,
    company_zone,
    day_bounds,
    schedule_of,
    set_schedule,
)
from core.models import BOOKING_STATUSES, Booking, Company, DeliveryWindow, PaymentStatus, Resource
from core.settings import Settings
from core.tenancy import NotFound, TenantScope
from core.timeutil import utcnow

_COMPANY = "/tenants/{tenant}/companies/{company}"

admin_router = APIRouter(prefix="/api/v1", tags=["bookings"], dependencies=[AdminDep])
# Company configuration and calendar secrets/credentials are the owner's; a manager reads the
# schedule, resources and delivery windows and works with bookings (api.auth).
_OWNER = [Depends(Requires("owner"))]
public_router = APIRouter(tags=["calendar"])
router = APIRouter()


def get_calendar_client_factory(runtime: RuntimeDep) -> ClientFactory:
    """The Google Calendar client factory (Google's endpoints, or those of the settings
    ``google_calendar_api_root`` / ``google_oauth_token_uri``); tests override this dependency."""
    return client_factory_from_settings(runtime.settings, decrypt=runtime.secret_box.decrypt)


CalendarClientsDep = Annotated[ClientFactory, Depends(get_calendar_client_factory)]


def _unprocessable(exc: Exception) -> HTTPException:
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc))


# -- schedule --------------------------------------------------------------------------------------


@admin_router.get(_COMPANY + "/schedule")
async def get_schedule(company: CompanyDep) -> dict[str, Any]:
    """The company's schedule in the stored JSON shape (``commerce.schedule`` module docstring);
    defaults when none was set. 422 when the stored schedule is malformed."""
    try:
        return schedule_of(company).to_settings()
    except ScheduleError as exc:
        raise _unprocessable(exc) from exc


@admin_router.put(_COMPANY + "/schedule", dependencies=_OWNER)
async def put_schedule(body: dict[str, Any], company: CompanyDep, session: SessionDep) -> dict[str, Any]:
    """Replace the schedule (hours, breaks, days_off, slot_step_minutes, hold_minutes, cancel_hours,
    min_notice_minutes, horizon_days, prepay_percent, default_duration_minutes). Returns it normalised;
    422 naming the bad field. Creates the default resource when the company has none."""
    try:
        parsed = await set_schedule(session, company=company, schedule=body)
    except ScheduleError as exc:
        raise _unprocessable(exc) from exc
    await session.commit()
    return parsed.to_settings()


# -- resources -------------------------------------------------------------------------------------


class ResourceIn(BaseModel):
    """A staff member or room. ``hours`` overrides the company's opening hours (same shape as the
    schedule's ``hours``); ``days_off`` are ISO dates."""

    name: str = Field(min_length=1, max_length=200)
    capacity: int = Field(default=1, ge=1, le=1000, description="Bookings it takes at the same time.")
    hours: dict[str, Any] | None = None
    days_off: list[str] = Field(default_factory=list)
    active: bool = True
    position: int = 0


def resource_as_dict(resource: Resource) -> dict[str, Any]:
    """JSON shape of a resource."""
    return {"id": str(resource.id), "name": resource.name, "capacity": resource.capacity, "hours": resource.hours,
            "days_off": list(resource.days_off or []), "active": resource.active, "position": resource.position}


@admin_router.get(_COMPANY + "/resources")
async def list_resources(company: CompanyDep, session: SessionDep) -> list[dict[str, Any]]:
    """The company's resources (inactive ones included), by position then name."""
    return [resource_as_dict(r) for r in await company_resources(session, company=company, active_only=False)]


@admin_router.post(_COMPANY + "/resources", dependencies=_OWNER, status_code=status.HTTP_201_CREATED)
async def create_resource(
    body: ResourceIn, company: CompanyDep, scope: TenantScopeDep, session: SessionDep
) -> dict[str, Any]:
    """Add a resource. 422 for bad hours or dates; 409 when the company already has one of that name."""
    try:
        if body.hours is not None:
            Schedule.from_settings({"hours": body.hours})
        days_off = sorted({date.fromisoformat(d).isoformat() for d in body.days_off})
    except (ScheduleError, ValueError) as exc:
        raise _unprocessable(exc) from exc
    name = body.name.strip()
    exists = await session.execute(scope.select(Resource, Resource.company_id == company.id, Resource.name == name))
    if exists.scalar_one_or_none() is not None:
        raise HTTPException(status.HTTP_409_CONFLICT, f"resource {name!r} already exists")
    resource = Resource(tenant_id=company.tenant_id, company_id=company.id, name=name, capacity=body.capacity,
                        hours=body.hours, days_off=days_off, active=body.active, position=body.position)
    session.add(resource)
    try:
        await session.commit()
    except IntegrityError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, f"resource {name!r} already exists") from exc
    return resource_as_dict(resource)


# -- delivery windows ------------------------------------------------------------------------------


class DeliveryWindowIn(BaseModel):
    """A recurring delivery window: local ``HH:MM`` times (company timezone), ``weekdays`` 0 = Monday
    (empty = every day), ``capacity`` orders per day, ``cutoff_minutes`` before the start."""

    city: str = Field(min_length=1, max_length=200)
    start_time: str = Field(examples=["18:00"])
    end_time: str = Field(examples=["20:00"])
    capacity: int = Field(default=1, ge=1)
    weekdays: list[int] = Field(default_factory=list)
    zone: str | None = Field(default=None, max_length=200)
    cutoff_minutes: int = Field(default=0, ge=0)


def window_as_dict(window: DeliveryWindow) -> dict[str, Any]:
    """JSON shape of a delivery window."""
    return {"id": str(window.id), "city": window.city, "zone": window.zone, "weekdays": list(window.weekdays or []),
            "start_time": window.start_time, "end_time": window.end_time, "capacity": window.capacity,
            "cutoff_minutes": window.cutoff_minutes, "active": window.active}


@admin_router.get(_COMPANY + "/delivery-windows")
async def list_delivery_windows(
    company: CompanyDep, scope: TenantScopeDep, session: SessionDep
) -> list[dict[str, Any]]:
    """The company's delivery windows by city and start time."""
    stmt = scope.select(DeliveryWindow, DeliveryWindow.company_id == company.id).order_by(
        DeliveryWindow.city, DeliveryWindow.start_time)
    return [window_as_dict(w) for w in (await session.execute(stmt)).scalars()]


@admin_router.post(_COMPANY + "/delivery-windows", dependencies=_OWNER, status_code=status.HTTP_201_CREATED)
async def create_delivery_window(body: DeliveryWindowIn, company: CompanyDep, session: SessionDep) -> dict[str, Any]:
    """Add a delivery window. 422 for bad times, weekdays or capacity."""
    try:
        window = await add_delivery_window(
            session, company=company, city=body.city, start_time=body.start_time, end_time=body.end_time,
            capacity=body.capacity, weekdays=body.weekdays, zone=body.zone, cutoff_minutes=body.cutoff_minutes)
    except ValueError as exc:
        raise _unprocessable(exc) from exc
    await session.commit()
    return window_as_dict(window)


# -- bookings --------------------------------------------------------------------------------------


async def _booking(session: AsyncSession, scope: TenantScope, company: Company, booking_id: uuid.UUID) -> Booking:
    booking = await scope.get(session, Booking, booking_id)
    if booking.company_id != company.id:
        raise NotFound(f"Booking {booking_id} not found")
    return booking


@admin_router.get(_COMPANY + "/bookings")
async def list_bookings_route(
    company: CompanyDep,
    session: SessionDep,
    status_: Annotated[list[str] | None, Query(alias="status", description="held, confirmed, released, cancelled, "
                                                                           "no_show (repeat; default all)")] = None,
    day: Annotated[date | None, Query(alias="date", description="One local day (company timezone).")] = None,
    from_: Annotated[date | None, Query(alias="from", description="First local day.")] = None,
    to: Annotated[date | None, Query(description="Last local day (inclusive).")] = None,
    payment_status: Annotated[list[PaymentStatus] | None, Query(
        description="Payment status of the prepayment order (repeat for several).")] = None,
    contact_id: Annotated[uuid.UUID | None, Query(description="Only this customer's bookings.")] = None,
    q: Annotated[str | None, Query(max_length=200, description="Customer name or phone contains this.")] = None,
) -> list[dict[str, Any]]:
    """The company's bookings, earliest first (``commerce.bookings.booking_as_dict``: instants in UTC
    plus ``local_start``; money in minor units; plus ``contact_id`` and the prepayment's
    ``payment_status``, see ``api.sales.list_bookings``). 422 for an unknown status."""
    statuses = tuple(status_) if status_ else ()
    if statuses and (bad := sorted(set(statuses) - set(BOOKING_STATUSES))):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"unknown status {bad[0]!r} (use {', '.join(BOOKING_STATUSES)})")
    tz = company_zone(company)
    first, last = (day, day) if day is not None else (from_, to)
    start = day_bounds(first, tz)[0] if first else None
    end = day_bounds(last, tz)[1] if last else None
    filters = SalesFilter(statuses=statuses, payment_statuses=tuple(payment_status or ()), since=start, until=end,
                          contact_id=contact_id, text=q)
    return await list_sales_bookings(session, company=company, filters=filters)


@admin_router.post(_COMPANY + "/bookings/{booking_id}/cancel")
async def cancel_booking_route(
    booking_id: uuid.UUID, company: CompanyDep, scope: TenantScopeDep, session: SessionDep
) -> dict[str, Any]:
    """Cancel a held or confirmed booking on the company's side: its time is freed and a paid
    prepayment becomes refundable (``refund_due``; the refund itself is made with the payment
    provider). 409 when the booking is not held or confirmed. The Google Calendar event is removed
    by the next sync."""
    booking = await _booking(session, scope, company, booking_id)
    try:
        result = await cancel_booking(session, booking=booking, now=utcnow(), by="company")
    except BookingStateError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, f"booking is {exc.status}; it cannot be cancelled") from exc
    await session.commit()
    return {"booking": booking_as_dict(result.booking, tz=company_zone(company)), "late": result.late,
            "refundable": result.refundable, "refund_minor": result.refund_minor, "currency": result.currency}


@admin_router.post(_COMPANY + "/bookings/{booking_id}/no-show")
async def no_show_booking_route(
    booking_id: uuid.UUID, company: CompanyDep, scope: TenantScopeDep, session: SessionDep
) -> dict[str, Any]:
    """Mark a confirmed booking whose start has passed as ``no_show`` (the customer did not come;
    counted as ``no_shows`` by the company's metrics). 409 for any other status or a booking that
    has not started yet."""
    booking = await _booking(session, scope, company, booking_id)
    try:
        booking = await mark_no_show(session, booking=booking, now=utcnow())
    except BookingStateError as exc:
        raise HTTPException(status.HTTP_409_CONFLICT,
                            f"booking is {exc.status}; it cannot be marked as a no-show") from exc
    await session.commit()
    return {"booking": booking_as_dict(booking, tz=company_zone(company))}


# -- calendar feed ---------------------------------------------------------------------------------


def _feed_out(settings: Settings, company: Company, token: str | None, issued_at: datetime) -> dict[str, Any]:
    if token is None:
        return {"url": None, "path": None, "issued_at": issued_at,
                "detail": "the feed URL is shown only when it is issued; POST .../calendar-feed/rotate "
                          "for a new one (the old URL stops working)"}
    path = feed_path(company, token)
    return {"url": f"{settings.public_base_url.rstrip('/')}{path}", "path": path, "issued_at": issued_at}


@admin_router.get(_COMPANY + "/calendar-feed", dependencies=_OWNER)
async def get_calendar_feed(company: CompanyDep, session: SessionDep, settings: SettingsDep) -> dict[str, Any]:
    """The company's secret iCalendar subscription URL (``{public_base_url}/calendar/{company}/{token}.ics``),
    issued on first use and shown that once (only the token's hash is stored): later calls answer
    ``{"url": null, "path": null, "issued_at", "detail"}``. Anyone with the URL can read the bookings:
    rotate it when it leaks or is lost."""
    issued = await issue_feed_token(session, company=company)
    await session.commit()
    return _feed_out(settings, company, issued.token, issued.issued_at)


@admin_router.post(_COMPANY + "/calendar-feed/rotate", dependencies=_OWNER)
async def rotate_calendar_feed(company: CompanyDep, session: SessionDep, settings: SettingsDep) -> dict[str, Any]:
    """Replace the feed token: the old URL stops working at once; returns the new URL (shown this once)."""
    token = await rotate_feed_token(session, company=company)
    await session.commit()
    return _feed_out(settings, company, token, utcnow())


# -- Google Calendar -------------------------------------------------------------------------------


class OAuthIn(BaseModel):
    """An OAuth 2.0 refresh token (scope ``https://www.googleapis.com/auth/calendar.events``) and the
    OAuth client it was issued to."""

    refresh_token: str = Field(min_length=1)
    client_id: str = Field(min_length=1)
    client_secret: str = Field(min_length=1)


class GoogleCalendarIn(BaseModel):
    """Connect a Google Calendar with exactly one of ``service_account_key`` (the JSON key file's
    content; share the calendar with its ``client_email``, "Make changes to events") or ``oauth``."""

    calendar_id: str = Field(default="primary", min_length=1, max_length=255,
                             examples=["primary", "abc123@group.calendar.google.com"])
    service_account_key: dict[str, Any] | None = None
    oauth: OAuthIn | None = None


@admin_router.get(_COMPANY + "/google-calendar", dependencies=_OWNER)
async def get_google_calendar(company: CompanyDep, session: SessionDep, runtime: RuntimeDep) -> dict[str, Any]:
    """The connection: ``{"connected": false}`` or the calendar id, auth kind, account (service
    account e-mail or OAuth client id), last sync time and last error; ``credentials`` masked to the
    last 4 characters of each field (never a secret or its ciphertext)."""
    return link_as_dict(await google_calendar_link(session, company=company), decrypt=runtime.secret_box.decrypt)


@admin_router.put(_COMPANY + "/google-calendar", dependencies=_OWNER)
async def put_google_calendar(
    body: GoogleCalendarIn, company: CompanyDep, session: SessionDep, runtime: RuntimeDep
) -> dict[str, Any]:
    """Connect (or replace) the company's Google Calendar; the credentials are encrypted at rest
    (``core.security.SecretBox``). Nothing is sent to Google here: ``POST google-calendar/sync`` (or
    the periodic job) pushes the bookings. 422 for missing or malformed credentials."""
    if (body.service_account_key is None) == (body.oauth is None):
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            "give exactly one of service_account_key or oauth")
    try:
        if body.service_account_key is not None:
            creds = GoogleCredentials.from_service_account_key(body.service_account_key)
        else:
            assert body.oauth is not None
            creds = GoogleCredentials.from_refresh_token(refresh_token=body.oauth.refresh_token,
                                                         client_id=body.oauth.client_id,
                                                         client_secret=body.oauth.client_secret)
        link = await connect_google_calendar(session, company=company, calendar_id=body.calendar_id,
                                             credentials=creds, encrypt=runtime.secret_box.encrypt)
    except (CalendarCredentialsError, ValueError) as exc:
        raise _unprocessable(exc) from exc
    await session.commit()
    return link_as_dict(link, decrypt=runtime.secret_box.decrypt)


@admin_router.delete(_COMPANY + "/google-calendar", dependencies=_OWNER)
async def delete_google_calendar(company: CompanyDep, session: SessionDep) -> dict[str, Any]:
    """Disconnect and forget the credentials (events already in Google stay). ``removed`` is false
    when nothing was connected."""
    removed = await disconnect_google_calendar(session, company=company)
    await session.commit()
    return {"connected": False, "removed": removed}


@admin_router.post(_COMPANY + "/google-calendar/sync", dependencies=_OWNER)
async def sync_google_calendar(
    company: CompanyDep, session: SessionDep, clients: CalendarClientsDep
) -> dict[str, Any]:
    """Sync now: ``{"created", "updated", "deleted", "failed", "errors", "error"}``. 409 when no
    calendar is connected; 502 when Google refused the credentials or could not be reached (the
    message is in ``detail``, and kept as the connection's ``last_error``)."""
    try:
        result = await sync_company_calendar(session, company=company, client_factory=clients, now=utcnow())
    except CalendarNotConnected as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from exc
    await session.commit()
    if result.error:
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, {"message": result.error, **result.as_dict()})
    return result.as_dict()


# -- public feed -----------------------------------------------------------------------------------


@public_router.get(
    "/calendar/{company}/{token}.ics",
    response_class=Response,
    responses={200: {"content": {"text/calendar": {}}, "description": "The iCalendar feed (RFC 5545)."},
               404: {"description": "Unknown company or token (also after rotation)."}},
)
async def calendar_feed(company: str, token: str, session: SessionDep) -> Response:
    """The company's bookings and delivery windows as an iCalendar feed for calendar apps to
    subscribe to (``text/calendar``, RFC 5545). The token is the secret; a wrong one is a 404."""
    row = await company_by_feed_token(session, token, company_slug=company)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "calendar feed not found")
    body = await render_feed(session, company=row)
    return Response(content=body, media_type="text/calendar; charset=utf-8",
                    headers={"Cache-Control": "private, no-cache",
                             "Content-Disposition": f'inline; filename="{row.slug}.ics"'})


router.include_router(admin_router)
router.include_router(public_router)
