"""Parsing helpers of the e-mail channel: one raw RFC 5322 message → the customer's words.

Pure functions, no network and no database:

* ``parse_mail(raw)`` → ``ParsedMail``: sender (lower-cased address and display name), the plain text
  the customer wrote (text/plain preferred, else HTML converted to text; quoted history and
  signatures cut; attachments listed by file name as ``[attachment: name.pdf]`` and never opened),
  the threading ``EmailEnvelope`` and whether the mail is automatic (RFC 3834).
* ``EmailEnvelope``: ``Message-ID``, ``In-Reply-To``, ``References`` and ``Subject`` of an inbound
  message, and the headers a reply to it carries (RFC 5322 §3.6.4, §3.6.5).
* ``thread_key(raw)``: the Message-ID of the first message of the thread.
* ``html_to_text``, ``unflow`` (RFC 3676 format=flowed) and ``clean_body`` (quote/signature cutting).
"""

from __future__ import annotations

import email
import email.errors
import email.message
import email.utils
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.header import decode_header, make_header
from html.parser import HTMLParser

MAX_BODY_CHARS = 200_000
"""At most this many characters of a mail's text parts (decoded; HTML counted after conversion) are
cleaned. Bounds the work one mail can cause; what the customer wrote is capped later, after quote
stripping, by the pipeline (``EmailChannel.max_inbound_text``)."""

MAX_HTML_CHARS = 1_000_000
"""HTML parts are converted to text from at most this many characters of markup."""

MAX_REFERENCES = 20
"""A reply's ``References`` keeps the first message id and the most recent ones up to this many."""

_MSG_ID = re.compile(r"<[^<>\s]+>")
# Reply prefixes in several languages, possibly numbered ("Re[2]:", "RE(3):"); "Fwd:" is kept.
_REPLY_PREFIX = re.compile(r"^\s*(?:re|aw|sv|antw|odp|ответ|отв|на)\s*(?:\[\d+\]|\(\d+\))?\s*:\s*", re.IGNORECASE)
_AUTOMATIC_LOCALPARTS = {"mailer-daemon", "postmaster", "noreply", "no-reply", "no_reply", "donotreply",
                         "do-not-reply", "do_not_reply"}
_SKIPPED_ATTACHMENT_TYPES = {"application/pgp-signature", "application/pkcs7-signature",
                             "application/x-pkcs7-signature"}


# --------------------------------------------------------------------------------------------------
# Threading (RFC 5322 §3.6.4)


def _msg_ids(value: str | None) -> list[str]:
    """The ``<id@host>`` tokens of a Message-ID / In-Reply-To / References value, in order, unique."""
    if not value:
        return []
    seen: list[str] = []
    for token in _MSG_ID.findall(value):
        if token not in seen:
            seen.append(token)
    return seen


def _one_msg_id(value: str | None) -> str | None:
    ids = _msg_ids(value)
    if ids:
        return ids[0]
    bare = (value or "").strip()
    # A broken id without angle brackets (seen in the wild) is kept, bracketed, when it is one token.
    if bare and not re.search(r"[\s<>]", bare):
        return f"<{bare}>"
    return None


def base_subject(subject: str) -> str:
    """``subject`` without its reply prefixes ("Re: Re[2]: AW: x" → "x"); "Fwd:" is kept."""
    previous = None
    subject = subject.strip()
    while previous != subject:
        previous = subject
        subject = _REPLY_PREFIX.sub("", subject, count=1).strip()
    return subject


