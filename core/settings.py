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
    redis_url: str | None = Field(
        default=None,
        description="redis://host:6379/0 when the deployment has Redis; /readyz then checks it is reachable.",
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

    @cached_property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")


def get_settings(**overrides: object) -> Settings:
    """Build settings from the environment; keyword overrides win (used by the CLI and tests)."""
    return Settings(**overrides)  # type: ignore[arg-type]
