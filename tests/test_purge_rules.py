"""``core.purge`` on tables the schema does not have yet (made here, in their own ``MetaData``): a
row that only points at a deleted company through a nullable foreign key without ``ON DELETE``
stays, with the key set to NULL, instead of blocking the deletion; a row hanging off a company row
through a NOT NULL key goes with it. On SQLite and PostgreSQL."""

from __future__ import annotations

import uuid

from sqlalchemy import Column, ForeignKey, MetaData, String, Table, Uuid, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from core.accounts import create_company, create_tenant
from core.models import Base
from core.purge import delete_rows, ownership


def later_tables() -> tuple[MetaData, Table, Table]:
    meta = MetaData()
    for name in ("tenants", "companies"):
        Base.metadata.tables[name].to_metadata(meta)
    favourite = Table(  # a tenant-level row that merely names a company (no ON DELETE)
        "x_favourites", meta,
        Column("id", Uuid, primary_key=True),
        Column("tenant_id", ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False),
        Column("favourite_company", ForeignKey("companies.id"), nullable=True),
    )
    note = Table(  # no tenant_id/company_id: owned through a NOT NULL key to a company row
        "x_company_notes", meta,
        Column("id", Uuid, primary_key=True),
        Column("owner_company", ForeignKey("companies.id"), nullable=False),
        Column("text", String(50), nullable=False),
    )
    return meta, favourite, note


async def test_nullable_restricting_keys_are_detached_and_not_null_keys_are_followed(
    engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    meta, favourite, note = later_tables()
    async with engine.begin() as conn:
        await conn.run_sync(lambda c: meta.create_all(c, tables=[favourite, note]))
    try:
        async with sessionmaker() as s, s.begin():
            tenant = await create_tenant(s, name="Acme", slug="acme")
            gone = await create_company(s, tenant_id=tenant.id, slug="gone", name="Gone")
            kept = await create_company(s, tenant_id=tenant.id, slug="kept", name="Kept")
            fav_id, kept_fav_id = uuid.uuid4(), uuid.uuid4()
            await s.execute(insert(favourite), [
                {"id": fav_id, "tenant_id": tenant.id, "favourite_company": gone.id},
                {"id": kept_fav_id, "tenant_id": tenant.id, "favourite_company": kept.id}])
            await s.execute(insert(note), [{"id": uuid.uuid4(), "owner_company": gone.id, "text": "gone's"},
                                           {"id": uuid.uuid4(), "owner_company": kept.id, "text": "kept's"}])
        conditions = ownership(kind="company", tenant_id=tenant.id, company_id=gone.id, metadata=meta)
        assert {t.name for t in conditions} == {"companies", "x_company_notes"}
        async with sessionmaker() as s, s.begin():
            removed = await delete_rows(s, conditions)
        assert removed == {"companies": 1, "x_company_notes": 1}
        async with sessionmaker() as s:
            favourites = dict((await s.execute(select(favourite.c.id, favourite.c.favourite_company))).all())
            assert favourites == {fav_id: None, kept_fav_id: kept.id}
            assert list((await s.execute(select(note.c.text))).scalars()) == ["kept's"]
    finally:
        async with engine.begin() as conn:
            await conn.run_sync(lambda c: meta.drop_all(c, tables=[note, favourite]))
