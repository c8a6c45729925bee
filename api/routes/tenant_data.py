"""Tenant data in the admin API (``/api/v1``): delete a tenant or a company, export one contact's
data (GDPR access request), the company's retention of old conversations, and key rotation.

Every route needs the admin guard (``AdminDep``, router level); tenant and company come from
``TenantScopeDep`` / ``CompanyDep``, so another tenant's ids are a 404. The work is done by
``api.tenant_data`` (shared with the CLI).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import BaseModel, Field

from api import tenant_data
from api.deps import AdminDep, CompanyDep, Requires, RuntimeDep, TenantScopeDep
from core.retention import MAX_RETENTION_DAYS, RetentionError
from core.vault import DEFAULT_BATCH_SIZE

router = APIRouter(prefix="/api/v1", tags=["tenant data"], dependencies=[AdminDep])

_TENANT = "/tenants/{tenant}"
_COMPANY = _TENANT + "/companies/{company}"


class RetentionIn(BaseModel):
    """Days a resolved conversation is kept after its last activity; ``null`` keeps them forever."""

    retention_days: int | None = Field(default=None, ge=1, le=MAX_RETENTION_DAYS, examples=[365])


@router.delete(_TENANT, dependencies=[Depends(Requires("owner", people_only=True))])
async def delete_tenant_route(scope: TenantScopeDep, runtime: RuntimeDep) -> dict[str, Any]:
    """Delete the tenant and everything of it: its channels are disconnected at the providers
    (Telegram ``deleteWebhook``, WAHA logout), then every row in every table and every file under
    its data directory are removed. The answer reports ``rows`` per table, ``channels`` and ``files``."""
    return (await tenant_data.delete_tenant(runtime, scope=scope)).as_dict()


@router.delete(_COMPANY, dependencies=[Depends(Requires("owner", people_only=True))])
async def delete_company_route(company: CompanyDep, scope: TenantScopeDep, runtime: RuntimeDep) -> dict[str, Any]:
    """Delete one company of the tenant and everything of it (channels disconnected first; rows,
    files). The tenant's other companies are untouched. The answer is the removal report."""
    return (await tenant_data.delete_company(runtime, scope=scope, company_id=company.id)).as_dict()


@router.get(_COMPANY + "/contacts/{contact}/export", dependencies=[Depends(Requires("owner"))])
async def export_contact_route(contact: str, company: CompanyDep, scope: TenantScopeDep,
                               runtime: RuntimeDep) -> dict[str, Any]:
    """A contact's data as JSON (GDPR access request): the contact, its channel identities,
    conversations with messages, orders with lines and payments, bookings. ``contact`` is the
    contact's id or a channel's id for it (chat id, phone, e-mail, web visitor id); 404 otherwise."""
    return await tenant_data.contact_export(runtime, scope=scope, company_id=company.id, ref=contact)


@router.get(_COMPANY + "/retention")
async def get_retention_route(company: CompanyDep, scope: TenantScopeDep, runtime: RuntimeDep) -> dict[str, Any]:
    """``{"company", "retention_days"}``; ``null`` means conversations are kept forever."""
    return await tenant_data.get_retention(runtime, scope=scope, company_id=company.id)


@router.put(_COMPANY + "/retention", dependencies=[Depends(Requires("owner"))])
async def put_retention_route(body: RetentionIn, company: CompanyDep, scope: TenantScopeDep,
                              runtime: RuntimeDep) -> dict[str, Any]:
    """Set how long resolved conversations are kept after their last activity; the background sweep
    then deletes older ones with their messages (orders, payments and bookings stay, unlinked)."""
    try:
        return await tenant_data.update_retention(runtime, scope=scope, company_id=company.id,
                                                  days=body.retention_days)
    except RetentionError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None


@router.post("/keys/rotate", dependencies=[Depends(Requires("admin", people_only=True))])
async def rotate_keys_route(
    runtime: RuntimeDep, batch_size: int = Query(default=DEFAULT_BATCH_SIZE, ge=1, le=10000)
) -> dict[str, Any]:
    """Platform operation: re-encrypt every stored secret under the current
    ``CHATCOMMERCE_SECRET_KEY`` (old keys in ``CHATCOMMERCE_SECRET_KEY_FALLBACKS`` are still read).
    Reports counts per encrypted column; ``ok`` is false when some value no key can read."""
    return (await tenant_data.rotate_keys(runtime, batch_size=batch_size)).as_dict()
