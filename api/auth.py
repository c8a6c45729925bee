"""Who is calling, and what they may do: the ``Principal`` and the one access check of the API.

A bearer credential becomes a ``Principal`` (:func:`resolve_principal`):

* ``cc_...`` — a tenant's API key: acts as an owner of that one tenant, but cannot manage API keys,
  managers or platform admins (those need a person);
* a JWT access token (``api.auth_tokens``) — a user: platform ``admin`` (``users.is_platform_admin``),
  ``owner`` of the tenants in ``tenant_owners``, ``manager`` of the companies in ``company_managers``;
* ``CHATCOMMERCE_ADMIN_TOKEN`` — the bootstrap platform admin, only when
  ``Settings.admin_token_accepted`` (demo mode, or ``CHATCOMMERCE_ADMIN_TOKEN_ENABLED=true``);
* the CLI run on the server without ``chatcommerce login`` is the ``operator`` (platform admin);
* a stream ticket (``?ticket=``, only on routes that accept one: the live events) — its user, narrowed
  to the manager role of the ticket's one company, and only while the user still has a role there
  (:func:`principal_of_ticket`).

:func:`authorize` is the single check every tenant route goes through (called from
``api.deps``: ``AdminDep``, ``TenantScopeDep``, ``CompanyDep``, ``Requires``). It reads the route's
``{tenant}`` and ``{company}`` path parameters and the role the route requires:

1. a tenant or company the principal has no role in is answered **404**, exactly like one that does
   not exist (existence is not revealed);
2. a role below the route's requirement is answered **403** (a manager on channel credentials);
3. the requirement is the last ``Requires(...)`` declared on the route or its router, else by path:
   ``manager`` under ``/companies/{company}``, ``owner`` under ``/tenants/{tenant}``, ``admin`` elsewhere.

Roles, lowest first: ``authenticated`` (anyone signed in), ``manager``, ``owner``, ``admin``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Literal

from sqlalchemy.ext.asyncio import AsyncSession

from api.auth_tokens import TokenService
from core.models import Company, Tenant, User
from core.security import tokens_match
from core.settings import Settings
from core.tenancy import NotFound, TenantScope, company_by_slug, tenant_by_slug
from core.timeutil import utcnow
from core.users import api_key_by_secret, managed_companies, owned_tenant_ids

Role = Literal["authenticated", "manager", "owner", "admin"]
ROLES: tuple[Role, ...] = ("authenticated", "manager", "owner", "admin")
LEVEL: dict[str, int] = {role: i for i, role in enumerate(ROLES)}
PrincipalKind = Literal["operator", "admin_token", "user", "api_key"]


class Forbidden(PermissionError):
    """The principal sees the tenant/company but its role lacks the right (HTTP 403)."""


@dataclass(frozen=True, kw_only=True)
class Principal:
    """The caller. ``owner_of``: tenant ids; ``manager_of``: ``{company_id: tenant_id}``;
    ``api_key_tenant``: the tenant of an API key."""

    kind: PrincipalKind
    user_id: uuid.UUID | None = None
    email: str | None = None
    platform_admin: bool = False
    owner_of: frozenset[uuid.UUID] = frozenset()
    manager_of: Mapping[uuid.UUID, uuid.UUID] = field(default_factory=dict)
    api_key_id: uuid.UUID | None = None
    api_key_tenant: uuid.UUID | None = None

    @property
    def is_person(self) -> bool:
        """Everything but an API key (a script acting for a tenant)."""
        return self.kind != "api_key"

    def tenant_role(self, tenant_id: uuid.UUID) -> Role | None:
        """The principal's highest role in the tenant, ``None`` when it has none (the tenant is hidden)."""
        if self.platform_admin:
            return "admin"
        if tenant_id in self.owner_of or tenant_id == self.api_key_tenant:
            return "owner"
        if tenant_id in self.manager_of.values():
            return "manager"
        return None

    def company_role(self, company: Company) -> Role | None:
        """The role for one company: a manager has one only for the companies assigned to them."""
        role = self.tenant_role(company.tenant_id)
        if role == "manager" and company.id not in self.manager_of:
            return None
        return role

    def visible_company_ids(self, tenant_id: uuid.UUID) -> frozenset[uuid.UUID] | None:
        """The companies of the tenant the principal may see; ``None`` means all of them."""
        role = self.tenant_role(tenant_id)
        if role in ("owner", "admin"):
            return None
        return frozenset(c for c, t in self.manager_of.items() if t == tenant_id)

    def visible_tenant_ids(self) -> frozenset[uuid.UUID] | None:
        """The tenants the principal may see; ``None`` means all (platform admin)."""
        if self.platform_admin:
            return None
        ids = set(self.owner_of) | set(self.manager_of.values())
        if self.api_key_tenant is not None:
            ids.add(self.api_key_tenant)
        return frozenset(ids)

    def as_dict(self) -> dict[str, Any]:
        """JSON shape for ``/auth/me`` and ``chatcommerce whoami``."""
        return {"kind": self.kind, "user_id": str(self.user_id) if self.user_id else None, "email": self.email,
                "platform_admin": self.platform_admin, "owner_of": sorted(str(t) for t in self.owner_of),
                "manager_of": sorted(str(c) for c in self.manager_of),
                "api_key_tenant": str(self.api_key_tenant) if self.api_key_tenant else None}


