"""Snapshots of a company's knowledge index: built once per ``(tenant, company, kb_version)``, loaded
by every worker process instead of building it again.

A snapshot is one directory under the company's storage directory (``core.storage``):
``<data_dir>/tenants/<tenant>/companies/<company>/knowledge-index/v<kb_version>/`` holding

* ``meta.msgpack`` — format, tenant, company and kb version (checked on load), the items, variants
  and FAQ entries (plain values), the item tables' lists (:meth:`ItemTables.plain`) and the size of
  every other file (a truncated file is caught before it is read). Written as a stream of msgpack
  objects: the first is the whole structure with every list or map longer than ``CHUNK`` entries
  replaced by a marker (an extension type holding its number of parts), the parts follow in order.
  Decoding 20 MiB as one object is one C call of ~0.25 s holding the GIL, which stalled the event
  loop (every tenant) though the load runs in a worker thread; in parts of ``CHUNK`` entries the
  loop thread gets the GIL between them;
* ``*.npy`` — the numeric tables (term and trigram postings), ``full/`` and ``name/`` — the two
  ``bm25s`` models (``BM25.save``). Loaded memory-mapped (``mmap_mode="r"``): their pages come from the
  page cache and are shared by every worker process on the machine.

Nothing is unpickled: ``np.load(allow_pickle=False)``, msgpack (its only extension type is the part
marker, read as two integers), JSON.
Writing goes to a temporary directory renamed into place (a reader sees a whole snapshot or none);
older versions of the company's snapshot are deleted then. Deleting the company's or tenant's
directory (``api.tenant_data``) deletes its snapshots. A snapshot that cannot be read (truncated,
corrupt, another format, another tenant's) raises :class:`SnapshotError`; callers log it and build.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import io
import os
import re
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator, Mapping, Sequence
from itertools import chain
from pathlib import Path
from types import MappingProxyType
from typing import Any

import msgpack
import numpy as np
import structlog
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from core.models import Company, KnowledgeItem
from core.storage import company_dir
from knowledge.search import (
    FaqView,
    ItemTables,
    ItemView,
    KnowledgeIndex,
    LazyItems,
    VariantView,
    build_index,
)

__all__ = [
    "SNAPSHOT_FORMAT",
    "SnapshotError",
    "SnapshotStore",
    "build_snapshot_in_process",
    "count_items",
    "discard_snapshot",
    "load_snapshot",
    "refresh_snapshot",
    "save_snapshot",
    "snapshot_path",
    "snapshot_root",
]

log = structlog.get_logger(__name__)

SNAPSHOT_FORMAT = 2  # 2: meta.msgpack in parts (1: one object; such a snapshot is rebuilt)
CHUNK = 2_048  # entries per part of a long list or map in meta.msgpack
_LIST_PARTS, _MAP_PARTS = 1, 2  # extension type codes of the markers
_READ_SIZE = 256 * 2**10  # bytes of meta.msgpack the decoder holds at a time
SNAPSHOT_MIN_ITEMS = 2_000  # smaller catalogues are built where needed (well under 0.2 s)
_META = "meta.msgpack"
_MODELS = ("full", "name")
_VERSION_DIR = re.compile(r"^\.?v(\d+)(?:-.*)?$")
_EMPTY: Mapping[str, Any] = MappingProxyType({})


class SnapshotError(Exception):
    """A snapshot exists but cannot be used (truncated, corrupt, another format, tenant or version)."""


def snapshot_root(data_dir: Path, tenant_id: uuid.UUID, company_id: uuid.UUID) -> Path:
    """The directory holding the company's snapshots (inside its ``core.storage`` directory)."""
    return company_dir(data_dir, tenant_id, company_id) / "knowledge-index"


def snapshot_path(data_dir: Path, tenant_id: uuid.UUID, company_id: uuid.UUID, kb_version: int) -> Path:
    """The directory of the snapshot of ``kb_version`` (which may not exist)."""
    return snapshot_root(data_dir, tenant_id, company_id) / f"v{int(kb_version)}"


# --- writing ------------------------------------------------------------------------------------


