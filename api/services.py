"""The wiring of one process: everything the HTTP app and the CLI need, built from ``Settings``.

``open_runtime`` is the one builder used by the app's lifespan (``api.app``) and by every CLI command
(``api.cli``): it creates the database engine, the session factory, the secret box, the payment
providers, the knowledge index cache, the dialogue engine, the channel registry, the inbound
pipeline, the web-chat visitor signer and the import runner, and closes them again. Nothing is built at import time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta

from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from api.import_runner import ImportRunner
from api.visitor_tokens import VisitorSigner
from bot.engine import DialogueEngine
from bot.llm.assistant import Assistant
from bot.llm.config import PlatformModel
from bot.messages import Responder
from channels.pipeline import ChannelFactory, Pipeline
from channels.registry import ChannelRegistry
from commerce.providers import ProviderRegistry
from commerce.stripe_provider import StripeApi, StripeConfig, StripeProvider
from core.db import create_engine, create_sessionmaker
from core.security import SecretBox, key_material
from core.settings import Settings
from knowledge.search import KnowledgeIndexCache


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
    stripe_config: StripeConfig | None = None
    stripe_api: StripeApi | None = None

    @property
    def payment_ttl(self) -> timedelta:
        """How long a payment link stays valid (``CHATCOMMERCE_PAYMENT_LINK_TTL_MINUTES``)."""
        return timedelta(minutes=self.settings.payment_link_ttl_minutes)

    async def aclose(self) -> None:
        """Stop the import runner, cancel the pipeline's buffer timers and dispose of the database engine."""
        await self.imports.aclose()
        await self.pipeline.close()
        if self.stripe_api is not None:
            await self.stripe_api.aclose()
        await self.engine.dispose()


def build_runtime(settings: Settings, *, responder: Responder | None = None) -> Runtime:
    """Build a ``Runtime`` from ``settings``; ``responder`` replaces the dialogue engine (tests).

    Opens no connection yet (the engine connects lazily); call ``Runtime.aclose`` when done, or use
    :func:`open_runtime`. Without ``CHATCOMMERCE_SECRET_KEY`` the secret box and the visitor signer use a key file under
    ``settings.data_dir`` (created now when missing).
    """
    engine = create_engine(settings.database_url)
    sessionmaker = create_sessionmaker(engine)
    secret_key = settings.secret_key.get_secret_value() if settings.secret_key else None
    keys = key_material(secret_key=secret_key, data_dir=settings.data_dir)
    secret_box = SecretBox(key_material=keys)
    visitor_signer = VisitorSigner(key_material=keys, max_age_seconds=settings.webchat_visitor_days * 86400)
    providers = ProviderRegistry.default(public_base_url=settings.public_base_url)
    stripe_config = stripe_config_from(settings)
    stripe_api = StripeApi(config=stripe_config) if stripe_config else None
    if stripe_api is not None:
        providers.register(StripeProvider(api=stripe_api))
    index_cache = KnowledgeIndexCache()
    payment_ttl = timedelta(minutes=settings.payment_link_ttl_minutes)
    if responder is None:
        responder = DialogueEngine(index_cache=index_cache, providers=providers, payment_ttl=payment_ttl,
                                   assistant=Assistant(platform=platform_model(settings), box=secret_box))
    channels = ChannelRegistry.default()
    channel_factory = ChannelFactory(channels=channels, decrypt=secret_box.decrypt)
    pipeline = Pipeline(
        sessionmaker=sessionmaker, responder=responder, channels=channels, channel_factory=channel_factory
    )
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
        imports=ImportRunner(settings=settings, sessionmaker=sessionmaker),
        stripe_config=stripe_config,
        stripe_api=stripe_api,
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
    """``build_runtime`` as an async context manager that closes the runtime on exit."""
    runtime = build_runtime(settings, responder=responder)
    try:
        yield runtime
    finally:
        await runtime.aclose()
