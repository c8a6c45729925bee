"""The e-mail channel: parsing raw mail, SMTP against a real aiosmtpd server, IMAP against a real Dovecot.

Dovecot is started by ``.ci/dovecot.sh`` (the fixture runs it when the server is not up). When it
cannot be installed or started the IMAP tests are skipped with the reason, except under ``CI=true``
where they fail.
"""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from email.utils import parseaddr
from pathlib import Path

import aioimaplib
import aiosmtplib
import pytest

from bot.messages import Button, OutboundMessage
from channels.base import RawRequest
from channels.email import (
    EmailChannel,
    EmailEnvelope,
    EmailError,
    InboundMail,
    imap_mailbox,
    is_transient_smtp_error,
    thread_key,
)
from channels.email_text import clean_body, html_to_text, parse_mail, unflow
from tests.doubles.smtp_server import free_port, smtp_server

REPO = Path(__file__).resolve().parent.parent
DOVECOT_SCRIPT = REPO / ".ci" / "dovecot.sh"
DOVECOT_DIR = Path(os.environ.get("CHATCOMMERCE_DOVECOT_DIR", "/tmp/chatcommerce-dovecot"))
SHOP = "shop@example.test"


def mail(text: str, *, charset: str = "utf-8") -> bytes:
    """A raw message from readable source: LF line ends become CRLF, then ``charset`` bytes."""
    return text.lstrip("\n").replace("\n", "\r\n").encode(charset)


def b64(text: str, charset: str = "utf-8") -> str:
    return base64.encodebytes(text.encode(charset)).decode("ascii")


def parse_one(raw: bytes, **settings: object) -> InboundMail:
    channel = EmailChannel(settings={"from_address": SHOP, **settings})
    parsed = channel.parse(RawRequest(headers={}, body=raw))
    assert len(parsed) == 1
    assert isinstance(parsed[0], InboundMail)
    return parsed[0]


# ------------------------------------------------------------------------------------ raw messages

PLAIN = mail("""
From: "Ivan Petrov" <Ivan.Petrov@Example.COM>
To: Shop <shop@example.test>
Subject: Do you have red sneakers?
Date: Mon, 04 Mar 2024 10:00:00 +0300
Message-ID: <plain-1@example.com>
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 7bit

Hello! Do you have red sneakers in size 42?
""")

HTML_ONLY = mail("""
From: Anna <anna@example.org>
Subject: Question
Message-ID: <html-1@example.org>
MIME-Version: 1.0
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: quoted-printable

<html><head><style>p {color: red}</style><title>x</title></head><body>
<p>Hi,</p><p>I would like to order the <b>blue mug</b>.</p>
<ul><li>one</li><li>two</li></ul>
<p>See <a href=3D"https://example.org/mug">this page</a>.</p>
<script>alert(1)</script>
</body></html>
""")

ATTACHMENT = mail(f"""
From: buyer@example.net
Subject: Invoice
Message-ID: <att-1@example.net>
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="BOUNDARY"

--BOUNDARY
Content-Type: multipart/alternative; boundary="ALT"

--ALT
Content-Type: text/plain; charset=utf-8

Please see the invoice attached.
--ALT
Content-Type: text/html; charset=utf-8

<p>HTML version that must not be used</p>
--ALT--
--BOUNDARY
Content-Type: application/pdf; name="invoice.pdf"
Content-Disposition: attachment; filename="invoice.pdf"
Content-Transfer-Encoding: base64

JVBERi0xLjQKJcfsj6IKNSAwIG9iago8PC9MZW5ndGggNiAwIFI+PgpzdHJlYW0K
--BOUNDARY
Content-Type: application/octet-stream
Content-Disposition: attachment; filename*=utf-8''%D1%81%D1%87%D1%91%D1%82.exe
Content-Transfer-Encoding: base64

{b64("MZ not really an executable")}
--BOUNDARY--
""")

REPLY = mail("""
From: Ivan <ivan@example.com>
Subject: Re: Re: Your order #1042
Message-ID: <reply-2@example.com>
In-Reply-To: <shop-1@example.test>
References: <first-0@example.com> <shop-1@example.test>
Content-Type: text/plain; charset=utf-8

Yes, please deliver it on Friday.

Thanks,
Ivan
--\x20
Ivan Petrov | ACME Ltd | +1 555 0100

On Mon, 4 Mar 2024 at 10:00, Shop <shop@example.test> wrote:
> Your order #1042 is ready. When should we deliver?
>
> --
> Shop
""")

