"""Stripe payment links: a Checkout Session per payment attempt, charged directly on the business's
connected Stripe account (Stripe Connect "direct charges").

The customer pays the business, not the platform: the session is created with the ``Stripe-Account``
header set to the company's connected account (https://docs.stripe.com/connect/direct-charges), so
the business is the merchant of record and the money settles into its balance. The platform takes no
application fee (``payment_intent_data.application_fee_amount`` is omitted; adding one is a pricing
decision, see https://docs.stripe.com/connect/direct-charges#collect-fees).

The SDK's async client (``stripe.StripeClient`` with ``stripe.HTTPXClient``) is used; its API base
is configurable so tests talk to a local double (``tests/doubles/stripe_server.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar

import stripe
import structlog

from commerce.errors import PaymentUnavailable
from commerce.providers import PaymentLink
from core.models import Company, Order
from core.money import exponent
from core.timeutil import utcnow

log = structlog.get_logger(__name__)

DEFAULT_API_BASE = "https://api.stripe.com"

# Stripe: "expires_at ... can be anywhere from 30 minutes to 24 hours after Checkout Session
# creation" (https://docs.stripe.com/api/checkout/sessions/create#create_checkout_session-expires_at).
# We keep a margin on both sides for clock skew and request latency and round down to a 5-minute
# step, so a retry of the same attempt a little later sends identical parameters (Stripe rejects an
# idempotency key reused with different parameters).
SESSION_MIN_LIFETIME = timedelta(minutes=35)
SESSION_MAX_LIFETIME = timedelta(hours=24) - timedelta(minutes=5)
_EXPIRES_STEP_SECONDS = 300

# Checkout Session `locale` values (https://docs.stripe.com/api/checkout/sessions/create#create_checkout_session-locale,
# https://docs.stripe.com/js/appendix/supported_locales); anything else is "auto" (the browser's language).
CHECKOUT_LOCALES = frozenset(
    "bg cs da de el en en-GB es es-419 et fi fil fr fr-CA hr hu id it ja ko lt lv ms mt nb nl pl pt pt-BR ro ru sk sl"
    " sv th tr vi zh zh-HK zh-TW".split()
)


def checkout_locale(language: str | None) -> str:
    """The Checkout ``locale`` for a customer's language (``"ru"`` → ``"ru"``, ``"pt_BR"`` → ``"pt-BR"``,
    ``"en-US"`` → ``"en"``); ``"auto"`` for a language Checkout does not offer or none."""
    if not language:
        return "auto"
    tag = language.strip().replace("_", "-")
    exact = next((loc for loc in CHECKOUT_LOCALES if loc.casefold() == tag.casefold()), None)
    if exact is not None:
        return exact
    base = tag.split("-")[0].lower()
    return base if base in CHECKOUT_LOCALES else "auto"


@dataclass(frozen=True, slots=True, kw_only=True)
class StripeConfig:
    """Stripe settings (to be read from ``core.settings.Settings`` once the fields exist there).

    ``secret_key``: the platform's secret key (``sk_live_…``/``sk_test_…``); ``webhook_secret``: the
    signing secret (``whsec_…``) of the platform webhook endpoint; ``connect_webhook_secret``: the
    signing secret of the Connect endpoint (events of connected accounts, incl. Checkout events of
    direct charges); ``api_base``: ``https://api.stripe.com`` or a test double; ``public_base_url``:
    this server's public URL (Checkout return URLs); ``webhook_tolerance_seconds``: maximum age of a
    signed webhook (Stripe's libraries default to 300 s); ``max_network_retries``: SDK retries of
    failed requests (they reuse the idempotency key, so they are safe); ``timeout_seconds``: per
    request.
    """

    secret_key: str
    public_base_url: str
    webhook_secret: str | None = None
    connect_webhook_secret: str | None = None
    api_base: str = DEFAULT_API_BASE
    webhook_tolerance_seconds: int = 300
    max_network_retries: int = 2
    timeout_seconds: float = 30.0

    @property
    def webhook_secrets(self) -> tuple[str, ...]:
        """The configured endpoint signing secrets (a webhook is valid if signed with any of them)."""
        return tuple(s for s in (self.webhook_secret, self.connect_webhook_secret) if s)


class StripeApi:
    """Owns one ``stripe.StripeClient`` on an async httpx transport. Build it in the app's lifespan
    and close it with :meth:`aclose` at shutdown."""

    def __init__(self, *, config: StripeConfig) -> None:
        self.config = config
        self._http = stripe.HTTPXClient(timeout=config.timeout_seconds)
        base = config.api_base.rstrip("/")
        self.client = stripe.StripeClient(
            config.secret_key,
            base_addresses={"api": base, "connect": base, "files": base},
            http_client=self._http,
            max_network_retries=config.max_network_retries,
        )

    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        await self._http.close_async()


def checkout_expiry(requested: datetime, *, now: datetime | None = None) -> datetime:
    """Clamp ``requested`` into what Stripe accepts for ``expires_at`` (30 min .. 24 h after creation,
    with margins) and round it down to a 5-minute step. Aware UTC in and out."""
    now = now or utcnow()
    target = min(max(requested, now + SESSION_MIN_LIFETIME), now + SESSION_MAX_LIFETIME)
    seconds = int(target.timestamp())
    return datetime.fromtimestamp(seconds - seconds % _EXPIRES_STEP_SECONDS, tz=UTC)


def idempotency_key(order: Order, attempt: int) -> str:
    """The idempotency key of a payment attempt: one Checkout Session per ``(order, attempt)``.

    Stripe returns the first response again for a repeated key (keys are kept at least 24 hours and
    must be reused with identical parameters; https://docs.stripe.com/api/idempotent_requests)."""
    return f"order-{order.id}-attempt-{attempt}"


def order_metadata(order: Order) -> dict[str, str]:
    """Metadata put on the session and its PaymentIntent; webhooks check it against our rows."""
    return {
        "tenant_id": str(order.tenant_id),
        "company_id": str(order.company_id),
        "order_id": str(order.id),
        "order_number": str(order.number),
    }


def _line_name(name: str, variant: str | None) -> str:
    return f"{name} ({variant})" if variant else name


class StripeProvider:
    """``PaymentProvider`` "stripe": a Stripe Checkout Session (mode ``payment``) on the company's
    connected account.

    ``create_link`` raises ``PaymentUnavailable`` when the company has no connected account, its
    onboarding is incomplete (``charges_enabled`` false), an amount cannot be charged in its currency,
    or Stripe refuses or cannot be reached (the reason is for logs and the bot's polite explanation).
    """

    name: ClassVar[str] = "stripe"

    def __init__(self, *, api: StripeApi) -> None:
        self._api = api
        self._base = api.config.public_base_url.rstrip("/")

    def session_params(self, *, company: Company, order: Order, expires_at: datetime,
                       language: str | None = None) -> dict[str, Any]:
        """The ``checkout.sessions.create`` parameters for ``order`` (amounts in minor units, which is
        Stripe's "smallest currency unit"; currency lower-case as in Stripe's API); the page speaks the
        customer's ``language`` (else the company's, else the browser's: :func:`checkout_locale`)."""
        currency = order.currency.lower()
        metadata = order_metadata(order)
        back = f"{self._base}/pay/return?order={order.id}"
        return {
            "mode": "payment",
            "line_items": [
                {
                    "price_data": {
                        "currency": currency,
                        "unit_amount": line.unit_price_minor,
                        "product_data": {"name": _line_name(line.name, line.variant)},
                    },
                    "quantity": line.quantity,
                }
                for line in order.lines
            ],
            "client_reference_id": str(order.id),
            "metadata": metadata,
            "payment_intent_data": {
                "metadata": metadata,
                "description": f"Order #{order.number} — {company.name}",
            },
            "expires_at": int(expires_at.timestamp()),
            "locale": checkout_locale(language or company.language),
            # {CHECKOUT_SESSION_ID} is filled in by Stripe (https://docs.stripe.com/payments/checkout/custom-success-page).
            "success_url": f"{back}&result=success&session_id={{CHECKOUT_SESSION_ID}}",
            "cancel_url": f"{back}&result=cancel",
        }

    def _check_chargeable(self, company: Company, order: Order) -> str:
        if not company.stripe_account_id:
            raise PaymentUnavailable(reason="the business has not connected a Stripe account")
        if not company.stripe_charges_enabled:
            raise PaymentUnavailable(reason="the business's Stripe account cannot accept payments yet (onboarding)")
        if not order.lines or order.total_minor <= 0:
            raise PaymentUnavailable(reason="the order has nothing to pay")
        # Stripe: three-decimal currencies must be charged in multiples of 10 minor units
        # (https://docs.stripe.com/currencies#three-decimal).
        if exponent(order.currency) == 3 and any(ln.unit_price_minor % 10 for ln in order.lines):
            raise PaymentUnavailable(reason=f"Stripe charges {order.currency} only in multiples of 0.010")
        return company.stripe_account_id

    async def create_link(
        self, *, company: Company, order: Order, token: str, attempt: int, expires_at: datetime,
        language: str | None = None,
    ) -> PaymentLink:
        """Create (or, for a repeated ``attempt``, get back) the Checkout Session of this attempt.

        ``token`` (the manual page's) is not sent to Stripe. The returned ``expires_at`` is the
        session's own. If Stripe already holds this attempt's key with other parameters (a retry after
        a rolled-back transaction whose session was never sent to anyone), one new session is created
        under a key that also names its expiry.
        """
        account = self._check_chargeable(company, order)
        expiry = checkout_expiry(expires_at)
        params = self.session_params(company=company, order=order, expires_at=expiry, language=language)
        key = idempotency_key(order, attempt)
        try:
            try:
                session = await self._create(params, key=key, account=account)
            except stripe.IdempotencyError:
                session = await self._create(params, key=f"{key}-{params['expires_at']}", account=account)
        except stripe.StripeError as exc:
            raise PaymentUnavailable(reason=f"Stripe refused the payment link: {exc.user_message or exc}") from exc
        expires = datetime.fromtimestamp(session.expires_at, tz=UTC) if session.expires_at else expiry
        return PaymentLink(checkout_url=session.url, provider_ref=session.id, expires_at=expires)

    async def expire_link(self, *, company: Company, provider_ref: str | None) -> None:
        """Expire the Checkout Session on the connected account (``POST /v1/checkout/sessions/{id}/expire``;
        Stripe: "A Checkout Session can be expired when it is in one of these statuses: open"). A session
        that is no longer open, or a Stripe error, is logged and ignored: a payment that still arrives is
        handled by the webhook (the booking is re-taken or flagged for a refund)."""
        if not provider_ref or not company.stripe_account_id:
            return
        try:
            await self._api.client.v1.checkout.sessions.expire_async(
                provider_ref, options={"stripe_account": company.stripe_account_id}
            )
        except stripe.StripeError as exc:
            log.info("stripe_expire_skipped", session=provider_ref, error=exc.user_message or str(exc))

    async def _create(self, params: dict[str, Any], *, key: str, account: str) -> Any:
        return await self._api.client.v1.checkout.sessions.create_async(
            params,  # type: ignore[arg-type]
            options={"idempotency_key": key, "stripe_account": account},
        )
