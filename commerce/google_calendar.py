"""Google Calendar API v3 adapter: credentials, and an async client for events insert/update/delete.

Authentication (production): either a service-account JSON key (the company shares its calendar
with the service account's e-mail, "Make changes to events") or an OAuth 2.0 refresh token with the
OAuth client's id and secret (the owner consented to the ``calendar.events`` scope). Both become
``google.auth`` credentials that fetch access tokens from the token endpoint themselves:
``google.oauth2.service_account.Credentials`` (JWT grant, RFC 7523) and
``google.oauth2.credentials.Credentials`` (refresh-token grant, RFC 6749 section 6). The token
endpoint is a platform setting (``token_uri``), never taken from a tenant's key file, so a key cannot
make the server post secrets elsewhere.

The official client (``google-api-python-client``) is used with the bundled discovery document
(``static_discovery=True``); ``api_root`` replaces ``https://www.googleapis.com`` so tests talk to a
local double (``tests/doubles/google_calendar_server.py``), and ``credentials`` replaces the
credential builder (tests pass ``google.oauth2.credentials.Credentials(token="test")``). The client
is synchronous (httplib2), so every call runs in a worker thread (``asyncio.to_thread``).

API reference (``sendUpdates=none`` everywhere: no e-mails to guests):

* events.insert — https://developers.google.com/calendar/api/v3/reference/events/insert
* events.update — https://developers.google.com/calendar/api/v3/reference/events/update
* events.delete — https://developers.google.com/calendar/api/v3/reference/events/delete
* the Event resource — https://developers.google.com/calendar/api/v3/reference/events#resource

Client-chosen event ids must use base32hex characters (``a-v``, ``0-9``, RFC 2938 section 3.1.2),
5-1024 long, unique per calendar (a duplicate insert is ``409 duplicate``; a deleted event answers
``410 Gone``). Errors: https://developers.google.com/calendar/api/guides/errors.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import google.auth.credentials
import google_auth_httplib2
import httplib2
from google.auth import exceptions as auth_exceptions
from google.oauth2 import credentials as oauth2_credentials
from google.oauth2 import service_account
from googleapiclient import discovery
from googleapiclient.errors import HttpError

from commerce.errors import CommerceError
from core.models import GoogleCalendarLink

SCOPES: tuple[str, ...] = ("https://www.googleapis.com/auth/calendar.events",)
DEFAULT_API_ROOT = "https://www.googleapis.com"
DEFAULT_TOKEN_URI = "https://oauth2.googleapis.com/token"
AuthKind = Literal["service_account", "oauth"]


class CalendarCredentialsError(CommerceError, ValueError):
    """The given Google credentials are malformed (the message names what is wrong)."""


@dataclass(frozen=True, slots=True)
class GoogleCredentials:
    """Validated Google credentials of a company (the plaintext that ``SecretBox`` encrypts).

    ``kind`` service_account: ``info`` is the JSON key (``type``, ``client_email``, ``private_key``...);
    ``kind`` oauth: ``info`` has ``refresh_token``, ``client_id``, ``client_secret``. ``account`` is the
    non-secret identity to show (service-account e-mail or OAuth client id)."""

    kind: AuthKind
    info: dict[str, Any]

    @property
    def account(self) -> str:
        return str(self.info["client_email"] if self.kind == "service_account" else self.info["client_id"])

    @classmethod
    def from_service_account_key(cls, key: Mapping[str, Any] | str) -> GoogleCredentials:
        """Validate a service-account JSON key (a mapping or its JSON text); the private key is parsed
        here, so a damaged key is refused at connect time. Raises ``CalendarCredentialsError``."""
        if isinstance(key, str):
            try:
                key = json.loads(key)
            except ValueError as exc:
                raise CalendarCredentialsError("the service-account key is not JSON") from exc
        if not isinstance(key, Mapping):
            raise CalendarCredentialsError("the service-account key must be a JSON object")
        if key.get("type") != "service_account":
            raise CalendarCredentialsError('the key\'s "type" must be "service_account"')
        for name in ("client_email", "private_key"):
            if not isinstance(key.get(name), str) or not key[name].strip():
                raise CalendarCredentialsError(f"the service-account key has no {name}")
        info = {k: v for k, v in key.items() if isinstance(v, str)}
        try:
            service_account.Credentials.from_service_account_info({**info, "token_uri": DEFAULT_TOKEN_URI})
        except (ValueError, TypeError) as exc:
            raise CalendarCredentialsError(f"the service-account private key cannot be read: {exc}") from exc
        return cls(kind="service_account", info=info)

    @classmethod
    def from_refresh_token(cls, *, refresh_token: str, client_id: str, client_secret: str) -> GoogleCredentials:
        """OAuth 2.0 credentials of an installed/web OAuth client. Raises ``CalendarCredentialsError``
        when a field is empty."""
        fields = {"refresh_token": refresh_token, "client_id": client_id, "client_secret": client_secret}
        for name, value in fields.items():
            if not isinstance(value, str) or not value.strip():
                raise CalendarCredentialsError(f"{name} is required")
        return cls(kind="oauth", info={k: v.strip() for k, v in fields.items()})

    def to_json(self) -> str:
        """The plaintext to encrypt: ``{"kind": ..., "info": {...}}``."""
        return json.dumps({"kind": self.kind, "info": self.info}, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> GoogleCredentials:
        """Inverse of :meth:`to_json` (after ``SecretBox.decrypt``). Raises ``CalendarCredentialsError``."""
        try:
            data = json.loads(text)
            kind, info = data["kind"], dict(data["info"])
        except (ValueError, KeyError, TypeError) as exc:
            raise CalendarCredentialsError("stored Google credentials are unreadable") from exc
        if kind not in ("service_account", "oauth"):
            raise CalendarCredentialsError(f"unknown Google credentials kind {kind!r}")
        return cls(kind=kind, info=info)


CredentialsBuilder = Callable[[GoogleCredentials], google.auth.credentials.Credentials]


def google_auth_credentials(creds: GoogleCredentials, *, token_uri: str = DEFAULT_TOKEN_URI) -> Any:
    """The production ``google.auth`` credentials: a service account (scope ``calendar.events``) or a
    refresh-token credential; both obtain and renew access tokens from ``token_uri``."""
    if creds.kind == "service_account":
        return service_account.Credentials.from_service_account_info(
            {**creds.info, "token_uri": token_uri}, scopes=list(SCOPES))
    # No ``scopes``: a refresh request keeps the scopes the owner granted (asking for another set
    # than the consented one fails with invalid_scope).
    return oauth2_credentials.Credentials(
        token=None, refresh_token=creds.info["refresh_token"], client_id=creds.info["client_id"],
        client_secret=creds.info["client_secret"], token_uri=token_uri)


@dataclass
class CalendarApiError(CommerceError):
    """A Calendar API call failed. ``status`` is the HTTP status (``None``: no answer — network error
    or the token endpoint refused the credentials), ``reason`` Google's error reason (``notFound``,
    ``duplicate``, ``deleted``, ``forbidden``...), ``message`` a readable text. ``fatal`` errors
    (credentials, permissions, rate limits, server and network errors) stop a sync: the next calls
    would fail the same way."""

    status: int | None
    reason: str
    message: str

    @property
    def fatal(self) -> bool:
        return self.status is None or self.status in (401, 403, 429) or self.status >= 500

    def __str__(self) -> str:
        where = f"HTTP {self.status}" if self.status is not None else "no response"
        return f"Google Calendar: {self.message} ({where}, {self.reason})"


class CalendarClient(Protocol):
    """What ``commerce.calendar_sync`` needs from a calendar: async events insert/update/delete.
    Each raises ``CalendarApiError``; each returns Google's event resource (``delete``: nothing)."""

    async def insert(self, calendar_id: str, event: dict[str, Any]) -> dict[str, Any]: ...

    async def update(self, calendar_id: str, event_id: str, event: dict[str, Any]) -> dict[str, Any]: ...

    async def delete(self, calendar_id: str, event_id: str) -> None: ...


