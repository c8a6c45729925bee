"""``Actions``: one policy action → results (see ``bot.actions``)."""

from __future__ import annotations

import uuid
from datetime import time, timedelta

from sqlalchemy import func, inspect, select

from bot.actions import results as r
from bot.actions.booking import BookingActions, active_booking, booking_of_order, link_ttl
from bot.actions.delivery import DeliveryActions
from bot.buttons import is_reference
from bot.commands import (
    AddToCart,
    AnswerFaq,
    Cancel,
    CancelBooking,
    ClearCart,
    FindSlots,
    GiveDetails,
    Handoff,
    Help,
    MoveBooking,
    NewPaymentLink,
    NotSold,
    OrderStatus,
    RemoveLine,
    SearchCatalog,
    SetQuantity,
    ShowBooking,
    ShowCart,
    ShowCatalog,
    ShowItem,
    Skip,
    SmallTalk,
    StartCheckout,
    UnknownFact,
)
from bot.policy import Action
from bot.state import CHECKOUT_STEPS, Step
from bot.turn import Turn
from bot.understand import DeliveryStatus, Unresolved
from bot.understand.rules import Intent, Understanding, command_free, read, search_items
from commerce.cart import (
    MAX_QUANTITY,
    PricedLine,
    add_to_cart,
    clear_cart,
    load_items,
    open_cart,
    priced_lines,
    set_line_quantity,
)
from commerce.errors import (
    EmptyCart,
    InvalidQuantity,
    ItemNotFound,
    OutOfStock,
    PaymentUnavailable,
    PriceMissing,
    VariantRequired,
)
from commerce.orders import checkout, reserve_order_stock
from commerce.payments import PaymentStateError, issue_payment_link, withdraw_link
from commerce.providers import ProviderRegistry
from commerce.schedule import company_zone
from commerce.when import WhenQuery
from core.alerts import record_alert
from core.models import Cart, Contact, KnowledgeItem, KnowledgeVariant, Order, Payment
from knowledge.search import ItemHit, KnowledgeIndex

CATALOG_PAGE = 10  # items listed by "catalogue"
SEARCH_LIMIT = 30  # items a catalogue search ranks
MAX_SUGGESTIONS = 4
CHECKOUT_FIELDS = ("name", "address", "phone")


