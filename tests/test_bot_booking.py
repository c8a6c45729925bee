"""Bookings of services and delivery windows of paid orders in the dialogue (``bot.actions.booking``,
``bot.actions.delivery``), in English and Russian, on SQLite and PostgreSQL.

Conversations run through the real inbound pipeline with ``DialogueEngine`` and a fixed clock
(Tuesday 9 March 2027, 08:00 in Berlin). The salon is the demo one: its services are imported from
``examples/salon-services.csv``, its staff (Anna, Marco) and schedule are those of ``api.demo``
(Tuesday to Saturday 10:00-19:00, lunch 13:00-14:00, 15-minute slots, 15-minute holds, 24-hour
late-cancellation rule, 25 % prepayment). Assertions are about what the customer reads (times in
the salon's timezone, prices, links) and what the salon gets (bookings, orders, windows in the
database).
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.demo import SALON_SCHEDULE
from bot.state import BookingDraft, DeliveryDraft, DialogueState, Offer, Step
from channels.base import ParsedInbound
from commerce.bookings import hold_slot
from commerce.delivery import add_delivery_window, choose_window
from commerce.payments import mark_paid
from commerce.schedule import set_schedule
from core.accounts import create_company, create_tenant, inbox_of_kind
from core.models import (
    Booking,
    Company,
    Contact,
    DeliveryWindow,
    FaqEntry,
    KnowledgeItem,
    Message,
    Order,
    OrderDelivery,
    OrderLine,
    Payment,
    Resource,
)
from core.timeutil import utcnow
from knowledge.importer import import_knowledge
from tests.test_bot import APPAREL, Chat, Shop, create_shop, make_engine, orders_of, titles

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NOW = datetime(2027, 3, 9, 7, 0, tzinfo=UTC)  # Tuesday 9 March 2027, 08:00 in Berlin (CET)
RU_SERVICES = "Услуга,Цена,Длительность\nСтрижка,2000 ₽,60 мин\nМаникюр,1500 ₽,45 мин\n"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def salon(sessionmaker: async_sessionmaker[AsyncSession], *, slug: str = "salon", language: str = "en",
                currency: str = "EUR", sheet: bytes | None = None) -> Shop:
    """The demo hair salon (or a Russian one with ``sheet``): services, Anna and Marco, the schedule."""
    async with sessionmaker() as s, s.begin():
        tenant = await create_tenant(s, name=slug.title(), slug=slug)
        company = await create_company(s, tenant_id=tenant.id, slug=slug, name="Lindenhof Hair Salon", type="service",
                                       currency=currency, language=language, timezone="Europe/Berlin")
        for position, name in enumerate(("Anna", "Marco")):
            s.add(Resource(tenant_id=tenant.id, company_id=company.id, name=name, capacity=1, hours=None, days_off=[],
                           active=True, position=position))
        await s.flush()
        await set_schedule(s, company=company, schedule=SALON_SCHEDULE)
        data = sheet if sheet is not None else (EXAMPLES / "salon-services.csv").read_bytes()
        await import_knowledge(s, company=company, data=data, filename="services.csv")
        inbox = await inbox_of_kind(s, company, "webchat")
        return Shop(tenant_id=tenant.id, company_id=company.id, inbox_id=inbox.id)


def chat_with(sessionmaker: async_sessionmaker[AsyncSession], shop: Shop, clock: Clock | None = None,
              contact: str = "alice") -> Chat:
    return Chat(sessionmaker, shop, engine=make_engine(clock=clock or Clock()), contact=contact)


async def bookings_of(sessionmaker: async_sessionmaker[AsyncSession], shop: Shop) -> list[Booking]:
    async with sessionmaker() as s:
        return list((await s.execute(select(Booking).where(Booking.company_id == shop.company_id)
                                     .order_by(Booking.created_at))).scalars())


async def system_texts(sessionmaker: async_sessionmaker[AsyncSession], conversation_id: uuid.UUID) -> list[str]:
    async with sessionmaker() as s:
        return list((await s.execute(select(Message.text).where(
            Message.conversation_id == conversation_id, Message.sender == "system").order_by(Message.seq))).scalars())


async def pay(sessionmaker: async_sessionmaker[AsyncSession], order_id: uuid.UUID, at: datetime = NOW) -> None:
    async with sessionmaker() as s, s.begin():
        order = await s.get(Order, order_id)
        assert order is not None
        assert await mark_paid(s, order=order, method="test", paid_at=at)


def berlin(day: int, hour: int, minute: int = 0) -> datetime:
    """A local time in Berlin in March 2027 (CET, UTC+1) as aware UTC."""
    return datetime(2027, 3, day, hour - 1, minute, tzinfo=UTC)


async def book_haircut(chat: Chat, *, slot: str = "Wed 14:00 · Anna", name: str = "Alice Smith") -> Any:
    """Women's haircut tomorrow afternoon, held and named: the reply with the prepayment link."""
    await chat.ask("I'd like a women's haircut tomorrow afternoon")
    await chat.ask(slot)
    return await chat.ask(name)


# --- booking a service -------------------------------------------------------------------------------------


