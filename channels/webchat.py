"""Web chat: the engine's own HTTP chat (``POST /api/v1/webchat/{company}/messages``).

Replies are returned in the HTTP response and can be polled, so ``send_text`` has nothing to push.
The visitor is whoever the server says it is: the route (``api.routes.webchat``) checks the visitor's
signed identity and hands the verified id to ``parse`` in ``RawRequest.query["visitor"]``; nothing
in the body can choose or change it.
"""

from __future__ import annotations

import json
from typing import ClassVar

from channels.base import Channel, ParsedInbound, RawRequest
from core.timeutil import utcnow

MAX_TEXT = 4000
MAX_MESSAGE_ID = 128
VISITOR_KEY = "visitor"


def dedupe_key(*, visitor: str, message_id: str) -> str:
    """The stored ``source_id`` of a visitor's message: ``"{visitor}:{message_id}"``, so two visitors
    who both send ``message_id`` "1" are two messages, and one visitor resending "1" is a duplicate."""
    return f"{visitor}:{message_id}"


class WebChatChannel(Channel):
    """Body: ``{"text": "...", "message_id": "<optional client id>", "name": "<optional>"}``;
    ``query["visitor"]``: the visitor id the server verified (any ``contact`` in the body is ignored)."""

    kind: ClassVar[str] = "webchat"
    supports_buttons: ClassVar[bool] = True
    max_inbound_text: ClassVar[int] = MAX_TEXT

    async def verify(self, request: RawRequest) -> None:
        """The web chat is public; the route has already checked the visitor's signed identity."""

    def parse(self, request: RawRequest) -> list[ParsedInbound]:
        """One message from the verified visitor. Raises ``ValueError`` for a body that is not a JSON
        object, an empty or overlong ``text`` or ``message_id``, or a request without a visitor."""
        visitor = str(request.query.get(VISITOR_KEY) or "").strip()
        if not visitor:
            raise ValueError("no verified visitor")
        try:
            body = json.loads(request.body or b"{}")
        except json.JSONDecodeError as exc:
            raise ValueError(f"body is not JSON: {exc.msg}") from exc
        if not isinstance(body, dict):
            raise ValueError("body must be a JSON object")
        text = str(body.get("text") or "").strip()
        if not text:
            raise ValueError("'text' is required")
        if len(text) > MAX_TEXT:
            raise ValueError(f"'text' is longer than {MAX_TEXT} characters")
        message_id = body.get("message_id")
        if message_id is not None and len(str(message_id)) > MAX_MESSAGE_ID:
            raise ValueError(f"'message_id' is longer than {MAX_MESSAGE_ID} characters")
        return [
            ParsedInbound(
                contact_source_id=visitor,
                text=text,
                received_at=utcnow(),
                source_id=dedupe_key(visitor=visitor, message_id=str(message_id)) if message_id else None,
                contact_name=(str(body["name"])[:200] if body.get("name") else None),
            )
        ]

    async def send_text(self, *, to: str, text: str) -> str | None:
        return None
