"""A local WAHA-compatible server (WhatsApp HTTP API, devlikeapro/waha) for tests.

Follows WAHA's REST API and DTOs (``src/structures/sessions.dto.ts``, ``chatting.dto.ts``,
``webhooks.config.dto.ts``, ``files.dto.ts`` in devlikeapro/waha; https://waha.devlike.pro/docs/):

* sessions: ``GET/POST /api/sessions``, ``GET/PUT/DELETE /api/sessions/{session}``,
  ``POST /api/sessions/{session}/start|stop|restart|logout``, ``GET /api/sessions/{session}/me``;
  ``POST /api/sessions`` answers 422 when the session exists ("Use PUT to update it"), the others 404
  when it does not (``src/api/sessions.controller.ts``);
* auth: ``GET /api/{session}/auth/qr`` — 422 unless the session is in ``SCAN_QR_CODE``; ``format=raw``
  gives ``{"value"}``, ``Accept: application/json`` gives ``{"mimetype", "data"}`` (base64), otherwise
  a PNG;
* chatting: ``POST /api/sendText``, ``/api/sendImage``, ``/api/sendSeen``, ``/api/startTyping``,
  ``/api/stopTyping`` — 404 for an unknown session, 422 unless it is ``WORKING``, 400 with
  class-validator messages for a missing ``chatId``/``text``/``file``; sends answer 201 with a
  ``WAMessage``.

Every request needs ``X-Api-Key`` (401 ``{"message": "Unauthorized", "statusCode": 401}``). Errors
use NestJS's shape ``{"statusCode", "message", "error"}``. ``emit``/``emit_message`` deliver events
to the session's webhooks exactly as WAHA does (https://waha.devlike.pro/docs/how-to/events/): the
body is the compact JSON of the envelope, signed with HMAC-SHA512 of those exact bytes
(``X-Webhook-Hmac``, ``X-Webhook-Hmac-Algorithm: sha512``) next to ``X-Webhook-Request-Id`` and
``X-Webhook-Timestamp`` (Unix ms) and the webhook's ``customHeaders``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.doubles import LocalServer

# Where the middleware leaves the decoded JSON body for the handlers.
_JSON: Any = web.RequestKey("json", object) if hasattr(web, "RequestKey") else "json"

# A 1x1 transparent PNG standing in for the QR image.
_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII="
)


@dataclass
class Recorded:
    """One API request as received and the status it was answered with."""

    method: str
    path: str
    headers: dict[str, str]
    json: Any
    query: dict[str, str]
    status: int = 0


@dataclass
class Delivery:
    """One webhook delivery made by ``emit``: where, the exact bytes and headers, the answer."""

    url: str
    body: bytes
    headers: dict[str, str]
    status: int


@dataclass
class SessionState:
    name: str
    config: dict[str, Any] = field(default_factory=dict)
    status: str = "STOPPED"
    authenticated: bool = False
    me: dict[str, Any] | None = None
    qr_value: str = ""

    def dto(self) -> dict[str, Any]:
        """``SessionInfo``: name, status, config, me, engine."""
        return {"name": self.name, "status": self.status, "config": self.config, "me": self.me,
                "engine": {"engine": "WEBJS"}}


def _ulid() -> str:
    """A lower-case ULID-like id (WAHA event ids are ``evt_`` + lower-case ULID)."""
    alphabet = "0123456789abcdefghjkmnpqrstvwxyz"
    millis = int(time.time() * 1000)
    head = "".join(alphabet[(millis >> (5 * i)) & 31] for i in reversed(range(10)))
    return head + "".join(secrets.choice(alphabet) for _ in range(16))


@dataclass(eq=False)
class FakeWaha(LocalServer):
    """The WAHA double. ``api_key`` is the key every request must carry; ``image_supported=False``
    makes ``/api/sendImage`` answer 422 like an engine/tier without media sending."""

    api_key: str = "waha-test-key"
    image_supported: bool = True
    engine: str = "WEBJS"
    requests: list[Recorded] = field(default_factory=list)
    sessions: dict[str, SessionState] = field(default_factory=dict)
    deliveries: list[Delivery] = field(default_factory=list)

    def __post_init__(self) -> None:
        LocalServer.__init__(self)
        self._failures: list[int] = []
        self._seq = itertools.count(1)

    # -- server ----------------------------------------------------------------------------------

    def build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        r = app.router
        r.add_get("/api/sessions", self._list_sessions)
        r.add_post("/api/sessions", self._create_session)
        r.add_get("/api/sessions/{session}", self._get_session)
        r.add_put("/api/sessions/{session}", self._update_session)
        r.add_delete("/api/sessions/{session}", self._delete_session)
        r.add_get("/api/sessions/{session}/me", self._me)
        r.add_post("/api/sessions/{session}/{action:start|stop|restart|logout}", self._session_action)
        r.add_get("/api/{session}/auth/qr", self._qr)
        r.add_post("/api/sendText", self._send_text)
        r.add_post("/api/sendImage", self._send_image)
        r.add_post("/api/sendSeen", self._chat_action)
        r.add_post("/api/startTyping", self._chat_action)
        r.add_post("/api/stopTyping", self._chat_action)
        return app

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body: Any = None
        if request.can_read_body:
            raw = await request.read()
            try:
                body = json.loads(raw) if raw else None
            except json.JSONDecodeError:
                body = raw.decode("utf-8", "replace")
        record = Recorded(method=request.method, path=request.path,
                          headers={k.lower(): v for k, v in request.headers.items()}, json=body,
                          query=dict(request.query))
        self.requests.append(record)
        request[_JSON] = body
        if not hmac.compare_digest(request.headers.get("X-Api-Key", "").encode(), self.api_key.encode()):
            response: web.StreamResponse = web.json_response({"message": "Unauthorized", "statusCode": 401},
                                                             status=401)
        elif self._failures:
            status = self._failures.pop(0)
            response = web.json_response({"statusCode": status, "timestamp": _iso_now(), "path": request.path,
                                          "error": "Internal server error" if status >= 500 else "Too Many Requests"},
                                         status=status)
        else:
            try:
                response = await handler(request)
            except web.HTTPException as exc:  # routing errors (404/405)
                response = _error(exc.status, exc.reason)
        record.status = response.status
        return response

    # -- test controls ---------------------------------------------------------------------------

    def fail_next(self, count: int = 1, *, status: int = 500) -> None:
        """Answer the next ``count`` authenticated requests with ``status`` (500 by default)."""
        self._failures.extend([status] * count)

    def add_session(self, name: str = "default", *, status: str = "WORKING",
                    me_id: str = "15550001111@c.us", config: dict[str, Any] | None = None) -> SessionState:
        """Create a session directly (as if it had been created and its QR scanned earlier)."""
        state = SessionState(name=name, config=config or {}, status=status, authenticated=status == "WORKING",
                             me={"id": me_id, "pushName": "Test shop"} if status == "WORKING" else None)
        self.sessions[name] = state
        return state

    async def scan_qr(self, name: str = "default", *, me_id: str = "15550001111@c.us",
                      push_name: str = "Test shop") -> list[Delivery]:
        """The owner scans the QR: the session becomes ``WORKING`` and a ``session.status`` event is
        emitted to its webhooks."""
        state = self.sessions[name]
        state.authenticated = True
        state.me = {"id": me_id, "pushName": push_name}
        return await self.set_status(name, "WORKING")

    async def set_status(self, name: str, status: str) -> list[Delivery]:
        """Change a session's status and emit ``session.status`` (e.g. ``FAILED``)."""
        self.sessions[name].status = status
        return await self.emit(name, "session.status", {"status": status})

    async def emit(self, name: str, event: str, payload: dict[str, Any], *, sign: bool = True) -> list[Delivery]:
        """POST an event to every webhook of session ``name`` subscribed to ``event`` (or ``*``), as
        WAHA does; ``sign=False`` leaves out the HMAC headers. Returns the deliveries."""
        state = self.sessions[name]
        envelope = {
            "id": f"evt_{_ulid()}",
            "timestamp": int(time.time() * 1000),
            "event": event,
            "session": name,
            "metadata": (state.config.get("metadata") or {}),
            "me": state.me,
            "payload": payload,
            "engine": self.engine,
            "environment": {"version": "2025.6.1", "engine": self.engine, "tier": "CORE", "browser": None},
        }
        # JSON.stringify: compact separators, non-ASCII kept as UTF-8.
        body = json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
        made: list[Delivery] = []
        for hook in state.config.get("webhooks") or []:
            events = hook.get("events") or []
            if event not in events and "*" not in events:
                continue
            headers = {"Content-Type": "application/json", "X-Webhook-Request-Id": _ulid(),
                       "X-Webhook-Timestamp": str(int(time.time() * 1000))}
            key = (hook.get("hmac") or {}).get("key") if isinstance(hook.get("hmac"), dict) else None
            if key and sign:
                headers["X-Webhook-Hmac"] = hmac.new(key.encode(), body, hashlib.sha512).hexdigest()
                headers["X-Webhook-Hmac-Algorithm"] = "sha512"
            for custom in hook.get("customHeaders") or []:
                headers[custom["name"]] = custom["value"]
            response = await self.http.post(hook["url"], content=body, headers=headers)
            delivery = Delivery(url=hook["url"], body=body, headers=headers, status=response.status_code)
            self.deliveries.append(delivery)
            made.append(delivery)
        return made

    async def emit_message(self, name: str = "default", *, from_: str, body: str, from_me: bool = False,
                           message_id: str | None = None, timestamp: int = 1_700_000_000,
                           has_media: bool = False, media: dict[str, Any] | None = None,
                           reply_to: dict[str, Any] | None = None, notify_name: str | None = "Ann",
                           participant: str | None = None) -> tuple[dict[str, Any], list[Delivery]]:
        """Emit a ``message`` event whose payload is a ``WAMessage`` (fields as in WAHA's docs).
        Returns the payload and the deliveries."""
        me = (self.sessions[name].me or {}).get("id", "15550001111@c.us")
        payload = {
            "id": message_id or f"{'true' if from_me else 'false'}_{from_}_{secrets.token_hex(10).upper()}",
            "timestamp": timestamp,
            "from": me if from_me else from_,
            "fromMe": from_me,
            "source": "app",
            "to": from_ if from_me else me,
            "participant": participant,
            "body": body,
            "hasMedia": has_media,
            "media": media,
            "ack": 1,
            "ackName": "SERVER",
            "replyTo": reply_to,
            "vCards": [],
            "_data": {"notifyName": notify_name} if notify_name else {},
        }
        return payload, await self.emit(name, "message", payload)

    @property
    def accepted_messages(self) -> list[Recorded]:
        """``sendText``/``sendImage`` requests that were accepted (what the customer receives)."""
        return [r for r in self.requests if r.path in {"/api/sendText", "/api/sendImage"} and r.status == 201]

    def calls(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.path == path]

    # -- sessions --------------------------------------------------------------------------------

    def _start(self, state: SessionState) -> None:
        if state.status in ("STOPPED", "FAILED"):
            if state.authenticated:
                state.status = "WORKING"
            else:
                state.status = "SCAN_QR_CODE"
                state.qr_value = f"2@{secrets.token_urlsafe(24)},{secrets.token_urlsafe(16)}"

    async def _list_sessions(self, request: web.Request) -> web.Response:
        show_all = request.query.get("all") in ("true", "1")
        return web.json_response([s.dto() for s in self.sessions.values() if show_all or s.status != "STOPPED"])

    async def _get_session(self, request: web.Request) -> web.Response:
        state = self.sessions.get(request.match_info["session"])
        if state is None:
            return _error(404, "Session not found")
        return web.json_response(state.dto())

    async def _create_session(self, request: web.Request) -> web.Response:
        body = request[_JSON] or {}
        if not isinstance(body, dict):
            return _error(400, ["body must be an object"])
        name = body.get("name") or f"session_{secrets.token_hex(8)}"
        if name in self.sessions:
            return _error(422, f"Session '{name}' already exists. Use PUT to update it.")
        if (problem := _check_config(body.get("config"))) is not None:
            return problem
        state = SessionState(name=name, config=body.get("config") or {})
        self.sessions[name] = state
        # "By default, the session starts right after creation"; "start": false postpones it.
        if body.get("start", True):
            self._start(state)
        return web.json_response(state.dto(), status=201)

    async def _update_session(self, request: web.Request) -> web.Response:
        state = self.sessions.get(request.match_info["session"])
        if state is None:
            return _error(404, "Session not found")
        body = request[_JSON] or {}
        if (problem := _check_config(body.get("config"))) is not None:
            return problem
        running = state.status != "STOPPED"
        state.status = "STOPPED"
        state.config = body.get("config") or {}
        if running:
            self._start(state)
        return web.json_response(state.dto())

    async def _delete_session(self, request: web.Request) -> web.Response:
        self.sessions.pop(request.match_info["session"], None)
        return web.Response(status=200)

    async def _me(self, request: web.Request) -> web.Response:
        state = self.sessions.get(request.match_info["session"])
        if state is None:
            return _error(404, "Session not found")
        return web.json_response(state.me)

    async def _session_action(self, request: web.Request) -> web.Response:
        state = self.sessions.get(request.match_info["session"])
        if state is None:
            return _error(404, "Session not found")
        action = request.match_info["action"]
        running = state.status != "STOPPED"
        if action == "start":
            self._start(state)
        elif action == "stop":
            state.status = "STOPPED"
        elif action == "restart":
            state.status = "STOPPED"
            self._start(state)
        elif action == "logout":
            state.authenticated = False
            state.me = None
            state.status = "STOPPED"
            if running:
                self._start(state)
        return web.json_response(state.dto(), status=201)

    async def _qr(self, request: web.Request) -> web.StreamResponse:
        state = self.sessions.get(request.match_info["session"])
        if state is None:
            return _error(404, "Session not found")
        if state.status != "SCAN_QR_CODE":
            return _error(422, f"Can get QR code only in SCAN_QR_CODE status. The current status is '{state.status}'")
        if request.query.get("format") == "raw":
            return web.json_response({"value": state.qr_value})
        if "application/json" in request.headers.get("Accept", ""):
            return web.json_response({"mimetype": "image/png", "data": base64.b64encode(_PNG).decode()})
        return web.Response(body=_PNG, content_type="image/png")

    # -- chatting --------------------------------------------------------------------------------

    def _working(self, body: dict[str, Any]) -> tuple[SessionState | None, web.Response | None]:
        name = body.get("session") or "default"
        state = self.sessions.get(name)
        if state is None:
            return None, _error(404, f"We didn't find a session with name '{name}'. Please start it first.")
        if state.status != "WORKING":
            return None, _error(422, f"Session status is not as expected. Try again later or restart the session. "
                                     f"Session status: {state.status}")
        return state, None

    def _wa_message(self, state: SessionState, chat_id: str, *, body: str, media: dict[str, Any] | None,
                    reply_to: str | None) -> dict[str, Any]:
        me = (state.me or {}).get("id", "")
        return {"id": f"true_{chat_id}_{secrets.token_hex(10).upper()}", "timestamp": int(time.time()),
                "from": me, "fromMe": True, "source": "api", "to": chat_id, "participant": None, "body": body,
                "hasMedia": media is not None, "media": media, "ack": 1, "ackName": "SERVER",
                "replyTo": {"id": reply_to} if reply_to else None, "_data": {}}

    async def _send_text(self, request: web.Request) -> web.Response:
        body = request[_JSON]
        if not isinstance(body, dict):
            return _error(400, ["chatId must be a string", "text must be a string"])
        problems = [f"{k} must be a string" for k in ("chatId", "text") if not isinstance(body.get(k), str)]
        if problems:
            return _error(400, problems)
        state, refused = self._working(body)
        if refused is not None:
            return refused
        assert state is not None
        message = self._wa_message(state, body["chatId"], body=body["text"], media=None,
                                   reply_to=body.get("reply_to"))
        return web.json_response(message, status=201)

    async def _send_image(self, request: web.Request) -> web.Response:
        body = request[_JSON]
        if not isinstance(body, dict) or not isinstance(body.get("chatId"), str):
            return _error(400, ["chatId must be a string"])
        file = body.get("file")
        if not isinstance(file, dict) or not (file.get("url") or file.get("data")):
            return _error(400, ["file must be a RemoteFile {url, mimetype} or a BinaryFile {data, mimetype}"])
        state, refused = self._working(body)
        if refused is not None:
            return refused
        assert state is not None
        if not self.image_supported:
            return _error(422, f"The feature is not available for the '{self.engine}' engine in this tier")
        message = self._wa_message(state, body["chatId"], body=str(body.get("caption") or ""),
                                   media={"url": file.get("url"), "mimetype": file.get("mimetype"),
                                          "filename": file.get("filename")},
                                   reply_to=body.get("reply_to"))
        return web.json_response(message, status=201)

    async def _chat_action(self, request: web.Request) -> web.Response:
        body = request[_JSON]
        if not isinstance(body, dict) or not isinstance(body.get("chatId"), str):
            return _error(400, ["chatId must be a string"])
        _, refused = self._working(body)
        if refused is not None:
            return refused
        return web.json_response({}, status=201)


_REASONS = {400: "Bad Request", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed",
            422: "Unprocessable Entity", 500: "Internal Server Error"}


def _error(status: int, message: Any) -> web.Response:
    """NestJS's error body: ``{"statusCode", "message", "error"}``."""
    return web.json_response({"statusCode": status, "message": message, "error": _REASONS.get(status, "Error")},
                             status=status)


def _check_config(config: Any) -> web.Response | None:
    """Validate ``config.webhooks`` like WAHA's ``WebhookConfig`` DTO (url and events required)."""
    if config is None:
        return None
    if not isinstance(config, dict):
        return _error(400, ["config must be an object"])
    for hook in config.get("webhooks") or []:
        if not (isinstance(hook, dict) and isinstance(hook.get("url"), str) and isinstance(hook.get("events"), list)):
            return _error(400, ["config.webhooks.url must be a string", "config.webhooks.events must be an array"])
        if hook.get("hmac") is not None and not isinstance((hook.get("hmac") or {}).get("key"), str):
            return _error(400, ["config.webhooks.hmac.key must be a string"])
    return None


def _iso_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
