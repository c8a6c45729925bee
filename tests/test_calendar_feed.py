"""The owner's iCalendar feed, on SQLite and PostgreSQL: secret rotatable token stored only as a hash,
exactly the company's confirmed bookings and chosen delivery windows, parseable by the icalendar library."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from icalendar import Calendar
from sqlalchemy import text

from commerce.bookings import cancel_booking, hold_slot, move_booking, on_order_paid
from commerce.calendar_feed import (
    company_by_feed_token,
    feed_path,
    issue_feed_token,
    render_feed,
    rotate_feed_token,
)
from commerce.delivery import add_delivery_window, choose_window
from commerce.payments import mark_paid
from commerce.schedule import set_schedule
from core.accounts import create_company, create_tenant
from core.models import Company, Contact, KnowledgeItem, Order, OrderLine
from core.security import token_hash

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 3, 10, 7, 0, tzinfo=UTC)
FRIDAY = date(2026, 3, 13)


def at(hh: int, mm: int = 0, day: date = FRIDAY) -> datetime:
    return datetime.combine(day, time(hh, mm), tzinfo=BERLIN).astimezone(UTC)


async def make_company(s, slug: str) -> Company:  # type: ignore[no-untyped-def]
    tenant = await create_tenant(s, name=slug, slug=slug)
    company = await create_company(s, tenant_id=tenant.id, slug=slug, name=slug.title(), type="hybrid",
                                   currency="EUR", timezone="Europe/Berlin")
    await set_schedule(s, company=company, schedule={"hours": {"fri": ["09:00-18:00"]}, "cancel_hours": 24})
    return company


async def service(s, company: Company, name: str, price: int) -> KnowledgeItem:  # type: ignore[no-untyped-def]
    item = KnowledgeItem(tenant_id=company.tenant_id, company_id=company.id, kind="service", name=name,
                         price_minor=price, currency="EUR", duration_minutes=60, attributes={})
    s.add(item)
    await s.flush()
    return item


async def customer(s, company: Company, name: str) -> Contact:  # type: ignore[no-untyped-def]
    contact = Contact(tenant_id=company.tenant_id, company_id=company.id, name=name, phone="+49151")
    s.add(contact)
    await s.flush()
    return contact


def events(feed: bytes) -> dict[str, dict[str, object]]:
    cal = Calendar.from_ical(feed)
    out: dict[str, dict[str, object]] = {}
    for ev in cal.walk("VEVENT"):
        out[str(ev["UID"])] = {"start": ev.decoded("DTSTART"), "end": ev.decoded("DTEND"),
                               "summary": str(ev["SUMMARY"]), "description": str(ev.get("DESCRIPTION", "")),
                               "location": str(ev.get("LOCATION", ""))}
    return out


async def test_feed_has_exactly_the_confirmed_bookings_of_the_company(sessionmaker) -> None:  # type: ignore[no-untyped-def]
    async with sessionmaker() as s, s.begin():
        salon = await make_company(s, "salon")
        other = await make_company(s, "other")
        consult = await service(s, salon, "Consultation", 0)
        cut = await service(s, salon, "Haircut", 4000)
        jane = await customer(s, salon, "Jane Doe")
        free = await hold_slot(s, company=salon, service=consult, start=at(9), now=NOW, contact_id=jane.id)
        paid = await hold_slot(s, company=salon, service=cut, start=at(11), now=NOW, customer_name="Max Mustermann")
        order = await s.get(Order, paid.order_id)
        assert order is not None
        await mark_paid(s, order=order, method="card", paid_at=NOW)
        await on_order_paid(s, order, now=NOW)
        await hold_slot(s, company=salon, service=cut, start=at(14), now=NOW)  # held, unpaid: not in the feed
        gone = await hold_slot(s, company=salon, service=consult, start=at(16), now=NOW)
        await cancel_booking(s, booking=gone, now=NOW)
        await hold_slot(s, company=other, service=await service(s, other, "Massage", 0), start=at(9), now=NOW)

        # A paid product order with a delivery window.
        window = await add_delivery_window(s, company=salon, city="Berlin", start_time="18:00", end_time="20:00")
        shop_order = Order(tenant_id=salon.tenant_id, company_id=salon.id, number=2001, total_minor=2500,
                           currency="EUR", customer_name="Erika", delivery_address="Unter den Linden 1")
        shop_order.lines = [OrderLine(tenant_id=salon.tenant_id, name="Shampoo", quantity=2, unit_price_minor=1250)]
        s.add(shop_order)
        await s.flush()
        await mark_paid(s, order=shop_order, method="card", paid_at=NOW)
        await choose_window(s, order=shop_order, window=window, day=FRIDAY, now=NOW)

        feed = await render_feed(s, company=salon, now=NOW)
        cal = Calendar.from_ical(feed)
        assert str(cal["PRODID"]).startswith("-//chatcommerce")
        got = events(feed)
        assert set(got) == {f"booking-{free.id}@chatcommerce", f"booking-{paid.id}@chatcommerce",
                            f"delivery-{shop_order.id}@chatcommerce"}
        b = got[f"booking-{paid.id}@chatcommerce"]
        assert b["start"] == at(11) and b["end"] == at(12)
        assert b["start"].tzinfo is not None and b["start"].utcoffset().total_seconds() == 0  # type: ignore[union-attr]
        assert b["summary"] == "Haircut — Max Mustermann"
        assert f"Order #{order.number}" in str(b["description"])
        assert got[f"booking-{free.id}@chatcommerce"]["summary"] == "Consultation — Jane Doe"
        d = got[f"delivery-{shop_order.id}@chatcommerce"]
        assert d["start"] == at(18) and "#2001" in str(d["summary"]) and "Unter den Linden 1" in str(d["location"])
        assert "Total: 25.00 EUR" in str(d["description"])  # an English company: en_US

        # The owner's calendar writes money in the company's locale, as the bot does.
        salon.settings = {**(salon.settings or {}), "locale": "de_DE"}
        assert "Total: 25,00 €" in str(events(await render_feed(s, company=salon, now=NOW))[
            f"delivery-{shop_order.id}@chatcommerce"]["description"])
        assert b"DTSTART:20260313T100000Z" in feed  # UTC on the wire

        # Moving a booking keeps its UID; the other company's feed has only its own booking.
        await move_booking(s, booking=free, start=at(10), now=NOW, by="company")
        again = events(await render_feed(s, company=salon, now=NOW))
        assert again[f"booking-{free.id}@chatcommerce"]["start"] == at(10)
        assert len(events(await render_feed(s, company=other, now=NOW))) == 1


async def test_feed_token_is_secret_shown_once_stored_hashed_and_rotatable(sessionmaker) -> None:  # type: ignore[no-untyped-def]
    async with sessionmaker() as s, s.begin():
        salon = await make_company(s, "salon")
        other = await make_company(s, "other")
        issued = await issue_feed_token(s, company=salon)
        token = issued.token
        assert token is not None and len(token) >= 43  # 256 random bits
        again = await issue_feed_token(s, company=salon)
        assert again.token is None and again.issued_at == issued.issued_at  # shown once; the hash cannot give it back
        assert feed_path(salon, token) == f"/calendar/salon/{token}.ics"
        assert (await company_by_feed_token(s, token)).id == salon.id  # type: ignore[union-attr]
        assert (await company_by_feed_token(s, f"{token}.ics", company_slug="salon")).id == salon.id  # type: ignore[union-attr]
        assert await company_by_feed_token(s, token, company_slug="other") is None
        assert await company_by_feed_token(s, token[:-1] + ("A" if token[-1] != "A" else "B")) is None
        assert await company_by_feed_token(s, "") is None
        assert await company_by_feed_token(s, "x" * 10_000) is None
        other_token = (await issue_feed_token(s, company=other)).token
        assert other_token is not None and other_token != token
        assert (await company_by_feed_token(s, other_token)).id == other.id  # type: ignore[union-attr]

        new = await rotate_feed_token(s, company=salon)
        assert new != token
        assert await company_by_feed_token(s, token) is None
        assert (await company_by_feed_token(s, new)).id == salon.id  # type: ignore[union-attr]
        assert (await issue_feed_token(s, company=salon)).token is None

        # The database holds no token, only hashes: no column of calendar_feeds contains one.
        rows = (await s.execute(text("SELECT * FROM calendar_feeds"))).mappings().all()
        assert len(rows) == 2
        stored = " ".join(str(v) for row in rows for v in row.values())
        for secret in (token, new, other_token):
            assert secret not in stored
        assert token_hash(new) in stored and token_hash(other_token) in stored
