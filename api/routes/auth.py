"""Accounts: sign-up, e-mail verification, sign-in (password or magic link), token refresh, logout,
password reset and ``me`` under ``/api/v1/auth`` (public except ``me``).

Answers never tell whether an address is registered: magic-link, reset and resend requests always
answer 202, and a wrong address or password is the same 401. Failed sign-ins are rate-limited per
account and per client address (``api.auth_limits``: 429 with ``Retry-After``). Tokens: see
``api.auth_tokens``.
"""

from __future__ import annotations

from typing import Any

import structlog
from fastapi import APIRouter, HTTPException, Request, Response, status
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from api.auth_schemas import (
    EmailIn,
    LoginIn,
    MeOut,
    PasswordResetIn,
    RefreshIn,
    SignupIn,
    SignupOut,
    TokenIn,
    TokensOut,
    VerifyIn,
)
from api.auth_services import AuthServices
from api.auth_tokens import IssuedTokens, RefreshRefused
from api.deps import AuthDep, PrincipalDep, SessionDep
from api.mailer import MailError
from core.accounts import ValidationError, create_tenant
from core.models import Company, Tenant, User
from core.passwords import check_password_rules, hash_password, verify_password
from core.timeutil import utcnow
from core.users import add_owner, create_user, normalize_email, user_by_email

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _tokens_out(tokens: IssuedTokens) -> TokensOut:
    return TokensOut(access_token=tokens.access_token, expires_in=tokens.expires_in,
                     refresh_token=tokens.refresh_token)


def _too_many(wait: int) -> HTTPException:
    return HTTPException(status.HTTP_429_TOO_MANY_REQUESTS, "too many attempts; try again later",
                         headers={"Retry-After": str(wait)})


async def _mail_allowed(auth: AuthServices, request: Request) -> None:
    wait = await auth.limiter.mail_wait(address=_address(request))
    if wait:
        raise _too_many(wait)


async def _send(auth: AuthServices, *, to: str, subject: str, text: str) -> bool:
    """Send one mail; whether it went out (failures are logged without the secret)."""
    if auth.mailer is None:
        log.warning("account_mail_not_sent", reason="smtp not configured", subject=subject)
        return False
    try:
        await auth.mailer.send(to=to, subject=subject, text=text)
    except MailError as exc:
        log.warning("account_mail_failed", subject=subject, error=str(exc))
        return False
    return True


def _base(auth: AuthServices) -> str:
    return auth.settings.public_base_url.rstrip("/")


async def send_verification(auth: AuthServices, session: AsyncSession, user: User) -> bool:
    """Issue a new 6-digit code for ``user`` (committed) and mail it."""
    code = await auth.tokens.issue_code(session, user, "verify")
    await session.commit()
    minutes = auth.settings.auth_code_minutes
    return await _send(auth, to=user.email, subject=f"Your chatcommerce code: {code}",
                       text=f"Your verification code is {code}.\n\nIt is valid for {minutes} minutes "
                            f"and can be used once. POST it to {_base(auth)}/api/v1/auth/verify.\n")


async def send_magic_link(auth: AuthServices, session: AsyncSession, user: User, *,
                          invited_to: str | None = None) -> bool:
    """Issue a sign-in link for ``user`` (committed) and mail it (as an invitation when ``invited_to``)."""
    token = await auth.tokens.issue_code(session, user, "magic")
    await session.commit()
    intro = (f"You were invited to manage {invited_to} on chatcommerce.\n\n" if invited_to else "")
    return await _send(
        auth, to=user.email, subject="Sign in to chatcommerce" if not invited_to else "Your chatcommerce invitation",
        text=f"{intro}Sign in with this link (valid {auth.settings.auth_code_minutes} minutes, once):\n"
             f"{_base(auth)}/api/v1/auth/magic-link/consume?token={token}\n\n"
             f"(POST {{\"token\": \"{token}\"}} to that address without the query.)\n")


