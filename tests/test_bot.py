"""The dialogue engine (``bot.engine.DialogueEngine``) in English and Russian, on SQLite and PostgreSQL.

Conversations run through the real inbound pipeline (web chat inbox) with the engine as responder;
the knowledge base is inserted with the ORM (one test imports the public Shopify export instead).
Assertions are about what a customer sees (reply texts, buttons, links) and what the shop gets
(orders, carts, conversation flags in the database).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.engine import DialogueEngine
from bot.state import DialogueState, Pending, Step
from channels.base import ParsedInbound
from channels.pipeline import Pipeline, Reply
from channels.registry import ChannelRegistry
from commerce.errors import PaymentUnavailable
from commerce.payments import mark_paid
from commerce.providers import ManualProvider, PaymentLink, ProviderRegistry
from core.accounts import create_company, create_tenant, inbox_of_kind
from core.models import (
    Cart,
    CartLine,
    Company,
    Conversation,
    FaqEntry,
    KnowledgeItem,
    KnowledgeVariant,
    Message,
    Order,
    Payment,
)
from core.timeutil import utcnow
from knowledge.search import KnowledgeIndexCache

BASE_URL = "https://shop.test"

# --- knowledge bases ---------------------------------------------------------------------------------

APPAREL: list[dict[str, Any]] = [
    {"name": "Ocean Blue Shirt", "price": 5000, "category": "Shirts", "image": "https://img.test/ocean-blue.jpg",
     "description": "Ocean blue cotton shirt with a narrow collar and buttons down the front."},
    {"name": "Classic Varsity Top", "price": 6000, "category": "Tops", "option": "Size",
     "variants": [("Small", 6000, None), ("Medium", 6000, None), ("Large", 6000, None)],
     "description": "Womens casual varsity top, grey and black, with an embroidered letter."},
    {"name": "Classic Leather Jacket", "price": 8000, "stock": 2, "category": "Jackets",
     "description": "Zipped leather jacket with an adjustable belt."},
    {"name": "Yellow Wool Jumper", "price": 8000, "category": "Knitwear", "image": "https://img.test/jumper.jpg",
     "description": "Knitted jumper in a soft wool blend with low dropped shoulders and wide sleeves."},
    {"name": "Chequered Red Shirt", "price": 5000, "category": "Shirts", "description": "Classic red check shirt."},
    {"name": "White Cotton Shirt", "price": 3000, "category": "Shirts", "description": "Plain white cotton shirt."},
    {"name": "Soft Winter Jacket", "price": 5000, "category": "Jackets", "description": "Thick padded jacket."},
    {"name": "Striped Silk Blouse", "price": 5000, "stock": 0, "category": "Tops", "description": "Silk blouse."},
]
APPAREL_FAQ = [
    ("How much is shipping?", "Standard shipping is $5 and free on orders over $100."),
    ("What is your return policy?", "You can return unworn items within 30 days of delivery."),
    ("Which payment methods do you accept?", "We accept Visa, Mastercard and Apple Pay."),
]
FLORIST: list[dict[str, Any]] = [
    {"name": "Роза", "price": 15000, "category": "Цветы поштучно", "option": "Цвет",
     "variants": [("красная", 15000, 120), ("белая", 15000, 80), ("розовая", 17000, 45)],
     "description": "Роза сорта Freedom, высота стебля 60 см."},
    {"name": "Тюльпан", "price": 9000, "category": "Цветы поштучно", "option": "Цвет",
     "variants": [("красный", 9000, 200), ("жёлтый", 9000, 150), ("белый", 9500, 0)],
     "description": "Голландский тюльпан, высота 40 см."},
    {"name": "Пион", "price": 45000, "stock": 3, "category": "Цветы поштучно",
     "description": "Пион Сара Бернар, нежно-розовый, крупный бутон."},
    {"name": "Букет «Нежность»", "price": 249000, "category": "Букеты",
     "description": "15 розовых роз и эвкалипт в крафтовой упаковке."},
]
FLORIST_FAQ = [
    ("Сколько стоит доставка?", "Доставка по городу — 390 ₽, при заказе от 5 000 ₽ — бесплатно."),
    ("Как можно оплатить заказ?", "Картой по ссылке на оплату или наличными при самовывозе."),
]


@dataclass(frozen=True)
class Shop:
    tenant_id: uuid.UUID
    company_id: uuid.UUID
    inbox_id: uuid.UUID


async def add_kb(session: AsyncSession, company: Company, items: Iterable[dict[str, Any]],
                 faq: Iterable[tuple[str, str]] = ()) -> None:
    """Insert knowledge-base rows for ``company`` directly with the ORM."""
    for position, spec in enumerate(items):
        item = KnowledgeItem(
            id=uuid.uuid4(), tenant_id=company.tenant_id, company_id=company.id, kind="product", name=spec["name"],
            description=spec.get("description", ""), category=spec.get("category"), price_minor=spec["price"],
            currency=company.currency, stock=spec.get("stock"), image_url=spec.get("image"), attributes={},
            position=position, variants=[],
        )
        for vpos, (vname, vprice, vstock) in enumerate(spec.get("variants", [])):
            item.variants.append(KnowledgeVariant(
                id=uuid.uuid4(), tenant_id=company.tenant_id, company_id=company.id, name=vname,
                options={spec["option"]: vname}, price_minor=vprice, stock=vstock, position=vpos,
            ))
        session.add(item)
    for position, (question, answer) in enumerate(faq):
        session.add(FaqEntry(tenant_id=company.tenant_id, company_id=company.id, question=question, answer=answer,
                             position=position))
    await session.flush()


async def create_shop(
    sessionmaker: async_sessionmaker[AsyncSession], *, slug: str, name: str, items: Iterable[dict[str, Any]] = (),
    faq: Iterable[tuple[str, str]] = (), currency: str = "USD", language: str = "en",
    payment_provider: str = "manual",
) -> Shop:
    """A tenant with one company (and its built-in inboxes) and a knowledge base."""
    async with sessionmaker() as s, s.begin():
        tenant = await create_tenant(s, name=name, slug=slug)
        company = await create_company(s, tenant_id=tenant.id, slug=slug, name=name, currency=currency,
                                       language=language, payment_provider=payment_provider)
        await add_kb(s, company, items, faq)
        inbox = await inbox_of_kind(s, company, "webchat")
        return Shop(tenant_id=tenant.id, company_id=company.id, inbox_id=inbox.id)


def apparel(sessionmaker: async_sessionmaker[AsyncSession], **kw: Any) -> Any:
    return create_shop(sessionmaker, slug=kw.pop("slug", "apparel"), name=kw.pop("name", "Apparel Co"),
                       items=APPAREL, faq=APPAREL_FAQ, **kw)


def florist(sessionmaker: async_sessionmaker[AsyncSession], **kw: Any) -> Any:
    return create_shop(sessionmaker, slug=kw.pop("slug", "florist"), name=kw.pop("name", "Цветочная лавка"),
                       items=FLORIST, faq=FLORIST_FAQ, currency="RUB", language="ru", **kw)


def make_engine(providers: ProviderRegistry | None = None, **kw: Any) -> DialogueEngine:
    return DialogueEngine(index_cache=KnowledgeIndexCache(),
                          providers=providers or ProviderRegistry.default(public_base_url=BASE_URL), **kw)


class Chat:
    """One customer talking to a shop's web chat through the pipeline."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], shop: Shop, *,
                 engine: DialogueEngine | None = None, contact: str = "alice") -> None:
        self.sessionmaker = sessionmaker
        self.shop = shop
        self.contact = contact
        self.pipeline = Pipeline(sessionmaker=sessionmaker, responder=engine or make_engine(),
                                 channels=ChannelRegistry.default())

    async def say(self, text: str, **parsed: Any) -> Reply | None:
        result = await self.pipeline.receive(
            inbox_id=self.shop.inbox_id,
            parsed=ParsedInbound(contact_source_id=self.contact, text=text, received_at=utcnow(), **parsed),
        )
        assert not result.duplicate
        return result.replies[0] if result.replies else None

    async def ask(self, text: str, **parsed: Any) -> Reply:
        reply = await self.say(text, **parsed)
        assert reply is not None, f"no reply to {text!r}"
        return reply

    async def press(self, reply: Reply, title: str) -> Reply:
        """Press the button called ``title`` (its payload is sent back as text)."""
        payload = next((b["payload"] for b in reply.buttons if b["title"] == title), None)
        assert payload is not None, f"no button {title!r} in {titles(reply)}"
        return await self.ask(payload)

    async def conversation(self) -> Conversation:
        async with self.sessionmaker() as s:
            return (await s.execute(select(Conversation).where(
                Conversation.company_id == self.shop.company_id,
                Conversation.tenant_id == self.shop.tenant_id,
            ).order_by(Conversation.created_at.desc()).limit(1))).scalar_one()


