"""Delivery windows for paid product orders, on SQLite and PostgreSQL: offers per city and day,
capacity enforced by the database (also under concurrency), only paid orders may choose."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from commerce.bookings import hold_slot
from commerce.delivery import (
    OrderNotPaid,
    WindowFull,
    WindowUnavailable,
    add_delivery_window,
    available_windows,
    choose_window,
    order_delivery,
    release_window,
)
from commerce.payments import mark_paid
from commerce.schedule import set_schedule
from core.accounts import create_company, create_tenant
from core.db import create_engine, create_sessionmaker
from core.models import Company, KnowledgeItem, Order, OrderDelivery, OrderLine

FRIDAY = date(2026, 3, 13)
NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)  # Tuesday, 12:00 in Moscow


async def make_shop(s, slug: str = "shop") -> Company:  # type: ignore[no-untyped-def]
    tenant = await create_tenant(s, name=slug.title(), slug=slug)
    return await create_company(s, tenant_id=tenant.id, slug=slug, name=slug.title(), currency="RUB",
                                language="ru", timezone="Europe/Moscow")


async def make_order(s, company: Company, *, paid: bool = True, name: str = "Ivan") -> Order:  # type: ignore[no-untyped-def]
    last = (await s.execute(select(func.max(Order.number)).where(Order.company_id == company.id))).scalar_one()
    order = Order(tenant_id=company.tenant_id, company_id=company.id, number=(last or 1000) + 1, total_minor=199000,
                  currency="RUB", customer_name=name, delivery_address="ул. Ленина, 1", phone="+7900")
    order.lines = [OrderLine(tenant_id=company.tenant_id, name="Кофеварка", quantity=1, unit_price_minor=199000)]
    s.add(order)
    await s.flush()
    if paid:
        await mark_paid(s, order=order, method="card", paid_at=NOW)
    return order


async def test_windows_offered_per_city_day_and_cutoff(sessionmaker) -> None:  # type: ignore[no-untyped-def]
    async with sessionmaker() as s, s.begin():
        shop = await make_shop(s)
        morning = await add_delivery_window(s, company=shop, city="Moscow", start_time="10:00", end_time="14:00",
                                            capacity=2, weekdays=[0, 1, 2, 3, 4])
        await add_delivery_window(s, company=shop, city="Moscow", start_time="18:00", end_time="22:00", capacity=1,
                                  cutoff_minutes=120)
        await add_delivery_window(s, company=shop, city="Kazan", start_time="10:00", end_time="14:00")
        offers = await available_windows(s, company=shop, city=" moscow ", day=FRIDAY, now=NOW)
        assert [(o.start, o.end, o.seats_left) for o in offers] == [
            (datetime(2026, 3, 13, 7, 0, tzinfo=UTC), datetime(2026, 3, 13, 11, 0, tzinfo=UTC), 2),  # 10-14 MSK
            (datetime(2026, 3, 13, 15, 0, tzinfo=UTC), datetime(2026, 3, 13, 19, 0, tzinfo=UTC), 1),
        ]
        assert offers[0].window_id == morning.id
        # Saturday: the morning window runs on weekdays only.
        assert len(await available_windows(s, company=shop, city="Moscow", day=date(2026, 3, 14), now=NOW)) == 1
        # Friday 16:30 MSK: the morning window has started and the evening one is past its 2-hour cutoff.
        late = datetime(2026, 3, 13, 13, 30, tzinfo=UTC)
        assert await available_windows(s, company=shop, city="Moscow", day=FRIDAY, now=late) == []
        assert await available_windows(s, company=shop, city="Omsk", day=FRIDAY, now=NOW) == []
        # Days off of the company's schedule have no deliveries.
        await set_schedule(s, company=shop, schedule={"days_off": [FRIDAY.isoformat()]})
        assert await available_windows(s, company=shop, city="Moscow", day=FRIDAY, now=NOW) == []
        with pytest.raises(ValueError):
            await add_delivery_window(s, company=shop, city="Moscow", start_time="14:00", end_time="10:00")


async def test_capacity_two_seats_third_order_refused(sessionmaker) -> None:  # type: ignore[no-untyped-def]
    async with sessionmaker() as s, s.begin():
        shop = await make_shop(s)
        await add_delivery_window(s, company=shop, city="Moscow", start_time="10:00", end_time="14:00", capacity=2)
        orders = [await make_order(s, shop, name=n) for n in ("A", "B", "C")]
        offer = (await available_windows(s, company=shop, city="Moscow", day=FRIDAY, now=NOW))[0]
        first = await choose_window(s, order=orders[0], window=offer, now=NOW)
        assert (first.day, first.start_at, first.city) == ("2026-03-13", offer.start, "Moscow")
        assert (await available_windows(s, company=shop, city="Moscow", day=FRIDAY, now=NOW))[0].seats_left == 1
        await choose_window(s, order=orders[1], window=offer, now=NOW)
        assert await available_windows(s, company=shop, city="Moscow", day=FRIDAY, now=NOW) == []
        with pytest.raises(WindowFull):
            await choose_window(s, order=orders[2], window=offer, now=NOW)
        assert await order_delivery(s, orders[2]) is None
        # The other day still has room; choosing again is idempotent.
        assert (await choose_window(s, order=orders[0], window=offer, now=NOW)).id == first.id
        # Order A moves to Monday: its Friday seat goes to C.
        monday = (await available_windows(s, company=shop, city="Moscow", day=date(2026, 3, 16), now=NOW))[0]
        moved = await choose_window(s, order=orders[0], window=monday, now=NOW)
        assert moved.day == "2026-03-16"
        await choose_window(s, order=orders[2], window=offer, now=NOW)
        assert (await s.execute(select(func.count()).select_from(OrderDelivery))).scalar_one() == 3
        # A refunded order gives its seat back.
        assert await release_window(s, order=orders[2])
        assert (await available_windows(s, company=shop, city="Moscow", day=FRIDAY, now=NOW))[0].seats_left == 1


async def test_only_paid_product_orders_choose_a_window(sessionmaker) -> None:  # type: ignore[no-untyped-def]
    async with sessionmaker() as s, s.begin():
        shop = await make_shop(s)
        window = await add_delivery_window(s, company=shop, city="Moscow", start_time="10:00", end_time="14:00")
        unpaid = await make_order(s, shop, paid=False)
        with pytest.raises(OrderNotPaid):
            await choose_window(s, order=unpaid, window=window, day=FRIDAY, now=NOW)
        # Another company's window is not offered to this order.
        other = await make_shop(s, "other")
        foreign = await add_delivery_window(s, company=other, city="Moscow", start_time="10:00", end_time="14:00")
        paid = await make_order(s, shop)
        with pytest.raises(WindowUnavailable):
            await choose_window(s, order=paid, window=foreign.id, day=FRIDAY, now=NOW)
        with pytest.raises(WindowUnavailable):  # already over
            await choose_window(s, order=paid, window=window, day=date(2026, 3, 9), now=NOW)
        # A booking's prepayment order is not a delivery.
        shop.type = "hybrid"
        await set_schedule(s, company=shop, schedule={})
        service = KnowledgeItem(tenant_id=shop.tenant_id, company_id=shop.id, kind="service", name="Setup",
                                price_minor=50000, currency="RUB", duration_minutes=60, attributes={})
        s.add(service)
        await s.flush()
        booking = await hold_slot(s, company=shop, service=service, now=NOW,
                                  start=datetime(2026, 3, 13, 7, 0, tzinfo=UTC))
        prepay = await s.get(Order, booking.order_id)
        assert prepay is not None
        await mark_paid(s, order=prepay, method="card", paid_at=NOW)
        with pytest.raises(WindowUnavailable):
            await choose_window(s, order=prepay, window=window, day=FRIDAY, now=NOW)


async def test_concurrent_choices_respect_capacity(database_url: str) -> None:
    """Six paid orders choose the same two-seat window at once: two get it, four get WindowFull."""
    engine = create_engine(database_url, pool_size=10)
    sm = create_sessionmaker(engine)
    try:
        async with sm() as s, s.begin():
            shop = await make_shop(s)
            window = await add_delivery_window(s, company=shop, city="Moscow", start_time="10:00", end_time="14:00",
                                               capacity=2)
            orders = [await make_order(s, shop, name=str(i)) for i in range(6)]

        async def attempt(order_id) -> str:  # type: ignore[no-untyped-def]
            try:
                async with sm() as s, s.begin():
                    order = await s.get(Order, order_id)
                    assert order is not None
                    await choose_window(s, order=order, window=window.id, day=FRIDAY, now=NOW)
                return "ok"
            except WindowFull:
                return "full"

        results = await asyncio.gather(*(attempt(o.id) for o in orders))
        assert sorted(results) == ["full"] * 4 + ["ok"] * 2
        async with sm() as s:
            seats = (await s.execute(select(OrderDelivery.seat))).scalars().all()
            assert sorted(seats) == [0, 1]
    finally:
        await engine.dispose()


def test_window_times_are_validated() -> None:
    from commerce.delivery import _minutes

    assert _minutes("24:00", "t") == 1440
    with pytest.raises(ValueError):
        _minutes("9:00", "t")
    assert timedelta(minutes=_minutes("09:30", "t")) == timedelta(hours=9, minutes=30)