class Actions:
    """Runs actions for any company. ``providers`` issue payment links valid for ``payment_ttl``;
    ``booking`` and ``delivery`` are the booking and delivery-window actions."""

    def __init__(self, *, providers: ProviderRegistry, payment_ttl: timedelta, booking: BookingActions,
                 delivery: DeliveryActions) -> None:
        self._providers = providers
        self._payment_ttl = payment_ttl
        self._booking = booking
        self._delivery = delivery

    async def run(self, turn: Turn, action: Action) -> list[r.Result]:
        """The results of one action (usually one; a time lost and the times still free are two)."""
        kind, text = action.kind, turn.text
        if kind == "run":
            done = await self._command(turn, action.command)
            return done if isinstance(done, list) else [done]
        if kind == "ask_again":
            return [r.DetailRejected(action.field or "name")]
        if kind == "still_asking":  # unless the side question's answer asked a question of its own
            return [r.StillAsking(action.field or "name")] if turn.state.step is None else []
        if kind == "still_choosing":  # the times offered before the side question, unless it asked its own
            draft = turn.state.booking
            if turn.state.step is None and draft is not None and draft.offers:
                return [r.StillChoosing(tuple(offer.title for offer in draft.offers))]
            return []
        if kind == "detail":
            return await self._details(turn, {action.field or "name": action.value})
        if kind == "details" and isinstance(action.command, GiveDetails):
            given = action.command.model_dump(include={"name", "address", "phone"}, exclude_none=True)
            return await self._details(turn, given)
        booking, delivery = self._booking, self._delivery
        if kind == "booking_name":
            return await booking.answer_name(turn, action.value)
        if kind == "release_held":
            return await booking.release_held(turn)
        if kind == "delivery_city":
            return [await delivery.city(turn, action.value)]
        if kind == "keep_booking":
            return await booking.keep(turn)
        if kind == "confirm_cancel_booking":
            return await booking.cancel_confirmed(turn)
        if kind == "choose_slot":
            return await booking.choose_slot(turn, action.offer)
        if kind == "choose_booking":
            draft = turn.state.booking
            if draft is not None and draft.mode == "move":
                return await booking.move(turn, text, action.offer)
            return await booking.cancel(turn, action.offer)
        if kind == "choose_window":
            return [await delivery.choose(turn, action.offer)]
        if kind == "booking":
            return await self._booking_command(turn, action.command)
        raise ValueError(f"unknown action {kind!r}")

    async def _booking_command(self, turn: Turn, command: object) -> list[r.Result]:
        """Booking commands (the booking dialogue still reads which service from the text's reading)."""
        text = "" if is_reference(turn.text) else turn.text
        if isinstance(command, FindSlots):
            reading = read(text, index=turn.index, state=turn.state) if text else None
            if reading is None or reading.intent != Intent.BOOK or command.service_id is not None:
                reading = Understanding(Intent.BOOK, text, item_id=command.service_id)
            return await self._booking.book(turn, reading, when=_when(command))
        if isinstance(command, MoveBooking):
            return await self._booking.move(turn, text, when=_when(command))
        if isinstance(command, CancelBooking):
            return await self._booking.cancel(turn)
        return await self._booking.status(turn)

    async def _command(self, turn: Turn, command: object) -> r.Result | list[r.Result]:  # noqa: C901
        match command:
            case SmallTalk(kind=kind):
                return r.Chatted(kind)
            case Skip():
                return r.Chatted("ack")
            case Help():
                return r.Chatted("help")
            case Handoff():
                if not turn.conversation.handoff:  # the staff hear of it once, in this transaction (core.alerts)
                    await record_alert(
                        turn.session, tenant_id=turn.conversation.tenant_id, company_id=turn.company.id,
                        kind="handoff.requested", conversation_id=turn.conversation.id,
                        data={"conversation_id": str(turn.conversation.id), "channel": turn.inbound.channel,
                              "text": turn.inbound.text[:500]},
                    )
                turn.conversation.handoff = True
                turn.conversation.status = "pending"
                return r.HandedOff()
            case Cancel():
                return await self._cancel(turn)
            case ShowCatalog():
                return r.CatalogShown(tuple(await _company_items(turn, limit=CATALOG_PAGE)),
                                      await _company_item_count(turn))
            case AnswerFaq(faq_id=faq_id):
                return self._faq(turn, faq_id)
            case ShowItem(item_id=item_id, variant_id=variant_id, aspect=aspect):
                item = await _load_item(turn, item_id)
                if item is None:
                    return r.ItemGone()
                return r.ItemShown(item, _variant(item, variant_id), aspect)
            case NotSold(query=query):
                return r.NotFound(query, alternatives=_alternatives(turn, query))
            case SearchCatalog():
                return await self._search(turn, command)
            case UnknownFact(item_id=item_id, question=question):
                return r.FactUnknown(await _load_item(turn, item_id) if item_id else None, question)
            case GiveDetails(name=None, address=None, phone=str() as phone):
                added = await self._phone_added(turn, phone)
                return added if added is not None else r.DetailsNoted(None, None, phone)
            case GiveDetails(name=name, address=address, phone=phone):
                return r.DetailsNoted(name, address, phone)
            case AddToCart(item_id=item_id, variant_id=variant_id, quantity=quantity):
                return await self._add(turn, item_id, variant_id, quantity)
            case SetQuantity(item_id=item_id, variant_id=variant_id, quantity=quantity):
                return await self._cart_set(turn, Unresolved(then="set", candidates=(item_id,), variant_id=variant_id,
                                                             quantity=quantity, exact=True))
            case RemoveLine(item_id=item_id, variant_id=variant_id):
                return await self._cart_remove(turn, Unresolved(then="remove", candidates=(item_id,),
                                                                variant_id=variant_id, exact=True))
            case Unresolved(then="set"):
                return await self._cart_set(turn, command)
            case Unresolved(then="remove"):
                return await self._cart_remove(turn, command)
            case Unresolved(then="add", candidates=()):
                return await self._add_more(turn, command.quantity)
            case Unresolved():
                return await self._choices(turn, command)
            case ShowCart():
                cart = await open_cart(turn.session, turn.conversation)
                return r.CartShown(await _priced(turn, cart))
            case ClearCart():
                await clear_cart(turn.session, await open_cart(turn.session, turn.conversation))
                return r.CartCleared()
            case StartCheckout():
                return await self._checkout(turn)
            case OrderStatus():
                return await self._order_status(turn)
            case NewPaymentLink():
                return await self._new_link(turn)
            case DeliveryStatus(faq_id=faq_id):
                return await self._delivery_status(turn, faq_id)
            case FindSlots() | MoveBooking() | CancelBooking() | ShowBooking():
                return await self._booking_command(turn, command)
        return self._not_understood(turn)

    # -- conversation -------------------------------------------------------------------------------

    async def _phone_added(self, turn: Turn, phone: str) -> r.PhoneAdded | None:
        """A phone number given on its own after a booking or order was made ("+49 151 23456789" once the
        name was given): added to the active booking and its prepayment order, else to the conversation's
        latest order awaiting payment or paid, and to the contact when it has no phone. ``None`` when there
        is neither (the number is kept for the next checkout instead)."""
        booking = await active_booking(turn)
        if booking is not None:
            order = await turn.session.get(Order, booking.order_id) if booking.order_id else None
        else:
            order = await current_order(turn) if turn.state.order_id is not None else None
            if order is None or order.status not in ("pending_payment", "paid"):
                return None
        if booking is not None:
            booking.phone = phone
        if order is not None:
            order.phone = phone
        contact = await turn.session.get(Contact, turn.conversation.contact_id)
        if contact is not None and not contact.phone:
            contact.phone = phone
        await turn.session.flush()
        return r.PhoneAdded(phone, booking, order, company_zone(turn.company))

    async def _cancel(self, turn: Turn) -> r.Result:
        if turn.asked == Step.BOOKING_NAME:
            return await self._booking.release_held(turn)
        if turn.asked in CHECKOUT_STEPS:
            return r.Cancelled("checkout")
        return r.Cancelled("question" if turn.asked else "nothing")

    def _not_understood(self, turn: Turn) -> r.Result:
        text = turn.text
        hits = [] if is_reference(text) else search_items(turn.index, text) or _closest(turn.index, text)
        names: dict[str, uuid.UUID] = {}
        for hit in hits:
            names.setdefault(hit.name, hit.item_id)
        return r.NotUnderstood(tuple((item_id, name) for name, item_id in list(names.items())[:MAX_SUGGESTIONS]))

    def _faq(self, turn: Turn, faq_id: uuid.UUID) -> r.Result:
        answer = next((f.answer for f in turn.index.faq() if f.id == faq_id), None)
        return r.FaqAnswered(answer) if answer is not None else self._not_understood(turn)

    async def _search(self, turn: Turn, command: SearchCatalog) -> r.Result:
        """Items matching ``query`` within the budget, best matches first (the whole catalogue when the
        query names nothing); when none fits, the ones nearest in price."""
        hits = turn.index.search_items(command.query, limit=SEARCH_LIMIT) if command.query.strip() else []
        ranked = [turn.index.item(h.item_id) for h in hits] or turn.index.items()
        low, high = command.min_price_minor, command.max_price_minor

        def price(view: object) -> int | None:
            prices = [p for p in (getattr(view, "price_minor", None),
                                  *(v.price_minor for v in getattr(view, "variants", ()))) if p is not None]
            return min(prices) if prices else None

        fitting = [v for v in ranked if (p := price(v)) is not None and (low is None or p >= low)
                   and (high is None or p <= high)]
        closest = not fitting
        if closest:
            target = high if high is not None else low or 0
            fitting = sorted((v for v in ranked if price(v) is not None), key=lambda v: abs(price(v) - target))
        elif command.order != "relevance":  # "the cheapest": by the lowest price of each item
            fitting.sort(key=lambda v: price(v) or 0, reverse=command.order == "price_desc")
        items = [it for it in [await _load_item(turn, v.id) for v in fitting[:CATALOG_PAGE]] if it is not None]
        if not items:
            return r.NotFound(command.query, alternatives=_alternatives(turn, command.query))
        return r.Found(tuple(items[:MAX_SUGGESTIONS + 2]), high, low, closest, command.order)

    async def _choices(self, turn: Turn, ref: Unresolved) -> r.Result:
        """Several items match: they are offered (the first one when they are all one item)."""
        items = [it for it in [await _load_item(turn, i) for i in ref.candidates] if it is not None]
        if not items:
            return r.NotFound(ref.query, adding=ref.then == "add")
        if ref.then == "show" and len(items) == 1:
            return r.ItemShown(items[0], None, None)
        variants = {}
        if ref.then == "add" and ref.query:
            for it in items:
                variant = _variant(it, turn.index.match_variant(it.id, ref.query)) if it.variants else None
                if variant is not None:
                    variants[it.id] = variant
        return r.ItemChoices(tuple(items), "add" if ref.then == "add" else "show", quantity=ref.quantity,
                             aspect=ref.aspect, variants=variants)

    # -- cart ---------------------------------------------------------------------------------------

    async def _add_more(self, turn: Turn, quantity: int | None) -> r.Result:
        """"Another one" with no item talked about: the last cart line."""
        cart = await open_cart(turn.session, turn.conversation)
        if not cart.lines:
            return r.NothingToAdd()
        last = cart.lines[-1]
        return await self._add(turn, last.item_id, last.variant_id, quantity or 1)

    async def _add(self, turn: Turn, item_id: uuid.UUID, variant_id: uuid.UUID | None, quantity: int) -> r.Result:
        item = await _load_item(turn, item_id)
        if item is None:
            return r.AddRefused("gone")
        if item.kind == "service":  # services are booked, not put in the cart
            return await self._booking.book(turn, Understanding(Intent.BOOK, turn.text, item_id=item.id))
        variant = _variant(item, variant_id)
        if variant is None and len(item.variants) == 1:
            variant = item.variants[0]
        if variant is None and item.variants:
            return _variant_needed(item, quantity)
        cart = await open_cart(turn.session, turn.conversation)
        vid = variant.id if variant else None
        refused = {"item_id": item.id, "variant_id": vid, "name": item.name,
                   "variant": variant.name if variant else None}
        try:
            await add_to_cart(turn.session, cart, item_id=item.id, variant_id=vid, quantity=quantity)
        except VariantRequired:
            return _variant_needed(item, quantity)
        except OutOfStock as exc:
            in_cart = sum(ln.quantity for ln in cart.lines if ln.item_id == item.id and ln.variant_id == vid)
            return r.AddRefused("out_of_stock", **{**refused, "name": exc.item_name, "variant": exc.variant},
                                available=exc.available, in_cart=in_cart)
        except PriceMissing as exc:
            return r.AddRefused("no_price", **{**refused, "name": exc.item_name})
        except InvalidQuantity:
            return r.AddRefused("bad_quantity", **refused, max_quantity=MAX_QUANTITY)
        except ItemNotFound:
            return r.AddRefused("gone")
        lines = await _priced(turn, cart)
        if lines is None:
            return r.PriceMissing(item.name)
        return r.Added(item, variant, quantity, _unit_price(item, variant) or 0, lines)

    async def _cart_set(self, turn: Turn, ref: Unresolved) -> r.Result:
        cart = await open_cart(turn.session, turn.conversation)
        lines = await _priced(turn, cart)
        if not lines:
            # "make it 3" right after an item was shown, with nothing in the cart yet: that many of it
            item_id = ref.candidates[0] if len(ref.candidates) == 1 else (
                None if ref.candidates else turn.state.last_item_id)
            if item_id is not None and ref.quantity:
                variant_id = ref.variant_id or (turn.state.last_variant_id if item_id == turn.state.last_item_id
                                                else None)
                return await self._add(turn, item_id, variant_id, ref.quantity)
            return r.CartShown(lines)
        targets = _target_lines(turn, ref, lines, remove=False)
        if isinstance(targets, r.NotInCart) and ref.quantity and len(ref.candidates) == 1:
            # "лучше 5 пионов", "make it 3 teapots" with none in the cart: that many of it
            return await self._add(turn, ref.candidates[0], ref.variant_id, ref.quantity)
        if not isinstance(targets, list):
            return targets
        if len(targets) > 1:
            return r.WhichLine(tuple(targets), remove=False, quantity=ref.quantity or 1)
        target = targets[0]
        if ref.quantity is None:
            return r.QuantityNeeded(target.name)
        try:
            await set_line_quantity(turn.session, cart, line_id=target.line_id, quantity=ref.quantity)
        except OutOfStock as exc:
            return r.AddRefused("out_of_stock", item_id=target.item_id, variant_id=target.variant_id,
                                name=exc.item_name, variant=exc.variant, available=exc.available)
        except InvalidQuantity:
            return r.AddRefused("bad_quantity", max_quantity=MAX_QUANTITY)
        kind = "removed" if ref.quantity == 0 else "updated"
        return r.CartShown(await _priced(turn, cart), r.CartChange(kind, (target,), ref.quantity))

    async def _cart_remove(self, turn: Turn, ref: Unresolved) -> r.Result:
        cart = await open_cart(turn.session, turn.conversation)
        lines = await _priced(turn, cart)
        if not lines:
            return r.CartShown(lines)
        targets = _target_lines(turn, ref, lines, remove=True)
        if not isinstance(targets, list):
            return targets
        if len(targets) == 1 and ref.quantity is not None and 0 < ref.quantity < targets[0].quantity:
            target = targets[0]  # "remove 1 shirt" from 3: two stay
            left = target.quantity - ref.quantity
            await set_line_quantity(turn.session, cart, line_id=target.line_id, quantity=left)
            return r.CartShown(await _priced(turn, cart), r.CartChange("updated", (target,), left))
        for target in targets:
            await set_line_quantity(turn.session, cart, line_id=target.line_id, quantity=0)
        return r.CartShown(await _priced(turn, cart), r.CartChange("removed", tuple(targets)))

    # -- checkout -----------------------------------------------------------------------------------

    async def _checkout(self, turn: Turn) -> r.Result:
        """Start checkout: the first question whose answer is not known yet (details given earlier
        are kept), or the order at once when every answer is known."""
        cart = await open_cart(turn.session, turn.conversation)
        lines = await _priced(turn, cart)
        if lines is None:
            return r.PriceMissing("?")
        if not lines:
            return r.CheckoutEmpty(has_order=await current_order(turn) is not None)
        known = _known(turn, {})
        ask = _missing(known)
        if not ask:
            return await self._place_order(turn, known["name"], known["address"], known["phone"])
        contact = await turn.session.get(Contact, turn.conversation.contact_id)
        suggestion = {"name": turn.state.profile.name or (contact.name if contact is not None else None),
                      "address": turn.state.profile.address}.get(ask)
        return r.CheckoutStarted(tuple(lines), suggestion, ask)

    async def _details(self, turn: Turn, given: dict[str, str]) -> list[r.Result]:
        """Checkout answers (``name``, ``address``, ``phone``; a ``""`` phone: skipped), validated,
        then the next question or, when every answer is known, the order."""
        for field, value in given.items():
            if not _valid_detail(field, value):
                return [r.DetailRejected(field)]
        known = _known(turn, given)
        if "phone" not in given and turn.state.checkout.phone is None and known["phone"] is not None:
            given = {**given, "phone": known["phone"]}  # known from the channel: not asked
        ask = _missing(known)
        suggestion = turn.state.profile.address if ask == "address" else None
        taken = [r.DetailTaken(f, v, "") for f, v in given.items()]
        taken[-1] = r.DetailTaken(taken[-1].field, taken[-1].value, ask, suggestion)
        if ask:
            return taken
        return [*taken, await self._place_order(turn, known["name"], known["address"], known["phone"])]

    async def _place_order(self, turn: Turn, name: str | None, address: str | None, phone: str | None) -> r.Result:
        cart = await open_cart(turn.session, turn.conversation)
        lines = await _priced(turn, cart)
        if lines is None:
            return r.PriceMissing("?")
        shortage = await _stock_shortage(turn, lines)
        if shortage is not None:
            return r.CheckoutShortage(shortage.item_name, shortage.variant, shortage.available)
        # The order, its payment link and its stock, all or nothing (a savepoint). The stock is taken
        # last: its rows stay locked until the turn commits, and the payment provider (a Stripe call)
        # must not keep other customers' checkouts of the same items waiting.
        payment: Payment | None = None
        try:
            async with turn.session.begin_nested():
                order = await checkout(turn.session, cart=cart, conversation=turn.conversation, company=turn.company,
                                       customer_name=name, delivery_address=address, phone=phone or None,
                                       reserve=False)
                try:
                    payment = await issue_payment_link(turn.session, order=order, company=turn.company,
                                                       providers=self._providers, ttl=self._payment_ttl)
                except (PaymentUnavailable, KeyError):
                    payment = None
                await reserve_order_stock(turn.session, order=order)
        except EmptyCart:
            return r.CheckoutEmpty()
        except OutOfStock as exc:  # another customer took the stock while the link was being made
            if payment is not None:
                await withdraw_link(payment, company=turn.company, providers=self._providers)
            return r.CheckoutShortage(exc.item_name, exc.variant, exc.available)
        except PriceMissing as exc:
            return r.PriceMissing(exc.item_name)
        if payment is None:
            turn.conversation.status = "pending"  # flagged for a manager
            return r.OrderPlaced(order, None, (name, address, phone))
        return r.OrderPlaced(order, payment.checkout_url, (name, address, phone))

    # -- orders and payments ------------------------------------------------------------------------

    async def _order_status(self, turn: Turn) -> r.Result:
        order = await current_order(turn)
        if order is not None and order.payment_status == "payment_link_sent" and order.status != "cancelled":
            return await self._link(turn, order, waiting=True)
        return r.OrderStatusShown(order)

    async def _new_link(self, turn: Turn) -> r.Result:
        order = await current_order(turn)
        if order is None or order.payment_status == "paid" or order.status == "cancelled":
            cart = await open_cart(turn.session, turn.conversation)
            if cart.lines:  # "I want to pay" with a full cart: place the order first
                return await self._checkout(turn)
        if order is None:
            return r.OrderStatusShown(None)
        return await self._link(turn, order, waiting=False)

    async def _delivery_status(self, turn: Turn, faq_id: uuid.UUID | None) -> r.Result:
        """"When will my order arrive?": the chosen delivery window (or the windows to choose from)."""
        order = await current_order(turn)
        if order is None:
            return self._faq(turn, faq_id) if faq_id is not None else r.OrderStatusShown(None)
        answer = await self._delivery.status(turn, order)
        return answer if answer is not None else await self._order_status(turn)

    async def _link(self, turn: Turn, order: Order, *, waiting: bool) -> r.Result:
        """The order's live payment link (a new one when it expired)."""
        if order.payment_status == "paid":
            return r.LinkRefused(order, "paid")
        ttl = self._payment_ttl
        booking = await booking_of_order(turn, order)
        if booking is not None:  # a prepayment: its link must not outlive the hold
            booking_ttl = link_ttl(turn, booking)
            if booking_ttl is None:
                return await self._booking.lost(turn, booking)
            ttl = booking_ttl
        try:
            payment = await issue_payment_link(turn.session, order=order, company=turn.company,
                                               providers=self._providers, ttl=ttl)
        except PaymentStateError:
            return r.LinkRefused(order, "refunded" if order.payment_status == "refunded" else "paid")
        except (PaymentUnavailable, KeyError):
            turn.conversation.status = "pending"
            return r.LinkRefused(order, "unavailable")
        return r.LinkSent(order, payment.checkout_url, waiting)


