"""Knowledge-index snapshots (issue 10): built once per (tenant, company, kb_version), loaded by every
worker instead of building; stale, corrupt and foreign snapshots are never served."""

from __future__ import annotations

import logging
import shutil
import uuid
from pathlib import Path

import pytest
import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import knowledge.import_jobs
import knowledge.search
from core.accounts import create_company, create_tenant
from core.models import Company
from core.storage import company_dir, remove_tree
from knowledge.import_jobs import create_import_job, run_import_job, save_upload_bytes, upload_path
from knowledge.importer import import_knowledge
from knowledge.search import KnowledgeIndex, KnowledgeIndexCache, build_index
from knowledge.snapshot import (
    SnapshotError,
    SnapshotStore,
    load_snapshot,
    save_snapshot,
    snapshot_path,
    snapshot_root,
)

Sessions = async_sessionmaker[AsyncSession]

CATALOGUE = """Name,Category,Size,Price,Stock,Description
Classic Varsity Top,Tops,Small,25.00,4,Soft striped cotton top
Classic Varsity Top,Tops,Medium,25.00,2,Soft striped cotton top
Classic Varsity Top,Tops,Large,27.00,0,Soft striped cotton top
Black Beanbag,Home,,80.00,3,A large bean bag for the living room
Букет весенний,Цветы,,1500.00,5,Тюльпаны и ромашки
Корзина роз,Цветы,,3200.00,1,Двадцать пять красных роз
Wool Scarf,Accessories,,15.00,9,Warm knitted scarf
"""
FAQ = """Question,Answer
How long does delivery take?,Two days in the city.
Как оплатить заказ?,Картой или наличными.
"""
QUERIES = ("varsity top", "clasic varsity", "varsitytop", "bean bag", "букет", "корзину роз", "scarf please",
           "how long does delivery take", "как оплатить", "qwertyuiop", "medium top", "large")


async def _shop(sessionmaker: Sessions, slug: str, catalogue: str = CATALOGUE) -> Company:
    async with sessionmaker() as s, s.begin():
        tenant = await create_tenant(s, name=slug.title(), slug=slug)
        company = await create_company(s, tenant_id=tenant.id, slug=slug, name=slug.title())
        await import_knowledge(s, company=company, data=catalogue.encode(), filename="catalogue.csv")
        await import_knowledge(s, company=company, data=FAQ.encode(), filename="faq.csv")
    async with sessionmaker() as s:
        fresh = await s.get(Company, company.id)
        assert fresh is not None
        return fresh


async def _built(sessionmaker: Sessions, company: Company) -> KnowledgeIndex:
    async with sessionmaker() as s:
        return await build_index(s, company)


def _answers(index: KnowledgeIndex) -> list[object]:
    top = index.search_items("varsity top")[0].item_id
    return ([index.search_items(q) for q in QUERIES] + [index.search_faq(q) for q in QUERIES]
            + [index.match_variant(top, q) for q in ("medium", "M", "large please", "xl")]
            + [index.items(), index.faq(), index.has_services, index.name_stems, index.knows_word("ромашка")])


def _store(data_dir: Path) -> SnapshotStore:
    return SnapshotStore(data_dir=data_dir, min_items=0)


async def test_a_loaded_snapshot_answers_like_the_built_index(sessionmaker: Sessions, tmp_path: Path) -> None:
    company = await _shop(sessionmaker, "acme")
    built = await _built(sessionmaker, company)
    path = save_snapshot(built, data_dir=tmp_path, tenant_id=company.tenant_id, kb_version=company.kb_version)
    assert path == snapshot_path(tmp_path, company.tenant_id, company.id, company.kb_version)
    assert path.is_relative_to(company_dir(tmp_path, company.tenant_id, company.id))
    loaded = load_snapshot(data_dir=tmp_path, tenant_id=company.tenant_id, company_id=company.id,
                           kb_version=company.kb_version)
    assert loaded is not None
    assert _answers(loaded) == _answers(built)
    assert built.search_items("varsity top")[0].name == "Classic Varsity Top"


