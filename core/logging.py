"""structlog configuration. Secrets are masked by ``redact_secrets`` before anything is rendered, and
secret URL parts (payment pages, calendar feeds, live-events tickets, Telegram bot tokens) by
``RedactTokenPaths`` in the server's access log and in the HTTP client's request log."""

from __future__ import annotations

import logging
import re
from typing import Any

import structlog

_SECRET_KEYS = re.compile(r"(token|secret|password|api_key|apikey|authorization|credentials)", re.I)


def redact_secrets(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: replace values of secret-looking keys with ``'***'``."""
    for key in list(event):
        if key != "event" and _SECRET_KEYS.search(key):
            event[key] = "***"
    return event


# /pay/<token> (not /pay/return, Stripe's return page), /calendar/<company>/<token>[.ics], ?ticket=<ticket>,
# /bot<token>/<method> (the Bot API puts the bot's token in the path: https://core.telegram.org/bots/api#making-requests)
_TOKEN_PATHS: tuple[tuple[re.Pattern[str], Any], ...] = (
    (re.compile(r"(/bot)[0-9]+:[A-Za-z0-9_-]+"), r"\1***"),
    (re.compile(r"([?&]ticket=)[^&#\s\"']+"), r"\1***"),
    (re.compile(r"(/pay/)(?!return(?:[/?#\s\"']|$))[^/?#\s\"']+"), r"\1***"),
    (re.compile(r"(/calendar/[^/?#\s\"']+/)[^/?#\s\"']+?(\.ics)?(?=[/?#\s\"']|$)"),
     lambda m: f"{m.group(1)}***{m.group(2) or ''}"),
)
# The server's access log and httpx's INFO line per request ("HTTP Request: POST <url> ...").
ACCESS_LOGGERS = ("uvicorn.access", "httpx")
# Loggers whose DEBUG lines carry statement parameters (customer data, ciphertexts): never below INFO.
QUIET_LOGGERS = ("aiosqlite", "asyncpg")


def redact_token_paths(text: str) -> str:
    """``text`` with the secret part of payment-page and calendar-feed paths replaced by ``***``:
    ``/pay/<token>[/test]`` → ``/pay/***[/test]``, ``/calendar/<company>/<token>.ics`` →
    ``/calendar/<company>/***.ics``, ``...?ticket=<ticket>`` → ``...?ticket=***``, ``/bot<id>:<secret>/getMe``
    → ``/bot***/getMe``."""
    for pattern, replacement in _TOKEN_PATHS:
        text = pattern.sub(replacement, text)
    return text


class RedactTokenPaths(logging.Filter):
    """A stdlib logging filter that redacts secret URL paths (:func:`redact_token_paths`) in a
    record's message and arguments. Uvicorn's access log passes the request path as an argument
    (``'%s - "%s %s HTTP/%s" %d'``), httpx an ``httpx.URL`` (``'HTTP Request: %s %s "%s %d %s"'``);
    installed on :data:`ACCESS_LOGGERS` by ``configure_logging``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact_token_paths(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_redacted_arg(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _redacted_arg(v) for k, v in record.args.items()}
        return True


def _redacted_arg(value: Any) -> Any:
    """A log argument with secret paths redacted: strings, and objects whose ``str()`` holds one (``httpx.URL``)."""
    if isinstance(value, (int, float, bool)) or value is None:
        return value
    text = value if isinstance(value, str) else str(value)
    redacted = redact_token_paths(text)
    return redacted if (isinstance(value, str) or redacted != text) else value


def install_access_log_redaction() -> None:
    """Add one ``RedactTokenPaths`` to each access logger (idempotent). Call after the server has
    configured its logging (uvicorn's ``dictConfig`` runs before the app's lifespan)."""
    for name in ACCESS_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactTokenPaths) for f in logger.filters):
            logger.addFilter(RedactTokenPaths())


def configure_logging(*, level: str = "INFO", json: bool = False) -> None:
    """Configure structlog and stdlib logging once per process (called from lifespan / CLI)."""
    logging.basicConfig(level=level.upper(), format="%(message)s")
    for name in QUIET_LOGGERS:
        logger = logging.getLogger(name)
        if logger.getEffectiveLevel() < logging.INFO:
            logger.setLevel(logging.INFO)
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            redact_secrets,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        cache_logger_on_first_use=False,
    )
    install_access_log_redaction()
