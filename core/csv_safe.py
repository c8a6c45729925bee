"""CSV export that is safe to open in a spreadsheet app (CSV / formula injection, CWE-1236).

A text cell starting with ``=``, ``+``, ``-`` or ``@`` (or tab, carriage return, NUL) is run as a
formula by Excel, LibreOffice and Google Sheets when a CSV file is opened; customer or owner text
(``=HYPERLINK(...)``, ``@SUM(...)``, ``-2+3+cmd|...``) must therefore never reach an export as is.
Following OWASP's "CSV Injection" guidance (https://owasp.org/www-community/attacks/CSV_Injection)
and ASVS 5.0 requirement 1.2.10, such cells get a leading single quote, and quoting and doubled
quotes follow RFC 4180 (Python's :mod:`csv` writer). Every CSV the project writes goes through
:func:`write_csv` (or :func:`neutralise_cell` for a writer of its own).
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import Any, TextIO

# First characters that make a spreadsheet app read a cell as a formula (OWASP; ASVS 1.2.10 adds
# NUL), plus their full-width forms, which some Excel locales convert to the ASCII ones.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r", "\n", "\0", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def neutralise_cell(value: Any) -> Any:
    """``value`` ready for a CSV cell: a ``str`` whose first character, or first character after
    leading spaces, is in :data:`FORMULA_PREFIXES` gets a leading ``'`` (``"=1+1"`` → ``"'=1+1"``,
    ``"+1 555 0100"`` → ``"'+1 555 0100"``: a phone number then shows the quote, the price of safety);
    other values, numbers included (``-5`` stays a number), are returned unchanged."""
    if isinstance(value, str) and value.lstrip(" ").startswith(FORMULA_PREFIXES):
        return "'" + value
    return value


def neutralise_row(values: Iterable[Any]) -> list[Any]:
    """:func:`neutralise_cell` applied to every value of a row."""
    return [neutralise_cell(value) for value in values]


def write_csv(file: TextIO, rows: Iterable[Iterable[Any]], *, delimiter: str = ",") -> int:
    """Write ``rows`` to ``file`` (opened with ``newline=""``) as RFC 4180 CSV, every cell
    neutralised; ``None`` becomes an empty cell. Returns the number of rows written."""
    writer = csv.writer(file, delimiter=delimiter, lineterminator="\r\n")
    count = 0
    for row in rows:
        writer.writerow(neutralise_row(row))
        count += 1
    return count
