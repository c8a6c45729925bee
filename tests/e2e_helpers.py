"""Helpers of the end-to-end channel tests (tests/test_channels_e2e.py).

The real app (``api.app.create_app`` with the real ``DialogueEngine``) runs in-process behind an
``httpx.ASGITransport``; the provider doubles (tests/doubles) run on 127.0.0.1. The doubles' own
deliveries (Telegram's ``deliver_update``, WAHA's ``emit``) go to the URL our app registered with
them, through a client bound to the app, so what reaches the webhook handler is exactly what the
double sent. Each ``*Customer`` class plays one customer of one channel: ``say(text)`` delivers a
message the way the provider would and returns what the customer then received.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, make_msgid
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from sqlalchemy import select

from api.app import create_app
from api.jobs import BackgroundWorkers
from api.services import Runtime
from core.models import Message
from core.settings import Settings
from core.timeutil import utcnow
from tests.doubles import LocalServer
from tests.doubles.smtp_server import SMTPServer
from tests.doubles.telegram_bot_api import FakeBotAPI, callback_update, text_update
from tests.doubles.waha_server import FakeWaha
from tests.test_api import AUTH, import_file, make_company, make_settings

BASE = "http://testserver"
TENANT = "acme"
COMPANY = "acme-shop"
SHOP_NAME = "Acme Apparel"
INBOXES = f"/api/v1/tenants/{TENANT}/companies/{COMPANY}/inboxes"
ORDERS = f"/api/v1/tenants/{TENANT}/companies/{COMPANY}/orders"


def e2e_settings(database_url: str, tmp_path: Path, **overrides: object) -> Settings:
    """Test settings (tests/test_api.py) with the background workers off: tests call
    ``app.state.workers.sweep_once()`` themselves."""
    return make_settings(database_url, tmp_path, workers_enabled=False, **overrides)


@dataclass
class Shop:
    """The running app with the real dialogue engine and an HTTP client bound to it."""

    app: FastAPI
    client: httpx.AsyncClient

    @property
    def runtime(self) -> Runtime:
        return self.app.state.runtime

    @property
    def workers(self) -> BackgroundWorkers:
        return self.app.state.workers

    def bind(self, double: LocalServer) -> None:
        """Make ``double``'s outgoing deliveries (webhooks) reach this app in-process."""
        double._http = httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url=BASE)  # noqa: SLF001

    async def connect(self, kind: str, *, credentials: dict[str, Any], settings: dict[str, Any],
                      expect: int = 201) -> dict[str, Any]:
        r = await self.client.post(INBOXES, json={"kind": kind, "credentials": credentials, "settings": settings},
                                   headers=AUTH)
        assert r.status_code == expect, r.text
        return r.json()

    async def orders(self) -> list[dict[str, Any]]:
        r = await self.client.get(ORDERS, headers=AUTH)
        assert r.status_code == 200, r.text
        return r.json()

    async def messages(self, inbox_id: str, *, direction: str | None = None) -> list[Message]:
        """The inbox's stored messages, oldest first."""
        async with self.runtime.sessionmaker() as s:
            stmt = select(Message).where(Message.inbox_id == uuid.UUID(inbox_id))
            if direction:
                stmt = stmt.where(Message.direction == direction)
            return list((await s.execute(stmt.order_by(Message.created_at, Message.seq))).scalars())

    async def pay_test(self, link: str) -> None:
        """Press "Pay (test)" on the payment page behind ``link`` (demo mode)."""
        path = link.removeprefix(BASE)
        page = await self.client.get(path)
        assert page.status_code == 200, page.text
        r = await self.client.post(f"{path}/test")
        assert r.status_code == 303, r.text


