"""The dialogue engine's command vocabulary: what a customer's message asks the shop to do.

Understanding (``bot.understand``) turns a message into a list of commands; the policy
(``bot.policy``) decides which of them the current dialogue step accepts and into which actions they
turn; actions (``bot.actions``) run them. The vocabulary is pinned in ``COMMANDS.md`` (shared with the
language helpers and the dialogue tests): do not add a field without updating it.

Every command is a frozen pydantic model with a ``type`` literal discriminator, so ``Command`` (the
discriminated union) validates JSON like ``{"type": "add_to_cart", "item_id": "…", "quantity": 2}`` and
``command_schema()`` gives the JSON schema a language model can be offered as tools (issue 9).
Item, variant, service and FAQ references are UUIDs of knowledge-base rows (resolved by
understanding), never names; quantities are ints >= 1; days are company-local dates; ``time`` is
``HH:MM`` (24 h, company-local).
"""

from __future__ import annotations

import uuid
from datetime import date
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

Aspect = Literal["price", "stock", "description", "variants", "duration", "prepay"]
"""What ``show_item`` asks about an item (``prepay``: a service's prepayment rule; not yet in COMMANDS.md)."""
DayPart = Literal["morning", "afternoon", "evening"]
SmallTalkKind = Literal["greet", "thanks", "ack", "how_are_you", "are_you_open", "bye"]
Quantity = Annotated[int, Field(ge=1, le=10_000)]
ClockTime = Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$")]


class _Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class AddToCart(_Command):
    """Put ``quantity`` of an item (variant) in the cart: "two mugs", "и ещё розу"."""

    type: Literal["add_to_cart"] = "add_to_cart"
    item_id: uuid.UUID
    variant_id: uuid.UUID | None = None
    quantity: Quantity = 1


class SetQuantity(_Command):
    """Change a cart line's quantity: "change that to 6", "нет, лучше 8 штук"."""

    type: Literal["set_quantity"] = "set_quantity"
    item_id: uuid.UUID
    variant_id: uuid.UUID | None = None
    quantity: Quantity


class RemoveLine(_Command):
    """Remove an item's cart line(s): "drop the mug"."""

    type: Literal["remove_line"] = "remove_line"
    item_id: uuid.UUID
    variant_id: uuid.UUID | None = None


class ClearCart(_Command):
    """Empty the cart: "empty my cart"."""

    type: Literal["clear_cart"] = "clear_cart"


class ShowCart(_Command):
    """Show the cart and its total: "what's in my cart", "how much is it all together?"."""

    type: Literal["show_cart"] = "show_cart"


class ShowItem(_Command):
    """Tell about an item (one ``aspect`` of it, or its card when ``None``): "is that one available?"."""

    type: Literal["show_item"] = "show_item"
    item_id: uuid.UUID
    variant_id: uuid.UUID | None = None
    aspect: Aspect | None = None


class SearchCatalog(_Command):
    """Items matching a description within a budget (minor units of the company's currency); ``order``
    ``price_asc`` / ``price_desc`` lists the cheapest / dearest first ("what's your cheapest shirt?")."""

    type: Literal["search_catalog"] = "search_catalog"
    query: str = Field(max_length=500)
    max_price_minor: int | None = Field(default=None, ge=0)
    min_price_minor: int | None = Field(default=None, ge=0)
    order: Literal["relevance", "price_asc", "price_desc"] = "relevance"


class ShowCatalog(_Command):
    """The catalogue: "what do you sell?"."""

    type: Literal["show_catalog"] = "show_catalog"


class AnswerFaq(_Command):
    """Answer with FAQ entry ``faq_id``: "how much to deliver to Denver"."""

    type: Literal["answer_faq"] = "answer_faq"
    faq_id: uuid.UUID


class UnknownFact(_Command):
    """A question the knowledge base cannot answer (about ``item_id`` when known): offered to a manager."""

    type: Literal["unknown_fact"] = "unknown_fact"
    item_id: uuid.UUID | None = None
    question: str = Field(max_length=1000)


class NotSold(_Command):
    """An item the shop does not sell: the closest alternatives are offered."""

    type: Literal["not_sold"] = "not_sold"
    query: str = Field(max_length=500)


class StartCheckout(_Command):
    """Start placing the order: "checkout", "оформить заказ"."""

    type: Literal["start_checkout"] = "start_checkout"


class GiveDetails(_Command):
    """Checkout (or booking) details in any order; ``phone`` in E.164 when given."""

    type: Literal["give_details"] = "give_details"
    name: str | None = Field(default=None, max_length=200)
    address: str | None = Field(default=None, max_length=500)
    phone: str | None = Field(default=None, pattern=r"^\+[1-9]\d{6,14}$")


class Skip(_Command):
    """Skip an optional question: "skip"."""

    type: Literal["skip"] = "skip"


