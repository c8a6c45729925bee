"""Write operations shared by the admin API and the CLI. Each opens its own transaction with the
runtime's session factory, commits, and then delivers what it queued for customers (the outbox).

Callers authorise first: the API resolves tenant and company through ``api.deps`` and passes ids of
rows it has already seen in that scope; the CLI acts as the platform admin.
"""

from __future__ import annotations

import uuid

from api.services import Runtime
from commerce.orders import order_as_dict
from commerce.payments import mark_paid
from core.models import Company, Order
from core.tenancy import NotFound, TenantScope
from knowledge.importer import ImportResult, KnowledgeImportError, import_knowledge, record_failed_import


async def import_kb(runtime: Runtime, *, company_id: uuid.UUID, data: bytes, filename: str) -> ImportResult:
    """Import a knowledge-base file into the company in one transaction.

    Raises ``KnowledgeImportError`` (with ``row``/``column``) for a refused file; then nothing was
    imported and a ``failed`` audit row (``KnowledgeImport``) records the reason.
    """
    try:
        async with runtime.sessionmaker() as session, session.begin():
            company = await session.get(Company, company_id)
            if company is None:
                raise NotFound(f"company {company_id} not found")
            return await import_knowledge(session, company=company, data=data, filename=filename)
    except KnowledgeImportError as exc:
        async with runtime.sessionmaker() as session, session.begin():
            company = await session.get(Company, company_id)
            if company is not None:
                await record_failed_import(session, company=company, filename=filename, error=exc)
        raise


async def mark_order_paid(
    runtime: Runtime, *, order_id: uuid.UUID, method: str, scope: TenantScope | None = None
) -> tuple[dict[str, object], bool]:
    """Mark an order paid (``commerce.payments.mark_paid``) and deliver the customer's confirmation.

    ``scope`` limits the lookup to a tenant (the admin API); ``None`` is the platform admin (CLI).
    Returns the order (``order_as_dict``) and whether it changed (``False``: it was already paid).
    Raises ``NotFound``, ``ValueError`` (unknown method), ``PaymentStateError`` (refunded order).
    """
    async with runtime.sessionmaker() as session, session.begin():
        if scope is not None:
            order = await scope.get(session, Order, order_id)
        else:
            order = await session.get(Order, order_id)
            if order is None:
                raise NotFound(f"order {order_id} not found")
        changed = await mark_paid(session, order=order, method=method)
        conversation_id = order.conversation_id
        result = order_as_dict(order)
    if conversation_id is not None:
        await runtime.pipeline.deliver_pending(conversation_id=conversation_id)
    return result, changed