def titles(reply: Reply) -> list[str]:
    return [b["title"] for b in reply.buttons]


async def orders_of(sessionmaker: async_sessionmaker[AsyncSession], shop: Shop) -> list[Order]:
    async with sessionmaker() as s:
        return list((await s.execute(select(Order).where(Order.company_id == shop.company_id)
                                     .order_by(Order.number))).scalars())


# --- whole purchases -----------------------------------------------------------------------------------


async def test_english_purchase_from_greeting_to_paid(sessionmaker) -> None:
    shop = await apparel(sessionmaker)
    chat = Chat(sessionmaker, shop)

    hello = await chat.ask("hi")
    assert "Apparel Co" in hello.text
    assert titles(hello) == ["Catalogue", "Cart", "Talk to a human"]

    price = await chat.ask("how much is the ocean blue shirt")
    assert "Ocean Blue Shirt costs 50.00 USD" in price.text
    assert price.image_url == "https://img.test/ocean-blue.jpg"

    added = await chat.ask("2 classic varsity tops size medium")
    assert "Added 2 × Classic Varsity Top (Medium) — 120.00 USD" in added.text
    assert titles(added) == ["Checkout", "Cart", "Continue shopping"]

    second = await chat.ask("add ocean blue shirt")
    assert "1 × Ocean Blue Shirt — 50.00 USD" in second.text
    assert "Cart total: 170.00 USD" in second.text

    cart = await chat.ask("cart")
    assert "2 × Classic Varsity Top (Medium) — 120.00 USD" in cart.text
    assert "1 × Ocean Blue Shirt — 50.00 USD" in cart.text
    assert "Total: 170.00 USD" in cart.text

    assert "What name should we put on the order?" in (await chat.ask("checkout")).text
    assert "delivery address" in (await chat.ask("Alice Smith")).text
    phone_question = await chat.ask("12 Main Street, Springfield")
    assert "phone" in phone_question.text and "Skip" in titles(phone_question)
    link = await chat.ask("skip")

    assert link.url is not None and link.url.startswith(f"{BASE_URL}/pay/")
    assert link.url in link.text
    assert "Order #1001" in link.text and "170.00 USD" in link.text

    [order] = await orders_of(sessionmaker, shop)
    assert [(ln.quantity, ln.name, ln.variant, ln.unit_price_minor) for ln in order.lines] == [
        (2, "Classic Varsity Top", "Medium", 6000), (1, "Ocean Blue Shirt", None, 5000)]
    assert (order.total_minor, order.currency, order.payment_status) == (17000, "USD", "payment_link_sent")
    assert (order.customer_name, order.delivery_address, order.phone) == ("Alice Smith", "12 Main Street, Springfield",
                                                                          None)

    waiting = await chat.ask("did you get my payment?")
    assert "haven't received the payment for order #1001" in waiting.text and waiting.url == link.url

    async with sessionmaker() as s, s.begin():
        assert await mark_paid(s, order=await s.get(Order, order.id), method="test")
    [paid] = await orders_of(sessionmaker, shop)
    assert paid.payment_status == "paid" and paid.status == "paid"
    async with sessionmaker() as s:
        confirmations = list((await s.execute(select(Message).where(
            Message.conversation_id == paid.conversation_id, Message.sender == "system"))).scalars())
    assert [m.text for m in confirmations] == [
        "Payment received for order #1001: 170.00 USD. Thank you! We will deliver it to 12 Main Street, Springfield "
        "and let you know about the delivery time."]
    assert "Order #1001 (170.00 USD) is paid" in (await chat.ask("order status")).text


