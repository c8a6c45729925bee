"""Alerts and live updates of a company, under ``/api/v1/tenants/{tenant}/companies/{company}/``.

* ``GET|POST alert-subscriptions``, ``DELETE alert-subscriptions/{id}`` — who is told about which
  events (``core.alerts``): ``kind`` email | telegram | webhook, ``target`` (address, chat id, URL),
  ``events`` (``handoff.requested``, ``message.failed``, ``order.paid``, ``booking.confirmed``,
  ``booking.cancelled``). A webhook's signing secret is generated here and shown once, in the answer
  to the POST (then only ``has_secret``).
* ``GET alert-deliveries`` — the delivery log, newest first, with every attempt (status code/error).
* ``GET events`` — Server-Sent Events (``text/event-stream``) for open inbox views: ``message.created``,
  ``message.status`` (sent/failed) and the alert kinds, of this company only (``api.realtime``). The
  first event is ``ready``; a comment ping keeps idle connections open. Browsers' ``EventSource``
  cannot send an ``Authorization`` header: they first ``POST events/ticket`` (with the header) and
  open ``events?ticket=...``. A ticket is signed, names the user, tenant and company, and is valid
  for 60 s (``api.auth_tokens.STREAM_TICKET_SECONDS``) — long enough to open the stream, which then
  stays open; a reconnect needs a new ticket. The access log shows ``ticket=***``.

Access: the router-level admin guard plus ``TenantScopeDep``/``CompanyDep`` (a company of another
tenant is a 404), like every tenant route.
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response, status
from pydantic import BaseModel, Field
from sqlalchemy import select
from sse_starlette import EventSourceResponse

from api.deps import (
    AccessDep,
    AdminDep,
    AuthDep,
    CompanyDep,
    Requires,
    RuntimeDep,
    SessionDep,
    StreamTicketAccepted,
    TenantScopeDep,
)
from core.alerts import create_subscription
from core.models import ALERT_KINDS, AlertDelivery, AlertDeliveryAttempt, AlertEvent, AlertSubscription
from core.tenancy import NotFound

router = APIRouter(prefix="/api/v1", tags=["alerts"], dependencies=[AdminDep])

_COMPANY = "/tenants/{tenant}/companies/{company}"
PING_SECONDS = 15


class SubscriptionIn(BaseModel):
    """A new alert subscription. ``events`` defaults to every kind."""

    kind: str = Field(description="email | telegram | webhook")
    target: str = Field(max_length=2000, description="E-mail address, Telegram chat id, or http(s) URL")
    events: list[str] = Field(default_factory=lambda: list(ALERT_KINDS), max_length=len(ALERT_KINDS) * 2)


class SubscriptionOut(BaseModel):
    """A subscription as listed; ``secret`` is set only in the answer that created a webhook."""

    id: uuid.UUID
    kind: str
    target: str
    events: list[str]
    active: bool
    has_secret: bool
    created_at: datetime
    secret: str | None = None


class AttemptOut(BaseModel):
    number: int
    ok: bool
    status_code: int | None
    error: str | None
    created_at: datetime


class DeliveryOut(BaseModel):
    """One alert to one subscription: ``status`` pending | sending | sent | failed."""

    id: uuid.UUID
    event_id: uuid.UUID
    event_kind: str
    subscription_id: uuid.UUID
    channel: str
    status: str
    attempts: int
    status_code: int | None
    error: str | None
    created_at: datetime
    finished_at: datetime | None
    attempt_log: list[AttemptOut]


def _sub_out(sub: AlertSubscription, secret: str | None = None) -> SubscriptionOut:
    return SubscriptionOut(id=sub.id, kind=sub.kind, target=sub.target, events=list(sub.events or []),
                           active=sub.active, has_secret=bool(sub.secret), created_at=sub.created_at, secret=secret)


@router.get(_COMPANY + "/alert-subscriptions", response_model=list[SubscriptionOut])
async def list_subscriptions(company: CompanyDep, scope: TenantScopeDep, session: SessionDep) -> list[SubscriptionOut]:
    """The company's alert subscriptions, oldest first (secrets are never shown)."""
    stmt = scope.select(AlertSubscription, AlertSubscription.company_id == company.id).order_by(
        AlertSubscription.created_at)
    return [_sub_out(s) for s in (await session.execute(stmt)).scalars()]


@router.post(_COMPANY + "/alert-subscriptions", status_code=status.HTTP_201_CREATED, response_model=SubscriptionOut)
async def create_subscription_route(body: SubscriptionIn, company: CompanyDep, session: SessionDep,
                                    runtime: RuntimeDep) -> SubscriptionOut:
    """Subscribe a recipient. For a webhook the answer's ``secret`` is the HMAC-SHA256 signing key
    (shown only now; the signature scheme is in ``channels.alert_senders``). 422 for a bad kind,
    target or event (a webhook on a private address is refused unless
    ``CHATCOMMERCE_ALERTS_ALLOW_PRIVATE_WEBHOOKS``)."""
    secret = "whsec_" + secrets.token_urlsafe(32) if body.kind == "webhook" else None
    sub = await create_subscription(
        session, tenant_id=company.tenant_id, company_id=company.id, kind=body.kind, target=body.target,
        events=body.events, secret_ciphertext=runtime.secret_box.encrypt(secret) if secret else None,
        allow_private_webhooks=runtime.settings.alerts_allow_private_webhooks,
    )
    await session.commit()
    return _sub_out(sub, secret)


