"""Web-chat visitors cannot be impersonated (issue 7 §2), on SQLite and PostgreSQL.

The server issues each visitor's identity (a signed token: an HttpOnly cookie for browsers, a
``visitor_token`` for API clients). Another visitor's id — learnt from a leak, a guess, or the old
client-chosen ``contact`` field — and forged, tampered or foreign tokens read nothing and change
nothing: no messages, no payment link, no cancelled booking. Message ids are deduplicated per visitor.

The victims below still send the old ``contact`` field (what the previous page sent): the server
must ignore it, and an attacker sending the victim's id the same way must get nowhere.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from api.app import create_app
from api.services import Runtime
from api.visitor_tokens import VisitorSigner
from core.models import Booking, Company, Contact, ContactInbox, Message, Order
from tests.test_api import AUTH, Env, make_company, make_settings, place_order, running
from tests.test_bot import make_engine
from tests.test_bot_booking import NOW as SALON_NOW
from tests.test_bot_booking import Clock, pay, salon

CONVERSATIONS = "/api/v1/tenants/acme/companies/acme-shop/conversations"


@pytest.fixture
async def env(database_url: str, tmp_path: Path) -> AsyncIterator[Env]:
    """The app with the echo responder (tests/test_api.py) and an in-process HTTP client."""
    async with running(make_settings(database_url, tmp_path)) as e:
        yield e


@dataclass
class Visitor:
    """One web-chat visitor as an API client: keeps the ``visitor_token`` the server issued and sends
    it back in ``X-Visitor-Token``. ``contact`` is a legacy client-chosen id sent in the body and the
    query, as the old page did (ignored by the server). Cookies are not used: one ``httpx`` client
    plays several visitors."""

    client: httpx.AsyncClient
    company: str
    contact: str | None = None
    token: str | None = None

    @property
    def url(self) -> str:
        return f"/api/v1/webchat/{self.company}/messages"

    def headers(self) -> dict[str, str]:
        return {"X-Visitor-Token": self.token} if self.token else {}

    async def post(self, text: str, message_id: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"text": text}
        if self.contact:
            body["contact"] = self.contact
        if message_id:
            body["message_id"] = message_id
        r = await self.client.post(self.url, json=body, headers=self.headers())
        self.client.cookies.clear()
        assert r.status_code == 200, r.text
        data = r.json()
        if data.get("visitor_token"):
            self.token = data["visitor_token"]
        return data

    async def poll(self, after: int = 0) -> dict[str, Any]:
        params: dict[str, Any] = {"after": after}
        if self.contact:
            params["contact"] = self.contact
        r = await self.client.get(self.url, params=params, headers=self.headers())
        assert r.status_code == 200, r.text
        return r.json()


NOTHING = {"conversation_id": None, "messages": [], "language": None}


async def poll_with(client: httpx.AsyncClient, company: str, *, headers: dict[str, str] | None = None,
                    cookies: dict[str, str] | None = None, params: dict[str, str] | None = None) -> dict[str, Any]:
    client.cookies.clear()
    headers = dict(headers or {})
    if cookies:
        headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in cookies.items())
    r = await client.get(f"/api/v1/webchat/{company}/messages", params=params or {}, headers=headers)
    client.cookies.clear()
    assert r.status_code == 200, r.text
    return r.json()


def tampered(token: str) -> str:
    """``token`` with one character in the middle of its signature changed (not the last one: its
    low bits are base64 padding, ignored when decoding)."""
    i = len(token) - 10
    return token[:i] + ("A" if token[i] != "A" else "Q") + token[i + 1:]


def swapped_payload(own_token: str, *, company_id: uuid.UUID, visitor_id: str) -> str:
    """A valid token of one's own with its payload replaced by another visitor's id (signature kept)."""
    _payload, timestamp, signature = own_token.split(".")
    forged = base64.urlsafe_b64encode(json.dumps({"c": str(company_id), "v": visitor_id},
                                                 separators=(",", ":")).encode()).rstrip(b"=").decode()
    return f"{forged}.{timestamp}.{signature}"


async def company_id(runtime: Runtime, slug: str) -> uuid.UUID:
    async with runtime.sessionmaker() as s:
        return (await s.execute(select(Company.id).where(Company.slug == slug))).scalar_one()


async def message_count(runtime: Runtime, conversation_id: str) -> int:
    async with runtime.sessionmaker() as s:
        return (await s.execute(select(func.count()).select_from(Message)
                                .where(Message.conversation_id == uuid.UUID(conversation_id)))).scalar_one()


# -- reading and writing as someone else ------------------------------------------------------------


async def test_another_visitors_id_or_a_forged_token_reads_nothing_and_changes_nothing(env: Env) -> None:
    c = env.client
    await make_company(c, "acme", "acme-shop")
    ann = Visitor(c, "acme-shop", contact="visitor-ann")
    first = await ann.post("I am Ann, 1 Main St")
    conversation = first["conversation_id"]
    placed = await place_order(env.runtime, conversation)
    link = f"http://testserver/pay/{placed.token}"
    sent = await c.post(f"{CONVERSATIONS}/{conversation}/messages", json={"text": f"Your link: {link}"}, headers=AUTH)
    assert sent.status_code == 201
    seen_by_ann = await ann.poll()
    assert seen_by_ann["conversation_id"] == conversation
    assert [m["text"] for m in seen_by_ann["messages"]][-1] == f"Your link: {link}"  # she does see it

    # What an attacker may know of Ann: the id the old page chose, or her id in the inbox (a leak).
    [listed] = (await c.get(CONVERSATIONS, headers=AUTH)).json()
    ann_id = listed["contact"]["source_id"]
    for by_id in ({"params": {"contact": "visitor-ann"}}, {"params": {"contact": ann_id}},
                  {"headers": {"X-Visitor-Token": ann_id}}, {"headers": {"Authorization": f"Bearer {ann_id}"}},
                  {"cookies": {"cc_visitor": ann_id}}):
        got = await poll_with(c, "acme-shop", **by_id)
        assert got == NOTHING, by_id
    assert ann_id != "visitor-ann" and ann_id.startswith("web-") and len(ann_id) >= 26  # server-issued, random
    assert ann.token is not None and ann_id not in ann.token  # the token is signed, not the bare id

    # Forged and tampered tokens.
    acme = await company_id(env.runtime, "acme-shop")
    mallory = Visitor(c, "acme-shop", contact="mallory")
    await mallory.post("hi")
    assert mallory.token is not None
    forged: list[dict[str, Any]] = [
        {"headers": {"X-Visitor-Token": tampered(ann.token)}},
        {"cookies": {"cc_visitor": tampered(ann.token)}},
        {"headers": {"X-Visitor-Token": swapped_payload(mallory.token, company_id=acme, visitor_id=ann_id)}},
        {"headers": {"X-Visitor-Token": VisitorSigner(key_material="not-the-server-key", max_age_seconds=3600)
                     .sign(company_id=acme, visitor_id=ann_id)}},
    ]
    for attempt in forged:
        got = await poll_with(c, "acme-shop", **attempt)
        assert got == NOTHING, attempt
        assert placed.token not in json.dumps(got)

    # Writing as Ann: the message lands in a new visitor's conversation, Ann's is untouched.
    before = await message_count(env.runtime, conversation)
    for headers in ({}, {"X-Visitor-Token": tampered(ann.token)}, {"Authorization": f"Bearer {ann_id}"}):
        r = await c.post("/api/v1/webchat/acme-shop/messages", headers=headers,
                         json={"contact": ann_id, "text": "cancel my order", "message_id": "m-1"})
        c.cookies.clear()
        assert r.status_code == 200, r.text
        assert r.json()["conversation_id"] != conversation and r.json()["duplicate"] is False
        assert r.json()["visitor_token"]  # a new visitor was started
    assert await message_count(env.runtime, conversation) == before
    assert (await ann.poll())["messages"] == seen_by_ann["messages"]
    async with env.runtime.sessionmaker() as s:
        contacts = (await s.execute(select(Contact.id))).scalars().all()
        order = await s.get(Order, placed.order_id)
        assert len(contacts) == 5  # Ann, Mallory and the three refused impersonations, each its own visitor
        assert order is not None and order.status == "pending_payment"


async def test_a_visitor_cannot_cancel_another_visitors_booking(database_url: str, tmp_path: Path) -> None:
    """The real dialogue engine: Ann books and pays a haircut; "cancel my booking" sent with her id or
    a forged token is a stranger's message (no booking found); Ann herself can cancel."""
    app = create_app(make_settings(database_url, tmp_path), responder=make_engine(clock=Clock(SALON_NOW)))
    async with app.router.lifespan_context(app):
        runtime: Runtime = app.state.runtime
        shop = await salon(runtime.sessionmaker)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as c:
            ann = Visitor(c, "salon", contact="visitor-ann")
            await ann.post("I'd like a women's haircut tomorrow afternoon")
            await ann.post("Wed 14:00 · Anna")
            held = await ann.post("Alice Smith")
            assert any("/pay/" in (r["url"] or "") + r["text"] for r in held["replies"])
            async with runtime.sessionmaker() as s:
                [order_id] = (await s.execute(select(Order.id).where(Order.company_id == shop.company_id))).scalars()
            await pay(runtime.sessionmaker, order_id)

            async with runtime.sessionmaker() as s:
                ann_id = (await s.execute(select(ContactInbox.source_id))).scalar_one()

            async def mallory_cancels(token: str | None) -> None:
                mallory = Visitor(c, "salon", contact=ann_id, token=token)
                asked = await mallory.post("cancel my booking")
                answer = await mallory.post("yes, cancel it")
                texts = " ".join(r["text"] for r in asked["replies"] + answer["replies"])
                assert "Women's haircut" not in texts and "Alice" not in texts, texts
                async with runtime.sessionmaker() as s:
                    [booking] = (await s.execute(select(Booking))).scalars().all()
                    assert booking.status == "confirmed"

            await mallory_cancels(None)  # Ann's id in the body, as the old page sent it
            salon_id = await company_id(runtime, "salon")
            assert ann.token is not None
            await mallory_cancels(tampered(ann.token))
            await mallory_cancels(VisitorSigner(key_material="guess", max_age_seconds=60)
                                  .sign(company_id=salon_id, visitor_id=ann_id))

            own = await ann.post("cancel my booking")
            assert any("Cancel your booking: Women's haircut" in r["text"] for r in own["replies"])


