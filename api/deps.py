"""FastAPI dependencies, as ``Annotated`` aliases (``RuntimeDep``, ``SessionDep``, ``TenantScopeDep``...).

Tenant scoping and access checks happen here and only here (``get_access``, see ``api.auth``): the
``{tenant}`` path parameter becomes a ``TenantScope`` (``TenantScopeDep``) and the ``{company}`` path
parameter one of that tenant's companies (``CompanyDep``), each only when the caller (``PrincipalDep``)
has a role there. A tenant or company the caller has no role in is a 404, the same answer as one that
does not exist; a role below the route's ``Requires(...)`` is a 403.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Path, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.templating import Jinja2Templates
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth import (
    ROLES,
    Access,
    Forbidden,
    Principal,
    Role,
    authorize,
    default_need,
    principal_of_ticket,
    resolve_principal,
)
from api.auth_services import AuthServices, build_auth_services
from api.ratelimit import check_admin_address, count_admin_failure
from api.services import Runtime
from core.models import Company
from core.settings import Settings
from core.tenancy import TenantScope, company_by_slug

_bearer = HTTPBearer(auto_error=False, description="A JWT access token from /api/v1/auth/login, a tenant API key "
                     "(cc_...), or the bootstrap CHATCOMMERCE_ADMIN_TOKEN.")


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


async def get_auth(request: Request, runtime: RuntimeDep) -> AuthServices:
    """The app's account services (tokens, sign-in limits, mailer), built on first use; the sign-in
    limits share the app's ``limits`` storage (``api.ratelimit.RateLimits``)."""
    services = getattr(request.app.state, "auth_services", None)
    if services is None or services.settings is not runtime.settings:
        shared = getattr(request.app.state, "rate_limits", None)
        services = build_auth_services(runtime.settings, limits_storage=shared.storage if shared else None)
        request.app.state.auth_services = services
    return services


AuthDep = Annotated[AuthServices, Depends(get_auth)]


async def accepts_stream_ticket() -> None:
    """Marker: a route with ``dependencies=[StreamTicketAccepted]`` also takes its caller from a
    ``?ticket=`` stream ticket (for browsers' ``EventSource``, which cannot send headers)."""


StreamTicketAccepted = Depends(accepts_stream_ticket)


def _takes_ticket(route: Any) -> bool:
    return any(getattr(d, "dependency", None) is accepts_stream_ticket
               for d in getattr(route, "dependencies", None) or [])


async def get_optional_principal(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    auth: AuthDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal | None:
    """The caller of ``Authorization: Bearer ...`` (``api.auth.resolve_principal``), ``None`` without
    a valid credential. An API key's ``last_used_at`` is committed here. Without a bearer, a route
    marked ``StreamTicketAccepted`` takes the caller from its ``ticket`` query parameter
    (``api.auth.principal_of_ticket``: that one company only).

    Guessing is rate-limited per client address (``CHATCOMMERCE_RATE_LIMIT_ADMIN_FAILURES``,
    ``api.ratelimit``): a credential that resolves to nobody (wrong admin token, API key or JWT) counts
    as a failure, and an address that used up its failures gets 429 with ``Retry-After`` on every
    request that needs a principal, whatever it sends, so the answer cannot confirm a guess."""
    await check_admin_address(request)
    bearer = credentials.credentials if credentials else None
    ticket = request.query_params.get("ticket") if bearer is None else None
    if ticket is not None and _takes_ticket(_matched_route(request)):
        principal = await principal_of_ticket(session, ticket=ticket, tokens=auth.tokens)
        if principal is None:
            await count_admin_failure(request)
        return principal
    principal = await resolve_principal(session, bearer=bearer, settings=settings, tokens=auth.tokens)
    if principal is None and bearer is not None:
        await count_admin_failure(request)
    if principal is not None and principal.kind == "api_key":
        await session.commit()
    return principal


async def get_principal(principal: Annotated[Principal | None, Depends(get_optional_principal)]) -> Principal:
    """The caller; 401 (with ``WWW-Authenticate: Bearer``) when the credential is missing or invalid."""
    if principal is None:
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid or missing credentials",
                            headers={"WWW-Authenticate": "Bearer"})
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


