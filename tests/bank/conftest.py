"""Fixtures for the sandbox bank: a real bank on a real port over the session's PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import asyncpg
import pytest
from aiohttp import web
from pydantic import SecretStr

from transakt.bankapi import Faults, issue_service_token
from transakt.config import Settings
from transakt.gateway import BankClient
from transakt.sandbox import create_app
from transakt.sandbox.views import DIRECTORY_KEY, FAULTS_KEY, THROTTLE_KEY

# Long enough (>= 64 bytes, even for HS512 in the wrong-algorithm test) that PyJWT never warns
# about a short HMAC key: warnings are errors here.
SECRET = "bank-tests-service-secret-0123456789-abcdefghijklmnopqrstuvwxyz-0123456789"
SCHEMA = "bank_test"


@dataclass
class RunningBank:
    """A bank app served on a real port, with its app for peeking at its parts."""

    url: str
    app: web.Application


@pytest.fixture(scope="session")
def bank_database_url(database_url: str) -> str:
    """The session's empty database; the bank makes its own schema in it."""
    return database_url


@pytest.fixture(scope="session")
def bank_settings() -> Settings:
    """Settings for the bank under test, independent of any .env file."""
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        bank_schema=SCHEMA,
        bank_service_secret=SecretStr(SECRET),
        bank_host="127.0.0.1",
        bank_port=0,
        database_pool_max=12,
    )


@pytest.fixture(scope="session")
async def running_bank(
    bank_settings: Settings, bank_database_url: str
) -> AsyncIterator[RunningBank]:
    """One bank for the session, on 127.0.0.1 and a port the OS picks."""
    app = create_app(bank_settings.bank, bank_database_url, pool_max=12, faults=Faults(seed=1))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield RunningBank(url=f"http://{host}:{port}", app=app)
    await runner.cleanup()


MakeBank = Callable[..., Awaitable[str]]


@pytest.fixture
async def make_bank(
    bank_settings: Settings, bank_database_url: str, running_bank: RunningBank
) -> AsyncIterator[MakeBank]:
    """Start extra banks (same schema, their own faults and create_app options); each is
    stopped after the test."""
    runners: list[web.AppRunner] = []

    async def make(faults: Faults | None = None, **options: Any) -> str:
        app = create_app(bank_settings.bank, bank_database_url, faults=faults, **options)
        runner = web.AppRunner(app)
        runners.append(runner)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        host, port = runner.addresses[0][:2]
        return f"http://{host}:{port}"

    yield make
    for runner in runners:
        await runner.cleanup()


@pytest.fixture(scope="session")
async def bank_db(running_bank: RunningBank, bank_database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A side connection pool to look at the bank's tables directly (after it migrated them)."""
    pool = await asyncpg.create_pool(bank_database_url, min_size=1, max_size=2)
    yield pool
    await pool.close()


@pytest.fixture
async def bank(running_bank: RunningBank, bank_db: asyncpg.Pool) -> RunningBank:
    """The session bank with empty tables, no faults, an empty cache and no passcode counts."""
    tables = ", ".join(
        f"{SCHEMA}.{table}"
        for table in ("accounts", "transfers", "verifications", "micro_deposits")
    )
    await bank_db.execute(f"TRUNCATE {tables} RESTART IDENTITY")
    running_bank.app[FAULTS_KEY].configure(Faults(seed=1))
    running_bank.app[DIRECTORY_KEY].forget_all()
    running_bank.app[THROTTLE_KEY].clear()
    return running_bank


@pytest.fixture
async def bank_client(bank: RunningBank) -> AsyncIterator[BankClient]:
    """A real client of the clean bank."""
    async with BankClient(bank.url, SECRET, timeout=5.0) as client:
        yield client


Raw = Callable[..., Awaitable[tuple[int, Any]]]


@pytest.fixture
async def raw(bank: RunningBank) -> AsyncIterator[Raw]:
    """Send any request (bad ones too) and get (status, decoded JSON or text) back."""
    async with aiohttp.ClientSession() as session:

        async def send(
            method: str,
            path: str,
            *,
            json: Any = None,
            data: bytes | str | None = None,
            token: str | None = "valid",
            headers: dict[str, str] | None = None,
        ) -> tuple[int, Any]:
            all_headers = dict(headers or {})
            if token == "valid":
                token = issue_service_token(SECRET)
            if token is not None:
                all_headers["Authorization"] = f"Bearer {token}"
            async with session.request(
                method, bank.url + path, json=json, data=data, headers=all_headers
            ) as response:
                # Whatever the input, the bank never answers with an internal error.
                assert response.status != 500, await response.text()
                if response.content_type == "application/json":
                    return response.status, await response.json()
                return response.status, await response.text()

        yield send
