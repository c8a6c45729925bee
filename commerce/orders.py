"""Orders: checkout freezes a cart into an ``Order`` with snapshot lines."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from commerce.cart import PricedLine, load_items, priced_lines
from commerce.contacts import remember_customer
from commerce.errors import EmptyCart, OutOfStock
from core.db import begin_write
from core.models import Cart, Company, Conversation, KnowledgeItem, KnowledgeVariant, Order, OrderLine
from core.tenancy import TenantScope


async def checkout(
    session: AsyncSession,
    *,
    cart: Cart,
    conversation: Conversation,
    company: Company,
    customer_name: str | None,
    delivery_address: str | None,
    phone: str | None = None,
) -> Order:
    """Freeze ``cart`` into an order: lines copy name, variant, quantity and the unit price read from the
    knowledge base now (minor units, company currency). The cart becomes ``checked_out``; the order is
    ``pending_payment`` / ``no_payment_link`` with a per-company ``number`` (1001, 1002...). The
    customer's name and phone become their contact's (``commerce.contacts.remember_customer``).

    Raises ``EmptyCart``, ``OutOfStock`` (stock changed since the item was added) and ``PriceMissing``.
    """
    lines = await priced_lines(session, cart)
    if not lines:
        raise EmptyCart()
    # Re-check tracked stock of every line first, then reserve it: a refused checkout changes nothing.
    # The items were read by ``priced_lines`` just above (one tenant-scoped query, reused here).
    items = await load_items(session, tenant_id=company.tenant_id, company_id=company.id,
                             ids={pl.item_id for pl in lines})
    holders: list[tuple[KnowledgeItem | KnowledgeVariant, int, PricedLine]] = []
    for pl in lines:
        item = items[pl.item_id]
        variant = next((v for v in item.variants if v.id == pl.variant_id), None)
        holder = variant if variant is not None else item
        if holder.stock is not None and holder.stock < pl.quantity:
            raise OutOfStock(pl.name, pl.variant, max(holder.stock, 0))
        holders.append((holder, pl.quantity, pl))
    await begin_write(session)
    await _reserve_stock(session, holders)

    def make(number: int) -> Order:
        order = Order(
            tenant_id=company.tenant_id,
            company_id=company.id,
            conversation_id=conversation.id,
            contact_id=conversation.contact_id,
            number=number,
            status="pending_payment",
            payment_status="no_payment_link",
            total_minor=sum(pl.total_minor for pl in lines),
            currency=company.currency,
            customer_name=customer_name,
            delivery_address=delivery_address,
            phone=phone,
        )
        order.lines = [
            OrderLine(tenant_id=company.tenant_id, item_id=pl.item_id, variant_id=pl.variant_id, sku=pl.sku,
                      name=pl.name, variant=pl.variant, quantity=pl.quantity, unit_price_minor=pl.unit_price_minor,
                      position=i)
            for i, pl in enumerate(lines)
        ]
        return order

    order = await insert_with_next_number(session, make=make, company_id=company.id)
    await remember_customer(session, tenant_id=company.tenant_id, contact_id=conversation.contact_id,
                            name=customer_name, phone=phone)
    cart.status = "checked_out"
    await session.flush()
    return order


async def _reserve_stock(
    session: AsyncSession, holders: list[tuple[KnowledgeItem | KnowledgeVariant, int, PricedLine]]
) -> None:
    """Take ``quantity`` off each tracked stock with ONE conditional statement per item or variant
    (``UPDATE … SET stock = stock - :q WHERE id = … AND stock >= :q``), all in a savepoint.

    The check and the decrement are one statement, so concurrent checkouts can never sell more than
    there is, on SQLite (which ignores ``SELECT … FOR UPDATE``) as on PostgreSQL (a waiting UPDATE
    re-checks the condition after the other transaction commits). When a line no longer fits, the
    savepoint rolls back the lines already taken and ``OutOfStock`` names what is left."""
    async with session.begin_nested():
        for holder, quantity, pl in holders:
            if holder.stock is None:
                continue
            model = type(holder)
            left = (
                await session.execute(
                    update(model)
                    .where(model.id == holder.id, model.stock.is_not(None), model.stock >= quantity)
                    .values(stock=model.stock - quantity)
                    .returning(model.stock)
                    .execution_options(synchronize_session=False)
                )
            ).scalar_one_or_none()
            if left is None:
                now = (await session.execute(select(model.stock).where(model.id == holder.id))).scalar_one_or_none()
                set_committed_value(holder, "stock", now)
                raise OutOfStock(pl.name, pl.variant, max(now or 0, 0))
            set_committed_value(holder, "stock", left)


async def insert_with_next_number(
    session: AsyncSession, *, make: Callable[[int], Order], company_id: uuid.UUID
) -> Order:
    """Insert the order built by ``make(number)`` with the company's next number (1001, 1002...).

    Numbers are allocated under a lock on the company row (PostgreSQL ``SELECT … FOR NO KEY UPDATE``; SQLite
    serialises writers with ``BEGIN IMMEDIATE``), so concurrent checkouts of one company queue for the
    few milliseconds until the order is inserted and committed. The unique ``(company_id, number)``
    constraint stays the guarantee; a conflict is retried in a savepoint."""
    await begin_write(session)
    # FOR NO KEY UPDATE: serialises number allocation without conflicting with the KEY SHARE locks that
    # foreign-key checks of concurrent inserts (bookings, carts) take on the company row.
    await session.execute(select(Company.id).where(Company.id == company_id).with_for_update(key_share=True))
    for _attempt in range(10):
        stmt = select(func.max(Order.number)).where(Order.company_id == company_id)
        last = (await session.execute(stmt)).scalar_one()
        try:
            async with session.begin_nested():
                order = make((last or 1000) + 1)
                session.add(order)
                await session.flush()
            return order
        except IntegrityError:
            continue
    raise RuntimeError(f"could not allocate an order number for company {company_id}")


async def list_orders(session: AsyncSession, *, scope: TenantScope, company_id: uuid.UUID) -> list[Order]:
    """The company's orders, newest first."""
    stmt = scope.select(Order, Order.company_id == company_id).order_by(Order.number.desc())
    return list((await session.execute(stmt)).scalars())


def order_as_dict(order: Order) -> dict[str, object]:
    """JSON shape of an order used by the API and the CLI (money in minor units)."""
    return {
        "id": str(order.id),
        "number": order.number,
        "status": order.status,
        "payment_status": order.payment_status,
        "total_minor": order.total_minor,
        "currency": order.currency,
        "customer_name": order.customer_name,
        "delivery_address": order.delivery_address,
        "phone": order.phone,
        "created_at": order.created_at.isoformat(),
        "paid_at": order.paid_at.isoformat() if order.paid_at else None,
        "lines": [
            {
                "name": ln.name,
                "variant": ln.variant,
                "sku": ln.sku,
                "quantity": ln.quantity,
                "unit_price_minor": ln.unit_price_minor,
                "total_minor": ln.line_total_minor,
            }
            for ln in order.lines
        ],
    }
