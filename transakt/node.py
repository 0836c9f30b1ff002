"""The composition root of a wallet node: opens every resource, wires actors, closes in order."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis

from transakt.actors.ledger_writer import LedgerWriter
from transakt.actors.service import AccountVerifier, VerifiedAccount, WalletService
from transakt.actors.wallet import WalletActor
from transakt.bank.client import BankClient
from transakt.config import Settings
from transakt.runtime import ActorSystem, RestartPolicy
from transakt.storage.migrate import migrate_connection
from transakt.storage.pool import create_pool
from transakt.storage.repository import Repository

if TYPE_CHECKING:
    import asyncpg

    from transakt.storage.embedded import ResolvedServices


class BankVerifier:
    """Verifies signup bank accounts with the (sandbox) bank."""

    def __init__(self, bank: BankClient) -> None:
        self._bank = bank

    async def verify(self, account: str, name: str) -> VerifiedAccount | None:
        """The bank's view of the account, or None when it does not know it."""
        found = await self._bank.verify_user(account, name=name)
        if found is None:
            return None
        return VerifiedAccount(account=found.account, name=found.name, currency=found.currency)


@dataclass(slots=True)
class Node:
    """A running wallet node: what the HTTP layer (and tests) talk to."""

    settings: Settings
    service: WalletService
    system: ActorSystem
    repository: Repository
    writer: LedgerWriter
    pool: asyncpg.Pool
    redis: aioredis.Redis | None
    bank: BankClient
    started_at: float = field(default_factory=time.time)

    async def readiness(self) -> dict[str, dict[str, object]]:
        """Each dependency's state: {"database": {"ok": True, "latency_ms": 0.4}, ...}."""
        checks: dict[str, dict[str, object]] = {}
        checks["database"] = await _timed(self.repository.ping())
        if self.redis is not None:
            checks["redis"] = await _timed(self.redis.ping())
        checks["ledger_writer"] = {"ok": True, "queued": self.writer.queued}
        return checks

    def metrics_text(self) -> str:
        """Prometheus text for the runtime, the ledger writer and the node."""
        lines: list[str] = []

        def metric(name: str, kind: str, help_text: str, value: float, labels: str = "") -> None:
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {kind}")
            lines.append(f"{name}{labels} {value}")

        for key, value in sorted(self.system.metrics.snapshot().items()):
            name = "transakt_runtime_" + "".join(c if c.isalnum() else "_" for c in key)
            metric(name, "gauge", f"actor runtime: {key}", float(value))
        writer = self.writer
        metric("transakt_ledger_batches_total", "counter", "committed batches", writer.batches)
        metric(
            "transakt_ledger_operations_total",
            "counter",
            "committed ledger operations",
            writer.operations,
        )
        metric("transakt_ledger_failures_total", "counter", "failed batch commits", writer.failures)
        metric(
            "transakt_ledger_largest_batch", "gauge", "largest batch so far", writer.largest_batch
        )
        metric(
            "transakt_ledger_commit_seconds_total",
            "counter",
            "time spent committing",
            writer.commit_seconds,
        )
        metric("transakt_ledger_queued", "gauge", "operations waiting for a batch", writer.queued)
        metric("transakt_node_start_time_seconds", "gauge", "node start time", self.started_at)
        return "\n".join(lines) + "\n"


async def _timed(awaitable: Any) -> dict[str, object]:
    started = time.perf_counter()
    try:
        await awaitable
    except Exception as error:
        return {"ok": False, "error": type(error).__name__}
    return {"ok": True, "latency_ms": round((time.perf_counter() - started) * 1000, 2)}


@asynccontextmanager
async def open_node(settings: Settings, services: ResolvedServices) -> AsyncIterator[Node]:
    """Open the pool (migrating first), Redis, the bank client and the actor system; close all."""
    async with AsyncExitStack() as stack:
        pool = await create_pool(
            services.database_url,
            min_size=settings.database_pool_min,
            max_size=settings.database_pool_max,
        )
        stack.push_async_callback(pool.close)
        async with pool.acquire() as connection:
            await migrate_connection(connection)

        redis_client: aioredis.Redis | None = None
        if services.redis_url:
            redis_client = aioredis.from_url(services.redis_url)
            stack.push_async_callback(redis_client.aclose)

        bank = await stack.enter_async_context(
            BankClient(
                settings.bank_url,
                settings.bank_service_secret.get_secret_value(),
                timeout=settings.bank_call_timeout_seconds,
            )
        )

        writer = LedgerWriter(
            pool, writers=settings.ledger_writers, batch_max=settings.ledger_batch_max
        )
        await writer.start()
        stack.push_async_callback(writer.stop)

        system = ActorSystem(f"transakt-{settings.node_id}")
        await system.start()  # starts the transport, when one is configured
        # Shut down before the writer stops, so in-flight debits are answered first.
        stack.push_async_callback(system.shutdown)

        repository = Repository(pool)
        system.register_entity(
            WalletActor,
            lambda wallet_id: WalletActor(wallet_id, repository, writer),
            idle_timeout=settings.wallet_idle_seconds,
            mailbox_size=settings.wallet_mailbox_size,
            policy=RestartPolicy(max_restarts=10, within=60.0, min_backoff=0.01, max_backoff=1.0),
        )
        verifier: AccountVerifier = BankVerifier(bank)
        service = WalletService(
            repository, system, verifier, request_timeout=settings.request_timeout_seconds
        )
        yield Node(
            settings=settings,
            service=service,
            system=system,
            repository=repository,
            writer=writer,
            pool=pool,
            redis=redis_client,
            bank=bank,
        )
