"""The FastAPI application factory.

``create_app()`` only declares routes; settings, the database engine and every client are built in
the lifespan (``api.services.open_runtime``) when the server starts, and closed when it stops.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import structlog
from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse
from starlette.types import Scope

from api import docs, health
from api.body_limit import BodyAllowance, BodyLimitMiddleware
from api.jobs import BackgroundWorkers
from api.pages import page_templates
from api.ratelimit import RateLimits
from api.routes import (
    accounts,
    admin,
    alerts,
    assistant,
    auth,
    bookings,
    channels,
    home,
    inbox,
    metrics,
    pay,
    sales,
    stripe_admin,
    stripe_webhook,
    tenant_data,
    webchat,
)
from api.security_headers import SecurityHeadersMiddleware
from api.services import open_runtime
from api.warmup import start_warming, stop_warming
from bot.engine import warm_up as warm_up_engine
from bot.messages import Responder
from commerce.payments import PaymentStateError
from core.accounts import ValidationError
from core.logging import configure_logging
from core.settings import Settings, get_settings
from core.tenancy import NotFound

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
# Routes allowed a body over CHATCOMMERCE_MAX_BODY_BYTES: the knowledge-base uploads take files up to
# CHATCOMMERCE_IMPORT_MAX_BYTES, plus room for the multipart envelope (boundaries, part headers).
MULTIPART_ENVELOPE_BYTES = 64 * 1024


def _import_max_bytes(scope: Scope) -> int:
    """``CHATCOMMERCE_IMPORT_MAX_BYTES`` of the running app (its default before the lifespan ran)."""
    runtime = getattr(scope["app"].state, "runtime", None)
    if runtime is None:
        return Settings.model_fields["import_max_bytes"].default
    return runtime.settings.import_max_bytes


def _upload_max_bytes(scope: Scope) -> int:
    """The upload's body limit: the file-size setting plus the multipart envelope."""
    return _import_max_bytes(scope) + MULTIPART_ENVELOPE_BYTES


BODY_ALLOWANCES = tuple(
    BodyAllowance(method="POST", path=f"/api/v1/tenants/{{tenant}}/companies/{{company}}/{path}",
                  max_bytes=_upload_max_bytes, limit_name="max_bytes", reported=_import_max_bytes)
    for path in ("knowledge-base", "knowledge-base/imports")
)

log = structlog.get_logger(__name__)


def create_app(settings: Settings | None = None, *, responder: Responder | None = None) -> FastAPI:
    """Build the app. ``settings`` default to the environment (read when the app starts);
    ``responder`` replaces the dialogue engine (tests use a double)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        cfg = settings or get_settings()
        configure_logging(level=cfg.log_level, json=cfg.log_json)
        async with open_runtime(cfg, responder=responder) as runtime:
            app.state.runtime = runtime
            if responder is None:  # the real engine: its dictionaries and catalogues load now, not on a message
                await asyncio.to_thread(warm_up_engine)
            app.state.rate_limits = RateLimits.from_settings(cfg)
            # With CHATCOMMERCE_QUEUE=redis the worker processes (api.worker) recover and run the sweep.
            embedded = runtime.queue is None
            if embedded:
                try:
                    recovered = await runtime.pipeline.recover()
                    if recovered:
                        log.info("recovered_conversations", count=recovered)
                except Exception:  # noqa: BLE001 - a failed recovery must not keep the server down
                    log.exception("recover_failed")
            warming = start_warming(runtime)  # in the background: /readyz does not wait for it
            workers = BackgroundWorkers(runtime=runtime, interval_seconds=cfg.sweep_seconds)
            app.state.workers = workers
            if cfg.workers_enabled and embedded:
                workers.start()
            try:
                yield
            finally:
                await stop_warming(warming)
                await workers.stop()
                await app.state.rate_limits.aclose()

    app = FastAPI(
        title="chatcommerce",
        version="0.1.0",
        summary="Self-hostable, multi-tenant conversational commerce engine.",
        lifespan=lifespan,
        docs_url=None,  # api.docs serves /docs and /openapi.json (local assets, can be turned off)
        openapi_url=None,
        redoc_url=None,
    )
    app.state.templates = page_templates(TEMPLATES_DIR)
    app.add_middleware(BodyLimitMiddleware, default_max_bytes=_max_body_bytes, allowances=BODY_ALLOWANCES)
    app.add_middleware(SecurityHeadersMiddleware)

    @app.exception_handler(NotFound)
    async def _not_found(_request: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=status.HTTP_404_NOT_FOUND)

    @app.exception_handler(ValidationError)
    async def _invalid(_request: Request, exc: ValidationError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)

    @app.exception_handler(PaymentStateError)
    async def _conflict(_request: Request, exc: PaymentStateError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=status.HTTP_409_CONFLICT)

    app.include_router(health.router)
    # Webhooks first: a request is matched against the routers in this order, and provider deliveries are
    # most of the requests (behind the admin API's routers, matching took 165 µs per delivery; first, 7 µs).
    # No other route starts with /webhooks/, so the order changes no match.
    app.include_router(channels.webhook_router)
    app.include_router(stripe_webhook.runtime_router)
    app.include_router(home.router)
    app.include_router(docs.router)
    app.mount(docs.SWAGGER_UI_PREFIX, docs.swagger_ui_assets(), name="swagger-ui")
    app.include_router(admin.router)
    app.include_router(inbox.router)
    app.include_router(sales.router)
    app.include_router(webchat.router)
    app.include_router(stripe_admin.public_router)  # before pay.router: /pay/return is not a token
    app.include_router(pay.router)
    app.include_router(channels.admin_router)
    app.include_router(stripe_admin.admin_router)
    app.include_router(assistant.router)
    app.include_router(bookings.router)
    app.include_router(auth.router)
    app.include_router(accounts.router)
    app.include_router(alerts.router)
    app.include_router(metrics.router)
    app.include_router(metrics.ops_router)
    app.include_router(tenant_data.router)
    return app


def _max_body_bytes(scope: Scope) -> int:
    """``CHATCOMMERCE_MAX_BODY_BYTES`` of the running app (its default before the lifespan ran)."""
    runtime = getattr(scope["app"].state, "runtime", None)
    if runtime is None:
        return Settings.model_fields["max_body_bytes"].default
    return runtime.settings.max_body_bytes
