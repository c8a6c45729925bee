"""Largest values an import accepts, derived from the database columns they are stored in.

* Money (``price_minor``, ``BigInteger`` = signed 64-bit): at most :data:`MAX_PRICE_MINOR` =
  10^12 minor units (10 000 000 000.00 USD, 1 000 000 000 000 JPY). A business limit far below the
  column's 2^63 - 1, so that order totals (price x quantity, summed over lines) still fit.
* Stock (``Integer`` = signed 32-bit): at most :data:`MAX_STOCK` = 10^9 per row, and the stock of an
  item with variants (their sum) at most :data:`MAX_INT32`.
* Service duration (``Integer`` minutes): at most :data:`MAX_DURATION_MINUTES` (one year).
* Text columns: at most the column's ``String(n)`` length (:func:`text_limit`; PostgreSQL refuses
  longer values). A name longer than :data:`LONG_NAME_WARNING` characters is imported with a warning.
"""

from __future__ import annotations

from core.models import KnowledgeItem, KnowledgeVariant

MAX_INT32 = 2**31 - 1
MAX_INT64 = 2**63 - 1
MAX_PRICE_MINOR = 10**12
MAX_STOCK = 10**9
MAX_DURATION_MINUTES = 366 * 24 * 60
LONG_NAME_WARNING = 200


def text_limit(field: str, *, variant: bool = False) -> int:
    """Maximum length in characters of ``field`` of ``KnowledgeItem`` (or ``KnowledgeVariant``),
    read from the model's ``String(n)`` column (``name``, ``handle``, ``sku``, ``category``,
    ``image_url``)."""
    model = KnowledgeVariant if variant else KnowledgeItem
    length = getattr(model.__table__.c[field].type, "length", None)
    if not isinstance(length, int):
        raise LookupError(f"{model.__name__}.{field} is not a String(n) column")
    return length
