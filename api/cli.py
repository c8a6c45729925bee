"""The ``chatcommerce`` command line (typer).

Every command reads its settings from the environment (``CHATCOMMERCE_DATABASE_URL``... see
``.env.example``), builds the same ``Runtime`` as the HTTP app (``api.services.open_runtime``), and
prints JSON with ``--json``. Errors go to stderr with exit status 1. Companies are addressed by
their global slug. Without ``chatcommerce login`` the CLI is the local operator (every right); after
it, every command acts as that user or API key, checked like the HTTP API (``api.cli_auth``).
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
import uuid
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import structlog
import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import select
from sqlalchemy.engine import make_url

from api.actions import import_kb, mark_order_paid
from api.auth import Forbidden
from api.cli_auth import acting, cli_company, cli_principal, cli_require, cli_tenant
from api.cli_table import render_table
from api.queries import conversation_detail, conversations_of_contact
from api.sales import SalesFilter, order_by_ref, orders_as_dicts
from api.sales import list_orders as list_sales_orders
from api.services import Runtime, open_runtime
from bot.messages import Responder
from channels.base import RawRequest
from channels.pipeline import Reply
from commerce.payments import PaymentStateError
from core.accounts import ValidationError, create_company, create_tenant, inbox_of_kind
from core.i18n import company_locale, money
from core.logging import configure_logging
from core.migrate import upgrade
from core.models import Company, Order, Tenant
from core.settings import Settings, get_settings
from core.tenancy import NotFound, TenantScope
from knowledge.importer import KnowledgeImportError

T = TypeVar("T")

app = typer.Typer(
    name="chatcommerce",
    help="Self-hostable conversational commerce engine: database, tenants, knowledge bases, chat, orders, server.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
tenants_app = typer.Typer(help="Tenants (business owners' accounts).", no_args_is_help=True)
companies_app = typer.Typer(help="Companies (shops) of a tenant.", no_args_is_help=True)
kb_app = typer.Typer(help="Knowledge bases (products, services, FAQ).", no_args_is_help=True)
orders_app = typer.Typer(help="Orders and payments.", no_args_is_help=True)
conversations_app = typer.Typer(help="Conversations with customers.", no_args_is_help=True)
app.add_typer(tenants_app, name="tenants")
app.add_typer(companies_app, name="companies")
app.add_typer(kb_app, name="kb")
app.add_typer(orders_app, name="orders")
app.add_typer(conversations_app, name="conversations")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
CompanyOpt = Annotated[str, typer.Option("--company", help="Company slug.")]


@dataclass(kw_only=True)
class CliOptions:
    """Per-invocation options passed as the click context object. ``responder`` replaces the
    dialogue engine (tests pass a double: ``CliRunner().invoke(app, args, obj=CliOptions(...))``)."""

    responder: Responder | None = None


# The options of the running invocation (set by the callback; read by the commands).
_OPTIONS: ContextVar[CliOptions | None] = ContextVar("chatcommerce_cli_options", default=None)


def _stderr_logger(*_args: Any) -> structlog.PrintLogger:
    return structlog.PrintLogger(sys.stderr)


@app.callback()
def _main(ctx: typer.Context) -> None:
    """Set up logging (to stderr, so that stdout stays parseable) and the context object."""
    if not isinstance(ctx.obj, CliOptions):
        ctx.obj = CliOptions()
    _OPTIONS.set(ctx.obj)
    settings = get_settings()
    configure_logging(level=settings.log_level, json=settings.log_json)
    structlog.configure(logger_factory=_stderr_logger)


def _options() -> CliOptions:
    return _OPTIONS.get(None) or CliOptions()


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(1)


def _emit(data: Any, as_json: bool, text: Callable[[], str]) -> None:
    typer.echo(json.dumps(data, ensure_ascii=False, default=str) if as_json else text())


def _run(work: Callable[[Runtime], Awaitable[T]], *, settings: Settings | None = None) -> T:
    """Build the runtime, run ``work`` in a fresh event loop, turn expected errors into exit 1."""

    responder = _options().responder

    async def main() -> T:
        async with open_runtime(settings or get_settings(), responder=responder) as runtime, acting(runtime):
            return await work(runtime)

    try:
        return asyncio.run(main())
    except KnowledgeImportError:
        raise
    except Forbidden as exc:
        raise _fail(f"forbidden: {exc}") from exc
    except (NotFound, ValidationError, PaymentStateError, LookupError, ValueError, FileNotFoundError) as exc:
        raise _fail(str(exc).strip("'\"")) from exc


def parse_when(value: str | None, option: str) -> datetime | None:
    """``YYYY-MM-DD`` (midnight UTC) or ISO-8601 (UTC when it has no zone) as an aware datetime."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise ValidationError(f"{option} must be YYYY-MM-DD or ISO-8601, not {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def sales_filter(*, status: list[str] | None = None, payment_status: list[str] | None = None,
                 since: str | None = None, until: str | None = None, search: str | None = None) -> SalesFilter:
    """The ``api.sales.SalesFilter`` of the list/export options (bad values exit 1 with the reason)."""
    try:
        return SalesFilter(statuses=tuple(status or ()), payment_statuses=tuple(payment_status or ()),
                           since=parse_when(since, "--since"), until=parse_when(until, "--until"), text=search)
    except ValidationError as exc:
        raise _fail(str(exc)) from exc


def _safe_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


# -- database --------------------------------------------------------------------------------------


@app.command("init-db")
def init_db(as_json: JsonOpt = False) -> None:
    """Create or upgrade the database schema (Alembic migrations to the latest revision)."""
    settings = get_settings()
    upgrade(settings.database_url)
    _emit({"database": _safe_url(settings.database_url), "revision": "head"}, as_json,
          lambda: f"database {_safe_url(settings.database_url)} is up to date")


# -- tenants and companies -------------------------------------------------------------------------


def _tenant_dict(tenant: Tenant) -> dict[str, Any]:
    return {"id": str(tenant.id), "name": tenant.name, "slug": tenant.slug, "created_at": tenant.created_at.isoformat()}


def _company_dict(company: Company, settings: Settings) -> dict[str, Any]:
    return {
        "id": str(company.id), "tenant_id": str(company.tenant_id), "slug": company.slug,
        "human_id": company.human_id, "name": company.name, "type": company.type, "currency": company.currency,
        "language": company.language, "timezone": company.timezone, "payment_provider": company.payment_provider,
        "kb_version": company.kb_version,
        "chat_url": f"{settings.public_base_url.rstrip('/')}/chat/{company.slug}",
    }


@tenants_app.command("create")
def tenants_create(
    name: Annotated[str, typer.Option(help="Display name.")],
    slug: Annotated[str, typer.Option(help="URL id: a-z, 0-9 and '-'.")],
    as_json: JsonOpt = False,
) -> None:
    """Create a tenant."""

    async def work(rt: Runtime) -> dict[str, Any]:
        async with rt.sessionmaker() as session, session.begin():
            await cli_require(session, "admin")
            return _tenant_dict(await create_tenant(session, name=name, slug=slug))

    data = _run(work)
    _emit(data, as_json, lambda: f"tenant {data['slug']} created ({data['id']})")


@tenants_app.command("list")
def tenants_list(as_json: JsonOpt = False) -> None:
    """List tenants."""

    async def work(rt: Runtime) -> list[dict[str, Any]]:
        async with rt.sessionmaker() as session:
            stmt = select(Tenant).order_by(Tenant.created_at)
            visible = cli_principal().visible_tenant_ids()
            if visible is not None:
                stmt = stmt.where(Tenant.id.in_(visible))
            return [_tenant_dict(t) for t in (await session.execute(stmt)).scalars()]

    data = _run(work)
    _emit(data, as_json, lambda: render_table(("slug", "name", "id"),
                                              [(tn["slug"], tn["name"], tn["id"]) for tn in data], empty="no tenants"))


@companies_app.command("create")
def companies_create(
    tenant: Annotated[str, typer.Option(help="Tenant slug.")],
    slug: Annotated[str, typer.Option(help="Company slug (global; the chat URL is /chat/<slug>).")],
    name: Annotated[str, typer.Option(help="Display name.")],
    type: Annotated[str, typer.Option("--type", help="product | service | hybrid.")] = "product",
    currency: Annotated[str, typer.Option(help="ISO-4217 code, e.g. USD, RUB.")] = "USD",
    language: Annotated[str, typer.Option(help="en | ru.")] = "en",
    timezone: Annotated[str, typer.Option(help="IANA time zone, e.g. Europe/Moscow.")] = "UTC",
    as_json: JsonOpt = False,
) -> None:
    """Create a company of a tenant (with its web chat and console inboxes)."""
    settings = get_settings()

    async def work(rt: Runtime) -> dict[str, Any]:
        async with rt.sessionmaker() as session, session.begin():
            owner = await cli_tenant(session, tenant, "owner")
            company = await create_company(session, tenant_id=owner.id, slug=slug, name=name, type=type,
                                           currency=currency, language=language, timezone=timezone)
            return _company_dict(company, settings)

    data = _run(work, settings=settings)
    _emit(data, as_json, lambda: f"company {data['slug']} created; chat: {data['chat_url']}")


@companies_app.command("list")
def companies_list(tenant: Annotated[str, typer.Option(help="Tenant slug.")], as_json: JsonOpt = False) -> None:
    """List a tenant's companies."""
    settings = get_settings()

    async def work(rt: Runtime) -> list[dict[str, Any]]:
        async with rt.sessionmaker() as session:
            scope = TenantScope((await cli_tenant(session, tenant, "manager")).id)
            stmt = scope.select(Company).order_by(Company.human_id)
            visible = cli_principal().visible_company_ids(scope.tenant_id)
            if visible is not None:
                stmt = stmt.where(Company.id.in_(visible))
            return [_company_dict(c, settings) for c in (await session.execute(stmt)).scalars()]

    data = _run(work, settings=settings)
    _emit(data, as_json, lambda: render_table(("slug", "name", "chat url"),
                                              [(c["slug"], c["name"], c["chat_url"]) for c in data],
                                              empty="no companies"))


# -- knowledge base --------------------------------------------------------------------------------


@kb_app.command("import")
def kb_import(
    company: CompanyOpt,
    file: Annotated[Path, typer.Argument(help="CSV or XLSX file (Shopify export, owner's sheet or FAQ).",
                                         exists=True, dir_okay=False, readable=True)],
    as_json: JsonOpt = False,
) -> None:
    """Import a knowledge-base file into a company, as an import job (the same as the API's), with a
    progress bar on a terminal and the final report (counts and warnings). A refused file imports
    nothing; the error names the row and column, or the exceeded limit (exit status 1)."""
    progress = _import_progress(enabled=not as_json and sys.stderr.isatty())

    async def work(rt: Runtime) -> dict[str, Any]:
        async with rt.sessionmaker() as session:
            row = await cli_company(session, company, "owner")
        data = await asyncio.to_thread(file.read_bytes)
        with progress:
            task = progress.add_task(f"importing {file.name}", total=None)
            result = await import_kb(
                rt, company_id=row.id, data=data, filename=file.name,
                on_progress=lambda done, total: progress.update(task, completed=done, total=total),
            )
        return {"company": company, "file": file.name, "items": result.items, "variants": result.variants,
                "faq": result.faq, "warnings": [warning.as_dict() for warning in result.warnings]}

    try:
        data = _run(work)
    except KnowledgeImportError as exc:
        if as_json:
            typer.echo(json.dumps({"error": exc.message, "row": exc.row, "column": exc.column, "sheet": exc.sheet,
                                   "errors": [issue.as_dict() for issue in exc.errors], "omitted": exc.omitted,
                                   "limit": getattr(exc, "limit", None), "file": file.name},
                                  ensure_ascii=False), err=True)
        listed = str(exc).replace("\n", "\n  ")
        message = f"{exc.total} errors, nothing was imported:\n  {listed}" if exc.total > 1 else listed
        raise _fail(f"{file.name}: {message}") from exc

    def report() -> str:
        lines = [f"imported {data['items']} items, {data['variants']} variants and {data['faq']} FAQ entries "
                 f"into {company}"]
        lines.extend(f"warning: {warning['text']}" for warning in data["warnings"])
        return "\n".join(lines)

    _emit(data, as_json, report)


def _import_progress(*, enabled: bool) -> Progress:
    """A rich progress bar on stderr (rows read of the file); silent when ``enabled`` is false."""
    return Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("rows"),
        TimeElapsedColumn(), console=Console(stderr=True), disable=not enabled, transient=False,
    )


