"""The contract every ``Channel`` adapter keeps, as a reusable test suite.

Use it from an adapter's test module by subclassing ``ChannelContract`` in a class whose name starts
with ``Test`` and providing a ``harness`` fixture::

    class TestMyChannelContract(ChannelContract):
        @pytest.fixture
        async def harness(self, my_provider_double) -> ContractHarness:
            channel = MyChannel(credentials=..., settings={"base_url": my_provider_double.url})
            delivery = ...  # a RawRequest as the provider really sends it, correctly signed
            yield ContractHarness(channel=channel, delivery=delivery,
                                  expected=ExpectedInbound(contact_source_id="...", text="..."),
                                  recipient="...", outbox=MyOutbox(my_provider_double),
                                  signature_headers=("x-my-signature",), signs_body=True)
            await channel.aclose()

What is checked (each test's docstring says why):

* a real delivery verifies and parses into the expected message, with aware-UTC time, and a
  redelivery parses to the same ``source_id`` (the pipeline drops duplicates by it);
* a malformed body raises ``ValueError``; an event without a customer message parses to ``[]``;
* signatures: the good one passes, a missing or altered one raises ``SignatureError``, and so does a
  tampered body when the signature covers it. Adapters without signatures (web chat, console) skip
  these with the reason given in ``no_signature_reason``;
* ``send_text`` reaches the provider (the double's outbox) and returns its message id;
* ``send`` with buttons uses native buttons when the class says ``supports_buttons`` and the provider
  has them, otherwise the provider receives ``OutboundMessage.as_text()`` (choices as a numbered list);
* ``connect``/``status``/``disconnect`` return the documented shapes; ``aclose`` can be called twice.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

import pytest

from bot.messages import Button, OutboundMessage
from channels.base import Channel, RawRequest, SignatureError


class Outbox(Protocol):
    """What a provider double accepted, in order (failed/refused calls excluded)."""

    def texts(self) -> list[str]:
        """The text (or caption) of every accepted message."""
        ...

    def buttons(self) -> list[list[str]]:
        """The titles of the native buttons of every accepted message (``[]`` for none)."""
        ...


@dataclass(frozen=True)
class ExpectedInbound:
    """What ``parse`` must produce from the harness's delivery (``None`` fields are not checked)."""

    contact_source_id: str
    text: str
    source_id: str | None = None
    phone: str | None = None
    contact_name: str | None = None


@dataclass
class ContractHarness:
    """One adapter wired to its provider double.

    ``delivery`` is a real, correctly signed delivery carrying exactly one customer message;
    ``recipient`` a ``to`` the provider accepts; ``outbox`` ``None`` when the channel pushes nothing
    (its replies travel in the HTTP response). ``signature_headers`` are the (lower-case) headers
    carrying the signature, empty for channels without one (then ``no_signature_reason`` says why);
    ``signs_body`` is true when the signature covers the body. ``non_message_delivery`` is an
    authentic delivery that carries no customer message.
    """

    channel: Channel
    delivery: RawRequest
    expected: ExpectedInbound
    recipient: str
    outbox: Outbox | None = None
    signature_headers: tuple[str, ...] = ()
    signs_body: bool = False
    no_signature_reason: str = "this channel has no signatures"
    non_message_delivery: RawRequest | None = None
    malformed_delivery: RawRequest | None = field(
        default_factory=lambda: RawRequest(headers={}, body=b"\xff\xfe not a provider payload {")
    )
    webhook_url: str = "https://chat.example.com/webhooks/00000000-0000-0000-0000-000000000001"
    returns_provider_ids: bool = True


def _without(request: RawRequest, names: tuple[str, ...]) -> RawRequest:
    return dataclasses.replace(request, headers={k: v for k, v in request.headers.items() if k not in names})


def _altered(value: str) -> str:
    """The same value with its last character changed (same length, so length checks do not help)."""
    if not value:
        return "x"
    last = value[-1]
    return value[:-1] + ("0" if last != "0" else "1")


