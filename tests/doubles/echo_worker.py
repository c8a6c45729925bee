"""``chatcommerce worker`` with the echo double in place of the dialogue engine, for tests that start
worker processes (``python -m tests.doubles.echo_worker``; settings from the environment).

The double answers ``echo: <text>`` after ``ECHO_WORKER_DELAY_MS`` milliseconds (default 0) spent inside
the answering transaction (holding the conversation's row lock), so a test can find a worker with
jobs in hand and kill it.
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

from api.cli import CliOptions, app
from bot.messages import OutboundMessage


class SlowEcho:
    """One reply per message, ``echo: <text>``, after ``delay`` seconds."""

    def __init__(self, *, delay: float) -> None:
        self._delay = delay

    async def respond(self, session: Any, *, inbound: Any, conversation: Any, company: Any) -> list[OutboundMessage]:
        if self._delay:
            await asyncio.sleep(self._delay)
        return [OutboundMessage(text=f"echo: {inbound.text}")]


def main() -> None:
    delay = float(os.environ.get("ECHO_WORKER_DELAY_MS", "0")) / 1000
    app(["worker"], obj=CliOptions(responder=SlowEcho(delay=delay)))


if __name__ == "__main__":
    main()
