"""Schemathesis over the inbox and sales routes (``api.routes.inbox``, ``api.routes.sales`` and the
conversation/order/booking routes they share with ``api.routes.admin``): requests generated from the
OpenAPI schema, valid and invalid, never get a 5xx — on SQLite and PostgreSQL.

The app runs under uvicorn in a thread with a small data set (tenant ``acme``, company
``acme-shop``, one web-chat conversation with an order); generated cases are pointed at that
tenant and company (and, half the time, at the real conversation) so they reach the handlers
instead of stopping at a 404.
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from api.app import create_app
from core.models import Base
from tests.conftest import _pg_admin_on
from tests.test_api import AUTH, EchoResponder, make_settings

PATHS = r"/conversations|/labels|/canned-replies|/payments|/exports/|/orders$|/bookings$"

schema = schemathesis.openapi.from_dict(create_app().openapi()).include(path_regex=PATHS)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The app on 127.0.0.1:<free port> with the data set; yields ``{"url", "conversation_id"}``."""
    tmp = tmp_path_factory.mktemp("fuzz")
    if request.param == "sqlite":
        target = tmp / "fuzz.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), target)
        url = f"sqlite+aiosqlite:///{target}"
    else:
        url = request.getfixturevalue("pg_database")
        tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        asyncio.run(_pg_admin_on(url, f"TRUNCATE {tables} CASCADE"))
    port = _free_port()
    app = create_app(make_settings(url, Path(tmp), workers_enabled=False, public_base_url=f"http://127.0.0.1:{port}"),
                     responder=EchoResponder())
    uv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not uv.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    with httpx.Client(base_url=base, headers=AUTH) as c:
        assert c.post("/api/v1/tenants", json={"name": "Acme", "slug": "acme"}).status_code == 201
        assert c.post("/api/v1/tenants/acme/companies", json={"slug": "acme-shop", "name": "Acme"}).status_code == 201
        sent = c.post("/api/v1/webchat/acme-shop/messages", json={"text": "hello"}, headers={})
        assert sent.status_code == 200, sent.text
        [conv] = c.get("/api/v1/tenants/acme/companies/acme-shop/conversations").json()
    yield {"url": base, "conversation_id": conv["id"]}
    uv.should_exit = True
    thread.join(timeout=10)


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case: Any, server: dict[str, Any]) -> None:
    if "tenant" in case.path_parameters:
        case.path_parameters["tenant"] = "acme"
    if "company" in case.path_parameters:
        case.path_parameters["company"] = "acme-shop"
    if "conversation_id" in case.path_parameters and hash(str(case.query)) % 2 == 0:
        case.path_parameters["conversation_id"] = server["conversation_id"]
    case.call_and_validate(base_url=server["url"], headers=AUTH, checks=[not_a_server_error])
