"""``chatcommerce inboxes ...`` and ``chatcommerce payments ...``: connect channels and Stripe from the CLI.

The same services as the admin API (``channels.inboxes``, ``commerce.stripe_connect``); credentials
are read from JSON (an argument or ``@file``), encrypted at rest, and never printed.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer

from api.cli import CompanyOpt, JsonOpt, _emit, _fail, _run
from api.cli_auth import cli_company
from api.cli_table import render_table
from api.services import Runtime
from channels.inboxes import InboxError, connect_inbox, disconnect_inbox, inbox_as_dict, tenant_inbox
from commerce.errors import PaymentUnavailable
from commerce.stripe_connect import StripeConnect
from core.models import Inbox
from core.tenancy import TenantScope

inboxes_app = typer.Typer(help="Channels a company is connected to (Telegram, WhatsApp via WAHA, e-mail).",
                          no_args_is_help=True)
payments_app = typer.Typer(help="Payment providers: manual links or Stripe (Connect).", no_args_is_help=True)


def _json_arg(value: str | None, what: str) -> dict[str, Any]:
    if not value:
        return {}
    text = Path(value[1:]).read_text() if value.startswith("@") else value
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise _fail(f"{what} is not valid JSON: {exc.msg}") from None
    if not isinstance(data, dict):
        raise _fail(f"{what} must be a JSON object")
    return data


@inboxes_app.command("connect")
def inboxes_connect(
    company: CompanyOpt,
    kind: Annotated[str, typer.Option(help="telegram | whatsapp_waha | email")],
    credentials: Annotated[str | None, typer.Option(help='JSON or @file, e.g. {"bot_token": "..."}')] = None,
    settings: Annotated[str | None, typer.Option(help='JSON or @file, e.g. {"base_url": "http://waha:3000"}')] = None,
    name: Annotated[str | None, typer.Option(help="Display name.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Create an inbox and register its webhook with the provider (prints the webhook URL, and the
    QR code to scan for WhatsApp)."""
    creds, plain = _json_arg(credentials, "--credentials"), _json_arg(settings, "--settings")

    async def work(rt: Runtime) -> dict[str, Any]:
        async with rt.sessionmaker() as session, session.begin():
            comp = await cli_company(session, company, "owner")
            try:
                inbox, details = await connect_inbox(
                    session, company=comp, kind=kind, name=name, credentials=creds, settings=plain,
                    channels=rt.channels, encrypt=rt.secret_box.encrypt, factory=rt.channel_factory,
                    public_base_url=rt.settings.public_base_url,
                )
            except InboxError as exc:
                raise ValueError(str(exc)) from None
            return {**inbox_as_dict(inbox, public_base_url=rt.settings.public_base_url,
                                   decrypt=rt.secret_box.decrypt), "provider": details}

    out = _run(work)
    provider = out.get("provider") or {}
    _emit(out, as_json, lambda: f"connected {out['kind']} inbox {out['id']}"
          + (f"\nwebhook: {out['webhook_url']}" if out.get("webhook_url") else "")
          + (f"\nstatus: {provider['status']}" if provider.get("status") else "")
          + (f"\nscan this QR code with the shop's WhatsApp (Linked devices): {provider['qr']}"
             if provider.get("qr") else ""))


@inboxes_app.command("list")
def inboxes_list(company: CompanyOpt, as_json: JsonOpt = False) -> None:
    """The company's inboxes, without credentials."""

    async def work(rt: Runtime) -> list[dict[str, Any]]:
        async with rt.sessionmaker() as session:
            comp = await cli_company(session, company, "owner")
            rows = await session.execute(
                TenantScope(comp.tenant_id).select(Inbox, Inbox.company_id == comp.id).order_by(Inbox.created_at))
            return [inbox_as_dict(i, public_base_url=rt.settings.public_base_url, decrypt=rt.secret_box.decrypt)
                    for i in rows.scalars()]

    rows = _run(work)
    _emit(rows, as_json, lambda: render_table(
        ("id", "kind", "state", "health"),
        [(r["id"], r["kind"], "active" if r["active"] else "inactive", r["health"].get("status", "")) for r in rows],
        empty="no inboxes"))


