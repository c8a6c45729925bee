"""Knowledge-base imports as background jobs (``core.models.ImportJob``).

An upload is saved to a file of its tenant (:func:`upload_path`, under the data directory) and a job
row is added with status ``queued``. :func:`run_import_job` then claims the job (``queued`` →
``running``, one atomic UPDATE, so two runners never both run it), parses the file in a thread
(:func:`knowledge.importer.parse_knowledge_file`, CPU-bound) while a task writes the rows read so
far and a heartbeat to the job row every :data:`FLUSH_SECONDS`, and finally writes the knowledge
base with :func:`knowledge.importer.import_knowledge` in one short transaction that also marks the
job ``done`` (so the job is ``done`` exactly when the knowledge base was replaced). A refused file
marks the job ``failed`` with its errors (row, column, sheet, limit) and changes nothing else. The
file is deleted when the job ends either way.

:func:`run_import_job_in_process` is the same for a worker process (its own engine and event loop):
the server runs jobs there so that parsing never competes with requests for the GIL.

A process that stops mid-job leaves it ``queued`` or ``running``; its heartbeat then stops, and
:func:`fail_stale_import_jobs` (called by the server's sweep) fails it after :data:`STALE_AFTER`
with "the server stopped before the import finished; upload the file again" and deletes its file.
Jobs are not resumed: the upload may be half-written and the owner may have uploaded again since.
"""

from __future__ import annotations

import asyncio
import io
import os
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path, PurePath
from typing import Any, BinaryIO

import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.models import Company, ImportJob
from core.tenancy import NotFound, TenantScope
from core.timeutil import utcnow
from knowledge.errors import KnowledgeImportError
from knowledge.importer import ImportResult, import_knowledge, parse_knowledge_file, record_failed_import
from knowledge.limits import ImportLimitError, ImportLimits
from knowledge.parsed import ParsedKnowledge
from knowledge.snapshot import SNAPSHOT_MIN_ITEMS, count_items, refresh_snapshot

log = structlog.get_logger(__name__)

# How often a running job writes its progress and heartbeat (seconds).
FLUSH_SECONDS = 1.0
# A queued or running job without a heartbeat for this long belonged to a process that stopped.
STALE_AFTER = timedelta(minutes=2)
# How much lower the parsing thread's CPU priority is in a worker process (nice, per thread on Linux).
PARSE_NICENESS = 10
# At most this many errors are kept on a failed job.
MAX_ERRORS = 100
STOPPED = "the server stopped before the import finished; upload the file again"
_SUFFIX = re.compile(r"^\.[a-z0-9]{1,8}$")
_CHUNK = 1024 * 1024


def upload_path(data_dir: Path, *, tenant_id: uuid.UUID, job_id: uuid.UUID, filename: str) -> Path:
    """Where a job's upload is kept: ``<data_dir>/imports/<tenant id>/<job id><.ext>`` (the extension
    of ``filename`` when it is short and plain, since it decides the format; the name itself is never
    used in the path)."""
    suffix = PurePath(filename).suffix.lower()
    return data_dir / "imports" / str(tenant_id) / f"{job_id}{suffix if _SUFFIX.match(suffix) else ''}"


def save_upload(source: BinaryIO, path: Path, *, max_bytes: int) -> int:
    """Copy ``source`` to ``path`` (parents created) and return its size in bytes. Blocking: call it
    in a thread. Raises :class:`ImportLimitError` (``max_bytes``) and leaves no file when the upload is
    larger than ``max_bytes``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    size = 0
    try:
        with path.open("wb") as target:
            while chunk := source.read(_CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise ImportLimitError(f"the file is larger than {max_bytes} bytes; the limit is {max_bytes} bytes",
                                           limit="max_bytes", maximum=max_bytes)
                target.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return size


def save_upload_bytes(data: bytes, path: Path, *, max_bytes: int) -> int:
    """:func:`save_upload` for bytes already in memory (the CLI reads the file itself)."""
    return save_upload(io.BytesIO(data), path, max_bytes=max_bytes)


async def create_import_job(
    session: AsyncSession, *, company: Company, job_id: uuid.UUID, filename: str, size_bytes: int
) -> ImportJob:
    """Add a ``queued`` job for ``company`` in the caller's transaction (no commit). ``job_id`` is the
    id the upload was saved under (:func:`upload_path`)."""
    job = ImportJob(
        id=job_id,
        tenant_id=company.tenant_id,
        company_id=company.id,
        filename=filename[:500],
        size_bytes=size_bytes,
        status="queued",
        rows_processed=0,
        warnings=[],
        errors=[],
        heartbeat_at=utcnow(),
    )
    session.add(job)
    await session.flush()
    return job


async def list_import_jobs(
    session: AsyncSession, *, scope: TenantScope, company: Company, limit: int = 50
) -> list[ImportJob]:
    """The company's import jobs, newest first (at most ``limit``)."""
    stmt = (
        scope.select(ImportJob, ImportJob.company_id == company.id)
        .order_by(ImportJob.created_at.desc())
        .limit(limit)
    )
    return list((await session.execute(stmt)).scalars())


