"""Notices the commerce layer sends to customers: sentences from the catalogue in the customer's
language, money in the company's locale, local dates by Babel."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from commerce.notifications import booking_notice, payment_confirmation, prepayment_label
from core.i18n import company_locale
from core.models import Booking, Company, Order

MOSCOW = ZoneInfo("Europe/Moscow")


def _order(**values: object) -> Order:
    return Order(number=7, total_minor=102000, currency="RUB", delivery_address=None, **values)


def _booking() -> Booking:
    return Booking(service_name="Стрижка", resource_name="Анна", start_at=datetime(2026, 3, 13, 12, 0, tzinfo=UTC),
                   prepay_minor=50000, price_minor=200000, currency="RUB")


def test_payment_confirmation_in_russian_with_the_delivery_address() -> None:
    order = _order()
    order.delivery_address = "ул. Ленина, 1"
    text = payment_confirmation(order, language="ru", locale="ru_RU")
    assert text == ("Оплата заказа №7 получена: 1 020,00 ₽. Спасибо! "
                    "Мы доставим его по адресу: ул. Ленина, 1 и сообщим время доставки.")


def test_an_english_customer_of_a_russian_shop_reads_english_with_the_shops_money() -> None:
    shop = Company(language="ru", currency="RUB", settings={})
    text = payment_confirmation(_order(), language="en", locale=company_locale(shop))
    assert text == "Payment received for order #7: 1 020,00 ₽. Thank you!"


def test_a_russian_customer_of_a_us_shop_reads_russian_with_dollars_written_the_us_way() -> None:
    shop = Company(language="en", currency="USD", settings={})
    order = Order(number=12, total_minor=123456, currency="USD", delivery_address=None)
    assert payment_confirmation(order, language="ru", locale=company_locale(shop)) == (
        "Оплата заказа №12 получена: 1,234.56 USD. Спасибо!")


def test_booking_notices_give_the_local_time_in_the_customers_language() -> None:
    booking = _booking()
    assert booking_notice(booking, tz=MOSCOW, language="ru", locale="ru_RU", what="confirmed") == (
        "Запись подтверждена: Стрижка, пт 13 марта, 15:00 (Анна).")
    assert booking_notice(booking, tz=MOSCOW, language="en", locale="ru_RU", what="confirmed") == (
        "Your booking is confirmed: Стрижка, Fri 13 Mar, 15:00 (Анна).")
    lost = booking_notice(booking, tz=MOSCOW, language="ru", locale="ru_RU", what="lost")
    assert lost == ("К сожалению, время пт 13 марта, 15:00 на «Стрижка» заняли до поступления оплаты. "
                    "Мы вернём 500,00 ₽; пожалуйста, выберите другое время.")


def test_prepayment_order_line_is_named_in_the_language() -> None:
    assert prepayment_label("Стрижка", "ru") == "Стрижка (предоплата)"
    assert prepayment_label("Haircut", "en") == "Haircut (prepayment)"
    assert prepayment_label("Haircut", "de") == "Haircut (prepayment)"  # unsupported: English


def test_company_locale_comes_from_settings_or_the_companys_language() -> None:
    assert company_locale(Company(language="ru", settings={})) == "ru_RU"
    assert company_locale(Company(language="en", settings={})) == "en_US"
    assert company_locale(Company(language="en", settings={"locale": "en-GB"})) == "en_GB"
    assert company_locale(Company(language="en", settings={"locale": "de"})) == "de_DE"
    assert company_locale(Company(language="ru", settings={"locale": "xx-YY"})) == "ru_RU"
