"""Wallet nodes as real processes (``transakt serve``) sharing one database over RabbitMQ.

A ``Cluster`` starts nodes with the test's own database, queue prefix and few shards (eight:
enough to spread wallets over three nodes, quick to declare), funds wallets straight through the
ledger (signing people up over HTTP is tested elsewhere) and mints their access tokens.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import asyncpg
import pytest
from httpkit import BANK_SECRET, JWT_SECRET, OPEN_THROTTLES
from pydantic import SecretStr

from transakt.config import Settings
from transakt.http.auth import issue_access_token
from transakt.storage.ledger import commit_batch
from transakt.storage.records import Applied, NewTransfer

SHARDS = 8
CURRENCY = "EUR"
_START_SECONDS = 60.0
_SERIES = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?) (\S+)$")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _flat(name: str) -> str:
    return "TRANSAKT_" + name.upper()


@dataclass
class NodeProcess:
    """One ``transakt serve`` process."""

    node_id: str
    port: int
    process: asyncio.subprocess.Process

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.process.returncode is None

    async def metrics(self) -> dict[str, float]:
        """Its /metrics, as {"name{labels}": value}."""
        async with aiohttp.ClientSession() as session, session.get(f"{self.url}/metrics") as answer:
            text = await answer.text()
        found: dict[str, float] = {}
        for line in text.splitlines():
            match = _SERIES.match(line)
            if match:
                found[match.group(1)] = float(match.group(2))
        return found

    async def kill(self) -> None:
        """SIGKILL: no goodbye to the broker, the database or anyone."""
        if self.alive:
            self.process.send_signal(signal.SIGKILL)
            await self.process.wait()


@dataclass
class Person:
    user_id: str
    wallet_id: str
    token: str


@dataclass
class Cluster:
    """Starts node processes for one test and stops them at its end."""

    database_url: str
    redis_url: str
    bank_url: str
    rabbitmq_url: str
    prefix: str
    nodes: list[NodeProcess] = field(default_factory=list)
    workers: list[asyncio.subprocess.Process] = field(default_factory=list)
    settings: Settings = field(init=False)

    def __post_init__(self) -> None:
        self.settings = Settings(
            _env_file=None,  # type: ignore[call-arg]
            database_url=self.database_url,
            jwt_secret=SecretStr(JWT_SECRET),
        )

    def environment(self, node_id: str, port: int, **extra: str) -> dict[str, str]:
        values: dict[str, Any] = {
            "database_url": self.database_url,
            "redis_url": self.redis_url,
            "bank_url": self.bank_url,
            "bank_service_secret": BANK_SECRET,
            "jwt_secret": JWT_SECRET,
            "rabbitmq_url": self.rabbitmq_url,
            "rabbitmq_prefix": self.prefix,
            "rabbitmq_probe_seconds": "0.2",
            "shards": str(SHARDS),
            "node_id": node_id,
            "host": "127.0.0.1",
            "port": str(port),
            "mail_in_process": "false",
            "log_level": "WARNING",
            "database_pool_max": "8",
            **OPEN_THROTTLES,
            **extra,
        }
        environment = {k: v for k, v in os.environ.items() if not k.startswith("TRANSAKT_")}
        environment.update({_flat(k): str(v) for k, v in values.items()})
        return environment

    async def start(self, count: int, **extra: str) -> list[NodeProcess]:
        """Start ``count`` more nodes (in parallel) and wait until each answers /healthz."""
        started = await asyncio.gather(
            *(self._start_one(f"node-{len(self.nodes) + n + 1}", **extra) for n in range(count))
        )
        self.nodes.extend(started)
        return list(started)

    async def start_workers(self, count: int, **extra: str) -> list[asyncio.subprocess.Process]:
        """Start ``count`` ``transakt worker`` processes (mail) on the cluster's settings."""
        workers = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "transakt",
                "worker",
                env=self.environment(f"worker-{n + 1}", free_port(), **extra),
                stdout=asyncio.subprocess.DEVNULL,
            )
            for n in range(count)
        ]
        self.workers.extend(workers)
        return workers

    async def _start_one(self, node_id: str, **extra: str) -> NodeProcess:
        port = free_port()
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "transakt",
            "serve",
            env=self.environment(node_id, port, **extra),
            stdout=asyncio.subprocess.DEVNULL,
        )
        node = NodeProcess(node_id, port, process)
        deadline = time.monotonic() + _START_SECONDS
        async with aiohttp.ClientSession() as session:
            while True:
                if not node.alive:
                    pytest.fail(f"{node_id} exited during start-up ({process.returncode})")
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(f"{node.url}/healthz") as answer:
                        if answer.status == 200:
                            return node
                if time.monotonic() > deadline:
                    pytest.fail(f"{node_id} did not start")
                await asyncio.sleep(0.1)  # a port that is not open yet: nothing to await

    async def stop(self) -> None:
        """SIGTERM every node and worker still running; SIGKILL what does not stop."""
        processes = [node.process for node in self.nodes] + self.workers
        for process in processes:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            try:
                await asyncio.wait_for(process.wait(), 20)
            except TimeoutError:
                process.kill()
                await process.wait()

    async def people(self, count: int, balance: int) -> list[Person]:
        """``count`` users, each with a wallet holding ``balance``, funded through the ledger."""
        users = [f"usr_{uuid.uuid4().hex}" for _ in range(count)]
        wallets = [f"wal_{uuid.uuid4().hex}" for _ in range(count)]
        connection = await asyncpg.connect(self.database_url)
        try:
            await connection.copy_records_to_table(
                "users",
                records=[
                    (user, f"{user}@cluster.test", "Cluster Test", "-", f"DE{n:020d}")
                    for n, user in enumerate(users)
                ],
                columns=["id", "email", "name", "password_hash", "bank_account"],
            )
            await connection.execute(
                "INSERT INTO accounts (id, kind, user_id, currency) "
                "VALUES ($1, 'settlement', NULL, $2) ON CONFLICT DO NOTHING",
                f"settlement_{CURRENCY}",
                CURRENCY,
            )
            await connection.copy_records_to_table(
                "accounts",
                records=[(w, "wallet", u, CURRENCY) for w, u in zip(wallets, users, strict=True)],
                columns=["id", "kind", "user_id", "currency"],
            )
            result = await commit_batch(
                connection,
                [
                    NewTransfer(
                        id=f"trf_fund_{wallet}",
                        kind="deposit",
                        status="posted",
                        from_account=f"settlement_{CURRENCY}",
                        to_account=wallet,
                        amount=balance,
                        currency=CURRENCY,
                        memo=None,
                        initiator_id=None,
                    )
                    for wallet in wallets
                ],
            )
            assert all(isinstance(outcome, Applied) for outcome in result.outcomes)
        finally:
            await connection.close()
        return [
            Person(user, wallet, issue_access_token(self.settings, user).token)
            for user, wallet in zip(users, wallets, strict=True)
        ]