@router.post("/signup", status_code=status.HTTP_201_CREATED, response_model=SignupOut)
async def signup(body: SignupIn, request: Request, session: SessionDep, auth: AuthDep) -> SignupOut:
    """Create a user, their tenant (the user is its owner) and mail a 6-digit verification code.
    The user can sign in once the code is confirmed at ``/auth/verify``. 422 for a bad or taken
    address, slug or a password under 10 characters; 429 when the address asked for too many mails."""
    problem = check_password_rules(body.password)
    if problem:
        raise ValidationError(problem)
    email = normalize_email(body.email)
    await _mail_allowed(auth, request)
    user = await create_user(session, email=email, password_hash=await hash_password(body.password), name=body.name)
    tenant = await create_tenant(session, name=body.tenant_name, slug=body.tenant_slug)
    await add_owner(session, tenant=tenant, user=user)
    await session.commit()
    sent = await send_verification(auth, session, user)
    return SignupOut(user_id=user.id, email=user.email, verification_sent=sent,
                     tenant={"id": str(tenant.id), "slug": tenant.slug, "name": tenant.name})


@router.post("/verify")
async def verify(body: VerifyIn, session: SessionDep, auth: AuthDep) -> dict[str, bool]:
    """Confirm the address with the mailed code (single use, expires; 5 wrong codes spend it).
    400 for a wrong, spent or expired code or an unknown address (the same answer)."""
    user = await user_by_email(session, body.email)
    ok = user is not None and await auth.tokens.consume_verify_code(session, user, body.code)
    if ok and user is not None and user.email_verified_at is None:
        user.email_verified_at = utcnow()
    await session.commit()
    if not ok:
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "invalid or expired code")
    return {"verified": True}


@router.post("/verify/resend", status_code=status.HTTP_202_ACCEPTED)
async def resend_verification(body: EmailIn, request: Request, session: SessionDep, auth: AuthDep) -> dict[str, str]:
    """Mail a new verification code to an unverified address (always 202)."""
    await _mail_allowed(auth, request)
    user = await user_by_email(session, body.email)
    if user is not None and user.is_active and user.email_verified_at is None:
        await send_verification(auth, session, user)
    return {"status": "accepted"}


@router.post("/login", response_model=TokensOut)
async def login(body: LoginIn, request: Request, session: SessionDep, auth: AuthDep) -> TokensOut:
    """Sign in with e-mail and password: an access token and a refresh token. 401 for a wrong
    address or password (the same answer), 403 before the address is verified, 429 with
    ``Retry-After`` after too many failures for the account or from the client address."""
    email = body.email.strip().lower()
    address = _address(request)
    wait = await auth.limiter.sign_in_wait(email=email, address=address)
    if wait:
        raise _too_many(wait)
    user = await user_by_email(session, email)
    valid = await verify_password(body.password, user.password_hash if user else None)
    if not valid or user is None or not user.is_active:
        await auth.limiter.failed_sign_in(email=email, address=address)
        log.info("sign_in_failed", address=address)
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "wrong e-mail or password")
    if user.email_verified_at is None:
        raise HTTPException(status.HTTP_403_FORBIDDEN, "verify your e-mail address first (/auth/verify)")
    tokens = await auth.tokens.sign_in(session, user)
    await session.commit()
    return _tokens_out(tokens)


@router.post("/refresh", response_model=TokensOut)
async def refresh(body: RefreshIn, session: SessionDep, auth: AuthDep) -> TokensOut:
    """Exchange a refresh token for a new pair; the old one is spent. 401 for an unknown, expired or
    revoked token; presenting a spent token again revokes every token of its sign-in (reuse detection)."""
    try:
        user_id, tokens = await auth.tokens.rotate(session, body.refresh_token)
    except RefreshRefused as exc:
        await session.commit()  # keeps the family revocation of a reuse
        if exc.reason in ("reused", "revoked"):
            log.warning("refresh_token_reuse", reason=exc.reason)
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, f"refresh token refused ({exc.reason})",
                            headers={"WWW-Authenticate": "Bearer"}) from None
    user = await session.get(User, user_id)
    if user is None or not user.is_active:
        await session.rollback()
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "refresh token refused (user)")
    await session.commit()
    return _tokens_out(tokens)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(body: RefreshIn, session: SessionDep, auth: AuthDep) -> Response:
    """Revoke the refresh token's sign-in (every token of its family). Access tokens already issued
    stay valid until they expire (minutes)."""
    await auth.tokens.sign_out(session, body.refresh_token)
    await session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/magic-link", status_code=status.HTTP_202_ACCEPTED)
