"""The understanding seam: its protocol, its context and the two rule-level results that are not
commands of the shared vocabulary (``bot.commands``)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol, Union

from pydantic import BaseModel, ConfigDict, Field

from bot.commands import Aspect, Command
from bot.state import DialogueState
from knowledge.search import KnowledgeIndex


class Unresolved(BaseModel):
    """An item the customer referred to that the rules could not pin down to one row: several close
    matches ("add 2 shirts" with three shirts), or a cart change whose line only the cart can tell
    ("remove the shirt"). ``then`` is what to do once it is known; ``candidates`` best first (may be
    empty: "remove it" with no item talked about). Not offered to a language model (a model asks the
    customer itself); the policy offers the candidates, or the cart action resolves them."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    type: Literal["unresolved"] = "unresolved"
    then: Literal["add", "show", "set", "remove"]
    candidates: tuple[uuid.UUID, ...] = ()
    variant_id: uuid.UUID | None = None
    quantity: int | None = Field(default=None, ge=0, le=10_000)
    aspect: Aspect | None = None
    listing: bool = False  # "what jackets do you have": every match is the answer, not a question
    exact: bool = False  # the first candidate is the item named (the others only matched too)
    query: str = ""


class DeliveryStatus(BaseModel):
    """"When will my order arrive?": the chosen delivery window (or the windows to choose from), or the
    FAQ entry ``faq_id`` when there is no order. Not yet in COMMANDS.md (the lead decides)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    type: Literal["delivery_status"] = "delivery_status"
    faq_id: uuid.UUID | None = None


Understood = Union[Command, Unresolved, DeliveryStatus]  # noqa: UP007
"""What understanding yields: a vocabulary command or one of the rule-level results."""


@dataclass(frozen=True, slots=True)
class UnderstandingContext:
    """What understanding may know besides the text and the state: the company's knowledge index,
    its type (``product``/``service``/``hybrid``), the reply language (``en``/``ru``), the company's
    IANA timezone and ``now`` (aware UTC)."""

    index: KnowledgeIndex
    company_type: str
    language: str
    timezone: str
    now: datetime
    extra: dict[str, object] = field(default_factory=dict)


class Understander(Protocol):
    """Turns one message into commands, in the order the customer said them (several per message).

    Must not change anything and must not decide what the dialogue step accepts; may read the
    references kept in ``state`` (``last_item_id``, ``waiting_item()``, ``offered_items()``,
    ``offered()``)."""

    def understand(self, text: str, *, state: DialogueState, context: UnderstandingContext) -> list[Understood]: ...
