"""The deterministic dialogue engine (English and Russian, no language model).

``DialogueEngine.respond`` reads the conversation's state (``bot.state``), understands the message
(``bot.nlu``), runs the handler of its intent (one method per intent, chosen from a dispatch table)
and writes the state back. Facts told to the customer (prices, variants, stock, descriptions) are read
from the database; the knowledge index is only used to find what the customer means. Carts, orders
and payment links go through ``commerce``. All texts come from ``bot.texts``.

Items are routed by kind: products go to the cart, services to the booking dialogue
(``bot.booking``); a paid product order is asked for its delivery window (``bot.delivery``).
``clock`` gives "now" (aware UTC) for everything time-dependent: free times, holds, windows.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot import texts
from bot.booking import BookingDialogue, booking_of_order, duration_answer, link_ttl, prepay_answer, service_lines
from bot.buttons import decode, is_reference, reference
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
    NotUnderstood,
    OrderStatus,
    RemoveLine,
    SetQuantity,
    ShowBooking,
    ShowCart,
    ShowCatalog,
    ShowItem,
    Skip,
    SmallTalk,
    StartCheckout,
)
from bot.delivery import DeliveryDialogue
from bot.messages import Button, InboundMessage, OutboundMessage
from bot.policy import Action, decide
from bot.state import (
    CHECKOUT_STEPS,
    FREE_TEXT_STEPS,
    CheckoutDraft,
    DialogueState,
    Pending,
    Step,
    load_state,
    save_state,
)
from bot.turn import Turn
from bot.understand import DeliveryStatus, RuleUnderstander, Understander, UnderstandingContext, Understood, Unresolved
from bot.understand.rules import Aspect, Intent, Understanding, command_free, read, search_items
from commerce.cart import MAX_QUANTITY, PricedLine, add_to_cart, clear_cart, open_cart, priced_lines, set_line_quantity
from commerce.errors import (
    EmptyCart,
    InvalidQuantity,
    ItemNotFound,
    OutOfStock,
    PaymentUnavailable,
    PriceMissing,
    VariantRequired,
)
from commerce.orders import checkout
from commerce.payments import PaymentStateError, issue_payment_link
from commerce.providers import ProviderRegistry
from core.models import Cart, Company, Contact, Conversation, KnowledgeItem, KnowledgeVariant, Order
from core.timeutil import utcnow
from knowledge.search import ItemHit, KnowledgeIndex, KnowledgeIndexCache
from knowledge.text import detect_language, normalize

_ASPECT = {"price": Aspect.PRICE, "stock": Aspect.STOCK, "description": Aspect.DESCRIPTION,
           "variants": Aspect.VARIANTS, "duration": Aspect.DURATION, "prepay": Aspect.PREPAY}
CATALOG_PAGE = 10  # items listed by "catalogue"
LOW_STOCK = 5  # "only N left" at or below this tracked stock
MAX_ITEM_BUTTONS = 4
MAX_DESCRIPTION = 600  # characters of a description shown in an item card
# Messages that say nothing about the language (the conversation keeps its language).
_NEUTRAL = frozenset({"ok", "okay", "ок", "окей", "да", "yes", "no", "нет", "xs", "s", "m", "l", "xl", "xxl"})
_PHONE = re.compile(r"^\+?[\d\s().\-]+$")


Handler = Callable[[Turn, Understanding], Awaitable[list[OutboundMessage]]]


@dataclass(frozen=True, slots=True)
class _Ask:
    """A question back to the customer instead of a result (e.g. which cart line)."""

    replies: list[OutboundMessage]


class DialogueEngine:
    """Answers customer messages for any company (implements ``bot.messages.Responder``).

    Each message runs through the pipeline: button references are decoded (``bot.buttons``), the
    text is understood into commands (``understander``, default ``bot.understand.RuleUnderstander``),
    the policy decides what the dialogue step accepts (``bot.policy.decide``), and the actions run.

    Holds no per-conversation memory: the dialogue state is ``Conversation.state``, so any instance
    (after a restart, in another process) continues a conversation. ``index_cache`` gives the
    company's knowledge index; ``providers`` issue payment links valid for ``payment_ttl`` (a
    booking's prepayment link lives only as long as its hold); ``clock`` returns "now" as an aware
    UTC ``datetime`` (default ``core.timeutil.utcnow``; tests pass a fixed one).
    """

    def __init__(
        self,
        *,
        index_cache: KnowledgeIndexCache,
        providers: ProviderRegistry,
        payment_ttl: timedelta = timedelta(hours=24),
        clock: Callable[[], datetime] | None = None,
        understander: Understander | None = None,
    ) -> None:
        self._index_cache = index_cache
        self._providers = providers
        self._payment_ttl = payment_ttl
        self._clock = clock or utcnow
        self._understander: Understander = understander or RuleUnderstander()
        self._booking = BookingDialogue(providers=providers)
        self._delivery = DeliveryDialogue()

    async def respond(
        self, session: AsyncSession, *, inbound: InboundMessage, conversation: Conversation, company: Company
    ) -> list[OutboundMessage]:
        """Answer one message (see ``bot.messages.Responder``). Changes ``conversation.state``,
        ``conversation.language`` and, for a handoff, ``handoff``/``status``; may create cart lines,
        an order and a payment link in ``session`` (not committed)."""
        state = load_state(conversation)
        text, pressed = _pressed(inbound.text.strip(), state)
        chosen = pressed is not None or text != inbound.text.strip() or any(
            text.casefold() == c.casefold() for c in state.choices)
        language = self._language(text, chosen=chosen, state=state, conversation=conversation, company=company)
        conversation.language = language
        index = await self._index_cache.get(session, company)
        now = self._clock()
        turn = Turn(session=session, inbound=inbound, conversation=conversation, company=company, index=index,
                    state=state, language=language, asked=state.step, pending=state.pending, text=text, now=now)
        if pressed is not None:
            commands: list[Understood] = [pressed]
        else:
            context = UnderstandingContext(index=index, company_type=company.type, language=language,
                                           timezone=company.timezone or "UTC", now=now)
            commands = self._understander.understand(text, state=state, context=context)
        actions = decide(state, commands, text=text)
        if not all(a.kind == "run" and isinstance(a.command, NotUnderstood) for a in actions):
            state.clear_question()  # actions that ask something set a new question
        replies: list[OutboundMessage] = []
        for action in actions:
            replies += await self._act(turn, action)
        replies = _merged(replies)
        replies = await self._ask_delivery(turn, actions, replies)
        state.choices = [b.payload for b in replies[-1].buttons] if replies else []
        save_state(conversation, state)
        return replies

    async def _act(self, turn: Turn, action: Action) -> list[OutboundMessage]:
        """Run one action of the policy (the booking and delivery dialogues still take readings)."""
        kind, text = action.kind, turn.text
        if kind == "run":
            return await self._run(turn, action.command)
        if kind == "detail":
            return await self._checkout_answer(turn, action.field or "", action.value,
                                               skipped=isinstance(action.command, Skip))
        if kind == "ask_again":
            return await self._checkout_answer(turn, action.field or "", "")
        if kind == "booking_name":
            return await self._booking.answer_name(turn, Understanding(Intent.BOOK, action.value))
        if kind == "release_held":
            return await self._booking.release_held(turn)
        if kind == "delivery_city":
            return await self._delivery.city(turn, Understanding(Intent.DELIVERY_STATUS, action.value))
        if kind == "keep_booking":
            return await self._booking.keep(turn, Understanding(Intent.BOOKING_CANCEL, text))
        if kind == "confirm_cancel_booking":
            return await self._booking.cancel_confirmed(turn, Understanding(Intent.BOOKING_CANCEL, text))
        if kind == "choose_slot":
            return await self._booking.choose_slot(turn, Understanding(Intent.CHOOSE_OFFER, text, offer=action.offer))
        if kind == "choose_booking":
            draft = turn.state.booking
            handler = self._booking.move if draft is not None and draft.mode == "move" else self._booking.cancel
            return await handler(turn, Understanding(Intent.CHOOSE_OFFER, text, offer=action.offer))
        if kind == "choose_window":
            return await self._delivery.choose(turn, Understanding(Intent.CHOOSE_OFFER, text, offer=action.offer))
        if kind == "booking":
            return await self._booking_command(turn, action.command)
        raise ValueError(f"unknown action {kind!r}")

    async def _booking_command(self, turn: Turn, command: object) -> list[OutboundMessage]:
        """Booking commands, through the booking dialogue (which still reads the text for the time)."""
        text = "" if is_reference(turn.text) else turn.text
        if isinstance(command, FindSlots):
            reading = read(text, index=turn.index, state=turn.state) if text else None
            if reading is None or reading.intent != Intent.BOOK:
                reading = Understanding(Intent.BOOK, text, item_id=command.service_id)
            return await self._booking.book(turn, reading)
        if isinstance(command, MoveBooking):
            return await self._booking.move(turn, Understanding(Intent.BOOKING_MOVE, text))
        if isinstance(command, CancelBooking):
            return await self._booking.cancel(turn, Understanding(Intent.BOOKING_CANCEL, text))
        return await self._booking.status(turn, Understanding(Intent.BOOKING_STATUS, text))

    async def _run(self, turn: Turn, command: object) -> list[OutboundMessage]:
        """Run one accepted command."""
        text = turn.text
        match command:
            case SmallTalk(kind="greet"):
                return await self._greet(turn)
            case SmallTalk(kind="thanks" | "bye"):
                return await self._thanks(turn)
            case SmallTalk() | Skip():
                return await self._ack(turn)
            case Help():
                return await self._help(turn)
            case Handoff():
                return await self._handoff(turn)
            case Cancel():
                return await self._cancel(turn)
            case ShowCatalog():
                return await self._catalog(turn)
            case AnswerFaq(faq_id=faq_id):
                return await self._faq(turn, faq_id)
            case ShowItem(item_id=item_id, variant_id=variant_id, aspect=aspect):
                return await self._info(turn, item_id, variant_id, _ASPECT.get(aspect, Aspect.GENERAL))
            case NotSold(query=query):
                if not query:
                    return turn.reply(turn.t("info_which_item"), buttons=[_catalog_button(turn)])
                return turn.reply(turn.t("not_found"), buttons=[_catalog_button(turn), turn.button("human")])
            case AddToCart(item_id=item_id, variant_id=variant_id, quantity=quantity):
                return await self._add_item(turn, item_id, variant_id, quantity, asked_quantity=quantity)
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
            case Unresolved(then="add"):
                return await self._list_hits(turn, list(command.candidates), aspect=None, quantity=command.quantity,
                                             action=Intent.ADD, text=command.query)
            case Unresolved(then="show", listing=True) if len(command.candidates) > 1:
                return await self._list_hits(turn, list(command.candidates), aspect=Aspect.LIST, quantity=None,
                                             action=Intent.INFO)
            case Unresolved(then="show"):
                return await self._list_hits(turn, list(command.candidates), aspect=_ASPECT.get(command.aspect),
                                             quantity=None, action=Intent.INFO)
            case ShowCart():
                return await self._cart_show(turn)
            case ClearCart():
                return await self._cart_clear(turn)
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
            case GiveDetails():
                return await self._ack(turn)
        return await self._fallback(turn, text)

    async def _ask_delivery(self, turn: Turn, actions: list[Action],
                            replies: list[OutboundMessage]) -> list[OutboundMessage]:
        """After a product order was paid, the next answer also asks for its delivery window (once,
        unless the answer itself asks a question or the conversation went to a manager)."""
        if (turn.state.step is not None or turn.conversation.handoff or not replies
                or any(a.kind in ('choose_window', 'delivery_city') or isinstance(a.command, DeliveryStatus)
                       for a in actions)):
            return replies
        order = await self._current_order(turn)
        if not await self._delivery.due(turn, order):
            return replies
        assert order is not None
        question = await self._delivery.prompt(turn, order)
        last = replies[-1]
        merged = OutboundMessage(text="\n\n".join(p for p in (last.text, question.text) if p),
                                 buttons=question.buttons, url=last.url, image_url=last.image_url)
        return [*replies[:-1], merged]

    @staticmethod
    def _language(text: str, *, chosen: bool, state: DialogueState, conversation: Conversation,
                  company: Company) -> str:
        current = texts.lang_of(conversation.language or company.language)
        if chosen or state.step in FREE_TEXT_STEPS:  # button payloads, names, addresses, phones, cities
            return current
        norm = normalize(text)
        if norm in _NEUTRAL or sum(ch.isalpha() for ch in norm) < 2:
            return current
        return texts.lang_of(detect_language(text, default=current))

    # -- small talk -------------------------------------------------------------------------------

    async def _greet(self, turn: Turn) -> list[OutboundMessage]:
        key = {"service": "greeting_service", "hybrid": "greeting_hybrid"}.get(turn.company.type, "greeting")
        return turn.reply(turn.t(key, company=turn.company.name), buttons=_menu(turn))

    async def _help(self, turn: Turn) -> list[OutboundMessage]:
        return turn.reply(turn.t("help_service" if _services_only(turn) else "help"), buttons=_menu(turn))

    async def _thanks(self, turn: Turn) -> list[OutboundMessage]:
        return turn.reply(turn.t("thanks"), buttons=[_catalog_button(turn), _cart_or_booking(turn)])

    async def _ack(self, turn: Turn) -> list[OutboundMessage]:
        return turn.reply(turn.t("anything_else"), buttons=_menu(turn))

    async def _handoff(self, turn: Turn) -> list[OutboundMessage]:
        turn.conversation.handoff = True
        turn.conversation.status = "pending"
        return turn.reply(turn.t("handoff"))

    async def _cancel(self, turn: Turn) -> list[OutboundMessage]:
        if turn.asked == Step.BOOKING_NAME:
            return await self._booking.release_held(turn)
        if turn.state.booking is not None and turn.asked is not None:
            turn.state.booking = None  # choosing a service, a time or a booking: stop
        if turn.asked in (Step.CHOOSE_WINDOW, Step.DELIVERY_CITY):
            turn.state.delivery = None
        if turn.asked in CHECKOUT_STEPS:
            turn.state.checkout = CheckoutDraft()
            return turn.reply(turn.t("checkout_cancelled"), buttons=[turn.button("cart"), turn.button("catalog")])
        return turn.reply(turn.t("cancelled" if turn.asked else "ok"),
                          buttons=[_catalog_button(turn), _cart_or_booking(turn)])

    async def _fallback(self, turn: Turn, text: str) -> list[OutboundMessage]:
        hits = [] if is_reference(text) else search_items(turn.index, text) or _closest(turn.index, text)
        shown = list({h.name: h for h in reversed(hits)}.values())[::-1]
        shown = sorted(shown, key=lambda h: [x.name for x in hits].index(h.name))
        if shown:
            buttons = [_show_button(h.name, h.item_id) for h in shown[:MAX_ITEM_BUTTONS]]
            return turn.reply(turn.t("fallback_suggest"), buttons=[*buttons, _catalog_button(turn)])
        return turn.reply(turn.t("fallback_service" if _services_only(turn) else "fallback_plain"), buttons=_menu(turn))

    async def _faq(self, turn: Turn, faq_id: uuid.UUID) -> list[OutboundMessage]:
        answer = next((f.answer for f in turn.index.faq() if f.id == faq_id), None)
        if answer is None:
            return await self._fallback(turn, turn.text)
        return turn.reply(answer, buttons=[_catalog_button(turn), _cart_or_booking(turn)])

    # -- catalogue and item information -----------------------------------------------------------

    async def _catalog(self, turn: Turn) -> list[OutboundMessage]:
        items = await _company_items(turn)
        if not items:
            return turn.reply(turn.t("catalog_empty"), buttons=[turn.button("human")])
        shown = items[:CATALOG_PAGE]
        lines = [turn.t("catalog_header", count=len(items))]
        lines += _grouped_lines(turn, shown)
        more = len(items) - len(shown)
        hint = "catalog_hint_service" if _services_only(turn) else "catalog_hint"
        lines.append(turn.t("catalog_more", more=more) if more > 0 else turn.t(hint))
        buttons = [_show_button(it.name, it.id) for it in shown if _available(it)][:MAX_ITEM_BUTTONS]
        return turn.reply(*lines, buttons=[*buttons, _cart_or_booking(turn)])

    async def _info(self, turn: Turn, item_id: uuid.UUID, variant_id: uuid.UUID | None,
                    aspect: Aspect) -> list[OutboundMessage]:
        item = await _load_item(turn, item_id)
        if item is None:
            return turn.reply(turn.t("item_unavailable"), buttons=[_catalog_button(turn)])
        variant = _variant(item, variant_id)
        turn.state.last_item_id, turn.state.last_variant_id = item.id, variant.id if variant else None
        body = {
            Aspect.PRICE: _price_answer,
            Aspect.VARIANTS: _variants_answer,
            Aspect.STOCK: _stock_answer,
            Aspect.DESCRIPTION: _card,
            Aspect.GENERAL: _card,
            Aspect.LIST: _card,
            Aspect.DURATION: duration_answer,
            Aspect.PREPAY: prepay_answer,
        }[aspect](turn, item, variant) or _card(turn, item, variant)
        image = (variant.image_url if variant and variant.image_url else None) or item.image_url
        return turn.reply(*body, buttons=_item_buttons(turn, item, variant), image_url=image)

    async def _list_hits(self, turn: Turn, item_ids: list[uuid.UUID], *, aspect: Aspect | None,
                         quantity: int | None, action: Intent, text: str = "") -> list[OutboundMessage]:
        """Several items match: list them with prices and ask which one (buttons repeat the action)."""
        items = [it for it in [await _load_item(turn, i) for i in item_ids] if it is not None]
        if not items:
            return turn.reply(turn.t("not_found"), buttons=[_catalog_button(turn)])
        lines = [turn.t("found_several" if action == Intent.INFO else "ask_which_item")]
        lines += [texts.bullet(it.name, _price_label(turn, it)) for it in items]
        if action == Intent.INFO:
            buttons = [_show_button(it.name, it.id) for it in items]
        else:
            buttons = [_add_button(turn, it, _named_variant(turn, it, text), quantity=quantity or 1, title=it.name)
                       for it in items]
        turn.state.step = Step.CHOOSE_ITEM
        turn.state.pending = Pending(action=action.value, candidates=[it.id for it in items], quantity=quantity,
                                     aspect=aspect.value if aspect else None)
        return turn.reply(*lines, buttons=buttons[:MAX_ITEM_BUTTONS + 1])

    # -- cart -------------------------------------------------------------------------------------

    async def _add_more(self, turn: Turn, quantity: int | None) -> list[OutboundMessage]:
        item_id, variant_id = turn.state.last_item_id, turn.state.last_variant_id
        if item_id is None:  # the item talked about was removed: "another one" means the last cart line
            cart = await open_cart(turn.session, turn.conversation)
            if cart.lines:
                item_id, variant_id = cart.lines[-1].item_id, cart.lines[-1].variant_id
        if item_id is None:
            return turn.reply(turn.t("ask_what_to_add"), buttons=[turn.button("catalog")])
        return await self._add_item(turn, item_id, variant_id, quantity or 1, asked_quantity=quantity)

    async def _add_item(self, turn: Turn, item_id: uuid.UUID, variant_id: uuid.UUID | None, quantity: int, *,
                        asked_quantity: int | None) -> list[OutboundMessage]:
        item = await _load_item(turn, item_id)
        if item is None:
            return turn.reply(turn.t("item_unavailable"), buttons=[turn.button("catalog")])
        if item.kind == "service":  # services are booked, not put in the cart
            return await self._booking.book(turn, Understanding(Intent.BOOK, turn.text, item_id=item.id))
        variant = _variant(item, variant_id)
        if variant is None and len(item.variants) == 1:
            variant = item.variants[0]
        if variant is None and item.variants:
            return self._ask_variant(turn, item, asked_quantity)
        turn.state.last_item_id, turn.state.last_variant_id = item.id, variant.id if variant else None
        cart = await open_cart(turn.session, turn.conversation)
        try:
            await add_to_cart(turn.session, cart, item_id=item.id, variant_id=variant.id if variant else None,
                              quantity=quantity)
        except VariantRequired:
            return self._ask_variant(turn, item, asked_quantity)
        except OutOfStock as exc:
            in_cart = sum(ln.quantity for ln in cart.lines
                          if ln.item_id == item.id and ln.variant_id == (variant.id if variant else None))
            return _out_of_stock_reply(turn, exc, in_cart=in_cart)
        except PriceMissing as exc:
            return turn.reply(turn.t("price_missing_error", name=exc.item_name), buttons=[turn.button("human")])
        except InvalidQuantity:
            return turn.reply(turn.t("invalid_quantity", max=MAX_QUANTITY), buttons=[turn.button("cart")])
        except ItemNotFound:
            return turn.reply(turn.t("item_unavailable"), buttons=[turn.button("catalog")])
        lines = await _priced(turn, cart)
        if lines is None:
            return turn.reply(turn.t("price_missing_error", name=item.name), buttons=[turn.button("human")])
        unit = _unit_price(item, variant) or 0
        added = texts.line(quantity, item.name, variant.name if variant else None,
                           turn.money(unit * quantity, item.currency))
        return turn.reply(
            turn.t("added", line=added), turn.t("cart_total", total=_total(turn, lines)),
            buttons=[turn.button("checkout"), turn.button("cart"), turn.button("continue")],
        )

    def _ask_variant(self, turn: Turn, item: KnowledgeItem, quantity: int | None) -> list[OutboundMessage]:
        available = [v for v in item.variants if v.stock is None or v.stock > 0]
        if not available:
            return turn.reply(turn.t("ask_variant_sold_out", name=item.name), buttons=[turn.button("catalog")])
        turn.state.step = Step.CHOOSE_VARIANT
        turn.state.pending = Pending(action=Intent.ADD.value, item_id=item.id, quantity=quantity)
        turn.state.last_item_id, turn.state.last_variant_id = item.id, None
        text = turn.t("ask_variant", option=_option_name(turn, item), name=item.name,
                      options=", ".join(v.name for v in available))
        buttons = [_add_button(turn, item, v, quantity=quantity or 1)
                   for v in available]
        return turn.reply(text, buttons=buttons[:8])

    async def _cart_show(self, turn: Turn) -> list[OutboundMessage]:
        cart = await open_cart(turn.session, turn.conversation)
        return await _cart_reply(turn, cart)

    async def _cart_clear(self, turn: Turn) -> list[OutboundMessage]:
        cart = await open_cart(turn.session, turn.conversation)
        await clear_cart(turn.session, cart)
        return turn.reply(turn.t("cart_cleared"), buttons=[turn.button("catalog")])

    async def _cart_set(self, turn: Turn, ref: Unresolved) -> list[OutboundMessage]:
        cart = await open_cart(turn.session, turn.conversation)
        lines = await _priced(turn, cart)
        if not lines:
            return turn.reply(turn.t("cart_empty"), buttons=[turn.button("catalog")])
        targets = _target_lines(turn, ref, lines)
        if isinstance(targets, _Ask):
            return targets.replies
        if len(targets) > 1:
            return _which_line(turn, targets, ref, remove=False).replies
        target = targets[0]
        if ref.quantity is None:
            return turn.reply(turn.t("ask_new_quantity", name=target.name), buttons=[turn.button("cart")])
        try:
            await set_line_quantity(turn.session, cart, line_id=target.line_id, quantity=ref.quantity)
        except OutOfStock as exc:
            return _out_of_stock_reply(turn, exc, in_cart=0)
        except InvalidQuantity:
            return turn.reply(turn.t("invalid_quantity", max=MAX_QUANTITY), buttons=[turn.button("cart")])
        turn.state.last_item_id, turn.state.last_variant_id = target.item_id, target.variant_id
        if ref.quantity == 0:
            head = turn.t("cart_removed", name=texts.item_label(target.name, target.variant))
        else:
            head = turn.t("cart_updated", line=texts.line(ref.quantity, target.name, target.variant,
                                                          turn.money(target.unit_price_minor * ref.quantity,
                                                                     target.currency)))
        return await _cart_reply(turn, cart, head=head)

    async def _cart_remove(self, turn: Turn, ref: Unresolved) -> list[OutboundMessage]:
        cart = await open_cart(turn.session, turn.conversation)
        lines = await _priced(turn, cart)
        if not lines:
            return turn.reply(turn.t("cart_empty"), buttons=[turn.button("catalog")])
        targets = _target_lines(turn, ref, lines, remove=True)
        if isinstance(targets, _Ask):
            return targets.replies
        if len(targets) == 1 and ref.quantity is not None and 0 < ref.quantity < targets[0].quantity:
            target = targets[0]  # "remove 1 shirt" from 3: two stay
            await set_line_quantity(turn.session, cart, line_id=target.line_id, quantity=target.quantity - ref.quantity)
            head = turn.t("cart_updated", line=texts.line(
                target.quantity - ref.quantity, target.name, target.variant,
                turn.money(target.unit_price_minor * (target.quantity - ref.quantity), target.currency)))
            return await _cart_reply(turn, cart, head=head)
        for target in targets:
            await set_line_quantity(turn.session, cart, line_id=target.line_id, quantity=0)
            if target.item_id == turn.state.last_item_id:
                turn.state.last_item_id = turn.state.last_variant_id = None
        names = ", ".join(dict.fromkeys(texts.item_label(t.name, t.variant) for t in targets))
        return await _cart_reply(turn, cart, head=turn.t("cart_removed", name=names))

    # -- checkout -----------------------------------------------------------------------------------

    async def _checkout(self, turn: Turn) -> list[OutboundMessage]:
        cart = await open_cart(turn.session, turn.conversation)
        lines = await _priced(turn, cart)
        if lines is None:
            return turn.reply(turn.t("price_missing_error", name="?"), buttons=[turn.button("human")])
        if not lines:
            buttons = [turn.button("catalog")]
            if await self._current_order(turn) is not None:
                buttons.append(turn.button("status"))
            return turn.reply(turn.t("checkout_empty"), buttons=buttons)
        turn.state.checkout = CheckoutDraft()
        turn.state.step = Step.CHECKOUT_NAME
        contact = await turn.session.get(Contact, turn.conversation.contact_id)
        suggestion = turn.state.profile.name or (contact.name if contact is not None else None)
        return turn.reply(turn.t("checkout_intro"), *_cart_text(turn, lines)[1:], turn.t("ask_name"),
                          buttons=_suggest(turn, suggestion))

    async def _checkout_answer(self, turn: Turn, field: str, answer: str, *,
                               skipped: bool = False) -> list[OutboundMessage]:
        """The answer to checkout question ``field`` (``name``/``address``/``phone``; ``""``: none, or a
        skipped phone when the question was the phone and the policy took a ``skip``)."""
        draft = turn.state.checkout
        if turn.asked == Step.CHECKOUT_NAME:
            if not answer or len(answer) > 200 or not any(ch.isalpha() for ch in answer):
                turn.state.step = Step.CHECKOUT_NAME
                return turn.reply(turn.t("bad_name"), buttons=[turn.button("cancel")])
            draft.name = answer
            turn.state.step = Step.CHECKOUT_ADDRESS
            return turn.reply(turn.t("ask_address"), buttons=_suggest(turn, turn.state.profile.address))
        if turn.asked == Step.CHECKOUT_ADDRESS:
            if len(answer) < 2 or len(answer) > 500 or not any(ch.isalnum() for ch in answer):
                turn.state.step = Step.CHECKOUT_ADDRESS
                return turn.reply(turn.t("bad_address"), buttons=[turn.button("cancel")])
            draft.address = answer
            if turn.inbound.phone:
                draft.phone = turn.inbound.phone
                return await self._place_order(turn)
            turn.state.step = Step.CHECKOUT_PHONE
            return turn.reply(turn.t("ask_phone"), buttons=[turn.button("skip"), turn.button("cancel")])
        if turn.asked == Step.CHECKOUT_PHONE:
            if skipped:
                draft.phone = ""
                return await self._place_order(turn)
            if not _valid_phone(answer):
                turn.state.step = Step.CHECKOUT_PHONE
                return turn.reply(turn.t("bad_phone"), buttons=[turn.button("skip"), turn.button("cancel")])
            draft.phone = answer
            return await self._place_order(turn)
        return await self._fallback(turn, turn.text)

    async def _place_order(self, turn: Turn) -> list[OutboundMessage]:
        draft = turn.state.checkout
        cart = await open_cart(turn.session, turn.conversation)
        lines = await _priced(turn, cart)
        if lines is None:
            return turn.reply(turn.t("price_missing_error", name="?"), buttons=[turn.button("human")])
        shortage = await _stock_shortage(turn, lines)
        if shortage is not None:
            return _out_of_stock_checkout(turn, shortage)
        try:
            order = await checkout(turn.session, cart=cart, conversation=turn.conversation, company=turn.company,
                                   customer_name=draft.name, delivery_address=draft.address,
                                   phone=draft.phone or None)
        except EmptyCart:
            return turn.reply(turn.t("checkout_empty"), buttons=[turn.button("catalog")])
        except OutOfStock as exc:
            return _out_of_stock_checkout(turn, exc)
        except PriceMissing as exc:
            return turn.reply(turn.t("price_missing_error", name=exc.item_name), buttons=[turn.button("human")])
        turn.state.order_id = order.id
        turn.state.profile = CheckoutDraft(name=draft.name, address=draft.address, phone=draft.phone)
        turn.state.checkout = CheckoutDraft()
        summary = _order_summary(turn, order)
        try:
            payment = await issue_payment_link(turn.session, order=order, company=turn.company,
                                               providers=self._providers, ttl=self._payment_ttl)
        except (PaymentUnavailable, KeyError):
            turn.conversation.status = "pending"  # flagged for a manager
            return turn.reply(*summary, "", turn.t("payment_unavailable", number=order.number),
                              buttons=[turn.button("status")])
        total = turn.money(order.total_minor, order.currency)
        return turn.reply(*summary, "", turn.t("pay_link", total=total, url=payment.checkout_url),
                          url=payment.checkout_url, buttons=[turn.button("status")])

    # -- orders and payments ------------------------------------------------------------------------

    async def _current_order(self, turn: Turn) -> Order | None:
        """The order of this conversation: the one in the state, else the latest in the database."""
        if turn.state.order_id is not None:
            order = (await turn.session.execute(turn.scope.select(
                Order, Order.id == turn.state.order_id, Order.company_id == turn.company.id))).scalar_one_or_none()
            if order is not None:
                return order
        return (await turn.session.execute(
            turn.scope.select(Order, Order.company_id == turn.company.id,
                              Order.conversation_id == turn.conversation.id).order_by(Order.number.desc()).limit(1)
        )).scalar_one_or_none()

    async def _order_status(self, turn: Turn) -> list[OutboundMessage]:
        order = await self._current_order(turn)
        if order is None:
            return turn.reply(turn.t("order_none"), buttons=[turn.button("catalog"), turn.button("cart")])
        total = turn.money(order.total_minor, order.currency)
        if order.payment_status == "paid":
            return turn.reply(turn.t("status_paid", number=order.number, total=total), buttons=[turn.button("catalog")])
        if order.status == "cancelled":
            return turn.reply(turn.t("status_cancelled", number=order.number), buttons=[turn.button("human")])
        if order.payment_status == "refunded":
            return turn.reply(turn.t("status_refunded", number=order.number, total=total),
                              buttons=[turn.button("human")])
        if order.payment_status == "payment_link_sent":
            return await self._link_reply(turn, order, key="status_waiting")
        if order.payment_status == "no_payment_link":
            return turn.reply(turn.t("status_no_link", number=order.number, total=total),
                              buttons=[turn.button("human")])
        return turn.reply(texts.status_other(turn.language, number=order.number, total=total,
                                             status=order.payment_status),
                          buttons=[turn.button("new_link"), turn.button("human")])

    async def _new_link(self, turn: Turn) -> list[OutboundMessage]:
        order = await self._current_order(turn)
        if order is None or order.payment_status == "paid" or order.status == "cancelled":
            cart = await open_cart(turn.session, turn.conversation)
            if cart.lines:  # "I want to pay" with a full cart: place the order first
                return await self._checkout(turn)
        if order is None:
            return turn.reply(turn.t("order_none"), buttons=[turn.button("catalog"), turn.button("cart")])
        return await self._link_reply(turn, order, key="new_link")

    async def _delivery_status(self, turn: Turn, faq_id: uuid.UUID | None) -> list[OutboundMessage]:
        """"When will my order arrive?": the chosen delivery window (or the windows to choose from)."""
        order = await self._current_order(turn)
        if order is None:
            if faq_id is not None:
                return await self._faq(turn, faq_id)
            return turn.reply(turn.t("order_none"), buttons=[turn.button("catalog"), turn.button("cart")])
        answer = await self._delivery.status(turn, order)
        return answer if answer is not None else await self._order_status(turn)

    async def _link_reply(self, turn: Turn, order: Order, *, key: str) -> list[OutboundMessage]:
        """The order's live payment link (a new one when it expired) in text ``key``."""
        total = turn.money(order.total_minor, order.currency)
        if order.payment_status == "paid":
            return turn.reply(turn.t("already_paid", number=order.number), buttons=[turn.button("catalog")])
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
            return turn.reply(turn.t("status_refunded" if order.payment_status == "refunded" else "already_paid",
                                     number=order.number, total=total), buttons=[turn.button("human")])
        except (PaymentUnavailable, KeyError):
            turn.conversation.status = "pending"
            return turn.reply(turn.t("payment_unavailable", number=order.number), buttons=[turn.button("human")])
        turn.state.order_id = order.id
        return turn.reply(turn.t(key, number=order.number, total=total, url=payment.checkout_url),
                          url=payment.checkout_url, buttons=[turn.button("status")])