# -- chat ------------------------------------------------------------------------------------------


def _reply_text(reply: Reply) -> str:
    lines = [f"bot> {reply.text}"]
    if reply.url and reply.url not in reply.text:
        lines.append(f"     {reply.url}")
    lines.extend(f"     [{i}] {b.get('title', '')}" for i, b in enumerate(reply.buttons, 1))
    return "\n".join(lines)


@app.command("chat")
def chat(
    company: CompanyOpt,
    contact: Annotated[str, typer.Option(help="Your contact id (any string; reuse it to continue).")] = "console",
    as_json: JsonOpt = False,
) -> None:
    """Chat with a company's bot: one message per stdin line, the replies are printed. With --json one
    object per line: {"in": ..., "replies": [{"text", "buttons", "url", "image_url"}]}."""
    stdin = sys.stdin
    interactive = stdin.isatty() and not as_json

    async def work(rt: Runtime) -> None:
        async with rt.sessionmaker() as session:
            row = await cli_company(session, company)
            inbox = await inbox_of_kind(session, row, "console")
        channel = rt.channel_factory.build(inbox)
        if interactive:
            typer.echo(f"Chatting with {row.name} as {contact!r}; Ctrl-D to quit.", err=True)
        while True:
            if interactive:
                typer.echo("you> ", nl=False, err=True)
            line = await asyncio.to_thread(stdin.readline)
            if not line:
                break
            raw = RawRequest(headers={}, body=line.encode("utf-8"), query={"contact": contact})
            parsed = channel.parse(raw)
            if not parsed:
                continue
            result = await rt.pipeline.receive(inbox_id=inbox.id, parsed=parsed[0])
            if as_json:
                typer.echo(json.dumps({"in": parsed[0].text, "replies": [r.as_dict() for r in result.replies],
                                       "handoff": result.handoff}, ensure_ascii=False))
            elif result.handoff:
                typer.echo("(a manager has taken over this conversation; the bot is silent)")
            else:
                for reply in result.replies:
                    typer.echo(_reply_text(reply))

    _run(work)


