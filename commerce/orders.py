"""Orders: checkout freezes a cart into an ``Order`` with snapshot lines."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from commerce.cart import load_items, priced_lines
from commerce.contacts import remember_customer
from commerce.errors import EmptyCart, OutOfStock
from core.db import begin_write
from core.models import Cart, Company, Conversation, KnowledgeItem, KnowledgeVariant, Order, OrderLine
from core.order_numbers import create_order_numbers, order_number_sequence
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
    reserve: bool = True,
) -> Order:
    """Freeze ``cart`` into an order: lines copy name, variant, quantity and the unit price read from the
    knowledge base now (minor units, company currency). The cart becomes ``checked_out``; the order is
    ``pending_payment`` / ``no_payment_link`` with a per-company ``number`` (1001, 1002...). The
    customer's name and phone become their contact's (``commerce.contacts.remember_customer``).

    Tracked stock is checked here and, with ``reserve`` (the default), taken off at once. With
    ``reserve=False`` the caller takes it later with ``reserve_order_stock``, in the same transaction:
    the dialogue does so after the payment link is issued, so the stock rows are not locked while the
    payment provider answers.

    Raises ``EmptyCart``, ``OutOfStock`` (stock changed since the item was added) and ``PriceMissing``.
    """
    lines = await priced_lines(session, cart)
    if not lines:
        raise EmptyCart()
    # Re-check tracked stock of every line first, then reserve it: a refused checkout changes nothing.
    # The items were read by ``priced_lines`` just above (one tenant-scoped query, reused here).
    items = await load_items(session, tenant_id=company.tenant_id, company_id=company.id,
                             ids={pl.item_id for pl in lines})
    holders: list[tuple[KnowledgeItem | KnowledgeVariant, int, str, str | None]] = []
    for pl in lines:
        item = items[pl.item_id]
        variant = next((v for v in item.variants if v.id == pl.variant_id), None)
        holder = variant if variant is not None else item
        if holder.stock is not None and holder.stock < pl.quantity:
            raise OutOfStock(pl.name, pl.variant, max(holder.stock, 0))
        holders.append((holder, pl.quantity, pl.name, pl.variant))
    await begin_write(session)
    if reserve:
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
    session: AsyncSession, holders: list[tuple[KnowledgeItem | KnowledgeVariant, int, str, str | None]]
) -> None:
    """Take ``quantity`` off each tracked stock with ONE conditional statement per item or variant
    (``UPDATE … SET stock = stock - :q WHERE id = … AND stock >= :q``), all in a savepoint.

    The check and the decrement are one statement, so concurrent checkouts can never sell more than
    there is, on SQLite (which ignores ``SELECT … FOR UPDATE``) as on PostgreSQL (a waiting UPDATE
    re-checks the condition after the other transaction commits). When a line no longer fits, the
    savepoint rolls back the lines already taken and ``OutOfStock`` names what is left."""
    async with session.begin_nested():
        for holder, quantity, name, variant in holders:
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
                raise OutOfStock(name, variant, max(now or 0, 0))
            set_committed_value(holder, "stock", left)


async def reserve_order_stock(session: AsyncSession, *, order: Order) -> None:
    """Take the quantities of ``order`` (placed with ``checkout(reserve=False)``) off tracked stock,
    as ``checkout`` does: one conditional ``UPDATE`` per item or variant, all or nothing. Each stock row
    stays locked until the transaction ends (PostgreSQL), so call it as late as possible.

    Raises ``OutOfStock`` (what is left; 0 for an item no longer in the knowledge base) when another
    checkout took the stock since ``checkout`` checked it."""
    lines = [ln for ln in order.lines if ln.item_id is not None]
    items = await load_items(session, tenant_id=order.tenant_id, company_id=order.company_id,
                             ids={ln.item_id for ln in lines if ln.item_id is not None})
    holders: list[tuple[KnowledgeItem | KnowledgeVariant, int, str, str | None]] = []
    for ln in lines:
        item = items.get(ln.item_id) if ln.item_id is not None else None
        if item is None:
            raise OutOfStock(ln.name, ln.variant, 0)
        variant = next((v for v in item.variants if v.id == ln.variant_id), None)
        holders.append((variant if variant is not None else item, ln.quantity, ln.name, ln.variant))
    await _reserve_stock(session, holders)


async def insert_with_next_number(
    session: AsyncSession, *, make: Callable[[int], Order], company_id: uuid.UUID
) -> Order:
    """Insert the order built by ``make(number)`` with the company's next number (1001, 1002...).

    PostgreSQL: the number is the next value of the company's own sequence (``core.order_numbers``;
    made with the company, or here, starting after its highest number, when it has none). ``nextval`` takes no lock
    and is not rolled back, so checkouts of one company never wait for each other, also while one of
    them waits for its payment provider (a Stripe call inside the same transaction); the price is a
    gap in the numbers when a checkout is rolled back (PostgreSQL docs, "Sequence Manipulation
    Functions": "nextval operations are never rolled back"). SQLite: the highest number plus one,
    under ``BEGIN IMMEDIATE`` (writers are serialised there anyway).

    The unique ``(company_id, number)`` constraint stays the guarantee: a number already taken (an
    order inserted with an explicit number) moves the sequence past the highest one and is retried
    in a savepoint. Raises ``RuntimeError`` after 10 conflicts in a row."""
    await begin_write(session)
    postgres = (await session.connection()).dialect.name == "postgresql"
    if postgres:
        await _ensure_sequence(session, company_id)
    for _attempt in range(10):
        if postgres:
            number = (await session.execute(_NEXTVAL, {"p_name": order_number_sequence(company_id)})).scalar_one()
        else:
            last = (await session.execute(_HIGHEST, {"p_company": company_id})).scalar_one()
            number = (last or 1000) + 1
        try:
            async with session.begin_nested():
                order = make(number)
                session.add(order)
                await session.flush()
            return order
        except IntegrityError:
            if postgres:  # numbered outside the sequence: continue after the highest
                await session.execute(_RESYNC, {"p_name": order_number_sequence(company_id), "p_company": company_id})
            continue
    raise RuntimeError(f"could not allocate an order number for company {company_id}")


_HIGHEST = select(func.max(Order.number)).where(Order.company_id == bindparam("p_company"))
_NEXTVAL = select(func.nextval(bindparam("p_name")))
_EXISTS = select(func.to_regclass(bindparam("p_name")))
# setval(seq, highest): the next nextval returns highest + 1.
_RESYNC = select(func.setval(bindparam("p_name"), select(func.max(Order.number)).where(
    Order.company_id == bindparam("p_company")).scalar_subquery()))


async def _ensure_sequence(session: AsyncSession, company_id: uuid.UUID) -> None:
    """Make the company's sequence if it has none (a company made before migration 0021 ran, or by a
    test), starting after its highest order number."""
    if (await session.execute(_EXISTS, {"p_name": order_number_sequence(company_id)})).scalar_one() is not None:
        return
    last = (await session.execute(_HIGHEST, {"p_company": company_id})).scalar_one()
    await create_order_numbers(session, company_id, start=max(int(last or 1000) + 1, 1))


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
