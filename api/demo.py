"""The demo data set loaded by ``chatcommerce demo``: tenant ``demo`` with two shops from ``examples/``.

* ``apparel`` — an English clothing shop (USD) from ``apparel-shop.csv`` and ``apparel-faq.csv``;
* ``florist`` — a Russian florist (RUB, Europe/Moscow) from ``florist-ru.csv`` and ``florist-faq-ru.csv``.

Loading is idempotent: an existing tenant or company is reused, and a file is imported only when the
company has no rows of that kind yet (products or FAQ), so running the demo again duplicates nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import func, select

from api.actions import import_kb
from api.services import Runtime
from core.accounts import ValidationError, create_company, create_tenant
from core.models import Company, FaqEntry, KnowledgeItem, Tenant

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"
DEMO_TENANT = ("demo", "Demo tenant")


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoCompany:
    """A demo shop: its company fields and its example files (products first, then FAQ)."""

    slug: str
    name: str
    currency: str
    language: str
    timezone: str
    products_file: str
    faq_file: str
    type: str = "product"


DEMO_COMPANIES: tuple[DemoCompany, ...] = (
    DemoCompany(slug="apparel", name="Northwind Apparel", currency="USD", language="en", timezone="America/New_York",
                products_file="apparel-shop.csv", faq_file="apparel-faq.csv"),
    DemoCompany(slug="florist", name="Цветочная лавка «Ромашка»", currency="RUB", language="ru",
                timezone="Europe/Moscow", products_file="florist-ru.csv", faq_file="florist-faq-ru.csv"),
)


@dataclass(slots=True, kw_only=True)
class DemoCompanyResult:
    """What loading one demo shop did: ``created`` the company, ``imported`` these files."""

    slug: str
    name: str
    created: bool
    imported: list[str] = field(default_factory=list)
    items: int = 0
    faq: int = 0


@dataclass(slots=True, kw_only=True)
class DemoResult:
    """The demo tenant's slug, whether it was created now, and what happened to each shop."""

    tenant: str
    created: bool
    companies: list[DemoCompanyResult]


async def _count(runtime: Runtime, model: type[KnowledgeItem] | type[FaqEntry], company: Company) -> int:
    async with runtime.sessionmaker() as session:
        stmt = select(func.count()).select_from(model).where(model.tenant_id == company.tenant_id,
                                                             model.company_id == company.id)
        return (await session.execute(stmt)).scalar_one()


async def load_demo(runtime: Runtime, *, examples_dir: Path = EXAMPLES_DIR) -> DemoResult:
    """Create (or reuse) the demo tenant and shops and import their example files.

    Raises ``ValidationError`` when a demo company slug belongs to another tenant, ``FileNotFoundError``
    for a missing example file and ``KnowledgeImportError`` for a broken one.
    """
    slug, name = DEMO_TENANT
    async with runtime.sessionmaker() as session, session.begin():
        tenant = (await session.execute(select(Tenant).where(Tenant.slug == slug))).scalar_one_or_none()
        tenant_created = tenant is None
        if tenant is None:
            tenant = await create_tenant(session, name=name, slug=slug)
        tenant_id = tenant.id
    results: list[DemoCompanyResult] = []
    for spec in DEMO_COMPANIES:
        async with runtime.sessionmaker() as session, session.begin():
            company = (await session.execute(select(Company).where(Company.slug == spec.slug))).scalar_one_or_none()
            created = company is None
            if company is None:
                company = await create_company(
                    session, tenant_id=tenant_id, slug=spec.slug, name=spec.name, type=spec.type,
                    currency=spec.currency, language=spec.language, timezone=spec.timezone,
                )
            elif company.tenant_id != tenant_id:
                raise ValidationError(f"company slug {spec.slug!r} is used by another tenant; the demo needs it")
        result = DemoCompanyResult(slug=spec.slug, name=company.name, created=created)
        for filename, model in ((spec.products_file, KnowledgeItem), (spec.faq_file, FaqEntry)):
            if await _count(runtime, model, company):
                continue
            path = examples_dir / filename
            await import_kb(runtime, company_id=company.id, data=path.read_bytes(), filename=filename)
            result.imported.append(filename)
        result.items = await _count(runtime, KnowledgeItem, company)
        result.faq = await _count(runtime, FaqEntry, company)
        results.append(result)
    return DemoResult(tenant=slug, created=tenant_created, companies=results)
