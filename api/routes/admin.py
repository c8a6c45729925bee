"""Admin API under ``/api/v1``: tenants, companies, knowledge bases, conversations and orders.

Every route needs a signed-in caller (``api.deps.require_admin``, checked before anything else) with
the route's role (``Requires``; by default manager for company routes, owner for tenant routes, see
``api.auth``). Routes under ``/tenants/{tenant}`` see only that tenant's rows: the tenant and company
come from ``TenantScopeDep`` / ``CompanyDep``, never from ad-hoc queries here.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, HTTPException, Query, Request, Response, UploadFile, status
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.actions import mark_order_paid, start_import
from api.deps import AccessDep, AdminDep, CompanyDep, PrincipalDep, Requires, RuntimeDep, SessionDep, TenantScopeDep
from api.inbox import conversation_view, list_conversations, release, reply_as_human, take_over
from api.queries import kb_faq, kb_items, message_dict
from api.routes.inbox import ConversationFilterDep, CursorQuery, LimitQuery, paged
from api.routes.sales import SalesFilterDep
from api.sales import list_orders, orders_as_dicts
from api.schemas import (
    CompanyIn,
    CompanyOut,
    ConversationDetail,
    ConversationOut,
    FaqOut,
    ImportJobOut,
    ItemOut,
    ManagerMessageIn,
    MarkPaidIn,
    MessageOut,
    TenantIn,
    TenantOut,
)
from commerce.orders import order_as_dict
from core.accounts import create_company, create_tenant
from core.models import Company, FaqEntry, ImportJob, KnowledgeItem, Order, Tenant
from core.tenancy import NotFound, TenantScope
from knowledge.import_jobs import get_import_job, list_import_jobs
from knowledge.limits import ImportLimitError

router = APIRouter(prefix="/api/v1", tags=["admin"], dependencies=[AdminDep])

_TENANT = "/tenants/{tenant}"
_COMPANY = _TENANT + "/companies/{company}"


# -- tenants and companies -------------------------------------------------------------------------


@router.post("/tenants", status_code=status.HTTP_201_CREATED, response_model=TenantOut,
             dependencies=[Depends(Requires("admin"))])
async def create_tenant_route(body: TenantIn, session: SessionDep) -> Tenant:
    """Create a tenant without an owner (platform admin; people get theirs at ``/auth/signup``).
    422 for a bad or taken slug."""
    tenant = await create_tenant(session, name=body.name, slug=body.slug)
    await session.commit()
    return tenant


@router.get("/tenants", response_model=list[TenantOut], dependencies=[Depends(Requires("authenticated"))])
async def list_tenants(session: SessionDep, principal: PrincipalDep) -> list[Tenant]:
    """The tenants the caller has a role in (all of them for the platform admin), oldest first."""
    stmt = select(Tenant).order_by(Tenant.created_at)
    visible = principal.visible_tenant_ids()
    if visible is not None:
        stmt = stmt.where(Tenant.id.in_(visible))
    return list((await session.execute(stmt)).scalars())


@router.post(_TENANT + "/companies", status_code=status.HTTP_201_CREATED, response_model=CompanyOut)
async def create_company_route(body: CompanyIn, scope: TenantScopeDep, session: SessionDep) -> Company:
    """Create a company of the tenant, with its web chat and console inboxes. 422 for bad fields."""
    company = await create_company(
        session,
        tenant_id=scope.tenant_id,
        slug=body.slug,
        name=body.name,
        type=body.type,
        currency=body.currency,
        language=body.language,
        timezone=body.timezone,
        locale=body.locale,
    )
    await session.commit()
    return company


@router.get(_TENANT + "/companies", response_model=list[CompanyOut], dependencies=[Depends(Requires("manager"))])
async def list_companies(scope: TenantScopeDep, session: SessionDep, access: AccessDep) -> list[Company]:
    """The tenant's companies in creation order (a manager: only the companies assigned to them)."""
    stmt = scope.select(Company).order_by(Company.human_id)
    visible = access.principal.visible_company_ids(scope.tenant_id)
    if visible is not None:
        stmt = stmt.where(Company.id.in_(visible))
    return list((await session.execute(stmt)).scalars())


@router.get(_COMPANY, response_model=CompanyOut)
async def get_company(company: CompanyDep) -> Company:
    """One company of the tenant."""
    return company


# -- knowledge base --------------------------------------------------------------------------------


