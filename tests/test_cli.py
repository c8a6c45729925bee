"""The ``chatcommerce`` CLI: commands and their ``--json`` shapes, errors on stderr, the demo loader,
and real subprocess runs of the installed console script — on SQLite and PostgreSQL.

In-process runs use ``typer.testing.CliRunner`` with ``EchoResponder`` (the test double of the
dialogue engine from tests/test_api.py) passed as the context object; the subprocess runs use the
real dialogue engine.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import CliOptions, app
from api.services import open_runtime
from core.settings import Settings
from tests.test_api import EchoResponder, broken_copy, place_order

REPO = Path(__file__).resolve().parent.parent
CHATCOMMERCE = REPO / ".venv" / "bin" / "chatcommerce"


@pytest.fixture
def cli_env(database_url: str, tmp_path: Path) -> dict[str, str]:
    """Environment of a CLI run: the test database and a key outside the repository."""
    return {
        "CHATCOMMERCE_DATABASE_URL": database_url,
        "CHATCOMMERCE_DATA_DIR": str(tmp_path / "data"),
        "CHATCOMMERCE_SECRET_KEY": "test-secret-key",
        "CHATCOMMERCE_PUBLIC_BASE_URL": "http://testserver",
        "XDG_CONFIG_HOME": str(tmp_path / "config"),  # `chatcommerce login` stores its token here
    }


class Cli:
    """Runs commands in-process; ``echo=True`` puts the echo test double in place of the dialogue engine."""

    def __init__(self, env: dict[str, str], *, echo: bool = True) -> None:
        self.env = env
        self.echo = echo
        self.runner = CliRunner()

    def run(self, *args: str, input: str | None = None, ok: bool = True):  # type: ignore[no-untyped-def]
        options = CliOptions(responder=EchoResponder() if self.echo else None)
        result = self.runner.invoke(app, list(args), input=input, env=self.env, obj=options)
        if ok:
            assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
        return result

    def json(self, *args: str, input: str | None = None):  # type: ignore[no-untyped-def]
        return json.loads(self.run(*args, "--json", input=input).stdout)


@pytest.fixture
def cli(cli_env: dict[str, str]) -> Cli:
    return Cli(cli_env)


def setup_shop(cli: Cli, *, tenant: str = "acme", company: str = "acme-shop") -> dict:
    cli.json("tenants", "create", "--name", tenant.title(), "--slug", tenant)
    return cli.json("companies", "create", "--tenant", tenant, "--slug", company, "--name", "Acme Apparel",
                    "--type", "product", "--currency", "USD", "--language", "en", "--timezone", "America/New_York")


def test_tenants_companies_and_kb_import(cli: Cli, shop_export: Path, tmp_path: Path) -> None:
    tenant = cli.json("tenants", "create", "--name", "Acme", "--slug", "acme")
    assert set(tenant) >= {"id", "name", "slug"} and tenant["slug"] == "acme"
    uuid.UUID(tenant["id"])
    company = cli.json("companies", "create", "--tenant", "acme", "--slug", "acme-shop", "--name", "Acme Apparel",
                       "--type", "product", "--currency", "usd", "--language", "en", "--timezone", "UTC")
    assert (company["slug"], company["currency"], company["language"]) == ("acme-shop", "USD", "en")
    assert company["chat_url"] == "http://testserver/chat/acme-shop"
    assert [c["slug"] for c in cli.json("companies", "list", "--tenant", "acme")] == ["acme-shop"]
    assert [t["slug"] for t in cli.json("tenants", "list")] == ["acme"]

    counts = cli.json("kb", "import", "--company", "acme-shop", str(shop_export))
    assert (counts["items"], counts["variants"], counts["faq"]) == (34, 90, 0)

    broken = tmp_path / "broken.csv"
    broken.write_bytes(broken_copy(shop_export, record=4, column="Variant Price", value="-5"))
    result = cli.run("kb", "import", "--company", "acme-shop", str(broken), ok=False)
    assert result.exit_code == 1 and result.stdout == ""
    assert "broken.csv: row 4, column 'Variant Price'" in result.stderr

    text = cli.run("kb", "import", "--company", "acme-shop", str(shop_export)).stdout
    assert text.startswith("imported 34 items")

    taken = cli.run("tenants", "create", "--name", "Again", "--slug", "acme", ok=False)
    assert taken.exit_code == 1 and "taken" in taken.stderr
    missing = cli.run("kb", "import", "--company", "nope", str(shop_export), ok=False)
    assert missing.exit_code == 1 and "company 'nope' not found" in missing.stderr


def test_chat_reads_stdin_and_prints_json_lines(cli: Cli) -> None:
    setup_shop(cli)
    out = cli.run("chat", "--company", "acme-shop", "--contact", "dev-1", "--json", input="hello\n\nhow much?\n").stdout
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines == [
        {"in": "hello", "replies": [{"text": "echo: hello", "buttons": [], "url": None, "image_url": None}],
         "handoff": False},
        {"in": "how much?", "replies": [{"text": "echo: how much?", "buttons": [], "url": None, "image_url": None}],
         "handoff": False},
    ]
    text = cli.run("chat", "--company", "acme-shop", "--contact", "dev-1", input="menu\n").stdout
    assert text.splitlines() == ["bot> Pick one", "     https://example.com/catalog", "     [1] Shirts",
                                 "     [2] Tops"]

    shown = cli.json("conversations", "show", "--company", "acme-shop", "--contact", "dev-1")
    assert shown["contact"] == "dev-1" and len(shown["conversations"]) == 1
    conversation = shown["conversations"][0]
    assert conversation["channel"] == "console" and conversation["handoff"] is False
    assert [(m["direction"], m["sender"], m["text"]) for m in conversation["messages"]] == [
        ("in", "contact", "hello"), ("out", "bot", "echo: hello"), ("in", "contact", "how much?"),
        ("out", "bot", "echo: how much?"), ("in", "contact", "menu"), ("out", "bot", "Pick one")]
    nobody = cli.run("conversations", "show", "--company", "acme-shop", "--contact", "nobody", ok=False)
    assert nobody.exit_code == 1 and "no conversations" in nobody.stderr


def test_orders_list_and_mark_paid(cli: Cli, cli_env: dict[str, str]) -> None:
    setup_shop(cli)
    cli.run("chat", "--company", "acme-shop", "--contact", "dev-1", input="two shirts please\n")
    conversation_id = cli.json("conversations", "show", "--company", "acme-shop", "--contact",
                               "dev-1")["conversations"][0]["id"]

    async def order() -> uuid.UUID:
        settings = Settings(_env_file=None, database_url=cli_env["CHATCOMMERCE_DATABASE_URL"],  # type: ignore[call-arg]
                            secret_key="test-secret-key", public_base_url="http://testserver")
        async with open_runtime(settings, responder=EchoResponder()) as runtime:
            return (await place_order(runtime, conversation_id)).order_id

    order_id = asyncio.run(order())
    orders = cli.json("orders", "list", "--company", "acme-shop")
    assert len(orders) == 1
    listed = orders[0]
    assert listed["id"] == str(order_id)
    assert (listed["status"], listed["payment_status"], listed["total_minor"], listed["currency"]) == (
        "pending_payment", "payment_link_sent", 10000, "USD")
    line = listed["lines"][0]
    assert (line["name"], line["variant"], line["quantity"], line["unit_price_minor"]) == (
        "Ocean Blue Shirt", None, 2, 5000)
    assert "#1001\tpending_payment\tpayment_link_sent\t100.00 USD\t2 x Ocean Blue Shirt" in cli.run(
        "orders", "list", "--company", "acme-shop").stdout

    paid = cli.json("orders", "mark-paid", str(order_id), "--method", "bank_transfer")
    assert paid["payment_status"] == "paid" and paid["changed"] is True
    assert cli.run("orders", "mark-paid", str(order_id)).stdout.strip() == "order #1001 was already paid"
    assert cli.json("orders", "list", "--company", "acme-shop")[0]["status"] == "paid"
    messages = cli.json("conversations", "show", "--company", "acme-shop", "--contact",
                        "dev-1")["conversations"][0]["messages"]
    assert messages[-1]["sender"] == "system" and "Payment received for order #1001" in messages[-1]["text"]
    assert messages[-1]["status"] == "sent"

    bad = cli.run("orders", "mark-paid", "not-an-id", ok=False)
    assert bad.exit_code == 1 and "not an order id" in bad.stderr
    unknown = cli.run("orders", "mark-paid", str(uuid.uuid4()), ok=False)
    assert unknown.exit_code == 1 and "not found" in unknown.stderr


def test_demo_loads_the_demo_companies_once(cli: Cli) -> None:
    first = cli.json("demo", "--no-serve")
    assert first["tenant"] == "demo"
    shops = {c["slug"]: c for c in first["companies"]}
    assert set(shops) == {"apparel", "florist", "salon"}
    assert shops["apparel"]["imported"] == ["apparel-shop.csv", "apparel-faq.csv"]
    assert shops["florist"]["imported"] == ["florist-ru.csv", "florist-faq-ru.csv"]
    assert shops["salon"]["imported"] == ["salon-services.csv", "salon-faq.csv"]
    assert shops["salon"]["configured"] == ["staff: Anna, Marco", "schedule"]
    assert shops["apparel"]["configured"] == ["2 delivery windows"]
    assert all(c["items"] > 0 and c["faq"] > 0 for c in shops.values())
    assert shops["florist"]["chat_url"].endswith("/chat/florist")

    second = cli.json("demo", "--no-serve")
    again = {c["slug"]: c for c in second["companies"]}
    assert all(c["imported"] == [] and c["configured"] == [] and not c["created"] for c in again.values())
    assert {s: (c["items"], c["faq"]) for s, c in again.items()} == {
        s: (c["items"], c["faq"]) for s, c in shops.items()}
    companies = cli.json("companies", "list", "--tenant", "demo")
    florist = next(c for c in companies if c["slug"] == "florist")
    assert (florist["currency"], florist["language"], florist["timezone"]) == ("RUB", "ru", "Europe/Moscow")
    salon = next(c for c in companies if c["slug"] == "salon")
    assert (salon["type"], salon["currency"], salon["timezone"]) == ("service", "EUR", "Europe/Berlin")
    assert len(companies) == 3


def test_demo_on_a_port_in_use_says_so_before_loading_anything(cli: Cli) -> None:
    """``make demo`` with another server on the port: refused at once with the reason, nothing migrated
    or imported (it used to migrate, import and warm up, then fail to bind)."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli.run("demo", "--host", "127.0.0.1", "--port", str(port), ok=False)
    assert result.exit_code == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr and "--port" in result.stderr
    assert "Demo tenant" not in result.stdout
    assert cli.run("tenants", "list", ok=False).exit_code != 0 or cli.json("tenants", "list") == []


