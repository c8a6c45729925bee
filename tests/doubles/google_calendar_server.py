"""``LocalCalendarApi``: a local HTTP test double of the Google Calendar API v3 and of Google's OAuth
token endpoint (not Google; nothing leaves 127.0.0.1).

It listens on 127.0.0.1 (random port) in a thread, so the synchronous ``google-api-python-client``
(httplib2, called through ``asyncio.to_thread``) can reach it from async and sync tests alike. It
answers the REST paths the client sends for ``events().insert/update/patch/delete/get/list`` (see
https://developers.google.com/calendar/api/v3/reference/events)::

    POST   /calendar/v3/calendars/{calendarId}/events              insert
    GET    /calendar/v3/calendars/{calendarId}/events              list
    GET    /calendar/v3/calendars/{calendarId}/events/{eventId}    get
    PUT    /calendar/v3/calendars/{calendarId}/events/{eventId}    update
    PATCH  /calendar/v3/calendars/{calendarId}/events/{eventId}    patch
    DELETE /calendar/v3/calendars/{calendarId}/events/{eventId}    delete
    POST   /token                                                   OAuth 2.0 token endpoint

Where the engine depends on it, it behaves like the real API:

* every Calendar request needs ``Authorization: Bearer <token>`` with a token it issued at ``/token``
  or one given in ``static_tokens`` (401 ``authError`` otherwise); a token is valid only for the
  calendars its account may write (``grant``), 403 ``forbidden`` (``requiredAccessLevel``) otherwise;
* ``/token`` accepts the service-account JWT grant (``urn:ietf:params:oauth:grant-type:jwt-bearer``;
  the RS256 signature is verified with the registered key) and the refresh-token grant (client
  id/secret and refresh token must match a registered OAuth client);
* client-supplied event ids must be base32hex (``[a-v0-9]{5,1024}``); inserting an id that exists,
  even as a deleted event, is 409 ``duplicate``; ``start``/``end`` need ``dateTime`` or ``date`` and
  end must not be before start (400 ``timeRangeEmpty``);
* ``DELETE`` marks the event ``cancelled`` (204); deleting it again is 410 ``deleted``; unknown
  events and calendars are 404 ``notFound``; ``update`` of a cancelled event restores it;
* errors use Google's JSON error shape ``{"error": {"code", "message", "errors": [{"domain",
  "reason", "message"}], "status"}}``.

Every request is recorded (:class:`RecordedRequest`) with its decoded path, query, JSON body and
headers, so tests assert exactly what was sent. :meth:`LocalCalendarApi.fail_next` injects errors.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import re
import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, parse_qsl, unquote, urlsplit

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.doubles.threaded_http import ThreadedHttpDouble

_EVENT_ID = re.compile(r"^[a-v0-9]{5,1024}$")
_EVENTS_PATH = re.compile(r"^/calendar/v3/calendars/(?P<cal>[^/]+)/events(?:/(?P<event>[^/]+))?$")
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"  # the audience google-auth always puts in the JWT


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request the double received: ``path`` with percent-escapes decoded (``calendar_id`` and
    ``event_id`` parsed out for Calendar paths), ``query`` (last value per key), ``body`` (parsed JSON,
    form fields for ``/token``, or ``None``), lower-case ``headers`` and the ``status`` answered."""

    method: str
    raw_path: str
    path: str
    query: dict[str, str]
    body: Any
    headers: dict[str, str]
    status: int
    calendar_id: str | None = None
    event_id: str | None = None


class _ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str, *, domain: str = "global") -> None:
        super().__init__(message)
        status = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
                  409: "ALREADY_EXISTS", 410: "NOT_FOUND", 500: "INTERNAL", 503: "UNAVAILABLE"}.get(code, "UNKNOWN")
        self.code = code
        self.body: dict[str, Any] = {"error": {"code": code, "message": message, "status": status,
                                               "errors": [{"domain": domain, "reason": reason, "message": message}]}}


@dataclass
class _Client:
    client_id: str
    client_secret: str
    refresh_tokens: set[str]
    account: str


@dataclass
class _State:
    calendars: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    grants: dict[str, set[str]] = field(default_factory=dict)  # account -> calendars it may write
    tokens: dict[str, str] = field(default_factory=dict)  # access token -> account
    service_accounts: dict[str, rsa.RSAPublicKey] = field(default_factory=dict)  # client_email -> key
    oauth_clients: dict[str, _Client] = field(default_factory=dict)
    failures: list[tuple[str | None, int, str]] = field(default_factory=list)


