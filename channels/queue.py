"""Inbound jobs on a Redis stream, for ``CHATCOMMERCE_QUEUE=redis`` (webhook processes store and
enqueue, ``chatcommerce worker`` processes answer).

* A job (:class:`InboundJob`) names a stored message (or, after a buffer window, a conversation):
  ``{tenant_id, inbox_id, conversation_id, message_id}``. It carries no text: the worker reads the
  stored rows, so a job says nothing a log line could leak and cannot disagree with the database.
* Jobs go to one stream (``CHATCOMMERCE_QUEUE_STREAM``) read by the consumer group
  ``chatcommerce-workers`` through FastStream's Redis broker (``StreamSub(group=…, consumer=…)``):
  each job goes to one worker, which acknowledges it (``XACK``) only after its answer was stored and
  handed to the channel; a job whose handler raised stays pending. A second subscriber of the same
  group claims jobs pending longer than ``claim_idle_seconds`` (``XAUTOCLAIM``, FastStream's
  ``min_idle_time``): what a killed worker had taken is answered by another one.
* Answering twice is harmless: a worker answers only messages still ``received`` under the
  conversation's row lock (``channels.pipeline``), so a claimed job whose messages were answered
  meanwhile does nothing. Per-conversation order comes from that lock and the messages' ``seq``, not
  from the stream, so jobs of one conversation may go to different workers.
* Buffer windows: the due time of each waiting conversation is a member of a sorted set
  (``<stream>:due``, score = Unix seconds); a later message of the burst moves it. Every worker polls
  it (:meth:`RedisQueue.take_due`); the one whose ``ZREM`` removes a member owns it and enqueues the
  conversation as a job, so a crashed web process leaves no timer behind.

Nothing is built at import time, and FastStream and redis-py are imported only when a ``RedisQueue``
is made (an embedded process never loads them; they take seconds to import on a busy machine, which
uvicorn's worker health check does not wait for). ``RedisQueue`` connects in :meth:`RedisQueue.connect`
and closes in :meth:`RedisQueue.aclose`.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog

if TYPE_CHECKING:
    import redis.asyncio as redis_asyncio

__all__ = ["STREAM_GROUP", "InboundJob", "RedisQueue"]

log = structlog.get_logger(__name__)

STREAM_GROUP = "chatcommerce-workers"
# Approximate cap of the stream (acknowledged entries are not deleted by Redis): far above any backlog.
STREAM_MAXLEN = 1_000_000


@dataclass(frozen=True, slots=True, kw_only=True)
class InboundJob:
    """Work for a worker: answer the conversation's stored, unanswered messages up to ``message_id``
    (each on its own, as without a queue), or all of them as one answer when ``message_id`` is
    ``None`` (a buffer window closed). ``tenant_id`` scopes every read the worker makes."""

    tenant_id: uuid.UUID
    inbox_id: uuid.UUID
    conversation_id: uuid.UUID
    message_id: uuid.UUID | None = None

    def as_dict(self) -> dict[str, str | None]:
        """The job as the stream carries it (ids as strings)."""
        return {"tenant_id": str(self.tenant_id), "inbox_id": str(self.inbox_id),
                "conversation_id": str(self.conversation_id),
                "message_id": str(self.message_id) if self.message_id else None}

    @classmethod
    def from_dict(cls, data: Any) -> InboundJob:
        """Parse :meth:`as_dict`'s shape. Raises ``ValueError`` for anything else."""
        if not isinstance(data, dict):
            raise ValueError(f"an inbound job is an object, not {type(data).__name__}")
        try:
            message_id = data.get("message_id")
            return cls(tenant_id=uuid.UUID(str(data["tenant_id"])), inbox_id=uuid.UUID(str(data["inbox_id"])),
                       conversation_id=uuid.UUID(str(data["conversation_id"])),
                       message_id=uuid.UUID(str(message_id)) if message_id else None)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"malformed inbound job: {exc}") from None

    def timer_member(self) -> str:
        """The conversation's member in the due-time set (the same for every message of a burst)."""
        return json.dumps({**self.as_dict(), "message_id": None}, sort_keys=True)


