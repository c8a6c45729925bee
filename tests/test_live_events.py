"""Server-Sent Events for open inbox views, over a real HTTP server (uvicorn on 127.0.0.1): a
company's stream gets its new messages, their delivery and its alerts; another tenant's company never
sees them — on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from api.app import create_app
from api.realtime import EventBus, LiveEvent
from tests.test_api import AUTH, EchoResponder, make_company, make_settings, place_order, say

EVENTS = "/api/v1/tenants/{t}/companies/{c}/events"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def served(database_url: str, tmp_path: Path, **overrides: Any) -> AsyncIterator[tuple[httpx.AsyncClient, Any]]:
    app = create_app(make_settings(database_url, tmp_path, workers_enabled=False, **overrides),
                     responder=EchoResponder())
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.02)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            yield client, app
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


class Stream:
    """Reads one SSE stream in the background into a queue of ``(event, data)``."""

    def __init__(self, client: httpx.AsyncClient, url: str, *, headers: dict[str, str] | None = None) -> None:
        self.events: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
        self.status: int | None = None
        self._task = asyncio.create_task(self._read(client, url, AUTH if headers is None else headers))

    async def _read(self, client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> None:
        async with client.stream("GET", url, headers=headers, timeout=None) as response:
            self.status = response.status_code
            name, data = "message", ""
            async for line in response.aiter_lines():
                if line.startswith("event:"):
                    name = line.split(":", 1)[1].strip()
                elif line.startswith("data:"):
                    data += line.split(":", 1)[1].strip()
                elif not line and data:
                    await self.events.put((name, json.loads(data)))
                    name, data = "message", ""

    async def next(self, timeout: float = 10) -> tuple[str, dict[str, Any]]:
        return await asyncio.wait_for(self.events.get(), timeout)

    async def until(self, predicate: Any, timeout: float = 10) -> list[tuple[str, dict[str, Any]]]:
        """Events up to and including the first one matching ``predicate``."""
        seen = []
        while True:
            event = await self.next(timeout)
            seen.append(event)
            if predicate(*event):
                return seen

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


async def test_a_company_stream_carries_its_events_only(database_url: str, tmp_path: Path) -> None:
    async with served(database_url, tmp_path) as (client, app):
        await make_company(client, "alpha", "shop-a")
        await make_company(client, "beta", "shop-b")
        forbidden = await client.get(EVENTS.format(t="beta", c="shop-a"), headers=AUTH)
        assert forbidden.status_code == 404
        assert (await client.get(EVENTS.format(t="alpha", c="shop-a"))).status_code == 401

        a = Stream(client, EVENTS.format(t="alpha", c="shop-a"))
        b = Stream(client, EVENTS.format(t="beta", c="shop-b"))
        try:
            assert await a.next() == ("ready", {"company": "shop-a"})
            assert await b.next() == ("ready", {"company": "shop-b"})

            sent_a = await say(client, "shop-a", "ann", "hello from A")
            conv_a = sent_a["conversation_id"]
            got_a = await a.until(lambda e, d: e == "message.status" and d["status"] == "sent")
            created = [(d["direction"], d["sender"], d["text"]) for e, d in got_a if e == "message.created"]
            assert created == [("in", "contact", "hello from A"), ("out", "bot", "echo: hello from A")]
            assert all(d["conversation_id"] == conv_a for _, d in got_a)

            placed = await place_order(app.state.runtime, conv_a)
            paid = await client.post(f"/api/v1/tenants/alpha/companies/shop-a/orders/{placed.order_id}/mark-paid",
                                     json={"method": "cash"}, headers=AUTH)
            assert paid.status_code == 200
            got_paid = await a.until(lambda e, d: e == "order.paid")
            assert got_paid[-1][1]["order_number"] == 1001 and got_paid[-1][1]["conversation_id"] == conv_a

            # B's company speaks after all of A's events were published: had any of them leaked into
            # B's stream, it would be queued before B's own.
            sent_b = await say(client, "shop-b", "bob", "hello from B")
            first_b = await b.next()
            assert first_b[0] == "message.created" and first_b[1]["conversation_id"] == sent_b["conversation_id"]
            rest_b = await b.until(lambda e, d: e == "message.status")
            assert all(d.get("conversation_id") == sent_b["conversation_id"] for _, d in rest_b)
            assert "hello from A" not in json.dumps(rest_b)
        finally:
            await a.close()
            await b.close()


async def test_bus_keys_by_tenant_and_company() -> None:
    import uuid

    bus = EventBus()
    t1, t2, company = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    with bus.subscribe(tenant_id=t1, company_id=company) as mine, \
            bus.subscribe(tenant_id=t2, company_id=company) as same_company_id_other_tenant:
        assert bus.publish_local(LiveEvent(tenant_id=t1, company_id=company, type="order.paid", data={"n": 1})) == 1
        assert (await mine.get()).data == {"n": 1}
        assert same_company_id_other_tenant.queue.empty()
    assert bus.subscribers() == 0
    assert bus.publish_local(LiveEvent(tenant_id=t1, company_id=company, type="order.paid", data={})) == 0


REDIS_URL = "redis://127.0.0.1:6379/0"


async def _redis_available() -> bool:
    import redis.asyncio as redis_asyncio

    client = redis_asyncio.from_url(REDIS_URL)
    try:
        return bool(await client.ping())
    except OSError:
        return False
    finally:
        await client.aclose()


async def test_redis_relay_carries_events_between_processes() -> None:
    """Two buses (two server processes) on one Redis: an event published by one reaches the other's
    subscriber of that company, and no other company's."""
    import uuid

    import pytest
    from redis.exceptions import ConnectionError as RedisConnectionError

    try:
        if not await _redis_available():
            pytest.skip("Redis not reachable at " + REDIS_URL)
    except RedisConnectionError:
        pytest.skip("Redis not reachable at " + REDIS_URL)
    channel = f"chatcommerce:test:{uuid.uuid4().hex}"
    one, two = EventBus(redis_url=REDIS_URL, redis_channel=channel), EventBus(redis_url=REDIS_URL,
                                                                              redis_channel=channel)
    await one.start()
    await two.start()
    tenant, company, other = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    try:
        with two.subscribe(tenant_id=tenant, company_id=company) as view, \
                two.subscribe(tenant_id=tenant, company_id=other) as elsewhere, \
                one.subscribe(tenant_id=tenant, company_id=company) as local_view:
            one.publish(LiveEvent(tenant_id=tenant, company_id=company, type="order.paid", data={"order": 1}))
            got = await asyncio.wait_for(view.get(), 5)
            assert (got.type, got.data, got.company_id) == ("order.paid", {"order": 1}, company)
            assert (await asyncio.wait_for(local_view.get(), 5)).data == {"order": 1}  # the sender's own views too
            one.publish(LiveEvent(tenant_id=tenant, company_id=other, type="order.paid", data={"order": 2}))
            assert (await asyncio.wait_for(elsewhere.get(), 5)).data == {"order": 2}
            assert view.queue.empty()
    finally:
        await one.aclose()
        await two.aclose()



async def test_two_server_processes_share_live_events_through_redis(database_url: str, tmp_path: Path) -> None:
    """A view connected to one server sees a message another server stored (CHATCOMMERCE_REDIS_URL)."""
    import pytest

    if not await _redis_available():
        pytest.skip("Redis not reachable at " + REDIS_URL)
    async with served(database_url, tmp_path, redis_url=REDIS_URL) as (first, _), \
            served(database_url, tmp_path, redis_url=REDIS_URL) as (second, _):
        await make_company(first, "alpha", "shop-a")
        view = Stream(second, EVENTS.format(t="alpha", c="shop-a"))
        try:
            assert (await view.next())[0] == "ready"
            sent = await say(first, "shop-a", "ann", "via the other process")
            got = await view.until(lambda e, d: e == "message.created" and d["direction"] == "out")
            assert [d["text"] for e, d in got if e == "message.created"] == ["via the other process",
                                                                              "echo: via the other process"]
            assert all(d["conversation_id"] == sent["conversation_id"] for _, d in got)
        finally:
            await view.close()
