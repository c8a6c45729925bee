"""Tables the CLI prints: a header row, then one line per row, cells separated by tabs.

Tabs keep the output easy to cut (``cut -f2``) and paste into a spreadsheet; a cell's own tabs and
line breaks become spaces so a row stays one line. ``None`` prints as ``-``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any


def _cell(value: Any) -> str:
    if value is None or value == "":
        return "-"
    return " ".join(str(value).split())


def render_table(headers: Sequence[str], rows: Iterable[Sequence[Any]], *, empty: str) -> str:
    """``headers`` (upper-cased) and ``rows`` as tab-separated lines; ``empty`` when there are no rows."""
    lines = ["\t".join(_cell(c) for c in row) for row in rows]
    if not lines:
        return empty
    return "\n".join(["\t".join(h.upper() for h in headers), *lines])