# -- message ids are per visitor -------------------------------------------------------------------


async def test_the_same_message_id_from_two_visitors_is_answered_for_both(env: Env) -> None:
    c = env.client
    await make_company(c, "acme", "acme-shop")
    ann, bob = Visitor(c, "acme-shop", contact="ann"), Visitor(c, "acme-shop", contact="bob")
    a = await ann.post("hello from ann", message_id="1")
    b = await bob.post("hello from bob", message_id="1")
    assert a["duplicate"] is False and [r["text"] for r in a["replies"]] == ["echo: hello from ann"]
    assert b["duplicate"] is False and [r["text"] for r in b["replies"]] == ["echo: hello from bob"]
    assert a["conversation_id"] != b["conversation_id"]
    again = await ann.post("hello from ann", message_id="1")  # a retry of the same POST
    assert again["duplicate"] is True and again["replies"] == []
    assert env.responder is not None and env.responder.seen == ["hello from ann", "hello from bob"]
    assert [m["text"] for m in (await bob.poll())["messages"]] == ["hello from bob", "echo: hello from bob"]


# -- the browser's cookie --------------------------------------------------------------------------


def set_cookie(response: httpx.Response) -> str:
    [header] = [v for k, v in response.headers.multi_items() if k.lower() == "set-cookie"]
    return header


