"""``chatcommerce conversations list|take|reply|release|resolve``, ``kb list``, ``orders export``,
``payments links|export`` and ``bookings export``: the manager's inbox from a terminal.

The commands call the same use cases as the admin API (``api.inbox``, ``api.sales``,
``api.queries``); this module only parses options and prints. Conventions of ``api.cli``: settings
from the environment, ``--json``, errors on stderr with exit status 1. A conversation is addressed by
its id (``--company`` optionally checks which company it belongs to); its company is then checked
against the acting principal (``api.cli_auth``) like every ``--company``. ``take`` and ``reply``
assign the conversation to the signed-in person, ``assign`` to anyone who may serve the company;
``list --mine`` shows the signed-in person's. Tables have a header
row (``api.cli_table``). :func:`register` attaches the commands.
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Annotated, Any

import typer

from api.cli import JsonOpt, _emit, _fail, _run, parse_when, sales_filter
from api.cli_auth import cli_company, cli_principal, cli_tenant
from api.cli_table import render_table
from api.inbox import (
    ConversationFilter,
    assign,
    conversation_company,
    list_conversations,
    release,
    reply_as_human,
    resolve,
    take_over,
)
from api.queries import kb_faq, kb_items, message_dict
from api.sales import (
    booking_csv_rows,
    list_bookings,
    list_orders,
    list_payments,
    order_csv_rows,
    payment_csv_rows,
    to_csv,
)
from api.services import Runtime
from core.accounts import ValidationError
from core.i18n import company_locale, money
from core.tenancy import TenantScope
from core.users import user_by_email

ConversationArg = Annotated[uuid.UUID, typer.Argument(help="Conversation id (see `conversations list`).")]
OptionalCompany = Annotated[str | None, typer.Option("--company", help="Company slug (checked when given).")]
OutOpt = Annotated[Path | None, typer.Option("--out", "-o", help="Write the CSV here (default: stdout).",
                                             dir_okay=False, writable=True)]
CONVERSATION_COLUMNS = ("id", "channel", "status", "human", "contact", "labels", "last message", "updated")


# -- conversations ---------------------------------------------------------------------------------


def _conversation_row(c: dict[str, Any]) -> list[Any]:
    last = c["last_message"]
    text = f"{'<' if last['direction'] == 'in' else '>'} {last['text'][:60]}" if last else ""
    human = "manager" if c["handoff"] else ("flagged" if c["needs_human"] else "")
    return [c["id"], c["channel"], c["status"], human, c["contact"]["display_name"], ",".join(c["labels"]), text,
            c["updated_at"][:16].replace("T", " ")]


def conversations_list(
    company: Annotated[list[str] | None, typer.Option("--company", help="Company slug (repeat for several).")] = None,
    tenant: Annotated[str | None, typer.Option(help="Tenant slug: all its companies.")] = None,
    status: Annotated[list[str] | None, typer.Option("--status", help="open | pending | resolved (repeat).")] = None,
    channel: Annotated[list[str] | None, typer.Option("--channel", help="telegram | whatsapp_waha | email | "
                                                                        "webchat | console (repeat).")] = None,
    needs_human: Annotated[bool | None, typer.Option("--needs-human/--bot-only",
                                                     help="Taken over or flagged for a person / not.")] = None,
    has_order: Annotated[bool | None, typer.Option("--has-order/--no-order", help="With / without an order.")] = None,
    payment_status: Annotated[list[str] | None, typer.Option("--payment-status",
                                                             help="An order's payment status (repeat).")] = None,
    label: Annotated[list[str] | None, typer.Option("--label", help="Carries this label (repeat: all).")] = None,
    assignee: Annotated[uuid.UUID | None, typer.Option(help="Assigned to this user id.")] = None,
    mine: Annotated[bool, typer.Option("--mine", help="Assigned to me (the user of `chatcommerce login`).")] = False,
    since: Annotated[str | None, typer.Option(help="Active at or after (YYYY-MM-DD or ISO-8601; UTC).")] = None,
    until: Annotated[str | None, typer.Option(help="Active before (YYYY-MM-DD or ISO-8601; UTC).")] = None,
    search: Annotated[str | None, typer.Option("--search", "-q", help="Message text or contact name, phone, "
                                                                       "e-mail contains this.")] = None,
    limit: Annotated[int, typer.Option(help="Page size (1-500).")] = 50,
    cursor: Annotated[str | None, typer.Option(help="Next-page cursor printed by the previous page.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Conversations, most recently active first, with filters; prints the cursor of the next page."""
    if not company and not tenant:
        raise _fail("give --company (repeatable) or --tenant")
    if mine and assignee is not None:
        raise _fail("give --mine or --assignee, not both")

    async def work(rt: Runtime) -> dict[str, Any]:
        nonlocal assignee
        if mine:
            assignee = _my_user_id("--mine")
        async with rt.sessionmaker() as session:
            companies = [await cli_company(session, slug) for slug in company or ()]
            tenant_id = (await cli_tenant(session, tenant)).id if tenant else companies[0].tenant_id
            if any(c.tenant_id != tenant_id for c in companies):
                raise ValidationError("the companies belong to different tenants")
            filters = ConversationFilter(
                company_ids=tuple(c.id for c in companies), channels=tuple(channel or ()),
                statuses=tuple(status or ()), needs_human=needs_human, assignee_user_id=assignee,
                has_order=has_order, payment_statuses=tuple(payment_status or ()), labels=tuple(label or ()),
                since=parse_when(since, "--since"), until=parse_when(until, "--until"), text=search,
            )
            page = await list_conversations(session, scope=TenantScope(tenant_id), filters=filters, limit=limit,
                                            cursor=cursor)
            return {"items": page.items, "next_cursor": page.next_cursor}

    data = _run(work)

    def text() -> str:
        out = render_table(CONVERSATION_COLUMNS, [_conversation_row(c) for c in data["items"]],
                           empty="no conversations")
        return out + (f"\nmore: --cursor {data['next_cursor']}" if data["next_cursor"] else "")

    _emit(data, as_json, text)