async def test_prepaid_haircut_is_held_paid_and_confirmed(sessionmaker) -> None:
    shop = await salon(sessionmaker)
    chat = chat_with(sessionmaker, shop)

    hello = await chat.ask("hi")
    assert "Lindenhof Hair Salon" in hello.text and "book an appointment" in hello.text
    assert titles(hello) == ["Services", "Book an appointment", "My booking", "Talk to a human"]

    which = await chat.ask("I'd like a haircut tomorrow afternoon")
    assert "Which service would you like to book?" in which.text
    assert "• Women's haircut — 60 min, 45.00 EUR" in which.text and "• Men's haircut — 30 min, 25.00 EUR" in which.text
    assert titles(which) == ["Women's haircut", "Men's haircut"]

    slots = await chat.press(which, "Women's haircut")  # the time asked for is remembered
    assert "Free times for Women's haircut (60 min, 45.00 EUR) on Wed 10 Mar in the afternoon:" in slots.text
    # Local times in Berlin: lunch 13:00-14:00 is skipped, the afternoon ends at 17:00.
    assert titles(slots) == ["Wed 12:00 · Anna", "Wed 14:00 · Anna", "Wed 14:30 · Anna", "Wed 15:00 · Anna",
                             "Wed 15:30 · Anna", "Wed 16:00 · Anna", "Wed 16:30 · Anna"]

    held = await chat.press(slots, "Wed 14:00 · Anna")
    assert "Women's haircut, Wed 10 Mar, 14:00 with Anna: I'm holding this time for you until 08:15." in held.text
    assert "What name should I book it under?" in held.text
    [booking] = await bookings_of(sessionmaker, shop)
    assert booking.status == "held" and booking.start_at == berlin(10, 14) and booking.resource_name == "Anna"
    assert booking.hold_expires_at == NOW + timedelta(minutes=15)

    link = await chat.ask("Alice Smith, +49 151 2345678")
    assert "To confirm the booking, please pay the prepayment of 11.25 EUR:" in link.text
    assert "The time is held for you until 08:15; the booking is confirmed once the prepayment arrives." in link.text
    assert "You pay 33.75 EUR at the visit." in link.text
    assert link.url is not None and link.url.startswith("https://shop.test/pay/") and link.url in link.text
    [booking] = await bookings_of(sessionmaker, shop)
    assert (booking.status, booking.customer_name, booking.phone) == ("held", "Alice Smith", "+491512345678")
    [order] = await orders_of(sessionmaker, shop)
    assert booking.order_id == order.id
    assert (order.total_minor, order.currency, order.payment_status, order.customer_name) == (
        1125, "EUR", "payment_link_sent", "Alice Smith")
    async with sessionmaker() as s:
        payment = (await s.execute(select(Payment).where(Payment.order_id == order.id))).scalar_one()
    assert payment.expires_at is not None
    assert payment.expires_at - payment.created_at <= timedelta(minutes=15, seconds=5)  # not beyond the hold

    mine = await chat.ask("my booking")
    assert ("Your booking: Women's haircut, Wed 10 Mar, 14:00 with Anna (waiting for the prepayment of 11.25 EUR; "
            "held until 08:15)") in mine.text
    assert mine.url == link.url

    await pay(sessionmaker, order.id, at=NOW + timedelta(minutes=5))
    [booking] = await bookings_of(sessionmaker, shop)
    assert booking.status == "confirmed" and booking.hold_expires_at is None
    assert await system_texts(sessionmaker, order.conversation_id) == [
        "Payment received for order #1001: 11.25 EUR. Thank you!",
        "Your booking is confirmed: Women's haircut, Wed 10 Mar, 14:00 (Anna)."]
    confirmed = await chat.ask("my booking")
    assert "Your booking: Women's haircut, Wed 10 Mar, 14:00 with Anna (confirmed)" in confirmed.text
    assert titles(confirmed) == ["Move booking", "Cancel booking"]
    # Nothing was added by the bot after the payment: the confirmation comes from mark_paid alone.
    assert len(await system_texts(sessionmaker, order.conversation_id)) == 2


async def test_free_consultation_is_confirmed_at_once_for_a_known_customer(sessionmaker) -> None:
    shop = await salon(sessionmaker)
    chat = chat_with(sessionmaker, shop, contact="tg-7")
    slots = await chat.ask("book a free consultation on Friday after 3pm", contact_name="Bob Brown")
    assert "Free times for Free consultation (15 min, free) on Fri 12 Mar after 15:00:" in slots.text
    assert titles(slots)[:3] == ["Fri 15:00 · Anna", "Fri 15:30 · Anna", "Fri 16:00 · Anna"]
    booked = await chat.press(slots, "Fri 15:30 · Anna")  # the name is known from the channel: nothing is asked
    assert booked.text == "You're booked: Free consultation, Fri 12 Mar, 15:30 with Anna. See you then!"
    assert booked.url is None
    [booking] = await bookings_of(sessionmaker, shop)
    assert (booking.status, booking.order_id, booking.prepay_minor, booking.customer_name) == (
        "confirmed", None, 0, "Bob Brown")
    assert await orders_of(sessionmaker, shop) == []


