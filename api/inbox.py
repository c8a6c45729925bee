"""The manager's inbox: the use cases behind ``/api/v1/.../conversations`` and ``chatcommerce
conversations ...`` (one implementation; the routes and the CLI only parse input and print output).

* :func:`list_conversations`: filters (:class:`ConversationFilter`) and cursor pagination over
  ``(updated_at, id)``, most recently active first; the cursor is opaque (:func:`encode_cursor`).
* :func:`conversation_view`: one conversation with every message, its orders (with their payments),
  bookings, private notes and labels.
* :func:`take_over`, :func:`release`, :func:`resolve`, :func:`reply_as_human`, :func:`assign`: the
  manager's actions (taking over or replying assigns the conversation to the person doing it).
* Private notes, the company's label set and labels of a conversation, canned replies (CRUD).

Every function works inside one tenant: the caller passes a company it has already authorised
(``api.deps.CompanyDep``; the CLI acts as the platform admin) or a ``TenantScope``. Writes commit;
:func:`reply_as_human` then delivers through the conversation's channel (``Pipeline.deliver_pending``).
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, exists, or_
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from api.queries import conversation_detail, describe_conversations, get_conversation
from channels.pipeline import Pipeline
from commerce.bookings import booking_as_dict
from commerce.orders import order_as_dict
from commerce.schedule import company_zone
from core.accounts import ValidationError
from core.conversations import append_message
from core.inputs import checked_text, checked_texts, utc_bound
from core.models import (
    Booking,
    CannedReply,
    Company,
    Contact,
    Conversation,
    ConversationLabel,
    ConversationNote,
    Inbox,
    Label,
    Message,
    Order,
    Payment,
)
from core.tenancy import NotFound, TenantScope
from core.textsearch import contains_folded
from core.users import may_be_assigned

CONVERSATION_STATUSES: tuple[str, ...] = ("open", "pending", "resolved")
MAX_PAGE = 500


# -- listing ---------------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class ConversationFilter:
    """What ``list_conversations`` keeps. Empty tuples and ``None`` mean "any".

    ``company_ids``: companies of the scoped tenant; ``channels``: inbox kinds (``telegram``,
    ``whatsapp_waha``, ``email``, ``webchat``, ``console``); ``statuses``: open | pending | resolved;
    ``needs_human``: a manager owns it (``handoff``) or it was flagged (``status == "pending"``: the
    customer asked for a human, a send failed, no payment link could be made); ``assignee_user_id``:
    assigned to this user; ``has_order``: the conversation has (or has no) order;
    ``payment_statuses``: one of its orders has one of these ``Order.payment_status`` values;
    ``labels``: carries every one of these label names; ``since``/``until``: last activity
    (``updated_at``, aware UTC) in ``[since, until)``; ``text``: case-insensitive substring of a
    message's text or of the contact's name, phone or e-mail.
    """

    company_ids: tuple[uuid.UUID, ...] = ()
    channels: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    needs_human: bool | None = None
    assignee_user_id: uuid.UUID | None = None
    has_order: bool | None = None
    payment_statuses: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    text: str | None = None

    def __post_init__(self) -> None:
        if bad := sorted(set(self.statuses) - set(CONVERSATION_STATUSES)):
            raise ValidationError(f"unknown conversation status {bad[0]!r} (use {', '.join(CONVERSATION_STATUSES)})")
        checked_texts(self.channels, "channel")
        checked_texts(self.labels, "label")
        checked_text(self.text, "search text")
        object.__setattr__(self, "since", utc_bound(self.since, "since"))
        object.__setattr__(self, "until", utc_bound(self.until, "until"))


@dataclass(frozen=True, kw_only=True)
class Page:
    """One page of a listing: ``items`` and the opaque cursor of the next page (``None`` at the end)."""

    items: list[dict[str, Any]]
    next_cursor: str | None = None


def encode_cursor(updated_at: datetime, id_: uuid.UUID) -> str:
    """The opaque cursor after the conversation ``(updated_at, id)`` (URL-safe base64 of JSON)."""
    raw = json.dumps({"u": updated_at.isoformat(), "i": str(id_)}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """``(updated_at, id)`` of a cursor made by :func:`encode_cursor`; ``ValidationError`` otherwise."""
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        when = datetime.fromisoformat(data["u"])
        if when.tzinfo is None:
            raise ValueError("naive time")
        return when, uuid.UUID(data["i"])
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise ValidationError(f"invalid cursor {cursor[:40]!r}") from exc


def _where(scope: TenantScope, f: ConversationFilter) -> list[Any]:
    """WHERE clauses on ``Conversation`` for ``f``. The correlated subqueries follow the conversation's
    own id (already limited to ``scope``), so they need no tenant condition of their own; adding one
    makes SQLite's planner scan the tenant's messages through ``ix_messages_tenant_id`` for every
    conversation instead of using ``ix_messages_conversation`` (measured: bench/bench_inbox.py)."""
    conv = Conversation
    clauses: list[Any] = []
    if f.company_ids:
        clauses.append(conv.company_id.in_(f.company_ids))
    if f.channels:
        clauses.append(exists().where(Inbox.id == conv.inbox_id, Inbox.kind.in_(f.channels)))
    if f.statuses:
        clauses.append(conv.status.in_(f.statuses))
    if f.needs_human is not None:
        human = or_(conv.handoff.is_(True), conv.status == "pending")
        clauses.append(human if f.needs_human else ~human)
    if f.assignee_user_id is not None:
        clauses.append(conv.assignee_user_id == f.assignee_user_id)
    if f.has_order is not None:
        any_order = exists().where(Order.conversation_id == conv.id)
        clauses.append(any_order if f.has_order else ~any_order)
    if f.payment_statuses:
        clauses.append(exists().where(Order.conversation_id == conv.id, Order.payment_status.in_(f.payment_statuses)))
    for name in f.labels:
        clauses.append(
            exists().where(ConversationLabel.conversation_id == conv.id, ConversationLabel.label_id == Label.id,
                           Label.tenant_id == scope.tenant_id, Label.company_id == conv.company_id,
                           Label.name == name)
        )
    if f.since is not None:
        clauses.append(conv.updated_at >= f.since)
    if f.until is not None:
        clauses.append(conv.updated_at < f.until)
    if f.text and f.text.strip():
        term = f.text.strip()
        clauses.append(
            or_(
                exists().where(Message.conversation_id == conv.id, contains_folded(Message.text, term)),
                exists().where(Contact.id == conv.contact_id,
                               or_(contains_folded(Contact.name, term), contains_folded(Contact.phone, term),
                                   contains_folded(Contact.email, term))),
            )
        )
    return clauses


async def list_conversations(
    session: AsyncSession, *, scope: TenantScope, filters: ConversationFilter, limit: int = 50,
    cursor: str | None = None,
) -> Page:
    """A page of the tenant's conversations matching ``filters``, most recently active first
    (``updated_at`` then ``id``, descending), each summarised like ``api.queries`` does (contact,
    channel, status, handoff, assignee, labels, last message). Pass ``next_cursor`` back as
    ``cursor`` for the next page: keyset pagination, so rows are neither skipped nor repeated while
    the set is stable (a conversation that gets a new message moves to the top of the first page).

    Raises ``ValidationError`` for a bad cursor or a ``limit`` outside 1..200.
    """
    if not 1 <= limit <= MAX_PAGE:
        raise ValidationError(f"limit must be between 1 and {MAX_PAGE}, not {limit}")
    stmt = scope.select(Conversation, *_where(scope, filters))
    if cursor:
        when, last_id = decode_cursor(cursor)
        stmt = stmt.where(or_(Conversation.updated_at < when,
                              and_(Conversation.updated_at == when, Conversation.id < last_id)))
    stmt = stmt.order_by(Conversation.updated_at.desc(), Conversation.id.desc()).limit(limit + 1)
    rows = list((await session.execute(stmt)).scalars())
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(rows[-1].updated_at, rows[-1].id) if more and rows else None
    return Page(items=await describe_conversations(session, scope, rows), next_cursor=next_cursor)


# -- one conversation ------------------------------------------------------------------------------


def note_as_dict(note: ConversationNote) -> dict[str, Any]:
    """A private note as the API and CLI return it."""
    return {"id": str(note.id), "text": note.text, "created_at": note.created_at.isoformat(),
            "author_user_id": str(note.author_user_id) if note.author_user_id else None}


def payment_as_dict(payment: Payment) -> dict[str, Any]:
    """A payment attempt: when its link was sent (``created_at``), until when it is valid, whether
    and when it was paid. Money in minor units of ``currency``. The link itself is not included
    (it carries the customer's payment token)."""
    return {
        "id": str(payment.id), "order_id": str(payment.order_id), "provider": payment.provider,
        "status": payment.status, "amount_minor": payment.amount_minor, "currency": payment.currency,
        "method": payment.method, "link_sent": payment.checkout_url is not None,
        "created_at": payment.created_at.isoformat(),
        "expires_at": payment.expires_at.isoformat() if payment.expires_at else None,
        "paid_at": payment.paid_at.isoformat() if payment.paid_at else None,
    }


async def conversation_view(session: AsyncSession, *, company: Company, conversation_id: uuid.UUID) -> dict[str, Any]:
    """The conversation (``NotFound`` unless it belongs to ``company``) with all its ``messages``,
    ``orders`` (each with its ``payments``, oldest first), ``bookings``, private ``notes`` and ``labels``."""
    scope = TenantScope(company.tenant_id)
    conv = await get_conversation(session, scope=scope, company=company, conversation_id=conversation_id)
    detail = await conversation_detail(session, scope=scope, conversation=conv)
    orders = list((await session.execute(
        scope.select(Order, Order.conversation_id == conv.id).order_by(Order.number))).scalars())
    payments: dict[uuid.UUID, list[dict[str, Any]]] = {}
    if orders:
        for p in (await session.execute(scope.select(Payment, Payment.order_id.in_([o.id for o in orders]))
                                        .order_by(Payment.created_at))).scalars():
            payments.setdefault(p.order_id, []).append(payment_as_dict(p))
    bookings = (await session.execute(
        scope.select(Booking, Booking.conversation_id == conv.id).order_by(Booking.start_at))).scalars()
    tz = company_zone(company)
    return {
        **detail,
        "orders": [{**order_as_dict(o), "payments": payments.get(o.id, [])} for o in orders],
        "bookings": [booking_as_dict(b, tz=tz) for b in bookings],
        "notes": await list_notes(session, company=company, conversation_id=conv.id),
    }


async def conversation_company(session: AsyncSession, *, conversation_id: uuid.UUID,
                               company_slug: str | None = None) -> Company:
    """The company a conversation belongs to (the CLI, acting as platform admin, addresses
    conversations by id). With ``company_slug`` the conversation must belong to that company.
    Raises ``NotFound``."""
    conv = await session.get(Conversation, conversation_id)
    company = await session.get(Company, conv.company_id) if conv is not None else None
    if company is None or (company_slug is not None and company.slug != company_slug):
        raise NotFound(f"Conversation {conversation_id} not found")
    return company


# -- the manager's actions -------------------------------------------------------------------------


async def _conversation(session: AsyncSession, company: Company, conversation_id: uuid.UUID) -> Conversation:
    return await get_conversation(session, scope=TenantScope(company.tenant_id), company=company,
                                  conversation_id=conversation_id)


async def _check_assignee(session: AsyncSession, company: Company, user_id: uuid.UUID) -> None:
    if not await may_be_assigned(session, company=company, user_id=user_id):
        raise ValidationError(f"user {user_id} cannot be assigned conversations of {company.slug!r}: "
                              "only its manager, an owner of the tenant or a platform admin can")


async def take_over(session: AsyncSession, *, company: Company, conversation_id: uuid.UUID,
                    assignee_user_id: uuid.UUID | None = None) -> dict[str, Any]:
    """A person takes the conversation over: ``handoff`` is set, so the bot stores the customer's
    next messages without answering them, and the status becomes ``open``. ``assignee_user_id``
    (the person taking over; ``None`` for an API key or the admin token) becomes the assignee.
    Returns :func:`conversation_view`. Raises ``NotFound``, and ``ValidationError`` when the user
    may not be assigned the company's conversations (:func:`core.users.may_be_assigned`)."""
    conv = await _conversation(session, company, conversation_id)
    if assignee_user_id is not None:
        await _check_assignee(session, company, assignee_user_id)
        conv.assignee_user_id = assignee_user_id
    conv.handoff = True
    conv.status = "open"
    await session.commit()
    return await conversation_view(session, company=company, conversation_id=conv.id)


async def assign(session: AsyncSession, *, company: Company, conversation_id: uuid.UUID,
                 user_id: uuid.UUID | None) -> dict[str, Any]:
    """Assign the conversation to ``user_id`` (``None``: nobody) without changing who answers it.
    Returns :func:`conversation_view`. Raises ``NotFound`` and ``ValidationError`` (a user who is not
    the company's manager, an owner of its tenant or a platform admin)."""
    conv = await _conversation(session, company, conversation_id)
    if user_id is not None:
        await _check_assignee(session, company, user_id)
    conv.assignee_user_id = user_id
    await session.commit()
    return await conversation_view(session, company=company, conversation_id=conv.id)


async def release(session: AsyncSession, *, company: Company, conversation_id: uuid.UUID) -> dict[str, Any]:
    """Hand the conversation back to the bot (it answers the customer's next message); status ``open``,
    nobody assigned. Returns :func:`conversation_view`. Raises ``NotFound``."""
    conv = await _conversation(session, company, conversation_id)
    conv.handoff = False
    conv.status = "open"
    conv.assignee_user_id = None
    await session.commit()
    return await conversation_view(session, company=company, conversation_id=conv.id)


async def resolve(session: AsyncSession, *, company: Company, conversation_id: uuid.UUID) -> dict[str, Any]:
    """Close the conversation (status ``resolved``; ``handoff`` cleared). The customer's next message
    opens a new conversation answered by the bot (``channels.pipeline``). Raises ``NotFound``."""
    conv = await _conversation(session, company, conversation_id)
    conv.status = "resolved"
    conv.handoff = False
    await session.commit()
    return await conversation_view(session, company=company, conversation_id=conv.id)


async def reply_as_human(
    session: AsyncSession, *, pipeline: Pipeline, company: Company, conversation_id: uuid.UUID,
    text: str | None = None, canned_shortcut: str | None = None, assignee_user_id: uuid.UUID | None = None,
) -> Message:
    """Send a person's reply (``text``, or the company's canned reply ``canned_shortcut``) to the
    customer through the conversation's channel (Telegram ``sendMessage``, WAHA ``sendText``, e-mail,
    web chat...). The message is stored as outbound (sender ``manager``) and committed, then
    delivered; the returned message's ``status`` says ``sent`` or ``failed`` (a failed send also
    flags the conversation ``pending``). Replying takes the conversation over, as :func:`take_over`
    (``handoff``, status ``open``; a resolved conversation is reopened); a conversation nobody is
    assigned to is assigned to ``assignee_user_id`` (the person replying).

    Raises ``NotFound`` (conversation, canned reply) and ``ValidationError`` (no or empty text, an
    assignee who may not be assigned).
    """
    conv = await _conversation(session, company, conversation_id)
    if assignee_user_id is not None and conv.assignee_user_id is None:
        await _check_assignee(session, company, assignee_user_id)
    if canned_shortcut is not None:
        text = (await canned_reply_by_shortcut(session, company=company,
                                               shortcut=checked_text(canned_shortcut, "shortcut") or "")).text
    if text is None or not checked_text(text, "reply").strip():
        raise ValidationError("a reply needs a text (or a canned reply)")
    message = await append_message(session, conversation=conv, direction="out", sender="manager",
                                   text=text.strip(), payload={"buttons": [], "url": None, "image_url": None})
    conv.handoff = True
    conv.status = "open"  # a person is on it; a failed send flags it "pending" again
    if assignee_user_id is not None and conv.assignee_user_id is None:
        conv.assignee_user_id = assignee_user_id
    await session.commit()
    await pipeline.deliver_pending(conversation_id=conv.id)
    await session.refresh(message)
    return message


# -- private notes ---------------------------------------------------------------------------------


async def list_notes(session: AsyncSession, *, company: Company, conversation_id: uuid.UUID) -> list[dict[str, Any]]:
    """The conversation's private notes, oldest first. Raises ``NotFound``."""
    conv = await _conversation(session, company, conversation_id)
    rows = (await session.execute(TenantScope(company.tenant_id).select(
        ConversationNote, ConversationNote.conversation_id == conv.id).order_by(ConversationNote.created_at))).scalars()
    return [note_as_dict(n) for n in rows]


async def add_note(session: AsyncSession, *, company: Company, conversation_id: uuid.UUID, text: str,
                   author_user_id: uuid.UUID | None = None) -> dict[str, Any]:
    """Add a private note (never sent to the customer). Raises ``NotFound``, ``ValidationError`` (empty)."""
    conv = await _conversation(session, company, conversation_id)
    if not checked_text(text, "note").strip():
        raise ValidationError("a note needs a text")
    note = ConversationNote(tenant_id=conv.tenant_id, conversation_id=conv.id, text=text.strip(),
                            author_user_id=author_user_id)
    session.add(note)
    await session.commit()
    return note_as_dict(note)


async def delete_note(session: AsyncSession, *, company: Company, conversation_id: uuid.UUID,
                      note_id: uuid.UUID) -> None:
    """Delete a note of the conversation. Raises ``NotFound``."""
    conv = await _conversation(session, company, conversation_id)
    note = await TenantScope(company.tenant_id).get(session, ConversationNote, note_id)
    if note.conversation_id != conv.id:
        raise NotFound(f"ConversationNote {note_id} not found")
    await session.delete(note)
    await session.commit()


# -- labels ----------------------------------------------------------------------------------------


def label_as_dict(label: Label) -> dict[str, Any]:
    """A label of the company's label set."""
    return {"id": str(label.id), "name": label.name, "color": label.color}


def _label_name(name: str) -> str:
    clean = " ".join(checked_text(name, "label").split())
    if not clean or len(clean) > 64:
        raise ValidationError(f"a label name has 1 to 64 characters, got {name!r}")
    return clean


async def list_labels(session: AsyncSession, *, company: Company) -> list[dict[str, Any]]:
    """The company's label set, by name."""
    rows = (await session.execute(TenantScope(company.tenant_id).select(Label, Label.company_id == company.id)
                                  .order_by(Label.name))).scalars()
    return [label_as_dict(label) for label in rows]


async def create_label(session: AsyncSession, *, company: Company, name: str, color: str | None = None
                       ) -> dict[str, Any]:
    """Add a label to the company's set. Raises ``ValidationError`` (bad or taken name)."""
    label = Label(tenant_id=company.tenant_id, company_id=company.id, name=_label_name(name),
                  color=checked_text(color, "color"))
    session.add(label)
    try:
        await session.commit()
    except IntegrityError as exc:
        await session.rollback()
        raise ValidationError(f"label {label.name!r} already exists") from exc
    return label_as_dict(label)


async def delete_label(session: AsyncSession, *, company: Company, label_id: uuid.UUID) -> None:
    """Remove a label from the set (and from every conversation). Raises ``NotFound``."""
    label = await TenantScope(company.tenant_id).get(session, Label, label_id)
    if label.company_id != company.id:
        raise NotFound(f"Label {label_id} not found")
    await session.delete(label)
    await session.commit()


async def set_conversation_labels(session: AsyncSession, *, company: Company, conversation_id: uuid.UUID,
                                  names: list[str]) -> list[str]:
    """Replace the conversation's labels by ``names`` (each must be in the company's set). Returns
    the names now on it, sorted. Raises ``NotFound`` and ``ValidationError`` (unknown label: nothing changes)."""
    scope = TenantScope(company.tenant_id)
    conv = await _conversation(session, company, conversation_id)
    wanted = {_label_name(n) for n in names}
    labels = {label.name: label for label in (await session.execute(
        scope.select(Label, Label.company_id == company.id, Label.name.in_(wanted)))).scalars()}
    if missing := sorted(wanted - labels.keys()):
        raise ValidationError(f"unknown label {missing[0]!r}: add it to the company's labels first")
    current = list((await session.execute(
        scope.select(ConversationLabel, ConversationLabel.conversation_id == conv.id))).scalars())
    keep = {labels[n].id for n in wanted}
    for row in current:
        if row.label_id not in keep:
            await session.delete(row)
    have = {row.label_id for row in current}
    for label_id in keep - have:
        session.add(ConversationLabel(tenant_id=conv.tenant_id, conversation_id=conv.id, label_id=label_id))
    await session.commit()
    return sorted(wanted)


# -- canned replies --------------------------------------------------------------------------------


def canned_as_dict(row: CannedReply) -> dict[str, Any]:
    """A canned reply as the API and CLI return it."""
    return {"id": str(row.id), "shortcut": row.shortcut, "text": row.text,
            "updated_at": (row.updated_at or row.created_at).isoformat()}


def _shortcut(value: str) -> str:
    clean = checked_text(value, "shortcut").strip().lstrip("/")
    if not clean or len(clean) > 64 or any(ch.isspace() for ch in clean):
        raise ValidationError(f"a shortcut has 1 to 64 characters and no spaces, got {value!r}")
    return clean


def _canned_text(value: str) -> str:
    if not checked_text(value, "canned reply").strip():
        raise ValidationError("a canned reply needs a text")
    return value.strip()


async def list_canned_replies(session: AsyncSession, *, company: Company) -> list[dict[str, Any]]:
    """The company's canned replies, by shortcut."""
    rows = (await session.execute(TenantScope(company.tenant_id).select(
        CannedReply, CannedReply.company_id == company.id).order_by(CannedReply.shortcut))).scalars()
    return [canned_as_dict(r) for r in rows]


async def canned_reply_by_shortcut(session: AsyncSession, *, company: Company, shortcut: str) -> CannedReply:
    """The company's canned reply with this shortcut (a leading ``/`` is ignored). Raises ``NotFound``."""
    row = (await session.execute(TenantScope(company.tenant_id).select(
        CannedReply, CannedReply.company_id == company.id, CannedReply.shortcut == shortcut.strip().lstrip("/"))
    )).scalar_one_or_none()
    if row is None:
        raise NotFound(f"no canned reply {shortcut!r}")
    return row


async def _commit_canned(session: AsyncSession, row: CannedReply) -> dict[str, Any]:
    try:
        await session.commit()
    except IntegrityError as exc:
        await session.rollback()
        raise ValidationError(f"canned reply {row.shortcut!r} already exists") from exc
    await session.refresh(row)
    return canned_as_dict(row)


async def create_canned_reply(session: AsyncSession, *, company: Company, shortcut: str, text: str) -> dict[str, Any]:
    """Add a canned reply. Raises ``ValidationError`` (bad or taken shortcut, empty text)."""
    row = CannedReply(tenant_id=company.tenant_id, company_id=company.id, shortcut=_shortcut(shortcut),
                      text=_canned_text(text))
    session.add(row)
    return await _commit_canned(session, row)


async def _canned(session: AsyncSession, company: Company, canned_id: uuid.UUID) -> CannedReply:
    row = await TenantScope(company.tenant_id).get(session, CannedReply, canned_id)
    if row.company_id != company.id:
        raise NotFound(f"CannedReply {canned_id} not found")
    return row


async def update_canned_reply(session: AsyncSession, *, company: Company, canned_id: uuid.UUID,
                              shortcut: str | None = None, text: str | None = None) -> dict[str, Any]:
    """Change a canned reply's shortcut and/or text. Raises ``NotFound``, ``ValidationError``."""
    row = await _canned(session, company, canned_id)
    if shortcut is not None:
        row.shortcut = _shortcut(shortcut)
    if text is not None:
        row.text = _canned_text(text)
    return await _commit_canned(session, row)


async def delete_canned_reply(session: AsyncSession, *, company: Company, canned_id: uuid.UUID) -> None:
    """Delete a canned reply. Raises ``NotFound``."""
    await session.delete(await _canned(session, company, canned_id))
    await session.commit()
