"""Sign-in secrets: JWT access tokens, rotating refresh tokens and single-use e-mailed codes.

* Access tokens are JWTs (PyJWT, HS256, RFC 7519) with ``sub`` (user id), ``typ=access``, ``iat``
  and ``exp`` (``CHATCOMMERCE_ACCESS_TOKEN_MINUTES``, 15 by default). The key is HMAC-SHA256 of the
  process's key material (``core.security.key_material``) with a label, so it is not the key that
  encrypts credentials.
* Refresh tokens are 256-bit random strings; only their SHA-256 is stored, with a ``family_id``
  shared by every token rotated from one sign-in. Each is single-use: exchanging it spends it and
  issues the next one. Presenting a spent (or revoked) token again is treated as theft and revokes
  the whole family (OAuth 2.0 Security BCP, RFC 9700 §4.14.2 "refresh token rotation").
* Stream tickets are JWTs too, under their own derived key (an access token is no ticket, nor the
  reverse): ``typ=stream``, ``sub`` (user id), ``ten`` and ``com`` (tenant and company ids), valid
  ``STREAM_TICKET_SECONDS``. A browser's ``EventSource`` cannot send an ``Authorization`` header, so
  it opens ``.../events?ticket=...`` with one (``api.routes.alerts``); nothing stores them.
* E-mailed secrets (``auth_codes``): a 6-digit verification code (5 wrong tries spend it) or a
  256-bit magic-link / password-reset token; stored as HMAC-SHA256 under a key derived the same way,
  single-use, expiring.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.models import AuthCode, RefreshToken, User
from core.security import new_token, token_hash
from core.timeutil import utcnow

CODE_PURPOSES = ("verify", "magic", "reset")
MAX_CODE_ATTEMPTS = 5
_ALGORITHM = "HS256"
STREAM_TICKET_SECONDS = 60


class RefreshRefused(Exception):
    """The refresh token was refused: ``reason`` is ``unknown``, ``expired``, ``revoked`` or ``reused``
    (a spent token presented again: its whole family is now revoked; the caller must commit)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class IssuedTokens:
    """What a sign-in answers: the JWT, its lifetime in seconds, and the next refresh token."""

    access_token: str
    expires_in: int
    refresh_token: str


@dataclass(frozen=True, slots=True)
class StreamTicket:
    """What a valid stream ticket names: the user and the one company (of ``tenant_id``) it opens."""

    user_id: uuid.UUID
    tenant_id: uuid.UUID
    company_id: uuid.UUID


def _derive(key_material: str, label: str) -> bytes:
    return hmac.new(key_material.encode(), label.encode(), hashlib.sha256).digest()


