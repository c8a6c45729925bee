"""HTTP client settings shared by every outbound client that serves more than one tenant."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Any

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport


def cookieless_jar() -> CookieJar:
    """A cookie jar that stores nothing (``DefaultCookiePolicy`` with no allowed domain), for
    ``httpx.AsyncClient(cookies=...)``. One client serves every tenant's inbox and alert webhooks; a
    cookie one tenant's server set (for example a WAHA session cookie) would otherwise be sent with
    the next tenant's request to the same host."""
    return CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))


def classify_failure(exc: BaseException) -> httpx.TransportError | None:
    """The ``httpx`` exception an aiohttp failure stands for, by whether the request may have reached
    the server: ``ConnectError`` / ``ConnectTimeout`` only when no connection was made (nothing was
    sent: safe to retry any call), ``ReadTimeout`` for a timeout after that, ``ReadError`` for a
    connection dropped or reset once open (a ``sendText`` may have been delivered: not to be repeated).
    ``None`` for an exception that is not an aiohttp transport failure.

    httpx-aiohttp's own mapping turns every ``aiohttp.ClientConnectionError`` (a server that dropped
    the connection after reading the request included) into ``httpx.ConnectTimeout``, which the adapters'
    retry rules would read as "nothing was sent"."""
    if isinstance(exc, aiohttp.ClientConnectorError):  # DNS, refused, TLS handshake: never connected
        return httpx.ConnectError(str(exc))
    if isinstance(exc, aiohttp.ConnectionTimeoutError):  # aiohttp >= 3.10: the connect phase timed out
        return httpx.ConnectTimeout(str(exc))
    if isinstance(exc, aiohttp.ServerTimeoutError | TimeoutError):
        return httpx.ReadTimeout(str(exc) or "timed out")
    if isinstance(exc, aiohttp.ClientConnectionError | aiohttp.ClientPayloadError):
        return httpx.ReadError(str(exc) or type(exc).__name__)
    return None


def _reraise(exc: BaseException) -> None:
    """Raise what ``exc`` (as raised by httpx-aiohttp, or its aiohttp cause) stands for, if classified."""
    cause = exc.__cause__ if isinstance(exc, httpx.TransportError) and exc.__cause__ is not None else exc
    classified = classify_failure(cause)
    if classified is not None:
        raise classified from cause


class _ClassifiedStream(httpx.AsyncByteStream):
    """A response body whose read failures are classified as ``classify_failure`` says."""

    def __init__(self, stream: httpx.AsyncByteStream) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._stream:
                yield chunk
        except (httpx.TransportError, aiohttp.ClientError, TimeoutError) as exc:
            _reraise(exc)
            raise

    async def aclose(self) -> None:
        await self._stream.aclose()


class PooledTransport(AiohttpTransport):
    """httpx's transport over aiohttp's connection pool (the ``httpx-aiohttp`` package): the adapters keep
    httpx's API, a request costs about a quarter of the CPU of httpx's own pool (0.35 vs 1.5 ms on the
    2-core VM, ``bench/bench_http.py``).

    The aiohttp session stores no cookies (``aiohttp.DummyCookieJar``: one client serves every tenant,
    see ``cookieless_jar``), and failures are classified by ``classify_failure``. ``limits`` as httpx's:
    ``max_connections`` bounds the pool, ``keepalive_expiry`` (s) how long an idle connection is kept."""

    def __init__(self, *, verify: ssl.SSLContext | bool = True,
                 limits: httpx.Limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)) -> None:
        super().__init__(verify=verify, limits=limits, client=self._session)

    def _session(self) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(limit=self.limits.max_connections or 0, ssl=self.ssl_context,
                                         keepalive_timeout=self.limits.keepalive_expiry)
        return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = await super().handle_async_request(request)
        except (httpx.TransportError, aiohttp.ClientError, TimeoutError) as exc:
            _reraise(exc)
            raise
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _ClassifiedStream(response.stream)
        return response


def pooled_client(**kwargs: Any) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` on a ``PooledTransport`` (``verify`` and ``limits`` go to the transport;
    ``cookies``, ``timeout`` and the rest to the client, as for ``httpx.AsyncClient``)."""
    verify = kwargs.pop("verify", True)
    limits = kwargs.pop("limits", httpx.Limits(max_connections=100, max_keepalive_connections=20))
    return httpx.AsyncClient(transport=PooledTransport(verify=verify, limits=limits), **kwargs)


__all__: list[str] = ["PooledTransport", "classify_failure", "cookieless_jar", "pooled_client"]
