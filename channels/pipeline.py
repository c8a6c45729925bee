"""The inbound pipeline: store the customer's message (once), answer it, store and deliver replies.

Guarantees (all channels):

* Every inbound message is stored before it is acknowledged. ``(inbox_id, direction, source_id)`` is
  unique, and the insert is the claim: a redelivered webhook or a re-read e-mail is a no-op even when
  two deliveries race.
* Messages a contact sends within the inbox's buffer window (``Inbox.settings["buffer_seconds"]``,
  default from the channel class: 0 for web chat, 3 s for messengers) are answered once, together.
* A conversation's messages are processed one at a time and in order (an in-process lock, plus a row
  lock on the conversation on PostgreSQL and ``BEGIN IMMEDIATE`` on SQLite across processes);
  different conversations run in parallel.
* Replies are stored as pending outbound messages (the outbox) in the same transaction that marks the
  inbound ones processed, then delivered. A message is claimed with one conditional statement
  (``UPDATE … SET status='sending' WHERE id=… AND status='pending'``, see ``claim_outbound``) and
  committed before the provider is called, so of any number of concurrent deliveries (sweep,
  ``recover()``, the conversation's own, other processes) exactly one sends it, on SQLite as on
  PostgreSQL, and a send the provider accepted is never repeated; a failed send is marked ``failed``
  and the conversation is flagged for a manager (``status = "pending"``).
* A conversation's replies reach the provider in ``seq`` order, also when two tasks or processes deliver
  them (a customer's quick second message answered while the first reply's HTTP call is still out): a
  reply is claimed only when no earlier reply of its conversation is ``pending`` or being sent (a claim
  younger than ``SENDING_STALE``). Earlier ``pending`` ones (a payment confirmation a webhook stored) are
  sent first by the same delivery; for one another task is sending, a later reply waits, at most
  ``ORDER_WAIT`` (then it is sent anyway: a process killed mid-send delays its conversation by
  seconds). A failed earlier reply does not hold the later ones back.
* Customer text longer than the channel's ``max_inbound_text`` (the provider's own maximum) is
  stored and answered cut to that length, with ``payload["truncated_from"]`` = the original length.
* A process killed mid-way loses nothing: ``recover()`` answers stored-but-unprocessed messages and
  delivers pending replies once.
* Bot-initiated messages (payment confirmations) take the same outbound path (``deliver_pending``).
* With a queue (``CHATCOMMERCE_QUEUE=redis``, ``channels.queue``) a webhook only stores the message and
  enqueues a job (``accept``); a worker process answers it (``answer_job``) with the same code as
  below: the conversation's messages still ``received`` up to the job's message, in ``seq`` order,
  under the conversation's row lock, each answered on its own (a burst after a buffer window as one).

The hot path (no buffer window): one transaction finds the contact, takes the conversation's row
lock and next ``seq`` in one ``UPDATE … RETURNING``, inserts the message (``ON CONFLICT DO NOTHING``
is the dedupe claim), answers it and stores the replies already claimed (``sending``: the claim
is that transaction's commit, not a transaction of its own) — unless the same ``UPDATE … RETURNING``
reported an earlier reply of the conversation still in flight (``REPLIES_IN_FLIGHT``), in which case
they are stored ``pending`` and claimed in order after it; then each reply is sent through the
inbox's cached adapter and marked sent (one autocommitted ``UPDATE``). A process killed between that
commit and the send leaves the reply ``sending``, as one killed after a claim does: never sent
twice. The inbox row and the adapter come from ``ChannelFactory``'s per-inbox cache; the chat id and
reply context are handed along, not read again. If anything in that transaction fails, the message is stored on its own
(``received``) and answered by ``process`` as with a window, so nothing is lost.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import and_, exists, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased
from sqlalchemy.orm.attributes import flag_modified, set_committed_value
from tenacity import AsyncRetrying, retry_if_result, stop_after_delay, wait_exponential

from bot.messages import Button, InboundMessage, OutboundMessage, Responder
from channels.base import ParsedInbound
from channels.factory import ChannelFactory, InboxRow
from channels.pipeline_sql import (
    CLAIM_CONVERSATION,
    CLAIM_CONVERSATION_BY_SOURCE,
    CONTACT_BY_SOURCE,
    INSERT_INBOUND,
    INSERT_REPLY,
    LOCK_CONTACT,
    MARK_SENT,
)
from channels.queue import InboundJob, RedisQueue
from channels.registry import ChannelRegistry
from core.alerts import record_alert
from core.conversations import append_message
from core.db import begin_write
from core.leads import lead_source_of
from core.models import Company, Contact, ContactInbox, Conversation, Inbox, Message
from core.observed import note_message
from core.timeutil import utcnow

__all__ = ["ChannelFactory", "InboxRow", "Pipeline", "ReceiveResult", "Reply", "claim_outbound"]

log = structlog.get_logger(__name__)

# Replies of a conversation go out in ``seq`` order: a reply waits while an earlier one is ``pending`` or
# claimed (``sending``) less than ``SENDING_STALE`` ago, for at most ``ORDER_WAIT``; then it is sent anyway,
# so a process killed mid-send (its claim stays ``sending``) delays the conversation by seconds, not forever.
# Both are above a normal send (well under a second) and below the providers' own timeouts (30 s).
SENDING_STALE = timedelta(seconds=15)
ORDER_WAIT = timedelta(seconds=15)

# Inbound message statuses: stored and waiting for an answer / answered (or deliberately not answered).
RECEIVED = "received"
PROCESSED = "processed"
# Outbound: claimed for sending (by ``claim_outbound``, or stored so by the hot path that sends it next).
SENDING = "sending"


@dataclass(frozen=True, slots=True)
class Reply:
    """A stored outbound message as returned to synchronous callers (web chat, console)."""

    message_id: uuid.UUID
    text: str
    buttons: list[dict[str, str]] = field(default_factory=list)
    url: str | None = None
    image_url: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {"text": self.text, "buttons": self.buttons, "url": self.url, "image_url": self.image_url}

    @classmethod
    def from_message(cls, message: Message) -> Reply:
        payload = message.payload or {}
        return cls(message_id=message.id, text=message.text, buttons=list(payload.get("buttons") or []),
                   url=payload.get("url"), image_url=payload.get("image_url"))

    def as_outbound(self) -> OutboundMessage:
        return OutboundMessage(
            text=self.text, url=self.url, image_url=self.image_url,
            buttons=tuple(Button(title=b.get("title", ""), payload=b.get("payload") or b.get("title", ""))
                          for b in self.buttons),
        )


@dataclass(frozen=True, slots=True)
class ReceiveResult:
    """Outcome of one inbound message: ``duplicate`` when it had been received before (nothing was
    done), ``handoff`` when a manager owns the conversation (stored, not answered), ``buffered`` when
    the answer waits for the inbox's buffer window (it is delivered through the channel later)."""

    conversation_id: uuid.UUID | None
    message_id: uuid.UUID | None
    duplicate: bool = False
    handoff: bool = False
    buffered: bool = False
    replies: list[Reply] = field(default_factory=list)