def _my_user_id(option: str) -> uuid.UUID:
    """The signed-in person's user id; ``ValidationError`` for the operator or an API key (nobody)."""
    user_id = cli_principal().user_id
    if user_id is None:
        raise ValidationError(f"{option} needs a person: run `chatcommerce login` with an e-mail address "
                              "(the local operator and API keys are nobody)")
    return user_id


async def _conversation_company(session: Any, conversation_id: uuid.UUID, company: str | None) -> Any:
    """The conversation's company, if the acting principal may act on it (else "not found")."""
    row = await conversation_company(session, conversation_id=conversation_id, company_slug=company)
    return await cli_company(session, row.slug)


def _summary(view: dict[str, Any]) -> str:
    owner = "a manager (the bot is silent)" if view["handoff"] else "the bot"
    assignee = f"assigned to {view['assignee_user_id']}" if view.get("assignee_user_id") else "nobody assigned"
    return f"conversation {view['id']} ({view['channel']}, {view['contact']['display_name']}): {view['status']}, " \
           f"answered by {owner}, {assignee}"


def _act(action: Any, conversation_id: uuid.UUID, company: str | None, as_json: bool, *,
         assign_me: bool = False) -> None:
    async def work(rt: Runtime) -> dict[str, Any]:
        extra = {"assignee_user_id": cli_principal().user_id} if assign_me else {}
        async with rt.sessionmaker() as session:
            row = await _conversation_company(session, conversation_id, company)
            view = await action(session, company=row, conversation_id=conversation_id, **extra)
            view.pop("messages", None)
            return view

    data = _run(work)
    _emit(data, as_json, lambda: _summary(data))


def conversations_take(conversation_id: ConversationArg, company: OptionalCompany = None,
                       as_json: JsonOpt = False) -> None:
    """Take a conversation over: the bot stays silent until `release`; it is assigned to you."""
    _act(take_over, conversation_id, company, as_json, assign_me=True)


def conversations_release(conversation_id: ConversationArg, company: OptionalCompany = None,
                          as_json: JsonOpt = False) -> None:
    """Hand a conversation back to the bot."""
    _act(release, conversation_id, company, as_json)


def conversations_resolve(conversation_id: ConversationArg, company: OptionalCompany = None,
                          as_json: JsonOpt = False) -> None:
    """Close a conversation; the customer's next message starts a new one."""
    _act(resolve, conversation_id, company, as_json)


