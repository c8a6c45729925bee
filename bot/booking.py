"""The booking dialogue of service (and hybrid) companies: free times, holding a slot, the name, the
prepayment link, and the customer's "my booking", cancel and move.

``BookingDialogue`` has one method per booking intent of ``bot.nlu``; the engine dispatches to them
with its ``Turn`` (the session, the rows, the state, the reply language and the clock ``turn.now``).
Times the customer asks for are read with ``commerce.when.parse_when`` in the company's timezone;
free times come from ``commerce.schedule.free_slots`` (``free_slots`` day by day for "the nearest
days"), and every change goes through ``commerce.bookings`` (``hold_slot``, ``cancel_booking``,
``move_booking``). Times are shown in the company's timezone. The confirmation sent when a
prepayment is paid comes from ``commerce.payments.mark_paid`` (``on_order_paid``), not from here.

State: ``DialogueState.booking`` (a ``BookingDraft``) holds what is being arranged and the offers
shown as buttons; ``DialogueState.booking_id`` the last booking made in the conversation.
"""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from bot import texts
from bot.buttons import option, reference
from bot.commands import FindSlots
from bot.messages import Button, OutboundMessage
from bot.state import BookingDraft, Offer, Step
from bot.understand.rules import Understanding, speaks_of_time
from commerce.bookings import (
    BookingStateError,
    SlotTaken,
    SlotUnavailable,
    TooLateToChange,
    bookings_for_order,
    cancel_booking,
    hold_slot,
    move_booking,
    payment_ttl,
    prepayment_minor,
)
from commerce.errors import PaymentUnavailable, PriceMissing
from commerce.payments import PaymentStateError, issue_payment_link
from commerce.providers import ProviderRegistry
from commerce.schedule import (
    NotBookable,
    PartOfDay,
    ScheduleError,
    Slot,
    company_zone,
    eligible_resources,
    free_slots,
    schedule_of,
    service_duration,
)
from commerce.when import WhenQuery, parse_when
from core.models import Booking, KnowledgeItem, Order
from knowledge.text import detect_language, tokenize

if TYPE_CHECKING:
    from bot.turn import Turn

MAX_SLOT_BUTTONS = 8  # free times offered at once (spread over the day or part of day asked for)
NEAREST_DAYS = 3  # days offered when the day asked for has no free time
LOOKAHEAD_DAYS = 14  # how far "the nearest days" look
ARRANGING: frozenset[Step] = frozenset({Step.CHOOSE_SERVICE, Step.CHOOSE_SLOT, Step.ASK_DAY})
_PARTS: tuple[PartOfDay, ...] = ("morning", "afternoon", "evening")
_PHONE_IN_TEXT = re.compile(r"\+?\d[\d\s().\-]{5,}\d")