@pytest.mark.parametrize("base_url, secure", [("http://testserver", False), ("https://shop.example.com", True)])
async def test_a_browser_gets_an_httponly_samesite_cookie_and_keeps_its_conversation(
        database_url: str, tmp_path: Path, base_url: str, secure: bool) -> None:
    async with running(make_settings(database_url, tmp_path, public_base_url=base_url)) as e, httpx.AsyncClient(
            transport=httpx.ASGITransport(app=e.app), base_url=base_url.replace("shop.example.com", "testserver")) as c:
        await make_company(c, "acme", "acme-shop")
        assert await poll_with(c, "acme-shop") == NOTHING  # the page's first poll starts no visitor
        url = "/api/v1/webchat/acme-shop/messages"
        first = await c.post(url, json={"text": "hello"})
        assert first.status_code == 200
        cookie = set_cookie(first)
        attributes = {part.strip().split("=")[0].lower(): part.strip() for part in cookie.split(";")}
        assert cookie.startswith("cc_visitor=") and "httponly" in attributes
        assert attributes["samesite"].lower() == "samesite=lax"
        assert attributes["path"] == "Path=/api/v1/webchat/acme-shop"
        assert ("secure" in attributes) is secure
        assert first.headers["cache-control"] == "no-store"

        # The browser sends the cookie back (httpx keeps it like a browser would): the same visitor.
        second = await c.post(url, json={"text": "still me"})
        assert second.json()["conversation_id"] == first.json()["conversation_id"]
        assert second.json()["visitor_token"] is None  # issued once, on the first message only
        texts = [m["text"] for m in (await c.get(url)).json()["messages"]]
        assert texts == ["hello", "echo: hello", "still me", "echo: still me"]
        # The cookie is for this company's chat API only.
        assert "cc_visitor" not in (await c.get("/chat/acme-shop")).request.headers.get("cookie", "")

        # A new browser (no cookie) is a new visitor and sees nothing of the first one's.
        c.cookies.clear()
        assert (await c.get(url)).json() == NOTHING
        other = await c.post(url, json={"text": "hi"})
        assert other.json()["conversation_id"] != first.json()["conversation_id"]


