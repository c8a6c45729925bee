"""Yes/no answers to the bot's own questions ("shall I check out?", "оформляем?"): "yes", "yep",
"sure", "да", "ага", "конечно", "давайте" → True; "no", "nope", "not now", "нет", "не надо",
"пока нет" → False; anything else → None (the message is something else and goes to
understanding as usual).
"""

from __future__ import annotations

import re

__all__ = ["parse_yes_no"]

_YES = re.compile(
    r"^(?:yes|yeah|yep|yup|ya|sure|of\s+course|ok(?:ay)?|absolutely|definitely|please\s+do|go\s+ahead|do\s+it"
    r"|sounds\s+good|right|correct|that'?s\s+right|yes\s+please|да|ага|угу|конечно|давайте|давай|ок|окей"
    r"|хорошо|верно|да\s+пожалуйста|именно|точно|согласна|согласен|оформляйте|оформляем|подходит|👍|✅)"
    r"(?:[\s,!.]+(?:please|thanks|thank\s+you|пожалуйста|спасибо|конечно|давайте))*[\s!.]*$",
    re.IGNORECASE,
)
_NO = re.compile(
    r"^(?:no|nope|nah|not\s+now|not\s+yet|no\s+thanks?|no\s+thank\s+you|not\s+really|don'?t|cancel|нет|неа"
    r"|не\s+надо|не\s+нужно|пока\s+нет|нет\s+спасибо|не\s+сейчас|не\s+хочу|отмена|👎|❌)"
    r"(?:[\s,!.]+(?:thanks|thank\s+you|спасибо|пока|not\s+now|не\s+надо))*[\s!.]*$",
    re.IGNORECASE,
)


def parse_yes_no(text: str, language: str | None = None) -> bool | None:
    """True for a plain yes, False for a plain no, None otherwise. Only whole short answers
    count: "no, the red one" and "yes, and add a vase" are not plain (None), so their content is
    not lost. ``language`` is accepted for symmetry; both languages are always recognised."""
    del language
    cleaned = re.sub(r"([^\W\d_])\1{2,}", r"\1", text.strip().replace("ё", "е"))  # "yesss", "даа"
    if _YES.match(cleaned):
        return True
    if _NO.match(cleaned):
        return False
    return None