def conversations_assign(
    conversation_id: ConversationArg,
    to: Annotated[str | None, typer.Option("--to", help="E-mail of the person (the company's manager, an owner "
                                                        "of the tenant or a platform admin).")] = None,
    me: Annotated[bool, typer.Option("--me", help="Assign it to me (the user of `chatcommerce login`).")] = False,
    nobody: Annotated[bool, typer.Option("--nobody", help="Unassign it.")] = False,
    company: OptionalCompany = None,
    as_json: JsonOpt = False,
) -> None:
    """Assign a conversation to a person (or to nobody) without changing who answers it."""
    if (to is not None) + me + nobody != 1:
        raise _fail("give one of --to EMAIL, --me, --nobody")

    async def work(rt: Runtime) -> dict[str, Any]:
        async with rt.sessionmaker() as session:
            row = await _conversation_company(session, conversation_id, company)
            user_id = None
            if me:
                user_id = _my_user_id("--me")
            elif to is not None:
                user = await user_by_email(session, to)
                if user is None:  # the same answer as for someone who may not be assigned
                    raise ValidationError(f"{to} cannot be assigned conversations of {row.slug!r}")
                user_id = user.id
            view = await assign(session, company=row, conversation_id=conversation_id, user_id=user_id)
            view.pop("messages", None)
            return view

    data = _run(work)
    _emit(data, as_json, lambda: _summary(data))


def conversations_reply(
    conversation_id: ConversationArg,
    text: Annotated[str | None, typer.Argument(help="The reply (omit with --canned).")] = None,
    canned: Annotated[str | None, typer.Option("--canned", help="Send this canned reply (its shortcut).")] = None,
    company: OptionalCompany = None,
    as_json: JsonOpt = False,
) -> None:
    """Reply as a person through the conversation's channel (this takes the conversation over)."""
    if (text is None) == (canned is None):
        raise _fail("give the reply text or --canned SHORTCUT (one of them)")

    async def work(rt: Runtime) -> dict[str, Any]:
        async with rt.sessionmaker() as session:
            row = await _conversation_company(session, conversation_id, company)
            message = await reply_as_human(session, pipeline=rt.pipeline, company=row,
                                           conversation_id=conversation_id, text=text, canned_shortcut=canned,
                                           assignee_user_id=cli_principal().user_id)
            return message_dict(message)

    data = _run(work)
    if data["status"] == "failed":
        if as_json:
            _emit(data, True, str)
        raise _fail(f"the reply was stored but could not be delivered: {data['payload'].get('error', '?')}")
    _emit(data, as_json, lambda: f"reply {data['status']} ({data['id']})")


# -- knowledge base --------------------------------------------------------------------------------


