"""Company metrics on a fixed data set with known answers, lead-source attribution, no-shows and the
operators' Prometheus endpoint — on SQLite and PostgreSQL.

The data set (company timezone UTC, period 2026-03-01..2026-03-31):

* C1 webchat, created Mar 2, lead ``tiktok-spring``: in 10:00:00 → bot 10:00:02 (2 s); in 10:05:00,
  in 10:05:10 → bot 10:05:16 (one burst: 16 s). Order 1001 (50.00 USD) linked Mar 2, paid Mar 2.
  Booking B2 made Mar 5, cancelled Mar 6.
* C2 telegram, created Mar 3, lead ``tiktok-spring``: in → bot 4 s; "human" → bot 1 s (handoff,
  alert event); manager 09:10; in 09:12 → manager 09:13 (not a bot reply). Order 1002 linked, unpaid.
  Booking B3 made Feb 20, starting Mar 4, no-show.
* C3 telegram, created Mar 10, untagged: in → bot 10 s; a handoff event (later released); order 1003
  (25.00 EUR) linked and paid Mar 10; booking B1 made Mar 10. In Mar 31 23:59:50 → bot Apr 1
  00:00:05 (15 s: the wait opened in the period; the reply itself is outside it).
* C4 webchat, created Feb 27, lead ``ig``: in Mar 1 08:00 → bot 30 s; order 1004 (10.00 USD) linked
  Feb 28, paid Mar 1 (paid in the period; the conversation is not in the period's cohort).
* C5 webchat, created Apr 1: outside. B4: held, never confirmed, no conversation.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from channels.base import ParsedInbound
from core.models import (
    AlertEvent,
    Booking,
    Company,
    Contact,
    Conversation,
    Inbox,
    Message,
    Order,
    Payment,
    Resource,
)
from core.timeutil import utcnow
from tests.test_api import AUTH, Env, import_file, make_company, make_settings, running, say

METRICS = "/api/v1/tenants/acme/companies/shop/metrics"


def t(month: int, day: int, hh: int = 0, mm: int = 0, ss: int = 0) -> datetime:
    return datetime(2026, month, day, hh, mm, ss, tzinfo=UTC)


class DataSet:
    """Writes the module docstring's rows for one company."""

    def __init__(self, s: Any, company: Company, inboxes: dict[str, Inbox]) -> None:
        self.s, self.company, self.inboxes = s, company, inboxes
        self.number = 1000

    async def conversation(self, kind: str, created: datetime, lead: str | None, *,
                           handoff: bool = False) -> Conversation:
        c = self.company
        contact = Contact(tenant_id=c.tenant_id, company_id=c.id, name="X")
        self.s.add(contact)
        await self.s.flush()
        conv = Conversation(tenant_id=c.tenant_id, company_id=c.id, inbox_id=self.inboxes[kind].id,
                            contact_id=contact.id, status="open", handoff=handoff, state={}, lead_source=lead,
                            created_at=created, updated_at=created)
        self.s.add(conv)
        await self.s.flush()
        return conv

    async def messages(self, conv: Conversation, *rows: tuple[str, datetime]) -> None:
        """``rows``: (sender, time) in order; sender contact → in, bot/manager → out."""
        kind = next(k for k, i in self.inboxes.items() if i.id == conv.inbox_id)
        for seq, (sender, when) in enumerate(rows, start=1):
            self.s.add(Message(tenant_id=conv.tenant_id, conversation_id=conv.id, inbox_id=conv.inbox_id,
                               channel=kind, direction="in" if sender == "contact" else "out", sender=sender,
                               text="...", status="processed" if sender == "contact" else "sent", seq=seq,
                               created_at=when))
        await self.s.flush()

    async def order(self, conv: Conversation | None, total: int, currency: str, *, linked: datetime,
                    paid: datetime | None = None) -> None:
        c = self.company
        self.number += 1
        order = Order(tenant_id=c.tenant_id, company_id=c.id, conversation_id=conv.id if conv else None,
                      number=self.number, status="paid" if paid else "pending_payment",
                      payment_status="paid" if paid else "payment_link_sent", total_minor=total, currency=currency,
                      paid_at=paid, created_at=linked)
        self.s.add(order)
        await self.s.flush()
        self.s.add(Payment(tenant_id=c.tenant_id, order_id=order.id, provider="manual",
                           status="paid" if paid else "payment_link_sent", amount_minor=total, currency=currency,
                           checkout_url=f"https://pay.example/{self.number}", created_at=linked, paid_at=paid))
        await self.s.flush()

    async def booking(self, conv: Conversation | None, resource: Resource, *, created: datetime, status: str,
                      start_at: datetime, confirmed: bool = True, cancelled: datetime | None = None) -> None:
        c = self.company
        self.s.add(Booking(tenant_id=c.tenant_id, company_id=c.id, resource_id=resource.id,
                           conversation_id=conv.id if conv else None, status=status, start_at=start_at,
                           end_at=start_at.replace(hour=start_at.hour + 1), service_name="Cut",
                           resource_name=resource.name, currency="USD", created_at=created,
                           confirmed_at=created if confirmed else None, cancelled_at=cancelled))
        await self.s.flush()

    async def handoff_event(self, conv: Conversation, when: datetime) -> None:
        self.s.add(AlertEvent(tenant_id=conv.tenant_id, company_id=conv.company_id, kind="handoff.requested",
                              conversation_id=conv.id, data={}, status="dispatched", created_at=when))
        await self.s.flush()


