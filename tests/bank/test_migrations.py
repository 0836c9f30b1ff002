"""The bank's schema: ordered, recorded, applied once even by banks starting together."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from transakt.sandbox.migrations import MIGRATIONS, migrate, quote_schema


async def test_concurrent_migrations_apply_each_step_once(bank_database_url: str) -> None:
    schema = "bank_migrate_race"
    connections = [await asyncpg.connect(bank_database_url) for _ in range(4)]
    try:
        results = await asyncio.gather(*(migrate(c, schema) for c in connections))
        assert sorted(results) == [[], [], [], [m.version for m in MIGRATIONS]]
        assert await migrate(connections[0], schema) == []
        recorded = await connections[0].fetch(
            f"SELECT version FROM {schema}.schema_migrations ORDER BY version"
        )
        assert [row["version"] for row in recorded] == [m.version for m in MIGRATIONS]
    finally:
        await connections[0].execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        for connection in connections:
            await connection.close()


@pytest.mark.parametrize("name", ["Bank", "bank; drop table x", "1bank", "", "a" * 64, 'b"'])
def test_unsafe_schema_names_are_refused(name: str) -> None:
    with pytest.raises(ValueError, match="schema name"):
        quote_schema(name)


async def test_balance_constraint_holds_in_the_database(bank_database_url: str) -> None:
    # The last line of defence: even a buggy writer cannot overdraw a sandbox account.
    connection = await asyncpg.connect(bank_database_url)
    try:
        await migrate(connection, "bank_constraint")
        with pytest.raises(asyncpg.CheckViolationError):
            await connection.execute(
                "INSERT INTO bank_constraint.accounts (account, name, currency, balance) "
                "VALUES ('DE1', 'x', 'EUR', -1)"
            )
    finally:
        await connection.execute("DROP SCHEMA IF EXISTS bank_constraint CASCADE")
        await connection.close()


async def test_passcodes_and_verifications_upgrade_a_schema_in_use(
    bank_database_url: str,
) -> None:
    schema = "bank_upgrade"
    connection = await asyncpg.connect(bank_database_url)
    try:
        # A bank that ran before this step: version 1 only, with an account in it.
        await connection.execute(f"CREATE SCHEMA {schema}")
        await connection.execute(
            f"CREATE TABLE {schema}.schema_migrations (version integer PRIMARY KEY, "
            "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        first = MIGRATIONS[0]
        await connection.execute(first.sql.format(schema=quote_schema(schema)))
        await connection.execute(
            f"INSERT INTO {schema}.schema_migrations (version, name) VALUES ($1, $2)",
            first.version,
            first.name,
        )
        await connection.execute(
            f"INSERT INTO {schema}.accounts (account, name, currency, balance) "
            "VALUES ('DE1', 'Old Holder', 'EUR', 100)"
        )
        assert await migrate(connection, schema) == [m.version for m in MIGRATIONS[1:]]
        # The old account is still there, and has no passcode: it cannot log in online.
        row = await connection.fetchrow(f"SELECT balance, passcode_hash FROM {schema}.accounts")
        assert dict(row) == {"balance": 100, "passcode_hash": None}

        insert = (
            f"INSERT INTO {schema}.verifications (id, account, given_name, holder_name, "
            "currency, first_amount, second_amount, status, attempts_left, expires_at) "
            "VALUES ($1, 'DE1', 'x', 'x', 'EUR', $2, $3, $4, $5, now())"
        )
        await connection.execute(insert, "ok", 1, 99, "pending", 3)
        for values in [
            ("same-amounts", 5, 5, "pending", 3),
            ("too-big", 1, 100, "pending", 3),
            ("failed-with-attempts", 1, 2, "failed", 1),
            ("pending-without-attempts", 1, 2, "pending", 0),
            ("below-zero", 1, 2, "failed", -1),
            ("odd-status", 1, 2, "done", 3),
        ]:
            with pytest.raises(asyncpg.CheckViolationError):
                await connection.execute(insert, *values)
    finally:
        await connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await connection.close()
