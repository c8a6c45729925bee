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
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot import texts
from bot.booking import BookingDialogue, booking_of_order, duration_answer, link_ttl, prepay_answer, service_lines
from bot.delivery import DeliveryDialogue
from bot.messages import Button, InboundMessage, OutboundMessage
from bot.nlu import Aspect, Intent, Understanding, close_hits, command_free, is_ambiguous, is_bare, understand
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
from core.alerts import record_alert
from core.models import Cart, Company, Contact, Conversation, KnowledgeItem, KnowledgeVariant, Order
from core.money import format_money
from core.tenancy import TenantScope
from core.timeutil import utcnow
from knowledge.search import ItemHit, KnowledgeIndex, KnowledgeIndexCache
from knowledge.text import detect_language, normalize

CATALOG_PAGE = 10  # items listed by "catalogue"
LOW_STOCK = 5  # "only N left" at or below this tracked stock
MAX_ITEM_BUTTONS = 4
MAX_DESCRIPTION = 600  # characters of a description shown in an item card
# Messages that say nothing about the language (the conversation keeps its language).
_NEUTRAL = frozenset({"ok", "okay", "ок", "окей", "да", "yes", "no", "нет", "xs", "s", "m", "l", "xl", "xxl"})
_PHONE = re.compile(r"^\+?[\d\s().\-]+$")


@dataclass
class Turn:
    """One message being answered: the session, the rows involved, the index, the state (changed in
    place and saved after the handler), the reply language, the question that was open
    (``asked``/``pending``) before this message, and ``now`` (aware UTC, from the engine's clock)."""

    session: AsyncSession
    inbound: InboundMessage
    conversation: Conversation
    company: Company
    index: KnowledgeIndex
    state: DialogueState
    language: str
    asked: Step | None = None
    pending: Pending | None = None
    now: datetime = field(default_factory=utcnow)
    scope: TenantScope = field(init=False)

    def __post_init__(self) -> None:
        self.scope = TenantScope(self.company.tenant_id)

    def t(self, key: str, **values: object) -> str:
        """Text ``key`` of ``bot.texts`` in the reply language."""
        return texts.t(key, self.language, **values)

    def button(self, key: str) -> Button:
        """A standard button of ``bot.texts`` in the reply language."""
        return texts.button(key, self.language)

    def money(self, amount_minor: int, currency: str) -> str:
        """An amount in minor units formatted for the reply language."""
        return format_money(amount_minor, currency, language=self.language)

    def reply(self, *parts: str, buttons: list[Button] | tuple[Button, ...] = (), url: str | None = None,
              image_url: str | None = None) -> list[OutboundMessage]:
        """One reply message: the non-empty ``parts`` as lines, with buttons, link and image."""
        text = "\n".join(p for p in parts if p)
        return [OutboundMessage(text=text, buttons=tuple(buttons), url=url, image_url=image_url)]


Handler = Callable[[Turn, Understanding], Awaitable[list[OutboundMessage]]]


@dataclass(frozen=True, slots=True)
class _Ask:
    """A question back to the customer instead of a result (e.g. which cart line)."""

    replies: list[OutboundMessage]


