"""The root page ``/``: a newcomer who opens http://127.0.0.1:8000 after ``make demo`` finds the demo chats;
a production server shows no tenant's companies to an anonymous visitor."""

from __future__ import annotations

from pathlib import Path

from tests.test_api import AUTH, make_company, make_settings, running


async def _two_tenants(client) -> None:  # type: ignore[no-untyped-def]
    for slug in ("demo", "acme"):
        r = await client.post("/api/v1/tenants", json={"name": slug.title(), "slug": slug}, headers=AUTH)
        assert r.status_code == 201
    await make_company(client, "demo", "demo-florist", name="Demo Florist")
    await make_company(client, "acme", "acme-secret", name="Acme Secret Shop")


async def test_demo_mode_root_lists_the_demo_chats_only(database_url: str, tmp_path: Path) -> None:
    async with running(make_settings(database_url, tmp_path, demo_mode=True)) as e:
        before = await e.client.get("/")
        assert before.status_code == 200 and "not loaded yet" in before.text
        await _two_tenants(e.client)
        page = await e.client.get("/")
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert 'href="/chat/demo-florist"' in page.text and "Demo Florist" in page.text
        assert "acme-secret" not in page.text and "Acme Secret Shop" not in page.text
        assert (await e.client.get("/chat/demo-florist")).status_code == 200  # the link leads to the chat


async def test_production_root_names_no_company(database_url: str, tmp_path: Path) -> None:
    async with running(make_settings(database_url, tmp_path, demo_mode=False)) as e:
        await _two_tenants(e.client)
        page = await e.client.get("/")
        assert page.status_code == 200 and "The engine is running" in page.text
        assert "/chat/" not in page.text and "Demo Florist" not in page.text