def save_snapshot(index: KnowledgeIndex, *, data_dir: Path, tenant_id: uuid.UUID, kb_version: int) -> Path:
    """Write ``index`` (of company ``index.company_id`` in tenant ``tenant_id`` at ``kb_version``) and
    delete the company's older snapshots; returns the snapshot's directory. Blocking (run it in a
    worker thread). A snapshot of that version already there is kept as it is. Raises ``OSError``
    when the directory cannot be written (read-only disk), ``TypeError``/``ValueError`` when an
    item's attributes cannot be stored (nothing is left behind in either case)."""
    root = snapshot_root(data_dir, tenant_id, index.company_id)
    final = snapshot_path(data_dir, tenant_id, index.company_id, kb_version)
    if final.is_dir():
        _delete_older(root, kb_version)
        return final
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".v{int(kb_version)}-", dir=root))
    try:
        tables = index.tables()
        sizes: dict[str, int] = {}
        for name, array in tables.arrays().items():
            path = tmp / f"{name}.npy"
            np.save(path, np.ascontiguousarray(array), allow_pickle=False)
            sizes[path.name] = path.stat().st_size
        for name, model in zip(_MODELS, (tables.full_bm25, tables.name_bm25), strict=True):
            if model is not None:
                model.save(tmp / name, show_progress=False)
                for path in sorted((tmp / name).iterdir()):
                    sizes[f"{name}/{path.name}"] = path.stat().st_size
        meta = {
            "format": SNAPSHOT_FORMAT,
            "tenant_id": str(tenant_id),
            "company_id": str(index.company_id),
            "kb_version": int(kb_version),
            "items": _encode_items(index.items()),
            "faq": [[e.id.bytes, e.question, e.answer, e.position] for e in index.faq()],
            "tables": tables.plain(),
            "bm25_vocab": [None if model is None else model.vocab_dict for model in (tables.full_bm25,
                                                                                    tables.name_bm25)],
            "sizes": sizes,
        }
        with open(tmp / _META, "wb") as out:
            write_parts(out, meta)
        try:
            tmp.rename(final)
        except OSError:
            if not final.is_dir():  # not "another process wrote it first"
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    _delete_older(root, kb_version)
    return final


def _delete_older(root: Path, kb_version: int) -> None:
    """Delete snapshots (and left-over temporary directories) of versions older than ``kb_version``;
    a newer one, written meanwhile by another process, stays."""
    with contextlib.suppress(OSError):
        for child in root.iterdir():
            found = _VERSION_DIR.match(child.name)
            if found and int(found.group(1)) < kb_version:
                shutil.rmtree(child, ignore_errors=True)


_ITEM_COLUMNS = ("name", "description", "price_minor", "stock", "image_url", "duration_minutes", "handle", "sku",
                 "position")
_ITEM_CODED = ("kind", "category", "currency")  # few distinct values: a table and one number per item
_VARIANT_COLUMNS = ("name", "sku", "price_minor", "stock", "image_url", "position")


def _encode_items(items: Sequence[ItemView]) -> dict[str, Any]:
    """The items as columns (one list per field, ids as one bytes string, a few distinct values as a
    table and numbers, variants as columns with per-item offsets): decoding makes a few dozen
    containers instead of hundreds of thousands of rows."""
    out: dict[str, Any] = {"ids": b"".join(item.id.bytes for item in items)}
    for name in _ITEM_COLUMNS:
        out[name] = [getattr(item, name) for item in items]
    for name in _ITEM_CODED:
        table: dict[Any, int] = {}
        out[name] = [table.setdefault(getattr(item, name), len(table)) for item in items]
        out[f"{name}_table"] = list(table)
    out["attributes"] = [[i, dict(item.attributes)] for i, item in enumerate(items) if item.attributes]
    variants = [v for item in items for v in item.variants]
    offsets = [0]
    for item in items:
        offsets.append(offsets[-1] + len(item.variants))
    options: dict[bytes, int] = {}
    option_table: list[dict[str, Any]] = []
    numbers = []
    for v in variants:
        key = msgpack.packb(dict(v.options), use_bin_type=True)
        if key not in options:
            options[key] = len(option_table)
            option_table.append(dict(v.options))
        numbers.append(options[key])
    out["variants"] = {"offsets": offsets, "ids": b"".join(v.id.bytes for v in variants), "options": numbers,
                       "option_table": option_table,
                       **{name: [getattr(v, name) for v in variants] for name in _VARIANT_COLUMNS}}
    return out


