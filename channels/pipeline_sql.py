"""The hot statements of the inbound pipeline, as SQLAlchemy Core built once (compiled forms are
cached by SQLAlchemy per statement shape). Read-only lookups return rows, not ORM objects.

Bound parameters are named ``p_*`` (names of columns are reserved in ``UPDATE``/``INSERT``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Insert, and_, bindparam, exists, literal_column, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import aliased

from core.models import Company, Contact, ContactInbox, Conversation, Message

# The contact known in an inbox by the provider's id: (id, name, phone).
CONTACT_BY_SOURCE = (
    select(Contact.id, Contact.name, Contact.phone)
    .join(ContactInbox, ContactInbox.contact_id == Contact.id)
    .where(ContactInbox.inbox_id == bindparam("p_inbox"), ContactInbox.source_id == bindparam("p_source"))
)

# Lock the contact's row: concurrent first messages of one contact queue here before one of them
# opens the conversation (PostgreSQL; SQLite serialises writers with ``begin_write``).
# FOR NO KEY UPDATE: serialises a contact's first messages without blocking the foreign-key checks
# (FOR KEY SHARE) of a transaction that holds the contact's conversation and updates it (a deadlock).
LOCK_CONTACT = select(Contact.id).where(Contact.id == bindparam("p_contact")).with_for_update(key_share=True)

_OPEN_CONVERSATION_ID = (
    select(Conversation.id)
    .where(Conversation.tenant_id == bindparam("p_tenant"), Conversation.inbox_id == bindparam("p_inbox"),
           Conversation.contact_id == bindparam("p_contact"), Conversation.status != "resolved")
    .order_by(Conversation.created_at.desc())
    .limit(1)
    .scalar_subquery()
)

_EARLIER = aliased(Message)
# Whether the conversation has a reply not yet handed to the provider: ``pending``, or ``sending`` with a
# claim since ``p_fresh_since`` (aware UTC; older claims are of a process that died mid-send). Returned
# with the conversation's claim, so the hot path knows without a statement of its own whether its
# replies must wait for earlier ones (``channels.pipeline``: replies reach the provider in order).
REPLIES_IN_FLIGHT = exists().where(
    # spelled out: SQLite's RETURNING drops table names, and a bare ``id`` would be the message's
    _EARLIER.conversation_id == literal_column("conversations.id"), _EARLIER.direction == "out",
    or_(_EARLIER.status == "pending",
        and_(_EARLIER.status == "sending",
             _EARLIER.claimed_at > bindparam("p_fresh_since", type_=Message.claimed_at.type))),
).label("replies_in_flight")

# The contact's open conversation in the inbox, its row locked until commit and the next message
# number taken (``last_seq + 1``) in the same statement; returns the ORM ``Conversation`` (the
# dialogue engine changes its state) and ``REPLIES_IN_FLIGHT``. No row: there is no open conversation.
CLAIM_CONVERSATION = (
    update(Conversation)
    .where(Conversation.id == _OPEN_CONVERSATION_ID, Conversation.status != "resolved")
    .values(last_seq=Conversation.last_seq + 1, updated_at=bindparam("p_now"))
    .returning(Conversation, REPLIES_IN_FLIGHT)
    .execution_options(synchronize_session=False)
)


_MESSAGES = Message.__table__


def _insert_inbound(insert: Any) -> Insert:
    # Dedupe: (inbox_id, direction, source_id) is unique; a delivery seen before inserts nothing.
    # Core on the table, executed with a dict of column values: built (and its cache key computed) once,
    # not per message as ``insert(Message).values(...)`` was, and without the ORM's bulk-insert layer.
    return insert(_MESSAGES).on_conflict_do_nothing().returning(_MESSAGES.c.id)


# An inbound message: executed with every column's value by name (``id``, ``tenant_id``, ``created_at``...);
# returns its id, or no row for a delivery seen before.
INSERT_INBOUND: dict[str, Insert] = {
    "postgresql": _insert_inbound(postgresql.insert),
    "sqlite": _insert_inbound(sqlite.insert),
}

_OPEN_CONVERSATION_ID_BY_SOURCE = (
    select(Conversation.id)
    .join(ContactInbox, ContactInbox.contact_id == Conversation.contact_id)
    .where(Conversation.tenant_id == bindparam("p_tenant"), Conversation.inbox_id == bindparam("p_inbox"),
           ContactInbox.inbox_id == bindparam("p_inbox"), ContactInbox.source_id == bindparam("p_source"),
           Conversation.status != "resolved")
    .order_by(Conversation.created_at.desc())
    .limit(1)
    .scalar_subquery()
)

# The common case in one statement: a known contact (by the provider's id in the inbox) with an open
# conversation, its row locked until commit (``FOR NO KEY UPDATE OF conversations``, the lock an
# ``UPDATE`` of the row takes), with the contact's name and phone and the conversation's company (an
# ORM ``Company``, so the engine's ``session.get`` finds it in the identity map instead of reading it
# again): ``(Conversation, Company, name, phone, replies_in_flight)``. The caller takes the next ``seq``
# in memory (``last_seq + 1``): the row is written once per message, by the flush at the end of the
# turn (state, ``last_seq``, ``updated_at``), not twice. ``updated_at`` is indexed, so every update of
# the row is a new version in all its indexes (not HOT). No row: unknown contact or no open
# conversation (the two-step path, ``CONTACT_BY_SOURCE`` then ``CLAIM_CONVERSATION``, handles those).
# PostgreSQL only (SQLite ignores ``FOR UPDATE``; its writers are serialised by ``BEGIN IMMEDIATE``).
CLAIM_CONVERSATION_BY_SOURCE = (
    select(Conversation, Company, Contact.name, Contact.phone, REPLIES_IN_FLIGHT)
    .join(Contact, Contact.id == Conversation.contact_id)
    .join(Company, Company.id == Conversation.company_id)
    .where(Conversation.id == _OPEN_CONVERSATION_ID_BY_SOURCE, Conversation.status != "resolved")
    .with_for_update(key_share=True, of=Conversation)
)

# A reply of the hot path: executed with every column's value by name (``id``, ``tenant_id``,
# ``created_at``, ``seq``...); the ``seq`` is the conversation's ``last_seq`` counted on in memory under
# its row lock (as ``core.conversations.append_message(locked=True)``), without the ORM's flush.
INSERT_REPLY: Insert = _MESSAGES.insert()

# After the provider accepted a claimed reply (``status='sending'``).
MARK_SENT = (
    update(_MESSAGES)
    .where(_MESSAGES.c.id == bindparam("p_id"))
    .values(status="sent", sent_at=bindparam("p_now"), payload=bindparam("p_payload", type_=_MESSAGES.c.payload.type))
)