async def build_data_set(env: Env) -> None:
    await make_company(env.client, "acme", "shop")
    async with env.runtime.sessionmaker() as s, s.begin():
        company = (await s.execute(select(Company).where(Company.slug == "shop"))).scalar_one()
        webchat = (await s.execute(select(Inbox).where(Inbox.company_id == company.id, Inbox.kind == "webchat"))
                   ).scalar_one()
        telegram = Inbox(tenant_id=company.tenant_id, company_id=company.id, kind="telegram", name="bot", settings={})
        s.add(telegram)
        resource = Resource(tenant_id=company.tenant_id, company_id=company.id, name="Anna", days_off=[])
        s.add(resource)
        await s.flush()
        d = DataSet(s, company, {"webchat": webchat, "telegram": telegram})

        c1 = await d.conversation("webchat", t(3, 2, 10), "tiktok-spring")
        await d.messages(c1, ("contact", t(3, 2, 10, 0, 0)), ("bot", t(3, 2, 10, 0, 2)),
                         ("contact", t(3, 2, 10, 5, 0)), ("contact", t(3, 2, 10, 5, 10)), ("bot", t(3, 2, 10, 5, 16)))
        await d.order(c1, 5000, "USD", linked=t(3, 2, 10, 6), paid=t(3, 2, 11))
        await d.booking(c1, resource, created=t(3, 5), status="cancelled", start_at=t(3, 25, 10),
                        cancelled=t(3, 6))

        c2 = await d.conversation("telegram", t(3, 3, 9), "tiktok-spring", handoff=True)
        await d.messages(c2, ("contact", t(3, 3, 9, 0, 0)), ("bot", t(3, 3, 9, 0, 4)),
                         ("contact", t(3, 3, 9, 1, 0)), ("bot", t(3, 3, 9, 1, 1)), ("manager", t(3, 3, 9, 10)),
                         ("contact", t(3, 3, 9, 12)), ("manager", t(3, 3, 9, 13)))
        await d.handoff_event(c2, t(3, 3, 9, 1, 1))
        await d.order(c2, 7000, "USD", linked=t(3, 3, 9, 20))
        await d.booking(c2, resource, created=t(2, 20), status="no_show", start_at=t(3, 4, 10))

        c3 = await d.conversation("telegram", t(3, 10, 12), None)
        await d.messages(c3, ("contact", t(3, 10, 12, 0, 0)), ("bot", t(3, 10, 12, 0, 10)),
                         ("contact", t(3, 31, 23, 59, 50)), ("bot", t(4, 1, 0, 0, 5)))
        await d.handoff_event(c3, t(3, 10, 12, 1))
        await d.order(c3, 2500, "EUR", linked=t(3, 10, 12, 5), paid=t(3, 10, 12, 30))
        await d.booking(c3, resource, created=t(3, 10, 12, 40), status="confirmed", start_at=t(3, 20, 10))

        c4 = await d.conversation("webchat", t(2, 27, 15), "ig")
        await d.messages(c4, ("contact", t(3, 1, 8, 0, 0)), ("bot", t(3, 1, 8, 0, 30)))
        await d.order(c4, 1000, "USD", linked=t(2, 28), paid=t(3, 1, 9))

        c5 = await d.conversation("webchat", t(4, 1), "tiktok-spring")
        await d.messages(c5, ("contact", t(4, 1, 0, 1)), ("bot", t(4, 1, 0, 1, 3)))
        await d.booking(None, resource, created=t(3, 15), status="held", start_at=t(3, 16, 10), confirmed=False)


