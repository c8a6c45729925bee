"""Reading an uploaded file into tables of cells: CSV/TSV/TXT (UTF-8, UTF-8 with BOM, Windows-1251;
``,`` ``;`` or tab, found with :class:`csv.Sniffer`) and XLSX workbooks (openpyxl, one table per
worksheet). Row numbers are the ones a spreadsheet app shows.

Reading enforces :class:`knowledge.limits.ImportLimits` as it goes (file size, rows, columns, cell
length), so a hostile file is refused early with memory bounded by the limits: a workbook is read in
openpyxl's streaming read-only mode, and a worksheet whose declared dimension is too wide or too long
is refused before any of its rows is read."""

from __future__ import annotations

import codecs
import csv
import io
import unicodedata
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import PurePath
from typing import Any

import charset_normalizer

from knowledge.errors import KnowledgeImportError
from knowledge.limits import ImportLimitError, ImportLimits

Cell = str | int | float | Decimal | datetime | date | time | timedelta | bool | None

TEXT_EXTENSIONS = (".csv", ".tsv", ".txt")
XLSX_EXTENSIONS = (".xlsx",)
SUPPORTED_EXTENSIONS = TEXT_EXTENSIONS + XLSX_EXTENSIONS
# Rows between two progress reports (``on_progress``) while reading.
PROGRESS_EVERY = 1000
DELIMITERS = ",;\t"
_SNIFF_CHARS = 64 * 1024
_ZIP_MAGIC = b"PK\x03\x04"
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # legacy .xls / .doc
# Binary formats people upload by mistake, recognised by their first bytes.
_OTHER_MAGIC = (
    (b"%PDF", "a PDF document"),
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"Rar!", "a RAR archive"),
    (b"7z\xbc\xaf", "a 7-Zip archive"),
    (b"{\\rtf", "an RTF document"),
)
_WRONG_ENCODING = (
    "wrong encoding: the file is neither UTF-8 nor Windows-1251 text; "
    "save it as 'CSV UTF-8' (or as .xlsx) and upload it again"
)


Progress = Callable[[int, int | None], object]
"""``on_progress(rows_done, total_rows)``: rows read so far; the total when known (else ``None``)."""


@dataclass(frozen=True, slots=True)
class Table:
    """One sheet of cells. ``title`` is the worksheet title (``None`` for a CSV file); ``rows`` holds
    ``(row_number, cells)`` for every row with at least one non-blank cell, strings stripped."""

    title: str | None
    rows: tuple[tuple[int, tuple[Cell, ...]], ...]


def read_tables(
    data: bytes, *, filename: str, limits: ImportLimits | None = None, on_progress: Progress | None = None
) -> list[Table]:
    """Split an uploaded file into tables: one for a CSV/TSV/TXT file, one per worksheet of an XLSX
    workbook (worksheets without any value are left out).

    ``limits`` default to :class:`ImportLimits`'s defaults. ``on_progress(rows_done, total_rows)`` is
    called every :data:`PROGRESS_EVERY` rows read and once at the end (``total_rows`` is known up
    front for workbooks that declare their dimensions, else only at the end).

    Raises :class:`KnowledgeImportError` for an empty file, an unsupported file type (by extension
    or content), text in an unknown encoding, malformed CSV or a damaged workbook, and
    :class:`ImportLimitError` (naming the limit, and the row and column where one applies) for a file
    beyond ``limits``.
    """
    limits = limits or ImportLimits()
    counter = _RowCounter(on_progress)
    if len(data) > limits.max_bytes:
        raise ImportLimitError(
            f"the file has {len(data)} bytes; the limit is {limits.max_bytes} bytes",
            limit="max_bytes", maximum=limits.max_bytes,
        )
    if not data.strip(b" \t\r\n\x00"):
        raise KnowledgeImportError("file is empty")
    extension = PurePath(filename).suffix.lower()
    if extension == ".xls" or data.startswith(_OLE_MAGIC):
        raise KnowledgeImportError("old Excel .xls files are not supported; save the file as .xlsx or CSV")
    if extension not in SUPPORTED_EXTENSIONS:
        what = f"file type {extension!r}" if extension else f"file {filename!r} (no extension)"
        raise KnowledgeImportError(f"unsupported {what}; upload .csv, .tsv, .txt or .xlsx")
    for magic, what in _OTHER_MAGIC:
        if data.startswith(magic):
            raise KnowledgeImportError(f"unsupported file type: this is {what}; upload .csv, .tsv, .txt or .xlsx")
    if data.startswith(_ZIP_MAGIC):
        tables = _read_xlsx(data, limits=limits, counter=counter)
    elif extension in XLSX_EXTENSIONS:
        raise KnowledgeImportError("the file is not a valid .xlsx workbook")
    else:
        tables = [_read_csv(decode_text(data), filename=filename, limits=limits, counter=counter)]
    counter.finish()
    tables = [table for table in tables if table.rows]
    if not tables:
        raise KnowledgeImportError("file is empty")
    return tables


