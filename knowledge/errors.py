"""The one error type of the knowledge-base importer."""

from __future__ import annotations


class KnowledgeImportError(ValueError):
    """A file that cannot be imported; nothing is written when it is raised.

    ``row`` is the 1-based row number as a spreadsheet app shows it (the header is row 1 when it is
    the first line), ``column`` the header text as written in the file, ``sheet`` the worksheet title
    for XLSX workbooks; each is ``None`` when the problem is not about one cell. ``message`` is the
    human explanation. ``str(exc)`` reads e.g. ``row 7, column 'Variant Price': 'abc' is not a price``.
    """

    def __init__(
        self, message: str, *, row: int | None = None, column: str | None = None, sheet: str | None = None
    ) -> None:
        self.message = message
        self.row = row
        self.column = column
        self.sheet = sheet
        super().__init__(self._render())

    def _render(self) -> str:
        where = []
        if self.sheet is not None:
            where.append(f"sheet {self.sheet!r}")
        if self.row is not None:
            where.append(f"row {self.row}")
        if self.column is not None:
            where.append(f"column {self.column!r}")
        return f"{', '.join(where)}: {self.message}" if where else self.message

    def __str__(self) -> str:
        return self._render()

    def located(self, *, sheet: str | None) -> KnowledgeImportError:
        """A copy of this error that also names ``sheet`` (used for multi-sheet workbooks)."""
        return KnowledgeImportError(self.message, row=self.row, column=self.column, sheet=sheet)