class BookingDialogue:
    """Booking handlers (``book``, ``choose_slot``, ``answer_name``, ``status``, ``cancel``,
    ``cancel_confirmed``, ``keep``, ``move``); ``providers`` issue the prepayment links."""

    def __init__(self, *, providers: ProviderRegistry) -> None:
        self._providers = providers

    # -- a new booking ------------------------------------------------------------------------------

    async def book(self, turn: Turn, nlu: Understanding, *, when: WhenQuery | None = None) -> list[OutboundMessage]:
        """"A haircut tomorrow afternoon", "book a manicure on Friday after 3pm", "можно завтра утром?":
        offer free times of the service (asking which service when it is not clear). ``when`` is the
        time asked for when a command already carries it (else it is read from ``nlu.text``)."""
        if turn.asked == Step.BOOKING_NAME:  # a new request instead of the name: give the unnamed hold back
            await self._release_unnamed(turn)
        previous = turn.state.booking if turn.asked in ARRANGING else None
        query = when if when is not None else self._when(turn, nlu.text)
        if previous is not None and previous.mode == "move" and previous.booking_id is not None:
            booking = await _load_booking(turn, previous.booking_id)
            if booking is not None and booking.status in ("held", "confirmed"):
                return await self._move_offer(turn, booking, query, previous)
        ids = await _service_ids(turn, nlu, previous)
        day, part, after = _merged(previous, query)
        if len(ids) != 1:
            return await self._which_service(turn, ids, day=day, part=part, after=after)
        service = await _load_service(turn, ids[0])
        if service is None:
            return turn.reply(turn.t("item_unavailable"), buttons=[turn.button("services")])
        turn.state.last_item_id, turn.state.last_variant_id = service.id, None
        resource = await _resource_named(turn, service, nlu.text)
        if resource is None and previous is not None and previous.service_id == service.id:
            resource = previous.resource
        return await self._offer(turn, service, day=day, part=part, after=after, resource=resource)

    async def _which_service(self, turn: Turn, ids: list[uuid.UUID], *, day: date | None, part: PartOfDay | None,
                             after: time | None) -> list[OutboundMessage]:
        services = [s for s in await _services(turn) if not ids or s.id in ids]
        if not services:
            return turn.reply(turn.t("no_services"), buttons=[turn.button("human")])
        turn.state.step = Step.CHOOSE_SERVICE
        turn.state.booking = BookingDraft(day=day.isoformat() if day else None, part_of_day=part,
                                          after=texts.clock(after) if after else None,
                                          candidates=[s.id for s in services])
        lines = [turn.t("which_service")]
        lines += [texts.bullet(s.name, _details(turn, s)) for s in services]
        buttons = [Button(title=s.name, payload=reference(FindSlots(
                       service_id=s.id, day=day, day_part=part, time=texts.clock(after) if after else None)))
                   for s in services]
        return turn.reply(*lines, buttons=buttons[:MAX_SLOT_BUTTONS])

    async def _offer(self, turn: Turn, service: KnowledgeItem, *, day: date | None, part: PartOfDay | None,
                     after: time | None, resource: str | None, booking: Booking | None = None,
                     head: tuple[str, ...] = ()) -> list[OutboundMessage]:
        """Free times of ``service`` on ``day`` (today when ``None``) as buttons, or the nearest days
        with free times; ``booking`` is the booking being moved."""
        tz = company_zone(turn.company)
        day = day or turn.now.astimezone(tz).date()
        draft = BookingDraft(mode="move" if booking is not None else "book", service_id=service.id,
                             booking_id=booking.id if booking is not None else None, day=day.isoformat(),
                             part_of_day=part, after=texts.clock(after) if after else None, resource=resource)
        try:
            slots = await self._free(turn, service, day=day, part=part, after=after, resource=resource,
                                     booking=booking)
        except ScheduleError:
            return turn.reply(*head, turn.t("no_services"), buttons=[turn.button("human")])
        turn.state.booking = draft
        turn.state.step = Step.CHOOSE_SLOT
        if slots:
            several = len(await eligible_resources(turn.session, company=turn.company, service=service)) > 1
            draft.offers = [Offer(title=texts.slot_label(s.start.astimezone(tz), turn.language,
                                                         resource=s.resource_name if several else None),
                                  ref=s.resource_id, start=s.start.isoformat())
                            for s in _spread(slots, MAX_SLOT_BUTTONS, tz)]
            header = turn.t("slots_header", service=service.name, details=_details(turn, service),
                            day=texts.day_label(day, turn.language) + texts.part_label(
                                turn.language, part_of_day=part, after=after))
            return turn.reply(*head, header, turn.t("slots_hint"),
                              buttons=[Button(title=o.title, payload=option(n)) for n, o in enumerate(draft.offers, 1)])
        days = await self._nearest(turn, service, after_day=day, part=part, after=after, resource=resource,
                                   booking=booking)
        if not days:
            turn.state.booking, turn.state.step = None, None
            return turn.reply(*head, turn.t("slots_none", service=service.name), buttons=[turn.button("human")])
        text = turn.t("slots_none_days", service=service.name, day=texts.day_label(day, turn.language),
                      part=texts.part_label(turn.language, part_of_day=part, after=after))
        buttons = [Button(title=texts.day_label(d, turn.language), payload=reference(FindSlots(
                       day=d, day_part=part, time=texts.clock(after) if after else None))) for d in days]
        return turn.reply(*head, text, buttons=buttons)

    async def _free(self, turn: Turn, service: KnowledgeItem, *, day: date, part: PartOfDay | None,
                    after: time | None, resource: str | None, booking: Booking | None) -> list[Slot]:
        slots = await free_slots(turn.session, company=turn.company, service=service, day=day, part_of_day=part,
                                 after=after, now=turn.now, ignore_booking_id=booking.id if booking else None)
        if resource:
            slots = [s for s in slots if s.resource_name.casefold() == resource.casefold()]
        if booking is not None:  # the booking's own time is not "another time"
            slots = [s for s in slots if s.start != booking.start_at]
        return slots

    async def _nearest(self, turn: Turn, service: KnowledgeItem, *, after_day: date, part: PartOfDay | None,
                       after: time | None, resource: str | None, booking: Booking | None) -> list[date]:
        found: list[date] = []
        for offset in range(1, LOOKAHEAD_DAYS + 1):
            day = after_day + timedelta(days=offset)
            if await self._free(turn, service, day=day, part=part, after=after, resource=resource, booking=booking):
                found.append(day)
                if len(found) >= NEAREST_DAYS:
                    break
        return found

    async def choose_slot(self, turn: Turn, nlu: Understanding) -> list[OutboundMessage]:
        """An offered time was chosen: hold it (or move the booking there)."""
        draft = turn.state.booking
        if draft is None or nlu.offer is None or nlu.offer >= len(draft.offers):
            return turn.reply(turn.t("fallback_plain"), buttons=[turn.button("book")])
        offer = draft.offers[nlu.offer]
        start = datetime.fromisoformat(offer.start or "")
        if draft.mode == "move" and draft.booking_id is not None:
            booking = await _load_booking(turn, draft.booking_id)
            if booking is None:
                return turn.reply(turn.t("booking_not_active"), buttons=[turn.button("my_booking")])
            return await self._move_into(turn, booking, offer, start, draft)
        service = await _load_service(turn, draft.service_id) if draft.service_id else None
        if service is None:
            return turn.reply(turn.t("item_unavailable"), buttons=[turn.button("services")])
        try:
            booking = await hold_slot(
                turn.session, company=turn.company, service=service, start=start, now=turn.now, resource=offer.ref,
                contact_id=turn.conversation.contact_id, conversation_id=turn.conversation.id,
                customer_name=turn.state.profile.name or None,
                phone=turn.state.profile.phone or turn.inbound.phone or None,
            )
        except (SlotTaken, SlotUnavailable):
            return await self._again(turn, service, draft, start)
        except PriceMissing:
            return turn.reply(turn.t("booking_price_missing", name=service.name), buttons=[turn.button("human")])
        except (NotBookable, ScheduleError):
            return turn.reply(turn.t("item_unavailable"), buttons=[turn.button("services")])
        turn.state.booking = None
        turn.state.booking_id = booking.id
        if not booking.customer_name:
            turn.state.step = Step.BOOKING_NAME
            key = "slot_held" if booking.status == "held" else "slot_reserved"
            return turn.reply(turn.t(key, **_facts(turn, booking)), turn.t("ask_booking_name"),
                              buttons=[turn.button("cancel")])
        return await self._settled(turn, booking)

    async def _again(self, turn: Turn, service: KnowledgeItem, draft: BookingDraft, start: datetime, *,
                     booking: Booking | None = None) -> list[OutboundMessage]:
        """The chosen time was taken meanwhile: apologise and offer the times still free."""
        tz = company_zone(turn.company)
        head = turn.t("slot_taken", when=texts.when_label(start.astimezone(tz), turn.language))
        return await self._offer(turn, service, day=_day(draft.day) or start.astimezone(tz).date(),
                                 part=_part(draft.part_of_day), after=_time(draft.after), resource=draft.resource,
                                 booking=booking, head=(head,))

    async def answer_name(self, turn: Turn, nlu: Understanding) -> list[OutboundMessage]:
        """The name (and optional phone) for the booking just held."""
        booking = await _load_booking(turn, turn.state.booking_id) if turn.state.booking_id else None
        if booking is None:
            return turn.reply(turn.t("booking_not_active"), buttons=[turn.button("book")])
        if not _active(booking, turn.now):
            return await self._hold_lost(turn, booking)
        name, phone = split_name_phone(nlu.text)
        if not name:
            turn.state.step = Step.BOOKING_NAME
            return turn.reply(turn.t("bad_booking_name"), buttons=[turn.button("cancel")])
        booking.customer_name = name
        booking.phone = phone or booking.phone
        order = await turn.session.get(Order, booking.order_id) if booking.order_id else None
        if order is not None:
            order.customer_name, order.phone = name, phone or order.phone
        turn.state.profile.name = name
        if phone:
            turn.state.profile.phone = phone
        await turn.session.flush()
        return await self._settled(turn, booking)

    async def lost(self, turn: Turn, booking: Booking) -> list[OutboundMessage]:
        """The answer about a booking that is no longer active (asked for its payment link, say): a
        lost hold offers the free times of that day again; a cancelled booking is just that."""
        if booking.status == "cancelled":
            return turn.reply(turn.t("booking_not_active"), buttons=[turn.button("book"), turn.button("services")])
        return await self._hold_lost(turn, booking)

    async def _hold_lost(self, turn: Turn, booking: Booking) -> list[OutboundMessage]:
        tz = company_zone(turn.company)
        head = turn.t("booking_hold_expired", when=texts.when_label(booking.start_at.astimezone(tz), turn.language))
        service = await _load_service(turn, booking.service_id) if booking.service_id else None
        if service is None:
            return turn.reply(head, buttons=[turn.button("services")])
        return await self._offer(turn, service, day=booking.start_at.astimezone(tz).date(), part=None, after=None,
                                 resource=None, head=(head,))

    async def _settled(self, turn: Turn, booking: Booking) -> list[OutboundMessage]:
        """The booking has its name: confirmed (nothing to prepay) or the prepayment link."""
        facts = _facts(turn, booking)
        rest = (booking.price_minor or 0) - booking.prepay_minor
        on_site = turn.t("booking_pay_on_site", price=turn.money(rest, booking.currency)) if rest > 0 else ""
        if booking.status == "confirmed":
            return turn.reply(turn.t("booking_confirmed", **facts), on_site, buttons=[turn.button("my_booking")])
        order = await turn.session.get(Order, booking.order_id) if booking.order_id else None
        if order is None:  # pragma: no cover - a held booking always has its prepayment order
            return turn.reply(turn.t("slot_reserved", **facts), buttons=[turn.button("human")])
        try:
            payment = await issue_payment_link(turn.session, order=order, company=turn.company,
                                               providers=self._providers, ttl=payment_ttl(booking, now=turn.now))
        except (PaymentUnavailable, KeyError):
            turn.conversation.status = "pending"  # flagged for a manager
            return turn.reply(turn.t("slot_reserved", **facts),
                              turn.t("booking_payment_unavailable", until=facts["until"]),
                              buttons=[turn.button("my_booking")])
        except PaymentStateError:
            return turn.reply(turn.t("booking_confirmed", **facts), buttons=[turn.button("my_booking")])
        amount = turn.money(booking.prepay_minor, booking.currency)
        return turn.reply(turn.t("slot_reserved", **facts), turn.t("booking_prepay", amount=amount,
                                                                   url=payment.checkout_url),
                          turn.t("booking_held_until", until=facts["until"]), on_site, url=payment.checkout_url,
                          buttons=[turn.button("my_booking"), turn.button("cancel_booking")])

    async def _release_unnamed(self, turn: Turn) -> None:
        booking = await _load_booking(turn, turn.state.booking_id) if turn.state.booking_id else None
        if booking is not None and booking.status in ("held", "confirmed") and not booking.customer_name:
            await cancel_booking(turn.session, booking=booking, now=turn.now, by="customer")

    async def release_held(self, turn: Turn) -> list[OutboundMessage]:
        """"Cancel" at the name question: give the time just taken back."""
        booking = await _load_booking(turn, turn.state.booking_id) if turn.state.booking_id else None
        if booking is not None and booking.status in ("held", "confirmed"):
            await cancel_booking(turn.session, booking=booking, now=turn.now, by="customer")
        return turn.reply(turn.t("booking_released"), buttons=[turn.button("book"), turn.button("services")])

    # -- existing bookings ------------------------------------------------------------------------------

    async def status(self, turn: Turn, nlu: Understanding) -> list[OutboundMessage]:
        """"My booking": the customer's upcoming bookings (and the prepayment link of a held one)."""
        bookings = await upcoming(turn)
        if not bookings:
            return turn.reply(turn.t("booking_none"), buttons=[turn.button("book"), turn.button("services")])
        lines, url = [], None
        for b in bookings:
            facts = _facts(turn, b)
            if b.status == "held":
                lines.append(turn.t("booking_line_held", amount=turn.money(b.prepay_minor, b.currency), **facts))
                if url is None and b.order_id is not None:
                    url = await self._live_link(turn, b)
            else:
                lines.append(turn.t("booking_line_confirmed", **facts))
        if len(lines) == 1:
            body = [turn.t("booking_one", line=lines[0])]
        else:
            body = [turn.t("booking_header"), *[texts.bullet(line) for line in lines]]
        if url:
            body.append(turn.t("booking_pay_here", url=url))
        return turn.reply(*body, url=url, buttons=[turn.button("move_booking"), turn.button("cancel_booking")])

    async def _live_link(self, turn: Turn, booking: Booking) -> str | None:
        order = await turn.session.get(Order, booking.order_id) if booking.order_id else None
        if order is None or order.payment_status == "paid":
            return None
        try:
            payment = await issue_payment_link(turn.session, order=order, company=turn.company,
                                               providers=self._providers, ttl=payment_ttl(booking, now=turn.now))
        except (PaymentUnavailable, PaymentStateError, KeyError):
            return None
        return payment.checkout_url

    async def _target(self, turn: Turn, nlu: Understanding, mode: str) -> Booking | list[OutboundMessage]:
        """The booking a cancel/move is about, or the reply asking which one (or saying there is none)."""
        draft = turn.state.booking
        if nlu.offer is not None and turn.asked == Step.CHOOSE_BOOKING and draft is not None \
                and nlu.offer < len(draft.offers):
            booking = await _load_booking(turn, draft.offers[nlu.offer].ref)
            if booking is not None and _active(booking, turn.now):
                return booking
        bookings = await upcoming(turn)
        if not bookings:
            return turn.reply(turn.t("booking_none"), buttons=[turn.button("book"), turn.button("services")])
        if len(bookings) == 1:
            return bookings[0]
        tz = company_zone(turn.company)
        offers = [Offer(title=f"{b.service_name} · {texts.when_label(b.start_at.astimezone(tz), turn.language)}",
                        ref=b.id) for b in bookings[:MAX_SLOT_BUTTONS]]
        turn.state.booking = BookingDraft(mode=mode, offers=offers)
        turn.state.step = Step.CHOOSE_BOOKING
        return turn.reply(turn.t("which_booking_cancel" if mode == "cancel" else "which_booking_move"),
                          buttons=[Button(title=o.title, payload=option(n)) for n, o in enumerate(offers, 1)])

    async def cancel(self, turn: Turn, nlu: Understanding) -> list[OutboundMessage]:
        """"Cancel my booking": ask to confirm, saying whether the prepayment is refundable."""
        target = await self._target(turn, nlu, "cancel")
        if not isinstance(target, Booking):
            return target
        facts = _facts(turn, target)
        lines = [turn.t("cancel_question", **facts)]
        if await _prepaid(turn, target):
            amount = turn.money(target.prepay_minor, target.currency)
            hours = schedule_of(turn.company).cancel_hours
            lines.append(turn.t("cancel_not_refundable", hours=hours, amount=amount) if _late(turn, target)
                         else turn.t("cancel_refundable", amount=amount))
        turn.state.booking = BookingDraft(mode="cancel", booking_id=target.id, service_id=target.service_id)
        turn.state.step = Step.CONFIRM_CANCEL
        return turn.reply(*lines, buttons=[turn.button("yes_cancel"), turn.button("keep_booking")])

    async def cancel_confirmed(self, turn: Turn, nlu: Understanding) -> list[OutboundMessage]:
        """"Yes, cancel it": cancel (``commerce.bookings.cancel_booking``) and say what happens to the money."""
        draft, turn.state.booking = turn.state.booking, None
        booking = await _load_booking(turn, draft.booking_id) if draft and draft.booking_id else None
        if booking is None:
            return turn.reply(turn.t("booking_not_active"), buttons=[turn.button("my_booking")])
        paid = await _prepaid(turn, booking)
        try:
            result = await cancel_booking(turn.session, booking=booking, now=turn.now, by="customer")
        except BookingStateError:
            return turn.reply(turn.t("booking_not_active"), buttons=[turn.button("my_booking")])
        lines = [turn.t("booking_cancelled", **_facts(turn, booking))]
        if result.refundable:
            lines.append(turn.t("cancelled_refund", amount=turn.money(result.refund_minor, result.currency)))
        elif paid and booking.prepay_minor:
            lines.append(turn.t("cancelled_no_refund", amount=turn.money(booking.prepay_minor, booking.currency),
                                hours=schedule_of(turn.company).cancel_hours))
        return turn.reply(*lines, buttons=[turn.button("book"), turn.button("services")])

    async def keep(self, turn: Turn, nlu: Understanding) -> list[OutboundMessage]:
        """"Keep it": the booking stays."""
        draft, turn.state.booking = turn.state.booking, None
        booking = await _load_booking(turn, draft.booking_id) if draft and draft.booking_id else None
        if booking is None:
            return turn.reply(turn.t("ok"), buttons=[turn.button("my_booking")])
        return turn.reply(turn.t("booking_kept", **_facts(turn, booking)), buttons=[turn.button("my_booking")])

    async def move(self, turn: Turn, nlu: Understanding, *, when: WhenQuery | None = None) -> list[OutboundMessage]:
        """"Move my booking to Saturday": offer free times that day (or ask which day); ``when`` as in
        ``book``."""
        target = await self._target(turn, nlu, "move")
        if not isinstance(target, Booking):
            return target
        query = (when if when is not None else self._when(turn, nlu.text)) if nlu.offer is None else None
        return await self._move_offer(turn, target, query, None)

    async def _move_offer(self, turn: Turn, booking: Booking, query: WhenQuery | None,
                          previous: BookingDraft | None) -> list[OutboundMessage]:
        if _late(turn, booking):
            turn.state.booking, turn.state.step = None, None
            return turn.reply(turn.t("move_too_late", hours=schedule_of(turn.company).cancel_hours),
                              buttons=[turn.button("human"), turn.button("my_booking")])
        service = await _load_service(turn, booking.service_id) if booking.service_id else None
        if service is None:
            return turn.reply(turn.t("item_unavailable"), buttons=[turn.button("human")])
        day, part, after = _merged(previous, query)
        if day is None and part is None and after is None:
            turn.state.booking = BookingDraft(mode="move", booking_id=booking.id, service_id=service.id)
            turn.state.step = Step.ASK_DAY
            return turn.reply(turn.t("ask_move_day", service=booking.service_name, when=_facts(turn, booking)["when"]),
                              buttons=[turn.button("cancel")])
        return await self._offer(turn, service, day=day, part=part, after=after, resource=None, booking=booking)

    async def _move_into(self, turn: Turn, booking: Booking, offer: Offer, start: datetime,
                         draft: BookingDraft) -> list[OutboundMessage]:
        try:
            moved = await move_booking(turn.session, booking=booking, start=start, now=turn.now, resource=offer.ref,
                                       by="customer")
        except (SlotTaken, SlotUnavailable):
            service = await _load_service(turn, booking.service_id) if booking.service_id else None
            if service is None:
                return turn.reply(turn.t("item_unavailable"), buttons=[turn.button("human")])
            return await self._again(turn, service, draft, start, booking=booking)
        except TooLateToChange as exc:
            return turn.reply(turn.t("move_too_late", hours=exc.cancel_hours), buttons=[turn.button("human")])
        except (BookingStateError, NotBookable):
            return turn.reply(turn.t("booking_not_active"), buttons=[turn.button("my_booking")])
        turn.state.booking = None
        turn.state.booking_id = moved.id
        return turn.reply(turn.t("booking_moved", **_facts(turn, moved)), buttons=[turn.button("my_booking")])

    # -- helpers ------------------------------------------------------------------------------------

    @staticmethod
    def _when(turn: Turn, text: str) -> WhenQuery | None:
        """The day / part of day / time ``text`` asks for (company timezone), or ``None``."""
        if not text or not speaks_of_time(text):
            return None
        language = detect_language(text, default=turn.language)
        query = parse_when(text, language=language, tz=company_zone(turn.company), now=turn.now)
        return None if query.is_empty else query


