"""Security headers on every response, and a nonce-based Content-Security-Policy on HTML pages.

Every response gets ``X-Content-Type-Options: nosniff``, ``X-Frame-Options: DENY`` and
``Referrer-Policy: no-referrer`` (no page of ours needs to send a referrer, and payment pages carry
their token in the URL, which must not leak to the sites they link to).

Every ``text/html`` response gets :func:`content_security_policy` with a fresh random nonce per
request: only ``<script>``/``<style>`` elements carrying that nonce run (templates read it as
``{{ request.state.csp_nonce }}``), nothing may frame the page (``frame-ancestors 'none'``), forms post
and scripts fetch only to this origin, images may come from any https host (product photos). See
https://www.w3.org/TR/CSP3/ and https://developer.mozilla.org/docs/Web/HTTP/Headers/Content-Security-Policy.
"""

from __future__ import annotations

import secrets

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

STATIC_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def content_security_policy(nonce: str) -> str:
    """The CSP of our HTML pages for one request's ``nonce``."""
    return "; ".join((
        "default-src 'none'",
        f"script-src 'self' 'nonce-{nonce}'",
        f"style-src 'self' 'nonce-{nonce}'",
        "img-src 'self' https: data:",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
    ))


class SecurityHeadersMiddleware:
    """Pure ASGI middleware adding the headers above; puts the request's nonce in
    ``scope["state"]["csp_nonce"]`` (``request.state.csp_nonce``) before the app runs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        nonce = secrets.token_urlsafe(18)
        scope.setdefault("state", {})["csp_nonce"] = nonce

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in STATIC_HEADERS.items():
                    if name not in headers:
                        headers[name] = value
                if headers.get("content-type", "").startswith("text/html"):
                    headers["Content-Security-Policy"] = content_security_policy(nonce)
            await send(message)

        await self.app(scope, receive, send_with_headers)
