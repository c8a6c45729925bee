"""Building channel adapters for inboxes, and caching both per process.

``ChannelFactory.build`` makes a fresh adapter for an inbox (the caller closes it). The hot path —
every webhook and every reply — instead asks ``inbox()`` for the inbox's row and ``channel()`` for
its adapter: both are kept per inbox, so credentials are decrypted once and an adapter's connections
(the shared ``httpx.AsyncClient``, aiogram's session of the bot) are reused.

Invalidation: whatever changes an inbox in this process calls ``forget(inbox_id)``
(``channels.inboxes`` does on connect, disconnect and a recorded status). Other processes see a
change after at most ``ttl_seconds`` (default 30 s), when the row is read again; an adapter is rebuilt
only when the row's kind, credentials, settings or active flag differ.
"""

from __future__ import annotations

import inspect
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from channels.base import Channel
from channels.registry import ChannelRegistry
from core.models import Inbox


@dataclass(frozen=True, slots=True)
class InboxRow:
    """What the pipeline needs of an ``Inbox``, read once: ``credentials`` is still ciphertext."""

    id: uuid.UUID
    tenant_id: uuid.UUID
    company_id: uuid.UUID
    kind: str
    active: bool
    settings: dict[str, Any]
    credentials: str | None

    @classmethod
    def of(cls, inbox: Inbox) -> InboxRow:
        return cls(id=inbox.id, tenant_id=inbox.tenant_id, company_id=inbox.company_id, kind=inbox.kind,
                   active=bool(inbox.active), settings=dict(inbox.settings or {}), credentials=inbox.credentials)


_INBOX_ROW = select(Inbox.id, Inbox.tenant_id, Inbox.company_id, Inbox.kind, Inbox.active, Inbox.settings,
                    Inbox.credentials)


class ChannelFactory:
    """Builds the adapter instance for an inbox, decrypting its credentials with ``decrypt``
    (``core.security.SecretBox.decrypt``); credentials are a JSON object once decrypted.

    ``http`` is the process's shared keep-alive ``httpx.AsyncClient``, handed to adapters whose
    constructor takes a ``client`` (WAHA); the factory does not close it. ``ttl_seconds`` bounds how
    long a cached inbox row is trusted before it is read again.
    """

    def __init__(self, *, channels: ChannelRegistry, decrypt: Callable[[str], str] | None = None,
                 http: httpx.AsyncClient | None = None, ttl_seconds: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._channels = channels
        self._decrypt = decrypt
        self._http = http
        self._ttl = ttl_seconds
        self._clock = clock
        self._rows: dict[uuid.UUID, tuple[float, InboxRow]] = {}
        self._built: dict[uuid.UUID, tuple[InboxRow, Channel]] = {}
        self._retired: list[Channel] = []

    def channel_class(self, inbox: Inbox | InboxRow) -> type[Channel]:
        return self._channels.get(inbox.kind)

    def build(self, inbox: Inbox | InboxRow) -> Channel:
        """A new adapter for ``inbox``; the caller closes it (``aclose``). Raises ``RuntimeError``
        when the inbox has credentials but no decryptor is configured, ``KeyError`` for an unknown kind."""
        cls = self._channels.get(inbox.kind)
        credentials: dict[str, object] = {}
        if inbox.credentials:
            if self._decrypt is None:
                raise RuntimeError(f"inbox {inbox.id} has credentials but no decryptor is configured")
            credentials = json.loads(self._decrypt(inbox.credentials))
        extra: dict[str, Any] = {}
        if self._http is not None and _takes_client(cls):
            extra["client"] = self._http
        return cls(credentials=credentials, settings=inbox.settings or {}, **extra)

    # -- per-inbox cache -------------------------------------------------------------------------

    async def inbox(self, source: AsyncSession | async_sessionmaker[AsyncSession],
                    inbox_id: uuid.UUID) -> InboxRow | None:
        """The inbox's row (``None`` when it does not exist), read at most once per ``ttl_seconds``
        with one ``SELECT`` (in ``source``, a session or a session factory)."""
        now = self._clock()
        cached = self._rows.get(inbox_id)
        if cached is not None and now - cached[0] < self._ttl:
            return cached[1]
        stmt = _INBOX_ROW.where(Inbox.id == inbox_id)
        if isinstance(source, AsyncSession):
            found = (await source.execute(stmt)).first()
        else:
            async with source() as session:
                found = (await session.execute(stmt)).first()
        if found is None:
            self.forget(inbox_id)
            return None
        row = InboxRow(id=found.id, tenant_id=found.tenant_id, company_id=found.company_id, kind=found.kind,
                       active=bool(found.active), settings=dict(found.settings or {}), credentials=found.credentials)
        self._rows[inbox_id] = (now, row)
        return row

    def channel(self, inbox: Inbox | InboxRow) -> Channel:
        """The inbox's cached adapter, built on first use and rebuilt when the inbox changed. Shared by
        concurrent deliveries: callers must not ``aclose`` it (``ChannelFactory.aclose`` does)."""
        row = inbox if isinstance(inbox, InboxRow) else InboxRow.of(inbox)
        built = self._built.get(row.id)
        if built is not None and built[0] == row:
            return built[1]
        channel = self.build(row)
        if built is not None:
            self._retired.append(built[1])
        self._built[row.id] = (row, channel)
        return channel

    def forget(self, inbox_id: uuid.UUID) -> None:
        """Drop what is cached for the inbox (its row and adapter): call after changing it."""
        self._rows.pop(inbox_id, None)
        built = self._built.pop(inbox_id, None)
        if built is not None:
            # It may be mid-send in another task: closed with the factory, not now.
            self._retired.append(built[1])

    async def aclose(self) -> None:
        """Close every adapter built by ``channel()`` (at process end)."""
        channels = [c for _row, c in self._built.values()] + self._retired
        self._built.clear()
        self._retired.clear()
        self._rows.clear()
        for channel in channels:
            try:
                await channel.aclose()
            except Exception:  # noqa: BLE001 - closing is best effort at shutdown
                pass


def _takes_client(cls: type[Channel]) -> bool:
    try:
        return "client" in inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
        return False