LAST_USED_RESOLUTION = timedelta(minutes=1)
OPERATOR = Principal(kind="operator", platform_admin=True)
BOOTSTRAP_ADMIN = Principal(kind="admin_token", platform_admin=True)


async def principal_of_user(session: AsyncSession, user: User) -> Principal:
    """The principal of a signed-in user, with its roles read now."""
    return Principal(kind="user", user_id=user.id, email=user.email, platform_admin=user.is_platform_admin,
                     owner_of=await owned_tenant_ids(session, user.id),
                     manager_of=await managed_companies(session, user.id))


async def resolve_principal(session: AsyncSession, *, bearer: str | None, settings: Settings,
                            tokens: TokenService) -> Principal | None:
    """The principal of a bearer credential, ``None`` when it is missing, wrong, expired, revoked, or
    names an inactive or unverified user. Updates an API key's ``last_used_at`` (to the minute; the
    caller commits)."""
    if not bearer:
        return None
    if settings.admin_token_accepted and settings.admin_token is not None:
        if tokens_match(bearer, settings.admin_token.get_secret_value()):
            return BOOTSTRAP_ADMIN
    if bearer.startswith("cc_"):
        key = await api_key_by_secret(session, bearer)
        if key is None:
            return None
        now = utcnow()
        if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
            key.last_used_at = now  # at most one write a minute per key
            await session.flush()
        return Principal(kind="api_key", api_key_id=key.id, api_key_tenant=key.tenant_id)
    user_id = tokens.user_of_access_token(bearer)
    if user_id is None:
        return None
    user = await session.get(User, user_id)
    if user is None or not user.is_active or user.email_verified_at is None:
        return None
    return await principal_of_user(session, user)


async def principal_of_ticket(session: AsyncSession, *, ticket: str, tokens: TokenService) -> Principal | None:
    """The principal of a stream ticket (``TokenService.read_stream_ticket``): the ticket's user as
    the manager of the ticket's company and nothing else, so the ticket opens that company only
    (another company, or another tenant's, is "not found"). ``None`` when the ticket is invalid or
    expired, the user inactive or unverified, or no longer entitled to the company."""
    claims = tokens.read_stream_ticket(ticket)
    if claims is None:
        return None
    user = await session.get(User, claims.user_id)
    company = await session.get(Company, claims.company_id)
    if user is None or not user.is_active or user.email_verified_at is None:
        return None
    if company is None or company.tenant_id != claims.tenant_id:
        return None
    if (await principal_of_user(session, user)).company_role(company) is None:
        return None
    return Principal(kind="user", user_id=user.id, email=user.email, manager_of={company.id: company.tenant_id})


@dataclass(frozen=True, slots=True)
class Access:
    """The outcome of :func:`authorize`: the path's tenant and company (when the path has them) and
    the principal's role there."""

    principal: Principal
    role: Role
    tenant: Tenant | None = None
    company: Company | None = None


def check_role(principal: Principal, role: Role, need: Role, *, people_only: bool = False) -> None:
    """Raise ``Forbidden`` when ``role`` is below ``need`` or when ``people_only`` and an API key calls."""
    if LEVEL[role] < LEVEL[need]:
        raise Forbidden(f"this needs the {need} role")
    if people_only and not principal.is_person:
        raise Forbidden("API keys cannot do this; sign in as a person")


async def authorize(session: AsyncSession, principal: Principal, *, tenant_slug: str | None,
                    company_slug: str | None, need: Role, people_only: bool = False) -> Access:
    """Check ``principal`` for a route on ``tenant_slug``/``company_slug`` requiring ``need``.

    Raises ``NotFound`` (404) for a tenant/company that does not exist or where the principal has no
    role, ``Forbidden`` (403) for a role below ``need``. A company without a tenant slug is looked up
    by its global slug and checked in its tenant. Shared by the HTTP dependencies and the CLI.
    """
    if tenant_slug is None and company_slug is not None:  # a path with a global company slug only
        by_slug = await company_by_slug(session, company_slug)
        owner = await session.get(Tenant, by_slug.tenant_id)
        tenant_slug = owner.slug if owner is not None else None
        if tenant_slug is None:
            raise NotFound(f"company {company_slug!r} not found")
    if tenant_slug is None:
        role: Role = "admin" if principal.platform_admin else "authenticated"
        check_role(principal, role, need, people_only=people_only)
        return Access(principal=principal, role=role)
    tenant = await tenant_by_slug(session, tenant_slug)
    tenant_role = principal.tenant_role(tenant.id)
    if tenant_role is None:
        raise NotFound(f"tenant {tenant_slug!r} not found")
    company = None
    role = tenant_role
    if company_slug is not None:
        company = await TenantScope(tenant.id).company(session, company_slug)
        company_role = principal.company_role(company)
        if company_role is None:
            raise NotFound(f"company {company_slug!r} not found")
        role = company_role
    check_role(principal, role, need, people_only=people_only)
    return Access(principal=principal, role=role, tenant=tenant, company=company)


def default_need(*, has_tenant: bool, has_company: bool) -> Role:
    """The requirement of a route that declares none: ``manager`` for company routes, ``owner`` for
    other tenant routes, ``admin`` for the rest."""
    if has_company:
        return "manager"
    return "owner" if has_tenant else "admin"
