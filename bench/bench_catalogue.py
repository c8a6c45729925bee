"""Benchmark of a large catalogue (issue 10): import, index, first message, understanding, memory.

Generates a synthetic owner sheet (CSV, ``--rows`` rows including the header; default 100,000, the
importer's row limit) of English clothing and Russian bouquets, some items over several rows (size
variants), plus a small FAQ sheet, and measures on a fresh database:

* import: parse time and database write time of ``import_knowledge`` (and of a re-import of the
  same file, which matches every existing row);
* in a fresh worker process (as after a restart): time to the first understood message (the
  knowledge index is loaded and built on the first message), the longest event-loop stall while
  that happened (a ticker task measures it), and the same for a second company asked concurrently;
* ``KnowledgeIndex.build`` alone; ``search_items`` and ``RuleUnderstander.understand`` p50/p99 over a mix
  of exact, partial, typo, off-topic and gibberish messages (the gibberish hits the fuzzy fallback);
* RSS of the worker process before and after the index, and the traced Python memory
  (``tracemalloc``) one company index keeps.

Prints figures only; nothing here asserts on time.

    .venv/bin/python bench/bench_catalogue.py                      # PostgreSQL at 127.0.0.1 (temp database)
    .venv/bin/python bench/bench_catalogue.py --sqlite             # embedded SQLite in a temp directory
    .venv/bin/python bench/bench_catalogue.py --rows 20000 --queries 1000
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
import os
import random
import statistics
import string
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

PG_ADMIN = os.environ.get("BENCH_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")

EN_ADJECTIVES = "classic soft striped floral vintage slim cozy light heavy summer winter sport urban retro".split()
EN_COLOURS = "red blue green black white grey yellow navy olive pink brown beige purple orange".split()
EN_MATERIALS = "cotton wool silk linen denim leather suede cashmere velvet knitted".split()
EN_NOUNS = "shirt top jacket dress skirt jumper hoodie scarf bag hat coat blouse tee sneakers boots belt".split()
EN_BRANDS = "Aster Borealis Cobalt Dune Ember Fjord Grove Halcyon Iris Juniper Kestrel Lumen Moss Nimbus".split()
RU_ADJECTIVES = "классический мягкий летний зимний уютный легкий теплый нарядный праздничный нежный".split()
RU_NOUNS = "букет корзина свитер шарф платье куртка сумка шапка ремень пальто набор композиция".split()
RU_WORDS = "роз тюльпанов пионов лилий хризантем ромашек гербер ирисов орхидей эвкалипта".split()
SIZES = ("Small", "Medium", "Large")
OFF_TOPIC = ("what's the weather like", "hello there", "how long does delivery take", "привет",
             "какая сегодня погода", "do you accept cards")
FAQ = [("How long does delivery take?", "Delivery takes 2-3 business days."),
       ("What payment methods do you accept?", "Cards and cash."),
       ("Can I return an item?", "Within 14 days with the receipt."),
       ("Сколько стоит доставка?", "300 ₽ по городу."),
       ("Как оплатить заказ?", "Картой онлайн или наличными курьеру.")]


# --- data ------------------------------------------------------------------------------------------


def owner_sheet(rows: int, rng: random.Random) -> tuple[bytes, list[str]]:
    """An owner's product sheet of ``rows`` lines (header included): Name, Category, Size, Price, Stock,
    Description. One item in ten is sold in three sizes (three rows). Returns the CSV bytes and the
    item names."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["Name", "Category", "Size", "Price", "Stock", "Description"])
    names: list[str] = []
    written, n = 1, 0
    while written < rows:
        n += 1
        if rng.random() < 0.8:
            name = (f"{rng.choice(EN_BRANDS)} {rng.choice(EN_ADJECTIVES)} {rng.choice(EN_COLOURS)} "
                    f"{rng.choice(EN_MATERIALS)} {rng.choice(EN_NOUNS)} {n}").title()
            category = rng.choice(EN_NOUNS).title() + "s"
            description = (f"A {rng.choice(EN_ADJECTIVES)} piece in {rng.choice(EN_MATERIALS)}, pairs well with a "
                           f"{rng.choice(EN_COLOURS)} {rng.choice(EN_NOUNS)}. Machine washable, regular fit.")
        else:
            name = f"{rng.choice(RU_NOUNS).capitalize()} из {rng.choice(RU_WORDS)} {rng.choice(RU_ADJECTIVES)} {n}"
            category = "Подарки"
            description = f"{rng.choice(RU_ADJECTIVES).capitalize()} подарок из {rng.choice(RU_WORDS)} и зелени."
        price = f"{rng.randrange(500, 50_000) / 100:.2f}"
        sizes = SIZES if rng.random() < 0.1 and written + len(SIZES) <= rows else ("",)
        for size in sizes:
            writer.writerow([name, category, size, price, rng.randrange(0, 50), description])
            written += 1
        names.append(name)
    return out.getvalue().encode("utf-8"), names


