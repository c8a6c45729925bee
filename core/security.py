"""Secrets at rest (Fernet), the process's key material, and constant-time token checks."""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from collections.abc import Sequence
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class SecretBox:
    """Encrypts channel credentials and other secrets for storage (Fernet, with key rotation).

    Each Fernet key is derived (SHA-256) from a key material string: ``key_material`` is the primary
    (``CHATCOMMERCE_SECRET_KEY``; without it a random key kept in ``<data_dir>/secret.key``, mode 0600,
    fine for a single-machine demo only), ``fallbacks`` are older materials
    (``CHATCOMMERCE_SECRET_KEY_FALLBACKS``) that can still decrypt during a rotation. New ciphertext
    is always made with the primary (``cryptography.fernet.MultiFernet``: encrypts with the first
    key, decrypts with any). ``decrypt`` raises ``ValueError`` when no configured key can read the
    ciphertext.
    """

    def __init__(self, *, key_material: str, fallbacks: Sequence[str] = ()) -> None:
        self._primary = _fernet(key_material)
        self._fernet = MultiFernet([self._primary, *(_fernet(m) for m in fallbacks if m and m != key_material)])

    @classmethod
    def from_settings(cls, *, secret_key: str | None, data_dir: Path, fallbacks: Sequence[str] = ()) -> SecretBox:
        """The box keyed by :func:`key_material` (``secret_key``, else the demo key file) and ``fallbacks``."""
        return cls(key_material=key_material(secret_key=secret_key, data_dir=data_dir), fallbacks=fallbacks)

    def encrypt(self, plaintext: str) -> str:
        """Fernet token (URL-safe base64 text) of ``plaintext`` under the primary key."""
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str:
        """Plaintext of a token made with the primary or any fallback key; ``ValueError`` otherwise."""
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken as exc:
            raise ValueError("secret cannot be decrypted with the configured CHATCOMMERCE_SECRET_KEY "
                             "(or CHATCOMMERCE_SECRET_KEY_FALLBACKS)") from exc

    def is_current(self, ciphertext: str) -> bool:
        """Whether ``ciphertext`` already decrypts with the primary key (nothing to rotate)."""
        try:
            self._primary.decrypt(ciphertext.encode())
        except InvalidToken:
            return False
        return True

    def rotate(self, ciphertext: str) -> str:
        """The same plaintext re-encrypted under the primary key (``MultiFernet.rotate``). Raises
        ``ValueError`` when no configured key can read ``ciphertext``."""
        try:
            return self._fernet.rotate(ciphertext.encode()).decode()
        except InvalidToken as exc:
            raise ValueError("secret cannot be decrypted with any configured key") from exc


def _fernet(material: str) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(material.encode()).digest()))


def mask_secret(value: object, *, keep: int = 4) -> str:
    """A secret shown to people: ``"••••"`` and its last ``keep`` characters (``"••••a1b2"``); values of
    fewer than ``3 * keep`` characters (and non-strings) show nothing of themselves: ``"••••"``."""
    text = value if isinstance(value, str) else ""
    if len(text) < 3 * keep:
        return "••••"
    return "••••" + text[-keep:]


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