ClientFactory = Callable[[GoogleCalendarLink], CalendarClient]
"""Builds the client of one company's connection (decrypting its credentials)."""


def _api_error(exc: Exception) -> CalendarApiError:
    if isinstance(exc, HttpError):
        details = exc.error_details if isinstance(exc.error_details, list) else []
        reason = next((str(d.get("reason")) for d in details if isinstance(d, dict) and d.get("reason")), "")
        return CalendarApiError(status=exc.resp.status, reason=reason or "httpError",
                                message=exc.reason or f"HTTP {exc.resp.status}")
    if isinstance(exc, auth_exceptions.RefreshError):
        return CalendarApiError(status=None, reason="refreshError",
                                message=f"the credentials were refused by the token endpoint: {exc.args[0]}")
    return CalendarApiError(status=None, reason=type(exc).__name__, message=str(exc) or type(exc).__name__)


_TRANSPORT_ERRORS = (auth_exceptions.GoogleAuthError, httplib2.HttpLib2Error, OSError, socket.timeout)


class GoogleCalendarClient:
    """A ``CalendarClient`` on ``googleapiclient.discovery.build("calendar", "v3", ...)``.

    ``credentials`` are ``google.auth`` credentials; ``api_root`` is ``https://www.googleapis.com`` or
    a test double's root URL; ``num_retries`` retries 429/5xx responses and connection errors with
    exponential back-off (the client library's own retry); ``timeout_seconds`` bounds each request.
    Not thread-safe: calls are made one at a time, each in a worker thread."""

    def __init__(
        self,
        *,
        credentials: Any,
        api_root: str = DEFAULT_API_ROOT,
        num_retries: int = 2,
        timeout_seconds: float = 30.0,
    ) -> None:
        self._credentials = credentials
        self._api_root = api_root.rstrip("/")
        self._num_retries = num_retries
        self._timeout = timeout_seconds
        self._service: Any = None

    def _events(self) -> Any:
        if self._service is None:
            http = google_auth_httplib2.AuthorizedHttp(self._credentials, http=httplib2.Http(timeout=self._timeout))
            options = None
            if self._api_root != DEFAULT_API_ROOT:
                options = {"api_endpoint": f"{self._api_root}/calendar/v3/"}
            self._service = discovery.build("calendar", "v3", http=http, static_discovery=True,
                                            client_options=options)
        return self._service.events()

    async def _call(self, make: Callable[[Any], Any]) -> Any:
        def run() -> Any:
            try:
                return make(self._events()).execute(num_retries=self._num_retries)
            except (HttpError, *_TRANSPORT_ERRORS) as exc:
                raise _api_error(exc) from exc

        return await asyncio.to_thread(run)

    async def insert(self, calendar_id: str, event: dict[str, Any]) -> dict[str, Any]:
        """``events.insert`` (``POST /calendars/{calendarId}/events``), see
        https://developers.google.com/calendar/api/v3/reference/events/insert."""
        return await self._call(lambda ev: ev.insert(calendarId=calendar_id, body=event, sendUpdates="none"))

    async def update(self, calendar_id: str, event_id: str, event: dict[str, Any]) -> dict[str, Any]:
        """``events.update`` (``PUT /calendars/{calendarId}/events/{eventId}``): replaces the event, see
        https://developers.google.com/calendar/api/v3/reference/events/update."""
        return await self._call(lambda ev: ev.update(calendarId=calendar_id, eventId=event_id, body=event,
                                                     sendUpdates="none"))

    async def delete(self, calendar_id: str, event_id: str) -> None:
        """``events.delete`` (``DELETE /calendars/{calendarId}/events/{eventId}``), see
        https://developers.google.com/calendar/api/v3/reference/events/delete."""
        await self._call(lambda ev: ev.delete(calendarId=calendar_id, eventId=event_id, sendUpdates="none"))


