"""The one ``limits`` storage of a process: where every rate-limit counter lives (``api.ratelimit``:
admin-token failures and the web chat; ``api.auth_limits``: sign-ins and account e-mails).

:func:`limits_storage_uri` decides, from the settings:

1. ``CHATCOMMERCE_RATE_LIMIT_STORAGE`` when set (any async ``limits`` storage URI, e.g.
   ``async+redis://127.0.0.1:6379/1`` or ``async+memory://``) — an override;
2. else ``async+<CHATCOMMERCE_REDIS_URL>`` when Redis is configured, so every server process shares
   the counters;
3. else ``async+memory://`` (one process; counters are lost on restart).

Redis keys carry the prefix ``chatcommerce-limits``.
"""

from __future__ import annotations

from limits.aio.storage import Storage
from limits.storage import storage_from_string

from core.settings import Settings

KEY_PREFIX = "chatcommerce-limits"
MEMORY_URI = "async+memory://"


class LimitsStorageError(ValueError):
    """The configured storage is not an async ``limits`` storage URI; the message names the setting."""


def limits_storage_uri(settings: Settings) -> str:
    """The ``limits`` storage URI for ``settings`` (see the module docstring for the order)."""
    if settings.rate_limit_storage:
        return settings.rate_limit_storage
    if settings.redis_url:
        return f"async+{settings.redis_url}"
    return MEMORY_URI


def build_limits_storage(settings: Settings) -> Storage:
    """A new async storage for :func:`limits_storage_uri`. Raises :class:`LimitsStorageError` for a URI
    ``limits`` does not know or one of a synchronous storage. Build it with the event loop running."""
    uri = limits_storage_uri(settings)
    scheme = uri.split("://", 1)[0]
    options = {"key_prefix": KEY_PREFIX} if "redis" in scheme or "valkey" in scheme else {}
    source = "CHATCOMMERCE_RATE_LIMIT_STORAGE" if settings.rate_limit_storage else "CHATCOMMERCE_REDIS_URL"
    try:
        storage = storage_from_string(uri, **options)
    except Exception as exc:  # noqa: BLE001 - limits raises ConfigurationError or ValueError
        raise LimitsStorageError(f"{source}={uri!r} is not a `limits` storage: {exc}") from exc
    if not isinstance(storage, Storage):
        raise LimitsStorageError(f"{source}={uri!r} is a synchronous storage; use async+{uri}")
    return storage