@router.delete(_COMPANY + "/alert-subscriptions/{subscription_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_subscription(subscription_id: uuid.UUID, company: CompanyDep, scope: TenantScopeDep,
                              session: SessionDep) -> Response:
    """Remove a subscription (its delivery log goes with it). 404 for another company's."""
    sub = await scope.get(session, AlertSubscription, subscription_id)
    if sub.company_id != company.id:
        raise NotFound(f"AlertSubscription {subscription_id} not found")
    await session.delete(sub)
    await session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(_COMPANY + "/alert-deliveries", response_model=list[DeliveryOut])
async def list_deliveries(
    company: CompanyDep, scope: TenantScopeDep, session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[DeliveryOut]:
    """The company's alert deliveries, newest first, each with its attempts (status code or error)."""
    rows = (await session.execute(
        scope.select(AlertDelivery, AlertDelivery.company_id == company.id)
        .order_by(AlertDelivery.created_at.desc()).limit(limit))).scalars().all()
    ids = [d.id for d in rows]
    attempts: dict[uuid.UUID, list[AttemptOut]] = {i: [] for i in ids}
    kinds: dict[uuid.UUID, str] = {}
    channels: dict[uuid.UUID, str] = {}
    if ids:
        for a in (await session.execute(scope.select(AlertDeliveryAttempt, AlertDeliveryAttempt.delivery_id.in_(ids))
                                        .order_by(AlertDeliveryAttempt.number))).scalars():
            attempts[a.delivery_id].append(AttemptOut(number=a.number, ok=a.ok, status_code=a.status_code,
                                                      error=a.error, created_at=a.created_at))
        event_ids = {d.event_id for d in rows}
        kinds = dict((await session.execute(select(AlertEvent.id, AlertEvent.kind).where(
            AlertEvent.tenant_id == scope.tenant_id, AlertEvent.id.in_(event_ids)))).all())
        sub_ids = {d.subscription_id for d in rows}
        channels = dict((await session.execute(select(AlertSubscription.id, AlertSubscription.kind).where(
            AlertSubscription.tenant_id == scope.tenant_id, AlertSubscription.id.in_(sub_ids)))).all())
    return [DeliveryOut(id=d.id, event_id=d.event_id, event_kind=kinds.get(d.event_id, "?"),
                        subscription_id=d.subscription_id, channel=channels.get(d.subscription_id, "?"),
                        status=d.status, attempts=d.attempts, status_code=d.status_code, error=d.error,
                        created_at=d.created_at, finished_at=d.finished_at, attempt_log=attempts[d.id])
            for d in rows]


class TicketOut(BaseModel):
    ticket: str
    expires_in: int = Field(description="Seconds the ticket stays valid for opening the stream")
    url: str = Field(description="The events path with the ticket, for `new EventSource(url)`")


@router.post(_COMPANY + "/events/ticket", response_model=TicketOut,
             dependencies=[Depends(Requires("manager", people_only=True))])
async def events_ticket(request: Request, company: CompanyDep, access: AccessDep, auth: AuthDep) -> dict[str, Any]:
    """A short-lived ticket for ``GET events?ticket=...`` (browsers' ``EventSource`` sends no headers),
    bound to the caller, the tenant and this company. 400 for the admin token (nobody), 403 for an
    API key."""
    user_id = access.principal.user_id
    if user_id is None:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "a stream ticket needs a signed-in person")
    ticket = auth.tokens.stream_ticket(user_id=user_id, tenant_id=company.tenant_id, company_id=company.id)
    path = request.url.path.removesuffix("/ticket")
    return {"ticket": ticket, "expires_in": int(auth.tokens.ticket_ttl.total_seconds()),
            "url": f"{path}?ticket={ticket}"}


@router.get(_COMPANY + "/events", response_class=EventSourceResponse, dependencies=[StreamTicketAccepted],
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "Server-Sent Events: `ready`, `message.created`, `message.status`, "
                                            "and the alert kinds; `data` is a JSON object."}})
async def company_events(
    request: Request, company: CompanyDep, session: SessionDep, runtime: RuntimeDep,
    ticket: Annotated[str | None, Query(max_length=2048, description="A ticket from `POST events/ticket`, "
                                                                     "instead of the Authorization header")] = None,
) -> EventSourceResponse:
    """Live updates of the company's conversations as Server-Sent Events (see the module docstring).
    The caller is the bearer, or without one the ``ticket`` (read by ``api.deps``). The database
    session is released before streaming; events are not replayed after a reconnect."""
    del ticket  # documented here, read by api.deps.get_optional_principal
    tenant_id, company_id = company.tenant_id, company.id
    await session.close()  # a stream may stay open for hours: do not hold a database connection
    bus = runtime.events

    async def stream() -> AsyncIterator[dict[str, Any]]:
        with bus.subscribe(tenant_id=tenant_id, company_id=company_id) as sub:
            yield {"event": "ready", "data": json.dumps({"company": company.slug})}
            while True:
                live = await sub.get()
                if sub.overflowed:
                    sub.overflowed = False
                    yield {"event": "overflow", "data": "{}"}
                yield {"event": live.type, "data": json.dumps(live.data, ensure_ascii=False, default=str)}

    return EventSourceResponse(stream(), ping=PING_SECONDS)
