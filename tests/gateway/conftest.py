"""Fixtures for the bank gateway tests.

These tests stop banks, flush Redis and kill nodes, so they keep to their own database, their
own Redis database and their own bank schema: nothing they do reaches the session's shared
wallet node, and reconciliation sees exactly the transfers these tests made.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
import pytest
import redis.asyncio as aioredis
from httpkit import BANK_SECRET
from pydantic import SecretStr

from gateway.kit import GATEWAY_BANK_SCHEMA, Bank, Nodes
from transakt.config import Settings

# A Redis database of its own: these tests FLUSHDB it.
GATEWAY_REDIS_DB = 14


def _with_redis_db(url: str, db: int) -> str:
    # A db in the query wins over one in the path, for redis:// and unix:// URLs alike.
    parts = urlsplit(url)
    query = [(key, value) for key, value in parse_qsl(parts.query) if key != "db"]
    query.append(("db", str(db)))
    return urlunsplit(parts._replace(query=urlencode(query)))


@pytest.fixture(scope="session")
async def gateway_database_url(database_url: str) -> AsyncIterator[str]:
    """A database of its own on the session's PostgreSQL server, dropped at the end."""
    name = f"transakt_gateway_{secrets.token_hex(4)}"
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()
    yield urlunsplit(urlsplit(database_url)._replace(path=f"/{name}"))
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
        )
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
    finally:
        await connection.close()


@pytest.fixture(scope="session")
async def gateway_redis_url(redis_url: str) -> str:
    """The session's Redis server, on a database only these tests use (emptied first)."""
    url = _with_redis_db(redis_url, GATEWAY_REDIS_DB)
    client = aioredis.from_url(url)
    try:
        await client.flushdb()
    finally:
        await client.aclose()
    return url


@pytest.fixture
async def gateway_redis(gateway_redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """A client of the gateway tests' Redis database."""
    client = aioredis.from_url(gateway_redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def bank(gateway_database_url: str) -> AsyncIterator[Bank]:
    """A sandbox bank for one test, over the gateway tests' own schema."""
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        bank_schema=GATEWAY_BANK_SCHEMA,
        bank_service_secret=SecretStr(BANK_SECRET),
        database_pool_max=8,
    )
    running = Bank(settings, gateway_database_url)
    await running.start()
    yield running
    await running.stop()
    await running.client.close()


@pytest.fixture
async def nodes(gateway_database_url: str, gateway_redis_url: str) -> AsyncIterator[Nodes]:
    """A factory of wallet nodes on the gateway tests' database and Redis."""
    opened = Nodes(gateway_database_url, gateway_redis_url)
    yield opened
    await opened.close_all()
