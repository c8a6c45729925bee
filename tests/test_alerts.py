"""Alerts to a company's staff: recorded with the change (outbox), delivered once by e-mail (a real
aiosmtpd server), Telegram (the local Bot API double) and a signed webhook (a local receiver that
checks the HMAC itself), retried with back-off, every attempt logged — on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import func, select, update

from commerce.bookings import cancel_booking, hold_slot
from commerce.schedule import free_slots
from core.models import AlertDelivery, AlertEvent, Booking, Company
from core.timeutil import utcnow
from tests.doubles import LocalServer, WebhookReceiver
from tests.doubles.smtp_server import SMTPServer, smtp_server
from tests.doubles.telegram_bot_api import FakeBotAPI
from tests.test_api import AUTH, Env, make_company, make_settings, place_order, running, say
from tests.test_bookings import SALON_SCHEDULE, add_service

SUBS = "/api/v1/tenants/{t}/companies/{c}/alert-subscriptions"


class ScriptedReceiver(LocalServer):
    """A webhook endpoint answering the HTTP statuses in ``script`` in turn (then 200), recording
    every request's raw body and headers."""

    def __init__(self, script: list[int]) -> None:
        super().__init__()
        self.script = list(script)
        self.requests: list[tuple[dict[str, str], bytes]] = []

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests.append(({k.lower(): v for k, v in request.headers.items()}, await request.read()))
        return web.Response(status=self.script.pop(0) if self.script else 200, text="ok")


@asynccontextmanager
async def alert_app(database_url: str, tmp_path: Path, smtp: SMTPServer, bot: FakeBotAPI,
                    **overrides: Any) -> AsyncIterator[Env]:
    settings = make_settings(
        database_url, tmp_path, workers_enabled=False, smtp_host=smtp.host, smtp_port=smtp.port,
        smtp_from="alerts@chatcommerce.test", smtp_starttls=False, alerts_telegram_bot_token=bot.token,
        alerts_telegram_api_base=bot.api_base, alerts_allow_private_webhooks=True, alerts_retry_seconds=0,
        **overrides,
    )
    async with running(settings) as env:
        yield env


async def subscribe(env: Env, tenant: str, company: str, kind: str, target: str, events: list[str]) -> dict:
    r = await env.client.post(SUBS.format(t=tenant, c=company), json={"kind": kind, "target": target,
                                                                         "events": events}, headers=AUTH)
    assert r.status_code == 201, r.text
    return r.json()


def signature_ok(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """The receiver's own check: HMAC-SHA256 of the raw body, compared in constant time."""
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers.get("x-chatcommerce-signature", ""))


