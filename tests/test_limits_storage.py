"""One ``limits`` storage for every rate limit (``api.limits_storage``): memory when nothing is configured,
Redis when ``CHATCOMMERCE_REDIS_URL`` is set unless ``CHATCOMMERCE_RATE_LIMIT_STORAGE`` overrides; two
server processes sharing Redis share the sign-in limit of an account. On SQLite and PostgreSQL."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest
from limits.aio.storage import MemoryStorage, RedisStorage

from api.limits_storage import LimitsStorageError, build_limits_storage
from core.passwords import hash_password
from core.users import create_user
from tests.test_api import make_settings, running

pytestmark = pytest.mark.postgres
REDIS_URL = "redis://127.0.0.1:6379/0"
PASSWORD = "correct horse battery"


async def test_the_storage_follows_the_settings(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'x.db'}"
    assert isinstance(build_limits_storage(make_settings(url, tmp_path)), MemoryStorage)
    redis = build_limits_storage(make_settings(url, tmp_path, redis_url=REDIS_URL))
    assert isinstance(redis, RedisStorage)
    override = make_settings(url, tmp_path, redis_url=REDIS_URL, rate_limit_storage="async+memory://")
    assert isinstance(build_limits_storage(override), MemoryStorage)
    with pytest.raises(LimitsStorageError, match="CHATCOMMERCE_RATE_LIMIT_STORAGE='memory://' is a synchronous"):
        build_limits_storage(make_settings(url, tmp_path, rate_limit_storage="memory://"))
    with pytest.raises(LimitsStorageError, match="CHATCOMMERCE_RATE_LIMIT_STORAGE='nowhere://x'"):
        build_limits_storage(make_settings(url, tmp_path, rate_limit_storage="nowhere://x"))


async def test_two_servers_sharing_redis_share_a_sign_in_limit(database_url: str, tmp_path: Path) -> None:
    settings = make_settings(database_url, tmp_path, redis_url=REDIS_URL, login_limit_per_account="3/15 minutes",
                             login_limit_per_address="100/15 minutes")
    if not await build_limits_storage(settings).check():
        if os.environ.get("CI") == "true":
            pytest.fail(f"Redis is required under CI=true but is not reachable at {REDIS_URL}")
        pytest.skip(f"Redis not reachable at {REDIS_URL}")
    email = f"ann-{uuid.uuid4().hex[:12]}@example.com"  # fresh counters in a Redis that outlives the test
    async with running(settings) as one, running(settings) as two:
        async with one.runtime.sessionmaker() as s, s.begin():
            await create_user(s, email=email, password_hash=await hash_password(PASSWORD), verified=True)

        async def login(env: object, password: str) -> int:
            r = await env.client.post("/api/v1/auth/login",  # type: ignore[attr-defined]
                                      json={"email": email, "password": password})
            return r.status_code

        assert [await login(one, "wrong one"), await login(two, "wrong two"), await login(one, "wrong 3")] == \
            [401, 401, 401]
        # The third failure was counted by the other process: the right password is refused on both.
        assert await login(two, PASSWORD) == 429
        assert await login(one, PASSWORD) == 429

    # Memory storage (no Redis): each process counts on its own.
    alone = make_settings(database_url, tmp_path, login_limit_per_account="3/15 minutes")
    async with running(alone) as one, running(alone) as two:
        for env in (one, one, two, two):
            r = await env.client.post("/api/v1/auth/login", json={"email": email, "password": "wrong"})
            assert r.status_code == 401
        assert (await two.client.post("/api/v1/auth/login",
                                      json={"email": email, "password": PASSWORD})).status_code == 200
