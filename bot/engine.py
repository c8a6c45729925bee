"""The dialogue engine (English and Russian): one pipeline per customer message.

``DialogueEngine.respond`` runs, for each message:

1. **buttons** (``bot.buttons``): a pressed button's reference (or "2" for the second of buttons shown
   as a numbered list) is decoded into a command;
2. **understand** (``bot.understand``): otherwise the text is understood into commands (several per
   message) by the ``Understander`` (rules by default), which reads only references in the state;
3. **policy** (``bot.policy.decide``): what the open dialogue step accepts, commands → actions;
4. **actions** (``bot.actions``): run against ``commerce`` and ``knowledge``, return typed results;
5. **state** (``bot.policy.machine.advance``): the results move the state machine;
6. **render** (``bot.render``): results → ``OutboundMessage`` through the message catalogue.

Facts told to the customer (prices, variants, stock, descriptions) are read from the database; the
knowledge index is only used to find what the customer means. ``clock`` gives "now" (aware UTC) for
everything time-dependent: free times, holds, windows.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import date, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot import texts
from bot.actions import Actions
from bot.actions.booking import BookingActions
from bot.actions.delivery import DeliveryActions
from bot.actions.results import Result
from bot.actions.runner import current_order
from bot.buttons import decode
from bot.commands import NotUnderstood, RemoveLine, SetQuantity, UnknownFact
from bot.llm.assistant import Answer, Assistant
from bot.messages import InboundMessage, OutboundMessage
from bot.policy import Action, decide
from bot.policy.machine import advance
from bot.render import render
from bot.state import FREE_TEXT_STEPS, DialogueState, load_state, save_state
from bot.turn import Turn
from bot.understand import DeliveryStatus, RuleUnderstander, Understander, UnderstandingContext, Understood, Unresolved
from commerce.cart import find_open_cart, forget_loaded
from commerce.providers import ProviderRegistry
from core.heap import freeze_long_lived
from core.models import Company, Conversation
from core.timeutil import utcnow
from knowledge.search import KnowledgeIndexCache
from knowledge.text import detect_language, normalize


# Messages that say nothing about the language (the conversation keeps its language).
def _edits_cart(command: Understood) -> bool:
    """A command that changes an existing cart line (remove, set a quantity, "change that to 6")."""
    return isinstance(command, (RemoveLine, SetQuantity)) or (
        isinstance(command, Unresolved) and command.then == "set")


_NEUTRAL = frozenset({"ok", "okay", "ок", "окей", "да", "yes", "no", "нет", "xs", "s", "m", "l", "xl", "xxl"})


class DialogueEngine:
    """Answers customer messages for any company (implements ``bot.messages.Responder``).

    Holds no per-conversation memory: the dialogue state is ``Conversation.state``, so any instance
    (after a restart, in another process) continues a conversation. ``index_cache`` gives the
    company's knowledge index; ``providers`` issue payment links valid for ``payment_ttl`` (a
    booking's prepayment link lives only as long as its hold); ``clock`` returns "now" as an aware
    UTC ``datetime`` (default ``core.timeutil.utcnow``; tests pass a fixed one); ``understander``
    turns text into commands (default ``RuleUnderstander``; a language model can take its place).
    ``assistant`` (``bot.llm.Assistant``) serves companies whose assistant mode is ``assist`` (the
    model answers only the rules' misses) or ``llm`` (the model drives every typed message through the
    same policy and actions); without it every company gets the rules.
    """

    def __init__(
        self,
        *,
        index_cache: KnowledgeIndexCache,
        providers: ProviderRegistry,
        payment_ttl: timedelta = timedelta(hours=24),
        clock: Callable[[], datetime] | None = None,
        understander: Understander | None = None,
        assistant: Assistant | None = None,
    ) -> None:
        self._index_cache = index_cache
        self._clock = clock or utcnow
        self._understander: Understander = understander or RuleUnderstander()
        self._assistant = assistant
        self._delivery = DeliveryActions()
        self._actions = Actions(providers=providers, payment_ttl=payment_ttl,
                                booking=BookingActions(providers=providers), delivery=self._delivery)

    async def respond(
        self, session: AsyncSession, *, inbound: InboundMessage, conversation: Conversation, company: Company
    ) -> list[OutboundMessage]:
        """Answer one message (see ``bot.messages.Responder``). Changes ``conversation.state``,
        ``conversation.language`` and, for a handoff, ``handoff``/``status``; may create cart lines,
        an order and a payment link in ``session`` (not committed)."""
        try:
            return await self._respond(session, inbound=inbound, conversation=conversation, company=company)
        finally:
            forget_loaded(session)  # rows kept for this turn are read afresh for the next one

    async def _respond(
        self, session: AsyncSession, *, inbound: InboundMessage, conversation: Conversation, company: Company
    ) -> list[OutboundMessage]:
        state = load_state(conversation)
        typed = inbound.text.strip()
        text, pressed = _pressed(typed, state)
        offered = [*state.choices, *(o.title for o in state.offered())]
        chosen = pressed is not None or text != typed or any(text.casefold() == c.casefold() for c in offered)
        language = _language(text, chosen=chosen, state=state, conversation=conversation, company=company)
        if conversation.language != language:  # an unchanged row is not flushed before the turn's first query
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
            if any(_edits_cart(c) for c in commands):
                commands = await self._with_cart(session, conversation, text, state=state, context=context,
                                                 commands=commands)
        answer = await self._model_answer(turn, commands) if pressed is None else None
        if answer is not None and (answer.text is not None or answer.results):
            actions, results = answer.actions, answer.results
        else:
            actions, results = await self._execute(turn, commands, text)
        replies = _merged(render(turn, results))
        if answer is not None:
            replies = _with_model_text(replies, answer)
        replies = await self._ask_delivery(turn, actions, replies)
        state.choices = [b.payload for b in replies[-1].buttons] if replies else []
        kept = (conversation.state or {}).get("assistant")
        save_state(conversation, state)
        if answer is not None or kept:
            conversation.state["assistant"] = _assistant_note(kept, answer)
        return replies

    async def _execute(self, turn: Turn, commands: list[Understood], text: str) -> tuple[list[Action], list[Result]]:
        """Policy and actions: the step's guards turn ``commands`` into actions, which run and move the
        state. Also the language model's tool calls' way in (``bot.llm.assistant.Execute``)."""
        actions = decide(turn.state, commands, text=text)
        if not all(a.kind == "run" and isinstance(a.command, NotUnderstood) for a in actions):
            turn.state.clear_question()  # results that ask something set a new question
        results: list[Result] = []
        for action in actions:
            for result in await self._actions.run(turn, action):
                advance(turn.state, result, asked=turn.asked, language=turn.language)
                results.append(result)
        return actions, results

    async def _with_cart(self, session: AsyncSession, conversation: Conversation, text: str, *,
                         state: DialogueState, context: UnderstandingContext,
                         commands: list[Understood]) -> list[Understood]:
        """Understand a cart edit again with the cart's lines (``context.extra["cart"]``: ``(item_id,
        variant_id, quantity)``), so "white instead of red" keeps the line's quantity and "drop the mug"
        names its variant. Only for cart edits: the actions read the same cart next, without a query."""
        cart = await find_open_cart(session, conversation)
        if cart is None or not cart.lines:
            return commands
        lines = [(line.item_id, line.variant_id, line.quantity) for line in cart.lines]
        context = dataclasses.replace(context, extra={**context.extra, "cart": lines})
        return self._understander.understand(text, state=state, context=context)

    async def _model_answer(self, turn: Turn, commands: list[Understood]) -> Answer | None:
        """The mode switch: ``None`` for ``rules`` (and ``assist`` when the rules understood the message and
        the knowledge base has the answer: ``NotUnderstood`` and ``UnknownFact`` are the rules' misses),
        else the model's answer (whose ``fallback`` says when the rules must answer after all)."""
        if self._assistant is None:
            return None
        settings = await self._assistant.settings(turn)
        if settings.mode == "rules":
            return None
        if settings.mode == "assist" and not all(isinstance(c, (NotUnderstood, UnknownFact)) for c in commands):
            return None  # the rules understood and can answer; a miss or a fact they lack goes to the model
        answer = await self._assistant.answer(turn, settings=settings, execute=self._execute)
        answer.mode = settings.mode
        return answer

    async def _ask_delivery(self, turn: Turn, actions: list[Action],
                            replies: list[OutboundMessage]) -> list[OutboundMessage]:
        """After a product order was paid, the next answer also asks for its delivery window (once,
        unless the answer itself asks a question or the conversation went to a manager). Orders are placed
        only through the actions, which keep ``state.order_id``: without it there is no order to ask about
        and no query is made."""
        if (turn.state.step is not None or turn.state.order_id is None or turn.conversation.handoff or not replies
                or any(a.kind in ("choose_window", "delivery_city") or isinstance(a.command, DeliveryStatus)
                       for a in actions)):
            return replies
        order = await current_order(turn)
        if not await self._delivery.due(turn, order):
            return replies
        assert order is not None
        result = await self._delivery.prompt(turn, order)
        advance(turn.state, result, asked=turn.asked, language=turn.language)
        [question] = render(turn, [result])
        last = replies[-1]
        merged = OutboundMessage(text="\n\n".join(p for p in (last.text, question.text) if p),
                                 buttons=question.buttons, url=last.url, image_url=last.image_url)
        return [*replies[:-1], merged]


def warm_up() -> None:
    """Load what the first message of a process would otherwise pay for: the language helpers'
    dictionaries and models (``bot.language.warm_up``), each language's message catalogue and Babel's
    locale data for money and dates (about 0.5 s of CPU in all), then freezes the heap
    (``core.heap.freeze_long_lived``) so full garbage collections skip it. Blocking: call it once at start-up,
    off the event loop (``await asyncio.to_thread(warm_up)``)."""
    from babel.dates import format_date

    from bot.language import warm_up as warm_up_language

    warm_up_language()
    for language in texts.LANGUAGES:
        texts.catalogue(language)
        texts.money(100, "USD", language)
        format_date(date(2027, 3, 9), format="medium", locale=language)
    freeze_long_lived()  # what was just loaded lives as long as the process: out of the collector's way


def _with_model_text(replies: list[OutboundMessage], answer: Answer) -> list[OutboundMessage]:
    """The model's checked text with the buttons, link and image its tool calls' results carry; the
    rules' rendering (marked with the fallback reason) when the model's reply could not be sent."""
    note: dict[str, object] = {"mode": answer.mode, "by": "model" if answer.text is not None else "rules",
                               "fallback": answer.fallback}
    if answer.text is None:
        return [dataclasses.replace(r, assistant=note) for r in replies]
    last = replies[-1] if replies else OutboundMessage(text="")
    return [OutboundMessage(text=answer.text, buttons=last.buttons, url=last.url, image_url=last.image_url,
                            assistant=note)]


def _assistant_note(kept: object, answer: Answer | None) -> dict[str, object]:
    """``Conversation.state["assistant"]``: the turns the model answered and the ones the rules answered
    for it (with the last reason), for managers, and the running ``summary`` of older turns
    (``bot.llm.summary``)."""
    note = dict(kept) if isinstance(kept, dict) else {}
    if answer is not None:
        note["mode"] = answer.mode
        if answer.summary is not None:
            note["summary"] = answer.summary.as_json()
        if answer.text is not None:
            note["model_turns"] = int(note.get("model_turns", 0)) + 1
        else:
            note["fallback_turns"] = int(note.get("fallback_turns", 0)) + 1
            note["last_fallback"] = answer.fallback
    return note


def _language(text: str, *, chosen: bool, state: DialogueState, conversation: Conversation,
              company: Company) -> str:
    """The reply language: the customer's, unless the message cannot tell (button presses, names,
    addresses, "ok", "2")."""
    current = texts.lang_of(conversation.language or company.language)
    if chosen or state.step in FREE_TEXT_STEPS:
        return current
    norm = normalize(text)
    if norm in _NEUTRAL or sum(ch.isalpha() for ch in norm) < 2:
        return current
    return texts.lang_of(detect_language(text, default=current))


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
    """Several results' replies as one message (the texts in order; the last buttons, link and image)."""
    replies = [r for r in replies if r.text or r.buttons or r.url]
    if len(replies) <= 1:
        return replies
    url = next((r.url for r in reversed(replies) if r.url), None)
    image = next((r.image_url for r in reversed(replies) if r.image_url), None)
    return [OutboundMessage(text="\n\n".join(r.text for r in replies if r.text), buttons=replies[-1].buttons,
                            url=url, image_url=image)]


__all__ = ["DialogueEngine", "warm_up"]
