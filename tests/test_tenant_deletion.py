"""Deleting a company or a whole tenant (admin API and CLI), on SQLite and PostgreSQL.

Every table of ``Base.metadata`` gets rows of every company (``tests.table_filler``, generic, so a
table added later is covered too), channels are connected at the Telegram and WAHA doubles, and
files lie in the tenants' data directories. Deleting must disconnect the channels at the providers
first, then leave no row of the deleted company/tenant in any table, remove its files, report what
it removed, and leave the other company and the other tenant exactly as they were.
"""

from __future__ import annotations

import json
import os
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import and_, func, select
from typer.testing import CliRunner

from api.cli import CliOptions
from api.cli import app as cli_app
from core.models import Base
from core.order_numbers import order_number_sequence
from tests.doubles.telegram_bot_api import FakeBotAPI
from tests.doubles.waha_server import FakeWaha
from tests.table_filler import FilledRow, fill_company
from tests.test_api import AUTH, EchoResponder, Env, make_company, make_settings, running


@pytest.fixture
async def bot_api() -> AsyncIterator[FakeBotAPI]:
    async with FakeBotAPI() as server:
        yield server


@pytest.fixture
async def waha() -> AsyncIterator[FakeWaha]:
    async with FakeWaha() as server:
        yield server


@pytest.fixture
async def env(database_url: str, tmp_path: Path) -> AsyncIterator[Env]:
    # No background workers: the alert dispatcher would work on the filler's pending alert rows and
    # change the snapshots this test compares.
    async with running(make_settings(database_url, tmp_path / "data", workers_enabled=False)) as e:
        yield e


class World:
    """Two tenants: alpha (companies a1, a2) and beta (b1), each company with every table filled,
    a Telegram inbox each, a WhatsApp inbox for a1, and files in the data directory."""

    def __init__(self, env: Env) -> None:
        self.env = env
        self.companies: dict[str, dict[str, Any]] = {}
        self.rows: dict[str, list[FilledRow]] = {}
        self.inboxes: dict[str, list[str]] = {}
        self.files: dict[str, Path] = {}

    async def build(self, bot_api: FakeBotAPI, waha: FakeWaha) -> None:
        c = self.env.client
        for tenant, company in (("alpha", "a1"), ("alpha", "a2"), ("beta", "b1")):
            self.companies[company] = await make_company(c, tenant, company)
            base = f"/api/v1/tenants/{tenant}/companies/{company}/inboxes"
            r = await c.post(base, json={"kind": "telegram", "credentials": {"bot_token": bot_api.token},
                                         "settings": {"api_base": bot_api.api_base}}, headers=AUTH)
            assert r.status_code == 201, r.text
            self.inboxes[company] = [r.json()["id"]]
        r = await c.post("/api/v1/tenants/alpha/companies/a1/inboxes",
                         json={"kind": "whatsapp_waha", "credentials": {"api_key": waha.api_key},
                               "settings": {"base_url": waha.url, "session": "a1"}}, headers=AUTH)
        assert r.status_code == 201, r.text
        self.inboxes["a1"].append(r.json()["id"])
        tenant_ids = {t["slug"]: t["id"] for t in (await c.get("/api/v1/tenants", headers=AUTH)).json()}
        for company, tenant in (("a1", "alpha"), ("a2", "alpha"), ("b1", "beta")):
            self.companies[company]["tenant_id"] = tenant_ids[tenant]
        rt = self.env.runtime
        for slug, company in self.companies.items():
            async with rt.sessionmaker() as s, s.begin():
                rows, skipped = await fill_company(s, tenant_id=uuid.UUID(company["tenant_id"]),
                                                   company_id=uuid.UUID(company["id"]),
                                                   encrypt=rt.secret_box.encrypt)
            assert skipped == [], f"the filler could not fill {skipped}"
            self.rows[slug] = rows
        data = rt.settings.data_dir
        for slug, company in self.companies.items():
            tenant_dir = data / "tenants" / company["tenant_id"]
            upload = tenant_dir / "companies" / company["id"] / "uploads" / f"{slug}-catalogue.csv"
            upload.parent.mkdir(parents=True, exist_ok=True)
            upload.write_text("handle,title\nshirt,Shirt\n")
            self.files[slug] = upload
            secret = tenant_dir / "secrets" / "smtp.json"
            secret.parent.mkdir(parents=True, exist_ok=True)
            secret.write_text("{}")
            self.files[f"{slug}-tenant"] = secret
        outside = data / "outside.txt"  # a link inside a tenant's directory must not take its target along
        outside.write_text("not the tenant's")
        (data / "tenants" / self.companies["a1"]["tenant_id"] / "link-to-outside").symlink_to(outside)

    async def counts(self, column: str, value: str) -> Counter[str]:
        """Rows per table whose ``column`` is ``value`` (tables without the column are left out)."""
        out: Counter[str] = Counter()
        async with self.env.runtime.sessionmaker() as s:
            for table in Base.metadata.sorted_tables:
                if column in table.c:
                    n = (await s.execute(select(func.count()).select_from(table)
                                         .where(table.c[column] == uuid.UUID(value)))).scalar_one()
                    if n:
                        out[table.name] = n
        return out

    async def exists(self, row: FilledRow) -> bool:
        table = Base.metadata.tables[row.table]
        async with self.env.runtime.sessionmaker() as s:
            where = and_(*(table.c[k] == v for k, v in row.key.items()))
            return (await s.execute(select(func.count()).select_from(table).where(where))).scalar_one() == 1

    async def numbered(self) -> set[str]:
        """The companies whose order-number sequence exists (PostgreSQL; on SQLite there are none)."""
        async with self.env.runtime.sessionmaker() as s:
            if s.bind.dialect.name != "postgresql":
                return set()
            return {key for key, company in self.companies.items() if (await s.execute(
                select(func.to_regclass(order_number_sequence(uuid.UUID(company["id"])))))).scalar_one() is not None}

    async def snapshot(self) -> dict[str, Counter[str]]:
        return {"alpha": await self.counts("tenant_id", self.companies["a1"]["tenant_id"]),
                "beta": await self.counts("tenant_id", self.companies["b1"]["tenant_id"])}