@pytest.fixture
async def env(database_url: str, tmp_path: Path) -> AsyncIterator[Env]:
    async with running(make_settings(database_url, tmp_path)) as e:
        yield e


def conversion(conversations: int, linked: int, paid: int) -> dict[str, Any]:
    def ratio(a: int, b: int) -> float | None:
        return round(a / b, 4) if b else None

    return {"conversations": conversations, "with_payment_link": linked, "paid": paid,
            "link_rate": ratio(linked, conversations), "paid_rate_of_links": ratio(paid, linked),
            "paid_rate": ratio(paid, conversations)}


async def test_metrics_on_a_fixed_data_set(env: Env) -> None:
    await build_data_set(env)
    r = await env.client.get(METRICS, params={"from": "2026-03-01", "to": "2026-03-31"}, headers=AUTH)
    assert r.status_code == 200, r.text
    m = r.json()
    assert (m["from"], m["to"]) == ("2026-03-01T00:00:00+00:00", "2026-04-01T00:00:00+00:00")
    assert m["total"] == {
        "conversations": 3, "messages_in": 9, "messages_out": 8,
        "median_bot_reply_seconds": 10.0, "bot_replies": 7,  # 1, 2, 4, 10, 15, 16, 30
        "handed_to_human": 2, "handoff_share": 0.6667,
        "payment_links_sent": 3, "paid_orders": 3,
        "revenue": [{"currency": "EUR", "amount_minor": 2500}, {"currency": "USD", "amount_minor": 6000}],
        "conversion": conversion(3, 3, 2),
        "bookings": 2, "cancelled_bookings": 1, "no_shows": 1,
    }
    web, tg = m["channels"]["webchat"], m["channels"]["telegram"]
    assert set(m["channels"]) == {"webchat", "telegram"}
    assert (web["conversations"], web["messages_in"], web["messages_out"]) == (1, 4, 3)
    assert (web["median_bot_reply_seconds"], web["bot_replies"]) == (16.0, 3)  # 2, 16, 30
    assert (web["paid_orders"], web["revenue"], web["payment_links_sent"]) == (
        2, [{"currency": "USD", "amount_minor": 6000}], 1)
    assert web["conversion"] == conversion(1, 1, 1)
    assert (web["bookings"], web["cancelled_bookings"], web["no_shows"], web["handoff_share"]) == (1, 1, 0, 0.0)
    assert (tg["conversations"], tg["messages_in"], tg["messages_out"]) == (2, 5, 5)
    assert (tg["median_bot_reply_seconds"], tg["bot_replies"]) == (7.0, 4)  # 1, 4, 10, 15
    assert (tg["handed_to_human"], tg["handoff_share"]) == (2, 1.0)
    assert tg["conversion"] == conversion(2, 2, 1)
    assert tg["revenue"] == [{"currency": "EUR", "amount_minor": 2500}]
    assert (tg["bookings"], tg["no_shows"]) == (1, 1)

    sources = m["lead_sources"]
    assert set(sources) == {"tiktok-spring", "ig", "(none)"}
    tiktok, ig, untagged = sources["tiktok-spring"], sources["ig"], sources["(none)"]
    assert (tiktok["conversations"], tiktok["median_bot_reply_seconds"], tiktok["handoff_share"]) == (2, 3.0, 0.5)
    assert tiktok["conversion"] == conversion(2, 2, 1)
    assert tiktok["revenue"] == [{"currency": "USD", "amount_minor": 5000}]
    assert (tiktok["bookings"], tiktok["cancelled_bookings"], tiktok["no_shows"]) == (1, 1, 1)
    assert (ig["conversations"], ig["messages_in"], ig["paid_orders"], ig["handoff_share"]) == (0, 1, 1, None)
    assert ig["conversion"] == conversion(0, 0, 0)
    assert (untagged["conversations"], untagged["median_bot_reply_seconds"], untagged["paid_orders"]) == (1, 12.5, 1)

    # One day only: Mar 2 is C1 alone.
    day = (await env.client.get(METRICS, params={"from": "2026-03-02", "to": "2026-03-02"}, headers=AUTH)).json()
    assert (day["total"]["conversations"], day["total"]["messages_in"], day["total"]["paid_orders"]) == (1, 3, 1)
    assert day["total"]["median_bot_reply_seconds"] == 9.0  # 2 and 16
    # An empty period answers zeros, not errors.
    empty = (await env.client.get(METRICS, params={"from": "2025-01-01", "to": "2025-01-31"}, headers=AUTH)).json()
    assert empty["total"]["conversations"] == 0 and empty["total"]["median_bot_reply_seconds"] is None
    assert empty["channels"] == {} and empty["total"]["conversion"]["paid_rate"] is None


