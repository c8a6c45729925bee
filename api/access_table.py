"""Who may call which route: the table in the README, and what ``tests/test_access_table.py`` holds the
running app to (it walks every route of the OpenAPI schema with each role).

``ROUTES`` maps ``(METHOD, path)`` to the requirement of the route: ``public`` (no credential),
``authenticated`` (anyone signed in; the answer is filtered to what they may see), ``manager``,
``owner`` or ``admin``, with ``+person`` when API keys are refused. The enforcing code is
``api.deps.get_access`` with the routes' ``Requires(...)`` declarations; this table is the
specification it is tested against, so a change to either must change both.

The roles of the columns, in a fixture of tenant A (companies X and Y) and tenant B: the platform
``admin``; ``owner`` of A; ``other owner`` (owner of B); ``manager X`` (manager of A's company X);
``manager Y`` (manager of A's company Y, not X); an ``API key`` of A; ``anonymous``. Every path is
called with tenant A and company X. Cells: ✓ allowed; 401 no or bad credential; 403 the role lacks
the right; 404 the tenant or company is hidden (the same answer as one that does not exist).

Run ``python -m api.access_table`` to print the Markdown table for the README.
"""

from __future__ import annotations

from typing import Literal

Outcome = Literal["ok", "401", "403", "404"]
COLUMNS: tuple[str, ...] = ("admin", "owner", "other owner", "manager X", "manager Y", "API key", "anonymous")

_T = "/api/v1/tenants/{tenant}"
_C = _T + "/companies/{company}"

ROUTES: dict[tuple[str, str], str] = {
    # public: the customers' side, providers' webhooks, sign-in
    ("GET", "/healthz"): "public",
    ("GET", "/readyz"): "public",
    ("POST", "/api/v1/webchat/{company}/messages"): "public",
    ("GET", "/api/v1/webchat/{company}/messages"): "public",
    ("POST", "/webhooks/{kind}/{inbox_id}"): "public",
    ("GET", "/calendar/{company}/{token}.ics"): "public",
    ("POST", "/api/v1/auth/signup"): "public",
    ("POST", "/api/v1/auth/verify"): "public",
    ("POST", "/api/v1/auth/verify/resend"): "public",
    ("POST", "/api/v1/auth/login"): "public",
    ("POST", "/api/v1/auth/refresh"): "public",
    ("POST", "/api/v1/auth/logout"): "public",
    ("POST", "/api/v1/auth/magic-link"): "public",
    ("POST", "/api/v1/auth/magic-link/consume"): "public",
    ("POST", "/api/v1/auth/password-reset"): "public",
    ("POST", "/api/v1/auth/password-reset/confirm"): "public",
    # anyone signed in (answers filtered to what the caller may see)
    ("GET", "/api/v1/auth/me"): "authenticated",
    ("GET", "/api/v1/tenants"): "authenticated",
    # platform
    ("POST", "/api/v1/tenants"): "admin",
    ("POST", "/api/v1/platform-admins"): "admin+person",
    # tenant-wide
    ("POST", _T + "/companies"): "owner",
    ("GET", _T + "/companies"): "manager",
    ("POST", _T + "/api-keys"): "owner+person",
    ("GET", _T + "/api-keys"): "owner+person",
    ("DELETE", _T + "/api-keys/{key_id}"): "owner+person",
    ("GET", _T + "/managers"): "owner",
    ("POST", _T + "/managers"): "owner+person",
    ("DELETE", _T + "/managers/{company}"): "owner+person",
    # a company: its data (managers) ...
    ("GET", _C): "manager",
    ("GET", _C + "/knowledge-base/items"): "manager",
    ("GET", _C + "/knowledge-base/faq"): "manager",
    ("GET", _C + "/knowledge-base/imports"): "manager",
    ("GET", _C + "/knowledge-base/imports/{job_id}"): "manager",
    ("GET", _C + "/conversations"): "manager",
    ("GET", _C + "/conversations/{conversation_id}"): "manager",
    ("POST", _C + "/conversations/{conversation_id}/handoff"): "manager",
    ("POST", _C + "/conversations/{conversation_id}/release"): "manager",
    ("POST", _C + "/conversations/{conversation_id}/messages"): "manager",
    ("GET", _C + "/orders"): "manager",
    ("GET", _C + "/orders/{order_id}"): "manager",
    ("POST", _C + "/orders/{order_id}/mark-paid"): "manager",
    ("GET", _C + "/schedule"): "manager",
    ("GET", _C + "/resources"): "manager",
    ("GET", _C + "/delivery-windows"): "manager",
    ("GET", _C + "/bookings"): "manager",
    ("POST", _C + "/bookings/{booking_id}/cancel"): "manager",
    # ... and its configuration, credentials and money (owners)
    ("POST", _C + "/knowledge-base"): "owner",
    ("POST", _C + "/knowledge-base/imports"): "owner",
    ("PUT", _C + "/schedule"): "owner",
    ("POST", _C + "/resources"): "owner",
    ("POST", _C + "/delivery-windows"): "owner",
    ("POST", _C + "/inboxes"): "owner",
    ("GET", _C + "/inboxes"): "owner",
    ("GET", _C + "/inboxes/{inbox_id}/status"): "owner",
    ("GET", _C + "/inboxes/{inbox_id}/qr"): "owner",
    ("DELETE", _C + "/inboxes/{inbox_id}"): "owner",
    ("PUT", _C + "/payment-provider"): "owner",
    ("POST", _C + "/stripe/connect"): "owner",
    ("GET", _C + "/stripe"): "owner",
    ("GET", _C + "/calendar-feed"): "owner",
    ("POST", _C + "/calendar-feed/rotate"): "owner",
    ("GET", _C + "/google-calendar"): "owner",
    ("PUT", _C + "/google-calendar"): "owner",
    ("DELETE", _C + "/google-calendar"): "owner",
    ("POST", _C + "/google-calendar/sync"): "owner",
    # the manager's inbox (api.inbox): notes, labels, canned replies, resolve; sales lists and exports
    ("GET", _T + "/conversations"): "owner",
    ("GET", _C + "/conversations/{conversation_id}/notes"): "manager",
    ("POST", _C + "/conversations/{conversation_id}/notes"): "manager",
    ("DELETE", _C + "/conversations/{conversation_id}/notes/{note_id}"): "manager",
    ("PUT", _C + "/conversations/{conversation_id}/labels"): "manager",
    ("POST", _C + "/conversations/{conversation_id}/resolve"): "manager",
    ("PUT", _C + "/conversations/{conversation_id}/assignee"): "manager",
    ("GET", _C + "/labels"): "manager",
    ("POST", _C + "/labels"): "manager",
    ("DELETE", _C + "/labels/{label_id}"): "manager",
    ("GET", _C + "/canned-replies"): "manager",
    ("POST", _C + "/canned-replies"): "manager",
    ("PATCH", _C + "/canned-replies/{canned_id}"): "manager",
    ("DELETE", _C + "/canned-replies/{canned_id}"): "manager",
    ("GET", _C + "/payments"): "manager",
    ("GET", _C + "/exports/orders.csv"): "manager",
    ("GET", _C + "/exports/payments.csv"): "manager",
    ("GET", _C + "/exports/bookings.csv"): "manager",
    # operations (Prometheus; guarded by CHATCOMMERCE_METRICS_TOKEN when it is set)
    ("GET", "/metrics"): "public",
    # platform: re-encrypt every stored secret under the newest key
    ("POST", "/api/v1/keys/rotate"): "admin+person",
    # tenant data: deletion and personal-data export
    ("DELETE", _T): "owner+person",
    ("DELETE", _C): "owner+person",
    ("GET", _C + "/contacts/{contact}/export"): "owner",
    ("GET", _C + "/retention"): "manager",
    ("PUT", _C + "/retention"): "owner",
    # the manager's view: alerts, live events, metrics, no-shows
    ("GET", _C + "/alert-subscriptions"): "manager",
    ("POST", _C + "/alert-subscriptions"): "manager",
    ("DELETE", _C + "/alert-subscriptions/{subscription_id}"): "manager",
    ("GET", _C + "/alert-deliveries"): "manager",
    ("GET", _C + "/events"): "manager",
    ("POST", _C + "/events/ticket"): "manager+person",
    ("GET", _C + "/metrics"): "manager",
    ("POST", _C + "/bookings/{booking_id}/no-show"): "manager",
    ("GET", _C + "/assistant"): "owner",
    ("GET", _C + "/assistant/usage"): "owner",
    ("PUT", _C + "/assistant"): "owner",
    ("PUT", _C + "/inboxes/{inbox_id}/assistant"): "owner",
}