async def test_russian_purchase_from_greeting_to_paid(sessionmaker) -> None:
    shop = await florist(sessionmaker)
    chat = Chat(sessionmaker, shop, contact="boris")

    hello = await chat.ask("Здравствуйте!")
    assert "Цветочная лавка" in hello.text
    assert titles(hello) == ["Каталог", "Корзина", "Позвать менеджера"]

    prices = await chat.ask("сколько стоят розы")
    assert "• красная — 150,00 ₽" in prices.text and "• розовая — 170,00 ₽" in prices.text

    added = await chat.ask("добавь 5 красных роз")
    assert "5 роз (красная) — 750,00 ₽" in added.text
    assert titles(added) == ["Оформить заказ", "Корзина", "Продолжить покупки"]

    which = await chat.ask("хочу 3 тюльпана")
    assert "красный" in which.text and "жёлтый" in which.text
    assert "белый" not in titles(which)  # sold out
    yellow = await chat.ask("жёлтые")
    assert "3 тюльпана (жёлтый) — 270,00 ₽" in yellow.text
    assert "Сумма корзины: 1 020,00 ₽" in yellow.text

    cart = await chat.ask("что в корзине")
    assert "5 роз (красная) — 750,00 ₽" in cart.text and "Итого: 1 020,00 ₽" in cart.text

    assert "На какое имя оформить заказ?" in (await chat.ask("оформить заказ")).text
    assert "адрес доставки" in (await chat.ask("Борис")).text
    assert "телефон" in (await chat.ask("Москва, ул. Садовая, 12")).text
    link = await chat.ask("пропустить")
    assert link.url is not None and link.url in link.text
    assert "Заказ №1001" in link.text and "Оплатить 1 020,00 ₽ можно по ссылке" in link.text

    [order] = await orders_of(sessionmaker, shop)
    assert [(ln.quantity, ln.name, ln.variant, ln.unit_price_minor) for ln in order.lines] == [
        (5, "Роза", "красная", 15000), (3, "Тюльпан", "жёлтый", 9000)]
    assert (order.total_minor, order.currency, order.payment_status) == (102000, "RUB", "payment_link_sent")

    status = await chat.ask("статус заказа")
    assert "пока не поступила" in status.text and status.url == link.url

    async with sessionmaker() as s, s.begin():
        assert await mark_paid(s, order=await s.get(Order, order.id), method="test")
    async with sessionmaker() as s:
        texts = list((await s.execute(select(Message.text).where(
            Message.conversation_id == order.conversation_id, Message.sender == "system"))).scalars())
    assert texts and texts[0].startswith("Оплата заказа №1001 получена: 1 020,00 ₽.")
    assert "оплачен" in (await chat.ask("статус заказа")).text


