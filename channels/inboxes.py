"""Connecting a company's channels: creating an ``Inbox``, registering it with the provider, and
recording provider health. Credentials are encrypted at rest and never returned or logged.

The webhook URL of an inbox routes by inbox id, never by a token:
``{public_base_url}/webhooks/{kind}/{inbox_id}``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any

import structlog
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.llm.config import AssistantSettings
from channels.factory import ChannelFactory
from channels.registry import ChannelRegistry
from core.accounts import DEFAULT_INBOXES
from core.models import Company, Inbox, Message
from core.security import new_token
from core.tenancy import NotFound, TenantScope
from core.timeutil import utcnow
from core.vault import masked_credentials

log = structlog.get_logger(__name__)

# Generated per inbox when the owner does not give one: the secret Telegram echoes in
# X-Telegram-Bot-Api-Secret-Token, and the HMAC key WAHA signs webhooks with.
_GENERATED_SECRETS: dict[str, str] = {"telegram": "webhook_secret", "whatsapp_waha": "hmac_key"}
BUILTIN_KINDS = tuple(kind for kind, _label in DEFAULT_INBOXES)
# Inboxes that take no provider webhooks: the built-in ones (their own routes, or the terminal) and
# e-mail (pulled over IMAP with the inbox's own login). ``POST /webhooks/{kind}/...`` refuses them.
NO_WEBHOOK_KINDS = (*BUILTIN_KINDS, "email")


class InboxError(ValueError):
    """An inbox cannot be created or connected; the message says why (no secrets in it)."""


def webhook_url(*, public_base_url: str, inbox: Inbox) -> str:
    """Where the provider delivers this inbox's updates."""
    return f"{public_base_url.rstrip('/')}/webhooks/{inbox.kind}/{inbox.id}"


def inbox_as_dict(
    inbox: Inbox, *, public_base_url: str | None = None, decrypt: Callable[[str], str] | None = None
) -> dict[str, Any]:
    """JSON shape of an inbox for owners: settings and health, never credentials. With ``decrypt``
    (``SecretBox.decrypt``) ``credentials`` shows each stored credential masked to its last 4
    characters (``{"bot_token": "••••a1b2"}``, ``core.vault.masked_credentials``); never the
    secret or its ciphertext."""
    out: dict[str, Any] = {
        "id": str(inbox.id),
        "kind": inbox.kind,
        "name": inbox.name,
        "active": inbox.active,
        "settings": {k: v for k, v in (inbox.settings or {}).items() if k != "health"},
        "health": (inbox.settings or {}).get("health", {}),
        "has_credentials": bool(inbox.credentials),
        "created_at": inbox.created_at.isoformat(),
    }
    if decrypt is not None:
        out["credentials"] = masked_credentials(inbox.credentials, decrypt=decrypt)
    if public_base_url and inbox.kind not in NO_WEBHOOK_KINDS:
        out["webhook_url"] = webhook_url(public_base_url=public_base_url, inbox=inbox)
    return out


async def connect_inbox(
    session: AsyncSession,
    *,
    company: Company,
    kind: str,
    name: str | None,
    credentials: Mapping[str, Any],
    settings: Mapping[str, Any],
    channels: ChannelRegistry,
    encrypt: Callable[[str], str],
    factory: ChannelFactory,
    public_base_url: str,
) -> tuple[Inbox, dict[str, Any]]:
    """Create an inbox of ``kind`` for ``company`` and register it with the provider (Telegram
    ``setWebhook``, WAHA session with webhook config). Returns the inbox and what the provider
    reported (e.g. a QR code to scan for WhatsApp).

    Missing webhook secrets are generated. Raises ``InboxError`` for an unknown kind, for an
    ``assistant`` override in ``settings`` that ``AssistantSettings`` refuses (the same check as
    ``PUT .../inboxes/{id}/assistant``), or when the provider refuses (the inbox is then not kept: the
    caller rolls back).
    """
    _check_assistant_override(settings)
    if kind in BUILTIN_KINDS:
        raise InboxError(f"{kind} inboxes are built in; every company has one")
    try:
        channels.get(kind)
    except KeyError as exc:
        raise InboxError(str(exc.args[0])) from None
    creds = dict(credentials)
    secret_field = _GENERATED_SECRETS.get(kind)
    if secret_field and not creds.get(secret_field):
        creds[secret_field] = new_token(24)
    inbox = Inbox(
        tenant_id=company.tenant_id, company_id=company.id, kind=kind, name=(name or kind).strip()[:200],
        credentials=encrypt(json.dumps(creds)) if creds else None, settings=dict(settings), active=True,
    )
    session.add(inbox)
    await session.flush()
    channel = factory.build(inbox)
    try:
        details = await channel.connect(webhook_url=webhook_url(public_base_url=public_base_url, inbox=inbox))
    except Exception as exc:  # noqa: BLE001 - any provider refusal becomes a clear owner-facing error
        log.warning("inbox_connect_failed", kind=kind, company=company.slug, error=type(exc).__name__)
        raise InboxError(f"the {kind} provider refused the connection: {_safe_error(exc, creds)}") from exc
    finally:
        await channel.aclose()
    _set_health(inbox, status=str(details.get("status") or "CONNECTED"))
    factory.forget(inbox.id)
    return inbox, details


