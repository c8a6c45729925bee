"""Payment providers (customer → business). A provider turns an order into a ``Payment`` with a
``checkout_url``. The registry maps ``Company.payment_provider`` to a provider class."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar, Protocol

from core.models import Company, Order


@dataclass(frozen=True, slots=True)
class PaymentLink:
    """What a provider returns: the URL the customer opens and the provider's reference."""

    checkout_url: str
    provider_ref: str | None
    expires_at: datetime | None


class PaymentProvider(Protocol):
    """Issues payment links. ``create_link`` may call a remote API; it must be idempotent for the
    same ``(order, attempt)`` (e.g. Stripe's ``idempotency_key``)."""

    name: ClassVar[str]

    async def create_link(
        self, *, company: Company, order: Order, token: str, attempt: int, expires_at: datetime,
        language: str | None = None,
    ) -> PaymentLink:
        """The link for ``order``; ``language`` is the customer's (``en``, ``ru``: the conversation's),
        for a provider whose payment page is localised; ``None`` when not known."""
        ...

    async def expire_link(self, *, company: Company, provider_ref: str | None) -> None:
        """Make an issued link unpayable (e.g. its booking hold ran out). Must not raise when the
        link is already expired or paid; the caller records the payment as ``expired``."""
        ...


class ManualProvider:
    """The embedded default: the payment link is this server's page ``/pay/{token}``, which shows the
    order; a manager marks it paid (cash, bank transfer) and in demo mode the page has a test "Pay"."""

    name: ClassVar[str] = "manual"

    def __init__(self, *, public_base_url: str) -> None:
        self._base = public_base_url.rstrip("/")

    async def create_link(
        self, *, company: Company, order: Order, token: str, attempt: int, expires_at: datetime,
        language: str | None = None,
    ) -> PaymentLink:
        """``/pay/{token}`` (the page follows the conversation's language itself)."""
        return PaymentLink(checkout_url=f"{self._base}/pay/{token}", provider_ref=None, expires_at=expires_at)

    async def expire_link(self, *, company: Company, provider_ref: str | None) -> None:
        """Nothing to call: the ``/pay/{token}`` page refuses a payment whose status is not
        ``payment_link_sent``."""
        return None


class ProviderRegistry:
    """Maps provider names to configured provider instances (built in the app's lifespan)."""

    def __init__(self, *, providers: dict[str, PaymentProvider] | None = None) -> None:
        self._providers: dict[str, PaymentProvider] = dict(providers or {})

    def register(self, provider: PaymentProvider) -> None:
        self._providers[provider.name] = provider

    def get(self, name: str) -> PaymentProvider:
        """The provider called ``name``; raises ``KeyError`` listing the known ones."""
        try:
            return self._providers[name]
        except KeyError:
            raise KeyError(f"unknown payment provider {name!r}; known: {sorted(self._providers)}") from None

    @classmethod
    def default(cls, *, public_base_url: str) -> ProviderRegistry:
        return cls(providers={ManualProvider.name: ManualProvider(public_base_url=public_base_url)})