def _subprocess(args: list[str], env: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CHATCOMMERCE_")} | env
    return subprocess.run([str(CHATCOMMERCE), *args], input=stdin, env=full_env, capture_output=True, text=True,
                          timeout=180, cwd=env.get("CHATCOMMERCE_DATA_DIR"))


needs_script = pytest.mark.skipif(not CHATCOMMERCE.exists(), reason="console script not installed (pip install -e .)")


@needs_script
def test_init_db_creates_a_new_sqlite_database(tmp_path: Path) -> None:
    """``chatcommerce init-db`` (the installed executable) migrates a database that did not exist."""
    db = tmp_path / "fresh" / "chatcommerce.db"
    env = {"CHATCOMMERCE_DATABASE_URL": f"sqlite+aiosqlite:///{db}", "CHATCOMMERCE_DATA_DIR": str(tmp_path)}
    done = _subprocess(["init-db", "--json"], env)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"database": f"sqlite+aiosqlite:///{db}", "revision": "head"}
    assert db.exists()
    assert Cli(env).json("tenants", "list") == []


@needs_script
def test_installed_console_script_chats_with_the_real_engine(cli_env: dict[str, str]) -> None:
    """The real ``chatcommerce`` executable and dialogue engine, configured by environment only."""
    Path(cli_env["CHATCOMMERCE_DATA_DIR"]).mkdir(parents=True, exist_ok=True)
    real = Cli(cli_env, echo=False)
    setup_shop(real)
    assert real.json("kb", "import", "--company", "acme-shop", str(REPO / "examples" / "apparel-shop.csv"))["items"]
    assert real.json("kb", "import", "--company", "acme-shop", str(REPO / "examples" / "apparel-faq.csv"))["faq"]

    chat = _subprocess(["chat", "--company", "acme-shop", "--contact", "sub-1", "--json"], cli_env,
                       stdin="hello\nhow much is shipping?\n")
    assert chat.returncode == 0, chat.stderr
    lines = [json.loads(line) for line in chat.stdout.splitlines()]
    assert [line["in"] for line in lines] == ["hello", "how much is shipping?"]
    assert "Acme Apparel" in lines[0]["replies"][0]["text"]
    assert "Standard shipping is $5" in lines[1]["replies"][0]["text"]
    assert "test-secret-key" not in chat.stdout + chat.stderr
    # No library noise: bm25s used to log "Building index from tokens" on every knowledge-base search index.
    assert "Building index" not in chat.stderr and "bm25s" not in chat.stderr, chat.stderr

    missing = _subprocess(["orders", "list", "--company", "nope", "--json"], cli_env)
    assert missing.returncode == 1 and missing.stdout == ""
    assert "error: company 'nope' not found" in missing.stderr


def test_help_lists_the_commands() -> None:
    result = CliRunner().invoke(app, ["--help"], env={"CHATCOMMERCE_DATABASE_URL": "sqlite+aiosqlite:///:memory:"})
    assert result.exit_code == 0
    for command in ("init-db", "tenants", "companies", "kb", "chat", "orders", "conversations", "serve", "worker",
                    "demo"):
        assert command in result.stdout


def test_worker_refuses_to_start_without_the_redis_queue() -> None:
    env = {"CHATCOMMERCE_DATABASE_URL": "sqlite+aiosqlite:///:memory:", "CHATCOMMERCE_QUEUE": "embedded",
           "CHATCOMMERCE_REDIS_URL": "redis://127.0.0.1:6379/0"}
    result = CliRunner().invoke(app, ["worker"], env=env)
    assert result.exit_code == 1
    assert "needs CHATCOMMERCE_QUEUE=redis" in result.stderr