# -- dialogue tests --------------------------------------------------------------------------------


@app.command("test-dialogues")
def test_dialogues(
    files: Annotated[list[Path], typer.Argument(help="YAML dialogue files (see api/dialogue_spec.py).")],
    company: Annotated[str | None, typer.Option(
        "--company", help="Slug of a company in the configured database, for conversations that name no "
                          "company of their file (its data is copied; the database is only read).")] = None,
    as_json: JsonOpt = False,
    engine: Annotated[str, typer.Option(
        "--engine", help="rules (the rule engine), assist (rules first, the model for their misses) or llm "
                         "(the model drives every turn); the model modes fall back to the rules when the "
                         "model server fails.")] = "rules",
    model_base_url: Annotated[str | None, typer.Option(
        "--model-base-url", help="OpenAI-compatible server for --engine assist|llm "
                                 "(default CHATCOMMERCE_OPENAI_BASE_URL).")] = None,
    model: Annotated[str | None, typer.Option(
        "--model", help="Model name (default CHATCOMMERCE_OPENAI_MODEL).")] = None,
) -> None:
    """Run dialogue tests against the real engine on throwaway databases: prints a pass/fail table (one
    row per conversation, the first failing expectation shown); exits 1 when any conversation fails.
    With ``--engine assist|llm`` also prints how many turns reached the model."""
    from api.dialogue_spec import DialogueSpecError
    from api.dialogue_tests import engine_for, run_dialogue_files

    if engine not in ("rules", "assist", "llm"):
        raise _fail(f"--engine must be rules, assist or llm, not {engine!r}")
    settings = get_settings()
    key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
    chosen, assistant = engine_for(engine, base_url=model_base_url or settings.openai_base_url,
                                   model=model or settings.openai_model or "default", api_key=key,
                                   timeout_seconds=settings.openai_timeout_seconds,
                                   max_retries=settings.openai_max_retries)
    responder = _options().responder  # a test double replaces the engine (see CliOptions)
    factory = (lambda _clock: responder) if responder is not None else chosen
    try:
        run = run_dialogue_files(list(files), company=company, engine_factory=factory,
                                 source_url=get_settings().database_url if company else None)
    except (DialogueSpecError, LookupError) as exc:
        raise _fail(str(exc)) from exc
    data: dict[str, Any] = {"passed": run.passed, "failed": run.failed,
                            "conversations": [r.as_dict() for r in run.results]}
    note = ""
    if assistant is not None:
        usage = run.usage
        data["engine"] = {"mode": engine, **usage.as_dict()}
        note = f"\nengine {engine}: {usage.summary_line()}"
    _emit(data, as_json, lambda: run.table() + note)
    raise typer.Exit(run.exit_code)


