"""The assistant's settings through the admin API (issue 9): modes per company and inbox, the model
server with a write-only encrypted key, and a web-chat customer answered by the configured model."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select
from typer.testing import CliRunner

from api.cli import app as cli_app
from core.models import Company, Inbox
from tests.doubles.openai_server import OpenAIServerDouble, failure, reply
from tests.test_api import AUTH, make_company, make_settings, running, say

_C = "/api/v1/tenants/acme/companies/shop"


async def test_owner_sets_the_mode_and_a_model_server_whose_key_is_never_shown(database_url: str,
                                                                               tmp_path: Path) -> None:
    with OpenAIServerDouble() as model:
        async with running(make_settings(database_url, tmp_path), echo=False) as env:
            client = env.client
            await make_company(client, "acme", "shop")
            assert (await client.get(_C + "/assistant", headers=AUTH)).json()["assistant"]["mode"] == "rules"
            bad = await client.put(_C + "/assistant", json={"assistant": {"mode": "chaos"}}, headers=AUTH)
            assert bad.status_code == 422
            body = {"assistant": {"mode": "llm", "tone": "friendly", "rules": ["No discounts."]},
                    "model_server": {"base_url": model.base_url, "model": "test-model", "api_key": "sk-test-123",
                                     "input_usd_micros_per_mtok": 1_000_000}}
            r = await client.put(_C + "/assistant", json=body, headers=AUTH)
            assert r.status_code == 200, r.text
            shown = (await client.get(_C + "/assistant", headers=AUTH)).json()
            assert shown["model_server"]["api_key_set"] is True and "sk-test-123" not in str(shown)
            assert shown["model_server"]["api_key"] == "••••" and "api_key_secret" not in shown["model_server"]
            async with env.runtime.sessionmaker() as s:
                company = (await s.execute(select(Company).where(Company.slug == "shop"))).scalar_one()
                assert "sk-test-123" not in str(company.settings) and "api_key" not in str(company.settings)
                assert env.runtime.secret_box.decrypt(company.model_api_key or "") == "sk-test-123"
                inbox = (await s.execute(select(Inbox).where(Inbox.company_id == company.id,
                                                             Inbox.kind == "webchat"))).scalar_one()

            model.play(reply("Hi! I'm the shop's assistant."))
            answered = await say(client, "shop", "ann", "hello, who are you?")
            assert answered["replies"][0]["text"] == "Hi! I'm the shop's assistant."
            request = model.requests[-1]
            assert request["model"] == "test-model" and "No discounts." in request["messages"][0]["content"]

            # A manager sees what the model did and what it cost in the conversation.
            listed = (await client.get(_C + "/conversations", headers=AUTH)).json()
            detail = (await client.get(_C + f"/conversations/{listed[0]['id']}", headers=AUTH)).json()
            assert detail["assistant"]["model_turns"] == 1 and detail["assistant"]["usage"]["requests"] == 1
            assert detail["messages"][-1]["payload"]["assistant"] == {"mode": "llm", "by": "model", "fallback": None}

            shown = (await client.get(_C + "/assistant", headers=AUTH)).json()
            assert shown["tenant_spent_this_month_usd_micros"] == 100  # 100 prompt tokens at 1 USD per million

            # The web-chat inbox goes back to the rules: the model is not asked any more.
            r = await client.put(_C + f"/inboxes/{inbox.id}/assistant", json={"mode": "rules"}, headers=AUTH)
            assert r.status_code == 200 and r.json()["inboxes"] == {str(inbox.id): {"mode": "rules"}}
            await say(client, "shop", "ann", "hello again")
            assert len(model.requests) == 1
            r = await client.put(_C + f"/inboxes/{inbox.id}/assistant", json={"mode": "nope"}, headers=AUTH)
            assert r.status_code == 422


async def test_the_assist_share_is_reported_for_a_date_range_by_the_api_and_the_cli(database_url: str,
                                                                                  tmp_path: Path) -> None:
    settings = make_settings(database_url, tmp_path, openai_max_retries=0)
    with OpenAIServerDouble() as model:
        async with running(settings, echo=False) as env:
            client = env.client
            await make_company(client, "acme", "shop")
            body = {"assistant": {"mode": "assist"},
                    "model_server": {"base_url": model.base_url, "model": "test-model",
                                     "input_usd_micros_per_mtok": 1_000_000, "output_usd_micros_per_mtok": 2_000_000}}
            assert (await client.put(_C + "/assistant", json=body, headers=AUTH)).status_code == 200
            await say(client, "shop", "ann", "hello")  # the rules understand: not sent to the model
            model.play(reply("Could you tell me a little more about what you need?"))
            await say(client, "shop", "ann", "qwertyuiop zxcvbnm")  # a miss, answered by the model
            model.play(failure(503))
            await say(client, "shop", "bob", "asdfghjkl poiuyt")  # a miss, the model fails: the rules answer
            assert len(model.requests) == 2

            usage = (await client.get(_C + "/assistant/usage", headers=AUTH)).json()
            assert {k: usage[k] for k in ("turns", "rules_turns", "model_turns", "model_answered", "share",
                                          "fallbacks", "requests", "prompt_tokens", "completion_tokens",
                                          "cost_usd_micros")} == {
                "turns": 3, "rules_turns": 2, "model_turns": 2, "model_answered": 1, "share": 0.6667,
                "fallbacks": {"error": 1}, "requests": 1, "prompt_tokens": 100, "completion_tokens": 20,
                "cost_usd_micros": 140}  # 100 tokens at 1 USD and 20 at 2 USD per million
            later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
            empty = await client.get(_C + "/assistant/usage", params={"since": later}, headers=AUTH)
            assert (empty.json()["turns"], empty.json()["model_turns"], empty.json()["share"]) == (0, 0, 0.0)
            bad = await client.get(_C + "/assistant/usage", params={"since": later, "until": later}, headers=AUTH)
            assert bad.status_code == 422
            assert (await client.get("/api/v1/tenants/other/companies/shop/assistant/usage",
                                     headers=AUTH)).status_code == 404

    # The CLI reports the same figures through the same function.
    cli_env = {"CHATCOMMERCE_DATABASE_URL": database_url, "CHATCOMMERCE_DATA_DIR": str(tmp_path),
               "CHATCOMMERCE_SECRET_KEY": "test-secret-key", "CHATCOMMERCE_PUBLIC_BASE_URL": "http://testserver"}
    runner = CliRunner()
    shown = await asyncio.to_thread(runner.invoke, cli_app, ["assistant", "usage", "--company", "shop", "--json"],
                                    env=cli_env)
    assert shown.exit_code == 0, shown.stderr
    assert {k: v for k, v in json.loads(shown.stdout).items() if k != "company"} == usage
    text = await asyncio.to_thread(runner.invoke, cli_app, ["assistant", "usage", "--company", "shop"], env=cli_env)
    assert "2 of 3 customer turns reached the model (67%)" in text.stdout and "error 1" in text.stdout


async def test_a_new_inbox_with_a_bad_assistant_override_is_refused_and_not_kept(database_url: str,
                                                                                 tmp_path: Path) -> None:
    # The same check as PUT .../inboxes/{id}/assistant: a bad mode stored at creation would silently run
    # the rules at every message while the owner believes the model answers.
    async with running(make_settings(database_url, tmp_path)) as env:
        client = env.client
        await make_company(client, "acme", "shop")
        before = (await client.get(_C + "/inboxes", headers=AUTH)).json()
        for settings, field in (({"assistant": {"mode": "chaos"}}, "settings.assistant.mode"),
                                ({"assistant": "llm"}, "settings.assistant must be an object")):
            r = await client.post(_C + "/inboxes", headers=AUTH,
                                  json={"kind": "telegram", "credentials": {"bot_token": "1:x"}, "settings": settings})
            assert r.status_code == 422 and field in r.json()["detail"], r.text
        assert (await client.get(_C + "/inboxes", headers=AUTH)).json() == before
