"""The language model's turn: the model calls commands as tools, the engine runs them through the policy
and the actions, and the model's reply is checked by ``bot.llm.guard`` before it is sent (issue 9).

``Assistant.answer`` never raises for a model problem: it returns an ``Answer`` whose ``fallback`` names
why the rules must answer (``not_configured``, ``budget``, ``timeout``, ``error``, ``circuit_open``,
``guard``, ``rounds``).
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select

from bot.actions.results import Result
from bot.commands import Cancel, Choose, GiveDetails, Handoff, Skip, parse_command
from bot.llm import context, guard
from bot.llm import summary as summaries
from bot.llm.client import ModelClient, ModelUnavailable
from bot.llm.config import AssistantSettings, ModelServer, PlatformModel, assistant_settings, model_server
from bot.llm.usage import cost_usd_micros, over_budget
from bot.policy import Action
from bot.render import render
from bot.state import FREE_TEXT_STEPS, Step
from bot.turn import Turn
from core.models import Inbox, KnowledgeItem, ModelUsage
from core.security import SecretBox

Execute = Callable[[Turn, list[Any], str], Awaitable[tuple[list[Action], list[Result]]]]
"""The engine's policy + actions stage: ``(turn, commands, text) -> (actions, results)``."""

_ANSWERS_TO_OPEN_QUESTIONS = (GiveDetails, Cancel, Skip, Handoff, Choose)


@dataclass(slots=True)
class Answer:
    """One turn's outcome: ``text`` (the model's checked reply; ``None`` when the rules must speak),
    the ``actions`` and ``results`` the model's tool calls produced (their rendering is the rules' reply
    and gives the buttons and links), ``fallback`` (why the rules answered) and the usage counters."""

    text: str | None = None
    actions: list[Action] = field(default_factory=list)
    results: list[Result] = field(default_factory=list)
    fallback: str | None = None
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    mode: str = ""
    summary: summaries.Summary | None = None


