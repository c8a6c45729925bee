"""The wiring of one process: everything the HTTP app and the CLI need, built from ``Settings``.

``open_runtime`` is the one builder used by the app's lifespan (``api.app``) and by every CLI command
(``api.cli``): it creates the database engine, the session factory, the secret box, the payment
providers, the knowledge index cache, the dialogue engine, the channel registry, the inbound
pipeline (timed for Prometheus), the web-chat visitor signer, the import runner, the alert dispatcher,
the live-event bus and the process's Prometheus series (``api.telemetry``), hooks the session factory so
commits feed the bus and the counters (``api.realtime``), and closes them again. Nothing is built at
import time.
"""

from __future__ import annotations

import ssl
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import certifi
import httpx
import structlog
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from api.import_runner import ImportRunner
from api.realtime import EventBus, install_session_hooks
from api.telemetry import Telemetry
from api.visitor_tokens import VisitorSigner
from bot.engine import DialogueEngine
from bot.llm.assistant import Assistant
from bot.llm.config import PlatformModel
from bot.messages import Responder
from channels.alert_senders import SmtpConfig
from channels.alerts import AlertDispatcher
from channels.pipeline import ChannelFactory, Pipeline, ReceiveResult, Reply
from channels.queue import RedisQueue
from channels.registry import ChannelRegistry
from commerce.providers import ProviderRegistry
from commerce.stripe_provider import StripeApi, StripeConfig, StripeProvider
from core.db import SqlStats, create_engine, create_sessionmaker, track_sql
from core.http import cookieless_jar, pooled_client
from core.security import SecretBox, key_material
from core.settings import Settings
from knowledge.search import KnowledgeIndexCache
from knowledge.snapshot import SnapshotStore

log = structlog.get_logger(__name__)


@dataclass(kw_only=True)
class Runtime:
    """The long-lived objects of one process (one per app or CLI command).

    ``responder`` is what answers customers: the ``DialogueEngine`` unless a test double was injected.
    """

    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    secret_box: SecretBox
    providers: ProviderRegistry
    index_cache: KnowledgeIndexCache
    responder: Responder
    channels: ChannelRegistry
    channel_factory: ChannelFactory
    pipeline: Pipeline
    visitor_signer: VisitorSigner
    imports: ImportRunner
    events: EventBus
    telemetry: Telemetry
    alerts: AlertDispatcher
    stripe_config: StripeConfig | None = None
    stripe_api: StripeApi | None = None
    sql_stats: SqlStats | None = None
    http: httpx.AsyncClient | None = None
    queue: RedisQueue | None = None

    @property
    def payment_ttl(self) -> timedelta:
        """How long a payment link stays valid (``CHATCOMMERCE_PAYMENT_LINK_TTL_MINUTES``)."""
        return timedelta(minutes=self.settings.payment_link_ttl_minutes)

    async def aclose(self) -> None:
        """Stop the import runner, cancel the pipeline's buffer timers, close the alert dispatcher, the
        live-event bus, the channel adapters and the shared HTTP client, and dispose of the database engine."""
        await self.imports.aclose()
        if self.queue is not None:
            await self.queue.aclose()
        await self.pipeline.close()
        await self.alerts.aclose()
        await self.events.aclose()
        await self.channel_factory.aclose()
        if self.http is not None:
            await self.http.aclose()
        if self.stripe_api is not None:
            await self.stripe_api.aclose()
        await self.engine.dispose()
        if self.sql_stats is not None and self.settings.sql_stats_file is not None:
            self.sql_stats.write(self.settings.sql_stats_file)


