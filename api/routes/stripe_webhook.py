"""``POST /webhooks/stripe``: Stripe's webhook endpoint (platform and Connect events).

Build it with :func:`build_router` and include it in the app; it needs no other app state::

    app.include_router(build_router(sessionmaker=runtime.sessionmaker, config=stripe_config,
                                    deliver=pipeline.deliver_pending))

Register this URL twice in the Stripe Dashboard (an endpoint for the account's own events and a
Connect endpoint for connected accounts' events — Checkout events of direct charges arrive there);
each has its own signing secret (``StripeConfig.webhook_secret`` / ``connect_webhook_secret``) and a
request signed with either is accepted.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import structlog
from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import JSONResponse
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.deps import RuntimeDep
from commerce.stripe_events import StripeWebhookError, handle_event, verify_event
from commerce.stripe_provider import StripeConfig
from core.db import transaction

log = structlog.get_logger(__name__)

# Called as ``await deliver(conversation_id=...)``; ``channels.pipeline.Pipeline.deliver_pending`` fits.
DeliverPending = Callable[..., Awaitable[object]]


def build_router(
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    config: StripeConfig,
    deliver: DeliverPending | None = None,
    path: str = "/webhooks/stripe",
) -> APIRouter:
    """An ``APIRouter`` with ``POST {path}``.

    The raw body is verified against ``Stripe-Signature`` (``config.webhook_secrets``, tolerance
    ``config.webhook_tolerance_seconds``): a bad, stale or missing signature or a body that is not an
    event answers 400 and stores nothing. A verified event is handled in one transaction
    (``commerce.stripe_events.handle_event``) and answered 200 ``{"status": processed|duplicate|
    ignored, "reason": …}`` — ignored events are acknowledged so Stripe stops retrying them. A
    database error answers 500 (nothing was committed; Stripe retries). When a customer message was
    queued (order paid), ``deliver(conversation_id=…)`` runs after the response; its failures are
    logged, the message stays pending for the next delivery run.
    """
    router = APIRouter(tags=["webhooks"])

    @router.post(path, include_in_schema=False)
    async def stripe_webhook(request: Request, background: BackgroundTasks) -> JSONResponse:
        return await handle_stripe_webhook(request, background, sessionmaker=sessionmaker, config=config,
                                           deliver=deliver)

    return router


async def handle_stripe_webhook(
    request: Request,
    background: BackgroundTasks,
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    config: StripeConfig,
    deliver: DeliverPending | None,
) -> JSONResponse:
    """Verify and handle one Stripe delivery (see :func:`build_router` for the answers)."""

    async def _deliver(conversation_id: uuid.UUID) -> None:
        if deliver is None:
            return
        try:
            await deliver(conversation_id=conversation_id)
        except Exception:  # noqa: BLE001 - the event is committed; the outbox keeps the message
            log.exception("stripe_webhook.delivery_failed", conversation_id=str(conversation_id))

    payload = await request.body()
    try:
        event = verify_event(payload, request.headers.get("stripe-signature"), secrets=config.webhook_secrets,
                             tolerance=config.webhook_tolerance_seconds)
    except StripeWebhookError as exc:
        log.warning("stripe_webhook.rejected", error=str(exc))
        runtime = getattr(request.app.state, "runtime", None)
        if runtime is not None:
            runtime.telemetry.webhook_refused("stripe")
        return JSONResponse({"error": "invalid webhook request"}, status_code=400)
    async with transaction(sessionmaker) as session:
        result = await handle_event(session, event)
    log.info("stripe_webhook.handled", event_id=result.event_id, type=result.event_type, status=result.status,
             reason=result.reason, order_id=str(result.order_id) if result.order_id else None,
             account=event.get("account"))
    if result.conversation_id is not None and deliver is not None:
        background.add_task(_deliver, result.conversation_id)
    return JSONResponse({"status": result.status, "reason": result.reason})


runtime_router = APIRouter(tags=["webhooks"])


@runtime_router.post("/webhooks/stripe", include_in_schema=False)
async def stripe_webhook_route(request: Request, background: BackgroundTasks, runtime: RuntimeDep) -> JSONResponse:
    """The app's Stripe endpoint, configured from the runtime's settings; 404 when Stripe is not
    configured (``CHATCOMMERCE_STRIPE_SECRET_KEY`` unset)."""
    if runtime.stripe_config is None or not runtime.stripe_config.webhook_secrets:
        return JSONResponse({"error": "stripe is not configured"}, status_code=404)
    return await handle_stripe_webhook(request, background, sessionmaker=runtime.sessionmaker,
                                       config=runtime.stripe_config, deliver=runtime.pipeline.deliver_pending)
