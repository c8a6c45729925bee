"""Latency of the manager's inbox list (``api.inbox.list_conversations``) on a company with many
conversations: the first page, a deep page (by cursor), a text search and a combined filter.

Creates BENCH_CONVERSATIONS conversations (default 5000) with 4 messages each and an order on every
third, then prints the median and worst of BENCH_REPEAT runs (default 20) of each query.

    .venv/bin/python bench/bench_inbox.py                    # embedded SQLite in a temp dir
    BENCH_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/bench .venv/bin/python bench/bench_inbox.py

The PostgreSQL database must exist and be empty; it is migrated here.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from api.inbox import ConversationFilter, list_conversations
from core.accounts import create_company, create_tenant, inbox_of_kind
from core.db import create_engine, create_sessionmaker
from core.migrate import upgrade
from core.models import Contact, ContactInbox, Conversation, Message, Order
from core.tenancy import TenantScope
from core.timeutil import utcnow

CONVERSATIONS = int(os.environ.get("BENCH_CONVERSATIONS", "5000"))
REPEAT = int(os.environ.get("BENCH_REPEAT", "20"))
WORDS = ["shirt", "delivery", "price", "розы", "size", "refund", "hello", "order", "blue", "tomorrow"]


async def seed(sessionmaker):  # type: ignore[no-untyped-def]
    async with sessionmaker() as s, s.begin():
        tenant = await create_tenant(s, name="Bench", slug="bench")
        company = await create_company(s, tenant_id=tenant.id, slug="bench-shop", name="Bench")
        inbox = await inbox_of_kind(s, company, "webchat")
        start = utcnow() - timedelta(days=30)
        for i in range(CONVERSATIONS):
            contact = Contact(tenant_id=tenant.id, company_id=company.id, name=f"Customer {i}")
            s.add(contact)
            await s.flush()
            s.add(ContactInbox(tenant_id=tenant.id, contact_id=contact.id, inbox_id=inbox.id, source_id=f"web-{i}"))
            when = start + timedelta(minutes=8 * i)
            conv = Conversation(tenant_id=tenant.id, company_id=company.id, inbox_id=inbox.id, contact_id=contact.id,
                                status=("open", "pending", "resolved")[i % 3], handoff=i % 7 == 0, state={},
                                updated_at=when)
            s.add(conv)
            await s.flush()
            for seq in range(1, 5):
                s.add(Message(tenant_id=tenant.id, conversation_id=conv.id, inbox_id=inbox.id, channel="webchat",
                              direction="in" if seq % 2 else "out", sender="contact" if seq % 2 else "bot",
                              text=f"{WORDS[(i + seq) % len(WORDS)]} question number {i}-{seq}", payload={},
                              status="processed", seq=seq, created_at=when))
            if i % 3 == 0:
                s.add(Order(tenant_id=tenant.id, company_id=company.id, conversation_id=conv.id, contact_id=contact.id,
                            number=1001 + i // 3, payment_status=("paid", "payment_link_sent")[i % 2],
                            total_minor=1000, currency="USD"))
            if i % 500 == 499:
                await s.flush()
        return TenantScope(tenant.id), company.id


async def timed(label: str, sessionmaker, scope, filters, *, cursor_depth: int = 0) -> None:  # type: ignore[no-untyped-def]
    cursor = None
    async with sessionmaker() as s:
        for _ in range(cursor_depth):
            cursor = (await list_conversations(s, scope=scope, filters=filters, limit=50, cursor=cursor)).next_cursor
    samples = []
    for _ in range(REPEAT):
        async with sessionmaker() as s:
            t = time.perf_counter()
            page = await list_conversations(s, scope=scope, filters=filters, limit=50, cursor=cursor)
            samples.append((time.perf_counter() - t) * 1000)
    print(f"{label:<44} {len(page.items):>3} rows  median {statistics.median(samples):7.1f} ms  "
          f"max {max(samples):7.1f} ms")


async def main() -> None:
    url = os.environ.get("BENCH_DATABASE_URL")
    tmp = None
    if not url:
        tmp = tempfile.TemporaryDirectory()
        url = f"sqlite+aiosqlite:///{Path(tmp.name) / 'bench.db'}"
    await asyncio.to_thread(upgrade, url)
    engine = create_engine(url)
    sessionmaker = create_sessionmaker(engine)
    t = time.perf_counter()
    scope, company_id = await seed(sessionmaker)
    print(f"{engine.dialect.name}: {CONVERSATIONS} conversations seeded in {time.perf_counter() - t:.1f} s")
    base = ConversationFilter(company_ids=(company_id,))
    await timed("first page (50)", sessionmaker, scope, base)
    await timed("page 40 by cursor", sessionmaker, scope, base, cursor_depth=40)
    await timed("text search 'розы'", sessionmaker, scope, ConversationFilter(company_ids=(company_id,), text="розы"))
    await timed("needs human + has order + paid", sessionmaker, scope,
                ConversationFilter(company_ids=(company_id,), needs_human=True, has_order=True,
                                   payment_statuses=("paid",)))
    await engine.dispose()
    if tmp is not None:
        tmp.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
