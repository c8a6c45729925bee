"""Bookings of a service company (a hair salon), on SQLite and PostgreSQL: free slots (hours, breaks,
days off, timezones and DST), holds and their expiry, prepayment through the ordinary order/payment
path, double booking refused by the database, cancellation rules and moves."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from commerce.bookings import (
    BookingStateError,
    SlotTaken,
    SlotUnavailable,
    TooLateToChange,
    cancel_booking,
    hold_slot,
    move_booking,
    on_order_paid,
    on_payment_failed_or_expired,
    prepayment_minor,
    release_expired_holds,
)
from commerce.payments import issue_payment_link, mark_paid
from commerce.providers import ProviderRegistry
from commerce.schedule import (
    NotBookable,
    Schedule,
    ScheduleError,
    free_slots,
    set_schedule,
)
from core.accounts import create_company, create_tenant, inbox_of_kind
from core.db import create_engine, create_sessionmaker
from core.models import (
    Booking,
    BookingSlot,
    Company,
    Contact,
    Conversation,
    KnowledgeItem,
    Message,
    Order,
    Resource,
)

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
TUESDAY = date(2026, 3, 10)
# 08:00 in Berlin on Tuesday 10 March 2026 (CET, UTC+1)
NOW = datetime(2026, 3, 10, 7, 0, tzinfo=UTC)

SALON_SCHEDULE = {
    "hours": {"mon": ["09:00-18:00"], "tue": ["09:00-18:00"], "wed": ["09:00-18:00"], "thu": ["09:00-18:00"],
              "fri": ["09:00-18:00"], "sat": ["10:00-14:00"], "sun": []},
    "breaks": ["13:00-14:00"],
    "days_off": ["2026-03-12"],
    "slot_step_minutes": 30,
    "hold_minutes": 15,
    "cancel_hours": 24,
}


def berlin(day: date, hh: int, mm: int = 0) -> datetime:
    return datetime.combine(day, time(hh, mm), tzinfo=BERLIN).astimezone(UTC)


def local_times(slots, tz=BERLIN) -> list[str]:  # type: ignore[no-untyped-def]
    return [s.start.astimezone(tz).strftime("%H:%M") for s in slots]


async def make_salon(s, *, slug: str = "salon", tz: str = "Europe/Berlin", schedule=None):  # type: ignore[no-untyped-def]
    tenant = await create_tenant(s, name=slug.title(), slug=slug)
    company = await create_company(s, tenant_id=tenant.id, slug=slug, name=f"{slug.title()} Hair", type="service",
                                   currency="EUR", timezone=tz)
    await set_schedule(s, company=company, schedule=schedule or SALON_SCHEDULE)
    return company


async def add_service(s, company: Company, *, name: str = "Haircut", price: int | None = 4000, minutes: int = 60,
                      **attributes) -> KnowledgeItem:  # type: ignore[no-untyped-def]
    item = KnowledgeItem(tenant_id=company.tenant_id, company_id=company.id, kind="service", name=name,
                         price_minor=price, currency="EUR", duration_minutes=minutes, attributes=attributes)
    s.add(item)
    await s.flush()
    return item


async def add_customer(s, company: Company, name: str = "Jane Doe") -> tuple[Contact, Conversation]:  # type: ignore[no-untyped-def]
    contact = Contact(tenant_id=company.tenant_id, company_id=company.id, name=name, phone="+4915100000")
    s.add(contact)
    await s.flush()
    inbox = await inbox_of_kind(s, company, "webchat")
    conversation = Conversation(tenant_id=company.tenant_id, company_id=company.id, inbox_id=inbox.id,
                                contact_id=contact.id, state={})
    s.add(conversation)
    await s.flush()
    return contact, conversation


async def test_slots_follow_opening_hours_breaks_and_days_off(sessionmaker) -> None:  # type: ignore[no-untyped-def]
    async with sessionmaker() as s, s.begin():
        salon = await make_salon(s)
        cut = await add_service(s, salon)
        slots = await free_slots(s, company=salon, service=cut, day=TUESDAY, now=NOW)
        # 60-minute haircut, 30-minute steps, lunch 13:00-14:00, closing 18:00
        assert local_times(slots) == ["09:00", "09:30", "10:00", "10:30", "11:00", "11:30", "12:00",
                                      "14:00", "14:30", "15:00", "15:30", "16:00", "16:30", "17:00"]
        assert all(s_.end - s_.start == timedelta(minutes=60) for s_ in slots)
        assert all(s_.start.tzinfo is not None and s_.start.utcoffset() == timedelta(0) for s_ in slots)
        assert slots[0].start == datetime(2026, 3, 10, 8, 0, tzinfo=UTC)  # 09:00 CET
        assert slots[0].resource_name == "Salon Hair"  # the default resource

        afternoon = await free_slots(s, company=salon, service=cut, day=TUESDAY, part_of_day="afternoon", now=NOW)
        assert local_times(afternoon) == ["12:00", "14:00", "14:30", "15:00", "15:30", "16:00", "16:30"]
        morning = await free_slots(s, company=salon, service=cut, day=TUESDAY, part_of_day="morning", now=NOW)
        assert local_times(morning)[-1] == "11:30"
        evening = await free_slots(s, company=salon, service=cut, day=TUESDAY, part_of_day="evening", now=NOW)
        assert local_times(evening) == ["17:00"]
        after3 = await free_slots(s, company=salon, service=cut, day=TUESDAY, after=time(15, 0), now=NOW)
        assert local_times(after3) == ["15:00", "15:30", "16:00", "16:30", "17:00"]

        # Later that morning the past is gone.
        late_now = berlin(TUESDAY, 10, 10)
        assert local_times(await free_slots(s, company=salon, service=cut, day=TUESDAY, now=late_now))[0] == "10:30"
        # Thursday 12 March is a day off, Sunday is closed, Saturday has short hours, yesterday is gone.
        assert await free_slots(s, company=salon, service=cut, day=date(2026, 3, 12), now=NOW) == []
        assert await free_slots(s, company=salon, service=cut, day=date(2026, 3, 15), now=NOW) == []
        assert local_times(await free_slots(s, company=salon, service=cut, day=date(2026, 3, 14), now=NOW)) == [
            "10:00", "10:30", "11:00", "11:30", "12:00"]
        assert await free_slots(s, company=salon, service=cut, day=date(2026, 3, 9), now=NOW) == []


async def test_slots_on_dst_change_days(sessionmaker) -> None:  # type: ignore[no-untyped-def]
    async with sessionmaker() as s, s.begin():
        berlin_salon = await make_salon(s, schedule={**SALON_SCHEDULE, "hours": {"sat": ["09:00-12:00"],
                                                                                  "sun": ["09:00-12:00"]}})
        cut = await add_service(s, berlin_salon)
        sat = await free_slots(s, company=berlin_salon, service=cut, day=date(2026, 3, 28), now=NOW)
        sun = await free_slots(s, company=berlin_salon, service=cut, day=date(2026, 3, 29), now=NOW)
        # Same wall-clock times, but the clocks went forward in the night to Sunday 29 March.
        assert local_times(sat) == local_times(sun) == ["09:00", "09:30", "10:00", "10:30", "11:00"]
        assert sat[0].start == datetime(2026, 3, 28, 8, 0, tzinfo=UTC)  # CET, UTC+1
        assert sun[0].start == datetime(2026, 3, 29, 7, 0, tzinfo=UTC)  # CEST, UTC+2

        # A night-time business in New York on 8 March 2026: 02:00-02:59 does not exist that night.
        night = await make_salon(s, slug="night", tz="America/New_York",
                                 schedule={"hours": {"sat": ["00:00-05:00"], "sun": ["00:00-05:00"]},
                                           "slot_step_minutes": 30})
        nap = await add_service(s, night, name="Nap", minutes=30)
        now = datetime(2026, 3, 1, tzinfo=UTC)
        before = await free_slots(s, company=night, service=nap, day=date(2026, 3, 7), now=now)
        change = await free_slots(s, company=night, service=nap, day=date(2026, 3, 8), now=now)
        assert len(before) == 10
        assert local_times(change, NEW_YORK) == ["00:00", "00:30", "01:00", "01:30", "03:00", "03:30", "04:00",
                                                 "04:30"]
        assert all(x.end - x.start == timedelta(minutes=30) for x in change)
        assert change[3].end == change[4].start  # 01:30 EST + 30 min is 03:00 EDT
        assert change[0].start == datetime(2026, 3, 8, 5, 0, tzinfo=UTC)
        assert change[-1].start == datetime(2026, 3, 8, 8, 30, tzinfo=UTC)


async def test_staff_and_capacity(sessionmaker) -> None:  # type: ignore[no-untyped-def]
    async with sessionmaker() as s, s.begin():
        salon = await make_salon(s)
        for i, name in enumerate(["Anna", "Boris"]):
            s.add(Resource(tenant_id=salon.tenant_id, company_id=salon.id, name=name, capacity=1, position=i + 1))
        s.add(Resource(tenant_id=salon.tenant_id, company_id=salon.id, name="Nail table", capacity=2, position=3))
        await s.flush()
        colour = await add_service(s, salon, name="Colouring", staff="Anna", price=0)
        nails = await add_service(s, salon, name="Manicure", resources=["nail table"], price=0)
        slots = await free_slots(s, company=salon, service=colour, day=TUESDAY, now=NOW)
        assert {x.resource_name for x in slots} == {"Anna"}
        # An owner's sheet names several people in one cell ("Staff: Anna, Boris").
        cut = await add_service(s, salon, name="Haircut", staff="Anna, Boris", price=0)
        slots = await free_slots(s, company=salon, service=cut, day=TUESDAY, now=NOW)
        assert {x.resource_name for x in slots} == {"Anna", "Boris"}

        ten = berlin(TUESDAY, 10)
        first = await hold_slot(s, company=salon, service=nails, start=ten, now=NOW)
        second = await hold_slot(s, company=salon, service=nails, start=ten, now=NOW)
        assert first.status == second.status == "confirmed"
        assert ten not in [x.start for x in await free_slots(s, company=salon, service=nails, day=TUESDAY, now=NOW)]
        with pytest.raises(SlotTaken):
            await hold_slot(s, company=salon, service=nails, start=ten, now=NOW)
        # Overlapping, not identical: 10:30 overlaps both 10:00-11:00 manicures.
        with pytest.raises(SlotTaken):
            await hold_slot(s, company=salon, service=nails, start=berlin(TUESDAY, 10, 30), now=NOW)
        assert (await hold_slot(s, company=salon, service=nails, start=berlin(TUESDAY, 11), now=NOW)).status == \
            "confirmed"


async def test_unbookable_requests_are_refused(sessionmaker) -> None:  # type: ignore[no-untyped-def]
    async with sessionmaker() as s, s.begin():
        salon = await make_salon(s)
        cut = await add_service(s, salon)
        other = await make_salon(s, slug="other")
        foreign = await add_service(s, other)
        with pytest.raises(SlotUnavailable):  # lunch break
            await hold_slot(s, company=salon, service=cut, start=berlin(TUESDAY, 13), now=NOW)
        with pytest.raises(SlotUnavailable):  # off the 30-minute grid
            await hold_slot(s, company=salon, service=cut, start=berlin(TUESDAY, 10, 15), now=NOW)
        with pytest.raises(SlotUnavailable):  # in the past
            await hold_slot(s, company=salon, service=cut, start=berlin(TUESDAY, 9), now=berlin(TUESDAY, 9, 30))
        with pytest.raises(NotBookable):  # another tenant's service
            await hold_slot(s, company=salon, service=foreign, start=berlin(TUESDAY, 10), now=NOW)
        with pytest.raises(ScheduleError):
            Schedule.from_settings({"hours": {"monday-ish": ["09:00-18:00"]}})
        with pytest.raises(ScheduleError):
            Schedule.from_settings({"hours": {"mon": ["18:00-09:00"]}})
        assert (await s.execute(select(func.count()).select_from(Booking))).scalar_one() == 0


async def test_hold_hides_the_slot_until_it_expires(sessionmaker) -> None:  # type: ignore[no-untyped-def]
    async with sessionmaker() as s, s.begin():
        salon = await make_salon(s)
        cut = await add_service(s, salon)
        contact, conversation = await add_customer(s, salon)
        ten = berlin(TUESDAY, 10)
        booking = await hold_slot(s, company=salon, service=cut, start=ten, now=NOW, contact_id=contact.id,
                                  conversation_id=conversation.id)
        assert booking.status == "held"
        assert booking.hold_expires_at == NOW + timedelta(minutes=15)
        assert booking.customer_name == "Jane Doe"
        starts = [x.start for x in await free_slots(s, company=salon, service=cut, day=TUESDAY, now=NOW)]
        # 10:00-11:00 is held, so 09:30 (ends 10:30) and 10:30 (starts inside) are gone as well.
        assert ten not in starts and berlin(TUESDAY, 9, 30) not in starts and berlin(TUESDAY, 10, 30) not in starts
        assert berlin(TUESDAY, 9) in starts and berlin(TUESDAY, 11) in starts
        with pytest.raises(SlotTaken):
            await hold_slot(s, company=salon, service=cut, start=ten, now=NOW + timedelta(minutes=5))

        later = NOW + timedelta(minutes=16)
        assert ten in [x.start for x in await free_slots(s, company=salon, service=cut, day=TUESDAY, now=later)]
        assert await release_expired_holds(s, now=later) == 1
        await s.refresh(booking)
        assert booking.status == "released" and booking.release_reason == "hold_expired"
        assert (await s.execute(select(func.count()).select_from(BookingSlot))).scalar_one() == 0
        # Someone else can take it now.
        again = await hold_slot(s, company=salon, service=cut, start=ten, now=later)
        assert again.status == "held"


async def test_payment_failure_frees_the_slot(sessionmaker) -> None:  # type: ignore[no-untyped-def]
    async with sessionmaker() as s, s.begin():
        salon = await make_salon(s)
        cut = await add_service(s, salon)
        ten = berlin(TUESDAY, 10)
        booking = await hold_slot(s, company=salon, service=cut, start=ten, now=NOW)
        order = await s.get(Order, booking.order_id)
        assert order is not None
        released = await on_payment_failed_or_expired(s, order=order, now=NOW + timedelta(minutes=2))
        assert [b.id for b in released] == [booking.id]
        assert booking.status == "released" and booking.release_reason == "payment_failed"
        assert ten in [x.start for x in await free_slots(s, company=salon, service=cut, day=TUESDAY,
                                                         now=NOW + timedelta(minutes=2))]


async def test_prepaid_booking_is_confirmed_only_when_paid(sessionmaker) -> None:  # type: ignore[no-untyped-def]
    async with sessionmaker() as s, s.begin():
        salon = await make_salon(s)
        cut = await add_service(s, salon, price=4000, prepay_percent=25)
        contact, conversation = await add_customer(s, salon)
        booking = await hold_slot(s, company=salon, service=cut, start=berlin(TUESDAY, 15), now=NOW,
                                  contact_id=contact.id, conversation_id=conversation.id)
        assert booking.status == "held" and booking.prepay_minor == 1000 and booking.currency == "EUR"
        order = await s.get(Order, booking.order_id)
        assert order is not None
        assert (order.total_minor, order.currency, order.status, order.number) == (1000, "EUR", "pending_payment",
                                                                                   1001)
        assert order.lines[0].item_id == cut.id and "Haircut" in order.lines[0].name
        assert "15:00" in (order.lines[0].variant or "")

        registry = ProviderRegistry.default(public_base_url="https://shop.example")
        payment = await issue_payment_link(s, order=order, company=salon, providers=registry)
        assert payment.amount_minor == 1000
        assert booking.status == "held"  # a link is not a payment

        assert await mark_paid(s, order=order, method="test", paid_at=NOW + timedelta(minutes=3))
        await on_order_paid(s, order, now=NOW + timedelta(minutes=3))
        await s.refresh(booking)
        assert booking.status == "confirmed" and booking.hold_expires_at is None
        assert await on_order_paid(s, order)  # idempotent
        texts = (await s.execute(select(Message.text).where(Message.conversation_id == conversation.id)
                                 .order_by(Message.seq))).scalars().all()
        assert any("confirmed" in t and "Haircut" in t and "15:00" in t for t in texts)
        # A confirmed booking does not expire.
        assert await release_expired_holds(s, now=NOW + timedelta(hours=5)) == 0
        assert berlin(TUESDAY, 15) not in [x.start for x in await free_slots(
            s, company=salon, service=cut, day=TUESDAY, now=NOW + timedelta(hours=5))]


async def test_free_service_is_confirmed_at_once(sessionmaker) -> None:  # type: ignore[no-untyped-def]
    async with sessionmaker() as s, s.begin():
        salon = await make_salon(s)
        consult = await add_service(s, salon, name="Consultation", price=0, minutes=15)
        on_site = await add_service(s, salon, name="Beard trim", price=1500, minutes=30, prepay_percent=0)
        booking = await hold_slot(s, company=salon, service=consult, start=berlin(TUESDAY, 9), now=NOW)
        assert (booking.status, booking.order_id, booking.hold_expires_at) == ("confirmed", None, None)
        trim = await hold_slot(s, company=salon, service=on_site, start=berlin(TUESDAY, 11), now=NOW)
        assert trim.status == "confirmed" and trim.prepay_minor == 0 and trim.price_minor == 1500
        assert (await s.execute(select(func.count()).select_from(Order))).scalar_one() == 0
        assert await release_expired_holds(s, now=NOW + timedelta(days=1)) == 0


def test_prepayment_amounts() -> None:
    schedule = Schedule.from_settings({})
    item = KnowledgeItem(name="Colour", price_minor=9999, currency="EUR", attributes={})
    assert prepayment_minor(item, schedule) == 9999
    item.attributes = {"prepay_percent": 50}
    assert prepayment_minor(item, schedule) == 5000  # 4999.5 rounds half up
    item.attributes = {"prepay_minor": 2000}
    assert prepayment_minor(item, schedule) == 2000
    item.attributes = {"prepay_minor": 20000}
    assert prepayment_minor(item, schedule) == 9999
    assert prepayment_minor(item, Schedule.from_settings({"prepay_percent": 0})) == 9999
    item.attributes = {}
    assert prepayment_minor(item, Schedule.from_settings({"prepay_percent": 0})) == 0


async def test_payment_after_the_hold_expired(sessionmaker) -> None:  # type: ignore[no-untyped-def]
    async with sessionmaker() as s, s.begin():
        salon = await make_salon(s)
        cut = await add_service(s, salon)
        contact, conversation = await add_customer(s, salon)
        ten, eleven = berlin(TUESDAY, 10), berlin(TUESDAY, 11)
        late = await hold_slot(s, company=salon, service=cut, start=ten, now=NOW, conversation_id=conversation.id)
        lucky = await hold_slot(s, company=salon, service=cut, start=eleven, now=NOW)
        later = NOW + timedelta(minutes=30)
        assert await release_expired_holds(s, now=later) == 2
        # Someone else takes 10:00; nobody takes 11:00.
        await hold_slot(s, company=salon, service=cut, start=ten, now=later)
        for booking in (late, lucky):
            order = await s.get(Order, booking.order_id)
            assert order is not None
            await mark_paid(s, order=order, method="test", paid_at=later)
            await on_order_paid(s, order, now=later)
        assert (late.status, late.refund_due, late.release_reason) == ("released", True, "slot_lost")
        assert (lucky.status, lucky.refund_due) == ("confirmed", False)
        texts = (await s.execute(select(Message.text).where(Message.conversation_id == conversation.id))).scalars()
        assert any("refund" in t for t in texts)


async def test_twenty_concurrent_holds_on_one_slot(database_url: str) -> None:
    """20 customers press "book 10:00" at once, each in its own session and transaction: exactly one
    gets the slot, the others get SlotTaken, and the database holds one booking and one order."""
    engine = create_engine(database_url, pool_size=20, max_overflow=5)
    sm = create_sessionmaker(engine)
    try:
        async with sm() as s, s.begin():
            salon = await make_salon(s)
            cut = await add_service(s, salon)
        ten = berlin(TUESDAY, 10)

        async def attempt() -> str:
            try:
                async with sm() as s, s.begin():
                    company = await s.get(Company, salon.id)
                    service = await s.get(KnowledgeItem, cut.id)
                    assert company is not None and service is not None
                    await hold_slot(s, company=company, service=service, start=ten, now=NOW)
                return "booked"
            except SlotTaken:
                return "taken"

        results = await asyncio.gather(*(attempt() for _ in range(20)))
        assert sorted(results).count("booked") == 1
        assert results.count("taken") == 19
        async with sm() as s:
            assert (await s.execute(select(func.count()).select_from(Booking))).scalar_one() == 1
            assert (await s.execute(select(func.count()).select_from(Order))).scalar_one() == 1
            assert (await s.execute(select(func.count()).select_from(BookingSlot))).scalar_one() == 12  # 60 / 5
    finally:
        await engine.dispose()


async def test_the_database_itself_refuses_a_double_booking(sessionmaker) -> None:  # type: ignore[no-untyped-def]
    async with sessionmaker() as s, s.begin():
        salon = await make_salon(s)
        cut = await add_service(s, salon, price=0)
        booking = await hold_slot(s, company=salon, service=cut, start=berlin(TUESDAY, 10), now=NOW)
        cell = (await s.execute(select(BookingSlot).limit(1))).scalar_one()
        intruder = Booking(tenant_id=salon.tenant_id, company_id=salon.id, resource_id=booking.resource_id,
                           status="confirmed", start_at=cell.slot_start, end_at=cell.slot_start + timedelta(hours=1),
                           service_name="Haircut", resource_name="x", currency="EUR")
        s.add(intruder)
        await s.flush()
        with pytest.raises(IntegrityError):
            async with s.begin_nested():
                s.add(BookingSlot(tenant_id=salon.tenant_id, booking_id=intruder.id, resource_id=cell.resource_id,
                                  slot_start=cell.slot_start, seat=0))
                await s.flush()


async def test_cancel_early_refunds_and_late_keeps_the_prepayment(sessionmaker) -> None:  # type: ignore[no-untyped-def]
    async with sessionmaker() as s, s.begin():
        salon = await make_salon(s)
        cut = await add_service(s, salon)
        friday = date(2026, 3, 13)
        early = await hold_slot(s, company=salon, service=cut, start=berlin(friday, 10), now=NOW)
        late = await hold_slot(s, company=salon, service=cut, start=berlin(friday, 15), now=NOW)
        by_salon = await hold_slot(s, company=salon, service=cut, start=berlin(friday, 17), now=NOW)
        for b in (early, late, by_salon):
            order = await s.get(Order, b.order_id)
            assert order is not None
            await mark_paid(s, order=order, method="card", paid_at=NOW)
            await on_order_paid(s, order, now=NOW)
            assert b.status == "confirmed"

        result = await cancel_booking(s, booking=early, now=berlin(friday, 10) - timedelta(hours=48))
        assert (result.late, result.refundable, result.refund_minor, result.currency) == (False, True, 4000, "EUR")
        assert early.status == "cancelled" and early.refund_due

        result = await cancel_booking(s, booking=late, now=berlin(friday, 15) - timedelta(hours=2))
        assert (result.late, result.refundable, result.refund_minor) == (True, False, 0)
        assert not late.refund_due

        result = await cancel_booking(s, booking=by_salon, now=berlin(friday, 17) - timedelta(hours=2), by="company")
        assert (result.late, result.refundable, result.refund_minor) == (True, True, 4000)

        free = [x.start for x in await free_slots(s, company=salon, service=cut, day=friday, now=NOW)]
        assert {berlin(friday, 10), berlin(friday, 15), berlin(friday, 17)} <= set(free)
        with pytest.raises(BookingStateError):
            await cancel_booking(s, booking=early, now=NOW)

        # Cancelling an unpaid hold cancels its order; nothing to refund.
        held = await hold_slot(s, company=salon, service=cut, start=berlin(friday, 11), now=NOW)
        result = await cancel_booking(s, booking=held, now=NOW)
        assert (result.refundable, result.refund_minor) == (False, 0)
        order = await s.get(Order, held.order_id)
        assert order is not None and order.status == "cancelled"


async def test_move_booking(sessionmaker) -> None:  # type: ignore[no-untyped-def]
    async with sessionmaker() as s, s.begin():
        salon = await make_salon(s)
        cut = await add_service(s, salon, price=0)
        friday = date(2026, 3, 13)
        mine = await hold_slot(s, company=salon, service=cut, start=berlin(friday, 10), now=NOW)
        theirs = await hold_slot(s, company=salon, service=cut, start=berlin(friday, 15), now=NOW)

        # Half an hour later overlaps the booking's own time: allowed.
        await move_booking(s, booking=mine, start=berlin(friday, 10, 30), now=NOW)
        assert (mine.start_at, mine.end_at) == (berlin(friday, 10, 30), berlin(friday, 11, 30))
        free = [x.start for x in await free_slots(s, company=salon, service=cut, day=friday, now=NOW)]
        assert berlin(friday, 9, 30) in free and berlin(friday, 10, 30) not in free

        with pytest.raises(SlotTaken):
            await move_booking(s, booking=mine, start=berlin(friday, 14, 30), now=NOW)
        assert mine.start_at == berlin(friday, 10, 30)  # unchanged
        with pytest.raises(SlotUnavailable):
            await move_booking(s, booking=mine, start=berlin(friday, 13), now=NOW)

        await move_booking(s, booking=mine, start=berlin(date(2026, 3, 16), 9), now=NOW)
        free = [x.start for x in await free_slots(s, company=salon, service=cut, day=friday, now=NOW)]
        assert berlin(friday, 10, 30) in free and berlin(friday, 15) not in free

        with pytest.raises(TooLateToChange):
            await move_booking(s, booking=theirs, start=berlin(friday, 17), now=berlin(friday, 12))
        await move_booking(s, booking=theirs, start=berlin(friday, 17), now=berlin(friday, 12), by="company")
        assert theirs.start_at == berlin(friday, 17)
        cells = (await s.execute(select(func.count()).select_from(BookingSlot))).scalar_one()
        assert cells == 24  # two one-hour bookings, twelve 5-minute cells each


async def test_bookings_are_scoped_to_their_company(sessionmaker) -> None:  # type: ignore[no-untyped-def]
    async with sessionmaker() as s, s.begin():
        a = await make_salon(s, slug="alpha")
        b = await make_salon(s, slug="beta")
        cut_a = await add_service(s, a, price=0)
        cut_b = await add_service(s, b, price=0)
        await hold_slot(s, company=a, service=cut_a, start=berlin(TUESDAY, 10), now=NOW)
        # The other salon's 10:00 is untouched.
        assert berlin(TUESDAY, 10) in [x.start for x in await free_slots(s, company=b, service=cut_b, day=TUESDAY,
                                                                         now=NOW)]
        booking_b = await hold_slot(s, company=b, service=cut_b, start=berlin(TUESDAY, 10), now=NOW)
        assert booking_b.company_id == b.id and booking_b.tenant_id == b.tenant_id
        assert uuid.UUID(str(booking_b.resource_id)) != (await s.execute(
            select(Booking.resource_id).where(Booking.company_id == a.id))).scalar_one()


# --- understanding "when" (commerce.when.parse_when) ---

MOSCOW = ZoneInfo("Europe/Moscow")
WEDNESDAY_10AM = datetime(2026, 3, 11, 10, 0, tzinfo=MOSCOW)


@pytest.mark.parametrize(
    ("language", "text", "day", "part", "after"),
    [
        ("en", "tomorrow afternoon", date(2026, 3, 12), "afternoon", None),
        ("en", "Friday after 3pm", date(2026, 3, 13), None, time(15, 0)),
        ("en", "on friday after 15:00", date(2026, 3, 13), None, time(15, 0)),
        ("en", "tonight", date(2026, 3, 11), "evening", None),
        ("en", "this morning", date(2026, 3, 11), "morning", None),
        ("en", "next monday morning", date(2026, 3, 16), "morning", None),
        ("en", "Can I book for March 20 at 10:30?", date(2026, 3, 20), None, time(10, 30)),
        ("en", "sat at 11am", date(2026, 3, 14), None, time(11, 0)),
        ("en", "the day after tomorrow in the evening", date(2026, 3, 13), "evening", None),
        ("en", "in 3 days", date(2026, 3, 14), None, None),
        ("en", "after 3", None, None, time(15, 0)),
        ("en", "a haircut please", None, None, None),
        ("ru", "завтра днём", date(2026, 3, 12), "afternoon", None),
        ("ru", "завтра днем", date(2026, 3, 12), "afternoon", None),
        ("ru", "в пятницу после 15:00", date(2026, 3, 13), None, time(15, 0)),
        ("ru", "на завтра утром", date(2026, 3, 12), "morning", None),
        ("ru", "послезавтра вечером", date(2026, 3, 13), "evening", None),
        ("ru", "сегодня после 3 дня", date(2026, 3, 11), None, time(15, 0)),
        ("ru", "20 марта в 10", date(2026, 3, 20), None, time(10, 0)),
        ("ru", "12.03 после обеда", date(2026, 3, 12), "afternoon", None),
        ("ru", "в субботу с 12", date(2026, 3, 14), None, time(12, 0)),
        ("ru", "во вторник в 9 утра", date(2026, 3, 17), None, time(9, 0)),
        ("ru", "через 3 дня", date(2026, 3, 14), None, None),
        ("ru", "хочу записаться на стрижку", None, None, None),
        # A week said without a day: its first day that is not past (not "today + 7 days").
        ("en", "sometime next week", date(2026, 3, 16), None, None),
        ("en", "next week in the morning", date(2026, 3, 16), "morning", None),
        ("en", "the week after next", date(2026, 3, 23), None, None),
        ("en", "this weekend", date(2026, 3, 14), None, None),
        ("en", "next weekend after 2pm", date(2026, 3, 21), None, time(14, 0)),
        ("en", "wednesday next week", date(2026, 3, 18), None, None),
        ("en", "a wedding updo next week", date(2026, 3, 16), None, None),  # "wedding" is no Wednesday
        ("en", "in a week", date(2026, 3, 18), None, None),
        ("en", "a week from today", date(2026, 3, 18), None, None),
        ("ru", "на следующей неделе", date(2026, 3, 16), None, None),
        ("ru", "на следующей неделе после 15:00", date(2026, 3, 16), None, time(15, 0)),
        ("ru", "в субботу на следующей неделе", date(2026, 3, 21), None, None),
        ("ru", "на выходных", date(2026, 3, 14), None, None),
        ("ru", "в следующие выходные утром", date(2026, 3, 21), "morning", None),
        ("ru", "через неделю", date(2026, 3, 18), None, None),
    ],
)
def test_parse_when(language: str, text: str, day: date | None, part: str | None, after: time | None) -> None:
    from commerce.when import parse_when

    got = parse_when(text, language=language, tz="Europe/Moscow", now=WEDNESDAY_10AM)
    assert (got.day, got.part_of_day, got.after) == (day, part, after)


async def test_parsed_request_finds_slots(sessionmaker) -> None:  # type: ignore[no-untyped-def]
    """"в пятницу после 15:00" → the Friday slots from 15:00 on, in the salon's own timezone."""
    from commerce.when import parse_when

    async with sessionmaker() as s, s.begin():
        salon = await make_salon(s)
        cut = await add_service(s, salon)
        when = parse_when("в пятницу после 15:00", language="ru", tz=BERLIN, now=NOW)
        assert when.day == date(2026, 3, 13)
        slots = await free_slots(s, company=salon, service=cut, day=when.day, part_of_day=when.part_of_day,
                                 after=when.after, now=NOW)
        assert local_times(slots) == ["15:00", "15:30", "16:00", "16:30", "17:00"]