def write_parts(out: Any, value: Any) -> None:
    """Write ``value`` (plain msgpack values) to the binary file ``out`` as a stream of msgpack objects:
    ``value`` with every list/tuple or dict longer than :data:`CHUNK` replaced by a marker, then the
    marked containers' parts (slices of ``CHUNK`` entries; a dict's as ``[keys, values]``, string keys only) in
    the order the markers appear depth first. Entries of a long list are written as they are; a short
    list's entries and every dict's values are looked into. Read back by :func:`read_parts`."""
    packer = msgpack.Packer(use_bin_type=True)
    parts: list[Any] = []

    def mark(node: Any) -> Any:
        if isinstance(node, dict):
            if len(node) > CHUNK:
                if not all(type(key) is str for key in node):
                    raise TypeError("a map of more than CHUNK entries must have string keys")
                keys, values = list(node), list(node.values())
                parts.extend([keys[i : i + CHUNK], values[i : i + CHUNK]] for i in range(0, len(keys), CHUNK))
                return msgpack.ExtType(_MAP_PARTS, _count(len(keys)))
            return {key: mark(v) for key, v in node.items()}
        if isinstance(node, list | tuple):
            if len(node) > CHUNK:
                parts.extend(node[i : i + CHUNK] for i in range(0, len(node), CHUNK))
                return msgpack.ExtType(_LIST_PARTS, _count(len(node)))
            return [mark(v) for v in node]
        return node

    out.write(packer.pack(mark(value)))
    for part in parts:
        out.write(packer.pack(part))