class RedisQueue:
    """The inbound stream and the buffer-window timers of one process.

    ``url`` is ``CHATCOMMERCE_REDIS_URL``; ``stream`` the stream's key (the due set is
    ``<stream>:due``); ``concurrency`` how many jobs this process answers at once;
    ``claim_idle_seconds`` how long a job may stay unacknowledged before another worker claims it.
    Web processes only :meth:`connect` and :meth:`enqueue` / :meth:`schedule`; workers also
    :meth:`consume` and poll :meth:`take_due`.
    """

    def __init__(self, *, url: str, stream: str, concurrency: int = 16, claim_idle_seconds: float = 30.0,
                 group: str = STREAM_GROUP) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        if claim_idle_seconds <= 0:
            raise ValueError("claim_idle_seconds must be positive")
        self.stream = stream
        self.group = group
        self.due_key = f"{stream}:due"
        self.concurrency = concurrency
        self.claim_idle_ms = int(claim_idle_seconds * 1000)
        self._url = url
        from faststream.redis import RedisBroker

        self._broker = RedisBroker(url, log_level=10)  # FastStream's per-message lines at DEBUG only
        self._redis: redis_asyncio.Redis | None = None
        self._consuming = False

    async def connect(self) -> None:
        """Open the connections (publishing and the timer set). Raises ``redis`` errors when Redis is down."""
        import redis.asyncio as redis_asyncio

        await self._broker.connect()
        self._redis = redis_asyncio.from_url(self._url)

    async def enqueue(self, job: InboundJob) -> None:
        """Append ``job`` to the stream (``XADD``)."""
        await self._broker.publish(job.as_dict(), stream=self.stream, maxlen=STREAM_MAXLEN)

    async def schedule(self, job: InboundJob, *, delay_seconds: float, now: float | None = None) -> None:
        """(Re)set the conversation's buffer window to close ``delay_seconds`` from ``now`` (Unix
        seconds, default the current time): its job is enqueued by the worker that takes it then."""
        due = (time.time() if now is None else now) + delay_seconds
        await self._client.zadd(self.due_key, {job.timer_member(): due})

    async def take_due(self, *, now: float | None = None, limit: int = 100) -> list[InboundJob]:
        """Conversations whose window closed by ``now`` (Unix seconds), removed from the set; a member
        another process removed first is not returned (the ``ZREM`` is the claim). Malformed members
        are dropped with a log line."""
        client = self._client
        members = await client.zrangebyscore(self.due_key, "-inf", time.time() if now is None else now,
                                             start=0, num=limit)
        taken: list[InboundJob] = []
        for member in members:
            if not await client.zrem(self.due_key, member):
                continue
            try:
                taken.append(InboundJob.from_dict(json.loads(member)))
            except ValueError as exc:
                log.warning("queue_timer_malformed", error=str(exc))
        return taken

    async def consume(self, handler: Callable[[InboundJob], Awaitable[object]], *, consumer: str) -> None:
        """Start answering jobs with ``handler`` as consumer ``consumer`` (unique per process) of the
        group: new jobs (``XREADGROUP``) and, in a second subscriber, jobs another consumer left
        pending for ``claim_idle_seconds`` (``XAUTOCLAIM``). A job is acknowledged when ``handler``
        returns; when it raises, the job stays pending and is claimed again later."""
        if self._consuming:
            raise RuntimeError("this queue is already consuming")
        from faststream import AckPolicy
        from faststream.redis import StreamSub

        async def on_job(body: dict[str, Any]) -> None:
            try:
                job = InboundJob.from_dict(body)
            except ValueError as exc:  # acknowledged: a malformed entry would only come back
                log.warning("queue_job_malformed", error=str(exc))
                return
            await handler(job)

        subscribe = {"ack_policy": AckPolicy.NACK_ON_ERROR, "no_reply": True}
        self._broker.subscriber(stream=StreamSub(self.stream, group=self.group, consumer=consumer),
                                max_workers=self.concurrency, **subscribe)(on_job)
        self._broker.subscriber(stream=StreamSub(self.stream, group=self.group, consumer=consumer,
                                                 min_idle_time=self.claim_idle_ms, polling_interval=1000),
                                **subscribe)(on_job)
        await self._broker.start()
        self._consuming = True

    async def ping(self) -> bool:
        """True when Redis answers ``PING``."""
        return bool(await self._client.ping())

    async def aclose(self) -> None:
        """Stop consuming (jobs being answered finish first) and close the connections."""
        await self._broker.stop()
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None

    @property
    def _client(self) -> redis_asyncio.Redis:
        if self._redis is None:
            raise RuntimeError("RedisQueue.connect() was not called")
        return self._redis
