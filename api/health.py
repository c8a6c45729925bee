"""Health endpoints for load balancers and orchestrators.

* ``GET /healthz`` — liveness: the process runs and its event loop answers. Touches nothing else, so
  a database outage does not make every web process look dead (and get restarted in a loop).
* ``GET /readyz`` — readiness: the database answers ``SELECT 1`` and, when ``CHATCOMMERCE_REDIS_URL``
  is set, Redis answers ``PING``, each within ``CHATCOMMERCE_READINESS_TIMEOUT_SECONDS``. 200 with
  ``{"status": "ready", "database": "ok", "redis": "ok" | "not configured"}``, else 503 with the
  failing part named (``"unreachable"``); error details are logged, never returned.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from fastapi import APIRouter, status
from fastapi.responses import JSONResponse
from sqlalchemy import text

from api.deps import RuntimeDep

log = structlog.get_logger(__name__)

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """Liveness: ``{"status": "ok"}`` while the process serves requests (no database access)."""
    return {"status": "ok"}


@router.get("/readyz", responses={503: {"description": "the database or Redis is unreachable"}})
async def readyz(runtime: RuntimeDep) -> JSONResponse:
    """Readiness: 200 when the database (and Redis, if configured) answer, 503 naming what does not."""
    timeout = runtime.settings.readiness_timeout_seconds
    checks: dict[str, Any] = {"database": await _check("database", _database(runtime), timeout)}
    if runtime.settings.redis_url:
        checks["redis"] = await _check("redis", _redis(runtime.settings.redis_url), timeout)
    else:
        checks["redis"] = "not configured"
    ready = all(v in ("ok", "not configured") for v in checks.values())
    return JSONResponse({"status": "ready" if ready else "unavailable", **checks},
                        status_code=status.HTTP_200_OK if ready else status.HTTP_503_SERVICE_UNAVAILABLE)


async def _check(name: str, probe: Any, timeout: float) -> str:
    try:
        await asyncio.wait_for(probe, timeout)
    except Exception as exc:  # noqa: BLE001 - any failure means "not ready"; the type is logged
        log.warning("readiness_check_failed", check=name, error=type(exc).__name__)
        return "unreachable"
    return "ok"


async def _database(runtime: Any) -> None:
    async with runtime.engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


async def _redis(url: str) -> None:
    from redis.asyncio import Redis  # imported here: a process without Redis never loads the client

    client = Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2)
    try:
        await client.ping()
    finally:
        await client.aclose()