def faq_sheet() -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["Question", "Answer"])
    writer.writerows(FAQ)
    return out.getvalue().encode("utf-8")


def typo(word: str, rng: random.Random) -> str:
    """Drop one inner letter of a long word (a typical typo)."""
    if len(word) < 6:
        return word
    i = rng.randrange(2, len(word) - 1)
    return word[:i] + word[i + 1:]


def gibberish(rng: random.Random) -> str:
    """Letters typed at random: no word of the catalogue, so search falls back to fuzzy matching."""
    letters = string.ascii_lowercase if rng.random() < 0.7 else "абвгдеёжзийклмнопрстуфхцчшщыэюя"
    words = [("".join(rng.choice(letters) for _ in range(rng.randrange(5, 12)))) for _ in range(rng.randrange(1, 3))]
    return " ".join(words)


def queries(names: list[str], rng: random.Random, count: int) -> list[tuple[str, str]]:
    """``(kind, text)`` pairs: exact names, partial names, typos, quantities, off-topic, gibberish."""
    out: list[tuple[str, str]] = []
    for _ in range(count):
        words = [w for w in rng.choice(names).split() if not w.isdigit()]
        kind = rng.random()
        if kind < 0.2:
            out.append(("exact", " ".join(words)))
        elif kind < 0.4:
            out.append(("partial", " ".join(words[-2:])))
        elif kind < 0.6:
            out.append(("typo", " ".join(typo(w.lower(), rng) for w in words[-3:])))
        elif kind < 0.7:
            out.append(("quantity", f"2 {' '.join(words[-2:]).lower()} size medium please"))
        elif kind < 0.8:
            out.append(("off-topic", rng.choice(OFF_TOPIC)))
        else:
            out.append(("gibberish", gibberish(rng)))
    return out


# --- helpers ---------------------------------------------------------------------------------------


