"""The customer's pages (payment, web chat, 404) speak the customer's language from the project's
catalogue, with money in the company's locale."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.models import Conversation
from tests.test_api import AUTH, Env, make_company, make_settings, place_order, poll, running, say


@pytest.fixture
async def env(database_url: str, tmp_path: Path) -> AsyncIterator[Env]:
    async with running(make_settings(database_url, tmp_path)) as e:
        yield e


async def _speaks(env: Env, conversation_id: str, language: str) -> None:
    async with env.runtime.sessionmaker() as s, s.begin():
        conversation = await s.get(Conversation, uuid.UUID(conversation_id))
        assert conversation is not None
        conversation.language = language


async def test_pay_page_follows_the_customers_language_and_the_shops_money(env: Env) -> None:
    c = env.client
    await make_company(c, "acme", "acme-shop")  # an English shop in dollars
    chat = await say(c, "acme-shop", "olga", "здравствуйте")
    await _speaks(env, chat["conversation_id"], "ru")
    placed = await place_order(env.runtime, chat["conversation_id"], item_name="Роза", price_minor=123450, quantity=2)

    html = (await c.get(f"/pay/{placed.token}")).text
    assert '<html lang="ru">' in html and "Заказ №1001" in html and "Итого" in html
    assert "Ожидает оплаты" in html and "Оплатить 2,469.00 USD (тест)" in html  # en_US money, Russian words
    assert "Order #" not in html and "Awaiting payment" not in html

    paid = await c.post(f"/pay/{placed.token}/test", follow_redirects=True)
    assert ">Оплачен<" in paid.text and "Спасибо! Подтверждение отправлено в чат." in paid.text
    notice = (await poll(c, "acme-shop", "olga"))["messages"][-1]["text"]
    assert notice == ("Оплата заказа №1001 получена: 2,469.00 USD. Спасибо! "
                      "Мы доставим его по адресу: 1 Main St и сообщим время доставки.")


async def test_pay_page_of_a_customer_whose_language_is_unknown_is_in_the_shops_language(env: Env) -> None:
    c = env.client
    await make_company(c, "acme", "lavka", language="ru", currency="RUB")
    chat = await say(c, "lavka", "ivan", "hello")
    await _speaks(env, chat["conversation_id"], "")
    placed = await place_order(env.runtime, chat["conversation_id"], item_name="Роза", price_minor=15000)
    html = (await c.get(f"/pay/{placed.token}")).text
    assert '<html lang="ru">' in html and "Заказ №1001" in html and "300,00 ₽" in html


async def test_unknown_links_are_explained_in_the_browsers_language(env: Env) -> None:
    c = env.client
    russian = await c.get("/pay/no-such-token", headers={"Accept-Language": "ru-RU,ru;q=0.9,en;q=0.8"})
    assert russian.status_code == 404 and "Ссылка на оплату не найдена" in russian.text
    english = await c.get("/pay/no-such-token", headers={"Accept-Language": "de-DE,de;q=0.9"})
    assert english.status_code == 404 and "Payment link not found" in english.text
    chat = await c.get("/chat/no-such-shop")
    assert chat.status_code == 404 and "Chat not found" in chat.text


async def test_chat_page_starts_in_the_shops_language_and_learns_the_visitors(env: Env) -> None:
    c = env.client
    await make_company(c, "acme", "lavka", name="Лавка", language="ru", currency="RUB")
    page = (await c.get("/chat/lavka")).text
    assert '<html lang="ru">' in page and "Лавка — чат" in page and 'placeholder="Напишите сообщение…"' in page
    assert "Type a message" in page  # the English texts travel in the page's config for a switch
    chat = await say(c, "lavka", "john", "hi there")
    await _speaks(env, chat["conversation_id"], "en")
    assert (await poll(c, "lavka", "john"))["language"] == "en"


async def test_a_company_locale_set_by_the_owner_writes_its_money(env: Env) -> None:
    c = env.client
    created = await make_company(c, "acme", "kiez", currency="EUR", locale="de-DE")
    assert created["locale"] == "de_DE"
    assert (await make_company(c, "acme", "plain"))["locale"] == "en_US"
    refused = await c.post("/api/v1/tenants/acme/companies", headers=AUTH,
                           json={"slug": "odd", "name": "Odd", "locale": "xx-YY"})
    assert refused.status_code == 422 and "locale" in refused.text
    chat = await say(c, "kiez", "jonas", "hello")
    placed = await place_order(env.runtime, chat["conversation_id"], item_name="Comb", price_minor=150050, quantity=2)
    html = (await c.get(f"/pay/{placed.token}")).text
    assert "Order #1001" in html and "3.001,00 €" in html  # English page, German money
