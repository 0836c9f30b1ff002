"""A statement as CSV: the header, the opening and closing balance rows, and cells that a
spreadsheet cannot mistake for a formula (memos are user text)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import datetime
from typing import Final

from transakt.models import rfc3339
from transakt.services.history import Statement, StatementLine

__all__ = ["HEADER", "closing_row", "encode_rows", "line_row", "opening_row", "safe_cell"]

HEADER: Final = (
    "date",
    "id",
    "kind",
    "status",
    "counterparty",
    "amount",
    "currency",
    "memo",
    "running_balance",
)
# Spreadsheets read a cell starting with one of these as a formula (or strip it and then do).
_FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")

Cell = str | int


def safe_cell(value: str | None) -> str:
    """A text cell, with a leading apostrophe when a spreadsheet would run it as a formula."""
    if value is None:
        return ""
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


def _when(moment: datetime) -> str:
    return rfc3339(moment) or ""


def opening_row(statement: Statement) -> tuple[Cell, ...]:
    """The balance at the period's start (posted transfers only)."""
    return (_when(statement.start), "", "opening_balance", "", "", "", statement.currency, "",
            statement.opening_balance)  # fmt: skip


def closing_row(statement: Statement, balance: int) -> tuple[Cell, ...]:
    """The balance at the period's end."""
    return (_when(statement.end), "", "closing_balance", "", "", "", statement.currency, "",
            balance)  # fmt: skip


def line_row(line: StatementLine) -> tuple[Cell, ...]:
    """One transfer: integers stay numbers (a negative amount is a number, not a formula)."""
    return (
        _when(line.moment),
        safe_cell(line.id),
        safe_cell(line.kind),
        safe_cell(line.status),
        safe_cell(line.counterparty),
        line.amount,
        safe_cell(line.currency),
        safe_cell(line.memo),
        line.running_balance,
    )


def encode_rows(rows: Iterable[tuple[Cell, ...]]) -> bytes:
    """Rows as CSV bytes (RFC 4180: CRLF line ends, quotes where needed), UTF-8."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerows(rows)
    return buffer.getvalue().encode()
