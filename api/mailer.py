"""Outgoing account e-mails (verification codes, magic links, password resets, invitations) through
SMTP with ``aiosmtplib``. Configured by ``CHATCOMMERCE_SMTP_*``; without ``SMTP_HOST`` there is no mailer.
"""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import make_msgid

import aiosmtplib

from core.settings import Settings


class MailError(RuntimeError):
    """The SMTP server could not be reached or refused the message (the text says which)."""


class Mailer:
    """Sends plain-text UTF-8 mails. ``starttls`` upgrades a plain connection (port 587); ``use_tls``
    is implicit TLS (port 465). Raises ``MailError`` from :meth:`send`."""

    def __init__(self, *, host: str, port: int, sender: str, username: str | None = None,
                 password: str | None = None, starttls: bool = True, use_tls: bool = False,
                 timeout: float = 30.0) -> None:
        self.host, self.port, self.sender = host, port, sender
        self._username, self._password = username, password
        self._starttls, self._use_tls, self._timeout = starttls, use_tls, timeout

    @classmethod
    def from_settings(cls, settings: Settings) -> Mailer | None:
        """The mailer of ``CHATCOMMERCE_SMTP_*``, or ``None`` when ``SMTP_HOST`` is unset."""
        if not settings.smtp_host:
            return None
        return cls(host=settings.smtp_host, port=settings.smtp_port, sender=settings.smtp_from,
                   username=settings.smtp_username,
                   password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
                   starttls=settings.smtp_starttls and not settings.smtp_tls, use_tls=settings.smtp_tls)

    async def send(self, *, to: str, subject: str, text: str) -> None:
        """Send one mail to ``to``."""
        message = EmailMessage()
        message["From"] = self.sender
        message["To"] = to
        message["Subject"] = subject
        message["Message-ID"] = make_msgid(domain=self.sender.rsplit("@", 1)[-1].strip("> ") or "localhost")
        message["Auto-Submitted"] = "auto-generated"
        message.set_content(text)
        try:
            await aiosmtplib.send(message, hostname=self.host, port=self.port, username=self._username,
                                  password=self._password, start_tls=self._starttls, use_tls=self._use_tls,
                                  timeout=self._timeout)
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise MailError(f"mail to the SMTP server {self.host}:{self.port} failed: {type(exc).__name__}") from exc
