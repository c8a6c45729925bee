"""WhatsApp through a WAHA server (WhatsApp HTTP API, https://waha.devlike.pro, devlikeapro/waha).

Inbox configuration (``Inbox.kind == "whatsapp_waha"``):

* credentials: ``{"api_key": "<WAHA_API_KEY>", "hmac_key": "<webhook HMAC key>"}``
* settings: ``{"base_url": "http://waha:3000", "session": "default"}``

WAHA runs a WhatsApp session (one phone number) and calls our webhook for its events. ``connect``
creates or updates the session with our webhook (signed with HMAC-SHA512) and returns the QR code to
scan; ``parse`` turns ``message`` events into customer messages; ``parse_status`` reads
``session.status`` events for the inbox's health. Every API call carries ``X-Api-Key``
(https://waha.devlike.pro/docs/how-to/security/). Sends retry on connection failures, 5xx and 429.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import json
import mimetypes
import ssl
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

import certifi
import httpx
import structlog
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from bot.messages import OutboundMessage
from channels.base import Channel, ParsedInbound, RawRequest, SignatureError
from core.http import pooled_client

log = structlog.get_logger(__name__)

# https://waha.devlike.pro/docs/how-to/events/#hmac-authentication: X-Webhook-Hmac is the HMAC of
# the raw body, X-Webhook-Hmac-Algorithm names the algorithm (sha512).
HMAC_HEADER = "x-webhook-hmac"
HMAC_ALGORITHM_HEADER = "x-webhook-hmac-algorithm"
HMAC_ALGORITHM = "sha512"
# The events ``connect`` subscribes to (https://waha.devlike.pro/docs/how-to/events/#events).
WEBHOOK_EVENTS: tuple[str, ...] = ("message", "session.status")
# Chat id suffixes (https://waha.devlike.pro/docs/how-to/receive-messages/): a person by phone
# number, a person by WhatsApp's "linked id" (no phone number disclosed), and the ones ignored.
PERSON_SUFFIXES: tuple[str, ...] = ("@c.us", "@lid")
IGNORED_SUFFIXES: tuple[str, ...] = ("@g.us", "@newsletter", "@broadcast")
# Longest caption sent with an image; longer texts follow the image as a separate message.
MAX_CAPTION = 1024


class WahaApiError(Exception):
    """WAHA answered with an HTTP error. ``status_code`` is the HTTP status, ``body`` the decoded
    answer (NestJS shape ``{"statusCode", "message", "error"}``) or its text."""

    def __init__(self, status_code: int, body: Any, *, path: str = "") -> None:
        self.status_code = status_code
        self.body = body
        self.path = path
        message = body.get("message") if isinstance(body, dict) else body
        super().__init__(f"WAHA {path} answered {status_code}: {message}")

    @property
    def retryable(self) -> bool:
        """5xx and 429 are worth retrying; other 4xx will fail the same way again."""
        return self.status_code >= 500 or self.status_code == 429


def sign(body: bytes, key: str) -> str:
    """Hex HMAC-SHA512 of ``body`` with ``key``, as WAHA computes ``X-Webhook-Hmac``
    (https://waha.devlike.pro/docs/how-to/events/#hmac-authentication)."""
    return hmac.new(key.encode("utf-8"), body, hashlib.sha512).hexdigest()


def chat_id_for(to: str) -> str:
    """WAHA chat id for a contact: ids with ``@`` are kept; a bare phone number (digits, optionally
    with ``+``, spaces or dashes) becomes ``<digits>@c.us``. Raises ``ValueError`` when empty."""
    value = to.strip()
    if not value:
        raise ValueError("recipient chat id is empty")
    if "@" in value:
        return value
    digits = "".join(ch for ch in value if ch.isdigit())
    if not digits:
        raise ValueError(f"recipient {to!r} is neither a WhatsApp chat id nor a phone number")
    return f"{digits}@c.us"


def phone_from_chat_id(chat_id: str) -> str | None:
    """``+<digits>`` for a ``<digits>@c.us`` chat id, ``None`` otherwise (``@lid`` ids hide the
    number: it is never guessed from them)."""
    user, _, server = chat_id.partition("@")
    if server == "c.us" and user.isdigit():
        return f"+{user}"
    return None


def message_id_of(response: Any) -> str | None:
    """The sent message's id from a WAHA send response. Engines answer differently
    (devlikeapro/waha#760): a ``WAMessage`` (``{"id": "true_...@c.us_ABC"}``), WEBJS's raw message
    (``{"id": {"_serialized": ...}}`` or ``{"_data": {"id": {...}}}``), NOWEB's
    ``{"key": {"id": ...}}``, or an empty body (devlikeapro/waha#1087)."""
    if not isinstance(response, dict):
        return None
    candidates = [response.get("id"), (response.get("_data") or {}).get("id") if isinstance(response.get("_data"), dict)
                  else None]
    for candidate in candidates:
        if isinstance(candidate, str) and candidate:
            return candidate
        if isinstance(candidate, dict) and candidate.get("_serialized"):
            return str(candidate["_serialized"])
    key = response.get("key")
    if isinstance(key, dict) and key.get("id"):
        return str(key["id"])
    return None


def _contact_name(payload: Mapping[str, Any]) -> str | None:
    """Best effort, engine-specific: WEBJS ``_data.notifyName``, NOWEB ``_data.pushName``, GOWS
    ``_data.Info.PushName`` (WAHA documents ``_data`` as internal engine data)."""
    data = payload.get("_data")
    if not isinstance(data, dict):
        return None
    info = data.get("Info") if isinstance(data.get("Info"), dict) else {}
    for name in (data.get("notifyName"), data.get("pushName"), info.get("PushName")):
        if isinstance(name, str) and name.strip():
            return name.strip()[:200]
    return None


class WahaChannel(Channel):
    """WhatsApp via WAHA (https://waha.devlike.pro) as a ``Channel``.

    Construct with ``credentials={"api_key", "hmac_key"}`` and ``settings={"base_url", "session"}``.
    Keyword-only extras: ``client`` shares an ``httpx.AsyncClient`` (then ``aclose`` leaves it open;
    its base URL and headers are not used — paths are absolute), ``retry_attempts`` (default 3),
    ``retry_wait`` (first back-off in seconds, doubled per attempt), ``retry_max_wait`` (cap) and
    ``timeout`` (seconds per request, default 30).
    """

    kind: ClassVar[str] = "whatsapp_waha"
    supports_buttons: ClassVar[bool] = False
    default_buffer_seconds: ClassVar[float] = 3.0
    # A WhatsApp client lets a customer send a text of up to 65,536 characters (the Cloud API's 4,096
    # limits what a business sends, not what it receives); WAHA relays the customer's text as is.
    max_inbound_text: ClassVar[int] = 65_536

    def __init__(
        self,
        *,
        credentials: Mapping[str, Any] | None = None,
        settings: Mapping[str, Any] | None = None,
        client: httpx.AsyncClient | None = None,
        retry_attempts: int = 3,
        retry_wait: float = 0.5,
        retry_max_wait: float = 5.0,
        timeout: float = 30.0,
    ) -> None:
        super().__init__(credentials=credentials, settings=settings)
        self._shared_client = client
        self._client: httpx.AsyncClient | None = None
        self._retry_attempts = max(int(retry_attempts), 1)
        self._retry_wait = max(float(retry_wait), 0.0)
        self._retry_max_wait = max(float(retry_max_wait), 0.0)
        self._timeout = timeout

    # -- configuration ---------------------------------------------------------------------------

    @property
    def session_name(self) -> str:
        """The WAHA session (``settings["session"]``, default ``"default"``)."""
        return str(self.settings.get("session") or "default")

    @property
    def base_url(self) -> str:
        base = str(self.settings.get("base_url") or "").rstrip("/")
        if not base:
            raise ValueError("whatsapp_waha inbox has no 'base_url' in its settings")
        return base

    @property
    def hmac_key(self) -> str | None:
        key = self.credentials.get("hmac_key")
        return str(key) if key else None

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        api_key = self.credentials.get("api_key")
        if api_key:
            headers["X-Api-Key"] = str(api_key)
        return headers

    @property
    def client(self) -> httpx.AsyncClient:
        if self._shared_client is not None:
            return self._shared_client
        if self._client is None:
            self._client = pooled_client(timeout=self._timeout, verify=_ssl_context())
        return self._client

    # -- inbound ---------------------------------------------------------------------------------

    async def verify(self, request: RawRequest) -> None:
        """Check ``X-Webhook-Hmac``: the hex HMAC-SHA512 of the raw body with the inbox's
        ``hmac_key`` (https://waha.devlike.pro/docs/how-to/events/#hmac-authentication; WAHA's test
        vector: body ``{"event":"message","session":"default","engine":"WEBJS"}``, key
        ``my-secret-key`` → ``208f8a55…153fa89``). ``X-Webhook-Hmac-Algorithm``, when present, must be
        ``sha512``. Compared in constant time. When the inbox has a key, an unsigned, mis-signed or
        otherwise-signed delivery raises ``SignatureError``; an inbox without a key accepts
        deliveries unverified (``connect`` always configures the key it has)."""
        key = self.hmac_key
        if not key:
            return
        given = (request.headers.get(HMAC_HEADER) or "").strip().lower()
        if not given:
            raise SignatureError("X-Webhook-Hmac is missing")
        algorithm = (request.headers.get(HMAC_ALGORITHM_HEADER) or HMAC_ALGORITHM).strip().lower()
        if algorithm != HMAC_ALGORITHM:
            raise SignatureError(f"unsupported X-Webhook-Hmac-Algorithm {algorithm!r}")
        if len(request.body) > self.parse_in_thread_above:
            # hashlib releases the GIL on large buffers: a megabytes-long body is hashed off the loop.
            expected = await asyncio.to_thread(sign, request.body, key)
        else:
            expected = sign(request.body, key)
        if not hmac.compare_digest(given.encode(), expected.encode()):
            raise SignatureError("X-Webhook-Hmac does not match the body")

    @staticmethod
    def _envelope(request: RawRequest) -> dict[str, Any]:
        try:
            body = json.loads(request.body or b"")
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"body is not JSON: {exc}") from exc
        if not isinstance(body, dict) or not isinstance(body.get("event"), str):
            raise ValueError("body must be a WAHA event: a JSON object with 'event'")
        return body

    def parse(self, request: RawRequest) -> list[ParsedInbound]:
        """Parse a WAHA event (https://waha.devlike.pro/docs/how-to/events/#event-payload): envelope
        ``event``, ``session``, ``me``, ``payload``.

        Only ``message`` events of this inbox's session carry customer messages. The payload is a
        ``WAMessage``: ``id`` → ``source_id``, ``timestamp`` (Unix seconds) → ``received_at``,
        ``from`` → ``contact_source_id``, ``body`` → ``text``. Ignored (``[]``): ``fromMe`` messages,
        groups (``@g.us``), status broadcasts (``status@broadcast``), channels (``@newsletter``),
        chat ids other than ``@c.us``/``@lid``, and messages without text (media without a caption).
        ``phone`` is ``+<digits>`` only for ``@c.us`` ids; ``@lid`` ids do not reveal the number.
        Other events (``session.status``: see ``parse_status``) give ``[]``. Raises ``ValueError``
        for a body that is not a WAHA event or a message without ``id``/``from``."""
        return self._messages(self._envelope(request))

    def _parse_both(self, request: RawRequest) -> tuple[list[ParsedInbound], str | None]:
        # The body is decoded once for both (it may be megabytes; see ``Channel.parse_delivery``).
        envelope = self._envelope(request)
        return self._messages(envelope), self._status(envelope)

    def _messages(self, envelope: dict[str, Any]) -> list[ParsedInbound]:
        if envelope["event"] != "message":
            return []
        session = envelope.get("session")
        if session is not None and session != self.session_name:
            log.warning("waha_event_for_other_session", session=session, expected=self.session_name)
            return []
        payload = envelope.get("payload")
        if not isinstance(payload, dict):
            raise ValueError("a 'message' event needs an object 'payload'")
        if payload.get("fromMe"):
            return []
        chat_id = payload.get("from")
        message_id = payload.get("id")
        if not isinstance(chat_id, str) or not chat_id or not message_id:
            raise ValueError("a WAHA message needs 'id' and 'from'")
        if chat_id.endswith(IGNORED_SUFFIXES) or not chat_id.endswith(PERSON_SUFFIXES):
            return []
        text = str(payload.get("body") or "").strip()
        if not text:
            return []
        return [
            ParsedInbound(
                contact_source_id=chat_id,
                text=text,
                received_at=_timestamp(payload.get("timestamp")),
                source_id=str(message_id),
                contact_name=_contact_name(payload),
                phone=phone_from_chat_id(chat_id),
            )
        ]

    def parse_status(self, request: RawRequest) -> str | None:
        """The session status of a ``session.status`` event (``STOPPED``, ``STARTING``,
        ``SCAN_QR_CODE``, ``WORKING``, ``FAILED``; https://waha.devlike.pro/docs/how-to/sessions/),
        ``None`` for other events or another session. Raises ``ValueError`` for a malformed body."""
        return self._status(self._envelope(request))

    def _status(self, envelope: dict[str, Any]) -> str | None:
        if envelope["event"] != "session.status":
            return None
        if envelope.get("session") not in (None, self.session_name):
            return None
        payload = envelope.get("payload")
        status = payload.get("status") if isinstance(payload, dict) else None
        return str(status) if status else None

    # -- outbound --------------------------------------------------------------------------------

    async def send_text(self, *, to: str, text: str, reply_to: str | None = None) -> str | None:
        """``POST /api/sendText`` ``{session, chatId, text, reply_to?}``
        (https://waha.devlike.pro/docs/how-to/send-messages/#send-text). Returns the sent message's
        id (``None`` when the engine answers without one). Raises ``WahaApiError`` (after retries for
        5xx/429) or ``httpx`` transport errors."""
        if not text.strip():
            raise ValueError("cannot send an empty WhatsApp message")
        body: dict[str, Any] = {"session": self.session_name, "chatId": chat_id_for(to), "text": text}
        if reply_to:
            body["reply_to"] = reply_to
        return message_id_of(await self._request("POST", "/api/sendText", json_body=body, idempotent=False))

    async def send(self, *, to: str, message: OutboundMessage) -> str | None:
        """Send a reply: WhatsApp through WAHA has no reliable buttons, so the text is
        ``message.as_text()`` (link appended, choices as a numbered list). With an image:
        ``POST /api/sendImage`` ``{session, chatId, file: {url, mimetype, filename}, caption}``
        (https://waha.devlike.pro/docs/how-to/send-messages/#send-image); a text over 1024 characters
        follows as a separate message, and when WAHA refuses the image with a 4xx (e.g. an engine or
        tier without image sending) the image URL is sent in the text instead."""
        text = message.as_text().strip()
        if message.image_url:
            caption_fits = len(text) <= MAX_CAPTION
            try:
                response = await self.send_image(to=to, url=message.image_url, caption=text if caption_fits else None)
            except WahaApiError as exc:
                if exc.retryable:
                    raise
                log.warning("waha_image_refused", status=exc.status_code, error=str(exc))
                if message.image_url not in text:
                    text = f"{text}\n{message.image_url}" if text else message.image_url
            else:
                if caption_fits:
                    return response
        return await self.send_text(to=to, text=text)

    async def send_image(self, *, to: str, url: str, caption: str | None = None,
                         mimetype: str | None = None) -> str | None:
        """``POST /api/sendImage`` with a remote file (WAHA downloads ``url``). ``mimetype`` is guessed
        from the URL when not given (``image/jpeg`` by default). Returns the message id."""
        path = urlsplit(url).path
        guessed = mimetype or mimetypes.guess_type(path)[0] or "image/jpeg"
        filename = path.rsplit("/", 1)[-1] or "image"
        body: dict[str, Any] = {"session": self.session_name, "chatId": chat_id_for(to),
                                "file": {"url": url, "mimetype": guessed, "filename": filename}}
        if caption:
            body["caption"] = caption
        return message_id_of(await self._request("POST", "/api/sendImage", json_body=body, idempotent=False))

    async def send_seen(self, *, to: str, message_ids: list[str] | None = None) -> None:
        """Mark the chat (or the given messages) read: ``POST /api/sendSeen``
        ``{session, chatId, messageIds?}`` (https://waha.devlike.pro/docs/how-to/send-messages/#send-seen)."""
        body: dict[str, Any] = {"session": self.session_name, "chatId": chat_id_for(to)}
        if message_ids:
            body["messageIds"] = list(message_ids)
        await self._request("POST", "/api/sendSeen", json_body=body, idempotent=True)

    async def typing(self, *, to: str) -> None:
        """The channel-neutral typing indicator: WAHA ``startTyping``."""
        await self.start_typing(to=to)

    async def start_typing(self, *, to: str) -> None:
        """Show "typing…": ``POST /api/startTyping`` ``{session, chatId}``."""
        await self._request("POST", "/api/startTyping", json_body={"session": self.session_name,
                                                                   "chatId": chat_id_for(to)}, idempotent=True)

    async def stop_typing(self, *, to: str) -> None:
        """Hide "typing…": ``POST /api/stopTyping`` ``{session, chatId}``."""
        await self._request("POST", "/api/stopTyping", json_body={"session": self.session_name,
                                                                  "chatId": chat_id_for(to)}, idempotent=True)

    # -- session lifecycle -----------------------------------------------------------------------

    def webhook_config(self, webhook_url: str) -> dict[str, Any]:
        """Our entry of the session's ``config.webhooks``
        (https://waha.devlike.pro/docs/how-to/sessions/#webhooks): URL, events ``message`` and
        ``session.status``, and ``hmac.key`` when the inbox has one."""
        hook: dict[str, Any] = {"url": webhook_url, "events": list(WEBHOOK_EVENTS)}
        if self.hmac_key:
            hook["hmac"] = {"key": self.hmac_key}
        return hook

    async def connect(self, *, webhook_url: str) -> dict[str, Any]:
        """Create or update the WAHA session with our webhook and start it.

        * no session (``GET /api/sessions/{session}`` → 404): ``POST /api/sessions``
          ``{name, start: true, config: {webhooks: [...]}}``
          (https://waha.devlike.pro/docs/how-to/sessions/#create-session);
        * existing session: ``PUT /api/sessions/{session}`` with its full config where our webhook
          replaces earlier ones of this inbox (same URL or same HMAC key) and other webhooks, proxy and
          metadata are kept (skipped when nothing changes: PUT restarts a running session), then
          ``POST /api/sessions/{session}/start`` (idempotent).

        Returns ``{"session", "status", "qr", "qr_image"}``: when the session waits for a scan
        (``SCAN_QR_CODE``) ``qr`` is the raw QR value (``GET /api/{session}/auth/qr?format=raw``, to
        render as a QR code) and ``qr_image`` a ``data:image/png;base64,...`` URL; both ``None``
        otherwise (e.g. ``WORKING``, or ``STARTING``: call ``qr()`` again after the
        ``session.status`` event with ``SCAN_QR_CODE``).
        """
        hook = self.webhook_config(webhook_url)
        name = self.session_name
        existing = await self.session_info()
        if existing is None:
            info = await self._request("POST", "/api/sessions", idempotent=False, json_body={
                "name": name, "start": True, "config": {"webhooks": [hook]},
            })
        else:
            config = dict(existing.get("config") or {})
            hooks = [h for h in (config.get("webhooks") or []) if isinstance(h, dict)]
            ours = [h for h in hooks if self._is_ours(h, webhook_url)]
            if len(ours) != 1 or _hook_key(ours[0]) != _hook_key(hook):
                config["webhooks"] = [h for h in hooks if not self._is_ours(h, webhook_url)] + [hook]
                await self._request("PUT", f"/api/sessions/{name}", idempotent=True,
                                    json_body={"name": name, "config": config})
            info = await self._request("POST", f"/api/sessions/{name}/start", idempotent=True)
        status = str((info or {}).get("status") or "") or None
        qr = qr_image = None
        if status == "SCAN_QR_CODE":
            qr = await self.qr()
            qr_image = await self.qr_image()
        return {"session": name, "status": status, "qr": qr, "qr_image": qr_image}

    def _is_ours(self, hook: Mapping[str, Any], webhook_url: str) -> bool:
        if hook.get("url") == webhook_url:
            return True
        key = (hook.get("hmac") or {}).get("key") if isinstance(hook.get("hmac"), dict) else None
        return bool(self.hmac_key) and key == self.hmac_key

    async def qr(self) -> str | None:
        """The raw QR value to render (``GET /api/{session}/auth/qr?format=raw`` → ``{"value"}``,
        https://waha.devlike.pro/docs/how-to/sessions/#get-qr); ``None`` when the session is not in
        ``SCAN_QR_CODE`` (WAHA answers 422) or does not exist."""
        try:
            data = await self._request("GET", f"/api/{self.session_name}/auth/qr", params={"format": "raw"},
                                       idempotent=True)
        except WahaApiError as exc:
            if exc.status_code in (404, 422):
                return None
            raise
        value = data.get("value") if isinstance(data, dict) else None
        return str(value) if value else None

    async def qr_image(self) -> str | None:
        """The QR as a ``data:`` URL (``GET /api/{session}/auth/qr`` with ``Accept: application/json``
        → ``{"mimetype", "data"}`` base64); ``None`` when there is no QR to scan."""
        try:
            data = await self._request("GET", f"/api/{self.session_name}/auth/qr", params={"format": "image"},
                                       idempotent=True)
        except WahaApiError as exc:
            if exc.status_code in (404, 422):
                return None
            raise
        if isinstance(data, dict) and data.get("data"):
            return f"data:{data.get('mimetype') or 'image/png'};base64,{data['data']}"
        return None

    async def session_info(self) -> dict[str, Any] | None:
        """``GET /api/sessions/{session}`` (``{name, status, config, me, engine}``), ``None`` on 404."""
        try:
            data = await self._request("GET", f"/api/sessions/{self.session_name}", idempotent=True)
        except WahaApiError as exc:
            if exc.status_code == 404:
                return None
            raise
        return data if isinstance(data, dict) else None

    async def status(self) -> dict[str, Any]:
        """``{"status": "WORKING" | "SCAN_QR_CODE" | "STARTING" | "STOPPED" | "FAILED", "session",
        "me"}`` from ``GET /api/sessions/{session}``; ``{"status": "NOT_CONNECTED"}`` when the session
        does not exist."""
        info = await self.session_info()
        if info is None:
            return {"status": "NOT_CONNECTED", "session": self.session_name, "me": None}
        return {"status": info.get("status"), "session": self.session_name, "me": info.get("me")}

    async def disconnect(self) -> None:
        """Log the WhatsApp account out (``POST /api/sessions/{session}/logout``; WAHA keeps the
        session's config and restarts a running session to a fresh QR) and stop the session
        (``POST /api/sessions/{session}/stop``) so it does not keep producing QR codes
        (https://waha.devlike.pro/docs/how-to/sessions/#logout-session). A missing session is fine."""
        name = self.session_name
        for path in (f"/api/sessions/{name}/logout", f"/api/sessions/{name}/stop"):
            try:
                await self._request("POST", path, idempotent=True)
            except WahaApiError as exc:
                if exc.status_code != 404:
                    raise

    # -- plumbing --------------------------------------------------------------------------------

    async def _request(self, method: str, path: str, *, json_body: Any = None, params: Mapping[str, str] | None = None,
                       idempotent: bool) -> Any:
        """One WAHA API call with bounded retries (see ``_retryable``); returns the decoded JSON
        (``None`` for an empty body). Raises ``WahaApiError`` for HTTP errors."""
        url = f"{self.base_url}{path}"
        headers = self._headers()

        async def attempt() -> Any:
            response = await self.client.request(method, url, json=json_body, params=params, headers=headers)
            content = response.content
            try:
                data = response.json() if content else None
            except ValueError:
                data = response.text
            if response.status_code >= 400:
                raise WahaApiError(response.status_code, data, path=path)
            return data

        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._retry_attempts),
            wait=self._wait,
            retry=retry_if_exception(lambda exc: _retryable(exc, idempotent=idempotent)),
            reraise=True,
        )
        return await retrying(attempt)

    def _wait(self, state: RetryCallState) -> float:
        return min(self._retry_wait * (2 ** (state.attempt_number - 1)), self._retry_max_wait)

    async def aclose(self) -> None:
        """Close the HTTP client unless it was shared through ``client=``. Safe to call twice."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def _retryable(exc: BaseException, *, idempotent: bool) -> bool:
    """Retry 5xx and 429 answers and connections that could not be opened (nothing was sent). Other
    transport failures (read timeouts, dropped connections) are retried only for idempotent calls:
    a ``sendText`` that timed out may have been delivered and must not be sent twice. Other 4xx
    answers are never retried."""
    if isinstance(exc, WahaApiError):
        return exc.retryable
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return True
    if isinstance(exc, httpx.TransportError):
        return idempotent
    return False


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """One TLS context per process (building one loads the CA bundle, ~0.1 s; adapters are built per
    delivery). Same trust store as httpx's default (certifi)."""
    return ssl.create_default_context(cafile=certifi.where())


def _hook_key(hook: Mapping[str, Any]) -> tuple[Any, ...]:
    """What matters of a webhook entry when comparing (WAHA echoes unset options as ``null``)."""
    hmac_conf = hook.get("hmac") if isinstance(hook.get("hmac"), dict) else {}
    return (hook.get("url"), tuple(sorted(hook.get("events") or [])), (hmac_conf or {}).get("key"))


def _timestamp(value: Any) -> datetime:
    """WAHA ``timestamp`` is Unix seconds (sometimes fractional or a string); aware UTC."""
    try:
        seconds = float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"message 'timestamp' is not a Unix time: {value!r}") from exc
    if seconds > 1e11:  # milliseconds (the envelope's own timestamp is in ms)
        seconds /= 1000.0
    return datetime.fromtimestamp(seconds, UTC)
