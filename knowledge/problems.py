"""Collecting the errors and warnings of one knowledge file while it is parsed.

Parsers record every problem instead of stopping at the first, so that an owner can fix a file in
one go; :meth:`Problems.check` then raises one :class:`KnowledgeImportError` listing them all (up
to :data:`MAX_REPORTED`). Warnings never stop an import; they go into the import report.
"""

from __future__ import annotations

from typing import Any

from knowledge.errors import MAX_REPORTED, ImportIssue, KnowledgeImportError, render_location

# Warning kinds (``KnowledgeWarning.kind``).
SKIPPED_SHEET = "skipped_sheet"  # a worksheet that is not a knowledge sheet
SKIPPED_PRODUCT = "skipped_product"  # an unpublished / draft / archived Shopify product
DROPPED_COLUMN = "dropped_column"  # a column whose values are not imported
DUPLICATE_SKU = "duplicate_sku"  # one SKU on several items or variants
FORMULA = "formula"  # a text cell a spreadsheet would run as a formula (CSV/formula injection)
LONG_NAME = "long_name"  # a name longer than LONG_NAME_WARNING characters
MORE = "more"  # the last warning of a capped list: "... and N more warnings"


class KnowledgeWarning(str):
    """A warning of an import: a ``str`` (its human text, e.g. ``row 7, column 'Name': ...``) that
    also carries ``kind`` (one of this module's kind constants), ``message``, ``row``, ``column``
    and ``sheet`` (see :class:`~knowledge.errors.ImportIssue`). Being a ``str`` it prints, compares
    and serialises as its text; :meth:`as_dict` gives the fields."""

    kind: str
    message: str
    row: int | None
    column: str | None
    sheet: str | None

    def __new__(
        cls,
        message: str,
        *,
        kind: str,
        row: int | None = None,
        column: str | None = None,
        sheet: str | None = None,
        text: str | None = None,
    ) -> KnowledgeWarning:
        rendered = text if text is not None else render_location(message, row=row, column=column, sheet=sheet)
        self = super().__new__(cls, rendered)
        self.kind, self.message, self.row, self.column, self.sheet = kind, message, row, column, sheet
        return self

    def __getnewargs_ex__(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Pickling (e.g. an import result coming back from a worker process) keeps the fields."""
        fields = {"kind": self.kind, "row": self.row, "column": self.column, "sheet": self.sheet, "text": str(self)}
        return (self.message,), fields

    def as_dict(self) -> dict[str, Any]:
        """``{"kind", "message", "row", "column", "sheet", "text"}`` for JSON answers."""
        return {
            "kind": self.kind,
            "message": self.message,
            "row": self.row,
            "column": self.column,
            "sheet": self.sheet,
            "text": str(self),
        }


class Problems:
    """Errors and warnings of one file. ``sheet`` is the worksheet being parsed (stamped on every
    problem recorded meanwhile). Keeps the first :data:`MAX_REPORTED` of each and counts the rest."""

    def __init__(self, *, limit: int = MAX_REPORTED) -> None:
        self.sheet: str | None = None
        self._limit = limit
        self._errors: list[ImportIssue] = []
        self._error_total = 0
        self._warnings: list[KnowledgeWarning] = []
        self._warning_total = 0
        self._sheet_order: dict[str | None, int] = {}

    @property
    def failed(self) -> bool:
        """True once any error was recorded."""
        return self._error_total > 0

    def error(self, message: str, *, row: int | None = None, column: str | None = None) -> None:
        """Record an error about the current sheet."""
        self.add(KnowledgeImportError(message, row=row, column=column))

    def add(self, error: KnowledgeImportError) -> None:
        """Record every problem of ``error`` (problems without a sheet get the current one)."""
        for issue in error.errors:
            located = issue.located(sheet=self.sheet)
            self._sheet_order.setdefault(located.sheet, len(self._sheet_order))
            if len(self._errors) < self._limit:
                self._errors.append(located)
        self._error_total += error.total

    def warn(
        self,
        kind: str,
        message: str,
        *,
        row: int | None = None,
        column: str | None = None,
        text: str | None = None,
    ) -> None:
        """Record a warning about the current sheet (``text`` overrides the rendered text)."""
        self._warning_total += 1
        if len(self._warnings) < self._limit:
            self._warnings.append(
                KnowledgeWarning(message, kind=kind, row=row, column=column, sheet=self.sheet, text=text)
            )

    def check(self) -> None:
        """Raise :class:`KnowledgeImportError` listing the recorded errors (sheet by sheet, in row
        order) when there are any."""
        if not self._errors:
            return
        ordered = sorted(self._errors, key=lambda e: (self._sheet_order.get(e.sheet, 0), e.row or 0))
        raise KnowledgeImportError.of(ordered, total=self._error_total)

    def warnings(self) -> tuple[KnowledgeWarning, ...]:
        """The recorded warnings in the order found, ending with a ``more`` warning when some were
        not kept."""
        more = self._warning_total - len(self._warnings)
        if not more:
            return tuple(self._warnings)
        return (*self._warnings, KnowledgeWarning(f"... and {more} more warnings", kind=MORE))
