"""Fixtures of the history tests: a database of their own, for ledgers written row by row.

Balance history must hold for transfers spread over past days, which the ledger (stamping
``now()``) cannot make; these tests insert such rows directly, into a database no other suite
reads, so that the money invariants the other suites check stay true in theirs.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from transakt.runtime import ActorSystem
from transakt.services.history import HistoryService
from transakt.services.idempotency import Idempotency
from transakt.services.wallets import WalletService
from transakt.storage.migrate import migrate
from transakt.storage.repository import Repository


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


@pytest.fixture(scope="session")
async def history_pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A migrated pool on a database created for the history tests, dropped at the end."""
    name = f"transakt_history_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(database_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = _with_database(database_url, name)
    try:
        await migrate(url)
        pool = await asyncpg.create_pool(url, min_size=1, max_size=4)
        try:
            yield pool
        finally:
            await pool.close()
    finally:
        admin = await asyncpg.connect(database_url)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture(scope="session")
def history_service(history_pool: asyncpg.Pool) -> HistoryService:
    """The real history service over the history database (its wallet service unstarted: the
    history reads only ask it who owns a wallet)."""
    repository = Repository(history_pool)
    wallets = WalletService(repository, ActorSystem(), Idempotency(repository))
    return HistoryService(history_pool, wallets)


OpenWallet = Callable[[datetime], Awaitable[tuple[str, str]]]


@pytest.fixture(scope="session")
def open_wallet(history_pool: asyncpg.Pool) -> OpenWallet:
    """A user and their EUR wallet opened at a given instant: (user id, wallet id)."""

    async def open_at(opened: datetime) -> tuple[str, str]:
        user_id = f"usr_{uuid.uuid4().hex}"
        wallet_id = f"wal_{uuid.uuid4().hex}"
        async with history_pool.acquire() as connection, connection.transaction():
            await connection.execute(
                "INSERT INTO users (id, email, name, password_hash, bank_account, created_at) "
                "VALUES ($1, $2, 'Test', 'x', 'DE00', $3)",
                user_id,
                f"{user_id}@example.test",
                opened,
            )
            await connection.execute(
                "INSERT INTO accounts (id, kind, user_id, currency, created_at) "
                "VALUES ($1, 'wallet', $2, 'EUR', $3)",
                wallet_id,
                user_id,
                opened,
            )
            await connection.execute(
                "INSERT INTO accounts (id, kind, currency) VALUES ('settlement_EUR', "
                "'settlement', 'EUR') ON CONFLICT DO NOTHING"
            )
        return user_id, wallet_id

    return open_at
