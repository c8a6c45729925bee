"""Metrics: a company's business figures for the admin API, and the operators' Prometheus endpoint.

* ``GET /api/v1/tenants/{tenant}/companies/{company}/metrics?from=YYYY-MM-DD&to=YYYY-MM-DD`` — the
  company's figures (``commerce.metrics.company_metrics``) for local days ``from``..``to`` inclusive
  in the company's timezone (default: the last 30 days up to today). At most 366 days.
* ``GET /metrics`` — Prometheus text format (``api.telemetry``): process-wide counters without any
  tenant data. Open unless ``CHATCOMMERCE_METRICS_TOKEN`` is set; then ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Response, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.deps import AdminDep, CompanyDep, RuntimeDep, SessionDep
from api.telemetry import CONTENT_TYPE
from commerce.metrics import company_metrics
from commerce.schedule import company_zone, day_bounds
from core.security import tokens_match
from core.timeutil import utcnow

MAX_DAYS = 366
DEFAULT_DAYS = 30

router = APIRouter(prefix="/api/v1", tags=["metrics"], dependencies=[AdminDep])
ops_router = APIRouter(tags=["operations"])
_bearer = HTTPBearer(auto_error=False, description="CHATCOMMERCE_METRICS_TOKEN, when set.")


@router.get("/tenants/{tenant}/companies/{company}/metrics")
async def company_metrics_route(
    company: CompanyDep,
    session: SessionDep,
    from_: Annotated[date | None, Query(alias="from", description="First local day (company timezone).")] = None,
    to: Annotated[date | None, Query(description="Last local day, inclusive (default today).")] = None,
) -> dict[str, Any]:
    """Conversations, messages in/out, median bot reply time, share handed to a human, payment links,
    paid orders, conversion, revenue (minor units per currency), bookings and no-shows of the company
    — in total, per channel and per lead source (definitions: ``commerce.metrics``). 422 when ``from``
    is after ``to`` or the range exceeds 366 days."""
    tz = company_zone(company)
    last = to or utcnow().astimezone(tz).date()
    first = from_ or last - timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "'from' is after 'to'")
    if (last - first).days + 1 > MAX_DAYS:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, f"the range is longer than {MAX_DAYS} days")
    try:
        start, end = day_bounds(first, tz)[0], day_bounds(last, tz)[1]
    except (OverflowError, ValueError) as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "date out of range") from exc
    figures = await company_metrics(session, company=company, start=start, end=end)
    return {"company": company.slug, "timezone": str(tz), "from_day": first.isoformat(), "to_day": last.isoformat(),
            **figures}


def _metrics_guard(runtime: RuntimeDep,
                   credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> None:
    token = runtime.settings.metrics_token
    expected = token.get_secret_value() if token else None
    if not expected:
        return
    if not tokens_match(credentials.credentials if credentials else None, expected):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, "invalid or missing metrics token",
                            headers={"WWW-Authenticate": "Bearer"})


@ops_router.get("/metrics", dependencies=[Depends(_metrics_guard)],
                responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}})
async def prometheus_metrics(runtime: RuntimeDep) -> Response:
    """Process metrics for Prometheus (no tenant data in any label; see ``api.telemetry``)."""
    return Response(content=runtime.telemetry.render(), media_type=CONTENT_TYPE)