# --- helpers ---------------------------------------------------------------------------------------


def _pressed(text: str, state: DialogueState) -> tuple[str, object | None]:
    """A pressed button: its reference decoded into a command (``bot.buttons``). A reply "2" to
    buttons shown as a numbered list is the second button (its reference, or the phrase a booking or
    delivery button still carries). Returns the text to understand and the command pressed (``None``
    when the text must be understood)."""
    command = decode(text)
    if command is not None:
        return text, command
    if state.choices and state.step not in FREE_TEXT_STEPS:
        stripped = text.strip().rstrip(".)")
        if stripped.isdigit() and 1 <= int(stripped) <= len(state.choices):
            chosen = state.choices[int(stripped) - 1]
            return chosen, decode(chosen)
    return text, None


def _merged(replies: list[OutboundMessage]) -> list[OutboundMessage]:
    """Several actions' replies as one message (the texts in order, the last buttons, link and image)."""
    if len(replies) <= 1:
        return replies
    last_url = next((r.url for r in reversed(replies) if r.url), None)
    image = next((r.image_url for r in reversed(replies) if r.image_url), None)
    return [OutboundMessage(text="\n\n".join(r.text for r in replies if r.text), buttons=replies[-1].buttons,
                            url=last_url, image_url=image)]


def _closest(index: KnowledgeIndex, text: str) -> list[ItemHit]:
    """Items close to any single word of ``text`` (for "did you mean" when the whole message matched
    nothing): "something warm for winter" → Soft Winter Jacket."""
    hits: list[ItemHit] = []
    for word in command_free(text).split():
        if len(word) >= 3:
            hits += index.search_items(word, limit=2)
    return sorted(hits, key=lambda h: -h.score)


