"""``chatcommerce login``: after it every command acts as that user or API key, checked with the
HTTP API's access model; without it the CLI is the local operator. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path

import pytest
from sqlalchemy import select

from api.cli_auth import credentials_path
from api.services import open_runtime
from core.models import Company, Tenant
from core.passwords import hash_password
from core.settings import Settings
from core.tenancy import TenantScope
from core.users import add_owner, assign_manager, create_api_key, create_user
from tests.test_cli import Cli, setup_shop

pytestmark = pytest.mark.postgres
PASSWORD = "correct horse battery"


@pytest.fixture
def env(database_url: str, tmp_path: Path) -> dict[str, str]:
    """The CLI's environment (as in ``tests.test_cli``) with its own config directory for the login."""
    return {"CHATCOMMERCE_DATABASE_URL": database_url, "CHATCOMMERCE_DATA_DIR": str(tmp_path / "data"),
            "CHATCOMMERCE_SECRET_KEY": "test-secret-key", "CHATCOMMERCE_PUBLIC_BASE_URL": "http://testserver",
            "XDG_CONFIG_HOME": str(tmp_path / "config")}


def _people(env: dict[str, str]) -> str:
    """Owner ann of acme, manager max of acme-shop; returns an API key of globex."""

    async def main() -> str:
        settings = Settings(_env_file=None, database_url=env["CHATCOMMERCE_DATABASE_URL"],  # type: ignore[call-arg]
                            secret_key="test-secret-key", data_dir=env["CHATCOMMERCE_DATA_DIR"])
        async with open_runtime(settings) as rt, rt.sessionmaker() as s, s.begin():
            acme = (await s.execute(select(Tenant).where(Tenant.slug == "acme"))).scalar_one()
            globex = (await s.execute(select(Tenant).where(Tenant.slug == "globex"))).scalar_one()
            shop = (await s.execute(select(Company).where(Company.slug == "acme-shop"))).scalar_one()
            ann = await create_user(s, email="ann@example.com", password_hash=await hash_password(PASSWORD),
                                    verified=True)
            await add_owner(s, tenant=acme, user=ann)
            mgr = await create_user(s, email="max@example.com", password_hash=await hash_password(PASSWORD),
                                    verified=True)
            await assign_manager(s, company=shop, user=mgr, assigned_by=ann.id)
            _, key = await create_api_key(s, scope=TenantScope(globex.id), name="cli", created_by=None)
            return key

    return asyncio.run(main())


def test_login_acts_as_the_user_and_operator_without_it(env: dict[str, str]) -> None:
    cli = Cli(env)
    setup_shop(cli)
    cli.json("companies", "create", "--tenant", "acme", "--slug", "acme-outlet", "--name", "Outlet")
    setup_shop(cli, tenant="globex", company="globex-shop")
    key = _people(env)
    assert cli.json("whoami")["kind"] == "operator"
    assert [t["slug"] for t in cli.json("tenants", "list")] == ["acme", "globex"]

    wrong = cli.run("login", "--email", "ann@example.com", "--password", "nope nope nope", ok=False)
    assert wrong.exit_code == 1 and "wrong e-mail or password" in wrong.stderr
    cli.run("login", "--email", "max@example.com", input=PASSWORD + "\n")
    path = credentials_path_in(env)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first_token = json.loads(path.read_text())["token"]
    me = cli.json("whoami")
    assert me["kind"] == "user" and me["email"] == "max@example.com"
    assert json.loads(path.read_text())["token"] != first_token  # each command rotates the stored token
    # The manager: their company only, no channels, no other tenant.
    assert [t["slug"] for t in cli.json("tenants", "list")] == ["acme"]
    assert [c["slug"] for c in cli.json("companies", "list", "--tenant", "acme")] == ["acme-shop"]
    assert cli.json("orders", "list", "--company", "acme-shop") == []
    other = cli.run("orders", "list", "--company", "acme-outlet", ok=False)
    assert other.exit_code == 1 and "not found" in other.stderr
    foreign = cli.run("orders", "list", "--company", "globex-shop", ok=False)
    assert foreign.exit_code == 1 and "not found" in foreign.stderr
    creds = cli.run("inboxes", "list", "--company", "acme-shop", ok=False)
    assert creds.exit_code == 1 and "forbidden" in creds.stderr
    schedule = cli.run("bookings", "feed-url", "--company", "acme-shop", ok=False)
    assert schedule.exit_code == 1 and "forbidden" in schedule.stderr
    made = cli.run("tenants", "create", "--name", "X", "--slug", "x", ok=False)
    assert made.exit_code == 1 and "forbidden" in made.stderr

    # A spent stored token (a copy used elsewhere) ends the sign-in.
    stale = json.loads(path.read_text())
    cli.json("whoami")
    path.write_text(json.dumps(stale))
    reused = cli.run("whoami", ok=False)
    assert reused.exit_code == 1 and "login" in reused.stderr

    # An API key of globex.
    cli.run("login", "--api-key", key)
    assert [t["slug"] for t in cli.json("tenants", "list")] == ["globex"]
    assert cli.json("inboxes", "list", "--company", "globex-shop")
    hidden = cli.run("orders", "list", "--company", "acme-shop", ok=False)
    assert hidden.exit_code == 1 and "not found" in hidden.stderr

    # Logged out: the operator again.
    assert cli.json("logout")["logged_out"] is True
    assert not path.exists()
    assert [t["slug"] for t in cli.json("tenants", "list")] == ["acme", "globex"]


def credentials_path_in(env: dict[str, str]):  # type: ignore[no-untyped-def]
    """``api.cli_auth.credentials_path`` under the test's ``XDG_CONFIG_HOME``."""
    import os
    from unittest import mock

    with mock.patch.dict(os.environ, {"XDG_CONFIG_HOME": env["XDG_CONFIG_HOME"]}):
        return credentials_path()


def test_cli_commands_look_companies_up_through_the_access_check() -> None:
    # A command that called company_by_slug directly would skip the logged-in user's rights.
    api_dir = Path(__file__).resolve().parent.parent / "api"
    offenders = [p.name for p in api_dir.glob("cli*.py") if p.name != "cli_auth.py"
                 and ("company_by_slug(" in p.read_text() or "tenant_by_slug(" in p.read_text())]
    assert offenders == [], f"use api.cli_auth.cli_company/cli_tenant in {offenders}"