# --- helpers ---------------------------------------------------------------------------------------


def _when(command: FindSlots | MoveBooking) -> WhenQuery | None:
    """The time a booking command asks for (``None``: none said)."""
    query = WhenQuery(day=command.day, part_of_day=command.day_part,
                      after=time.fromisoformat(command.time) if command.time else None)
    return None if query.is_empty else query


async def current_order(turn: Turn) -> Order | None:
    """The order of this conversation: the one in the state, else the latest in the database. The order
    this session already holds (placed or read earlier in the turn) is reused without a query."""
    if turn.state.order_id is not None:
        sync = turn.session.sync_session
        known = sync.identity_map.get(sync.identity_key(Order, turn.state.order_id))
        if isinstance(known, Order) and _loaded(known, "lines") and known.tenant_id == turn.scope.tenant_id \
                and known.company_id == turn.company.id:
            return known
        order = (await turn.session.execute(turn.scope.select(
            Order, Order.id == turn.state.order_id, Order.company_id == turn.company.id))).scalar_one_or_none()
        if order is not None:
            return order
    return (await turn.session.execute(
        turn.scope.select(Order, Order.company_id == turn.company.id,
                          Order.conversation_id == turn.conversation.id).order_by(Order.number.desc()).limit(1)
    )).scalar_one_or_none()