# -- orders ----------------------------------------------------------------------------------------


ORDER_COLUMNS = ("number", "status", "payment", "total", "items", "id")


def _order_row(order: dict[str, Any], locale: str) -> list[Any]:
    total = money(int(order["total_minor"]), str(order["currency"]), locale)
    items = ", ".join(f"{ln['quantity']} x {ln['name']}" + (f" ({ln['variant']})" if ln["variant"] else "")
                      for ln in order["lines"])
    return [f"#{order['number']}", order["status"], order["payment_status"], total, items, order["id"]]


@orders_app.command("list")
def orders_list(
    company: CompanyOpt,
    status: Annotated[list[str] | None, typer.Option("--status", help="pending_payment | paid | cancelled "
                                                                      "(repeat for several).")] = None,
    payment_status: Annotated[list[str] | None, typer.Option("--payment-status", help="no_payment_link | "
                              "payment_link_sent | paid | expired | refunded | failed (repeat).")] = None,
    since: Annotated[str | None, typer.Option(help="Placed at or after (YYYY-MM-DD or ISO-8601; UTC).")] = None,
    until: Annotated[str | None, typer.Option(help="Placed before (YYYY-MM-DD or ISO-8601; UTC).")] = None,
    search: Annotated[str | None, typer.Option("--search", "-q", help="Customer name or phone, or number.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """A company's orders, newest first (money in minor units with --json)."""
    filters = sales_filter(status=status, payment_status=payment_status, since=since, until=until, search=search)

    async def work(rt: Runtime) -> tuple[list[dict[str, object]], str]:
        async with rt.sessionmaker() as session:
            row = await cli_company(session, company)
            return orders_as_dicts(await list_sales_orders(session, company=row, filters=filters)), company_locale(row)

    data, locale = _run(work)
    _emit(data, as_json, lambda: render_table(ORDER_COLUMNS, [_order_row(o, locale) for o in data],
                                              empty="no orders"))


@orders_app.command("mark-paid")
def orders_mark_paid(
    order_ref: Annotated[str, typer.Argument(help="The order number a person sees (1001, with --company) "
                                                  "or the order id (see `orders list`).")],
    company: Annotated[str | None, typer.Option("--company", help="Company slug (needed for a number).")] = None,
    method: Annotated[str, typer.Option(help="cash | bank_transfer | other.")] = "cash",
    as_json: JsonOpt = False,
) -> None:
    """Record that an order was paid outside the payment page; the customer gets the confirmation."""
    if method not in ("cash", "bank_transfer", "other"):
        raise _fail(f"--method must be cash, bank_transfer or other, not {method!r}")

    async def work(rt: Runtime) -> tuple[dict[str, object], bool]:
        async with rt.sessionmaker() as session:
            row = await cli_company(session, company) if company else None
            if row is None:
                try:
                    found = await session.get(Order, uuid.UUID(order_ref.strip()))
                except ValueError:
                    raise ValidationError(f"{order_ref!r} is not an order id; give --company to use an order "
                                          "number") from None
                owner = await session.get(Company, found.company_id) if found is not None else None
                if found is None or owner is None:
                    raise NotFound(f"order {order_ref} not found")
                await cli_company(session, owner.slug)  # the signed-in user's rights on its company
                order = found
            else:
                order = await order_by_ref(session, scope=TenantScope(row.tenant_id), ref=order_ref, company=row)
            order_id, scope = order.id, TenantScope(order.tenant_id)
        return await mark_order_paid(rt, order_id=order_id, method=method, scope=scope)

    order, changed = _run(work)
    _emit({**order, "changed": changed}, as_json,
          lambda: f"order #{order['number']} " + ("marked paid" if changed else "was already paid"))


# -- conversations ---------------------------------------------------------------------------------


@conversations_app.command("show")
def conversations_show(
    company: CompanyOpt,
    contact: Annotated[str, typer.Option(help="The contact's id in the console or web chat.")],
    as_json: JsonOpt = False,
) -> None:
    """A contact's conversations with a company, with all messages."""

    async def work(rt: Runtime) -> dict[str, Any]:
        async with rt.sessionmaker() as session:
            row = await cli_company(session, company)
            conversations = await conversations_of_contact(session, company=row, source_id=contact)
            if not conversations:
                raise NotFound(f"no conversations of contact {contact!r} with {company}")
            scope = TenantScope(row.tenant_id)
            details = [await conversation_detail(session, scope=scope, conversation=c) for c in conversations]
            return {"company": company, "contact": contact, "conversations": details}

    data = _run(work)

    def text() -> str:
        out: list[str] = []
        for conv in data["conversations"]:
            flag = ", manager" if conv["handoff"] else ""
            out.append(f"conversation {conv['id']} ({conv['channel']}, {conv['status']}{flag})")
            for m in conv["messages"]:
                arrow = "<-" if m["direction"] == "in" else "->"
                out.append(f"  {m['seq']:>3} {arrow} {m['sender']}: {m['text']}")
        return "\n".join(out)

    _emit(data, as_json, text)


# -- server ----------------------------------------------------------------------------------------


def _serve(settings: Settings, *, host: str, port: int, workers: int = 1) -> None:
    """Serve with uvicorn (uvloop and httptools when installed: ``uvicorn[standard]``). With more than
    one worker uvicorn's supervisor starts that many processes on the port, each with its own listening
    socket (``api.listen``: the kernel spreads connections over them) and building the app from the
    environment (``api.app:create_app``) with its own lifespan, pool and caches."""
    import uvicorn

    from api.app import create_app
    from api.listen import serve_processes

    if workers > 1:
        if _options().responder is not None:
            raise _fail("a replaced responder runs in one process only (no --workers)")
        serve_processes(uvicorn.Config("api.app:create_app", factory=True, host=host, port=port, workers=workers,
                                       log_level=settings.log_level.lower(),
                                       timeout_worker_healthcheck=settings.worker_healthcheck_seconds))
        return
    _require_port(host, port)  # uvicorn binds only after the lifespan's warm-up
    uvicorn.run(create_app(settings, responder=_options().responder), host=host, port=port,
                log_level=settings.log_level.lower())


def _require_port(host: str, port: int) -> None:
    """Refuse (exit 1, the reason on stderr) when the server could not listen on ``host:port``."""
    from api.listen import check_port_free

    try:
        check_port_free(host, port)
    except OSError as exc:
        raise _fail(f"cannot listen on {host}:{port}: {exc.strerror or exc} (another server on it? "
                    f"choose another with --port, or PORT=... make demo)") from exc


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, help="Server processes on this port (each with its own pool "
                                                     "and sweep); settings come from the environment.")] = 1,
) -> None:
    """Run the HTTP server (admin API, web chat, payment pages). Run `init-db` first."""
    _serve(get_settings(), host=host, port=port, workers=workers)


