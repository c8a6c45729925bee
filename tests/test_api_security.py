"""Abuse protection of the HTTP app: rate limits (admin token, web chat), the request-body limit, the
security headers and CSP of HTML pages, and the API docs (local Swagger UI, can be turned off).

Rate-limit counters live in memory here, except in the Redis test (two apps sharing the machine's
Redis, as two server processes would).
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import AsyncIterator
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from api.ratelimit import RateLimits, RateLimitSettingError
from core.settings import Settings
from tests.test_api import AUTH, import_file, make_company, make_settings, place_order, running, say, upload

REDIS_URL = "redis://127.0.0.1:6379/0"


def client_from(env_app, address: str) -> httpx.AsyncClient:  # type: ignore[no-untyped-def]
    """A client whose requests come from ``address`` (what ``request.client.host`` reports)."""
    transport = httpx.ASGITransport(app=env_app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://testserver")


# -- failed admin-token attempts ---------------------------------------------------------------------


async def test_failed_admin_tokens_are_limited_per_address(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(database_url, tmp_path, rate_limit_admin_failures="3/minute")
    async with running(settings) as env:
        async with client_from(env.app, "203.0.113.7") as attacker, client_from(env.app, "198.51.100.2") as admin:
            wrong = {"Authorization": "Bearer guess"}
            # No token at all is not a guess and is not counted.
            assert [(await attacker.get("/api/v1/tenants")).status_code for _ in range(5)] == [401] * 5
            tries = [(await attacker.get("/api/v1/tenants", headers=wrong)).status_code for _ in range(3)]
            assert tries == [401, 401, 401]
            refused = await attacker.get("/api/v1/tenants", headers=wrong)
            assert refused.status_code == 429
            retry_after = int(refused.headers["retry-after"])
            assert 1 <= retry_after <= 60 and "retry in" in refused.json()["detail"]
            # Blocked is blocked: even the right token gets 429, so the answer tells nothing about a guess.
            right_but_blocked = await attacker.get("/api/v1/tenants", headers=AUTH)
            assert right_but_blocked.status_code == 429 and "retry-after" in right_but_blocked.headers
            # Another address is not affected, and successful requests are never counted.
            for _ in range(5):
                assert (await admin.get("/api/v1/tenants", headers=AUTH)).status_code == 200
            assert (await admin.get("/api/v1/tenants", headers=wrong)).status_code == 401


async def test_admin_failures_are_shared_through_redis(database_url: str, tmp_path: Path) -> None:
    """Two server processes with the same Redis count one address's failures together."""
    settings = make_settings(database_url, tmp_path, rate_limit_admin_failures="3/minute", redis_url=REDIS_URL)
    limits = RateLimits.from_settings(settings)
    if not await limits.storage.check():
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis is required under CI=true but is not reachable at {REDIS_URL}")
        pytest.skip(f"Redis not reachable at {REDIS_URL}")
    assert type(limits.storage).__name__ == "RedisStorage"
    address = f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.{secrets.randbelow(250)}"  # fresh counters
    wrong = {"Authorization": "Bearer guess"}
    async with running(settings) as one, running(settings) as two:
        async with client_from(one.app, address) as first, client_from(two.app, address) as second:
            assert (await first.get("/api/v1/tenants", headers=wrong)).status_code == 401
            assert (await second.get("/api/v1/tenants", headers=wrong)).status_code == 401
            assert (await first.get("/api/v1/tenants", headers=wrong)).status_code == 401
            assert (await second.get("/api/v1/tenants", headers=wrong)).status_code == 429


def test_a_rate_setting_that_is_not_a_rate_is_named() -> None:
    settings = Settings(_env_file=None, rate_limit_webchat_visitor="lots")  # type: ignore[call-arg]
    with pytest.raises(RateLimitSettingError, match="CHATCOMMERCE_RATE_LIMIT_WEBCHAT_VISITOR='lots'"):
        RateLimits.from_settings(settings)


# -- the public web chat -----------------------------------------------------------------------------