def build_runtime(settings: Settings, *, responder: Responder | None = None) -> Runtime:
    """Build a ``Runtime`` from ``settings``; ``responder`` replaces the dialogue engine (tests).

    Opens no connection yet (the engine connects lazily); call ``Runtime.aclose`` when done, or use
    :func:`open_runtime`. Without ``CHATCOMMERCE_SECRET_KEY`` the secret box and the visitor signer use a key file under
    ``settings.data_dir`` (created now when missing).
    """
    pool = {} if settings.is_sqlite else {"pool_size": settings.db_pool_size,
                                             "max_overflow": settings.db_max_overflow}
    engine = create_engine(settings.database_url, **pool)
    sessionmaker = create_sessionmaker(engine)
    sql_stats = track_sql(engine) if settings.sql_stats_file is not None else None
    secret_key, fallbacks = settings.secret_materials()
    keys = key_material(secret_key=secret_key, data_dir=settings.data_dir)
    secret_box = SecretBox(key_material=keys, fallbacks=fallbacks)
    visitor_signer = VisitorSigner(key_material=keys, fallbacks=fallbacks,
                                   max_age_seconds=settings.webchat_visitor_days * 86400)
    providers = ProviderRegistry.default(public_base_url=settings.public_base_url)
    stripe_config = stripe_config_from(settings)
    stripe_api = StripeApi(config=stripe_config) if stripe_config else None
    if stripe_api is not None:
        providers.register(StripeProvider(api=stripe_api))
    index_cache = KnowledgeIndexCache(snapshots=SnapshotStore(data_dir=settings.data_dir,
                                                              database_url=settings.database_url))
    payment_ttl = timedelta(minutes=settings.payment_link_ttl_minutes)
    if responder is None:
        responder = DialogueEngine(index_cache=index_cache, providers=providers, payment_ttl=payment_ttl,
                                   assistant=Assistant(platform=platform_model(settings), box=secret_box))
    channels = ChannelRegistry.default()
    http = shared_http_client()
    channel_factory = ChannelFactory(channels=channels, decrypt=secret_box.decrypt, http=http)
    telemetry = Telemetry(channel_kinds=tuple(channels.kinds()))
    queue = queue_from(settings)
    pipeline = TimedPipeline(
        sessionmaker=sessionmaker, responder=responder, channels=channels, channel_factory=channel_factory,
        telemetry=telemetry, queue=queue,
    )
    alerts = alert_dispatcher_from(settings, sessionmaker=sessionmaker, decrypt=secret_box.decrypt,
                                   on_result=telemetry.alert_result)
    events = EventBus(redis_url=settings.redis_url)
    install_session_hooks(sessionmaker, bus=events, telemetry=telemetry, on_alert=alerts.wake)
    return Runtime(
        settings=settings,
        engine=engine,
        sessionmaker=sessionmaker,
        secret_box=secret_box,
        providers=providers,
        index_cache=index_cache,
        responder=responder,
        channels=channels,
        channel_factory=channel_factory,
        pipeline=pipeline,
        visitor_signer=visitor_signer,
        imports=ImportRunner(settings=settings, sessionmaker=sessionmaker, on_ended=telemetry.import_ended),
        events=events,
        telemetry=telemetry,
        alerts=alerts,
        stripe_config=stripe_config,
        stripe_api=stripe_api,
        sql_stats=sql_stats,
        http=http,
        queue=queue,
    )


def queue_from(settings: Settings) -> RedisQueue | None:
    """The inbound job queue when ``CHATCOMMERCE_QUEUE=redis`` (not connected yet), else ``None``.
    Raises ``ValueError`` when the queue is redis but ``CHATCOMMERCE_REDIS_URL`` is not set."""
    if settings.queue != "redis":
        return None
    if not settings.redis_url:
        raise ValueError("CHATCOMMERCE_QUEUE=redis needs CHATCOMMERCE_REDIS_URL")
    return RedisQueue(url=settings.redis_url, stream=settings.queue_stream, concurrency=settings.queue_concurrency,
                      claim_idle_seconds=settings.queue_claim_idle_seconds)


def shared_http_client() -> httpx.AsyncClient:
    """The process's keep-alive HTTP client for channel adapters (WAHA): up to 100 connections, idle
    ones kept for 30 s, 30 s per request (5 s to connect), certifi's trust store, no cookies kept
    (it serves every tenant: ``core.http.cookieless_jar``), on aiohttp's connection pool
    (``core.http.pooled_client``). Closed by ``Runtime.aclose``."""
    return pooled_client(
        cookies=cookieless_jar(),
        timeout=httpx.Timeout(30.0, connect=5.0),
        limits=httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=30.0),
        verify=ssl.create_default_context(cafile=certifi.where()),
    )


