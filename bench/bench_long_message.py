"""How long one huge customer message keeps the event loop (every tenant) busy.

A correctly signed WAHA delivery whose text is SIZE characters (default 20,000,000, the issue's 20 MB
message) goes the webhook route's way: verify (HMAC-SHA512), parse, store (cut to WhatsApp's 65,536
characters), answer with the real dialogue engine on the demo apparel shop. A ticker task sleeping
1 ms measures the event loop's longest stall meanwhile; the same is printed for a normal message.

    .venv/bin/python bench/bench_long_message.py               # embedded SQLite in a temp dir
    BENCH_SIZE=1000000 .venv/bin/python bench/bench_long_message.py
"""

from __future__ import annotations

import asyncio
import json
import os
import tempfile
import time
from collections.abc import Coroutine
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

from bot.engine import DialogueEngine
from channels.base import RawRequest
from channels.pipeline import ChannelFactory, Pipeline
from channels.registry import ChannelRegistry
from channels.waha import sign
from commerce.providers import ProviderRegistry
from core.accounts import create_company, create_tenant
from core.db import create_engine, create_sessionmaker
from core.migrate import upgrade
from core.models import Inbox
from knowledge.importer import import_knowledge
from knowledge.search import KnowledgeIndexCache

REPO = Path(__file__).resolve().parent.parent
SIZE = int(os.environ.get("BENCH_SIZE", "20000000"))
KEY = "bench-hmac-key"
T = TypeVar("T")


def delivery(text: str, n: int) -> RawRequest:
    envelope = {"event": "message", "session": "default", "me": {"id": "15550001111@c.us"},
                "payload": {"id": f"false_15557654321@c.us_{n}", "timestamp": 1_700_000_000,
                            "from": "15557654321@c.us", "fromMe": False, "body": text}}
    body = json.dumps(envelope, separators=(",", ":")).encode()
    return RawRequest(headers={"x-webhook-hmac": sign(body, KEY), "x-webhook-hmac-algorithm": "sha512"}, body=body)


async def measured(work: Coroutine[Any, Any, T]) -> tuple[float, float, T]:
    """Run ``work`` while a ticker sleeping 1 ms records the event loop's longest stall.
    Returns (elapsed ms, longest stall ms, result)."""
    worst = 0.0
    done = asyncio.Event()

    async def ticker() -> None:
        nonlocal worst
        while not done.is_set():
            before = time.perf_counter()
            await asyncio.sleep(0.001)
            worst = max(worst, time.perf_counter() - before - 0.001)

    tick = asyncio.create_task(ticker())
    start = time.perf_counter()
    result = await work
    elapsed = time.perf_counter() - start
    done.set()
    await tick
    return elapsed * 1000, worst * 1000, result


async def main(url: str) -> None:
    await asyncio.to_thread(upgrade, url)
    engine = create_engine(url)
    sm = create_sessionmaker(engine)
    async with sm() as s, s.begin():
        tenant = await create_tenant(s, name="Bench", slug="bench")
        company = await create_company(s, tenant_id=tenant.id, slug="bench-apparel", name="Bench Apparel")
        await import_knowledge(s, company=company, data=(REPO / "examples/apparel-shop.csv").read_bytes(),
                               filename="apparel-shop.csv")
        inbox = Inbox(tenant_id=tenant.id, company_id=company.id, kind="whatsapp_waha", name="WhatsApp",
                      credentials=json.dumps({"api_key": "k", "hmac_key": KEY}),
                      settings={"base_url": "http://127.0.0.1:9", "session": "default", "buffer_seconds": 0})
        s.add(inbox)
        await s.flush()
        inbox_id = inbox.id
    registry = ChannelRegistry.default()
    factory = ChannelFactory(channels=registry, decrypt=lambda value: value)
    providers = ProviderRegistry.default(public_base_url="http://127.0.0.1:8000")
    responder = DialogueEngine(index_cache=KnowledgeIndexCache(), providers=providers, payment_ttl=timedelta(hours=1))
    pipeline = Pipeline(sessionmaker=sm, responder=responder, channels=registry, channel_factory=factory)
    async with sm() as s:
        inbox = await s.get(Inbox, inbox_id)

    async def receive(raw: RawRequest) -> list:  # type: ignore[type-arg]
        """The webhook route's work: verify and parse."""
        channel = factory.build(inbox)
        try:
            await channel.verify(raw)
            messages, _ = await channel.parse_delivery(raw)
            return messages
        finally:
            await channel.aclose()

    async def answer(messages: list) -> None:  # type: ignore[type-arg]
        """Store and answer (the reply is stored; its delivery is not part of the figure)."""
        for parsed in messages:
            stored, _window = await pipeline.store(inbox_id=inbox_id, parsed=parsed)
            assert stored.conversation_id is not None
            await pipeline._process_locked(stored.conversation_id)  # noqa: SLF001 - answer, do not send

    for label, text, n in (("normal message (34 chars)", "how much is the ocean blue shirt?", 1),
                           (f"huge message ({SIZE:,} chars)", "how much is the ocean blue shirt? " * (SIZE // 34), 2)):
        raw = delivery(text, n)
        parse_ms, parse_stall, messages = await measured(receive(raw))
        answer_ms, answer_stall, _ = await measured(answer(messages))
        print(f"{label}, body {len(raw.body) / 1e6:.1f} MB: verify+parse {parse_ms:.0f} ms (longest loop stall "
              f"{parse_stall:.0f} ms); store+answer {answer_ms:.0f} ms (longest loop stall {answer_stall:.0f} ms)")
    await engine.dispose()


if __name__ == "__main__":
    url = os.environ.get("BENCH_DATABASE_URL")
    if url:
        asyncio.run(main(url))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            asyncio.run(main(f"sqlite+aiosqlite:///{tmp}/bench.db"))
