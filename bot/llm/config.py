"""Assistant settings: the mode, the voice and the model server of a company (overridable per inbox).

Stored as JSON: ``Company.settings["assistant"]`` and ``Inbox.settings["assistant"]`` (the inbox's keys
win; an inbox overrides the voice and the mode, never the model server), and the model server in
``Company.settings["model_server"]`` except its API key, which lives in the encrypted column
``Company.model_api_key`` (ciphertext of ``core.security.SecretBox``: rotated by ``core.vault``, removed
with the company, shown only masked, never logged). Platform defaults come from the
``CHATCOMMERCE_OPENAI_*`` settings (``PlatformModel``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from core.security import SecretBox, mask_secret

Mode = Literal["rules", "assist", "llm"]
MODES: tuple[str, ...] = ("rules", "assist", "llm")


class AssistantSettings(BaseModel):
    """What the owner tells the assistant. ``mode``: ``rules`` (the rule engine only), ``assist`` (the
    rules first, the model for their misses) or ``llm`` (the model drives every turn through tools)."""

    model_config = ConfigDict(extra="forbid")
    mode: Mode = "rules"
    greeting: str = Field(default="", max_length=1000)
    tone: str = Field(default="", max_length=500)
    rules: list[str] = Field(default_factory=list, max_length=50)
    instructions: str = Field(default="", max_length=4000)
    opening_hours: str = Field(default="", max_length=1000)


class ModelServerIn(BaseModel):
    """A company's model server as the admin API takes it (``api_key`` is encrypted before storage;
    ``""`` removes it, ``None`` keeps the stored one). Prices in micro-units of USD per million tokens;
    ``monthly_budget_usd_micros`` caps the tenant's spend per calendar month (``None``: no cap)."""

    model_config = ConfigDict(extra="forbid")
    base_url: str | None = Field(default=None, max_length=500, pattern=r"^https?://")
    api_key: str | None = Field(default=None, max_length=500)
    model: str | None = Field(default=None, max_length=200)
    input_usd_micros_per_mtok: int | None = Field(default=None, ge=0)
    output_usd_micros_per_mtok: int | None = Field(default=None, ge=0)
    monthly_budget_usd_micros: int | None = Field(default=None, ge=0)


@dataclass(frozen=True, slots=True, kw_only=True)
class PlatformModel:
    """The platform's default model server (``CHATCOMMERCE_OPENAI_*``): used for every field a company
    leaves unset. ``timeout_seconds`` per request; ``max_retries`` of the SDK (exponential backoff);
    ``max_tokens`` per completion; ``max_tool_rounds`` model calls per turn (the turn's token budget)."""

    base_url: str | None = None
    api_key: str | None = None
    model: str | None = None
    timeout_seconds: float = 20.0
    max_retries: int = 2
    max_tokens: int = 400
    max_tool_rounds: int = 4
    input_usd_micros_per_mtok: int = 0
    output_usd_micros_per_mtok: int = 0
    monthly_budget_usd_micros: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelServer:
    """The resolved model server of one company. ``configured``: it has a base URL and a model."""

    base_url: str | None
    api_key: str | None
    model: str | None
    timeout_seconds: float
    max_retries: int
    max_tokens: int
    max_tool_rounds: int
    input_usd_micros_per_mtok: int
    output_usd_micros_per_mtok: int
    monthly_budget_usd_micros: int | None

    @property
    def configured(self) -> bool:
        return bool(self.base_url and self.model)

    def __repr__(self) -> str:  # never print the key
        key = "***" if self.api_key else None
        return f"ModelServer(base_url={self.base_url!r}, model={self.model!r}, api_key={key})"


def assistant_settings(company_settings: dict[str, Any] | None, inbox_settings: dict[str, Any] | None = None
                       ) -> AssistantSettings:
    """The company's assistant settings with the inbox's keys on top. Malformed stored values fall back
    to the defaults (``rules`` mode) rather than break a conversation."""
    merged: dict[str, Any] = {}
    for source in (company_settings or {}, inbox_settings or {}):
        value = source.get("assistant")
        if isinstance(value, dict):
            merged.update(value)
    try:
        return AssistantSettings.model_validate(merged)
    except ValueError:
        return AssistantSettings()


def model_server(company_settings: dict[str, Any] | None, *, api_key_secret: str | None = None,
                 platform: PlatformModel, box: SecretBox | None) -> ModelServer:
    """The company's model server: its ``model_server`` settings over the platform defaults, with the key
    ``api_key_secret`` (``Company.model_api_key``) decrypted with ``box`` (an undecryptable key counts as
    none; without a stored key the platform's is used)."""
    stored = (company_settings or {}).get("model_server")
    stored = stored if isinstance(stored, dict) else {}
    key = platform.api_key
    if api_key_secret and box is not None:
        try:
            key = box.decrypt(api_key_secret)
        except ValueError:
            key = None

    def pick(name: str) -> Any:
        value = stored.get(name)
        return value if value is not None else getattr(platform, name)

    return ModelServer(
        base_url=pick("base_url"), api_key=key, model=pick("model"), timeout_seconds=platform.timeout_seconds,
        max_retries=platform.max_retries, max_tokens=platform.max_tokens, max_tool_rounds=platform.max_tool_rounds,
        input_usd_micros_per_mtok=pick("input_usd_micros_per_mtok"),
        output_usd_micros_per_mtok=pick("output_usd_micros_per_mtok"),
        monthly_budget_usd_micros=pick("monthly_budget_usd_micros"),
    )


_KEY_FIELDS = ("api_key", "api_key_secret")  # never kept in the JSON (older rows: moved out by migration 0019)


def stored_model_server(current: dict[str, Any] | None, given: ModelServerIn) -> dict[str, Any]:
    """The ``model_server`` JSON to store after an admin update: given fields replace stored ones; the API
    key is not part of it (see ``stored_api_key``)."""
    data = {k: v for k, v in (current or {}).items() if k not in _KEY_FIELDS}
    data.update(given.model_dump(exclude_unset=True, exclude={"api_key"}))
    return data


def stored_api_key(current: str | None, given: ModelServerIn, *, box: SecretBox) -> str | None:
    """The ``Company.model_api_key`` ciphertext after an admin update: a given key is encrypted with
    ``box``, ``""`` removes the stored one, an absent or ``None`` key keeps ``current``."""
    if given.api_key:
        return box.encrypt(given.api_key)
    if given.api_key == "":
        return None
    return current


def public_model_server(stored: dict[str, Any] | None, *, api_key_secret: str | None, box: SecretBox
                        ) -> dict[str, Any]:
    """What the admin API shows of a model server: its settings, ``api_key_set`` and ``api_key`` masked
    (``"••••"`` + the last 4 characters; ``"unreadable"`` when no configured key decrypts it; ``None``
    when none is stored). The key and its ciphertext are never shown."""
    shown = {k: v for k, v in (stored or {}).items() if k not in _KEY_FIELDS}
    shown["api_key_set"] = bool(api_key_secret)
    masked: str | None = None
    if api_key_secret:
        try:
            masked = mask_secret(box.decrypt(api_key_secret))
        except ValueError:
            masked = "unreadable"
    shown["api_key"] = masked
    return shown