def _services_only(turn: Turn) -> bool:
    """A company of services (bookings, no cart)."""
    return turn.company.type == "service"


def _catalog_button(turn: Turn) -> Button:
    return turn.button("services" if _services_only(turn) else "catalog")


def _cart_or_booking(turn: Turn) -> Button:
    return turn.button("my_booking" if _services_only(turn) else "cart")


def _menu(turn: Turn) -> list[Button]:
    if _services_only(turn):
        return [turn.button("services"), turn.button("book"), turn.button("my_booking"), turn.button("human")]
    return [turn.button("catalog"), turn.button("cart"), turn.button("human")]


def _suggest(turn: Turn, value: str | None) -> list[Button]:
    """A checkout question's buttons: the previous answer (when known) and "Cancel"."""
    buttons = [Button(title=value, payload=value)] if value else []
    return [*buttons, turn.button("cancel")]


def _named_variant(turn: Turn, item: KnowledgeItem, text: str) -> KnowledgeVariant | None:
    """The variant of ``item`` that ``text`` names ("the large"), if any."""
    return _variant(item, turn.index.match_variant(item.id, text)) if text and item.variants else None


def _show_button(title: str, item_id: uuid.UUID) -> Button:
    """A button showing an item's card."""
    return Button(title=title, payload=reference(ShowItem(item_id=item_id)))


