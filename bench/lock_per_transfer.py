"""The obvious implementation, for comparison: one transaction per transfer with row locks.

It replaces only WalletService.debit, so the HTTP layer, validation, auth and idempotency checks
are the same as in the real node. It also writes what the node's ``ledger_commit`` writes for a
posted payment: the transfer, both balances, the transfer's outbox event (one row, in the shape
of step 6 of ``0005_one_event_per_transfer.sql``, whose insert notifies the relays) and, for a
payment that carries an Idempotency-Key, its answer under the key, claimed before the transfer
is written (step 1 of ``0008_trust.sql``). The difference measured is the ledger strategy alone:
a transaction and its round trips per payment instead of one function call per batch.
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

# A wallet's state after the move, as ledger_commit puts it in the event (text, so the client
# passes it back to the outbox insert as it came, without decoding and encoding it again).
_MOVE = (
    "UPDATE accounts SET balance = balance + $2 WHERE id = $1 "
    "RETURNING user_id, CASE WHEN kind = 'wallet' THEN jsonb_build_object("
    "'id', id, 'user_id', user_id, 'currency', currency, 'balance', balance, "
    "'pending_in', pending_in, 'pending_out', pending_out, "
    "'available', balance - pending_out)::text END AS state"
)
_EVENT = (
    "INSERT INTO outbox (event_id, topic, payload) "
    "VALUES ($1 || ':' || $2, 'transfer.' || $2, jsonb_build_object("
    "'transfer', $3::text::jsonb, 'from_user', $4::text, 'to_user', $5::text, "
    "'wallets', to_jsonb(array_remove(ARRAY[$6::text::jsonb, $7::text::jsonb], NULL))))"
)


class _KeyTaken(Exception):
    """Internal: the transfer id was taken after the key was claimed; undo the claim."""


class LockPerTransferService(WalletService):
    """SELECT ... FOR UPDATE both accounts, check, write, commit: per request."""

    def __init__(self, *args: object, pool: asyncpg.Pool, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._pool = pool

    async def debit(self, transfer: NewTransfer) -> Outcome:
        """Commit this one transfer in its own transaction."""
        try:
            return await self._commit(transfer)
        except _KeyTaken:
            return Duplicate(transfer.id)

    async def _commit(self, transfer: NewTransfer) -> Outcome:
        async with self._pool.acquire() as connection, connection.transaction():
            rows = await connection.fetch(
                "SELECT id, balance - pending_out AS available FROM accounts "
                "WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE",
                [transfer.from_account, transfer.to_account],
            )
            available = {row["id"]: row["available"] for row in rows}
            if available.get(transfer.from_account, 0) < transfer.amount:
                return Rejected(InsufficientFunds("the wallet's available balance is too low"))
            if transfer.idempotency is not None:
                # The key and its answer first: a key answered once never moves money again.
                claimed = await connection.fetchval(
                    "INSERT INTO idempotency_keys "
                    "(user_id, key, request_hash, status_code, response) "
                    "VALUES ($1, $2, $3, $4, ledger_new_transfer_json("
                    "$5, 'p2p', 'posted', $6, $7, $8, $9, $10)) "
                    "ON CONFLICT DO NOTHING RETURNING true",
                    transfer.idempotency.user_id,
                    transfer.idempotency.key,
                    transfer.idempotency.request_hash,
                    transfer.response_status,
                    transfer.id,
                    transfer.from_account,
                    transfer.to_account,
                    transfer.amount,
                    transfer.currency,
                    transfer.memo,
                )
                if not claimed:
                    return Duplicate(transfer.id)
            row = await connection.fetchrow(
                f"INSERT INTO transfers AS t (id, kind, status, from_account, to_account, "
                f"amount, currency, memo, initiator_id, posted_at, settled_at) "
                f"VALUES ($1, 'p2p', 'posted', $2, $3, $4, $5, $6, $7, now(), now()) "
                f"ON CONFLICT (id) DO NOTHING "
                f"RETURNING {TRANSFER_COLUMNS}, ledger_transfer_json(t)::text AS body",
                transfer.id,
                transfer.from_account,
                transfer.to_account,
                transfer.amount,
                transfer.currency,
                transfer.memo,
                transfer.initiator_id,
            )
            if row is None:
                if transfer.idempotency is not None:
                    raise _KeyTaken  # roll the claim back with the transaction
                return Duplicate(transfer.id)
            payer = await connection.fetchrow(_MOVE, transfer.from_account, -transfer.amount)
            payee = await connection.fetchrow(_MOVE, transfer.to_account, transfer.amount)
            assert payer is not None and payee is not None
            await connection.execute(
                _EVENT,
                transfer.id,
                row["status"],
                row["body"],
                payer["user_id"],
                payee["user_id"],
                payer["state"],
                payee["state"],
            )
            return Applied(transfer_from_row(row))
