"""Knowledge-base imports as background jobs: limits that refuse hostile files early (naming the
limit), the job's life (queued → running → done / failed) through the admin API, the CLI and the job
layer, and the server staying responsive while an import runs — on SQLite and PostgreSQL.

Every file is made here (openpyxl / plain text); nothing is read from ../shared.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import uuid
import zipfile
from datetime import timedelta
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.accounts import create_company, create_tenant
from core.models import Company, ImportJob, KnowledgeImport, KnowledgeItem
from core.timeutil import utcnow
from knowledge.import_jobs import (
    STALE_AFTER,
    create_import_job,
    fail_stale_import_jobs,
    run_import_job,
    save_upload_bytes,
    upload_path,
)
from knowledge.importer import import_knowledge, parse_knowledge_file
from knowledge.limits import ImportLimitError, ImportLimits
from tests.test_api import AUTH, Env, items, make_company, make_settings, running, upload, wait_for_job
from tests.test_cli import Cli

Sessions = async_sessionmaker[AsyncSession]
HEADER = ["Name", "Price", "Stock"]


def product_csv(rows: int, *, bad_price_at: int | None = None) -> bytes:
    """An owner's product sheet: a header and ``rows`` products (spreadsheet row n+1 is product n)."""
    lines = [",".join(HEADER)]
    for n in range(1, rows + 1):
        price = "abc" if n + 1 == bad_price_at else f"{n % 90 + 10}.50"
        lines.append(f"Product {n},{price},{n % 7}")
    return ("\n".join(lines) + "\n").encode()


def product_xlsx(rows: int, *, far_cell: str | None = None) -> bytes:
    """The same sheet as an XLSX workbook; ``far_cell`` (e.g. ``"XFD2"``) also gets a value."""
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.title = "Products"
    sheet.append(HEADER)
    for n in range(1, rows + 1):
        sheet.append([f"Product {n}", n % 90 + 10.5, n % 7])
    if far_cell:
        sheet[far_cell] = "far away"
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def without_dimension(xlsx: bytes) -> bytes:
    """The workbook with the worksheets' ``<dimension>`` tag removed (as some generators write it)."""
    source = zipfile.ZipFile(io.BytesIO(xlsx))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename.startswith("xl/worksheets/"):
                data = re.sub(rb"<dimension [^>]*/>", b"", data)
            target.writestr(info, data)
    return out.getvalue()


# -- limits (pure parsing) -------------------------------------------------------------------------


def test_a_cell_at_column_xfd_is_refused_by_the_declared_dimension_before_rows_are_read() -> None:
    data = product_xlsx(3, far_cell="XFD2")
    seen: list[int] = []
    with pytest.raises(ImportLimitError) as caught:
        parse_knowledge_file(data, filename="wide.xlsx", currency="USD", on_progress=lambda done, _t: seen.append(done))
    error = caught.value
    assert error.limit == "max_columns" and error.maximum == 200 and error.sheet == "Products"
    assert error.row is None  # the sheet as a whole, from its <dimension>
    assert "16384 columns" in str(error) and "XFD" in str(error) and "limit is 200 columns" in str(error)
    assert seen == []  # refused from the dimension: not a single row was read


def test_a_cell_at_column_xfd_is_refused_on_its_row_when_the_sheet_declares_no_dimension() -> None:
    data = without_dimension(product_xlsx(3, far_cell="XFD3"))
    with pytest.raises(ImportLimitError) as caught:
        parse_knowledge_file(data, filename="wide.xlsx", currency="USD")
    error = caught.value
    assert (error.limit, error.row, error.sheet) == ("max_columns", 3, "Products")
    assert "16384 columns" in str(error)


def test_formatted_but_empty_cells_far_right_are_not_columns() -> None:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(HEADER)
    sheet.append(["Mug", "4.50", 3])
    sheet["XFD2"].number_format = "0.00"  # a styled cell without a value
    buffer = io.BytesIO()
    workbook.save(buffer)
    parsed = parse_knowledge_file(without_dimension(buffer.getvalue()), filename="styled.xlsx", currency="USD")
    assert parsed.items is not None and [item.name for item in parsed.items] == ["Mug"]