def decode_text(data: bytes) -> str:
    """Decode CSV bytes: UTF-8 (with or without BOM), UTF-16 with BOM (Excel's "Unicode text"), else
    Windows-1251 when the result is plausible text. Raises :class:`KnowledgeImportError` ("wrong
    encoding") otherwise, e.g. for binary data or UTF-16 without a BOM."""
    try:
        if data.startswith(codecs.BOM_UTF8):
            return data[len(codecs.BOM_UTF8) :].decode("utf-8")
        if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return data.decode("utf-16")
    except UnicodeDecodeError as exc:
        raise KnowledgeImportError(_WRONG_ENCODING) from exc
    if b"\x00" in data:
        raise KnowledgeImportError(_WRONG_ENCODING)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        text = data.decode("cp1251")
    except UnicodeDecodeError as exc:
        raise KnowledgeImportError(_WRONG_ENCODING) from exc
    if not _plausible(text) or charset_normalizer.from_bytes(data, cp_isolation=["cp1251"]).best() is None:
        raise KnowledgeImportError(_WRONG_ENCODING)
    return text


def _plausible(text: str) -> bool:
    """Text, not binary decoded as Windows-1251: almost no control or unassigned characters."""
    odd = sum(1 for ch in text if ch not in "\t\r\n" and unicodedata.category(ch) in ("Cc", "Cn", "Co"))
    return odd <= len(text) // 1000


def sniff_delimiter(text: str, *, filename: str = "") -> str:
    """The delimiter of CSV text: tab for ``.tsv``; else :class:`csv.Sniffer` restricted to ``,``
    ``;`` and tab, checked against the first non-blank line; else the one of those the first line
    holds most often (``,`` when it holds none)."""
    if PurePath(filename).suffix.lower() == ".tsv":
        return "\t"
    sample = text[:_SNIFF_CHARS]
    if len(text) > _SNIFF_CHARS and "\n" in sample:
        sample = sample[: sample.rindex("\n") + 1]
    first_line = next((line for line in sample.splitlines() if line.strip()), "")
    try:
        delimiter = csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:
        delimiter = ""
    if delimiter and delimiter in first_line:
        return delimiter
    counts = {candidate: first_line.count(candidate) for candidate in DELIMITERS}
    best = max(counts, key=lambda candidate: counts[candidate])
    return best if counts[best] else ","


class _RowCounter:
    """Counts rows read over all tables and reports them to ``on_progress``."""

    def __init__(self, on_progress: Progress | None) -> None:
        self._on_progress = on_progress
        self.done = 0
        self.total: int | None = None

    def step(self) -> None:
        self.done += 1
        if self._on_progress is not None and self.done % PROGRESS_EVERY == 0:
            self._on_progress(self.done, self.total)

    def finish(self) -> None:
        if self._on_progress is not None:
            self._on_progress(self.done, self.done)


def _too_many_rows(limits: ImportLimits, *, sheet: str | None) -> ImportLimitError:
    what = "the worksheet" if sheet is not None else "the file"
    return ImportLimitError(
        f"{what} has more than {limits.max_rows} rows; the limit is {limits.max_rows} rows",
        limit="max_rows", maximum=limits.max_rows, sheet=sheet,
    )


def _too_many_columns(limits: ImportLimits, *, columns: int, row: int | None, sheet: str | None) -> ImportLimitError:
    from openpyxl.utils import get_column_letter

    last = get_column_letter(columns) if columns <= 18278 else str(columns)
    return ImportLimitError(
        f"the sheet uses {columns} columns (up to column {last}); the limit is {limits.max_columns} columns",
        limit="max_columns", maximum=limits.max_columns, row=row, sheet=sheet,
    )