def cap_inbound_text(text: str, *, limit: int) -> tuple[str, dict[str, int]]:
    """The customer text to store and answer: ``text`` itself when it has at most ``limit``
    characters, else its first ``limit`` characters and the note ``{"truncated_from": len(text)}``
    kept in the message's payload. ``limit`` is the channel's ``max_inbound_text`` (the provider's
    own maximum), so only a forged or malformed delivery is ever cut; the note says it was."""
    if limit <= 0:
        raise ValueError(f"limit must be positive, not {limit}")
    if len(text) <= limit:
        return text, {}
    return text[:limit], {"truncated_from": len(text)}


def merge_replies(batches: list[list[OutboundMessage]]) -> list[OutboundMessage]:
    """Fold the replies to a burst of messages into one answer: texts joined by a blank line (each
    text once), the last link, image and buttons win. A single message's replies are kept as they are."""
    if len(batches) == 1:
        return batches[0]
    flat = [m for batch in batches for m in batch]
    if not flat:
        return []
    texts: list[str] = []
    for m in flat:
        if m.text and m.text not in texts:
            texts.append(m.text)
    url = next((m.url for m in reversed(flat) if m.url), None)
    image = next((m.image_url for m in reversed(flat) if m.image_url), None)
    buttons = next((m.buttons for m in reversed(flat) if m.buttons), ())
    note = next((m.assistant for m in reversed(flat) if m.assistant), None)
    return [OutboundMessage(text="\n\n".join(texts), buttons=buttons, url=url, image_url=image, assistant=note)]


