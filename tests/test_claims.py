"""Claims that must hold on SQLite (where ``SELECT … FOR UPDATE`` is a no-op) as well as on PostgreSQL.

Each test races the real code paths against each other (several sessions, each its own database
connection) and counts what a customer would notice: how many times the provider was asked to send
one reply, how many payment confirmations one order produced, how many units of one item were sold.

The channel is ``CountingChannel``, a test double for a messenger that records every send and yields
to the event loop mid-send (as an HTTP call would), so concurrent deliveries really overlap.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import ClassVar

import pytest
from sqlalchemy import func, select

from bot.messages import OutboundMessage
from channels.base import Channel, ParsedInbound, RawRequest, SignatureError
from channels.email_text import MAX_BODY_CHARS, parse_mail
from channels.pipeline import ChannelFactory, Pipeline, cap_inbound_text
from channels.registry import ChannelRegistry
from channels.waha import WahaChannel
from channels.waha import sign as waha_sign
from commerce.cart import add_to_cart, open_cart
from commerce.errors import OutOfStock
from commerce.orders import checkout
from commerce.payments import PaymentStateError, expire_payment, issue_payment_link, mark_paid
from commerce.providers import ProviderRegistry
from core.accounts import create_company, create_tenant
from core.conversations import append_message
from core.models import (
    Company,
    Contact,
    ContactInbox,
    Conversation,
    Inbox,
    KnowledgeItem,
    Message,
    Order,
    OrderLine,
    Payment,
)
from tests.doubles import WebhookReceiver
from tests.doubles.waha_server import FakeWaha

WAHA_HMAC_KEY = "whk_claims_0123456789"


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

    methods = ("cash", "card", "test", "bank_transfer") * 2
    everyone_read = asyncio.Barrier(len(methods))

    async def pay(method: str) -> bool:
        async with sessionmaker() as s, s.begin():
            order = await s.get(Order, order_id)
            assert order.payment_status != "paid"
            # everyone has read the order unpaid before anyone writes (a sleep was not enough on a busy machine)
            await everyone_read.wait()
            return await mark_paid(s, order=order, method=method)

    results = await asyncio.gather(*[pay(m) for m in methods])
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


# -- inbound text cap ------------------------------------------------------------------------------


class LengthResponder:
    """Test double for the dialogue engine: records the length of every text it is asked to answer."""

    def __init__(self) -> None:
        self.lengths: list[int] = []

    async def respond(self, session, *, inbound, conversation, company):  # type: ignore[no-untyped-def]
        self.lengths.append(len(inbound.text))
        return [OutboundMessage(text=f"got {len(inbound.text)} characters")]


@pytest.fixture
async def waha() -> AsyncIterator[FakeWaha]:
    async with FakeWaha() as server:
        server.add_session("default", config={"webhooks": []})
        yield server


async def _waha_inbox(sessionmaker, waha: FakeWaha) -> uuid.UUID:  # type: ignore[no-untyped-def]
    async with sessionmaker() as s, s.begin():
        tenant = await create_tenant(s, name="Shop", slug="shop")
        company = await create_company(s, tenant_id=tenant.id, slug="shop", name="Shop")
        inbox = Inbox(tenant_id=tenant.id, company_id=company.id, kind="whatsapp_waha", name="WhatsApp",
                      credentials=json.dumps({"api_key": waha.api_key, "hmac_key": WAHA_HMAC_KEY}),
                      settings={"base_url": waha.url, "session": "default", "buffer_seconds": 0})
        s.add(inbox)
        await s.flush()
        return inbox.id


async def _deliver_like_the_webhook_route(pipeline: Pipeline, factory: ChannelFactory, sessionmaker,  # type: ignore[no-untyped-def]
                                          inbox_id: uuid.UUID, raw: RawRequest) -> None:
    """What ``POST /webhooks/{kind}/{inbox_id}`` does with a delivery: verify, parse, store and answer."""
    async with sessionmaker() as s:
        inbox = await s.get(Inbox, inbox_id)
    channel = factory.build(inbox)
    try:
        await channel.verify(raw)
        messages, _status = await channel.parse_delivery(raw)
        for parsed in messages:
            await pipeline.receive(inbox_id=inbox_id, parsed=parsed)
    finally:
        await channel.aclose()


async def _stored_inbound(sessionmaker) -> Message:  # type: ignore[no-untyped-def]
    async with sessionmaker() as s:
        return (await s.execute(select(Message).where(Message.direction == "in"))).scalar_one()


async def test_long_whatsapp_message_is_stored_cut_with_a_note_and_answered_once(sessionmaker, waha) -> None:  # type: ignore[no-untyped-def]
    """A signed WAHA delivery (made by the WAHA double over HTTP) whose text is longer than WhatsApp
    allows: the row keeps the first 65,536 characters and ``truncated_from``; one reply is sent."""
    async with WebhookReceiver() as receiver:
        waha.sessions["default"].config["webhooks"] = [
            {"url": receiver.url + "/webhooks/whatsapp_waha/x", "events": ["message"], "hmac": {"key": WAHA_HMAC_KEY}}]
        inbox_id = await _waha_inbox(sessionmaker, waha)
        registry = ChannelRegistry.default()
        factory = ChannelFactory(channels=registry, decrypt=lambda value: value)
        responder = LengthResponder()
        pipeline = Pipeline(sessionmaker=sessionmaker, responder=responder, channels=registry, channel_factory=factory)
        text = "Hello, I would like to order " + "roses " * 150_000  # ~900,000 characters
        await waha.emit_message(from_="15557654321@c.us", body=text)
        [raw] = await receiver.wait_for(1)
        assert len(raw.body) > WahaChannel.parse_in_thread_above  # parsed off the event loop
        await _deliver_like_the_webhook_route(pipeline, factory, sessionmaker, inbox_id, raw)
        await _deliver_like_the_webhook_route(pipeline, factory, sessionmaker, inbox_id, raw)  # a redelivery
        await pipeline.drain()
    stored = await _stored_inbound(sessionmaker)
    assert stored.text == text.strip()[:65_536]
    assert stored.payload["truncated_from"] == len(text.strip())
    assert responder.lengths == [65_536]
    assert [r.json["text"] for r in waha.accepted_messages] == ["got 65536 characters"]


async def test_twenty_megabyte_signed_delivery_is_cut_and_answered_once(sessionmaker, waha) -> None:  # type: ignore[no-untyped-def]
    """The issue's case: a correctly signed 20 MB WhatsApp message. Stored cut to WhatsApp's maximum
    with the original length noted; the bot sees (and answers) the cut text once."""
    inbox_id = await _waha_inbox(sessionmaker, waha)
    registry = ChannelRegistry.default()
    factory = ChannelFactory(channels=registry, decrypt=lambda value: value)
    responder = LengthResponder()
    pipeline = Pipeline(sessionmaker=sessionmaker, responder=responder, channels=registry, channel_factory=factory)
    text = "x" * 20_000_000
    envelope = {"event": "message", "session": "default", "me": {"id": "15550001111@c.us"},
                "payload": {"id": "false_15557654321@c.us_BIG", "timestamp": 1_700_000_000,
                            "from": "15557654321@c.us", "fromMe": False, "body": text}}
    body = json.dumps(envelope, separators=(",", ":")).encode()
    raw = RawRequest(headers={"x-webhook-hmac": waha_sign(body, WAHA_HMAC_KEY), "x-webhook-hmac-algorithm": "sha512"},
                     body=body)
    await _deliver_like_the_webhook_route(pipeline, factory, sessionmaker, inbox_id, raw)
    await pipeline.drain()
    stored = await _stored_inbound(sessionmaker)
    assert len(stored.text) == 65_536 and stored.payload["truncated_from"] == 20_000_000
    assert responder.lengths == [65_536]
    assert [r.json["text"] for r in waha.accepted_messages] == ["got 65536 characters"]
    forged = RawRequest(headers={"x-webhook-hmac": "0" * 128}, body=body)
    with pytest.raises(SignatureError):  # the large body is still verified (hashed off the loop)
        await _deliver_like_the_webhook_route(pipeline, factory, sessionmaker, inbox_id, forged)


def test_text_within_the_limit_is_kept_as_is() -> None:
    assert cap_inbound_text("hello", limit=5) == ("hello", {})
    assert cap_inbound_text("hello!", limit=5) == ("hello", {"truncated_from": 6})
    with pytest.raises(ValueError):
        cap_inbound_text("hello", limit=0)


def test_each_channel_declares_its_providers_maximum() -> None:
    """Telegram: a text message is 1-4096 characters (Bot API sendMessage); WhatsApp lets a customer
    send 65,536; the web chat accepts 4,000; e-mail is capped at 20,000 characters after quotes."""
    registry = ChannelRegistry.default()
    limits = {kind: registry.get(kind).max_inbound_text for kind in ("telegram", "whatsapp_waha", "webchat", "email")}
    assert limits == {"telegram": 4096, "whatsapp_waha": 65_536, "webchat": 4000, "email": 20_000}


def test_long_mail_is_not_cut_by_the_parser_but_bounded() -> None:
    """The mail parser leaves the cut to the pipeline (so the note is kept) but cleans at most
    ``MAX_BODY_CHARS`` of body text however large the mail is."""
    words = "Please send me the catalogue. " * 2_000  # 60,000 characters of the customer's own words
    raw = (f"From: Ann <ann@example.com>\r\nTo: shop@example.com\r\nSubject: order\r\n"
           f"Message-ID: <m1@example.com>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{words}\r\n"
           f"On Mon, 4 Mar 2024 at 10:00, Shop <shop@example.com> wrote:\r\n> old text\r\n").encode()
    assert parse_mail(raw).text == words.strip()
    huge = (b"From: ann@example.com\r\nContent-Type: text/plain\r\n\r\n" + b"1:\r\n" * 3_000_000)
    assert len(parse_mail(huge).text) <= MAX_BODY_CHARS


async def test_a_link_expired_while_the_customer_pays_leaves_the_order_paid(sessionmaker, registry) -> None:  # type: ignore[no-untyped-def]
    """The sweep read an unpaid order to expire its link (a hold ran out); before it writes, the
    payment webhook marks the order paid. The order and its payment stay paid."""
    company, inbox = await _shop(sessionmaker)
    order_id = await _order(sessionmaker, inbox)
    providers = ProviderRegistry.default(public_base_url="http://shop.test")
    async with sessionmaker() as s, s.begin():
        shop = await s.get(Company, company.id)
        payment = await issue_payment_link(s, order=await s.get(Order, order_id), company=shop, providers=providers)
        payment_id = payment.id
    async with sessionmaker() as sweep:
        order = await sweep.get(Order, order_id)
        payment = await sweep.get(Payment, payment_id)
        shop = await sweep.get(Company, company.id)
        assert order.payment_status == payment.status == "payment_link_sent"  # what the sweep saw
        async with sessionmaker() as webhook, webhook.begin():
            assert await mark_paid(webhook, order=await webhook.get(Order, order_id), method="card")
        await expire_payment(sweep, order=order, payment=payment, company=shop, providers=providers)
        await sweep.commit()
        assert order.payment_status == "paid"
    async with sessionmaker() as s:
        assert (await s.get(Order, order_id)).payment_status == "paid"
        assert (await s.get(Payment, payment_id)).status == "paid"


async def test_a_burst_after_a_resolved_conversation_opens_one_new_conversation(sessionmaker, registry) -> None:  # type: ignore[no-untyped-def]
    """A customer whose last conversation was resolved writes again, several messages delivered at
    once (parallel webhooks): they land in ONE new conversation, not one each."""
    _company, inbox = await _shop(sessionmaker)
    pipeline = Pipeline(sessionmaker=sessionmaker, responder=NoResponder(), channels=registry)
    first, _ = await pipeline.store(inbox_id=inbox.id, parsed=ParsedInbound(
        contact_source_id="ann", text="hi", received_at=_now(), source_id="a0"))
    async with sessionmaker() as s, s.begin():
        (await s.get(Conversation, first.conversation_id)).status = "resolved"
    results = await asyncio.gather(*[
        pipeline.store(inbox_id=inbox.id, parsed=ParsedInbound(contact_source_id="ann", text=f"again {i}",
                                                               received_at=_now(), source_id=f"a{i}"))
        for i in range(1, 7)])
    assert len({r.conversation_id for r, _window in results}) == 1
    async with sessionmaker() as s:
        open_ = (await s.execute(select(func.count()).select_from(Conversation)
                                 .where(Conversation.status != "resolved"))).scalar_one()
    assert open_ == 1


async def test_a_link_issued_while_the_order_is_paid_does_not_unpay_it(sessionmaker, registry) -> None:  # type: ignore[no-untyped-def]
    """The bot creates a new payment link from an order it read unpaid; meanwhile a manager marks the
    order paid. The order stays paid, the new link is recorded expired and the bot is told."""
    company, inbox = await _shop(sessionmaker)
    order_id = await _order(sessionmaker, inbox)
    providers = ProviderRegistry.default(public_base_url="http://shop.test")
    async with sessionmaker() as bot:
        order = await bot.get(Order, order_id)
        shop = await bot.get(Company, company.id)
        async with sessionmaker() as manager, manager.begin():
            assert await mark_paid(manager, order=await manager.get(Order, order_id), method="cash")
        with pytest.raises(PaymentStateError):
            await issue_payment_link(bot, order=order, company=shop, providers=providers)
        await bot.commit()
        assert order.payment_status == "paid"
    async with sessionmaker() as s:
        assert (await s.get(Order, order_id)).payment_status == "paid"
        statuses = sorted((await s.execute(select(Payment.status).where(Payment.order_id == order_id))).scalars())
    assert statuses == ["expired", "paid"]
