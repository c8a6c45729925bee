"""Appending messages to a conversation: the one place that numbers them (``Message.seq``), and where
a new conversation's lead source is read from its first customer message (``core.leads``)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.leads import lead_source_of
from core.models import Conversation, Inbox, Message
from core.timeutil import utcnow


async def append_message(
    session: AsyncSession,
    *,
    conversation: Conversation,
    direction: str,
    sender: str,
    text: str,
    channel: str | None = None,
    source_id: str | None = None,
    payload: dict[str, Any] | None = None,
    status: str | None = None,
) -> Message:
    """Add a message to ``conversation`` with the next ``seq`` and return it (flushed, not committed).

    ``direction`` is ``in`` or ``out``; ``sender`` is contact | bot | manager | system. Outbound
    messages start ``pending`` (the outbox) unless ``status`` says otherwise; inbound ones are
    ``received``. ``channel`` defaults to the conversation's inbox kind. The first message of a
    conversation, when it comes from the contact, sets ``conversation.lead_source`` (a campaign code
    such as ``ref: tiktok-spring`` or a Telegram ``/start <param>``, see ``core.leads``).
    """
    if direction not in ("in", "out"):
        raise ValueError(f"direction must be 'in' or 'out', not {direction!r}")
    if channel is None:
        inbox = await session.get(Inbox, conversation.inbox_id)
        channel = inbox.kind if inbox else "unknown"
    last = (
        await session.execute(select(func.max(Message.seq)).where(Message.conversation_id == conversation.id))
    ).scalar_one()
    message = Message(
        tenant_id=conversation.tenant_id,
        conversation_id=conversation.id,
        inbox_id=conversation.inbox_id,
        channel=channel,
        direction=direction,
        sender=sender,
        source_id=source_id,
        text=text,
        payload=payload or {},
        status=status or ("received" if direction == "in" else "pending"),
        seq=(last or 0) + 1,
        created_at=utcnow(),
    )
    session.add(message)
    if last is None and direction == "in" and sender == "contact" and conversation.lead_source is None:
        conversation.lead_source = lead_source_of(text)
    conversation.updated_at = utcnow()
    await session.flush()
    return message