def _loaded(row: object, collection: str) -> bool:
    """``row`` is in its session with no expired attribute and ``collection`` loaded (usable without a query)."""
    state = inspect(row)
    return state.persistent and not state.expired_attributes and collection in state.dict


def _known(turn: Turn, given: dict[str, str]) -> dict[str, str | None]:
    """The checkout answers known with ``given``: the draft's, then the phone the channel knows."""
    draft = turn.state.checkout
    known: dict[str, str | None] = {"name": draft.name, "address": draft.address, "phone": draft.phone, **given}
    if known["phone"] is None and turn.inbound.phone:
        known["phone"] = turn.inbound.phone
    return known


def _missing(known: dict[str, str | None]) -> str:
    """The first checkout question without an answer (``""``: none)."""
    return next((f for f in CHECKOUT_FIELDS if known[f] is None), "")


def _valid_detail(field: str, value: str) -> bool:
    """A name has a letter (≤ 200 characters); an address a letter or digit (2–500); a phone 7–15
    digits, or ``""`` (skipped)."""
    if field == "name":
        return bool(value) and len(value) <= 200 and any(ch.isalpha() for ch in value)
    if field == "address":
        return 2 <= len(value) <= 500 and any(ch.isalnum() for ch in value)
    return value == "" or _valid_phone(value)