async def get_import_job(
    session: AsyncSession, *, scope: TenantScope, company: Company, job_id: uuid.UUID
) -> ImportJob:
    """One job of the company; raises ``core.tenancy.NotFound`` for a job of another company or tenant."""
    job = await scope.get(session, ImportJob, job_id)
    if job.company_id != company.id:
        raise NotFound(f"ImportJob {job_id} not found")
    return job


def warning_dict(warning: object) -> dict[str, Any]:
    """The JSON form of one import warning: ``{"kind", "message", "row", "column", "sheet", "text"}``
    (``knowledge.problems.KnowledgeWarning.as_dict``; a plain string becomes its ``text``)."""
    as_dict = getattr(warning, "as_dict", None)
    if callable(as_dict):
        return as_dict()
    text = str(warning)
    return {"kind": None, "message": text, "row": None, "column": None, "sheet": None, "text": text}


def error_dicts(error: KnowledgeImportError | str) -> list[dict[str, Any]]:
    """The JSON form of a refusal: ``[{"message", "row", "column", "sheet", "limit"}]``, one entry per
    error when the importer reports several (an ``errors`` attribute), at most :data:`MAX_ERRORS`."""
    if isinstance(error, str):
        return [{"message": error, "row": None, "column": None, "sheet": None, "limit": None}]
    several = getattr(error, "errors", None)
    errors = list(several) if several else [error]
    limit = getattr(error, "limit", None)  # an ImportLimitError names the limit; its issues do not
    return [
        {
            "message": getattr(one, "message", str(one)),
            "row": getattr(one, "row", None),
            "column": getattr(one, "column", None),
            "sheet": getattr(one, "sheet", None),
            "limit": getattr(one, "limit", None) or limit,
        }
        for one in errors[:MAX_ERRORS]
    ]


@dataclass(frozen=True, slots=True)
class ImportOutcome:
    """How a run ended: the job as stored, the counts when it was imported, the error when refused.
    Both are ``None`` when this runner did not run the job (it was not ``queued`` any more)."""

    job: ImportJob | None
    result: ImportResult | None = None
    error: KnowledgeImportError | None = None


class _Progress:
    """Rows read so far, shared between the parsing thread and the flushing task."""

    def __init__(self, forward: Callable[[int, int | None], object] | None) -> None:
        self.done = 0
        self.total: int | None = None
        self._forward = forward

    def __call__(self, done: int, total: int | None) -> None:
        self.done, self.total = done, total
        if self._forward is not None:
            self._forward(done, total)


async def _claim(sessionmaker: async_sessionmaker[AsyncSession], job_id: uuid.UUID) -> bool:
    now = utcnow()
    async with sessionmaker() as session, session.begin():
        claimed = await session.execute(
            update(ImportJob)
            .where(ImportJob.id == job_id, ImportJob.status == "queued")
            .values(status="running", started_at=now, heartbeat_at=now)
            .execution_options(synchronize_session=False)
        )
    return claimed.rowcount == 1


async def _flush_progress(
    sessionmaker: async_sessionmaker[AsyncSession], job_id: uuid.UUID, progress: _Progress
) -> None:
    """Write rows processed and the heartbeat every FLUSH_SECONDS until cancelled."""
    while True:
        await asyncio.sleep(FLUSH_SECONDS)
        try:
            async with sessionmaker() as session, session.begin():
                await session.execute(
                    update(ImportJob)
                    .where(ImportJob.id == job_id, ImportJob.status == "running")
                    .values(rows_processed=progress.done, total_rows=progress.total, heartbeat_at=utcnow())
                    .execution_options(synchronize_session=False)
                )
        except Exception:  # noqa: BLE001 - progress is best effort; the job itself goes on
            log.warning("import_progress_not_saved", job_id=str(job_id), exc_info=True)


