"""Google Calendar sync by reconciliation, against ``LocalCalendarApi`` (a local double of the Calendar
API v3 and of Google's token endpoint), on SQLite and PostgreSQL: exactly the right inserts, updates
and deletes, nothing on a second run, other tenants' bookings never sent, safe repetition after a
lost transaction, errors kept for the next run, and the real credential paths (service-account JWT
grant and OAuth refresh token) through the official client library."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from google.oauth2.credentials import Credentials
from sqlalchemy import func, select

from commerce.bookings import cancel_booking, hold_slot, move_booking, on_order_paid
from commerce.calendar_sync import (
    CalendarNotConnected,
    SyncResult,
    connect_google_calendar,
    disconnect_google_calendar,
    event_body,
    event_id_for,
    google_calendar_link,
    sync_all_calendars,
    sync_company_calendar,
)
from commerce.google_calendar import CalendarCredentialsError, GoogleCredentials, google_client_factory
from commerce.payments import mark_paid
from commerce.schedule import set_schedule
from core.accounts import create_company, create_tenant
from core.models import Booking, CalendarEvent, Company, GoogleCalendarLink, KnowledgeItem, Order
from core.security import SecretBox
from tests.doubles.google_calendar_server import LocalCalendarApi, new_service_account_key

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 3, 10, 7, 0, tzinfo=UTC)
FRIDAY = date(2026, 3, 13)
SALON_CAL = "salon@group.calendar.google.com"
OTHER_CAL = "other@group.calendar.google.com"
BOX = SecretBox(key_material="calendar-sync-test-key")


def at(hh: int, mm: int = 0, day: date = FRIDAY) -> datetime:
    return datetime.combine(day, time(hh, mm), tzinfo=BERLIN).astimezone(UTC)


@pytest.fixture
def google() -> Iterator[LocalCalendarApi]:
    with LocalCalendarApi(calendars=(SALON_CAL, OTHER_CAL)) as api:
        yield api


def token_factory(api: LocalCalendarApi, **kwargs: object):  # type: ignore[no-untyped-def]
    """The real factory and client, with a bearer token named after the account instead of the
    service-account/refresh-token exchange (that path has its own test)."""
    return google_client_factory(decrypt=BOX.decrypt, api_root=api.root_url,
                                 credentials=lambda creds: Credentials(token=f"token-{creds.account}"),
                                 num_retries=0, **kwargs)  # type: ignore[arg-type]


def oauth(name: str) -> GoogleCredentials:
    return GoogleCredentials.from_refresh_token(refresh_token=f"rt-{name}", client_id=f"{name}.apps",
                                                client_secret=f"secret-{name}")


def allow(api: LocalCalendarApi, name: str, calendar: str) -> None:
    api.add_token(f"token-{name}.apps", account=f"{name}.apps")
    api.grant(f"{name}.apps", calendar)


async def make_company(s, slug: str) -> Company:  # type: ignore[no-untyped-def]
    tenant = await create_tenant(s, name=slug, slug=slug)
    company = await create_company(s, tenant_id=tenant.id, slug=slug, name=slug.title(), type="service",
                                   currency="EUR", timezone="Europe/Berlin")
    await set_schedule(s, company=company, schedule={"hours": {"fri": ["09:00-18:00"]}, "cancel_hours": 24})
    return company


async def service(s, company: Company, name: str, price: int) -> KnowledgeItem:  # type: ignore[no-untyped-def]
    item = KnowledgeItem(tenant_id=company.tenant_id, company_id=company.id, kind="service", name=name,
                         price_minor=price, currency="EUR", duration_minutes=60, attributes={})
    s.add(item)
    await s.flush()
    return item


async def paid_booking(s, company: Company, item: KnowledgeItem, start: datetime, name: str):  # type: ignore[no-untyped-def]
    booking = await hold_slot(s, company=company, service=item, start=start, now=NOW, customer_name=name)
    order = await s.get(Order, booking.order_id)
    await mark_paid(s, order=order, method="card", paid_at=NOW)
    await on_order_paid(s, order, now=NOW)
    assert booking.status == "confirmed"
    return booking, order


async def sync(s, company: Company, api: LocalCalendarApi, **kwargs: object) -> SyncResult:  # type: ignore[no-untyped-def]
    return await sync_company_calendar(s, company=company, client_factory=token_factory(api), now=NOW,
                                       **kwargs)  # type: ignore[arg-type]


def calls(api: LocalCalendarApi) -> list[tuple[str, str | None, str | None]]:
    return [(r.method, r.calendar_id, r.event_id) for r in api.calendar_requests()]


async def test_sync_creates_updates_deletes_exactly_and_is_idempotent(sessionmaker, google) -> None:  # type: ignore[no-untyped-def]
    async with sessionmaker() as s, s.begin():
        salon = await make_company(s, "salon")
        other = await make_company(s, "other")
        consult = await service(s, salon, "Consultation", 0)
        cut = await service(s, salon, "Haircut", 4000)
        free = await hold_slot(s, company=salon, service=consult, start=at(9), now=NOW, customer_name="Jane Doe")
        paid, order = await paid_booking(s, salon, cut, at(11), "Max Mustermann")
        await hold_slot(s, company=salon, service=cut, start=at(14), now=NOW)  # held, unpaid: no event
        gone = await hold_slot(s, company=salon, service=consult, start=at(16), now=NOW)
        await cancel_booking(s, booking=gone, now=NOW)  # cancelled before any sync: no event
        massage = await service(s, other, "Massage", 0)
        theirs = await hold_slot(s, company=other, service=massage, start=at(9), now=NOW, customer_name="Eve")
        await connect_google_calendar(s, company=salon, calendar_id=SALON_CAL, credentials=oauth("salon"),
                                      encrypt=BOX.encrypt)
        await connect_google_calendar(s, company=other, calendar_id=OTHER_CAL, credentials=oauth("other"),
                                      encrypt=BOX.encrypt)
        allow(google, "salon", SALON_CAL)
        allow(google, "other", OTHER_CAL)

        result = await sync(s, salon, google)
        assert result == SyncResult(created=2)
        assert calls(google) == [("POST", SALON_CAL, None), ("POST", SALON_CAL, None)]
        events = google.events(SALON_CAL)
        assert set(events) == {event_id_for(free.id), event_id_for(paid.id)}
        ev = events[event_id_for(paid.id)]
        assert ev["summary"] == "Haircut — Max Mustermann"
        assert ev["start"] == {"dateTime": "2026-03-13T10:00:00Z", "timeZone": "Europe/Berlin"}
        assert ev["end"] == {"dateTime": "2026-03-13T11:00:00Z", "timeZone": "Europe/Berlin"}
        assert f"Order #{order.number}" in ev["description"] and f"Booking {paid.id}" in ev["description"]
        assert ev["extendedProperties"]["private"] == {"booking_id": str(paid.id), "company": "salon"}
        assert all(r.query.get("sendUpdates") == "none" for r in google.calendar_requests())
        assert all(r.headers["authorization"] == "Bearer token-salon.apps" for r in google.calendar_requests())
        assert google.events(OTHER_CAL) == {}

        # Nothing changed: no request at all.
        google.clear_requests()
        assert await sync(s, salon, google) == SyncResult()
        assert google.requests == []

        # Move one, cancel one, confirm a new one: one update, one delete, one insert.
        await move_booking(s, booking=free, start=at(10), now=NOW, by="company")
        await cancel_booking(s, booking=paid, now=NOW, by="company")
        late = await hold_slot(s, company=salon, service=consult, start=at(15), now=NOW, customer_name="Lena")
        result = await sync(s, salon, google)
        assert result == SyncResult(created=1, updated=1, deleted=1)
        assert sorted(calls(google)) == sorted([("PUT", SALON_CAL, event_id_for(free.id)),
                                                ("DELETE", SALON_CAL, event_id_for(paid.id)),
                                                ("POST", SALON_CAL, None)])
        events = google.events(SALON_CAL)
        assert set(events) == {event_id_for(free.id), event_id_for(late.id)}
        assert events[event_id_for(free.id)]["start"]["dateTime"] == "2026-03-13T09:00:00Z"
        assert google.events(SALON_CAL, include_cancelled=True)[event_id_for(paid.id)]["status"] == "cancelled"
        mapped = (await s.execute(select(CalendarEvent).where(CalendarEvent.booking_id == free.id))).scalar_one()
        assert mapped.start_at == at(10) and mapped.end_at == at(11) and mapped.status == "confirmed"

        google.clear_requests()
        assert await sync(s, salon, google) == SyncResult()
        assert google.requests == []

        # The other tenant's company: only its own booking, only in its own calendar.
        assert await sync(s, other, google) == SyncResult(created=1)
        assert set(google.events(OTHER_CAL)) == {event_id_for(theirs.id)}
        assert {r.calendar_id for r in google.calendar_requests()} == {OTHER_CAL}
        assert event_id_for(theirs.id) not in google.events(SALON_CAL)
        salon_rows = (await s.execute(select(CalendarEvent.booking_id).where(
            CalendarEvent.company_id == salon.id))).scalars().all()
        assert set(salon_rows) == {free.id, late.id}


async def test_credentials_are_encrypted_and_the_link_is_per_company(sessionmaker) -> None:  # type: ignore[no-untyped-def]
    async with sessionmaker() as s, s.begin():
        salon = await make_company(s, "salon")
        other = await make_company(s, "other")
        link = await connect_google_calendar(s, company=salon, calendar_id=" primary ", credentials=oauth("salon"),
                                             encrypt=BOX.encrypt)
        assert link.calendar_id == "primary" and link.auth_kind == "oauth" and link.account == "salon.apps"
        assert "rt-salon" not in link.credentials and "secret-salon" not in link.credentials
        assert GoogleCredentials.from_json(BOX.decrypt(link.credentials)) == oauth("salon")
        assert await google_calendar_link(s, company=other) is None
        with pytest.raises(CalendarNotConnected):
            await sync_company_calendar(s, company=other, client_factory=lambda _link: pytest.fail("no client"),
                                        now=NOW)
        with pytest.raises(ValueError):
            await connect_google_calendar(s, company=salon, calendar_id="a/b", credentials=oauth("x"),
                                          encrypt=BOX.encrypt)
        assert await disconnect_google_calendar(s, company=salon) is True
        assert await disconnect_google_calendar(s, company=salon) is False
        assert (await s.execute(select(func.count()).select_from(GoogleCalendarLink))).scalar_one() == 0

    with pytest.raises(CalendarCredentialsError):
        GoogleCredentials.from_service_account_key({"type": "service_account", "client_email": "a@b",
                                                    "private_key": "not a key"})
    with pytest.raises(CalendarCredentialsError):
        GoogleCredentials.from_service_account_key({"type": "authorized_user"})
    with pytest.raises(CalendarCredentialsError):
        GoogleCredentials.from_refresh_token(refresh_token="", client_id="x", client_secret="y")


async def test_service_account_and_refresh_token_paths_against_the_token_endpoint(sessionmaker, google) -> None:  # type: ignore[no-untyped-def]
    key, public = new_service_account_key(client_email="sync@shop.iam.gserviceaccount.com",
                                          token_uri="https://oauth2.googleapis.com/token")
    google.register_service_account(key["client_email"], public)
    google.grant(key["client_email"], SALON_CAL)
    google.register_oauth_client(client_id="owner.apps", client_secret="s3cret", refresh_token="1//good",
                                 account="owner@gmail.com")
    google.grant("owner@gmail.com", OTHER_CAL)
    # The production credential builders; only the endpoints point at the double.
    factory = google_client_factory(decrypt=BOX.decrypt, api_root=google.root_url, token_uri=google.token_uri,
                                    num_retries=0)
    async with sessionmaker() as s, s.begin():
        salon = await make_company(s, "salon")
        other = await make_company(s, "other")
        b1 = await hold_slot(s, company=salon, service=await service(s, salon, "Cut", 0), start=at(9), now=NOW)
        b2 = await hold_slot(s, company=other, service=await service(s, other, "Nails", 0), start=at(9), now=NOW)
        await connect_google_calendar(s, company=salon, calendar_id=SALON_CAL, encrypt=BOX.encrypt,
                                      credentials=GoogleCredentials.from_service_account_key(key))
        await connect_google_calendar(s, company=other, calendar_id=OTHER_CAL, encrypt=BOX.encrypt,
                                      credentials=GoogleCredentials.from_refresh_token(
                                          refresh_token="1//revoked", client_id="owner.apps", client_secret="s3cret"))

        results = {slug: r for slug, r in [
            ("salon", await sync_company_calendar(s, company=salon, client_factory=factory, now=NOW)),
            ("other", await sync_company_calendar(s, company=other, client_factory=factory, now=NOW))]}
        assert results["salon"] == SyncResult(created=1)
        assert set(google.events(SALON_CAL)) == {event_id_for(b1.id)}
        grants = [r.body["grant_type"] for r in google.requests if r.path == "/token"]
        assert grants == ["urn:ietf:params:oauth:grant-type:jwt-bearer", "refresh_token"]
        # The revoked refresh token: a fatal error, kept on the link; nothing recorded as synced.
        bad = results["other"]
        assert bad.created == 0 and bad.failed == 1 and bad.error and "invalid_grant" in bad.error
        link = await google_calendar_link(s, company=other)
        assert link is not None and link.last_error == bad.error
        assert (await s.execute(select(func.count()).select_from(CalendarEvent).where(
            CalendarEvent.company_id == other.id))).scalar_one() == 0

        await connect_google_calendar(s, company=other, calendar_id=OTHER_CAL, encrypt=BOX.encrypt,
                                      credentials=GoogleCredentials.from_refresh_token(
                                          refresh_token="1//good", client_id="owner.apps", client_secret="s3cret"))
        assert (await sync_company_calendar(s, company=other, client_factory=factory, now=NOW)).created == 1
        assert set(google.events(OTHER_CAL)) == {event_id_for(b2.id)}
        assert (await google_calendar_link(s, company=other)).last_error is None  # type: ignore[union-attr]


async def test_a_lost_transaction_is_repeated_without_duplicates(sessionmaker, google) -> None:  # type: ignore[no-untyped-def]
    allow(google, "salon", SALON_CAL)
    async with sessionmaker() as s, s.begin():
        salon = await make_company(s, "salon")
        item = await service(s, salon, "Cut", 0)
        keep = await hold_slot(s, company=salon, service=item, start=at(9), now=NOW, customer_name="A")
        drop = await hold_slot(s, company=salon, service=item, start=at(11), now=NOW, customer_name="B")
        await connect_google_calendar(s, company=salon, calendar_id=SALON_CAL, credentials=oauth("salon"),
                                      encrypt=BOX.encrypt)
    async with sessionmaker() as s:
        company = await s.get(Company, salon.id)
        assert await sync(s, company, google) == SyncResult(created=2)
        await s.rollback()  # Google has the events, the database forgot them
    async with sessionmaker() as s, s.begin():
        company = await s.get(Company, salon.id)
        google.clear_requests()
        assert await sync(s, company, google) == SyncResult(created=2)
        # Each insert hit 409 duplicate and became an update of the same id: still two events.
        assert sorted(r.status for r in google.calendar_requests()) == [200, 200, 409, 409]
        assert set(google.events(SALON_CAL)) == {event_id_for(keep.id), event_id_for(drop.id)}
        await cancel_booking(s, booking=drop, now=NOW, by="company")
    async with sessionmaker() as s:
        company = await s.get(Company, salon.id)
        assert await sync(s, company, google) == SyncResult(deleted=1)
        await s.rollback()
    async with sessionmaker() as s, s.begin():
        company = await s.get(Company, salon.id)
        google.clear_requests()
        assert await sync(s, company, google) == SyncResult(deleted=1)  # 410 Gone: already deleted
        assert [r.status for r in google.calendar_requests()] == [410]
        assert await sync(s, company, google) == SyncResult()


async def test_failures_are_reported_and_retried_next_run(sessionmaker, google) -> None:  # type: ignore[no-untyped-def]
    allow(google, "salon", SALON_CAL)
    async with sessionmaker() as s, s.begin():
        salon = await make_company(s, "salon")
        item = await service(s, salon, "Cut", 0)
        for hh in (9, 11, 13):
            await hold_slot(s, company=salon, service=item, start=at(hh), now=NOW)
        await connect_google_calendar(s, company=salon, calendar_id=SALON_CAL, credentials=oauth("salon"),
                                      encrypt=BOX.encrypt)
        google.fail_next(400, method="POST", reason="invalid")
        result = await sync(s, salon, google)
        assert (result.created, result.failed, result.error) == (2, 1, None)
        assert len(result.errors) == 1 and "invalid" in result.errors[0]
        assert (await google_calendar_link(s, company=salon)).last_error == result.errors[0]  # type: ignore[union-attr]
        assert await sync(s, salon, google) == SyncResult(created=1)
        assert len(google.events(SALON_CAL)) == 3

        # A fatal error (Google down) stops the run; everything left is retried later.
        for hh in (10, 12):
            await hold_slot(s, company=salon, service=item, start=at(hh, 0, FRIDAY + timedelta(days=7)), now=NOW)
        google.fail_next(503)
        google.clear_requests()
        result = await sync(s, salon, google)
        assert (result.created, result.failed) == (0, 2) and result.error and "503" in result.error
        assert len(google.calendar_requests()) == 1
        assert await sync(s, salon, google) == SyncResult(created=2)

        # No write access to the calendar: 403 is fatal too.
        await connect_google_calendar(s, company=salon, calendar_id=OTHER_CAL, credentials=oauth("salon"),
                                      encrypt=BOX.encrypt)
        result = await sync(s, salon, google)
        assert result.created == 0 and result.failed == 5 and "403" in (result.error or "")


async def test_changing_calendar_recreates_events_there_and_sync_all(sessionmaker, google) -> None:  # type: ignore[no-untyped-def]
    allow(google, "salon", SALON_CAL)
    google.grant("salon.apps", OTHER_CAL)
    async with sessionmaker() as s, s.begin():
        salon = await make_company(s, "salon")
        quiet = await make_company(s, "quiet")  # connected, no bookings
        item = await service(s, salon, "Cut", 0)
        booking = await hold_slot(s, company=salon, service=item, start=at(9), now=NOW)
        await connect_google_calendar(s, company=salon, calendar_id=SALON_CAL, credentials=oauth("salon"),
                                      encrypt=BOX.encrypt)
        await connect_google_calendar(s, company=quiet, calendar_id=SALON_CAL, credentials=oauth("salon"),
                                      encrypt=BOX.encrypt)
        await make_company(s, "unlinked")
    results = await sync_all_calendars(sessionmaker, client_factory=token_factory(google), now=NOW)
    assert results == {"salon": SyncResult(created=1), "quiet": SyncResult()}
    async with sessionmaker() as s, s.begin():
        company = await s.get(Company, salon.id)
        await connect_google_calendar(s, company=company, calendar_id=OTHER_CAL, credentials=oauth("salon"),
                                      encrypt=BOX.encrypt)
    results = await sync_all_calendars(sessionmaker, client_factory=token_factory(google), now=NOW)
    assert results["salon"] == SyncResult(created=1)
    assert set(google.events(OTHER_CAL)) == {event_id_for(booking.id)}
    assert set(google.events(SALON_CAL)) == {event_id_for(booking.id)}  # left in the old calendar
    assert (await sync_all_calendars(sessionmaker, client_factory=token_factory(google), now=NOW))["salon"] == \
        SyncResult()


def test_event_body_writes_the_prepayment_in_the_company_locale() -> None:
    start = datetime(2026, 3, 13, 10, tzinfo=UTC)
    booking = Booking(id=uuid.uuid4(), service_name="Стрижка", resource_name="Ольга", customer_name="Анна",
                      prepay_minor=102000, currency="RUB", start_at=start, end_at=start + timedelta(hours=1))
    ru = Company(slug="lada", name="Лада", language="ru", currency="RUB", timezone="Europe/Moscow", settings={})
    assert "Prepaid: 1 020,00 ₽" in event_body(booking, company=ru, order_number=7)["description"]
    ru.settings = {"locale": "en_US"}
    assert "Prepaid: 1,020.00 RUB" in event_body(booking, company=ru, order_number=7)["description"]
