"""Errors raised by commerce operations. Each carries data the dialogue can explain to a customer."""

from __future__ import annotations

import uuid
from dataclasses import dataclass


class CommerceError(Exception):
    """Base class for commerce errors."""


@dataclass
class ItemNotFound(CommerceError):
    item_id: uuid.UUID


@dataclass
class VariantRequired(CommerceError):
    """The item has variants and none was chosen; ``options`` lists the variant names."""

    item_id: uuid.UUID
    item_name: str
    options: list[str]


@dataclass
class OutOfStock(CommerceError):
    """Not enough stock: ``available`` units are left (0 means sold out)."""

    item_name: str
    variant: str | None
    available: int


@dataclass
class PriceMissing(CommerceError):
    """The knowledge base has no price for this item, so it cannot be sold through the bot."""

    item_name: str


class EmptyCart(CommerceError):
    """Checkout of a cart with no lines."""


@dataclass
class InvalidQuantity(CommerceError):
    quantity: int


@dataclass
class PaymentUnavailable(CommerceError):
    """The company's payment provider cannot issue a link (e.g. not connected); ``reason`` says why."""

    reason: str