async def test_webchat_is_limited_per_visitor_and_per_address(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(database_url, tmp_path, rate_limit_webchat_visitor="3/minute",
                             rate_limit_webchat_address="6/minute")
    async with running(settings) as env:
        await make_company(env.client, "acme", "acme-shop")
        async with client_from(env.app, "203.0.113.9") as office, client_from(env.app, "198.51.100.3") as home:
            endpoint = "/api/v1/webchat/acme-shop/messages"
            first = await office.post(endpoint, json={"text": "hi 0"})  # starts ann's visit: no identity yet
            assert first.status_code == 200
            ann = {"X-Visitor-Token": first.json()["visitor_token"]}
            again = [await office.post(endpoint, json={"text": f"hi {n}"}, headers=ann) for n in range(1, 5)]
            assert [r.status_code for r in again] == [200, 200, 200, 429]
            assert int(again[-1].headers["retry-after"]) >= 1 and "visitor" in again[-1].json()["detail"]
            # The refused message reached nobody; polling as ann is refused too, from any address.
            assert env.responder is not None and env.responder.seen == ["hi 0", "hi 1", "hi 2", "hi 3"]
            assert (await home.get(endpoint, headers=ann)).status_code == 429
            # A new visitor does not escape: the office's address has used 5 of its 6 requests.
            office.cookies.clear()
            assert (await office.post(endpoint, json={"text": "hello"})).status_code == 200
            blocked = await office.post(endpoint, json={"text": "hello again"})
            assert blocked.status_code == 429 and "address" in blocked.json()["detail"]
            # Visitors are counted per company: ann's token is no identity at another shop.
            await make_company(env.client, "beta", "beta-shop")
            other = await home.post("/api/v1/webchat/beta-shop/messages", json={"text": "hi"}, headers=ann)
            assert other.status_code == 200 and other.json()["replies"]


# -- request-body limit ------------------------------------------------------------------------------


async def test_bodies_over_the_limit_are_refused_before_they_are_read(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(database_url, tmp_path, max_body_bytes=64 * 1024)
    async with running(settings) as env:
        await make_company(env.client, "acme", "acme-shop")
        endpoint = "/api/v1/webchat/acme-shop/messages"
        declared = await env.client.post(endpoint, json={"contact": "ann", "text": "x" * 70_000})
        assert declared.status_code == 413
        assert declared.json() == {"detail": "request body is larger than 65536 bytes"}

        sent: list[int] = []

        async def chunks() -> AsyncIterator[bytes]:  # no Content-Length: counted as it streams
            yield b'{"contact": "ann", "text": "'
            for n in range(1000):
                sent.append(n)
                yield b"y" * 1024
            yield b'"}'

        streamed = await env.client.post(endpoint, content=chunks(), headers={"Content-Type": "application/json"})
        assert streamed.status_code == 413 and "larger than 65536 bytes" in streamed.text
        assert len(sent) < 100  # reading stopped right after the limit, not at the end of the body
        assert env.responder is not None and env.responder.seen == []

        # Under the limit nothing changes.
        assert (await env.client.post(endpoint, json={"contact": "ann", "text": "hello"})).status_code == 200


async def test_knowledge_base_uploads_have_their_own_larger_limit(database_url: str, tmp_path: Path,
                                                                  shop_export: Path) -> None:
    settings = make_settings(database_url, tmp_path, max_body_bytes=64 * 1024)
    async with running(settings) as env:
        await make_company(env.client, "acme", "acme-shop")
        export = shop_export.read_bytes()
        lines = export.split(b"\r\n")
        # The export's products four times over, under new handles: over the server-wide limit.
        rows = [line for line in lines[1:] if line]
        big = b"\r\n".join([lines[0]] + [
            re.sub(rb"^([a-z0-9-]+),", lambda m, n=n: m.group(1) + b"-%d," % n, line)
            for n in range(4) for line in rows
        ]) + b"\r\n"
        assert len(big) > 64 * 1024
        job = await import_file(env.client, "acme", "acme-shop", "big.csv", big)
        assert job["status"] == "done", job
        assert job["counts"]["items"] == 34 * 4

        # Past the upload's own limit (CHATCOMMERCE_IMPORT_MAX_BYTES + the multipart envelope) the body
        # is refused before it is read.
        too_big = await upload(env.client, "acme", "acme-shop", "huge.csv", b"x" * (21 * 1024 * 1024))
        assert too_big.status_code == 413 and "larger than" in str(too_big.json()["detail"])


# -- HTML pages: security headers and CSP --------------------------------------------------------------


class _Elements(HTMLParser):
    """Collects the script/style/link/img elements of a page with their attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "link", "img", "iframe"):
            self.found.append((tag, dict(attrs)))


def elements(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Elements()
    parser.feed(html)
    return parser.found


def csp_nonce(response: httpx.Response) -> str:
    policy = response.headers["content-security-policy"]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["default-src"] == "'none'" and directives["frame-ancestors"] == "'none'"
    assert "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy
    match = re.fullmatch(r"'self' 'nonce-([\w-]+)'", directives["script-src"])
    assert match, directives["script-src"]
    assert directives["style-src"] == f"'self' 'nonce-{match.group(1)}'"
    return match.group(1)


def assert_inline_code_carries_nonce(html: str, nonce: str) -> None:
    for tag, attrs in elements(html):
        executable = tag == "style" or (tag == "script" and attrs.get("type") != "application/json")
        if executable and "src" not in attrs:
            assert attrs.get("nonce") == nonce, (tag, attrs)


async def test_html_pages_carry_security_headers_and_a_nonce_csp(database_url: str, tmp_path: Path) -> None:
    async with running(make_settings(database_url, tmp_path)) as env:
        await make_company(env.client, "acme", "acme-shop", name="Acme Apparel")
        chat = await say(env.client, "acme-shop", "ann", "hi")
        placed = await place_order(env.runtime, chat["conversation_id"])
        pages = {
            "chat": await env.client.get("/chat/acme-shop"),
            "pay": await env.client.get(f"/pay/{placed.token}"),
            "notice": await env.client.get("/pay/return?result=success"),
            "not found": await env.client.get("/chat/nobody"),
        }
        nonces = set()
        for name, page in pages.items():
            assert page.headers["content-type"].startswith("text/html"), name
            assert page.headers["x-frame-options"] == "DENY", name
            assert page.headers["x-content-type-options"] == "nosniff", name
            assert page.headers["referrer-policy"] == "no-referrer", name  # the pay token stays in our URL
            nonce = csp_nonce(page)
            assert_inline_code_carries_nonce(page.text, nonce)
            nonces.add(nonce)
        assert len(nonces) == len(pages)  # a fresh nonce per response
        assert 'nonce="' in pages["chat"].text  # the chat page's script runs under the policy
        api = await env.client.get("/healthz")
        assert api.headers["x-content-type-options"] == "nosniff" and "content-security-policy" not in api.headers


# -- API docs --------------------------------------------------------------------------------------


async def test_docs_use_only_local_assets(database_url: str, tmp_path: Path) -> None:
    async with running(make_settings(database_url, tmp_path)) as env:
        docs = await env.client.get("/docs")
        assert docs.status_code == 200 and "SwaggerUIBundle" in docs.text
        urls = [attrs.get("src") or attrs.get("href") for _tag, attrs in elements(docs.text)]
        urls = [u for u in urls if u]
        assert urls and all(u.startswith("/") and not u.startswith("//") for u in urls), urls
        assert not re.search(r"https?://", docs.text)
        for url in urls:
            asset = await env.client.get(url)
            assert asset.status_code == 200 and len(asset.content) > 500, url
        script = await env.client.get("/static/swagger-ui/swagger-ui-bundle.js")
        assert "javascript" in script.headers["content-type"]
        assert_inline_code_carries_nonce(docs.text, csp_nonce(docs))
        assert (await env.client.get("/openapi.json")).json()["info"]["title"] == "chatcommerce"


async def test_docs_can_be_turned_off(database_url: str, tmp_path: Path) -> None:
    async with running(make_settings(database_url, tmp_path, api_docs=False)) as env:
        assert (await env.client.get("/docs")).status_code == 404
        assert (await env.client.get("/openapi.json")).status_code == 404
        assert (await env.client.get("/healthz")).status_code == 200
