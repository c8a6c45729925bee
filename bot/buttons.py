"""Button payloads: compact references to a command (never a phrase), at most 64 bytes.

Telegram limits ``callback_data`` to 64 bytes (https://core.telegram.org/bots/api#inlinekeyboardbutton);
every reference made here fits. Forms:

* ``c:<type>`` — a command without fields (``c:show_cart``, ``c:start_checkout``, ``c:handoff``);
* ``i:<item>[.<variant>]`` — show an item; ``a:<item>.<variant>.<qty>`` — add to cart;
  ``q:<item>.<variant>.<qty>`` — set a line's quantity; ``r:<item>.<variant>`` — remove a line
  (UUIDs as 22-character URL-safe base64, an empty variant when none);
* ``s:<service>.<YYYYMMDD>.<m|a|e>.<HHMM>`` — free times of a service on a day, part of day, time
  (each part may be empty);
* ``o:<n>`` — choose option ``n`` (1-based) of the options offered last.

The web chat sends a pressed button's payload back as text and Telegram returns it as callback data:
the engine decodes it here before understanding. A text that is not a reference is ``None`` here and
goes to understanding as typed.
"""

from __future__ import annotations

import base64
import re
import uuid
from datetime import datetime

from pydantic import ValidationError

from bot.commands import AddToCart, Choose, FindSlots, RemoveLine, SetQuantity, ShowItem, parse_command

MAX_BYTES = 64
_FIELDLESS = frozenset({
    "clear_cart", "show_cart", "show_catalog", "start_checkout", "skip", "cancel", "order_status", "new_payment_link",
    "show_booking", "cancel_booking", "move_booking", "handoff", "help", "find_slots",
})
_REF = re.compile(r"^(?:c:[a-z_]{2,30}|[iaqr]:[A-Za-z0-9_\-.]{22,60}|s:[A-Za-z0-9_\-]{0,22}\.\d{0,8}\.[mae]?\.\d{0,4}"
                  r"|o:\d{1,2})$")
_PARTS = {"morning": "m", "afternoon": "a", "evening": "e"}


def _b64(value: uuid.UUID | None) -> str:
    return base64.urlsafe_b64encode(value.bytes).decode().rstrip("=") if value else ""


def _uuid(text: str) -> uuid.UUID | None:
    if not text:
        return None
    return uuid.UUID(bytes=base64.urlsafe_b64decode(text + "=="))


def reference(command: object) -> str:
    """The payload of a button that runs ``command``. Raises ``ValueError`` for a command that has no
    compact form (offer it as an option and use ``option(n)`` instead)."""
    kind = getattr(command, "type", None)
    if isinstance(command, ShowItem):
        ref = f"i:{_b64(command.item_id)}" + (f".{_b64(command.variant_id)}" if command.variant_id else "")
    elif isinstance(command, AddToCart):
        ref = f"a:{_b64(command.item_id)}.{_b64(command.variant_id)}.{command.quantity}"
    elif isinstance(command, SetQuantity):
        ref = f"q:{_b64(command.item_id)}.{_b64(command.variant_id)}.{command.quantity}"
    elif isinstance(command, RemoveLine):
        ref = f"r:{_b64(command.item_id)}.{_b64(command.variant_id)}"
    elif isinstance(command, Choose):
        ref = option(command.option)
    elif isinstance(command, FindSlots) and command.model_dump(exclude={"type"}, exclude_defaults=True):
        day = command.day.strftime("%Y%m%d") if command.day else ""
        ref = (f"s:{_b64(command.service_id)}.{day}.{_PARTS.get(command.day_part or '', '')}."
               f"{(command.time or '').replace(':', '')}")
    elif kind in _FIELDLESS and not command.model_dump(exclude={"type"}, exclude_defaults=True):  # type: ignore[attr-defined]
        ref = f"c:{kind}"
    else:
        raise ValueError(f"no compact button reference for {command!r}")
    assert len(ref.encode()) <= MAX_BYTES
    return ref


def option(n: int) -> str:
    """``o:<n>``: choose option ``n`` (1-based) of the options offered last."""
    return f"o:{n}"


def is_reference(text: str) -> bool:
    """Whether ``text`` has the shape of a button reference."""
    return bool(_REF.match(text.strip()))


def decode(text: str) -> object | None:
    """The command a button reference stands for; ``None`` when ``text`` is not a (valid) reference."""
    text = text.strip()
    if not _REF.match(text):
        return None
    kind, _, body = text.partition(":")
    try:
        if kind == "c":
            return parse_command({"type": body}) if body in _FIELDLESS else None
        if kind == "o":
            return Choose(option=int(body))
        if kind == "s":
            service, day, part, clock = body.split(".")
            parts = {v: k for k, v in _PARTS.items()}
            return FindSlots(service_id=_uuid(service), day=datetime.strptime(day, "%Y%m%d").date() if day else None,
                             day_part=parts.get(part), time=f"{clock[:2]}:{clock[2:]}" if clock else None)
        parts = body.split(".")
        if kind == "i" and len(parts) in (1, 2):
            return ShowItem(item_id=_uuid(parts[0]), variant_id=_uuid(parts[1]) if len(parts) == 2 else None)
        if kind in ("a", "q") and len(parts) == 3:
            model = AddToCart if kind == "a" else SetQuantity
            return model(item_id=_uuid(parts[0]), variant_id=_uuid(parts[1]), quantity=int(parts[2]))
        if kind == "r" and len(parts) == 2:
            return RemoveLine(item_id=_uuid(parts[0]), variant_id=_uuid(parts[1]))
    except (ValueError, ValidationError):
        return None
    return None