@pytest.mark.parametrize("dimension", [True, False], ids=["declared", "undeclared"])
def test_too_many_rows_in_a_workbook_are_refused_naming_the_limit(dimension: bool) -> None:
    data = product_xlsx(60)
    data = data if dimension else without_dimension(data)
    with pytest.raises(ImportLimitError) as caught:
        parse_knowledge_file(data, filename="long.xlsx", currency="USD", limits=ImportLimits(max_rows=50))
    assert caught.value.limit == "max_rows" and "limit is 50 rows" in str(caught.value)
    assert caught.value.sheet == "Products"


def test_csv_limits_name_row_column_and_limit() -> None:
    with pytest.raises(ImportLimitError) as rows:
        parse_knowledge_file(product_csv(60), filename="long.csv", currency="USD", limits=ImportLimits(max_rows=50))
    assert rows.value.limit == "max_rows" and "more than 50 rows" in str(rows.value)

    wide = b"Name,Price" + b",x" * 250 + b"\nMug,4.50\n"
    with pytest.raises(ImportLimitError) as columns:
        parse_knowledge_file(wide, filename="wide.csv", currency="USD")
    assert (columns.value.limit, columns.value.row) == ("max_columns", 1)
    assert "252 columns" in str(columns.value)

    long_cell = b"Name,Price,Description\nMug,4.50," + b"y" * 10_001 + b"\n"
    with pytest.raises(ImportLimitError) as cell:
        parse_knowledge_file(long_cell, filename="long-cell.csv", currency="USD")
    assert (cell.value.limit, cell.value.row, cell.value.column) == ("max_cell_chars", 2, "C")
    assert "10001 characters" in str(cell.value) and "limit is 10000 characters" in str(cell.value)

    with pytest.raises(ImportLimitError) as size:
        parse_knowledge_file(product_csv(10), filename="big.csv", currency="USD", limits=ImportLimits(max_bytes=100))
    assert size.value.limit == "max_bytes" and "limit is 100 bytes" in str(size.value)


def test_progress_reports_rows_read_and_the_total() -> None:
    calls: list[tuple[int, int | None]] = []
    parse_knowledge_file(product_xlsx(2500), filename="p.xlsx", currency="USD",
                         on_progress=lambda done, total: calls.append((done, total)))
    assert calls[:2] == [(1000, 2501), (2000, 2501)]  # the workbook declares its dimension
    assert calls[-1] == (2501, 2501)


# -- the job layer ---------------------------------------------------------------------------------


async def _company(sessionmaker: Sessions, slug: str = "shop") -> Company:
    async with sessionmaker() as s, s.begin():
        tenant = await create_tenant(s, name=slug.title(), slug=slug)
        return await create_company(s, tenant_id=tenant.id, slug=slug, name=slug.title())


async def _queue(sessionmaker: Sessions, company: Company, data_dir: Path, filename: str, data: bytes) -> tuple[
        ImportJob, Path]:
    job_id = uuid.uuid4()
    path = upload_path(data_dir, tenant_id=company.tenant_id, job_id=job_id, filename=filename)
    size = save_upload_bytes(data, path, max_bytes=10**8)
    async with sessionmaker() as s, s.begin():
        job = await create_import_job(s, company=company, job_id=job_id, filename=filename, size_bytes=size)
    return job, path


async def _job(sessionmaker: Sessions, job_id: uuid.UUID) -> ImportJob:
    async with sessionmaker() as s:
        job = await s.get(ImportJob, job_id)
        assert job is not None
        return job


