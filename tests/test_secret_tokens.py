"""Payment-page and calendar-feed tokens (issue 7 §2): 256-bit random, stored only as SHA-256, looked up
by hash, kept out of the access log; migration 0005 hashes the tokens of existing rows so links
already sent keep working. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
import uvicorn
from alembic import command
from sqlalchemy.ext.asyncio import create_async_engine

from api.app import create_app
from commerce.calendar_feed import company_by_feed_token, issue_feed_token
from commerce.cart import add_to_cart, open_cart
from commerce.orders import checkout
from commerce.payments import payment_by_token
from core.db import create_engine, create_sessionmaker
from core.logging import RedactTokenPaths
from core.migrate import alembic_config, upgrade
from core.models import Company, Conversation, KnowledgeItem, Order, Payment
from tests.conftest import PG_ADMIN_URL, _pg_admin
from tests.test_api import AUTH, Env, make_company, make_settings, place_order, running, say


def sha256(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# -- the payment page ------------------------------------------------------------------------------


@pytest.fixture
async def env(database_url: str, tmp_path: Path) -> AsyncIterator[Env]:
    async with running(make_settings(database_url, tmp_path)) as e:
        yield e


async def test_the_pay_page_opens_from_the_link_and_the_database_keeps_only_a_hash(env: Env) -> None:
    c = env.client
    await make_company(c, "acme", "acme-shop")
    chat = await say(c, "acme-shop", "ann", "checkout")
    placed = await place_order(env.runtime, chat["conversation_id"])
    assert len(placed.token) >= 43  # 256 random bits, URL-safe

    page = await c.get(f"/pay/{placed.token}")
    assert page.status_code == 200 and "Order #1001" in page.text
    assert f'action="/pay/{placed.token}/test"' in page.text

    async with env.runtime.sessionmaker() as s:
        stored = (await s.execute(sa.text("SELECT * FROM payments"))).mappings().one()
    assert "token" not in stored and stored["token_hash"] == sha256(placed.token)
    # The hash is not a key to the page, nor is anything near the token.
    for wrong in (stored["token_hash"], placed.token[:-2], placed.token + "x", "x" * 5000, "%00"):
        assert (await c.get(f"/pay/{wrong}")).status_code == 404, wrong
        assert (await c.post(f"/pay/{wrong}/test")).status_code == 404, wrong
    paid = await c.post(f"/pay/{placed.token}/test", follow_redirects=True)
    assert paid.status_code == 200 and 'data-state="paid"' in paid.text


async def test_a_manager_marked_payment_has_no_page(env: Env) -> None:
    c = env.client
    await make_company(c, "acme", "acme-shop")
    chat = await say(c, "acme-shop", "ann", "hi")
    async with env.runtime.sessionmaker() as s, s.begin():
        conversation = await s.get(Conversation, uuid.UUID(chat["conversation_id"]))
        assert conversation is not None
        company = await s.get(Company, conversation.company_id)
        assert company is not None
        item = KnowledgeItem(tenant_id=company.tenant_id, company_id=company.id, name="Shirt", price_minor=500,
                             currency="USD", attributes={})
        s.add(item)
        await s.flush()
        cart = await open_cart(s, conversation)
        await add_to_cart(s, cart, item_id=item.id, variant_id=None, quantity=1)
        order: Order = await checkout(s, cart=cart, conversation=conversation, company=company,
                                      customer_name="Ann", delivery_address="1 Main St")
        order_id = order.id
    r = await c.post(f"/api/v1/tenants/acme/companies/acme-shop/orders/{order_id}/mark-paid", json={"method": "cash"},
                     headers=AUTH)
    assert r.status_code == 200 and r.json()["payment_status"] == "paid"
    async with env.runtime.sessionmaker() as s:
        payment = (await s.execute(sa.select(Payment).where(Payment.order_id == order_id))).scalar_one()
        assert payment.method == "cash" and payment.token_hash is None


# -- migration 0005 keeps old links working -----------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL with no tables at all (each test migrates it itself)."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'migrate.db'}"
        return
    name = f"chatcommerce_mig_{uuid.uuid4().hex[:10]}"
    try:
        asyncio.run(_pg_admin(f'CREATE DATABASE "{name}"'))
    except Exception as exc:  # noqa: BLE001 - any connection failure means "no server"
        pytest.skip(f"PostgreSQL not reachable at {PG_ADMIN_URL}: {exc!r}")
    try:
        yield f"postgresql+asyncpg://postgres@127.0.0.1:5432/{name}"
    finally:
        asyncio.run(_pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _rows_at_0004(url: str, *, pay_token: str, feed_token: str) -> dict[str, uuid.UUID]:
    """A tenant, a company with a calendar feed, and an order with a payment link, written with the
    0004 schema (plaintext tokens), the way an older release stored them."""
    ids = {k: uuid.uuid4() for k in ("tenant", "company", "order", "payment", "feed")}
    now = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)
    meta = sa.MetaData()
    tenants = sa.Table("tenants", meta, sa.Column("id", sa.Uuid()), sa.Column("name", sa.String()),
                       sa.Column("slug", sa.String()), sa.Column("created_at", sa.DateTime(timezone=True)))
    companies = sa.Table("companies", meta, *(sa.Column(n, sa.String()) for n in (
        "slug", "human_id", "name", "type", "currency", "language", "timezone", "payment_provider")),
        sa.Column("kb_version", sa.Integer()), sa.Column("settings", sa.JSON()), sa.Column("id", sa.Uuid()),
        sa.Column("tenant_id", sa.Uuid()), sa.Column("created_at", sa.DateTime(timezone=True)))
    orders = sa.Table("orders", meta, sa.Column("company_id", sa.Uuid()), sa.Column("number", sa.Integer()),
                      sa.Column("status", sa.String()), sa.Column("payment_status", sa.String()),
                      sa.Column("total_minor", sa.BigInteger()), sa.Column("currency", sa.String()),
                      sa.Column("id", sa.Uuid()), sa.Column("tenant_id", sa.Uuid()),
                      sa.Column("created_at", sa.DateTime(timezone=True)))
    payments = sa.Table("payments", meta, sa.Column("order_id", sa.Uuid()), sa.Column("provider", sa.String()),
                        sa.Column("status", sa.String()), sa.Column("amount_minor", sa.BigInteger()),
                        sa.Column("currency", sa.String()), sa.Column("token", sa.String()),
                        sa.Column("checkout_url", sa.String()), sa.Column("id", sa.Uuid()),
                        sa.Column("tenant_id", sa.Uuid()), sa.Column("created_at", sa.DateTime(timezone=True)))
    feeds = sa.Table("calendar_feeds", meta, sa.Column("company_id", sa.Uuid()), sa.Column("token", sa.String()),
                     sa.Column("token_hash", sa.String()), sa.Column("rotated_at", sa.DateTime(timezone=True)),
                     sa.Column("id", sa.Uuid()), sa.Column("tenant_id", sa.Uuid()),
                     sa.Column("created_at", sa.DateTime(timezone=True)))

    async def write() -> None:
        engine = create_async_engine(url)
        async with engine.begin() as conn:
            await conn.execute(tenants.insert().values(id=ids["tenant"], name="Old", slug="old", created_at=now))
            await conn.execute(companies.insert().values(
                slug="old-shop", human_id="OLD1", name="Old Shop", type="product", currency="USD", language="en",
                timezone="UTC", payment_provider="manual", kb_version=0, settings={}, id=ids["company"],
                tenant_id=ids["tenant"], created_at=now))
            await conn.execute(orders.insert().values(
                company_id=ids["company"], number=1001, status="pending_payment", payment_status="payment_link_sent",
                total_minor=1000, currency="USD", id=ids["order"], tenant_id=ids["tenant"], created_at=now))
            await conn.execute(payments.insert().values(
                order_id=ids["order"], provider="manual", status="payment_link_sent", amount_minor=1000,
                currency="USD", token=pay_token, checkout_url=f"http://testserver/pay/{pay_token}",
                id=ids["payment"], tenant_id=ids["tenant"], created_at=now))
            await conn.execute(feeds.insert().values(
                company_id=ids["company"], token=feed_token, token_hash=sha256(feed_token), rotated_at=now,
                id=ids["feed"], tenant_id=ids["tenant"], created_at=now))
        await engine.dispose()

    asyncio.run(write())
    return ids


def test_migration_hashes_existing_tokens_so_old_links_keep_working(empty_database: str) -> None:
    url = empty_database
    upgrade(url, "0004")
    pay_token, feed_token = "old-pay-token-from-an-earlier-release", "old-feed-token-from-an-earlier-release"
    ids = _rows_at_0004(url, pay_token=pay_token, feed_token=feed_token)
    upgrade(url, "head")

    async def check() -> None:
        engine = create_engine(url)
        try:
            async with engine.connect() as conn:
                cols = await conn.run_sync(lambda c: {t: [x["name"] for x in sa.inspect(c).get_columns(t)]
                                                      for t in ("payments", "calendar_feeds")})
                feed_values = (await conn.execute(sa.text("SELECT * FROM calendar_feeds"))).mappings().one()
                payment_hash = (await conn.execute(sa.text("SELECT token_hash FROM payments"))).scalar_one()
            assert "token" not in cols["payments"] and "token_hash" in cols["payments"]
            assert "token" not in cols["calendar_feeds"]
            assert payment_hash == sha256(pay_token)
            assert all(feed_token not in str(v) for v in feed_values.values())
            async with create_sessionmaker(engine)() as s:
                payment = await payment_by_token(s, pay_token)
                assert payment is not None and payment.id == ids["payment"]
                company = await company_by_feed_token(s, f"{feed_token}.ics", company_slug="old-shop")
                assert company is not None and company.id == ids["company"]
                assert (await issue_feed_token(s, company=company)).token is None  # the feed exists already
        finally:
            await engine.dispose()

    asyncio.run(check())
    # And back: the downgrade restores the columns (with fresh tokens: a hash gives none back).
    command.downgrade(alembic_config(url), "0004")
    upgrade(url, "head")


# -- the access log --------------------------------------------------------------------------------


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.formatter = uvicorn.logging.AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s',
                                                         use_colors=False)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


async def test_uvicorns_access_log_shows_no_payment_or_feed_token(database_url: str, tmp_path: Path,
                                                                   free_tcp_port: int) -> None:
    """The real server: uvicorn configures its loggers, the app's lifespan installs the filter, and
    the access lines of /pay/<token> and /calendar/<company>/<token>.ics carry ``***`` instead."""
    settings = make_settings(database_url, tmp_path, workers_enabled=False)
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=free_tcp_port, log_level="info")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    lines = _Lines()
    access = logging.getLogger("uvicorn.access")
    try:
        while not server.started:
            await asyncio.sleep(0.02)
        access.addHandler(lines)
        assert any(isinstance(f, RedactTokenPaths) for f in access.filters)
        pay, feed, ticket = "PayTok_" + uuid.uuid4().hex, "FeedTok-" + uuid.uuid4().hex, "Tick." + uuid.uuid4().hex
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{free_tcp_port}", timeout=30) as client:
            for path in (f"/pay/{pay}", f"/pay/{pay}?paid=1", f"/calendar/acme-shop/{feed}.ics",
                         f"/calendar/acme-shop/{feed}", "/pay/return?session_id=cs_1", "/healthz",
                         f"/api/v1/tenants/t/companies/c/events?ticket={ticket}"):
                await client.get(path)
            await client.post(f"/pay/{pay}/test")
    finally:
        access.removeHandler(lines)
        server.should_exit = True
        await task
    text = "\n".join(lines.lines)
    assert pay not in text and feed not in text and ticket not in text
    assert '"GET /api/v1/tenants/t/companies/c/events?ticket=*** HTTP/1.1" 401' in text
    assert '"GET /pay/*** HTTP/1.1" 404' in text and '"GET /pay/***?paid=1 HTTP/1.1" 404' in text
    assert '"POST /pay/***/test HTTP/1.1"' in text
    assert '"GET /calendar/acme-shop/***.ics HTTP/1.1" 404' in text
    assert '"GET /calendar/acme-shop/*** HTTP/1.1" 404' in text
    assert "/pay/return?session_id=cs_1" in text and "GET /healthz" in text  # nothing else is touched


def test_the_filter_redacts_message_and_arguments() -> None:
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5000", "GET", "/calendar/salon/abc.ics", "1.1", 200), None)
    assert RedactTokenPaths().filter(record) is True
    assert record.getMessage() == '127.0.0.1:5000 - "GET /calendar/salon/***.ics HTTP/1.1" 200'
    plain = logging.LogRecord("x", logging.INFO, __file__, 1, "opened /pay/s3cret and /pay/return", None, None)
    RedactTokenPaths().filter(plain)
    assert plain.getMessage() == "opened /pay/*** and /pay/return"


async def test_the_http_client_log_shows_no_telegram_bot_token(caplog: pytest.LogCaptureFixture) -> None:
    # The Bot API puts the token in the path; httpx logs every request's URL at INFO. Alerts to a manager's
    # Telegram chat go through httpx, so without the filter the bot's token lands in the server's log.
    from channels.alert_senders import send_telegram
    from core.logging import configure_logging

    configure_logging(level="INFO")
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.path)
        return httpx.Response(200, json={"ok": True, "result": {"message_id": 1}})

    caplog.set_level(logging.INFO, logger="httpx")
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        await send_telegram(client, api_base="https://api.telegram.org", bot_token="123456:AAE-s3cretT0ken_x",
                                 chat_id="42", text="New conversation")
    assert seen == ["/bot123456:AAE-s3cretT0ken_x/sendMessage"]  # the request itself is unchanged
    lines = [r.getMessage() for r in caplog.records if r.name == "httpx"]
    assert lines and all("s3cretT0ken" not in line for line in lines)
    assert any("/bot***/sendMessage" in line for line in lines)


def test_database_driver_debug_lines_stay_off_at_debug_level() -> None:
    # aiosqlite's DEBUG lines print each statement's parameters (customer data, encrypted credentials).
    from core.logging import configure_logging

    root = logging.getLogger()
    saved = root.level, logging.getLogger("aiosqlite").level
    root.setLevel(logging.DEBUG)  # what basicConfig(level="DEBUG") does in a fresh server process
    try:
        configure_logging(level="DEBUG")
        assert not logging.getLogger("aiosqlite").isEnabledFor(logging.DEBUG)
        assert logging.getLogger("chatcommerce").isEnabledFor(logging.DEBUG)  # the app's own lines still show
    finally:
        root.setLevel(saved[0])
        logging.getLogger("aiosqlite").setLevel(saved[1])
        configure_logging(level="INFO")
