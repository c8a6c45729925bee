"""The model server client: the official ``openai`` async SDK (``AsyncOpenAI``: ``base_url``, ``timeout``,
``max_retries`` with the SDK's exponential backoff) behind a circuit breaker per tenant (``aiobreaker``).

Works with OpenAI and any server speaking the Chat Completions wire format (Ollama, vLLM, llama.cpp
server). Streaming is off. Errors of any kind surface as ``ModelUnavailable`` (the engine then answers
with the rules).
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any

import openai
from aiobreaker import CircuitBreaker, CircuitBreakerError
from openai import AsyncOpenAI

from bot.llm.config import ModelServer


class ModelUnavailable(Exception):
    """The model could not answer: ``reason`` is ``not_configured``, ``timeout``, ``error`` or
    ``circuit_open`` (the tenant's breaker is open after repeated failures)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ModelClient:
    """Chat Completions calls for every tenant. One ``AsyncOpenAI`` per (tenant, base URL, key) is kept;
    one ``CircuitBreaker`` per tenant opens after ``fail_max`` consecutive failures and stays open for
    ``reset_after`` (so one tenant's broken server neither slows down nor blocks another tenant)."""

    def __init__(self, *, fail_max: int = 5, reset_after: timedelta = timedelta(seconds=60)) -> None:
        self._fail_max = fail_max
        self._reset_after = reset_after
        self._clients: dict[tuple[int, uuid.UUID, str, str | None, float, int], AsyncOpenAI] = {}
        self._breakers: dict[uuid.UUID, CircuitBreaker] = {}

    def breaker(self, tenant_id: uuid.UUID) -> CircuitBreaker:
        """The tenant's circuit breaker."""
        breaker = self._breakers.get(tenant_id)
        if breaker is None:
            breaker = CircuitBreaker(fail_max=self._fail_max, timeout_duration=self._reset_after,
                                     name=f"model:{tenant_id}")
            self._breakers[tenant_id] = breaker
        return breaker

    def _client(self, tenant_id: uuid.UUID, server: ModelServer) -> AsyncOpenAI:
        assert server.base_url is not None
        loop = id(asyncio.get_running_loop())  # an SDK client belongs to the event loop it was made in
        key = (loop, tenant_id, server.base_url, server.api_key, server.timeout_seconds, server.max_retries)
        client = self._clients.get(key)
        if client is None:
            client = AsyncOpenAI(base_url=server.base_url, api_key=server.api_key or "not-needed",
                                 timeout=server.timeout_seconds, max_retries=server.max_retries)
            self._clients[key] = client
        return client

    async def complete(self, *, tenant_id: uuid.UUID, server: ModelServer, messages: list[dict[str, Any]],
                       tools: list[dict[str, Any]]) -> Any:
        """One ``chat.completions.create`` call (``tool_choice="auto"``, ``max_tokens`` from ``server``);
        returns the SDK's ``ChatCompletion``. Raises ``ModelUnavailable``."""
        if not server.configured:
            raise ModelUnavailable("not_configured")
        client = self._client(tenant_id, server)

        async def call() -> Any:
            return await client.chat.completions.create(
                model=server.model or "", messages=messages, tools=tools or openai.NOT_GIVEN,  # type: ignore[arg-type]
                tool_choice="auto" if tools else openai.NOT_GIVEN, max_tokens=server.max_tokens, stream=False,
            )

        try:
            return await self.breaker(tenant_id).call_async(call)
        except CircuitBreakerError as exc:
            raise ModelUnavailable("circuit_open") from exc
        except openai.APITimeoutError as exc:
            raise ModelUnavailable("timeout") from exc
        except openai.OpenAIError as exc:
            raise ModelUnavailable("error") from exc
