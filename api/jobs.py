"""Background work of a server process, started in the app's lifespan.

* The sweep (every ``CHATCOMMERCE_SWEEP_SECONDS``): deliver pending outbound messages (the outbox),
  answer inbound messages left unanswered by a process that died, release expired booking holds,
  flag silent WhatsApp inboxes, fail knowledge-base import jobs whose process stopped (no heartbeat
  for ``knowledge.import_jobs.STALE_AFTER``), keep one IMAP watcher per active e-mail inbox, and delete
  resolved conversations older than their company's retention (``api.tenant_data.sweep_retention``).
* Alerts (``channels.alerts``): every ``CHATCOMMERCE_ALERTS_SECONDS``, and at once when a commit
  recorded an alert event, pending alert events are fanned out and delivered (the sweep does it too).
* E-mail watchers: IMAP IDLE (or polling) per inbox; each mail is stored through the pipeline and
  only then marked seen, so a crash re-reads it and the ``Message-ID`` dedupe drops the copy.

Every step is idempotent, so several server processes may run the sweep at once.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import select

from api.services import Runtime
from api.tenant_data import sweep_retention
from channels.inboxes import flag_silent_inboxes
from commerce.bookings import open_links_of_released_holds, release_expired_holds
from commerce.calendar_sync import sync_all_calendars
from commerce.google_calendar import client_factory_from_settings
from commerce.payments import expire_payment
from core.models import Company, Inbox
from core.retention import RetentionResult
from core.timeutil import utcnow
from knowledge.import_jobs import fail_stale_import_jobs

log = structlog.get_logger(__name__)


class BackgroundWorkers:
    """The sweep and the e-mail watchers of one process. ``start()`` in the lifespan, ``stop()`` at
    shutdown; ``sweep_once()`` is the unit of work (tests call it directly). ``clock`` gives the
    current aware UTC instant for the retention pass (tests fix it)."""

    def __init__(self, *, runtime: Runtime, interval_seconds: float,
                 clock: Callable[[], datetime] = utcnow) -> None:
        self._runtime = runtime
        self._clock = clock
        self._interval = interval_seconds
        self._stop = asyncio.Event()
        self._sweeper: asyncio.Task[None] | None = None
        self._alerter: asyncio.Task[None] | None = None
        self._watchers: dict[uuid.UUID, tuple[asyncio.Task[None], asyncio.Event]] = {}
        self._calendar_factory = client_factory_from_settings(runtime.settings, decrypt=runtime.secret_box.decrypt)
        self._calendar_due = 0.0
        self._retention_due = 0.0

    def start(self) -> None:
        self._sweeper = asyncio.get_running_loop().create_task(self._run(), name="chatcommerce-sweep")
        self._alerter = asyncio.get_running_loop().create_task(self._run_alerts(), name="chatcommerce-alerts")

    async def stop(self) -> None:
        self._stop.set()
        for _task, stop in self._watchers.values():
            stop.set()
        tasks = [t for t, _ in self._watchers.values()] + [t for t in (self._sweeper, self._alerter) if t]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._watchers.clear()

    async def _run(self) -> None:
        # The lifespan already recovered once at start-up; the first sweep comes one interval later.
        while not self._stop.is_set():
            try:
                await asyncio.wait_for(self._stop.wait(), timeout=self._interval)
                return
            except TimeoutError:
                pass
            try:
                await self.sweep_once()
            except Exception:  # noqa: BLE001 - one failed sweep must not stop the next
                log.exception("sweep_failed")

    async def _run_alerts(self) -> None:
        interval = self._runtime.settings.alerts_seconds
        while not self._stop.is_set():
            await self._runtime.alerts.wait(interval)
            if self._stop.is_set():
                return
            try:
                await self._runtime.alerts.dispatch_once()
            except Exception:  # noqa: BLE001 - one failed dispatch must not stop the next
                log.exception("alerts_dispatch_failed")

    async def sweep_once(self) -> dict[str, Any]:
        """One pass; returns what it did (counts) for logs and tests."""
        rt = self._runtime
        recovered = await rt.pipeline.recover(stale_after=timedelta(seconds=60))
        delivered = await rt.pipeline.deliver_pending()
        async with rt.sessionmaker() as session, session.begin():
            released = await release_expired_holds(session, now=utcnow())
        expired_links = await self._expire_links_of_released_holds()
        async with rt.sessionmaker() as session, session.begin():
            silent = len(await flag_silent_inboxes(session))
        async with rt.sessionmaker() as session, session.begin():
            stale_imports = await fail_stale_import_jobs(session, now=utcnow(), data_dir=rt.settings.data_dir)
        watching = await self._refresh_email_watchers()
        calendars = await self._sync_calendars()
        alerts = await rt.alerts.dispatch_once()
        retention = await self._sweep_retention()
        return {"alerts": alerts, "recovered": recovered, "delivered": delivered, "released_holds": released,
                "expired_links": expired_links,
                "silent_inboxes": silent, "stale_imports": stale_imports,
                "email_watchers": watching, "calendar_syncs": calendars, "retention": retention.as_dict()}

    async def _sweep_retention(self) -> RetentionResult:
        """Delete expired conversations every ``retention_sweep_seconds`` (not every sweep)."""
        loop_now = asyncio.get_running_loop().time()
        if loop_now < self._retention_due:
            return RetentionResult()
        self._retention_due = loop_now + self._runtime.settings.retention_sweep_seconds
        return await sweep_retention(self._runtime, now=self._clock())

    async def _sync_calendars(self) -> int:
        """Sync connected Google Calendars every ``google_calendar_sync_seconds`` (not every sweep)."""
        loop_now = asyncio.get_running_loop().time()
        if loop_now < self._calendar_due:
            return 0
        self._calendar_due = loop_now + self._runtime.settings.google_calendar_sync_seconds
        results = await sync_all_calendars(self._runtime.sessionmaker, client_factory=self._calendar_factory)
        return len(results)

    async def _expire_links_of_released_holds(self) -> int:
        """A hold that ran out must not stay payable (a Stripe session lives at least 30 minutes,
        longer than a 15-minute hold): expire such links at the provider."""
        rt = self._runtime
        async with rt.sessionmaker() as session, session.begin():
            pairs = await open_links_of_released_holds(session)
            for order, payment in pairs:
                company = await session.get(Company, order.company_id)
                if company is not None:
                    await expire_payment(session, order=order, payment=payment, company=company,
                                         providers=rt.providers)
        return len(pairs)

    async def _refresh_email_watchers(self) -> int:
        rt = self._runtime
        if "email" not in rt.channels.kinds():
            return 0
        async with rt.sessionmaker() as session:
            active = {
                i.id: i for i in (await session.execute(
                    select(Inbox).where(Inbox.kind == "email", Inbox.active.is_(True)))).scalars()
            }
        for inbox_id in [i for i in self._watchers if i not in active]:
            task, stop = self._watchers.pop(inbox_id)
            stop.set()
            task.cancel()
        for inbox_id, inbox in active.items():
            current = self._watchers.get(inbox_id)
            if current is not None and not current[0].done():
                continue
            stop = asyncio.Event()
            task = asyncio.get_running_loop().create_task(self._watch(inbox, stop), name=f"imap-{inbox_id}")
            self._watchers[inbox_id] = (task, stop)
        return len(self._watchers)

    async def _watch(self, inbox: Inbox, stop: asyncio.Event) -> None:
        rt = self._runtime
        channel = rt.channel_factory.build(inbox)

        async def handle(mail: Any) -> None:
            await rt.pipeline.accept(inbox_id=inbox.id, parsed=mail)

        try:
            await channel.watch(handle, stop_event=stop)  # type: ignore[attr-defined]
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the next sweep restarts a dead watcher
            log.exception("email_watch_failed", inbox_id=str(inbox.id))
        finally:
            await channel.aclose()