class ChannelContract:
    """Mixin of contract tests; subclasses provide the ``harness`` fixture (see the module doc)."""

    @pytest.fixture
    def harness(self) -> ContractHarness:  # pragma: no cover - always overridden
        raise NotImplementedError("provide a 'harness' fixture returning a ContractHarness")

    @staticmethod
    def _require_signatures(harness: ContractHarness) -> None:
        if not harness.signature_headers:
            pytest.skip(f"{type(harness.channel).__name__}: {harness.no_signature_reason}")

    # -- class shape -----------------------------------------------------------------------------

    def test_declares_its_kind(self, harness: ContractHarness) -> None:
        """The registry keys adapters by ``kind`` (``Inbox.kind``): a short non-empty string."""
        kind = type(harness.channel).kind
        assert isinstance(kind, str) and kind and len(kind) <= 32
        assert isinstance(type(harness.channel).supports_buttons, bool)

    # -- inbound ---------------------------------------------------------------------------------

    async def test_parses_a_real_delivery(self, harness: ContractHarness) -> None:
        """A delivery as the provider sends it is accepted and becomes exactly the expected message."""
        await harness.channel.verify(harness.delivery)
        parsed = harness.channel.parse(harness.delivery)
        assert len(parsed) == 1
        message = parsed[0]
        expected = harness.expected
        assert message.contact_source_id == expected.contact_source_id
        assert message.text == expected.text
        if expected.source_id is not None:
            assert message.source_id == expected.source_id
        if expected.phone is not None:
            assert message.phone == expected.phone
        if expected.contact_name is not None:
            assert message.contact_name == expected.contact_name
        assert message.received_at.tzinfo is not None
        assert message.received_at.utcoffset() == timedelta(0)

    async def test_redelivery_has_the_same_source_id(self, harness: ContractHarness) -> None:
        """Providers redeliver webhooks; the pipeline drops duplicates by ``source_id``, so parsing the
        same delivery twice must give the same non-empty id (or none at all, for channels without ids)."""
        first = harness.channel.parse(harness.delivery)
        second = harness.channel.parse(harness.delivery)
        assert [m.source_id for m in first] == [m.source_id for m in second]
        if harness.expected.source_id is not None:
            assert first[0].source_id

    def test_malformed_body_raises_value_error(self, harness: ContractHarness) -> None:
        """The webhook handler answers 400 for ``ValueError``; any other exception would be a 500 and
        make the provider retry a delivery that can never succeed."""
        if harness.malformed_delivery is None:
            pytest.skip(f"{type(harness.channel).__name__} accepts any body")
        with pytest.raises(ValueError):
            harness.channel.parse(harness.malformed_delivery)

    async def test_event_without_a_message_parses_to_nothing(self, harness: ContractHarness) -> None:
        """Status updates, receipts and the like are acknowledged but store nothing."""
        if harness.non_message_delivery is None:
            pytest.skip(f"{type(harness.channel).__name__} has no deliveries without messages")
        await harness.channel.verify(harness.non_message_delivery)
        assert harness.channel.parse(harness.non_message_delivery) == []

    # -- signatures ------------------------------------------------------------------------------

    async def test_good_signature_passes(self, harness: ContractHarness) -> None:
        self._require_signatures(harness)
        await harness.channel.verify(harness.delivery)

    async def test_missing_signature_is_refused(self, harness: ContractHarness) -> None:
        """Without the signature headers a delivery is refused (nothing may be stored)."""
        self._require_signatures(harness)
        with pytest.raises(SignatureError):
            await harness.channel.verify(_without(harness.delivery, harness.signature_headers))

    async def test_bad_signature_is_refused(self, harness: ContractHarness) -> None:
        """A signature that differs in one character is refused."""
        self._require_signatures(harness)
        for name in harness.signature_headers:
            headers = dict(harness.delivery.headers)
            if name not in headers:
                continue
            headers[name] = _altered(headers[name])
            with pytest.raises(SignatureError):
                await harness.channel.verify(dataclasses.replace(harness.delivery, headers=headers))

    async def test_tampered_body_is_refused(self, harness: ContractHarness) -> None:
        """When the signature covers the body, changing one byte of the body is refused."""
        self._require_signatures(harness)
        if not harness.signs_body:
            pytest.skip(f"{type(harness.channel).__name__}'s secret does not cover the body")
        body = harness.delivery.body
        tampered = body[:-1] + (b" " if body[-1:] != b" " else b"\n")
        with pytest.raises(SignatureError):
            await harness.channel.verify(dataclasses.replace(harness.delivery, body=tampered))

    # -- outbound --------------------------------------------------------------------------------

    async def test_send_text_reaches_the_provider(self, harness: ContractHarness) -> None:
        """The provider accepts exactly the text; the provider's message id is returned as a string."""
        provider_id = await harness.channel.send_text(to=harness.recipient, text="Your order #1042 is confirmed.")
        if harness.outbox is None:
            assert provider_id is None or isinstance(provider_id, str)
            return
        assert harness.outbox.texts()[-1] == "Your order #1042 is confirmed."
        if harness.returns_provider_ids:
            assert isinstance(provider_id, str) and provider_id

    async def test_buttons_are_native_or_a_numbered_list(self, harness: ContractHarness) -> None:
        """``supports_buttons`` must tell the truth: native buttons reach the provider as buttons;
        otherwise the provider receives ``as_text()`` with the choices as a numbered list."""
        message = OutboundMessage(text="Which size?", buttons=(Button(title="Small", payload="size:s"),
                                                              Button(title="Large", payload="size:l")))
        provider_id = await harness.channel.send(to=harness.recipient, message=message)
        if harness.outbox is None:
            assert provider_id is None or isinstance(provider_id, str)
            return
        native = harness.outbox.buttons()[-1] if harness.outbox.buttons() else []
        if type(harness.channel).supports_buttons:
            assert native == ["Small", "Large"]
            assert harness.outbox.texts()[-1].startswith("Which size?")
        else:
            assert native == []
            assert harness.outbox.texts()[-1] == message.as_text()
            assert "1. Small" in harness.outbox.texts()[-1] and "2. Large" in harness.outbox.texts()[-1]

    # -- lifecycle -------------------------------------------------------------------------------

    async def test_connect_status_disconnect_shapes(self, harness: ContractHarness) -> None:
        """``connect`` returns a dict to show the owner, ``status`` a dict (with ``"status"`` when it
        knows one), ``disconnect`` returns nothing."""
        details = await harness.channel.connect(webhook_url=harness.webhook_url)
        assert isinstance(details, dict)
        status = await harness.channel.status()
        assert isinstance(status, dict)
        if status:
            assert isinstance(status.get("status"), str) and status["status"]
        assert await harness.channel.disconnect() is None

    async def test_aclose_twice(self, harness: ContractHarness) -> None:
        """The pipeline closes every adapter it builds; closing again must be harmless."""
        await harness.channel.aclose()
        await harness.channel.aclose()
