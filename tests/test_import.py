"""Knowledge-base import: Shopify exports, owners' sheets (CSV in several encodings and delimiters,
XLSX), FAQ sheets, refusals that leave the knowledge base untouched, tenant isolation.

Parsing tests are pure; database tests run on SQLite and PostgreSQL (``sessionmaker`` fixture).
"""

from __future__ import annotations

import io
import re
import zipfile
from datetime import time
from pathlib import Path

import openpyxl
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.accounts import create_company, create_tenant
from core.models import Company, FaqEntry, KnowledgeImport, KnowledgeItem, KnowledgeVariant
from knowledge.importer import ImportResult, KnowledgeImportError, import_knowledge, parse_knowledge_file
from knowledge.parsed import ParsedItem, ParsedKnowledge

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
HTML_TAG = re.compile(r"<\s*/?\s*[a-zA-Z][^>]*>")
Sessions = async_sessionmaker[AsyncSession]


def _items(parsed: ParsedKnowledge) -> dict[str, ParsedItem]:
    assert parsed.items is not None
    return {item.name: item for item in parsed.items}


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


# --- Shopify exports ---------------------------------------------------------------------------
# The project's own export (tests/fixtures, ``shop_export``) always; the real public exports in
# ../shared (``shopify_dir``) as extra coverage.

OWN_EXPORT_FACTS = (34, 90)  # published products, variants (2 of 36 products are draft/archived)


def _check_shopify_items(parsed: ParsedKnowledge) -> None:
    assert parsed.items is not None and parsed.faq is None
    for item in parsed.items:
        assert item.handle and item.name and item.kind == "product"
        assert item.description and not HTML_TAG.search(item.description), item.description
        assert "&amp;" not in item.description and "  " not in item.description and "\n" not in item.description
        assert item.image_url and item.image_url.startswith("https://")
        assert item.price_minor > 0
        if item.variants:
            assert item.price_minor == min(variant.price_minor for variant in item.variants)
            assert all(variant.name and variant.options for variant in item.variants)


def test_own_shopify_export_parses(shop_export: Path) -> None:
    parsed = parse_knowledge_file(shop_export.read_bytes(), filename=shop_export.name, currency="USD")
    assert (len(parsed.items or ()), parsed.variant_count) == OWN_EXPORT_FACTS
    _check_shopify_items(parsed)
    assert parsed.warnings == ("row 108: 'Spring Preview Jacket' is not published and was skipped",
                               "row 110: 'Retired Windbreaker' is not published and was skipped")


def test_own_shopify_export_facts(shop_export: Path) -> None:
    items = _items(parse_knowledge_file(shop_export.read_bytes(), filename="acme.csv", currency="USD"))
    shirt = items["Ocean Blue Shirt"]  # "Default Title" plus an image-only row: no variants
    assert (shirt.variants, shirt.price_minor, shirt.sku, shirt.stock) == ((), 5000, "ACM-OBS", None)
    assert shirt.description == ("A breezy ocean blue cotton shirt with a button-down collar & long sleeves. "
                                 "Relaxed fit; machine washable.")
    assert shirt.image_url is not None and shirt.image_url.endswith("/ocean-blue-shirt-1.jpg?v=1718000000")
    assert shirt.attributes == {"tags": ["men", "cotton", "summer"], "vendor": "Acme Apparel"}
    top = items["Classic Varsity Top"]
    assert [(v.name, v.options, v.price_minor, v.sku) for v in top.variants] == [
        ("Small", {"Size": "Small"}, 6000, "ACM-CVT-SMALL"),
        ("Medium", {"Size": "Medium"}, 6000, "ACM-CVT-MEDIUM"),
        ("Large", {"Size": "Large"}, 6000, "ACM-CVT-LARGE"),
    ]
    hoodie = items["Heather Grey Hoodie"]  # two options; the large size costs more
    assert [(v.name, v.options, v.price_minor) for v in hoodie.variants][-2:] == [
        ("L / Grey", {"Size": "L", "Color": "Grey"}, 4800), ("L / Black", {"Size": "L", "Color": "Black"}, 4800)]
    assert hoodie.price_minor == 4500 and len(hoodie.variants) == 6
    boots = items["Suede Chelsea Boots"]  # three options
    assert boots.variants[1].options == {"Size": "41", "Color": "Black", "Width": "Wide"}
    assert (boots.variants[1].name, boots.variants[1].price_minor) == ("41 / Black / Wide", 14500)
    # Stock only where Shopify tracks the inventory; a product's stock is the sum of its variants'.
    sneakers = items["Canvas Low-Top Sneakers"]
    assert sneakers.stock == 28 and [v.stock for v in sneakers.variants][:3] == [4, 3, 6]
    assert items["Silk Evening Blouse"].stock == 0 and items["Leather Biker Jacket"].stock == 3
    assert items["Denim Trucker Jacket"].stock is None and items["Heather Grey Hoodie"].stock is None
    gift = items["Acme Gift Card"]
    assert [(v.name, v.price_minor, v.sku) for v in gift.variants] == [
        ("$25.00", 2500, None), ("$50.00", 5000, None), ("$100.00", 10000, None)]
    parka = items["Quilted Winter Parka"].description  # <ul><li> items become sentences
    assert parka.startswith("Warm quilted parka with a detachable faux-fur hood. Water-repellent shell.")
    assert items["Flannel Pyjama Set"].description == "Two-piece brushed flannel pyjamas. Elastic waist, piped collar."
    assert items["Wool Blend Scarf"].description == "Soft wool-blend scarf, 180 × 30 cm, fringed ends."
    assert "Spring Preview Jacket" not in items and "Retired Windbreaker" not in items