_IMPORTS = _COMPANY + "/knowledge-base/imports"
_UPLOAD_RESPONSES: dict[int | str, dict[str, Any]] = {
    413: {"description": "The file is larger than CHATCOMMERCE_IMPORT_MAX_BYTES; no job was created.",
          "content": {"application/json": {"example": {"detail": {
              "message": "the file is larger than 20971520 bytes; the limit is 20971520 bytes",
              "limit": "max_bytes", "maximum": 20971520}}}}},
}


@router.post(_IMPORTS, status_code=status.HTTP_202_ACCEPTED, response_model=ImportJobOut,
             responses=_UPLOAD_RESPONSES, dependencies=[Depends(Requires("owner"))])
@router.post(_COMPANY + "/knowledge-base", status_code=status.HTTP_202_ACCEPTED, response_model=ImportJobOut,
             responses=_UPLOAD_RESPONSES, summary="Upload Knowledge Base (same as POST .../knowledge-base/imports)",
             dependencies=[Depends(Requires("owner"))])
async def upload_knowledge_base(
    tenant: str,
    company: CompanyDep,
    session: SessionDep,
    runtime: RuntimeDep,
    response: Response,
    file: Annotated[UploadFile, File(description="CSV or XLSX: a Shopify export, an owner's sheet or an FAQ")],
) -> ImportJob:
    """Start importing a knowledge-base file into the company: 202 at once with the ``queued`` job
    (``Location``: the job's URL). The file is parsed in the background; poll
    ``GET .../knowledge-base/imports/{job_id}`` until ``status`` is ``done`` (with ``counts``) or
    ``failed`` (with ``errors`` naming row and column, or the exceeded limit; the knowledge base is
    then unchanged). 413 for a file larger than ``CHATCOMMERCE_IMPORT_MAX_BYTES``."""
    filename = file.filename or "upload"
    await session.commit()  # ends the read-only transaction; the job is created in its own
    try:
        job = await start_import(runtime, company=company, upload=file.file, filename=filename)
    except ImportLimitError as exc:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE,
                            detail={"message": exc.message, "limit": exc.limit, "maximum": exc.maximum}) from exc
    response.headers["Location"] = f"/api/v1/tenants/{tenant}/companies/{company.slug}/knowledge-base/imports/{job.id}"
    return job


@router.get(_IMPORTS, response_model=list[ImportJobOut])
async def list_imports(
    company: CompanyDep,
    scope: TenantScopeDep,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500, description="At most this many jobs")] = 50,
) -> list[ImportJob]:
    """The company's import jobs, newest first."""
    return await list_import_jobs(session, scope=scope, company=company, limit=limit)


@router.get(_IMPORTS + "/{job_id}", response_model=ImportJobOut)
async def get_import(job_id: uuid.UUID, company: CompanyDep, scope: TenantScopeDep, session: SessionDep) -> ImportJob:
    """One import job of the company (404 for another company's or tenant's job)."""
    return await get_import_job(session, scope=scope, company=company, job_id=job_id)


@router.get(_COMPANY + "/knowledge-base/items", response_model=list[ItemOut])
async def list_items(company: CompanyDep, scope: TenantScopeDep, session: SessionDep) -> list[KnowledgeItem]:
    """The company's products and services with their variants, in file order."""
    return await kb_items(session, company=company)


@router.get(_COMPANY + "/knowledge-base/faq", response_model=list[FaqOut])
async def list_faq(company: CompanyDep, scope: TenantScopeDep, session: SessionDep) -> list[FaqEntry]:
    """The company's FAQ entries, in file order."""
    return await kb_faq(session, company=company)


# -- conversations ---------------------------------------------------------------------------------


@router.get(_COMPANY + "/conversations", response_model=list[ConversationOut])
async def list_conversations_route(
    request: Request,
    response: Response,
    company: CompanyDep,
    scope: TenantScopeDep,
    session: SessionDep,
    filters: ConversationFilterDep,
    limit: LimitQuery = 100,
    cursor: CursorQuery = None,
) -> list[dict[str, Any]]:
    """The company's conversations matching the filters, most recently active first, each with its
    last message (``api.inbox.list_conversations``). The next page's cursor is in the
    ``X-Next-Cursor`` header (and ``Link: <...>; rel="next"``); none on the last page."""
    filters = replace(filters, company_ids=(company.id,))
    page = await list_conversations(session, scope=scope, filters=filters, limit=limit, cursor=cursor)
    return paged(page, request, response)


