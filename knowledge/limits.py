"""Size limits of an uploaded knowledge file and the error raised when one is exceeded."""

from __future__ import annotations

from dataclasses import dataclass

from knowledge.errors import KnowledgeImportError


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