async def test_russian_booking_is_offered_held_moved_and_cancelled(sessionmaker) -> None:
    shop = await salon(sessionmaker, slug="lokon", language="ru", currency="RUB", sheet=RU_SERVICES.encode())
    chat = chat_with(sessionmaker, shop, contact="olga")

    friday = await chat.ask("запишите на стрижку в пятницу после 15:00")
    assert "Свободное время на «Стрижка» (60 мин, 2 000,00 ₽), пт 12 марта после 15:00:" in friday.text
    assert titles(friday)[0] == "пт 15:00 · Anna" and "пт 18:00 · Anna" in titles(friday)

    morning = await chat.ask("а можно завтра утром?")  # the service being arranged is kept
    assert "Свободное время на «Стрижка» (60 мин, 2 000,00 ₽), ср 10 марта утром:" in morning.text
    assert titles(morning)[:2] == ["ср 10:00 · Anna", "ср 10:15 · Anna"]

    held = await chat.ask("ср 10:00 · Anna")
    assert "Стрижка, ср 10 марта, 10:00, мастер Anna: держу это время за вами до 08:15." in held.text
    assert "На какое имя записать?" in held.text
    link = await chat.ask("Ольга")
    assert "Чтобы подтвердить запись, внесите предоплату 500,00 ₽:" in link.text and link.url
    assert "Оплата 1 500,00 ₽ — на месте." in link.text

    [order] = await orders_of(sessionmaker, shop)
    await pay(sessionmaker, order.id)
    texts = await system_texts(sessionmaker, order.conversation_id)
    assert texts[-1] == "Запись подтверждена: Стрижка, ср 10 марта, 10:00 (Anna)."
    assert "(подтверждена)" in (await chat.ask("моя запись")).text

    saturday = await chat.ask("перенесите на субботу")
    assert "сб 13 марта:" in saturday.text and "сб 12:00 · Anna" in titles(saturday)
    moved = await chat.press(saturday, "сб 12:00 · Anna")
    assert moved.text == "Готово! Запись на «Стрижка» перенесена на сб 13 марта, 12:00, мастер Anna."
    [booking] = await bookings_of(sessionmaker, shop)
    assert booking.start_at == berlin(13, 12) and booking.status == "confirmed"

    question = await chat.ask("отмените запись")
    assert "Отменить запись: Стрижка, сб 13 марта, 12:00?" in question.text
    assert "Предоплата 500,00 ₽ будет возвращена." in question.text
    done = await chat.press(question, "Да, отменить")
    assert "Запись отменена: Стрижка, сб 13 марта, 12:00." in done.text
    assert "Мы вернём вам предоплату 500,00 ₽." in done.text
    [booking] = await bookings_of(sessionmaker, shop)
    assert (booking.status, booking.refund_due, booking.cancelled_by) == ("cancelled", True, "customer")
    assert "нет предстоящих записей" in (await chat.ask("моя запись")).text


async def test_a_slot_taken_meanwhile_is_refused_and_other_times_offered(sessionmaker) -> None:
    shop = await salon(sessionmaker)
    chat = chat_with(sessionmaker, shop)
    slots = await chat.ask("I'd like a women's haircut tomorrow afternoon")
    assert "Wed 14:00 · Anna" in titles(slots)
    async with sessionmaker() as s, s.begin():  # someone else takes Anna at 14:00 in the meantime
        company = await s.get(Company, shop.company_id)
        service = (await s.execute(select(KnowledgeItem).where(KnowledgeItem.company_id == shop.company_id,
                                                               KnowledgeItem.name == "Women's haircut"))).scalar_one()
        anna = (await s.execute(select(Resource).where(Resource.company_id == shop.company_id,
                                                       Resource.name == "Anna"))).scalar_one()
        await hold_slot(s, company=company, service=service, start=berlin(10, 14), now=NOW, resource=anna,
                        customer_name="Someone Else")
    again = await chat.press(slots, "Wed 14:00 · Anna")
    assert "Sorry, Wed 10 Mar, 14:00 has just been taken." in again.text
    assert "Free times for Women's haircut (60 min, 45.00 EUR) on Wed 10 Mar in the afternoon:" in again.text
    assert "Wed 14:00 · Anna" not in titles(again) and "Wed 14:00 · Marco" in titles(again)
    held = await chat.press(again, "Wed 14:00 · Marco")
    assert "Women's haircut, Wed 10 Mar, 14:00 with Marco: I'm holding this time" in held.text
    bookings = await bookings_of(sessionmaker, shop)
    assert sorted((b.resource_name, b.status, b.start_at) for b in bookings) == [
        ("Anna", "held", berlin(10, 14)), ("Marco", "held", berlin(10, 14))]


async def test_a_closed_day_offers_the_nearest_days(sessionmaker) -> None:
    shop = await salon(sessionmaker)
    chat = chat_with(sessionmaker, shop)
    closed = await chat.ask("book a men's haircut on Monday")
    assert "Sorry, there are no free times for Men's haircut on Mon 15 Mar. The nearest days with free times:" \
        in closed.text
    assert titles(closed) == ["Tue 16 Mar", "Wed 17 Mar", "Thu 18 Mar"]
    tuesday = await chat.press(closed, "Tue 16 Mar")
    assert "Free times for Men's haircut (30 min, 25.00 EUR) on Tue 16 Mar:" in tuesday.text
    # Marco at 10:30, and Marco is free then: held at once (issue 8: an exact free time is not offered again).
    marco = await chat.ask("with Marco at 10:30")
    assert "Tue 16 Mar, 10:30 with Marco: I'm holding this time for you" in marco.text


