"""The role/tenant table: every route of the OpenAPI schema, called by each kind of caller, answers
what ``api.access_table`` (the README's table) says — and no route leaks another tenant's rows.

Callers (``api.access_table.COLUMNS``): the platform admin, the owner of tenant A, the owner of
tenant B, the manager of A's company X, the manager of A's company Y, an API key of A, anonymous.
Every path is called with tenant A and company X and made-up ids, with an empty JSON body: a caller
that is let in gets past the access check (2xx, or a 404/409/422 about the resource or the body);
one that is not gets 401, 403, or the 404 of a hidden tenant/company. Then the owner, the API key and
the manager of X call every route of their own tenant with the ids of tenant B's rows: nothing of B
is answered. No call may end in a 5xx.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from api.access_table import COLUMNS, ROUTES, expected, markdown_table
from core.models import Company, Inbox
from tests.auth_helpers import app_with_mail, bearer, invite_manager, signup
from tests.test_api import AUTH, place_order, say

pytestmark = pytest.mark.postgres

README = Path(__file__).resolve().parent.parent / "README.md"
TENANT, COMPANY = "tenant-a", "shop-x"
HIDDEN = {f"tenant {TENANT!r} not found", f"company {COMPANY!r} not found"}
# Run order: the callers allowed to unassign X's manager come after X's manager.
ORDER = ("anonymous", "API key", "manager Y", "manager X", "other owner", "owner", "admin")


def _schema_routes(openapi: dict) -> list[tuple[str, str]]:
    return [(method.upper(), path) for path, ops in openapi["paths"].items() for method in ops
            if method in ("get", "post", "put", "patch", "delete")]


def _fill(path: str, ids: dict[str, str]) -> str:
    values = {"tenant": TENANT, "company": COMPANY, "kind": "telegram", "token": "not-a-token", **ids}
    return re.sub(r"\{(\w+)\}", lambda m: values.get(m.group(1), str(uuid.uuid4())), path)


# Routes that delete the tenant or company the walk addresses: walking them would remove the fixture
# for every later call. Their access is checked in tests/test_tenant_deletion.py.
DESTRUCTIVE = {("DELETE", "/api/v1/tenants/{tenant}"), ("DELETE", "/api/v1/tenants/{tenant}/companies/{company}")}


async def _call(client: httpx.AsyncClient, method: str, path: str, headers: dict[str, str]) -> httpx.Response:
    """The answer to one request. A refusal (401/403/404) answers at once; a granted Server-Sent Events
    stream never ends (and the in-process transport waits for the whole body), so a request to an
    ``/events`` route still running after 3 s counts as granted (200, ``text/event-stream``)."""
    body = {} if method in ("POST", "PUT", "PATCH") else None
    call = client.request(method, path, json=body, headers=headers)
    if not path.endswith("/events"):
        return await call
    try:
        return await asyncio.wait_for(call, timeout=3)
    except TimeoutError:
        return httpx.Response(200, headers={"content-type": "text/event-stream"},
                              request=httpx.Request(method, path))


def _outcome(r: httpx.Response) -> str:
    assert r.status_code < 500, (r.request.method, r.request.url, r.status_code, r.text)
    if r.status_code in (401, 403):
        return str(r.status_code)
    if r.status_code == 404 and r.headers.get("content-type", "").startswith("application/json"):
        if r.json().get("detail") in HIDDEN:
            return "404"
    return "ok"


def test_readme_table_is_the_access_table() -> None:
    text = README.read_text()
    start, end = "<!-- access-table:start -->\n", "\n<!-- access-table:end -->"
    assert start in text and end in text, "README lacks the access table markers"
    assert text.split(start, 1)[1].split(end, 1)[0].strip() == markdown_table().strip(), (
        "README access table is stale: paste the output of `python -m api.access_table`")


async def test_every_route_with_every_role(database_url: str, tmp_path: Path) -> None:
    async with app_with_mail(database_url, tmp_path) as (env, smtp):
        c = env.client
        admin = await signup(c, smtp, "admin@example.com", "platform")
        assert (await c.post("/api/v1/platform-admins", json={"email": "admin@example.com"},
                             headers=AUTH)).status_code == 200
        owner = await signup(c, smtp, "ann@example.com", TENANT)
        other = await signup(c, smtp, "bob@example.com", "tenant-b")
        for tenant, slug, token in ((TENANT, "shop-x", owner), (TENANT, "shop-y", owner),
                                    ("tenant-b", "shop-z", other)):
            r = await c.post(f"/api/v1/tenants/{tenant}/companies", json={"slug": slug, "name": slug},
                             headers=bearer(token["access_token"]))
            assert r.status_code == 201, r.text
        manager_x = await invite_manager(c, smtp, owner["access_token"], TENANT, "shop-x", "mx@example.com")
        manager_y = await invite_manager(c, smtp, owner["access_token"], TENANT, "shop-y", "my@example.com")
        key = (await c.post(f"/api/v1/tenants/{TENANT}/api-keys", json={"name": "script"},
                            headers=bearer(owner["access_token"]))).json()["key"]
        headers = {
            "admin": bearer(admin["access_token"]), "owner": bearer(owner["access_token"]),
            "other owner": bearer(other["access_token"]), "manager X": bearer(manager_x["access_token"]),
            "manager Y": bearer(manager_y["access_token"]), "API key": bearer(key), "anonymous": {},
        }
        assert set(ORDER) == set(COLUMNS)

        routes = _schema_routes((await c.get("/openapi.json")).json())
        assert sorted(routes) == sorted(ROUTES), (
            f"routes missing from api.access_table.ROUTES: {sorted(set(routes) - set(ROUTES))}; "
            f"listed but gone: {sorted(set(ROUTES) - set(routes))}")

        mismatches = []
        for column in ORDER:
            for method, path in routes:
                if (method, path) in DESTRUCTIVE:
                    continue  # would delete the fixture itself; covered by tests/test_tenant_deletion.py
                want = expected(ROUTES[(method, path)], column, path=path)
                got = _outcome(await _call(c, method, _fill(path, {}), headers[column]))
                if got != want:
                    mismatches.append(f"{column:12} {method} {path}: got {got}, table says {want}")
        assert not mismatches, "\n".join(mismatches)

        # Tenant B's rows, addressed through tenant A's own paths.
        chat = await say(c, "shop-z", "visitor-b", "hello")
        placed = await place_order(env.runtime, chat["conversation_id"])
        other_key = (await c.post("/api/v1/tenants/tenant-b/api-keys", json={"name": "b"},
                                  headers=bearer(other["access_token"]))).json()["id"]
        async with env.runtime.sessionmaker() as s:
            inbox = (await s.execute(select(Inbox).join(Company, Company.id == Inbox.company_id)
                                     .where(Company.slug == "shop-z"))).scalars().first()
        assert inbox is not None
        foreign = {"conversation_id": chat["conversation_id"], "order_id": str(placed.order_id),
                   "inbox_id": str(inbox.id), "key_id": other_key}
        leaks = []
        for column in ("owner", "API key", "manager X"):
            for method, path in routes:
                if not any(f"{{{name}}}" in path for name in foreign) or "{tenant}" not in path:
                    continue
                r = await _call(c, method, _fill(path, foreign), headers[column])
                assert r.status_code < 500, (method, path, r.text)
                if r.status_code < 300:
                    leaks.append(f"{column} {method} {path}: {r.status_code} {r.text[:200]}")
        assert not leaks, "\n".join(leaks)
        # Tenant B's rows are still all there and untouched.
        conv = await c.get(f"/api/v1/tenants/tenant-b/companies/shop-z/conversations/{chat['conversation_id']}",
                           headers=bearer(other["access_token"]))
        assert conv.status_code == 200 and conv.json()["handoff"] is False
