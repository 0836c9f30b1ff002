"""The bank's schema: ordered, recorded, applied once even by banks starting together."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from transakt.bank.migrations import MIGRATIONS, migrate, quote_schema


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
