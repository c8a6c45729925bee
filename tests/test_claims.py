"""Claims that must hold on SQLite (where ``SELECT … FOR UPDATE`` is a no-op) as well as on PostgreSQL.

Each test races the real code paths against each other (several sessions, each its own database
connection) and counts what a customer would notice: how many times the provider was asked to send
one reply, how many payment confirmations one order produced, how many units of one item were sold.

The channel is ``CountingChannel``, a test double for a messenger that records every send and yields
to the event loop mid-send (as an HTTP call would), so concurrent deliveries really overlap.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from typing import ClassVar

import pytest
from sqlalchemy import func, select

from bot.messages import OutboundMessage
from channels.base import Channel, ParsedInbound, RawRequest
from channels.pipeline import Pipeline
from channels.registry import ChannelRegistry
from commerce.cart import add_to_cart, open_cart
from commerce.errors import OutOfStock
from commerce.orders import checkout
from commerce.payments import mark_paid
from core.accounts import create_company, create_tenant
from core.conversations import append_message
from core.models import Company, Contact, ContactInbox, Conversation, Inbox, KnowledgeItem, Message, Order, OrderLine


class CountingChannel(Channel):
    """Test double for a messenger: records ``(to, text)`` of every send."""

    kind: ClassVar[str] = "counting"
    sent: ClassVar[list[tuple[str, str]]] = []

    async def verify(self, request: RawRequest) -> None:
        return None

    def parse(self, request: RawRequest) -> list[ParsedInbound]:
        return []

    async def send_text(self, *, to: str, text: str) -> str | None:
        await asyncio.sleep(0.005)  # an HTTP round trip: other deliveries run meanwhile
        CountingChannel.sent.append((to, text))
        return f"prov-{len(CountingChannel.sent)}"


class NoResponder:
    """Test double for the dialogue engine; these tests only deliver replies already stored."""

    async def respond(self, session, *, inbound, conversation, company):  # type: ignore[no-untyped-def]
        return [OutboundMessage(text=f"echo: {inbound.text}")]


@pytest.fixture
def registry() -> ChannelRegistry:
    CountingChannel.sent = []
    reg = ChannelRegistry.default()
    reg.register(CountingChannel)
    return reg


async def _shop(sessionmaker, *, kind: str = "counting") -> tuple[Company, Inbox]:  # type: ignore[no-untyped-def]
    async with sessionmaker() as s, s.begin():
        tenant = await create_tenant(s, name="Shop", slug="shop")
        company = await create_company(s, tenant_id=tenant.id, slug="shop", name="Shop")
        inbox = Inbox(tenant_id=tenant.id, company_id=company.id, kind=kind, name="Messenger",
                      settings={"buffer_seconds": 0})
        s.add(inbox)
        await s.flush()
        return company, inbox


async def _conversation(s, inbox: Inbox, contact_id: str) -> Conversation:  # type: ignore[no-untyped-def]
    contact = Contact(tenant_id=inbox.tenant_id, company_id=inbox.company_id, name=contact_id)
    s.add(contact)
    await s.flush()
    s.add(ContactInbox(tenant_id=inbox.tenant_id, contact_id=contact.id, inbox_id=inbox.id, source_id=contact_id))
    conv = Conversation(tenant_id=inbox.tenant_id, company_id=inbox.company_id, inbox_id=inbox.id,
                        contact_id=contact.id, status="open", state={})
    s.add(conv)
    await s.flush()
    return conv


async def _pending_replies(sessionmaker, inbox: Inbox, count: int) -> list[uuid.UUID]:  # type: ignore[no-untyped-def]
    """``count`` conversations, each with one stored-but-unsent reply; returns the conversation ids."""
    ids = []
    async with sessionmaker() as s, s.begin():
        for i in range(count):
            conv = await _conversation(s, inbox, f"c{i}")
            await append_message(s, conversation=conv, direction="out", sender="bot", text=f"reply {i}",
                                 channel=inbox.kind, payload={})
            ids.append(conv.id)
    return ids


async def _statuses(sessionmaker) -> Counter[str]:  # type: ignore[no-untyped-def]
    async with sessionmaker() as s:
        rows = await s.execute(select(Message.status).where(Message.direction == "out"))
        return Counter(r[0] for r in rows)


async def test_concurrent_deliveries_send_each_reply_once(sessionmaker, registry) -> None:  # type: ignore[no-untyped-def]
    """20 replies; for each, the sweep (``deliver_pending()``) and the conversation's own delivery
    (``deliver_pending(conversation_id=…)``) run at once, twice over: 20 sends, not 40."""
    _company, inbox = await _shop(sessionmaker)
    conversations = await _pending_replies(sessionmaker, inbox, 20)
    pipelines = [Pipeline(sessionmaker=sessionmaker, responder=NoResponder(), channels=registry) for _ in range(2)]
    calls = []
    for cid in conversations:
        for p in pipelines:
            calls += [p.deliver_pending(), p.deliver_pending(conversation_id=cid)]
    results = await asyncio.gather(*calls)
    sends = Counter(text for _to, text in CountingChannel.sent)
    assert sends == Counter({f"reply {i}": 1 for i in range(20)})
    assert sum(results) == 20  # every call reports only what it sent itself
    assert await _statuses(sessionmaker) == Counter({"sent": 20})


async def test_recover_sweep_and_own_delivery_race_for_one_answer(sessionmaker, registry) -> None:  # type: ignore[no-untyped-def]
    """A process restarts (``recover()``), the sweep runs and a new message is answered at the same
    moment: every reply reaches the customer exactly once."""
    _company, inbox = await _shop(sessionmaker)
    backlog = await _pending_replies(sessionmaker, inbox, 10)
    first = Pipeline(sessionmaker=sessionmaker, responder=NoResponder(), channels=registry)
    second = Pipeline(sessionmaker=sessionmaker, responder=NoResponder(), channels=registry)
    incoming = ParsedInbound(contact_source_id="c0", text="still there?", received_at=_now(), source_id="m-1")
    await asyncio.gather(
        first.recover(), second.recover(), first.deliver_pending(), second.deliver_pending(),
        first.receive(inbox_id=inbox.id, parsed=incoming),
        *[second.deliver_pending(conversation_id=cid) for cid in backlog],
    )
    sends = Counter(text for _to, text in CountingChannel.sent)
    assert sends == Counter({**{f"reply {i}": 1 for i in range(10)}, "echo: still there?": 1})
    assert await _statuses(sessionmaker) == Counter({"sent": 11})


async def test_two_processes_answer_a_stored_message_once(sessionmaker, registry) -> None:  # type: ignore[no-untyped-def]
    """Two pipelines (two server processes, or a server and the CLI) both pick up the same stored,
    unanswered messages: one answer is computed, stored and sent."""
    _company, inbox = await _shop(sessionmaker)
    first = Pipeline(sessionmaker=sessionmaker, responder=NoResponder(), channels=registry)
    second = Pipeline(sessionmaker=sessionmaker, responder=NoResponder(), channels=registry)
    conversations = []
    for i in range(5):
        stored, _window = await first.store(
            inbox_id=inbox.id,
            parsed=ParsedInbound(contact_source_id=f"c{i}", text=f"hello {i}", received_at=_now(), source_id=f"m{i}"))
        conversations.append(stored.conversation_id)
    await asyncio.gather(*[p.process(conversation_id=cid) for cid in conversations for p in (first, second)],
                         first.recover(), second.recover())
    sends = Counter(text for _to, text in CountingChannel.sent)
    assert sends == Counter({f"echo: hello {i}": 1 for i in range(5)})
    assert await _statuses(sessionmaker) == Counter({"sent": 5})


async def test_failed_send_is_still_flagged_once(sessionmaker, registry) -> None:  # type: ignore[no-untyped-def]
    """The claim does not change failure handling: a refused send is ``failed``, the conversation is
    flagged for a manager, and no later delivery retries it."""

    class Refusing(CountingChannel):
        kind: ClassVar[str] = "refusing"

        async def send_text(self, *, to: str, text: str) -> str | None:
            await asyncio.sleep(0.005)
            CountingChannel.sent.append((to, text))
            raise ConnectionError("provider unreachable")

    registry.register(Refusing)
    _company, inbox = await _shop(sessionmaker, kind="refusing")
    [cid] = await _pending_replies(sessionmaker, inbox, 1)
    pipeline = Pipeline(sessionmaker=sessionmaker, responder=NoResponder(), channels=registry)
    results = await asyncio.gather(*[pipeline.deliver_pending() for _ in range(4)],
                                   *[pipeline.deliver_pending(conversation_id=cid) for _ in range(4)])
    assert sum(results) == 0
    assert len(CountingChannel.sent) == 1
    assert await pipeline.deliver_pending() == 0 and len(CountingChannel.sent) == 1
    assert await _statuses(sessionmaker) == Counter({"failed": 1})
    async with sessionmaker() as s:
        assert (await s.get(Conversation, cid)).status == "pending"


async def _order(sessionmaker, inbox: Inbox) -> uuid.UUID:  # type: ignore[no-untyped-def]
    async with sessionmaker() as s, s.begin():
        conv = await _conversation(s, inbox, "buyer")
        order = Order(tenant_id=inbox.tenant_id, company_id=inbox.company_id, conversation_id=conv.id,
                      contact_id=conv.contact_id, number=1001, total_minor=2500, currency="EUR")
        order.lines = [OrderLine(tenant_id=inbox.tenant_id, name="Roses", quantity=1, unit_price_minor=2500)]
        s.add(order)
        await s.flush()
        return order.id


async def test_concurrent_mark_paid_confirms_once(sessionmaker, registry) -> None:  # type: ignore[no-untyped-def]
    """A manager marks an order paid while the payment page and a webhook do the same (each its own
    transaction, each having read the order unpaid): one ``True``, one confirmation message."""
    _company, inbox = await _shop(sessionmaker)
    order_id = await _order(sessionmaker, inbox)

    async def pay(method: str) -> bool:
        async with sessionmaker() as s, s.begin():
            order = await s.get(Order, order_id)
            assert order.payment_status != "paid"
            await asyncio.sleep(0.01)  # everyone has read the order unpaid before anyone writes
            return await mark_paid(s, order=order, method=method)

    results = await asyncio.gather(*[pay(m) for m in ("cash", "card", "test", "bank_transfer") * 2])
    assert sorted(results) == [False] * 7 + [True]
    async with sessionmaker() as s:
        confirmations = (await s.execute(
            select(func.count()).select_from(Message).where(Message.direction == "out"))).scalar_one()
        order = await s.get(Order, order_id)
    assert confirmations == 1
    assert order.payment_status == "paid" and order.status == "paid"


async def test_concurrent_checkouts_never_sell_more_than_the_stock(sessionmaker, registry) -> None:  # type: ignore[no-untyped-def]
    """Three units in stock, eight customers check out one each at the same moment: three orders,
    five ``OutOfStock``, stock 0 (never negative)."""
    company, inbox = await _shop(sessionmaker)
    async with sessionmaker() as s, s.begin():
        item = KnowledgeItem(tenant_id=company.tenant_id, company_id=company.id, kind="product", name="Vase",
                             price_minor=1500, currency="EUR", stock=3)
        s.add(item)
        await s.flush()
        convs = [await _conversation(s, inbox, f"buyer{i}") for i in range(8)]
        for conv in convs:
            await add_to_cart(s, await open_cart(s, conv), item_id=item.id, variant_id=None, quantity=1)
        item_id, conv_ids = item.id, [c.id for c in convs]

    async def buy(conv_id: uuid.UUID) -> str:
        async with sessionmaker() as s, s.begin():
            conv = await s.get(Conversation, conv_id)
            cart = await open_cart(s, conv)
            shop = await s.get(Company, company.id)
            try:
                await checkout(s, cart=cart, conversation=conv, company=shop, customer_name="x",
                               delivery_address="y")
            except OutOfStock:
                return "out of stock"
            return "ordered"

    outcomes = Counter(await asyncio.gather(*[buy(c) for c in conv_ids]))
    assert outcomes == Counter({"ordered": 3, "out of stock": 5})
    async with sessionmaker() as s:
        assert (await s.get(KnowledgeItem, item_id)).stock == 0
        assert (await s.execute(select(func.count()).select_from(Order))).scalar_one() == 3


def _now():  # type: ignore[no-untyped-def]
    from core.timeutil import utcnow

    return utcnow()
