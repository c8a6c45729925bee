"""``chatcommerce login``, ``logout`` and ``whoami`` (see ``api.cli_auth`` for what a login changes)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from api.auth_services import build_auth_services
from api.cli import JsonOpt, _emit, _fail, _run
from api.cli_auth import cli_principal, forget_credentials, load_credentials, save_credentials
from api.services import Runtime
from core.passwords import verify_password
from core.users import api_key_by_secret, user_by_email


class _Refused(ValueError):
    pass


def login(
    email: Annotated[str | None, typer.Option(help="Sign in as this user (asks for the password).")] = None,
    password: Annotated[str | None, typer.Option(help="The password (asked for when omitted).",
                                                 envvar="CHATCOMMERCE_PASSWORD")] = None,
    api_key: Annotated[str | None, typer.Option("--api-key", help="Act as a tenant's API key (cc_...).",
                                                envvar="CHATCOMMERCE_API_KEY")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Sign in: later commands act as this user (or API key) with its rights. The token is stored in
    the user's config directory (mode 0600); `chatcommerce logout` forgets it."""
    if bool(email) == bool(api_key):
        raise _fail("give either --email or --api-key")
    if email and password is None:
        password = typer.prompt("Password", hide_input=True)
    forget_credentials()  # commands below run as the operator, not as a previous login

    async def work(rt: Runtime) -> dict[str, Any]:
        auth = build_auth_services(rt.settings)
        async with rt.sessionmaker() as session:
            if api_key:
                key = await api_key_by_secret(session, api_key)
                if key is None:
                    raise _Refused("unknown or revoked API key")
                return {"kind": "api_key", "token": api_key, "name": key.name, "prefix": key.prefix}
            user = await user_by_email(session, email or "")
            if not await verify_password(password or "", user.password_hash if user else None) or user is None \
                    or not user.is_active:
                raise _Refused("wrong e-mail or password")
            if user.email_verified_at is None:
                raise _Refused("verify your e-mail address first")
            tokens = await auth.tokens.sign_in(session, user)
            await session.commit()
            return {"kind": "refresh", "token": tokens.refresh_token, "email": user.email}

    stored = _run(work)
    path = save_credentials(stored)
    shown = {k: v for k, v in stored.items() if k != "token"}
    _emit({**shown, "path": str(path)}, as_json,
          lambda: f"logged in as {stored.get('email') or 'API key ' + stored['prefix'] + '…'}; token in {path}")


def logout(as_json: JsonOpt = False) -> None:
    """Forget the stored login (a password sign-in is also revoked); commands act as the operator again."""
    stored = load_credentials()
    if stored and stored.get("kind") == "refresh":
        async def work(rt: Runtime) -> None:
            async with rt.sessionmaker() as session:
                await build_auth_services(rt.settings).tokens.sign_out(session, str(stored.get("token")))
                await session.commit()

        forget_credentials()  # revoke as the operator: the stored token is what is being revoked
        _run(work)
    removed = forget_credentials() or bool(stored)
    _emit({"logged_out": removed}, as_json, lambda: "logged out" if removed else "was not logged in")


def whoami(as_json: JsonOpt = False) -> None:
    """Who commands act as: the stored login, or the local operator."""

    async def work(rt: Runtime) -> dict[str, Any]:
        return cli_principal().as_dict()

    data = _run(work)
    _emit(data, as_json, lambda: ("local operator (every right)" if data["kind"] == "operator"
                                   else f"{data['kind']} {data['email'] or data['api_key_tenant']}"))


def register(app: typer.Typer) -> None:
    """Add the commands to the ``chatcommerce`` app."""
    app.command("login")(login)
    app.command("logout")(logout)
    app.command("whoami")(whoami)