async def pay(
    session: aiohttp.ClientSession,
    node: NodeProcess,
    payer: Person,
    payee: Person,
    amount: int,
    key: str | None = None,
) -> tuple[int, dict[str, Any]]:
    """POST a payment through ``node``: (status, body); (0, {}) if the node could not answer."""
    headers = {"Authorization": f"Bearer {payer.token}"}
    if key is not None:
        headers["Idempotency-Key"] = key
    body = {
        "from_wallet": payer.wallet_id,
        "to_wallet": payee.wallet_id,
        "amount": amount,
        "currency": CURRENCY,
    }
    try:
        async with session.post(f"{node.url}/api/v1/transfers", json=body, headers=headers) as r:
            return r.status, await r.json()
    except (TimeoutError, aiohttp.ClientError):
        return 0, {}


async def shards_owned(nodes: Sequence[NodeProcess]) -> dict[str, float]:
    """Each live node's ``transakt_cluster_shards_owned``."""
    owned = {}
    for node in nodes:
        if node.alive:
            with contextlib.suppress(aiohttp.ClientError):
                owned[node.node_id] = (await node.metrics()).get(
                    "transakt_cluster_shards_owned", 0.0
                )
    return owned


async def balanced(nodes: Sequence[NodeProcess]) -> bool:
    """Every shard owned, none by a node beyond its fair share (the owners have evened out)."""
    owned = await shards_owned(nodes)
    fair = -(-SHARDS // max(len(owned), 1))
    return sum(owned.values()) == SHARDS and max(owned.values(), default=0) <= fair


async def decided_by_shard(nodes: Sequence[NodeProcess]) -> dict[tuple[str, str], float]:
    """Each node's count of messages its entities decided, by (shard series, node id)."""
    counts = {}
    for node in nodes:
        for series, value in (await node.metrics()).items():
            if series.startswith("transakt_cluster_entity_messages_total{"):
                counts[(series, node.node_id)] = value
    return counts
