"""The demo data set loaded by ``chatcommerce demo``: tenant ``demo`` with three companies from ``examples/``.

* ``apparel`` — an English clothing shop (USD) from ``apparel-shop.csv`` and ``apparel-faq.csv``, with
  delivery windows in Springfield (10:00-14:00 and 14:00-18:00, five orders each per day);
* ``florist`` — a Russian florist (RUB, Europe/Moscow) from ``florist-ru.csv`` and ``florist-faq-ru.csv``;
* ``salon`` — an English hair salon (a service company, EUR, Europe/Berlin) from ``salon-services.csv``
  and ``salon-faq.csv``, with two stylists (Anna, Marco), opening hours Tuesday to Saturday
  10:00-19:00 with a lunch break 13:00-14:00, 15-minute slots, 15-minute holds, a 24-hour
  late-cancellation rule and a 25 % prepayment (the free consultation prepays nothing).

Loading is idempotent: an existing tenant or company is reused, a file is imported only when the
company has no rows of that kind yet (products or FAQ), staff are added only when missing, the
schedule is set only when the company has none and delivery windows only when it has none, so running
the demo again duplicates nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from api.actions import import_kb
from api.services import Runtime
from commerce.delivery import add_delivery_window
from commerce.schedule import company_resources, set_schedule
from core.accounts import ValidationError, create_company, create_tenant
from core.models import Company, DeliveryWindow, FaqEntry, KnowledgeItem, Resource, Tenant

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"
DEMO_TENANT = ("demo", "Demo tenant")


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoWindow:
    """A delivery window of a demo shop: local ``"HH:MM"`` times, orders per day, weekdays (empty: every day)."""

    city: str
    start_time: str
    end_time: str
    capacity: int = 1
    weekdays: tuple[int, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoCompany:
    """A demo company: its company fields, its example files (products or services first, then FAQ),
    and for bookings its staff (``resources``) and ``schedule`` (``Company.settings["schedule"]``
    shape), for deliveries its ``delivery_windows``."""

    slug: str
    name: str
    currency: str
    language: str
    timezone: str
    products_file: str
    faq_file: str
    type: str = "product"
    resources: tuple[str, ...] = ()
    schedule: Mapping[str, Any] | None = None
    delivery_windows: tuple[DemoWindow, ...] = ()


SALON_SCHEDULE: dict[str, Any] = {
    "hours": {"mon": [], "tue": ["10:00-19:00"], "wed": ["10:00-19:00"], "thu": ["10:00-19:00"],
              "fri": ["10:00-19:00"], "sat": ["10:00-19:00"], "sun": []},
    "breaks": ["13:00-14:00"],
    "slot_step_minutes": 15,
    "hold_minutes": 15,
    "cancel_hours": 24,
    # The knowledge-base importer has no prepayment column, so the prepayment is the schedule's
    # default: 25 % of the price (Colouring 80 EUR -> 20 EUR; the free consultation prepays nothing).
    "prepay_percent": 25,
}

DEMO_COMPANIES: tuple[DemoCompany, ...] = (
    DemoCompany(slug="apparel", name="Northwind Apparel", currency="USD", language="en", timezone="America/New_York",
                products_file="apparel-shop.csv", faq_file="apparel-faq.csv",
                delivery_windows=(DemoWindow(city="Springfield", start_time="10:00", end_time="14:00", capacity=5),
                                  DemoWindow(city="Springfield", start_time="14:00", end_time="18:00", capacity=5))),
    DemoCompany(slug="florist", name="Цветочная лавка «Ромашка»", currency="RUB", language="ru",
                timezone="Europe/Moscow", products_file="florist-ru.csv", faq_file="florist-faq-ru.csv"),
    DemoCompany(slug="salon", name="Lindenhof Hair Salon", currency="EUR", language="en", timezone="Europe/Berlin",
                products_file="salon-services.csv", faq_file="salon-faq.csv", type="service",
                resources=("Anna", "Marco"), schedule=SALON_SCHEDULE),
)


@dataclass(slots=True, kw_only=True)
class DemoCompanyResult:
    """What loading one demo company did: ``created`` the company, ``imported`` these files,
    ``configured`` these settings now (``"staff: Anna, Marco"``, ``"schedule"``, ``"2 delivery windows"``)."""

    slug: str
    name: str
    created: bool
    imported: list[str] = field(default_factory=list)
    configured: list[str] = field(default_factory=list)
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


async def _configure(session: AsyncSession, company: Company, spec: DemoCompany) -> list[str]:
    """Add the missing staff, the schedule (when the company has none) and the delivery windows (when it
    has none). Staff come first: setting a schedule gives a company without resources a default one."""
    done: list[str] = []
    if spec.resources:
        existing = {r.name for r in await company_resources(session, company=company, active_only=False)}
        missing = [name for name in spec.resources if name not in existing]
        for position, name in enumerate(spec.resources):
            if name in missing:
                session.add(Resource(tenant_id=company.tenant_id, company_id=company.id, name=name, capacity=1,
                                     hours=None, days_off=[], active=True, position=position))
        await session.flush()
        if missing:
            done.append(f"staff: {', '.join(missing)}")
    if spec.schedule is not None and "schedule" not in (company.settings or {}):
        await set_schedule(session, company=company, schedule=spec.schedule)
        done.append("schedule")
    if spec.delivery_windows:
        stmt = select(func.count()).select_from(DeliveryWindow).where(DeliveryWindow.tenant_id == company.tenant_id,
                                                                      DeliveryWindow.company_id == company.id)
        if not (await session.execute(stmt)).scalar_one():
            for w in spec.delivery_windows:
                await add_delivery_window(session, company=company, city=w.city, start_time=w.start_time,
                                          end_time=w.end_time, capacity=w.capacity, weekdays=w.weekdays)
            done.append(f"{len(spec.delivery_windows)} delivery windows")
    return done


async def load_demo(runtime: Runtime, *, examples_dir: Path = EXAMPLES_DIR) -> DemoResult:
    """Create (or reuse) the demo tenant and companies, import their example files and set up the
    salon's staff and schedule and the apparel shop's delivery windows.

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
            configured = await _configure(session, company, spec)
        result = DemoCompanyResult(slug=spec.slug, name=company.name, created=created, configured=configured)
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
