"""The account services of one process (tokens, sign-in limits, mailer), built from ``Settings``.

Built lazily by ``api.deps.get_auth`` (once per app, on first use) and by the CLI's ``login``;
nothing is built at import time.
"""

from __future__ import annotations

from dataclasses import dataclass

from limits.aio.storage import Storage

from api.auth_limits import SignInLimiter
from api.auth_tokens import TokenService
from api.limits_storage import build_limits_storage
from api.mailer import Mailer
from core.security import key_material
from core.settings import Settings


@dataclass(kw_only=True)
class AuthServices:
    """``tokens`` issues/checks secrets, ``limiter`` counts failures, ``mailer`` is ``None`` without SMTP."""

    settings: Settings
    tokens: TokenService
    limiter: SignInLimiter
    mailer: Mailer | None


def build_auth_services(settings: Settings, *, limits_storage: Storage | None = None) -> AuthServices:
    """Account services keyed by the process's key material (``core.security.key_material``). The
    sign-in limits count in ``limits_storage`` (the app passes its one storage, ``api.ratelimit``);
    without it a new one is built from the settings (``api.limits_storage``)."""
    secret_key = settings.secret_key.get_secret_value() if settings.secret_key else None
    keys = key_material(secret_key=secret_key, data_dir=settings.data_dir)
    tokens = TokenService(key_material=keys, access_minutes=settings.access_token_minutes,
                          refresh_days=settings.refresh_token_days, code_minutes=settings.auth_code_minutes,
                          reset_minutes=settings.password_reset_minutes)
    storage = limits_storage if limits_storage is not None else build_limits_storage(settings)
    limiter = SignInLimiter(storage=storage, per_account=settings.login_limit_per_account,
                            per_address=settings.login_limit_per_address,
                            mail_per_address=settings.mail_limit_per_address)
    return AuthServices(settings=settings, tokens=tokens, limiter=limiter, mailer=Mailer.from_settings(settings))
