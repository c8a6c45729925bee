"""Secrets at rest (Fernet) and constant-time token checks."""

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
        if secret_key:
            return cls(key_material=secret_key)
        path = data_dir / "secret.key"
        if not path.exists():
            data_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_urlsafe(32))
        return cls(key_material=path.read_text().strip())

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken as exc:
            raise ValueError("secret cannot be decrypted with the configured CHATCOMMERCE_SECRET_KEY") from exc


def tokens_match(given: str | None, expected: str | None) -> bool:
    """Compare two secrets in constant time; ``None`` on either side never matches."""
    if not given or not expected:
        return False
    return hmac.compare_digest(given.encode(), expected.encode())


def new_token(nbytes: int = 24) -> str:
    """Return a URL-safe random token (for payment pages, webhook secrets)."""
    return secrets.token_urlsafe(nbytes)
