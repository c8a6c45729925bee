"""Tenant scoping: the one query helper every tenant-owned read goes through."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.models import Company, Tenant

T = TypeVar("T")


class NotFound(LookupError):
    """Raised when a tenant-scoped lookup finds nothing (never reveals rows of another tenant)."""


@dataclass(frozen=True, slots=True)
class TenantScope:
    """The tenant a request or command acts for. Build queries with :meth:`select`."""

    tenant_id: uuid.UUID

    def select(self, model: type[T], *where: Any) -> Select[tuple[T]]:
        """``SELECT model WHERE model.tenant_id = :tenant AND *where``."""
        return select(model).where(model.tenant_id == self.tenant_id, *where)  # type: ignore[attr-defined]

    async def get(self, session: AsyncSession, model: type[T], id_: uuid.UUID) -> T:
        """Load one row of this tenant by primary key; raises ``NotFound`` otherwise."""
        row = (await session.execute(self.select(model, model.id == id_))).scalar_one_or_none()  # type: ignore[attr-defined]
        if row is None:
            raise NotFound(f"{model.__name__} {id_} not found")
        return row

    async def company(self, session: AsyncSession, slug: str) -> Company:
        """The tenant's company with this slug; raises ``NotFound`` otherwise."""
        row = (await session.execute(self.select(Company, Company.slug == slug))).scalar_one_or_none()
        if row is None:
            raise NotFound(f"company {slug!r} not found")
        return row


async def tenant_by_slug(session: AsyncSession, slug: str) -> Tenant:
    """Load a tenant by slug; raises ``NotFound``."""
    row = (await session.execute(select(Tenant).where(Tenant.slug == slug))).scalar_one_or_none()
    if row is None:
        raise NotFound(f"tenant {slug!r} not found")
    return row


async def company_by_slug(session: AsyncSession, slug: str) -> Company:
    """Load a company by its global slug (public routes such as ``/chat/{slug}``); raises ``NotFound``."""
    row = (await session.execute(select(Company).where(Company.slug == slug))).scalar_one_or_none()
    if row is None:
        raise NotFound(f"company {slug!r} not found")
    return row