def test_non_numeric_price_in_own_shopify_export(shop_export: Path) -> None:
    lines = shop_export.read_bytes().split(b"\r\n")
    index = next(i for i, line in enumerate(lines) if line.startswith(b"silk-evening-blouse,"))
    lines[index] = lines[index].replace(b",manual,85.00,", b",manual,eighty-five,")
    with pytest.raises(KnowledgeImportError) as caught:
        parse_knowledge_file(b"\r\n".join(lines), filename="acme.csv", currency="USD")
    assert (caught.value.row, caught.value.column) == (index + 1, "Variant Price")
    assert str(caught.value) == f"row {index + 1}, column 'Variant Price': 'eighty-five' is not a price"


SHOPIFY_FACTS = {  # file: (items = distinct handles, variants)
    "apparel.csv": (20, 3),
    "home-and-garden.csv": (20, 2),
    "jewelery.csv": (20, 6),
}


@pytest.mark.parametrize("name", sorted(SHOPIFY_FACTS))
def test_shopify_export_parses(shopify_dir: Path, name: str) -> None:
    data = (shopify_dir / name).read_bytes()
    parsed = parse_knowledge_file(data, filename=name, currency="USD")
    items, variants = SHOPIFY_FACTS[name]
    assert (len(parsed.items or ()), parsed.variant_count) == (items, variants)
    _check_shopify_items(parsed)


def test_shopify_apparel_facts(shopify_dir: Path) -> None:
    items = _items(parse_knowledge_file((shopify_dir / "apparel.csv").read_bytes(), filename="a.csv", currency="USD"))
    top = items["Classic Varsity Top"]
    assert top.handle == "classic-varsity-top"
    assert [(v.name, v.options, v.price_minor) for v in top.variants] == [
        ("Small", {"Size": "Small"}, 6000),
        ("Medium", {"Size": "Medium"}, 6000),
        ("Large", {"Size": "Large"}, 6000),
    ]
    shirt = items["Ocean Blue Shirt"]
    assert shirt.variants == () and shirt.price_minor == 5000
    assert shirt.description.startswith("Ocean blue cotton shirt with a narrow collar")
    # "Variant Inventory Qty" is 1 everywhere, but no row is tracked by Shopify: stock is unknown.
    assert all(item.stock is None for item in items.values())
    assert shirt.attributes["tags"] == ["men"]


def test_shopify_home_and_garden_facts(shopify_dir: Path) -> None:
    data = (shopify_dir / "home-and-garden.csv").read_bytes()
    items = _items(parse_knowledge_file(data, filename="h.csv", currency="USD"))
    pot = items["Clay Plant Pot"]
    assert [(v.name, v.price_minor) for v in pot.variants] == [("Regular", 999), ("Large", 1599)]
    assert pot.price_minor == 999 and pot.category == "Outdoor"
    # the only row whose inventory Shopify tracks
    assert items["Biodegradable cardboard pots"].stock == 8
    assert [name for name, item in items.items() if item.stock is not None] == ["Biodegradable cardboard pots"]
    assert items["Cream Sofa"].description == "Comfortable cream sofa with wooden base"