@router.get(_COMPANY + "/conversations/{conversation_id}", response_model=ConversationDetail)
async def get_conversation_route(conversation_id: uuid.UUID, company: CompanyDep, session: SessionDep
                                 ) -> dict[str, Any]:
    """One conversation with all its messages, its orders (with payments), bookings and private notes."""
    return await conversation_view(session, company=company, conversation_id=conversation_id)


@router.post(_COMPANY + "/conversations/{conversation_id}/handoff", response_model=ConversationDetail)
async def take_over_route(conversation_id: uuid.UUID, company: CompanyDep, session: SessionDep,
                          access: AccessDep) -> dict[str, Any]:
    """A person takes the conversation over: the bot stops answering it until ``release``, and it is
    assigned to them (an API key or the admin token leaves the assignee as it is)."""
    return await take_over(session, company=company, conversation_id=conversation_id,
                           assignee_user_id=access.principal.user_id)


@router.post(_COMPANY + "/conversations/{conversation_id}/release", response_model=ConversationDetail)
async def release_route(conversation_id: uuid.UUID, company: CompanyDep, session: SessionDep) -> dict[str, Any]:
    """Give the conversation back to the bot (it answers the customer's next message)."""
    return await release(session, company=company, conversation_id=conversation_id)


@router.post(
    _COMPANY + "/conversations/{conversation_id}/messages",
    status_code=status.HTTP_201_CREATED,
    response_model=MessageOut,
)
async def send_manager_message(
    conversation_id: uuid.UUID,
    body: ManagerMessageIn,
    company: CompanyDep,
    session: SessionDep,
    runtime: RuntimeDep,
    access: AccessDep,
) -> dict[str, Any]:
    """Send a manager's reply (``text`` or a ``canned_reply`` shortcut) to the customer through the
    conversation's channel; stored as outbound, sender ``manager``. The answer's ``status`` is
    ``sent`` or ``failed``. Replying takes the conversation over, as ``handoff`` does (and assigns
    it to the person replying when nobody is assigned)."""
    message = await reply_as_human(session, pipeline=runtime.pipeline, company=company,
                                   conversation_id=conversation_id, text=body.text, canned_shortcut=body.canned_reply,
                                   assignee_user_id=access.principal.user_id)
    return message_dict(message)


# -- orders ----------------------------------------------------------------------------------------


async def _order(session: AsyncSession, scope: TenantScope, company: Company, order_id: uuid.UUID) -> Order:
    order = await scope.get(session, Order, order_id)
    if order.company_id != company.id:
        raise NotFound(f"Order {order_id} not found")
    return order


@router.get(_COMPANY + "/orders")
async def list_orders_route(company: CompanyDep, session: SessionDep, filters: SalesFilterDep
                            ) -> list[dict[str, object]]:
    """The company's orders matching the filters (``status``, ``payment_status``, ``since``/``until`` on
    the time placed, ``contact_id``, ``q``), newest first (``commerce.orders.order_as_dict`` plus
    ``contact_id``; money in minor units). CSV: ``exports/orders.csv``."""
    return orders_as_dicts(await list_orders(session, company=company, filters=filters))


@router.get(_COMPANY + "/orders/{order_id}")
async def get_order_route(
    order_id: uuid.UUID, company: CompanyDep, scope: TenantScopeDep, session: SessionDep
) -> dict[str, object]:
    """One order of the company."""
    return order_as_dict(await _order(session, scope, company, order_id))


@router.post(_COMPANY + "/orders/{order_id}/mark-paid")
async def mark_paid_route(
    order_id: uuid.UUID,
    body: MarkPaidIn,
    company: CompanyDep,
    scope: TenantScopeDep,
    session: SessionDep,
    runtime: RuntimeDep,
) -> dict[str, object]:
    """Record a payment taken outside the payment page (cash, bank transfer). The customer gets the
    payment confirmation in their conversation. ``changed`` is false when the order was already paid;
    409 for a refunded order."""
    order = await _order(session, scope, company, order_id)
    await session.commit()  # ends the read-only transaction; mark_order_paid writes in its own
    result, changed = await mark_order_paid(runtime, scope=scope, order_id=order.id, method=body.method)
    return {**result, "changed": changed}