def _count(entries: int) -> bytes:
    return ((entries + CHUNK - 1) // CHUNK).to_bytes(4, "big")


def read_parts(raw: bytes) -> Any:
    """The value :func:`write_parts` wrote into ``raw``: lists as tuples, maps as dicts (string or
    bytes keys; string keys interned). Each part is its own short decoding call, so a thread reading a large file lets
    other threads (the event loop) run between parts. Raises ``ValueError`` (or msgpack's errors) when
    ``raw`` is truncated, has bytes left over, or a marker is unknown."""
    # read from the bytes through a small window: feeding them whole copies all of them into the unpacker's
    # buffer, a second 20 MiB allocation that stayed in the process's heap
    unpacker = msgpack.Unpacker(io.BytesIO(raw), raw=False, use_list=False, strict_map_key=True,
                                read_size=_READ_SIZE)

    def parts(code: int, data: bytes) -> Any:
        if code not in (_LIST_PARTS, _MAP_PARTS) or len(data) != 4:
            raise ValueError(f"unknown msgpack extension {code}")
        chunks = [unpacker.unpack() for _ in range(int.from_bytes(data, "big"))]
        if code == _LIST_PARTS:
            return tuple(chain.from_iterable(chunks))
        # keys interned, as msgpack does for the keys of a map it decodes: equal keys of several maps (the
        # two models' vocabularies) are then one string object (24 MiB less at 100,000 items)
        found: dict[str, Any] = {}
        for keys, values in chunks:
            # ValueError: more keys than values or fewer; TypeError: a key that is not a string
            found.update(zip(map(sys.intern, keys), values, strict=True))
        return found

    def fill(node: Any) -> Any:
        if isinstance(node, msgpack.ExtType):
            return parts(node.code, node.data)
        if isinstance(node, dict):
            return {key: fill(v) for key, v in node.items()}
        if isinstance(node, tuple):
            return tuple(fill(v) for v in node)
        return node

    value = fill(unpacker.unpack())
    try:
        unpacker.unpack()
    except msgpack.OutOfData:
        return value
    raise ValueError("bytes left over after the last part")


# --- reading ------------------------------------------------------------------------------------


def load_snapshot(
    *, data_dir: Path, tenant_id: uuid.UUID, company_id: uuid.UUID, kb_version: int
) -> KnowledgeIndex | None:
    """The index stored for ``(tenant_id, company_id, kb_version)``, or ``None`` when there is none.
    Blocking (run it in a worker thread). Raises :class:`SnapshotError` when the snapshot is there but
    unusable: a file missing or of another size, undecodable, of another format, or naming another
    tenant, company or version than its path."""
    path = snapshot_path(data_dir, tenant_id, company_id, kb_version)
    try:
        raw = (path / _META).read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SnapshotError(f"cannot read {path / _META}: {exc}") from exc
    try:
        with _no_gc():
            return _decode(path, raw, tenant_id=tenant_id, company_id=company_id, kb_version=kb_version)
    except SnapshotError:
        raise
    except Exception as exc:  # noqa: BLE001 - whatever a damaged file makes a decoder raise
        raise SnapshotError(f"unreadable snapshot {path}: {type(exc).__name__}: {exc}") from exc


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """No cyclic garbage collection while some 10^5 objects that make no cycles are created: every
    collection would walk them all again (it tripled the time of a 100,000-item load)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _decode(path: Path, raw: bytes, *, tenant_id: uuid.UUID, company_id: uuid.UUID,
            kb_version: int) -> KnowledgeIndex:
    meta = read_parts(raw)
    del raw
    expected = (SNAPSHOT_FORMAT, str(tenant_id), str(company_id), int(kb_version))
    if (meta["format"], meta["tenant_id"], meta["company_id"], meta["kb_version"]) != expected:
        raise SnapshotError(f"{path} is not the snapshot of this tenant, company and version")
    for name, size in meta["sizes"].items():
        if (path / name).stat().st_size != size:
            raise SnapshotError(f"{path / name} is truncated or was changed")
    items = _decode_items(meta["items"], tenant_id=tenant_id, company_id=company_id)
    faq = [FaqView(id=uuid.UUID(bytes=i), question=q, answer=a, position=p) for i, q, a, p in meta["faq"]]
    arrays = {name: _mapped(np.load(path / f"{name}.npy", mmap_mode="r", allow_pickle=False))
              for name in ("doc_terms", "doc_offsets", "gram_keys", "gram_starts", "gram_owners")}
    models = [_load_model(path / name, vocab) if len(items) else None
              for name, vocab in zip(_MODELS, meta["bm25_vocab"], strict=True)]
    offsets = meta["items"]["variants"]["offsets"]
    for pos, _vocab, numbers in meta["tables"]["variant_rows"]:
        if not 0 <= pos < len(items) or len(numbers) != offsets[pos + 1] - offsets[pos]:
            raise SnapshotError("variant tables do not match the variants")
    tables = ItemTables.from_parts(items=len(items), plain=meta["tables"], arrays=arrays, full_bm25=models[0],
                                   name_bm25=models[1])
    return KnowledgeIndex(company_id=company_id, items=items, faq=faq, tables=tables)


def _mapped(array: np.ndarray) -> np.ndarray:
    """A plain ``ndarray`` over a ``np.memmap``'s pages (no copy): slicing a ``memmap`` makes a new
    ``memmap`` object each time, which made every search on a loaded index ~30 % slower."""
    return np.asarray(array)


def _load_model(path: Path, vocab: Any) -> Any:
    """A ``bm25s`` model with its arrays memory-mapped; its vocabulary comes from ``meta.msgpack``
    (bm25s' own JSON copy is slower to parse)."""
    import bm25s

    if not isinstance(vocab, dict):
        raise SnapshotError(f"{path}: no vocabulary")
    model = bm25s.BM25.load(path, mmap=True, show_progress=False, load_vocab=False)
    model.vocab_dict = vocab
    for key in ("data", "indices", "indptr"):
        model.scores[key] = _mapped(model.scores[key])
    columns = len(model.scores["indptr"]) - 1  # bm25s' own empty token may lie past the matrix
    ids = np.fromiter(vocab.values(), dtype=np.int64, count=len(vocab))
    outside = int(np.count_nonzero((ids < 0) | (ids >= columns)))
    if outside > 1 or (outside and not 0 <= vocab.get("", -1) <= columns):
        raise SnapshotError(f"{path}: the vocabulary does not match the arrays")
    return model


def _decode_items(columns: Mapping[str, Any], *, tenant_id: uuid.UUID, company_id: uuid.UUID) -> LazyItems:
    """The items of :func:`_encode_items` columns, each decoded into a view when first used. Raises
    ``SnapshotError`` when the columns do not fit together."""
    ids: bytes = columns["ids"]
    n = len(ids) // 16
    fields = {name: columns[name] for name in _ITEM_COLUMNS}
    coded = {name: (columns[name], tuple(columns[f"{name}_table"])) for name in _ITEM_CODED}
    attributes = {int(i): MappingProxyType(dict(value)) for i, value in columns["attributes"]}
    variants = columns["variants"]
    offsets, variant_ids = variants["offsets"], variants["ids"]
    option_views = tuple(MappingProxyType(dict(o)) if o else _EMPTY for o in variants["option_table"])
    variant_fields = [variants[name] for name in _VARIANT_COLUMNS]
    option_numbers = variants["options"]
    m = len(variant_ids) // 16
    if (len(ids) % 16 or len(variant_ids) % 16 or len(offsets) != n + 1 or offsets[-1] != m
            or any(len(values) != n for values in fields.values())
            or any(len(values) != n or (values and max(values) >= len(table)) for values, table in coded.values())
            or any(len(values) != m for values in variant_fields) or len(option_numbers) != m
            or (option_numbers and max(option_numbers) >= len(option_views))
            or any(not 0 <= i < n for i in attributes)):
        raise SnapshotError("item columns do not fit together")
    make_uuid = uuid.UUID
    names, descriptions, prices, stocks, images, durations, handles, skus, positions = fields.values()
    (kinds, kind_table), (categories, category_table), (currencies, currency_table) = coded.values()
    v_names, v_skus, v_prices, v_stocks, v_images, v_positions = variant_fields

    def decode(i: int) -> ItemView:
        item_id = make_uuid(bytes=ids[16 * i : 16 * i + 16])
        views = tuple(
            VariantView(id=make_uuid(bytes=variant_ids[16 * j : 16 * j + 16]), item_id=item_id, name=v_names[j],
                        options=option_views[option_numbers[j]], sku=v_skus[j], price_minor=v_prices[j],
                        stock=v_stocks[j], image_url=v_images[j], position=v_positions[j])
            for j in range(offsets[i], offsets[i + 1])
        )
        return ItemView(id=item_id, tenant_id=tenant_id, company_id=company_id, kind=kind_table[kinds[i]],
                        name=names[i], description=descriptions[i], category=category_table[categories[i]],
                        price_minor=prices[i], currency=currency_table[currencies[i]], stock=stocks[i],
                        image_url=images[i], duration_minutes=durations[i], handle=handles[i], sku=skus[i],
                        position=positions[i], attributes=attributes.get(i, _EMPTY), variants=views)

    service = kind_table.index("service") if "service" in kind_table else -1
    services = [i for i, kind in enumerate(kinds) if kind == service] if service >= 0 else []
    approx = 900 * n + 400 * m + sum(map(len, names)) + sum(map(len, descriptions))
    return LazyItems(rows=range(n), decode=decode, ids=[ids[16 * i : 16 * i + 16] for i in range(n)],
                     service_positions=services, approx_bytes=approx)


def discard_snapshot(*, data_dir: Path, tenant_id: uuid.UUID, company_id: uuid.UUID, kb_version: int) -> None:
    """Delete the snapshot of ``kb_version`` (an unusable one, before building it again); never raises."""
    shutil.rmtree(snapshot_path(data_dir, tenant_id, company_id, kb_version), ignore_errors=True)


# --- building -----------------------------------------------------------------------------------


@contextlib.contextmanager
def _build_lock(root: Path) -> Iterator[None]:
    """One builder per company on this machine at a time (an advisory ``flock``; none where the
    platform or the directory does not allow it)."""
    try:
        import fcntl

        root.mkdir(parents=True, exist_ok=True)
        fd = os.open(root / ".build.lock", os.O_RDWR | os.O_CREAT, 0o600)
    except (ImportError, OSError):
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


async def count_items(session: AsyncSession, company: Company) -> int:
    """How many knowledge items ``company`` has (tenant and company in the query)."""
    items = KnowledgeItem.__table__
    statement = select(func.count()).select_from(items).where(items.c.tenant_id == company.tenant_id,
                                                              items.c.company_id == company.id)
    return int((await session.execute(statement)).scalar_one())


async def refresh_snapshot(
    sessionmaker: async_sessionmaker[AsyncSession], *, tenant_id: uuid.UUID, company_id: uuid.UUID, data_dir: Path
) -> Path | None:
    """Build the index of the company's current ``kb_version`` and save it as a snapshot, unless one is
    already there (another process built it; one builder per company at a time). Returns the
    snapshot's directory, or ``None`` when the company is gone (or not in ``tenant_id``). Raises
    ``OSError`` when the snapshot cannot be written."""
    async with sessionmaker() as session:  # no directory is made for a company that is gone
        company = await session.get(Company, company_id)
        if company is None or company.tenant_id != tenant_id:
            return None
    lock = _build_lock(snapshot_root(data_dir, tenant_id, company_id))
    await asyncio.to_thread(lock.__enter__)
    try:
        async with sessionmaker() as session:
            company = await session.get(Company, company_id)  # the version current once the lock is held
            if company is None or company.tenant_id != tenant_id:
                return None
            version = company.kb_version or 0
            existing = snapshot_path(data_dir, tenant_id, company_id, version)
            if (existing / _META).is_file():
                return existing
            index = await build_index(session, company)
        return await asyncio.to_thread(save_snapshot, index, data_dir=data_dir, tenant_id=tenant_id,
                                       kb_version=version)
    finally:
        lock.__exit__(None, None, None)


def build_snapshot_in_process(database_url: str, tenant_id: uuid.UUID, company_id: uuid.UUID, data_dir: str) -> bool:
    """Entry point of a child process (``spawn``): :func:`refresh_snapshot` with the process's own
    engine, so the build's transient memory never enters the caller. Returns whether a snapshot of
    the company's current version exists now."""
    from core.db import create_engine, create_sessionmaker

    async def main() -> bool:
        engine = create_engine(database_url)
        try:
            path = await refresh_snapshot(create_sessionmaker(engine), tenant_id=tenant_id, company_id=company_id,
                                          data_dir=Path(data_dir))
        finally:
            await engine.dispose()
        return path is not None

    return asyncio.run(main())


# --- the cache's side ---------------------------------------------------------------------------


class SnapshotStore:
    """How a :class:`~knowledge.search.KnowledgeIndexCache` uses snapshots under ``data_dir``: load
    one on a miss; with ``database_url`` (the database a child process can open), build a missing one
    in a short-lived child process (``spawn``: the build's CPU and transient memory stay out of the
    serving process); save an index the caller had to build itself. Every failure is logged and
    reported as "no snapshot", so the cache builds as without snapshots (empty or read-only
    directory, several machines without a shared disk: each builds once)."""

    def __init__(self, *, data_dir: Path, database_url: str | None = None, min_items: int = SNAPSHOT_MIN_ITEMS) -> None:
        """``min_items``: smaller catalogues build in milliseconds and are neither built in a child
        nor saved (a snapshot found for one is still loaded)."""
        self.data_dir = data_dir
        self.database_url = database_url
        self.min_items = min_items
        self.loads = 0  # snapshots loaded (for tests and metrics)
        self.child_builds = 0  # snapshots built by a child process

    async def load(self, company: Company) -> KnowledgeIndex | None:
        """The snapshot of ``company`` at its ``kb_version`` (read in a worker thread), or ``None``
        when there is none or it is unusable (then it is logged and deleted)."""
        version = company.kb_version or 0
        try:
            index = await asyncio.to_thread(load_snapshot, data_dir=self.data_dir, tenant_id=company.tenant_id,
                                            company_id=company.id, kb_version=version)
        except SnapshotError as exc:
            log.warning("index_snapshot_unusable", tenant_id=str(company.tenant_id), company_id=str(company.id),
                        kb_version=version, error=str(exc))
            await asyncio.to_thread(discard_snapshot, data_dir=self.data_dir, tenant_id=company.tenant_id,
                                    company_id=company.id, kb_version=version)
            return None
        if index is not None:
            self.loads += 1
        return index

    async def build_in_child(self, session: AsyncSession, company: Company) -> bool:
        """Build and save ``company``'s snapshot in a child process; whether it succeeded (``False``
        without ``database_url``, for a catalogue under ``min_items`` (counted through ``session``), or
        when the child failed, which is logged)."""
        if not self.database_url or ":memory:" in self.database_url:
            return False
        if await count_items(session, company) < self.min_items:
            return False
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        try:
            built = await asyncio.get_running_loop().run_in_executor(
                pool, build_snapshot_in_process, self.database_url, company.tenant_id, company.id, str(self.data_dir))
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the caller builds in a thread instead
            log.warning("index_snapshot_child_failed", tenant_id=str(company.tenant_id), company_id=str(company.id),
                        exc_info=True)
            return False
        finally:
            pool.shutdown(wait=False)
        self.child_builds += built
        return built

    async def save(self, index: KnowledgeIndex, company: Company) -> None:
        """Save an index built by the caller (in a worker thread) unless it has under ``min_items``
        items; a failure is logged, not raised."""
        if index.item_count < self.min_items:
            return
        try:
            await asyncio.to_thread(save_snapshot, index, data_dir=self.data_dir, tenant_id=company.tenant_id,
                                    kb_version=company.kb_version or 0)
        except (OSError, TypeError, ValueError):
            log.warning("index_snapshot_not_saved", tenant_id=str(company.tenant_id), company_id=str(company.id),
                        exc_info=True)
