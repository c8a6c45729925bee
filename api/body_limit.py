"""A server-wide limit on request bodies, as pure ASGI middleware.

A request whose ``Content-Length`` is over its limit is answered 413 before its body is read; a body
sent without ``Content-Length`` (chunked) is counted chunk by chunk as the application reads it, and
reading stops with a 413 as soon as the count passes the limit, so no route ever holds more than the
limit in memory.

The limit is ``default_max_bytes`` (``CHATCOMMERCE_MAX_BODY_BYTES``) except on the routes named in
``allowances`` (:class:`BodyAllowance`: a method, a path template like the route's and a limit), e.g.
the knowledge-base upload that takes files up to 20 MB.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from re import Pattern
from typing import Any

from starlette.routing import compile_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send


@dataclass(frozen=True, slots=True)
class BodyAllowance:
    """A route allowed a larger (or smaller) body: ``method`` (``"POST"``), ``path`` as the route
    declares it (``"/api/v1/tenants/{tenant}/companies/{company}/knowledge-base"``), ``max_bytes``: an
    int or a callable of the ASGI scope returning one (read per request, e.g. from settings)."""

    method: str
    path: str
    max_bytes: int | Callable[[Scope], int]
    # When set, a refusal names the limit the way the route itself would (``{"message", "limit",
    # "maximum"}``), with ``maximum`` = ``reported(scope)`` (e.g. the file-size setting, without the
    # multipart envelope that ``max_bytes`` adds).
    limit_name: str | None = None
    reported: Callable[[Scope], int] | None = None
    _regex: Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_regex", compile_path(self.path)[0])

    def matches(self, method: str, path: str) -> bool:
        return method == self.method.upper() and self._regex.match(path) is not None


class _TooLarge(Exception):
    """Raised into the application when the body it is reading passes the limit."""


class BodyLimitMiddleware:
    """Refuse request bodies over the limit with ``413 {"detail": "request body is larger than N bytes"}``.

    ``default_max_bytes`` is an int or a callable returning the current default (read per request, so a
    limit from settings built in the app's lifespan applies).
    """

    def __init__(self, app: ASGIApp, *, default_max_bytes: int | Callable[[Scope], int],
                 allowances: Sequence[BodyAllowance] = ()) -> None:
        self.app = app
        self.default_max_bytes = default_max_bytes
        self.allowances = tuple(allowances)

    def limit_for(self, scope: Scope) -> int:
        """The body limit in bytes of this request."""
        allowance = self._allowance(scope)
        if allowance is not None:
            limit = allowance.max_bytes
            return limit(scope) if callable(limit) else limit
        default = self.default_max_bytes
        return default(scope) if callable(default) else default

    def _allowance(self, scope: Scope) -> BodyAllowance | None:
        return next((a for a in self.allowances if a.matches(scope["method"], scope["path"])), None)

    def _detail(self, scope: Scope, limit: int) -> object:
        """The 413 ``detail``: a sentence, or the named limit of the route's allowance."""
        allowance = self._allowance(scope)
        if allowance is None or allowance.limit_name is None:
            return f"request body is larger than {limit} bytes"
        maximum = allowance.reported(scope) if allowance.reported is not None else limit
        return {"message": f"the file is larger than {maximum} bytes; the limit is {maximum} bytes",
                "limit": allowance.limit_name, "maximum": maximum}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _refuse(send, self._detail(scope, limit))
            return

        received = 0
        exceeded = False
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received, exceeded
            if exceeded:
                raise _TooLarge
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise _TooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if exceeded:  # whatever the app made of the interrupted body, the answer is 413
                if message["type"] == "http.response.start" and not response_started:
                    response_started = True
                    await _refuse(send, self._detail(scope, limit))
                return
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except _TooLarge:
            if not response_started:
                response_started = True
                await _refuse(send, self._detail(scope, limit))
        except Exception:
            if exceeded and not response_started:  # the app wrapped our exception in another
                await _refuse(send, self._detail(scope, limit))
                return
            raise


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _refuse(send: Send, detail: object) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers: list[Any] = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                          (b"connection", b"close")]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    await send({"type": "http.response.body", "body": body})
