"""Take over a conversation, reply as a person on Telegram and WhatsApp, hand it back — through the
local Telegram Bot API double (tests/doubles/telegram_bot_api.py) and the local WAHA-protocol server
(tests/doubles/waha_server.py), with the app in-process, on SQLite and PostgreSQL.

The bot is the echo test double of tests/test_api.py (it answers ``echo: <text>``), so what the
customer receives shows exactly who answered: the bot, the person, or nobody.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from api.app import create_app
from api.cli import CliOptions
from api.cli import app as cli_app
from tests.doubles.telegram_bot_api import FakeBotAPI, text_update
from tests.doubles.waha_server import FakeWaha
from tests.e2e_helpers import BASE, Shop, TelegramCustomer, WhatsAppCustomer
from tests.test_api import AUTH, EchoResponder, make_company, make_settings

COMPANY = "/api/v1/tenants/acme/companies/acme-shop"


@pytest.fixture
async def shop(database_url: str, tmp_path: Path) -> AsyncIterator[Shop]:
    app = create_app(make_settings(database_url, tmp_path, workers_enabled=False), responder=EchoResponder())
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE) as client:
            await make_company(client, "acme", "acme-shop", name="Acme Apparel")
            yield Shop(app=app, client=client)


@pytest.fixture
async def bot_api() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI() as server:
        yield server


@pytest.fixture
async def waha() -> AsyncIterator[FakeWaha]:
    async with FakeWaha() as server:
        yield server


async def conversation_of(shop: Shop, channel: str) -> dict[str, Any]:
    r = await shop.client.get(f"{COMPANY}/conversations", params={"channel": channel}, headers=AUTH)
    assert r.status_code == 200, r.text
    [conv] = r.json()
    return conv


async def post(shop: Shop, path: str, **kwargs: Any) -> dict[str, Any]:
    r = await shop.client.post(f"{COMPANY}/conversations/{path}", headers=AUTH, **kwargs)
    assert r.status_code in (200, 201), r.text
    return r.json()


async def test_telegram_takeover_human_reply_silent_bot_and_hand_back(shop: Shop, bot_api: FakeBotAPI) -> None:
    shop.bind(bot_api)
    await shop.connect("telegram", credentials={"bot_token": bot_api.token},
                       settings={"api_base": bot_api.api_base, "buffer_seconds": 0})
    ann = TelegramCustomer(shop=shop, api=bot_api, chat_id=4242)
    [hello] = await ann.say("hi")
    assert hello["text"] == "echo: hi"

    conv = await conversation_of(shop, "telegram")
    # The Telegram profile names the contact (not an opaque id).
    assert conv["contact"]["display_name"] == "Ann Lee" and conv["handoff"] is False

    taken = await post(shop, f"{conv['id']}/handoff")
    assert taken["handoff"] is True and taken["needs_human"] is True
    sent = await post(shop, f"{conv['id']}/messages", json={"text": "Hi Ann, this is Maria from the shop."})
    assert sent["sender"] == "manager" and sent["status"] == "sent"
    [human] = ann.new()
    assert (human["text"], str(human["chat_id"])) == ("Hi Ann, this is Maria from the shop.", "4242")

    # The customer's next message is stored, and the bot says nothing.
    status = await ann.deliver(text_update(4242, "do you ship to Berlin?", message_id=77, date=int(time.time())))
    assert status == 200
    assert ann.new() == []
    detail = (await shop.client.get(f"{COMPANY}/conversations/{conv['id']}", headers=AUTH)).json()
    assert [(m["sender"], m["text"]) for m in detail["messages"]][-2:] == [
        ("manager", "Hi Ann, this is Maria from the shop."), ("contact", "do you ship to Berlin?")]

    # Handed back, the bot answers again.
    released = await post(shop, f"{conv['id']}/release")
    assert released["handoff"] is False
    [answer] = await ann.say("thanks")
    assert answer["text"] == "echo: thanks"


async def test_whatsapp_takeover_through_the_cli_and_canned_reply(shop: Shop, waha: FakeWaha,
                                                                  database_url: str, tmp_path: Path) -> None:
    shop.bind(waha)
    waha.add_session("default")
    await shop.connect("whatsapp_waha", credentials={"api_key": waha.api_key},
                       settings={"base_url": waha.url, "session": "default", "buffer_seconds": 0})
    bob = WhatsAppCustomer(shop=shop, waha=waha, chat_id="15557654321@c.us")
    [hello] = await bob.say("hello")
    assert hello["text"] == "echo: hello"
    conv = await conversation_of(shop, "whatsapp_waha")
    assert conv["contact"]["display_name"] == "Ann" and conv["contact"]["phone"] == "+15557654321"

    r = await shop.client.post(f"{COMPANY}/canned-replies", json={"shortcut": "hours", "text": "We open at 9."},
                               headers=AUTH)
    assert r.status_code == 201, r.text

    # The CLI and the API act on the same conversation through the same use cases.
    env = {"CHATCOMMERCE_DATABASE_URL": database_url, "CHATCOMMERCE_DATA_DIR": str(tmp_path),
           "CHATCOMMERCE_SECRET_KEY": "test-secret-key", "CHATCOMMERCE_PUBLIC_BASE_URL": BASE}
    runner = CliRunner()

    async def cli(*args: str) -> str:  # in a thread: the CLI runs its own event loop
        result = await asyncio.to_thread(runner.invoke, cli_app, list(args), env=env,
                                         obj=CliOptions(responder=EchoResponder()))
        assert result.exit_code == 0, (result.stdout, result.stderr)
        return result.stdout

    assert "answered by a manager" in await cli("conversations", "take", conv["id"], "--company", "acme-shop")
    assert (await cli("conversations", "reply", conv["id"], "Bob, your parcel left today.")).startswith("reply sent")
    assert (await cli("conversations", "reply", conv["id"], "--canned", "hours")).startswith("reply sent")
    assert [m["text"] for m in bob.new()] == ["Bob, your parcel left today.", "We open at 9."]
    assert all(m["chatId"] == "15557654321@c.us" for m in bob.received())

    await bob.send("ok, and the price?")
    await shop.runtime.pipeline.drain()
    assert bob.new() == []  # the bot stays silent while a person has it

    listed = await cli("conversations", "list", "--company", "acme-shop", "--needs-human")
    header, row = listed.splitlines()
    assert header.split("\t")[:4] == ["ID", "CHANNEL", "STATUS", "HUMAN"]
    assert row.split("\t")[:4] == [conv["id"], "whatsapp_waha", "open", "manager"]

    await cli("conversations", "release", conv["id"])
    [answer] = await bob.say("and now?")
    assert answer["text"] == "echo: and now?"
    await cli("conversations", "resolve", conv["id"])
    assert "no conversations" in await cli("conversations", "list", "--company", "acme-shop", "--status", "open")
