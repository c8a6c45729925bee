"""Worker processes on Redis Streams (``CHATCOMMERCE_QUEUE=redis``), against the machine's real Redis
and PostgreSQL: a web server only stores and enqueues signed WAHA webhooks, two ``chatcommerce worker``
processes answer them; one is killed with SIGKILL in the middle of a burst, and every message is still
answered exactly once, in order, per conversation.

Needs Redis on 127.0.0.1:6379 (``CHATCOMMERCE_TEST_REDIS_URL``) and PostgreSQL: skipped with the reason
without them, failed under ``CI=true``.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as redis_asyncio
from sqlalchemy import select

from api.worker import run_worker
from channels.queue import STREAM_GROUP, InboundJob, RedisQueue
from core.accounts import create_company, create_tenant
from core.models import Base, Conversation, Inbox, Message
from tests.conftest import _pg_admin_on
from tests.doubles.waha_server import FakeWaha
from tests.test_api import EchoResponder, make_settings
from tests.test_live_events import served

REPO = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("CHATCOMMERCE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
HMAC_KEY = "queue-test-hmac"
CONTACTS = 6
MESSAGES = 12
ANSWER_DELAY_MS = 60  # the echo worker's time per message, inside the conversation's row lock
WORKER_CONCURRENCY = 4


def require_redis() -> str:
    """``REDIS_URL`` when Redis accepts connections; else skip (fail under ``CI=true``)."""
    from redis import Redis

    try:
        Redis.from_url(REDIS_URL, socket_connect_timeout=1).ping()
    except Exception as exc:  # noqa: BLE001 - any failure means "no Redis"
        reason = f"Redis not reachable at {REDIS_URL}: {exc!r}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason}; CI=true requires it")
        pytest.skip(reason)
    return REDIS_URL


@pytest.fixture
def pg_url(request: pytest.FixtureRequest) -> str:
    """The run's PostgreSQL database, emptied (see ``conftest.pg_database``)."""
    url = request.getfixturevalue("pg_database")
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    asyncio.run(_pg_admin_on(url, f"TRUNCATE {tables} CASCADE"))
    return url


async def _until(check: Callable[[], Awaitable[bool]], *, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds  # a bound on waiting, not an assertion on speed
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {seconds} s waiting for {what}")
        await asyncio.sleep(0.02)


def _start_worker(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, "-m", "tests.doubles.echo_worker"], env=env, cwd=str(REPO),
                                stdout=out, stderr=subprocess.STDOUT)


async def _waha_shop(runtime: Any, client: Any, waha: FakeWaha, *, slug: str, buffer_seconds: int) -> None:
    """A tenant and company ``slug`` with a WhatsApp inbox at the WAHA double, whose session delivers
    signed webhooks to the served app (``client``)."""
    async with runtime.sessionmaker() as s, s.begin():
        tenant = await create_tenant(s, name=slug.title(), slug=slug)
        company = await create_company(s, tenant_id=tenant.id, slug=f"{slug}-shop", name=f"{slug.title()} Shop")
        inbox = Inbox(tenant_id=tenant.id, company_id=company.id, kind="whatsapp_waha", name="WhatsApp",
                      credentials=runtime.secret_box.encrypt(json.dumps({"api_key": "waha-test-key",
                                                                         "hmac_key": HMAC_KEY})),
                      settings={"base_url": waha.url, "session": "default", "buffer_seconds": buffer_seconds},
                      active=True)
        s.add(inbox)
    waha.add_session("default", config={"webhooks": [{
        "url": f"{client.base_url}/webhooks/whatsapp_waha/{inbox.id}", "events": ["message"],
        "hmac": {"key": HMAC_KEY}}]})