def _variant_needed(item: KnowledgeItem, quantity: int | None) -> r.Result:
    available = tuple(v for v in item.variants if v.stock is None or v.stock > 0)
    return r.VariantNeeded(item, available, quantity)


def _target_lines(turn: Turn, ref: Unresolved, lines: list[PricedLine], *,
                  remove: bool) -> list[PricedLine] | r.Result:
    """The cart lines a change or removal is about, or the question asking which: the item named
    when it is in the cart, else the candidates that are (asking which when several are and no
    single item was named), else the only line."""
    quantity = ref.quantity or 1
    in_cart = {pl.item_id for pl in lines}
    named = ref.candidates[0] if ref.exact and ref.candidates else None
    item_id = named if named in in_cart else None
    if item_id is None:
        candidates = [c for c in ref.candidates if c in in_cart]
        if len(candidates) > 1 and named is None:
            return r.WhichLine(tuple(pl for pl in lines if pl.item_id in set(candidates)), remove, quantity)
        if candidates:
            item_id = candidates[0]
    if item_id is None:
        if ref.candidates:
            try:
                name = turn.index.item(ref.candidates[0]).name
            except KeyError:
                name = "?"
            return r.NotInCart(name, tuple(lines))
        if len(lines) == 1:
            return [lines[0]]
        return r.WhichLine(tuple(lines), remove, quantity)
    matching = [pl for pl in lines if pl.item_id == item_id]
    variant_id = ref.variant_id if item_id == named else (
        turn.index.match_variant(item_id, ref.query) if ref.query else None)
    if variant_id is not None:
        exact = [pl for pl in matching if pl.variant_id == variant_id]
        if exact:
            return exact
    if len(matching) > 1 and not remove:
        return r.WhichLine(tuple(matching), remove, quantity)
    return matching


