"""``chatcommerce bookings ...``: bookings, schedules, the calendar feed and Google Calendar sync.

A ``typer.Typer`` sub-app (``bookings_app``) registered by ``api.cli`` as ``bookings``. Same
conventions as ``api.cli``: settings from the environment (``CHATCOMMERCE_*``), the ``Runtime`` of
``api.services.open_runtime``, companies addressed by their global slug, ``--json`` for JSON on
stdout, errors on stderr with exit status 1.

* ``bookings list --company SLUG [--status S]... [--date YYYY-MM-DD] [--json]``
* ``bookings schedule show --company SLUG`` / ``bookings schedule set --company SLUG --file schedule.json``
* ``bookings feed-url --company SLUG [--rotate]``
* ``bookings calendar-sync --company SLUG``
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from api.auth import Forbidden
from api.cli_auth import acting, cli_company
from api.cli_table import render_table
from api.services import Runtime, open_runtime
from commerce.bookings import booking_as_dict, list_bookings
from commerce.calendar_feed import feed_path, issue_feed_token, rotate_feed_token
from commerce.calendar_sync import sync_company_calendar
from commerce.errors import CommerceError
from commerce.google_calendar import ClientFactory, client_factory_from_settings
from commerce.schedule import company_zone, day_bounds, schedule_of, set_schedule
from core.accounts import ValidationError
from core.i18n import company_locale, money
from core.models import BOOKING_STATUSES
from core.settings import Settings, get_settings
from core.tenancy import NotFound
from core.timeutil import utcnow

T = TypeVar("T")

bookings_app = typer.Typer(help="Bookings of service companies: list, schedule, calendar feed, Google Calendar.",
                           no_args_is_help=True)
schedule_app = typer.Typer(help="A company's opening hours and booking rules.", no_args_is_help=True)
bookings_app.add_typer(schedule_app, name="schedule")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
CompanyOpt = Annotated[str, typer.Option("--company", help="Company slug.")]


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


def _emit(data: Any, as_json: bool, text: Callable[[], str]) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, default=str) if as_json else text())


def _run(work: Callable[[Runtime], Awaitable[T]], *, settings: Settings | None = None) -> T:
    """Build the runtime, run ``work`` in a fresh event loop, turn expected errors into exit 1."""

    async def main() -> T:
        async with open_runtime(settings or get_settings()) as runtime, acting(runtime):
            return await work(runtime)

    try:
        return asyncio.run(main())
    except Forbidden as exc:
        raise _fail(f"forbidden: {exc}") from exc
    except (NotFound, ValidationError, CommerceError, LookupError, ValueError, FileNotFoundError) as exc:
        # CommerceError covers ScheduleError (a bad schedule field) and CalendarNotConnected.
        raise _fail(str(exc).strip("'\"")) from exc


def calendar_client_factory(runtime: Runtime) -> ClientFactory:
    """The Google Calendar client factory of ``calendar-sync`` (tests replace this function)."""
    return client_factory_from_settings(runtime.settings, decrypt=runtime.secret_box.decrypt)


# -- list ------------------------------------------------------------------------------------------


BOOKING_COLUMNS = ("start", "status", "service", "resource", "customer", "prepay", "id", "refund")


def _booking_row(b: dict[str, Any], locale: str) -> list[Any]:
    prepay = money(int(b["prepay_minor"]), str(b["currency"]), locale) if b["prepay_minor"] else "-"
    who = b["customer_name"] or b["phone"] or "-"
    return [b["local_start"][:16].replace("T", " "), b["status"], b["service"], b["resource"], who, prepay, b["id"],
            "refund due" if b["refund_due"] else ""]


@bookings_app.command("list")
def bookings_list(
    company: CompanyOpt,
    status: Annotated[list[str] | None, typer.Option("--status", help="held | confirmed | released | cancelled "
                                                                      "(repeat; default all).")] = None,
    day: Annotated[str | None, typer.Option("--date", help="Only this local day (YYYY-MM-DD).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """A company's bookings, earliest first (local times in the company's timezone; --json: instants
    in UTC plus local_start, money in minor units)."""
    statuses = tuple(status) if status else None
    if statuses and (bad := sorted(set(statuses) - set(BOOKING_STATUSES))):
        raise _fail(f"unknown status {bad[0]!r} (use {', '.join(BOOKING_STATUSES)})")
    try:
        local_day = date.fromisoformat(day) if day else None
    except ValueError:
        raise _fail(f"--date must be YYYY-MM-DD, not {day!r}") from None

    async def work(rt: Runtime) -> tuple[list[dict[str, Any]], str]:
        async with rt.sessionmaker() as session:
            row = await cli_company(session, company)
            tz = company_zone(row)
            start, end = day_bounds(local_day, tz) if local_day else (None, None)
            rows = await list_bookings(session, company=row, start=start, end=end, statuses=statuses)
            return [booking_as_dict(b, tz=tz) for b in rows], company_locale(row)

    data, locale = _run(work)
    _emit(data, as_json, lambda: render_table(BOOKING_COLUMNS, [_booking_row(b, locale) for b in data],
                                              empty="no bookings"))


# -- schedule --------------------------------------------------------------------------------------


@schedule_app.command("show")
def schedule_show(company: CompanyOpt) -> None:
    """Print the company's schedule as JSON (the shape ``schedule set`` reads)."""

    async def work(rt: Runtime) -> dict[str, Any]:
        async with rt.sessionmaker() as session:
            return schedule_of(await cli_company(session, company)).to_settings()

    typer.echo(json.dumps(_run(work), ensure_ascii=False, indent=2))


