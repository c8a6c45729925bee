"""Rate limits of the HTTP API, on the ``limits`` library.

Two guards use them:

* failed admin-token attempts, per client address (``CHATCOMMERCE_RATE_LIMIT_ADMIN_FAILURES``): once an
  address has used up its failures, every admin request from it answers 429 with ``Retry-After`` until
  the window moves on, whatever token it sends (so the answer cannot tell a right token from a wrong one);
* the public web-chat API (``/api/v1/webchat/...``), per client address
  (``CHATCOMMERCE_RATE_LIMIT_WEBCHAT_ADDRESS``) and per visitor of a company
  (``CHATCOMMERCE_RATE_LIMIT_WEBCHAT_VISITOR``): :class:`WebChatRateLimit` and :func:`hit_visitor`.

Counters live in the process's one ``limits`` storage (``api.limits_storage``, shared with the sign-in
limits of ``api.auth_limits``): Redis when ``CHATCOMMERCE_REDIS_URL`` is set (shared by every server
process), process memory otherwise, or what ``CHATCOMMERCE_RATE_LIMIT_STORAGE`` says. Rates use the
``limits`` notation (``"10/minute"``, ``"100 per hour"``, ``"5/second;100/hour"``; https://limits.readthedocs.io/en/stable/quickstart.html#rate-limit-string-notation)
and are counted with a moving window.

The client address is ``request.client.host``: behind a reverse proxy run uvicorn with
``--proxy-headers --forwarded-allow-ips=<proxy>`` so that it is the visitor's, not the proxy's.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass

from fastapi import Depends, HTTPException, Request, status
from limits import RateLimitItem, parse_many
from limits.aio.storage import MemoryStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

from api.limits_storage import build_limits_storage
from core.settings import Settings


class RateLimitSettingError(ValueError):
    """A rate setting is not in the ``limits`` notation; the message names the setting."""


def _parse(name: str, value: str) -> tuple[RateLimitItem, ...]:
    try:
        items = tuple(parse_many(value))
    except ValueError as exc:
        raise RateLimitSettingError(
            f"CHATCOMMERCE_{name.upper()}={value!r} is not a rate such as '10/minute': {exc}"
        ) from exc
    if not items:
        raise RateLimitSettingError(f"CHATCOMMERCE_{name.upper()}={value!r} names no rate")
    return items


def client_address(request: Request) -> str:
    """The address the request came from (``request.client.host``; ``"unknown"`` without one)."""
    return request.client.host if request.client else "unknown"


@dataclass(frozen=True, slots=True)
class RateLimits:
    """The limiter, its storage and the configured rates. Build with :meth:`from_settings` when the app
    starts and :meth:`aclose` it when it stops."""

    storage: Storage
    limiter: MovingWindowRateLimiter
    admin_failures: tuple[RateLimitItem, ...]
    webchat_address: tuple[RateLimitItem, ...]
    webchat_visitor: tuple[RateLimitItem, ...]

    @classmethod
    def from_settings(cls, settings: Settings) -> RateLimits:
        """The storage of ``api.limits_storage.build_limits_storage`` (Redis when ``settings.redis_url``
        is set, memory otherwise, unless ``settings.rate_limit_storage`` overrides). Raises
        :class:`RateLimitSettingError` for a rate not in the ``limits`` notation and
        ``api.limits_storage.LimitsStorageError`` for a bad storage. Call it with the event loop
        running (the memory storage starts its expiry task)."""
        admin_failures = _parse("rate_limit_admin_failures", settings.rate_limit_admin_failures)
        webchat_address = _parse("rate_limit_webchat_address", settings.rate_limit_webchat_address)
        webchat_visitor = _parse("rate_limit_webchat_visitor", settings.rate_limit_webchat_visitor)
        storage = build_limits_storage(settings)
        return cls(storage=storage, limiter=MovingWindowRateLimiter(storage), admin_failures=admin_failures,
                   webchat_address=webchat_address, webchat_visitor=webchat_visitor)

    async def retry_after(self, items: Sequence[RateLimitItem], *key: str) -> int | None:
        """Seconds until a request keyed ``key`` is allowed again under every rate of ``items``, or None
        when it is allowed now. Does not count the request."""
        waits = []
        for item in items:
            if not await self.limiter.test(item, *key):
                stats = await self.limiter.get_window_stats(item, *key)
                waits.append(max(1, math.ceil(stats.reset_time - time.time())))
        return max(waits) if waits else None

    async def hit(self, items: Sequence[RateLimitItem], *key: str) -> int | None:
        """Count one request keyed ``key`` against each rate of ``items``; the ``Retry-After`` seconds
        when one of them was already used up (the request must be refused), None otherwise."""
        refused = False
        for item in items:
            if not await self.limiter.hit(item, *key):
                refused = True
        if not refused:
            return None
        return await self.retry_after(items, *key) or 1

    async def aclose(self) -> None:
        """Forget the counters of a memory storage and stop its expiry task (Redis keeps its counters)."""
        if isinstance(self.storage, MemoryStorage):
            await self.storage.reset()
            timer = self.storage.timer
            if timer is not None and not timer.done():
                timer.cancel()


def get_rate_limits(request: Request) -> RateLimits:
    """The app's :class:`RateLimits` (``app.state.rate_limits``, set by the lifespan)."""
    return request.app.state.rate_limits


