"""The ``Channel`` interface every adapter implements (after Rasa's input/output channels and aiogram).

An adapter writes ``verify``, ``parse`` and ``send_text``; the base class gives richer sends that fall
back to text. Adapters never touch the database: the pipeline stores and loads, the adapter speaks
the provider's wire protocol.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from bot.messages import OutboundMessage


@dataclass(frozen=True, slots=True)
class RawRequest:
    """A provider's HTTP delivery as received: lower-cased header names and the raw body bytes
    (signatures are computed over the raw body)."""

    headers: Mapping[str, str]
    body: bytes
    query: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ParsedInbound:
    """One customer message parsed from a delivery.

    ``contact_source_id`` identifies the customer in this inbox (chat id, e-mail address, web id);
    ``source_id`` is the provider's message id used to drop duplicate deliveries; ``received_at``
    is timezone-aware UTC.
    """

    contact_source_id: str
    text: str
    received_at: datetime
    source_id: str | None = None
    contact_name: str | None = None
    phone: str | None = None
    email: str | None = None


class SignatureError(Exception):
    """A delivery whose signature or secret does not match; it must be refused and nothing stored."""


class Channel(ABC):
    """Base class of channel adapters.

    ``kind`` is the registry key (``Inbox.kind``). ``credentials`` are the inbox's decrypted secrets
    and ``settings`` its plain settings; construct with keywords only.
    """

    kind: ClassVar[str]
    supports_buttons: ClassVar[bool] = False
    # Messages from one contact within this many seconds are answered together (Inbox.settings
    # "buffer_seconds" overrides it). Messengers deliver bursts; the web chat waits for each answer.
    default_buffer_seconds: ClassVar[float] = 0.0
    # The longest customer text (characters) the provider itself lets a customer send. The pipeline
    # stores and answers at most this much and notes the original length in the message's payload
    # (``truncated_from``). Adapters declare their provider's limit; 20,000 is the default for others.
    max_inbound_text: ClassVar[int] = 20_000
    # Deliveries larger than this (bytes) are parsed in a worker thread by ``parse_delivery`` so a huge
    # body never blocks the event loop (and with it every other tenant).
    parse_in_thread_above: ClassVar[int] = 64 * 1024

    def __init__(self, *, credentials: Mapping[str, Any] | None = None, settings: Mapping[str, Any] | None = None):
        self.credentials = dict(credentials or {})
        self.settings = dict(settings or {})

    @abstractmethod
    async def verify(self, request: RawRequest) -> None:
        """Check a delivery's authenticity; raise ``SignatureError`` to refuse it."""

    @abstractmethod
    def parse(self, request: RawRequest) -> list[ParsedInbound]:
        """Turn a verified delivery into customer messages (empty for events that carry none).
        Raise ``ValueError`` for a malformed body."""

    async def parse_delivery(self, request: RawRequest) -> tuple[list[ParsedInbound], str | None]:
        """``parse`` and ``parse_status`` of one verified delivery: (messages, reported status).

        A body over ``parse_in_thread_above`` bytes is parsed in a worker thread (JSON decoding and
        model validation of megabytes take long enough to stall other tenants' requests); smaller
        ones inline. Raises ``ValueError`` for a malformed body, like ``parse``."""
        if len(request.body) > self.parse_in_thread_above:
            return await asyncio.to_thread(self._parse_both, request)
        return self._parse_both(request)

    def _parse_both(self, request: RawRequest) -> tuple[list[ParsedInbound], str | None]:
        return self.parse(request), self.parse_status(request)

    @abstractmethod
    async def send_text(self, *, to: str, text: str) -> str | None:
        """Send plain text to contact ``to``; return the provider's message id when it gives one."""

    async def typing(self, *, to: str) -> None:
        """Show a typing indicator to contact ``to`` while an answer is being prepared (channels that
        have one: Telegram ``sendChatAction``, WAHA ``startTyping``). Nothing by default."""
        return None

    def parse_status(self, request: RawRequest) -> str | None:
        """The provider-side session status a delivery reports (e.g. WAHA's ``session.status``:
        ``WORKING``, ``SCAN_QR_CODE``, ``FAILED``), ``None`` when it reports none (the default)."""
        return None

    async def acknowledge(self, request: RawRequest) -> None:
        """Provider-specific acknowledgement after a delivery was stored (e.g. Telegram's
        ``answerCallbackQuery`` for button presses). Nothing by default."""
        return None

    @classmethod
    def reply_context(cls, parsed: ParsedInbound) -> dict[str, Any]:
        """JSON-ready context a reply to ``parsed`` needs (e.g. e-mail threading headers); stored with
        the inbound message and handed back to :meth:`send_reply`. Empty by default."""
        return {}

    async def send_reply(self, *, to: str, message: OutboundMessage, context: Mapping[str, Any]) -> str | None:
        """Send ``message`` as a reply in the thread described by ``context`` (what
        :meth:`reply_context` returned for the contact's latest message); plain :meth:`send` by default."""
        return await self.send(to=to, message=message)

    async def send(self, *, to: str, message: OutboundMessage) -> str | None:
        """Send a reply with buttons, link and image; adapters that support more override this,
        others get the plain-text fallback (choices as a numbered list)."""
        return await self.send_text(to=to, text=message.as_text())

    async def connect(self, *, webhook_url: str) -> dict[str, Any]:
        """Register this inbox with the provider (set a webhook, start a session). Returns details to
        show the owner (e.g. a QR code to scan). Channels with nothing to register return ``{}``."""
        return {}

    async def disconnect(self) -> None:
        """Undo ``connect`` (delete the webhook, log out). No-op by default."""
        return None

    async def status(self) -> dict[str, Any]:
        """Provider-side health of the inbox, e.g. ``{"status": "WORKING"}``; ``{}`` when unknown."""
        return {}

    async def aclose(self) -> None:
        """Release network resources held by the adapter (none by default)."""
        return None