async def test_metrics_range_and_tenant_checks(env: Env) -> None:
    await make_company(env.client, "acme", "shop")
    await make_company(env.client, "other", "elsewhere")
    c = env.client
    assert (await c.get(METRICS, params={"from": "2026-03-02", "to": "2026-03-01"}, headers=AUTH)).status_code == 422
    assert (await c.get(METRICS, params={"from": "2024-01-01", "to": "2026-03-01"}, headers=AUTH)).status_code == 422
    assert (await c.get(METRICS, params={"from": "March"}, headers=AUTH)).status_code == 422
    edge = await c.get(METRICS, params={"from": "9999-12-31", "to": "9999-12-31"}, headers=AUTH)
    assert edge.status_code == 422
    first_day = await c.get(METRICS, params={"from": "0001-01-01", "to": "0001-01-01"}, headers=AUTH)
    assert first_day.status_code == 200 and first_day.json()["total"]["conversations"] == 0
    assert (await c.get("/api/v1/tenants/other/companies/shop/metrics", headers=AUTH)).status_code == 404
    assert (await c.get(METRICS)).status_code == 401
    default = (await c.get(METRICS, headers=AUTH)).json()
    assert default["to_day"] == utcnow().date().isoformat()


async def test_lead_source_from_first_message_and_telegram_start(env: Env) -> None:
    c = env.client
    await make_company(c, "acme", "shop")
    tagged = await say(c, "shop", "ann", "Hi! (ref: TikTok-Spring)")
    await say(c, "shop", "ann", "and also ref: other-campaign")  # later messages do not re-attribute
    plain = await say(c, "shop", "bob", "hello")
    async with env.runtime.sessionmaker() as s, s.begin():
        company = (await s.execute(select(Company).where(Company.slug == "shop"))).scalar_one()
        telegram = Inbox(tenant_id=company.tenant_id, company_id=company.id, kind="telegram", name="bot",
                         settings={"buffer_seconds": 0})
        s.add(telegram)
    # What Telegram sends for https://t.me/<bot>?start=ig-bio (channels.telegram keeps the text).
    stored, _ = await env.runtime.pipeline.store(inbox_id=telegram.id, parsed=ParsedInbound(
        contact_source_id="777", text="/start ig-bio", received_at=utcnow(), source_id="777:1"))
    async with env.runtime.sessionmaker() as s:
        sources = {str(cid): src for cid, src in (await s.execute(select(Conversation.id, Conversation.lead_source)))}
    assert sources == {tagged["conversation_id"]: "tiktok-spring", plain["conversation_id"]: None,
                       str(stored.conversation_id): "ig-bio"}
    m = (await c.get(METRICS, headers=AUTH)).json()
    assert {k: v["conversations"] for k, v in m["lead_sources"].items()} == {
        "tiktok-spring": 1, "ig-bio": 1, "(none)": 1}


@pytest.mark.parametrize(("text", "source"), [
    ("Hi! (ref: tiktok-spring)", "tiktok-spring"),
    ("hello ref=Google_Ads", "google_ads"),
    ("Hello #ref-insta.bio", "insta.bio"),
    ("/start spring26", "spring26"),
    ("/start ref-spring26", "spring26"),
    ("/start@shop_bot fb", "fb"),
    ("/start", None),
    ("I prefer: blue", None),
    ("reference: 12", None),
    ("hello", None),
])
def test_lead_source_grammar(text: str, source: str | None) -> None:
    from core.leads import lead_source_of

    assert lead_source_of(text) == source


