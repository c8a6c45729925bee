"""The language-model assistant of a company (issue 9): its mode, voice and model server, for owners.

``GET/PUT /tenants/{tenant}/companies/{company}/assistant``: the company's ``assistant`` settings
(``bot.llm.config.AssistantSettings``) and its ``model_server`` (base URL, model, prices, monthly
budget; the API key is write-only: stored encrypted in ``Company.model_api_key``, shown only masked
as ``api_key`` and ``api_key_set``). ``PUT .../inboxes/{inbox_id}/assistant`` overrides assistant settings for one inbox
(``{}`` removes the override). ``GET .../assistant/usage?since=&until=``: the assist share of the company
in a date range (``bot.llm.usage.assist_usage``: turns answered by the rules, turns sent to the model,
the share, fallbacks by reason, tokens and cost). Tenant-scoped through ``CompanyDep``/``TenantScopeDep``;
owners only.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError
from sqlalchemy.orm.attributes import flag_modified

from api.deps import AdminDep, CompanyDep, Requires, RuntimeDep, SessionDep, TenantScopeDep
from bot.llm.config import (
    AssistantSettings,
    ModelServerIn,
    public_model_server,
    stored_api_key,
    stored_model_server,
)
from bot.llm.usage import assist_usage, spent_this_month
from core.models import Company, Inbox
from core.security import SecretBox
from core.tenancy import NotFound
from core.timeutil import utcnow

router = APIRouter(prefix="/api/v1", tags=["assistant"], dependencies=[AdminDep, Depends(Requires("owner"))])

_COMPANY = "/tenants/{tenant}/companies/{company}"


class AssistantIn(BaseModel):
    """A change of the company's assistant: the ``assistant`` settings replace the stored ones when
    given; ``model_server`` fields replace the stored ones one by one (see ``ModelServerIn``)."""

    model_config = ConfigDict(extra="forbid")
    assistant: AssistantSettings | None = None
    model_server: ModelServerIn | None = None


def _shown(company: Company, inboxes: list[Inbox], spent: int, box: SecretBox) -> dict[str, Any]:
    settings = company.settings or {}
    return {
        "tenant_spent_this_month_usd_micros": spent,
        "assistant": AssistantSettings.model_validate(settings.get("assistant") or {}).model_dump(),
        "model_server": public_model_server(settings.get("model_server"), api_key_secret=company.model_api_key,
                                            box=box),
        "inboxes": {str(i.id): (i.settings or {}).get("assistant") for i in inboxes
                    if (i.settings or {}).get("assistant")},
    }


async def _inboxes(session: Any, scope: Any, company: Company) -> list[Inbox]:
    return list((await session.execute(scope.select(Inbox, Inbox.company_id == company.id))).scalars())


@router.get(_COMPANY + "/assistant")
async def get_assistant(company: CompanyDep, scope: TenantScopeDep, session: SessionDep,
                        runtime: RuntimeDep) -> dict[str, Any]:
    """The company's assistant settings, model server (without its key), inbox overrides and the
    tenant's model spend this calendar month (micro-USD)."""
    return _shown(company, await _inboxes(session, scope, company),
                  await spent_this_month(session, tenant_id=scope.tenant_id, now=utcnow()), runtime.secret_box)


@router.get(_COMPANY + "/assistant/usage")
async def get_assistant_usage(
    company: CompanyDep, scope: TenantScopeDep, session: SessionDep,
    since: Annotated[AwareDatetime | None, Query(description="At or after (ISO-8601 with zone)")] = None,
    until: Annotated[AwareDatetime | None, Query(description="Before (ISO-8601 with zone)")] = None,
) -> dict[str, Any]:
    """How the company's customer turns in ``[since, until)`` were answered (``AssistUsage.as_dict``):
    ``turns``, ``rules_turns``, ``model_turns``, ``model_answered``, ``share`` (0..1), ``fallbacks`` by
    reason, ``requests``, ``prompt_tokens``, ``completion_tokens`` and ``cost_usd_micros``. 422 when
    ``until`` is not after ``since``."""
    if since is not None and until is not None and until <= since:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "until must be after since")
    usage = await assist_usage(session, tenant_id=scope.tenant_id, company_id=company.id,
                               since=_utc(since), until=_utc(until))
    return usage.as_dict()


def _utc(value: datetime | None) -> datetime | None:
    """An aware datetime in UTC (``None`` stays ``None``)."""
    return value.astimezone(UTC) if value is not None else None


@router.put(_COMPANY + "/assistant")
async def put_assistant(body: AssistantIn, company: CompanyDep, scope: TenantScopeDep, session: SessionDep,
                        runtime: RuntimeDep) -> dict[str, Any]:
    """Change the assistant settings and/or the model server; 422 for a bad mode, URL or field."""
    settings = dict(company.settings or {})
    if body.assistant is not None:
        settings["assistant"] = body.assistant.model_dump()
    if body.model_server is not None:
        settings["model_server"] = stored_model_server(settings.get("model_server"), body.model_server)
        company.model_api_key = stored_api_key(company.model_api_key, body.model_server, box=runtime.secret_box)
    company.settings = settings
    flag_modified(company, "settings")
    await session.commit()
    return _shown(company, await _inboxes(session, scope, company),
                  await spent_this_month(session, tenant_id=scope.tenant_id, now=utcnow()), runtime.secret_box)


@router.put(_COMPANY + "/inboxes/{inbox_id}/assistant")
async def put_inbox_assistant(inbox_id: uuid.UUID, body: dict[str, Any], company: CompanyDep,
                              scope: TenantScopeDep, session: SessionDep, runtime: RuntimeDep) -> dict[str, Any]:
    """Override assistant settings (any of ``AssistantSettings``' fields, e.g. ``{"mode": "llm"}``) for
    one inbox of the company; ``{}`` removes the override. 404 for another company's inbox."""
    try:
        inbox = await scope.get(session, Inbox, inbox_id)
    except NotFound:
        inbox = None
    if inbox is None or inbox.company_id != company.id:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "inbox not found")
    try:
        AssistantSettings.model_validate(body)
    except ValidationError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, exc.errors(include_url=False)) from None
    settings = dict(inbox.settings or {})
    if body:
        settings["assistant"] = body
    else:
        settings.pop("assistant", None)
    inbox.settings = settings
    flag_modified(inbox, "settings")
    await session.commit()
    runtime.channel_factory.forget(inbox.id)  # the pipeline's cached inbox row carries the overrides
    return _shown(company, await _inboxes(session, scope, company),
                  await spent_this_month(session, tenant_id=scope.tenant_id, now=utcnow()), runtime.secret_box)