RUSSIAN_KOI8 = mail("""
From: =?koi8-r?B?6dfBziDwxdTSz9c=?= <ivan@example.ru>
Subject: =?koi8-r?B?8NLJ18XUIQ==?=
Message-ID: <ru-1@example.ru>
Content-Type: text/plain; charset=koi8-r
Content-Transfer-Encoding: 8bit

Здравствуйте! Сколько стоит доставка в Москву?

Отправлено с iPhone

4 марта 2024 г., в 10:00, Магазин <shop@example.test> пишет:
> Добрый день! Чем можем помочь?
""", charset="koi8-r")

RUSSIAN_1251_QP = mail("""
From: =?windows-1251?Q?=CC=E0=F0=E8=FF?= <Maria@Example.RU>
Subject: =?windows-1251?B?yuDq7ukg8ODn7OXwPw==?=
Message-ID: <ru-2@example.ru>
Content-Type: text/plain; charset=windows-1251
Content-Transfer-Encoding: quoted-printable

=C5=F1=F2=FC =EB=E8 =F0=E0=E7=EC=E5=F0 M?

-----Original Message-----
From: Shop
Sent: Monday
=CF=F0=E8=E2=E5=F2
""")


# ------------------------------------------------------------------------------------ parsing units


def test_plain_message_fields() -> None:
    got = parse_one(PLAIN)
    assert got.contact_source_id == "ivan.petrov@example.com"
    assert got.email == "ivan.petrov@example.com"
    assert got.contact_name == "Ivan Petrov"
    assert got.source_id == "<plain-1@example.com>"
    assert got.text == "Hello! Do you have red sneakers in size 42?"
    assert got.received_at == datetime(2024, 3, 4, 7, 0, tzinfo=UTC)
    assert got.envelope == EmailEnvelope(message_id="<plain-1@example.com>", subject="Do you have red sneakers?")
    assert got.uid is None


def test_html_only_is_converted_to_text() -> None:
    got = parse_one(HTML_ONLY)
    assert got.text == "Hi,\n\nI would like to order the blue mug.\n\n- one\n- two\n\nSee this page (https://example.org/mug)."
    assert "alert" not in got.text and "color" not in got.text


def test_multipart_prefers_plain_and_lists_attachments_without_opening_them() -> None:
    got = parse_one(ATTACHMENT)
    assert got.text == "Please see the invoice attached.\n[attachment: invoice.pdf]\n[attachment: счёт.exe]"


def test_quoted_history_and_signature_are_cut() -> None:
    got = parse_one(REPLY)
    assert got.text == "Yes, please deliver it on Friday.\n\nThanks,\nIvan"
    assert got.envelope is not None
    assert got.envelope.in_reply_to == "<shop-1@example.test>"
    assert got.envelope.references == ("<first-0@example.com>", "<shop-1@example.test>")


def test_russian_koi8r_with_mobile_signature_and_pishet() -> None:
    got = parse_one(RUSSIAN_KOI8)
    assert got.contact_name == "Иван Петров"
    assert got.text == "Здравствуйте! Сколько стоит доставка в Москву?"
    assert got.envelope is not None and got.envelope.subject == "Привет!"


def test_windows_1251_quoted_printable_and_original_message() -> None:
    got = parse_one(RUSSIAN_1251_QP)
    assert got.contact_source_id == "maria@example.ru"
    assert got.contact_name == "Мария"
    assert got.text == "Есть ли размер M?"
    assert got.envelope is not None and got.envelope.subject == "Какой размер?"


def test_base64_body_and_subject_fallback() -> None:
    raw = mail(f"""
From: =?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?= <jm@example.de>
Subject: =?UTF-8?B?R3LDvMOfZSBhdXMgTcO8bmNoZW4=?=
Message-ID: <b64@example.de>
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: base64

{b64("Größe 44, bitte.")}""")
    got = parse_one(raw)
    assert (got.contact_name, got.text) == ("Jürgen Müller", "Größe 44, bitte.")
    empty_body = mail("""
From: a@example.com
Subject: Re: =?UTF-8?Q?Wie_viel_kostet_das=3F?=
Content-Type: text/plain

""")
    assert parse_one(empty_body).text == "Wie viel kostet das?"