class TokenService:
    """Issues and checks the three kinds of secret above. Keyword-only; lifetimes in minutes/days."""

    def __init__(self, *, key_material: str, access_minutes: int, refresh_days: int, code_minutes: int,
                 reset_minutes: int) -> None:
        self._jwt_key = _derive(key_material, "chatcommerce.jwt-access")
        self._code_key = _derive(key_material, "chatcommerce.auth-codes")
        self._ticket_key = _derive(key_material, "chatcommerce.stream-ticket")
        self.ticket_ttl = timedelta(seconds=STREAM_TICKET_SECONDS)
        self.access_ttl = timedelta(minutes=access_minutes)
        self.refresh_ttl = timedelta(days=refresh_days)
        self.code_ttl = timedelta(minutes=code_minutes)
        self.reset_ttl = timedelta(minutes=reset_minutes)

    # -- access tokens --------------------------------------------------------------------------

    def access_token(self, user_id: uuid.UUID) -> str:
        """A signed JWT for ``user_id`` valid for ``access_ttl``."""
        now = utcnow()
        claims = {"sub": str(user_id), "typ": "access", "iat": now, "exp": now + self.access_ttl,
                  "jti": secrets.token_hex(8)}
        return jwt.encode(claims, self._jwt_key, algorithm=_ALGORITHM)

    def user_of_access_token(self, token: str) -> uuid.UUID | None:
        """The user id of a valid, unexpired access token made by this server; ``None`` otherwise
        (bad signature, other algorithm, expired, malformed: never raises)."""
        try:
            claims = jwt.decode(token, self._jwt_key, algorithms=[_ALGORITHM], options={"require": ["exp", "sub"]})
            if claims.get("typ") != "access":
                return None
            return uuid.UUID(str(claims["sub"]))
        except (jwt.PyJWTError, ValueError):
            return None

    # -- stream tickets -------------------------------------------------------------------------

    def stream_ticket(self, *, user_id: uuid.UUID, tenant_id: uuid.UUID, company_id: uuid.UUID,
                      issued_at: datetime | None = None) -> str:
        """A signed ticket opening the live events of ``company_id`` for ``user_id``, valid
        ``ticket_ttl`` (60 s) from ``issued_at`` (aware UTC; default now)."""
        now = issued_at or utcnow()
        claims = {"sub": str(user_id), "ten": str(tenant_id), "com": str(company_id), "typ": "stream",
                  "iat": now, "exp": now + self.ticket_ttl, "jti": secrets.token_hex(8)}
        return jwt.encode(claims, self._ticket_key, algorithm=_ALGORITHM)

    def read_stream_ticket(self, ticket: str) -> StreamTicket | None:
        """The user and company of a valid, unexpired ticket made by this server; ``None`` otherwise
        (bad signature, an access token, expired, malformed: never raises)."""
        try:
            claims = jwt.decode(ticket, self._ticket_key, algorithms=[_ALGORITHM],
                                options={"require": ["exp", "sub", "ten", "com"]})
            if claims.get("typ") != "stream":
                return None
            return StreamTicket(user_id=uuid.UUID(str(claims["sub"])), tenant_id=uuid.UUID(str(claims["ten"])),
                                company_id=uuid.UUID(str(claims["com"])))
        except (jwt.PyJWTError, ValueError):
            return None

    # -- refresh tokens -------------------------------------------------------------------------

    async def sign_in(self, session: AsyncSession, user: User) -> IssuedTokens:
        """Start a new refresh family for ``user``: an access token and its first refresh token."""
        refresh = await self._new_refresh(session, user_id=user.id, family_id=uuid.uuid4())
        return IssuedTokens(access_token=self.access_token(user.id), expires_in=int(self.access_ttl.total_seconds()),
                            refresh_token=refresh)

    async def _new_refresh(self, session: AsyncSession, *, user_id: uuid.UUID, family_id: uuid.UUID) -> str:
        token = new_token(32)
        session.add(RefreshToken(user_id=user_id, family_id=family_id, token_hash=token_hash(token),
                                 expires_at=utcnow() + self.refresh_ttl))
        await session.flush()
        return token

    async def rotate(self, session: AsyncSession, token: str) -> tuple[uuid.UUID, IssuedTokens]:
        """Spend ``token`` and issue the next one of its family: ``(user_id, tokens)``. Raises
        ``RefreshRefused``; on ``reused`` the family is revoked in ``session`` (commit it)."""
        now = utcnow()
        row = (await session.execute(
            select(RefreshToken).where(RefreshToken.token_hash == token_hash(token)))).scalar_one_or_none()
        if row is None:
            raise RefreshRefused("unknown")
        if row.used_at is not None or row.revoked_at is not None:
            await self.revoke_family(session, row.family_id)
            raise RefreshRefused("reused" if row.used_at is not None else "revoked")
        if row.expires_at <= now:
            raise RefreshRefused("expired")
        spent = await session.execute(
            update(RefreshToken)
            .where(RefreshToken.id == row.id, RefreshToken.used_at.is_(None), RefreshToken.revoked_at.is_(None))
            .values(used_at=now))
        if spent.rowcount != 1:  # a concurrent exchange of the same token won: that is a reuse too
            await self.revoke_family(session, row.family_id)
            raise RefreshRefused("reused")
        refresh = await self._new_refresh(session, user_id=row.user_id, family_id=row.family_id)
        return row.user_id, IssuedTokens(access_token=self.access_token(row.user_id),
                                         expires_in=int(self.access_ttl.total_seconds()), refresh_token=refresh)

    async def revoke_family(self, session: AsyncSession, family_id: uuid.UUID) -> None:
        """Revoke every token of one sign-in."""
        await session.execute(update(RefreshToken).where(
            RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None)).values(revoked_at=utcnow()))

    async def sign_out(self, session: AsyncSession, token: str) -> bool:
        """Revoke the family of ``token`` (logout); whether the token was known."""
        row = (await session.execute(
            select(RefreshToken).where(RefreshToken.token_hash == token_hash(token)))).scalar_one_or_none()
        if row is None:
            return False
        await self.revoke_family(session, row.family_id)
        return True

    async def revoke_user(self, session: AsyncSession, user_id: uuid.UUID) -> None:
        """Revoke every refresh token of ``user_id`` (after a password reset)."""
        await session.execute(update(RefreshToken).where(
            RefreshToken.user_id == user_id, RefreshToken.revoked_at.is_(None)).values(revoked_at=utcnow()))

    # -- e-mailed codes and links ---------------------------------------------------------------

    def _hash(self, purpose: str, secret: str, user_id: uuid.UUID | None) -> str:
        message = f"{purpose}:{user_id or ''}:{secret}".encode()
        return hmac.new(self._code_key, message, hashlib.sha256).hexdigest()

    async def issue_code(self, session: AsyncSession, user: User, purpose: str) -> str:
        """A new secret for ``purpose`` (``verify``: 6 digits; ``magic``/``reset``: 43 URL-safe
        characters); earlier unused ones of the same purpose are spent."""
        if purpose not in CODE_PURPOSES:
            raise ValueError(f"unknown code purpose {purpose!r}")
        now = utcnow()
        await session.execute(update(AuthCode).where(
            AuthCode.user_id == user.id, AuthCode.purpose == purpose, AuthCode.used_at.is_(None)).values(used_at=now))
        if purpose == "verify":
            secret, bound = f"{secrets.randbelow(10**6):06d}", user.id
        else:
            secret, bound = new_token(32), None
        ttl = self.reset_ttl if purpose == "reset" else self.code_ttl
        session.add(AuthCode(user_id=user.id, purpose=purpose, code_hash=self._hash(purpose, secret, bound),
                             expires_at=now + ttl, attempts=0))
        await session.flush()
        return secret

    async def consume_verify_code(self, session: AsyncSession, user: User, code: str) -> bool:
        """Spend the user's current verification code when ``code`` matches; a wrong code counts an
        attempt (the 5th spends the code). Commit the session either way."""
        now = utcnow()
        row = (await session.execute(
            select(AuthCode).where(AuthCode.user_id == user.id, AuthCode.purpose == "verify",
                                   AuthCode.used_at.is_(None)).order_by(AuthCode.created_at.desc()).limit(1)
        )).scalar_one_or_none()
        if row is None or row.expires_at <= now:
            return False
        if not hmac.compare_digest(row.code_hash, self._hash("verify", code.strip(), user.id)):
            row.attempts += 1
            if row.attempts >= MAX_CODE_ATTEMPTS:
                row.used_at = now
            await session.flush()
            return False
        return await self._spend(session, row.id)

    async def consume_link(self, session: AsyncSession, purpose: str, token: str) -> uuid.UUID | None:
        """Spend a magic-link or reset token: the user id it was issued to, or ``None`` when it is
        unknown, spent or expired."""
        if purpose not in ("magic", "reset") or not token or len(token) > 200:
            return None
        row = (await session.execute(
            select(AuthCode).where(AuthCode.code_hash == self._hash(purpose, token, None), AuthCode.purpose == purpose)
        )).scalar_one_or_none()
        if row is None or row.used_at is not None or row.expires_at <= utcnow():
            return None
        return row.user_id if await self._spend(session, row.id) else None

    async def _spend(self, session: AsyncSession, code_id: uuid.UUID) -> bool:
        result = await session.execute(
            update(AuthCode).where(AuthCode.id == code_id, AuthCode.used_at.is_(None)).values(used_at=utcnow()))
        return result.rowcount == 1