def _add_button(turn: Turn, item: KnowledgeItem, variant: KnowledgeVariant | None, *, quantity: int = 1,
                title: str | None = None) -> Button:
    """A button adding ``quantity`` of an item (and variant) to the cart, titled with the variant's
    name (or "Add to cart")."""
    command = AddToCart(item_id=item.id, variant_id=variant.id if variant else None, quantity=quantity)
    return Button(title=title or (variant.name if variant else texts.add_title(turn.language)),
                  payload=reference(command))


def _valid_phone(text: str) -> bool:
    digits = sum(ch.isdigit() for ch in text)
    return bool(_PHONE.fullmatch(text)) and 7 <= digits <= 15


async def _load_item(turn: Turn, item_id: uuid.UUID) -> KnowledgeItem | None:
    """The company's item with its variants, read from the database (current price and stock)."""
    return (await turn.session.execute(turn.scope.select(
        KnowledgeItem, KnowledgeItem.id == item_id, KnowledgeItem.company_id == turn.company.id))).scalar_one_or_none()


async def _company_items(turn: Turn) -> list[KnowledgeItem]:
    return list((await turn.session.execute(
        turn.scope.select(KnowledgeItem, KnowledgeItem.company_id == turn.company.id)
        .order_by(KnowledgeItem.position, KnowledgeItem.name)
    )).scalars())