def test_missing_message_id_gets_a_stable_hash_id() -> None:
    raw = mail("From: a@example.com\nSubject: x\n\nhello\n")
    first, second = parse_one(raw), parse_one(raw)
    assert first.source_id is not None and first.source_id.startswith("sha256:")
    assert first.source_id == second.source_id


def test_bottom_posting_keeps_the_answer() -> None:
    text = "On Tue, 5 Mar 2024, Shop <shop@example.test>\nwrote:\n> Which colour?\n\nRed, please.\n"
    assert clean_body(text) == "Red, please."


def test_outlook_header_block_and_generic_attribution() -> None:
    outlook = "Two of them.\n\n________________________________\nFrom: Shop <shop@example.test>\nSent: Monday\n" \
              "To: me\nSubject: Order\n\nHow many?"
    assert clean_body(outlook) == "Two of them."
    gmail_ru = "Да, беру.\n\nпн, 4 мар. 2024 г. в 10:00, Shop <shop@example.test>:\n> Берёте?"
    assert clean_body(gmail_ru) == "Да, беру."
    assert clean_body("Thanks!\n\nSent from my iPhone") == "Thanks!"
    assert clean_body("Order 5 please\n--\nJohn") == "Order 5 please"


def test_format_flowed_is_unwrapped() -> None:
    assert unflow("This is a long \nline that was wrapped.\n> quoted \n> part\n-- \nsig") == \
        "This is a long line that was wrapped.\n> quoted part\n-- \nsig"
    raw = mail("""
From: a@example.com
Content-Type: text/plain; charset=utf-8; format=flowed

I want the red one \nand the blue one.
""")
    assert parse_one(raw).text == "I want the red one and the blue one."


def test_html_blockquote_is_treated_as_quote() -> None:
    html = ('<div>Yes, two.</div><div class="gmail_quote">On Mon, 4 Mar 2024 Shop wrote:<br>'
            "<blockquote>How many?<br>Shop</blockquote></div>")
    assert html_to_text(html).splitlines()[-2:] == ["> How many?", "> Shop"]
    assert clean_body(html_to_text(html)) == "Yes, two."


def test_automatic_and_own_mail_is_not_a_customer_message() -> None:
    channel = EmailChannel(settings={"from_address": SHOP})
    auto = mail("From: a@example.com\nAuto-Submitted: auto-replied\nSubject: Out of office\n\nAway.\n")
    bounce = mail("From: MAILER-DAEMON@example.com\nSubject: Undelivered\n\nfailed\n")
    listmail = mail("From: news@example.com\nList-Id: <news.example.com>\n\nnews\n")
    own = mail(f"From: Shop <{SHOP.upper()}>\nSubject: x\n\nour own copy\n")
    for raw in (auto, bounce, listmail, own):
        assert channel.parse(RawRequest(headers={}, body=raw)) == []
    assert parse_mail(auto).automatic


def test_message_without_sender_is_refused() -> None:
    channel = EmailChannel(settings={"from_address": SHOP})
    with pytest.raises(ValueError):
        channel.parse(RawRequest(headers={}, body=b"Subject: no sender\r\n\r\nhi\r\n"))
    with pytest.raises(ValueError):
        channel.parse(RawRequest(headers={}, body=b""))


def test_envelope_reply_rules() -> None:
    env = EmailEnvelope(message_id="<c@x>", in_reply_to="<b@x>", references=("<a@x>", "<b@x>"),
                        subject="RE[2]: AW: Re: Order")
    assert env.reply_subject() == "Re: Order"
    assert env.reply_references() == ("<a@x>", "<b@x>", "<c@x>")
    assert env.thread_key() == "<a@x>"
    assert EmailEnvelope(message_id="<c@x>", in_reply_to="<b@x>").reply_references() == ("<b@x>", "<c@x>")
    assert EmailEnvelope(message_id="<c@x>", subject="Fwd: Re: Hi").reply_subject() == "Re: Fwd: Re: Hi"
    assert EmailEnvelope(message_id=None).reply_subject("Shop") == "Shop"
    assert EmailEnvelope.from_dict(env.as_dict()) == env
    assert thread_key(REPLY) == "<first-0@example.com>"
    assert thread_key(PLAIN) == "<plain-1@example.com>"