def _b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def _now_rfc3339() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse_when(value: Any, where: str) -> datetime:
    if not isinstance(value, dict) or not (value.get("dateTime") or value.get("date")):
        raise _ApiError(400, "required", f"Missing {where} time.")
    raw = value.get("dateTime") or f"{value['date']}T00:00:00Z"
    try:
        parsed = datetime.fromisoformat(str(raw).replace("Z", "+00:00"))
    except ValueError as exc:
        raise _ApiError(400, "invalid", f"Invalid {where} time.") from exc
    if parsed.tzinfo is None:
        if not value.get("timeZone"):
            raise _ApiError(400, "missingTimeZone", "Missing time zone definition for start time.")
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


class LocalCalendarApi(ThreadedHttpDouble):
    """The double. Use as a context manager (or :meth:`start`/:meth:`stop`).

    ``calendar_base`` is the ``api_endpoint`` for ``googleapiclient.discovery.build`` (it ends with
    ``/calendar/v3/``), ``root_url`` the bare ``http://127.0.0.1:<port>``, ``token_uri`` the OAuth token
    endpoint. ``static_tokens`` are bearer tokens accepted without ``/token`` (for tests that use
    ``google.oauth2.credentials.Credentials(token=...)``), each for an account named like the token.
    """

    def __init__(self, *, calendars: tuple[str, ...] = ("primary",), static_tokens: tuple[str, ...] = ()) -> None:
        self._state = _State()
        self._lock = threading.Lock()
        self.requests: list[RecordedRequest] = []
        super().__init__()
        for cal in calendars:
            self.add_calendar(cal)
        for token in static_tokens:
            self._state.tokens[token] = token
            self.grant(token, *calendars)

    # -- lifecycle -----------------------------------------------------------------------------
    thread_name = "local-calendar-api"

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        return _make_handler(self)

    @property
    def root_url(self) -> str:
        return self.url

    @property
    def calendar_base(self) -> str:
        return f"{self.root_url}/calendar/v3/"

    @property
    def token_uri(self) -> str:
        return f"{self.root_url}/token"

    # -- setup ---------------------------------------------------------------------------------
    def add_calendar(self, calendar_id: str) -> None:
        with self._lock:
            self._state.calendars.setdefault(calendar_id, {})

    def grant(self, account: str, *calendar_ids: str) -> None:
        """Let ``account`` (a service-account e-mail, an OAuth client's account, a static token) write
        these calendars (as sharing a calendar with "Make changes to events" does)."""
        with self._lock:
            self._state.grants.setdefault(account, set()).update(calendar_ids)

    def add_token(self, token: str, *, account: str) -> None:
        """Accept the bearer ``token`` as ``account`` (as if ``/token`` had issued it)."""
        with self._lock:
            self._state.tokens[token] = account

    def register_service_account(self, client_email: str, public_key: rsa.RSAPublicKey) -> None:
        """Accept JWT grants signed by the key of ``client_email``."""
        with self._lock:
            self._state.service_accounts[client_email] = public_key

    def register_oauth_client(self, *, client_id: str, client_secret: str, refresh_token: str, account: str) -> None:
        """Accept refresh-token grants of this client; its tokens act as ``account``."""
        with self._lock:
            client = self._state.oauth_clients.setdefault(
                client_id, _Client(client_id, client_secret, set(), account))
            client.refresh_tokens.add(refresh_token)

    def fail_next(self, status: int, *, method: str | None = None, reason: str = "backendError") -> None:
        """Answer the next Calendar request (of ``method`` when given) with this error status."""
        with self._lock:
            self._state.failures.append((method, status, reason))

    # -- inspection ----------------------------------------------------------------------------
    def events(self, calendar_id: str = "primary", *, include_cancelled: bool = False) -> dict[str, dict[str, Any]]:
        """The calendar's events by id (deep copies); deleted ones only with ``include_cancelled``."""
        with self._lock:
            return {k: copy.deepcopy(v) for k, v in self._state.calendars[calendar_id].items()
                    if include_cancelled or v.get("status") != "cancelled"}

    def calendar_requests(self) -> list[RecordedRequest]:
        """Requests to ``/calendar/v3/...`` (not ``/token``), in order."""
        return [r for r in self.requests if r.path.startswith("/calendar/v3/")]

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    # -- request handling ------------------------------------------------------------------------
    def handle(self, method: str, raw_path: str, headers: dict[str, str], raw_body: bytes) -> tuple[int, Any]:
        split = urlsplit(raw_path)
        path = unquote(split.path)
        query = {k: v for k, v in parse_qsl(split.query, keep_blank_values=True)}
        body: Any = None
        cal = event = None
        try:
            if split.path == "/token" and method == "POST":
                form = {k: v[-1] for k, v in parse_qs(raw_body.decode()).items()}
                body = form
                status, payload = 200, self._token(form)
            else:
                m = _EVENTS_PATH.match(split.path)
                if not m:
                    raise _ApiError(404, "notFound", f"Not Found: {method} {path}")
                cal = unquote(m.group("cal"))
                event = unquote(m.group("event")) if m.group("event") else None
                if raw_body:
                    try:
                        body = json.loads(raw_body)
                    except ValueError as exc:
                        raise _ApiError(400, "parseError", "Parse Error") from exc
                account = self._authenticate(headers)
                self._maybe_fail(method)
                status, payload = self._route(method, cal, event, query, body, account)
        except _ApiError as exc:
            status, payload = exc.code, exc.body
            if split.path == "/token":  # RFC 6749 section 5.2 error response
                status = 400 if exc.code != 401 else 401
                payload = {"error": exc.body["error"]["errors"][0]["reason"], "error_description": str(exc)}
        with self._lock:
            self.requests.append(RecordedRequest(method, raw_path, path, query, copy.deepcopy(body), dict(headers),
                                                 status, cal, event))
        return status, payload

    def _maybe_fail(self, method: str) -> None:
        with self._lock:
            for i, (want, status, reason) in enumerate(self._state.failures):
                if want is None or want == method:
                    del self._state.failures[i]
                    raise _ApiError(status, reason, f"Injected failure {status}")

    def _authenticate(self, headers: dict[str, str]) -> str:
        auth = headers.get("authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else ""
        with self._lock:
            account = self._state.tokens.get(token)
        if account is None:
            raise _ApiError(401, "authError", "Request had invalid authentication credentials.")
        return account

    def _token(self, form: dict[str, str]) -> dict[str, Any]:
        grant = form.get("grant_type")
        if grant == JWT_GRANT:
            account = self._verify_jwt(form.get("assertion", ""))
        elif grant == "refresh_token":
            with self._lock:
                client = self._state.oauth_clients.get(form.get("client_id", ""))
            if client is None or client.client_secret != form.get("client_secret"):
                raise _ApiError(401, "invalid_client", "The OAuth client was not found.")
            if form.get("refresh_token") not in client.refresh_tokens:
                raise _ApiError(400, "invalid_grant", "Token has been expired or revoked.")
            account = client.account
        else:
            raise _ApiError(400, "unsupported_grant_type", f"Invalid grant_type: {grant}")
        token = f"ya29.local-{secrets.token_urlsafe(24)}"
        with self._lock:
            self._state.tokens[token] = account
        return {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}

    def _verify_jwt(self, assertion: str) -> str:
        try:
            head_b64, claims_b64, sig_b64 = assertion.split(".")
            header = json.loads(_b64url_decode(head_b64))
            claims = json.loads(_b64url_decode(claims_b64))
            signature = _b64url_decode(sig_b64)
        except ValueError as exc:
            raise _ApiError(400, "invalid_grant", "Invalid JWT.") from exc
        with self._lock:
            key = self._state.service_accounts.get(str(claims.get("iss")))
        if key is None or header.get("alg") != "RS256":
            raise _ApiError(400, "invalid_grant", "Invalid JWT Signature.")
        try:
            key.verify(signature, f"{head_b64}.{claims_b64}".encode(), padding.PKCS1v15(), hashes.SHA256())
        except Exception as exc:  # noqa: BLE001 - cryptography raises InvalidSignature
            raise _ApiError(400, "invalid_grant", "Invalid JWT Signature.") from exc
        scope = str(claims.get("scope", ""))
        if claims.get("aud") not in (GOOGLE_TOKEN_URI, self.token_uri) or "calendar" not in scope:
            raise _ApiError(400, "invalid_scope", "Invalid audience or scope.")
        return str(claims["iss"])

    def _calendar(self, cal: str, account: str) -> dict[str, dict[str, Any]]:
        with self._lock:
            events = self._state.calendars.get(cal)
            allowed = cal in self._state.grants.get(account, set())
        if events is None:
            raise _ApiError(404, "notFound", "Not Found")
        if not allowed:
            raise _ApiError(403, "requiredAccessLevel", "You need to have writer access to this calendar.")
        return events

    def _route(self, method: str, cal: str, event_id: str | None, query: dict[str, str], body: Any,
               account: str) -> tuple[int, Any]:
        events = self._calendar(cal, account)
        if event_id is None:
            if method == "POST":
                return 200, self._insert(cal, events, body)
            if method == "GET":
                return 200, self._list(events, query)
            raise _ApiError(405, "httpMethodNotAllowed", "Method not allowed")
        with self._lock:
            current = events.get(event_id)
        if current is None:
            raise _ApiError(404, "notFound", "Not Found")
        if method == "GET":
            return 200, copy.deepcopy(current)
        if method == "DELETE":
            if current.get("status") == "cancelled":
                raise _ApiError(410, "deleted", "Resource has been deleted")
            with self._lock:
                current.update(status="cancelled", updated=_now_rfc3339(), sequence=current.get("sequence", 0) + 1)
                current["etag"] = self._etag(current)
            return 204, None
        if method in ("PUT", "PATCH"):
            if not isinstance(body, dict):
                raise _ApiError(400, "required", "Missing event body.")
            merged = {**current, **body} if method == "PATCH" else {
                **{k: current[k] for k in ("id", "kind", "created", "iCalUID", "htmlLink", "organizer", "creator")},
                **body}
            merged["id"] = event_id
            merged.setdefault("status", "confirmed")
            self._check_times(merged)
            merged.update(updated=_now_rfc3339(), sequence=current.get("sequence", 0) + 1)
            merged["etag"] = self._etag(merged)
            with self._lock:
                events[event_id] = merged
            return 200, copy.deepcopy(merged)
        raise _ApiError(405, "httpMethodNotAllowed", "Method not allowed")

    @staticmethod
    def _etag(event: dict[str, Any]) -> str:
        digest = hashlib.sha256(json.dumps(event, sort_keys=True, default=str).encode()).hexdigest()
        return f'"{int(digest[:12], 16)}"'

    @staticmethod
    def _check_times(event: dict[str, Any]) -> None:
        if _parse_when(event.get("end"), "end") < _parse_when(event.get("start"), "start"):
            raise _ApiError(400, "timeRangeEmpty", "The specified time range is empty.")

    def _insert(self, cal: str, events: dict[str, dict[str, Any]], body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise _ApiError(400, "required", "Missing event body.")
        event = copy.deepcopy(body)
        event_id = event.get("id") or secrets.token_hex(13)
        if not _EVENT_ID.match(event_id):
            raise _ApiError(400, "invalid", "Invalid resource id value.")
        self._check_times(event)
        now = _now_rfc3339()
        event.update(id=event_id, kind="calendar#event", created=now, updated=now, sequence=0,
                     iCalUID=f"{event_id}@google.com", htmlLink=f"{self.root_url}/event?eid={event_id}",
                     organizer={"email": cal, "self": True}, creator={"email": cal})
        event.setdefault("status", "confirmed")
        event["etag"] = self._etag(event)
        with self._lock:
            if event_id in events:
                raise _ApiError(409, "duplicate", "The requested identifier already exists.")
            events[event_id] = event
        return copy.deepcopy(event)

    def _list(self, events: dict[str, dict[str, Any]], query: dict[str, str]) -> dict[str, Any]:
        show_deleted = query.get("showDeleted") == "true"
        wanted = query.get("privateExtendedProperty")
        items = []
        with self._lock:
            for ev in events.values():
                if ev.get("status") == "cancelled" and not show_deleted:
                    continue
                if wanted:
                    key, _, value = wanted.partition("=")
                    if ((ev.get("extendedProperties") or {}).get("private") or {}).get(key) != value:
                        continue
                items.append(copy.deepcopy(ev))
        return {"kind": "calendar#events", "items": items}


def new_service_account_key(*, client_email: str, token_uri: str) -> tuple[dict[str, Any], rsa.RSAPublicKey]:
    """A freshly generated service-account JSON key (the shape Google's console downloads) whose
    ``token_uri`` is ``token_uri``, and its public key for :meth:`LocalCalendarApi.register_service_account`."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    key = {
        "type": "service_account",
        "project_id": "local-test",
        "private_key_id": secrets.token_hex(20),
        "private_key": pem,
        "client_email": client_email,
        "client_id": str(secrets.randbelow(10**20)),
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        "universe_domain": "googleapis.com",
    }
    return key, private.public_key()


def _make_handler(double: LocalCalendarApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, payload = double.handle(self.command, self.path, headers, body)
            self.send_response(status)
            if status == 204:
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            data = json.dumps(payload).encode()
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = _serve
        do_POST = _serve
        do_PUT = _serve
        do_PATCH = _serve
        do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
            return

    return Handler
