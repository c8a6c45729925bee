"""Orders, payments and bookings of a company for the manager: filtered lists and CSV exports, shared
by the admin API (``api.routes.sales``) and the CLI (``api.cli_inbox``).

Filters (:class:`SalesFilter`) are the same for the three lists; dates are aware UTC instants
``[since, until)``, applied to when an order was placed, a payment link was made, or a booking
starts. CSV files go through ``core.csv_safe.write_csv`` (formula cells neutralised, RFC 4180);
money columns are decimal amounts in the currency's major unit next to an ISO-4217 column.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import or_
from sqlalchemy.ext.asyncio import AsyncSession

from commerce.bookings import booking_as_dict
from commerce.orders import order_as_dict
from commerce.schedule import company_zone
from core.accounts import ValidationError
from core.csv_safe import write_csv
from core.inputs import checked_text, checked_texts, utc_bound
from core.models import BOOKING_STATUSES, PAYMENT_STATUSES, Booking, Company, Contact, Order, Payment
from core.money import exponent
from core.tenancy import NotFound, TenantScope
from core.textsearch import contains_folded

ORDER_STATUSES: tuple[str, ...] = ("pending_payment", "paid", "cancelled")


@dataclass(frozen=True, kw_only=True)
class SalesFilter:
    """What the order, payment and booking lists keep (empty/None = any).

    ``statuses``: the row's own status (``Order.status``, ``Payment.status`` or ``Booking.status``);
    ``payment_statuses``: the order's ``payment_status`` (for bookings: of their prepayment order);
    ``since``/``until``: aware UTC bounds; ``contact_id``: one customer; ``text``: case-insensitive
    substring of the customer's name or phone (an order number matches exactly)."""

    statuses: tuple[str, ...] = ()
    payment_statuses: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    contact_id: uuid.UUID | None = None
    text: str | None = None

    def __post_init__(self) -> None:
        if bad := sorted(set(self.payment_statuses) - set(PAYMENT_STATUSES)):
            raise ValidationError(f"unknown payment status {bad[0]!r} (use {', '.join(PAYMENT_STATUSES)})")
        checked_texts(self.statuses, "status")
        checked_text(self.text, "search text")
        object.__setattr__(self, "since", utc_bound(self.since, "since"))
        object.__setattr__(self, "until", utc_bound(self.until, "until"))


def _check_statuses(statuses: Iterable[str], allowed: tuple[str, ...], what: str) -> None:
    if bad := sorted(set(statuses) - set(allowed)):
        raise ValidationError(f"unknown {what} status {bad[0]!r} (use {', '.join(allowed)})")


def _customer_text(name_col: Any, phone_col: Any, text: str | None) -> list[Any]:
    if not text or not text.strip():
        return []
    term = text.strip()
    options = [contains_folded(name_col, term), contains_folded(phone_col, term)]
    if term.lstrip("#").isdigit():
        options.append(Order.number == int(term.lstrip("#")))
    return [or_(*options)]


def _filter_clauses(filters: SalesFilter, *, status: Any, when: Any, contact: Any, name: Any,
                    phone: Any) -> list[Any]:
    """The WHERE clauses of ``filters`` for one list: ``status`` is the row's own status column,
    ``when`` the date column the bounds apply to, ``contact``/``name``/``phone`` the customer's
    columns; the payment statuses are always the order's (``Order.payment_status``)."""
    clauses: list[Any] = []
    if filters.statuses:
        clauses.append(status.in_(filters.statuses))
    if filters.payment_statuses:
        clauses.append(Order.payment_status.in_(filters.payment_statuses))
    if filters.since is not None:
        clauses.append(when >= filters.since)
    if filters.until is not None:
        clauses.append(when < filters.until)
    if filters.contact_id is not None:
        clauses.append(contact == filters.contact_id)
    return clauses + _customer_text(name, phone, filters.text)


# -- orders ----------------------------------------------------------------------------------------


