"""``StripeFixtureServer``: a local HTTP test double of the Stripe REST API (not Stripe).

It listens on 127.0.0.1 (random port) in a thread and answers the few paths the engine uses:

* ``POST /v1/checkout/sessions``, ``GET /v1/checkout/sessions/{id}``, ``POST /v1/checkout/sessions/{id}/expire``
* ``POST /v1/accounts``, ``GET /v1/accounts/{id}``
* ``POST /v1/account_links``

Responses are copies of the objects in a fixtures file shaped like Stripe's published API fixtures
(``{"resources": {"checkout.session": …, "account": …, "account_link": …, "event": …}}``; the tests
use the project's own ``tests/fixtures/stripe/objects.json``) with ids, urls, amounts and times filled
from the request. It behaves like Stripe where the engine depends on it:

* form bodies use Stripe's bracket encoding (``line_items[0][price_data][currency]=usd``) and are
  decoded back into nested dicts/lists of strings (:func:`decode_stripe_form`); every request is
  recorded (:class:`RecordedRequest`) with its headers, so tests assert the exact parameters sent;
* ``Authorization: Bearer sk_…`` is required (401 otherwise);
* ``Idempotency-Key`` (scoped per ``Stripe-Account``): the same key with the same parameters replays
  the first response (``Idempotent-Replayed: true``); with other parameters it is a 400
  ``idempotency_error``;
* objects created with ``Stripe-Account`` belong to that connected account (direct charges): the
  account must exist and have ``charges_enabled`` to create a Checkout Session, and another account
  cannot read them;
* ``expires_at`` must lie 30 minutes .. 24 hours after creation (400 otherwise).

:func:`make_event` and :func:`sign_payload` build webhook deliveries the way Stripe does.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import re
import secrets
import string
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from tests.doubles.threaded_http import ThreadedHttpDouble

_KEY_PART = re.compile(r"\[([^\]]*)\]")


def decode_stripe_form(body: str) -> dict[str, Any]:
    """Decode ``application/x-www-form-urlencoded`` with Stripe's bracket keys into nested values:
    ``a[b][0][c]=1`` → ``{"a": {"b": [{"c": "1"}]}}``; ``a[]=x`` appends. Leaves are strings."""
    root: dict[str, Any] = {}
    for key, value in parse_qsl(body, keep_blank_values=True):
        head = key.split("[", 1)[0]
        parts = [head, *_KEY_PART.findall(key[len(head):])]
        node: dict[str, Any] = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if part == "":  # a[]=x
                node.setdefault("__list__", []).append(value)
                break
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, {})
    return _listify(root)


def _listify(node: Any) -> Any:
    if not isinstance(node, dict):
        return node
    if set(node) == {"__list__"}:
        return list(node["__list__"])
    if node and all(k.isdigit() for k in node):
        return [_listify(node[k]) for k in sorted(node, key=int)]
    return {k: _listify(v) for k, v in node.items()}


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request the double received. ``headers`` keys are lower-case; ``params`` is the decoded
    form body (POST) or query (GET)."""

    method: str
    path: str
    params: dict[str, Any]
    headers: dict[str, str]
    status: int

    @property
    def idempotency_key(self) -> str | None:
        return self.headers.get("idempotency-key")

    @property
    def stripe_account(self) -> str | None:
        return self.headers.get("stripe-account")


class _StripeError(Exception):
    def __init__(self, status: int, type_: str, message: str, *, param: str | None = None,
                 code: str | None = None) -> None:
        super().__init__(message)
        self.status, self.body = status, {"error": {"type": type_, "message": message, "param": param, "code": code}}


def _rand(n: int) -> str:
    alphabet = string.ascii_letters + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(n))


@dataclass
class _State:
    sessions: dict[str, dict[str, Any]] = field(default_factory=dict)
    session_owner: dict[str, str | None] = field(default_factory=dict)
    accounts: dict[str, dict[str, Any]] = field(default_factory=dict)
    idempotency: dict[tuple[str | None, str], tuple[str, str, dict[str, Any], int, dict[str, Any]]] = field(
        default_factory=dict
    )


