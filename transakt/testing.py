"""Helpers for tests and demos that need money in a wallet before deposits are wired."""

from __future__ import annotations

import uuid

import asyncpg

from transakt.storage.ledger import commit_batch
from transakt.storage.records import Applied, NewTransfer


async def fund_wallet(pool_or_dsn: asyncpg.Pool | str, wallet_id: str, amount: int) -> str:
    """Post a settlement → wallet deposit through the real ledger; return the transfer id."""
    pool = (
        await asyncpg.create_pool(pool_or_dsn, min_size=1, max_size=1)
        if isinstance(pool_or_dsn, str)
        else None
    )
    target = pool if pool is not None else pool_or_dsn
    assert isinstance(target, asyncpg.Pool)
    try:
        async with target.acquire() as connection:
            currency = await connection.fetchval(
                "SELECT currency FROM accounts WHERE id = $1", wallet_id
            )
            if currency is None:
                raise LookupError(f"no wallet {wallet_id}")
            settlement = await connection.fetchval(
                "SELECT id FROM accounts WHERE kind = 'settlement' AND currency = $1", currency
            )
            transfer_id = f"trf_{uuid.uuid4().hex}"
            result = await commit_batch(
                connection,
                [
                    NewTransfer(
                        id=transfer_id,
                        kind="deposit",
                        status="posted",
                        from_account=settlement,
                        to_account=wallet_id,
                        amount=amount,
                        currency=currency,
                        memo="test funding",
                        initiator_id=None,
                    )
                ],
            )
            assert isinstance(result.outcomes[0], Applied), result.outcomes
            return transfer_id
    finally:
        if pool is not None:
            await pool.close()