class DialogueEngine:
    """Answers customer messages for any company (implements ``bot.messages.Responder``).

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
    ) -> None:
        self._index_cache = index_cache
        self._providers = providers
        self._payment_ttl = payment_ttl
        self._clock = clock or utcnow
        self._booking = BookingDialogue(providers=providers)
        self._delivery = DeliveryDialogue()
        self._handlers: dict[Intent, Handler] = {
            Intent.GREET: self._greet,
            Intent.HELP: self._help,
            Intent.THANKS: self._thanks,
            Intent.ACK: self._ack,
            Intent.CATALOG: self._catalog,
            Intent.INFO: self._info,
            Intent.FAQ: self._faq,
            Intent.ADD: self._add,
            Intent.ADD_MORE: self._add_more,
            Intent.CART_SHOW: self._cart_show,
            Intent.CART_SET: self._cart_set,
            Intent.CART_REMOVE: self._cart_remove,
            Intent.CART_CLEAR: self._cart_clear,
            Intent.CHECKOUT: self._checkout,
            Intent.CHECKOUT_ANSWER: self._checkout_answer,
            Intent.SKIP: self._checkout_answer,
            Intent.CANCEL: self._cancel,
            Intent.ORDER_STATUS: self._order_status,
            Intent.NEW_LINK: self._new_link,
            Intent.HANDOFF: self._handoff,
            Intent.FALLBACK: self._fallback,
            Intent.BOOK: self._booking.book,
            Intent.CHOOSE_SLOT: self._booking.choose_slot,
            Intent.BOOKING_ANSWER: self._booking.answer_name,
            Intent.BOOKING_STATUS: self._booking.status,
            Intent.BOOKING_CANCEL: self._booking.cancel,
            Intent.BOOKING_CANCEL_YES: self._booking.cancel_confirmed,
            Intent.BOOKING_KEEP: self._booking.keep,
            Intent.BOOKING_MOVE: self._booking.move,
            Intent.CHOOSE_WINDOW: self._delivery.choose,
            Intent.DELIVERY_CITY: self._delivery.city,
            Intent.DELIVERY_STATUS: self._delivery_status,
        }

    async def respond(
        self, session: AsyncSession, *, inbound: InboundMessage, conversation: Conversation, company: Company
    ) -> list[OutboundMessage]:
        """Answer one message (see ``bot.messages.Responder``). Changes ``conversation.state``,
        ``conversation.language`` and, for a handoff, ``handoff``/``status``; may create cart lines,
        an order and a payment link in ``session`` (not committed)."""
        state = load_state(conversation)
        text, chosen = _resolve_choice(inbound.text.strip(), state)
        language = self._language(text, chosen=chosen, state=state, conversation=conversation, company=company)
        conversation.language = language
        index = await self._index_cache.get(session, company)
        understanding = understand(text, index=index, state=state)
        turn = Turn(session=session, inbound=inbound, conversation=conversation, company=company, index=index,
                    state=state, language=language, asked=state.step, pending=state.pending, now=self._clock())
        if understanding.intent != Intent.FALLBACK:
            state.clear_question()  # handlers that ask something set a new question
        replies = await self._handlers[understanding.intent](turn, understanding)
        replies = await self._ask_delivery(turn, understanding, replies)
        state.choices = [b.payload for b in replies[-1].buttons] if replies else []
        save_state(conversation, state)
        return replies

    async def _ask_delivery(self, turn: Turn, nlu: Understanding,
                            replies: list[OutboundMessage]) -> list[OutboundMessage]:
        """After a product order was paid, the next answer also asks for its delivery window (once,
        unless the answer itself asks a question or the conversation went to a manager)."""
        if (turn.state.step is not None or turn.conversation.handoff or not replies
                or nlu.intent in (Intent.CHOOSE_WINDOW, Intent.DELIVERY_CITY, Intent.DELIVERY_STATUS)):
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

    async def _greet(self, turn: Turn, nlu: Understanding) -> list[OutboundMessage]:
        key = {"service": "greeting_service", "hybrid": "greeting_hybrid"}.get(turn.company.type, "greeting")
        return turn.reply(turn.t(key, company=turn.company.name), buttons=_menu(turn))

    async def _help(self, turn: Turn, nlu: Understanding) -> list[OutboundMessage]:
        return turn.reply(turn.t("help_service" if _services_only(turn) else "help"), buttons=_menu(turn))

    async def _thanks(self, turn: Turn, nlu: Understanding) -> list[OutboundMessage]:
        return turn.reply(turn.t("thanks"), buttons=[_catalog_button(turn), _cart_or_booking(turn)])

    async def _ack(self, turn: Turn, nlu: Understanding) -> list[OutboundMessage]:
        return turn.reply(turn.t("anything_else"), buttons=_menu(turn))

    async def _handoff(self, turn: Turn, nlu: Understanding) -> list[OutboundMessage]:
        if not turn.conversation.handoff:  # the staff hear of it once, in this transaction (core.alerts)
            await record_alert(
                turn.session, tenant_id=turn.conversation.tenant_id, company_id=turn.company.id,
                kind="handoff.requested", conversation_id=turn.conversation.id,
                data={"conversation_id": str(turn.conversation.id), "channel": turn.inbound.channel,
                      "text": turn.inbound.text[:500]},
            )
        turn.conversation.handoff = True
        turn.conversation.status = "pending"
        return turn.reply(turn.t("handoff"))

    async def _cancel(self, turn: Turn, nlu: Understanding) -> list[OutboundMessage]:
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

    async def _fallback(self, turn: Turn, nlu: Understanding) -> list[OutboundMessage]:
        names = list(dict.fromkeys(h.name for h in (nlu.hits or _closest(turn.index, nlu.text))))
        if names:
            buttons = [Button(title=n, payload=texts.info_payload(n)) for n in names[:MAX_ITEM_BUTTONS]]
            return turn.reply(turn.t("fallback_suggest"), buttons=[*buttons, _catalog_button(turn)])
        return turn.reply(turn.t("fallback_service" if _services_only(turn) else "fallback_plain"), buttons=_menu(turn))

    async def _faq(self, turn: Turn, nlu: Understanding) -> list[OutboundMessage]:
        assert nlu.faq is not None
        return turn.reply(nlu.faq.answer, buttons=[_catalog_button(turn), _cart_or_booking(turn)])

    # -- catalogue and item information -----------------------------------------------------------

    async def _catalog(self, turn: Turn, nlu: Understanding) -> list[OutboundMessage]:
        items = await _company_items(turn)
        if not items:
            return turn.reply(turn.t("catalog_empty"), buttons=[turn.button("human")])
        shown = items[:CATALOG_PAGE]
        lines = [turn.t("catalog_header", count=len(items))]
        lines += _grouped_lines(turn, shown)
        more = len(items) - len(shown)
        hint = "catalog_hint_service" if _services_only(turn) else "catalog_hint"
        lines.append(turn.t("catalog_more", more=more) if more > 0 else turn.t(hint))
        buttons = [Button(title=it.name, payload=texts.info_payload(it.name))
                   for it in shown if _available(it)][:MAX_ITEM_BUTTONS]
        return turn.reply(*lines, buttons=[*buttons, _cart_or_booking(turn)])

    async def _info(self, turn: Turn, nlu: Understanding) -> list[OutboundMessage]:
        if nlu.options or (nlu.aspect == Aspect.LIST and len(nlu.hits) > 1):
            hits = nlu.options or nlu.hits
            return await self._list_hits(turn, [h.item_id for h in hits], aspect=nlu.aspect, quantity=None,
                                         action=Intent.INFO)
        if nlu.item_id is None and nlu.aspect == Aspect.LIST and nlu.hits:
            nlu = _with_item(nlu, nlu.hits[0].item_id)
        if nlu.item_id is None:
            if is_bare(normalize(nlu.text)):
                return turn.reply(turn.t("info_which_item"), buttons=[_catalog_button(turn)])
            return turn.reply(turn.t("not_found"), buttons=[_catalog_button(turn), turn.button("human")])
        item = await _load_item(turn, nlu.item_id)
        if item is None:
            return turn.reply(turn.t("item_unavailable"), buttons=[_catalog_button(turn)])
        variant = _variant(item, nlu.variant_id)
        turn.state.last_item_id, turn.state.last_variant_id = item.id, variant.id if variant else None
        aspect = nlu.aspect or Aspect.GENERAL
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
            buttons = [Button(title=it.name, payload=texts.info_payload(it.name)) for it in items]
        else:
            buttons = [texts.add_button(turn.language, name=it.name, quantity=quantity or 1, title=it.name,
                                        variant=_named_variant(turn, it, text))
                       for it in items]
        turn.state.step = Step.CHOOSE_ITEM
        turn.state.pending = Pending(action=action.value, candidates=[it.id for it in items], quantity=quantity,
                                     aspect=aspect.value if aspect else None)
        return turn.reply(*lines, buttons=buttons[:MAX_ITEM_BUTTONS + 1])

    # -- cart -------------------------------------------------------------------------------------

    async def _add(self, turn: Turn, nlu: Understanding) -> list[OutboundMessage]:
        quantity = nlu.quantity
        if quantity is None and turn.pending is not None and turn.pending.item_id == nlu.item_id:
            quantity = turn.pending.quantity
        if nlu.options:
            return await self._list_hits(turn, [h.item_id for h in nlu.options], aspect=None, quantity=quantity,
                                         action=Intent.ADD, text=nlu.text)
        if nlu.item_id is None:
            if nlu.hits or not is_bare(normalize(nlu.text)):
                return turn.reply(turn.t("not_found"), buttons=[turn.button("catalog"), turn.button("cart")])
            return turn.reply(turn.t("ask_what_to_add"), buttons=[turn.button("catalog")])
        return await self._add_item(turn, nlu.item_id, nlu.variant_id, quantity if quantity is not None else 1,
                                    asked_quantity=quantity)

    async def _add_more(self, turn: Turn, nlu: Understanding) -> list[OutboundMessage]:
        item_id, variant_id = turn.state.last_item_id, turn.state.last_variant_id
        if item_id is None:  # the item talked about was removed: "another one" means the last cart line
            cart = await open_cart(turn.session, turn.conversation)
            if cart.lines:
                item_id, variant_id = cart.lines[-1].item_id, cart.lines[-1].variant_id
        if item_id is None:
            return turn.reply(turn.t("ask_what_to_add"), buttons=[turn.button("catalog")])
        return await self._add_item(turn, item_id, variant_id, nlu.quantity or 1, asked_quantity=nlu.quantity)

    async def _add_item(self, turn: Turn, item_id: uuid.UUID, variant_id: uuid.UUID | None, quantity: int, *,
                        asked_quantity: int | None) -> list[OutboundMessage]:
        item = await _load_item(turn, item_id)
        if item is None:
            return turn.reply(turn.t("item_unavailable"), buttons=[turn.button("catalog")])
        if item.kind == "service":  # services are booked, not put in the cart
            return await self._booking.book(turn, Understanding(Intent.BOOK, "", item_id=item.id))
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
        buttons = [texts.add_button(turn.language, name=item.name, variant=v.name, quantity=quantity or 1)
                   for v in available]
        return turn.reply(text, buttons=buttons[:8])

    async def _cart_show(self, turn: Turn, nlu: Understanding) -> list[OutboundMessage]:
        cart = await open_cart(turn.session, turn.conversation)
        return await _cart_reply(turn, cart)

    async def _cart_clear(self, turn: Turn, nlu: Understanding) -> list[OutboundMessage]:
        cart = await open_cart(turn.session, turn.conversation)
        await clear_cart(turn.session, cart)
        return turn.reply(turn.t("cart_cleared"), buttons=[turn.button("catalog")])

    async def _cart_set(self, turn: Turn, nlu: Understanding) -> list[OutboundMessage]:
        cart = await open_cart(turn.session, turn.conversation)
        lines = await _priced(turn, cart)
        if not lines:
            return turn.reply(turn.t("cart_empty"), buttons=[turn.button("catalog")])
        targets = _target_lines(turn, nlu, lines)
        if isinstance(targets, _Ask):
            return targets.replies
        if len(targets) > 1:
            quantity = nlu.quantity if nlu.quantity is not None else 1
            buttons = [Button(title=texts.item_label(pl.name, pl.variant),
                              payload=texts.set_payload(turn.language, name=pl.name, variant=pl.variant,
                                                        quantity=quantity))
                       for pl in targets]
            return turn.reply(turn.t("cart_which_line"), buttons=buttons[:8])
        target = targets[0]
        if nlu.quantity is None:
            return turn.reply(turn.t("ask_new_quantity", name=target.name), buttons=[turn.button("cart")])
        try:
            await set_line_quantity(turn.session, cart, line_id=target.line_id, quantity=nlu.quantity)
        except OutOfStock as exc:
            return _out_of_stock_reply(turn, exc, in_cart=0)
        except InvalidQuantity:
            return turn.reply(turn.t("invalid_quantity", max=MAX_QUANTITY), buttons=[turn.button("cart")])
        turn.state.last_item_id, turn.state.last_variant_id = target.item_id, target.variant_id
        if nlu.quantity == 0:
            head = turn.t("cart_removed", name=texts.item_label(target.name, target.variant))
        else:
            head = turn.t("cart_updated", line=texts.line(nlu.quantity, target.name, target.variant,
                                                          turn.money(target.unit_price_minor * nlu.quantity,
                                                                     target.currency)))
        return await _cart_reply(turn, cart, head=head)

    async def _cart_remove(self, turn: Turn, nlu: Understanding) -> list[OutboundMessage]:
        cart = await open_cart(turn.session, turn.conversation)
        lines = await _priced(turn, cart)
        if not lines:
            return turn.reply(turn.t("cart_empty"), buttons=[turn.button("catalog")])
        targets = _target_lines(turn, nlu, lines, remove=True)
        if isinstance(targets, _Ask):
            return targets.replies
        if len(targets) == 1 and nlu.quantity is not None and 0 < nlu.quantity < targets[0].quantity:
            target = targets[0]  # "remove 1 shirt" from 3: two stay
            await set_line_quantity(turn.session, cart, line_id=target.line_id, quantity=target.quantity - nlu.quantity)
            head = turn.t("cart_updated", line=texts.line(
                target.quantity - nlu.quantity, target.name, target.variant,
                turn.money(target.unit_price_minor * (target.quantity - nlu.quantity), target.currency)))
            return await _cart_reply(turn, cart, head=head)
        for target in targets:
            await set_line_quantity(turn.session, cart, line_id=target.line_id, quantity=0)
            if target.item_id == turn.state.last_item_id:
                turn.state.last_item_id = turn.state.last_variant_id = None
        names = ", ".join(dict.fromkeys(texts.item_label(t.name, t.variant) for t in targets))
        return await _cart_reply(turn, cart, head=turn.t("cart_removed", name=names))

    # -- checkout -----------------------------------------------------------------------------------

    async def _checkout(self, turn: Turn, nlu: Understanding) -> list[OutboundMessage]:
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

    async def _checkout_answer(self, turn: Turn, nlu: Understanding) -> list[OutboundMessage]:
        draft, answer = turn.state.checkout, " ".join(nlu.text.split())
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
            if nlu.intent == Intent.SKIP:
                draft.phone = ""
                return await self._place_order(turn)
            if not _valid_phone(answer):
                turn.state.step = Step.CHECKOUT_PHONE
                return turn.reply(turn.t("bad_phone"), buttons=[turn.button("skip"), turn.button("cancel")])
            draft.phone = answer
            return await self._place_order(turn)
        return await self._fallback(turn, nlu)

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

    async def _order_status(self, turn: Turn, nlu: Understanding) -> list[OutboundMessage]:
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

    async def _new_link(self, turn: Turn, nlu: Understanding) -> list[OutboundMessage]:
        order = await self._current_order(turn)
        if order is None or order.payment_status == "paid" or order.status == "cancelled":
            cart = await open_cart(turn.session, turn.conversation)
            if cart.lines:  # "I want to pay" with a full cart: place the order first
                return await self._checkout(turn, nlu)
        if order is None:
            return turn.reply(turn.t("order_none"), buttons=[turn.button("catalog"), turn.button("cart")])
        return await self._link_reply(turn, order, key="new_link")

    async def _delivery_status(self, turn: Turn, nlu: Understanding) -> list[OutboundMessage]:
        """"When will my order arrive?": the chosen delivery window (or the windows to choose from)."""
        order = await self._current_order(turn)
        if order is None:
            if nlu.faq is not None:
                return await self._faq(turn, nlu)
            return turn.reply(turn.t("order_none"), buttons=[turn.button("catalog"), turn.button("cart")])
        answer = await self._delivery.status(turn, order)
        return answer if answer is not None else await self._order_status(turn, nlu)

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


def _resolve_choice(text: str, state: DialogueState) -> tuple[str, bool]:
    """A reply "2" to buttons shown as a numbered list is the second button's payload; a text equal
    to an offered payload is a button press. Returns the text to understand and whether it was a choice."""
    if not state.choices or state.step in (Step.CHECKOUT_NAME, Step.CHECKOUT_ADDRESS, Step.BOOKING_NAME):
        return text, False
    stripped = text.strip().rstrip(".)")
    if stripped.isdigit() and 1 <= int(stripped) <= len(state.choices):
        return state.choices[int(stripped) - 1], True
    folded = text.casefold()
    return text, any(folded == c.casefold() for c in state.choices)


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


def _named_variant(turn: Turn, item: KnowledgeItem, text: str) -> str | None:
    """The name of the variant of ``item`` that ``text`` names ("the large"), if any."""
    variant = _variant(item, turn.index.match_variant(item.id, text)) if text and item.variants else None
    return variant.name if variant else None


def _with_item(nlu: Understanding, item_id: uuid.UUID) -> Understanding:
    return Understanding(nlu.intent, nlu.text, aspect=Aspect.GENERAL, quantity=nlu.quantity, item_id=item_id,
                         hits=nlu.hits, query=nlu.query)


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
            buttons.append(texts.add_button(turn.language, name=item.name, variant=variant.name))
    elif item.variants:
        for v in item.variants:
            if (v.stock is None or v.stock > 0) and _unit_price(item, v) is not None:
                buttons.append(texts.add_button(turn.language, name=item.name, variant=v.name))
        buttons = buttons[:MAX_ITEM_BUTTONS]
    elif item.price_minor is not None and (item.stock is None or item.stock > 0):
        buttons.append(texts.add_button(turn.language, name=item.name))
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


def _target_lines(turn: Turn, nlu: Understanding, lines: list[PricedLine], *,
                  remove: bool = False) -> list[PricedLine] | _Ask:
    """The cart lines a change or removal is about, or the question asking which."""
    in_cart = {pl.item_id for pl in lines}
    item_id = nlu.item_id if nlu.item_id in in_cart else None
    if item_id is None:
        candidates = [h for h in (nlu.options or nlu.hits) if h.item_id in in_cart]
        if candidates and is_ambiguous(candidates):
            options = close_hits(candidates)
            return _which_line(turn, [pl for pl in lines if pl.item_id in {h.item_id for h in options}], nlu, remove)
        if candidates:
            item_id = candidates[0].item_id
    if item_id is None:
        if nlu.item_id is not None or nlu.hits:
            name = turn.index.item(nlu.item_id).name if nlu.item_id is not None else nlu.hits[0].name
            return _Ask(turn.reply(turn.t("cart_not_in_cart", name=name), *_cart_text(turn, lines),
                                   buttons=[turn.button("checkout"), turn.button("continue")]))
        if len(lines) == 1:
            return [lines[0]]
        return _which_line(turn, lines, nlu, remove)
    matching = [pl for pl in lines if pl.item_id == item_id]
    variant_id = nlu.variant_id if nlu.item_id == item_id else turn.index.match_variant(item_id, nlu.text)
    if variant_id is not None:
        exact = [pl for pl in matching if pl.variant_id == variant_id]
        if exact:
            return exact
    if len(matching) > 1 and not remove:
        return _which_line(turn, matching, nlu, remove)
    return matching


def _which_line(turn: Turn, lines: list[PricedLine], nlu: Understanding, remove: bool) -> _Ask:
    if remove:
        buttons = [Button(title=texts.item_label(pl.name, pl.variant),
                          payload=texts.remove_payload(turn.language, name=pl.name, variant=pl.variant))
                   for pl in lines]
    else:
        quantity = nlu.quantity if nlu.quantity is not None else 1
        buttons = [Button(title=texts.item_label(pl.name, pl.variant),
                          payload=texts.set_payload(turn.language, name=pl.name, variant=pl.variant, quantity=quantity))
                   for pl in lines]
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