async def test_paid_order_reaches_every_channel_once(database_url: str, tmp_path: Path) -> None:
    with smtp_server() as smtp:
        async with FakeBotAPI() as bot, WebhookReceiver() as hook, alert_app(database_url, tmp_path, smtp, bot) as env:
            c = env.client
            await make_company(c, "alpha", "shop-a")
            await make_company(c, "beta", "shop-b")
            await subscribe(env, "alpha", "shop-a", "email", "owner@shop-a.test", ["order.paid"])
            await subscribe(env, "alpha", "shop-a", "telegram", "4242", ["order.paid", "handoff.requested"])
            created = await subscribe(env, "alpha", "shop-a", "webhook", f"{hook.url}/hooks/cc", ["order.paid"])
            secret = created["secret"]
            assert secret and created["has_secret"]
            listed = (await c.get(SUBS.format(t="alpha", c="shop-a"), headers=AUTH)).json()
            assert len(listed) == 3 and all(s["secret"] is None for s in listed)
            # Someone not interested in payments, and another tenant's company with the same interest.
            await subscribe(env, "alpha", "shop-a", "email", "bookings@shop-a.test", ["booking.cancelled"])
            await subscribe(env, "beta", "shop-b", "email", "owner@shop-b.test", ["order.paid"])

            chat = await say(c, "shop-a", "ann", "hello")
            placed = await place_order(env.runtime, chat["conversation_id"])
            r = await c.post(f"/api/v1/tenants/alpha/companies/shop-a/orders/{placed.order_id}/mark-paid",
                             json={"method": "cash"}, headers=AUTH)
            assert r.status_code == 200, r.text

            # The event was committed with the payment, before anything was sent.
            async with env.runtime.sessionmaker() as s:
                events = list((await s.execute(select(AlertEvent))).scalars())
            assert [(e.kind, e.status) for e in events] == [("order.paid", "pending")]
            assert not smtp.received and not bot.sent and not hook.deliveries

            done = await env.runtime.alerts.dispatch_once()
            assert done["events"] == 1 and done["sent"] == 3 and done["failed"] == 0

            assert [m.rcpt_tos for m in smtp.received] == [("owner@shop-a.test",)]
            mail = smtp.received[0].message()
            assert "order #1001 paid" in mail["Subject"] and "Shop-A" in mail["Subject"]
            assert "Method: cash" in mail.get_content()

            assert [call.params["chat_id"] for call in bot.sent] == ["4242"]
            assert "order #1001 paid" in bot.sent[0].params["text"]

            path, raw = hook.deliveries[0]
            assert path == "/hooks/cc" and signature_ok(secret, raw.headers, raw.body)
            body = json.loads(raw.body)
            assert body["type"] == "order.paid" and body["data"]["order_number"] == 1001
            assert body["data"]["total_minor"] == 10000 and body["data"]["currency"] == "USD"
            assert raw.headers["x-chatcommerce-timestamp"] == str(body["timestamp"])
            assert raw.headers["x-chatcommerce-event-id"] == body["id"] == str(events[0].id)
            assert not signature_ok("whsec_someone-else", raw.headers, raw.body)

            # Nothing is ever sent twice.
            again = await env.runtime.alerts.dispatch_once()
            assert again == {"events": 0, "sent": 0, "failed": 0, "stale": 0}
            assert len(smtp.received) == 1 and len(bot.sent) == 1 and len(hook.deliveries) == 1

            log = (await c.get("/api/v1/tenants/alpha/companies/shop-a/alert-deliveries", headers=AUTH)).json()
            assert sorted(d["channel"] for d in log) == ["email", "telegram", "webhook"]
            assert all(d["status"] == "sent" and d["event_kind"] == "order.paid" for d in log)
            assert all([a["ok"] for a in d["attempt_log"]] == [True] for d in log)
            assert {d["status_code"] for d in log} == {250, 200}
            # The other tenant's log is its own (and empty: its company had no paid order).
            assert (await c.get("/api/v1/tenants/beta/companies/shop-b/alert-deliveries", headers=AUTH)).json() == []
            assert (await c.get("/api/v1/tenants/beta/companies/shop-a/alert-deliveries",
                                headers=AUTH)).status_code == 404