async def test_a_question_while_times_are_offered_keeps_the_times(sessionmaker) -> None:
    """"Do you take cards?" while times are offered: answered, and the times offered again; "the
    second one" then holds the second time (it was not understood: the answer had dropped the times)."""
    shop = await salon(sessionmaker)
    async with sessionmaker() as s, s.begin():
        company = await s.get(Company, shop.company_id)
        s.add(FaqEntry(tenant_id=shop.tenant_id, company_id=shop.company_id, question="Do you take cards?",
                       answer="Yes: Visa, Mastercard and cash.", position=99))
        company.kb_version += 1
    chat = chat_with(sessionmaker, shop)
    offered = await chat.ask("I'd like a women's haircut tomorrow afternoon")
    result = await chat.pipeline.receive(inbox_id=shop.inbox_id, parsed=ParsedInbound(
        contact_source_id=chat.contact, text="do you take cards?", received_at=utcnow()))
    [answer] = result.replies
    assert answer.text == "Yes: Visa, Mastercard and cash.\n\nPick a time, or tell me another day or time."
    assert titles(answer) == titles(offered)
    second = await chat.ask("the second one")
    assert f"Women's haircut, {titles(offered)[1].replace(' · Anna', '').replace('Wed', 'Wed 10 Mar,')} with Anna" \
        in second.text and "holding this time" in second.text


async def test_an_hour_typed_chooses_the_time_offered_then_and_a_number_its_place(sessionmaker) -> None:
    """"11" while the morning's times are offered was not understood; it holds 11:00. "at 3" is 15:00;
    "2" is still the second time offered (a numbered list in text channels)."""
    shop = await salon(sessionmaker)
    morning = chat_with(sessionmaker, shop)
    offered = await morning.ask("I'd like a women's haircut tomorrow morning")
    assert len(titles(offered)) < 11 and "Wed 11:00 · Anna" in titles(offered)
    assert "Wed 10 Mar, 11:00 with Anna: I'm holding this time" in (await morning.ask("11")).text
    afternoon = chat_with(sessionmaker, shop, contact="bob")
    await afternoon.ask("I'd like a women's haircut tomorrow afternoon")
    assert "Wed 10 Mar, 15:00 with Anna: I'm holding this time" in (await afternoon.ask("at 3")).text
    numbered = chat_with(sessionmaker, shop, contact="cem")
    offered = await numbered.ask("I'd like a women's haircut tomorrow afternoon")
    second = titles(offered)[1].split(" ")[1]  # "Wed 14:00 · Anna" → "14:00"
    assert f"Wed 10 Mar, {second} with Anna" in (await numbered.ask("2")).text


async def test_anything_earlier_offers_the_part_of_the_day_before(sessionmaker) -> None:
    """"Anything earlier?" while the afternoon's times are offered was "not sold"; it offers the morning's."""
    chat = chat_with(sessionmaker, await salon(sessionmaker))
    await chat.ask("I'd like a women's haircut tomorrow afternoon")
    earlier = await chat.ask("anything earlier?")
    assert "Free times for Women's haircut (60 min, 45.00 EUR) on Wed 10 Mar in the morning:" in earlier.text
    assert titles(earlier) and all(int(t.split(" ")[1][:2]) < 12 for t in titles(earlier))
    later = await chat.ask("later please")
    assert "on Wed 10 Mar in the afternoon:" in later.text


async def test_is_someone_available_narrows_the_times_offered_to_them(sessionmaker) -> None:
    """"Is Marco available?" while times are offered was answered by the stylists FAQ; it offers the
    same request's times with Marco."""
    chat = chat_with(sessionmaker, await salon(sessionmaker))
    offered = await chat.ask("I'd like a men's haircut tomorrow afternoon")
    assert titles(offered) and all(t.endswith("· Anna") for t in titles(offered))
    marco = await chat.ask("is Marco available?")
    assert "on Wed 10 Mar in the afternoon:" in marco.text
    assert titles(marco) and all(t.endswith("· Marco") for t in titles(marco))
    assert all(t.endswith("· Anna") for t in titles(await chat.ask("with Anna then")))
    held = await chat.ask("at 3")
    assert "Wed 10 Mar, 15:00 with Anna: I'm holding this time" in held.text


async def test_next_week_starts_at_its_monday(sessionmaker) -> None:
    """On a Thursday, "next week" means the days from Monday on, not the Thursday a week later. The
    salon is closed on Mondays: the nearest days of that week are offered."""
    shop = await salon(sessionmaker)
    chat = chat_with(sessionmaker, shop, clock=Clock(NOW + timedelta(days=2)))  # Thursday 11 March
    offered = await chat.ask("I'd like a men's haircut next week")
    assert "no free times for Men's haircut on Mon 15 Mar" in offered.text
    assert titles(offered) == ["Tue 16 Mar", "Wed 17 Mar", "Thu 18 Mar"]
    ru = chat_with(sessionmaker, await salon(sessionmaker, slug="salon-ru", language="ru", currency="RUB",
                                             sheet=RU_SERVICES.encode()),
                   clock=Clock(NOW + timedelta(days=2)), contact="olga")
    saturday = await ru.ask("запишите на стрижку в субботу на следующей неделе")
    assert "«Стрижка»" in saturday.text and "сб 20 марта" in saturday.text


