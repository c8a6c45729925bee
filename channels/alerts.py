"""Delivering alerts to a company's staff (the consumer of the ``core.alerts`` outbox).

``AlertDispatcher.dispatch_once`` (run by the background workers, ``api.jobs``):

1. *Fan out*: each ``pending`` ``AlertEvent`` is claimed with ``UPDATE alert_events SET status =
   'dispatched' WHERE id = :id AND status = 'pending'`` (rowcount 1 = ours; works the same on SQLite
   and PostgreSQL, so several processes may dispatch at once) and, in the same transaction, one
   ``AlertDelivery`` per active subscription of the company that wants the event's kind (unique per
   event and subscription).
2. *Deliver*: each ``pending`` delivery is claimed the same way (``pending`` → ``sending``) and the claim
   is committed *before* the provider is called, so no delivery is ever sent twice. The call is retried
   with exponential back-off (tenacity) while failures are transient; every attempt becomes a row in
   ``alert_delivery_attempts`` (status code or error), written with the outcome (``sent`` or
   ``failed``) in one transaction.
   Webhook hosts that resolve to a loopback/private address are refused at send time unless
   ``allow_private_webhooks``.
3. A delivery left ``sending`` by a process that died mid-call (older than ``stale_after``) is marked
   ``failed`` with the reason, not re-sent (the provider may have accepted it).

An event is never lost: it is committed with the change that caused it and stays ``pending`` until a
dispatcher fans it out. Telegram alerts go through the platform bot when
``CHATCOMMERCE_ALERTS_TELEGRAM_BOT_TOKEN`` is set; otherwise through the company's own active Telegram
inbox bot (the recipient must have sent that bot ``/start`` so it may write to them; the chat id is
the ``target``).
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

import httpx
import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

from bot.texts import lang_of, t
from channels.alert_senders import AlertSendError, SmtpConfig, send_email, send_telegram, send_webhook
from commerce.bookings import format_when
from commerce.schedule import company_zone
from core.http import cookieless_jar
from core.i18n import company_locale, money
from core.models import (
    AlertDelivery,
    AlertDeliveryAttempt,
    AlertEvent,
    AlertSubscription,
    Company,
    Inbox,
)
from core.timeutil import utcnow

log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class AlertText:
    """The human-readable form of an event: a mail subject and a plain-text body."""

    subject: str
    body: str


def render_alert(event: AlertEvent, company: Company) -> AlertText:
    """Subject and text of ``event`` for e-mail and Telegram in the company's language (``en`` or
    ``ru``, the ``alert:*`` entries of the project's catalogue, ``core/locale``; English otherwise); times in the
    company's timezone, money in the company's locale (``core.i18n.company_locale``, as the bot writes
    it). Values the customer or a provider wrote (message, error, names) are shown as they are."""
    d = event.data or {}
    lang = lang_of(company.language)

    name = company.name
    kind = event.kind
    lines: list[str] = []
    if kind == "handoff.requested":
        subject = t("alert:handoff", lang, company=name)
        lines = [t("alert:channel", lang, value=d.get("channel") or "?"),
                 t("alert:message", lang, value=d.get("text") or "")]
    elif kind == "message.failed":
        subject = t("alert:failed", lang, company=name)
        lines = [t("alert:channel", lang, value=d.get("channel") or "?"),
                 t("alert:reply", lang, value=d.get("text") or ""),
                 t("alert:error", lang, value=d.get("error") or "")]
    elif kind == "order.paid":
        amount = money(int(d.get("total_minor") or 0), str(d.get("currency") or company.currency),
                       company_locale(company))
        subject = t("alert:paid", lang, company=name, number=d.get("order_number"), amount=amount)
        lines = [t("alert:customer", lang, value=d.get("customer_name") or "-"),
                 t("alert:method", lang, value=d.get("method") or "-")]
    elif kind in ("booking.confirmed", "booking.cancelled"):
        tz = company_zone(company)
        when = d.get("start_at")
        local = format_when(datetime.fromisoformat(when), tz, lang) if when else "?"
        service = d.get("service") or ""
        subject = (t("alert:confirmed", lang, company=name, service=service, when=local)
                   if kind == "booking.confirmed" else
                   t("alert:cancelled", lang, company=name, service=service, when=local))
        lines = [t("alert:with", lang, value=d.get("resource") or "-"),
                 t("alert:customer", lang, value=d.get("customer_name") or "-"),
                 t("alert:phone", lang, value=d.get("phone") or "-")]
        if kind == "booking.cancelled":
            by = str(d.get("by") or "-")
            if by == "customer":
                by = t("alert:by:customer", lang)
            elif by == "company":
                by = t("alert:by:company", lang)
            lines.append(t("alert:cancelled_by", lang, by=by,
                           refund=t("alert:yes", lang) if d.get("refund_due") else t("alert:no", lang)))
    else:  # pragma: no cover - record_alert refuses unknown kinds
        subject = f"{name}: {kind}"
    if event.conversation_id:
        lines.append(t("alert:conversation", lang, value=event.conversation_id))
    return AlertText(subject=subject, body=subject + "\n\n" + "\n".join(lines) + "\n")


def webhook_body(event: AlertEvent, company: Company, *, delivery_id: uuid.UUID, timestamp: int) -> bytes:
    """The JSON body of a webhook call: ``{"id", "type", "created_at", "timestamp", "delivery_id",
    "company": {"slug", "name"}, "conversation_id", "data"}`` (UTF-8, compact)."""
    body = {
        "id": str(event.id), "type": event.kind, "created_at": event.created_at.isoformat(),
        "timestamp": timestamp, "delivery_id": str(delivery_id),
        "company": {"slug": company.slug, "name": company.name},
        "conversation_id": str(event.conversation_id) if event.conversation_id else None,
        "data": event.data or {},
    }
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


async def _refuse_private_host(url: str) -> None:
    """Raise a permanent ``AlertSendError`` when ``url``'s host resolves to a non-public address
    (loopback, private, link-local...): a tenant must not aim webhooks at the platform's network.
    Checked at send time as DNS may change after the subscription was made."""
    host = urlsplit(url).hostname or ""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None)
    except OSError:
        raise AlertSendError(f"webhook host {host!r} does not resolve", transient=True) from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0].split("%", 1)[0])
        if not address.is_global:
            raise AlertSendError(f"webhook host {host!r} resolves to a non-public address", transient=False)


@dataclass(frozen=True, slots=True)
class _Job:
    delivery_id: uuid.UUID
    tenant_id: uuid.UUID
    kind: str
    event: AlertEvent
    subscription: AlertSubscription
    company: Company
    secret: str | None
    bot: tuple[str, str] | None  # (api_base, token) for telegram


class AlertDispatcher:
    """Fans out and delivers alerts (see the module docstring). One per process; ``aclose()`` closes
    its HTTP client. ``decrypt`` is ``core.security.SecretBox.decrypt`` (webhook secrets, inbox bot
    tokens). ``on_result(kind, outcome)`` is told about each finished delivery (metrics)."""

    def __init__(
        self,
        *,
        sessionmaker: async_sessionmaker[AsyncSession],
        decrypt: Callable[[str], str],
        smtp: SmtpConfig | None = None,
        telegram_bot_token: str | None = None,
        telegram_api_base: str = "https://api.telegram.org",
        attempts: int = 5,
        retry_seconds: float = 1.0,
        timeout_seconds: float = 10.0,
        stale_after: timedelta = timedelta(minutes=15),
        concurrency: int = 8,
        batch: int = 200,
        on_result: Callable[[str, str], None] | None = None,
        allow_private_webhooks: bool = False,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._allow_private = allow_private_webhooks
        self._decrypt = decrypt
        self._smtp = smtp
        self._telegram_token = telegram_bot_token
        self._telegram_api_base = telegram_api_base
        self._attempts = max(attempts, 1)
        self._retry_seconds = max(retry_seconds, 0.0)
        self._timeout = timeout_seconds
        self._stale_after = stale_after
        self._concurrency = max(concurrency, 1)
        self._batch = batch
        self._on_result = on_result
        self._http: httpx.AsyncClient | None = None
        self._wake: asyncio.Event | None = None

    # -- wake-ups (a commit that records an alert calls ``wake``) ---------------------------------

    def wake(self) -> None:
        """Ask the dispatch loop to run now instead of at its next interval."""
        if self._wake is not None:
            self._wake.set()

    async def wait(self, timeout: float) -> None:
        """Sleep until ``wake()`` or ``timeout`` seconds, whichever comes first."""
        if self._wake is None:
            self._wake = asyncio.Event()
        try:
            await asyncio.wait_for(self._wake.wait(), timeout)
        except TimeoutError:
            pass
        self._wake.clear()

    @property
    def http(self) -> httpx.AsyncClient:
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self._timeout, cookies=cookieless_jar())  # one client, all tenants
        return self._http

    async def aclose(self) -> None:
        """Close the HTTP client."""
        if self._http is not None:
            await self._http.aclose()
            self._http = None

    # -- the work --------------------------------------------------------------------------------

    async def dispatch_once(self) -> dict[str, int]:
        """Fan out pending events, deliver pending deliveries, fail stale claims. Returns counts
        ``{"events", "sent", "failed", "stale"}``."""
        events = await self.fan_out()
        sent, failed = await self.deliver_pending()
        stale = await self.fail_stale()
        return {"events": events, "sent": sent, "failed": failed, "stale": stale}

    async def fan_out(self, chunk: int = 50) -> int:
        """Claim each pending event and create its deliveries; returns how many events were claimed.
        Events are claimed ``chunk`` at a time in one transaction (each by its own conditional UPDATE)."""
        async with self._sessionmaker() as session:
            ids = list((await session.execute(
                select(AlertEvent.id).where(AlertEvent.status == "pending")
                .order_by(AlertEvent.created_at).limit(self._batch))).scalars())
        claimed = 0
        for first in range(0, len(ids), chunk):
            async with self._sessionmaker() as session, session.begin():
                for event_id in ids[first:first + chunk]:
                    claimed += await self._fan_out_one(session, event_id)
        return claimed

    async def _fan_out_one(self, session: AsyncSession, event_id: uuid.UUID) -> int:
        result = await session.execute(
            update(AlertEvent).where(AlertEvent.id == event_id, AlertEvent.status == "pending")
            .values(status="dispatched", dispatched_at=utcnow())
        )
        if result.rowcount != 1:
            return 0  # another dispatcher got it
        event = await session.get(AlertEvent, event_id)
        assert event is not None
        subs = (await session.execute(
            select(AlertSubscription).where(
                AlertSubscription.tenant_id == event.tenant_id,
                AlertSubscription.company_id == event.company_id,
                AlertSubscription.active.is_(True),
            ).order_by(AlertSubscription.created_at))).scalars()
        for sub in subs:
            if event.kind in (sub.events or []):
                session.add(AlertDelivery(tenant_id=event.tenant_id, event_id=event.id, subscription_id=sub.id,
                                          company_id=event.company_id, status="pending", attempts=0))
        return 1

    async def deliver_pending(self) -> tuple[int, int]:
        """Deliver every pending delivery (up to ``batch``, ``concurrency`` at a time); returns
        ``(sent, failed)``."""
        async with self._sessionmaker() as session:
            ids = list((await session.execute(
                select(AlertDelivery.id).where(AlertDelivery.status == "pending")
                .order_by(AlertDelivery.created_at).limit(self._batch))).scalars())
        gate = asyncio.Semaphore(self._concurrency)

        async def one(delivery_id: uuid.UUID) -> str | None:
            async with gate:
                return await self._deliver(delivery_id)

        outcomes = await asyncio.gather(*(one(i) for i in ids))
        return outcomes.count("sent"), outcomes.count("failed")

    async def fail_stale(self) -> int:
        """Mark deliveries claimed longer than ``stale_after`` ago and still ``sending`` as failed."""
        cutoff = utcnow() - self._stale_after
        async with self._sessionmaker() as session:  # a read first: no write transaction every second
            stale = (await session.execute(select(AlertDelivery.id).where(
                AlertDelivery.status == "sending", AlertDelivery.claimed_at < cutoff).limit(1))).first()
        if stale is None:
            return 0
        async with self._sessionmaker() as session, session.begin():
            result = await session.execute(
                update(AlertDelivery)
                .where(AlertDelivery.status == "sending", AlertDelivery.claimed_at < cutoff)
                .values(status="failed", finished_at=utcnow(),
                        error="interrupted: the process stopped during the send (not repeated to avoid a duplicate)")
            )
            return int(result.rowcount or 0)

    async def _claim(self, delivery_id: uuid.UUID) -> _Job | None:
        async with self._sessionmaker() as session, session.begin():
            result = await session.execute(
                update(AlertDelivery).where(AlertDelivery.id == delivery_id, AlertDelivery.status == "pending")
                .values(status="sending", claimed_at=utcnow())
            )
            if result.rowcount != 1:
                return None
            delivery = await session.get(AlertDelivery, delivery_id)
            assert delivery is not None
            event = await session.get(AlertEvent, delivery.event_id)
            sub = await session.get(AlertSubscription, delivery.subscription_id)
            company = await session.get(Company, delivery.company_id)
            if event is None or sub is None or company is None:  # pragma: no cover - FKs cascade
                delivery.status, delivery.error = "failed", "event, subscription or company gone"
                return None
            secret = self._decrypt(sub.secret) if sub.kind == "webhook" and sub.secret else None
            bot = await self._bot_for(session, company) if sub.kind == "telegram" else None
            return _Job(delivery_id=delivery_id, tenant_id=delivery.tenant_id, kind=sub.kind, event=event,
                        subscription=sub, company=company, secret=secret, bot=bot)

    async def _bot_for(self, session: AsyncSession, company: Company) -> tuple[str, str] | None:
        """(api_base, token) of the bot that sends the company's Telegram alerts, or None."""
        if self._telegram_token:
            return self._telegram_api_base, self._telegram_token
        inbox = (await session.execute(
            select(Inbox).where(Inbox.tenant_id == company.tenant_id, Inbox.company_id == company.id,
                                Inbox.kind == "telegram", Inbox.active.is_(True))
            .order_by(Inbox.created_at).limit(1))).scalar_one_or_none()
        if inbox is None or not inbox.credentials:
            return None
        token = str(json.loads(self._decrypt(inbox.credentials)).get("bot_token") or "")
        base = str((inbox.settings or {}).get("api_base") or self._telegram_api_base)
        return (base, token) if token else None

    async def _send(self, job: _Job) -> int:
        if job.kind == "email":
            text = render_alert(job.event, job.company)
            return await send_email(self._smtp, to=job.subscription.target, subject=text.subject, text=text.body)
        if job.kind == "telegram":
            if job.bot is None:
                raise AlertSendError("no Telegram bot: set CHATCOMMERCE_ALERTS_TELEGRAM_BOT_TOKEN or connect a "
                                     "Telegram inbox", transient=False)
            text = render_alert(job.event, job.company)
            return await send_telegram(self.http, api_base=job.bot[0], bot_token=job.bot[1],
                                       chat_id=job.subscription.target, text=text.body)
        if job.kind == "webhook":
            if not job.secret:
                raise AlertSendError("webhook subscription has no secret", transient=False)
            if not self._allow_private:
                await _refuse_private_host(job.subscription.target)
            timestamp = int(time.time())
            body = webhook_body(job.event, job.company, delivery_id=job.delivery_id, timestamp=timestamp)
            return await send_webhook(self.http, url=job.subscription.target, secret=job.secret, body=body,
                                      timestamp=timestamp, event_kind=job.event.kind, event_id=str(job.event.id),
                                      delivery_id=str(job.delivery_id))
        raise AlertSendError(f"unknown subscription kind {job.kind!r}", transient=False)

    async def _deliver(self, delivery_id: uuid.UUID) -> str | None:
        job = await self._claim(delivery_id)
        if job is None:
            return None
        outcome = "failed"
        attempts: list[AlertDeliveryAttempt] = []

        def note(number: int, *, ok: bool, status_code: int | None, error: str | None) -> None:
            attempts.append(AlertDeliveryAttempt(tenant_id=job.tenant_id, delivery_id=delivery_id, number=number,
                                                 ok=ok, status_code=status_code, error=error))

        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._attempts),
            wait=wait_exponential(multiplier=self._retry_seconds, max=60),
            retry=retry_if_exception(lambda exc: isinstance(exc, AlertSendError) and exc.transient),
            reraise=True,
        )
        try:
            async for attempt in retrying:
                with attempt:
                    number = attempt.retry_state.attempt_number
                    try:
                        code = await self._send(job)
                    except AlertSendError as exc:
                        note(number, ok=False, status_code=exc.status_code, error=str(exc))
                        raise
                    except Exception as exc:  # noqa: BLE001 - an unexpected error is logged and not retried
                        note(number, ok=False, status_code=None, error=repr(exc)[:300])
                        raise AlertSendError(repr(exc)[:300], transient=False) from None
                    note(number, ok=True, status_code=code, error=None)
                    outcome = "sent"
        except AlertSendError as exc:
            log.warning("alert_failed", delivery_id=str(delivery_id), kind=job.kind, error=str(exc))
        last = attempts[-1]
        async with self._sessionmaker() as session, session.begin():
            session.add_all(attempts)
            await session.execute(update(AlertDelivery).where(AlertDelivery.id == delivery_id).values(
                status=outcome, finished_at=utcnow(), attempts=len(attempts), status_code=last.status_code,
                error=last.error))
        if self._on_result is not None:
            self._on_result(job.kind, outcome)
        return outcome