async def test_webhook_retries_with_backoff_and_logs_every_attempt(database_url: str, tmp_path: Path) -> None:
    with smtp_server() as smtp:
        async with FakeBotAPI() as bot, ScriptedReceiver([503, 502]) as flaky, ScriptedReceiver([410]) as gone, \
                alert_app(database_url, tmp_path, smtp, bot, alerts_attempts=4) as env:
            c = env.client
            await make_company(c, "alpha", "shop-a")
            sub = await subscribe(env, "alpha", "shop-a", "webhook", f"{flaky.url}/in", ["order.paid"])
            await subscribe(env, "alpha", "shop-a", "webhook", f"{gone.url}/in", ["order.paid"])
            chat = await say(c, "shop-a", "ann", "hello")
            placed = await place_order(env.runtime, chat["conversation_id"])
            await c.post(f"/api/v1/tenants/alpha/companies/shop-a/orders/{placed.order_id}/mark-paid",
                         json={"method": "cash"}, headers=AUTH)
            done = await env.runtime.alerts.dispatch_once()
            assert (done["sent"], done["failed"]) == (1, 1)

            assert len(flaky.requests) == 3  # 503, 502, then accepted
            assert all(signature_ok(sub["secret"], h, b) for h, b in flaky.requests)
            assert len(gone.requests) == 1  # 410 is permanent: not retried

            log = {d["subscription_id"]: d for d in (await c.get(
                "/api/v1/tenants/alpha/companies/shop-a/alert-deliveries", headers=AUTH)).json()}
            ok = log[sub["id"]]
            assert ok["status"] == "sent" and ok["attempts"] == 3
            assert [(a["number"], a["ok"], a["status_code"]) for a in ok["attempt_log"]] == [
                (1, False, 503), (2, False, 502), (3, True, 200)]
            failed = next(d for d in log.values() if d["id"] != ok["id"])
            assert failed["status"] == "failed" and failed["status_code"] == 410
            assert [a["status_code"] for a in failed["attempt_log"]] == [410]

            metrics = (await c.get("/metrics")).text
            assert 'chatcommerce_alert_deliveries_total{kind="webhook",outcome="sent"} 1.0' in metrics
            assert 'chatcommerce_alert_deliveries_total{kind="webhook",outcome="failed"} 1.0' in metrics


async def test_claims_make_concurrent_dispatchers_send_once(database_url: str, tmp_path: Path) -> None:
    """Two dispatchers (two server processes) racing over the same outbox: each alert goes out once;
    a delivery left 'sending' by a process that died is failed, not repeated."""
    with smtp_server() as smtp:
        async with FakeBotAPI() as bot, WebhookReceiver() as hook, alert_app(database_url, tmp_path, smtp, bot) as env:
            c = env.client
            await make_company(c, "alpha", "shop-a")
            await subscribe(env, "alpha", "shop-a", "webhook", f"{hook.url}/in", ["order.paid"])
            await subscribe(env, "alpha", "shop-a", "email", "owner@shop-a.test", ["order.paid"])
            for n in range(3):
                chat = await say(c, "shop-a", f"buyer{n}", "hello")
                placed = await place_order(env.runtime, chat["conversation_id"])
                await c.post(f"/api/v1/tenants/alpha/companies/shop-a/orders/{placed.order_id}/mark-paid",
                             json={"method": "cash"}, headers=AUTH)
            from api.services import alert_dispatcher_from

            rt = env.runtime
            other = alert_dispatcher_from(rt.settings, sessionmaker=rt.sessionmaker, decrypt=rt.secret_box.decrypt)
            try:
                results = await asyncio.gather(rt.alerts.dispatch_once(), other.dispatch_once(),
                                               rt.alerts.dispatch_once())
            finally:
                await other.aclose()
            assert sum(r["events"] for r in results) == 3
            assert sum(r["sent"] for r in results) == 6
            assert len(hook.deliveries) == 3 and len(smtp.received) == 3
            ids = [json.loads(raw.body)["id"] for _, raw in hook.deliveries]
            assert len(set(ids)) == 3

            # A process died after claiming a delivery: after the stale period it is failed, not re-sent.
            async with rt.sessionmaker() as s, s.begin():
                one = (await s.execute(select(AlertDelivery).limit(1))).scalar_one()
                await s.execute(update(AlertDelivery).where(AlertDelivery.id == one.id).values(
                    status="sending", claimed_at=utcnow().replace(year=2020)))
            assert (await rt.alerts.dispatch_once())["stale"] == 1
            async with rt.sessionmaker() as s:
                again = await s.get(AlertDelivery, one.id)
                assert again is not None and again.status == "failed" and "interrupted" in (again.error or "")
            assert len(hook.deliveries) == 3 and len(smtp.received) == 3


