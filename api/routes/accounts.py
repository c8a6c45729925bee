"""People of a tenant: API keys and managers, and platform admins (``/api/v1``).

* ``/tenants/{tenant}/api-keys`` — an owner (a person, not another key) creates, lists and revokes
  the tenant's API keys; the key is shown once, at creation.
* ``/tenants/{tenant}/managers`` — an owner or the platform admin assigns a manager to one of the
  tenant's companies (a user who does not exist yet is created and invited by e-mail), lists and
  unassigns them. A company has at most one manager.
* ``/platform-admins`` — the platform admin (or the bootstrap admin token) makes a user an admin.

Rights are declared with ``Requires`` and checked by ``api.deps.get_access`` like every route.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, status

from api.auth_schemas import ApiKeyCreated, ApiKeyIn, ApiKeyOut, ManagerIn, ManagerOut, PlatformAdminIn
from api.deps import AccessDep, AdminDep, AuthDep, Requires, SessionDep, TenantScopeDep
from api.routes.auth import send_magic_link
from core.accounts import ValidationError
from core.models import ApiKey
from core.tenancy import NotFound
from core.users import (
    assign_manager,
    company_managers,
    create_api_key,
    create_user,
    revoke_api_key,
    unassign_manager,
    user_by_email,
)

router = APIRouter(prefix="/api/v1", tags=["accounts"], dependencies=[AdminDep])
_OWNER_PERSON = [Depends(Requires("owner", people_only=True))]

_KEYS = "/tenants/{tenant}/api-keys"
_MANAGERS = "/tenants/{tenant}/managers"


@router.post(_KEYS, status_code=status.HTTP_201_CREATED, response_model=ApiKeyCreated, dependencies=_OWNER_PERSON)
async def create_api_key_route(body: ApiKeyIn, scope: TenantScopeDep, session: SessionDep,
                               access: AccessDep) -> ApiKeyCreated:
    """A new API key (``Authorization: Bearer cc_...``) acting as an owner of this tenant. ``key``
    is in this answer only: store it now."""
    row, key = await create_api_key(session, scope=scope, name=body.name, created_by=access.principal.user_id)
    await session.commit()
    return ApiKeyCreated(**ApiKeyOut.model_validate(row).model_dump(), key=key)


@router.get(_KEYS, response_model=list[ApiKeyOut], dependencies=_OWNER_PERSON)
async def list_api_keys(scope: TenantScopeDep, session: SessionDep) -> list[ApiKey]:
    """The tenant's keys (revoked ones too), newest first, without their secret."""
    return list((await session.execute(scope.select(ApiKey).order_by(ApiKey.created_at.desc()))).scalars())


@router.delete(_KEYS + "/{key_id}", response_model=ApiKeyOut, dependencies=_OWNER_PERSON)
async def revoke_api_key_route(key_id: uuid.UUID, scope: TenantScopeDep, session: SessionDep) -> ApiKey:
    """Revoke a key: it is refused from now on (401). 404 for a key of another tenant."""
    row = await revoke_api_key(session, scope=scope, key_id=key_id)
    await session.commit()
    return row


@router.get(_MANAGERS, response_model=list[ManagerOut])
async def list_managers(scope: TenantScopeDep, session: SessionDep) -> list[ManagerOut]:
    """The tenant's companies that have a manager, with that manager."""
    return [ManagerOut(company=c.slug, user_id=u.id, email=u.email) for c, u in await company_managers(session, scope)]


@router.post(_MANAGERS, status_code=status.HTTP_201_CREATED, response_model=ManagerOut, dependencies=_OWNER_PERSON)
async def assign_manager_route(body: ManagerIn, scope: TenantScopeDep, session: SessionDep, access: AccessDep,
                               auth: AuthDep) -> ManagerOut:
    """Make the user with ``email`` the manager of ``company``; an unknown address gets a new user
    and an invitation mail with a sign-in link. 404 for a company of another tenant, 422 when the
    company already has another manager."""
    company = await scope.company(session, body.company)
    user = await user_by_email(session, body.email)
    invited = user is None
    if user is None:
        user = await create_user(session, email=body.email, password_hash=None)
    await assign_manager(session, company=company, user=user, assigned_by=access.principal.user_id)
    await session.commit()
    sent = await send_magic_link(auth, session, user, invited_to=company.name) if invited else False
    return ManagerOut(company=company.slug, user_id=user.id, email=user.email, invited=invited, invitation_sent=sent)


@router.delete(_MANAGERS + "/{company}", dependencies=_OWNER_PERSON)
async def unassign_manager_route(company: str, scope: TenantScopeDep, session: SessionDep) -> dict[str, object]:
    """Remove the company's manager (they lose access to it at once). 404 for a company of another
    tenant or one without a manager."""
    row = await scope.company(session, company)
    if not await unassign_manager(session, company=row):
        raise NotFound(f"company {company!r} has no manager")
    await session.commit()
    return {"company": row.slug, "manager": None}


@router.post("/platform-admins", dependencies=[Depends(Requires("admin", people_only=True))])
async def make_platform_admin(body: PlatformAdminIn, session: SessionDep) -> dict[str, object]:
    """Make an existing, verified user a platform admin (how the bootstrap admin token creates the
    first admin, after which the token can be switched off). 422 for an unknown or unverified user."""
    user = await user_by_email(session, body.email)
    if user is None or user.email_verified_at is None:
        raise ValidationError(f"no verified user with e-mail {body.email!r}")
    user.is_platform_admin = True
    await session.commit()
    return {"user_id": str(user.id), "email": user.email, "platform_admin": True}
