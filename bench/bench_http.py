"""CPU per outbound request of the adapters' HTTP client: httpx's own pool vs ``core.http.pooled_client``
(httpx on aiohttp's pool, what the adapters use) vs aiohttp alone.

A local sink (aiohttp, its own process, so its CPU is not counted) answers ``POST /api/sendText`` with a
small JSON object, as WAHA does; ``BENCH_REQUESTS`` requests (default 4,000) are sent by
``BENCH_CONCURRENCY`` tasks (default 16) over keep-alive connections. Printed per client: CPU ms per
request of this process (user+system) and requests/s.

    .venv/bin/python bench/bench_http.py
"""

from __future__ import annotations

import asyncio
import os
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable

import aiohttp
import httpx

from core.http import pooled_client

SINK = """
import sys
from aiohttp import web
async def send_text(request):
    await request.read()
    return web.json_response({"id": "true_1@c.us_AAAA"})
app = web.Application()
app.router.add_post("/api/sendText", send_text)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None)
"""
BODY = {"session": "default", "chatId": "491701234567@c.us", "text": "Added 1 x Ocean Blue Shirt - 50.00 USD."}


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def measure(send: Callable[[], Awaitable[None]], *, requests: int, concurrency: int) -> tuple[float, float]:
    """(CPU ms per request, requests/s) of ``requests`` sends by ``concurrency`` tasks, after a warm-up."""
    for _ in range(50):
        await send()

    async def worker(n: int) -> None:
        for _ in range(n):
            await send()

    started, cpu0 = time.perf_counter(), cpu_seconds()
    await asyncio.gather(*[worker(requests // concurrency) for _ in range(concurrency)])
    done = requests // concurrency * concurrency
    return (cpu_seconds() - cpu0) * 1000 / done, done / (time.perf_counter() - started)


async def main() -> None:
    requests = int(os.environ.get("BENCH_REQUESTS", "4000"))
    concurrency = int(os.environ.get("BENCH_CONCURRENCY", "16"))
    port = free_port()
    url = f"http://127.0.0.1:{port}/api/sendText"
    sink = subprocess.Popen([sys.executable, "-c", SINK, str(port)])
    try:
        for _ in range(100):
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.1):
                    break
            except OSError:
                await asyncio.sleep(0.1)
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
        async with httpx.AsyncClient(limits=limits) as plain:
            async def httpx_send() -> None:
                (await plain.post(url, json=BODY)).json()
            cpu, rate = await measure(httpx_send, requests=requests, concurrency=concurrency)
            print(f"httpx (httpcore pool):            {cpu:.3f} CPU ms/request, {rate:.0f} requests/s")
        async with pooled_client(limits=limits) as pooled:
            async def pooled_send() -> None:
                (await pooled.post(url, json=BODY)).json()
            cpu, rate = await measure(pooled_send, requests=requests, concurrency=concurrency)
            print(f"core.http.pooled_client (aiohttp): {cpu:.3f} CPU ms/request, {rate:.0f} requests/s")
        async with aiohttp.ClientSession() as session:
            async def aiohttp_send() -> None:
                async with session.post(url, json=BODY) as response:
                    await response.json()
            cpu, rate = await measure(aiohttp_send, requests=requests, concurrency=concurrency)
            print(f"aiohttp alone:                    {cpu:.3f} CPU ms/request, {rate:.0f} requests/s")
    finally:
        sink.terminate()
        sink.wait(10)


if __name__ == "__main__":
    asyncio.run(main())
