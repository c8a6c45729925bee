"""``chatcommerce keys ...``, ``tenants delete``, ``companies delete|retention`` and
``contacts export``: the tenant-data commands. The work is done by ``api.tenant_data`` (shared with
the admin API); this module only parses options and prints results.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Annotated, Any

import typer

from api import tenant_data
from api.cli import CompanyOpt, JsonOpt, _emit, _fail, _run, companies_app, tenants_app
from api.cli_auth import cli_company, cli_tenant
from api.services import Runtime
from core.retention import RetentionError
from core.tenancy import TenantScope
from core.vault import DEFAULT_BATCH_SIZE

keys_app = typer.Typer(help="The key that encrypts stored secrets (CHATCOMMERCE_SECRET_KEY): rotation.",
                       no_args_is_help=True)
contacts_app = typer.Typer(help="Contacts (customers) of a company: data export.", no_args_is_help=True)

YesOpt = Annotated[bool, typer.Option("--yes", help="Confirm the deletion (it cannot be undone).")]


def _report_text(report: dict[str, Any]) -> str:
    what = report["company"] or report["tenant"]
    lines = [f"deleted {report['deleted']} {what}: {report['total_rows']} rows, {len(report['files'])} files "
             f"({report['bytes']} bytes)"]
    lines += ["table\trows"] + [f"{table}\t{count}" for table, count in report["rows"].items()]
    if report["channels"]:
        lines += ["channel\tinbox\tdisconnect error"] + [
            f"{c['kind']}\t{c['inbox_id']}\t{c['error'] or '-'}" for c in report["channels"]]
    lines += [f"file\t{f}" for f in report["files"]]
    return "\n".join(lines)


@keys_app.command("rotate")
def keys_rotate(
    batch_size: Annotated[int, typer.Option(min=1, help="Rows per transaction.")] = DEFAULT_BATCH_SIZE,
    as_json: JsonOpt = False,
) -> None:
    """Re-encrypt every stored secret under CHATCOMMERCE_SECRET_KEY. Put the previous key in
    CHATCOMMERCE_SECRET_KEY_FALLBACKS first; remove it once this reports no unreadable value.
    Safe to re-run (values already under the new key are left alone). Exit status 1 when some value
    could not be decrypted with any configured key."""

    async def work(rt: Runtime) -> dict[str, Any]:
        return (await tenant_data.rotate_keys(rt, batch_size=batch_size)).as_dict()

    data = _run(work)

    def text() -> str:
        rows = [f"{name}\t{c['rotated']}\t{c['current']}\t{c['changed']}\t{c['unreadable']}"
                for name, c in data["tables"].items()]
        return "\n".join(["column\trotated\talready current\tchanged meanwhile\tunreadable", *rows])

    _emit(data, as_json, text)
    if not data["ok"]:
        bad = {name: c["unreadable_ids"] for name, c in data["tables"].items() if c["unreadable"]}
        raise _fail(f"some secrets cannot be decrypted with any configured key: {json.dumps(bad)}")


@keys_app.command("generate")
def keys_generate() -> None:
    """Print a new random key (256 bits, URL-safe) for CHATCOMMERCE_SECRET_KEY."""
    typer.echo(secrets.token_urlsafe(32))


@tenants_app.command("delete")
def tenants_delete(slug: Annotated[str, typer.Argument(help="Tenant slug.")], yes: YesOpt = False,
                   as_json: JsonOpt = False) -> None:
    """Delete a tenant and everything of it: disconnect its channels, remove every row and file.
    Prints what was removed."""
    if not yes:
        raise _fail("deleting a tenant cannot be undone: add --yes")

    async def work(rt: Runtime) -> dict[str, Any]:
        async with rt.sessionmaker() as session:
            scope = TenantScope((await cli_tenant(session, slug)).id)
        return (await tenant_data.delete_tenant(rt, scope=scope)).as_dict()

    data = _run(work)
    _emit(data, as_json, lambda: _report_text(data))


@companies_app.command("delete")
def companies_delete(company: CompanyOpt, yes: YesOpt = False, as_json: JsonOpt = False) -> None:
    """Delete one company and everything of it: disconnect its channels, remove every row and file.
    Prints what was removed."""
    if not yes:
        raise _fail("deleting a company cannot be undone: add --yes")

    async def work(rt: Runtime) -> dict[str, Any]:
        async with rt.sessionmaker() as session:
            row = await cli_company(session, company, "owner")
            scope, company_id = TenantScope(row.tenant_id), row.id
        return (await tenant_data.delete_company(rt, scope=scope, company_id=company_id)).as_dict()

    data = _run(work)
    _emit(data, as_json, lambda: _report_text(data))


@companies_app.command("retention")
def companies_retention(
    company: CompanyOpt,
    days: Annotated[int | None, typer.Option(min=1, help="Keep resolved conversations this many days.")] = None,
    forever: Annotated[bool, typer.Option("--forever", help="Keep conversations forever.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Show, set (--days) or clear (--forever) how long resolved conversations are kept after their
    last activity; the server's background sweep deletes older ones (orders and bookings stay)."""
    if days is not None and forever:
        raise _fail("give --days or --forever, not both")

    async def work(rt: Runtime) -> dict[str, Any]:
        async with rt.sessionmaker() as session:
            row = await cli_company(session, company, "owner")
            scope, company_id = TenantScope(row.tenant_id), row.id
        if days is None and not forever:
            return await tenant_data.get_retention(rt, scope=scope, company_id=company_id)
        try:
            return await tenant_data.update_retention(rt, scope=scope, company_id=company_id, days=days)
        except RetentionError as exc:
            raise ValueError(str(exc)) from None

    data = _run(work)
    _emit(data, as_json, lambda: f"{data['company']}: resolved conversations kept "
          + (f"{data['retention_days']} days" if data["retention_days"] else "forever"))


@contacts_app.command("export")
def contacts_export(
    company: CompanyOpt,
    contact: Annotated[str, typer.Option(help="Contact id, or a channel's id for it (chat id, phone, e-mail).")],
    output: Annotated[Path | None, typer.Option(help="Write the JSON here instead of stdout.")] = None,
) -> None:
    """Export one contact's data as JSON (GDPR access request): contact, channel identities,
    conversations with messages, orders with lines and payments, bookings."""

    async def work(rt: Runtime) -> dict[str, Any]:
        async with rt.sessionmaker() as session:
            row = await cli_company(session, company, "owner")
            scope, company_id = TenantScope(row.tenant_id), row.id
        return await tenant_data.contact_export(rt, scope=scope, company_id=company_id, ref=contact)

    data = _run(work)
    text = json.dumps(data, ensure_ascii=False, indent=2)
    if output is None:
        typer.echo(text)
    else:
        output.write_text(text + "\n", encoding="utf-8")
        typer.echo(f"wrote {output}", err=True)