def test_imap_mailbox_names_are_modified_utf7_quoted() -> None:
    assert imap_mailbox("INBOX") == '"INBOX"'
    assert imap_mailbox("Входящие") == '"&BBIERQQ+BDQETwRJBDgENQ-"'
    assert imap_mailbox('A&B "x"') == '"A&-B \\"x\\""'


def test_transient_smtp_errors() -> None:
    assert is_transient_smtp_error(aiosmtplib.SMTPDataError(451, "later"))
    assert is_transient_smtp_error(aiosmtplib.SMTPConnectError("refused"))
    assert is_transient_smtp_error(ConnectionRefusedError())
    assert not is_transient_smtp_error(aiosmtplib.SMTPDataError(550, "no such user"))
    assert not is_transient_smtp_error(aiosmtplib.SMTPAuthenticationError(535, "bad credentials"))
    refused = aiosmtplib.SMTPRecipientsRefused([aiosmtplib.SMTPRecipientRefused(452, "full", "a@b")])
    assert is_transient_smtp_error(refused)


def test_missing_settings_fail_on_use_not_on_construction() -> None:
    channel = EmailChannel(settings={})
    with pytest.raises(EmailError, match="from_address"):
        channel.build_message(to="a@example.com", text="x")


# ------------------------------------------------------------------------------------ SMTP


def smtp_channel(port: int, **settings: object) -> EmailChannel:
    return EmailChannel(
        credentials={},
        settings={"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_starttls": False, "from_address": SHOP,
                  "from_name": "Магазин Shop", "smtp_retry_wait": 0, **settings},
    )


async def test_reply_headers_and_body() -> None:
    inbound = parse_one(REPLY)
    with smtp_server() as server:
        channel = smtp_channel(server.port)
        sent_id = await channel.send_text(to=inbound.contact_source_id, text="Доставим в пятницу. Thank you!",
                                          reply_to=inbound.envelope)
    assert len(server.received) == 1
    got = server.received[0]
    assert got.rcpt_tos == ("ivan@example.com",)
    assert got.mail_from == SHOP
    msg = got.message()
    assert msg["Subject"] == "Re: Your order #1042"
    assert msg["In-Reply-To"] == "<reply-2@example.com>"
    assert msg["References"].split() == ["<first-0@example.com>", "<shop-1@example.test>", "<reply-2@example.com>"]
    assert parseaddr(str(msg["From"])) == ("Магазин Shop", SHOP)
    assert str(msg["To"]) == "ivan@example.com"
    assert msg["Message-ID"] == sent_id
    assert sent_id is not None and sent_id.endswith("@example.test>")
    assert msg["Date"] and msg["Auto-Submitted"] == "auto-replied"
    assert msg.get_content_type() == "text/plain" and msg.get_content_charset() == "utf-8"
    assert msg.get_content().strip() == "Доставим в пятницу. Thank you!"
    assert all(len(line) <= 998 for line in got.content.split(b"\r\n"))
    got.content.decode("ascii")  # 7-bit on the wire (encoded words, quoted-printable)


async def test_new_thread_and_buttons_fallback() -> None:
    with smtp_server() as server:
        channel = smtp_channel(server.port, default_subject="Your order")
        message = OutboundMessage(text="Choose a size:", buttons=(Button("S", "s"), Button("M", "m")),
                                  url="https://shop.example/p/1", image_url="https://shop.example/p/1.jpg")
        await channel.send(to="Buyer@Example.net", message=message)
    msg = server.received[0].message()
    assert msg["Subject"] == "Your order"
    assert msg["In-Reply-To"] is None and msg["References"] is None
    assert msg.get_content().replace("\r\n", "\n").strip() == ("Choose a size:\nhttps://shop.example/p/1\n1. S\n2. M\n"
                                         "https://shop.example/p/1.jpg")


async def test_transient_451_is_retried_and_sent_once() -> None:
    with smtp_server(fail_data=["451 4.3.0 Try again later"] * 2) as server:
        channel = smtp_channel(server.port)
        sent_id = await channel.send_text(to="a@example.com", text="hello")
    assert server.handler.data_attempts == 3
    assert len(server.received) == 1
    assert server.received[0].message()["Message-ID"] == sent_id


async def test_transient_failures_give_up_after_three_attempts() -> None:
    with smtp_server(fail_data=["451 4.3.0 Try again later"] * 5) as server:
        channel = smtp_channel(server.port)
        with pytest.raises(aiosmtplib.SMTPDataError) as info:
            await channel.send_text(to="a@example.com", text="hello")
    assert info.value.code == 451
    assert server.handler.data_attempts == 3
    assert server.received == []


