"""CPU time of the dialogue engine alone, per customer message, on a 5,000-item catalogue.

Builds one English shop (USD) and one Russian shop (RUB), each with BENCH_ITEMS synthetic items
(default 5,000; one in four with size or colour variants) plus the items the scripts talk about,
runs a scripted set of conversations through the web-chat pipeline and measures
``time.process_time()`` around ``DialogueEngine.respond`` only (not the pipeline's storage, not the
database commit). The first message of each shop (which builds the knowledge index) is a warm-up and
is not counted. Prints p50/p99/max per message in milliseconds.

    .venv/bin/python bench/bench_engine.py
    BENCH_ITEMS=500 BENCH_ROUNDS=2 .venv/bin/python bench/bench_engine.py
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from bot.engine import DialogueEngine, warm_up
from bot.messages import InboundMessage, OutboundMessage
from channels.base import ParsedInbound
from channels.pipeline import Pipeline
from channels.registry import ChannelRegistry
from commerce.providers import ProviderRegistry
from core.accounts import create_company, create_tenant, inbox_of_kind
from core.db import create_engine, create_sessionmaker
from core.migrate import upgrade
from core.models import Company, Conversation, FaqEntry, KnowledgeItem, KnowledgeVariant
from core.timeutil import utcnow
from knowledge.search import KnowledgeIndexCache

ITEMS = int(os.environ.get("BENCH_ITEMS", "5000"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))

EN_WORDS = (["Classic", "Soft", "Striped", "Vintage", "Linen", "Cotton", "Wool", "Silk", "Denim", "Leather", "Summer",
             "Winter", "Slim", "Relaxed", "Organic", "Retro", "Urban", "Alpine", "Coastal", "Velvet"],
            ["Shirt", "Jacket", "Scarf", "Mug", "Teapot", "Candle", "Blanket", "Hat", "Bag", "Wallet", "Belt",
             "Sweater", "Vase", "Lamp", "Notebook", "Pillow", "Towel", "Apron", "Bowl", "Plate"])
RU_WORDS = (["Классический", "Мягкий", "Полосатый", "Винтажный", "Льняной", "Хлопковый", "Шерстяной", "Летний",
             "Зимний", "Уютный", "Яркий", "Садовый", "Домашний", "Большой", "Малый"],
            ["свитер", "шарф", "плед", "светильник", "блокнот", "фартук", "кувшин", "горшок", "коврик", "чайник",
             "стакан", "поднос", "ящик", "пенал", "зонт"])
EN_SCRIPTS = [
    ["hi", "how much is the ocean blue shirt?", "2 classic varsity tops size medium", "add an ocean blue shirt",
     "cart", "checkout", "Alice Smith", "12 Main Street, Springfield", "skip"],
    ["what do you sell?", "tell me about the yellow wool jumper", "is it in stock?", "add it", "add another one",
     "change that to 3", "remove the jumper", "how much is shipping?", "thanks"],
    ["hello", "add the varsity top", "large", "what's in my cart", "talk to a human"],
]
RU_SCRIPTS = [
    ["Здравствуйте!", "сколько стоят розы", "добавь 5 красных роз", "хочу 3 тюльпана", "жёлтые", "что в корзине",
     "оформить заказ", "Борис", "Москва, ул. Садовая, 12", "пропустить"],
    ["что есть?", "есть ли пионы", "сколько стоит доставка?", "добавь пион", "спасибо"],
]


class TimedEngine:
    """The real engine with ``time.process_time`` measured around each ``respond``."""

    def __init__(self, engine: DialogueEngine) -> None:
        self.engine = engine
        self.samples: list[float] = []
        self.record = False

    async def respond(self, session: AsyncSession, *, inbound: InboundMessage, conversation: Conversation,
                      company: Company) -> list[OutboundMessage]:
        start = time.process_time()
        replies = await self.engine.respond(session, inbound=inbound, conversation=conversation, company=company)
        if self.record:
            self.samples.append(time.process_time() - start)
        return replies


def _synthetic(company: Company, words: tuple[list[str], list[str]], rng: random.Random) -> list[KnowledgeItem]:
    adjectives, nouns = words
    items = []
    for n in range(ITEMS):
        name = f"{rng.choice(adjectives)} {rng.choice(adjectives)} {rng.choice(nouns)} {n:04d}"
        item = KnowledgeItem(id=uuid.uuid4(), tenant_id=company.tenant_id, company_id=company.id, kind="product",
                             name=name, description=f"{name}: {' '.join(rng.sample(adjectives, 5))}.",
                             category=rng.choice(nouns), price_minor=rng.randrange(500, 50000, 100),
                             currency=company.currency, stock=rng.choice([None, None, 0, 3, 50]), attributes={},
                             position=100 + n, variants=[])
        if n % 4 == 0:
            for vpos, size in enumerate(["S", "M", "L"]):
                item.variants.append(KnowledgeVariant(
                    id=uuid.uuid4(), tenant_id=company.tenant_id, company_id=company.id, name=size,
                    options={"Size": size}, price_minor=item.price_minor, stock=None, position=vpos))
        items.append(item)
    return items


def _item(company: Company, name: str, price: int, *, stock: int | None = None, option: str | None = None,
          variants: tuple[tuple[str, int, int | None], ...] = ()) -> KnowledgeItem:
    item = KnowledgeItem(id=uuid.uuid4(), tenant_id=company.tenant_id, company_id=company.id, kind="product",
                         name=name, description=f"{name}.", category=None, price_minor=price,
                         currency=company.currency, stock=stock, attributes={}, position=0, variants=[])
    for vpos, (vname, vprice, vstock) in enumerate(variants):
        item.variants.append(KnowledgeVariant(id=uuid.uuid4(), tenant_id=company.tenant_id, company_id=company.id,
                                              name=vname, options={option or "Option": vname}, price_minor=vprice,
                                              stock=vstock, position=vpos))
    return item


async def _shop(sm, *, slug: str, language: str, currency: str) -> uuid.UUID:  # type: ignore[no-untyped-def]
    rng = random.Random(slug)
    async with sm() as s, s.begin():
        tenant = await create_tenant(s, name=slug, slug=slug)
        company = await create_company(s, tenant_id=tenant.id, slug=slug, name=slug.title(), currency=currency,
                                       language=language)
        if language == "en":
            s.add_all([
                _item(company, "Ocean Blue Shirt", 5000),
                _item(company, "Classic Varsity Top", 6000, option="Size",
                      variants=(("Small", 6000, None), ("Medium", 6000, None), ("Large", 6000, None))),
                _item(company, "Yellow Wool Jumper", 8000, stock=20),
            ])
            s.add(FaqEntry(tenant_id=tenant.id, company_id=company.id, question="How much is shipping?",
                           answer="Standard shipping is $5.", position=0))
            s.add_all(_synthetic(company, EN_WORDS, rng))
        else:
            s.add_all([
                _item(company, "Роза", 15000, option="Цвет",
                      variants=(("красная", 15000, 500), ("белая", 15000, 500), ("розовая", 17000, 500))),
                _item(company, "Тюльпан", 9000, option="Цвет",
                      variants=(("красный", 9000, 500), ("жёлтый", 9000, 500), ("белый", 9500, 0))),
                _item(company, "Пион", 45000, stock=300),
            ])
            s.add(FaqEntry(tenant_id=tenant.id, company_id=company.id, question="Сколько стоит доставка?",
                           answer="Доставка по городу — 390 ₽.", position=0))
            s.add_all(_synthetic(company, RU_WORDS, rng))
        return (await inbox_of_kind(s, company, "webchat")).id


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        await asyncio.to_thread(upgrade, url)
        db = create_engine(url)
        sm = create_sessionmaker(db)
        shops = [(await _shop(sm, slug="bench-en", language="en", currency="USD"), EN_SCRIPTS),
                 (await _shop(sm, slug="bench-ru", language="ru", currency="RUB"), RU_SCRIPTS)]
        timed = TimedEngine(DialogueEngine(index_cache=KnowledgeIndexCache(),
                                           providers=ProviderRegistry.default(public_base_url="http://127.0.0.1"),
                                           payment_ttl=timedelta(hours=1)))
        pipeline = Pipeline(sessionmaker=sm, responder=timed, channels=ChannelRegistry.default())
        # The language helpers, message catalogues and Babel locale data load once per process (bot.engine.warm_up),
        # at start-up in production, so not inside a measured message.
        await asyncio.to_thread(warm_up)
        for inbox_id, _ in shops:  # warm-up: builds each company's knowledge index
            await pipeline.receive(inbox_id=inbox_id, parsed=ParsedInbound(
                contact_source_id="warm-up", text="hi", received_at=utcnow()))
        timed.record = True
        n = 0
        for round_ in range(ROUNDS):
            for inbox_id, scripts in shops:
                for k, script in enumerate(scripts):
                    for text in script:
                        n += 1
                        result = await pipeline.receive(inbox_id=inbox_id, parsed=ParsedInbound(
                            contact_source_id=f"r{round_}-c{k}", text=text, received_at=utcnow(),
                            source_id=f"m{n}"))
                        assert result.replies, f"no reply to {text!r}"
        await db.dispose()
    samples = sorted(timed.samples)
    q = statistics.quantiles(samples, n=100)
    print(f"catalogue: {ITEMS} synthetic items per shop (+ scripted items), 2 shops (en, ru)")
    print(f"messages measured: {len(samples)} ({ROUNDS} rounds of {sum(map(len, EN_SCRIPTS + RU_SCRIPTS))})")
    print(f"engine CPU per message: p50 {q[49] * 1000:.2f} ms, p99 {q[98] * 1000:.2f} ms, "
          f"max {samples[-1] * 1000:.2f} ms")


if __name__ == "__main__":
    asyncio.run(main())
