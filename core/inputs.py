"""Checks of free input every backend can store and compare (filters, notes, labels, canned replies).

PostgreSQL refuses text containing NUL (``\\x00``) with an error, SQLite stores it; both are refused
here with a ``ValidationError`` naming the field, so bad input is a clear 422 / exit 1 on either
backend rather than a server error. Time bounds must be aware and representable in UTC.
"""

from __future__ import annotations

from datetime import UTC, datetime

from core.accounts import ValidationError


def checked_text(value: str | None, what: str) -> str | None:
    """``value`` unchanged; ``ValidationError`` when it contains a NUL character."""
    if value is not None and "\x00" in value:
        raise ValidationError(f"{what} must not contain NUL characters")
    return value


def checked_texts(values: tuple[str, ...], what: str) -> tuple[str, ...]:
    """:func:`checked_text` of every value."""
    for value in values:
        checked_text(value, what)
    return values


def utc_bound(value: datetime | None, what: str) -> datetime | None:
    """An aware datetime converted to UTC; ``ValidationError`` for a naive one or one that falls
    outside the years 1-9999 once converted."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValidationError(f"{what} must carry a time zone (aware UTC), got {value.isoformat()}")
    try:
        return value.astimezone(UTC)
    except (OverflowError, ValueError) as exc:
        raise ValidationError(f"{what} {value.isoformat()} is out of range") from exc
