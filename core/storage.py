"""Where a tenant's files live on disk: one directory per tenant under ``CHATCOMMERCE_DATA_DIR``,
one per company inside it. Anything stored for a tenant (uploads, exports, per-tenant secrets) goes
under these paths, so that deleting a tenant or a company (``core.purge``) finds every file, and no
path is shared between tenants.

Layout: ``<data_dir>/tenants/<tenant uuid>/`` and ``<data_dir>/tenants/<tenant uuid>/companies/<company uuid>/``.
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path


def tenant_dir(data_dir: Path, tenant_id: uuid.UUID) -> Path:
    """The tenant's directory (not created here)."""
    return data_dir / "tenants" / str(tenant_id)


def company_dir(data_dir: Path, tenant_id: uuid.UUID, company_id: uuid.UUID) -> Path:
    """The company's directory inside its tenant's (not created here)."""
    return tenant_dir(data_dir, tenant_id) / "companies" / str(company_id)


@dataclass(frozen=True, slots=True)
class RemovedFiles:
    """What :func:`remove_tree` deleted: ``files`` (paths relative to ``data_dir``) and their ``bytes``."""

    files: tuple[str, ...]
    bytes: int


def remove_tree(root: Path, *, data_dir: Path) -> RemovedFiles:
    """Delete ``root`` and everything in it (blocking: run it in a worker thread). A missing ``root``
    removes nothing. Symbolic links are removed, never followed. Raises ``OSError`` when a file
    cannot be removed (the files listed so far may already be gone)."""
    if not root.exists() and not root.is_symlink():
        return RemovedFiles(files=(), bytes=0)
    files: list[str] = []
    size = 0
    if root.is_symlink():
        files.append(str(root.relative_to(data_dir)))
    for folder, dirs, names in os.walk(root, followlinks=False):
        for name in sorted(names) + sorted(d for d in dirs if (Path(folder) / d).is_symlink()):
            path = Path(folder) / name
            files.append(str(path.relative_to(data_dir)))
            size += 0 if path.is_symlink() else path.lstat().st_size
    if root.is_symlink():
        root.unlink()
    else:
        shutil.rmtree(root)
    return RemovedFiles(files=tuple(files), bytes=size)