@app.command("worker")
def worker(
    concurrency: Annotated[int | None, typer.Option(min=1, help="Jobs answered at once (default: "
                                                             "CHATCOMMERCE_QUEUE_CONCURRENCY).")] = None,
) -> None:
    """Answer inbound messages from the Redis stream (CHATCOMMERCE_QUEUE=redis): the `serve` processes only
    verify, store and enqueue webhook deliveries. Runs until SIGTERM/SIGINT; run as many as you like."""
    from api.worker import run_worker

    settings = get_settings(**({"queue_concurrency": concurrency} if concurrency else {}))
    if settings.queue != "redis" or not settings.redis_url:
        raise _fail("chatcommerce worker needs CHATCOMMERCE_QUEUE=redis and CHATCOMMERCE_REDIS_URL")
    responder = _options().responder
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] installs it
        asyncio.run(run_worker(settings, responder=responder))
    else:
        uvloop.run(run_worker(settings, responder=responder))


@app.command("demo")
def demo(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    serve_: Annotated[bool, typer.Option("--serve/--no-serve", help="Start the server after loading.")] = True,
    as_json: JsonOpt = False,
) -> None:
    """Demo mode: migrate the database, load the demo companies (apparel, florist, salon) from examples/ (again
    and again without duplicates), print the chat URLs and serve on HOST:PORT with test payments."""
    from api.demo import load_demo

    if serve_:
        _require_port(host, port)  # before the migration and the imports, not after them
    env = get_settings()
    overrides: dict[str, Any] = {"demo_mode": True}
    generated_token = None
    if not (env.admin_token and env.admin_token.get_secret_value()):
        generated_token = secrets.token_urlsafe(18)
        overrides["admin_token"] = generated_token
    if "public_base_url" not in env.model_fields_set:
        overrides["public_base_url"] = f"http://{host}:{port}"
    settings = get_settings(**overrides)
    upgrade(settings.database_url)
    result = _run(lambda rt: load_demo(rt), settings=settings)
    base = settings.public_base_url.rstrip("/")
    companies = [{**asdict(c), "chat_url": f"{base}/chat/{c.slug}"} for c in result.companies]
    data = {"tenant": result.tenant, "database": _safe_url(settings.database_url), "companies": companies,
            "admin_token": generated_token or "(from CHATCOMMERCE_ADMIN_TOKEN)", "docs_url": f"{base}/docs"}

    def text() -> str:
        lines = [f"Demo tenant {result.tenant!r} ready in {data['database']}", f"  Start here: {base}/"]
        for c in companies:
            loaded = f"imported {', '.join(c['imported'])}" if c["imported"] else "already loaded"
            lines.append(f"  {c['name']}: {c['chat_url']}  ({c['items']} items, {c['faq']} FAQ; {loaded})")
        lines.append(f"  API docs: {data['docs_url']}")
        lines.append(f"  Admin token: {data['admin_token']}")
        if generated_token:
            lines.append(f"  e.g. curl -H 'Authorization: Bearer {generated_token}' {base}/api/v1/tenants")
        return "\n".join(lines)

    _emit(data, as_json, text)
    if serve_:
        _serve(settings, host=host, port=port)


def _register_subcommands() -> None:
    """Sub-apps defined in their own modules (they import helpers from this one)."""
    from api.cli_assistant import assistant_app
    from api.cli_bookings import bookings_app
    from api.cli_channels import inboxes_app, payments_app
    from api.cli_data import contacts_app, keys_app
    from api.cli_inbox import register
    from api.cli_login import register as register_login

    register_login(app)

    register(conversations_app=conversations_app, kb_app=kb_app, orders_app=orders_app, payments_app=payments_app,
             bookings_app=bookings_app)
    app.add_typer(inboxes_app, name="inboxes")
    app.add_typer(keys_app, name="keys")
    app.add_typer(contacts_app, name="contacts")
    app.add_typer(payments_app, name="payments")
    app.add_typer(bookings_app, name="bookings")
    app.add_typer(assistant_app, name="assistant")


_register_subcommands()


def main() -> None:
    """Console-script entry point (``chatcommerce``)."""
    app()
