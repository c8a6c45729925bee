"""Per-turn overhead of the ``assist`` mode (issue 9) when the model is not needed.

A company in ``assist`` mode whose rules understand every message never calls the model; what it pays
is looking up the assistant settings and checking the rules' commands. The inbox's overrides come with
the message from the pipeline's cached inbox row (``InboundMessage.inbox_assistant``); a caller that
does not pass them costs one small query more (the second assist figure). This times
``DialogueEngine.respond`` for the same understood messages with the rules engine and with an
assist-mode engine (alternating, on the same conversation, each turn rolled back), and prints the
medians and the differences (target: under 1 ms).

    .venv/bin/python bench/bench_assist.py                 # embedded SQLite in a temp dir
    BENCH_ROUNDS=300 .venv/bin/python bench/bench_assist.py
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

from sqlalchemy import select

from bot.engine import DialogueEngine
from bot.llm.assistant import Assistant
from bot.llm.config import PlatformModel
from bot.messages import InboundMessage
from channels.base import ParsedInbound
from channels.pipeline import Pipeline
from channels.registry import ChannelRegistry
from commerce.providers import ProviderRegistry
from core.accounts import create_company, create_tenant, inbox_of_kind
from core.db import create_engine, create_sessionmaker
from core.migrate import upgrade
from core.models import Company, Conversation, Inbox
from core.timeutil import utcnow
from knowledge.importer import import_knowledge
from knowledge.search import KnowledgeIndexCache

REPO = Path(__file__).resolve().parent.parent
UNDERSTOOD = ["how much is the ocean blue shirt?", "cart", "hi", "add an ocean blue shirt", "what do you sell?"]
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "150"))


async def main(url: str) -> None:
    await asyncio.to_thread(upgrade, url)
    sm = create_sessionmaker(create_engine(url))
    async with sm() as s, s.begin():
        tenant = await create_tenant(s, name="Bench", slug="bench")
        company = await create_company(s, tenant_id=tenant.id, slug="bench-apparel", name="Bench Apparel")
        company.settings = {"assistant": {"mode": "assist"},
                            "model_server": {"base_url": "http://127.0.0.1:9/v1", "model": "unused"}}
        await import_knowledge(s, company=company, data=(REPO / "examples/apparel-shop.csv").read_bytes(),
                               filename="apparel-shop.csv")
        inbox_id = (await inbox_of_kind(s, company, "webchat")).id
    providers = ProviderRegistry.default(public_base_url="http://127.0.0.1:8000")
    cache = KnowledgeIndexCache()
    rules = DialogueEngine(index_cache=cache, providers=providers)
    assistant = Assistant(platform=PlatformModel(timeout_seconds=0.1, max_retries=0))
    assist = DialogueEngine(index_cache=cache, providers=providers, assistant=assistant)
    pipeline = Pipeline(sessionmaker=sm, responder=rules, channels=ChannelRegistry.default())
    await pipeline.receive(inbox_id=inbox_id, parsed=ParsedInbound(contact_source_id="bench", text="hi",
                                                                   received_at=utcnow()))
    async with sm() as s:
        conversation_id = (await s.execute(select(Conversation.id))).scalar_one()

    async def turn(engine: DialogueEngine, text: str, *, overrides: dict | None = None) -> float:
        async with sm() as s:
            conversation = await s.get(Conversation, conversation_id)
            company = (await s.execute(select(Company))).scalar_one()
            assert conversation is not None
            inbound = InboundMessage(tenant_id=company.tenant_id, company_id=company.id,
                                     conversation_id=conversation.id, contact_id=conversation.contact_id,
                                     channel="webchat", text=text, received_at=utcnow(),
                                     inbox_assistant=overrides)
            start = time.perf_counter()
            await engine.respond(s, inbound=inbound, conversation=conversation, company=company)
            elapsed = time.perf_counter() - start
            await s.rollback()
            return elapsed

    for text in UNDERSTOOD:  # warm the index cache and both engines
        await turn(rules, text)
        await turn(assist, text)
    async with sm() as s:  # what the pipeline's inbox cache holds
        inbox = await s.get(Inbox, inbox_id)
        assert inbox is not None
        overrides = (inbox.settings or {}).get("assistant") or {}
    times: dict[str, list[float]] = {"rules": [], "assist": [], "assist-query": []}
    for _ in range(ROUNDS):
        for text in UNDERSTOOD:
            times["rules"].append(await turn(rules, text))
            times["assist"].append(await turn(assist, text, overrides=overrides))
            times["assist-query"].append(await turn(assist, text))
    assert assistant.asked == 0, "a message of the bench reached the model: choose messages the rules understand"
    rules_ms = statistics.median(times["rules"]) * 1000
    assist_ms = statistics.median(times["assist"]) * 1000
    print(f"turns per mode: {len(times['rules'])} (messages the rules understand; the model was asked 0 times)")
    print(f"rules  median {rules_ms:.3f} ms/turn, mean {statistics.fmean(times['rules']) * 1000:.3f} ms")
    print(f"assist median {assist_ms:.3f} ms/turn, mean {statistics.fmean(times['assist']) * 1000:.3f} ms")
    print(f"assist overhead (median difference): {assist_ms - rules_ms:+.3f} ms/turn (target < 1 ms)")
    # Each assist turn right after the rules turn on the same message: slow drifts of a shared machine's
    # load cancel out of these pairs.
    for name, label in (("assist", "overrides from the inbox row"), ("assist-query", "overrides queried")):
        paired = [a - r for a, r in zip(times[name], times["rules"], strict=True)]
        print(f"assist overhead, {label} (median of paired differences): "
              f"{statistics.median(paired) * 1000:+.3f} ms/turn")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        database = os.environ.get("BENCH_DATABASE_URL", f"sqlite+aiosqlite:///{tmp}/bench.db")
        asyncio.run(main(database))
