"""Secrets at rest (Fernet), the process's key material, and constant-time token checks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken


class SecretBox:
    """Encrypts channel credentials and API keys for storage.

    The Fernet key is derived (SHA-256) from ``CHATCOMMERCE_SECRET_KEY``; without it a random key is
    kept in ``<data_dir>/secret.key`` (mode 0600), which is fine for a single-machine demo only.
    Raises ``ValueError`` from ``decrypt`` when the ciphertext was made with another key.
    """

    def __init__(self, *, key_material: str) -> None:
        digest = hashlib.sha256(key_material.encode()).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))

    @classmethod
    def from_settings(cls, *, secret_key: str | None, data_dir: Path) -> SecretBox:
        """The box keyed by :func:`key_material` (``secret_key``, else the demo key file)."""
        return cls(key_material=key_material(secret_key=secret_key, data_dir=data_dir))

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken as exc:
            raise ValueError("secret cannot be decrypted with the configured CHATCOMMERCE_SECRET_KEY") from exc


def key_material(*, secret_key: str | None, data_dir: Path) -> str:
    """The process's secret key material: ``CHATCOMMERCE_SECRET_KEY`` when set, else a random key kept
    in ``<data_dir>/secret.key`` (created now with mode 0600 when missing; single-machine demo only).
    Every keyed primitive (``SecretBox``, the web-chat visitor signer) derives its own key from it."""
    if secret_key:
        return secret_key
    path = data_dir / "secret.key"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process created it just now
            return path.read_text().strip()
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(32))
    return path.read_text().strip()


def tokens_match(given: str | None, expected: str | None) -> bool:
    """Compare two secrets in constant time; ``None`` on either side never matches."""
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def new_token(nbytes: int = 32) -> str:
    """Return a URL-safe random token of ``nbytes`` random bytes (32 bytes = 256 bits, 43 characters;
    payment pages, calendar feeds, webhook secrets)."""
    return secrets.token_urlsafe(nbytes)


def token_hash(token: str) -> str:
    """SHA-256 hex digest (64 characters) of a high-entropy bearer token: what is stored and indexed
    instead of the token itself. Plain SHA-256 is enough because the tokens are 256-bit random
    (no dictionary to try); low-entropy secrets such as passwords need a password hash instead."""
    return hashlib.sha256(token.encode()).hexdigest()


def token_matches_hash(token: str, stored_hash: str | None) -> bool:
    """Whether ``token`` hashes to ``stored_hash``, compared in constant time (``hmac.compare_digest``)."""
    if not token or not stored_hash:
        return False
    return hmac.compare_digest(token_hash(token).encode(), stored_hash.encode())
