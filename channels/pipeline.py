"""The inbound pipeline: store the customer's message (once), ask the bot, store and deliver replies.

Every inbound message is stored before it is answered; ``(inbox_id, direction, source_id)`` is unique
so a redelivered webhook is a no-op. Replies are stored as pending outbound messages (the outbox)
and then delivered through the inbox's ``Channel``; bot-initiated messages (payment confirmations)
take the same outbound path via ``deliver_pending``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.messages import Button, InboundMessage, OutboundMessage, Responder
from channels.base import Channel, ParsedInbound
from channels.registry import ChannelRegistry
from core.conversations import append_message
from core.models import Company, Contact, ContactInbox, Conversation, Inbox, Message
from core.timeutil import utcnow

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Reply:
    """A stored outbound message as returned to synchronous callers (web chat, console)."""

    message_id: uuid.UUID
    text: str
    buttons: list[dict[str, str]] = field(default_factory=list)
    url: str | None = None
    image_url: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {"text": self.text, "buttons": self.buttons, "url": self.url, "image_url": self.image_url}

    @classmethod
    def from_message(cls, message: Message) -> Reply:
        payload = message.payload or {}
        return cls(message_id=message.id, text=message.text, buttons=list(payload.get("buttons") or []),
                   url=payload.get("url"), image_url=payload.get("image_url"))


@dataclass(frozen=True, slots=True)
class ReceiveResult:
    """Outcome of one inbound message: ``duplicate`` when it had been received before (nothing was
    done), ``handoff`` when a manager owns the conversation (stored, not answered)."""

    conversation_id: uuid.UUID | None
    message_id: uuid.UUID | None
    duplicate: bool = False
    handoff: bool = False
    replies: list[Reply] = field(default_factory=list)


async def _contact_for(session: AsyncSession, *, inbox: Inbox, parsed: ParsedInbound) -> Contact:
    link = (
        await session.execute(
            select(ContactInbox).where(ContactInbox.inbox_id == inbox.id,
                                       ContactInbox.source_id == parsed.contact_source_id)
        )
    ).scalar_one_or_none()
    if link is not None:
        contact = await session.get(Contact, link.contact_id)
        assert contact is not None
        if parsed.phone and not contact.phone:
            contact.phone = parsed.phone
        return contact
    contact = Contact(tenant_id=inbox.tenant_id, company_id=inbox.company_id, name=parsed.contact_name,
                      phone=parsed.phone, email=parsed.email)
    session.add(contact)
    await session.flush()
    session.add(ContactInbox(tenant_id=inbox.tenant_id, contact_id=contact.id, inbox_id=inbox.id,
                             source_id=parsed.contact_source_id))
    await session.flush()
    return contact


async def _conversation_for(session: AsyncSession, *, inbox: Inbox, contact: Contact) -> Conversation:
    conv = (
        await session.execute(
            select(Conversation)
            .where(Conversation.tenant_id == inbox.tenant_id, Conversation.inbox_id == inbox.id,
                   Conversation.contact_id == contact.id, Conversation.status != "resolved")
            .order_by(Conversation.created_at.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    if conv is None:
        conv = Conversation(tenant_id=inbox.tenant_id, company_id=inbox.company_id, inbox_id=inbox.id,
                            contact_id=contact.id, status="open", state={})
        session.add(conv)
        await session.flush()
    return conv


async def _already_received(session: AsyncSession, *, inbox: Inbox, source_id: str | None) -> bool:
    if not source_id:
        return False
    found = await session.execute(
        select(Message.id).where(Message.inbox_id == inbox.id, Message.direction == "in",
                                 Message.source_id == source_id)
    )
    return found.first() is not None


class Pipeline:
    """Receives parsed messages for an inbox and answers them with the dialogue engine."""

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        responder: Responder,
        channels: ChannelRegistry,
        channel_factory: ChannelFactory | None = None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._responder = responder
        self._channels = channels
        self._factory = channel_factory or ChannelFactory(channels=channels)

    async def receive(self, *, inbox_id: uuid.UUID, parsed: ParsedInbound) -> ReceiveResult:
        """Store ``parsed`` in its conversation, answer it and deliver the replies.

        A message whose ``source_id`` was already received returns ``duplicate=True`` and does nothing
        (the unique constraint decides when two deliveries race).
        """
        try:
            async with self._sessionmaker() as session, session.begin():
                result = await self._receive_in(session, inbox_id=inbox_id, parsed=parsed)
        except IntegrityError:
            # A concurrent delivery of the same source_id won the unique constraint.
            return ReceiveResult(conversation_id=None, message_id=None, duplicate=True)
        if result.replies or not result.duplicate:
            await self.deliver_pending(conversation_id=result.conversation_id)
        return result

    async def _receive_in(self, session: AsyncSession, *, inbox_id: uuid.UUID, parsed: ParsedInbound) -> ReceiveResult:
        inbox = await session.get(Inbox, inbox_id)
        if inbox is None or not inbox.active:
            raise LookupError(f"inbox {inbox_id} not found or inactive")
        if await _already_received(session, inbox=inbox, source_id=parsed.source_id):
            return ReceiveResult(conversation_id=None, message_id=None, duplicate=True)
        company = await session.get(Company, inbox.company_id)
        assert company is not None
        contact = await _contact_for(session, inbox=inbox, parsed=parsed)
        conversation = await _conversation_for(session, inbox=inbox, contact=contact)
        inbound_row = await append_message(
            session, conversation=conversation, direction="in", sender="contact", text=parsed.text,
            channel=inbox.kind, source_id=parsed.source_id,
        )
        if conversation.handoff:
            return ReceiveResult(conversation_id=conversation.id, message_id=inbound_row.id, handoff=True)
        inbound = InboundMessage(
            tenant_id=inbox.tenant_id, company_id=company.id, conversation_id=conversation.id,
            contact_id=contact.id, channel=inbox.kind, text=parsed.text, received_at=parsed.received_at,
            source_id=parsed.source_id, phone=parsed.phone or contact.phone,
        )
        outbound: list[OutboundMessage] = await self._responder.respond(
            session, inbound=inbound, conversation=conversation, company=company
        )
        replies: list[Reply] = []
        for out in outbound:
            row = await append_message(
                session, conversation=conversation, direction="out", sender="bot", text=out.text,
                channel=inbox.kind, payload=out.as_payload(),
            )
            replies.append(Reply.from_message(row))
        return ReceiveResult(conversation_id=conversation.id, message_id=inbound_row.id,
                             handoff=conversation.handoff, replies=replies)

    async def deliver_pending(self, *, conversation_id: uuid.UUID | None = None, limit: int = 100) -> int:
        """Send pending outbound messages (of one conversation, or all) through their inbox's channel,
        in order. Returns how many were sent; a failed send marks the message ``failed`` and flags the
        conversation for a manager."""
        sent = 0
        async with self._sessionmaker() as session, session.begin():
            stmt = select(Message).where(Message.direction == "out", Message.status == "pending")
            if conversation_id is not None:
                stmt = stmt.where(Message.conversation_id == conversation_id)
            rows = list((await session.execute(stmt.order_by(Message.created_at, Message.seq).limit(limit))).scalars())
            for msg in rows:
                inbox = await session.get(Inbox, msg.inbox_id)
                conv = await session.get(Conversation, msg.conversation_id)
                if inbox is None or conv is None:
                    continue
                link = (
                    await session.execute(
                        select(ContactInbox.source_id).where(ContactInbox.inbox_id == inbox.id,
                                                             ContactInbox.contact_id == conv.contact_id)
                    )
                ).scalar_one_or_none()
                channel = self._factory.build(inbox)
                reply = Reply.from_message(msg)
                out = OutboundMessage(
                    text=reply.text, url=reply.url, image_url=reply.image_url,
                    buttons=tuple(_buttons(reply.buttons)),
                )
                try:
                    provider_id = await channel.send(to=link or "", message=out)
                except Exception as exc:  # noqa: BLE001 - any provider failure is recorded, not raised
                    log.warning("send_failed", message_id=str(msg.id), channel=inbox.kind, error=repr(exc))
                    msg.status = "failed"
                    conv.status = "pending"
                    continue
                finally:
                    await channel.aclose()
                msg.status = "sent"
                msg.sent_at = utcnow()
                if provider_id:
                    msg.source_id = provider_id
                sent += 1
        return sent


def _buttons(raw: list[dict[str, str]]) -> list[Button]:
    return [Button(title=b.get("title", ""), payload=b.get("payload", b.get("title", ""))) for b in raw]


class ChannelFactory:
    """Builds the adapter instance for an inbox (decrypting credentials when a ``decrypt`` is given)."""

    def __init__(self, *, channels: ChannelRegistry, decrypt: Callable[[str], str] | None = None) -> None:
        self._channels = channels
        self._decrypt = decrypt

    def build(self, inbox: Inbox) -> Channel:
        cls = self._channels.get(inbox.kind)
        credentials: dict[str, object] = {}
        if inbox.credentials and callable(self._decrypt):
            credentials = json.loads(self._decrypt(inbox.credentials))
        return cls(credentials=credentials, settings=inbox.settings or {})