def _variant(item: KnowledgeItem, variant_id: uuid.UUID | None) -> KnowledgeVariant | None:
    return next((v for v in item.variants if v.id == variant_id), None) if variant_id else None


def _unit_price(item: KnowledgeItem, variant: KnowledgeVariant | None) -> int | None:
    if variant is not None and variant.price_minor is not None:
        return variant.price_minor
    return item.price_minor


def _stock(item: KnowledgeItem, variant: KnowledgeVariant | None) -> int | None:
    return variant.stock if variant is not None else item.stock


def _available(item: KnowledgeItem) -> bool:
    if item.variants:
        return any(v.stock is None or v.stock > 0 for v in item.variants)
    return item.stock is None or item.stock > 0


def _stock_label(turn: Turn, stock: int | None) -> str:
    if stock is None:
        return turn.t("in_stock")
    if stock <= 0:
        return turn.t("sold_out")
    if stock <= LOW_STOCK:
        return turn.t("few_left", count=stock)
    return turn.t("in_stock")


def _price_label(turn: Turn, item: KnowledgeItem) -> str:
    """``50.00 USD``, ``from 120,00 ₽`` when variants differ, or "price on request"."""
    prices = {_unit_price(item, v) for v in item.variants} if item.variants else {item.price_minor}
    known = sorted(p for p in prices if p is not None)
    if not known:
        label = turn.t("price_missing")
    elif known == [0] and item.kind == "service":
        label = turn.t("free")
    elif len(known) == 1:
        label = turn.money(known[0], item.currency)
    else:
        label = turn.t("price_from", price=turn.money(known[0], item.currency))
    if not _available(item):
        label = f"{label} ({turn.t('sold_out')})"
    return label


