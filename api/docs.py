"""The API's own documentation pages: ``/openapi.json`` and ``/docs`` (Swagger UI).

Swagger UI's assets are served from the ``swagger_ui_bundle`` package under ``/static/swagger-ui/``,
never from a CDN, so ``/docs`` works offline and under the pages' Content-Security-Policy (its one
inline script carries the request's CSP nonce). Both pages answer 404 when
``CHATCOMMERCE_API_DOCS=false``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

from api.deps import SettingsDep, TemplatesDep

SWAGGER_UI_PREFIX = "/static/swagger-ui"
OPENAPI_URL = "/openapi.json"

router = APIRouter(include_in_schema=False)


def swagger_ui_assets() -> StaticFiles:
    """The Swagger UI distribution of the ``swagger_ui_bundle`` package, to mount at
    :data:`SWAGGER_UI_PREFIX`."""
    return StaticFiles(directory=str(swagger_ui_path))


def _require_docs(settings: Any) -> None:
    if not settings.api_docs:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "Not Found")


@router.get(OPENAPI_URL)
async def openapi_schema(request: Request, settings: SettingsDep) -> dict[str, Any]:
    """The OpenAPI document of the app (404 when the docs are turned off)."""
    _require_docs(settings)
    return request.app.openapi()


@router.get("/docs", response_class=HTMLResponse)
async def swagger_ui(request: Request, settings: SettingsDep, templates: TemplatesDep) -> HTMLResponse:
    """Swagger UI for :data:`OPENAPI_URL` (404 when the docs are turned off)."""
    _require_docs(settings)
    return templates.TemplateResponse(
        request, "docs.html",
        {"title": request.app.title, "openapi_url": OPENAPI_URL, "assets": SWAGGER_UI_PREFIX},
    )
