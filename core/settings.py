"""The one settings class of the engine, read from ``CHATCOMMERCE_*`` environment variables.

Every field is documented in ``.env.example``. Settings are built in the app's lifespan or the CLI
command, never at import time.
"""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Annotated

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
    admin_token: SecretStr | None = Field(
        default=None, description="Platform admin bearer token for /api/v1; unset means the admin API is closed."
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
