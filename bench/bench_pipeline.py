"""End-to-end throughput of one chatcommerce server: signed WAHA webhooks in, replies out.

What runs (all on 127.0.0.1, bounded):

* a fresh PostgreSQL database (``BENCH_DATABASE_URL``, dropped and re-created) with one company, the
  demo apparel catalogue and one WhatsApp (WAHA) inbox whose buffer window is 0;
* the real server, ``chatcommerce serve`` (uvicorn) in its own process, ``--workers N`` for each N in
  ``BENCH_WORKERS`` (default ``1``; e.g. ``1,2``);
* the local WAHA server double (``tests/doubles/waha_server.py``) in this process: it delivers the
  webhooks, signed with HMAC-SHA512 as WAHA does, and receives the replies (``POST /api/sendText``);
* ``BENCH_CONTACTS`` contacts (default 1,024) each playing the English shopping script (greet, price,
  add with variant, add, cart, checkout, name, address, skip → payment link), ``BENCH_CONCURRENCY``
  webhooks in flight (default 16); each contact sends its next message once the previous one was
  answered;
* the same load against a bare FastAPI echo (``bench/echo_app.py``, one uvicorn process) for a ratio.

With ``--queue redis`` (Redis at ``BENCH_REDIS_URL``, default ``redis://127.0.0.1:6379/0``) the server is
one ``chatcommerce serve`` process with ``CHATCOMMERCE_QUEUE=redis`` that only verifies, stores and
enqueues, and ``BENCH_WORKERS`` counts ``chatcommerce worker`` processes that answer (a fresh stream per
run); CPU and RSS cover the web process and the workers.

Printed per worker count: messages/s; latency p50/p95/p99 from the webhook POST to the first reply
received at the WAHA double; CPU ms per message (user+system time of the server's processes during
the measured run / messages); SQL statements, transactions and pool checkouts per message (counted in
the server by ``CHATCOMMERCE_SQL_STATS_FILE``, whole server life including the warm-up); RSS of each
server process at the end.

    PYTHONPATH=. .venv/bin/python bench/bench_pipeline.py
    PYTHONPATH=. BENCH_WORKERS=1,2 BENCH_CONTACTS=256 .venv/bin/python bench/bench_pipeline.py
    PYTHONPATH=. BENCH_WORKERS=1,2 BENCH_CONTACTS=128 .venv/bin/python bench/bench_pipeline.py --queue redis

(``PYTHONPATH=.`` makes the test doubles importable.) The bench itself (load generator and WAHA double)
runs on uvloop (``BENCH_LOOP=asyncio`` for the standard loop) and prints its own CPU per message and
share of a core next to the server's: on a small machine it competes with the server for the cores.

``BENCH_DATABASE_URL`` default: ``postgresql+asyncpg://postgres@127.0.0.1:5432/chatcommerce_bench`` (TCP; a
local server's Unix socket: ``postgresql+asyncpg://postgres@/chatcommerce_bench?host=/var/run/postgresql``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil
from aiohttp import web
from sqlalchemy.engine import make_url

from core.accounts import create_company, create_tenant
from core.db import create_engine, create_sessionmaker
from core.http import pooled_client
from core.migrate import upgrade
from core.models import Inbox
from core.security import SecretBox
from knowledge.importer import import_knowledge
from tests.doubles.waha_server import FakeWaha

REPO = Path(__file__).resolve().parent.parent
SCRIPT = ["hi", "how much is the ocean blue shirt?", "2 classic varsity tops size medium", "add an ocean blue shirt",
          "cart", "checkout", "Alice", "12 Main Street, Springfield", "skip"]
DEFAULT_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/chatcommerce_bench"
SECRET_KEY = "bench-secret-key-" + "x" * 16
HMAC_KEY = "bench-hmac-key"
REPLY_TIMEOUT = 60.0
WARMUP_CONTACTS = 16


class ReplyClock(FakeWaha):
    """The WAHA double, noting when each chat receives a reply (``sendText``/``sendImage`` accepted)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # Webhook POSTs wait up to REPLY_TIMEOUT (the double's default of 10 s would cut slow answers), on
        # aiohttp's pool (core.http): httpx's own costs the load generator four times the CPU per request.
        self._http = pooled_client(timeout=REPLY_TIMEOUT, limits=httpx.Limits(max_connections=100))
        self.received: dict[str, list[float]] = {}
        self.arrived: dict[str, asyncio.Event] = {}

    def _note(self, response: web.Response) -> web.Response:
        if response.status == 201 and isinstance(response.body, bytes):
            chat_id = json.loads(response.body)["to"]  # the WAMessage sent
            self.received.setdefault(chat_id, []).append(time.perf_counter())
            self.arrived.setdefault(chat_id, asyncio.Event()).set()
        return response

    async def _send_text(self, request: web.Request) -> web.Response:
        return self._note(await super()._send_text(request))

    async def _send_image(self, request: web.Request) -> web.Response:
        return self._note(await super()._send_image(request))

    async def wait_reply(self, chat_id: str, *, after: int) -> float | None:
        """The time the chat's reply number ``after + 1`` arrived (``None`` after ``REPLY_TIMEOUT``)."""
        deadline = time.perf_counter() + REPLY_TIMEOUT
        event = self.arrived.setdefault(chat_id, asyncio.Event())
        while len(self.received.get(chat_id, [])) <= after:
            event.clear()
            remaining = deadline - time.perf_counter()
            if remaining <= 0:
                return None
            try:
                await asyncio.wait_for(event.wait(), remaining)
            except TimeoutError:
                return None
        return self.received[chat_id][after]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def reset_database(url: str) -> None:
    u = make_url(url)
    host = u.host or u.query.get("host")  # ``…@/db?host=/var/run/postgresql``: a Unix socket
    conn = await asyncpg.connect(host=host, port=u.port or 5432, user=u.username, password=u.password,
                                 database="postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{u.database}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{u.database}"')
    finally:
        await conn.close()


async def seed(url: str, *, waha_url: str) -> str:
    """Migrate, create the shop and its WAHA inbox (buffer window 0); return the inbox id."""
    await asyncio.to_thread(upgrade, url)
    engine = create_engine(url)
    try:
        async with create_sessionmaker(engine)() as s, s.begin():
            tenant = await create_tenant(s, name="Bench", slug="bench")
            company = await create_company(s, tenant_id=tenant.id, slug="bench-apparel", name="Bench Apparel")
            await import_knowledge(s, company=company, data=(REPO / "examples/apparel-shop.csv").read_bytes(),
                                   filename="apparel-shop.csv")
            box = SecretBox(key_material=SECRET_KEY)
            inbox = Inbox(tenant_id=tenant.id, company_id=company.id, kind="whatsapp_waha", name="WhatsApp",
                          credentials=box.encrypt(json.dumps({"api_key": "waha-test-key", "hmac_key": HMAC_KEY})),
                          settings={"base_url": waha_url, "session": "default", "buffer_seconds": 0}, active=True)
            s.add(inbox)
            await s.flush()
            return str(inbox.id)
    finally:
        await engine.dispose()


@dataclass
class Server:
    """A server process tree (uvicorn and its workers)."""

    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    @property
    def tree(self) -> list[psutil.Process]:
        root = psutil.Process(self.proc.pid)
        return [root, *root.children(recursive=True)]

    def cpu_seconds(self) -> float:
        total = 0.0
        for p in self.tree:
            try:
                t = p.cpu_times()
                total += t.user + t.system
            except psutil.NoSuchProcess:
                pass
        return total

    def rss_mb(self) -> list[float]:
        """RSS of each process that serves requests (the workers; the process itself with one worker)."""
        procs = self.tree
        serving = procs[1:] if len(procs) > 1 else procs
        # uvicorn's supervisor also starts a multiprocessing resource tracker: skip tiny helpers.
        return [round(p.memory_info().rss / 2**20, 1) for p in serving if p.memory_info().rss > 40 * 2**20]

    async def stop(self) -> None:
        self.proc.terminate()
        try:
            await asyncio.to_thread(self.proc.wait, 30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@dataclass
class Fleet:
    """Every process of one configuration: the web server tree and, with ``--queue redis``, the workers."""

    servers: list[Server]

    def cpu_seconds(self) -> float:
        return sum(s.cpu_seconds() for s in self.servers)

    def rss_mb(self) -> list[float]:
        return [mb for s in self.servers for mb in s.rss_mb()]

    def cpu_by_process(self) -> dict[int, float]:
        """CPU seconds (user+system) of each process of the fleet, by pid."""
        found: dict[int, float] = {}
        for server in self.servers:
            for p in server.tree:
                try:
                    t = p.cpu_times()
                    found[p.pid] = t.user + t.system
                except psutil.NoSuchProcess:
                    pass
        return found

    async def stop(self) -> None:
        for server in self.servers:
            await server.stop()


async def start_worker(args: list[str], *, env: dict[str, str], log: Path) -> Server:
    """A ``chatcommerce worker`` process, returned once it logged ``worker_started``."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=str(REPO))
    for _ in range(1800):  # up to 180 s on a busy machine
        if proc.poll() is not None:
            raise RuntimeError(f"worker exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        if "worker_started" in log.read_text(errors="replace"):
            return Server(proc=proc, url="", log=log)
        await asyncio.sleep(0.1)
    proc.kill()
    raise RuntimeError("worker did not start in 180 s")


def listening_processes(pid: int, port: int) -> int:
    """How many processes of the tree under ``pid`` listen on ``port`` (each server process its own socket)."""
    root = psutil.Process(pid)
    count = 0
    for p in [root, *root.children(recursive=True)]:
        try:
            count += any(c.status == psutil.CONN_LISTEN and c.laddr.port == port for c in p.net_connections("tcp"))
        except psutil.Error:
            pass
    return count


async def start_server(args: list[str], *, env: dict[str, str], port: int, log: Path, processes: int = 1) -> Server:
    """The server, returned once it answers ``/healthz`` and ``processes`` processes listen: the load's
    kept-alive connections stay with the processes that accept them, so none may start late."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=str(REPO))
    url = f"http://127.0.0.1:{port}"
    async with httpx.AsyncClient() as client:
        for _ in range(1800):  # up to 180 s: several workers importing on a busy machine
            if proc.poll() is not None:
                raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if ((await client.get(f"{url}/healthz", timeout=2)).status_code == 200
                        and listening_processes(proc.pid, port) >= processes):
                    return Server(proc=proc, url=url, log=log)
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not become healthy in 180 s")


@dataclass
class Run:
    messages: int = 0
    latencies: list[float] = field(default_factory=list)
    missing: int = 0
    errors: int = 0
    elapsed: float = 0.0


async def play(waha: ReplyClock, contacts: range, *, concurrency: int) -> Run:
    """Contacts play the script; ``concurrency`` webhooks in flight. Each worker owns every
    ``concurrency``-th contact and walks the script step by step across them."""
    run = Run()

    async def worker(w: int) -> None:
        mine = [n for n in contacts if n % concurrency == w]
        for text in SCRIPT:
            for n in mine:
                chat = f"1555{n:07d}@c.us"
                before = len(waha.received.get(chat, []))
                start = time.perf_counter()
                try:
                    _payload, deliveries = await waha.emit_message(from_=chat, body=text, notify_name=f"C{n}")
                except httpx.HTTPError:
                    run.errors += 1
                    continue
                if not deliveries or deliveries[0].status != 200:
                    run.errors += 1
                    continue
                arrived = await waha.wait_reply(chat, after=before)
                run.messages += 1
                if arrived is None:
                    run.missing += 1
                else:
                    run.latencies.append(arrived - start)

    started = time.perf_counter()
    await asyncio.gather(*[worker(w) for w in range(concurrency)])
    run.elapsed = time.perf_counter() - started
    return run


async def echo_rate(url: str, *, inbox_id: str, requests: int, concurrency: int) -> float:
    """Requests/s of signed WAHA-shaped POSTs against the echo app (same client, same concurrency)."""
    body = json.dumps({"event": "message", "session": "default", "payload": {"id": "x", "from": "1@c.us",
                                                                            "body": "hi"}}).encode()
    done = 0
    async with pooled_client(timeout=10) as client:
        async def worker() -> None:
            nonlocal done
            while done < requests:
                done += 1
                r = await client.post(f"{url}/webhooks/whatsapp_waha/{inbox_id}", content=body,
                                      headers={"Content-Type": "application/json"})
                r.raise_for_status()

        started = time.perf_counter()
        await asyncio.gather(*[worker() for _ in range(concurrency)])
        return requests / (time.perf_counter() - started)


def harness_cpu_seconds() -> float:
    """User+system CPU seconds of this process (the load generator and the WAHA double)."""
    t = psutil.Process().cpu_times()
    return t.user + t.system


def postgres_cpu(database: str) -> dict[int, float]:
    """CPU seconds (user+system) of each local PostgreSQL backend serving ``database`` (found by its
    process title, ``postgres: … <user> <database> <client> …``); empty when they cannot be read."""
    found: dict[int, float] = {}
    for proc in psutil.process_iter(["cmdline"]):
        try:
            title = " ".join(proc.info["cmdline"] or [])
            if title.startswith("postgres:") and f" {database} " in title:
                t = proc.cpu_times()
                found[proc.pid] = t.user + t.system
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return found


def pct(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return float("nan")
    if len(sorted_values) < 2:
        return sorted_values[0] * 1000
    return statistics.quantiles(sorted_values, n=100, method="inclusive")[int(p) - 1] * 1000


async def bench_workers(workers: int, *, url: str, contacts: int, concurrency: int, tmp: Path,
                        queue: str = "embedded", redis_url: str | None = None) -> dict[str, Any]:
    waha = ReplyClock()
    await waha.start()
    try:
        await reset_database(url)
        inbox_id = await seed(url, waha_url=waha.url)
        port = free_port()
        stats_file = tmp / f"sql-{workers}.jsonl"
        env = {**os.environ, "CHATCOMMERCE_DATABASE_URL": url, "CHATCOMMERCE_SECRET_KEY": SECRET_KEY,
               "CHATCOMMERCE_DATA_DIR": str(tmp), "CHATCOMMERCE_LOG_LEVEL": "WARNING",
               "CHATCOMMERCE_WORKERS_ENABLED": "false", "CHATCOMMERCE_SQL_STATS_FILE": str(stats_file),
               "CHATCOMMERCE_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}"}
        cli = str(Path(sys.executable).with_name("chatcommerce"))
        args = [cli, "serve", "--host", "127.0.0.1", "--port", str(port)]
        if queue == "redis":
            assert redis_url
            env.update({"CHATCOMMERCE_QUEUE": "redis", "CHATCOMMERCE_REDIS_URL": redis_url,
                        "CHATCOMMERCE_QUEUE_STREAM": f"chatcommerce:bench:{uuid.uuid4().hex}"})
        elif workers != 1:
            args += ["--workers", str(workers)]
        server = await start_server(args, env=env, port=port, log=tmp / f"server-{workers}.log",
                                    processes=workers if queue == "embedded" else 1)
        fleet = Fleet(servers=[server])
        if queue == "redis":
            for n in range(workers):
                fleet.servers.append(await start_worker([cli, "worker"], env={**env, "CHATCOMMERCE_LOG_LEVEL": "INFO"},
                                                        log=tmp / f"worker-{workers}-{n}.log"))
        waha.add_session("default", config={"webhooks": [{
            "url": f"{server.url}/webhooks/whatsapp_waha/{inbox_id}", "events": ["message"],
            "hmac": {"key": HMAC_KEY}}]})
        try:
            # Warm-up (not measured): first messages build the catalogue index in every worker.
            await play(waha, range(10_000_000, 10_000_000 + WARMUP_CONTACTS * workers), concurrency=concurrency)
            database = make_url(url).database or ""
            cpu0, harness0, pg0 = fleet.cpu_seconds(), harness_cpu_seconds(), postgres_cpu(database)
            per0 = fleet.cpu_by_process()
            run = await play(waha, range(contacts), concurrency=concurrency)
            cpu, harness = fleet.cpu_seconds() - cpu0, harness_cpu_seconds() - harness0
            pg1 = postgres_cpu(database)
            per = [round((seconds - per0.get(pid, 0.0)) / run.elapsed, 2)
                   for pid, seconds in fleet.cpu_by_process().items()]
            per = [share for share in per if share >= 0.01]  # not uvicorn's supervisor or its helpers
            pg = sum(seconds - pg0.get(pid, 0.0) for pid, seconds in pg1.items())
            rss = fleet.rss_mb()
        finally:
            await fleet.stop()
        counts = [json.loads(line) for line in stats_file.read_text().splitlines()] if stats_file.exists() else []
        if run.errors or run.missing:
            for proc in fleet.servers:
                print(f"{proc.log.name} (tail):\n{proc.log.read_text()[-4000:]}", file=sys.stderr)
    finally:
        await waha.stop()
    total = run.messages + WARMUP_CONTACTS * workers * len(SCRIPT)
    lat = sorted(run.latencies)
    return {
        "queue": queue, "workers": workers, "messages": run.messages, "missing_replies": run.missing,
        "errors": run.errors,
        "seconds": round(run.elapsed, 2), "messages_per_s": round(run.messages / run.elapsed, 1),
        "p50_ms": round(pct(lat, 50), 1), "p95_ms": round(pct(lat, 95), 1), "p99_ms": round(pct(lat, 99), 1),
        "cpu_ms_per_message": round(cpu * 1000 / max(run.messages, 1), 2),
        "harness_cpu_ms_per_message": round(harness * 1000 / max(run.messages, 1), 2),
        "harness_cpu_share": round(harness / run.elapsed, 2),
        "postgres_cpu_ms_per_message": round(pg * 1000 / max(run.messages, 1), 2),
        "server_cpu_share_by_process": per,
        "sql_statements_per_message": round(sum(c["statements"] for c in counts) / total, 1) if counts else None,
        "sql_transactions_per_message": round(sum(c["transactions"] for c in counts) / total, 2) if counts else None,
        "pool_checkouts_per_message": round(sum(c["checkouts"] for c in counts) / total, 2) if counts else None,
        "rss_mb": rss,
    }


async def bench_echo(*, concurrency: int, requests: int, tmp: Path) -> dict[str, float]:
    """The echo's requests/s, and the CPU ms per request of its server process and of this harness."""
    port = free_port()
    args = [sys.executable, "-m", "uvicorn", "--app-dir", str(REPO / "bench"), "echo_app:create_app", "--factory",
            "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    server = await start_server(args, env=dict(os.environ), port=port, log=tmp / "echo.log")
    try:
        await echo_rate(server.url, inbox_id="warmup", requests=200, concurrency=concurrency)
        server0, harness0 = server.cpu_seconds(), harness_cpu_seconds()
        rate = await echo_rate(server.url, inbox_id=str(secrets.token_hex(4)), requests=requests,
                               concurrency=concurrency)
        return {"requests_per_s": round(rate, 1),
                "server_cpu_ms_per_request": round((server.cpu_seconds() - server0) * 1000 / requests, 3),
                "harness_cpu_ms_per_request": round((harness_cpu_seconds() - harness0) * 1000 / requests, 3)}
    finally:
        await server.stop()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--queue", choices=("embedded", "redis"), default=os.environ.get("BENCH_QUEUE", "embedded"),
                        help="embedded: `serve --workers N` answers; redis: one web process enqueues and N "
                             "`chatcommerce worker` processes answer")
    options = parser.parse_args()
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
    url = os.environ.get("BENCH_DATABASE_URL", DEFAULT_URL)
    contacts = int(os.environ.get("BENCH_CONTACTS", "1024"))
    concurrency = int(os.environ.get("BENCH_CONCURRENCY", "16"))
    worker_counts = [int(w) for w in os.environ.get("BENCH_WORKERS", "1").split(",")]
    echo_requests = int(os.environ.get("BENCH_ECHO_REQUESTS", "5000"))
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        print(f"database: {make_url(url).get_backend_name()}; {contacts} contacts x {len(SCRIPT)} messages, "
              f"concurrency {concurrency}, buffer window 0, queue {options.queue}", flush=True)
        results = []
        for w in worker_counts:
            results.append(await bench_workers(w, url=url, contacts=contacts, concurrency=concurrency, tmp=tmp,
                                               queue=options.queue, redis_url=redis_url))
            report(results[-1])
        echo = await bench_echo(concurrency=concurrency, requests=echo_requests, tmp=tmp)
    print(f"bare FastAPI echo (1 uvicorn process): {echo['requests_per_s']:.0f} requests/s "
          f"(server CPU {echo['server_cpu_ms_per_request']} ms/request, harness CPU "
          f"{echo['harness_cpu_ms_per_request']} ms/request); "
          f"engine/echo = {results[0]['messages_per_s'] / echo['requests_per_s']:.3f}")
    budget(results[0], cores=psutil.cpu_count() or 1)
    if len(results) > 1:
        print(f"scaling: workers {results[-1]['workers']} / workers {results[0]['workers']} = "
              f"{results[-1]['messages_per_s'] / results[0]['messages_per_s']:.2f}x")
    print(json.dumps({"results": results, "echo": echo}))


def budget(r: dict[str, Any], *, cores: int) -> None:
    """What the measured CPU per message allows on this machine: the server processes, PostgreSQL and
    the harness all share its ``cores``. Printed so that a target (messages/s) can be checked against
    the machine before the code: the harness's and PostgreSQL's share at that rate is not the server's."""
    server, harness, pg = r["cpu_ms_per_message"], r["harness_cpu_ms_per_message"], r["postgres_cpu_ms_per_message"]
    total = server + harness + (pg or 0.0)
    print(f"machine budget ({cores} cores): server {server} + harness {harness} + PostgreSQL {pg} = {total:.2f} CPU "
          f"ms/message -> at most {cores * 1000 / total:.0f} messages/s with every core busy, "
          f"{1000 / server:.0f} messages/s for one server process on a core of its own")
    for rate in (100, 300):
        others = rate * (harness + (pg or 0.0)) / 1000
        left = cores - others
        per = f"{left * 1000 / rate:.2f}" if left > 0 else "nothing"
        print(f"  at {rate} messages/s the harness and PostgreSQL use {others:.2f} cores; the server may use "
              f"{per} CPU ms/message (one process: at most {min(1.0, max(left, 0)) * 1000 / rate:.2f})")


def report(r: dict[str, Any]) -> None:
    """Print one worker count's figures as soon as they are measured."""
    print(f"{r['queue']} workers {r['workers']}: {r['messages_per_s']} messages/s "
          f"({r['messages']} in {r['seconds']} s, "
          f"{r['missing_replies']} unanswered, {r['errors']} deliveries failed or timed out)")
    print(f"  latency webhook→reply: p50 {r['p50_ms']} ms, p95 {r['p95_ms']} ms, p99 {r['p99_ms']} ms")
    print(f"  CPU {r['cpu_ms_per_message']} ms/message; SQL {r['sql_statements_per_message']} statements, "
          f"{r['sql_transactions_per_message']} transactions, {r['pool_checkouts_per_message']} pool "
          f"checkouts per message; RSS {r['rss_mb']} MB")
    print(f"  harness (load generator + WAHA double, one process): CPU {r['harness_cpu_ms_per_message']} ms/message, "
          f"{r['harness_cpu_share']} of a core; PostgreSQL backends (local) CPU {r['postgres_cpu_ms_per_message']} "
          f"ms/message")
    print(f"  server processes' share of a core each during the run: {r['server_cpu_share_by_process']}", flush=True)


def run_main() -> None:
    """Run ``main`` on uvloop (installed with ``uvicorn[standard]``, like the server's loop) unless
    ``BENCH_LOOP=asyncio``: the load generator shares the machine's cores with the server, so the less
    CPU it spends per message, the fairer the server's figures."""
    if os.environ.get("BENCH_LOOP", "uvloop") == "uvloop":
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())


if __name__ == "__main__":
    run_main()