async def test_a_killed_worker_leaves_every_message_answered_once_and_in_order(pg_url: str, tmp_path: Path) -> None:
    redis_url = require_redis()
    stream = f"chatcommerce:test:{uuid.uuid4().hex}"
    r = redis_asyncio.from_url(redis_url)
    waha = FakeWaha()
    await waha.start()
    env = {**os.environ, "PYTHONPATH": str(REPO), "CHATCOMMERCE_DATABASE_URL": pg_url,
           "CHATCOMMERCE_SECRET_KEY": "test-secret-key", "CHATCOMMERCE_DATA_DIR": str(tmp_path),
           "CHATCOMMERCE_QUEUE": "redis", "CHATCOMMERCE_REDIS_URL": redis_url, "CHATCOMMERCE_QUEUE_STREAM": stream,
           "CHATCOMMERCE_QUEUE_CONCURRENCY": str(WORKER_CONCURRENCY), "CHATCOMMERCE_QUEUE_CLAIM_IDLE_SECONDS": "2",
           "CHATCOMMERCE_WORKERS_ENABLED": "false", "CHATCOMMERCE_LOG_LEVEL": "INFO",
           "ECHO_WORKER_DELAY_MS": str(ANSWER_DELAY_MS)}
    workers = [_start_worker(env, tmp_path / f"worker-{n}.log") for n in range(2)]
    victim, survivor = workers
    victim_name = f"{socket.gethostname()}-{victim.pid}"
    try:
        async with served(pg_url, tmp_path, queue="redis", redis_url=redis_url, queue_stream=stream) as (client, app):
            runtime = app.state.runtime
            await _waha_shop(runtime, client, waha, slug="queue", buffer_seconds=0)

            async def both_consuming() -> bool:
                logs = [(tmp_path / f"worker-{n}.log").read_text() for n in range(len(workers))]
                for w, text in zip(workers, logs, strict=True):
                    assert w.poll() is None, text
                return all("worker_started" in text for text in logs)

            await _until(both_consuming, seconds=120, what="two workers consuming")

            chats = {f"1555{n:07d}@c.us": [f"contact {n} message {k}" for k in range(MESSAGES)]
                     for n in range(CONTACTS)}

            async def contact(chat: str, texts: list[str]) -> None:
                for text in texts:  # one after another, without waiting for the answers
                    _payload, deliveries = await waha.emit_message(from_=chat, body=text, notify_name="Ann")
                    assert [d.status for d in deliveries] == [200]

            burst = asyncio.gather(*(contact(chat, texts) for chat, texts in chats.items()))

            async def victim_busy() -> bool:
                held = await r.xpending_range(stream, STREAM_GROUP, min="-", max="+", count=100,
                                              consumername=victim_name)
                return len(waha.accepted_messages) >= 3 and len(held) > 0

            await _until(victim_busy, seconds=60, what="replies sent and jobs held by the first worker")
            victim.send_signal(signal.SIGKILL)
            victim.wait(timeout=10)
            await burst
            total = CONTACTS * MESSAGES

            async def all_answered() -> bool:
                assert survivor.poll() is None, (tmp_path / "worker-1.log").read_text()
                async with runtime.sessionmaker() as s:
                    rows = (await s.execute(select(Message.direction, Message.status))).all()
                inbound = [st for d, st in rows if d == "in"]
                waiting = [st for d, st in rows if d == "out" and st == "pending"]
                pending_jobs = (await r.xpending(stream, STREAM_GROUP))["pending"]
                return len(inbound) == total and set(inbound) == {"processed"} and not waiting and pending_jobs == 0

            await _until(all_answered, seconds=120, what="every message answered and every job acknowledged")

            async with runtime.sessionmaker() as s:
                conversations = (await s.execute(select(Conversation))).scalars().all()
                messages = (await s.execute(select(Message).order_by(Message.seq))).scalars().all()
        sent_to: dict[str, list[str]] = {}
        for request in waha.accepted_messages:
            sent_to.setdefault(request.json["chatId"], []).append(request.json["text"])
    finally:
        for w in workers:
            if w.poll() is None:
                w.terminate()
                w.wait(timeout=30)
        await waha.stop()
        await r.delete(stream)
        await r.aclose()

    assert len(conversations) == CONTACTS
    unsent: list[Message] = []
    for conv in conversations:
        mine = [m for m in messages if m.conversation_id == conv.id]
        inbound = [m.text for m in mine if m.direction == "in"]
        replies = [m for m in mine if m.direction == "out"]
        chat = next(c for c, texts in chats.items() if texts == inbound)  # every message stored once, in order
        # Answered exactly once each, in the order they were sent.
        assert [m.text for m in replies] == [f"echo: {t}" for t in inbound]
        # The customer got no reply twice, and every reply marked sent.
        received = Counter(sent_to.get(chat, []))
        assert all(n == 1 for n in received.values()), received
        assert {m.text for m in replies if m.status == "sent"} <= set(received)
        # A reply the killed worker had claimed for sending stays "sending" (whether or not the provider
        # got it before the kill) and is never sent again.
        assert set(received) <= {m.text for m in replies if m.status in ("sent", "sending")}
        unsent += [m for m in replies if m.status != "sent"]
    assert all(m.status == "sending" for m in unsent) and len(unsent) <= WORKER_CONCURRENCY


