"""Bookings of service (and hybrid) companies: the actions (results, no text, no dialogue step).

Free times, holding a slot, the name, the prepayment link, and the customer's "my booking", cancel
and move. Times the customer asks for come with the commands (``find_slots`` / ``move_booking``) or
are read with ``commerce.when.parse_when`` in the company's timezone; free times come from
``commerce.schedule.free_slots`` (day by day for "the nearest days"), and every change goes through
``commerce.bookings`` (``hold_slot``, ``cancel_booking``, ``move_booking``). The confirmation sent
when a prepayment is paid comes from ``commerce.payments.mark_paid`` (``on_order_paid``), not from here.

State (kept by ``bot.policy.machine.advance`` from the results): ``DialogueState.booking`` (a
``BookingDraft``: what is being arranged and the options offered) and ``DialogueState.booking_id``
(the last booking made in the conversation).
"""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from bot.actions import results as r
from bot.language.details import normalize_phone, region_of_timezone
from bot.state import BookingDraft, Step
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
)
from commerce.when import WhenQuery, parse_when
from core.models import Booking, Contact, KnowledgeItem, Order
from knowledge.text import detect_language, tokenize

if TYPE_CHECKING:
    from bot.turn import Turn

MAX_SLOT_BUTTONS = 8  # free times offered at once (spread over the day or part of day asked for)
NEAREST_DAYS = 3  # days offered when the day asked for has no free time
LOOKAHEAD_DAYS = 14  # how far "the nearest days" look
ARRANGING: frozenset[Step] = frozenset({Step.CHOOSE_SERVICE, Step.CHOOSE_SLOT, Step.ASK_DAY})
_PARTS: tuple[PartOfDay, ...] = ("morning", "afternoon", "evening")
_PHONE_IN_TEXT = re.compile(r"\+?\d[\d\s().\-]{5,}\d")
Results = list[r.Result]


