"""The error type of the knowledge-base importer and the located problem it reports."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

# At most this many errors (and, separately, warnings) are listed for one file; the rest are counted.
MAX_REPORTED = 50


def render_location(message: str, *, row: int | None, column: str | None, sheet: str | None) -> str:
    """``sheet 'S', row 7, column 'Price': message`` (parts that are ``None`` are left out)."""
    where = []
    if sheet is not None:
        where.append(f"sheet {sheet!r}")
    if row is not None:
        where.append(f"row {row}")
    if column is not None:
        where.append(f"column {column!r}")
    return f"{', '.join(where)}: {message}" if where else message


@dataclass(frozen=True, slots=True)
class ImportIssue:
    """One problem of an uploaded file. ``row`` is the 1-based row number as a spreadsheet app shows
    it, ``column`` the header text as written, ``sheet`` the worksheet title of an XLSX workbook; each
    is ``None`` when the problem is not about one cell. ``str()`` reads
    ``row 7, column 'Variant Price': 'abc' is not a price``."""

    message: str
    row: int | None = None
    column: str | None = None
    sheet: str | None = None

    def __str__(self) -> str:
        return render_location(self.message, row=self.row, column=self.column, sheet=self.sheet)

    def located(self, *, sheet: str | None) -> ImportIssue:
        """This issue naming ``sheet`` unless it already names one."""
        return self if self.sheet is not None or sheet is None else replace(self, sheet=sheet)

    def as_dict(self) -> dict[str, Any]:
        """``{"message", "row", "column", "sheet"}`` for JSON answers."""
        return {"message": self.message, "row": self.row, "column": self.column, "sheet": self.sheet}


class KnowledgeImportError(ValueError):
    """A file that cannot be imported; nothing is written when it is raised.

    ``message``, ``row``, ``column`` and ``sheet`` describe the first problem (see
    :class:`ImportIssue`); ``errors`` lists every problem found, up to :data:`MAX_REPORTED`, the
    first one included, and ``total`` counts them all (``omitted`` = how many are not listed).
    ``str(exc)`` is the first problem, e.g. ``row 7, column 'Variant Price': 'abc' is not a price``,
    followed by one line per further listed problem and ``... and N more errors`` when some are
    not listed.
    """

    def __init__(
        self,
        message: str,
        *,
        row: int | None = None,
        column: str | None = None,
        sheet: str | None = None,
        errors: Sequence[ImportIssue] = (),
        total: int | None = None,
    ) -> None:
        self.message = message
        self.row = row
        self.column = column
        self.sheet = sheet
        first = ImportIssue(message, row=row, column=column, sheet=sheet)
        self.errors: tuple[ImportIssue, ...] = tuple(errors) or (first,)
        self.total = max(total or 0, len(self.errors))
        super().__init__(self._render())

    @classmethod
    def of(cls, errors: Sequence[ImportIssue], *, total: int | None = None) -> KnowledgeImportError:
        """An error reporting ``errors`` (non-empty; the first one is the headline) out of ``total``."""
        first = errors[0]
        return cls(first.message, row=first.row, column=first.column, sheet=first.sheet, errors=errors, total=total)

    @property
    def omitted(self) -> int:
        """How many problems were found beyond the listed ``errors``."""
        return self.total - len(self.errors)

    def _render(self) -> str:
        lines = [str(issue) for issue in self.errors]
        if self.omitted:
            lines.append(f"... and {self.omitted} more errors")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self._render()

    def located(self, *, sheet: str | None) -> KnowledgeImportError:
        """A copy of this error whose problems also name ``sheet`` (used for multi-sheet workbooks)."""
        return KnowledgeImportError.of([issue.located(sheet=sheet) for issue in self.errors], total=self.total)

    def as_dict(self) -> dict[str, Any]:
        """The first problem's fields plus ``errors`` (list of dicts) and ``omitted``, for JSON answers."""
        return {
            "message": self.message,
            "row": self.row,
            "column": self.column,
            "sheet": self.sheet,
            "errors": [issue.as_dict() for issue in self.errors],
            "omitted": self.omitted,
        }