def too_many(retry_after: int, what: str) -> HTTPException:
    """The 429 answer with ``Retry-After`` in seconds (RFC 9110 §10.2.3)."""
    return HTTPException(
        status.HTTP_429_TOO_MANY_REQUESTS, f"too many {what}; retry in {retry_after} s",
        headers={"Retry-After": str(retry_after)},
    )


class WebChatRateLimit:
    """FastAPI dependencies limiting the public web chat (raise 429 with ``Retry-After``).

    * ``per_address`` (a router-level dependency): every web-chat request counts against its client
      address (``CHATCOMMERCE_RATE_LIMIT_WEBCHAT_ADDRESS``);
    * :func:`hit_visitor`: a request that proved a visitor (the server-issued, signed identity of
      ``api.visitors``) counts against that visitor of that company
      (``CHATCOMMERCE_RATE_LIMIT_WEBCHAT_VISITOR``). A request without a valid identity starts a new
      visitor; only the per-address limit applies to it, so changing tokens does not escape a limit.
    """

    @staticmethod
    async def per_address(request: Request) -> None:
        limits = get_rate_limits(request)
        wait = await limits.hit(limits.webchat_address, "webchat-address", client_address(request))
        if wait is not None:
            raise too_many(wait, "requests from this address")


async def hit_visitor(request: Request, *, company: str, visitor_id: str) -> None:
    """Count one request of ``visitor_id`` (a verified visitor of the company with slug ``company``);
    raises 429 with ``Retry-After`` when the visitor used up its rate."""
    limits = get_rate_limits(request)
    wait = await limits.hit(limits.webchat_visitor, "webchat-visitor", company, visitor_id)
    if wait is not None:
        raise too_many(wait, "messages from this visitor")


# The web chat's per-address limit, for ``APIRouter(dependencies=[WEBCHAT_RATE_LIMIT])``.
WEBCHAT_RATE_LIMIT = Depends(WebChatRateLimit.per_address)


async def check_admin_address(request: Request) -> None:
    """Refuse (429) an admin request from an address that used up its failed-token attempts."""
    limits = get_rate_limits(request)
    wait = await limits.retry_after(limits.admin_failures, "admin-failures", client_address(request))
    if wait is not None:
        raise too_many(wait, "failed admin-token attempts from this address")


async def count_admin_failure(request: Request) -> None:
    """Count one failed admin-token attempt of the request's address."""
    limits = get_rate_limits(request)
    await limits.hit(limits.admin_failures, "admin-failures", client_address(request))