async def test_the_name_question_gives_way_to_a_new_request(sessionmaker) -> None:
    shop = await salon(sessionmaker)
    chat = chat_with(sessionmaker, shop)
    await chat.ask("I'd like a women's haircut tomorrow afternoon")
    await chat.ask("Wed 14:00 · Anna")
    other = await chat.ask("actually, can I come on Thursday morning instead?")
    assert "Free times for Women's haircut (60 min, 45.00 EUR) on Thu 11 Mar in the morning:" in other.text
    [released] = await bookings_of(sessionmaker, shop)  # the unnamed hold was given back
    assert released.status == "cancelled" and released.customer_name is None
    await chat.ask("Thu 10:00 · Anna")
    released_by_cancel = await chat.ask("cancel")
    assert "I've released the time" in released_by_cancel.text
    assert [b.status for b in await bookings_of(sessionmaker, shop)] == ["cancelled", "cancelled"]


async def test_an_expired_hold_offers_the_times_again_instead_of_a_link(sessionmaker) -> None:
    shop = await salon(sessionmaker)
    clock = Clock()
    chat = chat_with(sessionmaker, shop, clock)
    first = await book_haircut(chat)
    assert first.url
    clock.now = NOW + timedelta(minutes=20)  # the 15-minute hold is over
    again = await chat.ask("send me a new payment link")
    assert "Sorry, the time Wed 10 Mar, 14:00 is no longer held for you. Let's find another one." in again.text
    assert again.url is None and "Wed 14:00 · Anna" in titles(again)  # nobody took it: it is free again
    assert "You have no upcoming bookings." in (await chat.ask("my booking")).text


# --- my booking: cancel and move ----------------------------------------------------------------------------


async def test_cancelling_early_refunds_the_prepayment_and_late_keeps_it(sessionmaker) -> None:
    shop = await salon(sessionmaker)
    clock = Clock()
    chat = chat_with(sessionmaker, shop, clock)
    await book_haircut(chat)
    [order] = await orders_of(sessionmaker, shop)
    await pay(sessionmaker, order.id)

    early = await chat.ask("cancel my booking")  # Tuesday 08:00, the haircut is Wednesday 14:00
    assert "Cancel your booking: Women's haircut, Wed 10 Mar, 14:00?" in early.text
    assert "Your prepayment of 11.25 EUR will be refunded." in early.text
    assert titles(early) == ["Yes, cancel it", "Keep it"]
    kept = await chat.press(early, "Keep it")
    assert "OK, your booking stays: Women's haircut, Wed 10 Mar, 14:00." in kept.text
    assert [b.status for b in await bookings_of(sessionmaker, shop)] == ["confirmed"]

    clock.now = berlin(10, 9)  # Wednesday 09:00: five hours before
    late = await chat.ask("I can't make it, please cancel my appointment")
    assert ("It's less than 24 hours before the appointment, so the prepayment of 11.25 EUR is not refundable."
            in late.text)
    done = await chat.ask("yes")
    assert "Your booking is cancelled: Women's haircut, Wed 10 Mar, 14:00." in done.text
    assert ("The prepayment of 11.25 EUR is not refunded: the booking was cancelled less than 24 hours before it."
            in done.text)
    [booking] = await bookings_of(sessionmaker, shop)
    assert (booking.status, booking.refund_due) == ("cancelled", False)

    # An early cancellation of another paid booking is refundable.
    clock.now = NOW
    await book_haircut(chat, slot="Wed 15:00 · Anna")
    orders = await orders_of(sessionmaker, shop)
    await pay(sessionmaker, orders[-1].id)
    await chat.ask("cancel my booking")
    refunded = await chat.ask("yes, cancel it")
    assert "We will refund your prepayment of 11.25 EUR." in refunded.text
    latest = (await bookings_of(sessionmaker, shop))[-1]
    assert (latest.status, latest.refund_due) == ("cancelled", True)


async def test_moving_a_booking_to_another_day(sessionmaker) -> None:
    shop = await salon(sessionmaker)
    clock = Clock()
    chat = chat_with(sessionmaker, shop, clock)
    await book_haircut(chat)

    which_day = await chat.ask("I need to reschedule")
    assert "To which day should I move Women's haircut (Wed 10 Mar, 14:00)?" in which_day.text
    saturday = await chat.ask("Saturday afternoon")
    assert "Free times for Women's haircut (60 min, 45.00 EUR) on Sat 13 Mar in the afternoon:" in saturday.text
    moved = await chat.press(saturday, "Sat 15:00 · Anna")
    assert moved.text == "Done! Women's haircut is now on Sat 13 Mar, 15:00 with Anna."
    [booking] = await bookings_of(sessionmaker, shop)
    assert booking.start_at == berlin(13, 15) and booking.end_at == berlin(13, 16) and booking.status == "held"
    [order] = await orders_of(sessionmaker, shop)
    assert order.lines[0].variant == "Sat 13 Mar, 15:00 · Anna"  # the prepayment order follows the move

    direct = await chat.ask("move my booking to Friday")
    assert "on Fri 12 Mar:" in direct.text

    await pay(sessionmaker, order.id)
    clock.now = berlin(13, 9)  # Saturday 09:00: too late to move it
    refused = await chat.ask("move my booking to next Tuesday")
    assert "a booking can't be moved less than 24 hours before it starts" in refused.text
    assert titles(refused)[0] == "Talk to a human"


