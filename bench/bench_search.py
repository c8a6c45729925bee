"""Benchmark of knowledge retrieval (``make bench``).

Builds one :class:`knowledge.search.KnowledgeIndex` over the three shared Shopify exports
(``../shared/datasets/shopify``) plus a synthetic catalogue of 5,000 English and Russian items with
variants, then prints the build time, ``search_items``/``match_variant``/``search_faq`` queries per
second on a mix of exact, plural, typo and off-topic queries, and the peak Python memory of the
build (tracemalloc). Prints figures only; nothing here asserts on time.

Usage: ``python bench/bench_search.py [--items 5000] [--seconds 3]``
"""

from __future__ import annotations

import argparse
import csv
import random
import re
import sys
import time
import tracemalloc
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHOPIFY = REPO.parent / "shared" / "datasets" / "shopify"

EN_ADJECTIVES = "classic soft striped floral vintage slim cozy light heavy summer winter sport urban retro".split()
EN_COLOURS = "red blue green black white grey yellow navy olive pink brown beige purple orange".split()
EN_MATERIALS = "cotton wool silk linen denim leather suede cashmere velvet knitted".split()
EN_NOUNS = "shirt top jacket dress skirt jumper hoodie scarf bag hat coat blouse tee sneakers boots belt".split()
RU_ADJECTIVES = "классический мягкий летний зимний уютный легкий теплый нарядный праздничный нежный".split()
RU_NOUNS = "букет корзина свитер шарф платье куртка сумка шапка ремень пальто набор композиция".split()
RU_WORDS = "роз тюльпанов пионов лилий хризантем ромашек гербер ирисов орхидей эвкалипта".split()
SIZES = ("Small", "Medium", "Large", "Extra Large")
RU_COLOURS = ("красная", "белая", "розовая", "желтая")
OFF_TOPIC = (
    "what's the weather like",
    "asdfgh",
    "hello there",
    "how long does delivery take",
    "привет",
    "какая сегодня погода",
    "qwerty zxcvbn",
)


def load_shopify(path: Path, company_id: uuid.UUID) -> list:
    """Minimal Shopify product-export reader (title, body, type, tags, options, prices)."""
    from core.models import KnowledgeItem, KnowledgeVariant

    items: dict[str, KnowledgeItem] = {}
    with path.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            item = items.get(row["Handle"])
            price = round(float(row.get("Variant Price") or 0) * 100)
            if item is None:
                if not row["Title"]:
                    continue
                item = KnowledgeItem(
                    id=uuid.uuid4(),
                    company_id=company_id,
                    kind="product",
                    handle=row["Handle"],
                    name=row["Title"],
                    description=re.sub(r"<[^>]+>", " ", row.get("Body (HTML)") or ""),
                    category=row.get("Type") or None,
                    price_minor=price,
                    currency="USD",
                    position=len(items),
                    attributes={"tags": row.get("Tags") or ""},
                )
                items[row["Handle"]] = item
            options = {
                row.get(f"Option{n} Name") or f"Option{n}": row[f"Option{n} Value"]
                for n in (1, 2, 3)
                if row.get(f"Option{n} Value")
            }
            if options:
                item.variants.append(
                    KnowledgeVariant(
                        id=uuid.uuid4(),
                        company_id=company_id,
                        name=" / ".join(options.values()),
                        options=options,
                        price_minor=price,
                        position=len(item.variants),
                    )
                )
    return list(items.values())


def synthetic(count: int, company_id: uuid.UUID, rng: random.Random, start: int) -> list:
    """``count`` generated items: 80% English clothing with sizes, 20% Russian bouquets with colours."""
    from core.models import KnowledgeItem, KnowledgeVariant

    items = []
    for n in range(count):
        if rng.random() < 0.8:
            name = (
                f"{rng.choice(EN_ADJECTIVES)} {rng.choice(EN_COLOURS)} {rng.choice(EN_MATERIALS)} "
                f"{rng.choice(EN_NOUNS)} {n}"
            ).title()
            description = (
                f"A {rng.choice(EN_ADJECTIVES)} piece in {rng.choice(EN_MATERIALS)}, pairs well with a "
                f"{rng.choice(EN_COLOURS)} {rng.choice(EN_NOUNS)}. Machine washable, regular fit."
            )
            values = [{"Size": size} for size in SIZES] if rng.random() < 0.6 else []
        else:
            name = f"{rng.choice(RU_NOUNS).capitalize()} из {rng.choice(RU_WORDS)} «{rng.choice(RU_ADJECTIVES)}» {n}"
            description = f"{rng.choice(RU_ADJECTIVES).capitalize()} подарок из {rng.choice(RU_WORDS)} и зелени."
            values = [{"Цвет": colour} for colour in RU_COLOURS] if rng.random() < 0.5 else []
        item = KnowledgeItem(
            id=uuid.uuid4(),
            company_id=company_id,
            kind="product",
            name=name,
            description=description,
            category=None,
            price_minor=rng.randrange(500, 50_000),
            currency="USD",
            position=start + n,
            attributes={},
        )
        for pos, options in enumerate(values):
            item.variants.append(
                KnowledgeVariant(
                    id=uuid.uuid4(),
                    company_id=company_id,
                    name=" / ".join(options.values()),
                    options=options,
                    position=pos,
                )
            )
        items.append(item)
    return items