class BookingActions:
    """Booking actions (``book``, ``choose_slot``, ``answer_name``, ``status``, ``cancel``,
    ``cancel_confirmed``, ``keep``, ``move``, ``release_held``, ``lost``); each returns results."""

    def __init__(self, *, providers: ProviderRegistry) -> None:
        self._providers = providers

    # -- a new booking ------------------------------------------------------------------------------

    async def book(self, turn: Turn, nlu: Understanding, *, when: WhenQuery | None = None) -> Results:
        """"A haircut tomorrow afternoon", "book a manicure on Friday after 3pm", "можно завтра утром?":
        the free times of the service (asking which service when it is not clear). ``when`` is the
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
            services = [s for s in await _services(turn) if not ids or s.id in ids]
            if not services:
                return [r.NoServices()]
            return [r.ServiceChoices(tuple(services), day, part, after)]
        service = await _load_service(turn, ids[0])
        if service is None:
            return [r.ServiceGone()]
        resource = await _resource_named(turn, service, nlu.text)
        if resource is None and previous is not None and previous.service_id == service.id:
            resource = previous.resource
        if after is not None and query is not None and query.after is not None and not _AFTER.search(turn.text):
            held = await self._hold_exact(turn, service, day=day, at=after, resource=resource)
            if held is not None:  # "on Saturday at 11" and 11:00 is free: held at once
                return held
        return await self._offer(turn, service, day=day, part=part, after=after, resource=resource)

    async def _hold_exact(self, turn: Turn, service: KnowledgeItem, *, day: date | None, at: time,
                          resource: str | None) -> Results | None:
        """Hold the free time starting exactly at ``at`` (company-local) on ``day``; ``None`` when that
        time is not free (the times after it are offered instead)."""
        tz = company_zone(turn.company)
        day = day or turn.now.astimezone(tz).date()
        try:
            slots = await self._free(turn, service, day=day, part=None, after=at, resource=resource, booking=None)
        except ScheduleError:
            return None
        exact = next((s for s in slots if s.start.astimezone(tz).time().replace(tzinfo=None) == at), None)
        if exact is None:
            return None
        try:
            booking = await self._hold(turn, service, exact.start, exact.resource_id)
        except (SlotTaken, SlotUnavailable, PriceMissing, NotBookable, ScheduleError):
            return None
        return await self._held(turn, booking)

    async def _hold(self, turn: Turn, service: KnowledgeItem, start: datetime, resource: uuid.UUID) -> Booking:
        """Hold ``start`` with ``resource`` for this conversation's customer (raises the errors of
        ``hold_slot``)."""
        return await hold_slot(
            turn.session, company=turn.company, service=service, start=start, now=turn.now, resource=resource,
            contact_id=turn.conversation.contact_id, conversation_id=turn.conversation.id,
            customer_name=turn.state.profile.name or None,
            phone=turn.state.profile.phone or turn.inbound.phone or None,
        )

    async def _held(self, turn: Turn, booking: Booking) -> Results:
        if not booking.customer_name:
            return [r.SlotHeld(booking, company_zone(turn.company), ask_name=True)]
        return [r.SlotHeld(booking, company_zone(turn.company), ask_name=False), await self._settled(turn, booking)]

    async def _offer(self, turn: Turn, service: KnowledgeItem, *, day: date | None, part: PartOfDay | None,
                     after: time | None, resource: str | None, booking: Booking | None = None,
                     before: r.Result | None = None) -> Results:
        """Free times of ``service`` on ``day`` (today when ``None``), or the nearest days with free
        times; ``booking`` is the booking being moved; ``before`` a result said first (a time lost)."""
        head = [before] if before is not None else []
        tz = company_zone(turn.company)
        day = day or turn.now.astimezone(tz).date()
        try:
            slots = await self._free(turn, service, day=day, part=part, after=after, resource=resource,
                                     booking=booking)
        except ScheduleError:
            return [*head, r.NoServices()]
        moving = booking.id if booking is not None else None
        if slots:
            several = len(await eligible_resources(turn.session, company=turn.company, service=service)) > 1
            return [*head, r.SlotsOffered(service, tuple(_spread(slots, MAX_SLOT_BUTTONS, tz)), tz, day, part, after,
                                          resource, moving, several)]
        days = await self._nearest(turn, service, after_day=day, part=part, after=after, resource=resource,
                                   booking=booking)
        if not days:
            return [*head, r.SlotsNone(service)]
        return [*head, r.NearestDays(service, tuple(days), day, part, after, resource, moving)]

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

    async def choose_slot(self, turn: Turn, index: int | None) -> Results:
        """Offered time ``index`` (0-based) was chosen: hold it (or move the booking there)."""
        draft = turn.state.booking
        if draft is None or index is None or not 0 <= index < len(draft.offers):
            return [r.BookingNotUnderstood()]
        offer = draft.offers[index]
        start = datetime.fromisoformat(offer.start or "")
        if draft.mode == "move" and draft.booking_id is not None:
            booking = await _load_booking(turn, draft.booking_id)
            if booking is None:
                return [r.BookingNotActive()]
            return await self._move_into(turn, booking, offer.ref, start, draft)
        service = await _load_service(turn, draft.service_id) if draft.service_id else None
        if service is None:
            return [r.ServiceGone()]
        try:
            booking = await self._hold(turn, service, start, offer.ref)
        except (SlotTaken, SlotUnavailable):
            return await self._again(turn, service, draft, start)
        except PriceMissing:
            return [r.BookingPriceMissing(service.name)]
        except (NotBookable, ScheduleError):
            return [r.ServiceGone()]
        return await self._held(turn, booking)

    async def _again(self, turn: Turn, service: KnowledgeItem, draft: BookingDraft, start: datetime, *,
                     booking: Booking | None = None) -> Results:
        """The chosen time was taken meanwhile: apologise and offer the times still free."""
        tz = company_zone(turn.company)
        return await self._offer(turn, service, day=draft.local_day or start.astimezone(tz).date(),
                                 part=_part(draft.part_of_day), after=_time(draft.after), resource=draft.resource,
                                 booking=booking, before=r.SlotLost(start, tz))

    async def answer_name(self, turn: Turn, text: str) -> Results:
        """The name (and optional phone) for the booking just held."""
        booking = await _load_booking(turn, turn.state.booking_id) if turn.state.booking_id else None
        if booking is None:
            return [r.BookingNotActive(book=True)]
        if not _active(booking, turn.now):
            return await self._hold_lost(turn, booking)
        name, typed = split_name_phone(text)
        if not name:
            return [r.BookingNameRejected()]
        # Stored as E.164, as checkout and a phone sent later store it (read in the company's country);
        # a number phonenumbers cannot read is kept as typed rather than lost.
        phone = (normalize_phone(typed, region_of_timezone(turn.company.timezone)) or typed) if typed else None
        booking.customer_name = name
        booking.phone = phone or booking.phone
        order = await turn.session.get(Order, booking.order_id) if booking.order_id else None
        if order is not None:
            order.customer_name, order.phone = name, phone or order.phone
        if phone:  # the contact learns a phone it did not have (never overwritten)
            contact = await turn.session.get(Contact, turn.conversation.contact_id)
            if contact is not None and not contact.phone:
                contact.phone = phone
        await turn.session.flush()
        return [r.BookingNamed(name, phone), await self._settled(turn, booking)]

    async def lost(self, turn: Turn, booking: Booking) -> Results:
        """About a booking that is no longer active (asked for its payment link, say): a lost hold
        offers the free times of that day again; a cancelled booking is just that."""
        if booking.status == "cancelled":
            return [r.BookingNotActive(book=True)]
        return await self._hold_lost(turn, booking)

    async def _hold_lost(self, turn: Turn, booking: Booking) -> Results:
        tz = company_zone(turn.company)
        lost = r.HoldExpired(booking.start_at, tz)
        service = await _load_service(turn, booking.service_id) if booking.service_id else None
        if service is None:
            return [lost]
        return await self._offer(turn, service, day=booking.start_at.astimezone(tz).date(), part=None, after=None,
                                 resource=None, before=lost)

    async def _settled(self, turn: Turn, booking: Booking) -> r.Result:
        """The booking has its name: confirmed (nothing to prepay) or the prepayment link."""
        tz = company_zone(turn.company)
        if booking.status == "confirmed":
            return r.BookingSettled(booking, tz, "confirmed")
        order = await turn.session.get(Order, booking.order_id) if booking.order_id else None
        if order is None:  # pragma: no cover - a held booking always has its prepayment order
            return r.BookingSettled(booking, tz, "reserved")
        try:
            payment = await issue_payment_link(turn.session, order=order, company=turn.company,
                                               providers=self._providers, ttl=payment_ttl(booking, now=turn.now))
        except (PaymentUnavailable, KeyError):
            turn.conversation.status = "pending"  # flagged for a manager
            return r.BookingSettled(booking, tz, "no_link")
        except PaymentStateError:
            return r.BookingSettled(booking, tz, "paid")
        return r.BookingSettled(booking, tz, "link", payment.checkout_url)

    async def _release_unnamed(self, turn: Turn) -> None:
        booking = await _load_booking(turn, turn.state.booking_id) if turn.state.booking_id else None
        if booking is not None and booking.status in ("held", "confirmed") and not booking.customer_name:
            await cancel_booking(turn.session, booking=booking, now=turn.now, by="customer")

    async def release_held(self, turn: Turn) -> Results:
        """"Cancel" at the name question: give the time just taken back."""
        booking = await _load_booking(turn, turn.state.booking_id) if turn.state.booking_id else None
        if booking is not None and booking.status in ("held", "confirmed"):
            await cancel_booking(turn.session, booking=booking, now=turn.now, by="customer")
        return [r.BookingReleased()]

    # -- existing bookings ------------------------------------------------------------------------------

    async def status(self, turn: Turn) -> Results:
        """"My booking": the customer's upcoming bookings (and the prepayment link of a held one)."""
        bookings = await upcoming(turn)
        if not bookings:
            return [r.NoBookings()]
        url = None
        for b in bookings:
            if b.status == "held" and url is None and b.order_id is not None:
                url = await self._live_link(turn, b)
        return [r.BookingsShown(tuple(bookings), company_zone(turn.company), url)]

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

    async def _target(self, turn: Turn, index: int | None, mode: str) -> Booking | Results:
        """The booking a cancel/move is about, or the results asking which one (or saying there is none)."""
        draft = turn.state.booking
        if index is not None and turn.asked == Step.CHOOSE_BOOKING and draft is not None \
                and 0 <= index < len(draft.offers):
            booking = await _load_booking(turn, draft.offers[index].ref)
            if booking is not None and _active(booking, turn.now):
                return booking
        bookings = await upcoming(turn)
        if not bookings:
            return [r.NoBookings()]
        if len(bookings) == 1:
            return bookings[0]
        return [r.WhichBooking(tuple(bookings[:MAX_SLOT_BUTTONS]), company_zone(turn.company), mode)]

    async def cancel(self, turn: Turn, index: int | None = None) -> Results:
        """"Cancel my booking": ask to confirm, saying whether the prepayment is refundable."""
        target = await self._target(turn, index, "cancel")
        if not isinstance(target, Booking):
            return target
        return [r.CancelAsked(target, company_zone(turn.company), await _prepaid(turn, target), _late(turn, target),
                              schedule_of(turn.company).cancel_hours)]

    async def cancel_confirmed(self, turn: Turn) -> Results:
        """"Yes, cancel it": cancel (``commerce.bookings.cancel_booking``) and say what happens to the money."""
        draft = turn.state.booking
        booking = await _load_booking(turn, draft.booking_id) if draft and draft.booking_id else None
        if booking is None:
            return [r.BookingNotActive(drop_draft=True)]
        paid = await _prepaid(turn, booking)
        try:
            result = await cancel_booking(turn.session, booking=booking, now=turn.now, by="customer")
        except BookingStateError:
            return [r.BookingNotActive(drop_draft=True)]
        return [r.BookingCancelled(booking, company_zone(turn.company), result.refund_minor if result.refundable
                                   else None, paid, schedule_of(turn.company).cancel_hours)]

    async def keep(self, turn: Turn) -> Results:
        """"Keep it": the booking stays."""
        draft = turn.state.booking
        booking = await _load_booking(turn, draft.booking_id) if draft and draft.booking_id else None
        return [r.BookingKept(booking, company_zone(turn.company))]

    async def move(self, turn: Turn, text: str, index: int | None = None, *,
                   when: WhenQuery | None = None) -> Results:
        """"Move my booking to Saturday": free times that day (or ask which day); ``when`` as in ``book``."""
        target = await self._target(turn, index, "move")
        if not isinstance(target, Booking):
            return target
        query = (when if when is not None else self._when(turn, text)) if index is None else None
        return await self._move_offer(turn, target, query, None)

    async def _move_offer(self, turn: Turn, booking: Booking, query: WhenQuery | None,
                          previous: BookingDraft | None) -> Results:
        if _late(turn, booking):
            return [r.MoveTooLate(schedule_of(turn.company).cancel_hours, drop_draft=True)]
        service = await _load_service(turn, booking.service_id) if booking.service_id else None
        if service is None:
            return [r.ServiceGone(human=True)]
        day, part, after = _merged(previous, query)
        if day is None and part is None and after is None:
            return [r.AskMoveDay(booking, service.id, company_zone(turn.company))]
        return await self._offer(turn, service, day=day, part=part, after=after, resource=None, booking=booking)

    async def _move_into(self, turn: Turn, booking: Booking, resource: uuid.UUID, start: datetime,
                         draft: BookingDraft) -> Results:
        try:
            moved = await move_booking(turn.session, booking=booking, start=start, now=turn.now, resource=resource,
                                       by="customer")
        except (SlotTaken, SlotUnavailable):
            service = await _load_service(turn, booking.service_id) if booking.service_id else None
            if service is None:
                return [r.ServiceGone(human=True)]
            return await self._again(turn, service, draft, start, booking=booking)
        except TooLateToChange as exc:
            return [r.MoveTooLate(exc.cancel_hours)]
        except (BookingStateError, NotBookable):
            return [r.BookingNotActive()]
        return [r.BookingMoved(moved, company_zone(turn.company))]

    # -- helpers ------------------------------------------------------------------------------------

    @staticmethod
    def _when(turn: Turn, text: str) -> WhenQuery | None:
        """The day / part of day / time ``text`` asks for (company timezone), or ``None``."""
        if not text or not speaks_of_time(text):
            return None
        language = detect_language(text, default=turn.language)
        query = parse_when(text, language=language, tz=company_zone(turn.company), now=turn.now)
        return None if query.is_empty else query
_AFTER = re.compile(r"\b(?:after|from|later than|или позже|после|позже|не раньше)\b", re.IGNORECASE)


async def active_booking(turn: Turn) -> Booking | None:
    """The conversation's last booking (``DialogueState.booking_id``) while it is held or confirmed and not
    over; ``None`` otherwise."""
    if turn.state.booking_id is None:
        return None
    booking = await _load_booking(turn, turn.state.booking_id)
    return booking if booking is not None and _active(booking, turn.now) and booking.end_at > turn.now else None


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
            day = previous.local_day
        if part is None and after is None:
            part, after = _part(previous.part_of_day), _time(previous.after)
    return day, part, after


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