def rss_mib() -> float:
    """Resident set size of this process (Linux ``/proc/self/status``), MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def rss_parts_mib() -> dict[str, float]:
    """``RssAnon`` (private heap) and ``RssFile`` (file pages, e.g. memory-mapped snapshot arrays, shared
    with every process mapping the same file) of this process, MiB."""
    parts = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("RssAnon:", "RssFile:")):
            parts[line.split(":")[0]] = int(line.split()[1]) / 1024
    return parts


def pct(values: list[float], p: int) -> float:
    if len(values) < 2:
        return values[0] if values else float("nan")
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


class StallMeter:
    """A task that wakes every millisecond and records the longest gap: how long the event loop was
    blocked."""

    def __init__(self) -> None:
        self.longest = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        last = time.perf_counter()
        while True:
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            self.longest = max(self.longest, now - last - 0.001)
            last = now

    def __enter__(self) -> StallMeter:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()


# --- phases ----------------------------------------------------------------------------------------


async def import_phase(url: str, rows: int, seed: int) -> dict:
    from core.accounts import create_company, create_tenant
    from core.db import create_engine, create_sessionmaker
    from core.models import Company
    from knowledge.importer import import_knowledge, parse_knowledge_file

    rng = random.Random(seed)
    data, names = owner_sheet(rows, rng)
    engine = create_engine(url)
    sessions = create_sessionmaker(engine)
    companies = []
    async with sessions() as session, session.begin():
        for n in (1, 2):
            tenant = await create_tenant(session, name=f"Bench {n}", slug=f"bench-{n}")
            company = await create_company(session, tenant_id=tenant.id, slug=f"bench-shop-{n}", name=f"Shop {n}")
            companies.append(company)
    figures: dict = {"rows": rows, "file_mib": round(len(data) / 2**20, 1)}
    started, cpu = time.perf_counter(), time.process_time()
    parsed = parse_knowledge_file(data, filename="catalogue.csv", currency="USD")
    figures["parse_s"] = time.perf_counter() - started
    figures["parse_cpu_s"] = time.process_time() - cpu
    figures["items"], figures["variants"] = len(parsed.items or ()), parsed.variant_count
    async def run_import(company_id: uuid.UUID, payload: bytes, filename: str) -> float:
        started, cpu = time.perf_counter(), time.process_time()
        async with sessions() as session, session.begin():
            company = await session.get(Company, company_id)
            await import_knowledge(session, company=company, data=payload, filename=filename)
        figures.setdefault("_cpu", []).append(time.process_time() - cpu)
        return time.perf_counter() - started

    for n, company in enumerate(companies):
        elapsed = await run_import(company.id, data, "catalogue.csv")
        if n == 0:
            figures["import_s"] = elapsed
            figures["import_write_s"] = elapsed - figures["parse_s"]
        await run_import(company.id, faq_sheet(), "faq.csv")
    figures["reimport_s"] = await run_import(companies[0].id, data, "catalogue.csv")
    cpu_times = figures.pop("_cpu")
    figures["import_cpu_s"], figures["reimport_cpu_s"] = cpu_times[0], cpu_times[-1]
    await engine.dispose()
    figures["companies"] = [str(c.id) for c in companies]
    return figures


async def snapshot_phase(url: str, company_ids: list[str], data_dir: Path) -> dict:
    """What the import job does after the import: build and save each company's index snapshot."""
    from core.db import create_engine, create_sessionmaker
    from core.models import Company
    from knowledge.snapshot import refresh_snapshot

    engine = create_engine(url)
    sessions = create_sessionmaker(engine)
    figures: dict = {}
    for n, company_id in enumerate(company_ids):
        async with sessions() as session:
            company = await session.get(Company, uuid.UUID(company_id))
        started, cpu = time.perf_counter(), time.process_time()
        path = await refresh_snapshot(sessions, tenant_id=company.tenant_id, company_id=company.id, data_dir=data_dir)
        if n == 0:
            figures["snapshot_build_s"] = time.perf_counter() - started
            figures["snapshot_build_cpu_s"] = time.process_time() - cpu
            figures["snapshot_mib"] = sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20
    await engine.dispose()
    return figures


