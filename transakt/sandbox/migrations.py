"""The bank's own schema, built by ordered migrations recorded in ``<schema>.schema_migrations``.

The SQL lives here as Python strings rather than ``.sql`` files so that it ships inside the
package with no package-data rule, and so that the schema name can be put in (validated first).
"""

from __future__ import annotations

import re
import zlib
from typing import Final

import asyncpg
from asyncpg.pool import PoolConnectionProxy

__all__ = ["MIGRATIONS", "Migration", "migrate", "quote_schema"]

_SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


class Migration:
    """One numbered step of the schema; ``{schema}`` in its SQL names the bank's schema."""

    __slots__ = ("name", "sql", "version")

    def __init__(self, version: int, name: str, sql: str) -> None:
        self.version = version
        self.name = name
        self.sql = sql

    def __repr__(self) -> str:
        return f"<Migration {self.version:04d}_{self.name}>"


MIGRATIONS: Final[tuple[Migration, ...]] = (
    Migration(
        1,
        "accounts_and_transfers",
        """
        CREATE TABLE {schema}.accounts (
            account    text PRIMARY KEY,
            name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
            currency   text NOT NULL CHECK (currency ~ '^[A-Z]{{3}}$'),
            -- The sandbox never lets a customer overdraw: the last line of defence is here.
            balance    bigint NOT NULL CHECK (balance >= 0),
            created_at timestamptz NOT NULL DEFAULT now()
        );

        -- One row per transfer id, whatever the outcome: the id is the idempotency key, so a
        -- replay finds its stored answer. No foreign key on account, because a transfer to an
        -- unknown account is stored too (rejected, account_not_found).
        CREATE TABLE {schema}.transfers (
            id         text PRIMARY KEY CHECK (length(id) BETWEEN 1 AND 255),
            seq        bigserial NOT NULL UNIQUE,
            account    text NOT NULL,
            direction  text NOT NULL CHECK (direction IN ('debit', 'credit')),
            amount     bigint NOT NULL CHECK (amount > 0),
            currency   text NOT NULL,
            status     text NOT NULL CHECK (status IN ('completed', 'rejected')),
            reason     text,
            created_at timestamptz NOT NULL DEFAULT now(),
            CHECK ((status = 'rejected') = (reason IS NOT NULL))
        );

        -- Reconciliation lists one account's transfers in the order they were applied.
        CREATE INDEX transfers_account_seq ON {schema}.transfers (account, seq);
        """,
    ),
    Migration(
        2,
        "passcodes_and_account_verifications",
        """
        -- Online banking: a salted hash of the holder's passcode. Accounts opened before this
        -- step have none, and so can never log in.
        ALTER TABLE {schema}.accounts
            ADD COLUMN passcode_hash text CHECK (passcode_hash LIKE 'sha256$%');

        -- Proof of control by micro-deposits. The id is the wallet's and applies once; the
        -- amounts sent are kept here to check the holder's answer, and never shown to the
        -- wallet. given_name is what the wallet sent (to recognise a replay), holder_name
        -- the account's name when the verification started.
        CREATE TABLE {schema}.verifications (
            id            text PRIMARY KEY
                          CHECK (length(id) BETWEEN 1 AND 255 AND id ~ '^[ -~]+$'),
            account       text NOT NULL
                          REFERENCES {schema}.accounts (account) ON DELETE CASCADE,
            given_name    text NOT NULL,
            holder_name   text NOT NULL,
            currency      text NOT NULL,
            first_amount  integer NOT NULL CHECK (first_amount BETWEEN 1 AND 99),
            second_amount integer NOT NULL CHECK (second_amount BETWEEN 1 AND 99),
            status        text NOT NULL
                          CHECK (status IN ('pending', 'verified', 'failed', 'expired')),
            attempts_left integer NOT NULL CHECK (attempts_left BETWEEN 0 AND 3),
            expires_at    timestamptz NOT NULL,
            created_at    timestamptz NOT NULL DEFAULT now(),
            updated_at    timestamptz NOT NULL DEFAULT now(),
            CHECK (first_amount <> second_amount),
            -- Attempts run out exactly when a verification fails.
            CHECK ((status = 'failed') = (attempts_left = 0))
        );

        -- The money the verifications sent, as the holder's statement shows it. Kept apart
        -- from transfers: reconciliation compares those with the wallet's ledger, and these
        -- are not the wallet's.
        CREATE TABLE {schema}.micro_deposits (
            seq          bigserial PRIMARY KEY,
            verification text NOT NULL
                         REFERENCES {schema}.verifications (id) ON DELETE CASCADE,
            account      text NOT NULL,
            amount       integer NOT NULL CHECK (amount BETWEEN 1 AND 99),
            currency     text NOT NULL,
            created_at   timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX micro_deposits_account_seq ON {schema}.micro_deposits (account, seq);
        CREATE INDEX verifications_account ON {schema}.verifications (account);
        """,
    ),
)


def quote_schema(schema: str) -> str:
    """Return the schema name as a safe SQL identifier, or raise ValueError."""
    # Identifiers cannot be bind parameters; a strict pattern makes formatting them in safe.
    if not _SCHEMA_NAME.fullmatch(schema):
        raise ValueError(f"bank schema name must match {_SCHEMA_NAME.pattern}: {schema!r}")
    return f'"{schema}"'


def _lock_key(schema: str) -> int:
    # A stable 63-bit key per schema: two banks on different schemas never wait on each other.
    return zlib.crc32(f"transakt.sandbox.migrations.{schema}".encode()) | (0x7A0B << 32)


async def migrate(
    connection: asyncpg.Connection | PoolConnectionProxy[asyncpg.Record], schema: str
) -> list[int]:
    """Apply the migrations not yet recorded, in order; return the versions applied now."""
    quoted = quote_schema(schema)
    applied_now: list[int] = []
    # A session-level advisory lock: several bank processes starting at once migrate one at a
    # time, and each sees what the previous one recorded.
    await connection.execute("SELECT pg_advisory_lock($1)", _lock_key(schema))
    try:
        await connection.execute(f"CREATE SCHEMA IF NOT EXISTS {quoted}")
        await connection.execute(
            f"""
            CREATE TABLE IF NOT EXISTS {quoted}.schema_migrations (
                version    integer PRIMARY KEY,
                name       text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )
            """
        )
        rows = await connection.fetch(f"SELECT version FROM {quoted}.schema_migrations")
        done = {row["version"] for row in rows}
        for migration in MIGRATIONS:
            if migration.version in done:
                continue
            # Each step and its record commit together: a crash leaves no half-applied step.
            async with connection.transaction():
                await connection.execute(migration.sql.format(schema=quoted))
                await connection.execute(
                    f"INSERT INTO {quoted}.schema_migrations (version, name) VALUES ($1, $2)",
                    migration.version,
                    migration.name,
                )
            applied_now.append(migration.version)
    finally:
        await connection.execute("SELECT pg_advisory_unlock($1)", _lock_key(schema))
    return applied_now