async def test_handoff_and_failed_send_alert_through_telegram(database_url: str, tmp_path: Path) -> None:
    """A customer asking for a human (the real dialogue engine) alerts once; a reply the channel
    cannot deliver alerts as ``message.failed``. Telegram goes through the company's own inbox bot
    when no platform bot is configured."""
    with smtp_server() as smtp:
        async with FakeBotAPI() as bot:
            settings = make_settings(database_url, tmp_path, workers_enabled=False, alerts_retry_seconds=0,
                                     smtp_host=smtp.host, smtp_port=smtp.port, smtp_starttls=False,
                                     smtp_from="alerts@chatcommerce.test")
            async with running(settings, echo=False) as env:
                c = env.client
                await make_company(c, "alpha", "shop-a")
                r = await c.post("/api/v1/tenants/alpha/companies/shop-a/inboxes", headers=AUTH, json={
                    "kind": "telegram", "name": "Shop bot",
                    "credentials": {"bot_token": bot.token, "webhook_secret": "s3cret-s3cret"},
                    "settings": {"api_base": bot.api_base, "buffer_seconds": 0}})
                assert r.status_code == 201, r.text
                telegram_inbox = r.json()["id"]
                await subscribe(env, "alpha", "shop-a", "telegram", "-100777",
                                ["handoff.requested", "message.failed"])
                await subscribe(env, "alpha", "shop-a", "email", "owner@shop-a.test", ["handoff.requested"])

                first = await say(c, "shop-a", "ann", "I want to talk to a human")
                await say(c, "shop-a", "ann", "operator please")  # already with a manager: no second alert
                async with env.runtime.sessionmaker() as s:
                    kinds = list((await s.execute(select(AlertEvent.kind, AlertEvent.conversation_id))).all())
                assert kinds == [("handoff.requested", uuid.UUID(first["conversation_id"]))]
                await env.runtime.alerts.dispatch_once()
                staff = [call for call in bot.sent if call.params["chat_id"] == "-100777"]
                assert len(staff) == 1 and "asks for a human" in staff[0].params["text"]
                assert "I want to talk to a human" in staff[0].params["text"]
                assert "asks for a human" in smtp.received[0].message()["Subject"]

                # A customer on Telegram who blocked the bot: the reply fails for good.
                from channels.base import ParsedInbound

                bot.blocked_chats.add("5150")
                await env.runtime.pipeline.receive(inbox_id=uuid.UUID(telegram_inbox), parsed=ParsedInbound(
                    contact_source_id="5150", text="hello", received_at=utcnow(), source_id="5150:1"))
                async with env.runtime.sessionmaker() as s:
                    failed = list((await s.execute(select(AlertEvent).where(AlertEvent.kind == "message.failed"))
                                   ).scalars())
                assert len(failed) == 1 and failed[0].data["channel"] == "telegram"
                await env.runtime.alerts.dispatch_once()
                staff = [call for call in bot.sent if call.params["chat_id"] == "-100777"]
                assert len(staff) == 2 and "could not be delivered" in staff[1].params["text"]


async def test_bookings_confirmed_and_cancelled_are_recorded(sessionmaker) -> None:  # type: ignore[no-untyped-def]
    from commerce.schedule import set_schedule
    from core.accounts import create_company, create_tenant

    async with sessionmaker() as s, s.begin():
        tenant = await create_tenant(s, name="Salon", slug="salon")
        company = await create_company(s, tenant_id=tenant.id, slug="salon", name="Salon Hair", type="service",
                                       currency="EUR", timezone="Europe/Berlin")
        await set_schedule(s, company=company, schedule=SALON_SCHEDULE)
        service = await add_service(s, company, price=0)
    now = utcnow()
    async with sessionmaker() as s, s.begin():
        company = await s.get(Company, company.id)
        slots = []
        for ahead in range(7, 21):  # the first open day a week ahead (the salon closes on Sundays)
            slots = await free_slots(s, company=company, service=service, day=now.date() + timedelta(days=ahead),
                                     now=now)
            if slots:
                break
        booking = await hold_slot(s, company=company, service=service, start=slots[0].start, now=now)
        assert booking.status == "confirmed"
    async with sessionmaker() as s, s.begin():
        booking = await s.get(Booking, booking.id)
        await cancel_booking(s, booking=booking, now=now, by="company")
    async with sessionmaker() as s:
        events = list((await s.execute(select(AlertEvent).order_by(AlertEvent.created_at))).scalars())
    assert [e.kind for e in events] == ["booking.confirmed", "booking.cancelled"]
    assert events[1].data["by"] == "company" and events[1].data["booking_id"] == str(booking.id)
    assert events[0].data["start_at"] == slots[0].start.isoformat()