class TimedPipeline(Pipeline):
    """The pipeline, timed into ``chatcommerce_pipeline_seconds``: a message answered inside
    ``Pipeline.receive`` (no buffer window: stored, answered and queued in one go), and a conversation
    answered by ``Pipeline.process`` (after a buffer window, or by ``recover``)."""

    def __init__(self, *, telemetry: Telemetry, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._telemetry = telemetry

    async def receive(self, **kwargs: Any) -> ReceiveResult:
        started = time.perf_counter()
        result = await super().receive(**kwargs)
        if result.replies:
            self._telemetry.pipeline_seconds.observe(time.perf_counter() - started)
        return result

    async def process(self, *, conversation_id: uuid.UUID, **kwargs: Any) -> list[Reply]:
        started = time.perf_counter()
        replies = await super().process(conversation_id=conversation_id, **kwargs)
        if replies:  # answered conversations only (not empty recover passes)
            self._telemetry.pipeline_seconds.observe(time.perf_counter() - started)
        return replies


def smtp_config_from(settings: Settings) -> SmtpConfig | None:
    """Outgoing mail settings (``CHATCOMMERCE_SMTP_*``), ``None`` without a host and From address."""
    if not settings.smtp_host or not settings.smtp_from:
        return None
    return SmtpConfig(
        host=settings.smtp_host, port=settings.smtp_port, sender=settings.smtp_from,
        username=settings.smtp_username or None,
        password=(settings.smtp_password.get_secret_value() or None) if settings.smtp_password else None,
        starttls=settings.smtp_starttls,
    )


def alert_dispatcher_from(
    settings: Settings, *, sessionmaker: async_sessionmaker[AsyncSession], decrypt: Callable[[str], str],
    on_result: Callable[[str, str], None] | None = None,
) -> AlertDispatcher:
    """The alert dispatcher configured from ``CHATCOMMERCE_SMTP_*`` and ``CHATCOMMERCE_ALERTS_*``."""
    token = settings.alerts_telegram_bot_token.get_secret_value() if settings.alerts_telegram_bot_token else None
    return AlertDispatcher(
        sessionmaker=sessionmaker, decrypt=decrypt, smtp=smtp_config_from(settings),
        telegram_bot_token=token or None, telegram_api_base=settings.alerts_telegram_api_base,
        attempts=settings.alerts_attempts, retry_seconds=settings.alerts_retry_seconds,
        timeout_seconds=settings.alerts_timeout_seconds, on_result=on_result,
        allow_private_webhooks=settings.alerts_allow_private_webhooks,
    )


def platform_model(settings: Settings) -> PlatformModel:
    """The default model server of the language-model mode from ``CHATCOMMERCE_OPENAI_*``."""
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
    return PlatformModel(
        base_url=settings.openai_base_url, api_key=key, model=settings.openai_model,
        timeout_seconds=settings.openai_timeout_seconds, max_retries=settings.openai_max_retries,
        max_tokens=settings.openai_max_tokens, max_tool_rounds=settings.openai_max_tool_rounds,
        input_usd_micros_per_mtok=settings.openai_input_usd_micros_per_mtok,
        output_usd_micros_per_mtok=settings.openai_output_usd_micros_per_mtok,
        monthly_budget_usd_micros=settings.openai_monthly_budget_usd_micros,
    )


def stripe_config_from(settings: Settings) -> StripeConfig | None:
    """Stripe settings when ``CHATCOMMERCE_STRIPE_SECRET_KEY`` is set, else ``None`` (manual payments only)."""
    if settings.stripe_secret_key is None or not settings.stripe_secret_key.get_secret_value():
        return None

    def _secret(value: SecretStr | None) -> str | None:
        return (value.get_secret_value() or None) if value else None

    return StripeConfig(
        secret_key=settings.stripe_secret_key.get_secret_value(),
        public_base_url=settings.public_base_url,
        webhook_secret=_secret(settings.stripe_webhook_secret),
        connect_webhook_secret=_secret(settings.stripe_connect_webhook_secret),
        api_base=settings.stripe_api_base,
        webhook_tolerance_seconds=settings.stripe_webhook_tolerance_seconds,
    )


@asynccontextmanager
async def open_runtime(settings: Settings, *, responder: Responder | None = None) -> AsyncIterator[Runtime]:
    """``build_runtime`` as an async context manager that closes the runtime on exit. With
    ``CHATCOMMERCE_REDIS_URL`` it also connects the live-event relay (``api.realtime``), so what the
    server or a CLI command commits reaches views connected to any server process. With
    ``CHATCOMMERCE_QUEUE=redis`` it connects the job queue (raising what Redis raises when it is down:
    a web process that cannot enqueue must not look healthy)."""
    runtime = build_runtime(settings, responder=responder)
    try:
        try:
            await runtime.events.start()
        except Exception:  # noqa: BLE001 - without Redis, live events stay in this process
            log.exception("live_relay_failed")
        if runtime.queue is not None:
            await runtime.queue.connect()
        yield runtime
    finally:
        await runtime.aclose()