class _ConversationLocks:
    """One ``asyncio.Lock`` per conversation, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[uuid.UUID, asyncio.Lock] = {}
        self._users: dict[uuid.UUID, int] = {}

    @asynccontextmanager
    async def acquire(self, key: uuid.UUID) -> AsyncIterator[None]:
        lock = self._locks.setdefault(key, asyncio.Lock())
        self._users[key] = self._users.get(key, 0) + 1
        try:
            async with lock:
                yield
        finally:
            self._users[key] -= 1
            if self._users[key] == 0:
                del self._users[key], self._locks[key]


class Pipeline:
    """Receives parsed messages for an inbox and answers them with the dialogue engine.

    One instance per process (built in the app's lifespan or a CLI command). ``close()`` cancels
    pending buffer timers; what they would have answered is picked up by ``recover()``. With a
    ``queue`` (connected by the caller), ``accept`` hands the answer to worker processes.
    """

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        responder: Responder,
        channels: ChannelRegistry,
        channel_factory: ChannelFactory | None = None,
        queue: RedisQueue | None = None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self.queue = queue
        self._responder = responder
        self._channels = channels
        self._factory = channel_factory or ChannelFactory(channels=channels)
        self._locks = _ConversationLocks()
        self._timers: dict[uuid.UUID, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # -- inbound ---------------------------------------------------------------------------------

    async def receive(self, *, inbox_id: uuid.UUID, parsed: ParsedInbound) -> ReceiveResult:
        """Store ``parsed`` in its conversation and answer it.

        With a buffer window of 0 the answer is computed now, delivered and returned in ``replies``;
        otherwise the message is stored, a timer answers the burst when the window closes and
        ``buffered`` is set. A message whose ``source_id`` was already received returns
        ``duplicate=True`` and does nothing. Raises ``LookupError`` for an unknown or inactive inbox.
        """
        inbox = await self.inbox(inbox_id)
        if inbox is None or not inbox.active:
            raise LookupError(f"inbox {inbox_id} not found or inactive")
        if self._window(inbox) <= 0:
            return await self._answer_now(inbox=inbox, parsed=parsed)
        stored, window = await self.store(inbox_id=inbox_id, parsed=parsed)
        if stored.duplicate or stored.handoff or stored.conversation_id is None:
            return stored
        if window > 0:
            self._schedule(stored.conversation_id, window)
            self._background(self._show_typing(inbox_id=inbox_id, to=parsed.contact_source_id))
            return ReceiveResult(conversation_id=stored.conversation_id, message_id=stored.message_id,
                                 buffered=True)
        replies = await self.process(conversation_id=stored.conversation_id)
        return ReceiveResult(conversation_id=stored.conversation_id, message_id=stored.message_id, replies=replies)

    async def accept(self, *, inbox_id: uuid.UUID, parsed: ParsedInbound) -> ReceiveResult:
        """What a webhook (or an e-mail watcher) does with a delivered message. Without a queue this
        is ``receive``. With one, the message is stored as ``received`` (the hot path's transaction
        without the answer; the insert is the dedupe claim) and a job is enqueued for a worker (or,
        with a buffer window, the conversation's due time set in Redis); ``buffered`` is set,
        ``replies`` stay empty. Raises ``LookupError`` for an unknown or inactive inbox, and what
        Redis raises when it is unreachable (the message is then stored and the sweep's ``recover``
        answers it)."""
        if self.queue is None:
            return await self.receive(inbox_id=inbox_id, parsed=parsed)
        inbox = await self.inbox(inbox_id)
        if inbox is None or not inbox.active:
            raise LookupError(f"inbox {inbox_id} not found or inactive")
        stored = await self._store_only(inbox=inbox, parsed=parsed)
        if stored.duplicate or stored.handoff or stored.conversation_id is None:
            return stored
        window = self._window(inbox)
        job = InboundJob(tenant_id=inbox.tenant_id, inbox_id=inbox_id, conversation_id=stored.conversation_id,
                         message_id=stored.message_id)
        if window > 0:
            await self.queue.schedule(job, delay_seconds=window)
            self._background(self._show_typing(inbox_id=inbox_id, to=parsed.contact_source_id))
        else:
            await self.queue.enqueue(job)
        return ReceiveResult(conversation_id=stored.conversation_id, message_id=stored.message_id, buffered=True)

    async def _store_only(self, *, inbox: InboxRow, parsed: ParsedInbound) -> ReceiveResult:
        """Store ``parsed`` as ``received`` in one short transaction (the hot path's statements,
        without answering); on any failure of it, through ``store`` (the ORM path) as before."""
        channel_class = self._factory.channel_class(inbox)
        text, note = cap_inbound_text(parsed.text, limit=channel_class.max_inbound_text)
        if note:
            log.info("inbound_text_truncated", inbox_id=str(inbox.id), channel=inbox.kind, **note)
        try:
            result, _payloads, _claimed = await self._store_and_answer(inbox=inbox, parsed=parsed, text=text, note=note,
                                                             context=channel_class.reply_context(parsed),
                                                             answer=False)
            return result
        except _Duplicate:
            return ReceiveResult(conversation_id=None, message_id=None, duplicate=True)
        except Exception as exc:  # noqa: BLE001 - the two-step path keeps the message
            log.info("store_only_fell_back", inbox_id=str(inbox.id), error=type(exc).__name__)
            stored, _window = await self.store(inbox_id=inbox.id, parsed=parsed)
            return stored

    async def answer_job(self, job: InboundJob) -> list[Reply]:
        """A worker's answer to a queued job (see ``accept``): the conversation's messages still
        ``received`` up to ``job.message_id`` are answered one by one (all of them as one answer
        when ``message_id`` is ``None``: a closed buffer window), the replies stored and delivered.
        Only a conversation of ``job.tenant_id`` is touched. Returns the stored replies (empty when
        another worker had answered them)."""
        replies = await self.process(conversation_id=job.conversation_id, tenant_id=job.tenant_id,
                                     through_message_id=job.message_id)
        if not replies and self.queue is not None:
            # A job claimed from a dead worker whose answer was stored but never sent: send what has
            # waited longer than a job may stay unacknowledged (a live worker's replies are younger).
            await self.deliver_pending(conversation_id=job.conversation_id,
                                       older_than=timedelta(milliseconds=self.queue.claim_idle_ms))
        return replies

    async def inbox(self, inbox_id: uuid.UUID) -> InboxRow | None:
        """The inbox's row from the factory's per-inbox cache (``None`` when it does not exist)."""
        return await self._factory.inbox(self._sessionmaker, inbox_id)

    # -- the hot path: no buffer window ----------------------------------------------------------

    async def _answer_now(self, *, inbox: InboxRow, parsed: ParsedInbound) -> ReceiveResult:
        """Store, answer and queue in one transaction, then deliver the replies (see the module doc).
        On any failure of that transaction the message is stored alone and answered by ``process``
        (which raises what the engine raises, as before: the message stays for ``recover()``)."""
        channel_class = self._factory.channel_class(inbox)
        text, note = cap_inbound_text(parsed.text, limit=channel_class.max_inbound_text)
        if note:
            log.info("inbound_text_truncated", inbox_id=str(inbox.id), channel=inbox.kind, **note)
        context = channel_class.reply_context(parsed)
        try:
            result, payloads, claimed = await self._store_and_answer(inbox=inbox, parsed=parsed, text=text, note=note,
                                                            context=context)
        except _Duplicate:
            return ReceiveResult(conversation_id=None, message_id=None, duplicate=True)
        except Exception as exc:  # noqa: BLE001 - fall back to the two-step path, which keeps the message
            log.info("answer_now_fell_back", inbox_id=str(inbox.id), error=type(exc).__name__)
            stored, _window = await self.store(inbox_id=inbox.id, parsed=parsed)
            if stored.duplicate or stored.handoff or stored.conversation_id is None:
                return stored
            replies = await self.process(conversation_id=stored.conversation_id)
            return ReceiveResult(conversation_id=stored.conversation_id, message_id=stored.message_id,
                                 replies=replies)
        for reply in result.replies:
            await self._deliver_known(inbox=inbox, reply=reply, payload=payloads[reply.message_id],
                                      to=parsed.contact_source_id, context=context,
                                      conversation_id=result.conversation_id, claimed=claimed)
        return result

    async def _store_and_answer(self, *, inbox: InboxRow, parsed: ParsedInbound, text: str,
                                note: dict[str, int], context: dict[str, Any], answer: bool = True,
                                ) -> tuple[ReceiveResult, dict[uuid.UUID, dict[str, Any]], bool]:
        """One transaction; returns the result, the stored payload of each reply, and whether the replies
        were stored claimed (``sending``: no earlier reply in flight, the caller sends them now).
        ``answer=False`` only stores the message (``received``, or ``processed`` when a manager owns the conversation):
        what ``accept`` does before enqueueing it."""
        async with self._sessionmaker() as session, session.begin():
            await begin_write(session)  # SQLite: BEGIN IMMEDIATE (see ``_store_once``); PostgreSQL: nothing
            conversation, company, contact_id, phone, in_flight = await _claim_by_source(session, inbox=inbox,
                                                                                          parsed=parsed)
            now = utcnow()
            status = PROCESSED if answer or conversation.handoff else RECEIVED
            values = {
                "id": uuid.uuid4(), "tenant_id": inbox.tenant_id, "created_at": now,
                "conversation_id": conversation.id, "inbox_id": inbox.id, "channel": inbox.kind,
                "direction": "in", "sender": "contact", "source_id": parsed.source_id, "text": text,
                "status": status, "seq": conversation.last_seq,
                "payload": {"received_at": parsed.received_at.isoformat(), "reply_context": context, **note},
            }
            insert = INSERT_INBOUND[session.bind.dialect.name]  # on the connection: no autoflush (_count_on)
            inserted = (await (await session.connection()).execute(insert, values)).scalar_one_or_none()
            if inserted is None:
                raise _Duplicate  # rolls back the seq taken above
            note_message(session, what="message", company_id=inbox.company_id, message=Message(**values))
            if conversation.last_seq == 1 and conversation.lead_source is None:  # its first message
                conversation.lead_source = lead_source_of(text)
            if conversation.handoff:
                _write_seq(conversation)
                return ReceiveResult(conversation_id=conversation.id, message_id=inserted, handoff=True), {}, False
            if not answer:
                _write_seq(conversation)
                return ReceiveResult(conversation_id=conversation.id, message_id=inserted), {}, False
            company = company or await session.get(Company, inbox.company_id)
            assert company is not None
            inbound = InboundMessage(
                tenant_id=inbox.tenant_id, company_id=company.id, conversation_id=conversation.id,
                contact_id=contact_id, channel=inbox.kind, text=text, received_at=now,
                source_id=parsed.source_id, phone=phone, inbox_assistant=_assistant_overrides(inbox),
            )
            outs = await self._responder.respond(session, inbound=inbound, conversation=conversation, company=company)
            replies: list[Reply] = []
            payloads: dict[uuid.UUID, dict[str, Any]] = {}
            for out in merge_replies([outs]):
                # Stored already claimed (``sending``): this call delivers it right after the commit, so
                # no separate claim transaction is needed, and no other delivery can take it. Unless an
                # earlier reply is still in flight: then ``pending``, claimed in order after it.
                row = await _insert_reply(session, inbox=inbox, conversation=conversation, out=out,
                                          status="pending" if in_flight else SENDING,
                                          claimed_at=None if in_flight else now)
                replies.append(Reply.from_message(row))
                payloads[row.id] = dict(row.payload or {})
            _write_seq(conversation)
            return (ReceiveResult(conversation_id=conversation.id, message_id=inserted, replies=replies), payloads,
                    not in_flight)

    async def _deliver_known(self, *, inbox: InboxRow, reply: Reply, payload: dict[str, Any], to: str,
                             context: dict[str, Any], conversation_id: uuid.UUID, claimed: bool = False) -> int:
        """Deliver a reply whose recipient and context the caller knows: claim in order (one statement
        when no earlier reply is in flight; not when ``claimed``: the reply was stored as ``sending`` by
        the caller's committed transaction, which saw no earlier reply in flight),
        send through the inbox's cached adapter, mark ``sent`` (one autocommitted statement) or
        ``failed``."""
        if not claimed and not await self._claim_in_order(reply.message_id):
            return 0
        channel = self._factory.channel(inbox)
        try:
            provider_id = await channel.send_reply(to=to, message=reply.as_outbound(), context=context)
        except Exception as exc:  # noqa: BLE001 - any provider failure is recorded, not raised
            log.warning("send_failed", message_id=str(reply.message_id), channel=inbox.kind, error=repr(exc))
            await self._mark_failed(reply.message_id, error=repr(exc))
            return 0
        if provider_id:
            payload = {**payload, "provider_message_id": provider_id}
        async with self._sessionmaker() as session, session.begin():
            # One statement: autocommitted, without the BEGIN and COMMIT round trips of a transaction
            # (the session's commit hooks still publish the change).
            await session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
            now = utcnow()
            await session.execute(MARK_SENT, {"p_id": reply.message_id, "p_now": now, "p_payload": payload})
            note_message(session, what="status", company_id=inbox.company_id, message=Message(
                id=reply.message_id, tenant_id=inbox.tenant_id, conversation_id=conversation_id,
                inbox_id=inbox.id, channel=inbox.kind, direction="out", sender="bot", text=reply.text,
                status="sent", created_at=now))
        return 1

    async def store(self, *, inbox_id: uuid.UUID, parsed: ParsedInbound) -> tuple[ReceiveResult, float]:
        """Store an inbound message and return it with the inbox's buffer window in seconds.

        This is what a webhook handler does before acknowledging the delivery. The insert of the
        message claims ``(inbox, source_id)``: a duplicate (also a concurrent one) returns
        ``duplicate=True``. A conversation owned by a manager stores the message as processed.
        """
        for _attempt in range(3):
            try:
                return await self._store_once(inbox_id=inbox_id, parsed=parsed)
            except IntegrityError:
                # Either a concurrent delivery of the same source_id won the claim (a duplicate), or a
                # concurrent first message created the same contact: look again.
                if parsed.source_id and await self._is_stored(inbox_id=inbox_id, source_id=parsed.source_id):
                    return ReceiveResult(conversation_id=None, message_id=None, duplicate=True), 0.0
        raise RuntimeError(f"could not store inbound message for inbox {inbox_id} after 3 attempts")

    async def _is_stored(self, *, inbox_id: uuid.UUID, source_id: str) -> bool:
        async with self._sessionmaker() as session:
            inbox = await session.get(Inbox, inbox_id)
            return inbox is not None and await _already_received(session, inbox=inbox, source_id=source_id)

    async def _store_once(self, *, inbox_id: uuid.UUID, parsed: ParsedInbound) -> tuple[ReceiveResult, float]:
        async with self._sessionmaker() as session, session.begin():
            # SQLite: finding (or opening) the contact's conversation and adding the message is one
            # serialised step, so a burst of parallel deliveries opens one conversation, not several
            # (PostgreSQL: the contact's row lock in ``_conversation_for``).
            await begin_write(session)
            inbox = await session.get(Inbox, inbox_id)
            if inbox is None or not inbox.active:
                raise LookupError(f"inbox {inbox_id} not found or inactive")
            window = self._window(inbox)
            if parsed.source_id and await _already_received(session, inbox=inbox, source_id=parsed.source_id):
                return ReceiveResult(conversation_id=None, message_id=None, duplicate=True), window
            contact = await _contact_for(session, inbox=inbox, parsed=parsed)
            conversation = await _conversation_for(session, inbox=inbox, contact=contact)
            channel_class = self._factory.channel_class(inbox)
            text, note = cap_inbound_text(parsed.text, limit=channel_class.max_inbound_text)
            if note:
                log.info("inbound_text_truncated", inbox_id=str(inbox.id), channel=inbox.kind, **note)
            row = await append_message(
                session, conversation=conversation, direction="in", sender="contact", text=text,
                channel=inbox.kind, source_id=parsed.source_id,
                payload={"received_at": parsed.received_at.isoformat(),
                         "reply_context": channel_class.reply_context(parsed), **note},
                status=PROCESSED if conversation.handoff else RECEIVED,
            )
            return ReceiveResult(conversation_id=conversation.id, message_id=row.id,
                                 handoff=conversation.handoff), window

    def _background(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _show_typing(self, *, inbox_id: uuid.UUID, to: str) -> None:
        """Best effort: the contact sees "typing…" while the buffer window is open."""
        inbox = await self.inbox(inbox_id)
        if inbox is None:
            return
        try:
            await self._factory.channel(inbox).typing(to=to)
        except Exception as exc:  # noqa: BLE001 - a missing typing indicator is harmless
            log.info("typing_failed", channel=inbox.kind, error=type(exc).__name__)

    def _window(self, inbox: Inbox | InboxRow) -> float:
        configured = (inbox.settings or {}).get("buffer_seconds")
        if configured is not None:
            return max(float(configured), 0.0)
        cls = self._channels.get(inbox.kind)
        return float(getattr(cls, "default_buffer_seconds", 0.0))

    def _schedule(self, conversation_id: uuid.UUID, window: float) -> None:
        """(Re)start the conversation's buffer timer: the burst is answered ``window`` s after its last message."""
        previous = self._timers.pop(conversation_id, None)
        if previous is not None and not previous.done():
            previous.cancel()

        async def _fire() -> None:
            await asyncio.sleep(window)
            self._timers.pop(conversation_id, None)
            try:
                await self.process(conversation_id=conversation_id)
            except Exception:  # noqa: BLE001 - logged; recover() retries unprocessed messages
                log.exception("process_failed", conversation_id=str(conversation_id))

        self._timers[conversation_id] = asyncio.get_running_loop().create_task(_fire())

    async def process(self, *, conversation_id: uuid.UUID, tenant_id: uuid.UUID | None = None,
                      through_message_id: uuid.UUID | None = None) -> list[Reply]:
        """Answer the conversation's unprocessed inbound messages (in order, as one answer), store
        the replies and deliver them. Returns the stored replies (empty when there was nothing to do).

        ``tenant_id``: only a conversation of that tenant is answered (queued jobs). With
        ``through_message_id`` only the messages up to that one (by ``seq``) are answered, each with
        its own replies, as ``receive`` does without a buffer window."""
        async with self._locks.acquire(conversation_id):
            replies, known = await self._process_locked(conversation_id, tenant_id=tenant_id,
                                                        through_message_id=through_message_id)
        if replies and known is not None:  # a queued job: the recipient and context were read with the messages
            for reply in replies:
                await self._deliver_known(inbox=known.inbox, reply=reply, payload=known.payloads[reply.message_id],
                                          to=known.to, context=known.context, conversation_id=conversation_id)
        elif replies:
            await self.deliver_pending(conversation_id=conversation_id)
        return replies

    async def _process_locked(self, conversation_id: uuid.UUID, *, tenant_id: uuid.UUID | None = None,
                              through_message_id: uuid.UUID | None = None,
                              ) -> tuple[list[Reply], _KnownRecipient | None]:
        """Answer and queue the replies in one transaction. For a queued job (``tenant_id`` given) also
        the recipient, reply context and stored payloads, so the replies are delivered without reading
        them again (``_deliver_known``); otherwise ``None`` (``deliver_pending`` delivers)."""
        async with self._sessionmaker() as session, session.begin():
            # Another process (a second server, a CLI) may answer the same conversation: on SQLite the
            # write transaction is opened first (BEGIN IMMEDIATE), so reading the unprocessed messages
            # and marking them processed is one serialised step; on PostgreSQL the conversation's row
            # lock below does it.
            await begin_write(session)
            found = select(Conversation).where(Conversation.id == conversation_id)
            if tenant_id is not None:
                found = found.where(Conversation.tenant_id == tenant_id)
            conversation = (await session.execute(found.with_for_update())).scalar_one_or_none()
            if conversation is None:
                return [], None
            unanswered = select(Message).where(Message.conversation_id == conversation.id, Message.direction == "in",
                                               Message.status == RECEIVED)
            if through_message_id is not None:
                unanswered = unanswered.where(Message.seq <= select(Message.seq).where(
                    Message.id == through_message_id, Message.conversation_id == conversation.id).scalar_subquery())
            pending = list((await session.execute(unanswered.order_by(Message.seq))).scalars())
            if not pending:
                return [], None
            for msg in pending:
                msg.status = PROCESSED
            if conversation.handoff:
                return [], None
            company = await session.get(Company, conversation.company_id)
            contact = await session.get(Contact, conversation.contact_id)
            assert company is not None and contact is not None
            batches: list[list[OutboundMessage]] = []
            for msg in pending:
                inbound = InboundMessage(
                    tenant_id=conversation.tenant_id, company_id=company.id, conversation_id=conversation.id,
                    contact_id=contact.id, channel=msg.channel, text=msg.text, received_at=msg.created_at,
                    source_id=msg.source_id, phone=contact.phone,
                )
                batches.append(await self._responder.respond(
                    session, inbound=inbound, conversation=conversation, company=company
                ))
                if conversation.handoff:
                    break
            # Replies a dead worker stored but never sent go first, through deliver_pending (in order).
            leftover = tenant_id is not None and (await session.execute(
                select(Message.id).where(Message.conversation_id == conversation.id, Message.direction == "out",
                                         Message.status == "pending").limit(1)
            )).first() is not None
            replies: list[Reply] = []
            payloads: dict[uuid.UUID, dict[str, Any]] = {}
            answers = [out for batch in batches for out in batch] if through_message_id else merge_replies(batches)
            for out in answers:
                row = await append_message(
                    session, conversation=conversation, direction="out", sender="bot", text=out.text,
                    channel=pending[-1].channel, payload=out.as_payload(), locked=True,
                )
                replies.append(Reply.from_message(row))
                payloads[row.id] = dict(row.payload or {})
            if tenant_id is None or leftover or not replies:
                return replies, None
            inbox = await self.inbox(conversation.inbox_id)
            to = (await session.execute(
                select(ContactInbox.source_id).where(ContactInbox.inbox_id == conversation.inbox_id,
                                                     ContactInbox.contact_id == contact.id)
            )).scalar_one_or_none()
            if inbox is None or to is None:
                return replies, None  # deliver_pending reads (and fails) them as before
            context = (pending[-1].payload or {}).get("reply_context")
            return replies, _KnownRecipient(inbox=inbox, to=to, context=context if isinstance(context, dict) else {},
                                            payloads=payloads)

    # -- outbound --------------------------------------------------------------------------------

    async def deliver_pending(self, *, conversation_id: uuid.UUID | None = None, limit: int = 100,
                              older_than: timedelta | None = None, before_seq: int | None = None) -> int:
        """Send pending outbound messages (of one conversation, or all) through their inbox's channel,
        in order. Each message is claimed (``sending``) and committed before the provider is called,
        then marked ``sent`` (with the provider's id) or ``failed`` (conversation flagged for a
        manager). ``older_than``: only messages stored at least that long ago; ``before_seq``: only those
        numbered below it (with ``conversation_id``). Returns how many were sent."""
        async with self._sessionmaker() as session, session.begin():
            stmt = select(Message.id).where(Message.direction == "out", Message.status == "pending")
            if conversation_id is not None:
                stmt = stmt.where(Message.conversation_id == conversation_id)
            if older_than is not None:
                stmt = stmt.where(Message.created_at <= utcnow() - older_than)
            if before_seq is not None:
                stmt = stmt.where(Message.seq < before_seq)
            ids = list((await session.execute(stmt.order_by(Message.created_at, Message.seq).limit(limit))).scalars())
        sent = 0
        for message_id in ids:
            sent += await self._deliver_one(message_id)
        return sent

    async def _claim_in_order(self, message_id: uuid.UUID, *, help_earlier: bool = True) -> bool:
        """Claim ``message_id`` for sending (its own committed transaction), after the earlier replies of its
        conversation. Earlier replies still ``pending`` (nobody is sending them: e.g. a payment confirmation
        stored by a webhook) are delivered first by this call, in order, when ``help_earlier``; while one is
        being sent by another task or process, retry (``tenacity``: 20 ms doubling to 0.5 s, for up to
        ``ORDER_WAIT``), then claim regardless of order. True when this call owns the send."""
        blocked_by: list[tuple[uuid.UUID, int]] = []

        async def attempt(*, in_order: bool) -> str:
            async with self._sessionmaker() as session, session.begin():
                if await claim_outbound(session, message_id=message_id, in_order=in_order):
                    return "claimed"
                row = (await session.execute(select(Message.status, Message.conversation_id, Message.seq)
                                             .where(Message.id == message_id))).first()
                if row is None or row.status != "pending":
                    return "taken"
                blocked_by[:] = [(row.conversation_id, row.seq)]
                return "blocked"

        outcome = await attempt(in_order=True)
        if outcome == "blocked" and help_earlier:
            conversation_id, seq = blocked_by[0]
            await self.deliver_pending(conversation_id=conversation_id, before_seq=seq)
            outcome = await attempt(in_order=True)
        if outcome != "blocked":
            return outcome == "claimed"
        retrying = AsyncRetrying(
            retry=retry_if_result(lambda outcome: outcome == "blocked"),
            wait=wait_exponential(multiplier=0.01, min=0.02, max=0.5),
            stop=stop_after_delay(ORDER_WAIT.total_seconds()),
            retry_error_callback=lambda _state: "blocked",
        )
        outcome = await retrying(attempt, in_order=True)
        if outcome == "blocked":
            log.warning("delivery_order_forced", message_id=str(message_id), waited_s=ORDER_WAIT.total_seconds())
            outcome = await attempt(in_order=False)
        return outcome == "claimed"

    async def _deliver_one(self, message_id: uuid.UUID, *, help_earlier: bool = False) -> int:
        """Claim (in order), send and mark one outbound message, reading its recipient and context.
        ``deliver_pending`` goes in order itself, so by default earlier pending ones are not sent from here."""
        if not await self._claim_in_order(message_id, help_earlier=help_earlier):
            return 0
        async with self._sessionmaker() as session, session.begin():
            msg = await session.get(Message, message_id, populate_existing=True)
            if msg is None:  # pragma: no cover - the claim just updated it
                return 0
            inbox = await session.get(Inbox, msg.inbox_id)
            conv = await session.get(Conversation, msg.conversation_id)
            if inbox is None or conv is None:
                msg.status = "failed"
                return 0
            to = (
                await session.execute(
                    select(ContactInbox.source_id).where(ContactInbox.inbox_id == inbox.id,
                                                         ContactInbox.contact_id == conv.contact_id)
                )
            ).scalar_one_or_none()
            reply = Reply.from_message(msg)
            context = await _reply_context(session, conversation_id=conv.id)
            row = InboxRow.of(inbox)
        channel = self._factory.channel(row)
        try:
            provider_id = await channel.send_reply(to=to or "", message=reply.as_outbound(), context=context)
        except Exception as exc:  # noqa: BLE001 - any provider failure is recorded, not raised
            log.warning("send_failed", message_id=str(message_id), channel=row.kind, error=repr(exc))
            await self._mark_failed(message_id, error=repr(exc))
            return 0
        async with self._sessionmaker() as session, session.begin():
            msg = await session.get(Message, message_id)
            if msg is None:
                return 0
            msg.status = "sent"
            msg.sent_at = utcnow()
            if provider_id:
                msg.payload = {**(msg.payload or {}), "provider_message_id": provider_id}
            return 1

    async def _mark_failed(self, message_id: uuid.UUID, *, error: str) -> None:
        """A send the provider refused: the message is ``failed`` (with the error) and its
        conversation flagged for a manager (``status = "pending"``)."""
        async with self._sessionmaker() as session, session.begin():
            msg = await session.get(Message, message_id)
            if msg is None:
                return
            msg.status = "failed"
            msg.payload = {**(msg.payload or {}), "error": error[:500]}
            conv = await session.get(Conversation, msg.conversation_id)
            if conv is not None:
                conv.status = "pending"
                await record_alert(session, tenant_id=conv.tenant_id, company_id=conv.company_id,
                                   kind="message.failed", conversation_id=conv.id,
                                   data={"conversation_id": str(conv.id), "message_id": str(msg.id),
                                         "channel": msg.channel, "text": msg.text[:500], "error": error[:200]})

    # -- lifecycle -------------------------------------------------------------------------------

    async def recover(self, *, stale_after: timedelta = timedelta(seconds=0)) -> int:
        """After a restart: answer every conversation with stored-but-unprocessed inbound messages
        and deliver pending replies. Returns how many conversations were processed."""
        async with self._sessionmaker() as session:
            rows = await session.execute(
                select(Message.conversation_id)
                .where(Message.direction == "in", Message.status == RECEIVED,
                       Message.created_at <= utcnow() - stale_after)
                .distinct()
            )
            conversation_ids = [r[0] for r in rows]
        for cid in conversation_ids:
            await self.process(conversation_id=cid)
        await self.deliver_pending()
        return len(conversation_ids)

    async def drain(self) -> None:
        """Wait for running buffer timers to fire (tests, graceful shutdown)."""
        while self._timers or self._tasks:
            await asyncio.gather(*list(self._timers.values()), *list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        """Cancel buffer timers; their messages stay stored and ``recover()`` answers them."""
        for task in self._timers.values():
            task.cancel()
        self._timers.clear()


async def claim_outbound(session: AsyncSession, *, message_id: uuid.UUID, now: datetime | None = None,
                         in_order: bool = True) -> bool:
    """Claim a pending outbound message for sending: ``pending`` → ``sending`` (``claimed_at`` = ``now``,
    aware UTC) in ONE statement; with ``in_order`` only when no earlier reply of the same conversation
    (lower ``seq``) is still ``pending`` or ``sending`` with a claim younger than ``SENDING_STALE``. True
    when this call changed the row, i.e. owns the send; False when another caller owns it or (``in_order``)
    an earlier reply goes first.

    The check and the change are one statement, so exactly one of any number of concurrent callers
    (sweep, ``recover()``, the conversation's own delivery, other processes) sees a row count of 1 on
    SQLite as on PostgreSQL. (SQLite ignores ``SELECT … FOR UPDATE``; a read followed by a write lets
    two callers both see ``pending``.) The caller commits the claim before calling the provider."""
    now = now or utcnow()
    where = [Message.id == message_id, Message.direction == "out", Message.status == "pending"]
    if in_order:
        earlier = aliased(Message)
        where.append(~exists().where(
            earlier.conversation_id == Message.conversation_id, earlier.direction == "out",
            earlier.seq < Message.seq,
            or_(earlier.status == "pending",
                and_(earlier.status == "sending", earlier.claimed_at > now - SENDING_STALE)),
        ))
    result = await session.execute(
        update(Message)
        .where(*where)
        .values(status="sending", claimed_at=now)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def _assistant_overrides(inbox: InboxRow) -> dict[str, Any]:
    """The inbox's language-model assistant overrides from its cached row (``{}`` for none), so the
    engine does not read them again on every turn (issue 9)."""
    value = inbox.settings.get("assistant")
    return value if isinstance(value, dict) else {}


async def _contact_for(session: AsyncSession, *, inbox: Inbox, parsed: ParsedInbound) -> Contact:
    link = (
        await session.execute(
            select(ContactInbox).where(ContactInbox.inbox_id == inbox.id,
                                       ContactInbox.source_id == parsed.contact_source_id)
        )
    ).scalar_one_or_none()
    if link is not None:
        contact = await session.get(Contact, link.contact_id)
        assert contact is not None
        if parsed.phone and not contact.phone:
            contact.phone = parsed.phone
        if parsed.contact_name and not contact.name:
            contact.name = parsed.contact_name
        return contact
    contact = Contact(tenant_id=inbox.tenant_id, company_id=inbox.company_id, name=parsed.contact_name,
                      phone=parsed.phone, email=parsed.email)
    session.add(contact)
    await session.flush()
    session.add(ContactInbox(tenant_id=inbox.tenant_id, contact_id=contact.id, inbox_id=inbox.id,
                             source_id=parsed.contact_source_id))
    await session.flush()
    return contact


async def _conversation_for(session: AsyncSession, *, inbox: Inbox, contact: Contact) -> Conversation:
    """The contact's open conversation in ``inbox``, opened when there is none. Concurrent deliveries
    of one contact queue on the contact's row lock (PostgreSQL; SQLite serialises writers with
    ``begin_write``), so they never open two conversations. The lock is ``FOR NO KEY UPDATE``: a
    transaction answering the conversation (holding its row, then updating it again, which makes
    PostgreSQL check its foreign key to the contact with ``FOR KEY SHARE``) is not blocked by it, so
    the two cannot deadlock."""
    await session.execute(select(Contact.id).where(Contact.id == contact.id).with_for_update(key_share=True))
    conv = (
        await session.execute(
            select(Conversation)
            .where(Conversation.tenant_id == inbox.tenant_id, Conversation.inbox_id == inbox.id,
                   Conversation.contact_id == contact.id, Conversation.status != "resolved")
            .order_by(Conversation.created_at.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    if conv is None:
        conv = Conversation(tenant_id=inbox.tenant_id, company_id=inbox.company_id, inbox_id=inbox.id,
                            contact_id=contact.id, status="open", state={})
        session.add(conv)
        await session.flush()
    return conv


async def _reply_context(session: AsyncSession, *, conversation_id: uuid.UUID) -> dict[str, object]:
    """The reply context stored with the conversation's latest inbound message (``{}`` when none)."""
    payload = (
        await session.execute(
            select(Message.payload).where(Message.conversation_id == conversation_id, Message.direction == "in")
            .order_by(Message.created_at.desc(), Message.seq.desc()).limit(1)
        )
    ).scalar_one_or_none()
    context = (payload or {}).get("reply_context")
    return context if isinstance(context, dict) else {}


async def _already_received(session: AsyncSession, *, inbox: Inbox, source_id: str) -> bool:
    found = await session.execute(
        select(Message.id).where(Message.inbox_id == inbox.id, Message.direction == "in",
                                 Message.source_id == source_id)
    )
    return found.first() is not None


@dataclass(frozen=True, slots=True)
class _KnownRecipient:
    """Where a queued job's replies go, read in the transaction that answered it."""

    inbox: InboxRow
    to: str
    context: dict[str, Any]
    payloads: dict[uuid.UUID, dict[str, Any]]


class _Duplicate(Exception):
    """The inbound message was stored before: roll back and report a duplicate."""


async def _contact_row(session: AsyncSession, *, inbox: InboxRow,
                       parsed: ParsedInbound) -> tuple[uuid.UUID, str | None]:
    """The contact's id and phone, created on its first message; a phone or name learnt later is
    filled in (never overwritten)."""
    found = (
        await session.execute(CONTACT_BY_SOURCE, {"p_inbox": inbox.id, "p_source": parsed.contact_source_id})
    ).first()
    if found is None:
        contact = Contact(tenant_id=inbox.tenant_id, company_id=inbox.company_id, name=parsed.contact_name,
                          phone=parsed.phone, email=parsed.email)
        session.add(contact)
        await session.flush()
        session.add(ContactInbox(tenant_id=inbox.tenant_id, contact_id=contact.id, inbox_id=inbox.id,
                                 source_id=parsed.contact_source_id))
        await session.flush()
        return contact.id, contact.phone
    fill: dict[str, Any] = {}
    if parsed.phone and not found.phone:
        fill["phone"] = parsed.phone
    if parsed.contact_name and not found.name:
        fill["name"] = parsed.contact_name
    if fill:
        await session.execute(update(Contact).where(Contact.id == found.id).values(**fill)
                              .execution_options(synchronize_session=False))
    return found.id, fill.get("phone", found.phone)


def _count_on(conversation: Conversation, *, now: datetime) -> None:
    """Take the conversation's next ``seq`` in memory (the caller holds its row lock) without marking
    the row changed, so that nothing flushes it before the turn ends (an ORM query's autoflush would
    write it, and the dialogue state's change later, as two row versions; ``updated_at`` is indexed,
    so neither is a HOT update). ``_write_seq`` marks it for the flush at commit: one ``UPDATE`` of
    the row per message. ``core.conversations.next_seq`` counts on from the larger of the row's and
    this object's number, so a message appended meanwhile in the same transaction gets the next one."""
    set_committed_value(conversation, "last_seq", (conversation.last_seq or 0) + 1)
    set_committed_value(conversation, "updated_at", now)


def _write_seq(conversation: Conversation) -> None:
    """Mark ``last_seq`` and ``updated_at`` (counted on by ``_count_on``) for the commit's flush."""
    flag_modified(conversation, "last_seq")
    flag_modified(conversation, "updated_at")


async def _insert_reply(session: AsyncSession, *, inbox: InboxRow, conversation: Conversation, out: OutboundMessage,
                        status: str, claimed_at: datetime | None) -> Message:
    """Store ``out`` as the conversation's next message (``seq`` counted on in memory: the caller holds
    the row lock) with one Core ``INSERT`` (``INSERT_REPLY``), noted for the live events and metrics of
    the commit; returns a transient ``Message`` carrying the written values."""
    now = utcnow()
    _count_on(conversation, now=now)
    values = {
        "id": uuid.uuid4(), "tenant_id": conversation.tenant_id, "conversation_id": conversation.id,
        "inbox_id": inbox.id, "channel": inbox.kind, "direction": "out", "sender": "bot", "source_id": None,
        "text": out.text, "payload": out.as_payload(), "status": status, "seq": conversation.last_seq,
        "created_at": now, "claimed_at": claimed_at,
    }
    await (await session.connection()).execute(INSERT_REPLY, values)  # no autoflush: see _count_on
    message = Message(**values)
    note_message(session, what="message", company_id=inbox.company_id, message=message)
    return message


async def _claim_by_source(session: AsyncSession, *, inbox: InboxRow, parsed: ParsedInbound,
                           ) -> tuple[Conversation, Company | None, uuid.UUID, str | None, bool]:
    """The sender's open conversation (row locked, next ``seq`` taken), its company when the same
    statement read it (else ``None``: the caller reads it), the contact's id and phone, and whether an
    earlier reply of the conversation is still in flight (``REPLIES_IN_FLIGHT``).
    A known contact with an open conversation costs one statement on PostgreSQL
    (``CLAIM_CONVERSATION_BY_SOURCE``, a locking ``SELECT``; the new ``last_seq`` is a change of the ORM
    object, flushed with the rest of the turn); otherwise, and on SQLite, the contact is found or created
    (``_contact_row``) and the conversation claimed or opened (``_claim_conversation``). A phone or name
    learnt later is filled in, never overwritten."""
    found = None
    now = utcnow()
    if session.bind.dialect.name == "postgresql":  # SQLite ignores FOR UPDATE (see CLAIM_CONVERSATION_BY_SOURCE)
        params = {"p_tenant": inbox.tenant_id, "p_inbox": inbox.id, "p_source": parsed.contact_source_id,
                  "p_fresh_since": now - SENDING_STALE}
        found = (await session.execute(CLAIM_CONVERSATION_BY_SOURCE, params)).first()
    if found is None:
        contact_id, phone = await _contact_row(session, inbox=inbox, parsed=parsed)
        conversation, in_flight = await _claim_conversation(session, inbox=inbox, contact_id=contact_id)
        return conversation, None, contact_id, phone, in_flight
    conversation, company, name, phone, in_flight = found
    _count_on(conversation, now=now)
    fill: dict[str, Any] = {}
    if parsed.phone and not phone:
        fill["phone"] = parsed.phone
    if parsed.contact_name and not name:
        fill["name"] = parsed.contact_name
    if fill:
        await session.execute(update(Contact).where(Contact.id == conversation.contact_id).values(**fill)
                              .execution_options(synchronize_session=False))
    return conversation, company, conversation.contact_id, fill.get("phone", phone), bool(in_flight)


async def _claim_conversation(session: AsyncSession, *, inbox: InboxRow,
                              contact_id: uuid.UUID) -> tuple[Conversation, bool]:
    """The contact's open conversation, its row locked and its next ``seq`` taken (``last_seq``), and
    whether an earlier reply of it is still in flight; opened (with ``last_seq = 1``, nothing in flight)
    when there is none, under the contact's row lock so concurrent first messages open one conversation."""
    now = utcnow()
    params = {"p_tenant": inbox.tenant_id, "p_inbox": inbox.id, "p_contact": contact_id, "p_now": now,
              "p_fresh_since": now - SENDING_STALE}
    found = (await session.execute(CLAIM_CONVERSATION, params)).one_or_none()
    if found is not None:
        return found[0], bool(found[1])
    await session.execute(LOCK_CONTACT, {"p_contact": contact_id})
    found = (await session.execute(CLAIM_CONVERSATION, params)).one_or_none()
    if found is not None:
        return found[0], bool(found[1])
    conv = Conversation(tenant_id=inbox.tenant_id, company_id=inbox.company_id, inbox_id=inbox.id,
                        contact_id=contact_id, status="open", state={}, last_seq=1)
    session.add(conv)
    await session.flush()
    return conv, False
