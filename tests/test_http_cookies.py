"""Outbound HTTP clients shared by all tenants keep no cookies: one tenant's server cannot plant a
cookie that the next tenant's request to the same host would carry."""

from __future__ import annotations

from aiohttp import web

from api.services import shared_http_client


async def test_the_shared_client_does_not_carry_a_cookie_set_by_an_earlier_response() -> None:
    seen: list[str | None] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request.headers.get("Cookie"))
        response = web.json_response({"ok": True})
        response.set_cookie("waha_session", "tenant-a-session", path="/")
        return response

    app = web.Application()
    app.router.add_post("/api/sendText", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    client = shared_http_client()
    try:
        for tenant in ("a", "b"):
            r = await client.post(f"http://127.0.0.1:{port}/api/sendText", json={"tenant": tenant})
            assert r.status_code == 200 and "waha_session" in r.headers.get("set-cookie", "")
        assert seen == [None, None]  # tenant B's request carried nothing tenant A's response set
        assert len(client.cookies) == 0
    finally:
        await client.aclose()
        await runner.cleanup()
