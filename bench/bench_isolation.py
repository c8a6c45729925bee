"""Tenant isolation under load: another tenant's web-chat latency while one tenant imports a large
knowledge file and posts a huge message.

Starts the real server (``chatcommerce serve`` under uvicorn on 127.0.0.1, a free port, a fresh
database), creates tenant A (company ``bench-a``) and tenant B (company ``bench-b`` with the demo
apparel catalogue), then:

1. baseline: B's web chat is driven alone (one visitor, one message after another) for a few seconds;
2. load: A uploads a knowledge file of ROWS rows (an XLSX made here with openpyxl, or CSV) and posts
   a ~1 MB web-chat message, while B's chat keeps being driven and ``/healthz`` is polled, until A's
   import has finished.

It prints B's chat latency (p50/p99/max) in both phases, /healthz's worst latency under load, how
long the import took (upload accepted → job done) and what became of the big message.

    .venv/bin/python bench/bench_isolation.py                      # SQLite in a temp dir
    .venv/bin/python bench/bench_isolation.py postgresql           # a fresh database on 127.0.0.1:5432
    .venv/bin/python bench/bench_isolation.py sqlite --rows 100000 --format csv --app-dir /path/to/checkout

``--app-dir`` runs the server from another checkout (e.g. an older commit, to compare). The chat
client keeps cookies and sends back a ``visitor_token`` when the server issues one (and ``contact``
for servers that still take a client-chosen id). A server that imports synchronously (HTTP 200 on
upload) is handled too.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
TOKEN = "bench-admin-token-" + uuid.uuid4().hex[:8]
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
CHAT_SCRIPT = ["hi", "do you have shirts?", "how much is the ocean blue shirt?", "how much is shipping?",
               "what sizes does the classic varsity top come in?", "thanks"]


def make_file(rows: int, fmt: str) -> tuple[str, bytes]:
    """A product sheet of ``rows`` rows including the header (name, price, stock, category, description)."""
    header = ["Name", "Price", "Stock", "Category", "Description"]

    def row(i: int) -> list[object]:
        return [f"Bench product {i}", f"{i % 500 + 1}.99", i % 17, f"Category {i % 40}",
                f"A plain description of bench product number {i}"]

    if fmt == "csv":
        out = io.StringIO()
        out.write(",".join(header) + "\n")
        for i in range(1, rows):
            out.write(",".join(str(v) for v in row(i)) + "\n")
        return "bench.csv", out.getvalue().encode()
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Products")
    sheet.append(header)
    for i in range(1, rows):
        sheet.append(row(i))
    buffer = io.BytesIO()
    workbook.save(buffer)
    return "bench.xlsx", buffer.getvalue()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def pg_admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_ADMIN, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@dataclass
class ChatClient:
    """One web-chat visitor: keeps cookies (httpx does) and the ``visitor_token`` the server issues."""

    client: httpx.AsyncClient
    company: str
    contact: str = field(default_factory=lambda: "bench-" + uuid.uuid4().hex[:12])
    token: str | None = None
    sent: int = 0

    async def say(self, text: str) -> httpx.Response:
        self.sent += 1
        body: dict[str, object] = {"contact": self.contact, "text": text, "message_id": f"{self.contact}-{self.sent}"}
        headers = {}
        if self.token:
            body["visitor_token"] = self.token
            headers["X-Visitor-Token"] = self.token
        r = await self.client.post(f"/api/v1/webchat/{self.company}/messages", json=body, headers=headers)
        if r.headers.get("content-type", "").startswith("application/json"):
            token = r.json().get("visitor_token") if isinstance(r.json(), dict) else None
            self.token = token or self.token
        return r


async def drive_chat(chat: ChatClient, stop: asyncio.Event, latencies: list[float], errors: list[str]) -> None:
    i = 0
    while not stop.is_set():
        start = time.perf_counter()
        r = await chat.say(CHAT_SCRIPT[i % len(CHAT_SCRIPT)])
        latencies.append(time.perf_counter() - start)
        if r.status_code != 200:
            errors.append(f"{r.status_code} {r.text[:120]}")
        i += 1


async def poll_health(client: httpx.AsyncClient, stop: asyncio.Event, latencies: list[float]) -> None:
    while not stop.is_set():
        start = time.perf_counter()
        await client.get("/healthz")
        latencies.append(time.perf_counter() - start)
        await asyncio.sleep(0.05)


def summary(values: list[float]) -> str:
    if not values:
        return "no samples"
    ms = sorted(v * 1000 for v in values)
    p99 = ms[min(len(ms) - 1, int(round(0.99 * (len(ms) - 1))))]
    return f"n={len(ms)} p50={statistics.median(ms):.0f} ms p99={p99:.0f} ms max={ms[-1]:.0f} ms"


async def import_and_wait(client: httpx.AsyncClient, tenant: str, company: str, filename: str,
                          data: bytes) -> tuple[float, str]:
    """Upload; wait for the job (202) or the answer (200). Returns (seconds until done, outcome)."""
    start = time.perf_counter()
    r = await client.post(f"/api/v1/tenants/{tenant}/companies/{company}/knowledge-base",
                          files={"file": (filename, data, "application/octet-stream")}, headers=AUTH, timeout=600)
    accepted = time.perf_counter() - start
    if r.status_code != 202:
        return time.perf_counter() - start, f"HTTP {r.status_code} after {accepted:.1f} s: {r.text[:200]}"
    location = r.headers["location"]
    while True:
        await asyncio.sleep(0.25)
        job = (await client.get(location, headers=AUTH)).json()
        if job["status"] in ("done", "failed"):
            took = time.perf_counter() - start
            what = job["counts"] if job["status"] == "done" else job["errors"][:1]
            return took, (f"HTTP 202 after {accepted * 1000:.0f} ms; job {job['status']} {what}, "
                          f"{job['rows_processed']} rows read")


async def run(args: argparse.Namespace) -> None:
    app_dir = Path(args.app_dir).resolve() if args.app_dir else REPO
    workdir = Path(tempfile.mkdtemp(prefix="bench-isolation-"))
    pg_name = None
    if args.database == "postgresql":
        pg_name = f"bench_isolation_{uuid.uuid4().hex[:8]}"
        await pg_admin(f'CREATE DATABASE "{pg_name}"')
        url = f"postgresql+asyncpg://postgres@127.0.0.1:5432/{pg_name}"
    else:
        url = f"sqlite+aiosqlite:///{workdir}/bench.db"
    env = {**os.environ, "PYTHONPATH": str(app_dir), "CHATCOMMERCE_DATABASE_URL": url,
           "CHATCOMMERCE_ADMIN_TOKEN": TOKEN, "CHATCOMMERCE_DATA_DIR": str(workdir / "data"),
           "CHATCOMMERCE_LOG_LEVEL": "WARNING", "CHATCOMMERCE_PUBLIC_BASE_URL": "http://127.0.0.1"}
    if args.workers is not None:
        env["CHATCOMMERCE_IMPORT_WORKERS"] = str(args.workers)
    cli = [sys.executable, "-c", "from api.cli import app; app()"]
    filename, data = await asyncio.to_thread(make_file, args.rows, args.format)
    print(f"server code: {app_dir}; database: {args.database}; file: {filename}, {args.rows} rows, "
          f"{len(data) / 1e6:.1f} MB")
    subprocess.run([*cli, "init-db"], cwd=app_dir, env=env, check=True, capture_output=True)
    port = free_port()
    log = (workdir / "server.log").open("w")
    server = subprocess.Popen([*cli, "serve", "--host", "127.0.0.1", "--port", str(port)], cwd=app_dir, env=env,
                              stdout=log, stderr=subprocess.STDOUT)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120) as admin:
            for _ in range(200):
                try:
                    if (await admin.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
            await setup(admin)
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=120) as b_client, \
                    httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=600) as a_client:
                chat = ChatClient(client=b_client, company="bench-b")
                await measure(args, admin, a_client, chat, filename, data)
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()
        if pg_name:
            await pg_admin(f'DROP DATABASE IF EXISTS "{pg_name}" WITH (FORCE)')
    print(f"server log: {workdir / 'server.log'}")


async def setup(admin: httpx.AsyncClient) -> None:
    for tenant, company in (("bench-a", "bench-a"), ("bench-b", "bench-b")):
        r = await admin.post("/api/v1/tenants", json={"name": tenant, "slug": tenant}, headers=AUTH)
        r.raise_for_status()
        r = await admin.post(f"/api/v1/tenants/{tenant}/companies", json={"slug": company, "name": company},
                             headers=AUTH)
        r.raise_for_status()
    _took, outcome = await import_and_wait(admin, "bench-b", "bench-b", "apparel-shop.csv",
                                           (REPO / "examples" / "apparel-shop.csv").read_bytes())
    print(f"tenant B catalogue: {outcome}")


async def measure(args: argparse.Namespace, admin: httpx.AsyncClient, a_client: httpx.AsyncClient,
                  chat: ChatClient, filename: str, data: bytes) -> None:
    warm: list[float] = []
    errors: list[str] = []
    stop = asyncio.Event()
    driver = asyncio.create_task(drive_chat(chat, stop, warm, errors))
    await asyncio.sleep(2)
    stop.set()
    await driver

    baseline: list[float] = []
    stop = asyncio.Event()
    driver = asyncio.create_task(drive_chat(chat, stop, baseline, errors))
    await asyncio.sleep(args.baseline_seconds)
    stop.set()
    await driver
    print(f"B chat alone:        {summary(baseline)}")

    loaded: list[float] = []
    health: list[float] = []
    stop = asyncio.Event()
    driver = asyncio.create_task(drive_chat(chat, stop, loaded, errors))
    poller = asyncio.create_task(poll_health(admin, stop, health))
    await asyncio.sleep(0.5)
    big = ChatClient(client=a_client, company="bench-a")

    async def post(size: int) -> tuple[int, str]:
        start = time.perf_counter()
        try:
            r = await big.say("I would like to order " + "x" * max(0, size - 22))
        except httpx.HTTPError as exc:
            return 0, f"{type(exc).__name__} after {time.perf_counter() - start:.1f} s"
        return r.status_code, f"HTTP {r.status_code} after {time.perf_counter() - start:.2f} s"

    async def big_message() -> str:
        status, outcome = await post(args.message_bytes)
        if status in (413, 422):  # refused as too long: also send the longest text the web chat takes
            _status, longest = await post(args.fallback_chars)
            outcome += f"; a {args.fallback_chars}-character message: {longest}"
        return outcome

    importing = asyncio.create_task(import_and_wait(a_client, "bench-a", "bench-a", filename, data))
    await asyncio.sleep(0.5)
    message = asyncio.create_task(big_message())
    took, outcome = await importing
    message_outcome = await message
    await asyncio.sleep(0.5)
    stop.set()
    await asyncio.gather(driver, poller)
    print(f"B chat during load:  {summary(loaded)}")
    print(f"/healthz during load: {summary(health)}")
    print(f"A import of {args.rows} rows: {took:.1f} s until done ({outcome})")
    print(f"A {args.message_bytes / 1e6:.1f} MB message: {message_outcome}")
    if errors:
        print(f"B chat errors: {len(errors)}, first: {errors[0]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("database", nargs="?", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--rows", type=int, default=100_000, help="rows of the import, header included")
    parser.add_argument("--format", choices=("xlsx", "csv"), default="xlsx")
    parser.add_argument("--message-bytes", type=int, default=1_000_000)
    parser.add_argument("--fallback-chars", type=int, default=4000,
                        help="text length posted too when the big message is refused (the web chat's maximum)")
    parser.add_argument("--baseline-seconds", type=float, default=5.0)
    parser.add_argument("--workers", type=int, help="CHATCOMMERCE_IMPORT_WORKERS for the server (0 = a thread)")
    parser.add_argument("--app-dir", help="run the server from this checkout instead of this one")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