def test_shopify_jewelery_image_rows_are_not_variants(shopify_dir: Path) -> None:
    items = _items(parse_knowledge_file((shopify_dir / "jewelery.csv").read_bytes(), filename="j.csv", currency="USD"))
    anchor = items["Anchor Bracelet Mens"]  # 3 rows: Gold 69.99, Silver 55, then an image-only row
    assert [(v.name, v.price_minor) for v in anchor.variants] == [("Gold", 6999), ("Silver", 5500)]
    assert anchor.price_minor == 5500
    assert items["Gemstone Necklace"].variants[0].options == {"Colour": "Blue"}
    assert items["Boho Earrings"].variants == ()  # Default Title plus two image rows
    pendant = items["Choker with Gold Pendant"].description  # <ul><li>... with a line break in the cell
    assert "14k yellow gold. Leather" in pendant and "\n" not in pendant


def test_example_apparel_shop() -> None:
    parsed = parse_knowledge_file((EXAMPLES / "apparel-shop.csv").read_bytes(), filename="x.csv", currency="USD")
    items = _items(parsed)
    assert len(items) == 13 and parsed.faq is None
    top = items["Classic Varsity Top"]
    assert [(v.name, v.price_minor, v.sku) for v in top.variants] == [
        ("Small", 6000, "CVT-S"),
        ("Medium", 6000, "CVT-M"),
        ("Large", 6000, "CVT-L"),
    ]
    assert items["Ocean Blue Shirt"].price_minor == 5000 and items["Ocean Blue Shirt"].variants == ()
    jacket = items["Zipped Jacket"]
    assert jacket.variants[2].name == "Light Blue / Medium"
    assert jacket.variants[2].options == {"Color": "Light Blue", "Size": "Medium"}
    assert jacket.stock == 9  # tracked variants: 3 + 5 + 1 + 0
    assert items["Black Leather Bag"].stock == 3 and items["Black Leather Bag"].variants == ()


# --- owners' sheets: encodings, delimiters, XLSX --------------------------------------------------