async def _stock_shortage(turn: Turn, lines: list[PricedLine]) -> OutOfStock | None:
    """Check every line's tracked stock before checkout (so a failure changes nothing)."""
    for pl in lines:
        item = await _load_item(turn, pl.item_id)
        if item is None:
            return OutOfStock(pl.name, pl.variant, 0)
        variant = _variant(item, pl.variant_id)
        stock = variant.stock if variant is not None else item.stock
        if stock is not None and stock < pl.quantity:
            return OutOfStock(pl.name, pl.variant, max(stock, 0))
    return None


async def _priced(turn: Turn, cart: Cart) -> tuple[PricedLine, ...] | None:
    """The cart priced from the database; ``None`` when an item lost its price."""
    try:
        return tuple(await priced_lines(turn.session, cart))
    except PriceMissing:
        return None


def _alternatives(turn: Turn, query: str) -> tuple[tuple[uuid.UUID, str], ...]:
    """The items closest to something the shop does not sell (id, name), best first."""
    names: dict[str, uuid.UUID] = {}
    for hit in _closest(turn.index, query) if query else []:
        names.setdefault(hit.name, hit.item_id)
    return tuple((item_id, name) for name, item_id in list(names.items())[:MAX_SUGGESTIONS])


def _closest(index: KnowledgeIndex, text: str) -> list[ItemHit]:
    """Items close to any single word of ``text`` (for "did you mean" when the whole message matched
    nothing): "something warm for winter" → Soft Winter Jacket."""
    hits: list[ItemHit] = []
    for word in command_free(text).split():
        if len(word) >= 3:
            hits += index.search_items(word, limit=2)
    return sorted(hits, key=lambda h: -h.score)


