"""Who the CLI acts as: the user of ``chatcommerce login``, or the local operator.

The CLI talks to the database directly (it runs the use cases in-process, on the server). Without a
stored login it is the **local operator** with every right (whoever can run it there can read the
database anyway). After ``chatcommerce login`` every command acts as that user or API key and is
checked with the same access model as the HTTP API (``api.auth.authorize``): a foreign company is
"not found", a lacking role is "forbidden".

The login is kept in ``<typer.get_app_dir("chatcommerce")>/credentials.json`` (mode 0600): an API key,
or the refresh token of a password sign-in, which each command exchanges for the next one
(``api.auth_tokens.TokenService.rotate``) and writes back. Two commands run at the very same time
with one stored refresh token look like a stolen token: the sign-in is revoked and ``login`` is
needed again.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import typer
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import OPERATOR, Principal, Role, authorize, principal_of_user, resolve_principal
from api.auth_services import build_auth_services
from api.auth_tokens import RefreshRefused
from api.services import Runtime
from core.models import Company, Tenant, User

_PRINCIPAL: ContextVar[Principal] = ContextVar("chatcommerce_cli_principal", default=OPERATOR)


class LoginExpired(ValueError):
    """The stored login no longer works (revoked, expired, user gone): run ``chatcommerce login``."""


def credentials_path() -> Path:
    """Where ``login`` keeps its token (``$XDG_CONFIG_HOME/chatcommerce/credentials.json`` on Linux)."""
    return Path(typer.get_app_dir("chatcommerce")) / "credentials.json"


def save_credentials(data: dict[str, Any]) -> Path:
    """Write the login (mode 0600, replaced atomically)."""
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(data, fh)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path


def load_credentials() -> dict[str, Any] | None:
    """The stored login, ``None`` when there is none."""
    path = credentials_path()
    if not path.exists():
        return None
    return json.loads(path.read_text())


def forget_credentials() -> bool:
    """Delete the stored login; whether there was one."""
    path = credentials_path()
    if path.exists():
        path.unlink()
        return True
    return False


async def principal_from_credentials(runtime: Runtime) -> Principal:
    """The principal of the stored login (exchanging a refresh token for the next one), or the
    operator without one. Raises ``LoginExpired``."""
    stored = load_credentials()
    if stored is None:
        return OPERATOR
    auth = build_auth_services(runtime.settings)
    async with runtime.sessionmaker() as session:
        if stored.get("kind") == "api_key":
            principal = await resolve_principal(session, bearer=stored.get("token"), settings=runtime.settings,
                                                tokens=auth.tokens)
            await session.commit()
            if principal is None or principal.kind != "api_key":
                raise LoginExpired("the stored API key was revoked; run `chatcommerce login` again")
            return principal
        try:
            user_id, tokens = await auth.tokens.rotate(session, str(stored.get("token", "")))
        except RefreshRefused as exc:
            await session.commit()
            raise LoginExpired(f"the stored login is no longer valid ({exc.reason}); "
                               "run `chatcommerce login` again") from None
        user = await session.get(User, user_id)
        if user is None or not user.is_active:
            raise LoginExpired("the stored login's user is gone; run `chatcommerce login` again")
        await session.commit()
        save_credentials({**stored, "token": tokens.refresh_token})
        return await principal_of_user(session, user)


@asynccontextmanager
async def acting(runtime: Runtime) -> AsyncIterator[Principal]:
    """Run the block as the stored login's principal (see :func:`cli_principal`)."""
    token = _PRINCIPAL.set(await principal_from_credentials(runtime))
    try:
        yield _PRINCIPAL.get()
    finally:
        _PRINCIPAL.reset(token)


def cli_principal() -> Principal:
    """Who the running command acts as."""
    return _PRINCIPAL.get()


async def cli_company(session: AsyncSession, slug: str, need: Role = "manager") -> Company:
    """The company with this global slug, if the acting principal has ``need`` there. Raises
    ``NotFound`` (unknown or foreign) or ``api.auth.Forbidden``. Every CLI command that takes
    ``--company`` goes through here (never ``core.tenancy.company_by_slug`` directly)."""
    access = await authorize(session, cli_principal(), tenant_slug=None, company_slug=slug, need=need)
    assert access.company is not None
    return access.company


async def cli_tenant(session: AsyncSession, slug: str, need: Role = "owner") -> Tenant:
    """The tenant with this slug, if the acting principal has ``need`` there (``NotFound``/``Forbidden``)."""
    access = await authorize(session, cli_principal(), tenant_slug=slug, company_slug=None, need=need)
    assert access.tenant is not None
    return access.tenant


async def cli_require(session: AsyncSession, need: Role) -> None:
    """Check a command that is not about one tenant (``tenants create``, ``serve``...)."""
    await authorize(session, cli_principal(), tenant_slug=None, company_slug=None, need=need)
