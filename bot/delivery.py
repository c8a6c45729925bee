"""Delivery windows of paid product orders in the dialogue.

After a product order is paid (``commerce.payments.mark_paid`` sends the payment confirmation), the
customer's next message gets, besides its answer, the question "when should we deliver?" with the
free windows of ``commerce.delivery.available_windows`` for the order's city (found in the order's
delivery address; asked for when no configured city matches) as buttons. The choice is recorded with
``commerce.delivery.choose_window``; a window that filled up meanwhile is refused and the others are
offered again. "When will my order arrive?" reports the chosen window. A company without delivery
windows gets none of this: its payment confirmation already says a manager will be in touch.

State: ``DialogueState.delivery`` (a ``DeliveryDraft``: the order, the city, the windows offered) and
``DialogueState.delivery_prompted`` (the order the question was asked about, so it is asked once).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select

from bot import texts
from bot.buttons import option
from bot.messages import Button, OutboundMessage
from bot.state import DeliveryDraft, Offer, Step
from bot.understand.rules import Understanding
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


class DeliveryDialogue:
    """Delivery-window handlers (``prompt``, ``choose``, ``city``, ``status``)."""

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

    async def prompt(self, turn: Turn, order: Order) -> OutboundMessage:
        """The question "when should we deliver order #N?" with window buttons (or "which city?")."""
        turn.state.delivery_prompted = order.id
        city = _city_in(order.delivery_address or "", await _cities(turn))
        if city is None:
            turn.state.delivery = DeliveryDraft(order_id=order.id)
            turn.state.step = Step.DELIVERY_CITY
            cities = await _cities(turn)
            return turn.reply(turn.t("delivery_ask_city", number=order.number, cities=", ".join(cities)),
                              buttons=[Button(title=c, payload=c) for c in cities[:MAX_WINDOW_BUTTONS]])[0]
        return (await self._offer(turn, order, city))[0]

    async def _offer(self, turn: Turn, order: Order, city: str, *, head: tuple[str, ...] = ()) -> list[OutboundMessage]:
        offers = await _windows(turn, city)
        if not offers:
            turn.state.delivery, turn.state.step = None, None
            turn.conversation.status = "pending"  # a manager arranges the delivery
            return turn.reply(*head, turn.t("delivery_none_free", city=city), buttons=[turn.button("human")])
        tz = company_zone(turn.company)
        shown = [Offer(title=texts.window_label(o.start.astimezone(tz), o.end.astimezone(tz), turn.language),
                       ref=o.window_id, day=o.day.isoformat()) for o in offers[:MAX_WINDOW_BUTTONS]]
        turn.state.delivery = DeliveryDraft(order_id=order.id, city=city, offers=shown)
        turn.state.step = Step.CHOOSE_WINDOW
        return turn.reply(*head, turn.t("delivery_windows", number=order.number),
                          buttons=[Button(title=o.title, payload=option(n)) for n, o in enumerate(shown, 1)])

    async def choose(self, turn: Turn, nlu: Understanding) -> list[OutboundMessage]:
        """An offered window was chosen: record it (``choose_window``); a full one is refused."""
        draft = turn.state.delivery
        if draft is None or nlu.offer is None or nlu.offer >= len(draft.offers):
            return turn.reply(turn.t("fallback_plain"), buttons=[turn.button("status")])
        offer = draft.offers[nlu.offer]
        order = await _order(turn, draft.order_id)
        if order is None:
            return turn.reply(turn.t("order_none"), buttons=[turn.button("catalog")])
        try:
            chosen = await choose_window(turn.session, order=order, window=offer.ref,
                                         day=date.fromisoformat(offer.day or ""), now=turn.now)
        except (WindowFull, WindowUnavailable):
            return await self._offer(turn, order, draft.city or "", head=(turn.t("delivery_full"),))
        except OrderNotPaid:  # the payment was refunded meanwhile: the order status tells what happened
            turn.state.delivery = None
            return turn.reply(turn.t("ok"), buttons=[turn.button("status")])
        turn.state.delivery = None
        tz = company_zone(turn.company)
        window = texts.window_label(chosen.start_at.astimezone(tz), chosen.end_at.astimezone(tz), turn.language)
        return turn.reply(turn.t("delivery_chosen", number=order.number, window=window),
                          buttons=[turn.button("catalog")])

    async def city(self, turn: Turn, nlu: Understanding) -> list[OutboundMessage]:
        """The city of the order's delivery (asked when the address named no city with windows)."""
        draft = turn.state.delivery
        order = await _order(turn, draft.order_id) if draft else None
        if order is None:
            return turn.reply(turn.t("order_none"), buttons=[turn.button("catalog")])
        answer = " ".join(nlu.text.split())
        if not answer:
            turn.state.step = Step.DELIVERY_CITY
            return turn.reply(turn.t("delivery_ask_city", number=order.number,
                                     cities=", ".join(await _cities(turn))), buttons=[turn.button("cancel")])
        city = _city_in(answer, await _cities(turn))
        if city is None:
            turn.state.delivery = None
            turn.conversation.status = "pending"  # a manager arranges the delivery
            return turn.reply(turn.t("delivery_no_city", city=answer), buttons=[turn.button("human")])
        return await self._offer(turn, order, city)

    async def status(self, turn: Turn, order: Order) -> list[OutboundMessage] | None:
        """"When will my order arrive?" for a paid order: its window, the windows to choose from, or
        that a manager will arrange it. ``None`` when ``order`` is not paid (the order status answers)."""
        if order.payment_status != "paid":
            return None
        chosen = await order_delivery(turn.session, order)
        if chosen is not None:
            tz = company_zone(turn.company)
            window = texts.window_label(chosen.start_at.astimezone(tz), chosen.end_at.astimezone(tz), turn.language)
            return turn.reply(turn.t("delivery_status", number=order.number, window=window, city=chosen.city),
                              buttons=[turn.button("catalog")])
        if await self._needs_window(turn, order):
            return [await self.prompt(turn, order)]
        return turn.reply(turn.t("delivery_manager", number=order.number), buttons=[turn.button("human")])


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


async def _order(turn: Turn, order_id: object) -> Order | None:
    return (await turn.session.execute(turn.scope.select(
        Order, Order.id == order_id, Order.company_id == turn.company.id))).scalar_one_or_none()
