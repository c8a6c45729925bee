"""``advance``: the dialogue state after a result (the state machine's transitions).

Actions never set the step; the policy does, here, from what they returned: the question a result
asks (which variant, which item, the next checkout question), the references understanding reads
next turn (the item talked about last, the items offered), the checkout answers and the order.
The booking and delivery dialogues still set their own steps (their results come as ``Replied``).
"""

from __future__ import annotations

from bot import texts
from bot.actions import results as r
from bot.state import CHECKOUT_STEPS, CheckoutDraft, DeliveryDraft, DialogueState, Offer, Pending, Step

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
