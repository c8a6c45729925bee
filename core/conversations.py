"""Appending messages to a conversation: the one place that numbers them (``Message.seq``), and where
a new conversation's lead source is read from its first customer message (``core.leads``).

``Conversation.last_seq`` holds the latest number. ``append_message`` takes the next one with one
``UPDATE conversations SET last_seq = last_seq + 1 … RETURNING last_seq`` (atomic, and it locks the
conversation's row until the caller commits), or — when the caller already holds that row lock, as
the inbound pipeline does — by counting on in memory (``locked=True``; the change is written with the
conversation's other changes at flush).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, case, literal, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from core.leads import lead_source_of
from core.models import Conversation, Inbox, Message
from core.timeutil import utcnow


async def next_seq(session: AsyncSession, *, conversation: Conversation) -> int:
    """Reserve the conversation's next message number (after the larger of the row's ``last_seq`` and
    the object's): one ``UPDATE … RETURNING`` that also sets
    ``updated_at`` (aware UTC) and locks the row until commit. The ORM object is brought up to date
    without marking it changed. Raises ``LookupError`` when the conversation's row does not exist."""
    if conversation in session.new:
        await session.flush()
    now = utcnow()
    # The larger of the row's number and this object's: the hot path counts on in memory under the row
    # lock and writes the number at commit (``channels.pipeline._count_on``).
    known = literal(conversation.last_seq or 0, BigInteger)
    seq = (
        await session.execute(
            update(Conversation)
            .where(Conversation.id == conversation.id)
            .values(last_seq=case((Conversation.last_seq > known, Conversation.last_seq), else_=known) + 1,
                    updated_at=now)
            .returning(Conversation.last_seq)
            .execution_options(synchronize_session=False)
        )
    ).scalar_one_or_none()
    if seq is None:
        raise LookupError(f"conversation {conversation.id} not found")
    set_committed_value(conversation, "last_seq", seq)
    set_committed_value(conversation, "updated_at", now)
    return int(seq)


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
    locked: bool = False,
    claimed_at: datetime | None = None,
) -> Message:
    """Add a message to ``conversation`` with the next ``seq`` and return it (flushed, not committed).

    ``direction`` is ``in`` or ``out``; ``sender`` is contact | bot | manager | system. Outbound
    messages start ``pending`` (the outbox) unless ``status`` says otherwise (``sending`` with
    ``claimed_at``, aware UTC: the caller delivers it right after its commit); inbound ones are
    ``received``. ``channel`` defaults to the conversation's inbox kind. The first message of a
    conversation, when it comes from the contact, sets ``conversation.lead_source`` (a campaign code
    such as ``ref: tiktok-spring`` or a Telegram ``/start <param>``, see ``core.leads``).
    ``locked=True`` says the
    caller holds the conversation's row lock in this transaction (``SELECT … FOR UPDATE`` or an
    ``UPDATE`` of the row): the number is then counted on in memory, saving a statement.
    """
    if direction not in ("in", "out"):
        raise ValueError(f"direction must be 'in' or 'out', not {direction!r}")
    if channel is None:
        inbox = await session.get(Inbox, conversation.inbox_id)
        channel = inbox.kind if inbox else "unknown"
    if locked:
        seq = (conversation.last_seq or 0) + 1
        conversation.last_seq = seq
        conversation.updated_at = utcnow()
    else:
        seq = await next_seq(session, conversation=conversation)
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
        seq=seq,
        created_at=utcnow(),
        claimed_at=claimed_at,
    )
    session.add(message)
    if seq == 1 and direction == "in" and sender == "contact" and conversation.lead_source is None:
        conversation.lead_source = lead_source_of(text)
    await session.flush()
    return message
