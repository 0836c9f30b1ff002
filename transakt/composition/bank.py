"""The sandbox bank's resources: its pool (migrating its schema first), store and LRU directory.

The sandbox is a process of its own and shares nothing with the wallet but the bank API
(``transakt.bankapi``) and the HTTP plumbing (``transakt.web``): this module opens only what
the sandbox needs.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import asyncpg

from transakt.config.settings import BankSettings
from transakt.sandbox.cache import AccountDirectory
from transakt.sandbox.migrations import migrate
from transakt.sandbox.store import BankStore

__all__ = ["BankParts", "open_bank"]

log = logging.getLogger("transakt.bank")


@dataclass(frozen=True, slots=True)
class BankParts:
    """What the sandbox's views work with."""

    store: BankStore
    directory: AccountDirectory


@asynccontextmanager
async def open_bank(
    bank: BankSettings, database_url: str, *, pool_max: int = 10
) -> AsyncIterator[BankParts]:
    """Open the bank's pool, migrate its schema, build store and directory; close them after."""
    pool = await asyncpg.create_pool(
        database_url,
        min_size=1,
        max_size=pool_max,
        server_settings={"application_name": "transakt-bank"},
    )
    try:
        async with pool.acquire() as connection:
            applied = await migrate(connection, bank.schema_)
        if applied:
            log.info("bank schema %s migrated to version %s", bank.schema_, applied[-1])
        store = BankStore(pool, bank.schema_)
        directory = AccountDirectory(store, maxsize=bank.cache_size, ttl=bank.cache_ttl_seconds)
        try:
            yield BankParts(store=store, directory=directory)
        finally:
            await directory.close()
    finally:
        await pool.close()
