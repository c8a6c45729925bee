"""A contact's own data as one JSON document (a GDPR access request, Art. 15: "a copy of the
personal data undergoing processing"): the contact, how each channel knows them, every conversation
with its messages, their orders with lines and payments, and their bookings.

Tenant-scoped: every query goes through ``core.tenancy.TenantScope`` and the company. Payment
secrets are left out (the payment page token's hash and the checkout link, which is a bearer
credential); everything else a row says about the person is included.
"""

from __future__ import annotations

import uuid
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import or_
from sqlalchemy.ext.asyncio import AsyncSession

from commerce.bookings import booking_as_dict
from commerce.orders import order_as_dict
from core.models import Booking, Company, Contact, ContactInbox, Conversation, Inbox, Message, Order, Payment
from core.tenancy import NotFound, TenantScope
from core.timeutil import utcnow

EXPORT_FORMAT = "chatcommerce.contact-export/1"


async def find_contact(session: AsyncSession, *, scope: TenantScope, company: Company, ref: str) -> Contact:
    """The company's contact named by ``ref``: its id (UUID) or a channel's id for it (``source_id``:
    Telegram chat id, phone, e-mail, ``web-...`` visitor id). Raises ``NotFound`` (also for a contact
    of another company or tenant)."""
    try:
        contact_id: uuid.UUID | None = uuid.UUID(ref)
    except ValueError:
        contact_id = None
    if contact_id is not None:
        row = (await session.execute(scope.select(Contact, Contact.id == contact_id,
                                                  Contact.company_id == company.id))).scalar_one_or_none()
        if row is not None:
            return row
    row = (await session.execute(
        scope.select(Contact, Contact.company_id == company.id)
        .join(ContactInbox, ContactInbox.contact_id == Contact.id)
        .where(ContactInbox.source_id == ref, ContactInbox.tenant_id == scope.tenant_id)
        .order_by(Contact.created_at).limit(1)
    )).scalar_one_or_none()
    if row is None:
        raise NotFound(f"contact {ref!r} not found")
    return row


def _payment_dict(payment: Payment) -> dict[str, Any]:
    return {"id": str(payment.id), "provider": payment.provider, "status": payment.status,
            "amount_minor": payment.amount_minor, "currency": payment.currency, "method": payment.method,
            "provider_ref": payment.provider_ref, "created_at": payment.created_at.isoformat(),
            "expires_at": payment.expires_at.isoformat() if payment.expires_at else None,
            "paid_at": payment.paid_at.isoformat() if payment.paid_at else None}


async def export_contact(session: AsyncSession, *, scope: TenantScope, company: Company,
                         contact: Contact) -> dict[str, Any]:
    """The export document: ``{"format", "exported_at", "company", "contact", "identities",
    "conversations": [{..., "messages": [...]}], "orders": [{..., "lines", "payments"}], "bookings"}``.
    Times are ISO-8601 UTC; money in minor units with its ISO-4217 ``currency``. Orders and bookings
    are the contact's own or those made in one of their conversations."""
    identities = (await session.execute(
        scope.select(ContactInbox, ContactInbox.contact_id == contact.id).order_by(ContactInbox.created_at)
    )).scalars().all()
    inboxes = {i.id: i for i in (await session.execute(
        scope.select(Inbox, Inbox.company_id == company.id))).scalars()}
    conversations = (await session.execute(
        scope.select(Conversation, Conversation.contact_id == contact.id, Conversation.company_id == company.id)
        .order_by(Conversation.created_at)
    )).scalars().all()
    conversation_ids = [c.id for c in conversations]
    messages: dict[uuid.UUID, list[Message]] = {c.id: [] for c in conversations}
    if conversation_ids:
        for message in (await session.execute(
            scope.select(Message, Message.conversation_id.in_(conversation_ids))
            .order_by(Message.created_at, Message.seq)
        )).scalars():
            messages[message.conversation_id].append(message)
    mine = [Order.contact_id == contact.id]
    if conversation_ids:
        mine.append(Order.conversation_id.in_(conversation_ids))
    orders = (await session.execute(
        scope.select(Order, Order.company_id == company.id, or_(*mine)).order_by(Order.number)
    )).scalars().all()
    payments: dict[uuid.UUID, list[Payment]] = {o.id: [] for o in orders}
    if orders:
        for payment in (await session.execute(
            scope.select(Payment, Payment.order_id.in_(list(payments))).order_by(Payment.created_at)
        )).scalars():
            payments[payment.order_id].append(payment)
    booked = [Booking.contact_id == contact.id]
    if conversation_ids:
        booked.append(Booking.conversation_id.in_(conversation_ids))
    bookings = (await session.execute(
        scope.select(Booking, Booking.company_id == company.id, or_(*booked)).order_by(Booking.start_at)
    )).scalars().all()
    tz = ZoneInfo(company.timezone)

    def channel(inbox_id: uuid.UUID) -> dict[str, Any]:
        inbox = inboxes.get(inbox_id)
        return {"inbox_id": str(inbox_id), "kind": inbox.kind if inbox else None,
                "name": inbox.name if inbox else None}

    return {
        "format": EXPORT_FORMAT,
        "exported_at": utcnow().isoformat(),
        "company": {"slug": company.slug, "name": company.name},
        "contact": {"id": str(contact.id), "name": contact.name, "phone": contact.phone, "email": contact.email,
                    "created_at": contact.created_at.isoformat()},
        "identities": [{**channel(i.inbox_id), "source_id": i.source_id, "created_at": i.created_at.isoformat()}
                       for i in identities],
        "conversations": [
            {"id": str(c.id), **channel(c.inbox_id), "status": c.status, "handoff": c.handoff,
             "language": c.language, "state": c.state or {}, "created_at": c.created_at.isoformat(),
             "updated_at": c.updated_at.isoformat(),
             "messages": [{"id": str(m.id), "direction": m.direction, "sender": m.sender, "text": m.text,
                           "payload": m.payload or {}, "status": m.status, "created_at": m.created_at.isoformat(),
                           "sent_at": m.sent_at.isoformat() if m.sent_at else None}
                          for m in messages[c.id]]}
            for c in conversations
        ],
        "orders": [{**order_as_dict(o), "conversation_id": str(o.conversation_id) if o.conversation_id else None,
                    "payments": [_payment_dict(p) for p in payments[o.id]]} for o in orders],
        "bookings": [{**booking_as_dict(b, tz=tz), "created_at": b.created_at.isoformat(),
                      "cancelled_at": b.cancelled_at.isoformat() if b.cancelled_at else None} for b in bookings],
    }