async def test_service_questions_are_answered_from_the_knowledge_base(sessionmaker) -> None:
    shop = await salon(sessionmaker)
    chat = chat_with(sessionmaker, shop)
    catalogue = await chat.ask("what services do you offer?")
    assert "• Colouring — 80.00 EUR, 120 min" in catalogue.text
    assert "• Free consultation — free, 15 min" in catalogue.text
    price = await chat.ask("how much is colouring?")
    assert "Colouring costs 80.00 EUR." in price.text
    assert titles(price)[0] == "Book"
    assert "Colouring takes 120 min." in (await chat.ask("how long does colouring take?")).text
    prepay = await chat.ask("do I have to prepay for colouring?")
    assert "To book Colouring (80.00 EUR) you prepay 20.00 EUR; the rest is paid at the visit." in prepay.text
    card = await chat.ask("manicure")
    assert "Manicure — 30.00 EUR" in card.text and "Duration: 45 min." in card.text
    slots = await chat.press(card, "Book")  # no day said: today; only Anna does manicures, so no names
    assert "Free times for Manicure (45 min, 30.00 EUR) on Tue 9 Mar:" in slots.text
    assert titles(slots)[0] == "Tue 10:00" and all("·" not in t for t in titles(slots))
    held = await chat.press(slots, "Tue 10:00")
    assert "Manicure, Tue 9 Mar, 10:00 with Anna: I'm holding this time" in held.text


async def test_a_hybrid_company_sells_products_and_books_services(sessionmaker) -> None:
    async with sessionmaker() as s, s.begin():
        tenant = await create_tenant(s, name="Barber", slug="barber")
        company = await create_company(s, tenant_id=tenant.id, slug="barber", name="Barber & Shop", type="hybrid",
                                       currency="EUR", timezone="Europe/Berlin")
        await set_schedule(s, company=company, schedule=SALON_SCHEDULE)
        s.add_all([
            KnowledgeItem(tenant_id=tenant.id, company_id=company.id, kind="product", name="Beard Oil",
                          price_minor=1800, currency="EUR", attributes={}, position=0),
            KnowledgeItem(tenant_id=tenant.id, company_id=company.id, kind="service", name="Beard Trim",
                          price_minor=1500, currency="EUR", duration_minutes=30, attributes={}, position=1),
        ])
        inbox = await inbox_of_kind(s, company, "webchat")
        shop = Shop(tenant_id=tenant.id, company_id=company.id, inbox_id=inbox.id)
    chat = chat_with(sessionmaker, shop)
    assert "products and services" in (await chat.ask("hello")).text
    added = await chat.ask("add 2 beard oil")
    assert "Added 2 × Beard Oil — 36.00 EUR" in added.text
    held = await chat.ask("add a beard trim tomorrow at 11")  # a service is booked, not put in the cart
    assert "Beard Trim, Wed 10 Mar, 11:00 with Barber & Shop: I'm holding this time" in held.text  # free: held
    slots = await chat.ask("a beard trim tomorrow after 11")
    assert "Free times for Beard Trim (30 min, 15.00 EUR) on Wed 10 Mar after 11:00:" in slots.text
    assert titles(slots)[0] == "Wed 11:00"  # one resource: no staff names; the unnamed hold was given back
    cart = await chat.ask("cart")
    assert "2 × Beard Oil" in cart.text and "Beard Trim" not in cart.text


# --- delivery windows of paid product orders ----------------------------------------------------------------


async def shop_with_windows(sessionmaker: async_sessionmaker[AsyncSession], *, capacity: int = 5,
                            windows: bool = True) -> Shop:
    shop = await create_shop(sessionmaker, slug="north", name="Northwind", items=APPAREL)
    if windows:
        async with sessionmaker() as s, s.begin():
            company = await s.get(Company, shop.company_id)
            assert company is not None
            for start, end in (("10:00", "14:00"), ("14:00", "18:00")):
                await add_delivery_window(s, company=company, city="Springfield", start_time=start, end_time=end,
                                          capacity=capacity)
    return shop


async def paid_order(chat: Chat, sessionmaker: async_sessionmaker[AsyncSession], shop: Shop,
                     address: str = "12 Main Street, Springfield") -> Order:
    await chat.ask("add ocean blue shirt")
    await chat.ask("checkout")
    await chat.ask("Alice Smith")
    await chat.ask(address)
    await chat.ask("skip")
    order = (await orders_of(sessionmaker, shop))[-1]
    await pay(sessionmaker, order.id)
    return order


async def test_a_paid_order_chooses_its_delivery_window(sessionmaker) -> None:
    shop = await shop_with_windows(sessionmaker)
    chat = chat_with(sessionmaker, shop)
    order = await paid_order(chat, sessionmaker, shop)

    asked = await chat.ask("thanks!")
    assert "You're welcome!" in asked.text
    assert "When should we deliver order #1001? Choose a delivery window:" in asked.text
    assert titles(asked)[:3] == ["Tue 9 Mar, 10:00–14:00", "Tue 9 Mar, 14:00–18:00", "Wed 10 Mar, 10:00–14:00"]
    chosen = await chat.press(asked, "Wed 10 Mar, 10:00–14:00")
    assert chosen.text == "Done! Order #1001 will be delivered on Wed 10 Mar, 10:00–14:00."
    async with sessionmaker() as s:
        delivery = (await s.execute(select(OrderDelivery).where(OrderDelivery.order_id == order.id))).scalar_one()
    assert (delivery.day, delivery.city, delivery.start_at, delivery.end_at) == (
        "2027-03-10", "Springfield", datetime(2027, 3, 10, 10, tzinfo=UTC), datetime(2027, 3, 10, 14, tzinfo=UTC))

    status = await chat.ask("when will my order arrive?")
    assert status.text == "Order #1001 will be delivered on Wed 10 Mar, 10:00–14:00 (Springfield)."
    # Asked once: later messages are answered as usual.
    assert "When should we deliver" not in (await chat.ask("thanks")).text


