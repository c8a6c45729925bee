"""Password hashing with ``pwdlib`` (Argon2id, the library's recommended parameters).

Hashing is deliberately slow (tens of milliseconds of CPU), so the async helpers run it in a worker
thread and never on the event loop.
"""

from __future__ import annotations

import asyncio
from functools import lru_cache

from pwdlib import PasswordHash

MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 256


@lru_cache(maxsize=1)
def _hasher() -> PasswordHash:
    return PasswordHash.recommended()


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _hasher().hash("chatcommerce-dummy-password")


def check_password_rules(password: str) -> str | None:
    """Why ``password`` is refused (``None`` when it is acceptable): 10 to 256 characters."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"password must have at least {MIN_PASSWORD_LENGTH} characters"
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"password must have at most {MAX_PASSWORD_LENGTH} characters"
    return None


async def hash_password(password: str) -> str:
    """The Argon2id hash of ``password`` (PHC string, about 100 characters), computed in a thread."""
    return await asyncio.to_thread(_hasher().hash, password)


async def verify_password(password: str, stored_hash: str | None) -> bool:
    """Whether ``password`` matches ``stored_hash``. With no stored hash a dummy hash is checked, so a
    missing account takes as long to refuse as a wrong password (no user enumeration by timing)."""
    if stored_hash is None:
        await asyncio.to_thread(_hasher().verify, password, _dummy_hash())
        return False
    return await asyncio.to_thread(_hasher().verify, password, stored_hash)
