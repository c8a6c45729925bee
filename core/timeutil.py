"""Time helpers: every timestamp in the engine is timezone-aware UTC."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    """Return the current time as an aware ``datetime`` in UTC."""
    return datetime.now(UTC)