async def test_import_of_a_shopify_export_can_be_sold(sessionmaker, shop_export: Path) -> None:
    importer = pytest.importorskip("knowledge.importer", reason="knowledge.importer is not written yet")
    shop = await create_shop(sessionmaker, slug="burst", name="Burst Apparel")
    async with sessionmaker() as s, s.begin():
        company = await s.get(Company, shop.company_id)
        await importer.import_knowledge(s, company=company, data=shop_export.read_bytes(),
                                        filename="apparel.csv")
    chat = Chat(sessionmaker, shop)
    assert "50.00 USD" in (await chat.ask("how much is the ocean blue shirt")).text
    assert "Small, Medium, Large" in (await chat.ask("what sizes does the varsity top come in")).text
    assert "Added 2 × Classic Varsity Top (Medium) — 120.00 USD" in (
        await chat.ask("2 classic varsity tops size medium")).text
    catalogue = await chat.ask("catalogue")
    assert "Ocean Blue Shirt — 50.00 USD" in catalogue.text and "more" in catalogue.text


# --- information from the knowledge base -------------------------------------------------------------------


async def test_item_questions_are_answered_from_the_database_in_english(sessionmaker) -> None:
    chat = Chat(sessionmaker, await apparel(sessionmaker))
    sizes = await chat.ask("what sizes does the varsity top come in")
    assert "Classic Varsity Top comes in: Small, Medium, Large." in sizes.text
    assert ["Small", "Medium", "Large"] == titles(sizes)[:3]

    stock = await chat.ask("is the leather jacket in stock")
    assert "Classic Leather Jacket is available — only 2 left" in stock.text

    about = await chat.ask("tell me about the yellow wool jumper")
    assert "Yellow Wool Jumper — 80.00 USD" in about.text and "soft wool blend" in about.text
    assert about.image_url == "https://img.test/jumper.jpg"

    assert "White Cotton Shirt costs 30.00 USD" in (await chat.ask("Hi! How much is the white cotton shirt?")).text
    assert "Striped Silk Blouse is sold out" in (await chat.ask("is the striped silk blouse available?")).text
    assert "Striped Silk Blouse costs 50.00 USD" in (await chat.ask("how much is it?")).text  # the item in context


async def test_item_questions_are_answered_from_the_database_in_russian(sessionmaker) -> None:
    chat = Chat(sessionmaker, await florist(sessionmaker), contact="vera")
    kinds = await chat.ask("какие есть розы")
    assert "Роза — варианты: красная, белая, розовая." in kinds.text
    assert "• розовая — 170,00 ₽, в наличии" in kinds.text
    assert "осталось 3 шт." in (await chat.ask("есть ли пионы")).text
    assert "нет в наличии" in (await chat.ask("есть ли белые тюльпаны?")).text
    missing = await chat.ask("есть ли орхидеи")
    assert "нет в нашем каталоге" in missing.text and "Каталог" in titles(missing)


async def test_catalogue_lists_names_and_prices(sessionmaker) -> None:
    en = Chat(sessionmaker, await apparel(sessionmaker))
    catalogue = await en.ask("what do you have?")
    assert "Here is what we have (8):" in catalogue.text
    assert "• Ocean Blue Shirt — 50.00 USD" in catalogue.text
    assert "• Striped Silk Blouse — 50.00 USD (sold out)" in catalogue.text
    ru = Chat(sessionmaker, await florist(sessionmaker), contact="olga")
    catalogue = await ru.ask("что есть?")
    assert "• Роза — от 150,00 ₽" in catalogue.text and "• Букет «Нежность» — 2 490,00 ₽" in catalogue.text
    opened = await ru.press(catalogue, "Пион")
    assert "Пион — 450,00 ₽" in opened.text


async def test_long_catalogue_is_cut_and_says_how_many_more(sessionmaker) -> None:
    items = [{"name": f"Gift Card {i:02d}", "price": 1000 * (i + 1)} for i in range(14)]
    chat = Chat(sessionmaker, await create_shop(sessionmaker, slug="cards", name="Cards", items=items))
    catalogue = await chat.ask("catalogue")
    assert "Gift Card 09" in catalogue.text and "Gift Card 10" not in catalogue.text
    assert "…and 4 more" in catalogue.text


async def test_faq_answers_beat_items_for_shop_questions(sessionmaker) -> None:
    en = Chat(sessionmaker, await apparel(sessionmaker))
    assert (await en.ask("how much is shipping?")).text == APPAREL_FAQ[0][1]
    assert (await en.ask("do you deliver shirts?")).text == APPAREL_FAQ[0][1]
    assert (await en.ask("what's your return policy")).text == APPAREL_FAQ[1][1]
    ru = Chat(sessionmaker, await florist(sessionmaker), contact="ivan")
    assert (await ru.ask("сколько стоит доставка?")).text == FLORIST_FAQ[0][1]
    assert (await ru.ask("как оплатить?")).text == FLORIST_FAQ[1][1]


