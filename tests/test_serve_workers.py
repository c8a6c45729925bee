"""``chatcommerce serve --workers N``: N server processes answer on one port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil

from core.migrate import upgrade

REPO = Path(__file__).resolve().parent.parent
CHATCOMMERCE = Path(sys.executable).with_name("chatcommerce")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_workers_serve_one_port_and_stop_together(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path}/serve.db"
    upgrade(url)
    port = _free_port()
    env = {**os.environ, "CHATCOMMERCE_DATABASE_URL": url, "CHATCOMMERCE_DATA_DIR": str(tmp_path / "data"),
           "CHATCOMMERCE_SECRET_KEY": "test-secret-key", "CHATCOMMERCE_WORKERS_ENABLED": "false",
           "CHATCOMMERCE_LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen([str(CHATCOMMERCE), "serve", "--port", str(port), "--workers", "2"], env=env,
                            cwd=str(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        ready = None
        for _ in range(600):  # bounded: up to 60 s for two processes to import and start
            assert proc.poll() is None, proc.stdout.read().decode() if proc.stdout else ""
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
                if ready.status_code == 200 and len(_serving(proc.pid)) == 2:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        assert ready is not None and ready.json()["database"] == "ok"
        workers = _serving(proc.pid)
        assert len(workers) == 2
        answers = [httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code for _ in range(20)]
        assert answers == [200] * 20
    finally:
        proc.terminate()
        code = proc.wait(timeout=60)
    assert code == 0
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in workers)


def _serving(pid: int) -> list[psutil.Process]:
    """The uvicorn worker processes under the supervisor (not multiprocessing's helper processes)."""
    children = psutil.Process(pid).children()
    return [p for p in children if "multiprocessing.resource_tracker" not in " ".join(p.cmdline())]


def test_busy_server_processes_get_the_configured_health_ping_timeout(monkeypatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # uvicorn's supervisor kills a process that does not answer its ping within 5 s by default, which a
    # CPU-bound moment (an index build) can exceed: the requests in flight are lost. The setting reaches uvicorn.
    import uvicorn
    from typer.testing import CliRunner

    from api.cli import app as cli_app

    seen: dict[str, object] = {}
    monkeypatch.setattr(uvicorn, "run", lambda *args, **kwargs: seen.update(kwargs))
    for value, expected in ((None, 30), ("45", 45)):
        if value is None:
            monkeypatch.delenv("CHATCOMMERCE_WORKER_HEALTHCHECK_SECONDS", raising=False)
        else:
            monkeypatch.setenv("CHATCOMMERCE_WORKER_HEALTHCHECK_SECONDS", value)
        seen.clear()
        result = CliRunner().invoke(cli_app, ["serve", "--workers", "2", "--port", "8765"])
        assert result.exit_code == 0, result.output
        assert seen["workers"] == 2 and seen["timeout_worker_healthcheck"] == expected
