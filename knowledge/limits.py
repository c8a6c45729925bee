"""Largest values an import accepts, derived from the database columns they are stored in.

* Money (``price_minor``, ``BigInteger`` = signed 64-bit): at most :data:`MAX_PRICE_MINOR` =
  10^12 minor units (10 000 000 000.00 USD, 1 000 000 000 000 JPY). A business limit far below the
  column's 2^63 - 1, so that order totals (price x quantity, summed over lines) still fit.
* Stock (``Integer`` = signed 32-bit): at most :data:`MAX_STOCK` = 10^9 per row, and the stock of an
  item with variants (their sum) at most :data:`MAX_INT32`.
* Service duration (``Integer`` minutes): at most :data:`MAX_DURATION_MINUTES` (one year).
* Text columns: at most the column's ``String(n)`` length (:func:`text_limit`; PostgreSQL refuses
  longer values). A name longer than :data:`LONG_NAME_WARNING` characters is imported with a warning.

Size limits of an uploaded file (:class:`ImportLimits`: bytes, rows, columns, cell length) are
settings (``CHATCOMMERCE_IMPORT_MAX_*``); a file beyond one is refused with :class:`ImportLimitError`.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.models import KnowledgeItem, KnowledgeVariant
from knowledge.errors import KnowledgeImportError

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

def name_length_problem(name: str, *, label: str) -> tuple[bool, str] | None:
    """What is wrong with the length of an item's ``name`` (``label``: the word the file uses,
    ``name`` or ``title``): ``(True, message)`` when it exceeds the database column (the row fails),
    ``(False, message)`` when it is merely longer than ``LONG_NAME_WARNING`` (a warning), else ``None``."""
    limit = text_limit("name")
    if len(name) > limit:
        return True, f"{label} is {len(name)} characters long; at most {limit} are accepted"
    if len(name) > LONG_NAME_WARNING:
        return False, (f"{label} is {len(name)} characters long (more than {LONG_NAME_WARNING}); imported as is, "
                       "but it will read badly in chat messages")
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportLimits:
    """The most an upload may hold. ``max_bytes`` is the file size in bytes; ``max_rows`` and
    ``max_columns`` count per CSV file or worksheet (the header row included; rows by the number a
    spreadsheet app shows, so blank rows count); ``max_cell_chars`` is the length of one cell's text.
    The defaults match ``core.settings.Settings`` (``CHATCOMMERCE_IMPORT_MAX_*``)."""

    max_bytes: int = 20 * 1024 * 1024
    max_rows: int = 200_000
    max_columns: int = 200
    max_cell_chars: int = 10_000


class ImportLimitError(KnowledgeImportError):
    """A file refused because it exceeds one of :class:`ImportLimits`. ``limit`` names it
    (``"max_bytes"``, ``"max_rows"``, ``"max_columns"``, ``"max_cell_chars"``), ``maximum`` is the
    configured value; the message says both in words, e.g. ``the worksheet has more than 200000 rows
    (limit: 200000 rows per sheet)``."""

    def __init__(
        self,
        message: str,
        *,
        limit: str,
        maximum: int,
        row: int | None = None,
        column: str | None = None,
        sheet: str | None = None,
    ) -> None:
        self.limit = limit
        self.maximum = maximum
        super().__init__(message, row=row, column=column, sheet=sheet)

    def located(self, *, sheet: str | None) -> ImportLimitError:
        """A copy of this error that also names ``sheet``."""
        return ImportLimitError(self.message, limit=self.limit, maximum=self.maximum, row=self.row,
                                column=self.column, sheet=sheet)
