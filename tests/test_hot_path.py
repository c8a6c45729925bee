"""The one-transaction path of the pipeline (no buffer window), its caches and ``last_seq``, on
SQLite and PostgreSQL. Test doubles as in tests/test_pipeline.py."""

from __future__ import annotations

import asyncio
import uuid

import httpx
from sqlalchemy import select

from channels.factory import ChannelFactory
from channels.pipeline import Pipeline
from channels.registry import ChannelRegistry
from core.conversations import append_message
from core.db import track_sql
from core.models import Contact, Conversation, Inbox, Message
from tests.test_pipeline import RecordingChannel, RecordingResponder, inbox_id, msg, registry  # noqa: F401


class FailingResponder(RecordingResponder):
    """Test double: the dialogue engine raising for the first ``failures`` messages."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures

    async def respond(self, session, *, inbound, conversation, company):  # type: ignore[no-untyped-def]
        if self.failures > 0:
            self.failures -= 1
            conversation.state = {"half": "written"}  # rolled back with the failed transaction
            raise RuntimeError("engine bug")
        return await super().respond(session, inbound=inbound, conversation=conversation, company=company)


class NoticingResponder(RecordingResponder):
    """Test double: the dialogue engine appending a system notice to the conversation during the turn
    (as a booking confirmed or an order paid does, with ``append_message`` numbering it itself), after
    a query of its own, then answering."""

    async def respond(self, session, *, inbound, conversation, company):  # type: ignore[no-untyped-def]
        await session.execute(select(Contact.id).where(Contact.id == conversation.contact_id))  # autoflush
        conversation.state = {"turns": (conversation.state or {}).get("turns", 0) + 1}
        await append_message(session, conversation=conversation, direction="out", sender="system",
                             text=f"notice for {inbound.text}", channel="counting")
        return await super().respond(session, inbound=inbound, conversation=conversation, company=company)


async def _no_window(sessionmaker, inbox: uuid.UUID) -> None:  # type: ignore[no-untyped-def]
    async with sessionmaker() as s, s.begin():
        (await s.get(Inbox, inbox)).settings = {"buffer_seconds": 0}


async def _messages(sessionmaker) -> list[tuple[str, str, str, int]]:  # type: ignore[no-untyped-def]
    async with sessionmaker() as s:
        rows = await s.execute(select(Message.direction, Message.text, Message.status, Message.seq)
                               .order_by(Message.seq))
        return [tuple(r) for r in rows]


async def test_engine_error_once_still_answers_once_and_keeps_the_message(sessionmaker, registry,  # noqa: F811
                                                                           inbox_id) -> None:  # noqa: F811
    await _no_window(sessionmaker, inbox_id)
    pipeline = Pipeline(sessionmaker=sessionmaker, responder=FailingResponder(failures=1), channels=registry)
    result = await pipeline.receive(inbox_id=inbox_id, parsed=msg("ann", "hello", "m1"))
    assert [r.text for r in result.replies] == ["echo: hello"]
    assert RecordingChannel.sent == [("ann", "echo: hello")]
    assert await _messages(sessionmaker) == [("in", "hello", "processed", 1), ("out", "echo: hello", "sent", 2)]
    async with sessionmaker() as s:
        assert (await s.execute(select(Conversation.state, Conversation.last_seq))).one() == ({}, 2)


async def test_engine_error_leaves_the_message_for_recover(sessionmaker, registry, inbox_id) -> None:  # noqa: F811
    await _no_window(sessionmaker, inbox_id)
    broken = Pipeline(sessionmaker=sessionmaker, responder=FailingResponder(failures=2), channels=registry)
    try:
        await broken.receive(inbox_id=inbox_id, parsed=msg("ann", "hello", "m1"))
    except RuntimeError:
        pass
    else:  # pragma: no cover - the engine raised twice
        raise AssertionError("the engine's error must reach the caller")
    assert await _messages(sessionmaker) == [("in", "hello", "received", 1)]
    restarted = Pipeline(sessionmaker=sessionmaker, responder=RecordingResponder(), channels=registry)
    assert await restarted.recover() == 1
    assert RecordingChannel.sent == [("ann", "echo: hello")]
    assert await _messages(sessionmaker) == [("in", "hello", "processed", 1), ("out", "echo: hello", "sent", 2)]


async def test_parallel_first_messages_of_one_contact_open_one_conversation(sessionmaker, registry,  # noqa: F811
                                                                             inbox_id) -> None:  # noqa: F811
    await _no_window(sessionmaker, inbox_id)
    pipeline = Pipeline(sessionmaker=sessionmaker, responder=RecordingResponder(), channels=registry)
    results = await asyncio.gather(*[pipeline.receive(inbox_id=inbox_id, parsed=msg("bob", f"m{i}", f"s{i}"))
                                     for i in range(6)])
    assert len({r.conversation_id for r in results}) == 1
    async with sessionmaker() as s:
        assert len((await s.execute(select(Contact.id))).all()) == 1
        last_seq = (await s.execute(select(Conversation.last_seq))).scalar_one()
    stored = await _messages(sessionmaker)
    # Numbered once each, no gaps; every message stored once and answered. (Messages that lost the race
    # to create the contact are stored first and may be answered together: one merged reply.)
    assert [m[3] for m in stored] == list(range(1, last_seq + 1))
    assert sorted(m[1] for m in stored if m[0] == "in") == [f"m{i}" for i in range(6)]
    assert {m[2] for m in stored if m[0] == "in"} == {"processed"}
    answers = "\n\n".join(text for _to, text in RecordingChannel.sent).split("\n\n")
    assert sorted(answers) == sorted(f"echo: m{i}" for i in range(6))


async def test_a_repeated_message_costs_few_statements(sessionmaker, registry, inbox_id) -> None:  # noqa: F811
    """The hot path's budget: a message of a known contact is stored, answered, queued, claimed and
    marked sent in at most 3 transactions and 5 statements on PostgreSQL (8 on SQLite), with the echo
    double for the engine (the engine's own queries come on top; the company it is given costs none)."""
    await _no_window(sessionmaker, inbox_id)
    pipeline = Pipeline(sessionmaker=sessionmaker, responder=RecordingResponder(), channels=registry)
    await pipeline.receive(inbox_id=inbox_id, parsed=msg("cat", "first", "f1"))
    stats = track_sql(sessionmaker.kw["bind"])
    await pipeline.receive(inbox_id=inbox_id, parsed=msg("cat", "second", "f2"))
    sqlite = sessionmaker.kw["bind"].dialect.name == "sqlite"
    assert stats.transactions <= 3
    # PostgreSQL: the claim (a locking SELECT returning the contact and the company), the insert, the
    # reply's insert, the conversation's one update (its number and state, at commit), its mark sent.
    # SQLite adds BEGIN IMMEDIATE, and reads the contact and the company with statements of their own.
    assert stats.statements <= (8 if sqlite else 5)
    assert RecordingChannel.sent[-1] == ("cat", "echo: second")


async def test_a_notice_appended_during_the_turn_gets_its_own_number(sessionmaker, registry,  # noqa: F811
                                                                     inbox_id) -> None:  # noqa: F811
    """The hot path counts message numbers in memory and writes ``last_seq`` once, at commit: a message
    appended meanwhile by the engine (``append_message`` numbering it with an ``UPDATE``) still gets a
    number of its own, and the reply the next one."""
    await _no_window(sessionmaker, inbox_id)
    pipeline = Pipeline(sessionmaker=sessionmaker, responder=NoticingResponder(), channels=registry)
    for i, text in enumerate(("one", "two")):
        await pipeline.receive(inbox_id=inbox_id, parsed=msg("eve", text, f"e{i}"))
    assert [(d, t, n) for d, t, _status, n in await _messages(sessionmaker)] == [
        ("in", "one", 1), ("out", "notice for one", 2), ("out", "echo: one", 3),
        ("in", "two", 4), ("out", "notice for two", 5), ("out", "echo: two", 6)]
    async with sessionmaker() as s:
        assert (await s.execute(select(Conversation.state, Conversation.last_seq))).one() == ({"turns": 2}, 6)


async def test_concurrent_appends_number_messages_once_each(sessionmaker, registry, inbox_id) -> None:  # noqa: F811
    await _no_window(sessionmaker, inbox_id)
    pipeline = Pipeline(sessionmaker=sessionmaker, responder=RecordingResponder(), channels=registry)
    first = await pipeline.receive(inbox_id=inbox_id, parsed=msg("dan", "hi", "d1"))

    async def add(i: int) -> int:
        async with sessionmaker() as s, s.begin():
            conv = await s.get(Conversation, first.conversation_id)
            return (await append_message(s, conversation=conv, direction="out", sender="manager", text=f"n{i}")).seq

    seqs = await asyncio.gather(*[add(i) for i in range(8)])
    assert sorted(seqs) == list(range(3, 11))
    async with sessionmaker() as s:
        assert (await s.get(Conversation, first.conversation_id)).last_seq == 10


async def test_inbox_cache_is_refreshed_when_told_or_after_its_ttl(sessionmaker, registry, inbox_id) -> None:  # noqa: F811
    now = [0.0]
    factory = ChannelFactory(channels=registry, ttl_seconds=30, clock=lambda: now[0])
    row = await factory.inbox(sessionmaker, inbox_id)
    assert row is not None and row.active
    channel = factory.channel(row)
    async with sessionmaker() as s, s.begin():
        (await s.get(Inbox, inbox_id)).settings = {"buffer_seconds": 7}
    assert (await factory.inbox(sessionmaker, inbox_id)).settings == {}  # another process changed it: cached
    now[0] = 31.0
    fresh = await factory.inbox(sessionmaker, inbox_id)
    assert fresh.settings == {"buffer_seconds": 7}
    assert factory.channel(fresh) is not channel and factory.channel(fresh).settings == {"buffer_seconds": 7}
    async with sessionmaker() as s, s.begin():
        (await s.get(Inbox, inbox_id)).active = False
    factory.forget(inbox_id)  # this process changed it: seen at once
    assert (await factory.inbox(sessionmaker, inbox_id)).active is False
    assert await factory.inbox(sessionmaker, uuid.uuid4()) is None


async def test_whatsapp_adapters_share_the_process_http_client() -> None:
    async with httpx.AsyncClient() as shared:
        factory = ChannelFactory(channels=ChannelRegistry.default(), http=shared)
        inbox = Inbox(id=uuid.uuid4(), tenant_id=uuid.uuid4(), company_id=uuid.uuid4(), kind="whatsapp_waha",
                      name="wa", settings={"base_url": "http://127.0.0.1:9"}, credentials=None, active=True)
        one, other = factory.build(inbox), factory.build(inbox)
        assert one.client is shared and other.client is shared
        await one.aclose()
        assert not shared.is_closed  # an adapter never closes the shared client
        cached = factory.channel(inbox)
        assert factory.channel(inbox) is cached
        await factory.aclose()
        assert not shared.is_closed