class Requires:
    """Declares the role a route needs: ``dependencies=[Depends(Requires("owner"))]`` on the route or
    its router (the last declaration wins). ``people_only`` refuses API keys. The check itself is
    :func:`get_access` (run by every tenant dependency), which reads this declaration from the route."""

    def __init__(self, role: Role, *, people_only: bool = False) -> None:
        if role not in ROLES:
            raise ValueError(f"unknown role {role!r}; one of {', '.join(ROLES)}")
        self.role: Role = role
        self.people_only = people_only

    async def __call__(self, access: AccessDep) -> Access:
        return access

    def __repr__(self) -> str:
        return f"Requires({self.role!r}, people_only={self.people_only})"


def route_requirement(route: Any, path_params: dict[str, Any]) -> tuple[Role, bool]:
    """``(role, people_only)`` a route requires: its last ``Requires`` dependency (route, router or
    include level), else ``api.auth.default_need`` by its ``{tenant}``/``{company}`` path parameters."""
    declared = [d.dependency for d in getattr(route, "dependencies", None) or []
                if isinstance(getattr(d, "dependency", None), Requires)]
    if declared:
        return declared[-1].role, declared[-1].people_only
    return default_need(has_tenant="tenant" in path_params, has_company="company" in path_params), False


def _matched_route(request: Request) -> Any:
    # FastAPI >= 0.12x keeps include-time dependencies on the "effective route context" of the match;
    # older versions copy them into the route object itself.
    context = request.scope.get("fastapi", {}).get("effective_route_context")
    return context if context is not None else request.scope.get("route")


async def get_access(request: Request, principal: PrincipalDep, session: SessionDep) -> Access:
    """The one access check of the API (``api.auth.authorize``) for the request's route and its
    ``{tenant}``/``{company}`` path parameters: 401 without a principal, 404 for a tenant or company
    that is foreign to the principal, 403 for a role below the route's requirement."""
    params = request.path_params
    need, people_only = route_requirement(_matched_route(request), params)
    try:
        return await authorize(session, principal, tenant_slug=params.get("tenant"),
                               company_slug=params.get("company"), need=need, people_only=people_only)
    except Forbidden as exc:
        raise HTTPException(status.HTTP_403_FORBIDDEN, str(exc)) from None


AccessDep = Annotated[Access, Depends(get_access)]


async def require_admin(access: AccessDep) -> None:
    """Router-level guard of the API under ``/api/v1`` (kept under its old name): a signed-in
    principal with the route's role (:func:`get_access`)."""


AdminDep = Depends(require_admin)


async def get_tenant_scope(
    tenant: Annotated[str, Path(description="Tenant slug")], access: AccessDep
) -> TenantScope:
    """The ``{tenant}`` path parameter as a ``TenantScope``, after :func:`get_access` (404 for an
    unknown or foreign tenant, 403 for a lacking role)."""
    assert access.tenant is not None and access.tenant.slug == tenant
    return TenantScope(access.tenant.id)


TenantScopeDep = Annotated[TenantScope, Depends(get_tenant_scope)]


async def get_tenant_company(
    company: Annotated[str, Path(description="Company slug")], scope: TenantScopeDep, access: AccessDep
) -> Company:
    """The ``{company}`` path parameter as a company of the scoped tenant the principal may act on;
    404 otherwise (a manager sees only the companies assigned to them)."""
    assert access.company is not None and access.company.tenant_id == scope.tenant_id
    return access.company


CompanyDep = Annotated[Company, Depends(get_tenant_company)]


async def get_public_company(
    company: Annotated[str, Path(description="Company slug")], session: SessionDep
) -> Company:
    """The ``{company}`` path parameter of public routes (web chat); 404 for an unknown slug."""
    return await company_by_slug(session, company)


PublicCompanyDep = Annotated[Company, Depends(get_public_company)]