async def test_no_show_is_marked_and_counted(env: Env) -> None:
    await build_data_set(env)
    async with env.runtime.sessionmaker() as s:
        b1 = (await s.execute(select(Booking).where(Booking.status == "confirmed"))).scalar_one()
        cancelled = (await s.execute(select(Booking).where(Booking.status == "cancelled"))).scalar_one()
    base = "/api/v1/tenants/acme/companies/shop/bookings"
    r = await env.client.post(f"{base}/{b1.id}/no-show", headers=AUTH)
    assert r.status_code == 200, r.text
    assert r.json()["booking"]["status"] == "no_show"
    assert (await env.client.post(f"{base}/{b1.id}/no-show", headers=AUTH)).status_code == 409
    assert (await env.client.post(f"{base}/{cancelled.id}/no-show", headers=AUTH)).status_code == 409
    assert (await env.client.post(f"{base}/{uuid.uuid4()}/no-show", headers=AUTH)).status_code == 404
    m = (await env.client.get(METRICS, params={"from": "2026-03-01", "to": "2026-03-31"}, headers=AUTH)).json()
    assert m["total"]["no_shows"] == 2 and m["total"]["bookings"] == 2
    listed = (await env.client.get(base, params={"status": "no_show"}, headers=AUTH)).json()
    assert len(listed) == 2


async def test_no_show_refused_before_the_start(env: Env) -> None:
    await make_company(env.client, "acme", "shop")
    async with env.runtime.sessionmaker() as s, s.begin():
        company = (await s.execute(select(Company).where(Company.slug == "shop"))).scalar_one()
        resource = Resource(tenant_id=company.tenant_id, company_id=company.id, name="Anna", days_off=[])
        s.add(resource)
        await s.flush()
        future = Booking(tenant_id=company.tenant_id, company_id=company.id, resource_id=resource.id,
                         status="confirmed", start_at=t(12, 1, 10).replace(year=2099),
                         end_at=t(12, 1, 11).replace(year=2099), service_name="Cut", resource_name="Anna",
                         currency="USD", confirmed_at=utcnow())
        s.add(future)
    r = await env.client.post(f"/api/v1/tenants/acme/companies/shop/bookings/{future.id}/no-show", headers=AUTH)
    assert r.status_code == 409 and "not started" in r.json()["detail"]


async def test_prometheus_metrics_count_without_tenant_data(database_url: str, tmp_path: Path) -> None:
    async with running(make_settings(database_url, tmp_path, metrics_token="scrape-me")) as env:
        c = env.client
        await make_company(c, "acme-secret-tenant", "hidden-shop")
        await say(c, "hidden-shop", "ann", "hello")
        await say(c, "hidden-shop", "ann", "second")
        async with env.runtime.sessionmaker() as s, s.begin():
            company = (await s.execute(select(Company).where(Company.slug == "hidden-shop"))).scalar_one()
            inbox = Inbox(tenant_id=company.tenant_id, company_id=company.id, kind="telegram", name="bot",
                          credentials=env.runtime.secret_box.encrypt('{"bot_token": "1:x", "webhook_secret": "s"}'),
                          settings={})
            s.add(inbox)
        faq = b"Question,Answer\nHow long is delivery?,Two days.\n"
        assert (await import_file(c, "acme-secret-tenant", "hidden-shop", "faq.csv", faq))["status"] == "done"
        broken = b"Question,Answer\n,\n"
        assert (await import_file(c, "acme-secret-tenant", "hidden-shop", "faq.csv", broken))["status"] == "failed"
        refused = await c.post(f"/webhooks/telegram/{inbox.id}", json={"update_id": 1},
                               headers={"X-Telegram-Bot-Api-Secret-Token": "wrong"})
        assert refused.status_code == 401
        assert (await c.get("/metrics")).status_code == 401
        assert (await c.get("/metrics", headers={"Authorization": "Bearer nope"})).status_code == 401
        r = await c.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
        text = r.text
        assert 'chatcommerce_messages_received_total{channel="webchat"} 2.0' in text
        assert 'chatcommerce_messages_sent_total{channel="webchat"} 2.0' in text
        assert 'chatcommerce_webhook_refusals_total{channel="telegram"} 1.0' in text
        assert "chatcommerce_pipeline_seconds_count 2.0" in text
        assert 'chatcommerce_import_jobs_total{outcome="ok"} 1.0' in text
        assert 'chatcommerce_import_jobs_total{outcome="failed"} 1.0' in text
        for secret in ("acme-secret-tenant", "hidden-shop", str(company.id), str(company.tenant_id), str(inbox.id)):
            assert secret not in text
