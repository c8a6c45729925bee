"""Checkouts of one shop run side by side: no lock that every checkout of a company (or of an item)
needs is held while the payment provider makes a link (a Stripe call takes a second or more).

PostgreSQL only: SQLite serialises all writers by design (``core.db.begin_write``)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from alembic import command
from sqlalchemy import func, select, text

from commerce.providers import PaymentLink, ProviderRegistry
from core.db import create_engine
from core.migrate import alembic_config, upgrade
from core.models import Base, KnowledgeItem, Order
from core.order_numbers import order_number_sequence
from tests.conftest import _pg_admin, _pg_admin_on
from tests.test_bot import Chat, Shop, apparel, create_shop, make_engine, orders_of

VASE = {"name": "Glass Vase", "price": 1500, "stock": 5}
SHIRT = "Ocean Blue Shirt"


@pytest.fixture
def database_url(pg_database: str) -> Iterator[str]:
    """PostgreSQL only (this module overrides the two-backend fixture of ``conftest``)."""
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    asyncio.run(_pg_admin_on(pg_database, f"TRUNCATE {tables} CASCADE"))
    yield pg_database


class GatedProvider:
    """Payment provider double: ``create_link`` returns only once ``parties`` checkouts are inside it
    at the same time (an ``asyncio.Barrier``; broken after 10 s). If one checkout's provider call kept
    another checkout waiting on a lock, the barrier would never fill and both would fail."""

    name: ClassVar[str] = "gated"

    def __init__(self, *, parties: int) -> None:
        self.barrier = asyncio.Barrier(parties)
        self.issued: list[str] = []
        self.expired: list[str | None] = []

    async def create_link(self, *, order: Order, **kwargs: Any) -> PaymentLink:
        await asyncio.wait_for(self.barrier.wait(), timeout=10)
        ref = f"cs_{order.number}_{uuid.uuid4().hex[:8]}"
        self.issued.append(ref)
        return PaymentLink(checkout_url=f"https://pay.example/{ref}", provider_ref=ref, expires_at=None)

    async def expire_link(self, *, company: Any, provider_ref: str | None) -> None:
        self.expired.append(provider_ref)


async def _at_the_last_step(chat: Chat, item: str) -> None:
    await chat.ask(f"add {item}")
    await chat.ask("checkout")
    await chat.ask(chat.contact.title())
    await chat.ask("1 Main Street")


@pytest.mark.parametrize("item", ["ocean blue shirt", "glass vase"], ids=["untracked-stock", "same-stocked-item"])
async def test_two_customers_of_one_shop_get_their_links_at_the_same_time(sessionmaker, item: str) -> None:
    shop = await create_shop(sessionmaker, slug="vases", name="Vases", payment_provider="gated",
                             items=[VASE, {"name": SHIRT, "price": 3000}])
    provider = GatedProvider(parties=2)
    engine = make_engine(ProviderRegistry(providers={"gated": provider}))
    chats = [Chat(sessionmaker, shop, engine=engine, contact=name) for name in ("ann", "bob")]
    for chat in chats:
        await _at_the_last_step(chat, item)

    replies = await asyncio.gather(*(chat.ask("skip") for chat in chats))

    assert all(reply.url and reply.url.startswith("https://pay.example/cs_") for reply in replies)
    assert sorted(o.number for o in await orders_of(sessionmaker, shop)) == [1001, 1002]
    assert {f"Order #{n}" in r.text for r in replies for n in (1001, 1002)} == {True, False}
    async with sessionmaker() as s:
        vase = (await s.execute(select(KnowledgeItem).where(KnowledgeItem.name == VASE["name"]))).scalar_one()
    assert vase.stock == (3 if item == "glass vase" else 5)


async def test_stock_taken_while_a_link_was_made_withdraws_that_link(sessionmaker) -> None:
    """One vase left, two customers at the last step: both links are made at once; the second to take
    the stock is told it ran out, its link is expired at the provider, and nothing of its order stays."""
    shop = await create_shop(sessionmaker, slug="vases", name="Vases", payment_provider="gated",
                             items=[{**VASE, "stock": 1}])
    provider = GatedProvider(parties=2)
    engine = make_engine(ProviderRegistry(providers={"gated": provider}))
    chats = [Chat(sessionmaker, shop, engine=engine, contact=name) for name in ("ann", "bob")]
    for chat in chats:
        await _at_the_last_step(chat, "glass vase")

    replies = await asyncio.gather(*(chat.ask("skip") for chat in chats))

    [won] = [r for r in replies if r.url]
    [lost] = [r for r in replies if not r.url]
    assert "Glass Vase is no longer available in that quantity (0 left)" in lost.text
    [order] = await orders_of(sessionmaker, shop)
    assert f"Order #{order.number}" in won.text
    won_ref = won.url.rsplit("/", 1)[1]
    assert sorted(provider.issued) == sorted([won_ref, *provider.expired])  # the other link was withdrawn
    async with sessionmaker() as s:
        vase = (await s.execute(select(KnowledgeItem))).scalar_one()
        assert vase.stock == 0
        assert (await s.execute(select(func.count()).select_from(Order))).scalar_one() == 1
    loser = chats[replies.index(lost)]
    cart = await loser.ask("cart")
    assert "Glass Vase" in cart.text  # the cart is still there, to change and check out again


async def test_a_company_without_a_sequence_continues_after_its_highest_order_number(sessionmaker) -> None:
    """A company whose orders were numbered before sequences (made by an older version) gets its
    sequence at its next checkout, continuing after its highest number."""
    shop = await apparel(sessionmaker)
    async with sessionmaker() as s, s.begin():
        await s.execute(text(f"DROP SEQUENCE {order_number_sequence(shop.company_id)}"))
        s.add(_order(shop, 1041))
    chat = Chat(sessionmaker, shop)
    await _at_the_last_step(chat, "ocean blue shirt")
    assert "Order #1042" in (await chat.ask("skip")).text


async def test_a_number_taken_outside_the_sequence_is_skipped(sessionmaker) -> None:
    """An order already holds the sequence's next number (an older worker during an upgrade numbered
    it as highest plus one): the checkout moves the sequence past the highest number and succeeds."""
    shop = await apparel(sessionmaker)
    async with sessionmaker() as s, s.begin():
        s.add(_order(shop, 1001))
        s.add(_order(shop, 1002))
    chat = Chat(sessionmaker, shop)
    await _at_the_last_step(chat, "ocean blue shirt")
    assert "Order #1003" in (await chat.ask("skip")).text
    assert [o.number for o in await orders_of(sessionmaker, shop)] == [1001, 1002, 1003]


def _order(shop: Shop, number: int) -> Order:
    return Order(tenant_id=shop.tenant_id, company_id=shop.company_id, number=number, status="pending_payment",
                 payment_status="no_payment_link", total_minor=100, currency="USD")


async def _sql(url: str, *statements: tuple[str, dict[str, Any]]) -> list[Any]:
    """Run ``(sql, params)`` statements in one transaction; each gives its first column's value or None."""
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            results = [await conn.execute(text(sql), params) for sql, params in statements]
            return [r.scalar() if r.returns_rows else None for r in results]
    finally:
        await engine.dispose()


