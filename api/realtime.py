"""Real-time updates for open inbox views (Server-Sent Events) and the commit hooks that feed them.

``install_session_hooks`` gives the runtime's sessionmaker its own ``Session`` class with three
listeners: ``after_flush`` collects new messages, messages that became ``sent``/``failed``, new alert
events and finished knowledge-base imports; ``after_commit`` publishes them to the ``EventBus`` and
counts them in ``Telemetry``; a rollback drops them. So whatever code path writes a message (the
pipeline, a manager's reply, a payment confirmation), open views hear of it exactly when it is
committed, and nothing rolled back is ever shown or counted.

``EventBus`` is in-process pub/sub keyed by ``(tenant_id, company_id)``: a subscriber only ever
receives its own company's events. Limitation: with several server processes each has its own bus,
so a view sees the events committed by the process it is connected to (run one web process, or put
a shared broker such as Redis pub/sub behind ``EventBus.publish``; ``CHATCOMMERCE_REDIS_URL`` is not
used for this yet). A view that reconnects should reload its list (events are not replayed).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from api.telemetry import Telemetry
from core.models import AlertEvent, Conversation, KnowledgeImport, Message

_INFO_KEY = "chatcommerce.live_events"


@dataclass(frozen=True, slots=True)
class LiveEvent:
    """One update for a company's open views: ``type`` (``message.created``, ``message.status``, or an
    alert kind such as ``handoff.requested`` / ``order.paid``) and JSON-serialisable ``data``."""

    tenant_id: uuid.UUID
    company_id: uuid.UUID
    type: str
    data: dict[str, Any]


@dataclass(eq=False)
class Subscription:
    """A view's queue of events. ``overflowed`` is set when events were dropped because the view
    was not reading (it should reload)."""

    tenant_id: uuid.UUID
    company_id: uuid.UUID
    queue: asyncio.Queue[LiveEvent] = field(default_factory=lambda: asyncio.Queue(maxsize=500))
    overflowed: bool = False

    async def get(self) -> LiveEvent:
        """The next event (waits)."""
        return await self.queue.get()


class EventBus:
    """In-process publish/subscribe of ``LiveEvent`` per company (see the module docstring)."""

    def __init__(self) -> None:
        self._subs: dict[tuple[uuid.UUID, uuid.UUID], set[Subscription]] = {}

    @contextmanager
    def subscribe(self, *, tenant_id: uuid.UUID, company_id: uuid.UUID) -> Iterator[Subscription]:
        """Receive the company's events while the ``with`` block runs."""
        sub = Subscription(tenant_id=tenant_id, company_id=company_id)
        key = (tenant_id, company_id)
        self._subs.setdefault(key, set()).add(sub)
        try:
            yield sub
        finally:
            subs = self._subs.get(key)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subs[key]

    def publish(self, live: LiveEvent) -> int:
        """Hand ``live`` to the subscribers of its company (never to another's); returns how many."""
        delivered = 0
        for sub in self._subs.get((live.tenant_id, live.company_id), ()):
            try:
                sub.queue.put_nowait(live)
                delivered += 1
            except asyncio.QueueFull:
                sub.overflowed = True
        return delivered

    def subscribers(self) -> int:
        """How many views are subscribed (all companies)."""
        return sum(len(s) for s in self._subs.values())


def _company_of(session: Session, message: Message) -> uuid.UUID | None:
    conv = session.identity_map.get(identity_key(Conversation, message.conversation_id))
    return conv.company_id if isinstance(conv, Conversation) else None


def _message_data(message: Message) -> dict[str, Any]:
    return {"conversation_id": str(message.conversation_id), "message_id": str(message.id),
            "direction": message.direction, "sender": message.sender, "channel": message.channel,
            "status": message.status, "text": message.text,
            "created_at": message.created_at.isoformat() if message.created_at else None}


def install_session_hooks(
    sessionmaker: async_sessionmaker[AsyncSession], *, bus: EventBus, telemetry: Telemetry,
    on_alert: Callable[[], None] | None = None,
) -> None:
    """Attach the collect/publish/drop listeners to sessions made by ``sessionmaker`` (only those:
    it gets a ``Session`` subclass of its own). ``on_alert`` is called after a commit that recorded
    an alert event (wakes the alert dispatcher)."""
    session_class = type("ObservedSession", (Session,), {})
    sessionmaker.configure(sync_session_class=session_class)

    def collect(session: Session, _flush_context: Any) -> None:
        pending: list[tuple[str, Any]] = session.info.setdefault(_INFO_KEY, [])
        for obj in session.new:
            if isinstance(obj, Message):
                pending.append(("message", obj))
            elif isinstance(obj, AlertEvent):
                pending.append(("alert", obj))
            elif isinstance(obj, KnowledgeImport):
                pending.append(("import", obj.status))
        for obj in session.dirty:
            if isinstance(obj, Message):
                added = inspect(obj).attrs.status.history.added
                if added and added[-1] in ("sent", "failed"):
                    pending.append(("status", obj))

    def publish(session: Session) -> None:
        pending = session.info.pop(_INFO_KEY, None)
        if not pending:
            return
        alerted = False
        for what, obj in pending:
            if what == "import":
                telemetry.import_jobs.labels(outcome="ok" if obj == "ok" else "failed").inc()
                continue
            if what == "alert":
                alerted = True
                bus.publish(LiveEvent(tenant_id=obj.tenant_id, company_id=obj.company_id, type=obj.kind,
                                      data={"event_id": str(obj.id), "conversation_id":
                                            str(obj.conversation_id) if obj.conversation_id else None,
                                            **(obj.data or {})}))
                continue
            channel = telemetry.channel(obj.channel)
            if what == "message" and obj.direction == "in":
                telemetry.messages_received.labels(channel=channel).inc()
            elif what == "status":
                counter = telemetry.messages_sent if obj.status == "sent" else telemetry.send_failures
                counter.labels(channel=channel).inc()
            company_id = _company_of(session, obj)
            if company_id is not None:
                kind = "message.created" if what == "message" else "message.status"
                bus.publish(LiveEvent(tenant_id=obj.tenant_id, company_id=company_id, type=kind,
                                      data=_message_data(obj)))
        if alerted and on_alert is not None:
            on_alert()

    def drop(session: Session) -> None:
        session.info.pop(_INFO_KEY, None)

    event.listen(session_class, "after_flush", collect)
    event.listen(session_class, "after_commit", publish)
    event.listen(session_class, "after_rollback", drop)
