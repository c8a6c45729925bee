"""The dialogue-test runner (``api.dialogue_tests``) and ``chatcommerce test-dialogues`` themselves.

The engine is replaced by ``tests/doubles/scripted_shop.py`` (a responder with a tiny fixed vocabulary),
so these tests pin the runner's behaviour — turns through the real pipeline, button presses, the pay
step, how failures are reported and the exit code — independently of the engine being rebuilt. The
project's dialogue set against the real engine is tests/test_dialogue_set.py.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from textwrap import dedent

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from api.cli import CliOptions, app
from api.dialogue_spec import DialogueSpecError, load_dialogue_file
from api.dialogue_tests import DialogueRun, run_dialogue_files
from bot.messages import Responder
from core.db import create_engine
from core.models import Conversation
from tests.doubles.scripted_shop import ScriptedShopResponder

CATALOGUE = "Name,Colour,Price,Stock\nTeapot,,34.00,5\nMug,White,12.00,10\nMug,Blue,14.00,10\n"
COMPANY = dedent("""\
    now: 2027-03-09T08:00:00-06:00
    companies:
      shop: {name: Test Shop, currency: USD, timezone: America/Chicago, catalogue: [items.csv]}
    conversations:
    """)


def scripted(_clock: object) -> Responder:
    return ScriptedShopResponder()


def write(tmp_path: Path, conversations: str, head: str = COMPANY) -> Path:
    (tmp_path / "items.csv").write_text(CATALOGUE, encoding="utf-8")
    path = tmp_path / "dialogues.yaml"
    path.write_text(head + dedent(conversations), encoding="utf-8")
    return path


def run(path: Path, **kw: object) -> DialogueRun:
    return run_dialogue_files([path], engine_factory=scripted, **kw)  # type: ignore[arg-type]


def test_buttons_are_pressed_by_title_and_by_index(tmp_path: Path) -> None:
    path = write(tmp_path, """\
      - id: buttons
        company: shop
        turns:
          - say: menu
            expect: {buttons_include: [Teapot, Mug], reply_contains: "our items"}
          - press: teapot
            expect: {cart: [{item: Teapot}], reply_contains: "Added Teapot"}
          - menu
          - press: 2
        expect:
          cart: [{item: Teapot, quantity: 1}, {item: Mug, variant: White, quantity: 1}]
          reply_contains: "added mug"
    """)
    result = run(path)
    assert [(r.id, r.passed, r.failure) for r in result.results] == [("buttons", True, None)]
    assert result.exit_code == 0


def test_the_pay_step_pays_the_latest_order_and_shows_the_confirmation(tmp_path: Path) -> None:
    path = write(tmp_path, """\
      - id: pay
        company: shop
        turns:
          - add Teapot
          - add Mug
          - say: buy
            expect: {payment_status: payment_link_sent, order_total: 4600, customer_name: Test Customer}
          - pay: true
            expect: {reply_contains: "Payment received for order #1001"}
        expect:
          payment_status: paid
          order_total: "46.00 USD"
          order_lines: [{item: Mug, variant: White}, {item: Teapot}]
          cart: []
    """)
    result = run(path)
    assert result.results[0].passed, result.results[0].failure


def test_paying_without_an_order_fails_the_conversation(tmp_path: Path) -> None:
    path = write(tmp_path, """\
      - id: nothing-to-pay
        company: shop
        turns: [hello, {pay: true}]
    """)
    [result] = run(path).results
    assert (result.passed, result.turn, result.failure) == (False, 2, "nothing to pay: the conversation has no order")


@pytest.mark.parametrize(("expect", "message"), [
    ("{cart: [{item: Teapot, quantity: 2}]}", "expected cart [2 × Teapot], got [1 × Teapot]"),
    ("{reply_contains: 'Removed'}", "expected a reply containing 'Removed', got: Added Teapot."),
    ("{reply_not_contains: 'added'}", "expected no reply containing 'added', got: Added Teapot."),
    ("{reply_language: ru}", "expected a reply in 'ru', got 'en': Added Teapot."),
    ("{handoff: true}", "expected handoff True, got False"),
    ("{payment_status: paid}", "expected an order, got none"),
    ("{booking: {service: Haircut}}", "expected a booking, got none"),
])
def test_a_failing_expectation_names_the_turn_and_what_was_got(tmp_path: Path, expect: str, message: str) -> None:
    path = write(tmp_path, f"""\
      - id: wrong
        company: shop
        turns:
          - hello
          - say: add Teapot
            expect: {expect}
          - this turn is never played
    """)
    result = run(path)
    [failed] = result.results
    assert (failed.passed, failed.turn, failed.said, failed.failure) == (False, 2, "'add Teapot'", message)
    assert result.exit_code == 1
    assert f"FAIL    wrong         turn 2 'add Teapot': {message}" in result.table()


def test_the_cli_prints_a_table_and_exits_non_zero_on_failure(tmp_path: Path) -> None:
    path = write(tmp_path, """\
      - id: good
        company: shop
        turns: [{say: add Teapot, expect: {cart: [{item: Teapot}]}}]
      - id: bad
        company: shop
        turns: [add Teapot, {press: Checkout}]
      - id: bad-end
        company: shop
        turns: [add Mug]
        expect: {cart: [{item: Mug, variant: Blue}]}
    """)
    runner = CliRunner()
    result = runner.invoke(app, ["test-dialogues", str(path)], obj=CliOptions(responder=ScriptedShopResponder()))
    assert result.exit_code == 1, result.output
    lines = result.stdout.splitlines()
    assert lines[1].split() == ["PASS", "good", "1", "turn"]
    assert lines[2].startswith("FAIL") and "turn 2 [press Checkout]: no button 'Checkout': the last buttons were []" \
        in lines[2]
    assert "end: expected cart [1 × Mug (Blue)], got [1 × Mug (White)]" in lines[3]
    assert lines[-1] == "1 of 3 conversations passed"

    as_json = runner.invoke(app, ["test-dialogues", str(path), "--json"],
                            obj=CliOptions(responder=ScriptedShopResponder()))
    assert as_json.exit_code == 1
    assert '"passed": 1, "failed": 2' in as_json.stdout

    only_good = write(tmp_path, """\
      - id: good
        company: shop
        turns: [{say: add Teapot, expect: {cart: [{item: Teapot}]}}]
    """)
    ok = runner.invoke(app, ["test-dialogues", str(only_good)], obj=CliOptions(responder=ScriptedShopResponder()))
    assert ok.exit_code == 0 and "1 of 1 conversations passed" in ok.stdout


def test_an_engine_error_fails_only_its_conversation(tmp_path: Path) -> None:
    path = write(tmp_path, """\
      - id: crash
        company: shop
        turns: [add Kettle]
      - id: fine
        company: shop
        turns: [add Teapot]
    """)
    result = run(path)
    assert [r.passed for r in result.results] == [False, True]
    assert result.results[0].failure == "error: LookupError: no item 'Kettle'"


@pytest.mark.parametrize(("text", "message"), [
    ("      - id: x\n        company: shop\n        turns: [{say: hi, press: 1}]\n",
     "conversations[0].turns[0]: a turn needs exactly one of 'say', 'press' or 'pay: true'"),
    ("      - id: x\n        company: shop\n        turns: [{say: hi, expect: {carts: []}}]\n",
     "conversations[0].turns[0].expect.carts: Extra inputs are not permitted"),
    ("      - id: x\n        company: shop\n        turns: [{say: hi, expect: {booking: {time: friday}}}]\n",
     "booking time must look like 2027-03-11 10:00, not 'friday'"),
    ("      - id: x\n        company: shop\n        turns: [hi]\n      - id: x\n        company: shop\n"
     "        turns: [hi]\n", "conversation id 'x' is used twice"),
])
def test_a_bad_file_is_refused_with_the_place(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(DialogueSpecError) as caught:
        load_dialogue_file(path)
    assert str(path) in str(caught.value) and message in str(caught.value)


def test_now_must_be_aware_and_catalogues_must_exist(tmp_path: Path) -> None:
    naive = write(tmp_path, "  - {id: x, company: shop, turns: [hi]}\n",
                  head=COMPANY.replace("2027-03-09T08:00:00-06:00", "2027-03-09 08:00"))
    with pytest.raises(DialogueSpecError, match="'now' must be an aware datetime"):
        load_dialogue_file(naive)
    missing = write(tmp_path, "  - {id: x, company: shop, turns: [hi]}\n", head=COMPANY.replace("items.csv", "no.csv"))
    with pytest.raises(DialogueSpecError, match="companies.shop.catalogue: no file 'no.csv'"):
        load_dialogue_file(missing)
    unknown = write(tmp_path, "  - {id: x, company: elsewhere, turns: [hi]}\n")
    with pytest.raises(LookupError, match="names company 'elsewhere'"):
        run(unknown)
    spec = load_dialogue_file(write(tmp_path, "  - {id: x, company: shop, turns: [hi]}\n"))
    assert spec.now == datetime.fromisoformat("2027-03-09T14:00:00+00:00")


async def _conversations(url: str) -> int:
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            return (await conn.execute(select(func.count()).select_from(Conversation))).scalar_one()
    finally:
        await engine.dispose()


def test_company_of_an_existing_database_is_copied_not_changed(database_url: str, tmp_path: Path) -> None:
    env = {"CHATCOMMERCE_DATABASE_URL": database_url, "CHATCOMMERCE_DATA_DIR": str(tmp_path / "data"),
           "CHATCOMMERCE_SECRET_KEY": "test-secret-key"}
    runner = CliRunner()
    (tmp_path / "items.csv").write_text(CATALOGUE, encoding="utf-8")
    for args in (["tenants", "create", "--name", "Acme", "--slug", "acme"],
                 ["companies", "create", "--tenant", "acme", "--slug", "acme-shop", "--name", "Acme",
                  "--currency", "USD"],
                 ["kb", "import", "--company", "acme-shop", str(tmp_path / "items.csv")]):
        done = runner.invoke(app, args, env=env)
        assert done.exit_code == 0, (done.stdout, done.stderr)
    path = tmp_path / "owner.yaml"
    path.write_text(dedent("""\
        now: 2027-03-09T08:00:00Z
        conversations:
          - id: owner-check
            turns:
              - say: add Teapot
                expect: {cart: [{item: Teapot}]}
              - buy
              - pay: true
            expect: {payment_status: paid, order_total: "34.00 USD"}
        """), encoding="utf-8")
    result = runner.invoke(app, ["test-dialogues", str(path), "--company", "acme-shop"], env=env,
                           obj=CliOptions(responder=ScriptedShopResponder()))
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert "PASS    owner-check" in result.stdout
    assert asyncio.run(_conversations(database_url)) == 0  # the owner's database was only read

    unknown = runner.invoke(app, ["test-dialogues", str(path), "--company", "nope"], env=env,
                            obj=CliOptions(responder=ScriptedShopResponder()))
    assert unknown.exit_code == 1 and "setup failed: LookupError: no company 'nope'" in unknown.stdout
    without = runner.invoke(app, ["test-dialogues", str(path)], env=env)
    assert without.exit_code == 1 and "no --company was given" in without.stderr
