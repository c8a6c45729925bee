"""The parsed, database-free form of a knowledge file (what :func:`parse_knowledge_file` returns)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from knowledge.problems import KnowledgeWarning


@dataclass(frozen=True, slots=True)
class ParsedVariant:
    """A variant of an item. ``options`` maps option name to value (``{"Size": "Medium"}``), ``name``
    is the values joined with `` / ``; money in minor units; ``stock`` ``None`` = not tracked."""

    name: str
    options: dict[str, str]
    price_minor: int
    sku: str | None = None
    stock: int | None = None
    image_url: str | None = None
    row: int | None = None


@dataclass(frozen=True, slots=True)
class ParsedItem:
    """A product or service. ``price_minor`` is the base price (the lowest variant price when there are
    variants), in minor units of :attr:`ParsedKnowledge.currency`; ``stock`` ``None`` = not tracked
    (with variants: the sum of the variants' stock when all are tracked); ``kind`` is ``"product"``
    or ``"service"``; ``row`` is the first source row (for messages)."""

    name: str
    kind: str
    price_minor: int
    handle: str | None = None
    sku: str | None = None
    description: str = ""
    category: str | None = None
    stock: int | None = None
    duration_minutes: int | None = None
    image_url: str | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    variants: tuple[ParsedVariant, ...] = ()
    row: int | None = None


@dataclass(frozen=True, slots=True)
class ParsedFaq:
    """One question/answer pair."""

    question: str
    answer: str
    row: int | None = None


@dataclass(frozen=True, slots=True)
class ParsedKnowledge:
    """Everything a file holds. ``items`` is ``None`` when the file has no product/service sheet (the
    company's items are then kept), likewise ``faq``; ``warnings`` lists things skipped on purpose
    (unrecognised worksheets, unpublished Shopify products, dropped columns) and things imported that
    look wrong (duplicate SKUs, formula-like text, long names), as :class:`KnowledgeWarning` strings."""

    currency: str
    items: tuple[ParsedItem, ...] | None = None
    faq: tuple[ParsedFaq, ...] | None = None
    warnings: tuple[KnowledgeWarning, ...] = ()

    @property
    def variant_count(self) -> int:
        """Number of variants over all items."""
        return sum(len(item.variants) for item in self.items or ())