async def test_a_rolled_back_change_leaves_no_alert(sessionmaker) -> None:  # type: ignore[no-untyped-def]
    from core.accounts import create_company, create_tenant
    from core.alerts import record_alert

    async with sessionmaker() as s, s.begin():
        tenant = await create_tenant(s, name="A", slug="alpha")
        company = await create_company(s, tenant_id=tenant.id, slug="shop-a", name="Shop")
    with pytest.raises(RuntimeError):
        async with sessionmaker() as s, s.begin():
            await record_alert(s, tenant_id=tenant.id, company_id=company.id, kind="order.paid", data={})
            raise RuntimeError("the payment failed to save")
    async with sessionmaker() as s:
        assert (await s.execute(select(func.count()).select_from(AlertEvent))).scalar_one() == 0
    with pytest.raises(ValueError):
        async with sessionmaker() as s:
            await record_alert(s, tenant_id=tenant.id, company_id=company.id, kind="order.shipped")


async def test_subscription_validation(env: Env) -> None:
    c = env.client
    await make_company(c, "alpha", "shop-a")
    url = SUBS.format(t="alpha", c="shop-a")
    bad = [
        {"kind": "sms", "target": "+100", "events": ["order.paid"]},
        {"kind": "email", "target": "not-an-address", "events": ["order.paid"]},
        {"kind": "telegram", "target": "@someone", "events": ["order.paid"]},
        {"kind": "webhook", "target": "ftp://example.com/x", "events": ["order.paid"]},
        {"kind": "webhook", "target": "http://127.0.0.1:5432/", "events": ["order.paid"]},
        {"kind": "webhook", "target": "http://localhost/hook", "events": ["order.paid"]},
        {"kind": "email", "target": "a@b.co", "events": []},
        {"kind": "email", "target": "a@b.co", "events": ["order.shipped"]},
        {"kind": "email", "target": "a\x00b@b.co", "events": ["order.paid"]},
        {"kind": "webhook", "target": "https://hooks.example.com/\x00", "events": ["order.paid"]},
    ]
    for body in bad:
        r = await c.post(url, json=body, headers=AUTH)
        assert r.status_code == 422, (body, r.text)
    ok = await c.post(url, json={"kind": "webhook", "target": "https://hooks.example.com/cc"}, headers=AUTH)
    assert ok.status_code == 201 and ok.json()["events"] == ["handoff.requested", "message.failed", "order.paid",
                                                              "booking.confirmed", "booking.cancelled"]
    sub_id = ok.json()["id"]
    await make_company(c, "beta", "shop-b")
    assert (await c.delete(f"{SUBS.format(t='beta', c='shop-b')}/{sub_id}", headers=AUTH)).status_code == 404
    assert (await c.delete(f"{url}/{sub_id}", headers=AUTH)).status_code == 204
    assert (await c.get(url, headers=AUTH)).json() == []
    assert (await c.get(url)).status_code == 401


@pytest.fixture
async def env(database_url: str, tmp_path: Path) -> AsyncIterator[Env]:
    async with running(make_settings(database_url, tmp_path)) as e:
        yield e



