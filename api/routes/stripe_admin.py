"""Stripe for owners: choose the payment provider, connect a Stripe account (Connect onboarding),
and the page customers return to from Stripe Checkout.

Admin routes need an owner (or the platform admin) and are tenant-scoped (``CompanyDep``). The return page
never marks anything paid: only a signed webhook does (Stripe: "Fulfill orders" guide).
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from api.deps import AdminDep, CompanyDep, Requires, RuntimeDep, SessionDep, TemplatesDep
from commerce.errors import PaymentUnavailable
from commerce.stripe_connect import StripeConnect

# Stripe Connect and the payment provider are the owner's: managers get 403 (api.auth).
admin_router = APIRouter(prefix="/api/v1", tags=["payments"], dependencies=[AdminDep, Depends(Requires("owner"))])
public_router = APIRouter(tags=["payments"])

_COMPANY = "/tenants/{tenant}/companies/{company}"


class ProviderIn(BaseModel):
    """Which provider issues this company's payment links."""

    provider: Literal["manual", "stripe"]


class ConnectIn(BaseModel):
    """Optional e-mail to pre-fill Stripe's onboarding form."""

    email: str | None = None


def _connect(runtime: Any) -> StripeConnect:
    if runtime.stripe_api is None:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            "Stripe is not configured on this server (CHATCOMMERCE_STRIPE_SECRET_KEY)")
    return StripeConnect(api=runtime.stripe_api)


def _state(company: Any) -> dict[str, Any]:
    return {"payment_provider": company.payment_provider, "stripe_account_id": company.stripe_account_id,
            "charges_enabled": company.stripe_charges_enabled,
            "details_submitted": company.stripe_details_submitted}


@admin_router.put(_COMPANY + "/payment-provider")
async def set_provider(
    body: ProviderIn, company: CompanyDep, session: SessionDep, runtime: RuntimeDep
) -> dict[str, Any]:
    """Switch between ``manual`` links (this server's pay page) and ``stripe`` Checkout. 422 when
    Stripe is not configured on the server."""
    try:
        runtime.providers.get(body.provider)
    except KeyError:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT,
                            f"payment provider {body.provider!r} is not configured on this server") from None
    company.payment_provider = body.provider
    await session.commit()
    return _state(company)


@admin_router.post(_COMPANY + "/stripe/connect")
async def stripe_connect(
    body: ConnectIn, company: CompanyDep, session: SessionDep, runtime: RuntimeDep
) -> dict[str, Any]:
    """Create (or reuse) the company's Standard connected account and return a Stripe-hosted
    onboarding URL for the owner (Account Links expire within minutes: ask again for a new one)."""
    connect = _connect(runtime)
    base = runtime.settings.public_base_url.rstrip("/")
    try:
        await connect.create_account(session, company=company, email=body.email)
        await session.commit()
        url = await connect.onboarding_link(
            company=company, refresh_url=f"{base}/stripe/onboarding?company={company.slug}&result=refresh",
            return_url=f"{base}/stripe/onboarding?company={company.slug}&result=return",
        )
    except PaymentUnavailable as exc:
        raise HTTPException(status.HTTP_502_BAD_GATEWAY, f"Stripe refused: {exc.reason}") from None
    return {**_state(company), "onboarding_url": url}


@admin_router.get(_COMPANY + "/stripe")
async def stripe_state(company: CompanyDep, session: SessionDep, runtime: RuntimeDep) -> dict[str, Any]:
    """Onboarding state read from Stripe (``charges_enabled``: the company can take payments)."""
    if company.stripe_account_id:
        try:
            await _connect(runtime).refresh(session, company=company)
            await session.commit()
        except PaymentUnavailable as exc:
            raise HTTPException(status.HTTP_502_BAD_GATEWAY, f"Stripe refused: {exc.reason}") from None
    return _state(company)


@public_router.get("/pay/return", response_class=HTMLResponse, include_in_schema=False)
async def checkout_return(request: Request, templates: TemplatesDep, result: str = "success") -> HTMLResponse:
    """Where Stripe Checkout sends the customer back. Payment is confirmed by the webhook, and the
    customer is told in their chat."""
    if result == "cancel":
        title, text = "Payment cancelled", "Nothing was charged. Ask in the chat for a new payment link."
    else:
        title, text = "Thank you!", "Your payment is being confirmed; you will get a message in the chat."
    return templates.TemplateResponse(request, "notice.html", {"title": title, "text": text})


@public_router.get("/stripe/onboarding", response_class=HTMLResponse, include_in_schema=False)
async def onboarding_return(request: Request, templates: TemplatesDep, result: str = "return") -> HTMLResponse:
    """Where Stripe sends the owner after (or instead of finishing) onboarding."""
    if result == "refresh":
        title, text = "Link expired", "Ask for a new onboarding link in the admin API (POST …/stripe/connect)."
    else:
        title, text = "Stripe onboarding", "Done for now. Check the state with GET …/stripe in the admin API."
    return templates.TemplateResponse(request, "notice.html", {"title": title, "text": text})
