"""Rate limits of the sign-in routes, with the ``limits`` library (moving windows).

* failed sign-ins per account (``CHATCOMMERCE_LOGIN_LIMIT_PER_ACCOUNT``, 5 per 15 minutes) and per
  client address (``..._PER_ADDRESS``, 20 per 15 minutes): once either is used up, sign-in answers
  429 with ``Retry-After`` even for the right password, until the window moves on;
* e-mails asked for (codes, links) per client address (``CHATCOMMERCE_MAIL_LIMIT_PER_ADDRESS``).

The counters live in the storage the caller passes: in the app, the one ``limits`` storage of the
process (``api.limits_storage``; Redis when ``CHATCOMMERCE_REDIS_URL`` is set), shared with
``api.ratelimit`` (web chat, admin tokens), so every server process sees the same failures.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse
from limits.aio.storage import Storage
from limits.aio.strategies import MovingWindowRateLimiter


class SignInLimiter:
    """Counts failed sign-ins and e-mail requests in ``storage`` (an async ``limits`` storage). Rates in
    the ``limits`` notation. Methods return the seconds to wait (``None``: go on)."""

    def __init__(self, *, storage: Storage, per_account: str, per_address: str, mail_per_address: str) -> None:
        self._limiter = MovingWindowRateLimiter(storage)
        self._account: RateLimitItem = parse(per_account)
        self._address: RateLimitItem = parse(per_address)
        self._mail: RateLimitItem = parse(mail_per_address)

    async def _wait(self, item: RateLimitItem, *keys: str) -> int | None:
        if await self._limiter.test(item, *keys):
            return None
        stats = await self._limiter.get_window_stats(item, *keys)
        return max(1, math.ceil(stats.reset_time - time.time()))

    async def sign_in_wait(self, *, email: str, address: str) -> int | None:
        """Seconds until ``email`` from ``address`` may try to sign in again; ``None`` when it may now."""
        waits = [w for w in (await self._wait(self._account, "login-account", email),
                             await self._wait(self._address, "login-address", address)) if w]
        return max(waits) if waits else None

    async def failed_sign_in(self, *, email: str, address: str) -> None:
        """Count one failed sign-in against the account and the address."""
        await self._limiter.hit(self._account, "login-account", email)
        await self._limiter.hit(self._address, "login-address", address)

    async def mail_wait(self, *, address: str) -> int | None:
        """Count one e-mail request from ``address``; seconds to wait when over the limit."""
        if await self._limiter.hit(self._mail, "mail-address", address):
            return None
        return await self._wait(self._mail, "mail-address", address) or 1
