"""Texts the commerce layer sends to customers on its own (payment confirmations), in EN and RU."""

from __future__ import annotations

from core.models import Order
from core.money import format_money

_PAID = {
    "en": "Payment received for order #{number}: {total}. Thank you!{delivery}",
    "ru": "Оплата заказа №{number} получена: {total}. Спасибо!{delivery}",
}
_DELIVERY = {
    "en": " We will deliver it to {address} and let you know about the delivery time.",
    "ru": " Мы доставим его по адресу: {address} и сообщим время доставки.",
}


def payment_confirmation(order: Order, *, language: str) -> str:
    """The message a customer gets in their conversation when ``order`` is paid."""
    lang = language if language in _PAID else "en"
    delivery = _DELIVERY[lang].format(address=order.delivery_address) if order.delivery_address else ""
    return _PAID[lang].format(
        number=order.number, total=format_money(order.total_minor, order.currency, language=lang), delivery=delivery
    )