# --- service facts (also used by the engine's item answers) ------------------------------------------


def service_lines(turn: Turn, item: KnowledgeItem) -> list[str]:
    """Duration and prepayment of a service, for its card."""
    return [turn.t("info_duration", minutes=service_duration(item, schedule_of(turn.company))),
            *prepay_answer(turn, item)]


def duration_answer(turn: Turn, item: KnowledgeItem, variant: object = None) -> list[str]:
    """"How long does colouring take?"."""
    if item.kind != "service" and not item.duration_minutes:
        return []
    minutes = service_duration(item, schedule_of(turn.company)) if item.kind == "service" else item.duration_minutes
    return [turn.t("info_duration_named", name=item.name, minutes=minutes)]


def prepay_answer(turn: Turn, item: KnowledgeItem, variant: object = None) -> list[str]:
    """"Do I have to prepay for colouring?": the prepayment rule of the service."""
    if item.kind != "service":
        return []
    if item.price_minor == 0:
        return [turn.t("info_free", name=item.name)]
    try:
        amount = prepayment_minor(item, schedule_of(turn.company))
    except (PriceMissing, ValueError, ScheduleError):
        return []
    price = turn.money(item.price_minor or 0, item.currency)
    if amount == 0:
        return [turn.t("info_prepay_none", name=item.name, price=price)]
    if item.price_minor is not None and amount >= item.price_minor:
        return [turn.t("info_prepay_full", name=item.name, price=price)]
    return [turn.t("info_prepay_part", name=item.name, price=price, amount=turn.money(amount, item.currency))]