# Pages outside the OpenAPI schema, public too: /chat/{company} (web chat page), /pay/{token},
# /pay/{token}/test (demo mode), /pay/return, /stripe/onboarding, /stripe/webhook*, /docs.

_LEVEL = {"authenticated": 0, "manager": 1, "owner": 2, "admin": 3}


def expected(rule: str, column: str, *, path: str) -> Outcome:
    """The answer class for the caller of ``column`` on a route with ``rule`` at ``path`` (tenant A,
    company X)."""
    if rule == "public":
        return "ok"
    if column == "anonymous":
        return "401"
    need, _, person = rule.partition("+")
    people_only = person == "person"
    if column == "admin":
        return "ok"
    has_tenant, has_company = "{tenant}" in path, "{company}" in path and "{tenant}" in path
    if not has_tenant:
        role = "authenticated"
    elif column == "other owner":
        return "404"
    elif column == "manager Y" and has_company:
        return "404"
    elif column in ("manager X", "manager Y"):
        role = "manager"
    else:
        role = "owner"
    if _LEVEL[role] < _LEVEL[need]:
        return "403"
    if people_only and column == "API key":
        return "403"
    return "ok"


def _short(path: str) -> str:
    return path.replace(_C, "C").replace(_T, "T")


def markdown_table() -> str:
    """The README table: one row per route, one column per caller (see the module docstring)."""
    cell = {"ok": "✓", "401": "401", "403": "403", "404": "404"}
    lines = ["| route | " + " | ".join(COLUMNS) + " |", "|---|" + "---|" * len(COLUMNS)]
    for (method, path), rule in ROUTES.items():
        cells = [cell[expected(rule, col, path=path)] for col in COLUMNS]
        lines.append(f"| `{method} {_short(path)}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_table())
