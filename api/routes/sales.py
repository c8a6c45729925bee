"""Orders, payments and bookings for the manager under ``/api/v1/tenants/{tenant}/companies/{company}``
(the use cases are ``api.sales``):

* ``GET payments`` — who got a payment link, when, and whether it was paid;
* ``GET exports/orders.csv``, ``GET exports/payments.csv``, ``GET exports/bookings.csv`` — the lists
  as CSV (``core.csv_safe``: cells starting with ``=``, ``+``, ``-``, ``@`` are neutralised).

The order list with the same filters is ``GET orders`` (``api.routes.admin``), the booking list
``GET bookings`` (``api.routes.bookings``). Like ``api.routes.admin``: ``AdminDep`` on the router,
the company from ``CompanyDep`` (another tenant's company is a 404).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from pydantic import AwareDatetime

from api.deps import AdminDep, CompanyDep, SessionDep
from api.sales import (
    SalesFilter,
    booking_csv_rows,
    list_bookings,
    list_orders,
    list_payments,
    order_csv_rows,
    payment_csv_rows,
    to_csv,
)
from core.models import PaymentStatus

router = APIRouter(prefix="/api/v1", tags=["sales"], dependencies=[AdminDep])

_COMPANY = "/tenants/{tenant}/companies/{company}"


def sales_filters(
    status_: Annotated[list[str] | None, Query(alias="status", description="The row's status (repeat for several)")]
    = None,
    payment_status: Annotated[list[PaymentStatus] | None, Query(
        description="The order's payment status (repeat for several)")] = None,
    since: Annotated[AwareDatetime | None, Query(description="At or after (ISO-8601 with zone)")] = None,
    until: Annotated[AwareDatetime | None, Query(description="Before (ISO-8601 with zone)")] = None,
    contact_id: Annotated[uuid.UUID | None, Query(description="Only this customer")] = None,
    q: Annotated[str | None, Query(max_length=200, description="Customer name or phone contains this, "
                                                                "or the order number")] = None,
) -> SalesFilter:
    """The list filters of the query string (``api.sales.SalesFilter``); an unknown status is a 422."""
    return SalesFilter(statuses=tuple(status_ or ()), payment_statuses=tuple(payment_status or ()), since=since,
                       until=until, contact_id=contact_id, text=q)


SalesFilterDep = Annotated[SalesFilter, Depends(sales_filters)]


def csv_response(text: str, filename: str) -> Response:
    """``text/csv`` (RFC 4180, UTF-8) offered as a download named ``filename``."""
    return Response(content=text.encode("utf-8"), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"'})


@router.get(_COMPANY + "/payments")
async def list_payments_route(company: CompanyDep, session: SessionDep, filters: SalesFilterDep
                              ) -> list[dict[str, Any]]:
    """Payment links of the company's orders, newest first: the order number and customer, when the
    link was sent (``sent_at``) and until when it is valid, ``status`` and ``paid``/``paid_at``.
    ``status`` filters ``Payment.status``; money in minor units."""
    return await list_payments(session, company=company, filters=filters)


_CSV = {200: {"content": {"text/csv": {}}, "description": "CSV with a header row"}}


@router.get(_COMPANY + "/exports/orders.csv", response_class=Response, responses=_CSV)
async def export_orders(company: CompanyDep, session: SessionDep, filters: SalesFilterDep) -> Response:
    """The filtered orders as CSV (totals in major units with a currency column)."""
    orders = await list_orders(session, company=company, filters=filters)
    return csv_response(to_csv(order_csv_rows(orders)), f"{company.slug}-orders.csv")


@router.get(_COMPANY + "/exports/payments.csv", response_class=Response, responses=_CSV)
async def export_payments(company: CompanyDep, session: SessionDep, filters: SalesFilterDep) -> Response:
    """The filtered payment links as CSV."""
    rows = await list_payments(session, company=company, filters=filters)
    return csv_response(to_csv(payment_csv_rows(rows)), f"{company.slug}-payments.csv")


@router.get(_COMPANY + "/exports/bookings.csv", response_class=Response, responses=_CSV)
async def export_bookings(company: CompanyDep, session: SessionDep, filters: SalesFilterDep) -> Response:
    """The filtered bookings as CSV (dates bound the start time)."""
    rows = await list_bookings(session, company=company, filters=filters)
    return csv_response(to_csv(booking_csv_rows(rows)), f"{company.slug}-bookings.csv")
