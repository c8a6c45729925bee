"""``.env.example`` documents every setting: an operator reading it sees each ``CHATCOMMERCE_*`` variable."""

from __future__ import annotations

import re
from pathlib import Path

from core.settings import Settings

ENV_EXAMPLE = Path(__file__).resolve().parent.parent / ".env.example"


def test_every_setting_has_a_documented_line_in_env_example() -> None:
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    named = set(re.findall(r"^#?\s*(CHATCOMMERCE_[A-Z0-9_]+)=", text, flags=re.M))
    fields = {f"CHATCOMMERCE_{name.upper()}" for name in Settings.model_fields}
    assert sorted(fields - named) == []
    assert sorted(named - fields) == []  # nothing documented that the settings no longer read
    for name in fields:  # each line has a comment above it (its own or its group's)
        block = text[: text.index(f"{name}=")].rstrip().rsplit("\n\n", 1)[-1]
        assert "#" in block, f"{name} has no comment in .env.example"
