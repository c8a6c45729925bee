"""What a customer tells the shop about themselves becomes their contact's details.

The inbox shows a contact by name, phone or e-mail (``api.queries.display_name``). Channel profiles
fill them when a contact first writes (``channels.pipeline``: Telegram first/last name, WhatsApp
``pushName`` and number, e-mail ``From``); a checkout or a booking then records what the customer
typed, which is more specific than a profile name, so it wins.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from core.models import Contact


async def remember_customer(session: AsyncSession, *, tenant_id: uuid.UUID, contact_id: uuid.UUID | None,
                            name: str | None, phone: str | None) -> None:
    """Store ``name`` and ``phone`` (when given and not blank) on the contact of ``tenant_id``;
    nothing happens for ``contact_id=None`` or a contact of another tenant. Not committed."""
    if contact_id is None:
        return
    contact = await session.get(Contact, contact_id)
    if contact is None or contact.tenant_id != tenant_id:
        return
    if name and name.strip():
        contact.name = name.strip()[:200]
    if phone and phone.strip():
        contact.phone = phone.strip()[:32]
