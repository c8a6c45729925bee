"""Signed web-chat visitor tokens (``itsdangerous``); the HTTP side is ``api.visitors``.

A visitor is a server-generated random id (``web-`` + 128 random bits) inside a token signed with
``itsdangerous.URLSafeTimedSerializer`` (HMAC-SHA256 over a key derived from the process's key material:
``CHATCOMMERCE_SECRET_KEY``, or the demo key file, see ``core.security.key_material``; the same
construction as Starlette's ``SessionMiddleware``). The signing salt names the company and the
payload repeats its id, so a token issued by company A's chat is not valid at company B.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from collections.abc import Sequence

from itsdangerous import BadSignature, URLSafeTimedSerializer

MAX_TOKEN_LENGTH = 512
_SALT = "chatcommerce.webchat-visitor"


def new_visitor_id() -> str:
    """A fresh random visitor id, ``web-`` + 22 URL-safe characters (128 random bits)."""
    return "web-" + secrets.token_urlsafe(16)


class VisitorSigner:
    """Signs and checks visitor tokens (``itsdangerous.URLSafeTimedSerializer``).

    ``key_material`` is the process's secret (``core.security.key_material``); ``max_age_seconds`` is
    how long a token stays valid after it was signed (the cookie is re-signed on every message, so
    an active browser visitor keeps its identity). ``fallbacks`` are previous key materials
    (``CHATCOMMERCE_SECRET_KEY_FALLBACKS``) whose tokens are still accepted during a key rotation;
    new tokens are signed with ``key_material`` (itsdangerous key rotation: the last key signs).
    """

    def __init__(self, *, key_material: str, max_age_seconds: int, fallbacks: Sequence[str] = ()) -> None:
        self._keys = [*reversed([m for m in fallbacks if m and m != key_material]), key_material]
        self.max_age_seconds = max_age_seconds

    def _serializer(self, company_id: uuid.UUID) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(self._keys, salt=f"{_SALT}:{company_id}",
                                      signer_kwargs={"digest_method": hashlib.sha256})

    def sign(self, *, company_id: uuid.UUID, visitor_id: str) -> str:
        """The token naming ``visitor_id`` at company ``company_id`` (URL-safe, about 110 characters)."""
        return self._serializer(company_id).dumps({"c": str(company_id), "v": visitor_id})

    def visitor_of(self, token: str | None, *, company_id: uuid.UUID) -> str | None:
        """The visitor id in ``token`` when it was signed by this server for ``company_id`` and is not
        older than ``max_age_seconds``; ``None`` for anything else (never raises)."""
        if not token or len(token) > MAX_TOKEN_LENGTH:
            return None
        try:
            data = self._serializer(company_id).loads(token, max_age=self.max_age_seconds)
        except BadSignature:  # also SignatureExpired and malformed payloads
            return None
        if not isinstance(data, dict) or data.get("c") != str(company_id):
            return None
        visitor = data.get("v")
        if not isinstance(visitor, str) or not visitor.startswith("web-") or len(visitor) > 64:
            return None
        return visitor
