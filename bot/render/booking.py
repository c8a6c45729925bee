"""Booking results → replies (the texts of the booking dialogue; see ``bot.render.replies``)."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from bot import texts
from bot.actions import results as r
from bot.buttons import option, reference
from bot.commands import FindSlots
from bot.messages import Button, OutboundMessage
from bot.turn import Turn
from commerce.bookings import prepayment_minor
from commerce.errors import PriceMissing
from commerce.schedule import ScheduleError, schedule_of, service_duration
from core.models import Booking, KnowledgeItem, Order

MAX_SLOT_BUTTONS = 8


def render_booking(turn: Turn, result: r.Result) -> list[OutboundMessage] | None:  # noqa: C901 - one case per result
    """The reply to a booking result (``None``: not a booking result)."""
    t, button = turn.t, turn.button
    match result:
        case r.NoServices():
            return turn.reply(t("no_services"), buttons=[button("human")])
        case r.ServiceGone(human=human):
            return turn.reply(t("item_unavailable"), buttons=[button("human" if human else "services")])
        case r.ServiceChoices(services=services, day=day, part=part, after=after):
            lines = [t("which_service"), *[texts.bullet(s.name, _details(turn, s)) for s in services]]
            buttons = [Button(title=s.name, payload=reference(FindSlots(
                service_id=s.id, day=day, day_part=part, time=texts.clock(after) if after else None)))
                for s in services]
            return turn.reply(*lines, buttons=buttons[:MAX_SLOT_BUTTONS])
        case r.SlotsOffered(service=service, day=day, part=part, after=after):
            header = t("slots_header", service=service.name, details=_details(turn, service),
                       day=texts.day_label(day, turn.language) + texts.part_label(turn.language, part_of_day=part,
                                                                                  after=after))
            buttons = [Button(title=title, payload=option(n)) for n, title in enumerate(slot_titles(turn, result), 1)]
            return turn.reply(header, t("slots_hint"), buttons=buttons)
        case r.StillChoosing(titles=titles):
            return turn.reply(t("slots_hint"), buttons=[Button(title=title, payload=option(n))
                                                        for n, title in enumerate(titles, 1)])
        case r.NearestDays(service=service, days=days, day=day, part=part, after=after):
            text = t("slots_none_days", service=service.name, day=texts.day_label(day, turn.language),
                     part=texts.part_label(turn.language, part_of_day=part, after=after))
            buttons = [Button(title=texts.day_label(d, turn.language), payload=reference(FindSlots(
                day=d, day_part=part, time=texts.clock(after) if after else None))) for d in days]
            return turn.reply(text, buttons=buttons)
        case r.SlotsNone(service=service):
            return turn.reply(t("slots_none", service=service.name), buttons=[button("human")])
        case r.SlotLost(start=start, tz=tz):
            return turn.reply(t("slot_taken", when=texts.when_label(start.astimezone(tz), turn.language)))
        case r.HoldExpired(start=start, tz=tz):
            return turn.reply(t("booking_hold_expired", when=texts.when_label(start.astimezone(tz), turn.language)),
                              buttons=[button("services")])
        case r.SlotHeld(booking=booking, tz=tz, ask_name=True):
            key = "slot_held" if booking.status == "held" else "slot_reserved"
            return turn.reply(t(key, **facts(turn, booking, tz)), t("ask_booking_name"), buttons=[button("cancel")])
        case r.PhoneAdded(phone=phone, booking=Booking() as booking, tz=tz):
            return turn.reply(t("phone_added_booking", phone=phone, **facts(turn, booking, tz)),
                              buttons=[button("my_booking")])
        case r.PhoneAdded(phone=phone, order=Order() as order):
            return turn.reply(t("phone_added_order", phone=phone, number=order.number),
                              buttons=[button("status")])
        case r.SlotHeld() | r.BookingNamed():
            return []
        case r.BookingNameRejected():
            return turn.reply(t("bad_booking_name"), buttons=[button("cancel")])
        case r.BookingSettled():
            return _settled(turn, result)
        case r.BookingPriceMissing(name=name):
            return turn.reply(t("booking_price_missing", name=name), buttons=[button("human")])
        case r.BookingNotActive(book=book):
            buttons = [button("book"), button("services")] if book else [button("my_booking")]
            return turn.reply(t("booking_not_active"), buttons=buttons)
        case r.BookingNotUnderstood():
            return turn.reply(t("fallback_plain"), buttons=[button("book")])
        case r.BookingReleased():
            return turn.reply(t("booking_released"), buttons=[button("book"), button("services")])
        case r.NoBookings():
            return turn.reply(t("booking_none"), buttons=[button("book"), button("services")])
        case r.BookingsShown(bookings=bookings, tz=tz, url=url):
            lines = []
            for b in bookings:
                if b.status == "held":
                    lines.append(t("booking_line_held", amount=turn.money(b.prepay_minor, b.currency),
                                   **facts(turn, b, tz)))
                else:
                    lines.append(t("booking_line_confirmed", **facts(turn, b, tz)))
            body = [t("booking_one", line=lines[0])] if len(lines) == 1 else [
                t("booking_header"), *[texts.bullet(line) for line in lines]]
            if url:
                body.append(t("booking_pay_here", url=url))
            return turn.reply(*body, url=url, buttons=[button("move_booking"), button("cancel_booking")])
        case r.WhichBooking(mode=mode):
            titles = booking_titles(turn, result)
            buttons = [Button(title=title, payload=option(n)) for n, title in enumerate(titles, 1)]
            return turn.reply(t("which_booking_cancel") if mode == "cancel" else t("which_booking_move"),
                              buttons=buttons)
        case r.CancelAsked(booking=booking, tz=tz, prepaid=prepaid, late=late, cancel_hours=hours):
            lines = [t("cancel_question", **facts(turn, booking, tz))]
            if prepaid:
                amount = turn.money(booking.prepay_minor, booking.currency)
                lines.append(t("cancel_not_refundable", hours=hours, amount=amount) if late
                             else t("cancel_refundable", amount=amount))
            return turn.reply(*lines, buttons=[button("yes_cancel"), button("keep_booking")])
        case r.BookingCancelled(booking=booking, tz=tz, refund_minor=refund, paid=paid, cancel_hours=hours):
            lines = [t("booking_cancelled", **facts(turn, booking, tz))]
            if refund is not None:
                lines.append(t("cancelled_refund", amount=turn.money(refund, booking.currency)))
            elif paid and booking.prepay_minor:
                lines.append(t("cancelled_no_refund", amount=turn.money(booking.prepay_minor, booking.currency),
                               hours=hours))
            return turn.reply(*lines, buttons=[button("book"), button("services")])
        case r.BookingKept(booking=None):
            return turn.reply(t("ok"), buttons=[button("my_booking")])
        case r.BookingKept(booking=booking, tz=tz):
            return turn.reply(t("booking_kept", **facts(turn, booking, tz)), buttons=[button("my_booking")])
        case r.AskMoveDay(booking=booking, tz=tz):
            return turn.reply(t("ask_move_day", service=booking.service_name, when=facts(turn, booking, tz)["when"]),
                              buttons=[button("cancel")])
        case r.MoveTooLate(cancel_hours=hours, drop_draft=offered):
            buttons = [button("human"), button("my_booking")] if offered else [button("human")]
            return turn.reply(t("move_too_late", hours=hours), buttons=buttons)
        case r.BookingMoved(booking=booking, tz=tz):
            return turn.reply(t("booking_moved", **facts(turn, booking, tz)), buttons=[button("my_booking")])
    return None


def _settled(turn: Turn, result: r.BookingSettled) -> list[OutboundMessage]:
    t, button, booking = turn.t, turn.button, result.booking
    info = facts(turn, booking, result.tz)
    rest = (booking.price_minor or 0) - booking.prepay_minor
    on_site = t("booking_pay_on_site", price=turn.money(rest, booking.currency)) if rest > 0 else ""
    if result.outcome == "confirmed":
        return turn.reply(t("booking_confirmed", **info), on_site, buttons=[button("my_booking")])
    if result.outcome == "paid":
        return turn.reply(t("booking_confirmed", **info), buttons=[button("my_booking")])
    if result.outcome == "reserved":
        return turn.reply(t("slot_reserved", **info), buttons=[button("human")])
    if result.outcome == "no_link":
        return turn.reply(t("slot_reserved", **info), t("booking_payment_unavailable", until=info["until"]),
                          buttons=[button("my_booking")])
    amount = turn.money(booking.prepay_minor, booking.currency)
    return turn.reply(t("slot_reserved", **info), t("booking_prepay", amount=amount, url=result.url),
                      t("booking_held_until", until=info["until"]), on_site, url=result.url,
                      buttons=[button("my_booking"), button("cancel_booking")])


def slot_titles(turn: Turn, result: r.SlotsOffered) -> list[str]:
    """The titles of the offered times (``Wed 14:00 · Anna``), also kept to be typed back."""
    return [texts.slot_label(s.start.astimezone(result.tz), turn.language,
                             resource=s.resource_name if result.several else None) for s in result.slots]


def booking_titles(turn: Turn, result: r.WhichBooking) -> list[str]:
    """The titles of the bookings offered (``Women's haircut · Wed 10 Mar, 14:00``)."""
    return [f"{b.service_name} · {texts.when_label(b.start_at.astimezone(result.tz), turn.language)}"
            for b in result.bookings]


def facts(turn: Turn, booking: Booking, tz: ZoneInfo) -> dict[str, str]:
    """A booking's service, local time, staff member and hold end, as text."""
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


# --- service facts (also in item answers) -------------------------------------------------------------


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


