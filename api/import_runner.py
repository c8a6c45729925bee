"""Runs the server's knowledge-base import jobs off the event loop.

With ``CHATCOMMERCE_IMPORT_WORKERS`` ≥ 1 (the default) each job runs in a worker process of a
``ProcessPoolExecutor`` (spawned lazily on the first job; jobs beyond the pool's size wait in its
queue): parsing a 100,000-row sheet is seconds of pure-Python CPU, which in a thread would still hold
the GIL against the event loop, and so delay every tenant's requests. In the worker the parsing thread
also runs at a lower CPU priority (``knowledge.import_jobs.PARSE_NICENESS``). With 0 a job runs in this
process (the parse in a thread). See ``knowledge.import_jobs`` for what a job does.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import uuid
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.settings import Settings
from knowledge.import_jobs import fail_import_jobs, run_import_job, run_import_job_in_process, touch_queued_jobs
from knowledge.limits import ImportLimits

log = structlog.get_logger(__name__)

# How often jobs waiting in this process's queue get their heartbeat refreshed (seconds).
QUEUED_HEARTBEAT_SECONDS = 30.0


def limits_from(settings: Settings) -> ImportLimits:
    """The import limits configured by ``CHATCOMMERCE_IMPORT_MAX_*``."""
    return ImportLimits(
        max_bytes=settings.import_max_bytes,
        max_rows=settings.import_max_rows,
        max_columns=settings.import_max_columns,
        max_cell_chars=settings.import_max_cell_chars,
    )


class ImportRunner:
    """Schedules import jobs of this process: :meth:`submit` returns at once; :meth:`wait` waits for
    the jobs submitted so far (CLI, tests); :meth:`aclose` stops (jobs still queued here are failed
    with "the server stopped...", a job running in a worker process finishes there)."""

    def __init__(self, *, settings: Settings, sessionmaker: async_sessionmaker[AsyncSession],
                 on_ended: Callable[[str], None] | None = None) -> None:
        """``on_ended(status)`` (``done`` | ``failed``) is called for a job that ended in a worker
        process, whose database writes this process's session hooks do not see (telemetry)."""
        self._on_ended = on_ended
        self._settings = settings
        self._sessionmaker = sessionmaker
        self._limits = limits_from(settings)
        self._pool: ProcessPoolExecutor | None = None
        self._tasks: dict[uuid.UUID, asyncio.Task[None]] = {}
        self._heartbeat: asyncio.Task[None] | None = None

    @property
    def limits(self) -> ImportLimits:
        """The configured limits."""
        return self._limits

    def submit(self, job_id: uuid.UUID, path: Path) -> None:
        """Run the queued job ``job_id`` (its upload saved at ``path``) in the background."""
        loop = asyncio.get_running_loop()
        self._tasks[job_id] = loop.create_task(self._run(job_id, path), name=f"import-{job_id}")
        if self._heartbeat is None or self._heartbeat.done():
            self._heartbeat = loop.create_task(self._touch_queued(), name="import-heartbeat")

    async def wait(self) -> None:
        """Wait until every job submitted so far has ended."""
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    async def _run(self, job_id: uuid.UUID, path: Path) -> None:
        try:
            if self._settings.import_workers == 0:
                await run_import_job(self._sessionmaker, job_id=job_id, path=path, limits=self._limits,
                                     snapshot_dir=self._settings.data_dir)
                return
            status = await asyncio.get_running_loop().run_in_executor(
                self._executor(), run_import_job_in_process, self._settings.database_url, job_id, str(path),
                self._limits, str(self._settings.data_dir),
            )
            log.info("import_job_ended", job_id=str(job_id), status=status)
            if self._on_ended is not None:
                self._on_ended(status)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - e.g. a worker process killed (BrokenProcessPool)
            log.exception("import_worker_failed", job_id=str(job_id))
            if self._pool is not None:
                self._pool.shutdown(wait=False, cancel_futures=True)
                self._pool = None
            async with self._sessionmaker() as session, session.begin():
                reason = f"the import worker stopped ({type(exc).__name__}); upload the file again"
                await fail_import_jobs(session, job_ids=[job_id], data_dir=self._settings.data_dir, reason=reason)
        finally:
            self._tasks.pop(job_id, None)

    def _executor(self) -> ProcessPoolExecutor:
        if self._pool is None:
            # spawn: a forked child would inherit the server's event loop, threads and open connections.
            self._pool = ProcessPoolExecutor(
                max_workers=self._settings.import_workers, mp_context=multiprocessing.get_context("spawn")
            )
        return self._pool

    async def _touch_queued(self) -> None:
        while self._tasks:
            await asyncio.sleep(QUEUED_HEARTBEAT_SECONDS)
            try:
                async with self._sessionmaker() as session, session.begin():
                    await touch_queued_jobs(session, job_ids=list(self._tasks))
            except Exception:  # noqa: BLE001 - retried at the next beat
                log.warning("import_heartbeat_failed", exc_info=True)

    async def aclose(self) -> None:
        """Stop: cancel the waiting, fail jobs still queued here, shut the worker pool down without
        waiting (a job already running in a worker process finishes and records its result)."""
        pending = list(self._tasks)
        tasks = list(self._tasks.values()) + ([self._heartbeat] if self._heartbeat else [])
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
        if pending:
            try:
                async with self._sessionmaker() as session, session.begin():
                    # a job running in a worker process finishes there; one running here was cancelled
                    statuses = ("queued", "running") if self._settings.import_workers == 0 else ("queued",)
                    await fail_import_jobs(session, job_ids=pending, data_dir=self._settings.data_dir,
                                           statuses=statuses)
            except Exception:  # noqa: BLE001 - the sweep fails them later as stale
                log.warning("import_jobs_not_failed_at_shutdown", exc_info=True)
