"""Texts the commerce layer sends to customers on its own: payment and booking notices.

Every sentence comes from the project's message catalogue (``core.i18n``, keys ``notice:*``) in the
customer's language; money is written in the company's locale (``core.i18n.company_locale``) and
dates by Babel in the company's time zone.
"""

from __future__ import annotations

from typing import Literal
from zoneinfo import ZoneInfo

from core.i18n import money, t, when_text
from core.models import Booking, Order


def payment_confirmation(order: Order, *, language: str, locale: str) -> str:
    """The message a customer gets in their conversation when ``order`` is paid, in ``language``
    (``en``/``ru``; others are English), the total in ``locale`` (``en_US``, ``ru_RU``):
    ``Payment received for order #12: 170.00 USD. Thank you!`` plus the delivery sentence when the
    order has a delivery address."""
    text = t("notice:paid", language, number=order.number, total=money(order.total_minor, order.currency, locale))
    if order.delivery_address:
        text += " " + t("notice:paid_delivery", language, address=order.delivery_address)
    return text


def booking_notice(booking: Booking, *, tz: ZoneInfo, language: str, locale: str,
                   what: Literal["confirmed", "lost"]) -> str:
    """The customer message for a confirmed booking (``Your booking is confirmed: Haircut, Fri 13 Mar,
    15:00 (Anna).``) or for one lost before its payment arrived (with the refund of the prepayment in
    ``locale``); the time is local to ``tz``, the text in ``language``."""
    when = when_text(booking.start_at, tz, language)
    if what == "confirmed":
        return t("notice:booking_confirmed", language, service=booking.service_name, when=when,
                 resource=booking.resource_name)
    return t("notice:booking_lost", language, service=booking.service_name, when=when,
             amount=money(booking.prepay_minor, booking.currency, locale))


def prepayment_label(service_name: str, language: str) -> str:
    """The order line name of a partial prepayment: ``Haircut (prepayment)`` / ``Стрижка (предоплата)``."""
    return t("label:prepayment", language, name=service_name)