# --- cart --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("language", ["en", "ru"])
async def test_variant_is_asked_for_and_completed_by_the_next_message(sessionmaker, language: str) -> None:
    if language == "en":
        chat = Chat(sessionmaker, await apparel(sessionmaker))
        asked = await chat.ask("add the varsity top")
        assert "Which size would you like for Classic Varsity Top?" in asked.text
        assert titles(asked) == ["Small", "Medium", "Large"]
        done = await chat.ask("medium")
        assert "Added 1 × Classic Varsity Top (Medium) — 60.00 USD" in done.text
        again = await chat.ask("add 2 varsity tops")
        pressed = await chat.press(again, "Large")
        assert "Added 2 × Classic Varsity Top (Large) — 120.00 USD" in pressed.text
        another = await chat.ask("add another one")
        assert "Added 1 × Classic Varsity Top (Large) — 60.00 USD" in another.text
        third = await chat.ask("I'd like a varsity top")
        by_number = await chat.ask("1")  # channels without buttons show them as a numbered list
        assert "Added 1 × Classic Varsity Top (Small)" in by_number.text and third.buttons
    else:
        chat = Chat(sessionmaker, await florist(sessionmaker), contact="masha")
        asked = await chat.ask("хочу розу")
        assert "Уточните, пожалуйста, цвет для «Роза»: красная, белая, розовая." in asked.text
        done = await chat.ask("белую")
        assert "1 роза (белая) — 150,00 ₽" in done.text
        more = await chat.ask("ещё одну")
        assert "1 роза (белая)" in more.text and "Сумма корзины: 300,00 ₽" in more.text
        await chat.ask("добавь 2 тюльпана")
        pressed = await chat.ask("2")
        assert "2 тюльпана (жёлтый) — 180,00 ₽" in pressed.text


async def test_ambiguous_name_asks_which_item(sessionmaker) -> None:
    chat = Chat(sessionmaker, await apparel(sessionmaker))
    which = await chat.ask("add 2 shirts")
    assert "Which one do you mean?" in which.text
    assert set(titles(which)) == {"Ocean Blue Shirt", "Chequered Red Shirt", "White Cotton Shirt"}
    chosen = await chat.ask("the white one")
    assert "Added 2 × White Cotton Shirt — 60.00 USD" in chosen.text


async def test_cart_changes_in_english(sessionmaker) -> None:
    chat = Chat(sessionmaker, await apparel(sessionmaker))
    await chat.ask("2 classic varsity tops size medium")
    await chat.ask("add 1 ocean blue shirt")
    made = await chat.ask("make it 3 varsity tops")
    assert "3 × Classic Varsity Top (Medium) — 180.00 USD" in made.text and "Total: 230.00 USD" in made.text
    changed = await chat.ask("change ocean blue shirt to 2")
    assert "2 × Ocean Blue Shirt — 100.00 USD" in changed.text and "Total: 280.00 USD" in changed.text
    removed = await chat.ask("remove the shirt")
    assert "Removed Ocean Blue Shirt" in removed.text and "Total: 180.00 USD" in removed.text
    assert "Ocean Blue Shirt" not in removed.text.split("Your cart:")[1]
    assert "isn't in your cart" in (await chat.ask("remove the leather jacket")).text
    assert "your cart is empty now" in (await chat.ask("empty the cart")).text
    assert "Your cart is empty." in (await chat.ask("my cart")).text


async def test_cart_changes_in_russian(sessionmaker) -> None:
    chat = Chat(sessionmaker, await florist(sessionmaker), contact="nina")
    await chat.ask("добавь 5 красных роз")
    await chat.ask("добавь 3 красных тюльпана")
    changed = await chat.ask("измени количество роз на 7")
    assert "7 роз (красная) — 1 050,00 ₽" in changed.text and "Итого: 1 320,00 ₽" in changed.text
    removed = await chat.ask("убери тюльпаны")
    assert "Удалено из корзины: Тюльпан (красный)" in removed.text and "Итого: 1 050,00 ₽" in removed.text
    assert "корзина очищена" in (await chat.ask("очисти корзину")).text
    async with sessionmaker() as s:
        assert (await s.execute(select(CartLine))).first() is None


async def test_out_of_stock_says_how_many_are_left(sessionmaker) -> None:
    en = Chat(sessionmaker, await apparel(sessionmaker))
    assert "only 2 × Classic Leather Jacket left" in (await en.ask("add 3 classic leather jackets")).text
    assert "Added 2 × Classic Leather Jacket" in (await en.ask("add 2 classic leather jackets")).text
    more = await en.ask("add 1 more leather jacket")
    assert "only 2 × Classic Leather Jacket left" in more.text and "You already have 2 in your cart" in more.text
    assert "Striped Silk Blouse is sold out" in (await en.ask("add the striped silk blouse")).text

    ru = Chat(sessionmaker, await florist(sessionmaker), contact="lena")
    assert "осталось только 3 шт. — Пион" in (await ru.ask("добавь 4 пиона")).text
    assert "Тюльпан (белый) нет в наличии" in (await ru.ask("добавь белый тюльпан")).text


JACKET = "Classic Leather Jacket"


