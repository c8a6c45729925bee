"""Telegram: a bot speaking the Telegram Bot API (https://core.telegram.org/bots/api) through aiogram 3.

Inbox configuration (``Inbox.kind == "telegram"``):

* credentials: ``{"bot_token": "123456:ABC...", "webhook_secret": "<1-256 chars of A-Z a-z 0-9 _ ->"}``
* settings: ``{"api_base": "http://127.0.0.1:8081"}`` (optional) to talk to a local Bot API server
  (https://core.telegram.org/bots/api#using-a-local-bot-api-server) or a test double; without it the
  production server ``https://api.telegram.org`` is used. The code path is the same.

Inbound updates arrive on a webhook registered by ``connect`` (the URL routes by inbox id, never by
the bot token) or, for development, through ``poll`` (``getUpdates`` long polling). Outbound sends
retry on flood control (429), server errors (5xx) and connection failures, a bounded number of times.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar

import aiohttp
import structlog
from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
    TelegramUnauthorizedError,
)
from aiogram.methods import (
    AnswerCallbackQuery,
    DeleteWebhook,
    GetMe,
    GetUpdates,
    GetWebhookInfo,
    SendChatAction,
    SendMessage,
    SendPhoto,
    SetWebhook,
)
from aiogram.methods.base import TelegramMethod
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update, User
from pydantic import ValidationError
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from bot.messages import Button, OutboundMessage
from channels.base import Channel, ParsedInbound, RawRequest, SignatureError
from core.security import tokens_match
from core.timeutil import utcnow

log = structlog.get_logger(__name__)

T = TypeVar("T")

# https://core.telegram.org/bots/api#setwebhook: "the header X-Telegram-Bot-Api-Secret-Token with the
# secret token as content" (RawRequest headers are lower-cased).
SECRET_HEADER = "x-telegram-bot-api-secret-token"
# https://core.telegram.org/bots/api#setwebhook: secret_token is 1-256 characters, A-Z, a-z, 0-9, _ and -.
_SECRET_RE = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
# https://core.telegram.org/bots/api#sendmessage: text is 1-4096 characters after entities parsing.
MAX_TEXT = 4096
# https://core.telegram.org/bots/api#sendphoto: caption is 0-1024 characters after entities parsing.
MAX_CAPTION = 1024
# https://core.telegram.org/bots/api#inlinekeyboardbutton: callback_data is 1-64 bytes.
MAX_CALLBACK_DATA = 64
# Prefix of the callback_data used for payloads that do not fit in 64 bytes (see ``callback_data_for``).
HASHED_CALLBACK_PREFIX = "~h:"
# The updates this adapter understands (https://core.telegram.org/bots/api#update).
ALLOWED_UPDATES: tuple[str, ...] = ("message", "callback_query")


def callback_data_for(payload: str) -> str:
    """The ``callback_data`` for a button whose pressing sends back ``payload``.

    A payload of 1-64 UTF-8 bytes is used as is. Longer payloads (and payloads that themselves start
    with the hash prefix) become ``"~h:" + sha256(payload)[:32 hex]`` (35 bytes): Telegram refuses
    callback_data over 64 bytes (https://core.telegram.org/bots/api#inlinekeyboardbutton) and cutting
    UTF-8 text could split a character. When such a button is pressed, ``parse`` finds the button in
    the callback's message (``callback_query.message.reply_markup``) and returns the button's title
    instead of the payload, since the adapter keeps no state to reverse the hash.
    """
    raw = payload.encode("utf-8")
    if 0 < len(raw) <= MAX_CALLBACK_DATA and not payload.startswith(HASHED_CALLBACK_PREFIX):
        return payload
    return HASHED_CALLBACK_PREFIX + hashlib.sha256(raw).hexdigest()[:32]


def split_text(text: str, limit: int = MAX_TEXT) -> list[str]:
    """Split ``text`` into pieces of at most ``limit`` characters, preferring line breaks, then spaces."""
    pieces: list[str] = []
    rest = text
    while len(rest) > limit:
        cut = rest.rfind("\n", 0, limit + 1)
        if cut <= 0:
            cut = rest.rfind(" ", 0, limit + 1)
        if cut <= 0:
            cut = limit
        pieces.append(rest[:cut].rstrip())
        rest = rest[cut:].lstrip("\n ")
    if rest or not pieces:
        pieces.append(rest)
    return [p for p in pieces if p] or [""]


def _normalize_phone(raw: str) -> str:
    digits = "".join(ch for ch in raw if ch.isdigit())
    return f"+{digits}" if digits else raw.strip()


def _full_name(user: User | None) -> str | None:
    if user is None:
        return None
    name = " ".join(part for part in (user.first_name, user.last_name) if part).strip() or (user.username or "")
    return name[:200] or None


def _chat_id(to: str) -> int | str:
    """Telegram chat ids are integers (negative for groups); ``@channelusername`` is also accepted."""
    stripped = to.strip()
    if stripped.lstrip("-").isdigit():
        return int(stripped)
    if not stripped:
        raise ValueError("recipient chat id is empty")
    return stripped


class _Session(AiohttpSession):
    """aiogram's aiohttp session without the 250 ms sleep on close (it waits for TLS shutdown of
    connections; an adapter is built per delivery, so that sleep would delay every reply)."""

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()


class TelegramChannel(Channel):
    """A Telegram bot (https://core.telegram.org/bots/api) as a ``Channel``.

    Construct with ``credentials={"bot_token", "webhook_secret"}`` and optional
    ``settings={"api_base": url}``. Keyword-only extras (tests, long-lived processes):
    ``session`` shares an aiogram ``AiohttpSession`` (then ``aclose`` leaves it open),
    ``retry_attempts`` (default 3), ``retry_wait`` (first back-off, seconds, doubled per attempt) and
    ``retry_max_wait`` (cap of any wait, including Telegram's ``retry_after``).
    """

    kind: ClassVar[str] = "telegram"
    supports_buttons: ClassVar[bool] = True
    default_buffer_seconds: ClassVar[float] = 3.0
    # https://core.telegram.org/bots/api#sendmessage: a text message is 1-4096 characters (a media
    # caption 0-1024), so no customer's text or caption is longer.
    max_inbound_text: ClassVar[int] = MAX_TEXT

    def __init__(
        self,
        *,
        credentials: Mapping[str, Any] | None = None,
        settings: Mapping[str, Any] | None = None,
        session: AiohttpSession | None = None,
        retry_attempts: int = 3,
        retry_wait: float = 0.5,
        retry_max_wait: float = 5.0,
    ) -> None:
        super().__init__(credentials=credentials, settings=settings)
        self._shared_session = session
        self._bot: Bot | None = None
        self._poll_offset: int | None = None
        self._retry_attempts = max(int(retry_attempts), 1)
        self._retry_wait = max(float(retry_wait), 0.0)
        self._retry_max_wait = max(float(retry_max_wait), 0.0)

    # -- configuration -------------------------------------------------------------------------

    @property
    def bot_token(self) -> str:
        token = str(self.credentials.get("bot_token") or "").strip()
        if not token:
            raise ValueError("telegram inbox has no 'bot_token' in its credentials")
        return token

    @property
    def webhook_secret(self) -> str | None:
        secret = self.credentials.get("webhook_secret")
        return str(secret) if secret else None

    def _api(self) -> TelegramAPIServer | None:
        base = self.settings.get("api_base")
        return TelegramAPIServer.from_base(str(base)) if base else None

    @property
    def bot(self) -> Bot:
        """The aiogram ``Bot`` (created on first use). Raises ``ValueError`` without a valid token."""
        if self._bot is None:
            session = self._shared_session
            if session is None:
                api = self._api()
                session = _Session(api=api) if api is not None else _Session()
            try:
                self._bot = Bot(token=self.bot_token, session=session)
            except Exception as exc:  # aiogram's TokenValidationError
                raise ValueError(f"telegram bot_token is malformed: {exc}") from exc
        return self._bot

    # -- inbound ---------------------------------------------------------------------------------

    async def verify(self, request: RawRequest) -> None:
        """Check ``X-Telegram-Bot-Api-Secret-Token`` against the inbox's ``webhook_secret``.

        Telegram sends the ``secret_token`` given to ``setWebhook`` in that header with every update
        (https://core.telegram.org/bots/api#setwebhook). The comparison is constant-time. A missing
        or different header, or an inbox without a secret, raises ``SignatureError``.
        """
        expected = self.webhook_secret
        if not expected:
            raise SignatureError("telegram inbox has no webhook_secret; refusing unauthenticated updates")
        if not tokens_match(request.headers.get(SECRET_HEADER), expected):
            raise SignatureError("X-Telegram-Bot-Api-Secret-Token is missing or does not match")

    def parse(self, request: RawRequest) -> list[ParsedInbound]:
        """Parse one webhook delivery: a JSON-serialized ``Update``
        (https://core.telegram.org/bots/api#getting-updates). Raises ``ValueError`` for a body that
        is not an Update. See ``parse_update`` for what becomes a message."""
        try:
            data = json.loads(request.body or b"")
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"body is not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise ValueError("body must be a JSON object (a Telegram Update)")
        try:
            update = Update.model_validate(data)
        except ValidationError as exc:
            raise ValueError(f"body is not a Telegram Update: {exc.error_count()} validation error(s)") from exc
        return self.parse_update(update)

    def parse_update(self, update: Update) -> list[ParsedInbound]:
        """Turn an ``Update`` into customer messages.

        * ``message`` in a private chat (https://core.telegram.org/bots/api#message): its ``text``
          (or a media ``caption``); ``contact_source_id`` is ``chat.id``, ``source_id`` is
          ``"<chat.id>:<message_id>"`` (message ids are unique per chat only), ``received_at`` is
          ``date`` (Unix time) as aware UTC, the name comes from ``from``.
        * a shared contact (``message.contact``, https://core.telegram.org/bots/api#contact): the text
          is the phone number (``+`` and digits); ``phone`` is set only when ``contact.user_id`` is the
          sender, i.e. the customer shared their own number, not someone else's card.
        * ``callback_query`` (https://core.telegram.org/bots/api#callbackquery): its ``data`` (the
          pressed button's payload, see ``callback_data_for``) with ``source_id`` ``"cb:<id>"``.
        * anything else (edited messages, groups and channels, messages from bots, stickers and
          photos without a caption): ``[]``.
        """
        if update.message is not None:
            return self._parse_message(update.message)
        if update.callback_query is not None:
            cq = update.callback_query
            if not cq.data:
                return []
            msg = cq.message
            if msg is not None and msg.chat.type != "private":
                return []
            chat_id = msg.chat.id if msg is not None else cq.from_user.id
            text = self._resolve_callback_data(cq.data, msg if isinstance(msg, Message) else None)
            if text is None:
                log.warning("telegram_callback_unresolved", callback_id=cq.id)
                return []
            return [
                ParsedInbound(
                    contact_source_id=str(chat_id),
                    text=text,
                    # A callback query carries no date; it is delivered as it happens.
                    received_at=utcnow(),
                    source_id=f"cb:{cq.id}",
                    contact_name=_full_name(cq.from_user),
                )
            ]
        return []

    def _parse_message(self, m: Message) -> list[ParsedInbound]:
        if m.chat.type != "private":
            return []
        if m.from_user is not None and m.from_user.is_bot:
            return []
        phone: str | None = None
        if m.contact is not None:
            text = _normalize_phone(m.contact.phone_number)
            if m.from_user is not None and m.contact.user_id == m.from_user.id:
                phone = text
        else:
            text = (m.text or m.caption or "").strip()
        if not text:
            return []
        received_at = m.date if isinstance(m.date, datetime) else datetime.fromtimestamp(int(m.date), UTC)
        if received_at.tzinfo is None:
            received_at = received_at.replace(tzinfo=UTC)
        return [
            ParsedInbound(
                contact_source_id=str(m.chat.id),
                text=text,
                received_at=received_at.astimezone(UTC),
                source_id=f"{m.chat.id}:{m.message_id}",
                contact_name=_full_name(m.from_user),
                phone=phone,
            )
        ]

    @staticmethod
    def _resolve_callback_data(data: str, message: Message | None) -> str | None:
        if not data.startswith(HASHED_CALLBACK_PREFIX):
            return data
        markup = message.reply_markup if message is not None else None
        if isinstance(markup, InlineKeyboardMarkup):
            for row in markup.inline_keyboard:
                for button in row:
                    if button.callback_data == data:
                        return button.text
        return None

    # -- outbound --------------------------------------------------------------------------------

    async def send_text(self, *, to: str, text: str) -> str | None:
        """Send ``text`` with ``sendMessage`` (https://core.telegram.org/bots/api#sendmessage), split
        into several messages beyond 4096 characters. Returns the last message's ``message_id``.
        Raises ``ValueError`` for empty text and aiogram's ``TelegramAPIError`` subclasses when
        Telegram refuses (after retries for 429/5xx/connection failures)."""
        return await self._send_text(to=to, text=text, markup=None)

    async def send(self, *, to: str, message: OutboundMessage) -> str | None:
        """Send a reply natively: buttons as an inline keyboard (one per row), the link appended to
        the text, the image with ``sendPhoto`` (https://core.telegram.org/bots/api#sendphoto) and the
        text as its caption. A text over the 1024-character caption limit goes in a separate message
        after the photo; an image Telegram cannot fetch (400) is sent as a link instead. Returns the
        ``message_id`` of the last message sent (the one carrying the keyboard)."""
        text = message.text.strip()
        if message.url and message.url not in text:
            text = f"{text}\n{message.url}" if text else message.url
        markup = self.keyboard(message.buttons) if message.buttons else None
        if message.image_url:
            caption_fits = len(text) <= MAX_CAPTION
            try:
                sent = await self._call(
                    SendPhoto(chat_id=_chat_id(to), photo=message.image_url,
                              caption=(text or None) if caption_fits else None,
                              reply_markup=markup if caption_fits else None),
                    idempotent=False,
                )
            except TelegramBadRequest as exc:
                log.warning("telegram_photo_refused", error=str(exc))
                if message.image_url not in text:
                    text = f"{text}\n{message.image_url}" if text else message.image_url
            else:
                if caption_fits:
                    return str(sent.message_id)
        return await self._send_text(to=to, text=text, markup=markup)

    @staticmethod
    def keyboard(buttons: Sequence[Button]) -> InlineKeyboardMarkup:
        """An inline keyboard (https://core.telegram.org/bots/api#inlinekeyboardmarkup), one button per
        row, ``callback_data`` from ``callback_data_for(payload or title)``; titles are cut to 64
        characters to stay readable on phones."""
        rows = [
            [InlineKeyboardButton(text=(b.title or b.payload)[:64],
                                  callback_data=callback_data_for(b.payload or b.title))]
            for b in buttons
        ]
        return InlineKeyboardMarkup(inline_keyboard=rows)

    async def _send_text(self, *, to: str, text: str, markup: InlineKeyboardMarkup | None) -> str:
        if not text.strip():
            raise ValueError("cannot send an empty Telegram message")
        chat_id = _chat_id(to)
        pieces = split_text(text)
        last: Message | None = None
        for i, piece in enumerate(pieces):
            last = await self._call(
                SendMessage(chat_id=chat_id, text=piece, reply_markup=markup if i == len(pieces) - 1 else None),
                idempotent=False,
            )
        assert last is not None
        return str(last.message_id)

    async def typing(self, *, to: str) -> None:
        """``sendChatAction`` with ``typing`` (https://core.telegram.org/bots/api#sendchataction): shown
        for up to 5 s or until our next message arrives."""
        await self._call(SendChatAction(chat_id=to, action="typing"), idempotent=True)

    async def acknowledge(self, request: RawRequest) -> None:
        """Answer the callback query of a button press once the update is stored (Telegram shows a
        loading indicator until then: https://core.telegram.org/bots/api#answercallbackquery)."""
        try:
            data = json.loads(request.body or b"")
        except (json.JSONDecodeError, UnicodeDecodeError):
            return
        callback = data.get("callback_query") if isinstance(data, dict) else None
        if isinstance(callback, dict) and callback.get("id"):
            await self.answer_callback_query(str(callback["id"]))

    async def answer_callback_query(self, callback_query_id: str, *, text: str | None = None) -> None:
        """Stop the button's loading indicator (https://core.telegram.org/bots/api#answercallbackquery);
        Telegram expects an answer to every callback query. Best effort: failures are logged."""
        try:
            await self._call(AnswerCallbackQuery(callback_query_id=callback_query_id, text=text), idempotent=True)
        except Exception as exc:  # noqa: BLE001 - only a UI nicety
            log.warning("telegram_answer_callback_failed", error=str(exc))

    # -- webhook lifecycle -----------------------------------------------------------------------

    async def connect(self, *, webhook_url: str) -> dict[str, Any]:
        """Register ``webhook_url`` with ``setWebhook`` (https://core.telegram.org/bots/api#setwebhook)
        with the inbox's ``secret_token`` and ``allowed_updates`` ``["message", "callback_query"]``.

        The URL must route by inbox id and must not contain the bot token (``ValueError``); the secret
        must be 1-256 characters of ``A-Z a-z 0-9 _ -`` (``ValueError``). Telegram requires HTTPS on
        port 443, 80, 88 or 8443 and answers 400 otherwise. Returns ``{"webhook_url", "bot_id",
        "bot_username"}``.
        """
        secret = self.webhook_secret
        if not secret or not _SECRET_RE.match(secret):
            raise ValueError("telegram webhook_secret must be 1-256 characters of A-Z, a-z, 0-9, '_' and '-'")
        token = self.bot_token
        if token in webhook_url or token.split(":", 1)[-1] in webhook_url:
            raise ValueError("the webhook URL must not contain the bot token; route by inbox id")
        await self._call(
            SetWebhook(url=webhook_url, secret_token=secret, allowed_updates=list(ALLOWED_UPDATES)),
            idempotent=True,
        )
        me = await self._call(GetMe(), idempotent=True)
        return {"webhook_url": webhook_url, "bot_id": me.id, "bot_username": me.username}

    async def disconnect(self) -> None:
        """Remove the webhook with ``deleteWebhook`` (https://core.telegram.org/bots/api#deletewebhook);
        pending updates are kept (``drop_pending_updates`` false) so ``poll`` can still read them."""
        await self._call(DeleteWebhook(drop_pending_updates=False), idempotent=True)

    async def status(self) -> dict[str, Any]:
        """Bot and webhook health from ``getMe`` and ``getWebhookInfo``
        (https://core.telegram.org/bots/api#getwebhookinfo): ``{"status": "WORKING" | "NOT_CONNECTED"
        | "FAILED", "bot_username", "webhook_url", "pending_update_count", "last_error_message",
        "last_error_date"}``. A token Telegram rejects (401) gives ``{"status": "FAILED", "error"}``."""
        try:
            me = await self._call(GetMe(), idempotent=True)
            info = await self._call(GetWebhookInfo(), idempotent=True)
        except TelegramUnauthorizedError:
            return {"status": "FAILED", "error": "Telegram rejected the bot token (401 Unauthorized)"}
        last_error_date = info.last_error_date
        if isinstance(last_error_date, datetime):
            last_error_date = last_error_date.astimezone(UTC).isoformat()
        return {
            "status": "WORKING" if info.url else "NOT_CONNECTED",
            "bot_id": me.id,
            "bot_username": me.username,
            "webhook_url": info.url or None,
            "pending_update_count": info.pending_update_count,
            "last_error_message": info.last_error_message,
            "last_error_date": last_error_date,
        }

    # -- long polling (development) --------------------------------------------------------------

    async def poll(
        self,
        handler: Callable[[ParsedInbound], Awaitable[object]],
        *,
        stop_event: asyncio.Event,
        timeout: int = 25,
        limit: int = 100,
    ) -> None:
        """Read updates with ``getUpdates`` long polling (https://core.telegram.org/bots/api#getupdates)
        until ``stop_event`` is set, calling ``handler`` for every parsed customer message in order.

        An update is confirmed (the next request's ``offset`` is ``update_id + 1``) only after its
        messages were handled, so an exception from ``handler`` propagates and the update is delivered
        again on the next run (the pipeline drops duplicates by ``source_id``); after ``stop_event``
        the handled updates are confirmed with a last short request. Callback queries are answered.
        ``getUpdates`` does not work while a webhook is set: call ``disconnect`` first
        (``RuntimeError`` otherwise). Transient failures are retried after a pause.
        """
        offset = self._poll_offset
        pause = self._retry_wait or 0.1
        while not stop_event.is_set():
            method = GetUpdates(offset=offset, timeout=timeout, limit=limit, allowed_updates=list(ALLOWED_UPDATES))
            fetch = asyncio.ensure_future(self._call(method, idempotent=True, request_timeout=timeout + 10))
            stopped = asyncio.ensure_future(stop_event.wait())
            try:
                done, _ = await asyncio.wait({fetch, stopped}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stopped.cancel()
            if fetch not in done:
                fetch.cancel()
                await asyncio.gather(fetch, return_exceptions=True)
                break
            try:
                updates = fetch.result()
            except TelegramConflictError as exc:
                raise RuntimeError(
                    "getUpdates conflicts with a webhook or another poller; call disconnect() first"
                ) from exc
            except (TelegramNetworkError, TelegramServerError, TelegramRetryAfter) as exc:
                log.warning("telegram_poll_failed", error=str(exc))
                await _sleep_unless(stop_event, pause)
                pause = min(pause * 2, max(self._retry_max_wait, 1.0))
                continue
            pause = self._retry_wait or 0.1
            for update in updates:
                for parsed in self.parse_update(update):
                    await handler(parsed)
                if update.callback_query is not None:
                    await self.answer_callback_query(update.callback_query.id)
                offset = self._poll_offset = update.update_id + 1
        if offset is not None:
            # Confirm what was handled so the next run does not receive it again (an offset confirms
            # every update with a lower id; the update returned here, if any, stays unconfirmed).
            try:
                await self._call(GetUpdates(offset=offset, timeout=0, limit=1), idempotent=True)
            except Exception as exc:  # noqa: BLE001 - redelivery is harmless (duplicates are dropped)
                log.warning("telegram_poll_confirm_failed", error=str(exc))

    # -- plumbing --------------------------------------------------------------------------------

    async def _call(self, method: TelegramMethod[T], *, idempotent: bool, request_timeout: int | None = None) -> T:
        """Call a Bot API method with bounded retries (see ``_retryable``)."""
        bot = self.bot
        retrying = AsyncRetrying(
            stop=stop_after_attempt(self._retry_attempts),
            wait=self._wait,
            retry=retry_if_exception(lambda exc: _retryable(exc, idempotent=idempotent)),
            reraise=True,
        )
        return await retrying(bot, method, request_timeout=request_timeout)

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        if isinstance(exc, TelegramRetryAfter):
            # https://core.telegram.org/bots/api#responseparameters: retry_after is the number of
            # seconds left to wait before the request can be repeated.
            return min(float(exc.retry_after), self._retry_max_wait)
        return min(self._retry_wait * (2 ** (state.attempt_number - 1)), self._retry_max_wait)

    async def aclose(self) -> None:
        """Close the HTTP session unless it was shared through ``session=``. Safe to call twice."""
        if self._bot is not None and self._shared_session is None:
            await self._bot.session.close()
        self._bot = None


def _retryable(exc: BaseException, *, idempotent: bool) -> bool:
    """Which failures are worth another attempt.

    * 429 flood control (``TelegramRetryAfter``) and 5xx (``TelegramServerError``) — Telegram did not
      perform the request (https://core.telegram.org/bots/api#making-requests: ``ok`` false).
    * connection failures: always when the connection could not be opened (nothing was sent); other
      network errors (timeouts, dropped connections) only for idempotent methods, because a
      ``sendMessage`` that timed out may have been delivered and must not be repeated.
    * never any other 4xx (bad request, blocked by the user, unauthorized).
    """
    if isinstance(exc, TelegramRetryAfter | TelegramServerError):
        return True
    if isinstance(exc, TelegramNetworkError):
        return idempotent or isinstance(exc.__cause__, aiohttp.ClientConnectorError)
    return False


async def _sleep_unless(stop_event: asyncio.Event, seconds: float) -> None:
    try:
        await asyncio.wait_for(stop_event.wait(), timeout=seconds)
    except TimeoutError:
        return