async def booking_of_order(turn: Turn, order: Order) -> Booking | None:
    """The booking ``order`` prepays, if it is a prepayment order."""
    bookings = await bookings_for_order(turn.session, order)
    return bookings[0] if bookings else None


def link_ttl(turn: Turn, booking: Booking) -> timedelta | None:
    """How long a new prepayment link of ``booking`` may live; ``None`` when it is no longer held."""
    if booking.status != "held" or not _active(booking, turn.now):
        return None
    return payment_ttl(booking, now=turn.now)


async def upcoming(turn: Turn) -> list[Booking]:
    """The contact's active bookings with this company that have not ended yet, earliest first."""
    stmt = turn.scope.select(
        Booking, Booking.company_id == turn.company.id, Booking.contact_id == turn.conversation.contact_id,
        Booking.status.in_(("held", "confirmed")), Booking.end_at > turn.now,
    ).order_by(Booking.start_at)
    return [b for b in (await turn.session.execute(stmt)).scalars() if _active(b, turn.now)]


def split_name_phone(text: str) -> tuple[str | None, str | None]:
    """``"Anna, +49 151 2345678"`` → ``("Anna", "+49 151 2345678")``; a name needs a letter (at most
    200 characters); the phone 7 to 15 digits."""
    phone = None
    match = _PHONE_IN_TEXT.search(text)
    if match and 7 <= sum(ch.isdigit() for ch in match.group(0)) <= 15:
        phone = " ".join(match.group(0).split())
        text = text[:match.start()] + " " + text[match.end():]
    name = " ".join(text.replace(",", " ").replace(";", " ").split()).strip(" -")
    if not name or len(name) > 200 or not any(ch.isalpha() for ch in name):
        return None, phone
    return name, phone