async def _finish_failed(
    sessionmaker: async_sessionmaker[AsyncSession],
    job: ImportJob,
    error: KnowledgeImportError | str,
    progress: _Progress,
) -> None:
    async with sessionmaker() as session, session.begin():
        await session.execute(
            update(ImportJob)
            .where(ImportJob.id == job.id, ImportJob.status == "running")
            .values(status="failed", errors=error_dicts(error), rows_processed=progress.done,
                    total_rows=progress.total, finished_at=utcnow(), heartbeat_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        company = await session.get(Company, job.company_id)
        if company is not None and isinstance(error, KnowledgeImportError):
            await record_failed_import(session, company=company, filename=job.filename, error=error)


async def run_import_job(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    job_id: uuid.UUID,
    path: Path,
    limits: ImportLimits | None = None,
    on_progress: Callable[[int, int | None], object] | None = None,
    parse_niceness: int = 0,
    snapshot_dir: Path | None = None,
) -> ImportOutcome:
    """Run one queued job to ``done`` or ``failed`` (see the module docstring) and delete its file.
    With ``snapshot_dir`` (the data directory), a catalogue of at least ``SNAPSHOT_MIN_ITEMS`` items
    then gets its knowledge-index snapshot built and saved (``knowledge.snapshot``), so that serving
    processes load it instead of building it; a failure there is logged and leaves the job done.

    ``path`` is the saved upload; ``limits`` bound it (:class:`ImportLimits` defaults);
    ``on_progress(rows_done, total_rows)`` is also called from the parsing thread (the CLI's progress
    bar). ``parse_niceness`` > 0 lowers the parsing thread's CPU priority by that much (worker
    processes only: the thread is not given back). Returns an :class:`ImportOutcome`; a refused file
    is not raised but recorded on the job (and as a ``failed`` ``KnowledgeImport`` audit row).
    Unexpected errors fail the job with "internal error" (logged with the traceback) and are not
    raised either.
    """
    progress = _Progress(on_progress)
    if not await _claim(sessionmaker, job_id):
        return ImportOutcome(job=None)  # another runner has it (or it was failed): leave its file alone
    try:
        async with sessionmaker() as session:
            job = await session.get(ImportJob, job_id)
            company = await session.get(Company, job.company_id) if job is not None else None
        if job is None or company is None:
            return ImportOutcome(job=None)
        flusher = asyncio.get_running_loop().create_task(_flush_progress(sessionmaker, job_id, progress))
        try:
            outcome = await _parse_and_write(sessionmaker, job=job, company=company, path=path, limits=limits,
                                             progress=progress, niceness=parse_niceness)
        finally:
            flusher.cancel()
            await asyncio.gather(flusher, return_exceptions=True)
        if snapshot_dir is not None and outcome.result is not None:
            await _snapshot_after_import(sessionmaker, job=job, data_dir=snapshot_dir)
        async with sessionmaker() as session:
            return ImportOutcome(job=await session.get(ImportJob, job_id), result=outcome.result, error=outcome.error)
    finally:
        await asyncio.to_thread(path.unlink, missing_ok=True)


async def _parse_and_write(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    job: ImportJob,
    company: Company,
    path: Path,
    limits: ImportLimits | None,
    progress: _Progress,
    niceness: int,
) -> ImportOutcome:
    try:
        data = await asyncio.to_thread(path.read_bytes)
        parsed = await asyncio.to_thread(
            _parse, data, filename=job.filename, currency=company.currency, limits=limits, on_progress=progress,
            niceness=niceness,
        )
        del data
        started = time.perf_counter()
        async with sessionmaker() as session, session.begin():
            fresh = await session.get(Company, company.id)
            if fresh is None:
                raise KnowledgeImportError("the company was deleted")
            result = await import_knowledge(session, company=fresh, data=b"", filename=job.filename, parsed=parsed)
            done = await session.execute(
                update(ImportJob)
                .where(ImportJob.id == job.id, ImportJob.status == "running")
                .values(status="done", counts={"items": result.items, "variants": result.variants, "faq": result.faq},
                        warnings=[warning_dict(w) for w in result.warnings], kb_version=fresh.kb_version,
                        rows_processed=progress.done,
                        total_rows=progress.total, finished_at=utcnow(), heartbeat_at=utcnow())
                .execution_options(synchronize_session=False)
            )
            if done.rowcount != 1:  # failed meanwhile as stale: keep it failed and import nothing
                raise _Abandoned()
        log.info("import_written", job_id=str(job.id), tenant_id=str(job.tenant_id), items=result.items,
                 faq=result.faq, write_seconds=round(time.perf_counter() - started, 3))
        return ImportOutcome(job=job, result=result)
    except _Abandoned:
        return ImportOutcome(job=job)
    except KnowledgeImportError as exc:
        await _finish_failed(sessionmaker, job, exc, progress)
        return ImportOutcome(job=job, error=exc)
    except Exception:  # noqa: BLE001 - the job must end; the traceback goes to the log
        log.exception("import_failed", job_id=str(job.id), tenant_id=str(job.tenant_id))
        await _finish_failed(sessionmaker, job, "internal error while importing; the knowledge base is unchanged",
                             progress)
        return ImportOutcome(job=job)


async def _snapshot_after_import(
    sessionmaker: async_sessionmaker[AsyncSession], *, job: ImportJob, data_dir: Path
) -> None:
    started = time.process_time()
    try:
        async with sessionmaker() as session:
            company = await session.get(Company, job.company_id)
            if company is None or company.tenant_id != job.tenant_id:
                return
            if await count_items(session, company) < SNAPSHOT_MIN_ITEMS:
                return
        path = await refresh_snapshot(sessionmaker, tenant_id=job.tenant_id, company_id=job.company_id,
                                      data_dir=data_dir)
    except asyncio.CancelledError:
        raise
    except Exception:  # noqa: BLE001 - serving processes build the index themselves instead
        log.warning("import_snapshot_failed", job_id=str(job.id), tenant_id=str(job.tenant_id), exc_info=True)
        return
    log.info("import_snapshot_saved", job_id=str(job.id), tenant_id=str(job.tenant_id), saved=path is not None,
             cpu_seconds=round(time.process_time() - started, 3))


def _parse(
    data: bytes, *, filename: str, currency: str, limits: ImportLimits | None, on_progress: _Progress, niceness: int
) -> ParsedKnowledge:
    if niceness > 0:
        _lower_thread_priority(niceness)
    return parse_knowledge_file(data, filename=filename, currency=currency, limits=limits, on_progress=on_progress)


def _lower_thread_priority(niceness: int) -> None:
    """Lower the calling thread's CPU priority: on Linux ``setpriority`` with the thread's id applies
    to that thread only, so the worker's event loop (progress, the short write transaction) keeps
    its priority and never holds a database lock while starved. Elsewhere this does nothing."""
    try:
        tid = threading.get_native_id()
        if not os.path.exists(f"/proc/self/task/{tid}"):  # not Linux: the id is not a thread's
            return
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + niceness)
    except OSError:
        pass


class _Abandoned(Exception):
    """The job was failed by someone else while this runner worked on it; roll back."""


def run_import_job_in_process(database_url: str, job_id: uuid.UUID, path: str, limits: ImportLimits,
                              snapshot_dir: str | None = None) -> str:
    """Entry point of a worker process: :func:`run_import_job` with the process's own engine and
    event loop (and ``snapshot_dir`` as its ``Path``). Returns the job's final status (``"done"``,
    ``"failed"``, or ``"skipped"`` when the job was not queued any more)."""
    from core.db import create_engine, create_sessionmaker

    async def main() -> str:
        engine = create_engine(database_url)
        try:
            outcome = await run_import_job(create_sessionmaker(engine), job_id=job_id, path=Path(path), limits=limits,
                                           parse_niceness=PARSE_NICENESS,
                                           snapshot_dir=Path(snapshot_dir) if snapshot_dir else None)
        finally:
            await engine.dispose()
        return outcome.job.status if outcome.job is not None else "skipped"

    return asyncio.run(main())


async def fail_import_jobs(
    session: AsyncSession,
    *,
    job_ids: list[uuid.UUID],
    data_dir: Path | None,
    reason: str = STOPPED,
    statuses: tuple[str, ...] = ("queued", "running"),
) -> int:
    """Fail these jobs when their status is still one of ``statuses`` (in the caller's transaction)
    and delete their uploads; returns how many were failed."""
    if not job_ids:
        return 0
    rows = (
        await session.execute(
            select(ImportJob).where(ImportJob.id.in_(job_ids), ImportJob.status.in_(statuses))
        )
    ).scalars().all()
    now = utcnow()
    failed = 0
    for job in rows:
        changed = await session.execute(
            update(ImportJob)
            .where(ImportJob.id == job.id, ImportJob.status == job.status)
            .values(status="failed", errors=error_dicts(reason), finished_at=now)
            .execution_options(synchronize_session=False)
        )
        failed += changed.rowcount
        if data_dir is not None:
            _delete_upload(data_dir, job)
    return failed


async def fail_stale_import_jobs(session: AsyncSession, *, now: datetime, data_dir: Path | None) -> int:
    """Fail ``queued``/``running`` jobs whose heartbeat is older than :data:`STALE_AFTER` (their
    process stopped), in the caller's transaction; returns how many."""
    stale = (
        await session.execute(
            select(ImportJob.id).where(
                ImportJob.status.in_(("queued", "running")), ImportJob.heartbeat_at < now - STALE_AFTER
            )
        )
    ).scalars().all()
    return await fail_import_jobs(session, job_ids=list(stale), data_dir=data_dir)


async def touch_queued_jobs(session: AsyncSession, *, job_ids: list[uuid.UUID]) -> None:
    """Refresh the heartbeat of jobs still waiting in this process's queue (so they are not stale)."""
    if job_ids:
        await session.execute(
            update(ImportJob)
            .where(ImportJob.id.in_(job_ids), ImportJob.status == "queued")
            .values(heartbeat_at=utcnow())
            .execution_options(synchronize_session=False)
        )


def _delete_upload(data_dir: Path, job: ImportJob) -> None:
    folder = data_dir / "imports" / str(job.tenant_id)
    for candidate in folder.glob(f"{job.id}*"):
        candidate.unlink(missing_ok=True)
