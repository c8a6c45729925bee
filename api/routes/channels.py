"""Channels: owners connect inboxes (admin API) and providers deliver webhooks.

* ``/api/v1/tenants/{tenant}/companies/{company}/inboxes`` (owner or platform admin): connect Telegram or WhatsApp
  (WAHA), list, check status, read WAHA's QR code, disconnect.
* ``POST /webhooks/{kind}/{inbox_id}`` (public, verified by the adapter): the delivery is verified
  (401 and nothing stored on a bad signature or secret), parsed (400 on a malformed body), stored —
  duplicates are no-ops — and acknowledged; answers follow after the inbox's buffer window.
"""

from __future__ import annotations

import uuid
from typing import Any

import structlog
from fastapi import APIRouter, Depends, HTTPException, Request, status
from pydantic import BaseModel, Field

from api.deps import AdminDep, CompanyDep, Requires, RuntimeDep, SessionDep, TenantScopeDep
from channels.base import RawRequest, SignatureError
from channels.inboxes import (
    NO_WEBHOOK_KINDS,
    InboxError,
    connect_inbox,
    disconnect_inbox,
    inbox_as_dict,
    record_status,
    tenant_inbox,
)
from core.models import Inbox
from core.tenancy import TenantScope

log = structlog.get_logger(__name__)

# Channel credentials and webhooks are the owner's: managers get 403 (api.auth).
admin_router = APIRouter(prefix="/api/v1", tags=["channels"], dependencies=[AdminDep, Depends(Requires("owner"))])
webhook_router = APIRouter(tags=["webhooks"])

_INBOXES = "/tenants/{tenant}/companies/{company}/inboxes"


class InboxIn(BaseModel):
    """Connect a channel. ``credentials`` are encrypted at rest and never returned, e.g. Telegram
    ``{"bot_token": "..."}``, WAHA ``{"api_key": "...", "hmac_key": "..."}``; ``settings`` are plain,
    e.g. WAHA ``{"base_url": "http://waha:3000", "session": "default"}``, ``{"buffer_seconds": 3}``."""

    kind: str = Field(examples=["telegram", "whatsapp_waha"])
    name: str | None = None
    credentials: dict[str, Any] = Field(default_factory=dict)
    settings: dict[str, Any] = Field(default_factory=dict)


@admin_router.post(_INBOXES, status_code=status.HTTP_201_CREATED)
async def connect_inbox_route(body: InboxIn, company: CompanyDep, session: SessionDep,
                              runtime: RuntimeDep) -> dict[str, Any]:
    """Create the inbox and register its webhook with the provider. 422 when the kind is unknown or
    the provider refuses (nothing is kept). The answer includes provider details such as a QR code."""
    try:
        inbox, details = await connect_inbox(
            session, company=company, kind=body.kind, name=body.name, credentials=body.credentials,
            settings=body.settings, channels=runtime.channels, encrypt=runtime.secret_box.encrypt,
            factory=runtime.channel_factory, public_base_url=runtime.settings.public_base_url,
        )
    except InboxError as exc:
        await session.rollback()
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    await session.commit()
    return {**inbox_as_dict(inbox, public_base_url=runtime.settings.public_base_url,
                            decrypt=runtime.secret_box.decrypt), "provider": details}


@admin_router.get(_INBOXES)
async def list_inboxes_route(company: CompanyDep, scope: TenantScopeDep, session: SessionDep,
                             runtime: RuntimeDep) -> list[dict[str, Any]]:
    """The company's inboxes (built-in web chat and console included), without credentials."""
    rows = (await session.execute(scope.select(Inbox, Inbox.company_id == company.id).order_by(Inbox.created_at)))
    return [inbox_as_dict(i, public_base_url=runtime.settings.public_base_url,
                          decrypt=runtime.secret_box.decrypt) for i in rows.scalars()]