def _variant_prices_differ(item: KnowledgeItem) -> bool:
    return len({_unit_price(item, v) for v in item.variants}) > 1


def _option_name(turn: Turn, item: KnowledgeItem) -> str:
    keys = {k for v in item.variants for k in (v.options or {})}
    if len(keys) == 1:
        key = next(iter(keys)).strip()
        if key and key.casefold() not in ("title", "option", "variant"):
            return key.lower()
    return turn.t("option_generic")


def _grouped_lines(turn: Turn, items: list[KnowledgeItem]) -> list[str]:
    """Catalogue lines, under category headings when the items have categories."""
    groups: dict[str, list[KnowledgeItem]] = {}
    for it in items:
        groups.setdefault(it.category or "", []).append(it)
    lines: list[str] = []
    for category, members in groups.items():
        if category and len(groups) > 1:
            lines.append(f"{category}:")
        lines += [texts.bullet(it.name, _price_label(turn, it) + _duration_suffix(turn, it)) for it in members]
    return lines


def _duration_suffix(turn: Turn, item: KnowledgeItem) -> str:
    """``, 60 min`` after a service's price in lists."""
    if item.kind != "service" or not item.duration_minutes:
        return ""
    return ", " + turn.t("minutes", minutes=item.duration_minutes)


def _variant_lines(turn: Turn, item: KnowledgeItem, *, prices: bool, stock: bool) -> list[str]:
    out = []
    for v in item.variants:
        parts = []
        if prices:
            unit = _unit_price(item, v)
            parts.append(turn.money(unit, item.currency) if unit is not None else turn.t("price_missing"))
        if stock:
            parts.append(_stock_label(turn, v.stock))
        out.append(texts.bullet(v.name, ", ".join(parts) if parts else None))
    return out


