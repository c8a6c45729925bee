"""How an alert reaches a person: e-mail (SMTP), a Telegram message, or a signed webhook.

These functions make exactly one call each and never touch the database; ``channels.alerts`` claims
a delivery, retries transient failures with back-off and logs every attempt. Each raises
``AlertSendError`` on failure (``transient`` says whether another attempt may succeed) and returns
the provider's status code on success (SMTP reply code or HTTP status).

Webhook signature (for receivers): the body is UTF-8 JSON; ``X-Chatcommerce-Signature`` is
``sha256=<hex>`` where ``<hex>`` is HMAC-SHA256 of the *raw body bytes* keyed with the subscription's
secret (shown once, when the subscription is created). The body carries ``timestamp`` (Unix seconds,
also in ``X-Chatcommerce-Timestamp``) so a receiver can refuse old replays, and ``id`` (the event id,
also ``X-Chatcommerce-Event-Id``) to drop a duplicate. Compare signatures in constant time
(``hmac.compare_digest``).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from email.message import EmailMessage

import aiosmtplib
import httpx

SIGNATURE_HEADER = "X-Chatcommerce-Signature"
TIMESTAMP_HEADER = "X-Chatcommerce-Timestamp"
EVENT_HEADER = "X-Chatcommerce-Event"
EVENT_ID_HEADER = "X-Chatcommerce-Event-Id"
DELIVERY_HEADER = "X-Chatcommerce-Delivery"
TELEGRAM_TEXT_LIMIT = 4096  # https://core.telegram.org/bots/api#sendmessage


class AlertSendError(Exception):
    """A failed send: ``status_code`` is the provider's answer when there was one; ``transient`` is
    True for timeouts, connection errors, HTTP 408/429/5xx and SMTP 4xx (worth another attempt)."""

    def __init__(self, message: str, *, status_code: int | None = None, transient: bool = True) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.transient = transient


def _transient_http(code: int) -> bool:
    return code in (408, 425, 429) or code >= 500


@dataclass(frozen=True, kw_only=True)
class SmtpConfig:
    """Outgoing mail server (``CHATCOMMERCE_SMTP_*``): ``sender`` is the From address."""

    host: str
    port: int
    sender: str
    username: str | None = None
    password: str | None = None
    starttls: bool = True
    timeout: float = 30.0


async def send_email(config: SmtpConfig | None, *, to: str, subject: str, text: str) -> int:
    """Send one UTF-8 plain-text mail to ``to``; returns the SMTP reply code (250).

    Raises ``AlertSendError``: not configured (permanent), SMTP 5xx (permanent), 4xx or a connection
    problem (transient)."""
    if config is None:
        raise AlertSendError("SMTP is not configured (CHATCOMMERCE_SMTP_HOST, CHATCOMMERCE_SMTP_FROM)",
                             transient=False)
    message = EmailMessage()
    message["From"] = config.sender
    message["To"] = to
    message["Subject"] = subject
    message.set_content(text)
    try:
        await aiosmtplib.send(
            message, hostname=config.host, port=config.port, username=config.username, password=config.password,
            start_tls=config.starttls, timeout=config.timeout,
        )
    except aiosmtplib.SMTPRecipientsRefused as exc:
        codes = [getattr(r, "code", None) for r in exc.recipients]
        raise AlertSendError("recipient refused", status_code=codes[0] if codes else None, transient=False) from None
    except aiosmtplib.SMTPResponseException as exc:
        raise AlertSendError(f"SMTP {exc.code}: {exc.message}"[:300], status_code=exc.code,
                             transient=400 <= exc.code < 500) from None
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
        raise AlertSendError(f"SMTP connection failed: {type(exc).__name__}", transient=True) from None
    return 250


async def send_telegram(http: httpx.AsyncClient, *, api_base: str, bot_token: str, chat_id: str, text: str) -> int:
    """``sendMessage`` (https://core.telegram.org/bots/api#sendmessage) of plain ``text`` (cut to 4096
    characters) to ``chat_id``; returns the HTTP status (200).

    Raises ``AlertSendError``: 429 and 5xx are transient; 400 (chat not found), 401 (bad token) and
    403 (the recipient blocked or never started the bot) are permanent. The token is never in the error."""
    url = f"{api_base.rstrip('/')}/bot{bot_token}/sendMessage"
    try:
        response = await http.post(url, json={"chat_id": chat_id, "text": text[:TELEGRAM_TEXT_LIMIT],
                                              "disable_web_page_preview": True})
    except httpx.HTTPError as exc:
        raise AlertSendError(f"Telegram unreachable: {type(exc).__name__}", transient=True) from None
    if response.status_code == 200:
        return 200
    try:
        description = str(response.json().get("description") or "")
    except ValueError:
        description = ""
    raise AlertSendError(f"Telegram {response.status_code}: {description}"[:300], status_code=response.status_code,
                         transient=_transient_http(response.status_code))


def sign(secret: str, body: bytes) -> str:
    """The ``X-Chatcommerce-Signature`` value of ``body``: ``sha256=`` + HMAC-SHA256 hex digest."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def send_webhook(
    http: httpx.AsyncClient, *, url: str, secret: str, body: bytes, timestamp: int, event_kind: str,
    event_id: str, delivery_id: str,
) -> int:
    """POST ``body`` (JSON bytes) to ``url`` with the signature headers (see the module docstring);
    returns the HTTP status (2xx). Redirects are not followed (a 3xx is a permanent failure).

    Raises ``AlertSendError``: connection errors, timeouts, 408/425/429 and 5xx are transient; other
    statuses permanent."""
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "chatcommerce-alerts/1",
        SIGNATURE_HEADER: sign(secret, body),
        TIMESTAMP_HEADER: str(timestamp),
        EVENT_HEADER: event_kind,
        EVENT_ID_HEADER: event_id,
        DELIVERY_HEADER: delivery_id,
    }
    try:
        response = await http.post(url, content=body, headers=headers, follow_redirects=False)
    except httpx.HTTPError as exc:
        raise AlertSendError(f"webhook unreachable: {type(exc).__name__}", transient=True) from None
    if 200 <= response.status_code < 300:
        return response.status_code
    raise AlertSendError(f"webhook answered HTTP {response.status_code}", status_code=response.status_code,
                         transient=_transient_http(response.status_code))