async def test_a_full_window_is_refused_and_the_others_offered(sessionmaker) -> None:
    shop = await shop_with_windows(sessionmaker, capacity=1)
    chat = chat_with(sessionmaker, shop)
    await paid_order(chat, sessionmaker, shop)
    asked = await chat.ask("ok")
    assert "Tue 9 Mar, 10:00–14:00" in titles(asked)
    async with sessionmaker() as s, s.begin():  # another customer's paid order takes the last seat meanwhile
        order = Order(tenant_id=shop.tenant_id, company_id=shop.company_id, number=2001, total_minor=5000,
                      currency="USD", customer_name="Bob", delivery_address="Springfield")
        order.lines = [OrderLine(tenant_id=shop.tenant_id, name="Ocean Blue Shirt", quantity=1, unit_price_minor=5000)]
        s.add(order)
        await s.flush()
        await mark_paid(s, order=order, method="cash", paid_at=NOW)
        morning = (await s.execute(select(DeliveryWindow).where(DeliveryWindow.start_time == "10:00"))).scalar_one()
        await choose_window(s, order=order, window=morning, day=date(2027, 3, 9), now=NOW)
    refused = await chat.press(asked, "Tue 9 Mar, 10:00–14:00")
    assert "Sorry, that window has just filled up. Other windows:" in refused.text
    assert "Tue 9 Mar, 10:00–14:00" not in titles(refused) and titles(refused)[0] == "Tue 9 Mar, 14:00–18:00"
    chosen = await chat.press(refused, "Tue 9 Mar, 14:00–18:00")
    assert "will be delivered on Tue 9 Mar, 14:00–18:00" in chosen.text
    async with sessionmaker() as s:
        assert (await s.execute(select(func.count()).select_from(OrderDelivery))).scalar_one() == 2


async def test_the_city_is_asked_when_the_address_names_none_we_deliver_to(sessionmaker) -> None:
    shop = await shop_with_windows(sessionmaker)
    chat = chat_with(sessionmaker, shop)
    await paid_order(chat, sessionmaker, shop, address="7 Elm Road")
    asked = await chat.ask("when will it arrive?")
    assert asked.text == "Which city should we deliver order #1001 to? We deliver to: Springfield."
    windows = await chat.press(asked, "Springfield")
    assert "When should we deliver order #1001?" in windows.text and len(titles(windows)) == 6


async def test_no_delivery_windows_means_no_question(sessionmaker) -> None:
    shop = await shop_with_windows(sessionmaker, windows=False)
    chat = chat_with(sessionmaker, shop)
    await paid_order(chat, sessionmaker, shop)
    thanks = await chat.ask("thanks")
    assert thanks.text == "You're welcome! Anything else I can help with?"
    status = await chat.ask("when will my order arrive?")
    assert status.text == "Order #1001 is paid; a manager will contact you about the delivery time."


# --- state -----------------------------------------------------------------------------------------------


def test_booking_and_delivery_state_round_trip() -> None:
    offer = Offer(title="Wed 14:00 · Anna", ref=uuid.uuid4(), start="2027-03-10T13:00:00+00:00")
    state = DialogueState(step=Step.CHOOSE_SLOT, booking=BookingDraft(service_id=uuid.uuid4(), day="2027-03-10",
                                                                       part_of_day="afternoon", offers=[offer]),
                          booking_id=uuid.uuid4(),
                          delivery=DeliveryDraft(order_id=uuid.uuid4(), city="Springfield",
                                                 offers=[Offer(title="Tue", ref=uuid.uuid4(), day="2027-03-09")]),
                          delivery_prompted=uuid.uuid4())
    assert DialogueState.from_json(state.to_json()) == state
    broken = DialogueState.from_json({"booking": {"mode": "fly", "offers": [{"title": 1}, "x"]},
                                      "delivery": {"order_id": "nope"}})
    assert broken.booking == BookingDraft() and broken.delivery is None


# --- a phone number given after the booking or order was made ----------------------------------------------


async def test_a_phone_given_with_the_booking_name_is_stored_as_e164_in_the_company_country(sessionmaker) -> None:
    # The Berlin salon's customer writes a German number the national way; the booking, its order and
    # the contact keep the one form checkout and a phone sent later store (E.164), so a manager's search
    # and the reminder's call find the same number.
    shop = await salon(sessionmaker)
    chat = chat_with(sessionmaker, shop)
    await book_haircut(chat, name="Bob Stone, 0151 2345 6789")
    [booking] = await bookings_of(sessionmaker, shop)
    async with sessionmaker() as s:
        order = await s.get(Order, booking.order_id)
        contact = await s.get(Contact, booking.contact_id)
    assert (booking.customer_name, booking.phone) == ("Bob Stone", "+4915123456789")
    assert order is not None and (order.customer_name, order.phone) == ("Bob Stone", "+4915123456789")
    assert contact is not None and contact.phone == "+4915123456789"