def kb_list(
    company: Annotated[str, typer.Option("--company", help="Company slug.")],
    faq: Annotated[bool, typer.Option("--faq", help="List the FAQ instead of products and services.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """A company's products and services (or FAQ), in file order."""

    async def work(rt: Runtime) -> tuple[list[dict[str, Any]], str]:
        async with rt.sessionmaker() as session:
            row = await cli_company(session, company)
            if faq:
                return [{"id": str(f.id), "question": f.question, "answer": f.answer}
                        for f in await kb_faq(session, company=row)], company_locale(row)
            return [{"id": str(i.id), "kind": i.kind, "name": i.name, "sku": i.sku, "category": i.category,
                     "price_minor": i.price_minor, "currency": i.currency, "stock": i.stock,
                     "variants": [{"name": v.name, "sku": v.sku, "price_minor": v.price_minor, "stock": v.stock}
                                  for v in i.variants]}
                    for i in await kb_items(session, company=row)], company_locale(row)

    data, locale = _run(work)
    if faq:
        _emit(data, as_json, lambda: render_table(("question", "answer"), [(f["question"], f["answer"][:80])
                                                                           for f in data], empty="no FAQ"))
        return

    def price(i: dict[str, Any]) -> str | None:
        return money(int(i["price_minor"]), i["currency"], locale) if i["price_minor"] is not None else None

    _emit(data, as_json, lambda: render_table(
        ("name", "kind", "price", "stock", "variants", "category", "sku"),
        [(i["name"], i["kind"], price(i), i["stock"], len(i["variants"]), i["category"], i["sku"]) for i in data],
        empty="no items"))


# -- orders, payments, bookings --------------------------------------------------------------------

StatusOpt = Annotated[list[str] | None, typer.Option("--status", help="The row's status (repeat).")]
PaymentStatusOpt = Annotated[list[str] | None, typer.Option("--payment-status", help="The order's payment "
                                                                                     "status (repeat).")]
SinceOpt = Annotated[str | None, typer.Option(help="At or after (YYYY-MM-DD or ISO-8601; UTC).")]
UntilOpt = Annotated[str | None, typer.Option(help="Before (YYYY-MM-DD or ISO-8601; UTC).")]
SearchOpt = Annotated[str | None, typer.Option("--search", "-q", help="Customer name or phone, or order number.")]
CompanyOpt = Annotated[str, typer.Option("--company", help="Company slug.")]


def _write(text: str, out: Path | None, what: str) -> None:
    if out is None:
        sys.stdout.write(text)
        return
    out.write_text(text, encoding="utf-8", newline="")
    typer.echo(f"{what} written to {out}", err=True)


def _export(company: str, filters_kw: dict[str, Any], build: Any, out: Path | None, what: str) -> None:
    filters = sales_filter(**filters_kw)

    async def work(rt: Runtime) -> str:
        async with rt.sessionmaker() as session:
            return await build(session, await cli_company(session, company), filters)

    _write(_run(work), out, what)


async def _orders_csv(session: Any, company: Any, filters: Any) -> str:
    return to_csv(order_csv_rows(await list_orders(session, company=company, filters=filters)))


async def _payments_csv(session: Any, company: Any, filters: Any) -> str:
    return to_csv(payment_csv_rows(await list_payments(session, company=company, filters=filters)))


async def _bookings_csv(session: Any, company: Any, filters: Any) -> str:
    return to_csv(booking_csv_rows(await list_bookings(session, company=company, filters=filters)))


def orders_export(company: CompanyOpt, status: StatusOpt = None, payment_status: PaymentStatusOpt = None,
                  since: SinceOpt = None, until: UntilOpt = None, search: SearchOpt = None, out: OutOpt = None) -> None:
    """The company's orders as CSV (spreadsheet-safe: formula-like cells are neutralised)."""
    _export(company, {"status": status, "payment_status": payment_status, "since": since, "until": until,
                      "search": search}, _orders_csv, out, "orders")


def payments_export(company: CompanyOpt, status: StatusOpt = None, payment_status: PaymentStatusOpt = None,
                    since: SinceOpt = None, until: UntilOpt = None, search: SearchOpt = None,
                    out: OutOpt = None) -> None:
    """The company's payment links as CSV."""
    _export(company, {"status": status, "payment_status": payment_status, "since": since, "until": until,
                      "search": search}, _payments_csv, out, "payments")


def bookings_export(company: CompanyOpt, status: StatusOpt = None, payment_status: PaymentStatusOpt = None,
                    since: SinceOpt = None, until: UntilOpt = None, search: SearchOpt = None,
                    out: OutOpt = None) -> None:
    """The company's bookings as CSV (dates bound the start time)."""
    _export(company, {"status": status, "payment_status": payment_status, "since": since, "until": until,
                      "search": search}, _bookings_csv, out, "bookings")


PAYMENT_COLUMNS = ("order", "customer", "sent", "status", "paid at", "amount", "provider")


def payments_links(company: CompanyOpt, status: StatusOpt = None, payment_status: PaymentStatusOpt = None,
                   since: SinceOpt = None, until: UntilOpt = None, search: SearchOpt = None,
                   as_json: JsonOpt = False) -> None:
    """Who got a payment link, when, and whether it was paid (newest first)."""
    filters = sales_filter(status=status, payment_status=payment_status, since=since, until=until, search=search)

    async def work(rt: Runtime) -> tuple[list[dict[str, Any]], str]:
        async with rt.sessionmaker() as session:
            row = await cli_company(session, company)
            return await list_payments(session, company=row, filters=filters), company_locale(row)

    data, locale = _run(work)
    _emit(data, as_json, lambda: render_table(PAYMENT_COLUMNS, [
        (f"#{p['order_number']}", p["customer_name"] or p["phone"], p["sent_at"][:16].replace("T", " "), p["status"],
         (p["paid_at"] or "")[:16].replace("T", " "), money(p["amount_minor"], p["currency"], locale), p["provider"])
        for p in data], empty="no payment links"))


def register(*, conversations_app: typer.Typer, kb_app: typer.Typer, orders_app: typer.Typer,
             payments_app: typer.Typer, bookings_app: typer.Typer) -> None:
    """Attach this module's commands to the CLI's sub-apps (called once by ``api.cli``)."""
    conversations_app.command("list")(conversations_list)
    conversations_app.command("take")(conversations_take)
    conversations_app.command("reply")(conversations_reply)
    conversations_app.command("release")(conversations_release)
    conversations_app.command("assign")(conversations_assign)
    conversations_app.command("resolve")(conversations_resolve)
    kb_app.command("list")(kb_list)
    orders_app.command("export")(orders_export)
    payments_app.command("links")(payments_links)
    payments_app.command("export")(payments_export)
    bookings_app.command("export")(bookings_export)
