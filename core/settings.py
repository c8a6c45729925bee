"""The one settings class of the engine, read from ``CHATCOMMERCE_*`` environment variables.

Every field is documented in ``.env.example``. Settings are built in the app's lifespan or the CLI
command, never at import time.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SQLITE_URL = "sqlite+aiosqlite:///./data/chatcommerce.db"


class Settings(BaseSettings):
    """Engine settings.

    ``database_url`` is an SQLAlchemy async URL: ``sqlite+aiosqlite:///path`` (embedded default) or
    ``postgresql+asyncpg://user:pass@host:5432/db``.
    """

    model_config = SettingsConfigDict(env_prefix="CHATCOMMERCE_", env_file=".env", extra="ignore")

    database_url: str = DEFAULT_SQLITE_URL
    admin_token: SecretStr | None = Field(
        default=None, description="Platform admin bearer token for /api/v1; unset means the admin API is closed."
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="Key material for encrypting secrets at rest and signing web-chat visitor identities; "
                    "unset uses a key file under data/ (dev only).",
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
    payment_link_ttl_minutes: int = 24 * 60
    data_dir: Path = Path("./data")
    workers_enabled: bool = Field(
        default=True, description="Run the background sweep (outbox, recovery, holds, e-mail watchers) in `serve`."
    )
    sweep_seconds: float = 5.0

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

    # Outgoing e-mail (alerts to staff; shared with account mails). Unset host: e-mail alerts fail
    # with "SMTP is not configured" in the delivery log.
    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str | None = Field(default=None, description="From address of mails the platform sends.")
    smtp_starttls: bool = Field(default=True, description="Upgrade the SMTP connection with STARTTLS.")

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

    redis_url: str | None = Field(
        default=None, description="redis://host:6379/0 — relays live inbox events (SSE) between server processes."
    )

    # Operators' Prometheus endpoint (/metrics): open unless a token is set.
    metrics_token: SecretStr | None = Field(
        default=None, description="Bearer token required by /metrics; unset leaves it open (bind it privately)."
    )

    @cached_property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def get_settings(**overrides: object) -> Settings:
    """Build settings from the environment; keyword overrides win (used by the CLI and tests)."""
    return Settings(**overrides)  # type: ignore[arg-type]