def _valid_phone(text: str) -> bool:
    import re

    digits = sum(ch.isdigit() for ch in text)
    return bool(re.fullmatch(r"^\+?[\d\s().\-]+$", text)) and 7 <= digits <= 15


async def _load_item(turn: Turn, item_id: uuid.UUID) -> KnowledgeItem | None:
    """The company's item with its variants, read from the database (current price and stock; once per
    message: ``commerce.cart.load_items`` reuses the row this session already read)."""
    items = await load_items(turn.session, tenant_id=turn.scope.tenant_id, company_id=turn.company.id, ids={item_id})
    return items.get(item_id)


async def _company_items(turn: Turn, *, limit: int) -> list[KnowledgeItem]:
    """The first ``limit`` items of the catalogue (in the owner's order)."""
    return list((await turn.session.execute(
        turn.scope.select(KnowledgeItem, KnowledgeItem.company_id == turn.company.id)
        .order_by(KnowledgeItem.position, KnowledgeItem.name).limit(limit)
    )).scalars())


async def _company_item_count(turn: Turn) -> int:
    """How many items the catalogue has."""
    return int((await turn.session.execute(
        select(func.count()).select_from(KnowledgeItem)
        .where(KnowledgeItem.tenant_id == turn.scope.tenant_id, KnowledgeItem.company_id == turn.company.id)
    )).scalar_one())


def _variant(item: KnowledgeItem, variant_id: uuid.UUID | None) -> KnowledgeVariant | None:
    return next((v for v in item.variants if v.id == variant_id), None) if variant_id else None


def _unit_price(item: KnowledgeItem, variant: KnowledgeVariant | None) -> int | None:
    if variant is not None and variant.price_minor is not None:
        return variant.price_minor
    return item.price_minor