async def request_magic_link(body: EmailIn, request: Request, session: SessionDep, auth: AuthDep) -> dict[str, str]:
    """Mail a single-use sign-in link to a registered address (always 202)."""
    await _mail_allowed(auth, request)
    user = await user_by_email(session, body.email)
    if user is not None and user.is_active:
        await send_magic_link(auth, session, user)
    return {"status": "accepted"}


@router.post("/magic-link/consume", response_model=TokensOut)
async def consume_magic_link(body: TokenIn, session: SessionDep, auth: AuthDep) -> TokensOut:
    """Sign in with a magic link's token (it also confirms the address). 400 when the token is
    unknown, spent or expired."""
    user_id = await auth.tokens.consume_link(session, "magic", body.token)
    user = await session.get(User, user_id) if user_id else None
    if user is None or not user.is_active:
        await session.commit()
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "invalid or expired link")
    if user.email_verified_at is None:
        user.email_verified_at = utcnow()
    tokens = await auth.tokens.sign_in(session, user)
    await session.commit()
    return _tokens_out(tokens)


@router.post("/password-reset", status_code=status.HTTP_202_ACCEPTED)
async def request_password_reset(body: EmailIn, request: Request, session: SessionDep,
                                 auth: AuthDep) -> dict[str, str]:
    """Mail a single-use password-reset link to a registered address (always 202)."""
    await _mail_allowed(auth, request)
    user = await user_by_email(session, body.email)
    if user is not None and user.is_active:
        token = await auth.tokens.issue_code(session, user, "reset")
        await session.commit()
        await _send(auth, to=user.email, subject="Reset your chatcommerce password",
                    text=f"Set a new password with this token (valid {auth.settings.password_reset_minutes} "
                         f"minutes, once):\n{token}\n\nPOST {{\"token\": ..., \"password\": ...}} to "
                         f"{_base(auth)}/api/v1/auth/password-reset/confirm\n\n"
                         "If you did not ask for this, ignore this mail.\n")
    return {"status": "accepted"}


@router.post("/password-reset/confirm", status_code=status.HTTP_204_NO_CONTENT)
async def confirm_password_reset(body: PasswordResetIn, session: SessionDep, auth: AuthDep) -> Response:
    """Set a new password with a reset token; every existing sign-in (refresh token) of the user is
    revoked and the address counts as verified. 400 for a bad token, 422 for a short password."""
    problem = check_password_rules(body.password)
    if problem:
        raise ValidationError(problem)
    user_id = await auth.tokens.consume_link(session, "reset", body.token)
    user = await session.get(User, user_id) if user_id else None
    if user is None or not user.is_active:
        await session.commit()
        raise HTTPException(status.HTTP_400_BAD_REQUEST, "invalid or expired link")
    user.password_hash = await hash_password(body.password)
    if user.email_verified_at is None:
        user.email_verified_at = utcnow()
    await auth.tokens.revoke_user(session, user.id)
    await session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/me", response_model=MeOut)
async def me(principal: PrincipalDep, session: SessionDep) -> dict[str, Any]:
    """The caller and what they may see: tenants (with the role in each) and managed companies."""
    tenant_ids = principal.visible_tenant_ids()
    stmt = select(Tenant).order_by(Tenant.created_at)
    if tenant_ids is not None:
        stmt = stmt.where(Tenant.id.in_(tenant_ids))
    tenants = [{"slug": t.slug, "name": t.name, "role": principal.tenant_role(t.id)}
               for t in (await session.execute(stmt)).scalars()]
    companies: list[dict[str, Any]] = []
    if principal.manager_of:
        rows = await session.execute(select(Company).where(Company.id.in_(list(principal.manager_of)))
                                     .order_by(Company.slug))
        companies = [{"slug": c.slug, "name": c.name, "role": "manager"} for c in rows.scalars()]
    return {**principal.as_dict(), "tenants": tenants, "companies": companies}

