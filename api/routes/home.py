"""The root page ``/``: where a newcomer lands after ``make demo``.

In demo mode (``chatcommerce demo``) it lists the demo tenant's companies with links to their web chats
and to the API docs. Outside demo mode it only says the engine is running: a production server never
lists its tenants or companies to anonymous visitors.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from api.demo import DEMO_TENANT
from api.deps import SessionDep, SettingsDep, TemplatesDep
from core.models import Company
from core.tenancy import NotFound, TenantScope, tenant_by_slug

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
async def home(request: Request, session: SessionDep, settings: SettingsDep, templates: TemplatesDep) -> HTMLResponse:
    """The root page: demo chats (name, type, ``/chat/{slug}`` link) in demo mode, else a plain notice.

    Always 200 with HTML; the API docs link appears only when ``CHATCOMMERCE_API_DOCS`` is on."""
    companies: list[Company] = []
    if settings.demo_mode:
        try:
            tenant = await tenant_by_slug(session, DEMO_TENANT[0])
        except NotFound:
            tenant = None
        if tenant is not None:
            scope = TenantScope(tenant.id)
            companies = list((await session.execute(scope.select(Company).order_by(Company.name))).scalars())
    return templates.TemplateResponse(
        request, "home.html",
        {"lang": "en", "demo": settings.demo_mode, "companies": companies, "docs": settings.api_docs},
    )
