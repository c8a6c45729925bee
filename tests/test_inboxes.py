"""Inbox health: a WhatsApp inbox that reports WORKING but receives nothing is flagged."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from channels.inboxes import InboxError, disconnect_inbox, flag_silent_inboxes, inbox_as_dict, record_status
from channels.pipeline import ChannelFactory
from channels.registry import ChannelRegistry
from core.accounts import create_company, create_tenant, inbox_of_kind
from core.conversations import append_message
from core.models import Contact, Conversation, Inbox
from core.timeutil import utcnow


async def test_working_inbox_without_traffic_is_flagged_and_unflagged(sessionmaker) -> None:  # type: ignore[no-untyped-def]
    async with sessionmaker() as s, s.begin():
        tenant = await create_tenant(s, name="Florist", slug="florist")
        company = await create_company(s, tenant_id=tenant.id, slug="florist", name="Florist")
        inbox = Inbox(tenant_id=tenant.id, company_id=company.id, kind="whatsapp_waha", name="WhatsApp",
                      settings={"silence_alert_minutes": 60}, credentials="ciphertext")
        s.add(inbox)
        await s.flush()
        record_status(inbox, "WORKING")
        inbox_id = inbox.id

    async with sessionmaker() as s, s.begin():
        assert await flag_silent_inboxes(s, now=utcnow() + timedelta(minutes=30)) == []
    async with sessionmaker() as s, s.begin():
        flagged = await flag_silent_inboxes(s, now=utcnow() + timedelta(minutes=90))
        assert [i.id for i in flagged] == [inbox_id]
    async with sessionmaker() as s:
        shown = inbox_as_dict(await s.get(Inbox, inbox_id))
        assert shown["health"]["status"] == "WORKING" and shown["health"]["silent"] is True
        assert "credentials" not in shown and shown["has_credentials"] is True

    # A customer writes: the inbox is healthy again.
    async with sessionmaker() as s, s.begin():
        inbox = await s.get(Inbox, inbox_id)
        contact = Contact(tenant_id=inbox.tenant_id, company_id=inbox.company_id)
        s.add(contact)
        await s.flush()
        conv = Conversation(tenant_id=inbox.tenant_id, company_id=inbox.company_id, inbox_id=inbox.id,
                            contact_id=contact.id, state={})
        s.add(conv)
        await s.flush()
        await append_message(s, conversation=conv, direction="in", sender="contact", text="hi")
    async with sessionmaker() as s, s.begin():
        assert await flag_silent_inboxes(s, now=utcnow() + timedelta(minutes=5)) == []
        inbox = (await s.execute(select(Inbox).where(Inbox.id == inbox_id))).scalar_one()
        assert inbox.settings["health"]["silent"] is False


async def test_inbox_not_working_is_never_flagged(sessionmaker) -> None:  # type: ignore[no-untyped-def]
    async with sessionmaker() as s, s.begin():
        tenant = await create_tenant(s, name="Shop", slug="shop")
        company = await create_company(s, tenant_id=tenant.id, slug="shop", name="Shop")
        inbox = Inbox(tenant_id=tenant.id, company_id=company.id, kind="whatsapp_waha", name="WhatsApp", settings={})
        s.add(inbox)
        await s.flush()
        record_status(inbox, "SCAN_QR_CODE")
    async with sessionmaker() as s, s.begin():
        assert await flag_silent_inboxes(s, now=utcnow() + timedelta(days=3)) == []


async def test_built_in_web_chat_cannot_be_disconnected(sessionmaker) -> None:  # type: ignore[no-untyped-def]
    """The admin API and the CLI both go through disconnect_inbox: the web chat stays active."""
    async with sessionmaker() as s, s.begin():
        tenant = await create_tenant(s, name="Shop", slug="shop")
        company = await create_company(s, tenant_id=tenant.id, slug="shop", name="Shop")
        webchat = await inbox_of_kind(s, company, "webchat")
        with pytest.raises(InboxError, match="built-in webchat"):
            await disconnect_inbox(s, inbox=webchat, factory=ChannelFactory(channels=ChannelRegistry.default()))
        assert webchat.active
