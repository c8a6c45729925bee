"""What actions return: typed results, no text (``bot.render`` turns them into messages and
``bot.policy.advance`` into the next dialogue step).

Rows are the ORM objects read in this turn (current prices and stock); money stays in minor units
with the row's ISO-4217 currency.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Literal
from zoneinfo import ZoneInfo

from commerce.cart import PricedLine
from commerce.delivery import WindowOffer
from commerce.schedule import Slot
from core.models import Booking, KnowledgeItem, KnowledgeVariant, Order


@dataclass(frozen=True, slots=True)
class Chatted:
    """Small talk answered (``greet``, ``thanks``, ``ack``, ``help``...)."""

    kind: str


@dataclass(frozen=True, slots=True)
class HandedOff:
    """The conversation now waits for a manager."""


@dataclass(frozen=True, slots=True)
class Cancelled:
    """The open question was abandoned: ``what`` is ``checkout``, ``question`` (any other) or ``nothing``."""

    what: Literal["checkout", "question", "nothing"]


@dataclass(frozen=True, slots=True)
class NotUnderstood:
    """Nothing was understood; ``suggestions`` are items close to some word of the message."""

    suggestions: tuple[tuple[uuid.UUID, str], ...] = ()


@dataclass(frozen=True, slots=True)
class FaqAnswered:
    """The FAQ entry's answer (the owner's own text, shown as written)."""

    answer: str


@dataclass(frozen=True, slots=True)
class CatalogShown:
    """The first ``items`` of a catalogue of ``total`` items."""

    items: tuple[KnowledgeItem, ...]
    total: int


@dataclass(frozen=True, slots=True)
class ItemShown:
    """An item (and variant) read from the database; ``aspect`` what was asked (``None``: its card)."""

    item: KnowledgeItem
    variant: KnowledgeVariant | None
    aspect: str | None


@dataclass(frozen=True, slots=True)
class ItemGone:
    """The item no longer exists (removed from the catalogue meanwhile)."""


@dataclass(frozen=True, slots=True)
class NotFound:
    """Nothing in the catalogue matches ``query`` (``""``: no item was named at all); ``adding`` when
    the customer wanted to add it; ``alternatives`` the closest items (id, name), best first."""

    query: str
    adding: bool = False
    alternatives: tuple[tuple[uuid.UUID, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Found:
    """Items matching a search within a budget (minor units of the company's currency), best matches
    first (or by price, ``order``); ``closest`` when none fit the budget and these are the nearest in price."""

    items: tuple[KnowledgeItem, ...]
    max_price_minor: int | None = None
    min_price_minor: int | None = None
    closest: bool = False
    order: str = "relevance"


@dataclass(frozen=True, slots=True)
class FactUnknown:
    """A question the knowledge base cannot answer (about ``item`` when known): a manager is offered."""

    item: KnowledgeItem | None
    question: str


@dataclass(frozen=True, slots=True)
class DetailsNoted:
    """Checkout details given before checkout, kept for it."""

    name: str | None
    address: str | None
    phone: str | None


@dataclass(frozen=True, slots=True)
class ItemChoices:
    """Several items match: the customer chooses; ``purpose`` is what the choice then does,
    ``quantity`` the quantity asked for, ``variants`` the variant the message named per item."""

    items: tuple[KnowledgeItem, ...]
    purpose: Literal["add", "show"]
    quantity: int | None = None
    aspect: str | None = None
    variants: dict[uuid.UUID, KnowledgeVariant] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class NothingToAdd:
    """"Add it" with no item talked about and an empty cart."""


@dataclass(frozen=True, slots=True)
class VariantNeeded:
    """The item has variants and none was named: ``available`` are those in stock (empty: all sold out)."""

    item: KnowledgeItem
    available: tuple[KnowledgeVariant, ...]
    quantity: int | None


@dataclass(frozen=True, slots=True)
class Added:
    """``quantity`` of an item was added; ``lines`` is the cart after."""

    item: KnowledgeItem
    variant: KnowledgeVariant | None
    quantity: int
    unit_price_minor: int
    lines: tuple[PricedLine, ...]


@dataclass(frozen=True, slots=True)
class AddRefused:
    """Adding failed: ``reason`` ``out_of_stock`` (``available`` left, ``in_cart`` already there),
    ``no_price``, ``bad_quantity`` (allowed 1..``max_quantity``) or ``gone``."""

    reason: Literal["out_of_stock", "no_price", "bad_quantity", "gone"]
    item_id: uuid.UUID | None = None
    variant_id: uuid.UUID | None = None
    name: str = ""
    variant: str | None = None
    available: int = 0
    in_cart: int = 0
    max_quantity: int = 0


@dataclass(frozen=True, slots=True)
class CartShown:
    """The cart (``lines``; ``None`` when an item lost its price), after ``change`` when one was made;
    ``brief``: only the change is said (another result of the turn shows the cart)."""

    lines: tuple[PricedLine, ...] | None
    change: CartChange | None = None
    brief: bool = False  # only the change (another result of the turn shows the cart)


@dataclass(frozen=True, slots=True)
class CartChange:
    """A change made to cart line(s): ``updated`` to ``quantity`` or ``removed``."""

    kind: Literal["updated", "removed"]
    lines: tuple[PricedLine, ...]
    quantity: int = 0


@dataclass(frozen=True, slots=True)
class CartCleared:
    """The cart was emptied."""


@dataclass(frozen=True, slots=True)
class WhichLine:
    """Several cart lines fit: the customer chooses which one to change (``remove`` or set to
    ``quantity``)."""

    lines: tuple[PricedLine, ...]
    remove: bool
    quantity: int


@dataclass(frozen=True, slots=True)
class NotInCart:
    """The item named is not in the cart (``lines``: the cart)."""

    name: str
    lines: tuple[PricedLine, ...]


@dataclass(frozen=True, slots=True)
class QuantityNeeded:
    """"Change the shirt" without a number: which quantity?"""

    name: str


@dataclass(frozen=True, slots=True)
class CheckoutStarted:
    """Checkout began with ``lines``; ``ask`` is the first question without an answer (``name``,
    ``address`` or ``phone``), ``suggestion`` its answer known from before."""

    lines: tuple[PricedLine, ...]
    suggestion: str | None
    ask: str = "name"


@dataclass(frozen=True, slots=True)
class CheckoutEmpty:
    """Nothing to check out; ``has_order`` when an earlier order exists."""

    has_order: bool = False


@dataclass(frozen=True, slots=True)
class DetailTaken:
    """Checkout detail ``field`` was accepted (``value``); ``next_field`` is asked next with ``suggestion``."""

    field: str
    value: str
    next_field: str
    suggestion: str | None = None


@dataclass(frozen=True, slots=True)
class DetailRejected:
    """The answer to checkout question ``field`` was not valid: asked again."""

    field: str


@dataclass(frozen=True, slots=True)
class StillAsking:
    """The question open before the customer asked something else (checkout ``name``, ``address`` or
    ``phone``; ``booking_name``): the other thing was answered, this one is asked again."""

    field: str


@dataclass(frozen=True, slots=True)
class StillChoosing:
    """Times were offered when the customer asked something else ("do you take cards?"): that was
    answered, and the same times (their titles, in offer order) are offered again."""

    titles: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PriceMissing:
    """An item lost its price (``name``, ``"?"`` when unknown): a manager must help."""

    name: str


@dataclass(frozen=True, slots=True)
class CheckoutShortage:
    """Not enough stock of a line to place the order (nothing was changed)."""

    name: str
    variant: str | None
    available: int


@dataclass(frozen=True, slots=True)
class OrderPlaced:
    """The order was placed with the checkout ``details``; ``url`` its payment link (``None``: online
    payment unavailable, flagged for a manager)."""

    order: Order
    url: str | None
    details: tuple[str | None, str | None, str | None]


@dataclass(frozen=True, slots=True)
class OrderStatusShown:
    """The conversation's last order (``None``: none) and its payment state."""

    order: Order | None


@dataclass(frozen=True, slots=True)
class LinkSent:
    """The order's live payment link (``status`` said "waiting for payment", else a new link asked for)."""

    order: Order
    url: str
    waiting: bool


@dataclass(frozen=True, slots=True)
class LinkRefused:
    """No link: ``reason`` ``paid``, ``refunded`` or ``unavailable`` (flagged for a manager)."""

    order: Order
    reason: Literal["paid", "refunded", "unavailable"]


@dataclass(frozen=True, slots=True)
class WindowsOffered:
    """Free delivery windows of ``city`` for paid ``order`` (earliest first; times aware UTC, shown in
    ``tz``); ``prompted`` when asked unprompted after payment, ``full`` when the one chosen filled up."""

    order: Order
    city: str
    offers: tuple[WindowOffer, ...]
    tz: ZoneInfo
    prompted: bool = False
    full: bool = False


@dataclass(frozen=True, slots=True)
class CityNeeded:
    """Which city to deliver ``order`` to (one of ``cities``); ``again`` when the answer was empty."""

    order: Order
    cities: tuple[str, ...]
    prompted: bool = False
    again: bool = False


@dataclass(frozen=True, slots=True)
class NoWindows:
    """No free window in ``city``: a manager arranges the delivery (flagged); ``prompted`` is the
    order asked about unprompted after payment (asked once)."""

    city: str
    full: bool = False
    prompted: uuid.UUID | None = None


@dataclass(frozen=True, slots=True)
class CityUnknown:
    """No delivery windows for the city answered: a manager arranges the delivery (flagged)."""

    city: str


@dataclass(frozen=True, slots=True)
class WindowChosen:
    """``order`` is delivered in ``city`` between ``start`` and ``end`` (aware UTC, shown in ``tz``);
    ``earlier`` when it was chosen before ("when will my order arrive?")."""

    order: Order
    start: datetime
    end: datetime
    city: str
    tz: ZoneInfo
    earlier: bool = False


@dataclass(frozen=True, slots=True)
class DeliveryDropped:
    """The window could not be recorded because the order is no longer paid (refunded meanwhile)."""


@dataclass(frozen=True, slots=True)
class DeliveryByManager:
    """A paid order whose delivery a manager arranges."""

    order: Order


# --- bookings -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NoServices:
    """The company has no bookable services (or no schedule): a manager helps."""


@dataclass(frozen=True, slots=True)
class ServiceGone:
    """The service is no longer offered; ``human`` when a manager should help (a booking being moved)."""

    human: bool = False


@dataclass(frozen=True, slots=True)
class ServiceChoices:
    """Which service to book: ``services``; the time asked for so far is kept."""

    services: tuple[KnowledgeItem, ...]
    day: date | None
    part: str | None
    after: time | None


@dataclass(frozen=True, slots=True)
class SlotsOffered:
    """Free times of ``service`` on ``day`` (``part``/``after`` as asked; shown in ``tz``); ``moving``
    the booking being moved; ``several`` when staff differ (their names are shown)."""

    service: KnowledgeItem
    slots: tuple[Slot, ...]
    tz: ZoneInfo
    day: date
    part: str | None
    after: time | None
    resource: str | None
    moving: uuid.UUID | None
    several: bool


@dataclass(frozen=True, slots=True)
class NearestDays:
    """No free time on ``day``: the nearest ``days`` that have some."""

    service: KnowledgeItem
    days: tuple[date, ...]
    day: date
    part: str | None
    after: time | None
    resource: str | None
    moving: uuid.UUID | None


@dataclass(frozen=True, slots=True)
class SlotsNone:
    """No free time of ``service`` in the weeks ahead: a manager helps."""

    service: KnowledgeItem


@dataclass(frozen=True, slots=True)
class SlotLost:
    """The time chosen (``start``, shown in ``tz``) was taken meanwhile."""

    start: datetime
    tz: ZoneInfo


@dataclass(frozen=True, slots=True)
class HoldExpired:
    """The hold on ``start`` ran out before the name or the payment came."""

    start: datetime
    tz: ZoneInfo


@dataclass(frozen=True, slots=True)
class SlotHeld:
    """``booking`` holds the chosen time; ``ask_name`` when its name is still needed."""

    booking: Booking
    tz: ZoneInfo
    ask_name: bool


@dataclass(frozen=True, slots=True)
class PhoneAdded:
    """A phone number (E.164) given after the booking or order was made: added to the active booking
    and its prepayment order, or to the conversation's open order (and to the contact when it had none)."""

    phone: str
    booking: Booking | None
    order: Order | None
    tz: ZoneInfo


@dataclass(frozen=True, slots=True)
class BookingNamed:
    """The name (and phone) given for the booking, kept for next time."""

    name: str
    phone: str | None


@dataclass(frozen=True, slots=True)
class BookingNameRejected:
    """The answer to "what name?" had no name in it: asked again."""


@dataclass(frozen=True, slots=True)
class BookingSettled:
    """The named booking: ``confirmed`` (nothing to prepay), ``link`` (prepay at ``url``), ``no_link``
    (online payment unavailable, flagged), ``paid`` or ``reserved``."""

    booking: Booking
    tz: ZoneInfo
    outcome: Literal["confirmed", "link", "no_link", "paid", "reserved"]
    url: str | None = None


@dataclass(frozen=True, slots=True)
class BookingPriceMissing:
    """The service has no price, so it cannot be held."""

    name: str


@dataclass(frozen=True, slots=True)
class BookingNotActive:
    """The booking meant is no longer active; ``book`` offers to book again; ``drop_draft`` ends what
    was being arranged."""

    book: bool = False
    drop_draft: bool = False


@dataclass(frozen=True, slots=True)
class BookingNotUnderstood:
    """A choice among times that were not offered."""


@dataclass(frozen=True, slots=True)
class BookingReleased:
    """The time just held was given back."""


@dataclass(frozen=True, slots=True)
class NoBookings:
    """The customer has no upcoming bookings."""


@dataclass(frozen=True, slots=True)
class BookingsShown:
    """The customer's upcoming ``bookings``; ``url`` the live prepayment link of a held one."""

    bookings: tuple[Booking, ...]
    tz: ZoneInfo
    url: str | None


@dataclass(frozen=True, slots=True)
class WhichBooking:
    """Several bookings: which one to ``cancel`` or ``move``."""

    bookings: tuple[Booking, ...]
    tz: ZoneInfo
    mode: Literal["cancel", "move"]


@dataclass(frozen=True, slots=True)
class CancelAsked:
    """"Cancel this booking?"; ``prepaid`` whether it was paid, ``late`` when inside the last
    ``cancel_hours`` (the prepayment is not refunded)."""

    booking: Booking
    tz: ZoneInfo
    prepaid: bool
    late: bool
    cancel_hours: int


@dataclass(frozen=True, slots=True)
class BookingCancelled:
    """Cancelled; ``refund_minor`` refunded (``None``: nothing), ``paid`` whether it was prepaid."""

    booking: Booking
    tz: ZoneInfo
    refund_minor: int | None
    paid: bool
    cancel_hours: int


@dataclass(frozen=True, slots=True)
class BookingKept:
    """The booking stays (``None``: it was not found)."""

    booking: Booking | None
    tz: ZoneInfo


@dataclass(frozen=True, slots=True)
class AskMoveDay:
    """Which day to move ``booking`` (of service ``service_id``) to."""

    booking: Booking
    service_id: uuid.UUID
    tz: ZoneInfo


@dataclass(frozen=True, slots=True)
class MoveTooLate:
    """Too late to move: inside the last ``cancel_hours``."""

    cancel_hours: int
    drop_draft: bool = False


@dataclass(frozen=True, slots=True)
class BookingMoved:
    """The booking now starts at its new time."""

    booking: Booking
    tz: ZoneInfo



Result = (
    Chatted | HandedOff | Cancelled | NotUnderstood | FaqAnswered | CatalogShown | ItemShown | ItemGone | NotFound
    | Found | FactUnknown | DetailsNoted | ItemChoices | NothingToAdd | VariantNeeded | Added | AddRefused | CartShown
    | CartCleared | WhichLine | NotInCart | QuantityNeeded | CheckoutStarted | CheckoutEmpty | DetailTaken
    | DetailRejected | StillAsking | StillChoosing | PriceMissing | CheckoutShortage | OrderPlaced | OrderStatusShown
    | LinkSent | LinkRefused
    | NoServices | ServiceGone | ServiceChoices | SlotsOffered | NearestDays | SlotsNone | SlotLost | HoldExpired
    | SlotHeld | PhoneAdded | BookingNamed | BookingNameRejected | BookingSettled | BookingPriceMissing
    | BookingNotActive | BookingNotUnderstood | BookingReleased | NoBookings | BookingsShown | WhichBooking
    | CancelAsked | BookingCancelled | BookingKept | AskMoveDay | MoveTooLate | BookingMoved
    | WindowsOffered | CityNeeded | NoWindows | CityUnknown | WindowChosen | DeliveryDropped | DeliveryByManager
)
"""Any action result."""