def _check_cells(cells: tuple[Cell, ...], *, number: int, limits: ImportLimits, sheet: str | None) -> None:
    """Refuse a row with a cell longer than ``max_cell_chars`` (the column is given as its letter)."""
    for index, cell in enumerate(cells):
        if isinstance(cell, str) and len(cell) > limits.max_cell_chars:
            from openpyxl.utils import get_column_letter

            raise ImportLimitError(
                f"the cell has {len(cell)} characters; the limit is {limits.max_cell_chars} characters per cell",
                limit="max_cell_chars", maximum=limits.max_cell_chars, row=number,
                column=get_column_letter(index + 1), sheet=sheet,
            )


def _read_csv(text: str, *, filename: str, limits: ImportLimits, counter: _RowCounter) -> Table:
    delimiter = sniff_delimiter(text, filename=filename)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar='"', doublequote=True)
    rows: list[tuple[int, tuple[Cell, ...]]] = []
    number = 0
    try:
        for number, record in enumerate(reader, start=1):  # noqa: B007 - number is reported on errors
            if number > limits.max_rows:
                raise _too_many_rows(limits, sheet=None)
            counter.step()
            if len(record) > limits.max_columns:
                width = len(record)
                while width and not record[width - 1].strip():
                    width -= 1  # trailing empty cells (a row of separators) do not count
                if width > limits.max_columns:
                    raise _too_many_columns(limits, columns=width, row=number, sheet=None)
                record = record[:width]
            cells = tuple(cell.strip() for cell in record)
            _check_cells(cells, number=number, limits=limits, sheet=None)
            if any(cells):
                rows.append((number, cells))
    except csv.Error as exc:
        raise KnowledgeImportError(f"the file is not valid CSV: {exc}", row=number + 1) from exc
    return Table(title=None, rows=tuple(rows))


def _read_xlsx(data: bytes, *, limits: ImportLimits, counter: _RowCounter) -> list[Table]:
    from openpyxl import load_workbook  # imported lazily: it is large and only XLSX uploads need it

    try:
        names = set(zipfile.ZipFile(io.BytesIO(data)).namelist())
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise KnowledgeImportError("the file is not a valid .xlsx workbook") from exc
    if "xl/workbook.xml" not in names:
        what = "an OpenDocument file (.ods)" if "content.xml" in names else "a ZIP archive"
        raise KnowledgeImportError(f"unsupported file type: this is {what}, not an .xlsx workbook; save it as .xlsx")
    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except Exception as exc:  # damaged workbooks raise BadZipFile, KeyError, XML and openpyxl errors
        raise KnowledgeImportError("the file is not a valid .xlsx workbook") from exc
    try:
        counter.total = _check_dimensions(workbook.worksheets, limits=limits)
        return [_read_worksheet(sheet, limits=limits, counter=counter) for sheet in workbook.worksheets]
    finally:
        workbook.close()


def _check_dimensions(sheets: list[Any], *, limits: ImportLimits) -> int | None:
    """Refuse a worksheet whose declared ``<dimension>`` exceeds the row or column limit before any
    row is read; returns the declared row count of all sheets (``None`` when a sheet declares none)."""
    total: int | None = 0
    for sheet in sheets:
        max_row, max_column = getattr(sheet, "max_row", None), getattr(sheet, "max_column", None)
        if max_column is not None and max_column > limits.max_columns:
            raise _too_many_columns(limits, columns=max_column, row=None, sheet=sheet.title)
        if max_row is not None and max_row > limits.max_rows:
            raise _too_many_rows(limits, sheet=sheet.title)
        total = None if total is None or max_row is None else total + max_row
    return total


def _read_worksheet(sheet: Any, *, limits: ImportLimits, counter: _RowCounter) -> Table:
    sheet.reset_dimensions()  # a stale <dimension> tag would hide rows; each row is checked below instead
    rows: list[tuple[int, tuple[Cell, ...]]] = []
    for number, values in enumerate(sheet.iter_rows(min_row=1, values_only=True), start=1):
        if number > limits.max_rows:
            raise _too_many_rows(limits, sheet=sheet.title)
        counter.step()
        width = len(values)
        if width > limits.max_columns:
            while width and values[width - 1] in (None, ""):
                width -= 1  # formatted but empty cells at the end of a row do not count
            if width > limits.max_columns:
                raise _too_many_columns(limits, columns=width, row=number, sheet=sheet.title)
            values = values[:width]
        cells = tuple(value.strip() if isinstance(value, str) else value for value in values)
        _check_cells(cells, number=number, limits=limits, sheet=sheet.title)
        if any(cell not in (None, "") for cell in cells):
            rows.append((number, cells))
    return Table(title=sheet.title, rows=tuple(rows))
