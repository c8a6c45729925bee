"""Carts: one open cart per conversation; lines hold item, variant and quantity only. Prices and
stock are read from the knowledge base (the database), never from dialogue text."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.attributes import set_committed_value

from commerce.errors import InvalidQuantity, ItemNotFound, OutOfStock, PriceMissing, VariantRequired
from core.models import Cart, CartLine, Conversation, KnowledgeItem, KnowledgeVariant
from core.tenancy import TenantScope

MAX_QUANTITY = 999

# ``AsyncSession.info`` keys: the rows read for the turn the session is answering, held by strong references
# (the session's identity map holds rows only weakly, so without them a row read twice in one turn is queried
# twice). Dropped by ``forget_loaded`` when the turn ends.
_LOADED_ITEMS = "commerce.cart.loaded_items"
_OPEN_CARTS = "commerce.cart.open_carts"


@dataclass(frozen=True, slots=True)
class PricedLine:
    """A cart line priced from the knowledge base: money in minor units of ``currency``."""

    line_id: uuid.UUID
    item_id: uuid.UUID
    variant_id: uuid.UUID | None
    sku: str | None
    name: str
    variant: str | None
    quantity: int
    unit_price_minor: int
    currency: str

    @property
    def total_minor(self) -> int:
        return self.unit_price_minor * self.quantity


async def find_open_cart(session: AsyncSession, conversation: Conversation) -> Cart | None:
    """The conversation's open cart with its lines, or ``None`` (never creates one). Shares ``open_cart``'s
    per-session memory: a cart read here is not read again by ``open_cart`` until ``forget_loaded``."""
    carts: dict[uuid.UUID, Cart] = session.info.setdefault(_OPEN_CARTS, {})
    known = carts.get(conversation.id)
    if known is not None and _usable(known, "lines") and known.status == "open" \
            and known.tenant_id == conversation.tenant_id:
        return known
    scope = TenantScope(conversation.tenant_id)
    cart = (
        await session.execute(  # the cart and its lines in one statement
            scope.select(Cart, Cart.conversation_id == conversation.id, Cart.status == "open")
            .options(joinedload(Cart.lines)).limit(1)
        )
    ).unique().scalar_one_or_none()
    if cart is not None:
        carts[conversation.id] = cart
    return cart


async def open_cart(session: AsyncSession, conversation: Conversation) -> Cart:
    """The conversation's open cart, created when there is none. The cart this session already read or
    created for the conversation (still open, not expired) is reused without a query until
    ``forget_loaded``."""
    carts: dict[uuid.UUID, Cart] = session.info.setdefault(_OPEN_CARTS, {})
    cart = await find_open_cart(session, conversation)
    if cart is None:
        cart = Cart(tenant_id=conversation.tenant_id, company_id=conversation.company_id,
                    conversation_id=conversation.id, status="open")
        session.add(cart)
        await session.flush()
        set_committed_value(cart, "lines", [])  # a cart just created has no lines: nothing to read back
    carts[conversation.id] = cart
    return cart


def forget_loaded(session: AsyncSession) -> None:
    """Stop reusing the items and carts ``load_items`` and ``open_cart`` kept for this session (call when a
    turn ends, so a session that answers several messages reads them afresh for the next one)."""
    session.info.pop(_LOADED_ITEMS, None)
    session.info.pop(_OPEN_CARTS, None)


def _usable(row: object, collection: str) -> bool:
    """``row`` is in its session, none of its attributes expired, and ``collection`` is loaded."""
    state = inspect(row)
    return state.persistent and not state.expired_attributes and collection in state.dict


async def load_items(session: AsyncSession, *, tenant_id: uuid.UUID, company_id: uuid.UUID,
                     ids: set[uuid.UUID]) -> dict[uuid.UUID, KnowledgeItem]:
    """The company's items (with their variants) among ``ids``, by id; ids of other companies or
    tenants, or of deleted items, are left out. Items this session already loaded are taken from its
    identity map (the same rows, no query; the rows read here are kept until ``forget_loaded``); the others
    are read in one tenant-scoped query."""
    sync = session.sync_session
    loaded: dict[uuid.UUID, KnowledgeItem] = session.info.setdefault(_LOADED_ITEMS, {})
    found: dict[uuid.UUID, KnowledgeItem] = {}
    missing: set[uuid.UUID] = set()
    for item_id in ids:
        known = sync.identity_map.get(sync.identity_key(KnowledgeItem, item_id))
        if isinstance(known, KnowledgeItem) and _usable(known, "variants"):
            if known.tenant_id == tenant_id and known.company_id == company_id:
                found[item_id] = known
        else:
            missing.add(item_id)
    if missing:
        scope = TenantScope(tenant_id)
        rows = await session.execute(  # the items and their variants in one statement
            scope.select(KnowledgeItem, KnowledgeItem.id.in_(missing), KnowledgeItem.company_id == company_id)
            .options(joinedload(KnowledgeItem.variants)))
        found.update((item.id, item) for item in rows.unique().scalars())
    loaded.update(found)
    return found


async def _load_item(session: AsyncSession, cart: Cart, item_id: uuid.UUID) -> KnowledgeItem:
    item = (await load_items(session, tenant_id=cart.tenant_id, company_id=cart.company_id, ids={item_id})).get(item_id)
    if item is None:
        raise ItemNotFound(item_id)
    return item


def _unit_price(item: KnowledgeItem, variant: KnowledgeVariant | None) -> int:
    price = variant.price_minor if variant is not None and variant.price_minor is not None else item.price_minor
    if price is None:
        raise PriceMissing(item.name)
    return price


def _available(item: KnowledgeItem, variant: KnowledgeVariant | None) -> int | None:
    return variant.stock if variant is not None else item.stock


async def add_to_cart(
    session: AsyncSession, cart: Cart, *, item_id: uuid.UUID, variant_id: uuid.UUID | None, quantity: int
) -> CartLine:
    """Add ``quantity`` of an item (and variant) to the cart, merging with an existing line.

    Raises ``ItemNotFound`` (not in this company's KB), ``VariantRequired`` (the item has variants
    and ``variant_id`` is None), ``OutOfStock`` (tracked stock is lower than the resulting quantity),
    ``PriceMissing`` and ``InvalidQuantity`` (not 1..999).
    """
    if quantity < 1 or quantity > MAX_QUANTITY:
        raise InvalidQuantity(quantity)
    item = await _load_item(session, cart, item_id)
    variant: KnowledgeVariant | None = None
    if item.variants:
        variant = next((v for v in item.variants if v.id == variant_id), None)
        if variant is None:
            raise VariantRequired(item.id, item.name, [v.name for v in item.variants])
    _unit_price(item, variant)
    existing = next((ln for ln in cart.lines if ln.item_id == item.id and ln.variant_id == (variant and variant.id)),
                    None)
    new_quantity = quantity + (existing.quantity if existing else 0)
    available = _available(item, variant)
    if available is not None and new_quantity > available:
        raise OutOfStock(item.name, variant.name if variant else None, max(available, 0))
    if existing is not None:
        existing.quantity = new_quantity
        await session.flush()
        return existing
    line = CartLine(tenant_id=cart.tenant_id, cart_id=cart.id, item_id=item.id,
                    variant_id=variant.id if variant else None, quantity=quantity)
    cart.lines.append(line)
    await session.flush()
    return line


async def set_line_quantity(session: AsyncSession, cart: Cart, *, line_id: uuid.UUID, quantity: int) -> None:
    """Change a line's quantity; 0 removes it. Raises ``OutOfStock`` / ``InvalidQuantity``."""
    line = next((ln for ln in cart.lines if ln.id == line_id), None)
    if line is None:
        raise ItemNotFound(line_id)
    if quantity == 0:
        cart.lines.remove(line)
        await session.delete(line)
        await session.flush()
        return
    if quantity < 0 or quantity > MAX_QUANTITY:
        raise InvalidQuantity(quantity)
    item = await _load_item(session, cart, line.item_id)
    variant = next((v for v in item.variants if v.id == line.variant_id), None)
    available = _available(item, variant)
    if available is not None and quantity > available:
        raise OutOfStock(item.name, variant.name if variant else None, max(available, 0))
    line.quantity = quantity
    await session.flush()


async def clear_cart(session: AsyncSession, cart: Cart) -> None:
    """Remove every line of the cart."""
    for line in list(cart.lines):
        cart.lines.remove(line)
        await session.delete(line)
    await session.flush()


async def priced_lines(session: AsyncSession, cart: Cart) -> list[PricedLine]:
    """The cart's lines priced from the knowledge base, in the order they were added."""
    if not cart.lines:
        return []
    items = await load_items(session, tenant_id=cart.tenant_id, company_id=cart.company_id,
                             ids={ln.item_id for ln in cart.lines})
    out: list[PricedLine] = []
    for ln in cart.lines:
        item = items.get(ln.item_id)
        if item is None:
            continue
        variant = next((v for v in item.variants if v.id == ln.variant_id), None)
        out.append(PricedLine(
            line_id=ln.id, item_id=item.id, variant_id=variant.id if variant else None,
            sku=(variant.sku if variant and variant.sku else item.sku), name=item.name,
            variant=variant.name if variant else None, quantity=ln.quantity,
            unit_price_minor=_unit_price(item, variant), currency=item.currency,
        ))
    return out