async def test_buffer_windows_live_in_redis_and_any_process_fires_them() -> None:
    redis_url = require_redis()
    stream = f"chatcommerce:test:{uuid.uuid4().hex}"
    web, worker = (RedisQueue(url=redis_url, stream=stream) for _ in range(2))
    await web.connect()
    await worker.connect()
    job = InboundJob(tenant_id=uuid.uuid4(), inbox_id=uuid.uuid4(), conversation_id=uuid.uuid4(),
                     message_id=uuid.uuid4())
    later = InboundJob(tenant_id=job.tenant_id, inbox_id=job.inbox_id, conversation_id=job.conversation_id,
                       message_id=uuid.uuid4())
    try:
        await web.schedule(job, delay_seconds=3, now=1000.0)
        await web.schedule(later, delay_seconds=3, now=1002.0)  # a second message of the burst moves the window
        assert await worker.take_due(now=1004.0) == []
        fired = await worker.take_due(now=1005.0)
        # One job for the whole burst, answering everything stored (message_id None), and only once.
        assert fired == [InboundJob(tenant_id=job.tenant_id, inbox_id=job.inbox_id,
                                    conversation_id=job.conversation_id, message_id=None)]
        assert await web.take_due(now=1005.0) == []
    finally:
        await web.aclose()
        await worker.aclose()
        client: Any = redis_asyncio.from_url(redis_url)
        await client.delete(stream, f"{stream}:due")
        await client.aclose()


async def test_a_burst_in_a_buffer_window_is_answered_once_by_a_worker(pg_url: str, tmp_path: Path) -> None:
    """The web process stores the burst and sets the window's due time in Redis; a worker (in this
    process) fires it and answers the three messages with one reply, sent once."""
    redis_url = require_redis()
    stream = f"chatcommerce:test:{uuid.uuid4().hex}"
    overrides: dict[str, Any] = {"queue": "redis", "redis_url": redis_url, "queue_stream": stream}
    waha = FakeWaha()
    await waha.start()
    stop = asyncio.Event()
    worker: asyncio.Task[None] | None = None
    try:
        async with served(pg_url, tmp_path, **overrides) as (client, app):
            runtime = app.state.runtime
            await _waha_shop(runtime, client, waha, slug="window", buffer_seconds=3)
            worker = asyncio.create_task(run_worker(make_settings(pg_url, tmp_path, workers_enabled=False, **overrides),
                                                    responder=EchoResponder(), consumer="in-test", stop=stop))
            for text in ("hello", "do you have shirts", "and hats"):
                _payload, deliveries = await waha.emit_message(from_="15550002222@c.us", body=text)
                assert [d.status for d in deliveries] == [200]

            async def answered() -> bool:
                assert worker is not None
                if worker.done():
                    worker.result()  # raises what stopped the worker
                return bool(waha.accepted_messages)

            await _until(answered, seconds=30, what="the burst answered")
            assert [m.json["text"] for m in waha.accepted_messages] == [
                "echo: hello\n\necho: do you have shirts\n\necho: and hats"]
            assert await r_due(redis_url, stream) == 0  # no window left to fire again
    finally:
        stop.set()
        if worker is not None:
            await asyncio.wait_for(worker, 30)
        await waha.stop()
        client_: Any = redis_asyncio.from_url(redis_url)
        await client_.delete(stream, f"{stream}:due")
        await client_.aclose()


async def r_due(redis_url: str, stream: str) -> int:
    """How many buffer windows wait in Redis for ``stream``."""
    client: Any = redis_asyncio.from_url(redis_url)
    try:
        return int(await client.zcard(f"{stream}:due"))
    finally:
        await client.aclose()
