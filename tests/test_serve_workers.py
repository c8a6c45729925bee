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


def _start_two_workers(tmp_path: Path) -> tuple[subprocess.Popen[bytes], int]:
    url = f"sqlite+aiosqlite:///{tmp_path}/serve.db"
    upgrade(url)
    port = _free_port()
    env = {**os.environ, "CHATCOMMERCE_DATABASE_URL": url, "CHATCOMMERCE_DATA_DIR": str(tmp_path / "data"),
           "CHATCOMMERCE_SECRET_KEY": "test-secret-key", "CHATCOMMERCE_WORKERS_ENABLED": "false",
           "CHATCOMMERCE_LOG_LEVEL": "WARNING"}
    proc = subprocess.Popen([str(CHATCOMMERCE), "serve", "--port", str(port), "--workers", "2"], env=env,
                            cwd=str(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    ready = None
    for _ in range(600):  # bounded: up to 60 s for two processes to import and start
        if proc.poll() is not None:
            raise AssertionError(proc.stdout.read().decode() if proc.stdout else "serve exited")
        try:
            ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
            if ready.status_code == 200 and len(_serving(proc.pid)) == 2 and _all_listening(proc.pid, port):
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    assert ready is not None and ready.json()["database"] == "ok"
    return proc, port


def _all_listening(pid: int, port: int) -> bool:
    return all(any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in p.net_connections("tcp"))
               for p in _serving(pid))


def test_two_workers_serve_one_port_and_stop_together(tmp_path: Path) -> None:
    proc, port = _start_two_workers(tmp_path)
    try:
        workers = _serving(proc.pid)
        assert len(workers) == 2
        answers = [httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code for _ in range(20)]
        assert answers == [200] * 20
    finally:
        proc.terminate()
        code = proc.wait(timeout=60)
    assert code == 0
    assert not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in workers)


def test_kept_alive_connections_are_spread_over_the_server_processes(tmp_path: Path) -> None:
    # A webhook sender or proxy keeps a few connections open and sends every request on them. With one
    # shared listening socket the first process to wake accepted all of them and the other one idled.
    proc, port = _start_two_workers(tmp_path)
    clients: list[socket.socket] = []
    try:
        clients = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(16)]
        for sock in clients:  # each connection answers, and stays open (HTTP/1.1 keep-alive)
            sock.sendall(f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
        for sock in clients:
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        held = {p.pid: sum(1 for c in p.net_connections("tcp")
                           if c.status == psutil.CONN_ESTABLISHED and c.laddr.port == port)
                for p in _serving(proc.pid)}
        assert sum(held.values()) == 16
        assert all(count >= 2 for count in held.values()), held
    finally:
        for sock in clients:
            sock.close()
        proc.terminate()
        proc.wait(timeout=60)


def test_each_process_binds_its_own_socket_and_a_taken_port_is_refused() -> None:
    from multiprocessing.reduction import ForkingPickler

    from api.listen import per_process_socket

    port = _free_port()
    parent = per_process_socket("127.0.0.1", port)
    opened: list[socket.socket] = []
    try:
        for _ in range(2):  # what each spawned server process receives
            sock = ForkingPickler.loads(ForkingPickler.dumps(parent))
            opened.append(sock)
            assert sock.fileno() != parent.fileno() and sock.getsockname() == ("127.0.0.1", port)
            sock.listen()
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass
    finally:
        for sock in opened:
            sock.close()
        parent.close()
    with socket.socket() as plain:  # a port held by another server, without SO_REUSEPORT
        plain.bind(("127.0.0.1", 0))
        plain.listen()
        try:
            per_process_socket("127.0.0.1", plain.getsockname()[1])
        except OSError:
            pass
        else:
            raise AssertionError("a port in use was bound")


def _serving(pid: int) -> list[psutil.Process]:
    """The uvicorn worker processes under the supervisor (not multiprocessing's helper processes)."""
    children = psutil.Process(pid).children()
    return [p for p in children if "multiprocessing.resource_tracker" not in " ".join(p.cmdline())]


def test_busy_server_processes_get_the_configured_health_ping_timeout(monkeypatch, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # uvicorn's supervisor kills a process that does not answer its ping within 5 s by default, which a
    # CPU-bound moment (an index build) can exceed: the requests in flight are lost. The setting reaches uvicorn.
    from typer.testing import CliRunner

    import api.listen
    from api.cli import app as cli_app

    seen: dict[str, object] = {}
    monkeypatch.setattr(api.listen, "serve_processes", lambda config: seen.update(
        workers=config.workers, timeout_worker_healthcheck=config.timeout_worker_healthcheck))
    for value, expected in ((None, 30), ("45", 45)):
        if value is None:
            monkeypatch.delenv("CHATCOMMERCE_WORKER_HEALTHCHECK_SECONDS", raising=False)
        else:
            monkeypatch.setenv("CHATCOMMERCE_WORKER_HEALTHCHECK_SECONDS", value)
        seen.clear()
        result = CliRunner().invoke(cli_app, ["serve", "--workers", "2", "--port", "8765"])
        assert result.exit_code == 0, result.output
        assert seen["workers"] == 2 and seen["timeout_worker_healthcheck"] == expected
