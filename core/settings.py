"""The one settings class of the engine, read from ``CHATCOMMERCE_*`` environment variables.

Every field is documented in ``.env.example``. Settings are built in the app's lifespan or the CLI
command, never at import time.
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_SQLITE_URL = "sqlite+aiosqlite:///./data/chatcommerce.db"


class Settings(BaseSettings):
    """Engine settings.

    ``database_url`` is an SQLAlchemy async URL: ``sqlite+aiosqlite:///path`` (embedded default) or
    ``postgresql+asyncpg://user:pass@host:5432/db``.
    """

    model_config = SettingsConfigDict(env_prefix="CHATCOMMERCE_", env_file=".env", extra="ignore")

    database_url: str = DEFAULT_SQLITE_URL
    db_pool_size: int = Field(
        default=20, ge=1,
        description="PostgreSQL: connections each process keeps open. Size it to the requests a process serves at "
                    "once (a connection opened beyond it is closed after use, and opening one costs both sides "
                    "milliseconds of CPU); processes x (db_pool_size + db_max_overflow) must stay under "
                    "PostgreSQL's max_connections.",
    )
    db_max_overflow: int = Field(
        default=10, ge=0,
        description="PostgreSQL: connections a process may open beyond db_pool_size in a burst (closed after use).",
    )
    admin_token: SecretStr | None = Field(
        default=None,
        description="Bootstrap bearer token acting as the platform admin (to create the first admin user); "
                    "accepted only when admin_token_enabled.",
    )
    admin_token_enabled: bool | None = Field(
        default=None,
        description="Accept CHATCOMMERCE_ADMIN_TOKEN; unset means on in demo mode only, off otherwise.",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="Key material for encrypting secrets at rest and signing web-chat visitor identities; "
                    "unset uses a key file under data/ (dev only).",
    )
    secret_key_fallbacks: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=list,
        description="Previous key materials, still accepted for decrypting (and web-chat visitor tokens) "
                    "during a key rotation: a JSON list or comma-separated. Set the new key as secret_key, "
                    "the old one here, run `chatcommerce keys rotate`, then remove the old one.",
    )
    public_base_url: str = "http://127.0.0.1:8000"
    webchat_visitor_days: int = Field(
        default=180, ge=1,
        description="How long a web-chat visitor's signed identity (cookie or token) stays valid after its "
                    "last message (the browser's cookie is re-signed on every message).",
    )
    demo_mode: bool = Field(default=False, description="Shows a test 'Pay' button on manual payment pages.")
    log_level: str = "INFO"
    log_json: bool = False
    worker_healthcheck_seconds: int = Field(
        default=30, ge=1,
        description="`serve --workers N`: seconds uvicorn's supervisor waits for a server process to answer its "
                    "health ping before killing and restarting it (uvicorn's default, 5 s, restarts busy processes "
                    "under load and drops their requests in flight).",
    )
    payment_link_ttl_minutes: int = 24 * 60
    data_dir: Path = Path("./data")
    workers_enabled: bool = Field(
        default=True, description="Run the background sweep (outbox, recovery, holds, e-mail watchers) in `serve`."
    )
    sweep_seconds: float = 5.0
    retention_sweep_seconds: float = Field(
        default=600, ge=0,
        description="Seconds between two passes deleting resolved conversations older than their company's "
                    "retention_days (run by the background sweep).",
    )

    # Answering on separate worker processes (api.worker, channels.queue). Opt-in: CHATCOMMERCE_REDIS_URL alone
    # only relays live events and shares rate limits.
    queue: Literal["embedded", "redis"] = Field(
        default="embedded",
        description="embedded = each server process answers the webhooks it receives; redis = webhook processes "
                    "only verify, store and enqueue on a Redis stream, and `chatcommerce worker` processes answer "
                    "(needs CHATCOMMERCE_REDIS_URL).",
    )
    queue_stream: str = Field(default="chatcommerce:inbound", min_length=1,
                              description="Redis stream of inbound jobs (queue=redis).")
    queue_concurrency: int = Field(default=16, ge=1,
                                   description="Jobs one worker process answers at once (queue=redis).")
    queue_claim_idle_seconds: float = Field(
        default=30.0, gt=0,
        description="A job a worker took and did not acknowledge for this long (the worker died) is claimed by "
                    "another worker (XAUTOCLAIM).",
    )
    warm_indexes: bool = Field(
        default=True,
        description="Build the knowledge indexes of companies with an active inbox in the background at start-up, "
                    "so the first message does not wait for them.",
    )

    # Abuse protection of the HTTP API (api/ratelimit.py, api/body_limit.py).
    redis_url: str | None = Field(
        default=None,
        description="redis://host:6379/0 shared by every server process (rate limits, live events; /readyz checks "
                    "it); unset = in-process memory.",
    )
    rate_limit_admin_failures: str = Field(
        default="10/minute", description="Failed admin-token attempts allowed per client address (limits notation)."
    )
    rate_limit_webchat_address: str = Field(
        default="300/minute", description="Public web-chat API requests allowed per client address."
    )
    rate_limit_webchat_visitor: str = Field(
        default="60/minute", description="Public web-chat API requests allowed per visitor of a company."
    )
    max_body_bytes: int = Field(
        default=2 * 1024 * 1024, ge=1024,
        description="Largest request body accepted, in bytes (knowledge-base uploads have their own limit).",
    )
    api_docs: bool = Field(default=True, description="Serve /docs and /openapi.json.")

    # Accounts (api.auth): JWT access tokens, rotating refresh tokens, e-mailed codes and links.
    access_token_minutes: int = Field(default=15, ge=1, le=1440, description="Lifetime of a JWT access token.")
    refresh_token_days: int = Field(default=30, ge=1, description="Lifetime of a refresh token (each is single-use).")
    auth_code_minutes: int = Field(
        default=15, ge=1, description="Lifetime of an e-mailed verification code or magic link."
    )
    password_reset_minutes: int = Field(default=30, ge=1, description="Lifetime of a password reset link.")
    login_limit_per_account: str = Field(
        default="5/15 minutes", description="Failed sign-ins allowed per account (`limits` notation)."
    )
    login_limit_per_address: str = Field(
        default="20/15 minutes", description="Failed sign-ins allowed per client address (`limits` notation)."
    )
    mail_limit_per_address: str = Field(
        default="10/hour", description="Code/link e-mails a client address may ask for (`limits` notation)."
    )
    rate_limit_storage: str | None = Field(
        default=None,
        description="`limits` storage URI of every rate limit (sign-ins, admin tokens, web chat), e.g. "
                    "async+redis://127.0.0.1:6379/1; unset = Redis at CHATCOMMERCE_REDIS_URL when set, else memory.",
    )

    # Outgoing mail (account e-mails) through SMTP (aiosmtplib).
    smtp_host: str | None = Field(default=None, description="SMTP server; unset means e-mails cannot be sent.")
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "chatcommerce <no-reply@localhost>"
    smtp_starttls: bool = Field(default=True, description="Upgrade the connection with STARTTLS (port 587).")
    smtp_tls: bool = Field(default=False, description="Implicit TLS from the first byte (port 465).")

    # Knowledge-base imports (background jobs; see knowledge.import_jobs). Exceeding a limit refuses the
    # file with an error naming the limit.
    import_max_bytes: int = Field(default=20 * 1024 * 1024, gt=0, description="Largest upload, in bytes.")
    import_max_rows: int = Field(default=200_000, gt=0, description="Most rows per CSV file or worksheet.")
    import_max_columns: int = Field(default=200, gt=0, description="Most columns per CSV file or worksheet.")
    import_max_cell_chars: int = Field(default=10_000, gt=0, description="Most characters in one cell.")
    import_workers: int = Field(
        default=1, ge=0, description="Worker processes parsing imports in `serve`; 0 = a thread of the server."
    )
    readiness_timeout_seconds: float = Field(
        default=2.0, gt=0, description="How long /readyz waits for the database and Redis before answering 503."
    )
    sql_stats_file: Path | None = Field(
        default=None,
        description="Benchmarks: count SQL statements, transactions and pool checkouts, and append them as one "
                    "JSON line per process to this file when the process stops.",
    )

    # Stripe (customer → business payments through each company's connected account).
    stripe_secret_key: SecretStr | None = None
    stripe_webhook_secret: SecretStr | None = None
    stripe_connect_webhook_secret: SecretStr | None = None
    stripe_api_base: str = "https://api.stripe.com"
    stripe_webhook_tolerance_seconds: int = 300

    # Google Calendar sync of confirmed bookings (companies connect their own calendar).
    google_calendar_api_root: str = "https://www.googleapis.com"
    google_oauth_token_uri: str = "https://oauth2.googleapis.com/token"
    google_calendar_sync_seconds: float = 300

    # Language-model mode (bot.llm, issue 9): the platform's default OpenAI-compatible model server.
    # Companies may set their own (admin API PUT .../assistant); fields they leave unset use these.
    openai_base_url: str | None = Field(
        default=None, description="Chat Completions server, e.g. https://api.openai.com/v1 or "
                                  "http://127.0.0.1:11434/v1 (Ollama); unset = the model mode is off by default.",
    )
    openai_api_key: SecretStr | None = Field(default=None, description="API key of the default model server.")
    openai_model: str | None = Field(default=None, description="Model name, e.g. gpt-4o-mini or llama3.1:8b.")
    openai_timeout_seconds: float = Field(default=20.0, gt=0, description="Timeout of one model request.")
    openai_max_retries: int = Field(default=2, ge=0, description="Retries (exponential backoff) of the SDK.")
    openai_max_tokens: int = Field(default=400, ge=16, description="Most completion tokens per model request.")
    openai_max_tool_rounds: int = Field(default=4, ge=1, description="Most model requests with tool calls per turn.")
    openai_input_usd_micros_per_mtok: int = Field(
        default=0, ge=0, description="Price of a million prompt tokens in millionths of USD (cost accounting).")
    openai_output_usd_micros_per_mtok: int = Field(
        default=0, ge=0, description="Price of a million completion tokens in millionths of USD.")
    openai_monthly_budget_usd_micros: int | None = Field(
        default=None, ge=0, description="Model spend allowed per tenant and month (millionths of USD); unset = no cap.")

    @property
    def admin_token_accepted(self) -> bool:
        """Whether ``admin_token`` is set and may be used: ``admin_token_enabled``, else ``demo_mode``."""
        enabled = self.demo_mode if self.admin_token_enabled is None else self.admin_token_enabled
        return bool(enabled and self.admin_token and self.admin_token.get_secret_value())

    # Alerts to a company's staff (core.alerts, channels.alerts).
    alerts_telegram_bot_token: SecretStr | None = Field(
        default=None,
        description="Platform bot that sends Telegram alerts (recipients /start it and give their chat id); "
                    "unset: the company's own Telegram inbox bot sends them.",
    )
    alerts_telegram_api_base: str = "https://api.telegram.org"
    alerts_attempts: int = Field(default=5, ge=1, le=20, description="Calls per alert delivery before it fails.")
    alerts_retry_seconds: float = Field(
        default=1.0, ge=0, description="First back-off between attempts (doubles each time, capped at 60 s)."
    )
    alerts_timeout_seconds: float = Field(default=10.0, gt=0, description="Timeout of one webhook/Telegram call.")
    alerts_allow_private_webhooks: bool = Field(
        default=False, description="Accept webhook targets on loopback/private addresses (tests, LAN set-ups)."
    )
    alerts_seconds: float = Field(default=1.0, gt=0, description="How often pending alerts are dispatched.")

    # Operators' Prometheus endpoint (/metrics): open unless a token is set.
    metrics_token: SecretStr | None = Field(
        default=None, description="Bearer token required by /metrics; unset leaves it open (bind it privately)."
    )
    @field_validator("secret_key_fallbacks", mode="before")
    @classmethod
    def _split_fallbacks(cls, value: object) -> object:
        """``CHATCOMMERCE_SECRET_KEY_FALLBACKS`` as a JSON list (``["old1","old2"]``) or comma-separated."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    def secret_materials(self) -> tuple[str | None, list[str]]:
        """``(secret_key or None, [fallback materials])`` as plain strings (for ``core.security``)."""
        primary = self.secret_key.get_secret_value() if self.secret_key else None
        return primary or None, [v.get_secret_value() for v in self.secret_key_fallbacks if v.get_secret_value()]

    @cached_property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def get_settings(**overrides: object) -> Settings:
    """Build settings from the environment; keyword overrides win (used by the CLI and tests)."""
    return Settings(**overrides)  # type: ignore[arg-type]