@dataclass(frozen=True, slots=True)
class EmailEnvelope:
    """The threading headers of an inbound message (RFC 5322 §3.6.4, §3.6.5).

    ``message_id`` is the message's ``Message-ID`` with its angle brackets (``"<id@host>"``), or
    ``None`` when the sender gave none; ``references`` are the ids of its ``References`` header,
    oldest first; ``subject`` is the decoded ``Subject``.
    """

    message_id: str | None
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    subject: str = ""

    def reply_subject(self, default: str = "") -> str:
        """``"Re: <subject>"`` with any existing reply prefixes removed first (never "Re: Re:");
        ``default`` when the subject is empty."""
        base = base_subject(self.subject)
        return f"Re: {base}" if base else default

    def reply_references(self) -> tuple[str, ...]:
        """The ``References`` of a reply (RFC 5322 §3.6.4): this message's ``References`` (or, when it
        has none, its single ``In-Reply-To``) followed by its ``Message-ID``. Long chains keep the
        first id and the latest ones (``MAX_REFERENCES`` in all)."""
        refs = list(self.references)
        if not refs and self.in_reply_to:
            refs = [self.in_reply_to]
        if self.message_id and self.message_id not in refs:
            refs.append(self.message_id)
        if len(refs) > MAX_REFERENCES:
            refs = refs[:1] + refs[-(MAX_REFERENCES - 1):]
        return tuple(refs)

    def thread_key(self) -> str:
        """The id of the thread's first message: the first ``References`` id, else ``In-Reply-To``,
        else this message's own id ("" when there is none)."""
        if self.references:
            return self.references[0]
        return self.in_reply_to or self.message_id or ""

    def as_dict(self) -> dict[str, object]:
        """JSON-ready form (to keep in a stored message's payload)."""
        return {"message_id": self.message_id, "in_reply_to": self.in_reply_to,
                "references": list(self.references), "subject": self.subject}

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> EmailEnvelope:
        """Inverse of ``as_dict``; unknown keys are ignored."""
        refs = data.get("references") or []
        return cls(
            message_id=str(data["message_id"]) if data.get("message_id") else None,
            in_reply_to=str(data["in_reply_to"]) if data.get("in_reply_to") else None,
            references=tuple(str(r) for r in refs) if isinstance(refs, list | tuple) else (),
            subject=str(data.get("subject") or ""),
        )


# --------------------------------------------------------------------------------------------------
# Headers


def _clean(value: str) -> str:
    # 8-bit header bytes arrive as surrogate escapes; make them text, then unfold.
    value = value.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return re.sub(r"\r?\n[ \t]*", " ", value).strip()


def decode_words(value: str | None) -> str:
    """A header value with its RFC 2047 encoded words decoded (``=?koi8-r?B?...?=``); undecodable
    words are left as they are."""
    if not value:
        return ""
    value = str(value)
    try:
        decoded = str(make_header(decode_header(value)))
    except (LookupError, UnicodeError, ValueError, email.errors.HeaderParseError):
        decoded = value
    return _clean(decoded)


def _header(msg: email.message.Message, name: str) -> str:
    value = msg.get(name)
    return _clean(str(value)) if value is not None else ""


# --------------------------------------------------------------------------------------------------
# Bodies


def _decode_payload(part: email.message.Message) -> str:
    """A text part's payload as text: transfer encoding undone, then its charset (or a guess)."""
    raw = part.get_payload(decode=True)
    if not isinstance(raw, bytes):
        return ""
    declared = part.get_content_charset()
    for charset in (declared, "utf-8"):
        if not charset:
            continue
        try:
            return raw.decode(charset)
        except (LookupError, UnicodeDecodeError):
            continue
    try:
        from charset_normalizer import from_bytes

        best = from_bytes(raw).best()
        if best is not None:
            return str(best)
    except Exception:  # noqa: BLE001 - a guess that fails falls back to latin-1 below
        pass
    return raw.decode("latin-1", "replace")


def _attachment_name(part: email.message.Message) -> str:
    name = part.get_filename()
    if name:
        name = decode_words(name)
        name = re.sub(r"[\x00-\x1f\x7f]", "", name).replace("\\", "/").rsplit("/", 1)[-1].strip()
    if not name:
        ctype = part.get_content_type()
        if ctype == "message/rfc822":
            inner = part.get_payload()
            subject = ""
            if isinstance(inner, list) and inner and isinstance(inner[0], email.message.Message):
                subject = decode_words(inner[0].get("Subject"))
            return f"forwarded message{': ' + subject if subject else ''}"[:200]
        return f"unnamed {ctype}"
    return name[:200]


@dataclass(slots=True)
class _Bodies:
    plain: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    attachments: list[str] = field(default_factory=list)


def _is_attachment(part: email.message.Message) -> bool:
    return part.get_content_disposition() == "attachment" or bool(part.get_filename())


