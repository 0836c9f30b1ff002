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
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
import pytest_asyncio
import redis.asyncio as aioredis
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from httpkit import (
    BANK_SCHEMA,
    BANK_SECRET,
    JWT_SECRET,
    OPEN_THROTTLES,
    PASSWORD,
    Api,
    Fund,
    MakeUser,
    Person,
    unique_email,
)
from pydantic import SecretStr
from servicekit import in_ci, unavailable
from trustkit import link_bank_account, verify_email

from transakt.config import ResolvedServices, Settings
from transakt.gateway import BankClient
from transakt.http import create_app
from transakt.sandbox import create_app as create_bank_app
from transakt.testing import fund_wallet

DEFAULT_TEST_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DEFAULT_TEST_REDIS_URL = "redis://127.0.0.1:6379/15"
DEFAULT_TEST_RABBITMQ_URL = "amqp://guest:guest@127.0.0.1:5672/"


# Long enough for a busy CI machine, short enough that a laptop without services falls back fast.
CONNECT_TIMEOUT_SECONDS = 5.0

T = TypeVar("T")


def require_service(name: str, exc: BaseException, fallback: Callable[[], T] | None = None) -> T:
    """Handle an unreachable service: fail in CI; elsewhere use the fallback, or skip."""
    reason = f"{name} is not reachable ({type(exc).__name__}: {exc})"
    if fallback is None or in_ci():
        unavailable(reason, "start it to run this test")
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
        from transakt.cli.embedded import EmbeddedServer, start_embedded_postgres

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
        from transakt.cli.embedded import EmbeddedServer, start_embedded_redis

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


# --------------------------------------------------------------------------------------------
# The sandbox bank and a wallet node (HTTP), shared by every suite that needs them
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def bank_settings() -> Settings:
    """The sandbox bank's settings: its own schema and service secret."""
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        bank_schema=BANK_SCHEMA,
        bank_service_secret=SecretStr(BANK_SECRET),
        database_pool_max=4,
    )


@pytest.fixture(scope="session")
async def bank_url(bank_settings: Settings, database_url: str) -> AsyncIterator[str]:
    """The sandbox bank, served on 127.0.0.1 and a port the OS picks, for the session."""
    runner = web.AppRunner(
        create_bank_app(bank_settings.bank, database_url, pool_max=4), access_log=None
    )
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    yield f"http://{host}:{port}"
    await runner.cleanup()


@pytest.fixture(scope="session")
async def bank_client(bank_url: str) -> AsyncIterator[BankClient]:
    """A real client of the sandbox bank, to open accounts and turn fault knobs."""
    async with BankClient(bank_url, BANK_SECRET, timeout=5.0) as client:
        yield client


@pytest.fixture(scope="session")
def wallet_settings(database_url: str, redis_url: str, bank_url: str) -> Settings:
    """The wallet node's settings, independent of any .env file."""
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        database_url=database_url,
        redis_url=redis_url,
        bank_url=bank_url,
        bank_service_secret=SecretStr(BANK_SECRET),
        jwt_secret=SecretStr(JWT_SECRET),
        database_pool_max=8,
        bank_call_timeout_seconds=5.0,
        # Mail tests run their own workers against their own SMTP server.
        mail_in_process=False,
        # Every test talks from 127.0.0.1 and signs up many users: the throttles that count
        # per address or per user are opened wide here, and tested on nodes of their own.
        **OPEN_THROTTLES,
    )


@pytest.fixture(scope="session")
def services(database_url: str, redis_url: str) -> ResolvedServices:
    """The servers the node uses: the session's PostgreSQL and Redis."""
    return ResolvedServices(database_url=database_url, redis_url=redis_url)


@pytest.fixture(scope="session")
async def wallet_app(
    wallet_settings: Settings, services: ResolvedServices
) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    """One wallet node for the session, behind a real port; tests keep apart by unique data."""
    app = create_app(wallet_settings, services)
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        yield client


@pytest.fixture(scope="session")
def api(wallet_app: TestClient[web.Request, web.Application]) -> Api:
    """The checked HTTP driver of the session's wallet node."""
    return Api(wallet_app)


@pytest.fixture(scope="session")
async def wallet_pool(database_url: str, wallet_app: Any) -> AsyncIterator[asyncpg.Pool]:
    """A side pool on the wallet database (after the node migrated it), to fund wallets."""
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    yield pool
    await pool.close()


@pytest.fixture(scope="session")
def fund(wallet_pool: asyncpg.Pool) -> Fund:
    """Put money in a wallet through the real ledger (deposits are not wired yet)."""

    async def give(wallet_id: str, amount: int) -> str:
        return await fund_wallet(wallet_pool, wallet_id, amount)

    return give


@pytest.fixture(scope="session")
def bank_passcodes() -> dict[str, str]:
    """The online-banking passcode of every sandbox account the tests opened, by number."""
    return {}


@pytest.fixture(scope="session")
async def open_bank_account(
    bank_client: BankClient, bank_passcodes: dict[str, str]
) -> Callable[..., Awaitable[str]]:
    """Open a sandbox bank account and return its number (its passcode is remembered)."""

    async def open_account(
        name: str = "Test Person", currency: str = "EUR", balance: int = 0
    ) -> str:
        account = await bank_client.create_account(name, currency, balance)
        assert account.passcode is not None
        bank_passcodes[account.account] = account.passcode
        return account.account

    return open_account


@pytest.fixture(scope="session")
def make_user(
    api: Api,
    open_bank_account: Callable[..., Awaitable[str]],
    bank_client: BankClient,
    bank_passcodes: dict[str, str],
    wallet_pool: asyncpg.Pool,
    fund: Fund,
) -> MakeUser:
    """Sign up and log in a fresh user whose first wallet is in ``currency``, funded if asked.

    Like a real user, they prove they hold their bank account (the micro-deposits from their
    statement) and their e-mail address (the code from their mail), unless told not to.
    """

    async def make(
        currency: str = "EUR",
        balance: int = 0,
        name: str = "Test Person",
        *,
        linked: bool = True,
        email_verified: bool = True,
        bank_balance: int = 0,
    ) -> Person:
        account = await open_bank_account(name, currency, bank_balance)
        email = unique_email()
        signup = await api.post(
            "/api/v1/auth/signup",
            json={"email": email, "password": PASSWORD, "name": name, "bank_account": account},
        )
        assert signup.status == 201, signup.text
        login = await api.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert login.status == 200, login.text
        wallet = signup.body["wallets"][0]
        token = login.body["access_token"]
        user_id = signup.body["user"]["id"]
        if linked:
            proof = await link_bank_account(
                api, bank_client, token, account, bank_passcodes[account]
            )
            assert proof.status == 200 and proof.body["status"] == "linked", proof.text
        if email_verified:
            proof = await verify_email(api, wallet_pool, token, user_id)
            assert proof.status == 200, proof.text
        if balance:
            await fund(wallet["id"], balance)
            wallet = {**wallet, "balance": balance, "available": balance}
        return Person(
            email=email,
            password=PASSWORD,
            name=name,
            bank_account=account,
            user_id=user_id,
            token=token,
            wallet=wallet,
        )

    return make


@pytest.fixture
async def bank_down(bank_client: BankClient) -> AsyncIterator[None]:
    """The sandbox bank refuses every call for the duration of one test."""
    await bank_client.set_faults(refuse_all=True)
    try:
        yield
    finally:
        await bank_client.set_faults(refuse_all=False)