async def worker_phase(url: str, company_ids: list[str], seed: int, count: int, mode: str = "build",
                       data_dir: Path | None = None) -> dict:
    """Runs in a fresh process: what a worker sees after a restart. ``mode``: ``build`` (no snapshots:
    the index is built in a thread), ``snapshot`` (the import's snapshots are loaded), ``child`` (no
    snapshot yet: a child process builds it, the worker loads it); ``*-quick``: first messages only."""
    from datetime import UTC, datetime

    from sqlalchemy import select

    from bot.state import DialogueState
    from bot.understand import RuleUnderstander, UnderstandingContext
    from core.db import create_engine, create_sessionmaker
    from core.models import Company
    from knowledge.search import KnowledgeIndexCache

    quick = mode.endswith("-quick")
    mode = mode.removesuffix("-quick")
    figures: dict = {"mode": mode, "load_avg_1min": os.getloadavg()[0], "rss_start_mib": rss_mib()}
    engine = create_engine(url)
    sessions = create_sessionmaker(engine)
    store = None
    if mode != "build":
        from knowledge.snapshot import SnapshotStore

        store = SnapshotStore(data_dir=data_dir, database_url=url if mode == "child" else None)
    cache = KnowledgeIndexCache(snapshots=store)
    async with sessions() as session:
        companies = [(await session.execute(select(Company).where(Company.id == uuid.UUID(c)))).scalar_one()
                     for c in company_ids]
    first_text = "how much is the striped cotton shirt?"
    understander = RuleUnderstander()

    def understand(text: str, *, index: object, state: DialogueState) -> object:
        """What the engine does per typed message (bot/engine.py): rules over the company's index."""
        context = UnderstandingContext(index=index, company_type="hybrid", language="en", timezone="UTC",
                                       now=datetime.now(UTC))
        return understander.understand(text, state=state, context=context)

    async def first_message(company: Company) -> float:
        started = time.perf_counter()
        async with sessions() as session:
            index = await cache.get(session, company)
            await asyncio.to_thread(understand, first_text, index=index, state=DialogueState())
        return time.perf_counter() - started

    cpu = time.process_time()
    with StallMeter() as stall:
        figures["first_message_s"] = await first_message(companies[0])
    figures["first_message_cpu_s"] = time.process_time() - cpu
    figures["first_message_loop_stall_ms"] = stall.longest * 1000
    figures["rss_one_index_mib"] = rss_mib()
    figures["rss_one_index_parts_mib"] = rss_parts_mib()
    with StallMeter() as stall:
        started = time.perf_counter()
        both = await asyncio.gather(first_message(companies[1]), first_message(companies[1]))
        figures["second_company_two_concurrent_s"] = time.perf_counter() - started
    figures["second_company_each_s"] = [round(x, 3) for x in both]
    figures["second_company_loop_stall_ms"] = stall.longest * 1000
    figures["builds"] = cache.builds
    figures["rss_two_indexes_mib"] = rss_mib()
    figures["rss_two_indexes_parts_mib"] = rss_parts_mib()
    if store is not None:
        figures["snapshot_loads"], figures["child_builds"] = store.loads, store.child_builds
    if quick:
        await engine.dispose()
        return figures
    if hasattr(cache, "warm"):  # start-up warm-up (a background task), then the first message
        warmed = KnowledgeIndexCache(snapshots=store)
        started = time.perf_counter()
        with StallMeter() as stall:
            await asyncio.create_task(warmed.warm(sessions, companies[:1]))
        figures["warm_up_at_start_s"] = time.perf_counter() - started
        figures["warm_up_loop_stall_ms"] = stall.longest * 1000
        started = time.perf_counter()
        async with sessions() as session:
            index = await warmed.get(session, companies[0])
            understand(first_text, index=index, state=DialogueState())
        figures["first_message_after_warm_up_s"] = time.perf_counter() - started
        figures["index_approx_mib"] = index.approx_bytes / 2**20
        del warmed, index

    async with sessions() as session:
        index = await cache.get(session, companies[0])
    names = [item.name for item in index.items()]
    rng = random.Random(seed)
    sample = queries(names, rng, count)
    search_ms: dict[str, list[float]] = {}
    understand_ms: dict[str, list[float]] = {}
    search_cpu: dict[str, list[float]] = {}
    understand_cpu: dict[str, list[float]] = {}
    found = 0
    for kind, text in sample:
        started, cpu = time.perf_counter(), time.thread_time()
        hits = index.search_items(text)
        search_ms.setdefault(kind, []).append((time.perf_counter() - started) * 1000)
        search_cpu.setdefault(kind, []).append((time.thread_time() - cpu) * 1000)
        found += bool(hits)
        state = DialogueState()
        started, cpu = time.perf_counter(), time.thread_time()
        understand(text, index=index, state=state)
        understand_ms.setdefault(kind, []).append((time.perf_counter() - started) * 1000)
        understand_cpu.setdefault(kind, []).append((time.thread_time() - cpu) * 1000)
    figures["queries"] = len(sample)
    figures["queries_with_hits"] = found
    tables = (("search", search_ms), ("understand", understand_ms), ("search_cpu", search_cpu),
              ("understand_cpu", understand_cpu))
    for label, table in tables:
        every = [x for values in table.values() for x in values]
        figures[f"{label}_p50_ms"], figures[f"{label}_p99_ms"] = pct(every, 50), pct(every, 99)
        figures[f"{label}_max_ms"] = max(every)
        for kind, values in sorted(table.items()):
            figures[f"{label}_{kind}_p50_p99_ms"] = [round(pct(values, 50), 2), round(pct(values, 99), 2)]

    from knowledge.search import KnowledgeIndex

    views, faq = index.items(), index.faq()
    started, cpu = time.perf_counter(), time.process_time()
    KnowledgeIndex.build(company_id=companies[0].id, items=views, faq=faq)
    figures["build_only_s"] = time.perf_counter() - started
    figures["build_only_cpu_s"] = time.process_time() - cpu
    import tracemalloc

    del index
    tracemalloc.start()
    base, _ = tracemalloc.get_traced_memory()
    built = KnowledgeIndex.build(company_id=companies[0].id, items=views, faq=faq)
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    figures["traced_index_mib"] = (current - base) / 2**20
    figures["traced_build_peak_mib"] = (peak - base) / 2**20
    del built
    if mode == "snapshot":
        from knowledge.snapshot import load_snapshot

        company = companies[0]
        tracemalloc.start()
        base, _ = tracemalloc.get_traced_memory()
        loaded = load_snapshot(data_dir=data_dir, tenant_id=company.tenant_id, company_id=company.id,
                               kb_version=company.kb_version)
        current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        figures["traced_loaded_index_mib"] = (current - base) / 2**20
        figures["traced_load_peak_mib"] = (peak - base) / 2**20
        del loaded
        cpu = time.process_time()
        load_snapshot(data_dir=data_dir, tenant_id=company.tenant_id, company_id=company.id,
                      kb_version=company.kb_version)
        figures["load_snapshot_only_cpu_s"] = time.process_time() - cpu
    await engine.dispose()
    return figures