def google_client_factory(
    *,
    decrypt: Callable[[str], str],
    api_root: str = DEFAULT_API_ROOT,
    token_uri: str = DEFAULT_TOKEN_URI,
    credentials: CredentialsBuilder | None = None,
    num_retries: int = 2,
    timeout_seconds: float = 30.0,
) -> ClientFactory:
    """A ``ClientFactory`` for real Google Calendar clients: decrypts a ``GoogleCalendarLink``'s
    credentials with ``decrypt`` (``SecretBox.decrypt``; ``ValueError`` when the key changed) and
    builds them with ``credentials`` (default :func:`google_auth_credentials` with ``token_uri``)."""

    def build(link: GoogleCalendarLink) -> CalendarClient:
        creds = GoogleCredentials.from_json(decrypt(link.credentials))
        auth = credentials(creds) if credentials is not None else google_auth_credentials(creds, token_uri=token_uri)
        return GoogleCalendarClient(credentials=auth, api_root=api_root, num_retries=num_retries,
                                    timeout_seconds=timeout_seconds)

    return build


def client_factory_from_settings(settings: Any, *, decrypt: Callable[[str], str]) -> ClientFactory:
    """:func:`google_client_factory` configured from ``core.settings.Settings``:
    ``google_calendar_api_root`` and ``google_oauth_token_uri`` (Google's endpoints when the settings
    do not define them)."""
    return google_client_factory(
        decrypt=decrypt,
        api_root=getattr(settings, "google_calendar_api_root", None) or DEFAULT_API_ROOT,
        token_uri=getattr(settings, "google_oauth_token_uri", None) or DEFAULT_TOKEN_URI,
    )
