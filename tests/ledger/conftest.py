"""Fixtures for ledger tests: a migrated pool on the session database, clean per test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest

from transakt.storage.migrate import migrate
from transakt.storage.pool import create_pool

WALLET_TABLES = "idempotency_keys, outbox, transfers, accounts, users"


@pytest.fixture(scope="session")
async def ledger_pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the session database with every migration applied."""
    await migrate(database_url)
    pool = await create_pool(database_url, min_size=2, max_size=12)
    yield pool
    await pool.close()


@pytest.fixture
async def pool(ledger_pool: asyncpg.Pool) -> asyncpg.Pool:
    """The session pool, with the wallet tables emptied first."""
    await ledger_pool.execute(f"TRUNCATE {WALLET_TABLES} CASCADE")
    return ledger_pool


MakeWallet = Callable[..., Awaitable[str]]


@pytest.fixture
def make_wallet(pool: asyncpg.Pool) -> MakeWallet:
    """Create a user with a wallet (and the currency's settlement account); return its id."""

    async def make(currency: str = "EUR", balance: int = 0) -> str:
        user_id = f"usr_{uuid.uuid4().hex}"
        wallet_id = f"wal_{uuid.uuid4().hex}"
        async with pool.acquire() as connection, connection.transaction():
            await connection.execute(
                "INSERT INTO users (id, email, name, password_hash, bank_account) "
                "VALUES ($1, $2, 'Test', 'x', 'DE00')",
                user_id,
                f"{user_id}@example.test",
            )
            await connection.execute(
                "INSERT INTO accounts (id, kind, user_id, currency) VALUES ($1,'wallet',$2,$3)",
                wallet_id,
                user_id,
                currency,
            )
            await connection.execute(
                "INSERT INTO accounts (id, kind, currency) VALUES ($1, 'settlement', $2) "
                "ON CONFLICT DO NOTHING",
                f"settlement_{currency}",
                currency,
            )
        if balance:
            from transakt.testing import fund_wallet

            await fund_wallet(pool, wallet_id, balance)
        return wallet_id

    return make
