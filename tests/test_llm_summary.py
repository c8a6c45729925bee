"""The running summary of older turns in language-model mode (issue 9), against the local
OpenAI-compatible server (tests/doubles/openai_server.py): a long conversation is summarised by a
bounded model call, the summary goes into the prompt, it is updated incrementally, an outage keeps
the previous one, and it is never a source of prices."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select

from bot.llm.summary import HISTORY_MESSAGES
from core.models import Message, ModelUsage
from tests.doubles.openai_server import OpenAIServerDouble, failure, reply
from tests.test_bot import Chat
from tests.test_llm_mode import configure, engine, garden

EARLY = [f"note {word}: my roses need {word} care" for word in
         ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india")]


class Model:
    """Routes the double's requests: summariser calls (no tools) get ``summaries`` in order (a
    ``Failure`` plays an outage), the assistant's calls get ``replies`` in order, then "Noted."."""

    def __init__(self, double: OpenAIServerDouble) -> None:
        self.summaries: list[Any] = []
        self.replies: list[str] = []
        self.summariser: list[dict[str, Any]] = []
        self.assistant: list[dict[str, Any]] = []
        double.play(*[self._answer] * 40)

    def _answer(self, body: dict[str, Any]) -> Any:
        if "tools" not in body:
            self.summariser.append(body)
            step = self.summaries.pop(0)
            return step if not isinstance(step, str) else reply(step)
        self.assistant.append(body)
        return reply(self.replies.pop(0) if self.replies else "Noted.")


@pytest.fixture
def double() -> Iterator[OpenAIServerDouble]:
    with OpenAIServerDouble() as server:
        yield server


def _text(messages: list[dict[str, Any]]) -> str:
    return "\n".join(str(m.get("content")) for m in messages)


async def _usage(sessionmaker) -> list[ModelUsage]:
    async with sessionmaker() as s:
        return list((await s.execute(select(ModelUsage).order_by(ModelUsage.created_at))).scalars())


async def test_older_turns_are_summarised_incrementally_and_an_outage_keeps_the_summary(sessionmaker,
                                                                                       double) -> None:
    model = Model(double)
    shop = await garden(sessionmaker, double, mode="rules")
    chat = Chat(sessionmaker, shop, engine=engine())
    for text in EARLY:  # a long conversation answered by the rules
        await chat.ask(text)
    assert model.summariser == [] and model.assistant == []
    await configure(sessionmaker, shop, mode="llm", base_url=double.base_url)

    # The first model turn: the messages before the window are summarised first, then the summary is
    # in the prompt and the window holds only the latest messages.
    model.summaries.append("Olga cares for roses; she paid $19.99 for gloves at www.roses.example.com.")
    model.replies.append("Happy to help with your roses.")
    answer = await chat.ask("what else would help my roses?")
    assert answer.text == "Happy to help with your roses."
    [first] = model.summariser
    assert first["max_tokens"] <= 200 and "tools" not in first
    dropped = first["messages"][-1]["content"]
    assert "note alpha" in dropped and "note charlie" in dropped and "(none yet)" in dropped
    assert "what else would help my roses?" not in dropped  # the current message stays in the window
    prompt = model.assistant[-1]["messages"]
    assert prompt[1]["role"] == "system" and "Olga cares for roses" in prompt[1]["content"]
    window = [m for m in prompt if m["role"] != "system"]
    assert len(window) == HISTORY_MESSAGES and "note alpha" not in _text(window)
    assert window[-1] == {"role": "user", "content": "what else would help my roses?"}
    stored = (await chat.conversation()).state["assistant"]["summary"]
    # The summary carries no amount or link: the model must not quote it as a price.
    assert "19.99" not in stored["text"] and "roses.example" not in stored["text"]
    assert "[amount]" in stored["text"] and "Olga cares for roses" in stored["text"]
    [usage] = await _usage(sessionmaker)
    assert usage.requests == 2 and usage.prompt_tokens == 200  # the summariser's tokens are counted

    # Later turns: no new summary until enough messages fell out, then only the newly dropped ones
    # and the summary so far are sent (not the whole conversation again).
    for text in ("do you sell gloves?", "and shears?"):
        await chat.ask(text)
    assert len(model.summariser) == 1
    model.summaries.append("Olga cares for roses and asked about gloves and shears.")
    await chat.ask("what about a teapot for my mother?")
    second = model.summariser[-1]["messages"][-1]["content"]
    assert "Olga cares for roses; she paid [amount]" in second  # the previous summary, redacted
    assert "note alpha" not in second and "note golf" in second
    assert "what about a teapot" not in second
    updated = (await chat.conversation()).state["assistant"]["summary"]
    assert updated["text"] == "Olga cares for roses and asked about gloves and shears."
    assert updated["seq"] > stored["seq"]
    assert "asked about gloves and shears" in model.assistant[-1]["messages"][1]["content"]

    # An outage of the summariser: the previous summary stays (in the state and in the prompt), and the
    # turn is still answered by the model.
    for text in ("thanks", "nice"):
        await chat.ask(text)
    model.summaries.append(failure(503))
    model.replies.append("Anything else for the garden?")
    calls = len(model.summariser)
    answer = await chat.ask("maybe later")
    assert len(model.summariser) == calls + 1  # the summariser was asked and failed
    assert answer.text == "Anything else for the garden?"
    assert (await chat.conversation()).state["assistant"]["summary"] == updated
    assert "asked about gloves and shears" in model.assistant[-1]["messages"][1]["content"]


async def test_the_summary_cannot_whitelist_a_price(sessionmaker, double) -> None:
    """A number the summary mentions is not a value a tool returned: a reply quoting it is regenerated,
    then replaced by the rules' answer."""
    model = Model(double)
    shop = await garden(sessionmaker, double, mode="rules")
    chat = Chat(sessionmaker, shop, engine=engine())
    for text in EARLY:
        await chat.ask(text)
    await configure(sessionmaker, shop, mode="llm", base_url=double.base_url)
    model.summaries.append("Olga was promised the teapot for 19 dollars and 3 spare lids.")
    model.replies.extend(["As promised, the teapot is 19 dollars.", "The teapot is yours for 19 dollars."])
    answer = await chat.ask("how much is the teapot?")
    assert "19" not in answer.text and "Teapot costs 25.00 USD" in answer.text
    async with sessionmaker() as s:
        payload = (await s.execute(select(Message.payload).where(Message.direction == "out")
                                   .order_by(Message.seq.desc()).limit(1))).scalar_one()
    assert payload["assistant"] == {"mode": "llm", "by": "rules", "fallback": "guard"}