async def test_items_without_price_and_silly_quantities_are_refused(sessionmaker) -> None:
    items = [{"name": "Custom Portrait", "price": None}, {"name": "Canvas Tote", "price": 1500}]
    chat = Chat(sessionmaker, await create_shop(sessionmaker, slug="studio", name="Studio", items=items))
    assert "• Custom Portrait — price on request" in (await chat.ask("catalogue")).text
    refused = await chat.ask("add a custom portrait")
    assert "Custom Portrait has no price yet" in refused.text and "Talk to a human" in titles(refused)
    assert "between 1 and 999" in (await chat.ask("add 1000 canvas totes")).text
    async with sessionmaker() as s:
        assert (await s.execute(select(CartLine))).first() is None


async def test_stock_sold_meanwhile_stops_checkout_without_changes(sessionmaker) -> None:
    shop = await apparel(sessionmaker)
    chat = Chat(sessionmaker, shop)
    await chat.ask("add 2 classic leather jackets")
    await chat.ask("add ocean blue shirt")
    await chat.ask("checkout")
    await chat.ask("Dana")
    async with sessionmaker() as s, s.begin():
        jacket = (await s.execute(select(KnowledgeItem).where(KnowledgeItem.name == JACKET))).scalar_one()
        jacket.stock = 1
    await chat.ask("Dublin")
    reply = await chat.ask("skip")
    assert "Classic Leather Jacket is no longer available in that quantity (1 left)" in reply.text
    assert await orders_of(sessionmaker, shop) == []
    async with sessionmaker() as s:
        jacket = (await s.execute(select(KnowledgeItem).where(KnowledgeItem.name == JACKET))).scalar_one()
        assert jacket.stock == 1


# --- checkout ----------------------------------------------------------------------------------------------


async def test_checkout_edge_cases(sessionmaker) -> None:
    shop = await apparel(sessionmaker)
    chat = Chat(sessionmaker, shop)
    assert "Your cart is empty" in (await chat.ask("checkout")).text
    await chat.ask("add white cotton shirt")
    await chat.ask("place order")
    assert "stopped the checkout" in (await chat.ask("cancel")).text
    assert "What name" in (await chat.ask("check out")).text
    assert "Please type the name for the order" in (await chat.ask("checkout")).text  # a command is not a name
    await chat.ask("Eve")
    await chat.ask("Paris")
    assert "doesn't look like a phone number" in (await chat.ask("123")).text
    link = await chat.ask("+33 (1) 23-45-67-89")
    assert link.url and "Phone: +33123456789" in link.text  # normalised to E.164 (issue 8)
    [order] = await orders_of(sessionmaker, shop)
    assert order.phone == "+33123456789"
    again = await chat.ask("new link")
    assert again.url == link.url  # the live link is sent again


async def test_a_question_or_a_pause_at_the_address_step_is_not_the_address(sessionmaker) -> None:
    shop = await apparel(sessionmaker)
    chat = Chat(sessionmaker, shop)
    await chat.ask("add white cotton shirt")
    await chat.ask("checkout")
    await chat.ask("Jane")
    for text in ("wait, can I change the quantity?", "hold on", "sorry, one moment"):
        again = await chat.ask(text)
        assert "address" in again.text and "phone" not in again.text, text
    assert "phone" in (await chat.ask("221B Baker Street, London")).text
    link = await chat.ask("skip")
    assert link.url and "Address: 221B Baker Street, London" in link.text
    ru = Chat(sessionmaker, await florist(sessionmaker), contact="lena")
    await ru.ask("добавь букет нежность")
    await ru.ask("оформи")
    await ru.ask("Анна")
    again = await ru.ask("подождите, а можно поменять количество?")
    assert "адрес" in again.text.lower() and "телефон" not in again.text.lower()


async def test_a_quantity_sent_for_the_variant_question_is_kept_and_the_variant_asked_again(sessionmaker) -> None:
    """"5 штук" to "which colour?" was not understood; the colour is asked again and the 5 kept."""
    ru = Chat(sessionmaker, await florist(sessionmaker), contact="lena")
    await ru.ask("давайте тюльпаны")
    again = await ru.ask("5 штук")
    assert "цвет для «Тюльпан»" in again.text and titles(again) == ["красный", "жёлтый"]
    assert "Добавлено в корзину: 5 тюльпанов (красный)" in (await ru.ask("красный")).text
    en = Chat(sessionmaker, await apparel(sessionmaker))
    await en.ask("add a classic varsity top")
    await en.ask("two please")
    assert "Added 2 × Classic Varsity Top (Medium)" in (await en.ask("medium")).text


async def test_the_occasion_of_a_purchase_is_not_what_is_bought(sessionmaker) -> None:
    """"Хочу букет для мамы на день рождения" found nothing (the occasion outweighed "букет"), and
    "розы на 8 марта" was eight roses."""
    ru = Chat(sessionmaker, await florist(sessionmaker), contact="lena")
    bouquet = await ru.ask("хочу букет для мамы на день рождения")
    assert "Букет «Нежность»" in bouquet.text and "не совсем понятно" not in bouquet.text
    roses = await ru.ask("розы на 8 марта")
    assert "8 ×" not in roses.text and "8 роз" not in roses.text and "Роза" in roses.text
    ideas = await ru.ask("что-нибудь на 8 марта")
    assert "Тюльпан" in ideas.text and "Пион" in ideas.text


