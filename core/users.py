"""People and their rights: users, tenant owners, company managers and tenant API keys.

Only database operations live here; HTTP (tokens, e-mails, rate limits) is ``api.auth*``. E-mail
addresses are compared lower-cased. Every function flushes and leaves the commit to the caller.
"""

from __future__ import annotations

import re
import uuid

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core.accounts import ValidationError
from core.models import ApiKey, Company, CompanyManager, Conversation, Tenant, TenantOwner, User
from core.security import new_token, token_hash
from core.tenancy import NotFound, TenantScope
from core.timeutil import utcnow

# Deliberately loose (RFC 5322 is not a regex): one @, no spaces, a dot in the domain.
_EMAIL_RE = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
API_KEY_PREFIX = "cc_"
API_KEY_SHOWN_PREFIX = 10


def normalize_email(email: str) -> str:
    """``email`` stripped and lower-cased; raises ``ValidationError`` when it is not an address."""
    value = email.strip().lower()
    if len(value) > 320 or not _EMAIL_RE.match(value):
        raise ValidationError(f"email {email!r} is not an e-mail address")
    return value


async def user_by_email(session: AsyncSession, email: str) -> User | None:
    """The user with this address (any case), or ``None``."""
    try:
        value = normalize_email(email)
    except ValidationError:
        return None
    return (await session.execute(select(User).where(User.email == value))).scalar_one_or_none()


async def create_user(
    session: AsyncSession, *, email: str, password_hash: str | None, name: str | None = None,
    verified: bool = False, platform_admin: bool = False,
) -> User:
    """Create a user. Raises ``ValidationError`` for a bad or already registered address."""
    value = normalize_email(email)
    if await user_by_email(session, value) is not None:
        raise ValidationError(f"email {value!r} is already registered")
    user = User(email=value, name=(name or "").strip() or None, password_hash=password_hash,
                email_verified_at=utcnow() if verified else None, is_platform_admin=platform_admin,
                is_active=True)
    session.add(user)
    try:
        await session.flush()
    except IntegrityError as exc:  # a concurrent sign-up with the same address
        raise ValidationError(f"email {value!r} is already registered") from exc
    return user


async def add_owner(session: AsyncSession, *, tenant: Tenant, user: User) -> None:
    """Make ``user`` an owner of ``tenant`` (no-op when already one)."""
    exists = (await session.execute(select(TenantOwner.id).where(
        TenantOwner.tenant_id == tenant.id, TenantOwner.user_id == user.id))).first()
    if not exists:
        session.add(TenantOwner(tenant_id=tenant.id, user_id=user.id))
        await session.flush()


async def owned_tenant_ids(session: AsyncSession, user_id: uuid.UUID) -> frozenset[uuid.UUID]:
    """Ids of the tenants ``user_id`` owns."""
    rows = await session.execute(select(TenantOwner.tenant_id).where(TenantOwner.user_id == user_id))
    return frozenset(rows.scalars())


async def managed_companies(session: AsyncSession, user_id: uuid.UUID) -> dict[uuid.UUID, uuid.UUID]:
    """``{company_id: tenant_id}`` of the companies ``user_id`` manages."""
    rows = await session.execute(
        select(CompanyManager.company_id, CompanyManager.tenant_id).where(CompanyManager.user_id == user_id))
    return {company_id: tenant_id for company_id, tenant_id in rows.all()}


async def assign_manager(session: AsyncSession, *, company: Company, user: User,
                         assigned_by: uuid.UUID | None) -> CompanyManager:
    """Make ``user`` the manager of ``company``. Raises ``ValidationError`` when the company already
    has another manager (unassign first; the database enforces one manager per company)."""
    current = (await session.execute(
        select(CompanyManager).where(CompanyManager.company_id == company.id))).scalar_one_or_none()
    if current is not None:
        if current.user_id == user.id:
            return current
        raise ValidationError(f"company {company.slug!r} already has a manager; unassign them first")
    row = CompanyManager(tenant_id=company.tenant_id, company_id=company.id, user_id=user.id,
                         assigned_by=assigned_by)
    session.add(row)
    try:
        await session.flush()
    except IntegrityError as exc:  # a concurrent assignment won
        raise ValidationError(f"company {company.slug!r} already has a manager; unassign them first") from exc
    return row


