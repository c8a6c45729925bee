"""The engine's input and output shapes, independent of any channel."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from core.models import Company, Conversation


@dataclass(frozen=True, slots=True)
class Button:
    """A choice shown to the customer. ``payload`` is the text sent back when it is pressed
    (channels without buttons render the choices as a numbered list, see ``OutboundMessage.as_text``)."""

    title: str
    payload: str


@dataclass(frozen=True, slots=True)
class InboundMessage:
    """A customer's message, already stored, as the engine sees it.

    ``received_at`` is timezone-aware UTC; ``source_id`` is the provider's message id.
    ``inbox_assistant``: the inbox's assistant overrides (``Inbox.settings["assistant"]``, ``{}`` for
    none) as the caller already read them, so the engine need not query them on every turn; ``None``
    when the caller did not read them (the engine then does).
    """

    tenant_id: uuid.UUID
    company_id: uuid.UUID
    conversation_id: uuid.UUID
    contact_id: uuid.UUID
    channel: str
    text: str
    received_at: datetime
    source_id: str | None = None
    phone: str | None = None
    inbox_assistant: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class OutboundMessage:
    """A reply: text with optional buttons, an optional link and an optional image URL. ``assistant``
    is the language-model note a manager sees (``{"mode", "by": "model"|"rules", "fallback"}``, issue 9);
    ``None`` for the rules engine."""

    text: str
    buttons: tuple[Button, ...] = field(default_factory=tuple)
    url: str | None = None
    image_url: str | None = None
    assistant: dict[str, object] | None = field(default=None, compare=False)

    def as_payload(self) -> dict[str, object]:
        """JSON-ready form stored in ``Message.payload`` and returned by the web chat API."""
        payload: dict[str, object] = {
            "buttons": [{"title": b.title, "payload": b.payload} for b in self.buttons],
            "url": self.url,
            "image_url": self.image_url,
        }
        if self.assistant is not None:
            payload["assistant"] = self.assistant
        return payload

    def as_text(self) -> str:
        """Plain-text fallback: the text, the link and the choices as a numbered list."""
        parts = [self.text]
        if self.url and self.url not in self.text:
            parts.append(self.url)
        if self.buttons:
            parts.append("\n".join(f"{i}. {b.title}" for i, b in enumerate(self.buttons, 1)))
        return "\n".join(parts)


class Responder(Protocol):
    """What the pipeline calls: the dialogue engine (``bot.engine.DialogueEngine``) or a test double.

    ``respond`` runs inside the caller's transaction: it may read the knowledge base, change the
    conversation's ``state`` and create carts, orders and payment links, and returns the replies
    (the caller stores and delivers them).
    """

    async def respond(
        self, session: AsyncSession, *, inbound: InboundMessage, conversation: Conversation, company: Company
    ) -> list[OutboundMessage]: ...
