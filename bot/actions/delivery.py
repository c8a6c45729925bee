"""Delivery windows of paid product orders: the actions (results, no text, no dialogue step).

After a product order is paid (``commerce.payments.mark_paid`` sends the payment confirmation), the
customer's next message gets, besides its answer, the question "when should we deliver?" with the
free windows of ``commerce.delivery.available_windows`` for the order's city (found in the order's
delivery address; asked for when no configured city matches). The choice is recorded with
``commerce.delivery.choose_window``; a window that filled up meanwhile is refused and the others are
offered again. "When will my order arrive?" reports the chosen window. A company without delivery
windows gets none of this: its payment confirmation already says a manager will be in touch.

State (kept by ``bot.policy.machine.advance``): ``DialogueState.delivery`` (the order, the city, the
windows offered) and ``DialogueState.delivery_prompted`` (the order the question was asked about, so it
is asked once).
"""

from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select

from bot.actions import results as r
from commerce.delivery import (
    OrderNotPaid,
    WindowFull,
    WindowOffer,
    WindowUnavailable,
    available_windows,
    choose_window,
    order_delivery,
)
from commerce.schedule import company_zone
from core.models import Booking, DeliveryWindow, Order
from knowledge.text import normalize

if TYPE_CHECKING:
    from bot.turn import Turn

MAX_WINDOW_BUTTONS = 6
LOOKAHEAD_DAYS = 7


class DeliveryActions:
    """Delivery-window actions (``due``, ``prompt``, ``choose``, ``city``, ``status``)."""

    async def due(self, turn: Turn, order: Order | None) -> bool:
        """Whether ``order`` is a paid product order of this conversation that still needs a window the
        customer was not asked about yet, in a company that has delivery windows."""
        if order is None or order.payment_status != "paid" or turn.state.delivery_prompted == order.id:
            return False
        return await self._needs_window(turn, order)

    async def _needs_window(self, turn: Turn, order: Order) -> bool:
        if not await _cities(turn):
            return False
        is_booking = (await turn.session.execute(select(Booking.id).where(
            Booking.tenant_id == order.tenant_id, Booking.order_id == order.id).limit(1))).first()
        return not is_booking and await order_delivery(turn.session, order) is None

    async def prompt(self, turn: Turn, order: Order) -> r.Result:
        """"When should we deliver order #N?": the windows of the order's city, or "which city?"."""
        cities = await _cities(turn)
        city = _city_in(order.delivery_address or "", cities)
        if city is None:
            return r.CityNeeded(order, tuple(cities), prompted=True)
        return await self._offer(turn, order, city, prompted=True)

    async def _offer(self, turn: Turn, order: Order, city: str, *, prompted: bool = False,
                     full: bool = False) -> r.Result:
        offers = await _windows(turn, city)
        if not offers:
            turn.conversation.status = "pending"  # a manager arranges the delivery
            return r.NoWindows(city, full=full, prompted=order.id if prompted else None)
        return r.WindowsOffered(order, city, tuple(offers[:MAX_WINDOW_BUTTONS]), company_zone(turn.company),
                                prompted=prompted, full=full)

    async def choose(self, turn: Turn, index: int | None) -> r.Result:
        """Offered window ``index`` (0-based) was chosen: record it; a full one is refused."""
        draft = turn.state.delivery
        if draft is None or index is None or not 0 <= index < len(draft.offers):
            return r.NotUnderstood()
        offer = draft.offers[index]
        order = await _order(turn, draft.order_id)
        if order is None:
            return r.OrderStatusShown(None)
        try:
            chosen = await choose_window(turn.session, order=order, window=offer.ref,
                                         day=date.fromisoformat(offer.day or ""), now=turn.now)
        except (WindowFull, WindowUnavailable):
            return await self._offer(turn, order, draft.city or "", full=True)
        except OrderNotPaid:  # the payment was refunded meanwhile: the order status tells what happened
            return r.DeliveryDropped()
        return r.WindowChosen(order, chosen.start_at, chosen.end_at, chosen.city, company_zone(turn.company))

    async def city(self, turn: Turn, answer: str) -> r.Result:
        """The city of the order's delivery (asked when the address named no city with windows)."""
        draft = turn.state.delivery
        order = await _order(turn, draft.order_id) if draft else None
        if order is None:
            return r.OrderStatusShown(None)
        cities = await _cities(turn)
        answer = " ".join(answer.split())
        if not answer:
            return r.CityNeeded(order, tuple(cities), again=True)
        city = _city_in(answer, cities)
        if city is None:
            turn.conversation.status = "pending"  # a manager arranges the delivery
            return r.CityUnknown(answer)
        return await self._offer(turn, order, city)

    async def status(self, turn: Turn, order: Order) -> r.Result | None:
        """"When will my order arrive?" for a paid order: its window, the windows to choose from, or
        that a manager will arrange it. ``None`` when ``order`` is not paid (the order status answers)."""
        if order.payment_status != "paid":
            return None
        chosen = await order_delivery(turn.session, order)
        if chosen is not None:
            return r.WindowChosen(order, chosen.start_at, chosen.end_at, chosen.city, company_zone(turn.company),
                                  earlier=True)
        if await self._needs_window(turn, order):
            return await self.prompt(turn, order)
        return r.DeliveryByManager(order)


async def _cities(turn: Turn) -> list[str]:
    """The cities of the company's active delivery windows (each once, in the order first defined)."""
    stmt = turn.scope.select(DeliveryWindow, DeliveryWindow.company_id == turn.company.id,
                             DeliveryWindow.active.is_(True)).order_by(DeliveryWindow.city)
    rows = (await turn.session.execute(stmt)).scalars()
    return list(dict.fromkeys(" ".join(w.city.split()) for w in rows))


def _city_in(text: str, cities: list[str]) -> str | None:
    """The configured city named in ``text`` (an address or a city), matching whole words."""
    words = f" {normalize(text)} "
    for city in sorted(cities, key=len, reverse=True):
        if f" {normalize(city)} " in words:
            return city
    return None


async def _windows(turn: Turn, city: str) -> list[WindowOffer]:
    """Free windows for ``city`` from today (company timezone) over the next days, earliest first."""
    today = turn.now.astimezone(company_zone(turn.company)).date()
    offers: list[WindowOffer] = []
    for offset in range(LOOKAHEAD_DAYS):
        offers += await available_windows(turn.session, company=turn.company, city=city,
                                          day=today + timedelta(days=offset), now=turn.now)
        if len(offers) >= MAX_WINDOW_BUTTONS:
            break
    return offers


async def _order(turn: Turn, order_id: uuid.UUID) -> Order | None:
    return (await turn.session.execute(turn.scope.select(
        Order, Order.id == order_id, Order.company_id == turn.company.id))).scalar_one_or_none()