async def list_orders(session: AsyncSession, *, company: Company, filters: SalesFilter) -> list[Order]:
    """The company's orders matching ``filters``, newest first. Raises ``ValidationError``."""
    _check_statuses(filters.statuses, ORDER_STATUSES, "order")
    scope = TenantScope(company.tenant_id)
    stmt = scope.select(Order, Order.company_id == company.id)
    stmt = stmt.where(*_filter_clauses(filters, status=Order.status, when=Order.created_at,
                                       contact=Order.contact_id, name=Order.customer_name, phone=Order.phone))
    return list((await session.execute(stmt.order_by(Order.number.desc()))).scalars())


async def order_by_ref(session: AsyncSession, *, scope: TenantScope, ref: str,
                       company: Company | None = None) -> Order:
    """The order a person means by ``ref``: its id (UUID), or the number printed on it (``1001`` or
    ``#1001``), which is unique per company only and so needs ``company``. Raises ``NotFound`` (also
    for an order of another company) and ``ValidationError`` (a number without a company, or neither)."""
    text = ref.strip()
    try:
        order_id = uuid.UUID(text)
    except ValueError:
        order_id = None
    if order_id is not None:
        order = await scope.get(session, Order, order_id)
        if company is not None and order.company_id != company.id:
            raise NotFound(f"Order {ref} not found")
        return order
    number = text.removeprefix("#")
    if not number.isdigit():
        raise ValidationError(f"{ref!r} is neither an order id nor an order number")
    if company is None:
        raise ValidationError(f"order number {number} needs the company (numbers are per company)")
    row = (await session.execute(scope.select(Order, Order.company_id == company.id,
                                              Order.number == int(number)))).scalar_one_or_none()
    if row is None:
        raise NotFound(f"order #{number} not found in {company.slug}")
    return row


ORDER_CSV_HEADER = ("number", "placed_at", "status", "payment_status", "customer_name", "phone",
                    "delivery_address", "items", "total", "currency", "paid_at", "id")


def order_csv_rows(orders: Iterable[Order]) -> Iterable[list[Any]]:
    """The header and one row per order (``total`` in major units, e.g. ``170.00``)."""
    yield list(ORDER_CSV_HEADER)
    for o in orders:
        items = "; ".join(f"{ln.quantity} x {ln.name}" + (f" ({ln.variant})" if ln.variant else "") for ln in o.lines)
        yield [o.number, o.created_at.isoformat(), o.status, o.payment_status, o.customer_name, o.phone,
               o.delivery_address, items, _amount(o.total_minor, o.currency), o.currency,
               o.paid_at.isoformat() if o.paid_at else None, str(o.id)]


def orders_as_dicts(orders: Iterable[Order]) -> list[dict[str, object]]:
    """``commerce.orders.order_as_dict`` of each order plus its ``contact_id``."""
    return [{**order_as_dict(o), "contact_id": str(o.contact_id) if o.contact_id else None} for o in orders]


# -- payments --------------------------------------------------------------------------------------


async def list_payments(session: AsyncSession, *, company: Company, filters: SalesFilter) -> list[dict[str, Any]]:
    """Who got a payment link, when, and whether it was paid: the company's payment attempts matching
    ``filters`` (``statuses``: ``Payment.status``; ``payment_statuses``: the order's), newest first,
    each with its order's number and the customer (order name/phone, else the contact's). Money in
    minor units. The link itself is not returned (it carries the customer's payment token)."""
    _check_statuses(filters.statuses, PAYMENT_STATUSES, "payment")
    scope = TenantScope(company.tenant_id)
    stmt = (
        scope.select(Payment)
        .add_columns(Order, Contact)
        .join(Order, Order.id == Payment.order_id)
        .outerjoin(Contact, Contact.id == Order.contact_id)
        .where(Order.tenant_id == scope.tenant_id, Order.company_id == company.id)
    )
    stmt = stmt.where(*_filter_clauses(filters, status=Payment.status, when=Payment.created_at,
                                       contact=Order.contact_id, name=Order.customer_name, phone=Order.phone))
    out: list[dict[str, Any]] = []
    for payment, order, contact in await session.execute(stmt.order_by(Payment.created_at.desc())):
        out.append({
            "id": str(payment.id), "order_id": str(order.id), "order_number": order.number,
            "contact_id": str(order.contact_id) if order.contact_id else None,
            "customer_name": order.customer_name or (contact.name if contact else None),
            "phone": order.phone or (contact.phone if contact else None),
            "provider": payment.provider, "status": payment.status, "order_payment_status": order.payment_status,
            "amount_minor": payment.amount_minor, "currency": payment.currency, "method": payment.method,
            "link_sent": payment.checkout_url is not None, "sent_at": payment.created_at.isoformat(),
            "expires_at": payment.expires_at.isoformat() if payment.expires_at else None,
            "paid": payment.status == "paid", "paid_at": payment.paid_at.isoformat() if payment.paid_at else None,
        })
    return out