async def unassign_manager(session: AsyncSession, *, company: Company) -> bool:
    """Remove the company's manager; whether there was one. The company's conversations assigned to
    that manager become unassigned (a manager is assigned only conversations of companies they
    manage), unless the person also owns the tenant or is a platform admin."""
    current = (await session.execute(
        select(CompanyManager).where(CompanyManager.company_id == company.id))).scalar_one_or_none()
    if current is None:
        return False
    user_id = current.user_id
    await session.delete(current)
    await session.flush()
    if not await may_be_assigned(session, company=company, user_id=user_id):
        await session.execute(
            update(Conversation)
            .where(Conversation.tenant_id == company.tenant_id, Conversation.company_id == company.id,
                   Conversation.assignee_user_id == user_id)
            .values(assignee_user_id=None, updated_at=Conversation.updated_at)  # not "new activity"
            .execution_options(synchronize_session=False))
        await session.flush()
    return True


async def may_be_assigned(session: AsyncSession, *, company: Company, user_id: uuid.UUID) -> bool:
    """Whether ``user_id`` may be assigned a conversation of ``company``: an active user who manages
    the company, owns its tenant, or is a platform admin."""
    user = await session.get(User, user_id)
    if user is None or not user.is_active:
        return False
    if user.is_platform_admin:
        return True
    owner = (await session.execute(select(TenantOwner.id).where(
        TenantOwner.tenant_id == company.tenant_id, TenantOwner.user_id == user_id))).first()
    manager = (await session.execute(select(CompanyManager.id).where(
        CompanyManager.company_id == company.id, CompanyManager.user_id == user_id))).first()
    return owner is not None or manager is not None


async def company_managers(session: AsyncSession, scope: TenantScope) -> list[tuple[Company, User]]:
    """The tenant's companies that have a manager, with that manager, in company order."""
    rows = await session.execute(
        select(Company, User)
        .join(CompanyManager, CompanyManager.company_id == Company.id)
        .join(User, User.id == CompanyManager.user_id)
        .where(Company.tenant_id == scope.tenant_id, CompanyManager.tenant_id == scope.tenant_id)
        .order_by(Company.human_id))
    return [(c, u) for c, u in rows.all()]


async def create_api_key(session: AsyncSession, *, scope: TenantScope, name: str,
                         created_by: uuid.UUID | None) -> tuple[ApiKey, str]:
    """A new API key of the tenant: ``(row, key)``. ``key`` (``cc_`` + 43 URL-safe characters,
    256 random bits) is returned only now; the row keeps its SHA-256 and first 10 characters."""
    clean = name.strip()
    if not clean or len(clean) > 200:
        raise ValidationError("name must be 1-200 characters")
    key = API_KEY_PREFIX + new_token(32)
    row = ApiKey(tenant_id=scope.tenant_id, name=clean, prefix=key[:API_KEY_SHOWN_PREFIX], key_hash=token_hash(key),
                 created_by=created_by)
    session.add(row)
    await session.flush()
    return row, key


async def api_key_by_secret(session: AsyncSession, key: str) -> ApiKey | None:
    """The active (not revoked) key whose SHA-256 matches ``key``; ``None`` otherwise."""
    if not key.startswith(API_KEY_PREFIX) or len(key) > 200:
        return None
    row = (await session.execute(select(ApiKey).where(ApiKey.key_hash == token_hash(key)))).scalar_one_or_none()
    if row is None or row.revoked_at is not None:
        return None
    return row


async def revoke_api_key(session: AsyncSession, *, scope: TenantScope, key_id: uuid.UUID) -> ApiKey:
    """Revoke one of the tenant's keys (idempotent). Raises ``NotFound`` for a key of another tenant."""
    row = await scope.get(session, ApiKey, key_id)
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        await session.flush()
    return row


async def tenant_of(session: AsyncSession, tenant_id: uuid.UUID) -> Tenant:
    """The tenant row; raises ``NotFound``."""
    row = await session.get(Tenant, tenant_id)
    if row is None:
        raise NotFound(f"tenant {tenant_id} not found")
    return row