def _price_answer(turn: Turn, item: KnowledgeItem, variant: KnowledgeVariant | None) -> list[str]:
    if variant is None and item.variants and _variant_prices_differ(item):
        return [turn.t("info_price_variants", name=item.name), *_variant_lines(turn, item, prices=True, stock=False)]
    unit = _unit_price(item, variant)
    if unit is None:
        return [turn.t("info_price", name=item.name, price=turn.t("price_missing"))]
    label = texts.item_label(item.name, variant.name if variant else None)
    out = [turn.t("info_price", name=label, price=turn.money(unit, item.currency))]
    if variant is None and item.variants:
        out.append(turn.t("info_variants", name=item.name, variants=", ".join(v.name for v in item.variants)))
    stock = _stock(item, variant)
    if variant is not None or not item.variants:
        if stock is not None and stock <= 0:
            out.append(turn.t("info_stock_no", name=label))
        elif stock is not None and stock <= LOW_STOCK:
            out.append(turn.t("info_stock_low", name=label, count=stock))
    return out


def _variants_answer(turn: Turn, item: KnowledgeItem, variant: KnowledgeVariant | None) -> list[str]:
    if not item.variants:
        return [turn.t("info_single", name=item.name, price=_price_label(turn, item))]
    tracked = any(v.stock is not None for v in item.variants)
    differ = _variant_prices_differ(item)
    if not tracked and not differ:
        unit = _unit_price(item, item.variants[0])
        out = [turn.t("info_variants", name=item.name, variants=", ".join(v.name for v in item.variants))]
        if unit is not None:
            out.append(turn.t("info_price", name=item.name, price=turn.money(unit, item.currency)))
        return out
    return [turn.t("info_variants", name=item.name, variants=", ".join(v.name for v in item.variants)),
            *_variant_lines(turn, item, prices=True, stock=tracked)]


def _stock_answer(turn: Turn, item: KnowledgeItem, variant: KnowledgeVariant | None) -> list[str]:
    if variant is None and item.variants:
        if all(v.stock is None for v in item.variants):
            return [turn.t("info_stock_yes", name=item.name),
                    turn.t("info_variants", name=item.name, variants=", ".join(v.name for v in item.variants))]
        return [turn.t("info_stock_variants", name=item.name), *_variant_lines(turn, item, prices=False, stock=True)]
    label = texts.item_label(item.name, variant.name if variant else None)
    stock = _stock(item, variant)
    unit = _unit_price(item, variant)
    price = turn.t("info_price", name=label, price=turn.money(unit, item.currency)) if unit is not None else ""
    if stock is None:
        return [turn.t("info_stock_yes", name=label), price]
    if stock <= 0:
        return [turn.t("info_stock_no", name=label)]
    if stock <= LOW_STOCK:
        return [turn.t("info_stock_low", name=label, count=stock), price]
    return [turn.t("info_stock_yes", name=label), price]


def _card(turn: Turn, item: KnowledgeItem, variant: KnowledgeVariant | None) -> list[str]:
    """Everything about an item: name and price, description, variants, availability, duration."""
    label = texts.item_label(item.name, variant.name if variant else None)
    if variant is not None:
        unit = _unit_price(item, variant)
        price = turn.money(unit, item.currency) if unit is not None else turn.t("price_missing")
        out = [f"{label} — {price} ({_stock_label(turn, variant.stock)})"]
    else:
        out = [f"{label} — {_price_label(turn, item)}"]
    description = " ".join((item.description or "").split())
    if description:
        if len(description) > MAX_DESCRIPTION:
            description = description[:MAX_DESCRIPTION].rsplit(" ", 1)[0] + "…"
        out.append(description)
    if item.kind == "service":
        out += service_lines(turn, item)
    elif item.duration_minutes:
        out.append(turn.t("info_duration", minutes=item.duration_minutes))
    if variant is None and item.variants:
        tracked = any(v.stock is not None for v in item.variants)
        if tracked or _variant_prices_differ(item):
            out.append(turn.t("info_variants_header", name=item.name))
            out += _variant_lines(turn, item, prices=_variant_prices_differ(item), stock=tracked)
        else:
            out.append(turn.t("info_variants", name=item.name, variants=", ".join(v.name for v in item.variants)))
    elif variant is None and item.stock is not None:
        out.append(_stock_sentence(turn, item.name, item.stock))
    return out


def _stock_sentence(turn: Turn, label: str, stock: int) -> str:
    if stock <= 0:
        return turn.t("info_stock_no", name=label)
    if stock <= LOW_STOCK:
        return turn.t("info_stock_low", name=label, count=stock)
    return turn.t("info_stock_yes", name=label)


