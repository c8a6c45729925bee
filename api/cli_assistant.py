"""``chatcommerce assistant ...``: the language-model assistant of a company (issue 9).

A ``typer.Typer`` sub-app (``assistant_app``) registered by ``api.cli`` as ``assistant``. Same
conventions as ``api.cli``: companies addressed by their global slug (through the access check, owner),
``--json`` for JSON on stdout, errors on stderr with exit status 1.

* ``assistant usage --company SLUG [--since D] [--until D] [--json]``: the assist share in a date range,
  computed by ``bot.llm.usage.assist_usage`` (the same function as ``GET .../assistant/usage``).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from api.cli import CompanyOpt, JsonOpt, _emit, _fail, _run, parse_when
from api.cli_auth import cli_company
from api.services import Runtime
from bot.llm.usage import AssistUsage, assist_usage
from core.accounts import ValidationError

assistant_app = typer.Typer(help="The language-model assistant: its usage and assist share.", no_args_is_help=True)


@assistant_app.command("usage")
def assistant_usage(
    company: CompanyOpt,
    since: Annotated[str | None, typer.Option(help="At or after (YYYY-MM-DD or ISO-8601; UTC).")] = None,
    until: Annotated[str | None, typer.Option(help="Before (YYYY-MM-DD or ISO-8601; UTC).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """How the company's customer turns were answered: by the rules or the model, the share that reached
    the model, fallbacks by reason, tokens and cost (micro-USD with --json)."""
    try:
        start, end = parse_when(since, "--since"), parse_when(until, "--until")
    except ValidationError as exc:
        raise _fail(str(exc)) from exc
    if start is not None and end is not None and end <= start:
        raise _fail("--until must be after --since")

    async def work(rt: Runtime) -> tuple[str, AssistUsage]:
        async with rt.sessionmaker() as session:
            row = await cli_company(session, company, need="owner")
            return row.slug, await assist_usage(session, tenant_id=row.tenant_id, company_id=row.id, since=start,
                                                until=end)

    slug, usage = _run(work)
    data: dict[str, Any] = {"company": slug, **usage.as_dict()}
    _emit(data, as_json, lambda: f"{slug}: {usage.summary_line()}")