def test_cp1251_semicolon_sheet() -> None:
    data = (EXAMPLES / "florist-ru.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    parsed = parse_knowledge_file(data, filename="florist-ru.csv", currency="RUB")
    items = _items(parsed)
    rose = items["Роза"]
    assert [(v.name, v.options, v.price_minor, v.stock) for v in rose.variants] == [
        ("красная", {"Вариант": "красная"}, 15000, 120),
        ("белая", {"Вариант": "белая"}, 15000, 80),
        ("розовая", {"Вариант": "розовая"}, 17000, 45),
    ]
    assert rose.price_minor == 15000 and rose.stock == 245 and rose.category == "Цветы поштучно"
    assert items["Букет «Нежность»"].price_minor == 249000  # "2 490,00 руб." with a non-breaking space
    assert items["Букет «Нежность»"].stock is None  # "да": available, not counted
    assert items["Букет «Классика»"].variants[2].stock == 0  # "нет"
    assert {"Тюльпан", "Пион", "Хризантема", "Лилия", "Упаковка"} <= set(items)
    assert all(item.kind == "product" for item in items.values())


def test_utf8_bom_faq_sheet() -> None:
    parsed = parse_knowledge_file((EXAMPLES / "florist-faq-ru.csv").read_bytes(), filename="f.csv", currency="RUB")
    assert parsed.items is None and parsed.faq is not None
    assert len(parsed.faq) == 9
    assert parsed.faq[0].question == "Сколько стоит доставка?"
    assert parsed.faq[0].row == 2


def test_utf8_bom_product_sheet() -> None:
    data = '\ufeffНазвание,Цена,Описание\nПион,"1 990,00 ₽",Сара Бернар\n'.encode()
    items = _items(parse_knowledge_file(data, filename="p.csv", currency="RUB"))
    assert items["Пион"].price_minor == 199000 and items["Пион"].description == "Сара Бернар"


def test_utf16_with_bom_is_excel_unicode_text() -> None:
    data = "Название\tЦена\nЛилия\t380 ₽\n".encode("utf-16")  # what Excel saves as "Unicode Text"
    assert _items(parse_knowledge_file(data, filename="kb.txt", currency="RUB"))["Лилия"].price_minor == 38000


def test_english_faq() -> None:
    parsed = parse_knowledge_file((EXAMPLES / "apparel-faq.csv").read_bytes(), filename="faq.csv", currency="USD")
    assert parsed.faq is not None and len(parsed.faq) >= 8
    assert any("return" in entry.question.lower() for entry in parsed.faq)


@pytest.mark.parametrize("filename", ["stock.tsv", "stock.txt", "stock.csv"])
def test_tab_delimited_sheet(filename: str) -> None:
    data = (
        b"Product\tSize\tPrice\tQty\tMaterial\n"
        b"Linen Shirt\tS\t$45.00\t3\tlinen\n"
        b"Linen Shirt\tM\t$45.00\t0\t\n"
        b"Linen Shirt\tL\t$49.00\t\t\n"
        b"Canvas Tote\t\t25\t12\tcotton, canvas\n"
    )
    items = _items(parse_knowledge_file(data, filename=filename, currency="USD"))
    shirt = items["Linen Shirt"]
    assert [(v.name, v.options, v.price_minor, v.stock) for v in shirt.variants] == [
        ("S", {"Size": "S"}, 4500, 3),
        ("M", {"Size": "M"}, 4500, 0),
        ("L", {"Size": "L"}, 4900, None),
    ]
    assert shirt.price_minor == 4500 and shirt.stock is None  # one variant untracked
    assert shirt.attributes == {"Material": "linen"}
    assert items["Canvas Tote"].stock == 12 and items["Canvas Tote"].attributes == {"Material": "cotton, canvas"}


def test_header_synonyms_and_services() -> None:
    data = (
        "Прайс-лист салона «Лотос»;;;\n"
        ";;;\n"
        " УСЛУГА ; Длительность, мин ; Стоимость (руб.) ; Артикул\n"
        "Стрижка женская;60 мин;2 500 ₽;HC-1\n"
        "Окрашивание;2 ч;6 000 ₽;COL-1\n"
        "Маникюр;1:30;1 800 ₽;MN-1\n"
    ).encode()
    parsed = parse_knowledge_file(data, filename="salon.csv", currency="RUB")
    items = _items(parsed)
    assert [(i.name, i.kind, i.duration_minutes, i.price_minor, i.sku) for i in items.values()] == [
        ("Стрижка женская", "service", 60, 250000, "HC-1"),
        ("Окрашивание", "service", 120, 600000, "COL-1"),
        ("Маникюр", "service", 90, 180000, "MN-1"),
    ]
    assert items["Маникюр"].row == 6  # rows are counted as a spreadsheet shows them


def test_xlsx_workbook_with_products_and_faq() -> None:
    data = _xlsx(
        {
            "Products": [
                ["Our price list"],
                [],
                ["Name", "Colour", "Price", "Stock", "Duration", "Photo"],
                ["Bouquet Tender", None, 49.9, 4, None, "https://example.com/b.jpg"],
                ["Rose", "red", 3, 100.0, None, None],
                ["Rose", "white", 3.5, 20, None, None],
                ["Flower workshop", None, 60, None, time(1, 30), None],
            ],
            "FAQ": [["Question", "Answer"], ["Do you deliver?", "Yes, within 3 hours."], [None, None]],
            "Notes": [["remember to update prices in May"]],
            "Template": [["Name", "Price"]],
        }
    )
    parsed = parse_knowledge_file(data, filename="shop.xlsx", currency="USD")
    items = _items(parsed)
    assert items["Bouquet Tender"].price_minor == 4990 and items["Bouquet Tender"].stock == 4
    assert items["Bouquet Tender"].image_url == "https://example.com/b.jpg"
    assert [(v.name, v.price_minor, v.stock) for v in items["Rose"].variants] == [("red", 300, 100), ("white", 350, 20)]
    assert items["Flower workshop"].duration_minutes == 90
    assert {item.kind for item in items.values()} == {"service"}  # the sheet has a duration column
    assert parsed.faq is not None and [(f.question, f.answer) for f in parsed.faq] == [
        ("Do you deliver?", "Yes, within 3 hours.")
    ]
    assert parsed.warnings == (
        "sheet 'Notes' was skipped: no recognisable header",
        "sheet 'Template' was skipped: it has a header row only",
    )


def test_xlsx_error_names_sheet_row_and_column() -> None:
    data = _xlsx({"Products": [["Name", "Price"], ["Rose", 3], ["Lily", "three"]]})
    with pytest.raises(KnowledgeImportError) as caught:
        parse_knowledge_file(data, filename="shop.xlsx", currency="USD")
    assert (caught.value.sheet, caught.value.row, caught.value.column) == ("Products", 3, "Price")
    assert str(caught.value) == "sheet 'Products', row 3, column 'Price': 'three' is not a price"


def _zip(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


# --- refusals ---------------------------------------------------------------------------------------

GOOD_CSV = b"Name,Price\nRose,3\n"
BAD_FILES: dict[str, tuple[bytes, str, str]] = {  # id: (data, filename, message fragment)
    "empty": (b"", "kb.csv", "file is empty"),
    "blank": (b" \r\n\r\n", "kb.csv", "file is empty"),
    "missing-name-column": (b"Colour;Price\nred;3\n", "kb.csv", "no recognisable name column"),
    "non-numeric-price": (b"Name,Price\nRose,3\nLily,abc\n", "kb.csv", "row 3, column 'Price': 'abc' is not a price"),
    "empty-price": (b"Name,Price\nRose,\n", "kb.csv", "row 2, column 'Price': price is empty"),
    "negative-price": (b"Name,Price\nRose,-3\n", "kb.csv", "row 2, column 'Price': '-3' is a negative price"),
    "negative-stock": (b"Name,Price,Stock\nRose,3,-1\n", "kb.csv", "row 2, column 'Stock'"),
    "utf16-without-bom": ("Name,Price\nRose,3\n".encode("utf-16-le"), "kb.csv", "wrong encoding"),
    "random-binary": (bytes(range(256)) * 8, "kb.csv", "wrong encoding"),
    "unsupported-extension": (GOOD_CSV, "kb.pdf", "unsupported file type '.pdf'"),
    "legacy-xls": (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "kb.xls", ".xls files are not supported"),
    "broken-xlsx": (b"PK\x03\x04 not really a zip", "kb.xlsx", "not a valid .xlsx workbook"),
    "xlsx-not-zip": (GOOD_CSV, "kb.xlsx", "not a valid .xlsx workbook"),
    "duplicate-name": (b"Name,Price\nRose,3\nRose,4\n", "kb.csv", "row 3, column 'Name': 'Rose' repeats row 2"),
    "header-only": (b"Name,Price\n", "kb.csv", "header row but no rows"),
    "faq-without-answer": (b"Question,Answer\nHello?,\n", "kb.csv", "row 2, column 'Answer': answer is empty"),
    "missing-price-column": (b"Name,Stock\nRose,3\n", "kb.csv", "row 1: no price column; found headers 'Name'"),
    "pdf-named-csv": (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "kb.csv", "unsupported file type: this is a PDF"),
    "ods-named-xlsx": (
        _zip({"mimetype": "application/vnd.oasis.opendocument.spreadsheet", "content.xml": ""}),
        "kb.xlsx",
        "OpenDocument file (.ods)",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
def test_bad_file_is_refused(case: str) -> None:
    data, filename, message = BAD_FILES[case]
    with pytest.raises(KnowledgeImportError, match=re.escape(message)):
        parse_knowledge_file(data, filename=filename, currency="USD")


def test_missing_name_column_lists_headers() -> None:
    with pytest.raises(KnowledgeImportError) as caught:
        parse_knowledge_file("Артикул;Цена\nA1;10\n".encode(), filename="kb.csv", currency="RUB")
    text = str(caught.value)
    assert caught.value.row == 1 and caught.value.column is None
    assert "found headers 'Артикул', 'Цена'" in text
    assert "'name'" in text and "'название'" in text and "'наименование'" in text


def test_non_numeric_price_in_shopify_export(shopify_dir: Path) -> None:
    lines = (shopify_dir / "apparel.csv").read_bytes().split(b"\r\n")
    index = next(i for i, line in enumerate(lines) if line.startswith(b"striped-silk-blouse,"))
    lines[index] = lines[index].replace(b",manual,50,", b",manual,fifty,")
    with pytest.raises(KnowledgeImportError) as caught:
        parse_knowledge_file(b"\r\n".join(lines), filename="apparel.csv", currency="USD")
    assert (caught.value.row, caught.value.column) == (index + 1, "Variant Price")
    assert str(caught.value) == f"row {index + 1}, column 'Variant Price': 'fifty' is not a price"


# --- database ---------------------------------------------------------------------------------------


async def _company(sessionmaker: Sessions, *, slug: str, currency: str = "USD", type: str = "product") -> Company:
    async with sessionmaker() as session, session.begin():
        tenant = await create_tenant(session, name=slug.title(), slug=f"t-{slug}")
        return await create_company(
            session, tenant_id=tenant.id, slug=slug, name=slug.title(), currency=currency, type=type
        )


async def _import(sessionmaker: Sessions, company: Company, data: bytes, filename: str) -> ImportResult:
    async with sessionmaker() as session, session.begin():
        return await import_knowledge(session, company=company, data=data, filename=filename)


async def _counts(sessionmaker: Sessions, company: Company) -> dict[str, int]:
    async with sessionmaker() as session:
        counts = {}
        for label, model in (
            ("items", KnowledgeItem),
            ("variants", KnowledgeVariant),
            ("faq", FaqEntry),
            ("imports", KnowledgeImport),
        ):
            query = select(func.count()).select_from(model).where(model.company_id == company.id)  # type: ignore[attr-defined]
            counts[label] = (await session.execute(query)).scalar_one()
        version = await session.execute(select(Company.kb_version).where(Company.id == company.id))
        counts["kb_version"] = version.scalar_one()
        return counts


async def _load_items(sessionmaker: Sessions, company: Company) -> dict[str, KnowledgeItem]:
    async with sessionmaker() as session:
        rows = await session.execute(
            select(KnowledgeItem)
            .where(KnowledgeItem.tenant_id == company.tenant_id, KnowledgeItem.company_id == company.id)
            .order_by(KnowledgeItem.position)
        )
        return {item.name: item for item in rows.scalars()}


async def test_import_own_shopify_export(sessionmaker: Sessions, shop_export: Path) -> None:
    company = await _company(sessionmaker, slug="shop")
    result = await _import(sessionmaker, company, shop_export.read_bytes(), shop_export.name)
    items, variants = OWN_EXPORT_FACTS
    assert (result.items, result.variants, result.faq) == (items, variants, 0)
    assert await _counts(sessionmaker, company) == {
        "items": items, "variants": variants, "faq": 0, "imports": 1, "kb_version": 1,
    }
    stored = await _load_items(sessionmaker, company)
    assert stored["Ocean Blue Shirt"].price_minor == 5000 and stored["Leather Biker Jacket"].stock == 3


@pytest.mark.parametrize("name", sorted(SHOPIFY_FACTS))
async def test_import_shopify_export(sessionmaker: Sessions, shopify_dir: Path, name: str) -> None:
    company = await _company(sessionmaker, slug="shop")
    result = await _import(sessionmaker, company, (shopify_dir / name).read_bytes(), name)
    items, variants = SHOPIFY_FACTS[name]
    assert result == ImportResult(items=items, variants=variants, faq=0)
    assert await _counts(sessionmaker, company) == {
        "items": items,
        "variants": variants,
        "faq": 0,
        "imports": 1,
        "kb_version": 1,
    }
    loaded = await _load_items(sessionmaker, company)
    for item in loaded.values():
        assert (item.tenant_id, item.company_id, item.currency) == (company.tenant_id, company.id, "USD")
        assert not HTML_TAG.search(item.description)
        for variant in item.variants:
            assert (variant.tenant_id, variant.company_id) == (company.tenant_id, company.id)
    if name == "apparel.csv":
        top = loaded["Classic Varsity Top"]
        assert [(v.name, v.options, v.price_minor, v.position) for v in top.variants] == [
            ("Small", {"Size": "Small"}, 6000, 0),
            ("Medium", {"Size": "Medium"}, 6000, 1),
            ("Large", {"Size": "Large"}, 6000, 2),
        ]
        assert top.price_minor == 6000 and top.kind == "product" and top.handle == "classic-varsity-top"
    async with sessionmaker() as session:
        audit = (await session.execute(select(KnowledgeImport))).scalar_one()
        assert (audit.status, audit.filename, audit.items, audit.variants) == ("ok", name, items, variants)
        assert audit.tenant_id == company.tenant_id


async def test_reimport_replaces_and_keeps_ids(sessionmaker: Sessions) -> None:
    company = await _company(sessionmaker, slug="apparel")
    example = (EXAMPLES / "apparel-shop.csv").read_bytes()
    await _import(sessionmaker, company, example, "apparel-shop.csv")
    before = await _load_items(sessionmaker, company)
    await _import(sessionmaker, company, example, "apparel-shop.csv")
    after = await _load_items(sessionmaker, company)
    assert {name: item.id for name, item in after.items()} == {name: item.id for name, item in before.items()}
    top_ids = [v.id for v in after["Classic Varsity Top"].variants]
    assert top_ids == [v.id for v in before["Classic Varsity Top"].variants]

    smaller = b"Name,Size,Price\nClassic Varsity Top,Medium,65\nClassic Varsity Top,XL,70\nGift Card,,25\n"
    result = await _import(sessionmaker, company, smaller, "update.csv")
    assert result == ImportResult(items=2, variants=2, faq=0)
    final = await _load_items(sessionmaker, company)
    assert list(final) == ["Classic Varsity Top", "Gift Card"]
    top = final["Classic Varsity Top"]
    assert top.id == before["Classic Varsity Top"].id  # matched by name
    assert [(v.name, v.price_minor) for v in top.variants] == [("Medium", 6500), ("XL", 7000)]
    assert top.variants[0].id == top_ids[1]
    counts = await _counts(sessionmaker, company)
    assert (counts["items"], counts["variants"], counts["kb_version"], counts["imports"]) == (2, 2, 3, 3)


async def test_faq_only_import_keeps_items(sessionmaker: Sessions) -> None:
    company = await _company(sessionmaker, slug="florist", currency="RUB")
    products = await _import(sessionmaker, company, (EXAMPLES / "florist-ru.csv").read_bytes(), "florist-ru.csv")
    assert products == ImportResult(items=11, variants=11, faq=0)
    faq = await _import(sessionmaker, company, (EXAMPLES / "florist-faq-ru.csv").read_bytes(), "faq.csv")
    assert faq == ImportResult(items=0, variants=0, faq=9)
    assert await _counts(sessionmaker, company) == {
        "items": 11,
        "variants": 11,
        "faq": 9,
        "imports": 2,
        "kb_version": 2,
    }
    items = await _load_items(sessionmaker, company)
    assert items["Роза"].currency == "RUB" and items["Роза"].price_minor == 15000
    # a second FAQ file replaces the first one, items stay
    await _import(sessionmaker, company, "Вопрос;Ответ\nВы работаете ночью?;Нет.\n".encode(), "faq2.csv")
    counts = await _counts(sessionmaker, company)
    assert (counts["items"], counts["faq"]) == (11, 1)
    async with sessionmaker() as session:
        entry = (await session.execute(select(FaqEntry))).scalar_one()
        assert (entry.question, entry.tenant_id, entry.company_id) == (
            "Вы работаете ночью?",
            company.tenant_id,
            company.id,
        )


async def test_xlsx_import_and_service_company(sessionmaker: Sessions) -> None:
    company = await _company(sessionmaker, slug="salon", currency="JPY", type="service")
    data = _xlsx(
        {
            "Services": [["Service", "Price"], ["Haircut", 4500], ["Colour", "¥12,000"]],
            "FAQ": [["Q", "A"], ["Do I need to book?", "Yes, book in the chat."]],
        }
    )
    assert await _import(sessionmaker, company, data, "salon.xlsx") == ImportResult(items=2, variants=0, faq=1)
    items = await _load_items(sessionmaker, company)
    assert [(i.name, i.kind, i.price_minor, i.currency) for i in items.values()] == [
        ("Haircut", "service", 4500, "JPY"),
        ("Colour", "service", 12000, "JPY"),
    ]


BROKEN_FOR_DB = ["empty", "missing-name-column", "non-numeric-price", "random-binary", "utf16-without-bom"]


@pytest.mark.parametrize("case", BROKEN_FOR_DB)
async def test_broken_file_leaves_knowledge_base_unchanged(sessionmaker: Sessions, case: str) -> None:
    company = await _company(sessionmaker, slug="shop")
    await _import(sessionmaker, company, (EXAMPLES / "apparel-shop.csv").read_bytes(), "apparel-shop.csv")
    await _import(sessionmaker, company, (EXAMPLES / "apparel-faq.csv").read_bytes(), "apparel-faq.csv")
    before = await _counts(sessionmaker, company)
    ids_before = {name: item.id for name, item in (await _load_items(sessionmaker, company)).items()}
    data, filename, message = BAD_FILES[case]
    with pytest.raises(KnowledgeImportError, match=re.escape(message)):
        await _import(sessionmaker, company, data, filename)
    assert await _counts(sessionmaker, company) == before
    assert before["items"] == 13 and before["faq"] > 0 and before["kb_version"] == 2
    assert {name: item.id for name, item in (await _load_items(sessionmaker, company)).items()} == ids_before


async def test_tenants_do_not_see_each_other(sessionmaker: Sessions) -> None:
    shop = await _company(sessionmaker, slug="shop")
    florist = await _company(sessionmaker, slug="florist", currency="RUB")
    assert shop.tenant_id != florist.tenant_id
    await _import(sessionmaker, shop, (EXAMPLES / "apparel-shop.csv").read_bytes(), "apparel-shop.csv")
    await _import(sessionmaker, florist, (EXAMPLES / "florist-ru.csv").read_bytes(), "florist-ru.csv")
    await _import(sessionmaker, florist, (EXAMPLES / "florist-faq-ru.csv").read_bytes(), "florist-faq-ru.csv")
    # re-importing one company's file must not touch the other's rows
    await _import(sessionmaker, shop, b"Name,Price\nGift Card,25\n", "one.csv")
    async with sessionmaker() as session:
        for company, items, variants, faq in ((shop, 1, 0, 0), (florist, 11, 11, 9)):
            for model, expected in ((KnowledgeItem, items), (KnowledgeVariant, variants), (FaqEntry, faq)):
                rows = (
                    (await session.execute(select(model).where(model.tenant_id == company.tenant_id))).scalars().all()
                )
                assert len(rows) == expected, model
                assert {row.company_id for row in rows} <= {company.id}
        other = await session.execute(
            select(func.count())
            .select_from(KnowledgeItem)
            .where(KnowledgeItem.tenant_id == shop.tenant_id, KnowledgeItem.company_id == florist.id)
        )
        assert other.scalar_one() == 0


def test_examples_are_committed_data() -> None:
    """The demo sheets exist in the repository in their documented encodings."""
    assert (EXAMPLES / "florist-faq-ru.csv").read_bytes().startswith(b"\xef\xbb\xbf")
    (EXAMPLES / "florist-ru.csv").read_bytes().decode("cp1251")
    header = (EXAMPLES / "apparel-shop.csv").read_text(encoding="utf-8").splitlines()[0]
    assert header.startswith("Handle,Title,Body (HTML),Vendor,Type,Tags,Published,Option1 Name")


def test_service_sheet_reads_prepayment_and_staff() -> None:
    """A salon's price list: prepayment as a percentage or an amount, and who performs the service."""
    from knowledge.importer import parse_knowledge_file

    sheet = (
        "Услуга;Цена;Длительность;Предоплата;Мастер\n"
        "Стрижка;1 500 ₽;60 мин;30%;\n"
        "Окрашивание;4 000,00 ₽;120 мин;1 000 ₽;Анна, Ольга\n"
    ).encode()
    parsed = parse_knowledge_file(sheet, filename="salon.csv", currency="RUB")
    items = {i.name: i for i in parsed.items}
    assert items["Стрижка"].attributes["prepay_percent"] == 30
    assert items["Окрашивание"].attributes["prepay_minor"] == 100000
    assert items["Окрашивание"].attributes["staff"] == "Анна, Ольга"
    assert items["Стрижка"].kind == "service" and items["Стрижка"].duration_minutes == 60


def test_bad_prepayment_names_row_and_column() -> None:
    from knowledge.importer import KnowledgeImportError, parse_knowledge_file

    sheet = b"Service,Price,Duration,Prepay\nCut,40,30,150%\n"
    with pytest.raises(KnowledgeImportError) as err:
        parse_knowledge_file(sheet, filename="s.csv", currency="EUR")
    assert err.value.row == 2 and err.value.column == "Prepay"
