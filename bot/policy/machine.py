"""``advance``: the dialogue state after a result (the state machine's transitions).

Actions never set the step; the policy does, here, from what they returned: the question a result
asks (which variant, which item, the next checkout question), the references understanding reads
next turn (the item talked about last, the items offered), the checkout answers and the order.
Offered options keep their titles (in the reply language) so that a title typed back is understood.
"""

from __future__ import annotations

from bot import texts
from bot.actions import results as r
from bot.state import CHECKOUT_STEPS, BookingDraft, CheckoutDraft, DeliveryDraft, DialogueState, Offer, Pending, Step

_FIELD_STEP = {"name": Step.CHECKOUT_NAME, "address": Step.CHECKOUT_ADDRESS, "phone": Step.CHECKOUT_PHONE}


def advance(state: DialogueState, result: r.Result, *, asked: Step | None,  # noqa: C901 - one case per result
            language: str = "en") -> None:
    """Apply ``result`` to ``state`` (``asked``: the step that was open before this message;
    ``language``: the reply language, for the titles of offered options typed back)."""
    match result:
        case r.ItemShown(item=item, variant=variant):
            state.last_item_id, state.last_variant_id = item.id, variant.id if variant else None
        case r.ItemChoices(items=items, purpose=purpose, quantity=quantity, aspect=aspect):
            state.step = Step.CHOOSE_ITEM
            state.pending = Pending(action="add" if purpose == "add" else "info", candidates=[it.id for it in items],
                                    quantity=quantity, aspect=aspect)
        case r.VariantNeeded(item=item, available=available, quantity=quantity) if available:
            state.step = Step.CHOOSE_VARIANT
            state.pending = Pending(action="add", item_id=item.id, quantity=quantity)
            state.last_item_id, state.last_variant_id = item.id, None
        case r.Added(item=item, variant=variant):
            state.last_item_id, state.last_variant_id = item.id, variant.id if variant else None
        case r.AddRefused(item_id=item_id, variant_id=variant_id) if item_id is not None:
            state.last_item_id, state.last_variant_id = item_id, variant_id
        case r.CartShown(change=r.CartChange(kind="updated", lines=lines)):
            state.last_item_id, state.last_variant_id = lines[0].item_id, lines[0].variant_id
        case r.CartShown(change=r.CartChange(kind="removed", lines=lines)):
            if any(pl.item_id == state.last_item_id for pl in lines):
                state.last_item_id = state.last_variant_id = None
        case r.Cancelled():
            if state.booking is not None and asked is not None:
                state.booking = None  # choosing a service, a time or a booking: stop
            if asked in (Step.CHOOSE_WINDOW, Step.DELIVERY_CITY):
                state.delivery = None
            if asked in CHECKOUT_STEPS:
                state.checkout = CheckoutDraft()
        case r.CheckoutStarted(ask=ask):
            state.step = _FIELD_STEP[ask]  # answers given before checkout are kept
        case r.DetailsNoted(name=name, address=address, phone=phone):
            draft = state.checkout
            draft.name, draft.address, draft.phone = name or draft.name, address or draft.address, phone or draft.phone
        case r.DetailRejected(field=field):
            state.step = _FIELD_STEP[field]
        case r.StillChoosing():
            state.step = Step.CHOOSE_SLOT  # the booking draft and its offers were kept
        case r.StillAsking(field=field):
            state.step = Step.BOOKING_NAME if field == "booking_name" else _FIELD_STEP[field]
        case r.DetailTaken(field=field, value=value, next_field=next_field):
            setattr(state.checkout, field, value)
            state.step = _FIELD_STEP.get(next_field)
        case r.OrderPlaced(order=order):
            draft = state.checkout
            state.order_id = order.id
            state.profile = CheckoutDraft(name=draft.name, address=draft.address, phone=draft.phone)
            state.checkout = CheckoutDraft()
        case r.LinkSent(order=order):
            state.order_id = order.id
        case r.ServiceChoices(services=services, day=day, part=part, after=after):
            state.step = Step.CHOOSE_SERVICE
            state.booking = BookingDraft(day=day.isoformat() if day else None, part_of_day=part,
                                         after=texts.clock(after) if after else None,
                                         candidates=[s.id for s in services])
        case r.SlotsOffered(service=service, slots=slots, tz=tz, moving=moving, several=several):
            state.booking = _draft(result, offers=[
                Offer(title=texts.slot_label(s.start.astimezone(tz), language,
                                             resource=s.resource_name if several else None),
                      ref=s.resource_id, start=s.start.isoformat()) for s in slots])
            state.step = Step.CHOOSE_SLOT
            if moving is None:
                state.last_item_id, state.last_variant_id = service.id, None
        case r.NearestDays(service=service, moving=moving):
            state.booking = _draft(result, offers=[])
            state.step = Step.CHOOSE_SLOT
            if moving is None:
                state.last_item_id, state.last_variant_id = service.id, None
        case r.SlotsNone(service=service):
            state.booking = None
            state.last_item_id, state.last_variant_id = service.id, None
        case r.FactUnknown():
            state.step = Step.OFFER_HANDOFF
        case r.SlotHeld(booking=booking, ask_name=ask_name):
            state.booking = None
            state.booking_id = booking.id
            if ask_name:
                state.step = Step.BOOKING_NAME
        case r.BookingNamed(name=name, phone=phone):
            state.profile.name = name
            if phone:
                state.profile.phone = phone
        case r.BookingNameRejected():
            state.step = Step.BOOKING_NAME
        case r.WhichBooking(bookings=bookings, tz=tz, mode=mode):
            state.booking = BookingDraft(mode=mode, offers=[
                Offer(title=f"{b.service_name} · {texts.when_label(b.start_at.astimezone(tz), language)}", ref=b.id)
                for b in bookings])
            state.step = Step.CHOOSE_BOOKING
        case r.CancelAsked(booking=booking):
            state.booking = BookingDraft(mode="cancel", booking_id=booking.id, service_id=booking.service_id)
            state.step = Step.CONFIRM_CANCEL
        case r.AskMoveDay(booking=booking, service_id=service_id):
            state.booking = BookingDraft(mode="move", booking_id=booking.id, service_id=service_id)
            state.step = Step.ASK_DAY
        case r.BookingMoved(booking=booking):
            state.booking = None
            state.booking_id = booking.id
        case r.BookingCancelled() | r.BookingKept() | r.BookingNotActive(drop_draft=True) | \
                r.MoveTooLate(drop_draft=True):
            state.booking = None
        case r.WindowsOffered(order=order, city=city, offers=offers, tz=tz, prompted=prompted):
            state.delivery = DeliveryDraft(order_id=order.id, city=city, offers=[
                Offer(title=texts.window_label(o.start.astimezone(tz), o.end.astimezone(tz), language),
                      ref=o.window_id, day=o.day.isoformat()) for o in offers])
            state.step = Step.CHOOSE_WINDOW
            if prompted:
                state.delivery_prompted = order.id
        case r.CityNeeded(order=order, prompted=prompted):
            state.delivery = DeliveryDraft(order_id=order.id)
            state.step = Step.DELIVERY_CITY
            if prompted:
                state.delivery_prompted = order.id
        case r.NoWindows(prompted=prompted):
            state.delivery = None
            if prompted is not None:
                state.delivery_prompted = prompted
        case r.CityUnknown() | r.DeliveryDropped() | r.WindowChosen(earlier=False):
            state.delivery = None
        case _:
            pass


def _draft(result: r.SlotsOffered | r.NearestDays, *, offers: list[Offer]) -> BookingDraft:
    """The booking being arranged: what was asked for and the times offered."""
    return BookingDraft(mode="move" if result.moving is not None else "book", service_id=result.service.id,
                        booking_id=result.moving, day=result.day.isoformat(), part_of_day=result.part,
                        after=texts.clock(result.after) if result.after else None, resource=result.resource,
                        offers=offers)
