"""The bookings admin API (``api.routes.bookings``), the public iCalendar feed and the ``bookings``
CLI sub-app, on SQLite and PostgreSQL: admin token, tenant isolation, schedule round trip,
resources, delivery windows, booking list and company cancellation, feed URL and rotation, Google
Calendar connect/sync/disconnect against ``LocalCalendarApi`` (a local double of the Calendar API).

The dialogue engine is ``EchoResponder`` (tests/test_api.py); bookings are made with the commerce
functions directly. Times are relative to the real clock because the routes use it.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest
import structlog
import typer
from fastapi import FastAPI
from google.oauth2.credentials import Credentials
from icalendar import Calendar
from sqlalchemy import select
from typer.testing import CliRunner

import api.cli_bookings
from api.app import create_app
from api.cli_bookings import bookings_app
from api.routes import bookings as bookings_routes
from api.services import Runtime, open_runtime
from commerce.bookings import hold_slot, on_order_paid
from commerce.calendar_sync import connect_google_calendar, event_id_for
from commerce.google_calendar import GoogleCredentials, google_client_factory
from commerce.payments import mark_paid
from core.accounts import create_company, create_tenant
from core.models import Booking, Company, GoogleCalendarLink, KnowledgeItem, Order
from core.settings import Settings
from core.timeutil import utcnow
from tests.doubles.google_calendar_server import LocalCalendarApi
from tests.test_api import AUTH, EchoResponder, make_company, make_settings

BERLIN = ZoneInfo("Europe/Berlin")
DAY = (utcnow().astimezone(BERLIN) + timedelta(days=7)).date()
OPEN_DAILY = {"hours": {d: ["09:00-18:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")},
              "cancel_hours": 24}
CAL = "salon@group.calendar.google.com"
FEED_ROUTE = "/calendar/{company}/{token}.ics"


def at(hh: int, mm: int = 0, day: date = DAY) -> datetime:
    return datetime.combine(day, time(hh, mm), tzinfo=BERLIN).astimezone(UTC)


def base(tenant: str, company: str) -> str:
    return f"/api/v1/tenants/{tenant}/companies/{company}"


@dataclass
class Env:
    client: httpx.AsyncClient
    app: FastAPI
    google: LocalCalendarApi

    @property
    def runtime(self) -> Runtime:
        return self.app.state.runtime


def with_bookings(app: FastAPI) -> FastAPI:
    """Include ``api.routes.bookings.router`` unless ``create_app`` already does."""
    if FEED_ROUTE not in app.openapi()["paths"]:
        app.include_router(bookings_routes.router)
    app.openapi_schema = None
    return app


def token_factory(api: LocalCalendarApi):  # type: ignore[no-untyped-def]
    """The real factory and client; a bearer token named after the account replaces the token exchange."""
    return lambda runtime: google_client_factory(
        decrypt=runtime.secret_box.decrypt, api_root=api.root_url, num_retries=0,
        credentials=lambda creds: Credentials(token=f"token-{creds.account}"))


@asynccontextmanager
async def running(settings: Settings, google: LocalCalendarApi) -> AsyncIterator[Env]:
    app = with_bookings(create_app(settings, responder=EchoResponder()))
    async with app.router.lifespan_context(app):
        app.dependency_overrides[bookings_routes.get_calendar_client_factory] = lambda: token_factory(google)(
            app.state.runtime)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield Env(client=client, app=app, google=google)


@pytest.fixture
def google() -> Iterator[LocalCalendarApi]:
    with LocalCalendarApi(calendars=(CAL, "other@group.calendar.google.com")) as api:
        api.add_token("token-salon.apps", account="salon.apps")
        api.grant("salon.apps", CAL)
        yield api


@pytest.fixture
async def env(database_url: str, tmp_path: Path, google: LocalCalendarApi) -> AsyncIterator[Env]:
    # The isolation test sends a wrong admin token to every route: more than the default failure limit.
    settings = make_settings(database_url, tmp_path, rate_limit_admin_failures="100/minute")
    async with running(settings, google) as e:
        yield e


async def setup_salon(env: Env, tenant: str = "acme", slug: str = "salon") -> dict:
    company = await make_company(env.client, tenant, slug, type="service", currency="EUR", timezone="Europe/Berlin")
    r = await env.client.put(f"{base(tenant, slug)}/schedule", json=OPEN_DAILY, headers=AUTH)
    assert r.status_code == 200, r.text
    return company


async def book(runtime: Runtime, slug: str, *, start: datetime, name: str, price: int, pay: bool) -> uuid.UUID:
    """A booking made the way the bot makes one; ``pay`` completes its prepayment (→ confirmed)."""
    async with runtime.sessionmaker() as s, s.begin():
        company = (await s.execute(select(Company).where(Company.slug == slug))).scalar_one()
        item = (await s.execute(select(KnowledgeItem).where(KnowledgeItem.company_id == company.id,
                                                            KnowledgeItem.name == f"Svc {price}"))).scalar_one_or_none()
        if item is None:
            item = KnowledgeItem(tenant_id=company.tenant_id, company_id=company.id, kind="service",
                                 name=f"Svc {price}", price_minor=price, currency="EUR", duration_minutes=60,
                                 attributes={})
            s.add(item)
            await s.flush()
        now = utcnow()
        booking = await hold_slot(s, company=company, service=item, start=start, now=now, customer_name=name)
        if pay and booking.order_id:
            order = await s.get(Order, booking.order_id)
            assert order is not None
            await mark_paid(s, order=order, method="card", paid_at=now)
            await on_order_paid(s, order, now=now)
        return booking.id


# -- auth and tenancy ------------------------------------------------------------------------------


async def test_admin_token_and_tenant_isolation(env: Env) -> None:
    await setup_salon(env)
    await setup_salon(env, tenant="rival", slug="rival-salon")
    paths = [("GET", "schedule"), ("PUT", "schedule"), ("GET", "resources"), ("POST", "resources"),
             ("GET", "delivery-windows"), ("POST", "delivery-windows"), ("GET", "bookings"),
             ("POST", f"bookings/{uuid.uuid4()}/cancel"), ("GET", "calendar-feed"), ("POST", "calendar-feed/rotate"),
             ("GET", "google-calendar"), ("PUT", "google-calendar"), ("DELETE", "google-calendar"),
             ("POST", "google-calendar/sync")]
    for method, tail in paths:
        url = f"{base('acme', 'salon')}/{tail}"
        r = await env.client.request(method, url, json={})
        assert r.status_code == 401, (method, tail, r.status_code)
        r = await env.client.request(method, url, json={}, headers={"Authorization": "Bearer wrong"})
        assert r.status_code == 401, (method, tail, r.status_code)
        # Another tenant's company is "not found", exactly like a company that does not exist.
        r = await env.client.request(method, f"{base('acme', 'rival-salon')}/{tail}", json={}, headers=AUTH)
        assert r.status_code == 404, (method, tail, r.status_code)
        r = await env.client.request(method, f"{base('nobody', 'salon')}/{tail}", json={}, headers=AUTH)
        assert r.status_code == 404, (method, tail, r.status_code)

    theirs = await book(env.runtime, "rival-salon", start=at(10), name="Eve", price=0, pay=False)
    r = await env.client.post(f"{base('acme', 'salon')}/bookings/{theirs}/cancel", headers=AUTH)
    assert r.status_code == 404
    r = await env.client.get(f"{base('acme', 'salon')}/bookings", headers=AUTH)
    assert r.status_code == 200 and r.json() == []


# -- schedule, resources, delivery windows ---------------------------------------------------------


async def test_schedule_round_trip_resources_and_delivery_windows(env: Env) -> None:
    await setup_salon(env)
    url = base("acme", "salon")
    schedule = {"hours": {"mon": ["09:00-13:00", "14:00-19:00"], "sat": ["10:00-14:00"]}, "breaks": ["12:00-12:30"],
                "days_off": ["2026-12-25"], "slot_step_minutes": 15, "hold_minutes": 20, "cancel_hours": 12,
                "prepay_percent": 50}
    r = await env.client.put(f"{url}/schedule", json=schedule, headers=AUTH)
    assert r.status_code == 200, r.text
    stored = r.json()
    assert stored["hours"]["mon"] == ["09:00-13:00", "14:00-19:00"] and stored["hours"]["sun"] == []
    assert stored["breaks"] == {"*": ["12:00-12:30"]} and stored["slot_step_minutes"] == 15
    got = (await env.client.get(f"{url}/schedule", headers=AUTH)).json()
    assert got == stored
    r = await env.client.put(f"{url}/schedule", json=got, headers=AUTH)  # the output is valid input
    assert r.status_code == 200 and r.json() == stored
    r = await env.client.put(f"{url}/schedule", json={"hours": {"funday": ["09:00-10:00"]}}, headers=AUTH)
    assert r.status_code == 422 and "funday" in r.json()["detail"]
    r = await env.client.put(f"{url}/schedule", json={"slot_step_minutes": 7}, headers=AUTH)
    assert r.status_code == 422 and "slot_step_minutes" in r.json()["detail"]
    assert (await env.client.get(f"{url}/schedule", headers=AUTH)).json() == stored

    # set_schedule made the default resource; add staff.
    resources = (await env.client.get(f"{url}/resources", headers=AUTH)).json()
    assert [r["name"] for r in resources] == ["Salon"]
    r = await env.client.post(f"{url}/resources", json={"name": "Anna", "hours": {"tue": ["10:00-16:00"]},
                                                        "days_off": ["2026-12-31"], "position": 1}, headers=AUTH)
    assert r.status_code == 201, r.text
    assert r.json()["hours"] == {"tue": ["10:00-16:00"]} and r.json()["days_off"] == ["2026-12-31"]
    assert (await env.client.post(f"{url}/resources", json={"name": "Anna"}, headers=AUTH)).status_code == 409
    assert (await env.client.post(f"{url}/resources", json={"name": "Bo", "hours": {"tue": ["25:00-26:00"]}},
                                  headers=AUTH)).status_code == 422
    assert (await env.client.post(f"{url}/resources", json={"name": "Bo", "days_off": ["someday"]},
                                  headers=AUTH)).status_code == 422
    assert (await env.client.post(f"{url}/resources", json={"name": "Bo", "capacity": 0},
                                  headers=AUTH)).status_code == 422
    names = [r["name"] for r in (await env.client.get(f"{url}/resources", headers=AUTH)).json()]
    assert names == ["Salon", "Anna"]

    r = await env.client.post(f"{url}/delivery-windows", json={"city": "Berlin", "start_time": "18:00",
                                                               "end_time": "20:00", "capacity": 3,
                                                               "weekdays": [0, 2], "cutoff_minutes": 60},
                              headers=AUTH)
    assert r.status_code == 201, r.text
    assert r.json()["weekdays"] == [0, 2] and r.json()["capacity"] == 3
    bad = {"city": "Berlin", "start_time": "20:00", "end_time": "18:00"}
    assert (await env.client.post(f"{url}/delivery-windows", json=bad, headers=AUTH)).status_code == 422
    bad = {"city": "Berlin", "start_time": "18:00", "end_time": "20:00", "weekdays": [7]}
    assert (await env.client.post(f"{url}/delivery-windows", json=bad, headers=AUTH)).status_code == 422
    windows = (await env.client.get(f"{url}/delivery-windows", headers=AUTH)).json()
    assert [(w["city"], w["start_time"], w["end_time"]) for w in windows] == [("Berlin", "18:00", "20:00")]


# -- bookings --------------------------------------------------------------------------------------


async def test_list_filters_and_company_cancellation(env: Env) -> None:
    await setup_salon(env)
    url = base("acme", "salon")
    paid = await book(env.runtime, "salon", start=at(10), name="Max", price=4000, pay=True)
    held = await book(env.runtime, "salon", start=at(12), name="Held", price=4000, pay=False)
    later = await book(env.runtime, "salon", start=at(10, day=DAY + timedelta(days=1)), name="Later", price=0,
                       pay=False)
    every = (await env.client.get(f"{url}/bookings", headers=AUTH)).json()
    assert [b["id"] for b in every] == [str(paid), str(held), str(later)]
    assert every[0]["status"] == "confirmed" and every[0]["prepay_minor"] == 4000
    assert every[0]["local_start"].startswith(f"{DAY.isoformat()}T10:00")
    confirmed = (await env.client.get(f"{url}/bookings", params={"status": "confirmed"}, headers=AUTH)).json()
    assert [b["id"] for b in confirmed] == [str(paid), str(later)]
    both = (await env.client.get(f"{url}/bookings", params=[("status", "held"), ("status", "confirmed")],
                                 headers=AUTH)).json()
    assert len(both) == 3
    on_day = (await env.client.get(f"{url}/bookings", params={"date": DAY.isoformat()}, headers=AUTH)).json()
    assert [b["id"] for b in on_day] == [str(paid), str(held)]
    ranged = (await env.client.get(f"{url}/bookings", params={"from": (DAY + timedelta(days=1)).isoformat(),
                                                              "to": (DAY + timedelta(days=5)).isoformat()},
                                   headers=AUTH)).json()
    assert [b["id"] for b in ranged] == [str(later)]
    r = await env.client.get(f"{url}/bookings", params={"status": "lost"}, headers=AUTH)
    assert r.status_code == 422
    assert (await env.client.get(f"{url}/bookings", params={"date": "tomorrow"}, headers=AUTH)).status_code == 422

    r = await env.client.post(f"{url}/bookings/{paid}/cancel", headers=AUTH)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["refundable"] is True and body["refund_minor"] == 4000 and body["currency"] == "EUR"
    assert body["booking"]["status"] == "cancelled" and body["booking"]["refund_due"] is True
    assert (await env.client.post(f"{url}/bookings/{paid}/cancel", headers=AUTH)).status_code == 409
    assert (await env.client.post(f"{url}/bookings/{uuid.uuid4()}/cancel", headers=AUTH)).status_code == 404
    r = await env.client.post(f"{url}/bookings/{held}/cancel", headers=AUTH)
    assert r.status_code == 200 and r.json()["refundable"] is False
    async with env.runtime.sessionmaker() as s:
        row = await s.get(Booking, paid)
        assert row is not None and row.cancelled_by == "company"
        order = await s.get(Order, (await s.get(Booking, held)).order_id)  # type: ignore[union-attr]
        assert order is not None and order.status == "cancelled"


# -- calendar feed ---------------------------------------------------------------------------------


def feed_uids(body: bytes) -> set[str]:
    return {str(ev["UID"]) for ev in Calendar.from_ical(body).walk("VEVENT")}


async def test_feed_url_serves_the_ics_and_rotation_invalidates_it(env: Env) -> None:
    await setup_salon(env)
    await setup_salon(env, tenant="rival", slug="rival-salon")
    url = base("acme", "salon")
    confirmed = await book(env.runtime, "salon", start=at(10), name="Max Mustermann", price=4000, pay=True)
    held = await book(env.runtime, "salon", start=at(12), name="Held", price=4000, pay=False)
    await book(env.runtime, "rival-salon", start=at(10), name="Eve", price=0, pay=False)

    r = await env.client.get(f"{url}/calendar-feed", headers=AUTH)
    assert r.status_code == 200, r.text
    feed = r.json()
    assert feed["url"] == f"http://testserver{feed['path']}"
    assert feed["path"].startswith("/calendar/salon/") and feed["path"].endswith(".ics")
    # Shown once: only the token's hash is stored, so later calls cannot show the URL again.
    later = (await env.client.get(f"{url}/calendar-feed", headers=AUTH)).json()
    assert later["url"] is None and later["path"] is None and "rotate" in later["detail"]
    assert later["issued_at"] == feed["issued_at"]

    r = await env.client.get(feed["path"])  # public: no admin token
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/calendar; charset=utf-8"
    cal = Calendar.from_ical(r.content)
    events = {str(ev["UID"]): ev for ev in cal.walk("VEVENT")}
    assert set(events) == {f"booking-{confirmed}@chatcommerce"}  # not the held one, not the rival's
    assert f"booking-{held}@chatcommerce" not in events
    ev = events[f"booking-{confirmed}@chatcommerce"]
    assert str(ev["SUMMARY"]) == "Svc 4000 — Max Mustermann"
    assert ev.decoded("DTSTART") == at(10) and ev.decoded("DTEND") == at(11)

    token = feed["path"].rsplit("/", 1)[1][:-4]
    wrong = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert (await env.client.get(f"/calendar/salon/{wrong}.ics")).status_code == 404
    assert (await env.client.get(f"/calendar/rival-salon/{token}.ics")).status_code == 404
    assert (await env.client.get(f"/calendar/salon/{token}")).status_code == 404
    rival = (await env.client.get(f"{base('rival', 'rival-salon')}/calendar-feed", headers=AUTH)).json()
    assert len(feed_uids((await env.client.get(rival["path"])).content)) == 1

    r = await env.client.post(f"{url}/calendar-feed/rotate", headers=AUTH)
    assert r.status_code == 200
    new = r.json()
    assert new["path"] != feed["path"] and new["path"].startswith("/calendar/salon/")
    assert (await env.client.get(feed["path"])).status_code == 404
    assert (await env.client.get(new["path"])).status_code == 200
    assert (await env.client.get(f"{url}/calendar-feed", headers=AUTH)).json()["url"] is None


# -- Google Calendar -------------------------------------------------------------------------------


async def test_google_calendar_connect_sync_and_disconnect(env: Env) -> None:
    await setup_salon(env)
    url = f"{base('acme', 'salon')}/google-calendar"
    assert (await env.client.get(url, headers=AUTH)).json() == {"connected": False}
    r = await env.client.post(f"{url}/sync", headers=AUTH)
    assert r.status_code == 409

    oauth = {"refresh_token": "1//secret-refresh", "client_id": "salon.apps", "client_secret": "very-secret"}
    assert (await env.client.put(url, json={"calendar_id": CAL}, headers=AUTH)).status_code == 422
    both = {"calendar_id": CAL, "oauth": oauth, "service_account_key": {"type": "service_account"}}
    assert (await env.client.put(url, json=both, headers=AUTH)).status_code == 422
    bad_key = {"calendar_id": CAL, "service_account_key": {"type": "service_account", "client_email": "x@y",
                                                           "private_key": "-----BEGIN PRIVATE KEY-----\nnope"}}
    r = await env.client.put(url, json=bad_key, headers=AUTH)
    assert r.status_code == 422 and "private key" in r.json()["detail"]
    assert (await env.client.put(url, json={"calendar_id": "a b", "oauth": oauth}, headers=AUTH)).status_code == 422

    r = await env.client.put(url, json={"calendar_id": CAL, "oauth": oauth}, headers=AUTH)
    assert r.status_code == 200, r.text
    assert r.json() == {"connected": True, "calendar_id": CAL, "auth": "oauth", "account": "salon.apps",
                        "synced_at": None, "last_error": None,
                        # masked: the last 4 characters of values of 12 characters or more, else nothing
                        "credentials": {"refresh_token": "••••resh", "client_id": "••••", "client_secret": "••••"}}
    assert "1//secret-refresh" not in r.text and "very-secret" not in r.text
    async with env.runtime.sessionmaker() as s:
        link = (await s.execute(select(GoogleCalendarLink))).scalar_one()
        assert "1//secret-refresh" not in link.credentials and "very-secret" not in link.credentials
        assert "1//secret-refresh" in env.runtime.secret_box.decrypt(link.credentials)

    confirmed = await book(env.runtime, "salon", start=at(10), name="Max", price=4000, pay=True)
    await book(env.runtime, "salon", start=at(12), name="Held", price=4000, pay=False)
    r = await env.client.post(f"{url}/sync", headers=AUTH)
    assert r.status_code == 200, r.text
    assert r.json() == {"created": 1, "updated": 0, "deleted": 0, "failed": 0, "errors": [], "error": None}
    assert set(env.google.events(CAL)) == {event_id_for(confirmed)}
    env.google.clear_requests()
    assert (await env.client.post(f"{url}/sync", headers=AUTH)).json()["created"] == 0
    assert env.google.requests == []
    assert (await env.client.get(url, headers=AUTH)).json()["synced_at"] is not None

    r = await env.client.post(f"{base('acme', 'salon')}/bookings/{confirmed}/cancel", headers=AUTH)
    assert r.status_code == 200
    assert (await env.client.post(f"{url}/sync", headers=AUTH)).json()["deleted"] == 1
    assert env.google.events(CAL) == {}

    # Google unreachable / failing: 502 with the message, kept as last_error; the next sync catches up.
    again = await book(env.runtime, "salon", start=at(15), name="Lena", price=0, pay=False)
    env.google.fail_next(503)
    r = await env.client.post(f"{url}/sync", headers=AUTH)
    assert r.status_code == 502 and "503" in r.json()["detail"]["message"] and r.json()["detail"]["failed"] == 1
    assert "503" in (await env.client.get(url, headers=AUTH)).json()["last_error"]
    assert (await env.client.post(f"{url}/sync", headers=AUTH)).json()["created"] == 1
    assert set(env.google.events(CAL)) == {event_id_for(again)}

    r = await env.client.delete(url, headers=AUTH)
    assert r.json() == {"connected": False, "removed": True}
    assert (await env.client.delete(url, headers=AUTH)).json()["removed"] is False
    assert (await env.client.post(f"{url}/sync", headers=AUTH)).status_code == 409


# -- CLI -------------------------------------------------------------------------------------------


@pytest.fixture
def restore_structlog() -> Iterator[None]:
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


def test_cli_list_schedule_feed_url_and_calendar_sync(database_url: str, tmp_path: Path, google: LocalCalendarApi,
                                                      monkeypatch: pytest.MonkeyPatch, restore_structlog: None) -> None:
    env = {"CHATCOMMERCE_DATABASE_URL": database_url, "CHATCOMMERCE_DATA_DIR": str(tmp_path / "data"),
           "CHATCOMMERCE_SECRET_KEY": "test-secret-key", "CHATCOMMERCE_PUBLIC_BASE_URL": "http://testserver"}
    settings = make_settings(database_url, tmp_path / "data")
    runner = CliRunner()
    # Registered the way api.cli registers it; the callback sends logs to stderr as api.cli's does.
    cli = typer.Typer()

    @cli.callback()
    def _main() -> None:
        structlog.configure(logger_factory=lambda *_args: structlog.PrintLogger(sys.stderr))

    cli.add_typer(bookings_app, name="bookings")

    def run(*args: str, ok: bool = True):  # type: ignore[no-untyped-def]
        result = runner.invoke(cli, ["bookings", *args], env=env)
        if ok:
            assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
        return result

    async def create() -> None:
        async with open_runtime(settings) as rt, rt.sessionmaker() as s, s.begin():
            tenant = await create_tenant(s, name="Acme", slug="acme")
            await create_company(s, tenant_id=tenant.id, slug="salon", name="Salon", type="service",
                                 currency="EUR", timezone="Europe/Berlin")

    async def make_bookings() -> tuple[uuid.UUID, uuid.UUID]:
        async with open_runtime(settings) as rt:
            paid = await book(rt, "salon", start=at(10), name="Max", price=4000, pay=True)
            held = await book(rt, "salon", start=at(12), name="Held", price=4000, pay=False)
            return paid, held

    asyncio.run(create())
    schedule = tmp_path / "schedule.json"
    schedule.write_text(json.dumps(OPEN_DAILY))
    saved = json.loads(run("schedule", "set", "--company", "salon", "--file", str(schedule), "--json").stdout)
    assert saved["hours"]["sat"] == ["09:00-18:00"]
    paid, held = asyncio.run(make_bookings())

    shown = json.loads(run("schedule", "show", "--company", "salon").stdout)
    assert shown["hours"]["sun"] == ["09:00-18:00"] and shown["cancel_hours"] == 24
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"hours": {"mon": ["9-5"]}}))
    r = run("schedule", "set", "--company", "salon", "--file", str(bad), ok=False)
    assert r.exit_code == 1 and "hours.mon" in r.stderr
    bad.write_text("{not json")
    assert run("schedule", "set", "--company", "salon", "--file", str(bad), ok=False).exit_code == 1

    listed = json.loads(run("list", "--company", "salon", "--json").stdout)
    assert [b["id"] for b in listed] == [str(paid), str(held)]
    assert [b["id"] for b in json.loads(run("list", "--company", "salon", "--status", "confirmed",
                                            "--json").stdout)] == [str(paid)]
    assert json.loads(run("list", "--company", "salon", "--date", (DAY + timedelta(days=1)).isoformat(),
                          "--json").stdout) == []
    text = run("list", "--company", "salon").stdout
    assert "confirmed\tSvc 4000" in text and "Max" in text
    assert run("list", "--company", "nope", ok=False).exit_code == 1
    assert run("list", "--company", "salon", "--status", "lost", ok=False).exit_code == 1

    url = run("feed-url", "--company", "salon").stdout.strip()
    assert url.startswith("http://testserver/calendar/salon/") and url.endswith(".ics")
    shown_again = run("feed-url", "--company", "salon").stdout.strip()
    assert url not in shown_again and "--rotate" in shown_again  # shown once: only its hash is stored
    rotated = json.loads(run("feed-url", "--company", "salon", "--rotate", "--json").stdout)
    assert rotated["url"] != url and rotated["rotated"] is True

    r = run("calendar-sync", "--company", "salon", ok=False)
    assert r.exit_code == 1 and "no connected Google Calendar" in r.stderr

    async def connect() -> None:
        async with open_runtime(settings) as rt, rt.sessionmaker() as s, s.begin():
            company = (await s.execute(select(Company).where(Company.slug == "salon"))).scalar_one()
            await connect_google_calendar(s, company=company, calendar_id=CAL, encrypt=rt.secret_box.encrypt,
                                          credentials=GoogleCredentials.from_refresh_token(
                                              refresh_token="rt", client_id="salon.apps", client_secret="cs"))

    asyncio.run(connect())
    monkeypatch.setattr(api.cli_bookings, "calendar_client_factory", token_factory(google))
    data = json.loads(run("calendar-sync", "--company", "salon", "--json").stdout)
    assert (data["created"], data["updated"], data["deleted"], data["error"]) == (1, 0, 0, None)
    assert set(google.events(CAL)) == {event_id_for(paid)}
    assert "0 created" in run("calendar-sync", "--company", "salon").stdout
    google.fail_next(503)
    other = asyncio.run(_book_later(settings))
    r = run("calendar-sync", "--company", "salon", ok=False)
    assert r.exit_code == 1 and "503" in r.stderr and event_id_for(other) not in google.events(CAL)


async def _book_later(settings: Settings) -> uuid.UUID:
    async with open_runtime(settings) as rt:
        return await book(rt, "salon", start=at(16), name="Late", price=0, pay=False)