class Cancel(_Command):
    """Abandon the current step: "cancel", "never mind"."""

    type: Literal["cancel"] = "cancel"


class OrderStatus(_Command):
    """The last order's status: "where is my order?"."""

    type: Literal["order_status"] = "order_status"


class NewPaymentLink(_Command):
    """The last order's payment link again: "send the link again"."""

    type: Literal["new_payment_link"] = "new_payment_link"


class FindSlots(_Command):
    """Free times of a service (``service_id``; ``None``: the one being arranged) on ``day`` in ``day_part``
    or at ``time``: "nails Thursday morning", "on Saturday at 11"."""

    type: Literal["find_slots"] = "find_slots"
    service_id: uuid.UUID | None = None
    day: date | None = None
    day_part: DayPart | None = None
    time: ClockTime | None = None


class Choose(_Command):
    """Pick option ``option`` (1-based) of the options offered last (``DialogueState.offered``)."""

    type: Literal["choose"] = "choose"
    option: int = Field(ge=1, le=50)


class ShowBooking(_Command):
    """The customer's booking: "my booking"."""

    type: Literal["show_booking"] = "show_booking"


class CancelBooking(_Command):
    """Cancel the customer's booking: "cancel my booking"."""

    type: Literal["cancel_booking"] = "cancel_booking"


class MoveBooking(_Command):
    """Move the customer's booking: "move my booking to Saturday"."""

    type: Literal["move_booking"] = "move_booking"
    day: date | None = None
    day_part: DayPart | None = None
    time: ClockTime | None = None


class Handoff(_Command):
    """Pass the conversation to a manager: "talk to a human"."""

    type: Literal["handoff"] = "handoff"
    reason: str | None = Field(default=None, max_length=500)


class SmallTalk(_Command):
    """Greetings, thanks, acknowledgements: a short human answer and a way back to shopping."""

    type: Literal["small_talk"] = "small_talk"
    kind: SmallTalkKind


class Help(_Command):
    """What the bot can do: "what can you do?"."""

    type: Literal["help"] = "help"


class NotUnderstood(_Command):
    """Nothing the rules understood (issue 9's assist mode sends these to a language model)."""

    type: Literal["not_understood"] = "not_understood"
    text: str = Field(max_length=4000)


Command = Annotated[
    Union[  # noqa: UP007 - a discriminated union needs the Union form with Annotated
        AddToCart, SetQuantity, RemoveLine, ClearCart, ShowCart, ShowItem, SearchCatalog, ShowCatalog, AnswerFaq,
        UnknownFact, NotSold, StartCheckout, GiveDetails, Skip, Cancel, OrderStatus, NewPaymentLink, FindSlots,
        Choose, ShowBooking, CancelBooking, MoveBooking, Handoff, SmallTalk, Help, NotUnderstood,
    ],
    Field(discriminator="type"),
]
"""Any command, discriminated by ``type``."""

COMMAND_TYPES: tuple[type[_Command], ...] = (
    AddToCart, SetQuantity, RemoveLine, ClearCart, ShowCart, ShowItem, SearchCatalog, ShowCatalog, AnswerFaq,
    UnknownFact, NotSold, StartCheckout, GiveDetails, Skip, Cancel, OrderStatus, NewPaymentLink, FindSlots, Choose,
    ShowBooking, CancelBooking, MoveBooking, Handoff, SmallTalk, Help, NotUnderstood,
)

_ADAPTER: TypeAdapter[Any] = TypeAdapter(Command)
_LIST_ADAPTER: TypeAdapter[Any] = TypeAdapter(list[Command])


def parse_command(data: Any) -> Any:
    """Validate one command from JSON-like ``data`` (a dict with ``type``); raises
    ``pydantic.ValidationError`` naming the bad field."""
    return _ADAPTER.validate_python(data)


def parse_commands(data: Any) -> list[Any]:
    """Validate a JSON-like list of commands (raises ``pydantic.ValidationError``)."""
    return _LIST_ADAPTER.validate_python(data)


def command_schema() -> dict[str, Any]:
    """The JSON schema of ``Command`` (a ``oneOf`` over every command, discriminated by ``type``)."""
    return _ADAPTER.json_schema()


def tool_schemas() -> list[dict[str, Any]]:
    """One JSON schema per command (``{"name", "description", "parameters"}``), the shape of
    OpenAI Chat Completions ``tools[].function`` (issue 9), ``type`` left out of the parameters."""
    tools = []
    for model in COMMAND_TYPES:
        schema = model.model_json_schema()
        schema.get("properties", {}).pop("type", None)
        if "required" in schema:
            schema["required"] = [r for r in schema["required"] if r != "type"]
        name = model.model_fields["type"].default
        tools.append({"name": name, "description": (model.__doc__ or "").strip(), "parameters": schema})
    return tools
