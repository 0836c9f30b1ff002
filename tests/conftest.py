"""Shared fixtures: real PostgreSQL, Redis and RabbitMQ, never mocks.

Each service comes from a TRANSAKT_TEST_*_URL variable (defaulting to the usual local port).
When one is unreachable, ``require_service`` decides what happens, in one place: in CI (the
``CI`` variable is set) the test fails loudly, because a suite that skips its integration tests
must not pass; on a laptop the fixture falls back to an embedded server (PostgreSQL, Redis) or
skips (RabbitMQ has no embedded form).
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Callable
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import pytest_asyncio
import redis.asyncio as aioredis

DEFAULT_TEST_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_TEST_REDIS_URL = "redis://127.0.0.1:6379/15"
DEFAULT_TEST_RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/"

# Long enough for a busy CI machine, short enough that a laptop without services falls back fast.
CONNECT_TIMEOUT_SECONDS = 5.0

T = TypeVar("T")


def in_ci() -> bool:
    """True when running under CI, where every service must be present."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require_service(name: str, exc: BaseException, fallback: Callable[[], T] | None = None) -> T:
    """Handle an unreachable service: fail in CI; elsewhere use the fallback, or skip."""
    reason = f"{name} is not reachable ({type(exc).__name__}: {exc})"
    if in_ci():
        pytest.fail(f"{reason}; CI must provide it (.ci/run starts it)", pytrace=False)
    if fallback is None:
        pytest.skip(f"{reason}; start it to run this test")
    return fallback()


def _redact(url: str) -> str:
    """The URL with its password hidden, for messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _with_database(url: str, database: str) -> str:
    """The same server URL, pointing at another database (host, port and query kept)."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


# --------------------------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------------------------


async def _check_postgres(url: str) -> None:
    connection = await asyncpg.connect(url, timeout=CONNECT_TIMEOUT_SECONDS)
    await connection.close()


async def _create_database(admin_url: str, name: str) -> None:
    connection = await asyncpg.connect(admin_url, timeout=CONNECT_TIMEOUT_SECONDS)
    try:
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


async def _drop_database(admin_url: str, name: str) -> None:
    connection = await asyncpg.connect(admin_url, timeout=CONNECT_TIMEOUT_SECONDS)
    try:
        # Pools a test forgot to close would block DROP DATABASE; end their sessions first.
        await connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid()",
            name,
        )
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}"')
    finally:
        await connection.close()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def database_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database for this test session, dropped at its end."""
    admin_url = os.environ.get("TRANSAKT_TEST_DATABASE_URL", DEFAULT_TEST_DATABASE_URL)
    embedded = None
    try:
        await _check_postgres(admin_url)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        from transakt.storage.embedded import EmbeddedServer, start_embedded_postgres

        def start() -> EmbeddedServer:
            return start_embedded_postgres(tmp_path_factory.mktemp("embedded-postgres"))

        embedded = require_service(f"PostgreSQL at {_redact(admin_url)}", exc, start)
        admin_url = embedded.url

    name = f"transakt_test_{secrets.token_hex(4)}"
    await _create_database(admin_url, name)
    try:
        yield _with_database(admin_url, name)
    finally:
        await _drop_database(admin_url, name)
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)


# --------------------------------------------------------------------------------------------
# Redis
# --------------------------------------------------------------------------------------------


async def _flush_redis(url: str) -> None:
    client = aioredis.from_url(
        url, socket_connect_timeout=CONNECT_TIMEOUT_SECONDS, socket_timeout=CONNECT_TIMEOUT_SECONDS
    )
    try:
        await client.ping()
        await client.flushdb()
    finally:
        await client.aclose()


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def redis_url(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """A Redis database emptied at session start (db 15 of the local server by default)."""
    url = os.environ.get("TRANSAKT_TEST_REDIS_URL", DEFAULT_TEST_REDIS_URL)
    embedded = None
    try:
        await _flush_redis(url)
    except (OSError, TimeoutError, aioredis.RedisError) as exc:
        from transakt.storage.embedded import EmbeddedServer, start_embedded_redis

        def start() -> EmbeddedServer:
            return start_embedded_redis(tmp_path_factory.mktemp("embedded-redis"))

        embedded = require_service(f"Redis at {_redact(url)}", exc, start)
        url = embedded.url
        await _flush_redis(url)
    try:
        yield url
    finally:
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)


# --------------------------------------------------------------------------------------------
# RabbitMQ
# --------------------------------------------------------------------------------------------


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def rabbitmq_url() -> str:
    """The URL of a reachable RabbitMQ broker (no embedded fallback: skipped on a laptop)."""
    import aio_pika

    url = os.environ.get("TRANSAKT_TEST_RABBITMQ_URL", DEFAULT_TEST_RABBITMQ_URL)
    try:
        connection = await aio_pika.connect(url, timeout=CONNECT_TIMEOUT_SECONDS)
    except (OSError, TimeoutError, aio_pika.exceptions.AMQPError) as exc:
        require_service(f"RabbitMQ at {_redact(url)}", exc)
    else:
        await connection.close()
    return url
