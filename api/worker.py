"""``chatcommerce worker``: a process that answers inbound messages from the Redis stream
(``CHATCOMMERCE_QUEUE=redis``; the web processes only verify, store and enqueue them).

One worker process:

* consumes the stream as consumer ``<host>-<pid>`` of the group ``chatcommerce-workers``
  (``channels.queue.RedisQueue.consume``): up to ``CHATCOMMERCE_QUEUE_CONCURRENCY`` jobs at once,
  each answered by ``Pipeline.answer_job`` and acknowledged after its replies were stored and
  handed to the channel; jobs a dead worker left pending for ``CHATCOMMERCE_QUEUE_CLAIM_IDLE_SECONDS``
  are claimed (``XAUTOCLAIM``);
* fires buffer windows: every :data:`TIMER_POLL_SECONDS` it takes the conversations whose window
  closed from the Redis sorted set and enqueues them (any worker may take any timer);
* warms the knowledge indexes of active companies in the background (``api.warmup``);
* runs the sweep (``api.jobs.BackgroundWorkers``: outbox, recovery of messages older than a minute,
  holds, e-mail watchers, calendar sync, retention, alerts) when ``CHATCOMMERCE_WORKERS_ENABLED``.

SIGTERM or SIGINT stops it: the jobs being answered finish, the others stay in the stream.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from datetime import timedelta

import structlog

from api.jobs import BackgroundWorkers
from api.services import open_runtime
from api.warmup import start_warming, stop_warming
from bot.engine import warm_up as warm_up_engine
from bot.messages import Responder
from channels.queue import RedisQueue
from core.settings import Settings

log = structlog.get_logger(__name__)

TIMER_POLL_SECONDS = 0.2
STARTUP_RECOVER_AFTER = timedelta(seconds=60)  # as the sweep: younger messages are still in the stream


def consumer_name() -> str:
    """This process's consumer name in the group: ``<host>-<pid>`` (unique while it runs)."""
    return f"{socket.gethostname()}-{os.getpid()}"


async def run_worker(settings: Settings, *, responder: Responder | None = None, consumer: str | None = None,
                     stop: asyncio.Event | None = None) -> None:
    """Run a worker until ``stop`` is set (by default: until SIGTERM or SIGINT). ``responder``
    replaces the dialogue engine (tests). Raises ``ValueError`` unless ``settings.queue`` is
    ``redis`` with a ``redis_url``, and what Redis raises when it is unreachable at start."""
    if settings.queue != "redis":
        raise ValueError("chatcommerce worker needs CHATCOMMERCE_QUEUE=redis (and CHATCOMMERCE_REDIS_URL)")
    stop = stop or _stop_on_signals()
    async with open_runtime(settings, responder=responder) as runtime:
        queue = runtime.queue
        assert queue is not None  # settings.queue == "redis"
        if responder is None:  # the real engine: its dictionaries and catalogues load before the first job
            await asyncio.to_thread(warm_up_engine)
        warming = start_warming(runtime)
        sweep = BackgroundWorkers(runtime=runtime, interval_seconds=settings.sweep_seconds)
        timers: asyncio.Task[None] | None = None
        try:
            try:
                await runtime.pipeline.recover(stale_after=STARTUP_RECOVER_AFTER)
            except Exception:  # noqa: BLE001 - the sweep retries; the stream needs no recovery
                log.exception("recover_failed")
            await queue.consume(runtime.pipeline.answer_job, consumer=consumer or consumer_name())
            timers = asyncio.get_running_loop().create_task(fire_due_windows(queue, stop=stop),
                                                            name="chatcommerce-window-timers")
            if settings.workers_enabled:
                sweep.start()
            log.info("worker_started", stream=queue.stream, concurrency=queue.concurrency)
            await stop.wait()
        finally:
            if timers is not None:
                timers.cancel()
                await asyncio.gather(timers, return_exceptions=True)
            await sweep.stop()
            await stop_warming(warming)
    log.info("worker_stopped")


async def fire_due_windows(queue: RedisQueue, *, stop: asyncio.Event) -> None:
    """Until ``stop``: enqueue the conversations whose buffer window closed (``RedisQueue.take_due``)
    every :data:`TIMER_POLL_SECONDS`. A Redis error is logged and retried at the next poll."""
    while not stop.is_set():
        try:
            for job in await queue.take_due():
                await queue.enqueue(job)
        except Exception:  # noqa: BLE001 - Redis may come back; the sweep answers what waits too long
            log.exception("window_timers_failed")
        try:
            await asyncio.wait_for(stop.wait(), TIMER_POLL_SECONDS)
        except TimeoutError:
            pass


def _stop_on_signals() -> asyncio.Event:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop
