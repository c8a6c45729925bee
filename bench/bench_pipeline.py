"""Throughput and latency of the inbound pipeline with the real dialogue engine.

Runs CONVERSATIONS concurrent web-chat conversations, each the English shopping scenario on the demo
apparel shop (greet, price, add with variant, add, cart, checkout, name, address, skip → payment link),
and prints messages per second and per-message latency percentiles.

    .venv/bin/python bench/bench_pipeline.py                    # embedded SQLite in a temp dir
    BENCH_DATABASE_URL=postgresql+asyncpg://postgres@127.0.0.1:5432/bench .venv/bin/python bench/bench_pipeline.py

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

from bot.engine import DialogueEngine
from channels.base import ParsedInbound
from channels.pipeline import Pipeline
from channels.registry import ChannelRegistry
from commerce.providers import ProviderRegistry
from core.accounts import create_company, create_tenant, inbox_of_kind
from core.db import create_engine, create_sessionmaker
from core.migrate import upgrade
from core.timeutil import utcnow
from knowledge.importer import import_knowledge
from knowledge.search import KnowledgeIndexCache

REPO = Path(__file__).resolve().parent.parent
SCRIPT = ["hi", "how much is the ocean blue shirt?", "2 classic varsity tops size medium", "add an ocean blue shirt",
          "cart", "checkout", "Alice", "12 Main Street, Springfield", "skip"]
CONVERSATIONS = int(os.environ.get("BENCH_CONVERSATIONS", "40"))


async def main(url: str) -> None:
    await asyncio.to_thread(upgrade, url)
    engine = create_engine(url)
    sm = create_sessionmaker(engine)
    async with sm() as s, s.begin():
        tenant = await create_tenant(s, name="Bench", slug="bench")
        company = await create_company(s, tenant_id=tenant.id, slug="bench-apparel", name="Bench Apparel")
        await import_knowledge(s, company=company, data=(REPO / "examples/apparel-shop.csv").read_bytes(),
                               filename="apparel-shop.csv")
        inbox_id = (await inbox_of_kind(s, company, "webchat")).id
    providers = ProviderRegistry.default(public_base_url="http://127.0.0.1:8000")
    responder = DialogueEngine(index_cache=KnowledgeIndexCache(), providers=providers, payment_ttl=timedelta(hours=1))
    pipeline = Pipeline(sessionmaker=sm, responder=responder, channels=ChannelRegistry.default())
    latencies: list[float] = []

    async def conversation(n: int) -> None:
        for i, text in enumerate(SCRIPT):
            start = time.perf_counter()
            result = await pipeline.receive(inbox_id=inbox_id, parsed=ParsedInbound(
                contact_source_id=f"c{n}", text=text, received_at=utcnow(), source_id=f"c{n}-{i}"))
            latencies.append(time.perf_counter() - start)
            assert result.replies, f"no reply to {text!r}"

    started = time.perf_counter()
    await asyncio.gather(*[conversation(n) for n in range(CONVERSATIONS)])
    elapsed = time.perf_counter() - started
    latencies.sort()
    q = statistics.quantiles(latencies, n=100)
    print(f"database: {url.split('://')[0]}")
    print(f"conversations: {CONVERSATIONS} concurrent, {len(SCRIPT)} messages each, {len(latencies)} messages")
    print(f"wall time: {elapsed:.2f} s  →  {len(latencies) / elapsed:.1f} messages/s")
    p50, p95, worst = q[49] * 1000, q[94] * 1000, latencies[-1] * 1000
    print(f"latency per message: p50 {p50:.1f} ms, p95 {p95:.1f} ms, max {worst:.1f} ms")
    await engine.dispose()


if __name__ == "__main__":
    url = os.environ.get("BENCH_DATABASE_URL")
    if url:
        asyncio.run(main(url))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            asyncio.run(main(f"sqlite+aiosqlite:///{tmp}/bench.db"))