async def test_delete_a_company_then_its_tenant_leaves_no_row_or_file_of_them(
    env: Env, bot_api: FakeBotAPI, waha: FakeWaha
) -> None:
    world = World(env)
    await world.build(bot_api, waha)
    tables_with_tenant = {t.name for t in Base.metadata.sorted_tables if "tenant_id" in t.c}
    before = await world.snapshot()
    # The fixture really put rows of every company into every tenant-owned table.
    assert set(before["beta"]) == tables_with_tenant
    assert (await world.counts("company_id", world.companies["a1"]["id"])).keys() == {
        t.name for t in Base.metadata.sorted_tables if "company_id" in t.c}
    assert all([await world.exists(r) for r in world.rows["a1"]])
    postgres = env.runtime.settings.database_url.startswith("postgresql")
    assert await world.numbered() == ({"a1", "a2", "b1"} if postgres else set())

    # Another tenant cannot delete alpha's company: its path answers 404 and nothing changes.
    assert (await env.client.delete("/api/v1/tenants/beta/companies/a1", headers=AUTH)).status_code == 404
    assert (await env.client.delete("/api/v1/tenants/alpha/companies/a1")).status_code == 401
    assert await world.snapshot() == before

    r = await env.client.delete("/api/v1/tenants/alpha/companies/a1", headers=AUTH)
    assert r.status_code == 200, r.text
    report = r.json()

    # Channels first: Telegram's webhook removed, the WhatsApp session logged out and stopped.
    assert len(bot_api.accepted("deleteWebhook")) == 1
    assert [(q.method, q.path) for q in waha.requests if q.path.endswith(("/logout", "/stop"))] == [
        ("POST", "/api/sessions/a1/logout"), ("POST", "/api/sessions/a1/stop")]
    by_inbox = {c["inbox_id"]: c for c in report["channels"]}
    assert [(by_inbox[i]["kind"], by_inbox[i]["error"]) for i in world.inboxes["a1"]] == [
        ("telegram", None), ("whatsapp_waha", None)]

    # No row names the company any more, and every row hanging off one of its rows is gone.
    assert await world.counts("company_id", world.companies["a1"]["id"]) == Counter()
    for row in world.rows["a1"]:
        assert await world.exists(row) is not row.owned, row
    # The other company and the other tenant are untouched.
    assert all([await world.exists(r) for r in world.rows["a2"] + world.rows["b1"]])
    after = await world.snapshot()
    assert after["beta"] == before["beta"]
    removed = before["alpha"] - after["alpha"]
    assert report["rows"] == dict(removed) and report["total_rows"] == sum(removed.values())
    assert report["rows"]["companies"] == 1 and report["rows"]["messages"] >= 1
    # Its files are gone, the rest stay.
    data = env.runtime.settings.data_dir
    assert not world.files["a1"].exists() and world.files["a2"].exists() and world.files["a1-tenant"].exists()
    assert report["files"] == [str(world.files["a1"].relative_to(data))]
    assert report["bytes"] == len("handle,title\nshirt,Shirt\n")
    assert (await env.client.get("/api/v1/tenants/alpha/companies/a1/inboxes", headers=AUTH)).status_code == 404
    assert await world.numbered() == ({"a2", "b1"} if postgres else set())  # its order numbers' sequence too

    # Now the whole tenant.
    r = await env.client.delete("/api/v1/tenants/alpha", headers=AUTH)
    assert r.status_code == 200, r.text
    report = r.json()
    assert len(bot_api.accepted("deleteWebhook")) == 2  # a2's bot; a1's inboxes are already gone
    assert await world.counts("tenant_id", world.companies["a1"]["tenant_id"]) == Counter()
    for row in world.rows["a1"] + world.rows["a2"]:
        # Accounts are people, not tenant data: a user (and their sign-in codes and refresh tokens)
        # outlives a tenant they owned; their ownership row (tenant_owners) goes with the tenant.
        personal = not row.owned and "tenant_id" not in Base.metadata.tables[row.table].c
        assert await world.exists(row) is personal, row
    assert all([await world.exists(r) for r in world.rows["b1"]])
    assert (await world.snapshot())["beta"] == before["beta"]
    assert report["rows"] == dict(after["alpha"]) | {"tenants": 1}
    alpha_dir = data / "tenants" / world.companies["a1"]["tenant_id"]
    assert not alpha_dir.exists() and not os.path.lexists(alpha_dir / "link-to-outside")
    assert (data / "outside.txt").read_text() == "not the tenant's"
    assert sorted(report["files"]) == sorted(
        str(p.relative_to(data)) for p in (world.files["a2"], world.files["a1-tenant"], alpha_dir / "link-to-outside"))
    assert world.files["b1"].exists() and world.files["b1-tenant"].exists()
    assert await world.numbered() == ({"b1"} if postgres else set())
    listed = (await env.client.get("/api/v1/tenants", headers=AUTH)).json()
    assert [t["slug"] for t in listed] == ["beta"]
    assert (await env.client.delete("/api/v1/tenants/alpha", headers=AUTH)).status_code == 404


