"""Checkout: frozen lines, stock reserved all-or-nothing, order numbers unique under concurrency."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from commerce.cart import add_to_cart, open_cart
from commerce.errors import OutOfStock
from commerce.orders import checkout
from core.accounts import create_company, create_tenant, inbox_of_kind
from core.models import Company, Contact, Conversation, KnowledgeItem, Order


async def _shop(sessionmaker, *, stock_a: int | None, stock_b: int | None):  # type: ignore[no-untyped-def]
    async with sessionmaker() as s, s.begin():
        tenant = await create_tenant(s, name="T", slug="t")
        company = await create_company(s, tenant_id=tenant.id, slug="shop", name="Shop", currency="EUR")
        inbox = await inbox_of_kind(s, company, "webchat")
        a = KnowledgeItem(tenant_id=tenant.id, company_id=company.id, name="Vase", price_minor=2500, currency="EUR",
                          stock=stock_a, attributes={})
        b = KnowledgeItem(tenant_id=tenant.id, company_id=company.id, name="Candle", price_minor=900, currency="EUR",
                          stock=stock_b, attributes={})
        s.add_all([a, b])
        await s.flush()
        return company.id, inbox.id, tenant.id, a.id, b.id


async def _conversation(s, *, tenant_id, company_id, inbox_id):  # type: ignore[no-untyped-def]
    contact = Contact(tenant_id=tenant_id, company_id=company_id)
    s.add(contact)
    await s.flush()
    conv = Conversation(tenant_id=tenant_id, company_id=company_id, inbox_id=inbox_id, contact_id=contact.id, state={})
    s.add(conv)
    await s.flush()
    return conv


async def test_refused_checkout_reserves_nothing(sessionmaker) -> None:  # type: ignore[no-untyped-def]
    company_id, inbox_id, tenant_id, vase, candle = await _shop(sessionmaker, stock_a=5, stock_b=3)
    async with sessionmaker() as s, s.begin():
        company = await s.get(Company, company_id)
        conv = await _conversation(s, tenant_id=tenant_id, company_id=company_id, inbox_id=inbox_id)
        cart = await open_cart(s, conv)
        await add_to_cart(s, cart, item_id=vase, variant_id=None, quantity=2)
        await add_to_cart(s, cart, item_id=candle, variant_id=None, quantity=3)
    async with sessionmaker() as s, s.begin():  # someone bought two candles meanwhile
        (await s.get(KnowledgeItem, candle)).stock = 1
    with pytest.raises(OutOfStock) as err:
        async with sessionmaker() as s, s.begin():
            company = await s.get(Company, company_id)
            conv = await s.get(Conversation, conv.id)
            cart = await open_cart(s, conv)
            await checkout(s, cart=cart, conversation=conv, company=company, customer_name="A",
                           delivery_address="B")
    assert err.value.item_name == "Candle" and err.value.available == 1
    async with sessionmaker() as s:
        assert (await s.get(KnowledgeItem, vase)).stock == 5
        assert (await s.execute(select(Order))).first() is None


async def test_concurrent_checkouts_get_distinct_numbers(sessionmaker) -> None:  # type: ignore[no-untyped-def]
    company_id, inbox_id, tenant_id, vase, _candle = await _shop(sessionmaker, stock_a=None, stock_b=None)
    conv_ids = []
    async with sessionmaker() as s, s.begin():
        for _ in range(20):
            conv = await _conversation(s, tenant_id=tenant_id, company_id=company_id, inbox_id=inbox_id)
            cart = await open_cart(s, conv)
            await add_to_cart(s, cart, item_id=vase, variant_id=None, quantity=1)
            conv_ids.append(conv.id)

    async def one(conv_id):  # type: ignore[no-untyped-def]
        async with sessionmaker() as s, s.begin():
            company = await s.get(Company, company_id)
            conv = await s.get(Conversation, conv_id)
            cart = await open_cart(s, conv)
            order = await checkout(s, cart=cart, conversation=conv, company=company, customer_name="C",
                                   delivery_address="D")
            return order.number

    numbers = await asyncio.gather(*[one(c) for c in conv_ids])
    assert sorted(numbers) == list(range(1001, 1021))
    async with sessionmaker() as s:
        orders = list((await s.execute(select(Order))).scalars())
        assert {o.total_minor for o in orders} == {2500} and len(orders) == 20