def _facts(turn: Turn, booking: Booking) -> dict[str, str]:
    tz: ZoneInfo = company_zone(turn.company)
    until = booking.hold_expires_at.astimezone(tz) if booking.hold_expires_at else None
    return {"service": booking.service_name,
            "when": texts.when_label(booking.start_at.astimezone(tz), turn.language),
            "resource": texts.with_resource(turn.language, booking.resource_name),
            "until": texts.clock(until) if until else ""}


def _details(turn: Turn, service: KnowledgeItem) -> str:
    minutes = service_duration(service, schedule_of(turn.company))
    if service.price_minor is None:
        price = turn.t("price_missing")
    else:
        price = turn.money(service.price_minor, service.currency) if service.price_minor else turn.t("free")
    return turn.t("service_details", minutes=minutes, price=price)


def _active(booking: Booking, now: datetime) -> bool:
    if booking.status == "confirmed":
        return True
    return booking.status == "held" and (booking.hold_expires_at is None or booking.hold_expires_at > now)


def _late(turn: Turn, booking: Booking) -> bool:
    return turn.now >= booking.start_at - timedelta(hours=schedule_of(turn.company).cancel_hours)


async def _prepaid(turn: Turn, booking: Booking) -> bool:
    order = await turn.session.get(Order, booking.order_id) if booking.order_id else None
    return order is not None and order.payment_status == "paid"


