"""Tokens, cost and budget of the language-model mode, stored per turn in ``core.models.ModelUsage``, and
the assist share of a company (``assist_usage``: how many customer turns reached the model)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.llm.config import ModelServer
from core.models import Conversation, Message, ModelUsage


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


@dataclass(frozen=True, slots=True, kw_only=True)
class AssistUsage:
    """How a company's customer turns were answered in ``[since, until)`` (aware UTC; ``None``: open).

    ``turns``: customer messages; ``model_turns``: turns sent to the model (``assist``: the rules'
    misses; ``llm``: every typed turn); ``model_answered``: turns whose reply was the model's;
    ``fallbacks``: turns the rules answered after all, by reason (``timeout``, ``error``,
    ``circuit_open``, ``not_configured``, ``budget``, ``guard``, ``rounds``); the model's requests,
    tokens and cost in micro-units of USD (the running summary's calls included)."""

    turns: int
    model_turns: int
    model_answered: int = 0
    fallbacks: dict[str, int] = field(default_factory=dict)
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd_micros: int = 0
    since: datetime | None = None
    until: datetime | None = None

    @property
    def rules_turns(self) -> int:
        """Turns answered by the rules: never sent to the model, or sent and fallen back."""
        return max(self.turns - self.model_answered, 0)

    @property
    def share(self) -> float:
        """``model_turns / turns`` (0.0 without turns)."""
        return self.model_turns / self.turns if self.turns else 0.0

    def __add__(self, other: AssistUsage) -> AssistUsage:
        """The sum of two reports (the range of ``self`` kept)."""
        reasons = dict(self.fallbacks)
        for reason, n in other.fallbacks.items():
            reasons[reason] = reasons.get(reason, 0) + n
        return AssistUsage(
            turns=self.turns + other.turns, model_turns=self.model_turns + other.model_turns,
            model_answered=self.model_answered + other.model_answered, fallbacks=reasons,
            requests=self.requests + other.requests, prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            cost_usd_micros=self.cost_usd_micros + other.cost_usd_micros, since=self.since, until=self.until)

    def as_dict(self) -> dict[str, Any]:
        """JSON shape: the counts above plus ``rules_turns`` and ``share`` (0..1, 4 decimals); ``since``
        and ``until`` as ISO-8601 (or ``None``)."""
        return {"since": self.since.isoformat() if self.since else None,
                "until": self.until.isoformat() if self.until else None,
                "turns": self.turns, "rules_turns": self.rules_turns, "model_turns": self.model_turns,
                "model_answered": self.model_answered, "share": round(self.share, 4),
                "fallbacks": dict(sorted(self.fallbacks.items())), "requests": self.requests,
                "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "cost_usd_micros": self.cost_usd_micros}

    def summary_line(self) -> str:
        """One line for people: ``"1 of 3 customer turns reached the model (33%); ..."``."""
        fallbacks = ", ".join(f"{k} {v}" for k, v in sorted(self.fallbacks.items())) or "none"
        return (f"{self.model_turns} of {self.turns} customer turns reached the model ({self.share:.0%}); "
                f"answered by the model {self.model_answered}, by the rules {self.rules_turns}; "
                f"fallbacks: {fallbacks}; tokens {self.prompt_tokens} in / {self.completion_tokens} out; "
                f"cost {self.cost_usd_micros / 1_000_000:.6f} USD")


async def assist_usage(session: AsyncSession, *, tenant_id: uuid.UUID, company_id: uuid.UUID,
                       since: datetime | None = None, until: datetime | None = None) -> AssistUsage:
    """The company's ``AssistUsage`` in ``[since, until)``: customer messages (``messages``, direction
    ``in``) and model turns (``model_usage``) created in the range, of this tenant only. The one place
    the assist share is computed (admin API ``GET .../assistant/usage``, ``chatcommerce assistant usage``
    and ``chatcommerce test-dialogues --engine``)."""
    conversations = select(Conversation.id).where(Conversation.tenant_id == tenant_id,
                                                  Conversation.company_id == company_id)
    turns_q = select(func.count()).select_from(Message).where(
        Message.tenant_id == tenant_id, Message.direction == "in", Message.conversation_id.in_(conversations))
    usage_filter = [ModelUsage.tenant_id == tenant_id, ModelUsage.company_id == company_id]
    if since is not None:
        turns_q = turns_q.where(Message.created_at >= since)
        usage_filter.append(ModelUsage.created_at >= since)
    if until is not None:
        turns_q = turns_q.where(Message.created_at < until)
        usage_filter.append(ModelUsage.created_at < until)
    turns = int((await session.execute(turns_q)).scalar_one())
    totals = (await session.execute(select(
        func.count(), func.coalesce(func.sum(case((ModelUsage.fallback.is_(None), 1), else_=0)), 0),
        func.coalesce(func.sum(ModelUsage.requests), 0), func.coalesce(func.sum(ModelUsage.prompt_tokens), 0),
        func.coalesce(func.sum(ModelUsage.completion_tokens), 0),
        func.coalesce(func.sum(ModelUsage.cost_usd_micros), 0),
    ).where(*usage_filter))).one()
    reasons = (await session.execute(select(ModelUsage.fallback, func.count()).where(
        *usage_filter, ModelUsage.fallback.is_not(None)).group_by(ModelUsage.fallback))).all()
    return AssistUsage(turns=turns, model_turns=int(totals[0]), model_answered=int(totals[1]),
                       fallbacks={str(r): int(n) for r, n in reasons}, requests=int(totals[2]),
                       prompt_tokens=int(totals[3]), completion_tokens=int(totals[4]),
                       cost_usd_micros=int(totals[5]), since=since, until=until)


__all__ = ["AssistUsage", "assist_usage", "conversation_totals", "cost_usd_micros", "over_budget",
           "spent_this_month"]