@schedule_app.command("set")
def schedule_set(
    company: CompanyOpt,
    file: Annotated[Path, typer.Option("--file", help="JSON file: hours, breaks, days_off, slot_step_minutes...",
                                       exists=True, dir_okay=False, readable=True)],
    as_json: JsonOpt = False,
) -> None:
    """Replace a company's schedule from a JSON file (see ``commerce.schedule``); a bad field is
    reported by name (exit status 1) and nothing is changed."""
    try:
        body = json.loads(file.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise _fail(f"{file.name} is not valid JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise _fail(f"{file.name} must contain a JSON object")

    async def work(rt: Runtime) -> dict[str, Any]:
        async with rt.sessionmaker() as session, session.begin():
            row = await cli_company(session, company, "owner")
            return (await set_schedule(session, company=row, schedule=body)).to_settings()

    data = _run(work)
    _emit(data, as_json, lambda: f"schedule of {company} saved")


# -- calendar feed ---------------------------------------------------------------------------------


@bookings_app.command("feed-url")
def feed_url(
    company: CompanyOpt,
    rotate: Annotated[bool, typer.Option("--rotate", help="Issue a new secret URL; the old one stops working.")]
    = False,
    as_json: JsonOpt = False,
) -> None:
    """Print the company's secret iCalendar subscription URL. It is shown once, when first issued or
    rotated (only its hash is stored); afterwards this says so: use ``--rotate`` for a new URL."""
    settings = get_settings()

    async def work(rt: Runtime) -> dict[str, Any]:
        async with rt.sessionmaker() as session, session.begin():
            row = await cli_company(session, company, "owner")
            if rotate:
                token: str | None = await rotate_feed_token(session, company=row)
                issued_at = utcnow()
            else:
                issued = await issue_feed_token(session, company=row)
                token, issued_at = issued.token, issued.issued_at
            path = feed_path(row, token) if token else None
            return {"company": company, "url": f"{settings.public_base_url.rstrip('/')}{path}" if path else None,
                    "path": path, "rotated": rotate, "issued_at": issued_at.isoformat()}

    data = _run(work, settings=settings)
    _emit(data, as_json, lambda: data["url"] or (
        f"the feed URL of {company} was issued at {data['issued_at']} and is shown only then; "
        "run with --rotate for a new one (the old URL stops working)"))


# -- Google Calendar -------------------------------------------------------------------------------


@bookings_app.command("calendar-sync")
def calendar_sync(company: CompanyOpt, as_json: JsonOpt = False) -> None:
    """Sync the company's confirmed bookings to its connected Google Calendar now (connect it with
    ``PUT /api/v1/.../google-calendar``). Exit status 1 when not connected or when Google refused
    the credentials or could not be reached."""

    async def work(rt: Runtime) -> dict[str, Any]:
        async with rt.sessionmaker() as session, session.begin():
            row = await cli_company(session, company, "owner")
            result = await sync_company_calendar(session, company=row, client_factory=calendar_client_factory(rt),
                                                 now=utcnow())
            return {"company": company, **result.as_dict()}

    data = _run(work)
    _emit(data, as_json, lambda: f"{company}: {data['created']} created, {data['updated']} updated, "
                                 f"{data['deleted']} deleted, {data['failed']} failed"
                                 + "".join(f"\n  {e}" for e in data["errors"]))
    if data["error"]:
        raise _fail(data["error"])