def faq_rows(company_id: uuid.UUID) -> list:
    """A handful of FAQ entries in both languages."""
    from core.models import FaqEntry

    pairs = [
        ("How long does delivery take?", "Delivery takes 2-3 business days."),
        ("What payment methods do you accept?", "Cards and cash."),
        ("Can I return an item?", "Within 14 days with the receipt."),
        ("Сколько стоит доставка?", "300 ₽ по городу."),
        ("Как оплатить заказ?", "Картой онлайн или наличными курьеру."),
    ]
    return [
        FaqEntry(id=uuid.uuid4(), company_id=company_id, question=q, answer=a, position=i)
        for i, (q, a) in enumerate(pairs)
    ]


def typo(word: str, rng: random.Random) -> str:
    """Drop one inner letter of a long word (a typical typo)."""
    if len(word) < 6:
        return word
    i = rng.randrange(2, len(word) - 1)
    return word[:i] + word[i + 1 :]


def queries(items: list, rng: random.Random, count: int) -> list[str]:
    """A mix of exact names, partial names, plurals, typos, quantities and off-topic messages."""
    out: list[str] = []
    for _ in range(count):
        item = rng.choice(items)
        words = re.sub(r"[«»\d]", " ", item.name).split()
        kind = rng.random()
        if kind < 0.25:
            out.append(item.name)
        elif kind < 0.5:
            out.append(" ".join(words[-2:]) + ("s" if words[-1].isascii() else ""))
        elif kind < 0.75:
            out.append(" ".join(typo(w.lower(), rng) for w in words[-3:]))
        elif kind < 0.9:
            out.append(f"2 {' '.join(words[-2:]).lower()} size medium please")
        else:
            out.append(rng.choice(OFF_TOPIC))
    return out


def rate(fn, args: list, seconds: float) -> tuple[float, int]:
    """Calls per second of ``fn`` over ``args`` (cycled) for about ``seconds``."""
    done, start = 0, time.perf_counter()
    while True:
        for arg in args:
            fn(arg)
            done += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return done / elapsed, done


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=5000, help="synthetic items on top of the Shopify files")
    parser.add_argument("--seconds", type=float, default=3.0, help="time per measured operation")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    if not SHOPIFY.exists():
        print(f"shared datasets not found at {SHOPIFY}", file=sys.stderr)
        return 1

    from knowledge.search import ItemView, KnowledgeIndex

    rng = random.Random(args.seed)
    company_id = uuid.uuid4()
    items = []
    for path in sorted(SHOPIFY.glob("*.csv")):
        loaded = load_shopify(path, company_id)
        print(f"{path.name}: {len(loaded)} items")
        items.extend(loaded)
    shopify_items = list(items)
    items.extend(synthetic(args.items, company_id, rng, start=len(items)))
    faq = faq_rows(company_id)
    variants = sum(len(i.variants) for i in items)
    print(f"catalogue: {len(items)} items, {variants} variants, {len(faq)} FAQ entries")

    started = time.perf_counter()
    views = [ItemView.from_model(item) for item in items]
    snapshot_s = time.perf_counter() - started
    started = time.perf_counter()
    index = KnowledgeIndex.build(company_id=company_id, items=views, faq=faq)
    index_s = time.perf_counter() - started
    total_ms = (snapshot_s + index_s) * 1000
    print(f"build: {total_ms:.0f} ms ({snapshot_s * 1000:.0f} ms ORM snapshots, {index_s * 1000:.0f} ms indexing)")
    tracemalloc.start()
    traced = KnowledgeIndex.build(company_id=company_id, items=items, faq=faq)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del traced
    print(f"peak traced memory during a build: {peak / 2**20:.1f} MiB")

    sample = queries(items, rng, 400) + queries(shopify_items, rng, 100)
    cold = time.perf_counter()
    for text in sample:
        index.search_items(text)
    print(f"search_items, first pass (typo corrections uncached): {len(sample) / (time.perf_counter() - cold):.0f} q/s")
    qps, done = rate(index.search_items, sample, args.seconds)
    print(f"search_items: {qps:.0f} q/s ({done} queries)")
    found = sum(1 for text in sample if index.search_items(text))
    print(f"  queries with at least one hit: {found}/{len(sample)}")

    with_variants = [i for i in items if len(i.variants) > 1]
    pairs = [
        (rng.choice(with_variants).id, rng.choice(["size medium", "M", "красные", "белую", "hello"]))
        for _ in range(500)
    ]
    qps, done = rate(lambda p: index.match_variant(p[0], p[1]), pairs, args.seconds / 2)
    print(f"match_variant: {qps:.0f} q/s ({done} calls)")
    faq_queries = ["how long does delivery take", "do you accept cards", "сколько стоит доставка", "asdfgh"]
    qps, done = rate(index.search_faq, faq_queries, args.seconds / 2)
    print(f"search_faq: {qps:.0f} q/s ({done} queries)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
