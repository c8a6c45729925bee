"""Typed dialogue state, stored as JSON in ``Conversation.state``.

The engine keeps no per-conversation memory of its own: everything it needs between two messages
(the question it asked, the item waiting for a variant, the checkout answers so far, the last order)
lives here, so a restarted process continues a conversation where it stopped.

The JSON shape is versioned (``"v"``); unknown or malformed values are dropped when loading, so an
old or hand-edited state never breaks a conversation.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sqlalchemy.orm.attributes import flag_modified

from core.models import Conversation

STATE_VERSION = 1
MAX_CHOICES = 12


class Step(StrEnum):
    """The question the bot is waiting an answer to (``None`` in ``DialogueState.step``: none)."""

    CHOOSE_VARIANT = "choose_variant"
    CHOOSE_ITEM = "choose_item"
    CHECKOUT_NAME = "checkout_name"
    CHECKOUT_ADDRESS = "checkout_address"
    CHECKOUT_PHONE = "checkout_phone"


CHECKOUT_STEPS: frozenset[Step] = frozenset({Step.CHECKOUT_NAME, Step.CHECKOUT_ADDRESS, Step.CHECKOUT_PHONE})


@dataclass
class Pending:
    """An action waiting for the customer's choice.

    ``action`` is the intent to finish (``add``, ``info``, ``set_quantity``, ``remove``);
    ``item_id`` the item waiting for a variant (``Step.CHOOSE_VARIANT``); ``candidates`` the items
    offered when the name was ambiguous (``Step.CHOOSE_ITEM``); ``quantity`` what the customer asked
    for (``None``: not said).
    """

    action: str
    item_id: uuid.UUID | None = None
    candidates: list[uuid.UUID] = field(default_factory=list)
    quantity: int | None = None
    aspect: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "item_id": str(self.item_id) if self.item_id else None,
            "candidates": [str(c) for c in self.candidates],
            "quantity": self.quantity,
            "aspect": self.aspect,
        }

    @classmethod
    def from_json(cls, data: Any) -> Pending | None:
        if not isinstance(data, dict) or not isinstance(data.get("action"), str):
            return None
        quantity = data.get("quantity")
        aspect = data.get("aspect")
        return cls(
            action=data["action"],
            item_id=_uuid(data.get("item_id")),
            candidates=[u for u in (_uuid(c) for c in data.get("candidates") or []) if u is not None],
            quantity=quantity if isinstance(quantity, int) and not isinstance(quantity, bool) else None,
            aspect=aspect if isinstance(aspect, str) else None,
        )


@dataclass
class CheckoutDraft:
    """Answers collected during checkout (``None``: not asked yet; ``phone`` ``""``: skipped)."""

    name: str | None = None
    address: str | None = None
    phone: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "address": self.address, "phone": self.phone}

    @classmethod
    def from_json(cls, data: Any) -> CheckoutDraft:
        if not isinstance(data, dict):
            return cls()
        return cls(name=_str(data.get("name")), address=_str(data.get("address")), phone=_str(data.get("phone")))


@dataclass
class DialogueState:
    """Everything the engine remembers about one conversation.

    * ``step`` / ``pending`` — the open question and the action it completes;
    * ``checkout`` — the checkout answers so far; ``profile`` — the last order's answers, offered
      again as buttons next time;
    * ``last_item_id`` / ``last_variant_id`` — the item talked about last ("how much is it?",
      "add another one");
    * ``order_id`` — the last order placed in this conversation;
    * ``choices`` — payloads of the buttons of the last reply, so "2" picks the second one on channels
      that show buttons as a numbered list.
    """

    step: Step | None = None
    pending: Pending | None = None
    checkout: CheckoutDraft = field(default_factory=CheckoutDraft)
    profile: CheckoutDraft = field(default_factory=CheckoutDraft)
    last_item_id: uuid.UUID | None = None
    last_variant_id: uuid.UUID | None = None
    order_id: uuid.UUID | None = None
    choices: list[str] = field(default_factory=list)

    def clear_question(self) -> None:
        """Forget the open question (and its pending action); checkout answers are kept separately."""
        self.step = None
        self.pending = None

    def to_json(self) -> dict[str, Any]:
        """The JSON object stored in ``Conversation.state``."""
        return {
            "v": STATE_VERSION,
            "step": self.step.value if self.step else None,
            "pending": self.pending.to_json() if self.pending else None,
            "checkout": self.checkout.to_json(),
            "profile": self.profile.to_json(),
            "last_item_id": str(self.last_item_id) if self.last_item_id else None,
            "last_variant_id": str(self.last_variant_id) if self.last_variant_id else None,
            "order_id": str(self.order_id) if self.order_id else None,
            "choices": list(self.choices[:MAX_CHOICES]),
        }

    @classmethod
    def from_json(cls, data: Any) -> DialogueState:
        """Read a stored state; anything missing or malformed falls back to its default."""
        if not isinstance(data, dict):
            return cls()
        try:
            step = Step(data.get("step")) if data.get("step") else None
        except ValueError:
            step = None
        choices = data.get("choices")
        return cls(
            step=step,
            pending=Pending.from_json(data.get("pending")),
            checkout=CheckoutDraft.from_json(data.get("checkout")),
            profile=CheckoutDraft.from_json(data.get("profile")),
            last_item_id=_uuid(data.get("last_item_id")),
            last_variant_id=_uuid(data.get("last_variant_id")),
            order_id=_uuid(data.get("order_id")),
            choices=[c for c in choices if isinstance(c, str)][:MAX_CHOICES] if isinstance(choices, list) else [],
        )


def load_state(conversation: Conversation) -> DialogueState:
    """The conversation's dialogue state (a fresh one when it has none)."""
    return DialogueState.from_json(conversation.state)


def save_state(conversation: Conversation, state: DialogueState) -> None:
    """Write ``state`` into ``conversation.state`` as a new JSON object (so SQLAlchemy persists it)."""
    conversation.state = state.to_json()
    flag_modified(conversation, "state")


def _uuid(value: Any) -> uuid.UUID | None:
    if isinstance(value, uuid.UUID):
        return value
    if isinstance(value, str) and value:
        try:
            return uuid.UUID(value)
        except ValueError:
            return None
    return None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None