async def test_a_fresh_cache_loads_the_snapshot_instead_of_building(
    sessionmaker: Sessions, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    company = await _shop(sessionmaker, "acme")
    first = KnowledgeIndexCache(snapshots=_store(tmp_path))
    async with sessionmaker() as s:
        built = await first.get(s, company)
    assert first.builds == 1 and snapshot_path(tmp_path, company.tenant_id, company.id, company.kb_version).is_dir()

    async def no_build(*_args: object, **_kwargs: object) -> KnowledgeIndex:
        raise AssertionError("a snapshot was there: nothing should be built")

    monkeypatch.setattr(knowledge.search, "build_index", no_build)
    store = _store(tmp_path)
    fresh = KnowledgeIndexCache(snapshots=store)  # another worker process, after a restart
    async with sessionmaker() as s:
        loaded = await fresh.get(s, company)
    assert (fresh.builds, store.loads) == (0, 1)
    assert _answers(loaded) == _answers(built)


async def test_a_stale_version_is_ignored_and_deleted_once_the_new_one_is_saved(
    sessionmaker: Sessions, tmp_path: Path
) -> None:
    company = await _shop(sessionmaker, "acme")
    old_version = company.kb_version
    save_snapshot(await _built(sessionmaker, company), data_dir=tmp_path, tenant_id=company.tenant_id,
                  kb_version=old_version)
    async with sessionmaker() as s, s.begin():
        current = await s.get(Company, company.id)
        assert current is not None
        await import_knowledge(s, company=current, data=b"Name,Price\nRain Jacket,60.00\n", filename="more.csv")
    async with sessionmaker() as s:
        current = await s.get(Company, company.id)
    assert current is not None and current.kb_version > old_version
    store = _store(tmp_path)
    cache = KnowledgeIndexCache(snapshots=store)
    async with sessionmaker() as s:
        index = await cache.get(s, current)
    assert (cache.builds, store.loads) == (1, 0)  # the old snapshot was not served
    assert [h.name for h in index.search_items("rain jacket")] == ["Rain Jacket"]
    versions = sorted(p.name for p in snapshot_root(tmp_path, company.tenant_id, company.id).glob("v*"))
    assert versions == [f"v{current.kb_version}"]


@pytest.mark.parametrize("damage", ["truncate_meta", "truncate_array", "garbage_meta", "missing_model"])
async def test_a_corrupt_snapshot_is_logged_and_rebuilt(
    sessionmaker: Sessions, tmp_path: Path, damage: str
) -> None:
    company = await _shop(sessionmaker, "acme")
    built = await _built(sessionmaker, company)
    path = save_snapshot(built, data_dir=tmp_path, tenant_id=company.tenant_id, kb_version=company.kb_version)
    if damage == "truncate_meta":
        data = (path / "meta.msgpack").read_bytes()
        (path / "meta.msgpack").write_bytes(data[: len(data) // 2])
    elif damage == "truncate_array":
        data = (path / "doc_terms.npy").read_bytes()
        (path / "doc_terms.npy").write_bytes(data[:-8])
    elif damage == "garbage_meta":
        (path / "meta.msgpack").write_bytes(b"\x93\x01\x02" + bytes(range(256)))
    else:
        shutil.rmtree(path / "full")
    with pytest.raises(SnapshotError):
        load_snapshot(data_dir=tmp_path, tenant_id=company.tenant_id, company_id=company.id,
                      kb_version=company.kb_version)
    store = _store(tmp_path)
    cache = KnowledgeIndexCache(snapshots=store)
    with structlog.testing.capture_logs() as logs:
        async with sessionmaker() as s:
            index = await cache.get(s, company)
    assert any(e["event"] == "index_snapshot_unusable" and e["log_level"] == "warning" for e in logs)
    assert cache.builds == 1 and _answers(index) == _answers(built)
    # rebuilt and saved again: the next worker loads it
    again = load_snapshot(data_dir=tmp_path, tenant_id=company.tenant_id, company_id=company.id,
                          kb_version=company.kb_version)
    assert again is not None and _answers(again) == _answers(built)


async def test_one_tenants_snapshot_is_never_served_for_another(sessionmaker: Sessions, tmp_path: Path) -> None:
    a = await _shop(sessionmaker, "alpha")
    b = await _shop(sessionmaker, "bravo", catalogue="Name,Price\nSecret Tea,9.00\n")
    save_snapshot(await _built(sessionmaker, a), data_dir=tmp_path, tenant_id=a.tenant_id, kb_version=a.kb_version)
    # A's files end up where B's snapshot would be (a copy, a restored backup, a bug elsewhere)
    target = snapshot_path(tmp_path, b.tenant_id, b.id, b.kb_version)
    target.parent.mkdir(parents=True)
    shutil.copytree(snapshot_path(tmp_path, a.tenant_id, a.id, a.kb_version), target)
    with pytest.raises(SnapshotError, match="not the snapshot of this tenant"):
        load_snapshot(data_dir=tmp_path, tenant_id=b.tenant_id, company_id=b.id, kb_version=b.kb_version)
    # and a tenant id of another tenant never finds A's own snapshot
    assert load_snapshot(data_dir=tmp_path, tenant_id=b.tenant_id, company_id=a.id, kb_version=a.kb_version) is None
    cache = KnowledgeIndexCache(snapshots=_store(tmp_path))
    async with sessionmaker() as s:
        index = await cache.get(s, b)
    assert [i.name for i in index.items()] == ["Secret Tea"]
    assert index.search_items("varsity top") == []


async def test_the_import_job_writes_the_snapshot(
    sessionmaker: Sessions, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(knowledge.import_jobs, "SNAPSHOT_MIN_ITEMS", 3)
    async with sessionmaker() as s, s.begin():
        tenant = await create_tenant(s, name="Acme", slug="acme")
        company = await create_company(s, tenant_id=tenant.id, slug="acme", name="Acme")
    job_id = uuid.uuid4()
    path = upload_path(tmp_path, tenant_id=company.tenant_id, job_id=job_id, filename="catalogue.csv")
    size = save_upload_bytes(CATALOGUE.encode(), path, max_bytes=10**6)
    async with sessionmaker() as s, s.begin():
        await create_import_job(s, company=company, job_id=job_id, filename="catalogue.csv", size_bytes=size)
    outcome = await run_import_job(sessionmaker, job_id=job_id, path=path, snapshot_dir=tmp_path)
    assert outcome.job is not None and outcome.job.status == "done"
    async with sessionmaker() as s:
        current = await s.get(Company, company.id)
    assert current is not None
    loaded = load_snapshot(data_dir=tmp_path, tenant_id=company.tenant_id, company_id=company.id,
                           kb_version=current.kb_version)
    assert loaded is not None
    assert loaded.search_items("varsity top")[0].name == "Classic Varsity Top"


async def test_a_small_catalogue_gets_no_snapshot(sessionmaker: Sessions, tmp_path: Path) -> None:
    company = await _shop(sessionmaker, "acme")
    cache = KnowledgeIndexCache(snapshots=SnapshotStore(data_dir=tmp_path))  # default min_items
    async with sessionmaker() as s:
        await cache.get(s, company)
    assert cache.builds == 1 and not snapshot_root(tmp_path, company.tenant_id, company.id).exists()


async def test_a_read_only_directory_only_means_building(
    sessionmaker: Sessions, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    company = await _shop(sessionmaker, "acme")
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("")  # every path under it fails to be created
    cache = KnowledgeIndexCache(snapshots=_store(blocked))
    with caplog.at_level(logging.WARNING), structlog.testing.capture_logs() as logs:
        async with sessionmaker() as s:
            index = await cache.get(s, company)
    assert cache.builds == 1 and index.search_items("scarf")[0].name == "Wool Scarf"
    assert any(e["event"] == "index_snapshot_not_saved" for e in logs)


async def test_deleting_a_company_deletes_its_snapshots_and_only_its(database_url: str, tmp_path: Path) -> None:
    from tests.test_api import AUTH, make_company, make_settings, running

    async with running(make_settings(database_url, tmp_path)) as env:
        made = [await make_company(env.client, "alpha", slug) for slug in ("a1", "a2")]
        sessionmaker = env.runtime.sessionmaker
        companies = []
        for company_json in made:
            async with sessionmaker() as s, s.begin():
                company = await s.get(Company, uuid.UUID(company_json["id"]))
                assert company is not None
                await import_knowledge(s, company=company, data=CATALOGUE.encode(), filename="catalogue.csv")
            async with sessionmaker() as s:
                company = await s.get(Company, company.id)
            save_snapshot(await _built(sessionmaker, company), data_dir=tmp_path, tenant_id=company.tenant_id,
                          kb_version=company.kb_version)
            companies.append(company)
        a1, a2 = companies
        r = await env.client.delete("/api/v1/tenants/alpha/companies/a1", headers=AUTH)
        assert r.status_code == 200, r.text
        assert any("knowledge-index" in f for f in r.json()["files"])
        assert not snapshot_root(tmp_path, a1.tenant_id, a1.id).exists()
        assert snapshot_path(tmp_path, a2.tenant_id, a2.id, a2.kb_version).is_dir()
        # what a file-level delete of the directory (core.storage) finds too
        removed = remove_tree(company_dir(tmp_path, a2.tenant_id, a2.id), data_dir=tmp_path)
        assert any("knowledge-index" in f for f in removed.files)


async def test_a_miss_builds_in_a_child_process_and_loads_its_snapshot(
    database_url: str, sessionmaker: Sessions, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    company = await _shop(sessionmaker, "acme")
    expected = _answers(await _built(sessionmaker, company))

    async def no_build(*_args: object, **_kwargs: object) -> KnowledgeIndex:
        raise AssertionError("the child process builds, not this one")

    monkeypatch.setattr(knowledge.search, "build_index", no_build)
    store = SnapshotStore(data_dir=tmp_path, database_url=database_url, min_items=0)
    cache = KnowledgeIndexCache(snapshots=store)
    async with sessionmaker() as s:
        index = await cache.get(s, company)
    assert (cache.builds, store.child_builds, store.loads) == (0, 1, 1)
    assert _answers(index) == expected


# --- meta.msgpack in parts: a large snapshot is decoded in short calls ---------------------------------


def test_meta_round_trips_through_parts_and_long_containers_are_split() -> None:
    import io

    import msgpack

    from knowledge.snapshot import CHUNK, read_parts, write_parts

    long_list = [f"item {i}" for i in range(CHUNK * 2 + 5)]
    long_map = {f"stem{i}": i for i in range(CHUNK + 1)}
    value = {"format": 2, "items": {"name": long_list, "price": list(range(CHUNK * 3)), "few": [1, 2]},
             "vocab": [long_map, None, {"short": 1}], "ids": b"\x00" * 64, "rows": [[1, "a", [2, 3]]] * (CHUNK + 1)}
    out = io.BytesIO()
    write_parts(out, value)
    raw = out.getvalue()
    # what one decoding call handles: no object in the stream holds more than CHUNK entries
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
    unpacker.feed(raw)
    objects = list(unpacker)
    assert len(objects) == 1 + 3 + 3 + 2 + 2  # the structure, then the parts of each long container
    assert all(len(o) <= CHUNK for o in objects[1:])
    back = read_parts(raw)
    assert back["items"]["name"] == tuple(long_list) and back["items"]["price"] == tuple(range(CHUNK * 3))
    assert back["items"]["few"] == (1, 2) and back["ids"] == b"\x00" * 64
    assert back["vocab"] == (long_map, None, {"short": 1})
    assert back["rows"] == ((1, "a", (2, 3)),) * (CHUNK + 1)
    with pytest.raises(ValueError, match="left over"):
        read_parts(raw + msgpack.packb(1))
    with pytest.raises(msgpack.OutOfData):
        read_parts(raw[: len(raw) - 10])
    with pytest.raises(TypeError):  # a long map is written as keys and values: string keys only
        write_parts(io.BytesIO(), {"vocab": {i: i for i in range(CHUNK + 1)}})
    with pytest.raises(ValueError, match="extension"):
        read_parts(msgpack.packb([msgpack.ExtType(9, b"\x00\x00\x00\x01")]))


async def test_a_snapshot_of_the_previous_format_is_rebuilt(sessionmaker: Sessions, tmp_path: Path) -> None:
    import msgpack

    company = await _shop(sessionmaker, "acme")
    built = await _built(sessionmaker, company)
    path = save_snapshot(built, data_dir=tmp_path, tenant_id=company.tenant_id, kb_version=company.kb_version)
    from knowledge.snapshot import read_parts

    meta = read_parts((path / "meta.msgpack").read_bytes())
    (path / "meta.msgpack").write_bytes(msgpack.packb({**meta, "format": 1}, use_bin_type=True))  # one object
    with pytest.raises(SnapshotError):
        load_snapshot(data_dir=tmp_path, tenant_id=company.tenant_id, company_id=company.id,
                      kb_version=company.kb_version)
    cache = KnowledgeIndexCache(snapshots=_store(tmp_path))
    async with sessionmaker() as s:
        index = await cache.get(s, company)
    assert cache.builds == 1 and _answers(index) == _answers(built)


async def test_a_large_index_is_frozen_without_a_full_collection(
    sessionmaker: Sessions, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A full collection walks the whole heap holding the GIL: in a serving process it stalled every
    # tenant's messages for 70-280 ms after each large index load. The young generations suffice.
    import gc

    company = await _shop(sessionmaker, "acme")
    monkeypatch.setattr(knowledge.search, "FREEZE_MIN_ITEMS", 1)
    collections: list[int] = []

    def seen(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            collections.append(info["generation"])

    gc.unfreeze()
    gc.collect()  # counts start at zero: a small build is far from an automatic full collection
    before = gc.get_freeze_count()
    gc.callbacks.append(seen)
    try:
        async with sessionmaker() as s:
            index = await KnowledgeIndexCache().get(s, company)
        frozen = gc.get_freeze_count()
    finally:
        gc.callbacks.remove(seen)
        gc.unfreeze()
    assert index.item_count >= 1 and frozen > before  # the index is out of the collector's way
    assert 2 not in collections, collections
