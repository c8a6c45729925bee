"""Real-time updates for open inbox views (Server-Sent Events) and the commit hooks that feed them.

``install_session_hooks`` gives the runtime's sessionmaker its own ``Session`` class with three
listeners: ``after_flush`` collects new messages, messages that became ``sent``/``failed``, new alert
events and finished knowledge-base imports; ``after_commit`` publishes them to the ``EventBus`` and
counts them in ``Telemetry``; a rollback drops them. So whatever code path writes a message (the
pipeline, a manager's reply, a payment confirmation), open views hear of it exactly when it is
committed, and nothing rolled back is ever shown or counted.

``EventBus`` is pub/sub keyed by ``(tenant_id, company_id)``: a subscriber only ever receives its own
company's events. In one process it is in memory. With ``CHATCOMMERCE_REDIS_URL`` set, the app's bus
relays every event through one Redis pub/sub channel (``RedisRelay``, started in the app's lifespan),
so a view connected to any server process sees events committed by any other (the CLI, a second web
process, a worker). Redis pub/sub is fire-and-forget: a view that reconnects should reload its list
(events are not replayed), and events published while Redis is unreachable reach local views only.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import structlog
from sqlalchemy import event, inspect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from api.telemetry import Telemetry
from core.models import AlertEvent, Conversation, KnowledgeImport, Message
from core.observed import OBSERVED_KEY

_INFO_KEY = OBSERVED_KEY  # shared with core.observed (changes written with Core statements)
log = structlog.get_logger(__name__)


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
    """Publish/subscribe of ``LiveEvent`` per company (see the module docstring). ``redis_url`` makes
    ``start()`` relay events through Redis; without it (or before ``start``) events stay in-process."""

    def __init__(self, *, redis_url: str | None = None, redis_channel: str = "chatcommerce:live") -> None:
        self._subs: dict[tuple[uuid.UUID, uuid.UUID], set[Subscription]] = {}
        self._relay = RedisRelay(url=redis_url, channel=redis_channel, deliver=self.publish_local) \
            if redis_url else None

    async def start(self) -> None:
        """Connect the Redis relay (when configured); returns once it listens."""
        if self._relay is not None:
            await self._relay.start()

    async def aclose(self) -> None:
        """Stop the Redis relay (when running)."""
        if self._relay is not None:
            await self._relay.stop()

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

    def publish(self, live: LiveEvent) -> None:
        """Publish ``live`` to its company's views: through Redis when the relay runs (every process,
        this one included, receives it back), else directly to this process's subscribers."""
        if self._relay is not None and self._relay.running:
            self._relay.send(live)
        else:
            self.publish_local(live)

    def publish_local(self, live: LiveEvent) -> int:
        """Hand ``live`` to this process's subscribers of its company (never to another's); returns how many."""
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


class RedisRelay:
    """Carries ``LiveEvent`` between processes over one Redis pub/sub ``channel`` (JSON messages
    ``{"tenant_id", "company_id", "type", "data"}``); what arrives is handed to ``deliver``. The
    listener reconnects after a lost connection (one second apart)."""

    def __init__(self, *, url: str, channel: str, deliver: Callable[[LiveEvent], Any]) -> None:
        self._url = url
        self._channel = channel
        self._deliver = deliver
        self._client: Any = None
        self._listener: asyncio.Task[None] | None = None
        self._sender: asyncio.Task[None] | None = None
        self._outbox: asyncio.Queue[tuple[LiveEvent, str]] = asyncio.Queue()
        self._ready = asyncio.Event()

    @property
    def running(self) -> bool:
        return self._listener is not None and not self._listener.done()

    async def start(self, timeout: float = 5.0) -> None:
        import redis.asyncio as redis_asyncio  # optional dependency: only with CHATCOMMERCE_REDIS_URL

        self._client = redis_asyncio.from_url(self._url)
        loop = asyncio.get_running_loop()
        self._listener = loop.create_task(self._listen(), name="chatcommerce-live-relay")
        self._sender = loop.create_task(self._send_in_order(), name="chatcommerce-live-relay-send")
        try:
            await asyncio.wait_for(self._ready.wait(), timeout)
        except TimeoutError:
            await self.stop()
            raise

    async def stop(self, drain: float = 2.0) -> None:
        """Publish what is still queued (for at most ``drain`` seconds), then disconnect."""
        if self._sender is not None:
            if self._listener is not None and not self._listener.done():
                try:
                    await asyncio.wait_for(self._outbox.join(), drain)
                except TimeoutError:
                    log.warning("live_relay_undrained", queued=self._outbox.qsize())
            self._sender.cancel()
            await asyncio.gather(self._sender, return_exceptions=True)
            self._sender = None
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
            self._listener = None
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def send(self, live: LiveEvent) -> None:
        """Queue ``live`` for publishing without waiting (called from a commit hook). One sender task
        publishes in commit order, so every process sees a conversation's events in the order they
        happened (concurrent publishes over a connection pool could overtake each other); a failure
        falls back to local delivery."""
        payload = json.dumps({"tenant_id": str(live.tenant_id), "company_id": str(live.company_id),
                              "type": live.type, "data": live.data}, default=str)
        self._outbox.put_nowait((live, payload))

    async def _send_in_order(self) -> None:
        while True:
            live, payload = await self._outbox.get()
            try:
                await self._client.publish(self._channel, payload)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - Redis down: this process's views still get it
                log.warning("live_relay_publish_failed")
                self._deliver(live)
            finally:
                self._outbox.task_done()

    async def _listen(self) -> None:
        while True:
            try:
                async with self._client.pubsub() as pubsub:
                    await pubsub.subscribe(self._channel)
                    self._ready.set()
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self._receive(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - reconnect after a lost connection
                log.warning("live_relay_disconnected")
                await asyncio.sleep(1.0)

    def _receive(self, raw: bytes | str) -> None:
        try:
            payload = json.loads(raw)
            live = LiveEvent(tenant_id=uuid.UUID(payload["tenant_id"]), company_id=uuid.UUID(payload["company_id"]),
                             type=str(payload["type"]), data=dict(payload["data"]))
        except (ValueError, KeyError, TypeError):
            log.warning("live_relay_bad_message")
            return
        self._deliver(live)


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
        for what, obj, *noted in pending:
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
            company_id = noted[0] if noted else _company_of(session, obj)
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
