"""Refunds: which transfers pay a payment back (migration 0011 checks and links them)."""

from __future__ import annotations

import asyncpg

from transakt.models import Transfer
from transakt.storage.records import TRANSFER_COLUMNS, transfer_from_row

__all__ = ["refund_id", "refunded", "refunds_of"]

_COLUMNS = ", ".join(f"t.{column.strip()}" for column in TRANSFER_COLUMNS.split(","))


def refund_id(original_id: str, suffix: str) -> str:
    """The id of a refund of ``original_id``: the database recognises refunds by it."""
    return f"rfd:{original_id}:{suffix}"


async def refunded(pool: asyncpg.Pool, original_id: str) -> int:
    """How much of the payment its refunds (not voided) have paid back."""
    value: int = await pool.fetchval(
        "SELECT coalesce(sum(r.amount), 0)::bigint FROM transfer_refunds AS r "
        "JOIN transfers AS t ON t.id = r.refund_id "
        "WHERE r.original_id = $1 AND t.status <> 'voided'",
        original_id,
    )
    return value


async def refunds_of(pool: asyncpg.Pool, original_id: str) -> list[Transfer]:
    """The refunds of a payment, oldest first."""
    rows = await pool.fetch(
        f"SELECT {_COLUMNS} FROM transfer_refunds AS r JOIN transfers AS t ON t.id = r.refund_id "
        "WHERE r.original_id = $1 ORDER BY t.seq",
        original_id,
    )
    return [transfer_from_row(row) for row in rows]
