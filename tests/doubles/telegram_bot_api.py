"""A local Telegram Bot API server (https://core.telegram.org/bots/api) for tests.

It serves ``/bot<token>/<method>`` like ``api.telegram.org`` and a local Bot API server do, for the
methods the Telegram adapter calls: ``sendMessage``, ``sendPhoto``, ``setWebhook``,
``deleteWebhook``, ``getWebhookInfo``, ``getMe``, ``getUpdates`` and ``answerCallbackQuery``.

Wire format (https://core.telegram.org/bots/api#making-requests): parameters come as the query
string, ``application/x-www-form-urlencoded``, ``application/json`` or ``multipart/form-data``
(aiogram sends multipart, with objects such as ``reply_markup`` as JSON strings); all are decoded to
one dict where scalars are strings and JSON objects/arrays are decoded. Responses use Telegram's
envelope: ``{"ok": true, "result": ...}`` or ``{"ok": false, "error_code": n, "description": "...",
"parameters": {"retry_after": s}}``.

Test controls: ``fail_next`` (429 or 5xx for the next N calls), ``queue_update`` (served by
``getUpdates`` with offset confirmation and long polling), ``deliver_update`` (POSTs an update to the
registered webhook with the secret-token header), ``blocked_chats`` (403) and ``bad_photo_urls`` (400).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.doubles import LocalServer

TEXT_LIMIT = 4096
CAPTION_LIMIT = 1024
CALLBACK_DATA_LIMIT = 64


@dataclass
class Call:
    """One request as received: canonical method name, decoded params, HTTP status of the answer."""

    method: str
    params: dict[str, Any]
    status: int = 200
    content_type: str = ""

    @property
    def ok(self) -> bool:
        return self.status == 200


@dataclass
class _Failure:
    status: int
    description: str
    retry_after: int | None = None


@dataclass(eq=False)
class FakeBotAPI(LocalServer):
    """The Bot API double. ``token`` is the only accepted token (others get 401)."""

    token: str = "123456:TEST-token_abcdefghijklmnopqrstuv"
    bot_id: int = 123456
    bot_username: str = "chatcommerce_test_bot"
    require_https: bool = False
    calls: list[Call] = field(default_factory=list)
    blocked_chats: set[str] = field(default_factory=set)
    bad_photo_urls: set[str] = field(default_factory=set)
    webhook_url: str = ""
    webhook_secret: str | None = None
    webhook_allowed_updates: list[str] | None = None

    def __post_init__(self) -> None:
        LocalServer.__init__(self)
        self._failures: list[_Failure] = []
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(10_000)
        self._message_ids = itertools.count(1)
        self._new_update = asyncio.Condition()
        self._closing = asyncio.Event()

    # -- server ----------------------------------------------------------------------------------

    @property
    def api_base(self) -> str:
        """What goes in ``Inbox.settings["api_base"]`` (aiogram ``TelegramAPIServer.from_base``)."""
        return self.url

    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/bot{token}/{method}", self._dispatch)
        return app

    async def stop(self) -> None:
        self._closing.set()
        async with self._new_update:
            self._new_update.notify_all()
        await super().stop()

    # -- test controls ---------------------------------------------------------------------------

    def fail_next(self, count: int = 1, *, status: int = 429, retry_after: int = 1,
                  description: str | None = None) -> None:
        """Answer the next ``count`` calls with an error: 429 carries ``parameters.retry_after``
        (https://core.telegram.org/bots/api#responseparameters), 5xx a server error."""
        if description is None:
            description = (f"Too Many Requests: retry after {retry_after}" if status == 429
                           else "Internal Server Error")
        for _ in range(count):
            self._failures.append(_Failure(status, description, retry_after if status == 429 else None))

    async def queue_update(self, update: dict[str, Any]) -> dict[str, Any]:
        """Queue an ``Update`` for ``getUpdates`` (``update_id`` assigned when missing)."""
        update = dict(update)
        update.setdefault("update_id", next(self._update_ids))
        async with self._new_update:
            self._updates.append(update)
            self._new_update.notify_all()
        return update

    async def deliver_update(self, update: dict[str, Any], *, secret: str | None = None) -> int:
        """POST ``update`` to the webhook set with ``setWebhook``, as Telegram does: JSON body and
        ``X-Telegram-Bot-Api-Secret-Token`` (the registered secret unless ``secret`` overrides it).
        Returns the receiver's HTTP status. Raises ``RuntimeError`` without a webhook."""
        if not self.webhook_url:
            raise RuntimeError("no webhook is set")
        update = dict(update)
        update.setdefault("update_id", next(self._update_ids))
        headers = {"Content-Type": "application/json"}
        token = secret if secret is not None else self.webhook_secret
        if token:
            headers["X-Telegram-Bot-Api-Secret-Token"] = token
        response = await self.http.post(self.webhook_url, content=json.dumps(update).encode(), headers=headers)
        return response.status_code

    def accepted(self, method: str | None = None) -> list[Call]:
        """Successful calls (optionally of one method, case-insensitive)."""
        return [c for c in self.calls if c.ok and (method is None or c.method.lower() == method.lower())]

    @property
    def sent(self) -> list[Call]:
        """Accepted ``sendMessage``/``sendPhoto`` calls, i.e. messages a customer would see."""
        return [c for c in self.calls if c.ok and c.method.lower() in {"sendmessage", "sendphoto"}]

    def bot_user(self) -> dict[str, Any]:
        return {"id": self.bot_id, "is_bot": True, "first_name": "Test shop", "username": self.bot_username,
                "can_join_groups": True, "can_read_all_group_messages": False, "supports_inline_queries": False}

    # -- request handling ------------------------------------------------------------------------

    async def _dispatch(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params = await _decode_params(request)
        call = Call(method=method, params=params, content_type=request.content_type)
        self.calls.append(call)
        if request.match_info["token"] != self.token:
            return self._error(call, 401, "Unauthorized")
        if self._failures:
            failure = self._failures.pop(0)
            extra = {"retry_after": failure.retry_after} if failure.retry_after is not None else None
            return self._error(call, failure.status, failure.description, extra)
        handler = getattr(self, f"_m_{method.lower()}", None)
        if handler is None:
            return self._error(call, 404, "Not Found")
        return await handler(call)

    def _ok(self, call: Call, result: Any) -> web.Response:
        call.status = 200
        return web.json_response({"ok": True, "result": result})

    def _error(self, call: Call, status: int, description: str,
               parameters: dict[str, Any] | None = None) -> web.Response:
        call.status = status
        body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
        if parameters:
            body["parameters"] = parameters
        return web.json_response(body, status=status)

    def _message(self, chat_id: str, **content: Any) -> dict[str, Any]:
        chat_key = str(chat_id)
        chat: dict[str, Any] = {"id": int(chat_key) if chat_key.lstrip("-").isdigit() else 0, "type": "private",
                                "first_name": "Customer"}
        return {"message_id": next(self._message_ids), "from": self.bot_user(), "chat": chat,
                "date": int(time.time()), **content}

    def _check_chat(self, call: Call) -> web.Response | None:
        chat_id = str(call.params.get("chat_id") or "")
        if not chat_id:
            return self._error(call, 400, "Bad Request: chat_id is empty")
        if chat_id in self.blocked_chats:
            return self._error(call, 403, "Forbidden: bot was blocked by the user")
        return None

    def _check_markup(self, call: Call) -> web.Response | None:
        markup = call.params.get("reply_markup")
        if markup is None:
            return None
        if not isinstance(markup, dict):
            return self._error(call, 400, "Bad Request: can't parse reply keyboard markup JSON object")
        for row in markup.get("inline_keyboard") or []:
            for button in row:
                data = button.get("callback_data")
                if data is not None and not (0 < len(str(data).encode()) <= CALLBACK_DATA_LIMIT):
                    return self._error(call, 400, "Bad Request: BUTTON_DATA_INVALID")
                if not button.get("text"):
                    return self._error(call, 400, "Bad Request: text buttons are unallowed in the inline keyboard")
        return None

    async def _m_sendmessage(self, call: Call) -> web.Response:
        if (refused := self._check_chat(call)) is not None:
            return refused
        text = str(call.params.get("text") or "")
        if not text.strip():
            return self._error(call, 400, "Bad Request: message text is empty")
        if len(text) > TEXT_LIMIT:
            return self._error(call, 400, "Bad Request: message is too long")
        if (refused := self._check_markup(call)) is not None:
            return refused
        content: dict[str, Any] = {"text": text}
        if isinstance(call.params.get("reply_markup"), dict):
            content["reply_markup"] = call.params["reply_markup"]
        return self._ok(call, self._message(call.params["chat_id"], **content))

    async def _m_sendphoto(self, call: Call) -> web.Response:
        if (refused := self._check_chat(call)) is not None:
            return refused
        photo = call.params.get("photo")
        if not photo:
            return self._error(call, 400, "Bad Request: there is no photo in the request")
        if str(photo) in self.bad_photo_urls:
            return self._error(call, 400, "Bad Request: wrong file identifier/HTTP URL specified")
        caption = str(call.params.get("caption") or "")
        if len(caption) > CAPTION_LIMIT:
            return self._error(call, 400, "Bad Request: message caption is too long")
        if (refused := self._check_markup(call)) is not None:
            return refused
        sizes = [{"file_id": f"AgAC{n}", "file_unique_id": f"AQAD{n}", "width": w, "height": w, "file_size": w * 40}
                 for n, w in enumerate((90, 320, 800))]
        content: dict[str, Any] = {"photo": sizes}
        if caption:
            content["caption"] = caption
        if isinstance(call.params.get("reply_markup"), dict):
            content["reply_markup"] = call.params["reply_markup"]
        return self._ok(call, self._message(call.params["chat_id"], **content))

    async def _m_setwebhook(self, call: Call) -> web.Response:
        url = str(call.params.get("url") or "")
        secret = call.params.get("secret_token")
        if secret is not None and not _valid_secret(str(secret)):
            return self._error(call, 400, "Bad Request: secret token contains unallowed characters")
        if url and self.require_https and not url.startswith("https://"):
            return self._error(call, 400, "Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
        if self.token in url:
            # Not a Telegram rule: a guard of this test suite (routes must use the inbox id).
            return self._error(call, 400, "Bad Request: test double refuses webhook URLs containing the token")
        self.webhook_url = url
        self.webhook_secret = str(secret) if secret else None
        allowed = call.params.get("allowed_updates")
        self.webhook_allowed_updates = list(allowed) if isinstance(allowed, list) else None
        return self._ok(call, True)

    async def _m_deletewebhook(self, call: Call) -> web.Response:
        self.webhook_url = ""
        self.webhook_secret = None
        if str(call.params.get("drop_pending_updates", "")).lower() == "true":
            self._updates.clear()
        return self._ok(call, True)

    async def _m_getwebhookinfo(self, call: Call) -> web.Response:
        info: dict[str, Any] = {"url": self.webhook_url, "has_custom_certificate": False,
                                "pending_update_count": len(self._updates)}
        if self.webhook_allowed_updates is not None:
            info["allowed_updates"] = self.webhook_allowed_updates
        return self._ok(call, info)

    async def _m_getme(self, call: Call) -> web.Response:
        return self._ok(call, self.bot_user())

    async def _m_sendchataction(self, call: Call) -> web.Response:
        if call.params.get("action") not in ("typing", "upload_photo", "record_voice", "upload_document"):
            return self._error(call, 400, "Bad Request: wrong parameter action in request")
        return self._ok(call, True)

    async def _m_answercallbackquery(self, call: Call) -> web.Response:
        if not call.params.get("callback_query_id"):
            return self._error(call, 400, "Bad Request: query is too old and response timeout expired "
                                          "or query ID is invalid")
        return self._ok(call, True)

    async def _m_getupdates(self, call: Call) -> web.Response:
        """https://core.telegram.org/bots/api#getupdates: an ``offset`` confirms every update with a
        lower id; ``timeout`` is the long-polling wait in seconds; 409 while a webhook is set."""
        if self.webhook_url:
            return self._error(call, 409, "Conflict: can't use getUpdates method while webhook is active; "
                                          "use deleteWebhook to delete the webhook first")
        offset = int(call.params.get("offset") or 0)
        limit = min(max(int(call.params.get("limit") or 100), 1), 100)
        timeout = float(call.params.get("timeout") or 0)
        allowed = call.params.get("allowed_updates")
        deadline = asyncio.get_running_loop().time() + timeout
        async with self._new_update:
            while True:
                if offset:
                    self._updates = [u for u in self._updates if u["update_id"] >= offset]
                ready = [u for u in self._updates if _allowed(u, allowed)][:limit]
                remaining = deadline - asyncio.get_running_loop().time()
                if ready or remaining <= 0 or self._closing.is_set():
                    break
                try:
                    await asyncio.wait_for(self._new_update.wait(), remaining)
                except TimeoutError:
                    pass
        return self._ok(call, ready)


def _allowed(update: dict[str, Any], allowed: Any) -> bool:
    if not isinstance(allowed, list) or not allowed:
        return True
    return any(key in update for key in allowed)


def _valid_secret(secret: str) -> bool:
    return 0 < len(secret) <= 256 and all(ch.isascii() and (ch.isalnum() or ch in "_-") for ch in secret)


def _normalize(value: Any) -> Any:
    """Form fields are strings; decode JSON objects/arrays (aiogram serializes them to JSON)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        stripped = value.strip()
        if stripped[:1] in "[{":
            try:
                return json.loads(stripped)
            except json.JSONDecodeError:
                return value
        return value
    return value


async def _decode_params(request: web.Request) -> dict[str, Any]:
    params: dict[str, Any] = {k: _normalize(v) for k, v in request.query.items()}
    if request.method != "POST" or not request.can_read_body:
        return params
    if request.content_type == "application/json":
        body = await request.json()
        if isinstance(body, dict):
            for key, value in body.items():
                params[key] = value if isinstance(value, dict | list) else _normalize(value)
        return params
    form = await request.post()
    for key, value in form.items():
        if isinstance(value, web.FileField):
            params[key] = {"filename": value.filename, "size": len(value.file.read())}
        else:
            params[key] = _normalize(value)
    return params


# -- update builders (https://core.telegram.org/bots/api#update) ---------------------------------

_ids = itertools.count(500)


def user(user_id: int, first_name: str = "Ann", last_name: str | None = "Lee", *, username: str | None = "ann_lee",
         is_bot: bool = False) -> dict[str, Any]:
    """A ``User`` object."""
    data: dict[str, Any] = {"id": user_id, "is_bot": is_bot, "first_name": first_name, "language_code": "en"}
    if last_name:
        data["last_name"] = last_name
    if username:
        data["username"] = username
    return data


def private_chat(chat_id: int, first_name: str = "Ann") -> dict[str, Any]:
    return {"id": chat_id, "type": "private", "first_name": first_name}


def text_update(chat_id: int, text: str, *, message_id: int | None = None, date: int = 1_700_000_000,
                update_id: int | None = None, chat_type: str = "private") -> dict[str, Any]:
    """An update with a text ``message`` from user ``chat_id`` (private chat id == user id)."""
    chat = private_chat(chat_id) if chat_type == "private" else {"id": chat_id, "type": chat_type, "title": "Group"}
    update: dict[str, Any] = {
        "message": {"message_id": message_id or next(_ids), "from": user(abs(chat_id)), "chat": chat,
                    "date": date, "text": text},
    }
    if update_id is not None:
        update["update_id"] = update_id
    return update


def contact_update(chat_id: int, phone: str, *, contact_user_id: int | None = None,
                   date: int = 1_700_000_100) -> dict[str, Any]:
    """A ``message`` with a shared ``contact`` (own contact when ``contact_user_id`` is the sender)."""
    contact: dict[str, Any] = {"phone_number": phone, "first_name": "Ann"}
    if contact_user_id is not None:
        contact["user_id"] = contact_user_id
    return {"message": {"message_id": next(_ids), "from": user(chat_id), "chat": private_chat(chat_id),
                        "date": date, "contact": contact}}


def callback_update(chat_id: int, data: str, *, callback_id: str | None = None,
                    reply_markup: dict[str, Any] | None = None, bot_id: int = 123456) -> dict[str, Any]:
    """A ``callback_query`` (a pressed inline button) on a bot message in ``chat_id``'s chat."""
    message: dict[str, Any] = {"message_id": next(_ids), "from": user(bot_id, "Test shop", None, username="shop_bot",
                                                                      is_bot=True),
                               "chat": private_chat(chat_id), "date": 1_700_000_000, "text": "Choose:"}
    if reply_markup is not None:
        message["reply_markup"] = reply_markup
    return {"callback_query": {"id": callback_id or str(next(_ids) * 1000), "from": user(chat_id),
                               "message": message, "chat_instance": "-77", "data": data}}
