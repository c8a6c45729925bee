"""A local OpenAI-compatible Chat Completions server (real HTTP on 127.0.0.1) that plays scripted model
turns, for tests of the language-model mode without the internet.

``POST /v1/chat/completions`` (streaming off) answers with the next step of ``script``: a
``tool_calls(...)`` or ``reply(...)`` message, ``failure(status)`` (an HTTP error), ``stall(seconds)``
(answers only after the client's timeout), or a callable taking the request body and returning one of
those. Every request body is recorded in ``requests`` (and its ``Authorization`` header in
``authorizations``). When the script runs out the server answers 500.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.doubles.threaded_http import ThreadedHttpDouble


@dataclass(frozen=True)
class Failure:
    status: int


@dataclass(frozen=True)
class Stall:
    seconds: float


def tool_calls(*calls: tuple[str, dict[str, Any] | str]) -> dict[str, Any]:
    """An assistant message calling tools: ``("add_to_cart", {"item_id": ...})``; a string is sent as the
    raw ``arguments`` (to test malformed JSON)."""
    return {"role": "assistant", "content": None, "tool_calls": [
        {"id": f"call_{i}_{name}", "type": "function",
         "function": {"name": name, "arguments": args if isinstance(args, str) else json.dumps(args)}}
        for i, (name, args) in enumerate(calls)]}


def reply(text: str) -> dict[str, Any]:
    """An assistant message with text only."""
    return {"role": "assistant", "content": text}


def failure(status: int = 500) -> Failure:
    return Failure(status)


def stall(seconds: float) -> Stall:
    return Stall(seconds)


Step = dict[str, Any] | Failure | Stall | Callable[[dict[str, Any]], Any]


def last_tool_results(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The tool results (parsed JSON) of the latest tool round in a request body."""
    results = []
    for message in reversed(body["messages"]):
        if message.get("role") != "tool":
            break
        results.append(json.loads(message["content"]))
    return list(reversed(results))


class OpenAIServerDouble(ThreadedHttpDouble):
    """The scripted server. ``prompt_tokens``/``completion_tokens`` are reported in every answer's ``usage``."""

    thread_name = "openai-double"

    def __init__(self, *, prompt_tokens: int = 100, completion_tokens: int = 20) -> None:
        super().__init__()
        self.script: list[Step] = []
        self.requests: list[dict[str, Any]] = []
        self.authorizations: list[str] = []
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = completion_tokens
        self._lock = threading.Lock()

    def play(self, *steps: Step) -> None:
        """Append scripted steps."""
        with self._lock:
            self.script.extend(steps)

    @property
    def base_url(self) -> str:
        return self.url + "/v1"

    def _next(self, body: dict[str, Any], authorization: str) -> Step | None:
        with self._lock:
            self.requests.append(body)
            self.authorizations.append(authorization)
            step = self.script.pop(0) if self.script else None
        return step(body) if callable(step) else step

    def handler_class(self) -> type[BaseHTTPRequestHandler]:
        double = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                if self.path != "/v1/chat/completions":
                    return self._send(404, {"error": {"message": "not found"}})
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                if body.get("stream"):
                    return self._send(400, {"error": {"message": "streaming is not supported here"}})
                step = double._next(body, self.headers.get("Authorization", ""))
                if step is None:
                    return self._send(500, {"error": {"message": "script exhausted"}})
                if isinstance(step, Failure):
                    return self._send(step.status, {"error": {"message": "scripted failure", "type": "server_error"}})
                if isinstance(step, Stall):
                    time.sleep(step.seconds)
                    return self._send(500, {"error": {"message": "too late"}})
                finish = "tool_calls" if step.get("tool_calls") else "stop"
                self._send(200, {
                    "id": f"chatcmpl-{len(double.requests)}", "object": "chat.completion", "created": 0,
                    "model": body.get("model", ""),
                    "choices": [{"index": 0, "message": step, "finish_reason": finish}],
                    "usage": {"prompt_tokens": double.prompt_tokens, "completion_tokens": double.completion_tokens,
                              "total_tokens": double.prompt_tokens + double.completion_tokens},
                })

            def _send(self, status: int, data: dict[str, Any]) -> None:
                raw = json.dumps(data).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(raw)))
                    self.end_headers()
                    self.wfile.write(raw)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout tests)
                    pass

        return Handler
