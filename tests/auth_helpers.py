"""Helpers of the account tests: an app wired to a local SMTP server (``tests.doubles.smtp_server``,
aiosmtpd) and shortcuts to sign people up and in through the HTTP API."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx

from tests.doubles.smtp_server import SMTPServer, smtp_server
from tests.test_api import Env, make_settings, running

PASSWORD = "correct horse battery"


@asynccontextmanager
async def app_with_mail(database_url: str, tmp_path: Path,
                        **overrides: object) -> AsyncIterator[tuple[Env, SMTPServer]]:
    """The app (test settings of ``tests.test_api``) sending its mails to a local aiosmtpd server."""
    with smtp_server() as smtp:
        settings = make_settings(database_url, tmp_path, smtp_host=smtp.host, smtp_port=smtp.port,
                                 smtp_starttls=False, smtp_from="chatcommerce <no-reply@example.test>", **overrides)
        async with running(settings) as env:
            yield env, smtp


def mails_to(smtp: SMTPServer, address: str) -> list[str]:
    """Plain-text bodies of the mails ``address`` received, oldest first."""
    out = []
    for got in smtp.received:
        if address in got.rcpt_tos:
            out.append(got.message().get_content())
    return out


def last_code(smtp: SMTPServer, address: str) -> str:
    """The 6-digit code of the last verification mail to ``address``."""
    match = re.search(r"verification code is (\d{6})", mails_to(smtp, address)[-1])
    assert match, mails_to(smtp, address)[-1]
    return match.group(1)


def last_link_token(smtp: SMTPServer, address: str) -> str:
    """The token of the last magic-link mail to ``address``."""
    match = re.search(r"consume\?token=([A-Za-z0-9_-]+)", mails_to(smtp, address)[-1])
    assert match, mails_to(smtp, address)[-1]
    return match.group(1)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def signup(client: httpx.AsyncClient, smtp: SMTPServer, email: str, tenant: str) -> dict:
    """Sign up, verify with the mailed code and sign in: the token pair (``access_token``, ``refresh_token``)."""
    r = await client.post("/api/v1/auth/signup", json={"email": email, "password": PASSWORD,
                                                        "tenant_name": tenant.title(), "tenant_slug": tenant})
    assert r.status_code == 201, r.text
    r = await client.post("/api/v1/auth/verify", json={"email": email, "code": last_code(smtp, email)})
    assert r.status_code == 200, r.text
    return await login(client, email)


async def login(client: httpx.AsyncClient, email: str, password: str = PASSWORD) -> dict:
    r = await client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert r.status_code == 200, r.text
    return r.json()


async def invite_manager(client: httpx.AsyncClient, smtp: SMTPServer, owner_token: str, tenant: str,
                         company: str, email: str) -> dict:
    """The owner assigns ``email`` to ``company``; a new user signs in with the invitation link."""
    r = await client.post(f"/api/v1/tenants/{tenant}/managers", json={"email": email, "company": company},
                          headers=bearer(owner_token))
    assert r.status_code == 201, r.text
    if not r.json()["invited"]:
        return {}
    r = await client.post("/api/v1/auth/magic-link/consume", json={"token": last_link_token(smtp, email)})
    assert r.status_code == 200, r.text
    return r.json()
