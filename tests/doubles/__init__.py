"""Local HTTP servers that speak the providers' real wire protocols (no provider is reachable in tests).

One module per provider (``smtp_server``, ``stripe_server``, ...), among them:

* ``telegram_bot_api.FakeBotAPI`` — the Telegram Bot API paths aiogram calls.
* ``waha_server.FakeWaha`` — a WAHA-compatible server (sessions, sending, signed webhooks).

Shared here: ``LocalServer`` (an aiohttp application on 127.0.0.1, a free port, usable as an async
context manager) and ``WebhookReceiver``, a local endpoint that records deliveries as ``RawRequest``
exactly as an API handler builds them (lower-cased headers, raw body bytes) to feed
``verify``/``parse``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from aiohttp import web

from channels.base import RawRequest


class LocalServer:
    """Base of the doubles: an aiohttp application served on 127.0.0.1:<random port>."""

    def __init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self._http: httpx.AsyncClient | None = None
        self.port: int = 0

    @property
    def http(self) -> httpx.AsyncClient:
        """An HTTP client for deliveries the server makes (webhooks), closed by ``stop``."""
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=10)
        return self._http

    def build_app(self) -> web.Application:  # pragma: no cover - abstract
        raise NotImplementedError

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:54321`` (no trailing slash)."""
        if not self.port:
            raise RuntimeError("server is not started")
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._runner = web.AppRunner(self.build_app(), access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server  # noqa: SLF001 - aiohttp exposes the bound port only here
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._http is not None:
            await self._http.aclose()
            self._http = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Any:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


class WebhookReceiver(LocalServer):
    """Accepts POSTs on any path and records them as ``RawRequest`` (answers 200 ``ok``)."""

    def __init__(self) -> None:
        super().__init__()
        self.deliveries: list[tuple[str, RawRequest]] = []
        self._arrived = asyncio.Event()

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("POST", "/{tail:.*}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        raw = RawRequest(
            headers={k.lower(): v for k, v in request.headers.items()},
            body=body,
            query={k: v for k, v in request.query.items()},
        )
        self.deliveries.append((request.path, raw))
        self._arrived.set()
        return web.Response(text="ok")

    async def wait_for(self, count: int, timeout: float = 5.0) -> list[RawRequest]:
        """Wait until ``count`` deliveries arrived; return them (``TimeoutError`` otherwise)."""
        async def _wait() -> None:
            while len(self.deliveries) < count:
                self._arrived.clear()
                await self._arrived.wait()

        await asyncio.wait_for(_wait(), timeout)
        return [raw for _, raw in self.deliveries]
