"""WAHA adapter against a local WAHA-compatible server (tests/doubles/waha_server.py).

No database: adapters never touch it. Webhooks are real HTTP deliveries from the double to a local
receiver, signed the way WAHA signs them.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from bot.messages import Button, OutboundMessage
from channels.base import RawRequest, SignatureError
from channels.waha import WahaApiError, WahaChannel, chat_id_for, message_id_of, phone_from_chat_id, sign
from tests.channel_contract import ChannelContract, ContractHarness, ExpectedInbound
from tests.doubles import WebhookReceiver
from tests.doubles.waha_server import FakeWaha

HMAC_KEY = "whk_9f8e7d6c5b4a39281706"
CUSTOMER = "15557654321@c.us"
INBOX_PATH = "/webhooks/whatsapp_waha/3f1c2a9e-0000-4000-8000-000000000002"

# WAHA's published test vector (https://waha.devlike.pro/docs/how-to/events/#hmac-authentication).
DOCS_BODY = b'{"event":"message","session":"default","engine":"WEBJS"}'
DOCS_KEY = "my-secret-key"
DOCS_HMAC = ("208f8a55dde9e05519e898b10b89bf0d0b3b0fdf11fdbf09b6b90476301b98d8"
             "097c462b2b17a6ce93b6b47a136cf2e78a33a63f6752c2c1631777076153fa89")


@pytest.fixture
async def waha() -> AsyncIterator[FakeWaha]:
    async with FakeWaha() as server:
        yield server


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    async with WebhookReceiver() as server:
        yield server


def make_channel(waha: FakeWaha, *, credentials: dict[str, Any] | None = None,
                 settings: dict[str, Any] | None = None, **options: Any) -> WahaChannel:
    creds = {"api_key": waha.api_key, "hmac_key": HMAC_KEY, **(credentials or {})}
    conf = {"base_url": waha.url, "session": "default", **(settings or {})}
    opts = {"retry_wait": 0.001, "retry_max_wait": 0.01, **options}
    return WahaChannel(credentials=creds, settings=conf, **opts)


@pytest.fixture
async def channel(waha: FakeWaha) -> AsyncIterator[WahaChannel]:
    ch = make_channel(waha)
    yield ch
    await ch.aclose()


@pytest.fixture
async def connected(waha: FakeWaha, channel: WahaChannel, receiver: WebhookReceiver) -> WahaChannel:
    """The inbox connected through the real flow: session created with our webhook, QR scanned."""
    await channel.connect(webhook_url=receiver.url + INBOX_PATH)
    await waha.scan_qr("default")
    await receiver.wait_for(1)  # the session.status WORKING event
    return channel


def raw_event(event: dict[str, Any], *, key: str | None = HMAC_KEY) -> RawRequest:
    body = json.dumps(event, separators=(",", ":")).encode()
    headers = {"content-type": "application/json"}
    if key:
        headers["x-webhook-hmac"] = sign(body, key)
        headers["x-webhook-hmac-algorithm"] = "sha512"
    return RawRequest(headers=headers, body=body)


def message_event(**payload: Any) -> dict[str, Any]:
    base = {"id": "false_15557654321@c.us_3EB0ABCDEF", "timestamp": 1_700_000_000, "from": CUSTOMER,
            "fromMe": False, "to": "15550001111@c.us", "body": "hello", "hasMedia": False, "media": None,
            "replyTo": None, "_data": {"notifyName": "Ann"}}
    base.update(payload)
    return {"id": "evt_01", "timestamp": 1_700_000_000_123, "event": "message", "session": "default",
            "me": {"id": "15550001111@c.us", "pushName": "Shop"}, "payload": base, "engine": "WEBJS"}


class WahaOutbox:
    """What the customer receives: accepted sendText/sendImage requests (text or caption)."""

    def __init__(self, waha: FakeWaha) -> None:
        self.waha = waha

    def texts(self) -> list[str]:
        return [str(r.json.get("text") or r.json.get("caption") or "") for r in self.waha.accepted_messages]

    def buttons(self) -> list[list[str]]:
        return [[] for _ in self.waha.accepted_messages]  # WAHA sends no native buttons


class TestWahaContract(ChannelContract):
    @pytest.fixture
    async def harness(self, waha: FakeWaha, receiver: WebhookReceiver) -> AsyncIterator[ContractHarness]:
        ch = make_channel(waha)
        await ch.connect(webhook_url=receiver.url + INBOX_PATH)
        await waha.scan_qr("default")
        payload, _ = await waha.emit_message(from_=CUSTOMER, body="Do you deliver to Porto?")
        status_event, delivery = await receiver.wait_for(2)
        yield ContractHarness(
            channel=ch,
            delivery=delivery,
            expected=ExpectedInbound(contact_source_id=CUSTOMER, text="Do you deliver to Porto?",
                                     source_id=payload["id"], phone="+15557654321", contact_name="Ann"),
            recipient=CUSTOMER,
            outbox=WahaOutbox(waha),
            signature_headers=("x-webhook-hmac", "x-webhook-hmac-algorithm"),
            signs_body=True,
            non_message_delivery=status_event,
        )
        await ch.aclose()


# -- signatures -------------------------------------------------------------------------------------


def test_hmac_matches_the_waha_docs_test_vector() -> None:
    assert sign(DOCS_BODY, DOCS_KEY) == DOCS_HMAC


async def test_verify_accepts_the_docs_test_vector(waha: FakeWaha) -> None:
    ch = make_channel(waha, credentials={"hmac_key": DOCS_KEY})
    request = RawRequest(headers={"x-webhook-hmac": DOCS_HMAC, "x-webhook-hmac-algorithm": "sha512"}, body=DOCS_BODY)
    await ch.verify(request)
    await ch.verify(dataclasses.replace(request, headers={"x-webhook-hmac": DOCS_HMAC.upper()}))
    with pytest.raises(ValueError, match="payload"):  # authentic, but a "message" event without a payload
        ch.parse(request)
    with pytest.raises(SignatureError):
        await ch.verify(dataclasses.replace(request, headers={"x-webhook-hmac": DOCS_HMAC,
                                                              "x-webhook-hmac-algorithm": "sha256"}))


async def test_webhook_from_the_double_is_signed_like_waha(waha: FakeWaha, connected: WahaChannel,
                                                           receiver: WebhookReceiver) -> None:
    payload, [delivery] = await waha.emit_message(from_=CUSTOMER, body="Olá! Tem leite de aveia? 🥛")
    _, raw = await receiver.wait_for(2)
    assert raw.body == delivery.body  # the exact bytes that were signed
    assert raw.headers["x-webhook-hmac-algorithm"] == "sha512"
    assert raw.headers["x-webhook-hmac"] == sign(raw.body, HMAC_KEY)
    assert raw.headers["x-webhook-request-id"] and raw.headers["x-webhook-timestamp"].isdigit()
    await connected.verify(raw)
    [message] = connected.parse(raw)
    assert message.text == "Olá! Tem leite de aveia? 🥛"
    assert message.source_id == payload["id"]
    assert message.received_at.isoformat() == "2023-11-14T22:13:20+00:00"


async def test_unsigned_delivery_is_refused_when_the_inbox_has_a_key(waha: FakeWaha, connected: WahaChannel,
                                                                     receiver: WebhookReceiver) -> None:
    await waha.emit("default", "message", message_event()["payload"], sign=False)
    _, raw = await receiver.wait_for(2)
    assert "x-webhook-hmac" not in raw.headers
    with pytest.raises(SignatureError):
        await connected.verify(raw)


async def test_delivery_signed_with_another_key_is_refused(channel: WahaChannel) -> None:
    with pytest.raises(SignatureError):
        await channel.verify(raw_event(message_event(), key="not-our-key"))


async def test_inbox_without_a_key_accepts_unsigned_deliveries(waha: FakeWaha) -> None:
    ch = make_channel(waha, credentials={"hmac_key": None})
    await ch.verify(raw_event(message_event(), key=None))


# -- parse ------------------------------------------------------------------------------------------


def test_message_fields(channel: WahaChannel) -> None:
    [message] = channel.parse(raw_event(message_event(body="  2 oat milks please ", timestamp=1_700_000_000.5)))
    assert message.contact_source_id == CUSTOMER
    assert message.text == "2 oat milks please"
    assert message.source_id == "false_15557654321@c.us_3EB0ABCDEF"
    assert message.phone == "+15557654321"
    assert message.contact_name == "Ann"
    assert message.received_at.isoformat() == "2023-11-14T22:13:20.500000+00:00"


def test_lid_contact_has_no_phone(channel: WahaChannel) -> None:
    [message] = channel.parse(raw_event(message_event(**{"from": "123456789012345@lid"})))
    assert message.contact_source_id == "123456789012345@lid"
    assert message.phone is None


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param({"fromMe": True}, id="fromMe"),
        pytest.param({"from": "120363420500389503@g.us", "participant": CUSTOMER}, id="group"),
        pytest.param({"from": "status@broadcast", "participant": CUSTOMER}, id="status-broadcast"),
        pytest.param({"from": "120363111111111111@newsletter"}, id="channel"),
        pytest.param({"from": "someone@s.whatsapp.net"}, id="unknown-server"),
        pytest.param({"body": "", "hasMedia": True, "media": {"url": "http://waha:3000/api/files/x.jpg"}},
                     id="media-without-caption"),
    ],
)
def test_ignored_messages(channel: WahaChannel, payload: dict[str, Any]) -> None:
    assert channel.parse(raw_event(message_event(**payload))) == []


async def test_from_me_and_group_messages_from_the_wire_are_ignored(waha: FakeWaha, connected: WahaChannel,
                                                                    receiver: WebhookReceiver) -> None:
    await waha.emit_message(from_=CUSTOMER, body="sent from the shop's phone", from_me=True)
    await waha.emit_message(from_="120363420500389503@g.us", body="group chatter", participant=CUSTOMER)
    _, mine, group = await receiver.wait_for(3)
    for raw in (mine, group):
        await connected.verify(raw)
        assert connected.parse(raw) == []


def test_events_of_another_session_are_ignored(channel: WahaChannel) -> None:
    event = message_event()
    event["session"] = "other-shop"
    assert channel.parse(raw_event(event)) == []


def test_session_status_is_exposed_not_parsed(channel: WahaChannel) -> None:
    status = raw_event({"event": "session.status", "session": "default", "payload": {"status": "FAILED"}})
    assert channel.parse(status) == []
    assert channel.parse_status(status) == "FAILED"
    assert channel.parse_status(raw_event(message_event())) is None
    other = raw_event({"event": "session.status", "session": "other", "payload": {"status": "WORKING"}})
    assert channel.parse_status(other) is None


@pytest.mark.parametrize("body", [b"nope", b"[]", b'{"payload": {}}',
                                  b'{"event":"message","session":"default","payload":{"from":"1@c.us"}}',
                                  b'{"event":"message","session":"default","payload":"text"}'])
def test_malformed_events_raise_value_error(channel: WahaChannel, body: bytes) -> None:
    with pytest.raises(ValueError):
        channel.parse(RawRequest(headers={}, body=body))


def test_chat_ids_and_phones() -> None:
    assert chat_id_for("+1 555-765-4321") == "15557654321@c.us"
    assert chat_id_for("123@lid") == "123@lid"
    assert phone_from_chat_id("15557654321@c.us") == "+15557654321"
    assert phone_from_chat_id("123456789012345@lid") is None
    with pytest.raises(ValueError):
        chat_id_for("  ")


def test_message_id_of_every_engine_shape() -> None:
    assert message_id_of({"id": "true_1@c.us_AAA"}) == "true_1@c.us_AAA"  # WAMessage
    assert message_id_of({"id": {"fromMe": True, "_serialized": "true_1@c.us_BBB"}}) == "true_1@c.us_BBB"  # WEBJS
    assert message_id_of({"_data": {"id": {"_serialized": "true_1@c.us_CCC"}}}) == "true_1@c.us_CCC"
    assert message_id_of({"key": {"remoteJid": "1@s.whatsapp.net", "fromMe": True, "id": "3EB0"}}) == "3EB0"  # NOWEB
    assert message_id_of(None) is None  # empty 201 body


# -- session lifecycle ------------------------------------------------------------------------------


async def test_connect_creates_the_session_with_a_signed_webhook(waha: FakeWaha, channel: WahaChannel) -> None:
    url = "https://shop.example.com" + INBOX_PATH
    details = await channel.connect(webhook_url=url)
    [create] = waha.calls("/api/sessions")
    assert create.method == "POST"
    assert create.json == {"name": "default", "start": True, "config": {"webhooks": [
        {"url": url, "events": ["message", "session.status"], "hmac": {"key": HMAC_KEY}}]}}
    state = waha.sessions["default"]
    assert details["status"] == "SCAN_QR_CODE"
    assert details["qr"] == state.qr_value
    assert details["qr_image"].startswith("data:image/png;base64,")
    base64.b64decode(details["qr_image"].split(",", 1)[1])
    assert all(r.headers.get("x-api-key") == waha.api_key for r in waha.requests)


async def test_connect_updates_an_existing_session_and_keeps_other_webhooks(waha: FakeWaha,
                                                                             channel: WahaChannel) -> None:
    other = {"url": "https://crm.example.com/hook", "events": ["message.ack"], "hmac": None, "retries": None,
             "customHeaders": None}
    stale = {"url": "https://old-host.example.com" + INBOX_PATH, "events": ["message"], "hmac": {"key": HMAC_KEY}}
    waha.add_session("default", status="WORKING",
                     config={"webhooks": [other, stale], "proxy": {"server": "proxy:3128"}, "metadata": {"a": "1"}})
    url = "https://shop.example.com" + INBOX_PATH
    details = await channel.connect(webhook_url=url)
    [put] = [r for r in waha.requests if r.method == "PUT"]
    assert put.path == "/api/sessions/default"
    assert put.json["config"]["webhooks"] == [other, channel.webhook_config(url)]
    assert put.json["config"]["proxy"] == {"server": "proxy:3128"}
    assert put.json["config"]["metadata"] == {"a": "1"}
    assert waha.calls("/api/sessions/default/start")
    assert details == {"session": "default", "status": "WORKING", "qr": None, "qr_image": None}


async def test_connect_again_does_not_restart_the_session(waha: FakeWaha, channel: WahaChannel) -> None:
    url = "https://shop.example.com" + INBOX_PATH
    await channel.connect(webhook_url=url)
    await channel.connect(webhook_url=url)
    assert [r for r in waha.requests if r.method == "PUT"] == []
    assert len([r for r in waha.requests if r.method == "POST" and r.path == "/api/sessions"]) == 1


async def test_status_and_disconnect(waha: FakeWaha, channel: WahaChannel) -> None:
    assert (await channel.status())["status"] == "NOT_CONNECTED"
    waha.add_session("default", status="WORKING")
    status = await channel.status()
    assert status["status"] == "WORKING" and status["me"]["id"] == "15550001111@c.us"
    await channel.disconnect()
    assert [r.path for r in waha.requests if r.method == "POST"] == ["/api/sessions/default/logout",
                                                                     "/api/sessions/default/stop"]
    assert (await channel.status())["status"] == "STOPPED"
    assert waha.sessions["default"].me is None


async def test_qr_is_none_unless_waiting_for_a_scan(waha: FakeWaha, channel: WahaChannel) -> None:
    assert await channel.qr() is None
    waha.add_session("default", status="WORKING")
    assert await channel.qr() is None
    assert await channel.qr_image() is None


# -- send -------------------------------------------------------------------------------------------


async def test_send_text(waha: FakeWaha, connected: WahaChannel) -> None:
    message_id = await connected.send_text(to=CUSTOMER, text="Yes, we deliver to Porto.", reply_to="false_x_y")
    [sent] = waha.accepted_messages
    assert sent.path == "/api/sendText"
    assert sent.json == {"session": "default", "chatId": CUSTOMER, "text": "Yes, we deliver to Porto.",
                         "reply_to": "false_x_y"}
    assert message_id and message_id.startswith(f"true_{CUSTOMER}_")


async def test_buttons_become_a_numbered_list(waha: FakeWaha, connected: WahaChannel) -> None:
    message = OutboundMessage(text="Pick a size", url="https://shop.example.com/p/1",
                              buttons=(Button("Small", "s"), Button("Large", "l")))
    await connected.send(to=CUSTOMER, message=message)
    [sent] = waha.accepted_messages
    assert sent.json["text"] == "Pick a size\nhttps://shop.example.com/p/1\n1. Small\n2. Large"


async def test_image_with_caption(waha: FakeWaha, connected: WahaChannel) -> None:
    message_id = await connected.send(to=CUSTOMER, message=OutboundMessage(
        text="Oat milk 1 l", image_url="https://cdn.example.com/img/oat.png?v=2"))
    [sent] = waha.accepted_messages
    assert sent.path == "/api/sendImage"
    assert sent.json == {"session": "default", "chatId": CUSTOMER, "caption": "Oat milk 1 l",
                         "file": {"url": "https://cdn.example.com/img/oat.png?v=2", "mimetype": "image/png",
                                  "filename": "oat.png"}}
    assert message_id


async def test_image_refused_falls_back_to_text_with_the_link(waha: FakeWaha, connected: WahaChannel) -> None:
    waha.image_supported = False
    await connected.send(to=CUSTOMER, message=OutboundMessage(text="Oat milk", image_url="https://cdn.example.com/o.jpg"))
    assert [r.status for r in waha.calls("/api/sendImage")] == [422]
    [sent] = waha.accepted_messages
    assert sent.json["text"] == "Oat milk\nhttps://cdn.example.com/o.jpg"


async def test_long_text_follows_the_image(waha: FakeWaha, connected: WahaChannel) -> None:
    text = "word " * 300
    await connected.send(to=CUSTOMER, message=OutboundMessage(text=text, image_url="https://cdn.example.com/o.jpg"))
    image, follow_up = waha.accepted_messages
    assert "caption" not in image.json
    assert follow_up.json["text"] == text.strip()


async def test_seen_and_typing(waha: FakeWaha, connected: WahaChannel) -> None:
    await connected.send_seen(to=CUSTOMER, message_ids=["false_1@c.us_A"])
    await connected.start_typing(to=CUSTOMER)
    await connected.stop_typing(to=CUSTOMER)
    assert [(r.path, r.status) for r in waha.requests[-3:]] == [
        ("/api/sendSeen", 201), ("/api/startTyping", 201), ("/api/stopTyping", 201)]
    assert waha.requests[-3].json == {"session": "default", "chatId": CUSTOMER, "messageIds": ["false_1@c.us_A"]}


# -- retries ----------------------------------------------------------------------------------------


async def test_500_twice_then_success_is_one_accepted_message(waha: FakeWaha, connected: WahaChannel) -> None:
    waha.fail_next(2, status=500)
    message_id = await connected.send_text(to=CUSTOMER, text="Your order is on its way.")
    assert [r.status for r in waha.calls("/api/sendText")] == [500, 500, 201]
    assert len(waha.accepted_messages) == 1
    assert message_id


async def test_429_is_retried(waha: FakeWaha, connected: WahaChannel) -> None:
    waha.fail_next(1, status=429)
    await connected.send_text(to=CUSTOMER, text="hi")
    assert [r.status for r in waha.calls("/api/sendText")] == [429, 201]


async def test_retries_are_bounded(waha: FakeWaha, connected: WahaChannel) -> None:
    waha.fail_next(10, status=503)
    with pytest.raises(WahaApiError) as caught:
        await connected.send_text(to=CUSTOMER, text="hi")
    assert caught.value.status_code == 503
    assert len(waha.calls("/api/sendText")) == 3
    assert waha.accepted_messages == []


async def test_400_is_not_retried(waha: FakeWaha, connected: WahaChannel) -> None:
    waha.fail_next(1, status=400)
    with pytest.raises(WahaApiError) as caught:
        await connected.send_text(to=CUSTOMER, text="hi")
    assert caught.value.status_code == 400
    assert len(waha.calls("/api/sendText")) == 1


async def test_session_not_working_is_not_retried(waha: FakeWaha, channel: WahaChannel) -> None:
    waha.add_session("default", status="SCAN_QR_CODE")
    with pytest.raises(WahaApiError) as caught:
        await channel.send_text(to=CUSTOMER, text="hi")
    assert caught.value.status_code == 422
    assert len(waha.calls("/api/sendText")) == 1


async def test_wrong_api_key_is_not_retried(waha: FakeWaha) -> None:
    waha.add_session("default", status="WORKING")
    ch = make_channel(waha, credentials={"api_key": "wrong"})
    with pytest.raises(WahaApiError) as caught:
        await ch.send_text(to=CUSTOMER, text="hi")
    assert caught.value.status_code == 401
    assert len(waha.requests) == 1
    await ch.aclose()


async def test_unreachable_server_is_retried_then_raises(waha: FakeWaha) -> None:
    closed = FakeWaha()
    await closed.start()
    url = closed.url
    await closed.stop()
    ch = make_channel(waha, settings={"base_url": url})
    with pytest.raises(httpx.ConnectError):
        await ch.send_text(to=CUSTOMER, text="hi")
    await ch.aclose()