# --- main ------------------------------------------------------------------------------------------


async def _pg(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def report(imported: dict, worker: dict) -> None:
    def line(label: str, value: object) -> None:
        if isinstance(value, float):
            value = f"{value:.3f}" if value < 10 else f"{value:.1f}"
        print(f"  {label:42} {value}")

    print(f"catalogue: {imported['rows']} rows ({imported['file_mib']} MiB CSV) -> {imported['items']} items, "
          f"{imported['variants']} variants")
    print("import:")
    for key in ("parse_s", "parse_cpu_s", "import_write_s", "import_s", "import_cpu_s", "reimport_s", "reimport_cpu_s",
                "snapshot_build_s", "snapshot_build_cpu_s", "snapshot_mib"):
        if key in imported:
            line(key, imported[key])
    print("worker (fresh process):")
    for key, value in worker.items():
        line(key, value)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark (or, with ``--worker``, its worker half) and print its figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000, help="rows of the owner sheet, header included")
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--sqlite", action="store_true", help="embedded SQLite instead of PostgreSQL")
    parser.add_argument("--before", action="store_true",
                        help="the code before snapshots: one worker, building (no snapshot figures)")
    parser.add_argument("--worker", nargs=4, metavar=("URL", "COMPANIES", "MODE", "DATA_DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        url, companies, mode, data_dir = args.worker
        figures = asyncio.run(worker_phase(url, companies.split(","), args.seed, args.queries, mode, Path(data_dir)))
        print(json.dumps(figures))
        return 0

    from core.migrate import upgrade

    with tempfile.TemporaryDirectory() as tmp:
        name = f"bench_catalogue_{uuid.uuid4().hex[:8]}"
        url = f"sqlite+aiosqlite:///{tmp}/bench.db" if args.sqlite else f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
        if not args.sqlite:
            asyncio.run(_pg(f'CREATE DATABASE "{name}"'))
        try:
            upgrade(url)
            imported = asyncio.run(import_phase(url, args.rows, args.seed))
            data_dir = Path(tmp) / "data"
            if not args.before:
                imported.update(asyncio.run(snapshot_phase(url, imported["companies"], data_dir)))

            def worker_process(mode: str, directory: Path) -> dict:
                print(f"database: {url.split('://')[0]}; starting a fresh worker process ({mode})", file=sys.stderr)
                child = subprocess.run(
                    [sys.executable, __file__, "--queries", str(args.queries), "--seed", str(args.seed),
                     "--worker", url, ",".join(imported["companies"]), mode, str(directory)],
                    capture_output=True, text=True)
                if child.returncode:
                    sys.stderr.write(child.stderr)
                    raise SystemExit(f"the worker phase failed (exit status {child.returncode})")
                return json.loads(child.stdout.strip().splitlines()[-1])

            if args.before:
                worker = worker_process("build", data_dir)
                others = []
            else:
                worker = worker_process("snapshot", data_dir)
                others = [worker_process("build-quick", data_dir), worker_process("child-quick", Path(tmp) / "empty")]
        finally:
            if not args.sqlite:
                asyncio.run(_pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    print(f"database: {url.split('://')[0]}")
    report(imported, worker)
    for other in others:
        print(f"worker (fresh process, {other['mode']}: first messages only):")
        for key, value in other.items():
            print(f"  {key:42} {value:.3f}" if isinstance(value, float) else f"  {key:42} {value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