def _spread(slots: list[Slot], limit: int, tz: ZoneInfo) -> list[Slot]:
    """One slot per start time (the first staff member free then), at most ``limit``: the earliest
    (the time asked for, when one was) and, when there are more, starts on the half hour (then the
    hour, then every two hours) spread evenly over the period asked for."""
    first: dict[datetime, Slot] = {}
    for slot in slots:
        first.setdefault(slot.start, slot)
    starts = list(first.values())
    if len(starts) <= limit:
        return starts
    earliest, rest = starts[0], starts[1:]
    for grain in (30, 60, 120):
        if len(rest) < limit:
            break
        rounder = [s for s in rest if (lambda t: (t.hour * 60 + t.minute) % grain == 0)(s.start.astimezone(tz))]
        if rounder:
            rest = rounder
    if len(rest) >= limit:
        rest = [rest[i] for i in sorted({round(i * (len(rest) - 1) / (limit - 2)) for i in range(limit - 1)})]
    return [earliest, *rest]


def _merged(previous: BookingDraft | None, query: WhenQuery | None) -> tuple[date | None, PartOfDay | None,
                                                                             time | None]:
    """The time asked for now, completed by what was asked before ("what about Saturday?" keeps
    "afternoon"; "in the morning" keeps the day)."""
    day = query.day if query else None
    part = query.part_of_day if query else None
    after = query.after if query else None
    if previous is not None:
        if day is None:
            day = _day(previous.day)
        if part is None and after is None:
            part, after = _part(previous.part_of_day), _time(previous.after)
    return day, part, after


