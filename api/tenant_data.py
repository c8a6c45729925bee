"""Tenant data operations shared by the admin API (``api.routes.tenant_data``) and the CLI
(``api.cli_data``): key rotation, deleting a tenant or a company, exporting a contact's data, the
retention setting and its sweep. Callers authorise first (the API through ``api.deps``; the CLI acts
as the platform admin) and only format the results.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import select

from api.services import Runtime
from channels.inboxes import BUILTIN_KINDS, disconnect_inbox
from commerce.contact_export import export_contact, find_contact
from core.db import begin_write
from core.models import Company, Inbox, Tenant
from core.order_numbers import drop_order_numbers
from core.purge import delete_rows, ownership
from core.retention import (
    RetentionResult,
    companies_with_retention,
    purge_company_conversations,
    retention_days,
    set_retention_days,
)
from core.storage import company_dir, remove_tree, tenant_dir
from core.tenancy import NotFound, TenantScope
from core.vault import DEFAULT_BATCH_SIZE, RotationReport, rotate_all

log = structlog.get_logger(__name__)


# -- key rotation ----------------------------------------------------------------------------------


async def rotate_keys(runtime: Runtime, *, batch_size: int = DEFAULT_BATCH_SIZE) -> RotationReport:
    """Re-encrypt every encrypted column under the primary key of ``runtime.secret_box``
    (``core.vault.rotate_all``: batched, idempotent, safe beside a running server)."""
    report = await rotate_all(runtime.sessionmaker, box=runtime.secret_box, batch_size=batch_size)
    log.info("keys_rotated", rotated=sum(c.rotated for c in report.columns),
             unreadable=sum(c.unreadable for c in report.columns))
    return report


# -- deletion --------------------------------------------------------------------------------------


@dataclass(kw_only=True)
class DeletionReport:
    """What a deletion removed: ``rows`` per table, the ``channels`` disconnected at their providers
    (``error`` names a provider failure; the rows are deleted anyway), the ``files`` removed under
    the data directory (paths relative to it) and their ``bytes``."""

    kind: str
    tenant: str
    company: str | None = None
    channels: list[dict[str, Any]] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    bytes: int = 0

    def as_dict(self) -> dict[str, Any]:
        """JSON shape: ``{"deleted": "tenant"|"company", "tenant", "company", "channels", "rows"
        (per table, sorted), "total_rows", "files", "bytes"}``."""
        return {"deleted": self.kind, "tenant": self.tenant, "company": self.company, "channels": self.channels,
                "rows": dict(sorted(self.rows.items())), "total_rows": sum(self.rows.values()),
                "files": self.files, "bytes": self.bytes}


async def _disconnect_channels(runtime: Runtime, *, scope: TenantScope,
                               company_id: uuid.UUID | None) -> list[dict[str, Any]]:
    """Unregister every active provider inbox (Telegram ``deleteWebhook``, WAHA logout and stop)
    of the tenant or of one company through ``channels.inboxes.disconnect_inbox``. An inbox that
    cannot be disconnected (provider down, adapter unknown, credentials unreadable) is reported with
    ``error`` and the deletion goes on: the owner asked for the data to go."""
    done: list[dict[str, Any]] = []
    async with runtime.sessionmaker() as session, session.begin():
        where = [Inbox.active.is_(True), Inbox.kind.not_in(BUILTIN_KINDS)]
        if company_id is not None:
            where.append(Inbox.company_id == company_id)
        inboxes = (await session.execute(scope.select(Inbox, *where).order_by(Inbox.created_at))).scalars().all()
        for inbox in inboxes:
            try:
                error = await disconnect_inbox(session, inbox=inbox, factory=runtime.channel_factory)
            except Exception as exc:  # noqa: BLE001 - unknown kind, unreadable credentials: delete anyway
                error = type(exc).__name__
                log.warning("inbox_disconnect_skipped", inbox_id=str(inbox.id), error=error)
            done.append({"inbox_id": str(inbox.id), "kind": inbox.kind, "error": error})
    return done


async def _delete(runtime: Runtime, *, report: DeletionReport, scope: TenantScope,
                  company_id: uuid.UUID | None) -> DeletionReport:
    report.channels = await _disconnect_channels(runtime, scope=scope, company_id=company_id)
    conditions = ownership(kind="company" if company_id else "tenant", tenant_id=scope.tenant_id,
                           company_id=company_id)
    async with runtime.sessionmaker() as session, session.begin():
        await begin_write(session)
        where = [Company.id == company_id] if company_id else []
        companies = (await session.execute(scope.select(Company, *where))).scalars().all()
        report.rows = await delete_rows(session, conditions)
        await drop_order_numbers(session, [company.id for company in companies])
    for company in companies:  # no stale knowledge index stays in this process's memory
        runtime.index_cache.invalidate(company)
    data_dir = runtime.settings.data_dir
    root = (company_dir(data_dir, scope.tenant_id, company_id) if company_id
            else tenant_dir(data_dir, scope.tenant_id))
    removed = await asyncio.to_thread(remove_tree, root, data_dir=data_dir)
    report.files, report.bytes = list(removed.files), removed.bytes
    log.info("tenant_data_deleted", kind=report.kind, tenant_id=str(scope.tenant_id),
             company_id=str(company_id) if company_id else None, rows=sum(report.rows.values()),
             files=len(report.files))
    return report


async def delete_tenant(runtime: Runtime, *, scope: TenantScope) -> DeletionReport:
    """Delete the tenant: disconnect all its channels, then every row of it in every table (one
    transaction), then its directory under the data directory. Raises ``NotFound``."""
    async with runtime.sessionmaker() as session:
        tenant = await session.get(Tenant, scope.tenant_id)
        if tenant is None:
            raise NotFound(f"tenant {scope.tenant_id} not found")
        slug = tenant.slug
    return await _delete(runtime, report=DeletionReport(kind="tenant", tenant=slug), scope=scope, company_id=None)


async def delete_company(runtime: Runtime, *, scope: TenantScope, company_id: uuid.UUID) -> DeletionReport:
    """Delete one company of the tenant: disconnect its channels, then every row of it (its own and
    those hanging off them), then its directory. Raises ``NotFound``."""
    async with runtime.sessionmaker() as session:
        company = await scope.get(session, Company, company_id)
        tenant = await session.get(Tenant, scope.tenant_id)
        report = DeletionReport(kind="company", tenant=tenant.slug if tenant else str(scope.tenant_id),
                                company=company.slug)
    return await _delete(runtime, report=report, scope=scope, company_id=company_id)


# -- contact export (GDPR access request) ----------------------------------------------------------


async def contact_export(runtime: Runtime, *, scope: TenantScope, company_id: uuid.UUID, ref: str) -> dict[str, Any]:
    """The export document of the company's contact ``ref`` (id or channel id; see
    ``commerce.contact_export``). Raises ``NotFound``."""
    async with runtime.sessionmaker() as session:
        company = await scope.get(session, Company, company_id)
        contact = await find_contact(session, scope=scope, company=company, ref=ref)
        return await export_contact(session, scope=scope, company=company, contact=contact)


# -- retention -------------------------------------------------------------------------------------


async def get_retention(runtime: Runtime, *, scope: TenantScope, company_id: uuid.UUID) -> dict[str, Any]:
    """``{"company", "retention_days"}`` (``None``: conversations are kept forever). Raises ``NotFound``."""
    async with runtime.sessionmaker() as session:
        company = await scope.get(session, Company, company_id)
        return {"company": company.slug, "retention_days": retention_days(company)}


async def update_retention(runtime: Runtime, *, scope: TenantScope, company_id: uuid.UUID,
                           days: int | None) -> dict[str, Any]:
    """Set or clear the company's retention; raises ``core.retention.RetentionError``, ``NotFound``."""
    async with runtime.sessionmaker() as session, session.begin():
        company = await scope.get(session, Company, company_id)
        set_retention_days(company, days)
        return {"company": company.slug, "retention_days": retention_days(company)}


async def sweep_retention(runtime: Runtime, *, now: datetime, limit_per_company: int = 500) -> RetentionResult:
    """One retention pass over every company with a retention setting, each in its own transaction
    (``core.retention``); ``now`` is an aware UTC instant (the sweep passes ``utcnow()``)."""
    async with runtime.sessionmaker() as session:
        company_ids = await companies_with_retention(session)
    total = RetentionResult()
    for company_id in company_ids:
        async with runtime.sessionmaker() as session, session.begin():
            company = (await session.execute(select(Company).where(Company.id == company_id))).scalar_one_or_none()
            if company is None:
                continue
            total = total + await purge_company_conversations(session, company=company, now=now,
                                                              limit=limit_per_company)
    return total
