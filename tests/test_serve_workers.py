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
