"""``decide``: guards of each dialogue step, commands → actions (see ``bot.policy``)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.buttons import decode
from bot.commands import (
    AddToCart,
    AnswerFaq,
    Cancel,
    CancelBooking,
    Choose,
    FindSlots,
    GiveDetails,
    Handoff,
    MoveBooking,
    NotSold,
    NotUnderstood,
    SearchCatalog,
    ShowBooking,
    ShowCart,
    ShowCatalog,
    ShowItem,
    Skip,
    SmallTalk,
)
from bot.state import CHECKOUT_STEPS, DialogueState, Step
from bot.understand.base import Understood
from bot.understand.rules import bare_command, not_a_name, not_an_answer, reads_as_request

_CHECKOUT_FIELD = {Step.CHECKOUT_NAME: "name", Step.CHECKOUT_ADDRESS: "address", Step.CHECKOUT_PHONE: "phone"}
_BOOKING = (FindSlots, MoveBooking, ShowBooking, CancelBooking)
# What a customer may ask while a free-text answer is awaited (a name, an address, a phone) without
# leaving the question: it is answered, and the question asked again.
_SIDE_QUESTIONS = (ShowItem, AnswerFaq, ShowCart, ShowCatalog, SearchCatalog, NotSold)


@dataclass(frozen=True, slots=True)
class Action:
    """One thing to do this turn: ``kind`` names the action (``run``: run ``command``; ``detail``:
    take ``value`` as the answer to checkout question ``field``; ``ask_again``: the answer was not
    one; ``still_asking``: after answering a side question, ask ``field`` (a checkout field or
    ``booking_name``) again; ``still_choosing``: after answering a side question, offer the times
    offered before again; ``booking_name`` / ``delivery_city``: free-text answers of those
    questions; ``keep_booking`` / ``confirm_cancel_booking``; ``choose_slot`` / ``choose_booking`` /
    ``choose_window`` with the 0-based ``offer``)."""

    kind: str
    command: Understood | None = None
    field: str | None = None
    value: str = ""
    offer: int | None = None


def decide(state: DialogueState, commands: list[Understood], *, text: str = "") -> list[Action]:
    """The actions for ``commands`` at the state's step. ``text`` is the message as typed (free-text
    answers: names, addresses, cities). Never empty for a non-empty ``commands``."""
    step = state.step
    if any(isinstance(c, Handoff) for c in commands):
        return [Action("run", command=next(c for c in commands if isinstance(c, Handoff)))]
    if step in CHECKOUT_STEPS:
        return _checkout(step, commands, text)
    if step == Step.BOOKING_NAME:
        if any(isinstance(c, Cancel) for c in commands):
            return [Action("release_held")]
        side = _side_questions(commands, text)
        if side:  # "tell me about colouring" to "what name?": answered, not the name
            return [*(_general(state, c) for c in side), Action("still_asking", field="booking_name")]
        if _only_small_talk(commands):  # "yes", "ok", "thanks" to "what name?": not a name, asked again
            return [Action("booking_name", value="")]
        if any(isinstance(c, GiveDetails) for c in commands) or not not_a_name(text):
            return [Action("booking_name", value="" if bare_command(text) else text)]
    if step == Step.DELIVERY_CITY:
        if any(isinstance(c, Cancel) for c in commands):
            return [Action("run", command=Cancel())]
        return [Action("delivery_city", value="" if bare_command(text) else text)]
    if step == Step.OFFER_HANDOFF and len(commands) == 1 and (
            isinstance(commands[0], SmallTalk) and commands[0].kind == "ack"):  # "yes please, ask someone"
        return [Action("run", command=Handoff(reason="unknown fact"))]
    if step == Step.CONFIRM_CANCEL:
        if any(isinstance(c, (Skip, Cancel)) for c in commands):
            return [Action("keep_booking")]
        if any(isinstance(c, CancelBooking) or (isinstance(c, SmallTalk) and c.kind == "ack") for c in commands):
            return [Action("confirm_cancel_booking")]
    if step == Step.CHOOSE_SLOT and state.booking is not None and state.booking.offers:
        side = _side_questions(commands, text)
        if side and all(isinstance(c, (AnswerFaq, ShowItem)) for c in side):  # "do you take cards?"
            return [*(Action("run", command=c) for c in side), Action("still_choosing")]
    actions = [_general(state, c) for c in commands]
    if len(actions) > 1:  # "hi, how much is the shirt?", "no, better 8": the request is the answer
        actions = [a for a in actions if not isinstance(a.command, (SmallTalk, Skip))] or actions[:1]
    return actions


def _checkout(step: Step, commands: list[Understood], text: str) -> list[Action]:
    field = _CHECKOUT_FIELD[step]
    if any(isinstance(c, Cancel) for c in commands):
        return [Action("run", command=Cancel())]
    if step == Step.CHECKOUT_PHONE and any(isinstance(c, Skip) for c in commands):
        return [Action("detail", field="phone", value="", command=Skip())]  # "" : skipped
    side = _side_questions(commands, text)
    if side:  # "how much is shipping?" to "what name?": answered, not the name
        return [*(Action("run", command=c) for c in side), Action("still_asking", field=field)]
    details = [c for c in commands if isinstance(c, GiveDetails)]
    if details:  # "Li Wei, 4 Cedar Lane, Portland OR 97205, 503 555 0142": every answer at once
        return [Action("details", command=details[0])]
    if bare_command(text) or _only_small_talk(commands):  # "checkout", "yes", "ok": not the answer asked for
        return [Action("ask_again", field=field)]
    if commands and all(isinstance(c, NotUnderstood) for c in commands) and not_an_answer(text):  # "wait, …?"
        return [Action("ask_again", field=field)]
    return [Action("detail", field=field, value=" ".join(text.split()))]


def _side_questions(commands: list[Understood], text: str) -> list[Understood]:
    """The questions ``commands`` ask instead of answering the free-text question open (a price, an item,
    the FAQ, the cart): only when the text reads as a question or a request (``reads_as_request``) and
    gives no details, so that a name or an address that happens to name an item or a FAQ topic is still
    the answer. Empty: the text is the answer."""
    if any(isinstance(c, GiveDetails) for c in commands) or not reads_as_request(text):
        return []
    asked = [c for c in commands if isinstance(c, _SIDE_QUESTIONS)]
    return asked if asked and len(asked) == len([c for c in commands if not isinstance(c, SmallTalk)]) else []


def _only_small_talk(commands: list[Understood]) -> bool:
    """The message was small talk and nothing else ("yes", "ok", "thanks", "hi"): no answer to a question."""
    return bool(commands) and all(isinstance(c, SmallTalk) for c in commands)


def _general(state: DialogueState, command: Understood) -> Action:
    step = state.step
    if isinstance(command, Choose):
        n = command.option - 1
        if step == Step.CHOOSE_SLOT:
            return Action("choose_slot", offer=n)
        if step == Step.CHOOSE_BOOKING and state.booking is not None:
            return Action("choose_booking", offer=n)
        if step == Step.CHOOSE_WINDOW:
            return Action("choose_window", offer=n)
        if step in (Step.CHOOSE_ITEM, Step.CHOOSE_VARIANT) and state.pending is not None:
            candidates = state.offered_items()
            if 0 <= n < len(candidates):
                pending = state.pending
                if pending.action == "add":
                    return Action("run", command=AddToCart(item_id=candidates[n], quantity=pending.quantity or 1))
                return Action("run", command=ShowItem(item_id=candidates[n]))
        if 0 <= n < len(state.choices):  # "the second" of the buttons shown last (variants, items)
            pressed = decode(state.choices[n])
            if pressed is not None and not isinstance(pressed, Choose):
                return _general(state, pressed)  # type: ignore[arg-type]
        return Action("run", command=NotUnderstood(text=str(command.option)))
    if isinstance(command, _BOOKING):
        return Action("booking", command=command)
    return Action("run", command=command)