async def test_a_job_goes_queued_running_done_and_reports_progress(
    sessionmaker: Sessions, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import knowledge.import_jobs

    monkeypatch.setattr(knowledge.import_jobs, "FLUSH_SECONDS", 0.05)
    company = await _company(sessionmaker)
    job, path = await _queue(sessionmaker, company, tmp_path, "catalogue.csv", product_csv(2999))
    assert (await _job(sessionmaker, job.id)).status == "queued"
    assert path.exists() and path.parent == tmp_path / "imports" / str(company.tenant_id)
    loop = asyncio.get_running_loop()
    seen_while_parsing: list[tuple[str, int]] = []

    def on_progress(done: int, _total: int | None) -> None:
        if done == 2000:  # from the parsing thread: look at the stored job until it shows progress
            for _ in range(2000):
                current = asyncio.run_coroutine_threadsafe(_job(sessionmaker, job.id), loop).result()
                if current.rows_processed >= 1000:
                    seen_while_parsing.append((current.status, current.rows_processed))
                    return
                asyncio.run_coroutine_threadsafe(asyncio.sleep(0.01), loop).result()

    outcome = await run_import_job(sessionmaker, job_id=job.id, path=path, on_progress=on_progress)
    assert seen_while_parsing and seen_while_parsing[0][0] == "running"
    assert outcome.error is None and outcome.result is not None and outcome.result.items == 2999
    done = await _job(sessionmaker, job.id)
    assert done.status == "done" and done.counts == {"items": 2999, "variants": 0, "faq": 0}
    assert (done.rows_processed, done.total_rows, done.kb_version) == (3000, 3000, 1)
    assert done.started_at is not None and done.finished_at is not None and done.errors == []
    assert not path.exists()  # the upload is deleted once the job ended
    async with sessionmaker() as s:
        assert (await s.execute(select(func.count()).select_from(KnowledgeItem))).scalar_one() == 2999


async def test_a_broken_file_fails_the_job_with_row_and_column_and_changes_nothing(
    sessionmaker: Sessions, tmp_path: Path
) -> None:
    company = await _company(sessionmaker)
    first, path = await _queue(sessionmaker, company, tmp_path, "good.csv", product_csv(5))
    assert (await run_import_job(sessionmaker, job_id=first.id, path=path)).result is not None
    async with sessionmaker() as s:
        before = sorted((await s.execute(select(KnowledgeItem.name, KnowledgeItem.price_minor))).all())

    job, path = await _queue(sessionmaker, company, tmp_path, "broken.csv", product_csv(500, bad_price_at=300))
    outcome = await run_import_job(sessionmaker, job_id=job.id, path=path)
    assert outcome.error is not None and outcome.result is None
    failed = await _job(sessionmaker, job.id)
    assert failed.status == "failed" and failed.counts is None and failed.finished_at is not None
    assert failed.errors[0]["row"] == 300 and failed.errors[0]["column"] == "Price"
    assert "abc" in failed.errors[0]["message"]
    assert not path.exists()
    async with sessionmaker() as s:
        assert sorted((await s.execute(select(KnowledgeItem.name, KnowledgeItem.price_minor))).all()) == before
        assert (await s.get(Company, company.id)).kb_version == 1  # type: ignore[union-attr]
        audit = (await s.execute(select(KnowledgeImport.status).order_by(KnowledgeImport.created_at))).scalars()
        assert list(audit) == ["ok", "failed"]


async def test_two_runners_of_one_job_import_it_once(sessionmaker: Sessions, tmp_path: Path) -> None:
    company = await _company(sessionmaker)
    job, path = await _queue(sessionmaker, company, tmp_path, "once.csv", product_csv(300))
    outcomes = await asyncio.gather(*(run_import_job(sessionmaker, job_id=job.id, path=path) for _ in range(3)))
    assert sum(1 for outcome in outcomes if outcome.result is not None) == 1
    assert sum(1 for outcome in outcomes if outcome.job is None) == 2  # the others found it claimed
    async with sessionmaker() as s:
        assert (await s.get(Company, company.id)).kb_version == 1  # type: ignore[union-attr]
        assert (await s.execute(select(func.count()).select_from(KnowledgeImport))).scalar_one() == 1


async def test_jobs_of_a_stopped_process_are_failed_by_the_sweep(sessionmaker: Sessions, tmp_path: Path) -> None:
    company = await _company(sessionmaker)
    orphan, orphan_path = await _queue(sessionmaker, company, tmp_path, "orphan.csv", product_csv(3))
    alive, alive_path = await _queue(sessionmaker, company, tmp_path, "alive.csv", product_csv(3))
    async with sessionmaker() as s, s.begin():
        stored = await s.get(ImportJob, orphan.id)
        assert stored is not None
        stored.status, stored.heartbeat_at = "running", utcnow() - STALE_AFTER - timedelta(seconds=1)
    async with sessionmaker() as s, s.begin():
        assert await fail_stale_import_jobs(s, now=utcnow(), data_dir=tmp_path) == 1
    failed = await _job(sessionmaker, orphan.id)
    assert failed.status == "failed" and "upload the file again" in failed.errors[0]["message"]
    assert not orphan_path.exists()
    assert (await _job(sessionmaker, alive.id)).status == "queued" and alive_path.exists()
    # a runner that picks the failed job up later does nothing
    assert (await run_import_job(sessionmaker, job_id=orphan.id, path=orphan_path)).job is None


async def test_reimport_writes_what_changed_and_keeps_ids(sessionmaker: Sessions) -> None:
    company = await _company(sessionmaker)
    first = product_csv(300)
    second = first.replace(b"Product 150,70.50,3", b"Product 150,99.00,3").replace(b"Product 7,", b"Renamed 7,")
    assert second != first
    async with sessionmaker() as s, s.begin():
        await import_knowledge(s, company=await s.get(Company, company.id), data=first, filename="a.csv")
    async with sessionmaker() as s:
        before = {row.name: row for row in (await s.execute(select(KnowledgeItem))).scalars()}
    async with sessionmaker() as s, s.begin():
        await import_knowledge(s, company=await s.get(Company, company.id), data=second, filename="b.csv")
    async with sessionmaker() as s:
        after = {row.name: row for row in (await s.execute(select(KnowledgeItem))).scalars()}
    assert after["Product 150"].price_minor == 9900 and after["Product 150"].id == before["Product 150"].id
    assert after["Product 151"].price_minor == before["Product 151"].price_minor
    assert "Product 7" not in after and "Renamed 7" in after and after["Renamed 7"].id not in {
        row.id for row in before.values()}
    assert len(after) == 300 and after["Product 299"].id == before["Product 299"].id


async def test_concurrent_imports_of_one_company_apply_one_after_the_other(sessionmaker: Sessions) -> None:
    company = await _company(sessionmaker)
    files = {"mugs.csv": b"Name,Price\nMug,4.50\nBig mug,6.00\n", "cups.csv": b"Name,Price\nCup,3.00\n"}

    async def one(filename: str) -> None:
        async with sessionmaker() as s, s.begin():
            await import_knowledge(s, company=await s.get(Company, company.id), data=files[filename],
                                   filename=filename)

    await asyncio.gather(*(one(name) for name in files))
    async with sessionmaker() as s:
        names = sorted((await s.execute(select(KnowledgeItem.name))).scalars())
        assert names in (["Big mug", "Mug"], ["Cup"])  # one whole file, never a mix
        assert (await s.get(Company, company.id)).kb_version == 2  # type: ignore[union-attr]


# -- through the admin API (jobs run in a worker process, as in `serve`) ---------------------------


@pytest.fixture
async def small_limits_env(database_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    settings = make_settings(database_url, tmp_path, import_max_rows=1000, import_max_bytes=200_000)
    async with running(settings) as e:
        yield e


def _job_url(company: str, job_id: str, tenant: str = "acme") -> str:
    return f"/api/v1/tenants/{tenant}/companies/{company}/knowledge-base/imports/{job_id}"


async def test_upload_answers_202_with_the_job_and_the_job_ends_done(small_limits_env: Env) -> None:
    c = small_limits_env.client
    await make_company(c, "acme", "acme-shop")
    r = await c.post("/api/v1/tenants/acme/companies/acme-shop/knowledge-base/imports",
                     files={"file": ("catalogue.xlsx", product_xlsx(20), "application/octet-stream")}, headers=AUTH)
    assert r.status_code == 202, r.text
    job = r.json()
    assert job["status"] == "queued" and job["filename"] == "catalogue.xlsx" and job["counts"] is None
    assert r.headers["location"] == _job_url("acme-shop", job["id"])
    seen: list[str] = []
    done = await wait_for_job(c, r.headers["location"], seen=seen)
    assert done["status"] == "done" and done["counts"] == {"items": 20, "variants": 0, "faq": 0}
    assert seen[-1] == "done" and set(seen) <= {"queued", "running", "done"}
    assert done["rows_processed"] == 21 and done["kb_version"] == 1
    assert len(await items(c, "acme", "acme-shop")) == 20
    listed = (await c.get("/api/v1/tenants/acme/companies/acme-shop/knowledge-base/imports", headers=AUTH)).json()
    assert [j["id"] for j in listed] == [job["id"]]

    await make_company(c, "other", "other-shop")  # another tenant sees neither the job nor its listing
    assert (await c.get(_job_url("other-shop", job["id"], tenant="other"), headers=AUTH)).status_code == 404
    assert (await c.get(_job_url("acme-shop", job["id"], tenant="other"), headers=AUTH)).status_code == 404
    assert (await c.get("/api/v1/tenants/other/companies/other-shop/knowledge-base/imports",
                        headers=AUTH)).json() == []


async def test_hostile_workbooks_fail_the_job_naming_the_limit_and_import_nothing(small_limits_env: Env) -> None:
    c = small_limits_env.client
    await make_company(c, "acme", "acme-shop")
    for filename, data, limit in (
        ("wide.xlsx", product_xlsx(10, far_cell="XFD5"), "max_columns"),
        ("long.xlsx", product_xlsx(1500), "max_rows"),
    ):
        r = await upload(c, "acme", "acme-shop", filename, data)
        assert r.status_code == 202, r.text
        job = await wait_for_job(c, r.headers["location"])
        assert job["status"] == "failed" and job["counts"] is None, job
        assert job["errors"][0]["limit"] == limit and "limit is" in job["errors"][0]["message"]
    assert await items(c, "acme", "acme-shop") == []
    company = (await c.get("/api/v1/tenants/acme/companies/acme-shop", headers=AUTH)).json()
    assert company["kb_version"] == 0


async def test_an_upload_over_the_size_limit_is_refused_at_once(small_limits_env: Env) -> None:
    c = small_limits_env.client
    await make_company(c, "acme", "acme-shop")
    r = await upload(c, "acme", "acme-shop", "huge.csv", product_csv(20_000))
    assert r.status_code == 413
    assert r.json()["detail"]["limit"] == "max_bytes" and r.json()["detail"]["maximum"] == 200_000
    assert (await c.get("/api/v1/tenants/acme/companies/acme-shop/knowledge-base/imports", headers=AUTH)).json() == []
    assert list((small_limits_env.runtime.settings.data_dir / "imports").rglob("*.*")) == []


async def test_healthz_answers_while_an_import_runs(database_url: str, tmp_path: Path) -> None:
    async with running(make_settings(database_url, tmp_path)) as env:
        c = env.client
        await make_company(c, "acme", "acme-shop")
        r = await upload(c, "acme", "acme-shop", "big.csv", product_csv(60_000))
        assert r.status_code == 202, r.text
        health = await c.get("/healthz")
        assert health.status_code == 200 and health.json()["status"] == "ok"
        chat = await c.post("/api/v1/webchat/acme-shop/messages", json={"contact": "v-1", "text": "hi"})
        assert chat.status_code == 200 and chat.json()["replies"]
        during = (await c.get(r.headers["location"], headers=AUTH)).json()
        assert during["status"] in ("queued", "running")  # both answered before the import ended
        done = await wait_for_job(c, r.headers["location"])
        assert done["status"] == "done" and done["counts"]["items"] == 60_000


# -- the CLI ---------------------------------------------------------------------------------------


def test_cli_import_reports_counts_and_a_limit_by_name(database_url: str, tmp_path: Path) -> None:
    env = {"CHATCOMMERCE_DATABASE_URL": database_url, "CHATCOMMERCE_DATA_DIR": str(tmp_path / "data"),
           "CHATCOMMERCE_SECRET_KEY": "test-secret-key", "CHATCOMMERCE_IMPORT_MAX_ROWS": "100"}
    cli = Cli(env)
    cli.json("tenants", "create", "--name", "Acme", "--slug", "acme")
    cli.json("companies", "create", "--tenant", "acme", "--slug", "acme-shop", "--name", "Acme")
    good = tmp_path / "good.csv"
    good.write_bytes(product_csv(50))
    assert cli.json("kb", "import", "--company", "acme-shop", str(good))["items"] == 50
    long = tmp_path / "long.csv"
    long.write_bytes(product_csv(150))
    result = cli.run("kb", "import", "--company", "acme-shop", str(long), "--json", ok=False)
    assert result.exit_code == 1 and result.stdout == ""
    error = json.loads(result.stderr.splitlines()[0])
    assert error["limit"] == "max_rows" and "limit is 100 rows" in error["error"]
    assert list((tmp_path / "data" / "imports").rglob("*.*")) == []  # uploads are not left behind