# -- one company's token at another --------------------------------------------------------------


async def test_a_token_from_company_a_is_no_identity_at_company_b(env: Env) -> None:
    c = env.client
    await make_company(c, "acme", "acme-shop")
    await make_company(c, "beta", "beta-shop")
    at_a = Visitor(c, "acme-shop")
    mine = await at_a.post("hello a")
    assert at_a.token is not None
    at_b = Visitor(c, "beta-shop", token=at_a.token)
    assert await at_b.poll() == NOTHING
    answered = await at_b.post("hello b")
    assert answered["visitor_token"] and answered["visitor_token"] != at_a.token  # a new visitor at B
    assert answered["conversation_id"] != mine["conversation_id"]
    assert await poll_with(c, "beta-shop", cookies={"cc_visitor": at_a.token}) == NOTHING
    signer = env.runtime.visitor_signer
    a_id, b_id = await company_id(env.runtime, "acme-shop"), await company_id(env.runtime, "beta-shop")
    assert signer.visitor_of(at_a.token, company_id=a_id) is not None
    assert signer.visitor_of(at_a.token, company_id=b_id) is None
    # The visitor's own company still knows it.
    assert [m["text"] for m in (await at_a.poll())["messages"]] == ["hello a", "echo: hello a"]


# -- the signer on its own -------------------------------------------------------------------------


def test_signed_tokens_expire_and_garbage_is_no_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    signer = VisitorSigner(key_material="k" * 32, max_age_seconds=3600)
    company = uuid.uuid4()
    token = signer.sign(company_id=company, visitor_id="web-abc")
    assert signer.visitor_of(token, company_id=company) == "web-abc"
    for garbage in ("", "x", "a.b.c", "web-abc", token + "x", "." * 600, "\u00e9" * 10):
        assert signer.visitor_of(garbage, company_id=company) is None
    # Not a visitor id of ours inside a correctly signed token (e.g. some other signed payload).
    assert signer.visitor_of(signer.sign(company_id=company, visitor_id="admin"), company_id=company) is None
    import itsdangerous.timed

    real_time = itsdangerous.timed.time.time
    monkeypatch.setattr(itsdangerous.timed.time, "time", lambda: real_time() + 3601)
    assert signer.visitor_of(token, company_id=company) is None



async def test_the_api_schema_no_longer_lets_a_client_name_the_visitor(env: Env) -> None:
    schema = (await env.client.get("/openapi.json")).json()
    post = schema["paths"]["/api/v1/webchat/{company}/messages"]["post"]
    get = schema["paths"]["/api/v1/webchat/{company}/messages"]["get"]
    body = post["requestBody"]["content"]["application/json"]["schema"]
    assert "contact" not in body["properties"] and body["required"] == ["text"]
    assert [p["name"] for p in get["parameters"]] == ["company", "after"]
    assert "visitor_token" in schema["components"]["schemas"]["WebChatOut"]["properties"]
    assert "X-Visitor-Token" in post["description"] and "X-Visitor-Token" in get["description"]