class StripeFixtureServer(ThreadedHttpDouble):
    """The double. Use as a context manager (or :meth:`start`/:meth:`stop`); ``base_url`` is the
    value for ``StripeConfig.api_base``; ``requests`` lists what was received, in order."""

    def __init__(self, *, fixtures_path: Path, api_key_prefix: str = "sk_test_") -> None:
        self._fixtures = json.loads(Path(fixtures_path).read_text())["resources"]
        self._api_key_prefix = api_key_prefix
        self._state = _State()
        self._lock = threading.Lock()
        self.requests: list[RecordedRequest] = []
        super().__init__()

    # -- lifecycle -----------------------------------------------------------------------------
    thread_name = "stripe-fixture-server"

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        return _make_handler(self)

    @property
    def base_url(self) -> str:
        return self.url

    # -- test helpers ----------------------------------------------------------------------------
    def requests_to(self, method: str, path: str) -> list[RecordedRequest]:
        """Recorded requests with this method and path (exact path)."""
        return [r for r in self.requests if r.method == method and r.path == path]

    def add_account(self, account_id: str | None = None, *, charges_enabled: bool = True,
                    details_submitted: bool = True) -> str:
        """Create a connected account directly (as if onboarded earlier); returns its id."""
        account = self._new_account({"type": "standard"})
        if account_id:
            account["id"] = account_id
        account.update(charges_enabled=charges_enabled, details_submitted=details_submitted,
                       payouts_enabled=charges_enabled)
        with self._lock:
            self._state.accounts[account["id"]] = account
        return account["id"]

    def complete_onboarding(self, account_id: str) -> None:
        """What Stripe does when the business finishes onboarding: charges and payouts enabled."""
        with self._lock:
            account = self._state.accounts[account_id]
            account.update(charges_enabled=True, details_submitted=True, payouts_enabled=True)
            account["requirements"] = {**account["requirements"], "currently_due": [], "disabled_reason": None}

    def account(self, account_id: str) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._state.accounts[account_id])

    def session_ids(self) -> list[str]:
        """Ids of the Checkout Sessions created so far (replays create none)."""
        with self._lock:
            return list(self._state.sessions)

    def checkout_session(self, session_id: str) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._state.sessions[session_id])

    # -- request handling ------------------------------------------------------------------------
    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: str) -> tuple[int, dict[str, Any],
                                                                                               dict[str, str]]:
        split = urlsplit(raw_path)
        path = split.path
        params = decode_stripe_form(body if method == "POST" else split.query)
        extra: dict[str, str] = {}
        try:
            self._authenticate(headers)
            account = headers.get("stripe-account")
            key = headers.get("idempotency-key")
            if method == "POST" and key:
                with self._lock:
                    seen = self._state.idempotency.get((account, key))
                if seen is not None:
                    seen_method, seen_path, seen_params, status, response = seen
                    if (seen_method, seen_path, seen_params) != (method, path, params):
                        raise _StripeError(
                            400, "idempotency_error",
                            "Keys for idempotent requests can only be used with the same parameters they were first "
                            f"used with. Try using a key other than '{key}' if you meant to execute a different "
                            "request.",
                        )
                    extra["Idempotent-Replayed"] = "true"
                    self._record(method, path, params, headers, status)
                    return status, copy.deepcopy(response), extra
            status, response = self._route(method, path, params, account)
            if method == "POST" and key:
                with self._lock:
                    self._state.idempotency[(account, key)] = (method, path, copy.deepcopy(params), status,
                                                               copy.deepcopy(response))
        except _StripeError as exc:
            status, response = exc.status, exc.body
        self._record(method, path, params, headers, status)
        return status, response, extra

    def _record(self, method: str, path: str, params: dict[str, Any], headers: dict[str, str], status: int) -> None:
        with self._lock:
            self.requests.append(RecordedRequest(method, path, copy.deepcopy(params), dict(headers), status))

    def _authenticate(self, headers: dict[str, str]) -> None:
        auth = headers.get("authorization", "")
        if not auth.startswith(f"Bearer {self._api_key_prefix}"):
            raise _StripeError(401, "invalid_request_error", "Invalid API Key provided.")

    def _route(self, method: str, path: str, params: dict[str, Any], account: str | None) -> tuple[int, dict[str, Any]]:
        parts = path.strip("/").split("/")
        if method == "POST" and path == "/v1/checkout/sessions":
            return 200, self._create_session(params, account)
        if method == "GET" and len(parts) == 4 and parts[:3] == ["v1", "checkout", "sessions"]:
            with self._lock:
                found = parts[3] in self._state.sessions and self._state.session_owner[parts[3]] == account
                if found:
                    return 200, copy.deepcopy(self._state.sessions[parts[3]])
            raise _StripeError(404, "invalid_request_error", f"No such checkout.session: '{parts[3]}'",
                               param="session", code="resource_missing")
        if method == "POST" and len(parts) == 5 and parts[:3] == ["v1", "checkout", "sessions"] \
                and parts[4] == "expire":
            with self._lock:
                found = self._state.sessions.get(parts[3])
                if found is None or self._state.session_owner[parts[3]] != account:
                    raise _StripeError(404, "invalid_request_error", f"No such checkout.session: '{parts[3]}'",
                                       param="session", code="resource_missing")
                if found.get("status") != "open":
                    raise _StripeError(400, "invalid_request_error",
                                       f"Only Checkout Sessions with a status in [\"open\"] can be expired. "
                                       f"This Checkout Session has a status of \"{found.get('status')}\".")
                found.update(status="expired", url=None)
                return 200, copy.deepcopy(found)
        if method == "POST" and path == "/v1/accounts":
            if account:
                raise _StripeError(400, "invalid_request_error", "Connected accounts cannot create accounts.")
            acct = self._new_account(params)
            with self._lock:
                self._state.accounts[acct["id"]] = acct
            return 200, copy.deepcopy(acct)
        if method == "GET" and len(parts) == 3 and parts[:2] == ["v1", "accounts"]:
            with self._lock:
                if parts[2] in self._state.accounts:
                    return 200, copy.deepcopy(self._state.accounts[parts[2]])
            raise _StripeError(404, "invalid_request_error", f"No such account: '{parts[2]}'", param="account",
                               code="resource_missing")
        if method == "POST" and path == "/v1/account_links":
            return 200, self._create_account_link(params)
        raise _StripeError(404, "invalid_request_error", f"Unrecognized request URL ({method}: {path}).")

    def _require_connected(self, account: str | None) -> None:
        if account is None:
            return
        with self._lock:
            acct = self._state.accounts.get(account)
        if acct is None:
            raise _StripeError(403, "invalid_request_error",
                               f"The provided key does not have access to account '{account}' (or that account does "
                               "not exist). Application access may have been revoked.", code="account_invalid")
        if not acct.get("charges_enabled"):
            raise _StripeError(400, "invalid_request_error",
                               "This account cannot currently make charges: its onboarding is not complete.")

    def _create_session(self, params: dict[str, Any], account: str | None) -> dict[str, Any]:
        self._require_connected(account)
        if params.get("mode") != "payment":
            raise _StripeError(400, "invalid_request_error", "Invalid mode: must be payment here", param="mode")
        items = params.get("line_items")
        if not isinstance(items, list) or not items:
            raise _StripeError(400, "invalid_request_error", "line_items is required in payment mode",
                               param="line_items")
        currencies, total = set(), 0
        for i, item in enumerate(items):
            price = item.get("price_data") or {}
            currency, amount, qty = price.get("currency", ""), price.get("unit_amount", ""), item.get("quantity", "")
            if not re.fullmatch(r"[a-z]{3}", currency):
                raise _StripeError(400, "invalid_request_error", "Invalid currency", param=f"line_items[{i}]")
            if not amount.isdigit() or not qty.isdigit() or int(qty) < 1:
                raise _StripeError(400, "invalid_request_error", "Invalid integer", param=f"line_items[{i}]")
            if not (price.get("product_data") or {}).get("name"):
                raise _StripeError(400, "invalid_request_error", "Missing product name", param=f"line_items[{i}]")
            currencies.add(currency)
            total += int(amount) * int(qty)
        if len(currencies) != 1:
            raise _StripeError(400, "invalid_request_error", "All line items must use the same currency")
        now = int(time.time())
        expires_at = int(params.get("expires_at") or now + 86400)
        if not now + 1800 <= expires_at <= now + 86400:
            raise _StripeError(400, "invalid_request_error",
                               "The `expires_at` timestamp must be between 30 minutes and 24 hours from now.",
                               param="expires_at")
        session = copy.deepcopy(self._fixtures["checkout.session"])
        session_id = f"cs_test_{_rand(58)}"
        session.update(
            id=session_id, url=f"https://checkout.stripe.com/c/pay/{session_id}", created=now, expires_at=expires_at,
            mode="payment", status="open", payment_status="unpaid", currency=currencies.pop(),
            amount_subtotal=total, amount_total=total, client_reference_id=params.get("client_reference_id"),
            metadata=params.get("metadata") or {}, success_url=params.get("success_url"),
            cancel_url=params.get("cancel_url"), locale=params.get("locale"), payment_intent=None,
            customer_details=None, currency_conversion=None, shipping_cost=None,
            total_details={"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0}, livemode=False,
        )
        with self._lock:
            self._state.sessions[session_id] = session
            self._state.session_owner[session_id] = account
        return copy.deepcopy(session)

    def _new_account(self, params: dict[str, Any]) -> dict[str, Any]:
        acct = copy.deepcopy(self._fixtures["account"])
        acct.update(
            id=f"acct_{_rand(16)}", created=int(time.time()), type=params.get("type", "standard"),
            email=params.get("email"), country=params.get("country", acct["country"]),
            metadata=params.get("metadata") or {},
            charges_enabled=False, details_submitted=False, payouts_enabled=False,
        )
        acct["business_profile"] = {**acct["business_profile"], **(params.get("business_profile") or {})}
        acct["external_accounts"] = {**acct["external_accounts"], "url": f"/v1/accounts/{acct['id']}/external_accounts"}
        return acct

    def _create_account_link(self, params: dict[str, Any]) -> dict[str, Any]:
        for name in ("account", "type"):
            if not params.get(name):
                raise _StripeError(400, "invalid_request_error", f"Missing required param: {name}.", param=name)
        if params["type"] not in ("account_onboarding", "account_update"):
            raise _StripeError(400, "invalid_request_error", "Invalid type", param="type")
        with self._lock:
            if params["account"] not in self._state.accounts:
                raise _StripeError(400, "invalid_request_error", f"No such account: '{params['account']}'",
                                   param="account", code="resource_missing")
        if params["type"] == "account_onboarding" and not params.get("refresh_url"):
            raise _StripeError(400, "invalid_request_error", "Missing required param: refresh_url.",
                               param="refresh_url")
        now = int(time.time())
        link = copy.deepcopy(self._fixtures["account_link"])
        link.update(created=now, expires_at=now + 300,
                    url=f"https://connect.stripe.com/setup/s/{params['account']}/{_rand(12)}")
        return link


def _make_handler(double: StripeFixtureServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, payload, extra = double.handle(self.command, self.path, headers, body)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Request-Id", f"req_{_rand(14)}")
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = _serve
        do_POST = _serve

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            return

    return Handler


def make_event(
    fixtures_path: Path,
    *,
    type: str,  # noqa: A002 - Stripe's field name
    obj: dict[str, Any],
    account: str | None = None,
    event_id: str | None = None,
    created: int | None = None,
) -> dict[str, Any]:
    """A webhook event shaped like ``resources["event"]`` of the fixtures, carrying ``obj`` as
    ``data.object``; ``account`` is set for Connect events (the connected account it happened on)."""
    event = copy.deepcopy(json.loads(Path(fixtures_path).read_text())["resources"]["event"])
    event.update(id=event_id or f"evt_{_rand(24)}", type=type, created=created or int(time.time()),
                 data={"object": obj}, api_version="2026-10-28.endive")
    if account is not None:
        event["account"] = account
    return event


def sign_payload(payload: str, secret: str, *, timestamp: int | None = None) -> str:
    """The ``Stripe-Signature`` header Stripe would send: ``t=<ts>,v1=<hex HMAC-SHA256(secret,
    f"{t}.{payload}")>`` (https://docs.stripe.com/webhooks#verify-manually). Written out here on
    purpose, independent of the SDK that the code under test uses to verify."""
    ts = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{ts}.{payload}".encode(), hashlib.sha256).hexdigest()
    return f"t={ts},v1={mac}"
