"""Cold start: a server that starts builds the knowledge indexes of companies with an active inbox in
the background (``api.warmup``), so the first customer message after a restart finds its index built;
/readyz does not wait for it; ``CHATCOMMERCE_WARM_INDEXES=false`` turns it off."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from core.models import Company
from tests.e2e_helpers import COMPANY, eventually, running_shop
from tests.test_api import make_settings, running, say


async def _company(app: object) -> Company:
    runtime = app.state.runtime  # type: ignore[attr-defined]
    async with runtime.sessionmaker() as session:
        return (await session.execute(select(Company).where(Company.slug == COMPANY))).scalar_one()


async def test_a_restarted_server_warms_the_index_before_the_first_message(
    database_url: str, tmp_path: Path, shop_export: Path
) -> None:
    settings = make_settings(database_url, tmp_path, workers_enabled=False)
    async with running_shop(settings, shop_export):
        pass  # the shop and its catalogue exist; the server stops
    async with running(settings, echo=False) as restarted:
        ready = await restarted.client.get("/readyz")
        assert ready.status_code == 200
        runtime = restarted.app.state.runtime
        company = await _company(restarted.app)
        await eventually(lambda: runtime.index_cache.cached(company) is not None, timeout=60,
                         what="the shop's index built at start-up")
        assert runtime.index_cache.builds == 1
        answer = await say(restarted.client, COMPANY, "ann", "how much is the ocean blue shirt?")
        assert answer["replies"][0]["text"] == "Ocean Blue Shirt costs 50.00 USD."
        assert runtime.index_cache.builds == 1  # the first message did not build it again


async def test_warm_up_can_be_turned_off(database_url: str, tmp_path: Path, shop_export: Path) -> None:
    settings = make_settings(database_url, tmp_path, workers_enabled=False, warm_indexes=False)
    async with running_shop(settings, shop_export):
        pass
    async with running(settings, echo=False) as restarted:
        runtime = restarted.app.state.runtime
        company = await _company(restarted.app)
        assert runtime.index_cache.cached(company) is None and runtime.index_cache.builds == 0
        await say(restarted.client, COMPANY, "ann", "how much is the ocean blue shirt?")
        assert runtime.index_cache.builds == 1  # built by the first message
