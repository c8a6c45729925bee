"""Typed dialogue state, stored as JSON in ``Conversation.state``.

The engine keeps no per-conversation memory of its own: everything it needs between two messages
(the question it asked, the item waiting for a variant, the checkout answers so far, the last order,
the booking being arranged and the times offered, the delivery windows offered) lives here, so a
restarted process continues a conversation where it stopped.

The JSON shape is versioned (``"v"``); unknown or malformed values are dropped when loading, so an
old or hand-edited state never breaks a conversation.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date
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
    CHOOSE_SERVICE = "choose_service"  # which service to book (``BookingDraft`` keeps the time asked for)
    CHOOSE_SLOT = "choose_slot"  # free times (``BookingDraft.offers``) or nearest days were offered
    ASK_DAY = "ask_day"  # which day (to book or move to)
    BOOKING_NAME = "booking_name"  # the name (and optional phone) for a held booking
    CHOOSE_BOOKING = "choose_booking"  # which booking to cancel or move
    CONFIRM_CANCEL = "confirm_cancel"  # "cancel this booking?" (yes / keep it)
    CHOOSE_WINDOW = "choose_window"  # delivery windows (``DeliveryDraft.offers``) were offered
    DELIVERY_CITY = "delivery_city"  # the city of a paid order's delivery
    OFFER_HANDOFF = "offer_handoff"  # "shall I ask a manager?" after a question the knowledge base cannot answer


CHECKOUT_STEPS: frozenset[Step] = frozenset({Step.CHECKOUT_NAME, Step.CHECKOUT_ADDRESS, Step.CHECKOUT_PHONE})
FREE_TEXT_STEPS: frozenset[Step] = CHECKOUT_STEPS | {Step.BOOKING_NAME, Step.DELIVERY_CITY}
"""Questions answered with free text (names, addresses, cities): not commands, not a language switch."""


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
class Offer:
    """One offered choice of a booking time or a delivery window. ``title`` is the button's title (and
    payload); ``start`` the slot's start (aware UTC, ISO-8601) or ``day`` the window's local date (ISO);
    ``ref`` the resource (slot) or delivery window id."""

    title: str
    ref: uuid.UUID
    start: str | None = None
    day: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"title": self.title, "ref": str(self.ref), "start": self.start, "day": self.day}

    @classmethod
    def from_json(cls, data: Any) -> Offer | None:
        if not isinstance(data, dict) or not isinstance(data.get("title"), str):
            return None
        ref = _uuid(data.get("ref"))
        if ref is None:
            return None
        return cls(title=data["title"], ref=ref, start=_str(data.get("start")), day=_str(data.get("day")))


def _offers(data: Any) -> list[Offer]:
    if not isinstance(data, list):
        return []
    return [o for o in (Offer.from_json(d) for d in data[:MAX_CHOICES]) if o is not None]


@dataclass
class BookingDraft:
    """A booking being arranged: ``mode`` ``book`` (a new booking of ``service_id``), ``move`` or
    ``cancel`` (of ``booking_id``); what the customer asked for (local ``day`` ISO date,
    ``part_of_day``, ``after`` ``HH:MM``, ``resource`` name) and the ``offers`` shown; ``candidates``
    are the services or bookings offered when it was unclear which one."""

    mode: str = "book"
    service_id: uuid.UUID | None = None
    booking_id: uuid.UUID | None = None
    day: str | None = None
    part_of_day: str | None = None
    after: str | None = None
    resource: str | None = None
    offers: list[Offer] = field(default_factory=list)
    candidates: list[uuid.UUID] = field(default_factory=list)

    @property
    def local_day(self) -> date | None:
        """``day`` as a local date (``None``: not said, or not an ISO date)."""
        try:
            return date.fromisoformat(self.day) if self.day else None
        except ValueError:
            return None

    def to_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "service_id": str(self.service_id) if self.service_id else None,
            "booking_id": str(self.booking_id) if self.booking_id else None,
            "day": self.day,
            "part_of_day": self.part_of_day,
            "after": self.after,
            "resource": self.resource,
            "offers": [o.to_json() for o in self.offers],
            "candidates": [str(c) for c in self.candidates],
        }

    @classmethod
    def from_json(cls, data: Any) -> BookingDraft | None:
        if not isinstance(data, dict):
            return None
        mode = data.get("mode")
        return cls(
            mode=mode if mode in ("book", "move", "cancel") else "book",
            service_id=_uuid(data.get("service_id")),
            booking_id=_uuid(data.get("booking_id")),
            day=_str(data.get("day")),
            part_of_day=_str(data.get("part_of_day")),
            after=_str(data.get("after")),
            resource=_str(data.get("resource")),
            offers=_offers(data.get("offers")),
            candidates=[u for u in (_uuid(c) for c in data.get("candidates") or []) if u is not None],
        )


@dataclass
class DeliveryDraft:
    """Choosing the delivery window of paid order ``order_id``: the ``city`` and the ``offers`` shown."""

    order_id: uuid.UUID
    city: str | None = None
    offers: list[Offer] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"order_id": str(self.order_id), "city": self.city, "offers": [o.to_json() for o in self.offers]}

    @classmethod
    def from_json(cls, data: Any) -> DeliveryDraft | None:
        order_id = _uuid(data.get("order_id")) if isinstance(data, dict) else None
        if order_id is None:
            return None
        return cls(order_id=order_id, city=_str(data.get("city")), offers=_offers(data.get("offers")))


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
      that show buttons as a numbered list;
    * ``booking`` — a booking being arranged (service, time asked for, times offered); ``booking_id``
      the last booking made in this conversation;
    * ``delivery`` — a paid order choosing its delivery window; ``delivery_prompted`` the last order
      whose customer was asked to choose one (asked once, unprompted).
    """

    step: Step | None = None
    pending: Pending | None = None
    checkout: CheckoutDraft = field(default_factory=CheckoutDraft)
    profile: CheckoutDraft = field(default_factory=CheckoutDraft)
    last_item_id: uuid.UUID | None = None
    last_variant_id: uuid.UUID | None = None
    order_id: uuid.UUID | None = None
    choices: list[str] = field(default_factory=list)
    booking: BookingDraft | None = None
    booking_id: uuid.UUID | None = None
    delivery: DeliveryDraft | None = None
    delivery_prompted: uuid.UUID | None = None

    def clear_question(self) -> None:
        """Forget the open question (and its pending action); checkout answers are kept separately,
        and so are the booking and delivery drafts (the handlers decide when they are finished)."""
        self.step = None
        self.pending = None

    # -- references read by understanding (the step itself is the policy's) -------------------------

    def waiting_item(self) -> uuid.UUID | None:
        """The item whose variant was asked for last, if that is the open question."""
        return self.pending.item_id if self.step == Step.CHOOSE_VARIANT and self.pending else None

    def offered_items(self) -> list[uuid.UUID]:
        """The items offered last to choose from (an ambiguous name), best first."""
        return list(self.pending.candidates) if self.step == Step.CHOOSE_ITEM and self.pending else []

    def offered(self) -> list[Offer]:
        """The times, bookings or delivery windows offered last to choose from (empty: none)."""
        if self.step in (Step.CHOOSE_SLOT, Step.CHOOSE_BOOKING) and self.booking is not None:
            return list(self.booking.offers)
        if self.step == Step.CHOOSE_WINDOW and self.delivery is not None:
            return list(self.delivery.offers)
        return []

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
            "booking": self.booking.to_json() if self.booking else None,
            "booking_id": str(self.booking_id) if self.booking_id else None,
            "delivery": self.delivery.to_json() if self.delivery else None,
            "delivery_prompted": str(self.delivery_prompted) if self.delivery_prompted else None,
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
            booking=BookingDraft.from_json(data.get("booking")),
            booking_id=_uuid(data.get("booking_id")),
            delivery=DeliveryDraft.from_json(data.get("delivery")),
            delivery_prompted=_uuid(data.get("delivery_prompted")),
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
