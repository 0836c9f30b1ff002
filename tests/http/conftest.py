"""Fixtures for the HTTP front door: a real sandbox bank, a real node, a real port."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from httpkit import (
    BANK_SCHEMA,
    BANK_SECRET,
    JWT_SECRET,
    PASSWORD,
    Api,
    Fund,
    MakeUser,
    Person,
    unique_email,
)
from pydantic import SecretStr

from transakt.bank import BankClient
from transakt.bank import create_app as create_bank_app
from transakt.config import Settings
from transakt.http import create_app
from transakt.storage.embedded import ResolvedServices
from transakt.testing import fund_wallet


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
    runner = web.AppRunner(create_bank_app(bank_settings, database_url), access_log=None)
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
async def open_bank_account(bank_client: BankClient) -> Callable[..., Awaitable[str]]:
    """Open a sandbox bank account and return its number."""

    async def open_account(name: str = "Test Person", currency: str = "EUR") -> str:
        account = await bank_client.create_account(name, currency, 0)
        return account.account

    return open_account


@pytest.fixture(scope="session")
def make_user(api: Api, open_bank_account: Callable[..., Awaitable[str]], fund: Fund) -> MakeUser:
    """Sign up and log in a fresh user whose first wallet is in ``currency``, funded if asked."""

    async def make(currency: str = "EUR", balance: int = 0, name: str = "Test Person") -> Person:
        account = await open_bank_account(name, currency)
        email = unique_email()
        signup = await api.post(
            "/api/v1/auth/signup",
            json={"email": email, "password": PASSWORD, "name": name, "bank_account": account},
        )
        assert signup.status == 201, signup.text
        login = await api.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
        assert login.status == 200, login.text
        wallet = signup.body["wallets"][0]
        if balance:
            await fund(wallet["id"], balance)
            wallet = {**wallet, "balance": balance, "available": balance}
        return Person(
            email=email,
            password=PASSWORD,
            name=name,
            bank_account=account,
            user_id=signup.body["user"]["id"],
            token=login.body["access_token"],
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
