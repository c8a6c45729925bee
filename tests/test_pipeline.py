"""Delivery guarantees of the inbound pipeline, on SQLite and PostgreSQL.

The dialogue engine is replaced by ``RecordingResponder`` (a test double that answers "echo: <text>"
and records what it saw); the channel by ``RecordingChannel`` (a test double that records sends and
can fail). The real engine is exercised in tests/test_bot.py and the end-to-end tests.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import ClassVar

import pytest
from sqlalchemy import func, select

from bot.messages import OutboundMessage
from channels.base import Channel, ParsedInbound, RawRequest
from channels.pipeline import Pipeline
from channels.registry import ChannelRegistry
from core.accounts import create_company, create_tenant
from core.models import Contact, Conversation, Inbox, Message
from core.timeutil import utcnow


class RecordingResponder:
    """Test double for the dialogue engine: one reply per message, ``echo: <text>``."""

    def __init__(self, *, delay: float = 0.0) -> None:
        self.seen: list[tuple[uuid.UUID, str]] = []
        self.delay = delay

    async def respond(self, session, *, inbound, conversation, company):  # type: ignore[no-untyped-def]
        self.seen.append((conversation.id, inbound.text))
        if self.delay:
            await asyncio.sleep(self.delay)
        if inbound.text == "human":
            conversation.handoff = True
            return [OutboundMessage(text="a manager will answer")]
        return [OutboundMessage(text=f"echo: {inbound.text}")]


class RecordingChannel(Channel):
    """Test double for a messenger: records every send; ``fail_next`` makes the next sends raise."""

    kind: ClassVar[str] = "recording"
    default_buffer_seconds: ClassVar[float] = 0.3
    sent: ClassVar[list[tuple[str, str]]] = []
    fail_next: ClassVar[int] = 0
    delays: ClassVar[dict[str, float]] = {}  # text -> seconds the provider takes to accept it

    async def verify(self, request: RawRequest) -> None:
        return None

    def parse(self, request: RawRequest) -> list[ParsedInbound]:
        return []

    async def send_text(self, *, to: str, text: str) -> str | None:
        if RecordingChannel.fail_next > 0:
            RecordingChannel.fail_next -= 1
            raise ConnectionError("provider unreachable")
        await asyncio.sleep(RecordingChannel.delays.get(text, 0.0))
        RecordingChannel.sent.append((to, text))
        return f"prov-{len(RecordingChannel.sent)}"


@pytest.fixture
def registry() -> ChannelRegistry:
    RecordingChannel.sent = []
    RecordingChannel.fail_next = 0
    RecordingChannel.delays = {}
    reg = ChannelRegistry.default()
    reg.register(RecordingChannel)
    return reg


@pytest.fixture
async def inbox_id(sessionmaker) -> uuid.UUID:  # type: ignore[no-untyped-def]
    async with sessionmaker() as s, s.begin():
        tenant = await create_tenant(s, name="Shop", slug="shop")
        company = await create_company(s, tenant_id=tenant.id, slug="shop", name="Shop")
        inbox = Inbox(tenant_id=tenant.id, company_id=company.id, kind="recording", name="Messenger", settings={})
        s.add(inbox)
        await s.flush()
        return inbox.id


def msg(contact: str, text: str, source_id: str | None = None) -> ParsedInbound:
    return ParsedInbound(contact_source_id=contact, text=text, received_at=utcnow(), source_id=source_id)


async def _count(sessionmaker, *where) -> int:  # type: ignore[no-untyped-def]
    async with sessionmaker() as s:
        return (await s.execute(select(func.count()).select_from(Message).where(*where))).scalar_one()


async def test_burst_of_three_is_answered_once_in_order(sessionmaker, registry, inbox_id) -> None:
    responder = RecordingResponder()
    pipeline = Pipeline(sessionmaker=sessionmaker, responder=responder, channels=registry)
    results = [await pipeline.receive(inbox_id=inbox_id, parsed=msg("alice", t, f"m{i}"))
               for i, t in enumerate(["hi", "I want roses", "red ones"])]
    assert all(r.buffered and not r.replies for r in results)
    assert RecordingChannel.sent == []  # nothing before the window closes
    await pipeline.drain()
    assert [t for _, t in responder.seen] == ["hi", "I want roses", "red ones"]
    assert len(RecordingChannel.sent) == 1
    to, text = RecordingChannel.sent[0]
    assert to == "alice"
    assert text == "echo: hi\n\necho: I want roses\n\necho: red ones"
    assert await _count(sessionmaker, Message.direction == "out", Message.status == "sent") == 1


async def test_same_delivery_three_times_is_answered_once(sessionmaker, registry, inbox_id) -> None:
    responder = RecordingResponder()
    pipeline = Pipeline(sessionmaker=sessionmaker, responder=responder, channels=registry)
    results = await asyncio.gather(*[
        pipeline.receive(inbox_id=inbox_id, parsed=msg("bob", "how much are tulips?", "wamid.1")) for _ in range(3)
    ])
    again = await pipeline.receive(inbox_id=inbox_id, parsed=msg("bob", "how much are tulips?", "wamid.1"))
    await pipeline.drain()
    assert sum(not r.duplicate for r in results) == 1 and again.duplicate
    assert await _count(sessionmaker, Message.direction == "in") == 1
    assert RecordingChannel.sent == [("bob", "echo: how much are tulips?")]


async def test_interleaved_conversations_keep_their_own_order(sessionmaker, registry, inbox_id) -> None:
    responder = RecordingResponder(delay=0.01)
    pipeline = Pipeline(sessionmaker=sessionmaker, responder=responder, channels=registry)
    async with sessionmaker() as s, s.begin():
        inbox = await s.get(Inbox, inbox_id)
        inbox.settings = {"buffer_seconds": 0}
    for i in range(4):
        await asyncio.gather(
            pipeline.receive(inbox_id=inbox_id, parsed=msg("carol", f"c{i}", f"c{i}")),
            pipeline.receive(inbox_id=inbox_id, parsed=msg("dave", f"d{i}", f"d{i}")),
        )
    by_contact: dict[str, list[str]] = {}
    for to, text in RecordingChannel.sent:
        by_contact.setdefault(to, []).append(text)
    assert by_contact == {"carol": [f"echo: c{i}" for i in range(4)], "dave": [f"echo: d{i}" for i in range(4)]}


async def test_failed_send_is_marked_and_flags_the_conversation(sessionmaker, registry, inbox_id) -> None:
    pipeline = Pipeline(sessionmaker=sessionmaker, responder=RecordingResponder(), channels=registry)
    RecordingChannel.fail_next = 1
    await pipeline.receive(inbox_id=inbox_id, parsed=msg("erin", "hello", "e1"))
    await pipeline.drain()
    assert RecordingChannel.sent == []
    assert await _count(sessionmaker, Message.direction == "out", Message.status == "failed") == 1
    async with sessionmaker() as s:
        conv = (await s.execute(select(Conversation))).scalar_one()
        assert conv.status == "pending"
    # A failed message is not re-sent by later sweeps: a manager decides.
    assert await pipeline.deliver_pending() == 0
    assert RecordingChannel.sent == []


async def test_kill_and_restart_loses_nothing_and_answers_once(sessionmaker, registry, inbox_id) -> None:
    first = Pipeline(sessionmaker=sessionmaker, responder=RecordingResponder(), channels=registry)
    await first.receive(inbox_id=inbox_id, parsed=msg("frank", "add 2 roses", "f1"))
    await first.receive(inbox_id=inbox_id, parsed=msg("frank", "and a vase", "f2"))
    await first.close()  # the process dies before the buffer window closes
    assert RecordingChannel.sent == []

    restarted = Pipeline(sessionmaker=sessionmaker, responder=RecordingResponder(), channels=registry)
    assert await restarted.recover() == 1
    assert await restarted.recover() == 0
    assert RecordingChannel.sent == [("frank", "echo: add 2 roses\n\necho: and a vase")]


async def test_handoff_stores_but_does_not_answer(sessionmaker, registry, inbox_id) -> None:
    responder = RecordingResponder()
    pipeline = Pipeline(sessionmaker=sessionmaker, responder=responder, channels=registry)
    async with sessionmaker() as s, s.begin():
        (await s.get(Inbox, inbox_id)).settings = {"buffer_seconds": 0}
    await pipeline.receive(inbox_id=inbox_id, parsed=msg("gina", "human", "g1"))
    later = await pipeline.receive(inbox_id=inbox_id, parsed=msg("gina", "hello?", "g2"))
    assert later.handoff and not later.replies
    assert [t for _, t in responder.seen] == ["human"]
    assert RecordingChannel.sent == [("gina", "a manager will answer")]
    assert await _count(sessionmaker, Message.direction == "in") == 2


async def _no_buffer(sessionmaker, inbox_id: uuid.UUID) -> None:  # type: ignore[no-untyped-def]
    async with sessionmaker() as s, s.begin():
        inbox = await s.get(Inbox, inbox_id)
        inbox.settings = {"buffer_seconds": 0}


async def test_a_slow_first_reply_is_not_overtaken_by_the_next_one(sessionmaker, registry, inbox_id) -> None:
    # Two server processes (two pipelines on one database) answer a customer's two quick messages; the
    # provider is slow to accept the first reply. The customer must still read the replies in order.
    await _no_buffer(sessionmaker, inbox_id)
    first = Pipeline(sessionmaker=sessionmaker, responder=RecordingResponder(), channels=registry)
    second = Pipeline(sessionmaker=sessionmaker, responder=RecordingResponder(), channels=registry)
    RecordingChannel.delays = {"echo: do you have roses?": 0.6}
    slow = asyncio.create_task(first.receive(inbox_id=inbox_id, parsed=msg("gina", "do you have roses?", "g1")))
    for _ in range(200):  # bounded: until the first reply is out at the provider
        if await _count(sessionmaker, Message.direction == "out", Message.status == "sending") == 1:
            break
        await asyncio.sleep(0.01)
    await second.receive(inbox_id=inbox_id, parsed=msg("gina", "and tulips?", "g2"))
    await slow
    assert RecordingChannel.sent == [("gina", "echo: do you have roses?"), ("gina", "echo: and tulips?")]
    assert await _count(sessionmaker, Message.direction == "out", Message.status == "sent") == 2


async def test_a_failed_or_abandoned_earlier_reply_does_not_hold_back_the_next(sessionmaker, registry,
                                                                               inbox_id) -> None:
    await _no_buffer(sessionmaker, inbox_id)
    pipeline = Pipeline(sessionmaker=sessionmaker, responder=RecordingResponder(), channels=registry)
    RecordingChannel.fail_next = 1
    await pipeline.receive(inbox_id=inbox_id, parsed=msg("hal", "hello", "h1"))  # the provider refuses it
    await pipeline.receive(inbox_id=inbox_id, parsed=msg("hal", "anyone there?", "h2"))
    assert RecordingChannel.sent == [("hal", "echo: anyone there?")]

    # A process died while sending a reply a minute ago: that claim no longer holds the conversation.
    async with sessionmaker() as s, s.begin():
        last = (await s.execute(select(Message).where(Message.direction == "out")
                                .order_by(Message.seq.desc()).limit(1))).scalar_one()
        last.status, last.claimed_at = "sending", utcnow() - timedelta(minutes=1)
    await pipeline.receive(inbox_id=inbox_id, parsed=msg("hal", "hello?", "h3"))
    assert RecordingChannel.sent[-1] == ("hal", "echo: hello?")


async def test_a_reply_stuck_behind_a_just_abandoned_one_goes_out_after_a_bounded_wait(
        sessionmaker, registry, inbox_id, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # A process was killed seconds ago while sending: its claim is fresh, so the next reply waits, but only
    # ORDER_WAIT (shortened here), then goes out: the customer is not left without an answer.
    import channels.pipeline as pipeline_module

    monkeypatch.setattr(pipeline_module, "ORDER_WAIT", timedelta(seconds=0.3))
    await _no_buffer(sessionmaker, inbox_id)
    pipeline = Pipeline(sessionmaker=sessionmaker, responder=RecordingResponder(), channels=registry)
    await pipeline.receive(inbox_id=inbox_id, parsed=msg("ivy", "hi", "i1"))
    async with sessionmaker() as s, s.begin():
        last = (await s.execute(select(Message).where(Message.direction == "out"))).scalar_one()
        last.status, last.claimed_at = "sending", utcnow()
    await pipeline.receive(inbox_id=inbox_id, parsed=msg("ivy", "still there?", "i2"))
    assert RecordingChannel.sent[-1] == ("ivy", "echo: still there?")
    async with sessionmaker() as s:
        statuses = (await s.execute(select(Message.status).where(Message.direction == "out")
                                    .order_by(Message.seq))).scalars().all()
    assert statuses == ["sending", "sent"]  # the abandoned one is never sent twice


async def test_without_a_window_each_reply_is_sent_once_and_the_contact_learns_name_and_phone(
        sessionmaker, registry, inbox_id) -> None:  # type: ignore[no-untyped-def]
    """The hot path (no buffer window): the replies of a returning contact are sent and stored as
    ``sent``, in one conversation; a name and phone the first delivery lacked are filled in later,
    and never overwritten."""
    pipeline = Pipeline(sessionmaker=sessionmaker, responder=RecordingResponder(), channels=registry)
    async with sessionmaker() as s, s.begin():
        (await s.get(Inbox, inbox_id)).settings = {"buffer_seconds": 0}
    deliveries = [
        ParsedInbound(contact_source_id="erin", text="hi", received_at=utcnow(), source_id="e0"),
        ParsedInbound(contact_source_id="erin", text="roses?", received_at=utcnow(), source_id="e1",
                      contact_name="Erin", phone="+15550001111"),
        ParsedInbound(contact_source_id="erin", text="red", received_at=utcnow(), source_id="e2",
                      contact_name="Someone Else", phone="+15559999999"),
    ]
    results = [await pipeline.receive(inbox_id=inbox_id, parsed=d) for d in deliveries]
    assert [[r.text for r in res.replies] for res in results] == [["echo: hi"], ["echo: roses?"], ["echo: red"]]
    assert RecordingChannel.sent == [("erin", "echo: hi"), ("erin", "echo: roses?"), ("erin", "echo: red")]
    assert len({r.conversation_id for r in results}) == 1
    assert await _count(sessionmaker, Message.direction == "out", Message.status == "sent") == 3
    async with sessionmaker() as s:
        conversation = await s.get(Conversation, results[0].conversation_id)
        contact = await s.get(Contact, conversation.contact_id)
        assert (contact.name, contact.phone) == ("Erin", "+15550001111")


async def test_a_stored_confirmation_nobody_sent_yet_goes_out_before_the_next_reply(sessionmaker, registry,
                                                                                    inbox_id) -> None:
    # A payment webhook stored the customer's confirmation (pending: the outbox) and its delivery has not
    # run yet when the customer writes again: the customer reads the confirmation first, then the answer.
    from core.conversations import append_message

    await _no_buffer(sessionmaker, inbox_id)
    pipeline = Pipeline(sessionmaker=sessionmaker, responder=RecordingResponder(), channels=registry)
    first = await pipeline.receive(inbox_id=inbox_id, parsed=msg("jay", "I paid", "j1"))
    async with sessionmaker() as s, s.begin():
        conversation = await s.get(Conversation, first.conversation_id)
        await append_message(s, conversation=conversation, direction="out", sender="system",
                             text="Payment received for order #1001.")
    await pipeline.receive(inbox_id=inbox_id, parsed=msg("jay", "thanks!", "j2"))
    assert RecordingChannel.sent == [("jay", "echo: I paid"), ("jay", "Payment received for order #1001."),
                                     ("jay", "echo: thanks!")]
    assert await _count(sessionmaker, Message.direction == "out", Message.status == "sent") == 3
