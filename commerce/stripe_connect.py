"""Stripe Connect: each company gets its own connected Stripe account, onboarded through a Stripe-hosted
Account Link; customers then pay into that account (direct charges, see ``commerce.stripe_provider``).

Account type: **standard** (https://docs.stripe.com/connect/standard-accounts). With direct charges
the business is the merchant of record; a Standard account gives it the full Stripe Dashboard and
makes it responsible for refunds, disputes and negative balances, and an existing Stripe user can
onboard with the account they already have. The platform only creates sessions on its behalf. (An
Express account would make the platform liable for losses and is meant for destination charges.)

Functions that write take an ``AsyncSession`` and do not commit (the caller owns the transaction).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import stripe
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from commerce.errors import PaymentUnavailable
from commerce.stripe_provider import StripeApi
from core.models import Company


@dataclass(frozen=True, slots=True)
class AccountState:
    """Onboarding state of a connected account: ``charges_enabled`` means it can take payments."""

    account_id: str
    charges_enabled: bool
    details_submitted: bool


def apply_account(company: Company, account: Mapping[str, Any]) -> AccountState:
    """Copy the onboarding flags of a Stripe ``account`` (as a dict: webhook payload or
    ``StripeObject.to_dict()``) onto ``company``."""
    state = AccountState(
        account_id=str(account["id"]),
        charges_enabled=bool(account.get("charges_enabled")),
        details_submitted=bool(account.get("details_submitted")),
    )
    company.stripe_charges_enabled = state.charges_enabled
    company.stripe_details_submitted = state.details_submitted
    return state


async def company_by_account(session: AsyncSession, account_id: str) -> Company | None:
    """The company connected to Stripe account ``account_id`` (the id is unique across companies)."""
    if not account_id:
        return None
    return (
        await session.execute(select(Company).where(Company.stripe_account_id == account_id))
    ).scalar_one_or_none()


class StripeConnect:
    """Creates and onboards companies' connected accounts. Stripe errors are raised as
    ``PaymentUnavailable`` with the reason (the admin API shows it)."""

    def __init__(self, *, api: StripeApi) -> None:
        self._api = api

    async def create_account(self, session: AsyncSession, *, company: Company, email: str | None = None,
                             country: str | None = None) -> AccountState:
        """Create the company's Standard connected account and store its id on the company; a company
        that already has one gets its current state back (no second account).

        The request carries the idempotency key ``company-<id>-connect-account``, so a retry (network
        or a rolled-back transaction, within Stripe's 24 h key lifetime) returns the same account.
        ``country`` is an ISO-3166 alpha-2 code (Stripe asks during onboarding when omitted).
        """
        if company.stripe_account_id:
            return await self.refresh(session, company=company)
        params: dict[str, Any] = {
            "type": "standard",
            "business_profile": {"name": company.name},
            "metadata": {"tenant_id": str(company.tenant_id), "company_id": str(company.id)},
        }
        if email:
            params["email"] = email
        if country:
            params["country"] = country.upper()
        try:
            account = await self._api.client.v1.accounts.create_async(
                params,  # type: ignore[arg-type]
                options={"idempotency_key": f"company-{company.id}-connect-account"},
            )
        except stripe.StripeError as exc:
            raise PaymentUnavailable(reason=f"Stripe refused to create the account: {exc.user_message or exc}") from exc
        company.stripe_account_id = account.id
        state = apply_account(company, account.to_dict())
        await session.flush()
        return state

    async def onboarding_link(self, *, company: Company, refresh_url: str, return_url: str) -> str:
        """A Stripe-hosted onboarding URL for the company's account (single use, expires in minutes).

        ``refresh_url``: where Stripe sends the user when the link expired or was reused — that page
        should create a fresh link and redirect. ``return_url``: where the user lands after leaving
        onboarding (not proof of completion: call :meth:`refresh`). Raises ``PaymentUnavailable``
        when the company has no account yet or Stripe refuses.
        """
        if not company.stripe_account_id:
            raise PaymentUnavailable(reason="the company has no connected Stripe account yet")
        try:
            link = await self._api.client.v1.account_links.create_async(
                {"account": company.stripe_account_id, "refresh_url": refresh_url, "return_url": return_url,
                 "type": "account_onboarding"}
            )
        except stripe.StripeError as exc:
            raise PaymentUnavailable(reason=f"Stripe refused the onboarding link: {exc.user_message or exc}") from exc
        return str(link.url)

    async def refresh(self, session: AsyncSession, *, company: Company) -> AccountState:
        """Read the account from Stripe (``accounts.retrieve``) and store ``charges_enabled`` and
        ``details_submitted`` on the company. Raises ``PaymentUnavailable`` without an account."""
        if not company.stripe_account_id:
            raise PaymentUnavailable(reason="the company has no connected Stripe account yet")
        try:
            account = await self._api.client.v1.accounts.retrieve_async(company.stripe_account_id)
        except stripe.StripeError as exc:
            raise PaymentUnavailable(reason=f"Stripe account could not be read: {exc.user_message or exc}") from exc
        state = apply_account(company, account.to_dict())
        await session.flush()
        return state
