"""How long a company's metrics take on a month of data, and how fast the alert outbox drains.

Writes CONVERSATIONS conversations over March 2026 (MESSAGES messages each, alternating customer and
bot, a paid order for every third), times ``commerce.metrics.company_metrics`` for the month, then
records ALERTS ``order.paid`` events for one webhook subscriber (a local receiver) and times
``AlertDispatcher.dispatch_once`` until all are delivered. Prints the figures.

    .venv/bin/python bench/bench_metrics_alerts.py                    # embedded SQLite in a temp dir
    BENCH_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/bench .venv/bin/python bench/bench_metrics_alerts.py

The PostgreSQL database must exist and be empty; it is migrated here.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from aiohttp import web

from channels.alerts import AlertDispatcher
from commerce.metrics import company_metrics
from core.accounts import create_company, create_tenant, inbox_of_kind
from core.alerts import create_subscription, record_alert
from core.db import create_engine, create_sessionmaker
from core.migrate import upgrade
from core.models import Contact, Conversation, Message, Order, Payment

CONVERSATIONS = int(os.environ.get("BENCH_CONVERSATIONS", "2000"))
MESSAGES = int(os.environ.get("BENCH_MESSAGES", "20"))
ALERTS = int(os.environ.get("BENCH_ALERTS", "300"))


async def _receiver() -> tuple[web.AppRunner, str, list[int]]:
    hits: list[int] = []

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        hits.append(1)
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/hook", handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # noqa: SLF001
    return runner, f"http://127.0.0.1:{port}/hook", hits


async def main() -> None:
    url = os.environ.get("BENCH_DATABASE_URL")
    tmp = tempfile.mkdtemp()
    if not url:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
    await asyncio.to_thread(upgrade, url)
    engine = create_engine(url)
    sm = create_sessionmaker(engine)
    start = datetime(2026, 3, 1, tzinfo=UTC)
    async with sm() as s, s.begin():
        tenant = await create_tenant(s, name="Bench", slug="bench")
        company = await create_company(s, tenant_id=tenant.id, slug="bench-shop", name="Bench Shop")
        inbox = await inbox_of_kind(s, company, "webchat")
        for n in range(CONVERSATIONS):
            opened = start + timedelta(minutes=n * 20)
            contact = Contact(tenant_id=tenant.id, company_id=company.id)
            s.add(contact)
            await s.flush()
            conv = Conversation(tenant_id=tenant.id, company_id=company.id, inbox_id=inbox.id, contact_id=contact.id,
                                state={}, created_at=opened, updated_at=opened,
                                lead_source=("tiktok", "ig", None)[n % 3])
            s.add(conv)
            await s.flush()
            s.add_all([Message(tenant_id=tenant.id, conversation_id=conv.id, inbox_id=inbox.id, channel="webchat",
                               direction="in" if i % 2 == 0 else "out", sender="contact" if i % 2 == 0 else "bot",
                               text="x", status="processed", seq=i + 1, created_at=opened + timedelta(seconds=i * 3))
                       for i in range(MESSAGES)])
            if n % 3 == 0:
                order = Order(tenant_id=tenant.id, company_id=company.id, conversation_id=conv.id, number=1000 + n,
                              status="paid", payment_status="paid", total_minor=2500, currency="USD",
                              paid_at=opened + timedelta(minutes=5))
                s.add(order)
                await s.flush()
                s.add(Payment(tenant_id=tenant.id, order_id=order.id, provider="manual", status="paid",
                              amount_minor=2500, currency="USD", checkout_url="https://pay.example/x",
                              created_at=opened + timedelta(minutes=1)))
    async with sm() as s:
        t0 = time.perf_counter()
        figures = await company_metrics(s, company=company, start=start, end=start + timedelta(days=31))
        took = time.perf_counter() - t0
    total = figures["total"]
    print(f"database: {url.split(':', 1)[0]}")
    print(f"metrics: {total['conversations']} conversations, {total['messages_in'] + total['messages_out']} "
          f"messages, {total['paid_orders']} paid orders -> {took * 1000:.0f} ms")

    runner, hook_url, hits = await _receiver()
    dispatcher = AlertDispatcher(sessionmaker=sm, decrypt=lambda x: x, retry_seconds=0, allow_private_webhooks=True)
    try:
        async with sm() as s, s.begin():
            await create_subscription(s, tenant_id=tenant.id, company_id=company.id, kind="webhook", target=hook_url,
                                      events=["order.paid"], secret_ciphertext="bench-secret",
                                      allow_private_webhooks=True)
            for n in range(ALERTS):
                await record_alert(s, tenant_id=tenant.id, company_id=company.id, kind="order.paid",
                                   data={"order_number": n})
        t0 = time.perf_counter()
        fanned = await dispatcher.fan_out()
        t1 = time.perf_counter()
        while (await dispatcher.dispatch_once())["sent"]:
            pass
        t2 = time.perf_counter()
        print(f"alerts: fan-out of {fanned} events {t1 - t0:.2f} s; {len(hits)} of {ALERTS} webhook deliveries "
              f"{t2 - t1:.2f} s ({len(hits) / (t2 - t0):.0f}/s overall)")
    finally:
        await dispatcher.aclose()
        await runner.cleanup()
        await engine.dispose()


if __name__ == "__main__":
    asyncio.run(main())