PAYMENT_CSV_HEADER = ("order_number", "customer_name", "phone", "provider", "link_sent", "sent_at", "expires_at",
                      "status", "paid", "paid_at", "method", "amount", "currency", "id")


def payment_csv_rows(payments: Iterable[dict[str, Any]]) -> Iterable[list[Any]]:
    """The header and one row per payment of :func:`list_payments`."""
    yield list(PAYMENT_CSV_HEADER)
    for p in payments:
        yield [p["order_number"], p["customer_name"], p["phone"], p["provider"], _yes(p["link_sent"]), p["sent_at"],
               p["expires_at"], p["status"], _yes(p["paid"]), p["paid_at"], p["method"],
               _amount(p["amount_minor"], p["currency"]), p["currency"], p["id"]]


# -- bookings --------------------------------------------------------------------------------------


async def list_bookings(session: AsyncSession, *, company: Company, filters: SalesFilter) -> list[dict[str, Any]]:
    """The company's bookings matching ``filters`` (dates bound the start), earliest first, as
    ``commerce.bookings.booking_as_dict`` (with ``local_start`` in the company's zone) plus the
    ``contact_id`` and the prepayment order's ``payment_status`` (``None`` without prepayment)."""
    _check_statuses(filters.statuses, BOOKING_STATUSES, "booking")
    scope = TenantScope(company.tenant_id)
    stmt = (scope.select(Booking, Booking.company_id == company.id).add_columns(Order.payment_status)
            .outerjoin(Order, Order.id == Booking.order_id))
    stmt = stmt.where(*_filter_clauses(filters, status=Booking.status, when=Booking.start_at,
                                       contact=Booking.contact_id, name=Booking.customer_name,
                                       phone=Booking.phone))
    tz = company_zone(company)
    return [{**booking_as_dict(b, tz=tz), "contact_id": str(b.contact_id) if b.contact_id else None,
             "payment_status": pay}
            for b, pay in await session.execute(stmt.order_by(Booking.start_at))]


BOOKING_CSV_HEADER = ("start_local", "start_at", "end_at", "status", "service", "resource", "customer_name", "phone",
                      "prepay", "currency", "payment_status", "refund_due", "id")


def booking_csv_rows(bookings: Iterable[dict[str, Any]]) -> Iterable[list[Any]]:
    """The header and one row per booking of :func:`list_bookings`."""
    yield list(BOOKING_CSV_HEADER)
    for b in bookings:
        yield [b.get("local_start"), b["start_at"], b["end_at"], b["status"], b["service"], b["resource"],
               b["customer_name"], b["phone"], _amount(b["prepay_minor"], b["currency"]), b["currency"],
               b["payment_status"], _yes(b["refund_due"]), b["id"]]


# -- CSV -------------------------------------------------------------------------------------------


def to_csv(rows: Iterable[Iterable[Any]]) -> str:
    """``rows`` as CSV text (``core.csv_safe.write_csv``: formula cells neutralised, CRLF line ends)."""
    buffer = io.StringIO(newline="")
    write_csv(buffer, rows)
    return buffer.getvalue()


def _yes(value: bool) -> str:
    return "yes" if value else "no"


def _amount(minor: int | None, currency: str) -> str | None:
    """Minor units as a plain decimal in the major unit (``17000`` USD → ``170.00``, ``123456`` → ``1234.56``:
    no thousands separator), for spreadsheets."""
    if minor is None:
        return None
    places = exponent(currency)
    return f"{Decimal(minor).scaleb(-places):.{places}f}"
