"""Request and response bodies of the account routes (``/api/v1/auth``, API keys, managers)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class SignupIn(BaseModel):
    """A new user and their tenant (the user becomes its owner). ``password``: 10-256 characters;
    ``tenant_slug``: 1-64 chars of a-z, 0-9 and '-'."""

    email: str = Field(max_length=320, examples=["owner@example.com"])
    password: str = Field(max_length=256)
    name: str | None = Field(default=None, max_length=200)
    tenant_name: str = Field(min_length=1, max_length=200)
    tenant_slug: str = Field(min_length=1, max_length=64)


class EmailIn(BaseModel):
    """An e-mail address (magic link, password reset, verification code again)."""

    email: str = Field(max_length=320)


class VerifyIn(BaseModel):
    """The 6-digit code mailed at sign-up."""

    email: str = Field(max_length=320)
    code: str = Field(min_length=1, max_length=12, examples=["042917"])


class LoginIn(BaseModel):
    email: str = Field(max_length=320)
    password: str = Field(max_length=256)


class RefreshIn(BaseModel):
    refresh_token: str = Field(min_length=1, max_length=200)


class TokenIn(BaseModel):
    """The token of a magic link."""

    token: str = Field(min_length=1, max_length=200)


class PasswordResetIn(BaseModel):
    """The token of a password-reset mail and the new password (10-256 characters)."""

    token: str = Field(min_length=1, max_length=200)
    password: str = Field(max_length=256)


class TokensOut(BaseModel):
    """``access_token``: a JWT for ``Authorization: Bearer``, valid ``expires_in`` seconds;
    ``refresh_token``: single-use, exchange it at ``/auth/refresh`` for the next pair."""

    access_token: str
    token_type: str = "bearer"
    expires_in: int
    refresh_token: str


class SignupOut(BaseModel):
    user_id: uuid.UUID
    email: str
    tenant: dict[str, Any]
    verification_sent: bool


class MeOut(BaseModel):
    """The caller: ``kind`` is user | api_key | admin_token; roles as ids (tenants owned, companies managed)."""

    kind: str
    user_id: str | None
    email: str | None
    platform_admin: bool
    owner_of: list[str]
    manager_of: list[str]
    api_key_tenant: str | None
    tenants: list[dict[str, Any]]
    companies: list[dict[str, Any]]


class ApiKeyIn(BaseModel):
    name: str = Field(min_length=1, max_length=200, examples=["nightly export script"])


class ApiKeyOut(BaseModel):
    """An API key without its secret: ``prefix`` is its first 10 characters."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyOut):
    """The new key: ``key`` is shown this once (only its hash is kept)."""

    key: str


class ManagerIn(BaseModel):
    """Make the user with ``email`` the manager of ``company`` (a slug of the tenant); a user who does
    not exist yet is created and invited by e-mail (a sign-in link)."""

    email: str = Field(max_length=320)
    company: str = Field(min_length=1, max_length=64)


class ManagerOut(BaseModel):
    company: str
    user_id: uuid.UUID
    email: str
    invited: bool = False
    invitation_sent: bool = False


class PlatformAdminIn(BaseModel):
    email: str = Field(max_length=320)
