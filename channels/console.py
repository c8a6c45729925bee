"""Console: a developer's terminal (``chatcommerce chat``). Each stdin line is one message."""

from __future__ import annotations

from typing import ClassVar

from channels.base import Channel, ParsedInbound, RawRequest
from core.timeutil import utcnow


class ConsoleChannel(Channel):
    """Body: the UTF-8 text of one line; ``query['contact']`` names the contact."""

    kind: ClassVar[str] = "console"
    supports_buttons: ClassVar[bool] = True

    async def verify(self, request: RawRequest) -> None:
        """Local terminal input needs no verification."""

    def parse(self, request: RawRequest) -> list[ParsedInbound]:
        text = request.body.decode("utf-8", errors="replace").strip()
        contact = request.query.get("contact", "").strip()
        if not contact:
            raise ValueError("a contact id is required")
        if not text:
            return []
        return [ParsedInbound(contact_source_id=contact, text=text, received_at=utcnow(),
                              source_id=request.query.get("message_id") or None)]

    async def send_text(self, *, to: str, text: str) -> str | None:
        return None