async def test_webhook_to_a_private_address_is_refused_at_send_time(database_url: str, tmp_path: Path) -> None:
    """Accepted when the subscription was made (private targets were allowed then), refused when the
    platform no longer allows them: the host resolves to loopback, nothing is posted."""
    from api.services import alert_dispatcher_from

    with smtp_server() as smtp:
        async with FakeBotAPI() as bot, WebhookReceiver() as hook, alert_app(database_url, tmp_path, smtp, bot) as env:
            c = env.client
            await make_company(c, "alpha", "shop-a")
            await subscribe(env, "alpha", "shop-a", "webhook", f"{hook.url.replace('127.0.0.1', 'localhost')}/in",
                            ["order.paid"])
            chat = await say(c, "shop-a", "ann", "hello")
            placed = await place_order(env.runtime, chat["conversation_id"])
            await c.post(f"/api/v1/tenants/alpha/companies/shop-a/orders/{placed.order_id}/mark-paid",
                         json={"method": "cash"}, headers=AUTH)
            rt = env.runtime
            strict = alert_dispatcher_from(rt.settings.model_copy(update={"alerts_allow_private_webhooks": False}),
                                           sessionmaker=rt.sessionmaker, decrypt=rt.secret_box.decrypt)
            try:
                done = await strict.dispatch_once()
            finally:
                await strict.aclose()
            assert (done["sent"], done["failed"]) == (0, 1) and hook.deliveries == []
            log = (await c.get("/api/v1/tenants/alpha/companies/shop-a/alert-deliveries", headers=AUTH)).json()
            assert "non-public address" in log[0]["error"]


def test_alert_texts_are_in_the_companys_language() -> None:
    """The staff of a Russian-speaking company read their alerts in Russian (money and times in its
    format and timezone); an English (or unsupported-language) company gets English."""
    from datetime import UTC, datetime

    from channels.alerts import render_alert

    conversation = uuid.uuid4()
    paid = AlertEvent(kind="order.paid", conversation_id=conversation,
                      data={"order_number": 1001, "total_minor": 249000, "currency": "RUB",
                            "customer_name": "Анна", "method": "cash"})
    cancelled = AlertEvent(kind="booking.cancelled", conversation_id=None,
                           data={"service": "Стрижка", "start_at": datetime(2026, 3, 13, 12, 0, tzinfo=UTC).isoformat(),
                                 "resource": "Ольга", "customer_name": "Анна", "phone": "+7 900 000-00-00",
                                 "by": "customer", "refund_due": True})
    asked = AlertEvent(kind="handoff.requested", conversation_id=None,
                       data={"channel": "telegram", "text": "хочу оператора"})
    ru = Company(name="Цветы", language="ru", currency="RUB", timezone="Europe/Moscow")

    text = render_alert(paid, ru)
    assert text.subject == "Цветы: заказ №1001 оплачен, 2 490,00 ₽"
    assert text.body.splitlines()[2:] == ["Клиент: Анна", "Способ оплаты: cash", f"Диалог: {conversation}"]
    text = render_alert(cancelled, ru)
    assert text.subject == "Цветы: запись отменена, Стрижка пт 13 марта, 15:00"  # 12:00 UTC in Moscow
    assert "Специалист: Ольга" in text.body and "Кто отменил: клиент; нужен возврат: да" in text.body
    assert render_alert(asked, ru).body.splitlines()[2:] == ["Канал: telegram", "Сообщение: хочу оператора"]
    ru.settings = {"locale": "en_US"}  # the company's own locale setting wins over its language
    assert render_alert(paid, ru).subject == "Цветы: заказ №1001 оплачен, 2,490.00 RUB"

    for language, amount in (("en", "2,490.00 RUB"), ("de", "2.490,00 RUB")):  # money in the company's locale
        en = Company(name="Flowers", language=language, currency="USD", timezone="America/New_York")
        assert render_alert(paid, en).subject == f"Flowers: order #1001 paid, {amount}"
        text = render_alert(cancelled, en)
        assert text.subject == "Flowers: booking cancelled, Стрижка Fri 13 Mar, 08:00"
        assert "Cancelled by: the customer; refund due: yes" in text.body
