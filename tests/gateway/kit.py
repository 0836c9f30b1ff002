"""Helpers of the bank gateway tests: a bank that can go down, wallet nodes that can die."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from httpkit import BANK_SECRET, JWT_SECRET, OPEN_THROTTLES, PASSWORD, Api, Person, unique_email
from pydantic import SecretStr
from trustkit import link_bank_account

from transakt.composition.node import Node
from transakt.config import ResolvedServices, Settings
from transakt.gateway import BankClient
from transakt.gateway.reconcile import reconcile
from transakt.http import create_app
from transakt.http.keys import NODE_KEY
from transakt.sandbox import create_app as create_bank_app

GATEWAY_BANK_SCHEMA = "bank_gateway"
DEPOSITS = "/api/v1/deposits"
WITHDRAWALS = "/api/v1/withdrawals"


async def wait_for(
    condition: Callable[[], Awaitable[bool]], what: str, *, within: float = 30.0
) -> None:
    """Poll ``condition`` until it holds; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not await condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {within}s waiting for {what}")
        await asyncio.sleep(0.02)


class Bank:
    """The sandbox bank on a fixed port, which a test can stop (an outage) and start again."""

    def __init__(self, settings: Settings, database_url: str) -> None:
        self._settings = settings
        self._database_url = database_url
        self._runner: web.AppRunner | None = None
        self.port = 0
        self.client = BankClient("http://unset", BANK_SECRET, timeout=10.0)

    @property
    def url(self) -> str:
        """Where the bank listens (the same across restarts)."""
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Serve (again) on the same port."""
        app = create_bank_app(self._settings.bank, self._database_url)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        self.port = self._runner.addresses[0][1]
        await self.client.close()
        self.client = BankClient(self.url, BANK_SECRET, timeout=10.0)
        self.client.open()

    async def stop(self) -> None:
        """Stop answering: connections are refused until start()."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def balance(self, account: str) -> int:
        """An account's balance at the bank."""
        found = await self.client.get_account(account)
        assert found is not None and found.balance is not None
        return found.balance

    async def transfer_ids(self, account: str) -> list[str]:
        """The ids of every transfer the bank applied or refused on an account."""
        return [item.id for item in await self.client.list_transfers(account)]


@dataclass
class WalletNode:
    """A wallet node behind a real port: its HTTP driver and the node itself."""

    api: Api
    client: TestClient[web.Request, web.Application]
    settings: Settings
    closed: bool = False

    @property
    def node(self) -> Node:
        """The running node (gateway, writer, repository...)."""
        return self.client.app[NODE_KEY]

    async def close(self) -> None:
        """Shut the node down (its gateway first, then the rest, as in production)."""
        if not self.closed:
            self.closed = True
            await self.client.close()

    async def kill_gateway(self) -> None:
        """Cancel every task of the gateway at once, then close the node: a crash, as seen."""
        await self.node.gateway.stop(timeout=0)
        await self.close()

    async def signup(self, bank: Bank, currency: str = "EUR", balance: int = 0) -> Person:
        """A user whose bank account holds ``balance``, signed up, logged in and linked.

        Linking adds the bank's two micro-deposits to the account: ``bank_start`` is what it
        holds afterwards, the base every later bank balance is measured from.
        """
        name = "Gateway Tester"
        opened = await bank.client.create_account(name, currency, balance)
        account = opened.account
        assert opened.passcode is not None
        email = unique_email("gw")
        body = {"email": email, "password": PASSWORD, "name": name, "bank_account": account}
        answer = await self.api.post("/api/v1/auth/signup", json=body)
        assert answer.status == 201, answer.text
        login = await self.api.post(
            "/api/v1/auth/login", json={"email": email, "password": PASSWORD}
        )
        assert login.status == 200, login.text
        token = login.body["access_token"]
        linked = await link_bank_account(self.api, bank.client, token, account, opened.passcode)
        assert linked.status == 200 and linked.body["status"] == "linked", linked.text
        return Person(
            email=email,
            password=PASSWORD,
            name=name,
            bank_account=account,
            user_id=answer.body["user"]["id"],
            token=token,
            wallet=answer.body["wallets"][0],
            bank_start=await bank.balance(account),
        )

    async def move(
        self, path: str, person: Person, amount: Any, *, key: str | None = None, **extra: Any
    ) -> Any:
        """POST a deposit or withdrawal for the person's first wallet; the checked answer."""
        body = {"wallet": person.wallet_id, "amount": amount, "currency": person.wallet["currency"]}
        body.update(extra)
        headers = {"Idempotency-Key": key} if key else None
        return await self.api.post(path, token=person.token, json=body, headers=headers)

    async def wallet(self, person: Person) -> dict[str, Any]:
        """The person's first wallet as the API shows it now."""
        answer = await self.api.get(f"/api/v1/wallets/{person.wallet_id}", token=person.token)
        assert answer.status == 200, answer.text
        return dict(answer.body)

    async def status(self, transfer_id: str) -> str:
        """A transfer's status in the wallet ledger."""
        found = await self.node.repository.transfer(transfer_id)
        assert found is not None
        return found.status

    async def settled(self, *transfer_ids: str) -> bool:
        """True when none of these transfers is pending any more."""
        for transfer_id in transfer_ids:
            if await self.status(transfer_id) == "pending":
                return False
        return True


@dataclass
class Nodes:
    """Opens wallet nodes for a test and closes whatever is left open at its end."""

    database_url: str
    redis_url: str | None
    opened: list[WalletNode] = field(default_factory=list)

    def settings(self, bank: Bank, **overrides: Any) -> Settings:
        """Test settings: short breaker waits and sweeps, so outages pass quickly."""
        values: dict[str, Any] = {
            "database_url": self.database_url,
            "redis_url": self.redis_url,
            "bank_url": bank.url,
            "bank_service_secret": SecretStr(BANK_SECRET),
            "jwt_secret": SecretStr(JWT_SECRET),
            "node_id": "gateway-node-1",
            "database_pool_max": 6,
            "bank_call_timeout_seconds": 1.0,
            "breaker_failure_threshold": 3,
            "breaker_reset_seconds": 0.2,
            "breaker_reset_max_seconds": 0.4,
            "bank_sweep_seconds": 0.3,
            "bank_sweep_min_age_seconds": 0.2,
            "bank_reclaim_idle_seconds": 1.0,
            **OPEN_THROTTLES,
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    async def open(self, bank: Bank, **overrides: Any) -> WalletNode:
        """Start a wallet node against ``bank`` with test settings (plus overrides)."""
        settings = self.settings(bank, **overrides)
        services = ResolvedServices(
            database_url=self.database_url, redis_url=settings.redis.url or ""
        )
        client = TestClient(TestServer(create_app(settings, services), host="127.0.0.1"))
        await client.start_server()
        node = WalletNode(api=Api(client), client=client, settings=settings)
        self.opened.append(node)
        return node

    async def close_all(self) -> None:
        """Close every node still open."""
        for node in self.opened:
            await node.close()


async def assert_reconciled(wallet: WalletNode) -> None:
    """The wallet ledger and the bank agree, with nothing left pending."""
    report = await reconcile(wallet.settings, wallet.settings.database.url or "", grace_seconds=0)
    assert report.ok, "\n".join(report.lines())
    assert not report.in_flight