async def test_permanent_5xx_is_not_retried() -> None:
    with smtp_server(fail_data=["550 5.1.1 No such user"]) as server:
        channel = smtp_channel(server.port)
        with pytest.raises(aiosmtplib.SMTPDataError) as info:
            await channel.send_text(to="a@example.com", text="hello")
    assert info.value.code == 550
    assert server.handler.data_attempts == 1


async def test_connection_refused_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0
    real_send = aiosmtplib.send

    async def counting_send(*args: object, **kwargs: object) -> object:
        nonlocal calls
        calls += 1
        return await real_send(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(aiosmtplib, "send", counting_send)
    channel = smtp_channel(free_port(), timeout=2)
    with pytest.raises(aiosmtplib.SMTPConnectError):
        await channel.send_text(to="a@example.com", text="hello")
    assert calls == 3


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
async def test_smtp_auth_uses_the_inbox_credentials() -> None:
    with smtp_server(auth=("shop-login", "s3cret")) as server:
        channel = EmailChannel(
            credentials={"smtp_password": "s3cret"},
            settings={"smtp_host": "127.0.0.1", "smtp_port": server.port, "smtp_starttls": False,
                      "smtp_user": "shop-login", "from_address": SHOP, "smtp_retry_wait": 0},
        )
        await channel.send_text(to="a@example.com", text="hello")
        bad = EmailChannel(credentials={"smtp_password": "wrong"}, settings={**channel.settings})
        with pytest.raises(aiosmtplib.SMTPAuthenticationError):
            await bad.send_text(to="a@example.com", text="hello")
    assert server.authenticator is not None and server.authenticator.logins == ["shop-login"]
    assert len(server.received) == 1


async def test_bad_recipient_is_refused_before_sending() -> None:
    channel = smtp_channel(free_port())
    with pytest.raises(ValueError):
        await channel.send_text(to="not-an-address", text="x")
    with pytest.raises(ValueError):
        await channel.send_text(to="a@example.com\r\nBcc: evil@example.com", text="x")


# ------------------------------------------------------------------------------------ IMAP (Dovecot)


def _read_env(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        key, _, value = line.partition("=")
        if key:
            values[key.strip()] = value.strip()
    return values


async def _imap_up(env: dict[str, str]) -> bool:
    try:
        client = aioimaplib.IMAP4(host=env["DOVECOT_HOST"], port=int(env["DOVECOT_PORT"]), timeout=3)
        await client.wait_hello_from_server()
        ok = (await client.login(env["DOVECOT_USER"], env["DOVECOT_PASSWORD"])).result == "OK"
        await client.logout()
        return ok
    except Exception:  # noqa: BLE001 - anything means "not up"
        return False


@pytest.fixture(scope="session")
def dovecot() -> dict[str, str]:
    """Details of the Dovecot test server (``DOVECOT_HOST/PORT/USER/PASSWORD``), started if needed."""
    env_file = DOVECOT_DIR / "env"
    if env_file.exists() and asyncio.run(_imap_up(_read_env(env_file))):
        return _read_env(env_file)
    try:
        run = subprocess.run(["bash", str(DOVECOT_SCRIPT)], capture_output=True, text=True, timeout=600,
                             env={**os.environ, "CHATCOMMERCE_DOVECOT_DIR": str(DOVECOT_DIR)})
        problem = None if run.returncode == 0 else (run.stderr or run.stdout).strip()[-800:]
    except (OSError, subprocess.TimeoutExpired) as exc:
        problem = repr(exc)
    if problem is None and env_file.exists() and asyncio.run(_imap_up(_read_env(env_file))):
        return _read_env(env_file)
    reason = f"Dovecot could not be started by {DOVECOT_SCRIPT.relative_to(REPO)}: {problem or 'not answering'}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"Dovecot is required under CI=true. {reason}")
    pytest.skip(reason)


class Mailbox:
    """Direct IMAP access to one throwaway folder of the test user (to APPEND and inspect)."""

    def __init__(self, env: dict[str, str], folder: str) -> None:
        self.env = env
        self.folder = folder
        self.client: aioimaplib.IMAP4 | None = None

    async def open(self) -> None:
        self.client = aioimaplib.IMAP4(host=self.env["DOVECOT_HOST"], port=int(self.env["DOVECOT_PORT"]), timeout=10)
        await self.client.wait_hello_from_server()
        assert (await self.client.login(self.env["DOVECOT_USER"], self.env["DOVECOT_PASSWORD"])).result == "OK"
        assert (await self.client.create(imap_mailbox(self.folder))).result == "OK"

    async def append(self, raw: bytes, *, seen: bool = False) -> None:
        assert self.client is not None
        response = await self.client.append(raw, mailbox=imap_mailbox(self.folder), flags="(\\Seen)" if seen else None)
        assert response.result == "OK", response

    async def unseen_count(self) -> int:
        assert self.client is not None
        response = await self.client.status(imap_mailbox(self.folder), "(UNSEEN)")
        line = b" ".join(bytes(x) for x in response.lines)
        return int(line.split(b"UNSEEN ")[1].split(b")")[0])

    async def close(self) -> None:
        if self.client is not None:
            await self.client.delete(imap_mailbox(self.folder))
            await self.client.logout()

    def channel(self, **settings: object) -> EmailChannel:
        return EmailChannel(
            credentials={"imap_password": self.env["DOVECOT_PASSWORD"]},
            settings={"imap_host": self.env["DOVECOT_HOST"], "imap_port": int(self.env["DOVECOT_PORT"]),
                      "imap_user": self.env["DOVECOT_USER"], "imap_ssl": False, "folder": self.folder,
                      "from_address": SHOP, "timeout": 10, **settings},
        )


@pytest.fixture
async def mailbox(dovecot: dict[str, str]) -> AsyncIterator[Mailbox]:
    box = Mailbox(dovecot, f"test-{uuid.uuid4().hex[:10]}")
    await box.open()
    yield box
    await box.close()


async def test_fetch_unseen_parses_each_kind_and_ignores_seen(mailbox: Mailbox) -> None:
    await mailbox.append(mail("From: old@example.com\nMessage-ID: <old@x>\n\nalready read\n"), seen=True)
    for raw in (PLAIN, HTML_ONLY, ATTACHMENT, REPLY, RUSSIAN_KOI8):
        await mailbox.append(raw)
    await mailbox.append(mail("From: a@example.com\nAuto-Submitted: auto-replied\n\nI am away\n"))
    channel = mailbox.channel()
    try:
        got = await channel.fetch_unseen()
    finally:
        await channel.aclose()
    assert [m.source_id for m in got] == ["<plain-1@example.com>", "<html-1@example.org>", "<att-1@example.net>",
                                          "<reply-2@example.com>", "<ru-1@example.ru>"]
    assert [m.uid for m in got] == sorted(m.uid for m in got if m.uid is not None)
    by_id = {m.source_id: m for m in got}
    assert by_id["<plain-1@example.com>"].text == "Hello! Do you have red sneakers in size 42?"
    assert by_id["<plain-1@example.com>"].contact_source_id == "ivan.petrov@example.com"
    assert by_id["<html-1@example.org>"].text.startswith("Hi,\n\nI would like to order the blue mug.")
    assert by_id["<att-1@example.net>"].text.endswith("[attachment: invoice.pdf]\n[attachment: счёт.exe]")
    assert by_id["<reply-2@example.com>"].text == "Yes, please deliver it on Friday.\n\nThanks,\nIvan"
    assert by_id["<ru-1@example.ru>"].text == "Здравствуйте! Сколько стоит доставка в Москву?"
    assert by_id["<ru-1@example.ru>"].contact_name == "Иван Петров"
    assert all(m.received_at.tzinfo is not None for m in got)
    # The auto-reply was marked seen by the adapter; the five customer mails are still unseen.
    assert await mailbox.unseen_count() == 5


async def test_mark_seen_after_storing(mailbox: Mailbox) -> None:
    await mailbox.append(PLAIN)
    await mailbox.append(REPLY)
    channel = mailbox.channel()
    try:
        first = await channel.fetch_unseen()
        again = await channel.fetch_unseen()  # not marked yet: fetched again (BODY.PEEK does not set \Seen)
        assert [m.uid for m in again] == [m.uid for m in first]
        await channel.mark_seen([first[0].uid])
        assert [m.source_id for m in await channel.fetch_unseen()] == ["<reply-2@example.com>"]
        await channel.mark_seen(m.uid for m in first)
        assert await channel.fetch_unseen() == []
        await mailbox.append(HTML_ONLY)
        assert [m.source_id for m in await channel.fetch_unseen()] == ["<html-1@example.org>"]
    finally:
        await channel.aclose()


async def test_reconnects_when_the_held_session_died(mailbox: Mailbox) -> None:
    await mailbox.append(PLAIN)
    channel = mailbox.channel()
    try:
        assert len(await channel.fetch_unseen()) == 1
        assert channel._imap is not None
        channel._imap.protocol.transport.close()  # the server or network dropped us
        await asyncio.sleep(0.05)
        got = await channel.fetch_unseen()
        await channel.mark_seen([m.uid for m in got])
        assert await mailbox.unseen_count() == 0
    finally:
        await channel.aclose()


async def _collect_with_watch(channel: EmailChannel, mailbox: Mailbox, **watch_args: float) -> None:
    received: asyncio.Queue[InboundMail] = asyncio.Queue()

    async def handler(item: InboundMail) -> None:
        await received.put(item)

    await mailbox.append(PLAIN)
    stop = asyncio.Event()
    task = asyncio.create_task(channel.watch(handler, stop_event=stop, **watch_args))
    try:
        first = await asyncio.wait_for(received.get(), timeout=10)
        assert first.source_id == "<plain-1@example.com>"
        if channel.settings.get("imap_idle", True):
            for _ in range(200):
                if channel.idling:
                    break
                await asyncio.sleep(0.05)
            assert channel.idling, "watch did not enter IDLE"
        await mailbox.append(REPLY)
        second = await asyncio.wait_for(received.get(), timeout=10)
        assert second.source_id == "<reply-2@example.com>"
        for _ in range(100):
            if await mailbox.unseen_count() == 0:
                break
            await asyncio.sleep(0.05)
        assert await mailbox.unseen_count() == 0
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=10)
    assert not channel.idling


async def test_watch_wakes_on_new_mail_with_idle(mailbox: Mailbox) -> None:
    # poll_interval is long: only IDLE can deliver the second mail within the timeout.
    await _collect_with_watch(mailbox.channel(), mailbox, poll_interval=600, idle_timeout=600)


async def test_watch_polls_without_idle(mailbox: Mailbox) -> None:
    await _collect_with_watch(mailbox.channel(imap_idle=False), mailbox, poll_interval=0.2)


async def test_watch_leaves_mail_unseen_when_the_handler_fails(mailbox: Mailbox) -> None:
    await mailbox.append(PLAIN)
    calls = 0
    stop = asyncio.Event()

    async def failing(item: InboundMail) -> None:
        nonlocal calls
        calls += 1
        stop.set()
        raise RuntimeError("database is down")

    channel = mailbox.channel(imap_idle=False)
    await asyncio.wait_for(channel.watch(failing, stop_event=stop, poll_interval=0.1), timeout=10)
    assert calls == 1
    assert await mailbox.unseen_count() == 1


async def test_folder_with_non_ascii_name(dovecot: dict[str, str]) -> None:
    box = Mailbox(dovecot, f"Заказы {uuid.uuid4().hex[:6]}")
    await box.open()
    try:
        await box.append(RUSSIAN_1251_QP)
        channel = box.channel()
        try:
            got = await channel.fetch_unseen()
        finally:
            await channel.aclose()
        assert [m.text for m in got] == ["Есть ли размер M?"]
    finally:
        await box.close()


async def test_wrong_password_and_missing_folder(mailbox: Mailbox) -> None:
    channel = mailbox.channel()
    channel.credentials["imap_password"] = "wrong"
    with pytest.raises(EmailError, match="login refused"):
        await channel.fetch_unseen()
    missing = mailbox.channel(folder="no-such-folder")
    with pytest.raises(EmailError, match="no-such-folder"):
        await missing.fetch_unseen()


async def test_status_checks_imap_and_smtp(mailbox: Mailbox) -> None:
    await mailbox.append(PLAIN)
    with smtp_server() as server:
        channel = mailbox.channel(smtp_host="127.0.0.1", smtp_port=server.port, smtp_starttls=False)
        status = await channel.status()
    assert status == {"status": "ok", "imap": "ok", "smtp": "ok", "unseen": 1, "idle": True}
    broken = mailbox.channel(smtp_host="127.0.0.1", smtp_port=free_port(), smtp_starttls=False, timeout=2)
    assert (await broken.status())["status"] == "error"
