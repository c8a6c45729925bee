"""Cold start: build the knowledge indexes of the companies that can receive messages before the
first message asks for them (``CHATCOMMERCE_WARM_INDEXES``, on by default).

A server process (embedded queue) or a worker process starts :func:`start_warming` in its start-up;
it returns at once. The companies with an active inbox are warmed most recently active first (the
latest conversation update), one build at a time (``KnowledgeIndexCache.warm``: rows read in
partitions, the index built in a worker thread, so the event loop keeps serving and /readyz is not
held back), and no more of them than the cache keeps. A message arriving for a company whose build
is running waits for that build instead of starting a second one (the cache's per-version lock).
"""

from __future__ import annotations

import asyncio

import structlog
from sqlalchemy import func, select

from api.services import Runtime
from core.models import Company, Conversation, Inbox

log = structlog.get_logger(__name__)


async def companies_to_warm(runtime: Runtime) -> list[Company]:
    """Companies with at least one active inbox, the most recently active first (companies without
    conversations last), at most ``runtime.index_cache.max_companies`` of them."""
    last_active = (
        select(Conversation.company_id, func.max(Conversation.updated_at).label("last"))
        .group_by(Conversation.company_id).subquery()
    )
    with_inbox = select(Inbox.company_id).where(Inbox.active.is_(True))
    stmt = (
        select(Company)
        .outerjoin(last_active, last_active.c.company_id == Company.id)
        .where(Company.id.in_(with_inbox))
        .order_by(last_active.c.last.desc().nulls_last(), Company.created_at)
        .limit(runtime.index_cache.max_companies)
    )
    async with runtime.sessionmaker() as session:
        return list((await session.execute(stmt)).scalars())


async def warm_indexes(runtime: Runtime) -> int:
    """Build the indexes of :func:`companies_to_warm`; returns how many are cached. Errors are logged
    (a failed warm-up only means the first message builds the index, as without it)."""
    try:
        companies = await companies_to_warm(runtime)
        ready = await runtime.index_cache.warm(runtime.sessionmaker, companies)
    except asyncio.CancelledError:
        raise
    except Exception:  # noqa: BLE001 - warming is an optimisation, never a reason to stop
        log.exception("warm_indexes_failed")
        return 0
    log.info("indexes_warmed", companies=ready)
    return ready


def start_warming(runtime: Runtime) -> asyncio.Task[int] | None:
    """Start :func:`warm_indexes` as a background task (``None`` when ``warm_indexes`` is off). The
    caller cancels it at shutdown."""
    if not runtime.settings.warm_indexes:
        return None
    return asyncio.get_running_loop().create_task(warm_indexes(runtime), name="chatcommerce-warm-indexes")


async def stop_warming(task: asyncio.Task[int] | None) -> None:
    """Cancel a warm-up still running and wait for it."""
    if task is None:
        return
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
