"""Write operations shared by the admin API and the CLI. Each opens its own transaction with the
runtime's session factory, commits, and then delivers what it queued for customers (the outbox).

Callers authorise first: the API resolves tenant and company through ``api.deps`` and passes ids of
rows it has already seen in that scope; the CLI acts as the platform admin.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from api.services import Runtime
from commerce.orders import order_as_dict
from commerce.payments import mark_paid
from core.models import Company, ImportJob, Order
from core.tenancy import NotFound, TenantScope
from knowledge.import_jobs import create_import_job, run_import_job, save_upload, save_upload_bytes, upload_path
from knowledge.importer import ImportResult


async def _new_job(
    runtime: Runtime, *, company: Company, filename: str, save: Callable[..., int]
) -> tuple[ImportJob, Path]:
    job_id = uuid.uuid4()
    path = upload_path(runtime.settings.data_dir, tenant_id=company.tenant_id, job_id=job_id, filename=filename)
    size = await asyncio.to_thread(save, path, max_bytes=runtime.imports.limits.max_bytes)
    try:
        async with runtime.sessionmaker() as session, session.begin():
            job = await create_import_job(session, company=company, job_id=job_id, filename=filename,
                                          size_bytes=size)
    except BaseException:
        await asyncio.to_thread(path.unlink, missing_ok=True)
        raise
    return job, path


async def start_import(runtime: Runtime, *, company: Company, upload: BinaryIO, filename: str) -> ImportJob:
    """Queue an import of ``upload`` (a binary file object, e.g. the request's spooled upload) into
    ``company`` and return the ``queued`` job at once; ``runtime.imports`` runs it in the background.

    The upload is copied (in a thread) to the tenant's upload folder and deleted when the job ends.
    Raises ``knowledge.limits.ImportLimitError`` (``max_bytes``) for a file larger than
    ``CHATCOMMERCE_IMPORT_MAX_BYTES``; then no job is created.
    """
    job, path = await _new_job(runtime, company=company, filename=filename,
                               save=lambda path, max_bytes: save_upload(upload, path, max_bytes=max_bytes))
    runtime.imports.submit(job.id, path)
    return job


async def import_kb(
    runtime: Runtime,
    *,
    company_id: uuid.UUID,
    data: bytes,
    filename: str,
    on_progress: Callable[[int, int | None], object] | None = None,
) -> ImportResult:
    """Import a knowledge-base file into the company now, as an import job run in this process (the
    parse in a thread; the CLI and the demo use it). ``on_progress(rows_done, total_rows)`` reports
    rows read (from the parsing thread).

    Returns the counts and warnings. Raises ``KnowledgeImportError`` (with ``row``/``column``, or a
    ``knowledge.limits.ImportLimitError`` naming the limit) for a refused file; then nothing was
    imported, the job is ``failed`` and a ``failed`` audit row (``KnowledgeImport``) records the reason.
    Raises ``NotFound`` for an unknown company.
    """
    async with runtime.sessionmaker() as session:
        company = await session.get(Company, company_id)
        if company is None:
            raise NotFound(f"company {company_id} not found")
    job, path = await _new_job(runtime, company=company, filename=filename,
                               save=lambda path, max_bytes: save_upload_bytes(data, path, max_bytes=max_bytes))
    outcome = await run_import_job(runtime.sessionmaker, job_id=job.id, path=path, limits=runtime.imports.limits,
                                   on_progress=on_progress, snapshot_dir=runtime.settings.data_dir)
    if outcome.error is not None:
        raise outcome.error
    if outcome.result is None:
        raise RuntimeError(f"import job {job.id} did not finish: {outcome.job.errors if outcome.job else 'skipped'}")
    return outcome.result


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
