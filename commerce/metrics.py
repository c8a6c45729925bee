"""A company's metrics for a period, computed from stored rows (nothing is pre-aggregated).

``company_metrics(session, company=..., start=..., end=...)`` covers ``start <= t < end`` (aware UTC)
and returns the same block of figures for the whole company, per channel (the conversation's inbox
kind) and per lead source (``Conversation.lead_source``; ``"(none)"`` for untagged conversations and
for orders/bookings without a conversation). Definitions:

* ``conversations`` — conversations created in the period.
* ``messages_in`` / ``messages_out`` — messages created in the period (out = bot, manager and system).
* ``median_bot_reply_seconds`` — median over the bot's replies of (reply created − first customer
  message it answers created): a burst of messages answered at once counts once, from its first
  message; waits ended by a manager or a system message are not bot replies. A wait counts in the
  period of the customer message that opened it (replies up to a day after ``end`` are looked at).
  ``None`` without replies; ``bot_replies`` is the sample size.
* ``handed_to_human`` — conversations of the period that asked for a human (a ``handoff.requested``
  alert event) or are owned by a manager now; ``handoff_share`` = that / ``conversations``.
* ``payment_links_sent`` — payments with a link (``checkout_url``) created in the period.
* ``paid_orders`` / ``revenue`` — orders whose ``paid_at`` is in the period and still paid;
  revenue per currency in minor units (``[{"currency": "USD", "amount_minor": 2500}]``).
* ``conversion`` — of the period's conversations: how many got a payment link and how many a paid
  order before ``end``; ``link_rate`` = with_payment_link / conversations, ``paid_rate_of_links`` =
  paid / with_payment_link, ``paid_rate`` = paid / conversations (``None`` when dividing by 0).
* ``bookings`` — bookings created in the period that were confirmed (whatever happened later);
  ``cancelled_bookings`` — cancelled in the period; ``no_shows`` — marked no-show, starting in the period.

Ratios are rounded to 4 decimals; seconds to 3.
"""

from __future__ import annotations

import statistics
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.models import AlertEvent, Booking, Company, Conversation, Inbox, Message, Order, Payment

NONE = "(none)"
REPLY_LOOKAHEAD = timedelta(days=1)


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


@dataclass
class _Block:
    conversations: int = 0
    messages_in: int = 0
    messages_out: int = 0
    reply_seconds: list[float] = field(default_factory=list)
    handed: int = 0
    links: int = 0
    paid_orders: int = 0
    revenue: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    with_link: int = 0
    converted: int = 0
    bookings: int = 0
    cancelled: int = 0
    no_shows: int = 0

    def as_dict(self) -> dict[str, Any]:
        median = statistics.median(self.reply_seconds) if self.reply_seconds else None
        return {
            "conversations": self.conversations,
            "messages_in": self.messages_in,
            "messages_out": self.messages_out,
            "median_bot_reply_seconds": round(median, 3) if median is not None else None,
            "bot_replies": len(self.reply_seconds),
            "handed_to_human": self.handed,
            "handoff_share": _ratio(self.handed, self.conversations),
            "payment_links_sent": self.links,
            "paid_orders": self.paid_orders,
            "revenue": [{"currency": c, "amount_minor": a} for c, a in sorted(self.revenue.items())],
            "conversion": {
                "conversations": self.conversations,
                "with_payment_link": self.with_link,
                "paid": self.converted,
                "link_rate": _ratio(self.with_link, self.conversations),
                "paid_rate_of_links": _ratio(self.converted, self.with_link),
                "paid_rate": _ratio(self.converted, self.conversations),
            },
            "bookings": self.bookings,
            "cancelled_bookings": self.cancelled,
            "no_shows": self.no_shows,
        }


class _Report:
    """Blocks for the total, each channel and each lead source; ``conv`` maps a conversation id to
    its (channel, lead source)."""

    def __init__(self, conv: dict[uuid.UUID, tuple[str, str]]) -> None:
        self.conv = conv
        self.total = _Block()
        self.channels: dict[str, _Block] = defaultdict(_Block)
        self.sources: dict[str, _Block] = defaultdict(_Block)

    def blocks(self, conversation_id: uuid.UUID | None, channel: str | None = None) -> Iterable[_Block]:
        conv_channel, source = self.conv.get(conversation_id, (NONE, NONE)) if conversation_id else (NONE, NONE)
        return (self.total, self.channels[channel or conv_channel], self.sources[source])


async def _conversation_info(session: AsyncSession, company: Company,
                             ids: set[uuid.UUID]) -> dict[uuid.UUID, tuple[str, str]]:
    if not ids:
        return {}
    rows = await session.execute(
        select(Conversation.id, Inbox.kind, Conversation.lead_source)
        .join(Inbox, Inbox.id == Conversation.inbox_id)
        .where(Conversation.tenant_id == company.tenant_id, Conversation.company_id == company.id,
               Conversation.id.in_(ids))
    )
    return {cid: (kind, source or NONE) for cid, kind, source in rows}