def _day(value: str | None) -> date | None:
    try:
        return date.fromisoformat(value) if value else None
    except ValueError:
        return None


def _time(value: str | None) -> time | None:
    try:
        return time.fromisoformat(value) if value else None
    except ValueError:
        return None


def _part(value: str | None) -> PartOfDay | None:
    return next((p for p in _PARTS if p == value), None)


async def _services(turn: Turn) -> list[KnowledgeItem]:
    stmt = turn.scope.select(KnowledgeItem, KnowledgeItem.company_id == turn.company.id,
                             KnowledgeItem.kind == "service").order_by(KnowledgeItem.position, KnowledgeItem.name)
    return list((await turn.session.execute(stmt)).scalars())


async def _load_service(turn: Turn, item_id: uuid.UUID) -> KnowledgeItem | None:
    stmt = turn.scope.select(KnowledgeItem, KnowledgeItem.id == item_id, KnowledgeItem.company_id == turn.company.id,
                             KnowledgeItem.kind == "service")
    return (await turn.session.execute(stmt)).scalar_one_or_none()


async def _load_booking(turn: Turn, booking_id: uuid.UUID) -> Booking | None:
    stmt = turn.scope.select(Booking, Booking.id == booking_id, Booking.company_id == turn.company.id,
                             Booking.contact_id == turn.conversation.contact_id)
    return (await turn.session.execute(stmt.execution_options(populate_existing=True))).scalar_one_or_none()


