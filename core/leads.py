"""Lead sources: which campaign brought a contact, read from the first message of a conversation.

Grammar (case-insensitive; the code is stored in lower case, 1-64 characters of ``[a-z0-9_.-]``,
starting with a letter or digit):

* ``ref: <code>`` / ``ref:<code>`` / ``ref=<code>`` anywhere in the text, optionally in brackets,
  e.g. the prefilled text of a WhatsApp click-to-chat ad: ``"Hi! (ref: tiktok-spring)"``.
* a hashtag ``#ref-<code>`` or ``#ref_<code>``, e.g. ``"Hello #ref-insta-bio"``.
* a Telegram deep link ``https://t.me/<bot>?start=<param>``: Telegram sends the message
  ``/start <param>`` (https://core.telegram.org/bots/features#deep-linking; the parameter is up to 64
  characters of ``A-Z a-z 0-9 _ -``); the whole parameter is the code (a ``ref-`` prefix is dropped).

The first match wins; a text with none of these has no lead source (``None``).
"""

from __future__ import annotations

import re

_CODE = r"([a-z0-9][a-z0-9_.\-]{0,63})"
_START = re.compile(r"^/start(?:@\w+)?\s+([A-Za-z0-9_\-]{1,64})\s*$")
_REF = re.compile(r"(?<![a-z0-9])ref\s*[:=]\s*" + _CODE + r"(?![a-z0-9_.\-])", re.IGNORECASE)
_HASHTAG = re.compile(r"#ref[-_]" + _CODE + r"(?![a-z0-9_.\-])", re.IGNORECASE)


def lead_source_of(text: str) -> str | None:
    """The campaign code in ``text`` (see the module's grammar), lower case, or ``None``.

    >>> lead_source_of("Hi! (ref: tiktok-spring)")
    'tiktok-spring'
    >>> lead_source_of("/start ref-insta_bio")
    'insta_bio'
    """
    text = (text or "").strip()
    start = _START.match(text)
    if start:
        code = start.group(1).lower()
        if code.startswith(("ref-", "ref_")) and len(code) > 4:
            code = code[4:]
        return code[:64]
    for pattern in (_REF, _HASHTAG):
        found = pattern.search(text)
        if found:
            return found.group(1).lower().rstrip(".-")[:64] or None
    return None