async def company_metrics(session: AsyncSession, *, company: Company, start: datetime, end: datetime) -> dict[str, Any]:
    """The company's figures for ``start <= t < end`` (aware datetimes; see the module docstring):
    ``{"from", "to", "total": block, "channels": {kind: block}, "lead_sources": {code: block}}``.
    Raises ``ValueError`` for naive datetimes or ``end <= start``."""
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("start and end must be timezone-aware")
    if end <= start:
        raise ValueError("end must be after start")
    tid, cid = company.tenant_id, company.id
    in_company = (Conversation.tenant_id == tid, Conversation.company_id == cid)

    conversations = list((await session.execute(
        select(Conversation.id, Conversation.handoff)
        .where(*in_company, Conversation.created_at >= start, Conversation.created_at < end))).all())
    cohort = {c for c, _ in conversations}
    messages = list((await session.execute(
        select(Message.conversation_id, Message.channel, Message.direction, Message.sender, Message.created_at)
        .join(Conversation, Conversation.id == Message.conversation_id)
        .where(*in_company, Message.tenant_id == tid, Message.created_at >= start,
               Message.created_at < end + REPLY_LOOKAHEAD)
        .order_by(Message.conversation_id, Message.seq))).all())
    asked = set((await session.execute(
        select(AlertEvent.conversation_id).where(
            AlertEvent.tenant_id == tid, AlertEvent.company_id == cid, AlertEvent.kind == "handoff.requested",
            AlertEvent.conversation_id.is_not(None)))).scalars())
    links = list((await session.execute(
        select(Order.conversation_id, Payment.created_at)
        .join(Order, Order.id == Payment.order_id)
        .where(Order.tenant_id == tid, Order.company_id == cid, Payment.tenant_id == tid,
               Payment.checkout_url.is_not(None), Payment.created_at < end))).all())
    paid = list((await session.execute(
        select(Order.conversation_id, Order.paid_at, Order.total_minor, Order.currency)
        .where(Order.tenant_id == tid, Order.company_id == cid, Order.payment_status == "paid",
               Order.paid_at.is_not(None), Order.paid_at < end))).all())
    bookings = list((await session.execute(
        select(Booking.conversation_id, Booking.status, Booking.created_at, Booking.confirmed_at,
               Booking.cancelled_at, Booking.start_at)
        .where(Booking.tenant_id == tid, Booking.company_id == cid,
               or_(and_(Booking.created_at >= start, Booking.created_at < end),
                   and_(Booking.cancelled_at >= start, Booking.cancelled_at < end),
                   and_(Booking.start_at >= start, Booking.start_at < end))))).all())

    referenced = cohort | {m[0] for m in messages} | {c for c, _ in links if c} | {p[0] for p in paid if p[0]} \
        | {b[0] for b in bookings if b[0]}
    report = _Report(await _conversation_info(session, company, referenced))

    for conv_id, handoff in conversations:
        for block in report.blocks(conv_id):
            block.conversations += 1
            block.handed += int(handoff or conv_id in asked)

    waiting: dict[uuid.UUID, datetime] = {}
    for conv_id, channel, direction, sender, created in messages:
        in_period = created < end
        if direction == "in":
            if in_period:
                for block in report.blocks(conv_id, channel):
                    block.messages_in += 1
            if sender == "contact":
                waiting.setdefault(conv_id, created)
            continue
        if in_period:
            for block in report.blocks(conv_id, channel):
                block.messages_out += 1
        opened = waiting.pop(conv_id, None)
        if opened is not None and sender == "bot" and opened < end:
            for block in report.blocks(conv_id, channel):
                block.reply_seconds.append((created - opened).total_seconds())

    linked_convs: set[uuid.UUID] = set()
    for conv_id, created in links:
        if conv_id:
            linked_convs.add(conv_id)
        if created >= start:
            for block in report.blocks(conv_id):
                block.links += 1
    paid_convs: set[uuid.UUID] = set()
    for conv_id, paid_at, total, currency in paid:
        if conv_id:
            paid_convs.add(conv_id)
        if paid_at >= start:
            for block in report.blocks(conv_id):
                block.paid_orders += 1
                block.revenue[currency] += total
    for conv_id in cohort:
        for block in report.blocks(conv_id):
            block.with_link += int(conv_id in linked_convs)
            block.converted += int(conv_id in paid_convs)

    for conv_id, status, created, confirmed_at, cancelled_at, start_at in bookings:
        made = int(confirmed_at is not None and start <= created < end)
        cancelled = int(status == "cancelled" and cancelled_at is not None and start <= cancelled_at < end)
        no_show = int(status == "no_show" and start <= start_at < end)
        if made or cancelled or no_show:
            for block in report.blocks(conv_id):
                block.bookings += made
                block.cancelled += cancelled
                block.no_shows += no_show

    return {
        "from": start.isoformat(), "to": end.isoformat(),
        "total": report.total.as_dict(),
        "channels": {k: v.as_dict() for k, v in sorted(report.channels.items())},
        "lead_sources": {k: v.as_dict() for k, v in sorted(report.sources.items())},
    }
