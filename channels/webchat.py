"""Web chat: the engine's own HTTP chat (``POST /api/v1/webchat/{company}/messages``).

Replies are returned in the HTTP response and can be polled, so ``send_text`` has nothing to push.
"""

from __future__ import annotations

import json
from typing import ClassVar

from channels.base import Channel, ParsedInbound, RawRequest
from core.timeutil import utcnow

MAX_TEXT = 4000


class WebChatChannel(Channel):
    """Body: ``{"contact": "<visitor id>", "text": "...", "message_id": "<optional client id>"}``."""

    kind: ClassVar[str] = "webchat"
    supports_buttons: ClassVar[bool] = True
    max_inbound_text: ClassVar[int] = MAX_TEXT

    async def verify(self, request: RawRequest) -> None:
        """The web chat is public; visitors are identified by the id their browser keeps."""

    def parse(self, request: RawRequest) -> list[ParsedInbound]:
        try:
            body = json.loads(request.body or b"{}")
        except json.JSONDecodeError as exc:
            raise ValueError(f"body is not JSON: {exc.msg}") from exc
        if not isinstance(body, dict):
            raise ValueError("body must be a JSON object")
        contact = str(body.get("contact") or "").strip()
        text = str(body.get("text") or "").strip()
        if not contact:
            raise ValueError("'contact' is required")
        if not text:
            raise ValueError("'text' is required")
        if len(contact) > 200:
            raise ValueError("'contact' is longer than 200 characters")
        if len(text) > MAX_TEXT:
            raise ValueError(f"'text' is longer than {MAX_TEXT} characters")
        message_id = body.get("message_id")
        return [
            ParsedInbound(
                contact_source_id=contact,
                text=text,
                received_at=utcnow(),
                source_id=str(message_id) if message_id else None,
                contact_name=(str(body["name"])[:200] if body.get("name") else None),
            )
        ]

    async def send_text(self, *, to: str, text: str) -> str | None:
        return None
