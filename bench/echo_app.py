"""The bare FastAPI echo that ``bench_pipeline.py`` measures next to the engine, for a ratio.

One route shaped like a channel webhook (``POST /webhooks/{kind}/{inbox_id}``) that reads the body and
answers a small JSON object, nothing else. Served by uvicorn with ``--factory``::

    .venv/bin/python -m uvicorn --app-dir bench echo_app:create_app --factory
"""

from __future__ import annotations

from fastapi import FastAPI, Request


def create_app() -> FastAPI:
    """The echo application (no middleware, no database)."""
    app = FastAPI()

    @app.post("/webhooks/{kind}/{inbox_id}")
    async def echo(kind: str, inbox_id: str, request: Request) -> dict[str, object]:
        body = await request.body()
        return {"ok": True, "bytes": len(body)}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app
