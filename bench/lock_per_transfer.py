"""The obvious implementation, for comparison: one transaction per transfer with row locks.

It replaces only WalletService.debit, so the HTTP layer, validation, auth and idempotency checks
are the same as in the real node: the difference measured is the ledger strategy alone.
"""

from __future__ import annotations

import asyncpg

from transakt.errors import InsufficientFunds
from transakt.services.wallets import WalletService
from transakt.storage.records import (
    TRANSFER_COLUMNS,
    Applied,
    Duplicate,
    NewTransfer,
    Outcome,
    Rejected,
    transfer_from_row,
)


class LockPerTransferService(WalletService):
    """SELECT ... FOR UPDATE both accounts, check, insert, update, commit — per request."""

    def __init__(self, *args: object, pool: asyncpg.Pool, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._pool = pool

    async def debit(self, transfer: NewTransfer) -> Outcome:
        """Commit this one transfer in its own transaction."""
        async with self._pool.acquire() as connection, connection.transaction():
            rows = await connection.fetch(
                "SELECT id, balance - pending_out AS available FROM accounts "
                "WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE",
                [transfer.from_account, transfer.to_account],
            )
            available = {row["id"]: row["available"] for row in rows}
            if available.get(transfer.from_account, 0) < transfer.amount:
                return Rejected(InsufficientFunds("the wallet's available balance is too low"))
            row = await connection.fetchrow(
                f"INSERT INTO transfers (id, kind, status, from_account, to_account, amount, "
                f"currency, memo, initiator_id, posted_at, settled_at) "
                f"VALUES ($1, 'p2p', 'posted', $2, $3, $4, $5, $6, $7, now(), now()) "
                f"ON CONFLICT (id) DO NOTHING RETURNING {TRANSFER_COLUMNS}",
                transfer.id,
                transfer.from_account,
                transfer.to_account,
                transfer.amount,
                transfer.currency,
                transfer.memo,
                transfer.initiator_id,
            )
            if row is None:
                return Duplicate(transfer.id)
            await connection.execute(
                "UPDATE accounts SET balance = balance - $2 WHERE id = $1",
                transfer.from_account,
                transfer.amount,
            )
            await connection.execute(
                "UPDATE accounts SET balance = balance + $2 WHERE id = $1",
                transfer.to_account,
                transfer.amount,
            )
            return Applied(transfer_from_row(row))
