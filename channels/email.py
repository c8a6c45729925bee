"""E-mail: customers write to the business's mailbox; mail is pulled over IMAP, replies go out by SMTP.

Inbound (IMAP, RFC 3501, via ``aioimaplib``): only ``UNSEEN`` (and not ``\\Deleted``) mail of the
configured folder is read, with ``BODY.PEEK[]`` so reading does not set ``\\Seen``.

* ``fetch_unseen()`` returns ``InboundMail`` items (``ParsedInbound`` plus the IMAP ``uid`` and the
  threading ``envelope``), oldest first, at most ``batch_size`` per call.
* **Contract:** the caller stores each message (``Pipeline.receive``) and only then calls
  ``mark_seen([mail.uid, ...])``. A crash in between leaves the mail unseen, so it is fetched again
  and dropped as a duplicate by its ``source_id`` (the ``Message-ID``); nothing is lost.
* Mail no program should answer (RFC 3834: ``Auto-Submitted``, bounces, mailing lists, no-reply
  senders) and mail from our own ``from_address`` is never returned: it is marked seen at once
  (it stays in the mailbox for the owner). Unparseable mail (no ``From`` address) likewise.
* ``watch(handler, stop_event=...)`` runs the loop: fetch, ``await handler(mail)``, mark that mail
  seen, then wait with IMAP IDLE (RFC 2177) when the server advertises it, re-issued every
  ``idle_timeout`` seconds (< 29 minutes, RFC 2177 §3), or poll every ``poll_interval`` seconds
  otherwise. A handler that raises leaves its mail unseen (tried again on the next wake-up).

Outbound (SMTP, via ``aiosmtplib``): ``send_text`` sends one UTF-8 ``text/plain`` message with
``From`` (with ``from_name``), ``To``, ``Subject``, ``Date``, a new ``Message-ID``
(``make_msgid(domain=<from domain>)``, returned as the provider id) and ``Auto-Submitted:
auto-replied`` (RFC 3834 §5, so other robots do not answer us). **Threading choice:** the adapter
keeps no per-instance cache (the pipeline builds a fresh adapter per delivery). The caller passes
``reply_to=EmailEnvelope(...)`` — the envelope of the last inbound mail of the conversation
(``InboundMail.envelope``, storable with ``as_dict()``/``from_dict()``) — and the reply then carries
``In-Reply-To: <that Message-ID>``, ``References: <its References> <that Message-ID>`` (RFC 5322
§3.6.4) and ``Subject: Re: <subject>`` (never "Re: Re:"). Without it a new thread starts with the
``default_subject`` setting. Connection errors and transient replies (421, 450, 451, 452) are
retried with ``tenacity`` (``smtp_attempts`` attempts in all, default 3; ``smtp_retry_wait`` seconds,
doubled each time); permanent (5xx) replies are raised at once. The message (and its Message-ID)
is built once, so a retried send is the same message.

Credentials: ``{"imap_password", "smtp_password"}`` (SMTP AUTH only when ``smtp_password`` is set).
Settings: ``imap_host``, ``imap_port`` (993 with ``imap_ssl``, else 143), ``imap_user``, ``imap_ssl``
(default true), ``folder`` ("INBOX"), ``smtp_host``, ``smtp_port`` (465 with ``smtp_ssl``, else 587),
``smtp_user`` (defaults to ``imap_user``), ``smtp_ssl`` (implicit
TLS), ``smtp_starttls`` (true: require STARTTLS, false: never, absent: when offered),
``from_address``, ``from_name``, ``default_subject``; tuning: ``timeout`` (30 s), ``batch_size`` (50),
``imap_idle`` (true), ``poll_interval`` (60 s), ``idle_timeout`` (1500 s), ``reconnect_delay`` (10 s),
``smtp_attempts`` (3), ``smtp_retry_wait`` (2 s).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import re
import ssl
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import format_datetime, make_msgid
from typing import Any, ClassVar

import aioimaplib
import aiosmtplib
import structlog
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_exponential

from bot.messages import OutboundMessage
from channels.base import Channel, ParsedInbound, RawRequest
from channels.email_text import EmailEnvelope, ParsedMail, parse_mail, thread_key
from core.timeutil import utcnow

__all__ = ["EmailChannel", "EmailEnvelope", "EmailError", "InboundMail", "TRANSIENT_SMTP_CODES",
           "is_transient_smtp_error", "thread_key"]

log = structlog.get_logger(__name__)

TRANSIENT_SMTP_CODES = frozenset({421, 450, 451, 452})
"""SMTP replies worth retrying (RFC 5321 §4.2.5: 4yz is a transient failure)."""

_CLOCK_SKEW = timedelta(minutes=5)
_MONTHS = {m: i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), start=1)}
_INTERNALDATE = re.compile(rb'INTERNALDATE "\s*(\d{1,2})-(\w{3})-(\d{4}) (\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)"')


class EmailError(Exception):
    """The mailbox cannot be used: missing settings, login refused, folder missing, IMAP failure."""


@dataclass(frozen=True, slots=True)
class InboundMail(ParsedInbound):
    """A ``ParsedInbound`` read from e-mail: ``contact_source_id``/``email`` are the sender's
    lower-cased address, ``source_id`` its ``Message-ID`` (``"sha256:<hex>"`` of the raw message when
    it has none), ``contact_name`` the ``From`` display name. ``uid`` is the IMAP UID to pass to
    ``mark_seen`` (``None`` for ``parse``); ``envelope`` holds the threading headers for the reply."""

    uid: int | None = None
    envelope: EmailEnvelope | None = None


MailHandler = Callable[[InboundMail], Awaitable[Any]]


def is_transient_smtp_error(exc: BaseException) -> bool:
    """True for SMTP failures worth retrying: a reply code in ``TRANSIENT_SMTP_CODES`` (every refused
    recipient's, for ``SMTPRecipientsRefused``), a lost/refused connection or a timeout. TLS
    certificate errors and 5xx replies are permanent."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return bool(exc.recipients) and all(r.code in TRANSIENT_SMTP_CODES for r in exc.recipients)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return exc.code in TRANSIENT_SMTP_CODES
    if isinstance(exc, ssl.SSLError):
        return False
    return isinstance(exc, aiosmtplib.SMTPServerDisconnected | aiosmtplib.SMTPConnectError
                      | aiosmtplib.SMTPTimeoutError | ConnectionError | TimeoutError | OSError)


def imap_mailbox(name: str) -> str:
    """A folder name as an IMAP astring: modified UTF-7 (RFC 3501 §5.1.3), double-quoted."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            encoded = base64.b64encode("".join(pending).encode("utf-16-be")).decode("ascii")
            out.append("&" + encoded.rstrip("=").replace("/", ",") + "-")
            pending.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            pending.append(ch)
    flush()
    quoted = "".join(out).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{quoted}"'


def _internaldate(meta: bytes) -> datetime | None:
    m = _INTERNALDATE.search(meta)
    if not m or m.group(2).decode().title() not in _MONTHS:
        return None
    day, mon, year, hh, mm, ss, sign, oh, om = m.groups()
    offset = timedelta(hours=int(oh), minutes=int(om)) * (-1 if sign == b"-" else 1)
    try:
        local = datetime(int(year), _MONTHS[mon.decode().title()], int(day), int(hh), int(mm), int(ss),
                         tzinfo=timezone(offset))
    except ValueError:
        return None
    return local.astimezone(UTC)


def _fetched(lines: Iterable[bytes | bytearray]) -> list[tuple[int, datetime | None, bytes]]:
    """``(uid, internaldate, raw message)`` of each message in a ``UID FETCH`` response.

    aioimaplib gives the text of each ``* n FETCH (...`` line as ``bytes`` and the message literal as
    ``bytearray``; items may come in any order around the literal."""
    groups: list[list[Any]] = []
    for line in lines:
        if isinstance(line, bytearray):
            if groups and groups[-1][1] is None:
                groups[-1][1] = bytes(line)
            continue
        if re.match(rb"^\d+ FETCH ", line):
            groups.append([line, None])
        elif groups:
            groups[-1][0] += b" " + line
    out = []
    for meta, raw in groups:
        uid = re.search(rb"\bUID (\d+)", meta)
        if uid and raw is not None:
            out.append((int(uid.group(1)), _internaldate(meta), raw))
    return out


def _search_uids(lines: Iterable[bytes | bytearray]) -> list[int]:
    uids: list[int] = []
    for line in lines:
        tokens = bytes(line).split()
        if tokens and tokens[0].upper() == b"SEARCH":
            tokens = tokens[1:]
        if tokens and all(t.isdigit() for t in tokens):
            uids.extend(int(t) for t in tokens)
    return sorted(set(uids))


def _as_bool(value: Any, default: bool) -> bool:
    if value is None or value == "":
        return default
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


async def _wait(stop_event: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop_event.wait(), timeout=max(0.0, seconds))


class EmailChannel(Channel):
    """The ``email`` channel (see the module docstring for settings and contracts).

    Holds one lazily opened IMAP session for ``fetch_unseen``/``mark_seen`` (closed by ``aclose``);
    ``watch`` opens its own. Settings are read when used, so a misconfigured inbox fails on use
    with ``EmailError``, not on construction.
    """

    kind: ClassVar[str] = "email"
    supports_buttons: ClassVar[bool] = False
    # Mail has no length limit of its own: 20,000 characters of the customer's words (after quoted
    # history and signature are cut) is far more than any order or question needs.
    max_inbound_text: ClassVar[int] = 20_000

    def __init__(self, *, credentials: Mapping[str, Any] | None = None,
                 settings: Mapping[str, Any] | None = None) -> None:
        super().__init__(credentials=credentials, settings=settings)
        self._imap: aioimaplib.IMAP4 | None = None
        self._uidvalidity: int | None = None
        self._fetch_uidvalidity: int | None = None
        self._lock = asyncio.Lock()
        self._idling = False
        self._saw_exists = False

    # ------------------------------------------------------------------------------------ settings

    def _require(self, name: str) -> str:
        value = self.settings.get(name)
        if value is None or str(value).strip() == "":
            raise EmailError(f"email inbox setting {name!r} is required")
        return str(value).strip()

    def _float(self, name: str, default: float) -> float:
        value = self.settings.get(name)
        return default if value is None or value == "" else float(value)

    def _int(self, name: str, default: int) -> int:
        value = self.settings.get(name)
        return default if value is None or value == "" else int(value)

    @property
    def from_address(self) -> str:
        """The business's address (``from_address`` setting, lower-cased)."""
        return self._require("from_address").lower()

    @property
    def idling(self) -> bool:
        """True while ``watch`` waits in IMAP IDLE."""
        return self._idling

    # -------------------------------------------------------------------------------- the interface

    async def verify(self, request: RawRequest) -> None:
        """Mail is pulled with the inbox's own IMAP credentials; there is no delivery to verify."""

    def parse(self, request: RawRequest) -> list[ParsedInbound]:
        """Parse one raw RFC 5322 message (``request.body``) as ``fetch_unseen`` does; ``[]`` for
        automatic mail (RFC 3834) and our own. Raises ``ValueError`` when it has no sender."""
        mail = self._inbound(request.body, uid=None, internaldate=None)
        return [mail] if mail is not None else []

    async def send_text(self, *, to: str, text: str, reply_to: EmailEnvelope | None = None,
                        subject: str | None = None) -> str | None:
        """Send ``text`` to address ``to``; a reply to ``reply_to`` when given (threading headers and
        "Re:" subject), else a new thread with ``subject`` or the ``default_subject`` setting.
        Returns the sent ``Message-ID``. Raises ``ValueError`` for a bad address, ``EmailError`` for
        missing settings and the ``aiosmtplib`` error when sending fails (after retries)."""
        message = self.build_message(to=to, text=text, reply_to=reply_to, subject=subject)
        await self._smtp_send(message)
        return str(message["Message-ID"])

    @classmethod
    def reply_context(cls, parsed: ParsedInbound) -> dict[str, Any]:
        """The threading headers of an inbound mail (``EmailEnvelope.as_dict()``), so the reply sets
        ``In-Reply-To``/``References`` and quotes the subject (RFC 5322 section 3.6.4)."""
        envelope = getattr(parsed, "envelope", None)
        return {"envelope": envelope.as_dict()} if envelope is not None else {}

    async def send_reply(self, *, to: str, message: OutboundMessage, context: Mapping[str, Any]) -> str | None:
        """Reply in the thread of the contact's latest mail (``context`` from :meth:`reply_context`)."""
        raw = context.get("envelope")
        envelope = EmailEnvelope.from_dict(raw) if isinstance(raw, Mapping) else None
        return await self.send(to=to, message=message, reply_to=envelope)

    async def send(self, *, to: str, message: OutboundMessage, reply_to: EmailEnvelope | None = None,
                   subject: str | None = None) -> str | None:
        """Plain-text fallback (choices as a numbered list, the link) plus the image URL on its own line."""
        text = message.as_text()
        if message.image_url and message.image_url not in text:
            text = f"{text}\n{message.image_url}"
        return await self.send_text(to=to, text=text, reply_to=reply_to, subject=subject)

    async def status(self) -> dict[str, Any]:
        """Log in to IMAP (and count unseen mail) and to SMTP (EHLO, AUTH when configured; nothing is
        sent): ``{"status": "ok"|"error", "imap": ..., "smtp": ..., "unseen": n, "idle": bool}``."""
        result: dict[str, Any] = {}
        client = None
        try:
            client = await self._connect()
            result["idle"] = client.has_capability("IDLE")
            result["unseen"] = len(await self._search_unseen(client))
            result["imap"] = "ok"
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            result["imap"] = f"error: {exc}"
        finally:
            await self._drop(client)
        try:
            smtp = aiosmtplib.SMTP(**self._smtp_options())
            async with smtp:
                await smtp.noop()
            result["smtp"] = "ok"
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            result["smtp"] = f"error: {exc}"
        result["status"] = "ok" if result["imap"] == "ok" and result["smtp"] == "ok" else "error"
        return result

    async def aclose(self) -> None:
        """Log out of the IMAP session held for ``fetch_unseen``/``mark_seen``."""
        client, self._imap = self._imap, None
        await self._drop(client)

    # ------------------------------------------------------------------------------------ inbound

    async def fetch_unseen(self) -> list[InboundMail]:
        """The folder's unseen mail, oldest first (at most ``batch_size``), parsed; does not mark it
        seen — the caller calls ``mark_seen`` with the uids of the mail it has stored. Automatic,
        own and unparseable mail is marked seen here and not returned. Raises ``EmailError``."""
        async with self._lock:
            return await self._with_session(self._fetch_on)

    async def mark_seen(self, uids: Iterable[int | None]) -> None:
        """Set ``\\Seen`` on the given IMAP uids (``None`` entries are ignored). Call it only after the
        messages are stored. When the folder's UIDVALIDITY changed since the fetch the uids mean
        nothing any more: nothing is marked (the mail comes again and is dropped as a duplicate)."""
        wanted = sorted({u for u in uids if u is not None})
        if not wanted:
            return

        async def mark(client: aioimaplib.IMAP4) -> None:
            if self._fetch_uidvalidity is not None and self._uidvalidity != self._fetch_uidvalidity:
                log.warning("email_uidvalidity_changed", folder=self._folder())
                return
            await self._store_seen(client, wanted)

        async with self._lock:
            await self._with_session(mark)

    async def watch(self, handler: MailHandler, *, stop_event: asyncio.Event, poll_interval: float | None = None,
                    idle_timeout: float | None = None, reconnect_delay: float | None = None) -> None:
        """Deliver new mail to ``handler`` until ``stop_event`` is set.

        Each cycle fetches unseen mail (as ``fetch_unseen``), awaits ``handler(mail)`` for each and
        marks it seen once the handler returned (a handler that raises leaves it unseen). Then it
        waits: with IDLE (RFC 2177) when the server lists it in CAPABILITY and ``imap_idle`` is on,
        ending IDLE on ``EXISTS``/``RECENT`` or after ``idle_timeout``; else sleeps ``poll_interval``.
        Connection failures are logged and retried after ``reconnect_delay``. Returns when stopped.
        """
        poll = poll_interval if poll_interval is not None else self._float("poll_interval", 60.0)
        idle_for = idle_timeout if idle_timeout is not None else self._float("idle_timeout", 1500.0)
        retry_after = reconnect_delay if reconnect_delay is not None else self._float("reconnect_delay", 10.0)
        while not stop_event.is_set():
            client = None
            try:
                client = await self._connect()
                use_idle = _as_bool(self.settings.get("imap_idle"), True) and client.has_capability("IDLE")
                log.info("email_watch_connected", folder=self._folder(), idle=use_idle)
                while not stop_event.is_set():
                    mails, more = await self._fetch_batch(client)
                    for mail in mails:
                        if stop_event.is_set():
                            break
                        try:
                            await handler(mail)
                        except Exception as exc:  # noqa: BLE001 - the mail stays unseen and comes again
                            log.warning("email_handler_failed", uid=mail.uid, source_id=mail.source_id,
                                        error=repr(exc))
                            continue
                        await self._store_seen(client, [mail.uid])
                    if stop_event.is_set():
                        break
                    if more or self._saw_exists:
                        continue
                    if use_idle:
                        await self._idle(client, stop_event, idle_for)
                    else:
                        await _wait(stop_event, poll)
            except (EmailError, OSError, TimeoutError, aioimaplib.AioImapException) as exc:
                log.warning("email_watch_failed", folder=self._folder(), error=repr(exc))
            finally:
                self._idling = False
                await self._drop(client)
            if not stop_event.is_set():
                await _wait(stop_event, retry_after)

    # ------------------------------------------------------------------------------------ IMAP

    def _folder(self) -> str:
        return str(self.settings.get("folder") or "INBOX")

    @property
    def _timeout(self) -> float:
        return self._float("timeout", 30.0)

    async def _connect(self) -> aioimaplib.IMAP4:
        """Connect, log in and SELECT the folder (RFC 3501 §6.2.3, §6.3.1)."""
        host = self._require("imap_host")
        use_ssl = _as_bool(self.settings.get("imap_ssl"), True)
        port = self._int("imap_port", 993 if use_ssl else 143)
        user = self._require("imap_user")
        password = str(self.credentials.get("imap_password") or "")
        if not password:
            raise EmailError("email inbox credential 'imap_password' is required")
        if use_ssl:
            client: aioimaplib.IMAP4 = aioimaplib.IMAP4_SSL(host=host, port=port, timeout=self._timeout,
                                                            ssl_context=ssl.create_default_context())
        else:
            client = aioimaplib.IMAP4(host=host, port=port, timeout=self._timeout)
        self._hear_new_mail(client)
        try:
            await client.wait_hello_from_server()
            response = await client.login(user, password)
            if response.result != "OK":
                raise EmailError(f"IMAP login refused for {user!r} at {host}:{port}")
            folder = self._folder()
            response = await client.select(imap_mailbox(folder))
            if response.result != "OK":
                raise EmailError(f"cannot select IMAP folder {folder!r}: {_text(response.lines)}")
        except BaseException:
            await self._drop(client)
            raise
        match = re.search(rb"UIDVALIDITY (\d+)", b" ".join(bytes(x) for x in response.lines))
        self._uidvalidity = int(match.group(1)) if match else None
        return client

    async def _drop(self, client: aioimaplib.IMAP4 | None) -> None:
        if client is None:
            return
        protocol = client.protocol
        transport = getattr(protocol, "transport", None)
        try:
            if transport is not None and not transport.is_closing() and protocol.state in ("AUTH", "SELECTED"):
                await asyncio.wait_for(client.logout(), timeout=min(self._timeout, 5.0))
        except Exception:  # noqa: BLE001 - closing anyway
            pass
        finally:
            if transport is not None:
                transport.close()

    @staticmethod
    def _alive(client: aioimaplib.IMAP4 | None) -> bool:
        if client is None:
            return False
        transport = getattr(client.protocol, "transport", None)
        return transport is not None and not transport.is_closing() and client.get_state() == "SELECTED"

    async def _with_session(self, fn: Callable[[aioimaplib.IMAP4], Awaitable[Any]]) -> Any:
        """Run ``fn`` on the held session, reconnecting once when a reused session turns out dead."""
        reused = self._alive(self._imap)
        if not reused:
            await self._drop(self._imap)
            self._imap = await self._connect_as_email_error()
        assert self._imap is not None
        try:
            return await fn(self._imap)
        except (OSError, TimeoutError, aioimaplib.AioImapException) as exc:
            await self._drop(self._imap)
            self._imap = None
            if not reused:
                raise EmailError(f"IMAP failure: {exc!r}") from exc
        self._imap = await self._connect_as_email_error()
        try:
            return await fn(self._imap)
        except (OSError, TimeoutError, aioimaplib.AioImapException) as exc:
            await self._drop(self._imap)
            self._imap = None
            raise EmailError(f"IMAP failure: {exc!r}") from exc

    async def _connect_as_email_error(self) -> aioimaplib.IMAP4:
        try:
            return await self._connect()
        except (OSError, TimeoutError, aioimaplib.AioImapException) as exc:
            raise EmailError(f"cannot reach IMAP server: {exc!r}") from exc

    def _hear_new_mail(self, client: aioimaplib.IMAP4) -> None:
        """Note every ``* n EXISTS``/``* n RECENT`` the server sends, whatever command it answers.

        A server announces new mail once, with the response to whichever command comes next
        (RFC 3501 §7.3.1, §7.4) — often the ``UID STORE`` that marks the previous mail seen, or the
        ``FETCH`` — and aioimaplib passes such untagged lines only to a pending IDLE or NOOP and drops
        them otherwise. Without this, mail that arrived while the handler was busy would wait in the
        folder until the next IDLE wake-up (``idle_timeout``, 25 minutes by default)."""
        protocol = client.protocol
        untagged = getattr(protocol, "_untagged_response", None)
        if untagged is None:  # another aioimaplib: fall back to the lines commands return
            return

        def hear(line: bytes) -> Any:
            if re.match(rb"^\* \d+ (EXISTS|RECENT)\b", line):
                self._saw_exists = True
            return untagged(line)

        protocol._untagged_response = hear  # type: ignore[method-assign]

    def _note_exists(self, lines: Iterable[bytes | bytearray]) -> None:
        if any(isinstance(x, bytes) and re.match(rb"^\d+ (EXISTS|RECENT)\b", x) for x in lines):
            self._saw_exists = True

    async def _search_unseen(self, client: aioimaplib.IMAP4) -> list[int]:
        # NOOP first: a held session learns of mail delivered since its last command (RFC 3501 §6.1.2).
        await client.noop()
        response = await client.uid_search("UNSEEN", "UNDELETED", charset=None)
        if response.result != "OK":
            raise EmailError(f"IMAP SEARCH failed: {_text(response.lines)}")
        return _search_uids(response.lines[:-1])

    async def _fetch_on(self, client: aioimaplib.IMAP4) -> list[InboundMail]:
        mails, _more = await self._fetch_batch(client)
        return mails

    async def _fetch_batch(self, client: aioimaplib.IMAP4) -> tuple[list[InboundMail], bool]:
        """Unseen mail of the selected folder, parsed, and whether more than one batch is waiting."""
        self._saw_exists = False
        uids = await self._search_unseen(client)
        batch = max(1, self._int("batch_size", 50))
        more = len(uids) > batch
        uids = uids[:batch]
        self._fetch_uidvalidity = self._uidvalidity
        if not uids:
            return [], False
        response = await client.uid("fetch", ",".join(map(str, uids)), "(UID INTERNALDATE BODY.PEEK[])")
        if response.result != "OK":
            raise EmailError(f"IMAP FETCH failed: {_text(response.lines)}")
        self._note_exists(response.lines)
        # MIME decoding, HTML conversion and quote stripping of up to a batch of (possibly large) mails
        # run in a worker thread, not on the event loop other tenants share.
        mails, skipped = await asyncio.to_thread(self._parse_fetched, _fetched(response.lines))
        if skipped:
            await self._store_seen(client, skipped)
        mails.sort(key=lambda m: m.uid or 0)
        return mails, more

    async def _store_seen(self, client: aioimaplib.IMAP4, uids: list[int | None]) -> None:
        """``UID STORE <uids> +FLAGS.SILENT (\\Seen)`` (RFC 3501 §6.4.6, §6.4.8)."""
        wanted = [str(u) for u in uids if u is not None]
        if not wanted:
            return
        response = await client.uid("store", ",".join(wanted), "+FLAGS.SILENT", r"(\Seen)")
        if response.result != "OK":
            raise EmailError(f"IMAP STORE failed: {_text(response.lines)}")
        self._note_exists(response.lines)

    async def _idle(self, client: aioimaplib.IMAP4, stop_event: asyncio.Event, timeout: float) -> None:
        """Wait in IDLE (RFC 2177) until new mail (``EXISTS``/``RECENT``), ``timeout`` or stop; then DONE."""
        idle_task = await client.idle_start(timeout=timeout)
        self._idling = True
        stop_wait = asyncio.ensure_future(stop_event.wait())
        try:
            while True:
                push = asyncio.ensure_future(client.wait_server_push(timeout=timeout + self._timeout))
                done, _ = await asyncio.wait({push, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
                if push not in done:
                    push.cancel()
                    break
                lines = push.result()
                if lines == aioimaplib.STOP_WAIT_SERVER_PUSH:
                    break  # re-issue IDLE before the server's inactivity timeout (RFC 2177 §3)
                if any(re.match(rb"^\d+ (EXISTS|RECENT)\b", bytes(x)) for x in lines):
                    break
                # keep-alives ("OK Still here") and flag updates: go on waiting
        finally:
            self._idling = False
            stop_wait.cancel()
            if client.has_pending_idle():
                client.idle_done()
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(idle_task, timeout=self._timeout)

    def _parse_fetched(
        self, fetched: list[tuple[int, datetime | None, bytes]]
    ) -> tuple[list[InboundMail], list[int]]:
        """Parse fetched mails: (the ones to answer, the uids to mark seen unanswered)."""
        mails: list[InboundMail] = []
        skipped: list[int] = []
        for uid, internaldate, raw in fetched:
            try:
                mail = self._inbound(raw, uid=uid, internaldate=internaldate)
            except ValueError as exc:
                log.warning("email_unparseable", uid=uid, error=str(exc))
                mail = None
            if mail is None:
                skipped.append(uid)
            else:
                mails.append(mail)
        return mails, skipped

    def _inbound(self, raw: bytes, *, uid: int | None, internaldate: datetime | None) -> InboundMail | None:
        parsed: ParsedMail = parse_mail(raw)
        if parsed.automatic:
            log.info("email_automatic_skipped", uid=uid, sender=parsed.address)
            return None
        own = str(self.settings.get("from_address") or "").strip().lower()
        if own and parsed.address == own:
            log.info("email_own_skipped", uid=uid)
            return None
        now = utcnow()
        received = internaldate or parsed.date
        if received is None or received > now + _CLOCK_SKEW:
            received = now
        source_id = parsed.envelope.message_id or "sha256:" + hashlib.sha256(raw).hexdigest()[:32]
        return InboundMail(
            contact_source_id=parsed.address,
            text=parsed.text,
            received_at=received,
            source_id=source_id,
            contact_name=parsed.name,
            email=parsed.address,
            uid=uid,
            envelope=parsed.envelope,
        )

    # ------------------------------------------------------------------------------------ SMTP

    def build_message(self, *, to: str, text: str, reply_to: EmailEnvelope | None = None,
                      subject: str | None = None) -> EmailMessage:
        """The outgoing ``text/plain; charset=utf-8`` message (headers as described in the module
        docstring). Raises ``ValueError`` for an unusable ``to`` address."""
        from_address = self.from_address
        domain = from_address.rsplit("@", 1)[-1]
        to = (to or "").strip()
        if "@" not in to:
            raise ValueError(f"not an e-mail address: {to!r}")
        default = str(self.settings.get("default_subject") or self.settings.get("from_name") or domain)
        if subject is None:
            subject = reply_to.reply_subject(default) if reply_to is not None else default
        message = EmailMessage(policy=SMTP_POLICY)
        message["From"] = Address(display_name=str(self.settings.get("from_name") or ""), addr_spec=from_address)
        message["To"] = Address(addr_spec=to)
        message["Subject"] = subject
        message["Date"] = format_datetime(utcnow())
        message["Message-ID"] = make_msgid(domain=domain)
        if reply_to is not None and reply_to.message_id:
            message["In-Reply-To"] = reply_to.message_id
            message["References"] = " ".join(reply_to.reply_references())
        message["Auto-Submitted"] = "auto-replied"
        # Quoted-printable keeps the body 7-bit (servers without 8BITMIME) and lines short (RFC 5322 §2.1.1).
        message.set_content(text.replace("\r\n", "\n"), charset="utf-8", cte="quoted-printable")
        return message

    def _smtp_options(self) -> dict[str, Any]:
        use_ssl = _as_bool(self.settings.get("smtp_ssl"), False)
        starttls_setting = self.settings.get("smtp_starttls")
        start_tls: bool | None = None if starttls_setting in (None, "") else _as_bool(starttls_setting, False)
        if use_ssl:
            start_tls = False
        options: dict[str, Any] = {
            "hostname": self._require("smtp_host"),
            "port": self._int("smtp_port", 465 if use_ssl else 587),
            "use_tls": use_ssl,
            "start_tls": start_tls,
            "timeout": self._timeout,
        }
        password = self.credentials.get("smtp_password")
        user = self.settings.get("smtp_user") or self.settings.get("imap_user")
        if password and user:
            options["username"] = str(user)
            options["password"] = str(password)
        return options

    async def _smtp_send(self, message: EmailMessage) -> None:
        options = self._smtp_options()
        wait = self._float("smtp_retry_wait", 2.0)
        retrying = AsyncRetrying(
            stop=stop_after_attempt(max(1, self._int("smtp_attempts", 3))),
            wait=wait_exponential(multiplier=wait, max=max(wait * 8, 0.0)),
            retry=retry_if_exception(is_transient_smtp_error),
            reraise=True,
            before_sleep=lambda state: log.warning(
                "email_smtp_retry", attempt=state.attempt_number,
                error=repr(state.outcome.exception()) if state.outcome else None),
        )
        async for attempt in retrying:
            with attempt:
                await aiosmtplib.send(message, **options)


def _text(lines: Iterable[bytes | bytearray]) -> str:
    return " ".join(bytes(x).decode("utf-8", "replace") for x in lines)[:300]