async def test_anything_in_a_colour_and_what_about_something_not_sold(sessionmaker) -> None:
    """"Anything in white?" lists the white items (was "no information about" one of them); "what about
    sneakers" is something not sold (was not understood)."""
    chat = Chat(sessionmaker, await apparel(sessionmaker))
    white = await chat.ask("ok, anything in white?")
    assert "• White Cotton Shirt — 30.00 USD" in white.text and "information" not in white.text
    sneakers = await chat.ask("what about sneakers")
    assert "couldn't find that in our catalogue" in sneakers.text and "Talk to a human" in titles(sneakers)


async def test_rather_n_of_an_item_sets_its_quantity(sessionmaker) -> None:
    """"Нет, пионов лучше 2" after 3 peonies added 2 more (5); it sets 2. Of an item not in the cart
    yet ("лучше 3 белые розы"), that many are added."""
    ru = Chat(sessionmaker, await florist(sessionmaker), contact="lena")
    await ru.ask("добавь 3 пиона")
    assert "Итого: 900,00 ₽" in (await ru.ask("нет, пионов лучше 2")).text  # 2 × 450
    assert "Итого: 450,00 ₽" in (await ru.ask("пусть пионов будет 1")).text
    other = await ru.ask("лучше 3 белые розы")
    assert "Добавлено в корзину: 3 розы (белая)" in other.text
    en = Chat(sessionmaker, await apparel(sessionmaker))
    await en.ask("add 3 white cotton shirts")
    assert "Total: 60.00 USD" in (await en.ask("actually 2 white cotton shirts instead")).text


async def test_anything_cheaper_lists_what_costs_less_than_the_item_shown(sessionmaker) -> None:
    """"Anything cheaper?" after an item: what costs less, in its category when that has some, dearest
    first (was "we don't sell that"); without an item shown, the cheapest of the catalogue."""
    chat = Chat(sessionmaker, await apparel(sessionmaker))
    await chat.ask("how much is the classic leather jacket?")
    cheaper = await chat.ask("anything cheaper?")
    assert "• Soft Winter Jacket — 50.00 USD" in cheaper.text and "Shirt" not in cheaper.text
    ru = Chat(sessionmaker, await florist(sessionmaker), contact="lena")
    await ru.ask("сколько стоит букет нежность?")
    cheaper_ru = await ru.ask("а что-нибудь подешевле?")  # no cheaper bouquet: the other flowers
    assert titles(cheaper_ru)[:3] == ["Пион", "Роза", "Тюльпан"] and "Нежность" not in cheaper_ru.text
    other = Chat(sessionmaker, await florist(sessionmaker, slug="f2"), contact="x")
    first = await other.ask("есть что-нибудь подешевле?")
    assert first.text.index("Тюльпан") < first.text.index("Роза") < first.text.index("Букет «Нежность»")


async def test_phone_known_from_the_channel_is_not_asked(sessionmaker) -> None:
    shop = await florist(sessionmaker)
    chat = Chat(sessionmaker, shop, contact="tg-42")
    await chat.ask("добавь букет нежность", phone="+79991234567")
    await chat.ask("оформи")
    await chat.ask("Анна")
    link = await chat.ask("Санкт-Петербург, Невский 1")
    assert link.url and "Телефон: +79991234567" in link.text
    [order] = await orders_of(sessionmaker, shop)
    assert order.phone == "+79991234567" and order.total_minor == 249000


async def test_expired_link_is_replaced_by_a_new_one(sessionmaker) -> None:
    shop = await apparel(sessionmaker)
    chat = Chat(sessionmaker, shop)
    await chat.ask("add ocean blue shirt")
    await chat.ask("checkout")
    await chat.ask("Finn")
    await chat.ask("Oslo")
    first = await chat.ask("skip")
    async with sessionmaker() as s, s.begin():
        payment = (await s.execute(select(Payment))).scalar_one()
        payment.expires_at = utcnow() - timedelta(minutes=1)
    fresh = await chat.ask("send me a new link")
    assert fresh.url and fresh.url != first.url and fresh.url in fresh.text


class BrokenProvider:
    name: ClassVar[str] = "broken"

    async def create_link(self, **kwargs: Any) -> PaymentLink:
        raise PaymentUnavailable("not connected")


async def test_payment_unavailable_flags_the_conversation_for_a_manager(sessionmaker) -> None:
    shop = await apparel(sessionmaker, payment_provider="broken")
    providers = ProviderRegistry(providers={"broken": BrokenProvider(),
                                            "manual": ManualProvider(public_base_url=BASE_URL)})
    chat = Chat(sessionmaker, shop, engine=make_engine(providers))
    await chat.ask("add ocean blue shirt")
    await chat.ask("checkout")
    await chat.ask("Gus")
    await chat.ask("Rome")
    reply = await chat.ask("skip")
    assert "online payment isn't available right now" in reply.text and reply.url is None
    conversation = await chat.conversation()
    assert conversation.status == "pending" and not conversation.handoff
    [order] = await orders_of(sessionmaker, shop)
    assert order.payment_status == "no_payment_link"
    assert "waiting for a manager" in (await chat.ask("order status")).text


