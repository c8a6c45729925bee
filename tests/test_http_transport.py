"""The adapters' HTTP transport (``core.http``: httpx's API on aiohttp's pool): answers, cookies, and
failures classified by whether the request may have reached the server, so that a ``sendText`` the
provider may have delivered is never sent twice. The servers are local raw-socket servers that
misbehave in the ways a provider or a proxy does (drop the connection, never answer)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import httpx
import pytest

from channels.waha import WahaChannel
from core.http import cookieless_jar, pooled_client

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class RawServer:
    """Test double: an HTTP/1.1 server written on raw sockets that counts the requests it read."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[bytes] = []
        self.url = ""

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                               if line.lower().startswith(b"content-length:")), 0)
                body = await reader.readexactly(length) if length else b""
                self.requests.append(head + body)
                await self.handler(reader, writer)
                if writer.is_closing():
                    return
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    @asynccontextmanager
    async def running(self) -> AsyncIterator[RawServer]:
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        try:
            yield self
        finally:
            server.close()


def ok(body: bytes = b'{"id": "true_1@c.us_A1"}', *, headers: bytes = b"") -> Handler:
    async def answer(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" + headers
                     + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        await writer.drain()
    return answer


async def hang_up(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.close()  # read the whole request, then drop the connection without a word


async def never_answer(reader: asyncio.StreamReader, _writer: asyncio.StreamWriter) -> None:
    await reader.read()  # until the client gives up


async def test_a_request_gets_its_answer_and_the_connection_is_kept() -> None:
    async with RawServer(ok()).running() as server, pooled_client(timeout=5) as client:
        for _ in range(3):
            response = await client.post(f"{server.url}/api/sendText", json={"text": "hi"})
            assert response.status_code == 200 and response.json() == {"id": "true_1@c.us_A1"}
    assert len(server.requests) == 3 and b'{"text":"hi"}' in server.requests[0].replace(b" ", b"")


async def test_no_cookie_is_kept_between_requests() -> None:
    # One client serves every tenant's WAHA server: a cookie set by one must not travel with the next.
    setter = ok(headers=b"Set-Cookie: session=tenant-a; Path=/\r\n")
    async with RawServer(setter).running() as server, pooled_client(timeout=5, cookies=cookieless_jar()) as client:
        await client.get(f"{server.url}/a")
        await client.get(f"{server.url}/b")
    assert len(server.requests) == 2 and b"cookie" not in server.requests[1].lower()


async def test_a_refused_connection_is_a_connect_error() -> None:
    async with RawServer(ok()).running() as server:
        url = server.url
    async with pooled_client(timeout=5) as client:
        with pytest.raises(httpx.ConnectError):
            await client.post(f"{url}/api/sendText", json={})


async def test_a_connection_dropped_after_the_request_is_a_read_error() -> None:
    # httpx-aiohttp alone calls this a ConnectTimeout ("nothing was sent"); the server did read it.
    async with RawServer(hang_up).running() as server, pooled_client(timeout=5) as client:
        with pytest.raises(httpx.ReadError):
            await client.post(f"{server.url}/api/sendText", json={"text": "hi"})
    assert len(server.requests) == 1


async def test_no_answer_in_time_is_a_read_timeout() -> None:
    async with RawServer(never_answer).running() as server, \
            pooled_client(timeout=httpx.Timeout(0.3, connect=5)) as client:
        with pytest.raises(httpx.ReadTimeout):
            await client.post(f"{server.url}/api/sendText", json={"text": "hi"})


@pytest.mark.parametrize("handler", [hang_up, never_answer], ids=["dropped", "no answer"])
async def test_a_send_text_that_may_have_been_delivered_is_not_sent_again(handler: Handler) -> None:
    """WAHA's ``sendText`` through the shared client: a dropped connection or a read timeout after the
    request reached the server raises once, after exactly one request (a retry could deliver the
    customer's reply twice)."""
    async with RawServer(handler).running() as server:
        client = pooled_client(timeout=httpx.Timeout(0.3, connect=5))
        channel = WahaChannel(settings={"base_url": server.url}, client=client, retry_attempts=3,
                              retry_wait=0.001, retry_max_wait=0.01)
        with pytest.raises((httpx.ReadError, httpx.ReadTimeout)):
            await channel.send_text(to="491701234567", text="Your order is confirmed.")
        await client.aclose()
    assert len(server.requests) == 1


async def test_a_dropped_idempotent_call_is_retried() -> None:
    """A read (``GET /api/sessions/...``) may be repeated: the second attempt gets the answer."""
    answers = [hang_up, ok(b'{"name": "default", "status": "WORKING"}')]

    async def first_drop_then_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await answers.pop(0)(reader, writer)

    async with RawServer(first_drop_then_answer).running() as server:
        client = pooled_client(timeout=5)
        channel = WahaChannel(settings={"base_url": server.url}, client=client, retry_attempts=3,
                              retry_wait=0.001, retry_max_wait=0.01)
        status = await channel.status()
        await client.aclose()
    assert status["status"] == "WORKING" and len(server.requests) == 2
