"""Schemathesis over the account routes (``/api/v1/auth``, API keys, managers, platform admins) of the
real server (uvicorn on a local port): generated bodies, valid and not, never get a 5xx.

Callers are an owner's JWT for the tenant routes and nobody for the public ones. Examples per
operation are kept small (``MAX_EXAMPLES``) so the suite stays quick; raise it locally to dig.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, settings

from api.app import create_app
from tests.auth_helpers import PASSWORD, last_code
from tests.doubles.smtp_server import SMTPServer, free_port, smtp_server
from tests.test_api import EchoResponder, make_settings

MAX_EXAMPLES = 15
ROUTES = r"^/api/v1/(auth/|platform-admins|tenants/\{tenant\}/(api-keys|managers))"


@pytest.fixture
def server(sqlite_template: Path, tmp_path: Path) -> Iterator[tuple[str, SMTPServer]]:
    """The app under uvicorn on 127.0.0.1:<free port> on a fresh SQLite copy (input validation does
    not depend on the database), its mails going to a local SMTP server."""
    database_url = f"sqlite+aiosqlite:///{shutil.copy(sqlite_template, tmp_path / 'fuzz.db')}"
    with smtp_server() as smtp:
        cfg = make_settings(database_url, tmp_path, smtp_host=smtp.host, smtp_port=smtp.port, smtp_starttls=False,
                            workers_enabled=False, mail_limit_per_address="100000/hour",
                            login_limit_per_address="100000/hour", login_limit_per_account="100000/hour")
        port = free_port()
        srv = uvicorn.Server(uvicorn.Config(create_app(cfg, responder=EchoResponder()), host="127.0.0.1", port=port,
                                            log_level="warning", lifespan="on"))
        thread = threading.Thread(target=srv.run, name="uvicorn-fuzz", daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not srv.started:
            assert time.monotonic() < deadline and thread.is_alive(), "uvicorn did not start"
            time.sleep(0.05)
        try:
            yield f"http://127.0.0.1:{port}", smtp
        finally:
            srv.should_exit = True
            thread.join(timeout=30)


def test_account_routes_never_answer_5xx(server: tuple[str, SMTPServer]) -> None:
    base, smtp = server
    with httpx.Client(base_url=base, timeout=30) as c:
        r = c.post("/api/v1/auth/signup", json={"email": "ann@example.com", "password": PASSWORD,
                                                  "tenant_name": "Ann", "tenant_slug": "ann"})
        assert r.status_code == 201, r.text
        c.post("/api/v1/auth/verify", json={"email": "ann@example.com", "code": last_code(smtp, "ann@example.com")})
        token = c.post("/api/v1/auth/login", json={"email": "ann@example.com", "password": PASSWORD}).json()
        c.post("/api/v1/tenants/ann/companies", json={"slug": "ann-shop", "name": "Shop"},
               headers={"Authorization": f"Bearer {token['access_token']}"}).raise_for_status()
    schema = schemathesis.openapi.from_url(f"{base}/openapi.json").include(path_regex=ROUTES)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 15, [op.label for op in operations]
    failures: list[str] = []
    seen: Counter[int] = Counter()
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case: schemathesis.Case) -> None:
            if "{tenant}" in case.operation.path:
                case.path_parameters = {**(case.path_parameters or {}), "tenant": "ann"}
                case.headers = {**(case.headers or {}), "Authorization": f"Bearer {token['access_token']}"}
            response = case.call(base_url=base, timeout=30)
            seen[response.status_code // 100 * 100] += 1
            if response.status_code >= 500:
                failures.append(f"{case.operation.label}: {response.status_code} for {case.body!r} "
                                f"{case.path_parameters!r}: {response.text[:200]}")

        check()
    assert not failures, "\n".join(failures[:20])
    assert seen[200] and seen[400], seen  # the generated calls get both through and refused
