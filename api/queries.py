"""Read helpers shared by the admin API and the CLI: conversations and messages as JSON-ready dicts.

Every query is scoped by a ``TenantScope`` and a company of that tenant.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.llm.usage import conversation_totals
from core.models import (
    Company,
    Contact,
    ContactInbox,
    Conversation,
    ConversationLabel,
    FaqEntry,
    Inbox,
    KnowledgeItem,
    Label,
    Message,
)
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


def display_name(contact: Contact | None, channel: str, source_id: str | None) -> str:
    """What to call a contact in an inbox: the name (from checkout or the channel profile), else the
    phone, else the e-mail, else ``"<channel> visitor <first 8 characters of the id>"``."""
    if contact is not None:
        for value in (contact.name, contact.phone, contact.email):
            if value and value.strip():
                return value.strip()
    ref = (source_id or (str(contact.id) if contact is not None else "")).removeprefix("web-")
    return f"{channel} visitor {ref[:8]}".strip()


async def describe_conversations(
    session: AsyncSession, scope: TenantScope, conversations: list[Conversation]
) -> list[dict[str, Any]]:
    """Summaries of ``conversations`` in that order: contact (with ``display_name``), channel, status,
    ``handoff``, ``needs_human`` (handoff or flagged ``pending``), ``assignee_user_id``, ``labels``
    (names) and the last message."""
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
    # The latest message of each conversation, found through ``ix_messages_conversation``: the ids are
    # of conversations already read through ``scope``. A ``tenant_id`` condition in this SQL would make
    # SQLite scan every message of the tenant through ``ix_messages_tenant_id`` (bench/bench_inbox.py),
    # so the tenant is checked on the rows instead.
    last_seq = (
        select(Message.conversation_id, func.max(Message.seq).label("seq"))
        .where(Message.conversation_id.in_(ids))
        .group_by(Message.conversation_id)
        .subquery()
    )
    last = {
        m.conversation_id: m
        for m in (
            await session.execute(
                select(Message).join(
                    last_seq, and_(Message.conversation_id == last_seq.c.conversation_id, Message.seq == last_seq.c.seq)
                )
            )
        ).scalars()
        if m.tenant_id == scope.tenant_id
    }
    labels: dict[Any, list[str]] = {}
    for conversation_id, name in await session.execute(
        select(ConversationLabel.conversation_id, Label.name)
        .join(Label, Label.id == ConversationLabel.label_id)
        .where(ConversationLabel.tenant_id == scope.tenant_id, ConversationLabel.conversation_id.in_(ids))
        .order_by(Label.name)
    ):
        labels.setdefault(conversation_id, []).append(name)
    out: list[dict[str, Any]] = []
    for conv in conversations:
        contact = contacts.get(conv.contact_id)
        inbox = inboxes.get(conv.inbox_id)
        last_message = last.get(conv.id)
        channel = inbox.kind if inbox else "unknown"
        source_id = links.get((conv.inbox_id, conv.contact_id))
        out.append(
            {
                "id": str(conv.id),
                "company_id": str(conv.company_id),
                "channel": channel,
                "status": conv.status,
                "handoff": conv.handoff,
                "needs_human": conv.handoff or conv.status == "pending",
                "assignee_user_id": str(conv.assignee_user_id) if conv.assignee_user_id else None,
                "labels": labels.get(conv.id, []),
                "contact": {
                    "display_name": display_name(contact, channel, source_id),
                    "id": str(conv.contact_id),
                    "name": contact.name if contact else None,
                    "phone": contact.phone if contact else None,
                    "email": contact.email if contact else None,
                    "source_id": source_id,
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
    return await describe_conversations(session, scope, rows)


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
    (summary,) = await describe_conversations(session, scope, [conversation])
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


async def kb_items(session: AsyncSession, *, company: Company) -> list[KnowledgeItem]:
    """The company's products and services with their variants, in file order."""
    stmt = TenantScope(company.tenant_id).select(KnowledgeItem, KnowledgeItem.company_id == company.id)
    return list((await session.execute(stmt.order_by(KnowledgeItem.position))).scalars())


async def kb_faq(session: AsyncSession, *, company: Company) -> list[FaqEntry]:
    """The company's FAQ entries, in file order."""
    stmt = TenantScope(company.tenant_id).select(FaqEntry, FaqEntry.company_id == company.id)
    return list((await session.execute(stmt.order_by(FaqEntry.position))).scalars())
