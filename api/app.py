"""The FastAPI application factory.

``create_app()`` only declares routes; settings, the database engine and every client are built in
the lifespan (``api.services.open_runtime``) when the server starts, and closed when it stops.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import structlog
from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse
from fastapi.templating import Jinja2Templates

from api import health
from api.jobs import BackgroundWorkers
from api.routes import admin, bookings, channels, pay, stripe_admin, stripe_webhook, webchat
from api.services import open_runtime
from bot.messages import Responder
from commerce.payments import PaymentStateError
from core.accounts import ValidationError
from core.logging import configure_logging
from core.settings import Settings, get_settings
from core.tenancy import NotFound

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"

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
            try:
                recovered = await runtime.pipeline.recover()
                if recovered:
                    log.info("recovered_conversations", count=recovered)
            except Exception:  # noqa: BLE001 - a failed recovery must not keep the server down
                log.exception("recover_failed")
            workers = BackgroundWorkers(runtime=runtime, interval_seconds=cfg.sweep_seconds)
            app.state.workers = workers
            if cfg.workers_enabled:
                workers.start()
            try:
                yield
            finally:
                await workers.stop()

    app = FastAPI(
        title="chatcommerce",
        version="0.1.0",
        summary="Self-hostable, multi-tenant conversational commerce engine.",
        lifespan=lifespan,
        docs_url="/docs",
        redoc_url=None,
    )
    app.state.templates = Jinja2Templates(directory=str(TEMPLATES_DIR))

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
    app.include_router(admin.router)
    app.include_router(webchat.router)
    app.include_router(stripe_admin.public_router)  # before pay.router: /pay/return is not a token
    app.include_router(pay.router)
    app.include_router(channels.admin_router)
    app.include_router(channels.webhook_router)
    app.include_router(stripe_webhook.runtime_router)
    app.include_router(stripe_admin.admin_router)
    app.include_router(bookings.router)
    return app