@inboxes_app.command("disconnect")
def inboxes_disconnect(company: CompanyOpt, inbox_id: Annotated[uuid.UUID, typer.Argument()],
                       as_json: JsonOpt = False) -> None:
    """Unregister the inbox at the provider and deactivate it (history is kept)."""

    async def work(rt: Runtime) -> dict[str, Any]:
        async with rt.sessionmaker() as session, session.begin():
            comp = await cli_company(session, company, "owner")
            inbox = await tenant_inbox(session, scope=TenantScope(comp.tenant_id), company=comp, inbox_id=inbox_id)
            await disconnect_inbox(session, inbox=inbox, factory=rt.channel_factory)
            return inbox_as_dict(inbox, decrypt=rt.secret_box.decrypt)

    out = _run(work)
    _emit(out, as_json, lambda: f"disconnected {out['kind']} inbox {out['id']}")


@inboxes_app.command("poll")
def inboxes_poll(company: CompanyOpt, inbox_id: Annotated[uuid.UUID, typer.Argument()]) -> None:
    """Development: read a Telegram inbox by long polling (``getUpdates``) instead of a webhook and
    answer through the normal pipeline. Stop with Ctrl-C."""

    async def work(rt: Runtime) -> None:
        async with rt.sessionmaker() as session:
            comp = await cli_company(session, company, "owner")
            inbox = await tenant_inbox(session, scope=TenantScope(comp.tenant_id), company=comp, inbox_id=inbox_id)
        channel = rt.channel_factory.build(inbox)
        poll = getattr(channel, "poll", None)
        if poll is None:
            raise ValueError(f"{inbox.kind} inboxes cannot be polled")
        stop = asyncio.Event()

        async def handle(parsed: Any) -> None:
            await rt.pipeline.accept(inbox_id=inbox.id, parsed=parsed)

        try:
            await channel.disconnect()  # Telegram refuses getUpdates while a webhook is set
            await poll(handle, stop_event=stop)
        finally:
            await rt.pipeline.drain()
            await channel.aclose()

    _run(work)


@payments_app.command("provider")
def payments_provider(company: CompanyOpt, provider: Annotated[str, typer.Argument(help="manual | stripe")],
                      as_json: JsonOpt = False) -> None:
    """Choose which provider issues the company's payment links."""

    async def work(rt: Runtime) -> dict[str, Any]:
        rt.providers.get(provider)  # KeyError → not configured
        async with rt.sessionmaker() as session, session.begin():
            comp = await cli_company(session, company, "owner")
            comp.payment_provider = provider
            return {"company": comp.slug, "payment_provider": provider}

    try:
        out = _run(work)
    except KeyError as exc:
        raise _fail(str(exc.args[0])) from None
    _emit(out, as_json, lambda: f"{out['company']} now takes payments with {out['payment_provider']}")


@payments_app.command("stripe-connect")
def payments_stripe_connect(company: CompanyOpt, email: Annotated[str | None, typer.Option()] = None,
                            as_json: JsonOpt = False) -> None:
    """Create (or reuse) the company's Stripe connected account and print an onboarding link."""

    async def work(rt: Runtime) -> dict[str, Any]:
        if rt.stripe_api is None:
            raise ValueError("Stripe is not configured (CHATCOMMERCE_STRIPE_SECRET_KEY)")
        connect = StripeConnect(api=rt.stripe_api)
        base = rt.settings.public_base_url.rstrip("/")
        async with rt.sessionmaker() as session, session.begin():
            comp = await cli_company(session, company, "owner")
            try:
                state = await connect.create_account(session, company=comp, email=email)
                url = await connect.onboarding_link(
                    company=comp, refresh_url=f"{base}/stripe/onboarding?company={comp.slug}&result=refresh",
                    return_url=f"{base}/stripe/onboarding?company={comp.slug}&result=return")
            except PaymentUnavailable as exc:
                raise ValueError(f"Stripe refused: {exc.reason}") from None
            return {"company": comp.slug, "account_id": state.account_id,
                    "charges_enabled": state.charges_enabled, "onboarding_url": url}

    out = _run(work)
    _emit(out, as_json, lambda: f"account {out['account_id']}; onboarding: {out['onboarding_url']}")
