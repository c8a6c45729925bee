"""Read helpers shared by the admin API and the CLI: conversations and messages as JSON-ready dicts.

Every query is scoped by a ``TenantScope`` and a company of that tenant.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.llm.usage import conversation_totals
from core.models import Company, Contact, ContactInbox, Conversation, Inbox, Message
from core.tenancy import NotFound, TenantScope


def message_dict(message: Message) -> dict[str, Any]:
    """A message as the admin API and ``chatcommerce conversations show`` return it."""
    return {
        "id": str(message.id),
        "seq": message.seq,
        "direction": message.direction,
        "sender": message.sender,
        "text": message.text,
        "payload": message.payload or {},
        "status": message.status,
        "created_at": message.created_at.isoformat(),
    }


async def _describe(
    session: AsyncSession, scope: TenantScope, conversations: list[Conversation]
) -> list[dict[str, Any]]:
    """Summaries (contact, channel, status, handoff, last message) of ``conversations`` in that order."""
    if not conversations:
        return []
    ids = [c.id for c in conversations]
    contacts = {
        c.id: c
        for c in (
            await session.execute(scope.select(Contact, Contact.id.in_({c.contact_id for c in conversations})))
        ).scalars()
    }
    inbox_ids = {c.inbox_id for c in conversations}
    inboxes = {i.id: i for i in (await session.execute(scope.select(Inbox, Inbox.id.in_(inbox_ids)))).scalars()}
    links = {
        (link.inbox_id, link.contact_id): link.source_id
        for link in (
            await session.execute(
                scope.select(ContactInbox, ContactInbox.contact_id.in_({c.contact_id for c in conversations}))
            )
        ).scalars()
    }
    last_seq = (
        select(Message.conversation_id, func.max(Message.seq).label("seq"))
        .where(Message.tenant_id == scope.tenant_id, Message.conversation_id.in_(ids))
        .group_by(Message.conversation_id)
        .subquery()
    )
    last = {
        m.conversation_id: m
        for m in (
            await session.execute(
                scope.select(Message).join(
                    last_seq, and_(Message.conversation_id == last_seq.c.conversation_id, Message.seq == last_seq.c.seq)
                )
            )
        ).scalars()
    }
    out: list[dict[str, Any]] = []
    for conv in conversations:
        contact = contacts.get(conv.contact_id)
        inbox = inboxes.get(conv.inbox_id)
        last_message = last.get(conv.id)
        out.append(
            {
                "id": str(conv.id),
                "channel": inbox.kind if inbox else "unknown",
                "status": conv.status,
                "handoff": conv.handoff,
                "contact": {
                    "id": str(conv.contact_id),
                    "name": contact.name if contact else None,
                    "phone": contact.phone if contact else None,
                    "email": contact.email if contact else None,
                    "source_id": links.get((conv.inbox_id, conv.contact_id)),
                },
                "last_message": message_dict(last_message) if last_message else None,
                "created_at": conv.created_at.isoformat(),
                "updated_at": conv.updated_at.isoformat(),
            }
        )
    return out


async def list_conversations(
    session: AsyncSession, *, scope: TenantScope, company: Company, limit: int = 100
) -> list[dict[str, Any]]:
    """The company's conversations, most recently active first."""
    rows = list(
        (
            await session.execute(
                scope.select(Conversation, Conversation.company_id == company.id)
                .order_by(Conversation.updated_at.desc())
                .limit(limit)
            )
        ).scalars()
    )
    return await _describe(session, scope, rows)


async def get_conversation(
    session: AsyncSession, *, scope: TenantScope, company: Company, conversation_id: uuid.UUID
) -> Conversation:
    """One conversation of the company; raises ``NotFound`` (also for another company's or tenant's)."""
    conv = await scope.get(session, Conversation, conversation_id)
    if conv.company_id != company.id:
        raise NotFound(f"Conversation {conversation_id} not found")
    return conv


async def conversation_messages(
    session: AsyncSession, *, scope: TenantScope, conversation_id: uuid.UUID, after_seq: int = 0
) -> list[Message]:
    """The conversation's messages with ``seq > after_seq``, in order."""
    return list(
        (
            await session.execute(
                scope.select(Message, Message.conversation_id == conversation_id, Message.seq > after_seq).order_by(
                    Message.seq
                )
            )
        ).scalars()
    )


async def conversation_detail(
    session: AsyncSession, *, scope: TenantScope, conversation: Conversation
) -> dict[str, Any]:
    """A conversation's summary plus all its ``messages`` and, when a language model took part,
    ``assistant``: the turns it answered, the ones the rules answered for it (``fallback_turns``,
    ``last_fallback``) and its ``usage`` (requests, tokens, cost in micro-USD)."""
    (summary,) = await _describe(session, scope, [conversation])
    messages = await conversation_messages(session, scope=scope, conversation_id=conversation.id)
    note = (conversation.state or {}).get("assistant")
    assistant = None
    if isinstance(note, dict):
        usage = await conversation_totals(session, tenant_id=scope.tenant_id, conversation_id=conversation.id)
        assistant = {**note, "usage": usage}
    return {**summary, "messages": [message_dict(m) for m in messages], "assistant": assistant}


async def conversations_of_contact(
    session: AsyncSession, *, company: Company, source_id: str, inbox_kinds: tuple[str, ...] | None = None
) -> list[Conversation]:
    """Conversations of the contact known as ``source_id`` (web id, console id) in the company's
    inboxes (optionally only of ``inbox_kinds``), oldest first."""
    scope = TenantScope(company.tenant_id)
    stmt = (
        scope.select(Conversation, Conversation.company_id == company.id)
        .join(
            ContactInbox,
            and_(ContactInbox.contact_id == Conversation.contact_id, ContactInbox.inbox_id == Conversation.inbox_id),
        )
        .where(ContactInbox.source_id == source_id)
        .order_by(Conversation.created_at)
    )
    if inbox_kinds:
        stmt = stmt.join(Inbox, Inbox.id == Conversation.inbox_id).where(Inbox.kind.in_(inbox_kinds))
    return list((await session.execute(stmt)).scalars())
