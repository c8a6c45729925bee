"""Telegram adapter against a local Bot API server (tests/doubles/telegram_bot_api.py).

No database: adapters never touch it. Every request goes over HTTP through aiogram, exactly as in
production; only the base URL differs (``Inbox.settings["api_base"]``).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramServerError,
)

from bot.messages import Button, OutboundMessage
from channels.base import ParsedInbound, RawRequest, SignatureError
from channels.telegram import (
    HASHED_CALLBACK_PREFIX,
    MAX_CALLBACK_DATA,
    SECRET_HEADER,
    TelegramChannel,
    callback_data_for,
    split_text,
)
from tests.channel_contract import ChannelContract, ContractHarness, ExpectedInbound
from tests.doubles import WebhookReceiver
from tests.doubles.telegram_bot_api import FakeBotAPI, callback_update, contact_update, text_update

SECRET = "wh-secret_0123456789abcdefghij"
INBOX_PATH = "/webhooks/telegram/3f1c2a9e-0000-4000-8000-000000000001"


@pytest.fixture
async def api() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI() as server:
        yield server


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    async with WebhookReceiver() as server:
        yield server


def make_channel(api: FakeBotAPI, **overrides: Any) -> TelegramChannel:
    credentials = {"bot_token": api.token, "webhook_secret": SECRET}
    credentials.update(overrides.pop("credentials", {}))
    options: dict[str, Any] = {"retry_wait": 0.001, "retry_max_wait": 0.01, **overrides}
    return TelegramChannel(credentials=credentials, settings={"api_base": api.api_base}, **options)


@pytest.fixture
async def channel(api: FakeBotAPI) -> AsyncIterator[TelegramChannel]:
    ch = make_channel(api)
    yield ch
    await ch.aclose()


def raw_update(update: dict[str, Any], *, secret: str | None = SECRET) -> RawRequest:
    headers = {"content-type": "application/json"}
    if secret is not None:
        headers[SECRET_HEADER] = secret
    update = {"update_id": 1, **update}
    return RawRequest(headers=headers, body=json.dumps(update).encode())


class TelegramOutbox:
    """What the customer sees: accepted sendMessage/sendPhoto calls."""

    def __init__(self, api: FakeBotAPI) -> None:
        self.api = api

    def texts(self) -> list[str]:
        return [str(c.params.get("text") or c.params.get("caption") or "") for c in self.api.sent]

    def buttons(self) -> list[list[str]]:
        result = []
        for c in self.api.sent:
            markup = c.params.get("reply_markup") or {}
            result.append([b["text"] for row in markup.get("inline_keyboard", []) for b in row])
        return result


class TestTelegramContract(ChannelContract):
    @pytest.fixture
    async def harness(self, api: FakeBotAPI, receiver: WebhookReceiver) -> AsyncIterator[ContractHarness]:
        ch = make_channel(api)
        await ch.connect(webhook_url=receiver.url + INBOX_PATH)
        assert await api.deliver_update(text_update(4242, "Do you have oat milk?", message_id=77)) == 200
        assert await api.deliver_update({"edited_message": text_update(4242, "oat milk??")["message"]}) == 200
        delivery, non_message = await receiver.wait_for(2)
        yield ContractHarness(
            channel=ch,
            delivery=delivery,
            expected=ExpectedInbound(contact_source_id="4242", text="Do you have oat milk?", source_id="4242:77",
                                     contact_name="Ann Lee"),
            recipient="4242",
            outbox=TelegramOutbox(api),
            signature_headers=(SECRET_HEADER,),
            signs_body=False,
            non_message_delivery=non_message,
        )
        await ch.aclose()


# -- webhook registration ---------------------------------------------------------------------------


async def test_connect_sets_webhook_with_secret_and_allowed_updates(api: FakeBotAPI, channel: TelegramChannel,
                                                                    receiver: WebhookReceiver) -> None:
    url = receiver.url + INBOX_PATH
    details = await channel.connect(webhook_url=url)
    assert details == {"webhook_url": url, "bot_id": api.bot_id, "bot_username": api.bot_username}
    [call] = api.accepted("setWebhook")
    assert call.params["url"] == url
    assert call.params["secret_token"] == SECRET
    assert call.params["allowed_updates"] == ["message", "callback_query"]
    assert api.token not in call.params["url"]
    # Telegram then delivers updates with the secret header, and they verify.
    assert await api.deliver_update(text_update(7, "hi")) == 200
    [delivery] = await receiver.wait_for(1)
    assert delivery.headers[SECRET_HEADER] == SECRET
    await channel.verify(delivery)


async def test_connect_refuses_a_url_with_the_token(api: FakeBotAPI, channel: TelegramChannel) -> None:
    with pytest.raises(ValueError, match="token"):
        await channel.connect(webhook_url=f"https://shop.example.com/tg/{api.token}")
    assert api.calls == []


@pytest.mark.parametrize("secret", ["", "has space", "x" * 257, "ünïcode"])
async def test_connect_refuses_a_secret_telegram_would_reject(api: FakeBotAPI, secret: str) -> None:
    ch = make_channel(api, credentials={"webhook_secret": secret})
    with pytest.raises(ValueError, match="webhook_secret"):
        await ch.connect(webhook_url="https://shop.example.com/webhooks/telegram/1")
    await ch.aclose()
    assert api.calls == []


async def test_https_is_required_by_telegram() -> None:
    strict = FakeBotAPI(require_https=True)
    async with strict:
        ch = make_channel(strict)
        with pytest.raises(TelegramBadRequest, match="HTTPS"):
            await ch.connect(webhook_url="http://shop.example.com/webhooks/telegram/1")
        await ch.aclose()


async def test_disconnect_and_status(api: FakeBotAPI, channel: TelegramChannel) -> None:
    await channel.connect(webhook_url="https://shop.example.com/webhooks/telegram/1")
    status = await channel.status()
    assert status["status"] == "WORKING"
    assert status["webhook_url"] == "https://shop.example.com/webhooks/telegram/1"
    assert status["bot_username"] == api.bot_username
    await channel.disconnect()
    assert api.accepted("deleteWebhook")
    assert api.webhook_url == ""
    assert (await channel.status())["status"] == "NOT_CONNECTED"


async def test_status_reports_a_rejected_token(api: FakeBotAPI) -> None:
    ch = make_channel(api, credentials={"bot_token": "999:wrong-token"})
    assert (await ch.status())["status"] == "FAILED"
    await ch.aclose()


# -- verify -----------------------------------------------------------------------------------------


async def test_wrong_secret_from_the_wire_is_refused(api: FakeBotAPI, channel: TelegramChannel,
                                                     receiver: WebhookReceiver) -> None:
    await channel.connect(webhook_url=receiver.url + INBOX_PATH)
    await api.deliver_update(text_update(7, "hi"), secret="someone-else")
    [delivery] = await receiver.wait_for(1)
    with pytest.raises(SignatureError):
        await channel.verify(delivery)


async def test_inbox_without_secret_refuses_everything(api: FakeBotAPI) -> None:
    ch = make_channel(api, credentials={"webhook_secret": None})
    with pytest.raises(SignatureError):
        await ch.verify(raw_update(text_update(7, "hi"), secret=""))
    with pytest.raises(SignatureError):
        await ch.verify(raw_update(text_update(7, "hi"), secret="anything"))


# -- parse ------------------------------------------------------------------------------------------


def test_text_message(channel: TelegramChannel) -> None:
    [msg] = channel.parse(raw_update(text_update(4242, "  hello  ", message_id=9, date=1_700_000_000)))
    assert msg == ParsedInbound(contact_source_id="4242", text="hello", received_at=msg.received_at,
                                source_id="4242:9", contact_name="Ann Lee")
    assert msg.received_at.isoformat() == "2023-11-14T22:13:20+00:00"


def test_caption_counts_as_text(channel: TelegramChannel) -> None:
    update = text_update(5, "x")
    del update["message"]["text"]
    update["message"]["caption"] = "is this in stock?"
    update["message"]["photo"] = [{"file_id": "a", "file_unique_id": "b", "width": 1, "height": 1}]
    assert [m.text for m in channel.parse(raw_update(update))] == ["is this in stock?"]


def test_callback_query_gives_the_payload(channel: TelegramChannel) -> None:
    [msg] = channel.parse(raw_update(callback_update(4242, "size:l", callback_id="987654321")))
    assert (msg.contact_source_id, msg.text, msg.source_id) == ("4242", "size:l", "cb:987654321")
    assert msg.received_at.tzinfo is not None


def test_own_shared_contact_sets_the_phone(channel: TelegramChannel) -> None:
    [msg] = channel.parse(raw_update(contact_update(4242, "1 (555) 123-4567", contact_user_id=4242)))
    assert msg.text == "+15551234567"
    assert msg.phone == "+15551234567"


def test_someone_elses_contact_card_is_not_the_customers_phone(channel: TelegramChannel) -> None:
    [msg] = channel.parse(raw_update(contact_update(4242, "+44 20 7946 0000", contact_user_id=1111)))
    assert msg.text == "+442079460000"
    assert msg.phone is None
    [anonymous] = channel.parse(raw_update(contact_update(4242, "+44 20 7946 0000")))
    assert anonymous.phone is None


@pytest.mark.parametrize(
    "update",
    [
        pytest.param({"edited_message": text_update(1, "edit")["message"]}, id="edited"),
        pytest.param(text_update(-1001, "hello group", chat_type="supergroup"), id="group"),
        pytest.param({"my_chat_member": {"chat": {"id": 1, "type": "private"}, "from": {"id": 1, "is_bot": False,
                                                                                      "first_name": "A"},
                                         "date": 1, "old_chat_member": {"status": "member", "user": {
                                             "id": 2, "is_bot": True, "first_name": "B"}},
                                         "new_chat_member": {"status": "kicked", "until_date": 0, "user": {
                                             "id": 2, "is_bot": True, "first_name": "B"}}}}, id="blocked"),
        pytest.param(callback_update(1, ""), id="callback-without-data"),
    ],
)
def test_updates_without_customer_messages(channel: TelegramChannel, update: dict[str, Any]) -> None:
    assert channel.parse(raw_update(update)) == []


def test_messages_from_bots_and_stickers_are_ignored(channel: TelegramChannel) -> None:
    from_bot = text_update(5, "beep")
    from_bot["message"]["from"]["is_bot"] = True
    sticker = text_update(5, "x")
    del sticker["message"]["text"]
    sticker["message"]["sticker"] = {"file_id": "s", "file_unique_id": "u", "type": "regular", "width": 1,
                                     "height": 1, "is_animated": False, "is_video": False}
    assert channel.parse(raw_update(from_bot)) == []
    assert channel.parse(raw_update(sticker)) == []


@pytest.mark.parametrize("body", [b"[1, 2]", b'{"message": {"text": "no ids"}}', b"not json"])
def test_malformed_updates_raise_value_error(channel: TelegramChannel, body: bytes) -> None:
    with pytest.raises(ValueError):
        channel.parse(RawRequest(headers={}, body=body))


# -- send -------------------------------------------------------------------------------------------


async def test_send_text_uses_send_message(api: FakeBotAPI, channel: TelegramChannel) -> None:
    message_id = await channel.send_text(to="4242", text="Hello!")
    [call] = api.sent
    assert call.method == "sendMessage"
    assert call.params["chat_id"] == "4242"
    assert call.params["text"] == "Hello!"
    assert message_id == "1"


async def test_long_text_is_split_under_the_limit(api: FakeBotAPI, channel: TelegramChannel) -> None:
    text = "\n".join(f"line {i} " + "x" * 90 for i in range(60))  # ~6000 characters
    await channel.send_text(to="4242", text=text)
    sent = [c.params["text"] for c in api.sent]
    assert len(sent) == 2
    assert all(len(t) <= 4096 for t in sent)
    assert "\n".join(sent) == text


def test_split_text_without_break_points() -> None:
    pieces = split_text("y" * 9000)
    assert [len(p) for p in pieces] == [4096, 4096, 808]


async def test_buttons_become_an_inline_keyboard(api: FakeBotAPI, channel: TelegramChannel) -> None:
    long_payload = "add:" + "ü" * 40  # 84 bytes in UTF-8: over Telegram's 64-byte limit
    message = OutboundMessage(text="Add to cart?", url="https://shop.example.com/p/7",
                              buttons=(Button(title="Yes", payload="yes"),
                                       Button(title="Oat milk 1 l", payload=long_payload)))
    await channel.send(to="4242", message=message)
    [call] = api.sent
    assert call.params["text"] == "Add to cart?\nhttps://shop.example.com/p/7"
    rows = call.params["reply_markup"]["inline_keyboard"]
    assert [[b["text"] for b in row] for row in rows] == [["Yes"], ["Oat milk 1 l"]]
    assert rows[0][0]["callback_data"] == "yes"
    hashed = rows[1][0]["callback_data"]
    assert hashed.startswith(HASHED_CALLBACK_PREFIX)
    assert len(hashed.encode()) <= MAX_CALLBACK_DATA
    # Pressing the buttons: the short payload comes back as is, the hashed one as the button's title
    # (found in the callback's message, which carries the keyboard).
    markup = call.params["reply_markup"]
    [yes] = channel.parse(raw_update(callback_update(4242, "yes", reply_markup=markup)))
    [oat] = channel.parse(raw_update(callback_update(4242, hashed, reply_markup=markup)))
    assert (yes.text, oat.text) == ("yes", "Oat milk 1 l")
    # Without the message (older than 48 h, or deleted), a hashed payload cannot be resolved.
    assert channel.parse(raw_update(callback_update(4242, hashed))) == []


def test_callback_data_limits() -> None:
    assert callback_data_for("a" * 64) == "a" * 64
    assert len(callback_data_for("a" * 65).encode()) <= 64
    assert callback_data_for("я" * 32) == "я" * 32  # 64 bytes exactly
    assert callback_data_for("я" * 33).startswith(HASHED_CALLBACK_PREFIX)
    assert callback_data_for("").startswith(HASHED_CALLBACK_PREFIX)
    # A payload that looks hashed is hashed too, so it cannot be mistaken for one.
    assert callback_data_for("~h:abc") != "~h:abc"
    assert callback_data_for("x" * 100) == callback_data_for("x" * 100)


async def test_image_with_caption_and_keyboard(api: FakeBotAPI, channel: TelegramChannel) -> None:
    message = OutboundMessage(text="Oat milk, 1 l — €2.10", image_url="https://cdn.example.com/oat.jpg",
                              buttons=(Button(title="Add", payload="add:oat"),))
    message_id = await channel.send(to="4242", message=message)
    [call] = api.sent
    assert call.method == "sendPhoto"
    assert call.params["photo"] == "https://cdn.example.com/oat.jpg"
    assert call.params["caption"] == "Oat milk, 1 l — €2.10"
    assert call.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"] == "add:oat"
    assert message_id == "1"


async def test_text_over_the_caption_limit_follows_the_photo(api: FakeBotAPI, channel: TelegramChannel) -> None:
    text = "Description. " * 100  # 1300 characters
    message = OutboundMessage(text=text, image_url="https://cdn.example.com/oat.jpg",
                              buttons=(Button(title="Add", payload="add:oat"),))
    message_id = await channel.send(to="4242", message=message)
    photo, follow_up = api.sent
    assert photo.method == "sendPhoto" and "caption" not in photo.params and "reply_markup" not in photo.params
    assert follow_up.method == "sendMessage"
    assert follow_up.params["text"] == text.strip()
    assert follow_up.params["reply_markup"]["inline_keyboard"][0][0]["text"] == "Add"
    assert message_id == "2"


async def test_image_telegram_cannot_fetch_is_sent_as_a_link(api: FakeBotAPI, channel: TelegramChannel) -> None:
    api.bad_photo_urls.add("https://cdn.example.com/missing.jpg")
    await channel.send(to="4242", message=OutboundMessage(text="Here it is", image_url="https://cdn.example.com/missing.jpg"))
    [call] = api.sent
    assert call.method == "sendMessage"
    assert call.params["text"] == "Here it is\nhttps://cdn.example.com/missing.jpg"


# -- retries ----------------------------------------------------------------------------------------


async def test_flood_control_429_then_success_sends_once(api: FakeBotAPI, channel: TelegramChannel) -> None:
    api.fail_next(1, status=429, retry_after=1)
    started = time.monotonic()
    message_id = await channel.send_text(to="4242", text="Hello!")
    assert time.monotonic() - started < 1.0  # retry_after is capped by retry_max_wait in tests
    attempts = [c for c in api.calls if c.method == "sendMessage"]
    assert [c.status for c in attempts] == [429, 200]
    assert [c.params["text"] for c in api.sent] == ["Hello!"]
    assert message_id == "1"


async def test_retry_after_is_honoured_up_to_the_cap(api: FakeBotAPI) -> None:
    ch = make_channel(api, retry_max_wait=0.3)
    api.fail_next(1, status=429, retry_after=1)
    started = time.monotonic()
    await ch.send_text(to="4242", text="x")
    assert 0.25 <= time.monotonic() - started < 1.0
    await ch.aclose()


async def test_server_errors_are_retried_a_bounded_number_of_times(api: FakeBotAPI, channel: TelegramChannel) -> None:
    api.fail_next(5, status=502, description="Bad Gateway")
    with pytest.raises(TelegramServerError):
        await channel.send_text(to="4242", text="Hello!")
    assert [c.status for c in api.calls] == [502, 502, 502]
    assert api.sent == []


async def test_other_client_errors_are_not_retried(api: FakeBotAPI, channel: TelegramChannel) -> None:
    api.blocked_chats.add("4242")
    with pytest.raises(TelegramForbiddenError):
        await channel.send_text(to="4242", text="Hello!")
    assert [c.status for c in api.calls] == [403]


async def test_unreachable_server_is_retried_then_raises(api: FakeBotAPI) -> None:
    closed = FakeBotAPI()
    await closed.start()
    base = closed.api_base
    await closed.stop()  # nothing listens on that port any more
    ch = TelegramChannel(credentials={"bot_token": api.token, "webhook_secret": SECRET}, settings={"api_base": base},
                         retry_wait=0.001, retry_max_wait=0.01)
    with pytest.raises(TelegramNetworkError):
        await ch.send_text(to="4242", text="Hello!")
    await ch.aclose()


# -- long polling -----------------------------------------------------------------------------------


async def test_poll_hands_over_updates_and_confirms_them(api: FakeBotAPI, channel: TelegramChannel) -> None:
    first = await api.queue_update(text_update(4242, "first", message_id=1))
    second = await api.queue_update(callback_update(4242, "size:s", callback_id="55"))
    stop = asyncio.Event()
    received: list[ParsedInbound] = []

    async def handler(parsed: ParsedInbound) -> None:
        received.append(parsed)
        if len(received) == 2:
            stop.set()

    await asyncio.wait_for(channel.poll(handler, stop_event=stop, timeout=1), 5)
    assert [(m.text, m.source_id) for m in received] == [("first", "4242:1"), ("size:s", "cb:55")]
    assert [c.params["callback_query_id"] for c in api.accepted("answerCallbackQuery")] == ["55"]
    # The next poll confirms what was handled (offset = last update_id + 1) and gets nothing again.
    again: list[ParsedInbound] = []

    async def collect(parsed: ParsedInbound) -> None:
        again.append(parsed)

    stop2 = asyncio.Event()
    fresh = make_channel(api)  # a new process: nothing remembered but what Telegram confirmed
    task = asyncio.create_task(fresh.poll(collect, stop_event=stop2, timeout=1))
    await asyncio.sleep(0.3)
    stop2.set()
    await asyncio.wait_for(task, 5)
    assert again == []
    await fresh.aclose()
    offsets = [c.params.get("offset") for c in api.calls if c.method == "getUpdates"]
    assert str(second["update_id"] + 1) in offsets
    assert first["update_id"] < second["update_id"]
    assert api.calls[0].params["allowed_updates"] == ["message", "callback_query"]


async def test_poll_stops_promptly_while_long_polling(channel: TelegramChannel) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(channel.poll(lambda p: asyncio.sleep(0), stop_event=stop, timeout=20))
    await asyncio.sleep(0.2)
    stop.set()
    await asyncio.wait_for(task, 2)


async def test_poll_does_not_confirm_an_update_whose_handler_failed(api: FakeBotAPI, channel: TelegramChannel) -> None:
    await api.queue_update(text_update(4242, "boom", message_id=3))

    async def failing(parsed: ParsedInbound) -> None:
        raise RuntimeError("database is down")

    with pytest.raises(RuntimeError, match="database is down"):
        await asyncio.wait_for(channel.poll(failing, stop_event=asyncio.Event(), timeout=1), 5)
    stop = asyncio.Event()
    got: list[str] = []

    async def ok(parsed: ParsedInbound) -> None:
        got.append(parsed.text)
        stop.set()

    await asyncio.wait_for(channel.poll(ok, stop_event=stop, timeout=1), 5)
    assert got == ["boom"]


async def test_poll_refuses_while_a_webhook_is_set(channel: TelegramChannel) -> None:
    await channel.connect(webhook_url="https://shop.example.com/webhooks/telegram/1")
    with pytest.raises(RuntimeError, match="disconnect"):
        await asyncio.wait_for(channel.poll(lambda p: asyncio.sleep(0), stop_event=asyncio.Event(), timeout=1), 5)