async def test_a_phone_number_sent_after_the_name_is_added_to_the_booking(sessionmaker) -> None:
    # Asked "what name should I book it under? You can add a phone number too", a customer often sends
    # the name, then the number in a second message: it was not understood.
    shop = await salon(sessionmaker)
    chat = chat_with(sessionmaker, shop)
    held = await book_haircut(chat, name="Alice Smith")
    assert "prepayment" in held.text
    noted = await chat.ask("my number is 0151 23456789")
    assert noted.text == ("Thanks, I've added your phone number +4915123456789 to your booking: "
                          "Women's haircut, Wed 10 Mar, 14:00 with Anna.")
    assert titles(noted) == ["My booking"]
    [booking] = await bookings_of(sessionmaker, shop)
    assert booking.phone == "+4915123456789" and booking.customer_name == "Alice Smith"
    async with sessionmaker() as s:
        order = await s.get(Order, booking.order_id)
        contact = await s.get(Contact, booking.contact_id)
    assert order is not None and order.phone == "+4915123456789"
    assert contact is not None and contact.phone == "+4915123456789"


async def test_a_phone_number_sent_after_an_order_is_added_to_the_order(sessionmaker) -> None:
    shop = await create_shop(sessionmaker, slug="shop", name="Shop", items=APPAREL)
    chat = Chat(sessionmaker, shop)
    await chat.ask("2 ocean blue shirts")
    await chat.ask("checkout")
    await chat.ask("Alice Smith")
    await chat.ask("4 Cedar Lane, Portland")
    placed = await chat.ask("skip")
    assert "Order #1001" in placed.text
    noted = await chat.ask("+1 503 555 0199")
    assert noted.text == "Thanks, I've added your phone number +15035550199 to order #1001."
    [order] = await orders_of(sessionmaker, shop)
    assert order.phone == "+15035550199"


async def test_yes_to_what_name_is_not_taken_as_the_name(sessionmaker) -> None:
    # "What name should I book it under?" → "yes": the booking was made out to "yes" and the name sent
    # next was not understood. The same at a checkout's name and address questions.
    shop = await salon(sessionmaker)
    chat = chat_with(sessionmaker, shop)
    await chat.ask("I'd like a women's haircut tomorrow afternoon")
    await chat.ask("Wed 14:00 · Anna")
    again = await chat.ask("yes")
    assert again.text == "Please type the name for the booking."
    named = await chat.ask("John Miller")
    assert "prepayment" in named.text
    [booking] = await bookings_of(sessionmaker, shop)
    assert booking.customer_name == "John Miller"

    store = Chat(sessionmaker, await create_shop(sessionmaker, slug="shop", name="Shop", items=APPAREL))
    await store.ask("2 ocean blue shirts")
    await store.ask("checkout")
    assert "name" in (await store.ask("ok")).text.lower()
    await store.ask("Alice Smith")
    assert "address" in (await store.ask("thanks")).text.lower()
    await store.ask("4 Cedar Lane, Portland")
    placed = await store.ask("skip")
    assert "Name: Alice Smith" in placed.text and "Address: 4 Cedar Lane, Portland" in placed.text


async def test_a_greeting_with_a_question_about_a_service_not_offered_answers_the_question(sessionmaker) -> None:
    # "hi, do you do beard trims?" got only the greeting: the question was dropped.
    chat = chat_with(sessionmaker, await salon(sessionmaker))
    answer = await chat.ask("hi, do you do beard trims?")
    assert answer.text.startswith("Sorry, I couldn't find that in our catalogue.")
    assert titles(answer) == ["Services", "Talk to a human"]


async def test_a_question_at_the_booking_name_step_is_answered_and_the_name_asked_again(sessionmaker) -> None:
    # "tell me about colouring" to "what name should I book it under?" became the booking's name.
    shop = await salon(sessionmaker)
    chat = chat_with(sessionmaker, shop)
    await chat.ask("I'd like a women's haircut tomorrow afternoon")
    held = await chat.ask("Wed 14:00 · Anna")
    assert "What name should I book it under?" in held.text
    about = await chat.ask("tell me about colouring")
    assert about.text.startswith("Colouring — 80.00 EUR")
    assert about.text.endswith("What name should I book it under? You can add a phone number too (optional).")
    assert titles(about) == ["Cancel"]
    price = await chat.ask("how much is a men's haircut?")
    assert price.text.startswith("Men's haircut costs 25.00 EUR.") and "What name should I book it under?" in price.text
    [booking] = await bookings_of(sessionmaker, shop)
    assert booking.customer_name is None and booking.status == "held"
    named = await chat.ask("Bob Stone")
    assert "To confirm the booking, please pay the prepayment" in named.text
    [booking] = await bookings_of(sessionmaker, shop)
    assert booking.customer_name == "Bob Stone"


async def test_the_price_of_a_free_service_is_free(sessionmaker) -> None:
    # "how much is a consultation?" was "Free consultation costs 0.00 EUR."
    chat = chat_with(sessionmaker, await salon(sessionmaker))
    price = await chat.ask("how much is a consultation?")
    assert price.text.startswith("Free consultation is free of charge.")