def _visit(part: email.message.Message, out: _Bodies) -> None:
    ctype = part.get_content_type()
    if ctype.startswith("message/") and ctype != "message/delivery-status":
        # A forwarded/attached message is listed, never descended into (its text is not the customer's).
        out.attachments.append(_attachment_name(part))
        return
    if part.is_multipart():
        children = [p for p in part.get_payload() if isinstance(p, email.message.Message)]
        if ctype == "multipart/alternative" and children:
            # RFC 2046 §5.1.4: alternatives in increasing faithfulness; the plain one is preferred here.
            plain = [c for c in children if c.get_content_type() == "text/plain" and not _is_attachment(c)]
            _visit(plain[0] if plain else children[-1], out)
            return
        for child in children:
            _visit(child, out)
        return
    if ctype in _SKIPPED_ATTACHMENT_TYPES:
        return
    if ctype in ("text/plain", "text/html") and not _is_attachment(part):
        text = _decode_payload(part)
        text = text[: MAX_BODY_CHARS if ctype == "text/plain" else MAX_HTML_CHARS]
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        if ctype == "text/plain":
            if part.get_param("format", "").lower() == "flowed":
                text = unflow(text, delsp=part.get_param("delsp", "").lower() == "yes")
            out.plain.append(text)
        else:
            out.html.append(html_to_text(text))
        return
    out.attachments.append(_attachment_name(part))


