"""Case-insensitive substring search that behaves the same on SQLite and PostgreSQL.

PostgreSQL's ``lower()`` folds every script (under the database's UTF-8 collation), but SQLite's
built-in ``lower()`` and ``LIKE`` fold ASCII only, so ``"Розы"`` would not find ``"розы"``. On SQLite
:func:`register_sqlite_functions` (called by ``core.db.create_engine`` for every connection) adds
``cc_casefold(text)``, Python's :meth:`str.casefold`; :class:`fold` compiles to it there and to
``lower()`` elsewhere. :func:`contains_folded` builds ``fold(column) LIKE '%term%'`` with ``%``, ``_``
and the escape character in the term escaped (SQLAlchemy ``autoescape``).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Text
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement

SQLITE_FOLD_FUNCTION = "cc_casefold"


class fold(FunctionElement[str]):  # noqa: N801 - a SQL function name
    """``fold(expr)``: ``expr`` case-folded for comparison (``lower`` / ``cc_casefold`` on SQLite)."""

    type = Text()
    inherit_cache = True
    name = "fold"


@compiles(fold)
def _fold_default(element: fold, compiler: Any, **kw: Any) -> str:
    return f"lower({compiler.process(element.clauses, **kw)})"


@compiles(fold, "sqlite")
def _fold_sqlite(element: fold, compiler: Any, **kw: Any) -> str:
    return f"{SQLITE_FOLD_FUNCTION}({compiler.process(element.clauses, **kw)})"


def _casefold(value: Any) -> Any:
    return value.casefold() if isinstance(value, str) else value


def register_sqlite_functions(dbapi_connection: Any) -> None:
    """Add ``cc_casefold`` to one SQLite DB-API connection (sqlite3, or aiosqlite through SQLAlchemy's adapter)."""
    dbapi_connection.create_function(SQLITE_FOLD_FUNCTION, 1, _casefold, deterministic=True)


def fold_term(term: str) -> str:
    """The search term folded the way :class:`fold` folds a column (``str.casefold``; PostgreSQL's
    ``lower`` agrees with it except for a few letters such as ``ß``)."""
    return term.casefold()


def contains_folded(column: Any, term: str) -> ColumnElement[bool]:
    """``column`` contains ``term``, ignoring case, in any script; ``%`` and ``_`` in ``term`` are literal."""
    return fold(column).contains(fold_term(term), autoescape=True)
