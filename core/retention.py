"""Retention of old conversations: a company may keep resolved conversations only for a number of
days (``Company.settings["retention_days"]``; unset keeps them forever).

The background sweep (``api.jobs``) calls :func:`purge_expired_conversations`: a conversation that
is ``resolved`` and whose last activity (``updated_at``) is older than the company's retention is
deleted with its messages (and whatever else cascades from it: carts, notes...). Orders, payments
and bookings are accounting records and stay, with ``conversation_id`` set to NULL. Open and
pending conversations are never deleted, however old.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.models import Booking, Company, Conversation, Message, Order

SETTING = "retention_days"
MAX_RETENTION_DAYS = 36500


class RetentionError(ValueError):
    """A retention setting that cannot be used (the message says why)."""


def retention_days(company: Company) -> int | None:
    """The company's retention in days, ``None`` when conversations are kept forever."""
    value = (company.settings or {}).get(SETTING)
    return int(value) if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def set_retention_days(company: Company, days: int | None) -> None:
    """Set (1..36500 days) or clear (``None``) the company's retention. Raises ``RetentionError``."""
    settings = dict(company.settings or {})
    if days is None:
        settings.pop(SETTING, None)
    else:
        if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= MAX_RETENTION_DAYS:
            raise RetentionError(f"retention_days must be a whole number of days from 1 to {MAX_RETENTION_DAYS}")
        settings[SETTING] = days
    company.settings = settings


@dataclass(frozen=True, slots=True)
class RetentionResult:
    """What one pass deleted: ``conversations`` and ``messages``, and how many ``orders`` and
    ``bookings`` were kept with their conversation link removed."""

    conversations: int = 0
    messages: int = 0
    orders: int = 0
    bookings: int = 0

    def __add__(self, other: RetentionResult) -> RetentionResult:
        return RetentionResult(conversations=self.conversations + other.conversations,
                               messages=self.messages + other.messages, orders=self.orders + other.orders,
                               bookings=self.bookings + other.bookings)

    def as_dict(self) -> dict[str, Any]:
        """``{"conversations", "messages", "orders_kept", "bookings_kept"}`` (counts)."""
        return {"conversations": self.conversations, "messages": self.messages, "orders_kept": self.orders,
                "bookings_kept": self.bookings}


async def purge_company_conversations(
    session: AsyncSession, *, company: Company, now: datetime, limit: int = 500
) -> RetentionResult:
    """Delete up to ``limit`` expired conversations of ``company`` (see the module doc); ``now`` is an
    aware UTC instant. A company without retention deletes nothing."""
    days = retention_days(company)
    if days is None:
        return RetentionResult()
    cutoff = now - timedelta(days=days)
    ids: list[uuid.UUID] = list((await session.execute(
        select(Conversation.id).where(
            Conversation.tenant_id == company.tenant_id, Conversation.company_id == company.id,
            Conversation.status == "resolved", Conversation.updated_at < cutoff,
        ).order_by(Conversation.updated_at).limit(limit)
    )).scalars())
    if not ids:
        return RetentionResult()
    tenant = company.tenant_id
    orders = await session.execute(update(Order).where(Order.tenant_id == tenant, Order.conversation_id.in_(ids))
                                   .values(conversation_id=None))
    bookings = await session.execute(update(Booking).where(Booking.tenant_id == tenant,
                                                           Booking.conversation_id.in_(ids))
                                     .values(conversation_id=None))
    messages = await session.execute(delete(Message).where(Message.tenant_id == tenant,
                                                           Message.conversation_id.in_(ids)))
    conversations = await session.execute(delete(Conversation).where(Conversation.tenant_id == tenant,
                                                                     Conversation.id.in_(ids)))
    return RetentionResult(conversations=int(conversations.rowcount or 0),  # type: ignore[attr-defined]
                           messages=int(messages.rowcount or 0),  # type: ignore[attr-defined]
                           orders=int(orders.rowcount or 0),  # type: ignore[attr-defined]
                           bookings=int(bookings.rowcount or 0))  # type: ignore[attr-defined]


async def companies_with_retention(session: AsyncSession) -> list[uuid.UUID]:
    """Ids of companies that have a retention setting (a platform-wide read for the sweep)."""
    rows = (await session.execute(select(Company.id, Company.settings))).all()
    return [cid for cid, settings in rows if isinstance((settings or {}).get(SETTING), int)]