class Assistant:
    """The language-model mode of ``bot.engine.DialogueEngine``. ``client`` calls the model servers (one
    circuit breaker per tenant); ``platform`` gives the default server; ``box`` decrypts stored API keys."""

    def __init__(self, *, client: ModelClient | None = None, platform: PlatformModel | None = None,
                 box: SecretBox | None = None, mode: str | None = None) -> None:
        self._client = client or ModelClient()
        self._platform = platform or PlatformModel()
        self._box = box
        self._mode = mode
        self.turns = 0
        """Typed messages seen (each turn's mode was looked up)."""
        self.asked = 0
        """Turns given to the model (``assist``: the rules' misses; ``llm``: all)."""

    async def settings(self, turn: Turn) -> AssistantSettings:
        """The company's assistant settings with the conversation's inbox's overrides (the mode forced by
        the constructor's ``mode`` when given: ``chatcommerce test-dialogues --engine``). The inbox's
        overrides come with the message when its caller read them (the pipeline's cached inbox row),
        else from one query."""
        self.turns += 1
        overrides = turn.inbound.inbox_assistant
        if overrides is None:
            inbox_settings = (await turn.session.execute(
                select(Inbox.settings).where(Inbox.tenant_id == turn.company.tenant_id,
                                             Inbox.id == turn.conversation.inbox_id))).scalar_one_or_none()
        else:
            inbox_settings = {"assistant": overrides}
        settings = assistant_settings(turn.company.settings, inbox_settings)
        return settings.model_copy(update={"mode": self._mode}) if self._mode else settings

    async def answer(self, turn: Turn, *, settings: AssistantSettings, execute: Execute) -> Answer:
        """Let the model answer ``turn`` through tools; records a ``ModelUsage`` row in ``turn.session``."""
        self.asked += 1
        server = model_server(turn.company.settings, api_key_secret=turn.company.model_api_key,
                              platform=self._platform, box=self._box)
        answer = Answer()
        if not server.configured:
            answer.fallback = "not_configured"
        elif await over_budget(turn.session, tenant_id=turn.company.tenant_id, server=server, now=turn.now):
            answer.fallback = "budget"
        else:
            await self._converse(turn, settings, server, execute, answer)
        turn.session.add(ModelUsage(
            tenant_id=turn.company.tenant_id, company_id=turn.company.id, conversation_id=turn.conversation.id,
            model=server.model or "", mode=settings.mode, requests=answer.requests,
            prompt_tokens=answer.prompt_tokens, completion_tokens=answer.completion_tokens,
            cost_usd_micros=cost_usd_micros(server, prompt_tokens=answer.prompt_tokens,
                                            completion_tokens=answer.completion_tokens),
            fallback=answer.fallback, created_at=turn.now,
        ))
        return answer

    async def _summarised(self, turn: Turn, server: ModelServer, answer: Answer
                          ) -> tuple[list[Any], summaries.Summary | None]:
        """The turn's window and running summary; updates the summary with one bounded model call when
        enough older messages fell out of the window (``bot.llm.summary``). The call's tokens count
        with the turn's; when it fails the previous summary stays."""
        previous = summaries.stored(turn.conversation.state)
        history = await summaries.history(turn, covered=previous.seq if previous else 0)
        if not history.dropped:
            return history.window, previous
        bounded = dataclasses.replace(server, max_tokens=min(server.max_tokens, summaries.SUMMARY_MAX_TOKENS))
        try:
            completion = await self._client.complete(tenant_id=turn.company.tenant_id, server=bounded,
                                                     messages=summaries.request(previous, history.dropped), tools=[])
        except ModelUnavailable:
            return history.window, previous
        _count(answer, completion)
        fresh = summaries.updated(completion.choices[0].message.content, history.dropped)
        if fresh is None:
            return history.window, previous
        answer.summary = fresh
        return history.window, fresh

    async def _converse(self, turn: Turn, settings: AssistantSettings, server: ModelServer, execute: Execute,
                        answer: Answer) -> None:
        window, running = await self._summarised(turn, server, answer)
        messages = await context.messages(turn, settings, window=window, summary=running)
        tools = context.tools()
        locale = turn.locale  # amounts in tool results and replies are written in the company's locale
        facts = guard.Facts()
        regenerated = False
        for _ in range(server.max_tool_rounds + 2):  # tool rounds, the reply, one regeneration
            try:
                completion = await self._client.complete(tenant_id=turn.company.tenant_id, server=server,
                                                         messages=messages, tools=tools)
            except ModelUnavailable as exc:
                answer.fallback = exc.reason
                return
            _count(answer, completion)
            message = completion.choices[0].message
            if message.tool_calls:
                if answer.requests > server.max_tool_rounds:
                    answer.fallback = "rounds"
                    return
                messages.append(message.model_dump(exclude_none=True))
                for call in message.tool_calls:
                    content = await self._tool(turn, call.function.name, call.function.arguments, execute, answer)
                    facts.add_text(content, locale)
                    messages.append({"role": "tool", "tool_call_id": call.id, "content": content})
                continue
            text = (message.content or "").strip()
            found = guard.problems(text, facts=facts, locale=locale, language=turn.language,
                                   channel=turn.inbound.channel) if text else ["The reply is empty."]
            if not found:
                answer.text = text
                return
            if regenerated:
                answer.fallback = "guard"
                return
            regenerated = True
            messages.append({"role": "assistant", "content": text})
            messages.append({"role": "user", "content": "[shop system] Your reply was not sent: " + " ".join(found)
                             + " Write it again using only values from this turn's tool results."})
        answer.fallback = "rounds"

    async def _tool(self, turn: Turn, name: str, arguments: str, execute: Execute, answer: Answer) -> str:
        """Run one tool call; every problem is a JSON error result the model can correct."""
        if name not in context.tool_names():
            return _error(f"unknown tool {name!r}")
        try:
            args = json.loads(arguments or "{}")
            if not isinstance(args, dict):
                raise ValueError("arguments must be a JSON object")
            args.pop("type", None)
            command = parse_command({"type": name, **args})
        except ValidationError as exc:
            details = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:]) or name}: {e['msg']}" for e in exc.errors())
            return _error(f"invalid arguments: {details}")
        except ValueError as exc:
            return _error(f"invalid arguments: {exc}")
        step = turn.state.step
        if step in FREE_TEXT_STEPS and not isinstance(command, _ANSWERS_TO_OPEN_QUESTIONS):
            return _error(f"the open question ({step.value}) must be answered first: call give_details, "
                          "skip or cancel, or ask the customer")
        text = turn.text
        if isinstance(command, GiveDetails) and step == Step.BOOKING_NAME and command.name:
            text = command.name
        if answer.results:  # a later call of the same turn: the question now open is the one just asked
            turn.asked, turn.pending = turn.state.step, turn.state.pending
        actions, results = await execute(turn, [command], text)
        answer.actions.extend(actions)
        answer.results.extend(results)
        replies = render(turn, results)
        body: dict[str, Any] = {"ok": True, "text": "\n\n".join(r.text for r in replies if r.text)}
        options = [b.title for r in replies for b in r.buttons]
        if options:
            body["buttons"] = options
        if any(r.url for r in replies):
            body["link"] = "a link is attached to the reply by the shop; do not write it"
        items = _items(results)
        if items:
            body["items"] = items
        return json.dumps(body, ensure_ascii=False)


def _count(answer: Answer, completion: Any) -> None:
    """Add one completed request and its reported tokens to the turn's counters."""
    answer.requests += 1
    if completion.usage is not None:
        answer.prompt_tokens += completion.usage.prompt_tokens or 0
        answer.completion_tokens += completion.usage.completion_tokens or 0


def _error(message: str) -> str:
    return json.dumps({"ok": False, "error": message})


def _items(results: list[Result]) -> list[dict[str, str]]:
    """Items (ids and names) the results mention, so the model can refer to them in a next call."""
    seen: dict[uuid.UUID, str] = {}

    def visit(value: object) -> None:
        if isinstance(value, KnowledgeItem):
            seen.setdefault(value.id, value.name)
        elif isinstance(value, (list, tuple)):
            for v in value:
                visit(v)
        elif dataclasses.is_dataclass(value) and not isinstance(value, type):
            for f in dataclasses.fields(value):
                visit(getattr(value, f.name))

    for result in results:
        visit(result)
    return [{"item_id": str(k), "name": v} for k, v in seen.items()]
