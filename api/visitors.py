"""Web-chat visitor identity over HTTP, issued by the server (never chosen by the client).

The visitor's id travels inside a signed token (``api.visitor_tokens.VisitorSigner``): a token
issued by one company's chat is not valid at another's.

Browsers carry the token in an ``HttpOnly``, ``SameSite=Lax`` cookie (``Secure`` when
``CHATCOMMERCE_PUBLIC_BASE_URL`` is https) whose ``Path`` is the company's web-chat API
(``/api/v1/webchat/{company}``); other clients get it once, as ``visitor_token`` in the JSON answer
that started their visit, and send it back as ``Authorization: Bearer <token>`` or
``X-Visitor-Token: <token>``. A header, when present, is used instead of the cookie. A missing,
expired, tampered or foreign token is no identity at all: a message starts a new visitor, a poll reads
nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request, Response

from api.deps import PublicCompanyDep, RuntimeDep
from api.ratelimit import hit_visitor
from core.models import Company

COOKIE_NAME = "cc_visitor"
TOKEN_HEADER = "x-visitor-token"


@dataclass(frozen=True, slots=True, kw_only=True)
class PresentedIdentity:
    """The visitor a request proved, if any. ``visitor_id`` is ``None`` when the request carried no
    valid token; ``from_header`` tells whether it came as a header (a non-browser client)."""

    visitor_id: str | None
    from_header: bool


def presented_token(request: Request) -> tuple[str | None, bool]:
    """The visitor token a request carries and whether it came in a header:
    ``X-Visitor-Token``, else ``Authorization: Bearer``, else the ``cc_visitor`` cookie."""
    header = request.headers.get(TOKEN_HEADER)
    if header:
        return header.strip(), True
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip(), True
    return request.cookies.get(COOKIE_NAME), False


async def get_identity(request: Request, company: PublicCompanyDep, runtime: RuntimeDep) -> PresentedIdentity:
    """FastAPI dependency: the visitor the request proves for the ``{company}`` of the path. A proved
    visitor's request counts against its per-visitor rate limit (``api.ratelimit.hit_visitor``; 429
    once it is used up)."""
    token, from_header = presented_token(request)
    visitor = runtime.visitor_signer.visitor_of(token, company_id=company.id)
    if visitor is not None:
        await hit_visitor(request, company=company.slug, visitor_id=visitor)
    return PresentedIdentity(visitor_id=visitor, from_header=from_header)


IdentityDep = Annotated[PresentedIdentity, Depends(get_identity)]


def cookie_path(company: Company) -> str:
    """The cookie's ``Path``: the company's web-chat API, so it goes nowhere else."""
    return f"/api/v1/webchat/{company.slug}"


def set_visitor_cookie(response: Response, *, token: str, company: Company, public_base_url: str,
                       max_age_seconds: int) -> None:
    """Set the ``cc_visitor`` cookie: ``HttpOnly``, ``SameSite=Lax``, ``Secure`` when the public base
    URL is https, ``Path`` = the company's web-chat API, ``Max-Age`` = the token's lifetime."""
    response.set_cookie(COOKIE_NAME, token, max_age=max_age_seconds, path=cookie_path(company),
                        secure=public_base_url.lower().startswith("https://"), httponly=True, samesite="lax")