async def _service_ids(turn: Turn, nlu: Understanding, previous: BookingDraft | None) -> list[uuid.UUID]:
    """The services the message may mean: the one named, the ambiguous ones, the one being arranged,
    the one talked about last, or the company's only service. Empty: ask which."""
    def is_service(item_id: uuid.UUID | None) -> bool:
        try:
            return item_id is not None and turn.index.item(item_id).kind == "service"
        except KeyError:
            return False

    if is_service(nlu.item_id):
        return [nlu.item_id]  # type: ignore[list-item]
    options = [h.item_id for h in nlu.options if is_service(h.item_id)]
    if options:
        if previous is not None and previous.candidates:
            narrowed = [i for i in options if i in previous.candidates]
            options = narrowed or options
        return options
    if previous is not None and previous.service_id is not None:
        return [previous.service_id]
    if previous is not None and previous.candidates:
        return list(previous.candidates)
    if is_service(turn.state.last_item_id):
        return [turn.state.last_item_id]  # type: ignore[list-item]
    services = [i.id for i in turn.index.items() if i.kind == "service"]
    return services if len(services) == 1 else []


async def _resource_named(turn: Turn, service: KnowledgeItem, text: str) -> str | None:
    """The staff member named in ``text`` ("with Anna"), among those performing ``service``."""
    words = set(tokenize(text))
    if not words:
        return None
    for resource in await eligible_resources(turn.session, company=turn.company, service=service):
        name_words = set(tokenize(resource.name))
        if name_words and name_words <= words:
            return resource.name
    return None

