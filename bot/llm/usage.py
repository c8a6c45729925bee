"""Tokens, cost and budget of the language-model mode, stored per turn in ``core.models.ModelUsage``."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.llm.config import ModelServer
from core.models import ModelUsage


def cost_usd_micros(server: ModelServer, *, prompt_tokens: int, completion_tokens: int) -> int:
    """The cost in micro-units of USD of one turn's tokens at the server's prices per million tokens
    (rounded up, so a paid turn never counts as free)."""
    total = prompt_tokens * server.input_usd_micros_per_mtok + completion_tokens * server.output_usd_micros_per_mtok
    return -(-total // 1_000_000)


async def spent_this_month(session: AsyncSession, *, tenant_id: uuid.UUID, now: datetime) -> int:
    """The tenant's model spend (micro-USD) since the start of ``now``'s calendar month (UTC)."""
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    stmt = select(func.coalesce(func.sum(ModelUsage.cost_usd_micros), 0)).where(
        ModelUsage.tenant_id == tenant_id, ModelUsage.created_at >= start)
    return int((await session.execute(stmt)).scalar_one())


async def over_budget(session: AsyncSession, *, tenant_id: uuid.UUID, server: ModelServer, now: datetime) -> bool:
    """Whether the tenant spent its monthly budget (never, without one)."""
    if server.monthly_budget_usd_micros is None:
        return False
    return await spent_this_month(session, tenant_id=tenant_id, now=now) >= server.monthly_budget_usd_micros


async def conversation_totals(session: AsyncSession, *, tenant_id: uuid.UUID, conversation_id: uuid.UUID
                              ) -> dict[str, int]:
    """``{"requests", "prompt_tokens", "completion_tokens", "cost_usd_micros", "fallbacks"}`` of one conversation."""
    row = (await session.execute(select(
        func.coalesce(func.sum(ModelUsage.requests), 0), func.coalesce(func.sum(ModelUsage.prompt_tokens), 0),
        func.coalesce(func.sum(ModelUsage.completion_tokens), 0),
        func.coalesce(func.sum(ModelUsage.cost_usd_micros), 0),
        func.count(ModelUsage.fallback),
    ).where(ModelUsage.tenant_id == tenant_id, ModelUsage.conversation_id == conversation_id))).one()
    keys = ("requests", "prompt_tokens", "completion_tokens", "cost_usd_micros", "fallbacks")
    return {k: int(v) for k, v in zip(keys, row, strict=True)}


__all__ = ["conversation_totals", "cost_usd_micros", "over_budget", "spent_this_month"]