def _check_assistant_override(settings: Mapping[str, Any]) -> None:
    """Raise ``InboxError`` naming the field when ``settings["assistant"]`` is not a valid override
    (a stored bad value would silently fall back to rules mode at every message)."""
    if "assistant" not in settings:
        return
    override = settings["assistant"]
    if not isinstance(override, Mapping):
        raise InboxError("settings.assistant must be an object, e.g. {\"mode\": \"assist\"}")
    try:
        AssistantSettings.model_validate(dict(override))
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        where = ".".join(str(part) for part in first["loc"])
        raise InboxError(f"settings.assistant.{where}: {first['msg']}") from None


async def disconnect_inbox(session: AsyncSession, *, inbox: Inbox, factory: ChannelFactory) -> str | None:
    """Unregister the inbox at the provider (``deleteWebhook``, WAHA logout) and deactivate it.
    A provider error is logged and the inbox is deactivated anyway (the owner asked to stop); its
    exception class name is returned (``None`` when the provider accepted).
    Raises ``InboxError`` for a built-in inbox (web chat, console): every company keeps those."""
    if inbox.kind in BUILTIN_KINDS:
        raise InboxError(f"the built-in {inbox.kind} inbox stays")
    error: str | None = None
    channel = factory.build(inbox)
    try:
        await channel.disconnect()
    except Exception as exc:  # noqa: BLE001 - disconnect must succeed locally whatever the provider says
        error = type(exc).__name__
        log.warning("inbox_disconnect_failed", inbox_id=str(inbox.id), error=error)
    finally:
        await channel.aclose()
    inbox.active = False
    _set_health(inbox, status="DISCONNECTED")
    factory.forget(inbox.id)
    return error


def record_status(inbox: Inbox, status: str) -> None:
    """Store a provider-reported session status (e.g. from a WAHA ``session.status`` event)."""
    _set_health(inbox, status=status)


async def flag_silent_inboxes(session: AsyncSession, *, now: datetime | None = None) -> list[Inbox]:
    """Flag inboxes whose provider reports ``WORKING`` but that received nothing for longer than
    their ``settings["silence_alert_minutes"]`` (default 24 h): ``health.silent = True``. A silent
    WhatsApp session is the usual sign of a phone that was unlinked. Returns the flagged inboxes."""
    now = now or utcnow()
    flagged: list[Inbox] = []
    inboxes = (await session.execute(select(Inbox).where(Inbox.active.is_(True)))).scalars()
    for inbox in inboxes:
        health = dict((inbox.settings or {}).get("health") or {})
        if health.get("status") != "WORKING":
            continue
        minutes = int((inbox.settings or {}).get("silence_alert_minutes", 24 * 60))
        last = (
            await session.execute(
                select(Message.created_at).where(Message.inbox_id == inbox.id, Message.direction == "in")
                .order_by(Message.created_at.desc()).limit(1)
            )
        ).scalar_one_or_none()
        since = last or datetime.fromisoformat(health.get("since") or inbox.created_at.isoformat())
        silent = now - since > timedelta(minutes=minutes)
        if silent != bool(health.get("silent")):
            health["silent"] = silent
            inbox.settings = {**(inbox.settings or {}), "health": health}
        if silent:
            flagged.append(inbox)
    return flagged


async def tenant_inbox(session: AsyncSession, *, scope: TenantScope, company: Company, inbox_id: uuid.UUID) -> Inbox:
    """One inbox of the company, tenant-scoped; raises ``core.tenancy.NotFound``."""
    inbox = await scope.get(session, Inbox, inbox_id)
    if inbox.company_id != company.id:
        raise NotFound(f"Inbox {inbox_id} not found")
    return inbox


def _set_health(inbox: Inbox, *, status: str) -> None:
    previous = dict((inbox.settings or {}).get("health") or {})
    health = {"status": status, "since": utcnow().isoformat() if previous.get("status") != status
              else previous.get("since", utcnow().isoformat()), "silent": False}
    inbox.settings = {**(inbox.settings or {}), "health": health}


def _safe_error(exc: Exception, credentials: Mapping[str, Any]) -> str:
    """The exception text with every credential value masked (provider errors may echo a token)."""
    text = str(exc) or type(exc).__name__
    for value in credentials.values():
        if isinstance(value, str) and len(value) >= 6:
            text = text.replace(value, "***")
    return text[:300]