class _HTMLToText(HTMLParser):
    _PARAGRAPH = {"p", "ul", "ol", "table", "blockquote", "pre", "hr", "section", "article", "header", "footer",
                  "address", "dl", "h1", "h2", "h3", "h4", "h5", "h6"}
    _LINE = {"div", "li", "tr", "dt", "dd"}
    _SKIP = {"script", "style", "head", "title", "template", "noscript", "object", "iframe", "svg"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[tuple[int, str]] = [(0, "")]  # (blockquote depth, text); the last is the current line
        self.skip = 0
        self.quote = 0
        self.pre = 0
        self.links: list[tuple[str, int, int]] = []

    def _break(self, *, blank: bool) -> None:
        """Start a new line unless the current one is empty; with ``blank`` leave an empty line before it."""
        if self.lines[-1][1].strip():
            self.lines.append((self.quote, ""))
        if blank and len(self.lines) >= 2 and self.lines[-2][1].strip():
            self.lines.insert(len(self.lines) - 1, (self.quote, ""))

    def _write(self, text: str) -> None:
        depth, current = self.lines[-1]
        if not current.strip():
            depth = self.quote
        self.lines[-1] = (depth, current + text)

    def _block(self, tag: str) -> None:
        if tag in self._PARAGRAPH:
            self._break(blank=True)
        elif tag in self._LINE:
            self._break(blank=False)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self.skip += 1
            return
        if tag == "br":
            self.lines.append((self.quote, ""))
            return
        self._block(tag)
        if tag == "blockquote":
            self.quote += 1
        elif tag == "pre":
            self.pre += 1
        elif tag == "li":
            self._write("- ")
        elif tag in ("td", "th"):
            self._write(" ")
        elif tag == "a":
            href = dict(attrs).get("href") or ""
            self.links.append((href, len(self.lines), len(self.lines[-1][1])))

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self.skip = max(0, self.skip - 1)
            return
        if tag == "a" and self.links:
            href, line_count, offset = self.links.pop()
            if href.startswith(("http://", "https://")):
                shown = "".join(t for _, t in self.lines[line_count - 1:])[offset:]
                if href not in shown:
                    self._write(f" ({href})")
        if tag == "blockquote":
            self.quote = max(0, self.quote - 1)
        elif tag == "pre":
            self.pre = max(0, self.pre - 1)
        self._block(tag)

    def handle_data(self, data: str) -> None:
        if self.skip:
            return
        if self.pre:
            first, *rest = data.split("\n")
            self._write(first)
            for line in rest:
                self.lines.append((self.quote, ""))
                self._write(line)
            return
        self._write(re.sub(r"\s+", " ", data))

    def text(self) -> str:
        out: list[str] = []
        for depth, line in self.lines:
            line = re.sub(r"[ \t\u00a0]{2,}", " ", line).strip()
            if line and depth:
                line = "> " + line
            out.append(line)
        return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip()


def html_to_text(html: str) -> str:
    """Readable plain text of an HTML body (stdlib ``html.parser``): scripts/styles dropped, block
    elements on their own lines, list items as "- ", link targets kept as "text (url)", and
    ``<blockquote>`` lines prefixed with "> " so the quote rules of ``clean_body`` remove them."""
    parser = _HTMLToText()
    parser.feed(html)
    parser.close()
    return parser.text()


def unflow(text: str, *, delsp: bool = False) -> str:
    """Join the soft line breaks of a ``format=flowed`` body (RFC 3676 §4): a line ending in a space
    continues on the next line of the same quote depth; space-stuffing is undone; the signature
    separator "-- " is never joined."""
    out: list[str] = []
    buf: str | None = None
    buf_depth = 0

    def flush() -> None:
        nonlocal buf
        if buf is not None:
            out.append((">" * buf_depth + " " if buf_depth else "") + buf)
            buf = None

    for line in text.split("\n"):
        if line == "-- ":
            flush()
            out.append(line)
            continue
        depth = len(line) - len(line.lstrip(">"))
        content = line[depth:]
        if content.startswith(" "):
            content = content[1:]
        flowed = content.endswith(" ")
        if flowed and delsp:
            content = content[:-1]
        if buf is not None and buf_depth == depth:
            buf += content
        else:
            flush()
            buf, buf_depth = content, depth
        if not flowed:
            flush()
    flush()
    return "\n".join(out)


# --------------------------------------------------------------------------------------------------
# Quoted history and signatures

_ON_WROTE = re.compile(r"^\s*(?:on|am|le|el)\b.{0,300}\b(?:wrote|schrieb|a écrit|escribió)\s*:\s*$", re.IGNORECASE)
_RU_WROTE = re.compile(r"^.{0,300}(?:\bпишет|\bнаписал(?:а|\(а\))?)\s*:\s*$", re.IGNORECASE)
_ORIGINAL = re.compile(
    r"^\s*-{2,}\s*(?:original message|исходное сообщение|ursprüngliche nachricht|reply message)\s*-{2,}\s*$",
    re.IGNORECASE,
)
_HEADER_FROM = re.compile(r"^\s*\*?(?:from|от|von)\s*:\*?\s+\S", re.IGNORECASE)
_HEADER_NEXT = re.compile(r"^\s*\*?(?:sent|date|to|subject|отправлено|дата|кому|тема|gesendet)\s*:", re.IGNORECASE)
_UNDERSCORES = re.compile(r"^\s*_{10,}\s*$")
_SIG_DELIMITER = re.compile(r"^--\s?$")
_MOBILE_SIG = re.compile(
    r"^\s*(?:sent from (?:my )?\S.{0,50}|sent via \S.{0,40}|get outlook for \S.{0,30}|"
    r"отправлено (?:с|из|со) \S.{0,60}|послано с \S.{0,40})\s*$",
    re.IGNORECASE,
)


def _quote_start(lines: list[str], i: int) -> int:
    """How many lines the quote header starting at line ``i`` spans (0 when none starts there)."""
    line = lines[i]
    if _ORIGINAL.match(line) or _ON_WROTE.match(line) or _RU_WROTE.match(line):
        return 1
    nxt = lines[i + 1] if i + 1 < len(lines) else ""
    if re.match(r"^\s*(?:on|am|le|el)\s", line, re.IGNORECASE) and _ON_WROTE.match(f"{line} {nxt}"):
        return 2  # "On Mon, 4 Mar 2024 at 10:00, John <john@x>" / "wrote:" wrapped over two lines
    if _UNDERSCORES.match(line) and _HEADER_FROM.match(nxt):
        return 1
    if _HEADER_FROM.match(line) and any(_HEADER_NEXT.match(x) for x in lines[i + 1:i + 5]):
        return 1  # Outlook's "From: / Sent: / To: / Subject:" block
    if line.rstrip().endswith(":") and re.search(r"\d|@", line):
        following = next((lines[j] for j in range(i + 1, len(lines)) if lines[j].strip()), "")
        if following.lstrip().startswith(">"):
            return 1  # an attribution line in any language ("пн, 4 мар. 2024 г. в 10:00, Иван <i@x>:")
    return 0


def clean_body(text: str) -> str:
    """The customer's own words of a plain-text body.

    Cuts the quoted history ("On … wrote:", "… пишет:", "-----Original Message-----", Outlook's
    "From:/Sent:" block, an attribution line followed by "> " lines) and everything after it; drops
    remaining lines starting with ">"; cuts at the signature delimiter "-- " (RFC 3676 §4.3) and drops
    trailing "Sent from my iPhone"-style lines. When the quote comes first (bottom-posting) the text
    after it is kept instead.
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    for i in range(len(lines)):
        span = _quote_start(lines, i)
        if not span:
            continue
        before = lines[:i]
        if any(x.strip() and not x.lstrip().startswith(">") for x in before):
            lines = before
        else:
            lines = lines[i + span:]
        break
    lines = [x for x in lines if not x.lstrip().startswith(">")]
    for i, line in enumerate(lines):
        if _SIG_DELIMITER.match(line):
            lines = lines[:i]
            break
    while lines and (not lines[-1].strip() or _MOBILE_SIG.match(lines[-1])):
        lines.pop()
    out = "\n".join(line.rstrip() for line in lines)
    return re.sub(r"\n{3,}", "\n\n", out).strip()


# --------------------------------------------------------------------------------------------------
# The whole message


@dataclass(frozen=True, slots=True)
class ParsedMail:
    """One parsed message.

    ``address`` is the sender's address lower-cased and ``name`` its display name (decoded);
    ``text`` the cleaned text with attachment lines (not capped here: the pipeline caps what it stores
    at ``EmailChannel.max_inbound_text``); ``date`` the
    ``Date`` header in UTC (``None`` when missing or unreadable); ``automatic`` is true for mail no
    program should answer (RFC 3834: auto-replies, bounces, mailing lists, no-reply senders).
    """

    address: str
    name: str | None
    text: str
    envelope: EmailEnvelope
    date: datetime | None
    automatic: bool
    attachments: tuple[str, ...] = ()


def _is_automatic(msg: email.message.Message, address: str) -> bool:
    auto = _header(msg, "Auto-Submitted").lower()
    if auto and not auto.startswith("no"):
        return True  # RFC 3834 §5
    if _header(msg, "Precedence").lower() in ("bulk", "junk", "list"):
        return True
    if any(msg.get(h) is not None for h in ("List-Id", "List-Unsubscribe", "X-Autoreply", "X-Autorespond")):
        return True
    if _header(msg, "Return-Path").replace(" ", "") == "<>":
        return True  # a bounce (null reverse-path)
    if msg.get_content_type() == "multipart/report":
        return True  # delivery status notification (RFC 3464)
    local = address.split("@", 1)[0]
    return local in _AUTOMATIC_LOCALPARTS or local.startswith("owner-") or local.endswith("-request")


def _date(msg: email.message.Message) -> datetime | None:
    value = _header(msg, "Date")
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def envelope_of(msg: email.message.Message) -> EmailEnvelope:
    """The threading headers of a parsed ``email.message.Message``."""
    return EmailEnvelope(
        message_id=_one_msg_id(_header(msg, "Message-ID")),
        in_reply_to=(_msg_ids(_header(msg, "In-Reply-To")) or [None])[0],
        references=tuple(_msg_ids(_header(msg, "References"))),
        subject=decode_words(msg.get("Subject")),
    )


def parse_mail(raw: bytes) -> ParsedMail:
    """Parse one raw RFC 5322 message. Raises ``ValueError`` when it is empty or has no sender
    address in ``From``. Attachments are only named, never decoded or opened."""
    if not raw or not raw.strip():
        raise ValueError("empty message")
    msg = email.message_from_bytes(raw)
    name, address = email.utils.parseaddr(str(msg.get("From") or ""))
    address = _clean(address).lower()
    if "@" not in address or address.startswith("@") or address.endswith("@"):
        raise ValueError("message has no sender address in From")
    display = decode_words(name).strip().strip('"').strip() or None

    bodies = _Bodies()
    _visit(msg, bodies)
    if bodies.plain:
        body = "\n".join(bodies.plain)
    else:
        body = "\n".join(bodies.html)
    text = clean_body(body[:MAX_BODY_CHARS])
    envelope = envelope_of(msg)
    if not text:
        text = base_subject(envelope.subject)
    if bodies.attachments:
        listing = "\n".join(f"[attachment: {a}]" for a in bodies.attachments)
        text = f"{text}\n{listing}" if text else listing
    return ParsedMail(
        address=address,
        name=display[:200] if display else None,
        text=text,
        envelope=envelope,
        date=_date(msg),
        automatic=_is_automatic(msg, address),
        attachments=tuple(bodies.attachments),
    )


def thread_key(raw: bytes) -> str:
    """The Message-ID of the first message of ``raw``'s thread (see ``EmailEnvelope.thread_key``);
    "" when the message carries no ids."""
    return envelope_of(email.message_from_bytes(raw)).thread_key()
