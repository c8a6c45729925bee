"""FastAPI dependencies, as ``Annotated`` aliases (``RuntimeDep``, ``SessionDep``, ``TenantScopeDep``...).

Tenant scoping happens here and only here: the ``{tenant}`` path parameter becomes a ``TenantScope``
(``TenantScopeDep``) and the ``{company}`` path parameter one of that tenant's companies
(``CompanyDep``, looked up through ``TenantScope.company``). A company of another tenant is a 404, the
same answer as a company that does not exist.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.templating import Jinja2Templates
from sqlalchemy.ext.asyncio import AsyncSession

from api.ratelimit import check_admin_address, count_admin_failure
from api.services import Runtime
from core.models import Company
from core.security import tokens_match
from core.settings import Settings
from core.tenancy import TenantScope, company_by_slug, tenant_by_slug

_bearer = HTTPBearer(auto_error=False, description="The platform admin token (CHATCOMMERCE_ADMIN_TOKEN).")


def get_runtime(request: Request) -> Runtime:
    """The ``Runtime`` built by the app's lifespan."""
    return request.app.state.runtime


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_settings(runtime: RuntimeDep) -> Settings:
    """The process's settings."""
    return runtime.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_templates(request: Request) -> Jinja2Templates:
    """The app's Jinja2 templates (``api/templates``, autoescaped)."""
    return request.app.state.templates


TemplatesDep = Annotated[Jinja2Templates, Depends(get_templates)]


async def get_session(runtime: RuntimeDep) -> AsyncIterator[AsyncSession]:
    """A database session for the request. Routes that write call ``session.commit()`` themselves
    (before delivering messages); anything not committed is rolled back when the request ends."""
    async with runtime.sessionmaker() as session:
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session)]


async def require_admin(
    request: Request,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> None:
    """Guard of the admin API: ``Authorization: Bearer <CHATCOMMERCE_ADMIN_TOKEN>``.

    503 when no admin token is configured (the admin API is closed), 401 when the header is missing
    or the token is wrong (compared in constant time with ``core.security.tokens_match``), 429 with
    ``Retry-After`` for any request from an address that used up its wrong-token attempts
    (``CHATCOMMERCE_RATE_LIMIT_ADMIN_FAILURES``, see ``api.ratelimit``).
    """
    expected = settings.admin_token.get_secret_value() if settings.admin_token else None
    if not expected:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "admin API disabled")
    await check_admin_address(request)
    given = credentials.credentials if credentials else None
    if not tokens_match(given, expected):
        if given is not None:  # a wrong token is a guess; no token at all cannot be brute force
            await count_admin_failure(request)
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED, "invalid or missing admin token", headers={"WWW-Authenticate": "Bearer"}
        )


AdminDep = Depends(require_admin)


async def get_tenant_scope(
    tenant: Annotated[str, Path(description="Tenant slug")], session: SessionDep
) -> TenantScope:
    """The ``{tenant}`` path parameter as a ``TenantScope``; 404 for an unknown tenant."""
    row = await tenant_by_slug(session, tenant)
    return TenantScope(row.id)


TenantScopeDep = Annotated[TenantScope, Depends(get_tenant_scope)]


async def get_tenant_company(
    company: Annotated[str, Path(description="Company slug")], scope: TenantScopeDep, session: SessionDep
) -> Company:
    """The ``{company}`` path parameter as a company of the scoped tenant; 404 otherwise."""
    return await scope.company(session, company)


CompanyDep = Annotated[Company, Depends(get_tenant_company)]


async def get_public_company(
    company: Annotated[str, Path(description="Company slug")], session: SessionDep
) -> Company:
    """The ``{company}`` path parameter of public routes (web chat); 404 for an unknown slug."""
    return await company_by_slug(session, company)


PublicCompanyDep = Annotated[Company, Depends(get_public_company)]