@asynccontextmanager
async def running_shop(settings: Settings, shop_export: Path) -> AsyncIterator[Shop]:
    """The app (lifespan entered) with tenant ``acme`` and company ``acme-shop`` ("Acme Apparel")
    whose knowledge base is the public Shopify apparel export."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:
            await make_company(client, TENANT, COMPANY, name=SHOP_NAME, currency="USD", language="en")
            job = await import_file(client, TENANT, COMPANY, "apparel.csv", shop_export.read_bytes())
            assert job["status"] == "done", job
            yield Shop(app=app, client=client)


async def eventually(check: Callable[[], Awaitable[bool]] | Callable[[], bool], *, timeout: float = 10.0,
                     what: str = "condition") -> None:
    """Poll ``check`` (sync or async) every 20 ms until it is true; ``AssertionError`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)


# -- Telegram ----------------------------------------------------------------------------------------

_update_ids = itertools.count(700_000)
_message_ids = itertools.count(9_000)


@dataclass
class TelegramCustomer:
    """A Telegram user in a private chat with the shop's bot. Updates are delivered by the Bot API
    double to the webhook our app registered (secret header included)."""

    shop: Shop
    api: FakeBotAPI
    chat_id: int
    seen: int = 0

    def received(self) -> list[dict[str, Any]]:
        """Every message the customer got (accepted sendMessage/sendPhoto params), in order."""
        return [c.params for c in self.api.sent if str(c.params.get("chat_id")) == str(self.chat_id)]

    def new(self) -> list[dict[str, Any]]:
        """What arrived since the last call (or since the last ``say``/``press``)."""
        got = self.received()
        new, self.seen = got[self.seen:], len(got)
        return new

    @staticmethod
    def text_of(params: dict[str, Any]) -> str:
        return str(params.get("text") or params.get("caption") or "")

    async def deliver(self, update: dict[str, Any], *, secret: str | None = None) -> int:
        update = {"update_id": next(_update_ids), **update}
        status = await self.api.deliver_update(update, secret=secret)
        await self.shop.runtime.pipeline.drain()
        return status

    async def say(self, text: str) -> list[dict[str, Any]]:
        """Send ``text``; return the messages the bot answered with (sendMessage/sendPhoto params)."""
        status = await self.deliver(text_update(self.chat_id, text, message_id=next(_message_ids),
                                                date=int(time.time())))
        assert status == 200, status
        new = self.new()
        assert new, f"no answer to {text!r}"
        return new

    async def press(self, title: str) -> list[dict[str, Any]]:
        """Press the inline button ``title`` under the latest message that has one."""
        for params in reversed(self.received()):
            markup = params.get("reply_markup") or {}
            for row in markup.get("inline_keyboard") or []:
                for button in row:
                    if button["text"] == title:
                        update = callback_update(self.chat_id, button["callback_data"], reply_markup=markup,
                                                 bot_id=self.api.bot_id)
                        update["callback_query"]["message"]["text"] = self.text_of(params)
                        status = await self.deliver(update)
                        assert status == 200, status
                        new = self.new()
                        assert new, f"no answer to the button {title!r}"
                        return new
        raise AssertionError(f"no button {title!r} in {[self.text_of(p) for p in self.received()][-3:]}")


def buttons_of(params: dict[str, Any]) -> list[str]:
    """Titles of the inline keyboard of one sent Telegram message."""
    markup = params.get("reply_markup") or {}
    return [b["text"] for row in markup.get("inline_keyboard") or [] for b in row]


# -- WhatsApp (WAHA) ---------------------------------------------------------------------------------


@dataclass
class WhatsAppCustomer:
    """A WhatsApp user writing to the shop's number; WAHA emits signed ``message`` events to our webhook."""

    shop: Shop
    waha: FakeWaha
    chat_id: str
    seen: int = 0

    def received(self) -> list[dict[str, Any]]:
        """Accepted sendText/sendImage bodies for this chat, in order."""
        return [r.json for r in self.waha.accepted_messages if r.json.get("chatId") == self.chat_id]

    @staticmethod
    def text_of(body: dict[str, Any]) -> str:
        return str(body.get("text") or body.get("caption") or "")

    def new(self) -> list[dict[str, Any]]:
        """What arrived since the last call (or since the last ``say``/``press``)."""
        got = self.received()
        new, self.seen = got[self.seen:], len(got)
        return new

    async def send(self, text: str) -> dict[str, Any]:
        """Emit one message event (answered after the inbox's buffer window); returns its payload."""
        payload, deliveries = await self.waha.emit_message(from_=self.chat_id, body=text,
                                                           timestamp=int(time.time()))
        assert [d.status for d in deliveries] == [200], [d.status for d in deliveries]
        return payload

    async def say(self, text: str) -> list[dict[str, Any]]:
        await self.send(text)
        await self.shop.runtime.pipeline.drain()
        new = self.new()
        assert new, f"no answer to {text!r}"
        return new


# -- e-mail ------------------------------------------------------------------------------------------


@dataclass
class EmailCustomer:
    """Someone writing to the shop's mailbox: each mail is APPENDed to the Dovecot folder the inbox
    watches, as a mail client's reply would be (threading headers, quoted history); answers arrive
    at the local SMTP server."""

    shop: Shop
    smtp: SMTPServer
    append: Callable[[bytes], Awaitable[None]]
    address: str = "alice@customer.test"
    name: str = "Alice Smith"
    shop_address: str = "shop@example.test"
    subject: str = "Shopping question"
    seen: int = 0
    last_sent: EmailMessage | None = None
    last_received: EmailMessage | None = None
    sent_ids: list[str] = field(default_factory=list)

    def received(self) -> list[EmailMessage]:
        return [r.message() for r in self.smtp.received if self.address in r.rcpt_tos]

    def compose(self, text: str) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = f"{self.name} <{self.address}>"
        msg["To"] = f"Acme Apparel <{self.shop_address}>"
        msg["Date"] = format_datetime(utcnow())
        msg["Message-ID"] = make_msgid(domain="customer.test")
        body = text
        previous = self.last_received
        if previous is None:
            msg["Subject"] = self.subject
        else:
            msg["Subject"] = f"Re: {previous['Subject'].removeprefix('Re: ')}"
            msg["In-Reply-To"] = previous["Message-ID"]
            msg["References"] = " ".join(filter(None, [previous.get("References"), previous["Message-ID"]]))
            quoted = "\n".join(f"> {line}" for line in str(previous.get_content()).strip().splitlines())
            body = f"{text}\n\nOn {previous['Date']}, {SHOP_NAME} <{self.shop_address}> wrote:\n{quoted}\n"
        msg.set_content(body)
        return msg

    async def send(self, text: str) -> EmailMessage:
        msg = self.compose(text)
        await self.append(msg.as_bytes(policy=SMTP_POLICY))
        self.last_sent = msg
        self.sent_ids.append(msg["Message-ID"])
        return msg

    async def say(self, text: str, *, timeout: float = 10.0) -> EmailMessage:
        """Send ``text`` and wait for the one reply mail; returns it."""
        await self.send(text)
        await eventually(lambda: len(self.received()) > self.seen, timeout=timeout, what=f"a reply to {text!r}")
        got = self.received()
        assert len(got) == self.seen + 1, [m["Subject"] for m in got[self.seen:]]
        self.seen = len(got)
        self.last_received = got[-1]
        return got[-1]


def mail_text(msg: EmailMessage) -> str:
    return str(msg.get_content())
