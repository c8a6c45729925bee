"""HTML → plain text for product descriptions (Shopify's ``Body (HTML)``), with the stdlib parser."""

from __future__ import annotations

import re
from html.parser import HTMLParser

_BLOCK_TAGS = frozenset(
    {"br", "p", "div", "li", "ul", "ol", "tr", "td", "th", "table", "h1", "h2", "h3", "h4", "h5", "h6", "hr"}
)
_SKIP_TAGS = frozenset({"script", "style", "template", "head"})
_WHITESPACE = re.compile(r"\s+")
_BREAK = "\x00"  # marks a block boundary; never part of parsed text (NUL is dropped below)
_END_PUNCTUATION = tuple(".!?:;,…")


class _TextCollector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP_TAGS:
            self._skipping += 1
        elif tag in _BLOCK_TAGS:
            self.parts.append(_BREAK)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCK_TAGS:
            self.parts.append(_BREAK)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP_TAGS:
            self._skipping = max(0, self._skipping - 1)
        elif tag in _BLOCK_TAGS:
            self.parts.append(_BREAK)

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def html_to_text(markup: str) -> str:
    """Plain one-line text of an HTML fragment: tags removed, ``<script>``/``<style>`` contents dropped,
    entities unescaped (``&amp;`` → ``&``, ``&nbsp;`` → space), whitespace collapsed to single spaces.
    Block elements (``<p>``, ``<li>``, ``<br>``...) end with ". " unless their text already ends with
    punctuation, so ``<li>Gold</li><li>Leather</li>`` reads ``Gold. Leather``. Plain text passes
    through with only its whitespace collapsed."""
    collector = _TextCollector()
    collector.feed(markup.replace(_BREAK, ""))
    collector.close()
    text = ""
    for block in "".join(collector.parts).split(_BREAK):
        block = _WHITESPACE.sub(" ", block).strip()
        if block:
            text = f"{text}{' ' if not text or text.endswith(_END_PUNCTUATION) else '. '}{block}"
    return text.strip()
