"""/healthz (liveness: no database) and /readyz (database and, when configured, Redis reachable)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.test_api import make_settings, running


def _closed_port() -> int:
    """A local TCP port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _redis_up() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=0.5):
            return True
    except OSError:
        return False


async def test_ready_with_the_database_and_no_redis_configured(database_url: str, tmp_path: Path) -> None:
    async with running(make_settings(database_url, tmp_path, workers_enabled=False)) as e:
        live = await e.client.get("/healthz")
        ready = await e.client.get("/readyz")
    assert live.status_code == 200 and live.json() == {"status": "ok"}
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "database": "ok", "redis": "not configured"}


async def test_database_down_is_not_ready_but_alive(tmp_path: Path) -> None:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{_closed_port()}/nowhere"
    async with running(make_settings(url, tmp_path, workers_enabled=False)) as e:
        live = await e.client.get("/healthz")
        ready = await e.client.get("/readyz")
    assert live.status_code == 200  # a load balancer keeps the process; an orchestrator does not restart it
    assert ready.status_code == 503
    assert ready.json() == {"status": "unavailable", "database": "unreachable", "redis": "not configured"}


async def test_configured_redis_that_is_down_is_not_ready(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(database_url, tmp_path, workers_enabled=False,
                             redis_url=f"redis://127.0.0.1:{_closed_port()}/0", readiness_timeout_seconds=1)
    async with running(settings) as e:
        ready = await e.client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json() == {"status": "unavailable", "database": "ok", "redis": "unreachable"}


@pytest.mark.skipif(not _redis_up(), reason="no Redis on 127.0.0.1:6379")
async def test_configured_redis_that_answers_is_ready(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(database_url, tmp_path, workers_enabled=False, redis_url="redis://127.0.0.1:6379/0")
    async with running(settings) as e:
        ready = await e.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "database": "ok", "redis": "ok"}
