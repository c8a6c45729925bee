"""Alerts for a company's staff: events written in the same transaction as the change that causes
them (a transactional outbox), and the subscriptions that say who hears about which events.

Event kinds (``core.models.ALERT_KINDS``) and where they are written:

* ``handoff.requested`` — a customer asked for a human (``bot.engine``);
* ``message.failed`` — a reply could not be delivered for good (``channels.pipeline``);
* ``order.paid`` — an order became paid (``commerce.payments.mark_paid``, the single place);
* ``booking.confirmed`` / ``booking.cancelled`` — ``commerce.bookings``.

``record_alert`` only adds a row (flushed, not committed): the caller's transaction commits it with the
change, so an alert exists exactly when the change does. Delivering is ``channels.alerts``' job.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.ext.asyncio import AsyncSession

from core.accounts import ValidationError
from core.models import ALERT_KINDS, SUBSCRIPTION_KINDS, AlertEvent, AlertSubscription

_EMAIL = re.compile(r"^[^@\s<>,;]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}[A-Za-z0-9])?(?:\.[A-Za-z0-9-]{1,63})+$")
_CHAT_ID = re.compile(r"^-?\d{1,20}$")


async def record_alert(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    company_id: uuid.UUID,
    kind: str,
    conversation_id: uuid.UUID | None = None,
    data: dict[str, Any] | None = None,
) -> AlertEvent:
    """Add a pending ``AlertEvent`` to the caller's transaction and return it (flushed, not committed).

    ``data`` must be JSON-serialisable: identifiers as strings, money in minor units with an ISO-4217
    ``currency``, times as ISO-8601 aware UTC strings. Raises ``ValueError`` for an unknown ``kind``.
    """
    if kind not in ALERT_KINDS:
        raise ValueError(f"alert kind must be one of {', '.join(ALERT_KINDS)}, not {kind!r}")
    event = AlertEvent(tenant_id=tenant_id, company_id=company_id, kind=kind, conversation_id=conversation_id,
                       data=dict(data or {}), status="pending")
    session.add(event)
    await session.flush()
    return event


def _check_webhook_url(url: str, *, allow_private: bool) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationError("webhook target must be an http:// or https:// URL")
    if parts.username or parts.password:
        raise ValidationError("webhook target must not contain credentials")
    if allow_private:
        return
    host = parts.hostname.lower()
    if host == "localhost" or host.endswith(".localhost") or host.endswith(".internal"):
        raise ValidationError("webhook target must be a public host")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return
    if not address.is_global:
        raise ValidationError("webhook target must be a public address")


def check_subscription(*, kind: str, target: str, events: list[str], allow_private_webhooks: bool = False) -> str:
    """Validate a subscription and return its normalised target.

    ``kind`` email: an address; telegram: a numeric chat id (the recipient must have started the bot
    that sends alerts, see ``channels.alerts``); webhook: an http(s) URL, public unless
    ``allow_private_webhooks`` (literal private/loopback addresses and ``localhost`` are refused).
    ``events`` is a non-empty subset of ``ALERT_KINDS``. Raises ``core.accounts.ValidationError``.
    """
    target = (target or "").strip()
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in target):
        raise ValidationError("target must not contain control characters")
    if kind not in SUBSCRIPTION_KINDS:
        raise ValidationError(f"kind must be one of {', '.join(SUBSCRIPTION_KINDS)}, not {kind!r}")
    if not events:
        raise ValidationError("events must list at least one of " + ", ".join(ALERT_KINDS))
    unknown = [e for e in events if e not in ALERT_KINDS]
    if unknown:
        raise ValidationError(f"unknown event {unknown[0]!r}; events are {', '.join(ALERT_KINDS)}")
    if kind == "email" and not _EMAIL.match(target):
        raise ValidationError(f"{target!r} is not an e-mail address")
    if kind == "telegram" and not _CHAT_ID.match(target):
        raise ValidationError("telegram target must be a numeric chat id (e.g. 123456789)")
    if kind == "webhook":
        if len(target) > 2000:
            raise ValidationError("webhook URL is longer than 2000 characters")
        _check_webhook_url(target, allow_private=allow_private_webhooks)
    return target


async def create_subscription(
    session: AsyncSession,
    *,
    tenant_id: uuid.UUID,
    company_id: uuid.UUID,
    kind: str,
    target: str,
    events: list[str],
    secret_ciphertext: str | None = None,
    allow_private_webhooks: bool = False,
) -> AlertSubscription:
    """Add a subscription of a company (flushed, not committed). ``secret_ciphertext`` is the
    ``SecretBox`` ciphertext of a webhook's signing key (required for webhooks, ignored otherwise).
    Raises ``core.accounts.ValidationError`` for bad fields (see ``check_subscription``)."""
    target = check_subscription(kind=kind, target=target, events=events,
                                allow_private_webhooks=allow_private_webhooks)
    if kind == "webhook" and not secret_ciphertext:
        raise ValidationError("a webhook subscription needs a signing secret")
    sub = AlertSubscription(tenant_id=tenant_id, company_id=company_id, kind=kind, target=target,
                            events=list(dict.fromkeys(events)), secret=secret_ciphertext if kind == "webhook" else None,
                            active=True)
    session.add(sub)
    await session.flush()
    return sub