COMPANY_AT_0020 = ("INSERT INTO companies (id, tenant_id, slug, human_id, name, type, currency, language, timezone, "
                   "payment_provider, kb_version, settings, created_at) VALUES (:id, :tenant, :slug, :slug, 'x', "
                   "'product', 'USD', 'en', 'UTC', 'manual', 0, '{}', now())")
ORDER_AT_0020 = ("INSERT INTO orders (id, tenant_id, company_id, number, status, payment_status, total_minor, "
                 "currency, created_at) VALUES (gen_random_uuid(), :tenant, :company, :number, 'paid', 'paid', 100, "
                 "'USD', now())")


def test_migration_gives_every_company_a_sequence_after_its_highest_number(pg_database: str) -> None:
    """Migration 0021 on a database of 0020: a company with orders continues after its highest number,
    one without starts at 1001; downgrading drops the sequences."""
    name = f"chatcommerce_mig_{uuid.uuid4().hex[:10]}"
    url = pg_database.rsplit("/", 1)[0] + "/" + name
    asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    try:
        upgrade(url, "0020")
        tenant, busy, new = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
        asyncio.run(_sql(
            url, ("INSERT INTO tenants (id, name, slug, created_at) VALUES (:id, 't', 't', now())", {"id": tenant}),
            (COMPANY_AT_0020, {"id": busy, "tenant": tenant, "slug": "busy"}),
            (COMPANY_AT_0020, {"id": new, "tenant": tenant, "slug": "new"}),
            *((ORDER_AT_0020, {"tenant": tenant, "company": busy, "number": n}) for n in (1001, 1041))))
        upgrade(url, "head")
        nextval = [(f"SELECT nextval('{order_number_sequence(c)}')", {}) for c in (busy, new)]
        assert asyncio.run(_sql(url, *nextval)) == [1042, 1001]
        command.downgrade(alembic_config(url), "0020")
        exists = [("SELECT to_regclass(:name)::text", {"name": order_number_sequence(c)}) for c in (busy, new)]
        assert asyncio.run(_sql(url, *exists)) == [None, None]
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
