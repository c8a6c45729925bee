"""The manual payment page ``/pay/{token}`` (the ``manual`` provider's checkout URL).

The token is the secret: only its SHA-256 is stored (``commerce.payments.payment_by_token``), and the
access log shows the path as ``/pay/***`` (``core.logging.RedactTokenPaths``).

It shows the order (number, lines, total, status). In demo mode (``CHATCOMMERCE_DEMO_MODE``) it has a
test "Pay" button that posts to ``/pay/{token}/test``, which marks the order paid with
``commerce.payments.mark_paid(method="test")`` and delivers the confirmation to the customer's chat.
Outside demo mode that POST is refused (403): a manager marks real payments through the admin API.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.ext.asyncio import AsyncSession

from api.deps import RuntimeDep, SessionDep, SettingsDep, TemplatesDep
from api.pages import page_language
from commerce.payments import mark_paid, payment_by_token
from core.i18n import company_locale, lang_of, money, t
from core.models import Company, Conversation, Order, Payment
from core.timeutil import utcnow

router = APIRouter(tags=["pay"], include_in_schema=False)

@dataclass(frozen=True, slots=True, kw_only=True)
class _PaymentView:
    """A payment with its order and company, and the state the page shows."""

    payment: Payment
    order: Order
    company: Company
    language: str  # the page's: the customer's conversation language, else the company's

    @property
    def state(self) -> str:
        """paid | cancelled | refunded | failed | expired | awaiting."""
        if self.order.payment_status == "paid" or self.payment.status == "paid":
            return "paid"
        if self.order.status == "cancelled":
            return "cancelled"
        if self.order.payment_status in ("refunded", "failed"):
            return self.order.payment_status
        if self.payment.status != "payment_link_sent":
            return "expired"
        if self.payment.expires_at is not None and self.payment.expires_at <= utcnow():
            return "expired"
        return "awaiting"


async def _load(session: AsyncSession, token: str) -> _PaymentView | None:
    payment = await payment_by_token(session, token)
    if payment is None:
        return None
    order = await session.get(Order, payment.order_id)
    company = await session.get(Company, order.company_id) if order else None
    if order is None or company is None or order.tenant_id != payment.tenant_id:
        return None
    conversation = await session.get(Conversation, order.conversation_id) if order.conversation_id else None
    spoken = conversation.language if conversation is not None and conversation.tenant_id == order.tenant_id else None
    return _PaymentView(payment=payment, order=order, company=company,
                        language=page_language(conversation_language=spoken, company_language=company.language))


def _render(request: Request, templates: TemplatesDep, view: _PaymentView, *, token: str, demo_mode: bool,
            just_paid: bool = False, status_code: int = 200) -> HTMLResponse:
    locale = company_locale(view.company)

    def money_text(minor: int) -> str:
        return money(minor, view.order.currency, locale)

    state = view.state
    lines = [
        {"name": ln.name, "variant": ln.variant, "quantity": ln.quantity, "unit": money_text(ln.unit_price_minor),
         "total": money_text(ln.line_total_minor)}
        for ln in view.order.lines
    ]
    return templates.TemplateResponse(
        request, "pay.html",
        {"lang": view.language, "company": view.company, "order": view.order, "lines": lines,
         "total": money_text(view.order.total_minor), "state": state,
         "show_pay": demo_mode and state == "awaiting", "demo_mode": demo_mode, "just_paid": just_paid,
         "token": token},
        status_code=status_code,
    )


def _not_found(request: Request, templates: TemplatesDep) -> HTMLResponse:
    return templates.TemplateResponse(request, "not_found.html",
                                      {"what": "payment", "lang": _browser_language(request)},
                                      status_code=status.HTTP_404_NOT_FOUND)


def _browser_language(request: Request) -> str:
    """The page language when no company is known: the browser's first ``Accept-Language`` the
    catalogue speaks, else English."""
    for part in request.headers.get("accept-language", "").split(","):
        tag = part.split(";")[0].strip()
        if tag and tag != "*" and lang_of(tag) == tag.replace("-", "_").split("_")[0].lower():
            return lang_of(tag)
    return "en"


@router.get("/pay/{token}", response_class=HTMLResponse)
async def pay_page(token: str, request: Request, session: SessionDep, settings: SettingsDep,
                   templates: TemplatesDep) -> HTMLResponse:
    """The order behind a payment link; 404 for an unknown token."""
    view = await _load(session, token)
    if view is None:
        return _not_found(request, templates)
    return _render(request, templates, view, token=token, demo_mode=settings.demo_mode,
                   just_paid=request.query_params.get("paid") == "1")


@router.post("/pay/{token}/test")
async def test_pay(token: str, request: Request, session: SessionDep, runtime: RuntimeDep,
                   templates: TemplatesDep) -> Response:
    """Demo mode only: mark the order paid (method ``test``), tell the customer, show the paid page.
    403 outside demo mode, 404 for an unknown token, 410 for an expired link."""
    if not runtime.settings.demo_mode:
        return HTMLResponse(t("pay:demo_only", _browser_language(request)), status_code=status.HTTP_403_FORBIDDEN)
    view = await _load(session, token)
    if view is None:
        return _not_found(request, templates)
    if view.state not in ("awaiting", "paid"):
        return _render(request, templates, view, token=token, demo_mode=True, status_code=status.HTTP_410_GONE)
    await mark_paid(session, order=view.order, method="test", payment=view.payment)
    await session.commit()
    if view.order.conversation_id is not None:
        await runtime.pipeline.deliver_pending(conversation_id=view.order.conversation_id)
    return RedirectResponse(f"/pay/{token}?paid=1", status_code=status.HTTP_303_SEE_OTHER)
