"""Assigned conversations: "assigned to me" is the signed-in person, taking over or replying assigns the
conversation to whoever did it, a person is assigned only conversations of companies they may serve, and
the assignee is a real user (a foreign key: removing the user or their company unassigns). Through the
HTTP API and the CLI, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import delete, select

from core.models import Conversation, ConversationNote, User
from tests.auth_helpers import app_with_mail, bearer, invite_manager, signup
from tests.test_api import AUTH, Env, say
from tests.test_cli import Cli, setup_shop
from tests.test_cli_login import PASSWORD, _people

pytestmark = pytest.mark.postgres

T = "/api/v1/tenants/ann"
X = f"{T}/companies/shop-x"
Y = f"{T}/companies/shop-y"


async def _ids(env: Env, path: str, headers: dict[str, str], **params: str) -> list[str]:
    r = await env.client.get(f"{path}/conversations", params=params, headers=headers)
    assert r.status_code == 200, r.text
    return sorted(c["id"] for c in r.json())


async def _assignee(env: Env, conversation_id: str) -> uuid.UUID | None:
    async with env.runtime.sessionmaker() as s:
        return (await s.get(Conversation, uuid.UUID(conversation_id))).assignee_user_id  # type: ignore[union-attr]


async def test_assigned_to_me_follows_the_signed_in_person(database_url: str, tmp_path: Path) -> None:
    async with app_with_mail(database_url, tmp_path) as (env, smtp):
        c = env.client
        ann_token = (await signup(c, smtp, "ann@example.com", "ann"))["access_token"]
        ann = bearer(ann_token)
        for slug in ("shop-x", "shop-y"):
            assert (await c.post(f"{T}/companies", json={"slug": slug, "name": slug}, headers=ann)).status_code == 201
        mx = bearer((await invite_manager(c, smtp, ann_token, "ann", "shop-x", "max@example.com"))["access_token"])
        sue = bearer((await invite_manager(c, smtp, ann_token, "ann", "shop-y", "sue@example.com"))["access_token"])
        key = bearer((await c.post(f"{T}/api-keys", json={"name": "script"}, headers=ann)).json()["key"])
        me = {name: uuid.UUID((await c.get("/api/v1/auth/me", headers=h)).json()["user_id"])
              for name, h in (("ann", ann), ("max", mx), ("sue", sue))}
        one = (await say(c, "shop-x", "v1", "hello"))["conversation_id"]
        two = (await say(c, "shop-x", "v2", "hi"))["conversation_id"]
        three = (await say(c, "shop-y", "v3", "hey"))["conversation_id"]
        assert await _ids(env, X, mx, assigned="me") == []

        # Max takes one over: it is his, and only his "assigned to me" shows it.
        r = await c.post(f"{X}/conversations/{one}/handoff", headers=mx)
        assert r.status_code == 200 and r.json()["assignee_user_id"] == str(me["max"])
        assert await _ids(env, X, mx, assigned="me") == [one]
        assert await _ids(env, X, ann, assigned="me") == []
        # Ann replies in two (nobody assigned): it becomes hers; a reply does not steal Max's one.
        assert (await c.post(f"{X}/conversations/{two}/messages", json={"text": "Ann here"},
                             headers=ann)).status_code == 201
        assert (await c.post(f"{X}/conversations/{one}/messages", json={"text": "me too"},
                             headers=ann)).status_code == 201
        assert await _ids(env, X, ann, assigned="me") == [two]
        assert await _ids(env, T, ann, assigned="me") == [two]  # the tenant-wide inbox too
        assert await _ids(env, X, mx, assigned="me") == [one]
        assert await _ids(env, X, ann, assignee=str(me["max"])) == [one]
        assert await _ids(env, X, ann, assignee=str(uuid.uuid4())) == []

        # API keys and the admin token are nobody: "me" is a clear 400; taking over keeps the assignee.
        for nobody in (key, AUTH):
            r = await c.get(f"{X}/conversations", params={"assigned": "me"}, headers=nobody)
            assert r.status_code == 400 and "signed-in person" in r.json()["detail"]
        assert (await c.post(f"{X}/conversations/{two}/handoff", headers=key)).status_code == 200
        assert await _assignee(env, two) == me["ann"]
        r = await c.get(f"{X}/conversations", params={"assigned": "me", "assignee": str(me["ann"])}, headers=mx)
        assert r.status_code == 400

        # Assigning by hand: Sue manages shop-y only, so she cannot get a conversation of shop-x.
        r = await c.put(f"{X}/conversations/{one}/assignee", json={"user_id": str(me["sue"])}, headers=ann)
        assert r.status_code == 422 and "cannot be assigned" in r.json()["detail"]
        r = await c.put(f"{X}/conversations/{one}/assignee", json={"user_id": str(uuid.uuid4())}, headers=ann)
        assert r.status_code == 422
        assert await _assignee(env, one) == me["max"]
        r = await c.put(f"{Y}/conversations/{three}/assignee", json={"user_id": str(me["sue"])}, headers=ann)
        assert r.status_code == 200 and r.json()["assignee_user_id"] == str(me["sue"])
        assert await _ids(env, Y, sue, assigned="me") == [three]
        r = await c.put(f"{X}/conversations/{two}/assignee", json={"user_id": None}, headers=mx)
        assert r.status_code == 200 and r.json()["assignee_user_id"] is None
        # Sue cannot even see shop-x's conversations (404), let alone take one.
        assert (await c.post(f"{X}/conversations/{two}/handoff", headers=sue)).status_code == 404

        # A note is signed by its writer.
        r = await c.post(f"{X}/conversations/{one}/notes", json={"text": "VIP"}, headers=mx)
        assert r.status_code == 201 and r.json()["author_user_id"] == str(me["max"])

        # Max stops managing shop-x: his conversations there are nobody's now.
        assert (await c.delete(f"{T}/managers/shop-x", headers=ann)).status_code == 200
        assert await _assignee(env, one) is None
        assert await _assignee(env, three) == me["sue"]

        # Deleting a user unassigns their conversations and keeps their notes, unsigned.
        async with env.runtime.sessionmaker() as s, s.begin():
            await s.execute(delete(User).where(User.id.in_([me["sue"], me["max"]])))
        assert await _assignee(env, three) is None
        async with env.runtime.sessionmaker() as s:
            note = (await s.execute(select(ConversationNote))).scalar_one()
            assert note.text == "VIP" and note.author_user_id is None


async def test_the_database_refuses_an_assignee_who_is_no_user(database_url: str, tmp_path: Path) -> None:
    async with app_with_mail(database_url, tmp_path) as (env, smtp):
        ann = bearer((await signup(env.client, smtp, "ann@example.com", "ann"))["access_token"])
        assert (await env.client.post(f"{T}/companies", json={"slug": "shop-x", "name": "X"},
                                      headers=ann)).status_code == 201
        one = (await say(env.client, "shop-x", "v1", "hello"))["conversation_id"]
        async with env.runtime.sessionmaker() as s:
            conv = await s.get(Conversation, uuid.UUID(one))
            assert conv is not None
            conv.assignee_user_id = uuid.uuid4()
            with pytest.raises(Exception, match="(?i)foreign key"):
                await s.commit()


def test_cli_mine_take_and_reply_act_for_the_signed_in_person(database_url: str, tmp_path: Path) -> None:
    env = {"CHATCOMMERCE_DATABASE_URL": database_url, "CHATCOMMERCE_DATA_DIR": str(tmp_path / "data"),
           "CHATCOMMERCE_SECRET_KEY": "test-secret-key", "CHATCOMMERCE_PUBLIC_BASE_URL": "http://testserver",
           "XDG_CONFIG_HOME": str(tmp_path / "config")}
    cli = Cli(env)
    setup_shop(cli)
    cli.json("companies", "create", "--tenant", "acme", "--slug", "acme-outlet", "--name", "Outlet")
    setup_shop(cli, tenant="globex", company="globex-shop")
    _people(env)  # ann owns acme, max manages acme-shop
    for company, contact in (("acme-shop", "c1"), ("acme-shop", "c2"), ("acme-outlet", "c3")):
        cli.run("chat", "--company", company, "--contact", contact, input="hello\n")
    first, second = sorted(c["id"] for c in cli.json("conversations", "list", "--company", "acme-shop")["items"])
    [outlet] = [c["id"] for c in cli.json("conversations", "list", "--company", "acme-outlet")["items"]]

    # The local operator is nobody: --mine is refused with a reason.
    refused = cli.run("conversations", "list", "--company", "acme-shop", "--mine", ok=False)
    assert refused.exit_code == 1 and "chatcommerce login" in refused.stderr

    cli.run("login", "--email", "max@example.com", input=PASSWORD + "\n")
    assert cli.json("conversations", "list", "--company", "acme-shop", "--mine")["items"] == []
    taken = cli.json("conversations", "take", first)
    me = cli.json("whoami")["user_id"]
    assert taken["handoff"] is True and taken["assignee_user_id"] == me
    cli.run("conversations", "reply", second, "on it")
    mine = cli.json("conversations", "list", "--company", "acme-shop", "--mine")["items"]
    assert sorted(c["id"] for c in mine) == [first, second]
    # A conversation of a company Max does not manage is "not found" for him, by id too.
    other = cli.run("conversations", "take", outlet, ok=False)
    assert other.exit_code == 1 and "not found" in other.stderr

    cli.run("logout")
    cli.run("login", "--email", "ann@example.com", input=PASSWORD + "\n")
    assert cli.json("conversations", "list", "--tenant", "acme", "--mine")["items"] == []
    # The owner hands one of Max's conversations to herself, and the outlet's to nobody else but her:
    # Max does not manage the outlet, and an unknown address gets the same answer.
    assert cli.json("conversations", "assign", first, "--me")["assignee_user_id"] == cli.json("whoami")["user_id"]
    for who in ("max@example.com", "nobody@example.com"):
        refused = cli.run("conversations", "assign", outlet, "--to", who, ok=False)
        assert refused.exit_code == 1 and "cannot be assigned" in refused.stderr
    assert cli.json("conversations", "assign", second, "--to", "MAX@example.com")["assignee_user_id"] == me
    assert "nobody assigned" in cli.run("conversations", "assign", second, "--nobody").stdout
    mine = cli.json("conversations", "list", "--tenant", "acme", "--mine")["items"]
    assert [c["id"] for c in mine] == [first]
