"""Creating tenants and companies (used by the admin API, the CLI and the demo loader)."""

from __future__ import annotations

import re
import uuid
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core.i18n import LOCALE_SETTING, valid_locale
from core.models import COMPANY_TYPES, Company, Inbox, Tenant
from core.order_numbers import create_order_numbers

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
SUPPORTED_LANGUAGES = ("en", "ru")
# Built-in inboxes every company has: the web chat widget and the developer console.
DEFAULT_INBOXES = (("webchat", "Web chat"), ("console", "Console"))


class ValidationError(ValueError):
    """Bad input for an account operation; the message says which field and why."""


def _check_slug(slug: str, what: str) -> None:
    if not SLUG_RE.match(slug):
        raise ValidationError(f"{what} slug {slug!r} must be 1-64 chars of a-z, 0-9 and '-'")


async def create_tenant(session: AsyncSession, *, name: str, slug: str) -> Tenant:
    """Create a tenant. Raises ``ValidationError`` for a bad or taken slug."""
    _check_slug(slug, "tenant")
    if (await session.execute(select(Tenant.id).where(Tenant.slug == slug))).first():
        raise ValidationError(f"tenant slug {slug!r} is taken")
    tenant = Tenant(name=name.strip() or slug, slug=slug)
    session.add(tenant)
    await session.flush()
    return tenant


async def create_company(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    slug: str,
    name: str,
    type: str = "product",
    currency: str = "USD",
    language: str = "en",
    timezone: str = "UTC",
    payment_provider: str = "manual",
    locale: str | None = None,
) -> Company:
    """Create a company with its built-in inboxes (web chat, console).

    ``currency`` is an ISO-4217 code, ``language`` one of ``en``/``ru``, ``timezone`` an IANA name,
    ``locale`` the Babel locale its money is written in (``de_DE``; stored as ``settings["locale"]``,
    ``None``: the usual locale of ``language``, see ``core.i18n.company_locale``).
    ``human_id`` is assigned as ``COMP001``, ``COMP002``... per tenant. Raises ``ValidationError``.
    """
    _check_slug(slug, "company")
    if type not in COMPANY_TYPES:
        raise ValidationError(f"company type must be one of {', '.join(COMPANY_TYPES)}, not {type!r}")
    currency = currency.upper()
    if not re.fullmatch(r"[A-Z]{3}", currency):
        raise ValidationError(f"currency must be an ISO-4217 code such as USD or RUB, not {currency!r}")
    if language not in SUPPORTED_LANGUAGES:
        raise ValidationError(f"language must be one of {', '.join(SUPPORTED_LANGUAGES)}, not {language!r}")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValidationError(f"unknown timezone {timezone!r}") from exc
    settings: dict[str, str] = {}
    if locale:
        try:
            settings[LOCALE_SETTING] = valid_locale(locale)
        except ValueError as exc:
            raise ValidationError(f"unknown locale {locale!r} (use a locale such as en_US or ru_RU)") from exc
    if (await session.execute(select(Company.id).where(Company.slug == slug))).first():
        raise ValidationError(f"company slug {slug!r} is taken")
    count = (await session.execute(select(func.count()).where(Company.tenant_id == tenant_id))).scalar_one()
    company = Company(
        tenant_id=tenant_id,
        slug=slug,
        human_id=f"COMP{count + 1:03d}",
        name=name.strip() or slug,
        type=type,
        currency=currency,
        language=language,
        timezone=timezone,
        payment_provider=payment_provider,
        settings=settings,
    )
    session.add(company)
    try:
        await session.flush()
    except IntegrityError as exc:
        raise ValidationError(f"company {slug!r} conflicts with an existing one") from exc
    await create_order_numbers(session, company.id)
    for kind, label in DEFAULT_INBOXES:
        session.add(Inbox(tenant_id=tenant_id, company_id=company.id, kind=kind, name=label, settings={}))
    await session.flush()
    return company


async def inbox_of_kind(session: AsyncSession, company: Company, kind: str) -> Inbox:
    """The company's first active inbox of ``kind``; raises ``LookupError`` when it has none."""
    row = (
        await session.execute(
            select(Inbox)
            .where(Inbox.tenant_id == company.tenant_id, Inbox.company_id == company.id, Inbox.kind == kind)
            .order_by(Inbox.created_at)
            .limit(1)
        )
    ).scalar_one_or_none()
    if row is None:
        raise LookupError(f"company {company.slug!r} has no {kind} inbox")
    return row