# --- conversation control -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("language", "request_text", "expected"), [
    ("en", "I want to talk to a human", "passed the conversation to a manager"),
    ("ru", "позови менеджера", "Передаю разговор менеджеру"),
])
async def test_handoff_stops_the_bot(sessionmaker, language: str, request_text: str, expected: str) -> None:
    shop = await (apparel(sessionmaker) if language == "en" else florist(sessionmaker))
    chat = Chat(sessionmaker, shop)
    assert expected in (await chat.ask(request_text)).text
    conversation = await chat.conversation()
    assert conversation.handoff and conversation.status == "pending"
    assert await chat.say("hello? anyone?") is None
    async with sessionmaker() as s:
        outgoing = list((await s.execute(select(Message).where(Message.direction == "out"))).scalars())
    assert len(outgoing) == 1


async def test_dialogue_state_survives_a_restart(sessionmaker) -> None:
    shop = await apparel(sessionmaker)
    before = Chat(sessionmaker, shop, engine=make_engine())
    await before.ask("add 2 classic varsity tops")
    await before.ask("large")
    await before.ask("checkout")
    await before.ask("Hana")
    after = Chat(sessionmaker, shop, engine=make_engine())  # new process: new engine, new index cache
    assert "phone" in (await after.ask("Kyoto")).text
    link = await after.ask("+81 3 1234 5678")
    assert link.url
    [order] = await orders_of(sessionmaker, shop)
    assert (order.customer_name, order.delivery_address, order.phone) == ("Hana", "Kyoto", "+81312345678")  # E.164
    assert [(ln.quantity, ln.variant) for ln in order.lines] == [(2, "Large")]


async def test_reply_language_follows_the_customer(sessionmaker) -> None:
    chat = Chat(sessionmaker, await apparel(sessionmaker))
    ru = await chat.ask("привет")
    assert "Здравствуйте! Это Apparel Co." in ru.text and titles(ru)[0] == "Каталог"
    assert (await chat.conversation()).language == "ru"
    assert "Чем ещё помочь" in (await chat.ask("ok")).text  # too short to tell: stays Russian
    assert "корзина пуста" in (await chat.ask("2")).text  # a numbered choice: stays Russian
    assert "Hello! This is Apparel Co." in (await chat.ask("hello")).text
    assert (await chat.conversation()).language == "en"


async def test_fallback_suggests_the_closest_items(sessionmaker) -> None:
    en = Chat(sessionmaker, await apparel(sessionmaker))
    close = await en.ask("I'm going skiing this winter")
    assert "Did you mean one of these?" in close.text and "Soft Winter Jacket" in titles(close)
    nothing = await en.ask("qwerty zxcvb")
    assert "I didn't get that" in nothing.text and titles(nothing) == ["Catalogue", "Cart", "Talk to a human"]
    ru = Chat(sessionmaker, await florist(sessionmaker), contact="petr")
    nothing = await ru.ask("ывапролдж")
    assert "не совсем понятно" in nothing.text and titles(nothing) == ["Каталог", "Корзина", "Позвать менеджера"]


async def test_tenants_never_see_each_others_items(sessionmaker) -> None:
    first = await create_shop(sessionmaker, slug="north", name="North", items=[
        {"name": "Ocean Blue Shirt", "price": 5000}])
    second = await create_shop(sessionmaker, slug="south", name="South", items=[
        {"name": "Ocean Blue Shirt", "price": 9900}, {"name": "Secret Leather Jacket", "price": 20000}])
    engine = make_engine()  # one engine and one index cache serve both tenants
    north, south = Chat(sessionmaker, first, engine=engine), Chat(sessionmaker, second, engine=engine)
    assert "50.00 USD" in (await north.ask("how much is the ocean blue shirt")).text
    assert "99.00 USD" in (await south.ask("how much is the ocean blue shirt")).text
    secret = await north.ask("how much is the secret leather jacket")
    assert "Secret" not in secret.text and "200.00" not in secret.text
    await north.ask("add ocean blue shirt")
    await south.ask("add ocean blue shirt")
    async with sessionmaker() as s:
        rows = (await s.execute(select(Cart.company_id, KnowledgeItem.company_id, KnowledgeItem.price_minor)
                                .join(CartLine, CartLine.cart_id == Cart.id)
                                .join(KnowledgeItem, KnowledgeItem.id == CartLine.item_id))).all()
    assert sorted((r[0] == r[1], r[2]) for r in rows) == [(True, 5000), (True, 9900)]


# --- state -----------------------------------------------------------------------------------------------


def test_state_json_round_trip_and_tolerates_garbage() -> None:
    item = uuid.uuid4()
    state = DialogueState(step=Step.CHOOSE_VARIANT, pending=Pending(action="add", item_id=item, quantity=2),
                          last_item_id=item, choices=["add 1 Top Small"])
    assert DialogueState.from_json(state.to_json()) == state
    assert DialogueState.from_json({"step": "dancing", "pending": 5, "order_id": "nope"}) == DialogueState()
    assert DialogueState.from_json(None) == DialogueState()