def test_cli_deletes_a_company_and_a_tenant_with_a_report(database_url: str, tmp_path: Path) -> None:
    env = {"CHATCOMMERCE_DATABASE_URL": database_url, "CHATCOMMERCE_SECRET_KEY": "test-secret-key",
           "CHATCOMMERCE_DATA_DIR": str(tmp_path / "data"), "CHATCOMMERCE_PUBLIC_BASE_URL": "http://testserver"}
    runner = CliRunner()

    def run(*args: str, ok: bool = True, input: str | None = None) -> Any:
        result = runner.invoke(cli_app, list(args), env=env, input=input, obj=CliOptions(responder=EchoResponder()))
        if ok:
            assert result.exit_code == 0, (result.stdout, result.stderr)
        return result

    run("tenants", "create", "--name", "Acme", "--slug", "acme")
    run("companies", "create", "--tenant", "acme", "--slug", "shop-1", "--name", "Shop 1")
    run("companies", "create", "--tenant", "acme", "--slug", "shop-2", "--name", "Shop 2")
    run("chat", "--company", "shop-1", "--contact", "dev-1", input="hello\n")

    refused = run("companies", "delete", "--company", "shop-1", ok=False)
    assert refused.exit_code == 1 and "--yes" in refused.stderr
    out = run("companies", "delete", "--company", "shop-1", "--yes").stdout
    lines = out.splitlines()
    assert lines[0].startswith("deleted company shop-1: ") and lines[1] == "table\trows"
    table_rows = dict(line.split("\t") for line in lines[2:])
    assert table_rows["companies"] == "1" and table_rows["messages"] == "2" and table_rows["inboxes"] == "2"
    companies = json.loads(run("companies", "list", "--tenant", "acme", "--json").stdout)
    assert [c["slug"] for c in companies] == ["shop-2"]
    report = json.loads(run("tenants", "delete", "acme", "--yes", "--json").stdout)
    assert report["deleted"] == "tenant" and report["rows"]["tenants"] == 1 and report["rows"]["companies"] == 1
    assert json.loads(run("tenants", "list", "--json").stdout) == []
    missing = run("tenants", "delete", "acme", "--yes", ok=False)
    assert missing.exit_code == 1 and "not found" in missing.stderr
