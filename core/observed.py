"""Changes written with Core statements, noted for the commit hooks that watch the ORM.

``api.realtime`` publishes live events and counts Prometheus series from what a session flushed
(``session.new`` / ``session.dirty``). A hot path that writes with Core statements
(``channels.pipeline``: the inbound message insert, the ``sent`` update) bypasses that, so it notes
the change here, in the same session, and the hooks publish it after the commit like any other
(nothing is published when the transaction rolls back).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from core.models import Message

# ``session.info`` key of the pending ``(what, message, company_id)`` changes; ``what`` is
# ``"message"`` (a new message) or ``"status"`` (an outbound message became sent or failed).
OBSERVED_KEY = "chatcommerce.live_events"


def note_message(session: AsyncSession, *, what: str, message: Message, company_id: uuid.UUID) -> None:
    """Record that ``message`` (a transient ``Message`` carrying the written values: id,
    conversation_id, direction, sender, channel, status, text, created_at) was inserted
    (``what="message"``) or changed status (``what="status"``) by a Core statement in this session's
    transaction, for ``company_id``."""
    if what not in ("message", "status"):
        raise ValueError(f"what must be 'message' or 'status', not {what!r}")
    pending: list[Any] = session.info.setdefault(OBSERVED_KEY, [])
    pending.append((what, message, company_id))
