"""Real channels end to end: the app with the real dialogue engine, the local provider doubles, SQLite and PostgreSQL.

A company connects Telegram, WhatsApp (WAHA) and e-mail through the admin API and the CLI; customers
then buy on each channel as a new user would (greeting, a price question, two items, checkout, name,
address, phone, payment link), pay, and get the payment confirmation in the same channel. Then the
delivery guarantees over real adapters: redeliveries, bursts, bad signatures, provider failures.

How the pieces meet (tests/e2e_helpers.py): the app runs in-process behind ``httpx.ASGITransport``
with ``public_base_url = http://testserver``; the Bot API and WAHA doubles deliver their webhooks to
the URL the app registered with them through a client bound to the app, so the handler sees exactly
the bytes and headers the double sent; e-mail goes through a real Dovecot (IMAP IDLE, watched by the
app's background worker) and a real aiosmtpd server.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from api.cli import CliOptions
from api.cli import app as cli_app
from core.db import create_engine, create_sessionmaker
from core.models import Inbox, Message
from core.security import SecretBox
from tests.doubles.smtp_server import SMTPServer, smtp_server
from tests.doubles.telegram_bot_api import FakeBotAPI, text_update
from tests.doubles.waha_server import FakeWaha
from tests.e2e_helpers import (
    AUTH,
    BASE,
    INBOXES,
    ORDERS,
    EmailCustomer,
    Shop,
    TelegramCustomer,
    WhatsAppCustomer,
    buttons_of,
    e2e_settings,
    eventually,
    mail_text,
    running_shop,
)
from tests.test_channel_email import Mailbox, dovecot  # noqa: F401 - the session fixture starting Dovecot

SECRET_KEY = "test-secret-key"  # tests/test_api.py make_settings
PAY_LINK = re.compile(r"http://testserver/pay/[\w-]+")
CONFIRMATION = ("Payment received for order #1001: 170.00 USD. Thank you! We will deliver it to "
                "12 Main Street, Springfield and let you know about the delivery time.")
ORDER_LINES = [("Classic Varsity Top", "Medium", 2, 6000), ("Ocean Blue Shirt", None, 1, 5000)]


# -- fixtures ----------------------------------------------------------------------------------------


@pytest.fixture
async def bot_api() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI() as server:
        yield server


@pytest.fixture
async def waha() -> AsyncIterator[FakeWaha]:
    async with FakeWaha() as server:
        yield server


@pytest.fixture
async def shop(database_url: str, tmp_path: Path, shop_export: Path) -> AsyncIterator[Shop]:
    async with running_shop(e2e_settings(database_url, tmp_path), shop_export) as s:
        yield s


@pytest.fixture
async def mailbox(dovecot: dict[str, str]) -> AsyncIterator[Mailbox]:  # noqa: F811 - the imported fixture
    box = Mailbox(dovecot, f"e2e-{uuid.uuid4().hex[:10]}")
    await box.open()
    yield box
    await box.close()


@pytest.fixture
def smtp() -> Any:
    with smtp_server() as server:
        yield server


async def connect_telegram(shop: Shop, api: FakeBotAPI, **settings: object) -> dict[str, Any]:
    shop.bind(api)
    return await shop.connect("telegram", credentials={"bot_token": api.token},
                              settings={"api_base": api.api_base, **settings})


async def connect_waha(shop: Shop, waha: FakeWaha, **settings: object) -> dict[str, Any]:
    shop.bind(waha)
    return await shop.connect("whatsapp_waha", credentials={"api_key": waha.api_key},
                              settings={"base_url": waha.url, "session": "default", **settings})


def email_settings(mailbox: Mailbox, smtp: SMTPServer) -> dict[str, Any]:
    env = mailbox.env
    return {"imap_host": env["DOVECOT_HOST"], "imap_port": int(env["DOVECOT_PORT"]), "imap_user": env["DOVECOT_USER"],
            "imap_ssl": False, "folder": mailbox.folder, "smtp_host": smtp.host, "smtp_port": smtp.port,
            "smtp_starttls": False, "from_address": "shop@example.test", "from_name": "Acme Apparel",
            "timeout": 10, "buffer_seconds": 0}


async def stored_credentials(shop: Shop, inbox_id: str) -> str:
    async with shop.runtime.sessionmaker() as s:
        raw = (await s.execute(select(Inbox.credentials).where(Inbox.id == uuid.UUID(inbox_id)))).scalar_one()
    assert raw
    return raw


def assert_absent(secrets: list[str], *outputs: str) -> None:
    for secret in secrets:
        for out in outputs:
            assert secret not in out, f"a credential leaked: {secret[:4]}… in {out[:200]!r}"


async def assert_the_order(shop: Shop, *, phone: str | None) -> dict[str, Any]:
    [order] = await shop.orders()
    assert [(ln["name"], ln["variant"], ln["quantity"], ln["unit_price_minor"]) for ln in order["lines"]] == ORDER_LINES
    assert (order["total_minor"], order["currency"]) == (17000, "USD")
    assert (order["customer_name"], order["delivery_address"], order["phone"]) == (
        "Alice Smith", "12 Main Street, Springfield", phone)
    return order


# -- the purchase, per channel -----------------------------------------------------------------------


async def test_telegram_connect_buy_pay_and_confirmation_in_the_chat(
    shop: Shop, bot_api: FakeBotAPI, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.INFO)
    inbox = await connect_telegram(shop, bot_api, buffer_seconds=0)

    # Connected: Telegram was told our URL (by inbox id) and a secret for the header.
    hook = f"{BASE}/webhooks/telegram/{inbox['id']}"
    [set_webhook] = bot_api.accepted("setWebhook")
    assert set_webhook.params["url"] == hook == inbox["webhook_url"] == inbox["provider"]["webhook_url"]
    secret = str(set_webhook.params["secret_token"])
    assert re.fullmatch(r"[A-Za-z0-9_-]{16,256}", secret)
    assert set(set_webhook.params["allowed_updates"]) == {"message", "callback_query"}
    assert inbox["provider"]["bot_username"] == "chatcommerce_test_bot"
    assert (inbox["kind"], inbox["active"], inbox["health"]["status"], inbox["has_credentials"]) == (
        "telegram", True, "CONNECTED", True)
    listed = (await shop.client.get(INBOXES, headers=AUTH)).json()
    assert sorted(i["kind"] for i in listed) == ["console", "telegram", "webchat"]
    # Credentials are encrypted at rest and never shown.
    column = await stored_credentials(shop, inbox["id"])
    assert_absent([bot_api.token, secret, bot_api.token.split(":")[1]], column, json.dumps(inbox), json.dumps(listed))
    assert json.loads(SecretBox(key_material=SECRET_KEY).decrypt(column)) == {
        "bot_token": bot_api.token, "webhook_secret": secret}

    ann = TelegramCustomer(shop=shop, api=bot_api, chat_id=4242)
    [hello] = await ann.say("hi")
    assert "Acme Apparel" in hello["text"] and buttons_of(hello) == ["Catalogue", "Cart", "Talk to a human"]
    [price] = await ann.say("how much is the ocean blue shirt")
    assert "Ocean Blue Shirt costs 50.00 USD" in price["caption"] and price["photo"].startswith("https://")
    [added] = await ann.say("2 classic varsity tops size medium")
    assert "Added 2 × Classic Varsity Top (Medium) — 120.00 USD" in added["text"]
    assert buttons_of(added) == ["Checkout", "Cart", "Continue shopping"]
    [second] = await ann.say("add an ocean blue shirt")
    assert "1 × Ocean Blue Shirt — 50.00 USD" in second["text"] and "Cart total: 170.00 USD" in second["text"]

    # Checkout by pressing the inline button: a callback_query, answered so the spinner stops.
    [name_question] = await ann.press("Checkout")
    [answered] = bot_api.accepted("answerCallbackQuery")
    assert answered.params["callback_query_id"]
    assert "Total: 170.00 USD" in name_question["text"] and "What name" in name_question["text"]
    [address_question] = await ann.say("Alice Smith")
    assert "delivery address" in address_question["text"]
    [phone_question] = await ann.say("12 Main Street, Springfield")
    assert "phone" in phone_question["text"] and "Skip" in buttons_of(phone_question)
    [link_message] = await ann.press("Skip")
    assert len(bot_api.accepted("answerCallbackQuery")) == 2
    [link] = PAY_LINK.findall(link_message["text"])
    assert "Order #1001" in link_message["text"] and "170.00 USD" in link_message["text"]

    order = await assert_the_order(shop, phone=None)
    assert (order["status"], order["payment_status"]) == ("pending_payment", "payment_link_sent")

    await shop.pay_test(link)
    [order] = await shop.orders()
    assert (order["status"], order["payment_status"]) == ("paid", "paid")
    [confirmation] = ann.new()
    assert confirmation["text"] == CONFIRMATION and str(confirmation["chat_id"]) == "4242"
    [stored] = [m for m in await shop.messages(inbox["id"], direction="out") if m.sender == "system"]
    assert stored.status == "sent" and stored.payload["provider_message_id"]

    # The owner checks the inbox, then disconnects it: Telegram stops delivering, and a late update
    # is not taken any more.
    status = (await shop.client.get(f"{INBOXES}/{inbox['id']}/status", headers=AUTH)).json()
    assert status["provider"]["status"] == "WORKING" and status["provider"]["webhook_url"] == hook
    gone = await shop.client.delete(f"{INBOXES}/{inbox['id']}", headers=AUTH)
    assert gone.status_code == 200 and gone.json()["active"] is False
    assert bot_api.accepted("deleteWebhook") and bot_api.webhook_url == ""
    late = await shop.client.post(f"/webhooks/telegram/{inbox['id']}", json=text_update(4242, "hello?"),
                                  headers={"X-Telegram-Bot-Api-Secret-Token": secret})
    assert late.status_code == 404
    assert len(await shop.messages(inbox["id"], direction="in")) == 8  # four texts, two presses, name, address

    # Nothing of the credentials in any log line of the whole purchase.
    out = capsys.readouterr()
    assert_absent([bot_api.token, secret], caplog.text, out.out, out.err, json.dumps(status), gone.text)


async def test_whatsapp_connect_scan_buy_and_paid_confirmation(
    shop: Shop, waha: FakeWaha, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.INFO)
    inbox = await connect_waha(shop, waha, buffer_seconds=0.05)

    # The session was created, started, with our signed webhook; the owner gets the QR to scan.
    hook = f"{BASE}/webhooks/whatsapp_waha/{inbox['id']}"
    [created] = [r for r in waha.calls("/api/sessions") if r.method == "POST"]
    assert created.status == 201 and created.json["name"] == "default" and created.json["start"] is True
    [webhook] = created.json["config"]["webhooks"]
    assert webhook["url"] == hook == inbox["webhook_url"]
    assert set(webhook["events"]) == {"message", "session.status"}
    hmac_key = webhook["hmac"]["key"]
    assert len(hmac_key) >= 16
    provider = inbox["provider"]
    assert provider["status"] == "SCAN_QR_CODE" and inbox["health"]["status"] == "SCAN_QR_CODE"
    assert provider["qr"] == waha.sessions["default"].qr_value and provider["qr"].startswith("2@")
    assert provider["qr_image"].startswith("data:image/png;base64,")
    qr = await shop.client.get(f"{INBOXES}/{inbox['id']}/qr", headers=AUTH)
    assert qr.json() == {"qr": provider["qr"]}
    column = await stored_credentials(shop, inbox["id"])
    assert_absent([waha.api_key, hmac_key], column, json.dumps(inbox))
    assert json.loads(SecretBox(key_material=SECRET_KEY).decrypt(column)) == {"api_key": waha.api_key,
                                                                             "hmac_key": hmac_key}

    # The owner scans: WAHA reports WORKING through the signed webhook and the inbox shows it.
    [status_delivery] = await waha.scan_qr("default")
    assert status_delivery.status == 200
    [listed] = [i for i in (await shop.client.get(INBOXES, headers=AUTH)).json() if i["id"] == inbox["id"]]
    assert listed["health"]["status"] == "WORKING"

    ann = WhatsAppCustomer(shop=shop, waha=waha, chat_id="15557654321@c.us")
    [hello] = await ann.say("hi")
    # No buttons on WhatsApp: the choices come as a numbered list.
    assert "Acme Apparel" in hello["text"] and "1. Catalogue" in hello["text"] and hello["session"] == "default"
    [price] = await ann.say("how much is the ocean blue shirt")
    assert "Ocean Blue Shirt costs 50.00 USD" in price["caption"] and price["file"]["url"].startswith("https://")
    [added] = await ann.say("2 classic varsity tops size medium")
    assert "Added 2 × Classic Varsity Top (Medium) — 120.00 USD" in added["text"]
    [second] = await ann.say("add an ocean blue shirt")
    assert "Cart total: 170.00 USD" in second["text"]
    [name_question] = await ann.say("checkout")
    assert "What name" in name_question["text"]
    assert "delivery address" in (await ann.say("Alice Smith"))[0]["text"]
    # WhatsApp gave the number (a @c.us chat): the bot does not ask for a phone, it sends the link.
    [link_message] = await ann.say("12 Main Street, Springfield")
    [link] = PAY_LINK.findall(link_message["text"])
    assert "Order #1001" in link_message["text"] and "+15557654321" in link_message["text"]

    order = await assert_the_order(shop, phone="+15557654321")
    assert order["payment_status"] == "payment_link_sent"

    # A manager records a cash payment: the customer is told on WhatsApp.
    paid = await shop.client.post(f"{ORDERS}/{order['id']}/mark-paid", json={"method": "cash"}, headers=AUTH)
    assert paid.status_code == 200 and paid.json()["payment_status"] == "paid"
    [confirmation] = ann.new()
    assert confirmation["text"] == CONFIRMATION and confirmation["chatId"] == "15557654321@c.us"
    out = capsys.readouterr()
    assert_absent([waha.api_key, hmac_key], caplog.text, out.out, out.err)


async def test_email_connect_buy_pay_and_confirmation_in_the_thread(
    shop: Shop, mailbox: Mailbox, smtp: SMTPServer, caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.INFO)
    password = mailbox.env["DOVECOT_PASSWORD"]
    inbox = await shop.connect("email", credentials={"imap_password": password},
                               settings=email_settings(mailbox, smtp))
    assert (inbox["kind"], inbox["active"], inbox["has_credentials"]) == ("email", True, True)
    assert "webhook_url" not in inbox  # mail is pulled over IMAP: there is no webhook to configure
    assert_absent([password], json.dumps(inbox), await stored_credentials(shop, inbox["id"]))

    # The background worker starts the IMAP watcher of the new inbox.
    assert (await shop.workers.sweep_once())["email_watchers"] == 1
    alice = EmailCustomer(shop=shop, smtp=smtp, append=mailbox.append)

    hello = await alice.say("Hi!")
    first = alice.last_sent
    assert first is not None
    assert hello["Subject"] == "Re: Shopping question" and hello["In-Reply-To"] == first["Message-ID"]
    assert hello["To"] == "alice@customer.test" and "shop@example.test" in hello["From"]
    assert "Acme Apparel" in mail_text(hello) and "1. Catalogue" in mail_text(hello)
    price = await alice.say("How much is the Ocean Blue Shirt?")
    assert "Ocean Blue Shirt costs 50.00 USD" in mail_text(price) and "https://" in mail_text(price)
    assert "Added 2 × Classic Varsity Top (Medium) — 120.00 USD" in mail_text(
        await alice.say("2 classic varsity tops size medium"))
    assert "Cart total: 170.00 USD" in mail_text(await alice.say("add an ocean blue shirt"))
    assert "What name" in mail_text(await alice.say("checkout"))
    assert "delivery address" in mail_text(await alice.say("Alice Smith"))
    assert "phone" in mail_text(await alice.say("12 Main Street, Springfield"))
    link_mail = await alice.say("skip")
    [link] = PAY_LINK.findall(mail_text(link_mail))
    assert "Order #1001" in mail_text(link_mail)
    # The shop's conversation holds what Alice wrote, without the quoted history under her replies.
    assert [m.text for m in await shop.messages(inbox["id"], direction="in")] == [
        "Hi!", "How much is the Ocean Blue Shirt?", "2 classic varsity tops size medium", "add an ocean blue shirt",
        "checkout", "Alice Smith", "12 Main Street, Springfield", "skip"]
    # One thread: every reply answers the mail before it and keeps the subject.
    replies = alice.received()
    assert [m["In-Reply-To"] for m in replies] == alice.sent_ids
    assert {m["Subject"] for m in replies} == {"Re: Shopping question"}
    assert all(m["Auto-Submitted"] == "auto-replied" for m in replies)

    async def all_seen() -> bool:
        return await mailbox.unseen_count() == 0

    await eventually(all_seen, what="the watcher to mark every stored mail seen")

    order = await assert_the_order(shop, phone=None)
    assert order["payment_status"] == "payment_link_sent"
    await shop.pay_test(link)
    await eventually(lambda: len(alice.received()) == len(replies) + 1, what="the confirmation mail")
    confirmation = alice.received()[-1]
    assert mail_text(confirmation).strip() == CONFIRMATION
    assert confirmation["Subject"] == "Re: Shopping question"
    assert confirmation["In-Reply-To"] == alice.sent_ids[-1]
    assert alice.sent_ids[-1] in confirmation["References"]
    assert [(await shop.orders())[0]["payment_status"]] == ["paid"]
    out = capsys.readouterr()
    assert_absent([password], caplog.text, out.out, out.err)


# -- connecting through the CLI ----------------------------------------------------------------------


class Cli:
    """``chatcommerce`` in-process (typer's CliRunner), run in a worker thread: each command runs its
    own event loop (``asyncio.run``) while the provider doubles keep serving on the test's loop."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.runner = CliRunner()
        self.outputs: list[str] = []

    async def run(self, *args: str) -> str:
        result = await asyncio.to_thread(self.runner.invoke, cli_app, list(args), env=self.env, obj=CliOptions())
        self.outputs += [result.stdout, result.stderr]
        assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
        return result.stdout

    async def json(self, *args: str) -> Any:
        return json.loads(await self.run(*args, "--json"))


async def test_cli_connects_lists_and_disconnects_telegram_and_whatsapp(
    database_url: str, tmp_path: Path, bot_api: FakeBotAPI, waha: FakeWaha, caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    cli = Cli({"CHATCOMMERCE_DATABASE_URL": database_url, "CHATCOMMERCE_DATA_DIR": str(tmp_path / "data"),
               "CHATCOMMERCE_SECRET_KEY": SECRET_KEY, "CHATCOMMERCE_PUBLIC_BASE_URL": "https://shop.example.com"})
    await cli.json("tenants", "create", "--name", "Acme", "--slug", "acme")
    await cli.json("companies", "create", "--tenant", "acme", "--slug", "acme-shop", "--name", "Acme Apparel")

    tg = await cli.json("inboxes", "connect", "--company", "acme-shop", "--kind", "telegram",
                        "--credentials", json.dumps({"bot_token": bot_api.token}),
                        "--settings", json.dumps({"api_base": bot_api.api_base}))
    hook = f"https://shop.example.com/webhooks/telegram/{tg['id']}"
    assert tg["webhook_url"] == hook and tg["health"]["status"] == "CONNECTED"
    assert bot_api.webhook_url == hook and bot_api.webhook_secret
    secret = bot_api.webhook_secret

    # WhatsApp in text mode: the owner reads the webhook and the QR to scan.
    creds = tmp_path / "waha.json"
    creds.write_text(json.dumps({"api_key": waha.api_key}))
    text = await cli.run("inboxes", "connect", "--company", "acme-shop", "--kind", "whatsapp_waha",
                         "--credentials", f"@{creds}",
                         "--settings", json.dumps({"base_url": waha.url, "session": "default"}))
    [wa_id] = re.findall(r"connected whatsapp_waha inbox ([0-9a-f-]{36})", text)
    assert f"webhook: https://shop.example.com/webhooks/whatsapp_waha/{wa_id}" in text
    assert waha.sessions["default"].qr_value in text
    hmac_key = waha.sessions["default"].config["webhooks"][0]["hmac"]["key"]

    listed = await cli.json("inboxes", "list", "--company", "acme-shop")
    assert [(i["kind"], i["active"]) for i in listed][2:] == [("telegram", True), ("whatsapp_waha", True)]
    assert {i["kind"] for i in listed[:2]} == {"webchat", "console"}
    listed_text = await cli.run("inboxes", "list", "--company", "acme-shop")
    assert tg["id"] in listed_text and "CONNECTED" in listed_text

    gone = await cli.json("inboxes", "disconnect", "--company", "acme-shop", tg["id"])
    assert (gone["active"], gone["health"]["status"]) == (False, "DISCONNECTED")
    assert bot_api.accepted("deleteWebhook") and bot_api.webhook_url == ""
    await cli.json("inboxes", "disconnect", "--company", "acme-shop", wa_id)
    assert [r.path for r in waha.requests if r.method == "POST"][-2:] == [
        "/api/sessions/default/logout", "/api/sessions/default/stop"]
    listed = await cli.json("inboxes", "list", "--company", "acme-shop")
    assert [(i["kind"], i["active"]) for i in listed][2:] == [("telegram", False), ("whatsapp_waha", False)]

    engine = create_engine(database_url)
    try:
        async with create_sessionmaker(engine)() as s:
            columns = list((await s.execute(select(Inbox.credentials).where(Inbox.credentials.is_not(None))))
                           .scalars())
    finally:
        await engine.dispose()
    assert len(columns) == 2
    assert_absent([bot_api.token, secret, waha.api_key, hmac_key], *columns, *cli.outputs, caplog.text)


async def test_connect_refused_by_the_provider_keeps_nothing_and_tells_why(shop: Shop, bot_api: FakeBotAPI) -> None:
    wrong = "999999:WRONG-token_abcdefghijklmnopqrstuv"
    r = await shop.client.post(INBOXES, json={"kind": "telegram", "credentials": {"bot_token": wrong},
                                              "settings": {"api_base": bot_api.api_base}}, headers=AUTH)
    assert r.status_code == 422 and "telegram provider refused" in r.json()["detail"]
    assert wrong not in r.text and "WRONG" not in r.text
    assert sorted(i["kind"] for i in (await shop.client.get(INBOXES, headers=AUTH)).json()) == ["console", "webchat"]
    unknown = await shop.client.post(INBOXES, json={"kind": "fax"}, headers=AUTH)
    assert unknown.status_code == 422 and "fax" in unknown.json()["detail"]


# -- delivery guarantees over real adapters ----------------------------------------------------------


async def test_telegram_update_delivered_three_times_is_stored_and_answered_once(shop: Shop,
                                                                                 bot_api: FakeBotAPI) -> None:
    inbox = await connect_telegram(shop, bot_api, buffer_seconds=0)
    update = {"update_id": 555_001, **text_update(777, "hi", message_id=31, date=int(time.time()))}
    # Telegram retries a delivery it thinks failed; two copies even arrive at the same time.
    first = await bot_api.deliver_update(update)
    concurrent = await asyncio.gather(bot_api.deliver_update(update), bot_api.deliver_update(update))
    await shop.runtime.pipeline.drain()
    assert [first, *concurrent] == [200, 200, 200]
    inbound = await shop.messages(inbox["id"], direction="in")
    assert [(m.source_id, m.text) for m in inbound] == [("777:31", "hi")]
    assert len(await shop.messages(inbox["id"], direction="out")) == 1
    [answer] = bot_api.sent
    assert answer.method == "sendMessage" and answer.params["chat_id"] == "777"
    assert "Acme Apparel" in answer.params["text"]


async def test_whatsapp_burst_within_the_window_gets_one_answer(shop: Shop, waha: FakeWaha) -> None:
    inbox = await connect_waha(shop, waha, buffer_seconds=0.5)
    await waha.scan_qr("default")
    bob = WhatsAppCustomer(shop=shop, waha=waha, chat_id="123456789012345@lid")
    for text in ("hi", "2 classic varsity tops size medium", "cart"):
        await bob.send(text)
    assert waha.accepted_messages == []  # nothing yet: the window is still open
    await shop.runtime.pipeline.drain()
    [answer] = bob.received()
    assert answer["chatId"] == "123456789012345@lid"
    text = answer["text"]
    assert "Acme Apparel" in text and "Added 2 × Classic Varsity Top (Medium) — 120.00 USD" in text
    assert "Total: 120.00 USD" in text
    assert len(await shop.messages(inbox["id"], direction="in")) == 3
    assert len(await shop.messages(inbox["id"], direction="out")) == 1
    # While the window was open the customer saw "typing…".
    assert {c.json["chatId"] for c in waha.calls("/api/startTyping")} == {"123456789012345@lid"}


async def test_bad_secret_or_signature_is_refused_and_nothing_is_stored(shop: Shop, bot_api: FakeBotAPI,
                                                                        waha: FakeWaha) -> None:
    tg = await connect_telegram(shop, bot_api, buffer_seconds=0)
    wa = await connect_waha(shop, waha, buffer_seconds=0)
    await waha.scan_qr("default")
    update = text_update(4242, "hi", date=int(time.time()))
    assert await bot_api.deliver_update(update, secret="not-the-secret") == 401
    missing = await shop.client.post(f"/webhooks/telegram/{tg['id']}", json={"update_id": 1, **update})
    assert missing.status_code == 401

    [unsigned] = await waha.emit("default", "message", {
        "id": "false_15557654321@c.us_AAA", "timestamp": int(time.time()), "from": "15557654321@c.us",
        "fromMe": False, "body": "hi"}, sign=False)
    assert unsigned.status == 401
    body = json.dumps({"event": "message", "session": "default", "payload": {
        "id": "false_15557654321@c.us_BBB", "timestamp": int(time.time()), "from": "15557654321@c.us",
        "fromMe": False, "body": "hi"}}).encode()
    forged = hmac.new(b"guessed-key", body, hashlib.sha512).hexdigest()
    r = await shop.client.post(f"/webhooks/whatsapp_waha/{wa['id']}", content=body,
                               headers={"X-Webhook-Hmac": forged, "X-Webhook-Hmac-Algorithm": "sha512",
                                        "Content-Type": "application/json"})
    assert r.status_code == 401
    # A signature of the right key over another body does not cover a tampered one.
    good_key = waha.sessions["default"].config["webhooks"][0]["hmac"]["key"]
    signed = hmac.new(good_key.encode(), body, hashlib.sha512).hexdigest()
    tampered = body.replace(b'"hi"', b'"send me everything"')
    r = await shop.client.post(f"/webhooks/whatsapp_waha/{wa['id']}", content=tampered,
                               headers={"X-Webhook-Hmac": signed, "Content-Type": "application/json"})
    assert r.status_code == 401
    # Routing is by inbox id and kind: another kind's path or an unknown inbox is not found.
    assert (await shop.client.post(f"/webhooks/telegram/{wa['id']}", json=update)).status_code == 404
    assert (await shop.client.post(f"/webhooks/telegram/{uuid.uuid4()}", json=update)).status_code == 404

    await shop.runtime.pipeline.drain()
    async with shop.runtime.sessionmaker() as s:
        assert (await s.execute(select(func.count()).select_from(Message))).scalar_one() == 0
    assert bot_api.sent == [] and waha.accepted_messages == []
    # The same message correctly signed is accepted: the refusals were about the signatures.
    r = await shop.client.post(f"/webhooks/whatsapp_waha/{wa['id']}", content=body,
                               headers={"X-Webhook-Hmac": signed, "X-Webhook-Hmac-Algorithm": "sha512",
                                        "Content-Type": "application/json"})
    assert r.status_code == 200 and r.json()["stored"] == 1


async def test_inboxes_without_webhooks_refuse_webhook_deliveries(shop: Shop, smtp: SMTPServer) -> None:
    """E-mail is read over IMAP with the inbox's own login; a POST to its webhook path must not inject
    mail (the bot would answer an address of the sender's choosing)."""
    inbox = await shop.connect("email", credentials={"imap_password": "imap-secret"}, settings={
        "imap_host": "127.0.0.1", "imap_user": "shop@example.test", "from_address": "shop@example.test",
        "smtp_host": smtp.host, "smtp_port": smtp.port, "smtp_starttls": False, "buffer_seconds": 0})
    raw = (b"From: victim@elsewhere.test\r\nTo: shop@example.test\r\nSubject: hi\r\n"
           b"Message-ID: <forged-1@elsewhere.test>\r\n\r\nhi\r\n")
    r = await shop.client.post(f"/webhooks/email/{inbox['id']}", content=raw)
    assert r.status_code == 404
    listed = (await shop.client.get(INBOXES, headers=AUTH)).json()
    console = next(i for i in listed if i["kind"] == "console")
    r = await shop.client.post(f"/webhooks/console/{console['id']}?contact=x", content=b"hi")
    assert r.status_code == 404
    await shop.runtime.pipeline.drain()
    async with shop.runtime.sessionmaker() as s:
        assert (await s.execute(select(func.count()).select_from(Message))).scalar_one() == 0
    assert smtp.received == []


async def test_telegram_send_failing_with_502_then_429_reaches_the_customer_once(
    shop: Shop, bot_api: FakeBotAPI, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str],
) -> None:
    caplog.set_level(logging.INFO)
    inbox = await connect_telegram(shop, bot_api, buffer_seconds=0)
    bot_api.fail_next(1, status=502)
    bot_api.fail_next(1, status=429, retry_after=1)
    ann = TelegramCustomer(shop=shop, api=bot_api, chat_id=4242)
    [hello] = await ann.say("hi")
    assert "Acme Apparel" in hello["text"]
    attempts = [c.status for c in bot_api.calls if c.method == "sendMessage"]
    assert attempts == [502, 429, 200]
    [reply] = await shop.messages(inbox["id"], direction="out")
    assert reply.status == "sent" and reply.sent_at is not None
    assert reply.payload["provider_message_id"].isdigit()
    # The sweep has nothing left to deliver: the customer is not sent the answer again.
    assert (await shop.workers.sweep_once())["delivered"] == 0
    assert len(ann.received()) == 1

    # A customer who blocked the bot (403, not retried): the reply is marked failed, a manager is
    # flagged, and the log says why without the token.
    bot_api.blocked_chats.add("5151")
    blocked = TelegramCustomer(shop=shop, api=bot_api, chat_id=5151)
    assert await blocked.deliver(text_update(5151, "hi", date=int(time.time()))) == 200
    assert [c.status for c in bot_api.calls if c.params.get("chat_id") == "5151"] == [403]
    failed = [m for m in await shop.messages(inbox["id"], direction="out") if m.status == "failed"]
    assert len(failed) == 1 and "blocked" in failed[0].payload["error"]
    conversations = (await shop.client.get("/api/v1/tenants/acme/companies/acme-shop/conversations",
                                           headers=AUTH)).json()
    assert {c["status"] for c in conversations} == {"open", "pending"}
    out = capsys.readouterr()
    assert "send_failed" in out.out + out.err + caplog.text
    assert_absent([bot_api.token, bot_api.token.split(":")[1]], out.out, out.err, caplog.text,
                  failed[0].payload["error"])
