"""A real SMTP server for tests: ``aiosmtpd``'s ``Controller`` on 127.0.0.1 that records what it accepts.

``fail_data`` lists the replies the first DATA commands get (e.g. ``["451 4.3.0 Try again later"] * 2``);
later DATA commands are accepted. ``auth`` = ``(user, password)`` requires SMTP AUTH (allowed without
TLS, loopback only).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


@dataclass(frozen=True, slots=True)
class Received:
    """One accepted message: envelope sender and recipients and the raw content."""

    mail_from: str
    rcpt_tos: tuple[str, ...]
    content: bytes

    def message(self) -> EmailMessage:
        """The content parsed with the modern ``email`` API (decoded headers, ``get_content``)."""
        parsed = message_from_bytes(self.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class RecordingHandler:
    """aiosmtpd handler: counts DATA attempts, answers ``fail_data`` replies first, records the rest."""

    fail_data: list[str] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    data_attempts: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd hook name
        with self._lock:
            self.data_attempts += 1
            if self.fail_data:
                return self.fail_data.pop(0)
            self.received.append(Received(mail_from=envelope.mail_from, rcpt_tos=tuple(envelope.rcpt_tos),
                                          content=bytes(envelope.original_content or envelope.content)))
        return "250 2.0.0 Message accepted for delivery"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class _Authenticator:
    def __init__(self, user: str, password: str) -> None:
        self.user = user.encode()
        self.password = password.encode()
        self.logins: list[str] = []

    def __call__(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        if isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (self.user, self.password):
            self.logins.append(auth_data.login.decode())
            return AuthResult(success=True)
        return AuthResult(success=False, handled=False)


@dataclass
class SMTPServer:
    """A running server: ``host``/``port`` to point the adapter at, ``handler.received`` to assert on."""

    host: str
    port: int
    handler: RecordingHandler
    authenticator: _Authenticator | None = None

    @property
    def received(self) -> list[Received]:
        return self.handler.received


@contextmanager
def smtp_server(*, fail_data: list[str] | None = None, auth: tuple[str, str] | None = None) -> Iterator[SMTPServer]:
    """Run an aiosmtpd server on 127.0.0.1 (a free port) for the ``with`` block."""
    handler = RecordingHandler(fail_data=list(fail_data or []))
    authenticator = _Authenticator(*auth) if auth else None
    kwargs: dict[str, Any] = {}
    if authenticator is not None:
        kwargs = {"authenticator": authenticator, "auth_require_tls": False, "auth_required": True}
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield SMTPServer(host="127.0.0.1", port=port, handler=handler, authenticator=authenticator)
    finally:
        controller.stop()
