"""Reading an uploaded file into tables of cells: CSV/TSV/TXT (UTF-8, UTF-8 with BOM, Windows-1251;
``,`` ``;`` or tab, found with :class:`csv.Sniffer`) and XLSX workbooks (openpyxl, one table per
worksheet). Row numbers are the ones a spreadsheet app shows."""

from __future__ import annotations

import codecs
import csv
import io
import unicodedata
import zipfile
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import PurePath
from typing import Any

import charset_normalizer

from knowledge.errors import KnowledgeImportError

Cell = str | int | float | Decimal | datetime | date | time | timedelta | bool | None

TEXT_EXTENSIONS = (".csv", ".tsv", ".txt")
XLSX_EXTENSIONS = (".xlsx",)
SUPPORTED_EXTENSIONS = TEXT_EXTENSIONS + XLSX_EXTENSIONS
MAX_ROWS = 100_000
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


@dataclass(frozen=True, slots=True)
class Table:
    """One sheet of cells. ``title`` is the worksheet title (``None`` for a CSV file); ``rows`` holds
    ``(row_number, cells)`` for every row with at least one non-blank cell, strings stripped."""

    title: str | None
    rows: tuple[tuple[int, tuple[Cell, ...]], ...]


def read_tables(data: bytes, *, filename: str) -> list[Table]:
    """Split an uploaded file into tables: one for a CSV/TSV/TXT file, one per worksheet of an XLSX
    workbook (worksheets without any value are left out).

    Raises :class:`KnowledgeImportError` for an empty file, an unsupported file type (by extension
    or content), text in an unknown encoding, malformed CSV or a damaged workbook.
    """
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
        tables = _read_xlsx(data)
    elif extension in XLSX_EXTENSIONS:
        raise KnowledgeImportError("the file is not a valid .xlsx workbook")
    else:
        tables = [_read_csv(decode_text(data), filename=filename)]
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


def _read_csv(text: str, *, filename: str) -> Table:
    delimiter = sniff_delimiter(text, filename=filename)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar='"', doublequote=True)
    rows: list[tuple[int, tuple[Cell, ...]]] = []
    number = 0
    try:
        for number, record in enumerate(reader, start=1):  # noqa: B007 - number is reported on errors
            if number > MAX_ROWS:
                raise KnowledgeImportError(f"the file has more than {MAX_ROWS} rows")
            cells = tuple(cell.strip() for cell in record)
            if any(cells):
                rows.append((number, cells))
    except csv.Error as exc:
        raise KnowledgeImportError(f"the file is not valid CSV: {exc}", row=number + 1) from exc
    return Table(title=None, rows=tuple(rows))


def _read_xlsx(data: bytes) -> list[Table]:
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
        return [_read_worksheet(sheet) for sheet in workbook.worksheets]
    finally:
        workbook.close()


def _read_worksheet(sheet: Any) -> Table:
    sheet.reset_dimensions()  # a stale <dimension> tag would hide rows
    rows: list[tuple[int, tuple[Cell, ...]]] = []
    for number, values in enumerate(sheet.iter_rows(min_row=1, values_only=True), start=1):
        if number > MAX_ROWS:
            raise KnowledgeImportError(f"the worksheet has more than {MAX_ROWS} rows", sheet=sheet.title)
        cells = tuple(value.strip() if isinstance(value, str) else value for value in values)
        if any(cell not in (None, "") for cell in cells):
            rows.append((number, cells))
    return Table(title=sheet.title, rows=tuple(rows))