@admin_router.get(_INBOXES + "/{inbox_id}/status")
async def inbox_status_route(inbox_id: uuid.UUID, company: CompanyDep, scope: TenantScopeDep,
                             session: SessionDep, runtime: RuntimeDep) -> dict[str, Any]:
    """Ask the provider for the inbox's health (``getWebhookInfo``, WAHA session status) and record it."""
    inbox = await tenant_inbox(session, scope=scope, company=company, inbox_id=inbox_id)
    channel = runtime.channel_factory.build(inbox)
    try:
        reported = await channel.status()
    finally:
        await channel.aclose()
    if reported.get("status"):
        record_status(inbox, str(reported["status"]))
        await session.commit()
        runtime.channel_factory.forget(inbox.id)
    return {**inbox_as_dict(inbox, public_base_url=runtime.settings.public_base_url,
                            decrypt=runtime.secret_box.decrypt), "provider": reported}


@admin_router.get(_INBOXES + "/{inbox_id}/qr")
async def inbox_qr_route(inbox_id: uuid.UUID, company: CompanyDep, scope: TenantScopeDep,
                         session: SessionDep, runtime: RuntimeDep) -> dict[str, Any]:
    """WhatsApp only: the QR code the owner scans to link the phone (WAHA ``GET /api/{session}/auth/qr``)."""
    inbox = await tenant_inbox(session, scope=scope, company=company, inbox_id=inbox_id)
    channel = runtime.channel_factory.build(inbox)
    qr = getattr(channel, "qr", None)
    if qr is None:
        await channel.aclose()
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"{inbox.kind} inboxes have no QR code")
    try:
        return {"qr": await qr()}
    finally:
        await channel.aclose()


@admin_router.delete(_INBOXES + "/{inbox_id}")
async def disconnect_inbox_route(inbox_id: uuid.UUID, company: CompanyDep, scope: TenantScopeDep,
                                 session: SessionDep, runtime: RuntimeDep) -> dict[str, Any]:
    """Unregister at the provider (``deleteWebhook``, WAHA logout) and deactivate the inbox; its
    conversations and messages are kept."""
    inbox = await tenant_inbox(session, scope=scope, company=company, inbox_id=inbox_id)
    try:
        await disconnect_inbox(session, inbox=inbox, factory=runtime.channel_factory)
    except InboxError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, str(exc)) from None
    await session.commit()
    runtime.channel_factory.forget(inbox.id)  # again: a webhook may have re-read it before the commit
    return inbox_as_dict(inbox, public_base_url=runtime.settings.public_base_url,
                         decrypt=runtime.secret_box.decrypt)


@webhook_router.post("/webhooks/{kind}/{inbox_id}")
async def channel_webhook(kind: str, inbox_id: uuid.UUID, request: Request, runtime: RuntimeDep) -> dict[str, Any]:
    """A provider's delivery for one inbox. Order of work: verify (401, nothing stored), parse (400),
    store every message (claimed by ``(inbox, source_id)``: a redelivery is answered once), record a
    reported session status, acknowledge. The answer is sent through the channel after the inbox's
    buffer window, so the provider gets its 200 at once."""
    inbox = await runtime.pipeline.inbox(inbox_id)  # cached per inbox (channels.factory)
    # E-mail and the built-in inboxes take no webhooks: a POST must not inject messages into them.
    if inbox is None or inbox.kind != kind or not inbox.active or inbox.kind in NO_WEBHOOK_KINDS:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such inbox")
    raw = RawRequest(headers={k.lower(): v for k, v in request.headers.items()}, body=await request.body(),
                     query=dict(request.query_params))
    channel = runtime.channel_factory.channel(inbox)  # shared: not closed here
    try:
        await channel.verify(raw)
    except SignatureError as exc:
        log.warning("webhook_refused", inbox_id=str(inbox.id), kind=kind, reason=str(exc))
        runtime.telemetry.webhook_refused(inbox.kind)
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "signature or secret does not match") from None
    try:
        messages, reported = await channel.parse_delivery(raw)
    except ValueError as exc:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, f"malformed delivery: {exc}") from None
    if reported:
        async with runtime.sessionmaker() as session, session.begin():
            record_status(await TenantScope(inbox.tenant_id).get(session, Inbox, inbox.id), reported)
        runtime.channel_factory.forget(inbox.id)
    stored = duplicates = 0
    for parsed in messages:
        result = await runtime.pipeline.accept(inbox_id=inbox.id, parsed=parsed)
        duplicates += int(result.duplicate)
        stored += int(not result.duplicate)
    await channel.acknowledge(raw)
    return {"ok": True, "stored": stored, "duplicates": duplicates, "status": reported}