def _item_buttons(turn: Turn, item: KnowledgeItem, variant: KnowledgeVariant | None) -> list[Button]:
    """Buttons under an item answer: add the variant (or one per available variant), then the cart;
    for a service: book it."""
    if item.kind == "service":
        return [texts.book_button(turn.language, name=item.name), _catalog_button(turn), _cart_or_booking(turn)]
    buttons: list[Button] = []
    if variant is not None:
        if _unit_price(item, variant) is not None and (variant.stock is None or variant.stock > 0):
            buttons.append(_add_button(turn, item, variant))
    elif item.variants:
        for v in item.variants:
            if (v.stock is None or v.stock > 0) and _unit_price(item, v) is not None:
                buttons.append(_add_button(turn, item, v))
        buttons = buttons[:MAX_ITEM_BUTTONS]
    elif item.price_minor is not None and (item.stock is None or item.stock > 0):
        buttons.append(_add_button(turn, item, None))
    return [*buttons, turn.button("cart")]


async def _priced(turn: Turn, cart: Cart) -> list[PricedLine] | None:
    """The cart priced from the database; ``None`` when an item lost its price."""
    try:
        return await priced_lines(turn.session, cart)
    except PriceMissing:
        return None


def _total(turn: Turn, lines: list[PricedLine]) -> str:
    currency = lines[0].currency if lines else turn.company.currency
    return turn.money(sum(pl.total_minor for pl in lines), currency)


async def _cart_reply(turn: Turn, cart: Cart, *, head: str | None = None) -> list[OutboundMessage]:
    lines = await _priced(turn, cart)
    if lines is None:
        return turn.reply(turn.t("price_missing_error", name="?"), buttons=[turn.button("human")])
    if not lines:
        return turn.reply(head or "", turn.t("cart_empty"), buttons=[turn.button("catalog")])
    body = [texts.line(pl.quantity, pl.name, pl.variant, turn.money(pl.total_minor, pl.currency)) for pl in lines]
    return turn.reply(head or "", turn.t("cart_header"), *body, turn.t("total", total=_total(turn, lines)),
                      buttons=[turn.button("checkout"), turn.button("continue"), turn.button("clear")])


def _target_lines(turn: Turn, ref: Unresolved, lines: list[PricedLine], *,
                  remove: bool = False) -> list[PricedLine] | _Ask:
    """The cart lines a change or removal is about, or the question asking which: the item named
    when it is in the cart, else the candidates that are (asking which when several are and no
    single item was named), else the only line."""
    in_cart = {pl.item_id for pl in lines}
    named = ref.candidates[0] if ref.exact and ref.candidates else None
    item_id = named if named in in_cart else None
    if item_id is None:
        candidates = [c for c in ref.candidates if c in in_cart]
        if len(candidates) > 1 and named is None:
            return _which_line(turn, [pl for pl in lines if pl.item_id in set(candidates)], ref, remove)
        if candidates:
            item_id = candidates[0]
    if item_id is None:
        if ref.candidates:
            try:
                name = turn.index.item(ref.candidates[0]).name
            except KeyError:
                name = "?"
            return _Ask(turn.reply(turn.t("cart_not_in_cart", name=name), *_cart_text(turn, lines),
                                   buttons=[turn.button("checkout"), turn.button("continue")]))
        if len(lines) == 1:
            return [lines[0]]
        return _which_line(turn, lines, ref, remove)
    matching = [pl for pl in lines if pl.item_id == item_id]
    variant_id = ref.variant_id if item_id == named else (
        turn.index.match_variant(item_id, ref.query) if ref.query else None)
    if variant_id is not None:
        exact = [pl for pl in matching if pl.variant_id == variant_id]
        if exact:
            return exact
    if len(matching) > 1 and not remove:
        return _which_line(turn, matching, ref, remove)
    return matching


def _which_line(turn: Turn, lines: list[PricedLine], ref: Unresolved, remove: bool) -> _Ask:
    if remove:
        commands: list[object] = [RemoveLine(item_id=pl.item_id, variant_id=pl.variant_id) for pl in lines]
    else:
        quantity = ref.quantity if ref.quantity else 1
        commands = [SetQuantity(item_id=pl.item_id, variant_id=pl.variant_id, quantity=quantity) for pl in lines]
    buttons = [Button(title=texts.item_label(pl.name, pl.variant), payload=reference(c))
               for pl, c in zip(lines, commands, strict=True)]
    return _Ask(turn.reply(turn.t("cart_which_line"), buttons=buttons[:8]))


def _cart_text(turn: Turn, lines: list[PricedLine]) -> list[str]:
    return [turn.t("cart_header"),
            *[texts.line(pl.quantity, pl.name, pl.variant, turn.money(pl.total_minor, pl.currency)) for pl in lines],
            turn.t("total", total=_total(turn, lines))]


def _out_of_stock_reply(turn: Turn, exc: OutOfStock, *, in_cart: int) -> list[OutboundMessage]:
    label = texts.item_label(exc.item_name, exc.variant)
    if exc.available <= 0:
        text = [turn.t("out_of_stock", name=label)]
    else:
        text = [turn.t("out_of_stock_some", count=exc.available, name=label)]
        if in_cart:
            text.append(turn.t("already_in_cart", count=in_cart))
    return turn.reply(*text, buttons=[turn.button("cart"), turn.button("catalog")])


def _out_of_stock_checkout(turn: Turn, exc: OutOfStock) -> list[OutboundMessage]:
    label = texts.item_label(exc.item_name, exc.variant)
    return turn.reply(turn.t("checkout_out_of_stock", name=label, count=exc.available),
                      buttons=[turn.button("cart"), turn.button("human")])


async def _stock_shortage(turn: Turn, lines: list[PricedLine]) -> OutOfStock | None:
    """Check every line's tracked stock before checkout (so a failure changes nothing)."""
    for pl in lines:
        item = await _load_item(turn, pl.item_id)
        if item is None:
            return OutOfStock(pl.name, pl.variant, 0)
        stock = _stock(item, _variant(item, pl.variant_id))
        if stock is not None and stock < pl.quantity:
            return OutOfStock(pl.name, pl.variant, max(stock, 0))
    return None


def _order_summary(turn: Turn, order: Order) -> list[str]:
    out = [turn.t("order_summary", number=order.number)]
    out += [texts.line(ln.quantity, ln.name, ln.variant, turn.money(ln.line_total_minor, order.currency))
            for ln in order.lines]
    out.append(turn.t("total", total=turn.money(order.total_minor, order.currency)))
    if order.customer_name:
        out.append(turn.t("summary_name", value=order.customer_name))
    if order.delivery_address:
        out.append(turn.t("summary_address", value=order.delivery_address))
    if order.phone:
        out.append(turn.t("summary_phone", value=order.phone))
    return out
