"""Accounts through the HTTP API, on SQLite and PostgreSQL: sign-up → verify → login → refresh →
reuse detection, magic links, password reset, API keys, manager assignment and sign-in rate limits.
Mails go to a real local SMTP server (aiosmtpd, ``tests.doubles.smtp_server``)."""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import timedelta
from pathlib import Path

import jwt
import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

import api.auth_tokens
from api.auth_tokens import TokenService
from core.models import ApiKey, AuthCode, Company, CompanyManager, RefreshToken, User
from core.timeutil import utcnow
from tests.auth_helpers import (
    PASSWORD,
    app_with_mail,
    bearer,
    invite_manager,
    last_code,
    last_link_token,
    login,
    mails_to,
    signup,
)
from tests.test_api import AUTH

pytestmark = pytest.mark.postgres


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


async def test_signup_verify_login_refresh_and_reuse_detection(database_url: str, tmp_path: Path) -> None:
    async with app_with_mail(database_url, tmp_path) as (env, smtp):
        c = env.client
        body = {"email": "Ann@Example.com", "password": PASSWORD, "tenant_name": "Ann's", "tenant_slug": "ann"}
        short = await c.post("/api/v1/auth/signup", json={**body, "password": "short"})
        assert short.status_code == 422 and "10 characters" in short.json()["detail"]
        r = await c.post("/api/v1/auth/signup", json=body)
        assert r.status_code == 201, r.text
        assert r.json()["email"] == "ann@example.com" and r.json()["tenant"]["slug"] == "ann"
        assert r.json()["verification_sent"] is True
        again = await c.post("/api/v1/auth/signup", json={**body, "tenant_slug": "ann2"})
        assert again.status_code == 422 and "already registered" in again.json()["detail"]

        # Not verified yet: the right password is not enough.
        early = await c.post("/api/v1/auth/login", json={"email": "ann@example.com", "password": PASSWORD})
        assert early.status_code == 403 and "verify" in early.json()["detail"]
        code = last_code(smtp, "ann@example.com")
        wrong = "000000" if code != "000000" else "111111"
        refused = await c.post("/api/v1/auth/verify", json={"email": "ann@example.com", "code": wrong})
        assert refused.status_code == 400
        ok = await c.post("/api/v1/auth/verify", json={"email": "ANN@example.com", "code": code})
        assert ok.status_code == 200 and ok.json() == {"verified": True}
        spent = await c.post("/api/v1/auth/verify", json={"email": "ann@example.com", "code": code})
        assert spent.status_code == 400
        async with env.runtime.sessionmaker() as s:
            stored = list((await s.execute(select(AuthCode.code_hash))).scalars())
        assert stored and code not in stored and all(len(h) == 64 for h in stored)

        bad = await c.post("/api/v1/auth/login", json={"email": "ann@example.com", "password": "wrong password!"})
        nobody = await c.post("/api/v1/auth/login", json={"email": "bob@example.com", "password": PASSWORD})
        assert bad.status_code == nobody.status_code == 401 and bad.json() == nobody.json()

        first = await login(c, "ann@example.com")
        assert first["token_type"] == "bearer" and first["expires_in"] == 15 * 60
        me = await c.get("/api/v1/auth/me", headers=bearer(first["access_token"]))
        assert me.status_code == 200
        assert me.json()["email"] == "ann@example.com" and me.json()["tenants"] == [
            {"slug": "ann", "name": "Ann's", "role": "owner"}]
        # The owner works in their tenant with the access token.
        created = await c.post("/api/v1/tenants/ann/companies", json={"slug": "ann-shop", "name": "Shop"},
                               headers=bearer(first["access_token"]))
        assert created.status_code == 201, created.text

        # Refresh rotates: the old refresh token is spent, the new pair works.
        r = await c.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
        assert r.status_code == 200
        second = r.json()
        assert second["refresh_token"] != first["refresh_token"]
        assert (await c.get("/api/v1/auth/me", headers=bearer(second["access_token"]))).status_code == 200
        async with env.runtime.sessionmaker() as s:
            hashes = set((await s.execute(select(RefreshToken.token_hash))).scalars())
        assert _sha256(second["refresh_token"]) in hashes and second["refresh_token"] not in hashes

        # A second sign-in (another device) is another family.
        other_device = await login(c, "ann@example.com")

        # Reusing the spent token revokes its whole family, including the newest token.
        reuse = await c.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
        assert reuse.status_code == 401 and "reused" in reuse.json()["detail"]
        stolen = await c.post("/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]})
        assert stolen.status_code == 401 and "revoked" in stolen.json()["detail"]
        # ... but not the other device's sign-in.
        r = await c.post("/api/v1/auth/refresh", json={"refresh_token": other_device["refresh_token"]})
        assert r.status_code == 200
        third = r.json()

        # Logout revokes the family.
        assert (await c.post("/api/v1/auth/logout", json={"refresh_token": third["refresh_token"]})).status_code == 204
        gone = await c.post("/api/v1/auth/refresh", json={"refresh_token": third["refresh_token"]})
        assert gone.status_code == 401

        # Forged and foreign access tokens are refused.
        claims = jwt.decode(second["access_token"], options={"verify_signature": False})
        forged = jwt.encode(claims, "not-the-server-key-but-long-enough-32b", algorithm="HS256")
        none_alg = jwt.encode(claims, None, algorithm="none")
        for token in (forged, none_alg, second["access_token"][:-3] + "abc", "garbage"):
            r = await c.get("/api/v1/auth/me", headers=bearer(token))
            assert r.status_code == 401, token


async def test_verification_code_is_spent_after_five_wrong_tries(database_url: str, tmp_path: Path) -> None:
    async with app_with_mail(database_url, tmp_path) as (env, smtp):
        c = env.client
        r = await c.post("/api/v1/auth/signup", json={"email": "eve@example.com", "password": PASSWORD,
                                                       "tenant_name": "Eve", "tenant_slug": "eve"})
        assert r.status_code == 201
        code = last_code(smtp, "eve@example.com")
        wrong = [f"{(int(code) + i) % 10**6:06d}" for i in range(1, 6)]
        for guess in wrong:
            r = await c.post("/api/v1/auth/verify", json={"email": "eve@example.com", "code": guess})
            assert r.status_code == 400
        late = await c.post("/api/v1/auth/verify", json={"email": "eve@example.com", "code": code})
        assert late.status_code == 400
        # A new code can be asked for, and works.
        assert (await c.post("/api/v1/auth/verify/resend", json={"email": "eve@example.com"})).status_code == 202
        fresh = last_code(smtp, "eve@example.com")
        r = await c.post("/api/v1/auth/verify", json={"email": "eve@example.com", "code": fresh})
        assert r.status_code == 200


async def test_magic_link_signs_in_once(database_url: str, tmp_path: Path) -> None:
    async with app_with_mail(database_url, tmp_path) as (env, smtp):
        c = env.client
        await signup(c, smtp, "mia@example.com", "mia")
        unknown = await c.post("/api/v1/auth/magic-link", json={"email": "nobody@example.com"})
        assert unknown.status_code == 202 and mails_to(smtp, "nobody@example.com") == []
        r = await c.post("/api/v1/auth/magic-link", json={"email": "mia@example.com"})
        assert r.status_code == 202
        token = last_link_token(smtp, "mia@example.com")
        signed = await c.post("/api/v1/auth/magic-link/consume", json={"token": token})
        assert signed.status_code == 200
        me = await c.get("/api/v1/auth/me", headers=bearer(signed.json()["access_token"]))
        assert me.json()["email"] == "mia@example.com"
        assert (await c.post("/api/v1/auth/magic-link/consume", json={"token": token})).status_code == 400
        # A newer link spends the older one.
        await c.post("/api/v1/auth/magic-link", json={"email": "mia@example.com"})
        older = last_link_token(smtp, "mia@example.com")
        await c.post("/api/v1/auth/magic-link", json={"email": "mia@example.com"})
        assert (await c.post("/api/v1/auth/magic-link/consume", json={"token": older})).status_code == 400
        newest = last_link_token(smtp, "mia@example.com")
        assert (await c.post("/api/v1/auth/magic-link/consume", json={"token": newest})).status_code == 200


async def test_password_reset(database_url: str, tmp_path: Path) -> None:
    async with app_with_mail(database_url, tmp_path) as (env, smtp):
        c = env.client
        before = await signup(c, smtp, "rob@example.com", "rob")
        assert (await c.post("/api/v1/auth/password-reset", json={"email": "rob@example.com"})).status_code == 202
        mail = mails_to(smtp, "rob@example.com")[-1]
        match = re.search(r"once\):\s+(\S+)", mail)
        assert match, mail
        token = match.group(1)
        short = await c.post("/api/v1/auth/password-reset/confirm", json={"token": token, "password": "short"})
        assert short.status_code == 422
        new_password = "a much better passphrase"
        done = await c.post("/api/v1/auth/password-reset/confirm", json={"token": token, "password": new_password})
        assert done.status_code == 204
        again = await c.post("/api/v1/auth/password-reset/confirm", json={"token": token, "password": new_password})
        assert again.status_code == 400
        old = await c.post("/api/v1/auth/login", json={"email": "rob@example.com", "password": PASSWORD})
        assert old.status_code == 401
        await login(c, "rob@example.com", new_password)
        # Sign-ins made with the old password are revoked.
        r = await c.post("/api/v1/auth/refresh", json={"refresh_token": before["refresh_token"]})
        assert r.status_code == 401


async def test_api_keys_shown_once_hashed_used_and_revoked(database_url: str, tmp_path: Path) -> None:
    async with app_with_mail(database_url, tmp_path) as (env, smtp):
        c = env.client
        ann = await signup(c, smtp, "ann@example.com", "ann")
        bob = await signup(c, smtp, "bob@example.com", "bob")
        r = await c.post("/api/v1/tenants/ann/api-keys", json={"name": "nightly export"},
                         headers=bearer(ann["access_token"]))
        assert r.status_code == 201, r.text
        created = r.json()
        key = created["key"]
        assert key.startswith("cc_") and len(key) == 46 and created["prefix"] == key[:10]
        listed = await c.get("/api/v1/tenants/ann/api-keys", headers=bearer(ann["access_token"]))
        assert [k["name"] for k in listed.json()] == ["nightly export"]
        assert "key" not in listed.json()[0] and listed.json()[0]["last_used_at"] is None
        async with env.runtime.sessionmaker() as s:
            row = (await s.execute(select(ApiKey))).scalar_one()
        assert row.key_hash == _sha256(key) and key not in (row.key_hash, row.prefix)

        # The key acts for its tenant...
        made = await c.post("/api/v1/tenants/ann/companies", json={"slug": "ann-shop", "name": "Shop"},
                            headers=bearer(key))
        assert made.status_code == 201
        assert [t["slug"] for t in (await c.get("/api/v1/tenants", headers=bearer(key))).json()] == ["ann"]
        listed = await c.get("/api/v1/tenants/ann/api-keys", headers=bearer(ann["access_token"]))
        assert listed.json()[0]["last_used_at"] is not None
        # ... not for another tenant (hidden), and cannot mint keys (people only).
        assert (await c.get("/api/v1/tenants/bob/companies", headers=bearer(key))).status_code == 404
        mint = await c.post("/api/v1/tenants/ann/api-keys", json={"name": "x"}, headers=bearer(key))
        assert mint.status_code == 403
        # Another tenant's owner cannot revoke it.
        foreign = await c.delete(f"/api/v1/tenants/bob/api-keys/{created['id']}", headers=bearer(bob["access_token"]))
        assert foreign.status_code == 404
        hidden = await c.delete(f"/api/v1/tenants/ann/api-keys/{created['id']}", headers=bearer(bob["access_token"]))
        assert hidden.status_code == 404
        revoked = await c.delete(f"/api/v1/tenants/ann/api-keys/{created['id']}", headers=bearer(ann["access_token"]))
        assert revoked.status_code == 200 and revoked.json()["revoked_at"]
        assert (await c.get("/api/v1/tenants/ann/companies", headers=bearer(key))).status_code == 401


async def test_manager_assignment(database_url: str, tmp_path: Path) -> None:
    async with app_with_mail(database_url, tmp_path) as (env, smtp):
        c = env.client
        ann = await signup(c, smtp, "ann@example.com", "ann")
        own = bearer(ann["access_token"])
        for slug in ("shop-x", "shop-y", "shop-z"):
            r = await c.post("/api/v1/tenants/ann/companies", json={"slug": slug, "name": slug}, headers=own)
            assert r.status_code == 201
        mgr = await invite_manager(c, smtp, ann["access_token"], "ann", "shop-x", "max@example.com")
        assert "invited to manage shop-x" in mails_to(smtp, "max@example.com")[0]
        m = bearer(mgr["access_token"])
        assert [t["slug"] for t in (await c.get("/api/v1/tenants", headers=m)).json()] == ["ann"]
        assert [x["slug"] for x in (await c.get("/api/v1/tenants/ann/companies", headers=m)).json()] == ["shop-x"]
        assert (await c.get("/api/v1/tenants/ann/companies/shop-x/conversations", headers=m)).status_code == 200
        assert (await c.get("/api/v1/tenants/ann/companies/shop-y/conversations", headers=m)).status_code == 404
        assert (await c.get("/api/v1/tenants/ann/companies/shop-x/inboxes", headers=m)).status_code == 403
        assert (await c.post("/api/v1/tenants/ann/companies", json={"slug": "m", "name": "m"},
                             headers=m)).status_code == 403
        # A manager cannot assign managers.
        assert (await c.post("/api/v1/tenants/ann/managers", json={"email": "x@example.com", "company": "shop-x"},
                             headers=m)).status_code == 403

        # One manager per company; one manager for many companies.
        taken = await c.post("/api/v1/tenants/ann/managers", json={"email": "sue@example.com", "company": "shop-x"},
                             headers=own)
        assert taken.status_code == 422 and "already has a manager" in taken.json()["detail"]
        r = await c.post("/api/v1/tenants/ann/managers", json={"email": "MAX@example.com", "company": "shop-y"},
                         headers=own)
        assert r.status_code == 201 and r.json()["invited"] is False
        assert [x["slug"] for x in (await c.get("/api/v1/tenants/ann/companies", headers=m)).json()] == [
            "shop-x", "shop-y"]
        listed = await c.get("/api/v1/tenants/ann/managers", headers=own)
        assert [(x["company"], x["email"]) for x in listed.json()] == [
            ("shop-x", "max@example.com"), ("shop-y", "max@example.com")]
        # The database refuses a second manager for a company, whatever the code does.
        async with env.runtime.sessionmaker() as s:
            company = (await s.execute(select(Company).where(Company.slug == "shop-x"))).scalar_one()
            sue = User(email="sue@example.com", is_active=True)
            s.add(sue)
            await s.flush()
            s.add(CompanyManager(tenant_id=company.tenant_id, company_id=company.id, user_id=sue.id))
            with pytest.raises(IntegrityError):
                await s.flush()
            await s.rollback()

        # Unassigned: the company disappears for the manager at once.
        assert (await c.delete("/api/v1/tenants/ann/managers/shop-x", headers=own)).status_code == 200
        assert (await c.get("/api/v1/tenants/ann/companies/shop-x/conversations", headers=m)).status_code == 404
        assert (await c.delete("/api/v1/tenants/ann/managers/shop-x", headers=own)).status_code == 404
        # A foreign company cannot be assigned.
        bob = await signup(c, smtp, "bob@example.com", "bob")
        r = await c.post("/api/v1/tenants/bob/managers", json={"email": "max@example.com", "company": "shop-z"},
                         headers=bearer(bob["access_token"]))
        assert r.status_code == 404


async def test_failed_sign_ins_are_rate_limited_per_account_and_address(database_url: str, tmp_path: Path) -> None:
    async with app_with_mail(database_url, tmp_path, login_limit_per_account="3/15 minutes",
                             login_limit_per_address="5/15 minutes") as (env, smtp):
        c = env.client
        for email, tenant in (("ann@example.com", "ann"), ("bob@example.com", "bob"), ("cy@example.com", "cy")):
            await signup(c, smtp, email, tenant)
        for _ in range(3):
            r = await c.post("/api/v1/auth/login", json={"email": "ann@example.com", "password": "not my password"})
            assert r.status_code == 401
        limited = await c.post("/api/v1/auth/login", json={"email": "ann@example.com", "password": PASSWORD})
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
        # Another account from the same address still signs in, until the address has failed 5 times.
        await login(c, "bob@example.com")
        for _ in range(2):
            r = await c.post("/api/v1/auth/login", json={"email": "bob@example.com", "password": "not my password"})
            assert r.status_code == 401
        blocked = await c.post("/api/v1/auth/login", json={"email": "cy@example.com", "password": PASSWORD})
        assert blocked.status_code == 429


async def test_admin_token_bootstraps_the_first_platform_admin(database_url: str, tmp_path: Path) -> None:
    async with app_with_mail(database_url, tmp_path) as (env, smtp):
        c = env.client
        ann = await signup(c, smtp, "ann@example.com", "ann")
        await signup(c, smtp, "bob@example.com", "bob")
        a = bearer(ann["access_token"])
        assert [t["slug"] for t in (await c.get("/api/v1/tenants", headers=a)).json()] == ["ann"]
        assert (await c.post("/api/v1/platform-admins", json={"email": "ann@example.com"},
                             headers=a)).status_code == 403
        r = await c.post("/api/v1/platform-admins", json={"email": "ann@example.com"}, headers=AUTH)
        assert r.status_code == 200 and r.json()["platform_admin"] is True
        assert [t["slug"] for t in (await c.get("/api/v1/tenants", headers=a)).json()] == ["ann", "bob"]
        assert (await c.get("/api/v1/tenants/bob/companies", headers=a)).status_code == 200


def test_access_tokens_expire_and_are_bound_to_the_server_key(monkeypatch: pytest.MonkeyPatch) -> None:
    def service(key: str) -> TokenService:
        return TokenService(key_material=key, access_minutes=15, refresh_days=30, code_minutes=15, reset_minutes=30)

    user = uuid.uuid4()
    ours, theirs = service("server-key"), service("another-server-key")
    token = ours.access_token(user)
    assert ours.user_of_access_token(token) == user
    assert theirs.user_of_access_token(token) is None
    # Issued 16 minutes ago: expired.
    monkeypatch.setattr(api.auth_tokens, "utcnow", lambda: utcnow() - timedelta(minutes=16))
    old = ours.access_token(user)
    monkeypatch.undo()
    assert ours.user_of_access_token(old) is None
