"""Large catalogues (issue 10): the index cache per tenant, company and version, one shared build for
concurrent first requests, the bounded fuzzy fallback, what the engine asks per message precomputed,
and the bulk importer (ids kept on re-import, nothing written on error) on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import knowledge.search as search
import knowledge.writer as writer
from core.accounts import create_company, create_tenant
from core.models import Company, KnowledgeImport, KnowledgeItem, KnowledgeVariant
from knowledge.importer import import_knowledge
from knowledge.search import ItemView, KnowledgeIndex, KnowledgeIndexCache

Sessions = async_sessionmaker[AsyncSession]

SHOP = (
    b"Name,Size,Price,Description\n"
    b"Classic Varsity Top,Small,60,A cotton top\n"
    b"Classic Varsity Top,Medium,60,A cotton top\n"
    b"Black Beanbag,,120,A soft bag to sit on\n"
    b"Ocean Blue Shirt,,50,Linen shirt\n"
)


async def _company(sessions: Sessions, slug: str, *, type: str = "product") -> Company:
    async with sessions() as session, session.begin():
        tenant = await create_tenant(session, name=slug.title(), slug=f"t-{slug}")
        return await create_company(session, tenant_id=tenant.id, slug=slug, name=slug.title(), type=type)


async def _import(sessions: Sessions, company_id: uuid.UUID, data: bytes, filename: str = "sheet.csv") -> Company:
    async with sessions() as session, session.begin():
        company = (await session.execute(select(Company).where(Company.id == company_id))).scalar_one()
        await import_knowledge(session, company=company, data=data, filename=filename)
    return company


async def _fresh(sessions: Sessions, company_id: uuid.UUID) -> Company:
    async with sessions() as session:
        return (await session.execute(select(Company).where(Company.id == company_id))).scalar_one()


async def _index(sessions: Sessions, cache: KnowledgeIndexCache, company_id: uuid.UUID) -> KnowledgeIndex:
    company = await _fresh(sessions, company_id)
    async with sessions() as session:
        return await cache.get(session, company)


async def _ids(sessions: Sessions, company: Company) -> dict[str, uuid.UUID]:
    async with sessions() as session:
        rows = await session.execute(
            select(KnowledgeItem.name, KnowledgeItem.id).where(
                KnowledgeItem.tenant_id == company.tenant_id, KnowledgeItem.company_id == company.id
            )
        )
        return {name: item_id for name, item_id in rows.all()}


async def _counts(sessions: Sessions, company: Company) -> tuple[int, int, int, int]:
    async with sessions() as session:
        counts = []
        for model in (KnowledgeItem, KnowledgeVariant, KnowledgeImport):
            query = select(func.count()).select_from(model).where(model.company_id == company.id)  # type: ignore[attr-defined]
            counts.append((await session.execute(query)).scalar_one())
        version = (await session.execute(select(Company.kb_version).where(Company.id == company.id))).scalar_one()
        return counts[0], counts[1], counts[2], version


def _sheet(names: list[str]) -> bytes:
    return ("Name,Price\n" + "".join(f"{name},{10 + n % 90}\n" for n, name in enumerate(names))).encode()


# --- the cache ---------------------------------------------------------------------------------------


async def test_reimport_gives_a_new_index_and_other_tenants_never_see_it(sessionmaker: Sessions) -> None:
    shop = await _company(sessionmaker, "shop")
    other = await _company(sessionmaker, "other")
    await _import(sessionmaker, shop.id, SHOP)
    await _import(sessionmaker, other.id, SHOP)  # the same file: same names, other tenant
    cache = KnowledgeIndexCache()
    first = await _index(sessionmaker, cache, shop.id)
    theirs = await _index(sessionmaker, cache, other.id)
    assert theirs is not first and cache.builds == 2
    assert {i.id for i in first.items()}.isdisjoint({i.id for i in theirs.items()})
    assert {i.tenant_id for i in theirs.items()} == {other.tenant_id}

    await _import(sessionmaker, shop.id, SHOP + b"Gift Card,,25,\n")
    second = await _index(sessionmaker, cache, shop.id)
    assert second is not first and cache.builds == 3
    assert [h.name for h in second.search_items("gift card")] == ["Gift Card"]
    assert first.search_items("gift card") == []  # the old version is a snapshot
    # ids survive the re-import, so the new index names the same rows
    assert {i.name: i.id for i in first.items()}.items() <= {i.name: i.id for i in second.items()}.items()
    # the other company still has its own index, without the new item
    assert await _index(sessionmaker, cache, other.id) is theirs and cache.builds == 3
    assert theirs.search_items("gift card") == []
    assert len(cache) == 2  # the stale version of the shop was evicted


async def test_concurrent_first_requests_build_once(sessionmaker: Sessions) -> None:
    shop = await _company(sessionmaker, "shop")
    await _import(sessionmaker, shop.id, SHOP)
    cache = KnowledgeIndexCache()
    indexes = await asyncio.gather(*(_index(sessionmaker, cache, shop.id) for _ in range(5)))
    assert cache.builds == 1
    assert all(index is indexes[0] for index in indexes)
    assert cache.cached(await _fresh(sessionmaker, shop.id)) is indexes[0]


async def test_cache_memory_budget_evicts_least_recently_used(sessionmaker: Sessions) -> None:
    a, b = await _company(sessionmaker, "a"), await _company(sessionmaker, "b")
    for company in (a, b):
        await _import(sessionmaker, company.id, SHOP)
    cache = KnowledgeIndexCache(max_bytes=1)  # smaller than any index: only the newest one stays
    index_a = await _index(sessionmaker, cache, a.id)
    assert index_a.approx_bytes > 1 and len(cache) == 1
    await _index(sessionmaker, cache, b.id)
    assert len(cache) == 1 and cache.cached(await _fresh(sessionmaker, a.id)) is None
    assert cache.cached(await _fresh(sessionmaker, b.id)) is not None


async def test_warm_builds_indexes_before_the_first_message(sessionmaker: Sessions) -> None:
    a, b = await _company(sessionmaker, "a"), await _company(sessionmaker, "b")
    for company in (a, b):
        await _import(sessionmaker, company.id, SHOP)
    cache = KnowledgeIndexCache()
    companies = [await _fresh(sessionmaker, a.id), await _fresh(sessionmaker, b.id)]
    assert await cache.warm(sessionmaker, companies) == 2
    assert cache.builds == 2
    await _index(sessionmaker, cache, a.id)
    assert cache.builds == 2  # the first message found it built


# --- what the engine asks per message ------------------------------------------------------------------


def _view(name: str, kind: str, position: int) -> ItemView:
    return ItemView(id=uuid.uuid4(), tenant_id=None, company_id=None, kind=kind, name=name, description="",
                    category=None, price_minor=100, currency="USD", stock=None, image_url=None,
                    duration_minutes=30 if kind == "service" else None, handle=None, sku=None, position=position,
                    attributes={})


def test_services_and_names_are_precomputed() -> None:
    company = uuid.uuid4()
    products = [_view("Red Rose", "product", 0), _view("Tulip Bouquet", "product", 1)]
    salon = [_view("Haircut", "service", 0), _view("Colour", "service", 1)]
    hybrid = [products[0], _view("Flower Workshop", "service", 2)]
    shop = KnowledgeIndex.build(company_id=company, items=products, faq=[])
    assert (shop.has_services, shop.services_only, shop.service_ids) == (False, False, ())
    assert {"rose", "tulip", "bouquet"} <= shop.name_stems
    services = KnowledgeIndex.build(company_id=company, items=salon, faq=[])
    assert services.has_services and services.services_only
    assert services.service_ids == (salon[0].id, salon[1].id)
    mixed = KnowledgeIndex.build(company_id=company, items=hybrid, faq=[])
    assert mixed.has_services and not mixed.services_only and mixed.service_ids == (hybrid[1].id,)
    empty = KnowledgeIndex.build(company_id=company, items=[], faq=[])
    assert not empty.has_services and empty.item_count == 0 and shop.item_count == 2


# --- bounded fuzzy fallback -----------------------------------------------------------------------------


def _big_catalogue(extra: list[str]) -> tuple[KnowledgeIndex, dict[str, uuid.UUID]]:
    # Thousands of names sharing letters with the queries below, so a bounded candidate list matters.
    names = [f"Classic Shirt {n}" for n in range(1500)] + [f"Beach Towel {n}" for n in range(1500)] + extra
    views = [_view(name, "product", n) for n, name in enumerate(names)]
    return KnowledgeIndex.build(company_id=uuid.uuid4(), items=views, faq=[]), {v.name: v.id for v in views}


def test_fuzzy_fallback_scores_a_bounded_number_of_names(monkeypatch: pytest.MonkeyPatch) -> None:
    index, ids = _big_catalogue(["Classic Varsity Top", "Black Beanbag"])
    sizes: list[int] = []
    extract = search.process.extract

    def counting(query, choices, **kwargs):  # noqa: ANN001, ANN202 - a spy on rapidfuzz
        sizes.append(len(choices))
        return extract(query, choices, **kwargs)

    monkeypatch.setattr(search.process, "extract", counting)
    # glued or split words and typos still reach the right name among 3,002
    assert [h.item_id for h in index.search_items("varsitytop")][:1] == [ids["Classic Varsity Top"]]
    assert [h.item_id for h in index.search_items("clasicvarsitytop")][:1] == [ids["Classic Varsity Top"]]
    assert [h.item_id for h in index.search_items("bean bag")][:1] == [ids["Black Beanbag"]]
    assert index.search_items("qwertyuiop zxcvbnm") == []
    assert index.search_items("asdfghjkl") == []
    assert sizes and max(sizes) <= search._FUZZY_CANDIDATES  # never all 3,002 names


def test_typo_correction_still_works_in_a_large_catalogue() -> None:
    index, ids = _big_catalogue(["Leather Biker Jacket", "Striped Silk Blouse"])
    assert [h.item_id for h in index.search_items("lether biker jaket")][:1] == [ids["Leather Biker Jacket"]]
    assert [h.item_id for h in index.search_items("stripped silk bluse")][:1] == [ids["Striped Silk Blouse"]]
    assert index.search_items("xqzvbw") == []


# --- bulk import ------------------------------------------------------------------------------------------


async def test_bulk_reimport_keeps_ids_across_thousands_of_rows(sessionmaker: Sessions) -> None:
    shop = await _company(sessionmaker, "shop")
    names = [f"Product {n:05d}" for n in range(6_000)]
    await _import(sessionmaker, shop.id, _sheet(names))
    before = await _ids(sessionmaker, shop)
    assert len(before) == 6_000
    # keep 500 (in another order, one renamed in case and spacing), drop 5,500, add 100
    kept = names[:500][::-1]
    renamed = "product   00007".upper()
    data = _sheet([renamed if n == "Product 00007" else n for n in kept] + [f"New {n}" for n in range(100)])
    await _import(sessionmaker, shop.id, data)
    after = await _ids(sessionmaker, shop)
    assert len(after) == 600
    assert all(after[n] == before[n] for n in kept if n != "Product 00007")
    assert after[renamed] == before["Product 00007"]  # matched by name, whatever the case and spacing
    assert not set(after.values()) & {before[n] for n in names[500:]}
    assert await _counts(sessionmaker, shop) == (600, 0, 2, 2)
    async with sessionmaker() as session:
        rows = await session.execute(
            select(KnowledgeItem.name, KnowledgeItem.position).where(KnowledgeItem.company_id == shop.id)
        )
        positions = {name: position for name, position in rows.all()}
    assert positions[kept[0]] == 0 and positions["New 99"] == 599


async def test_bulk_import_writes_nothing_when_the_database_refuses(
    sessionmaker: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop = await _company(sessionmaker, "shop")
    await _import(sessionmaker, shop.id, SHOP)
    before_ids, before = await _ids(sessionmaker, shop), await _counts(sessionmaker, shop)
    real_insert = writer._insert

    async def failing(session, table, rows, prepared):  # noqa: ANN001, ANN202 - fails after the items were written
        if table is KnowledgeVariant.__table__:
            raise RuntimeError("disk full")
        await real_insert(session, table, rows, prepared)

    monkeypatch.setattr(writer, "_insert", failing)
    changed = SHOP.replace(b"Ocean Blue Shirt,,50", b"Ocean Blue Shirt,,55") + b"Scarf,Red,20,\nScarf,Blue,20,\n"
    with pytest.raises(RuntimeError, match="disk full"):
        await _import(sessionmaker, shop.id, changed.replace(b"Black Beanbag,,120,A soft bag to sit on\n", b""))
    assert await _counts(sessionmaker, shop) == before
    assert await _ids(sessionmaker, shop) == before_ids
    async with sessionmaker() as session:
        price = (await session.execute(
            select(KnowledgeItem.price_minor).where(KnowledgeItem.id == before_ids["Ocean Blue Shirt"])
        )).scalar_one()
    assert price == 5000
