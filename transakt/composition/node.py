"""A wallet node: opens every resource, wires actors and services, closes them in order."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import redis.asyncio as aioredis
from prometheus_client import CollectorRegistry, generate_latest

from transakt.actors.limits import ReviewRules, SpendingGuard
from transakt.actors.wallet import DebitRate, WalletActor
from transakt.composition.cluster import wallet_transport
from transakt.composition.notifications import Notifications, open_notifications
from transakt.config import Settings
from transakt.gateway.asks import BankAsks
from transakt.gateway.breaker import CircuitBreaker
from transakt.gateway.buffer import BankBuffer, MemoryBankBuffer, RedisBankBuffer
from transakt.gateway.client import BankClient
from transakt.gateway.gateway import BankGateway, is_bank_failure
from transakt.gateway.metrics import GatewayCollector
from transakt.observability import (
    Families,
    LedgerCollector,
    RuntimeCollector,
    StartTimeCollector,
    TasksCollector,
    TrustCollector,
    new_registry,
)
from transakt.rabbitmq import RabbitTransport
from transakt.rabbitmq.metrics import ClusterCollector
from transakt.runtime import ActorSystem, RestartPolicy
from transakt.services.accounts import Accounts
from transakt.services.bank_links import BankLinks
from transakt.services.banking import BankingService
from transakt.services.batches import BatchService
from transakt.services.email_verification import EmailVerification
from transakt.services.holds import HoldExpiry, HoldService
from transakt.services.housekeeping import Housekeeping
from transakt.services.idempotency import Idempotency
from transakt.services.limits import SpendLimitsService
from transakt.services.refunds import RefundService
from transakt.services.reviews import ReviewService
from transakt.services.sessions import Sessions
from transakt.services.throttle import Throttle
from transakt.services.wallets import WalletService
from transakt.storage.migrate import migrate_connection
from transakt.storage.pool import create_pool
from transakt.storage.repository import Repository
from transakt.storage.writer import LedgerWriter

if TYPE_CHECKING:
    import asyncpg

    from transakt.config import ResolvedServices


@dataclass(slots=True)
class Node:
    """A running wallet node: what the HTTP layer (and tests) talk to."""

    settings: Settings
    service: WalletService
    batches: BatchService
    refunds: RefundService
    holds: HoldService
    hold_expiry: HoldExpiry
    banking: BankingService
    gateway: BankGateway
    system: ActorSystem
    repository: Repository
    writer: LedgerWriter
    pool: asyncpg.Pool
    redis: aioredis.Redis | None
    bank: BankClient
    accounts: Accounts
    links: BankLinks
    emails: EmailVerification
    sessions: Sessions
    throttle: Throttle
    idempotency: Idempotency
    housekeeping: Housekeeping
    limits: SpendLimitsService
    reviews: ReviewService
    started_at: float = field(default_factory=time.time)
    notifications: Notifications | None = None
    #: The process's Prometheus registry (GET /metrics answers it), made with the node.
    registry: CollectorRegistry = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.registry = _metrics_registry(self)

    async def readiness(self) -> dict[str, dict[str, object]]:
        """Each dependency's state: {"database": {"ok": True, "latency_ms": 0.4}, ...}."""
        checks: dict[str, dict[str, object]] = {}
        checks["database"] = await _timed(self.repository.ping())
        if self.redis is not None:
            checks["redis"] = await _timed(self.redis.ping())
        checks["ledger_writer"] = {"ok": True, "queued": self.writer.queued}
        transport = self.system.transport
        if isinstance(transport, RabbitTransport):
            # Without the broker, payments to wallets of other nodes' shards cannot be decided.
            checks["broker"] = {
                "ok": transport.connected,
                "shards_owned": transport.shards_owned,
                "shards": transport.shards,
            }
        # Information, not a failed dependency (so no "ok"): with the breaker open the node
        # still serves and accepts deposits and withdrawals, which wait in the buffer.
        checks["bank"] = await self.gateway.readiness()
        return checks

    def metrics_text(self) -> str:
        """Everything in the node's registry, in the Prometheus text format."""
        return generate_latest(self.registry).decode()


def _metrics_registry(node: Node) -> CollectorRegistry:
    """The process's one registry, with a collector per part of ``node`` (the HTTP front door
    adds its own): each reads its part's attributes when scraped, nothing is done per event."""
    registry = new_registry()
    registry.register(RuntimeCollector(node.system))
    registry.register(LedgerCollector(node.writer))
    registry.register(StartTimeCollector(node.started_at))
    registry.register(GatewayCollector(node.gateway))
    if isinstance(node.system.transport, RabbitTransport):
        registry.register(ClusterCollector(node.system.transport))
    registry.register(TrustCollector(node.throttle, node.sessions, node.idempotency))
    notifications = node.notifications
    registry.register(Families(lambda: notifications.metrics() if notifications else ()))
    components: dict[str, object] = {
        "node": node,
        "actor_system": node.system,
        "ledger_writer": node.writer,
        "bank_gateway": node.gateway,
        "sessions": node.sessions,
        "housekeeping": node.housekeeping,
    }
    if notifications is not None:
        components["outbox_relay"] = notifications.relay
        components["event_publisher"] = notifications.publisher
        if notifications.live is not None:
            components["live_hub"] = notifications.live
    registry.register(TasksCollector(components))
    return registry


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
            min_size=settings.database.pool_min,
            max_size=settings.database.pool_max,
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
                settings.bank.url,
                settings.bank.service_secret.get_secret_value(),
                timeout=settings.bank.call_timeout_seconds,
            )
        )

        writer = LedgerWriter(
            pool, writers=settings.ledger.writers, batch_max=settings.ledger.batch_max
        )
        await writer.start()
        stack.push_async_callback(writer.stop)

        # With RabbitMQ, wallets are sharded over the nodes (composition/cluster.py).
        transport = wallet_transport(settings)
        system = ActorSystem(f"transakt-{settings.node_id}", transport=transport)

        repository = Repository(pool)
        rate = DebitRate(settings.wallet.debits_per_second, settings.wallet.debit_burst)
        rules = ReviewRules(**settings.review.model_dump())
        system.register_entity(
            WalletActor,
            lambda wallet_id: WalletActor(
                wallet_id, repository, writer, rate, SpendingGuard(wallet_id, pool, rules)
            ),
            idle_timeout=settings.wallet.idle_seconds,
            mailbox_size=settings.wallet.mailbox_size,
            policy=RestartPolicy(max_restarts=10, within=60.0, min_backoff=0.01, max_backoff=1.0),
        )
        # Started once the wallet kind exists: a transport delivers commands from then on.
        await system.start()
        # Shut down before the writer stops, so in-flight debits are answered first; the
        # transport leaves first, so the shards' next owners take over while this node stops.
        stack.push_async_callback(system.shutdown)
        gateway = _bank_gateway(settings, bank, redis_client, writer, pool)
        await gateway.start()
        # Stops before the writer (LIFO): calls under way still find it to settle with.
        stack.push_async_callback(gateway.stop)
        idempotency = Idempotency(repository)
        throttle = Throttle(settings.throttle.rules(), redis_client)
        service = WalletService(
            repository,
            system,
            idempotency,
            throttle,
            request_timeout=settings.request_timeout_seconds,
        )
        sessions = Sessions(pool, services.database_url)
        await sessions.start()
        stack.push_async_callback(sessions.stop)
        asks = BankAsks(bank, gateway.breaker)  # signup and link proofs: same breaker
        links = BankLinks(pool, asks, throttle)
        emails = EmailVerification(
            pool,
            throttle,
            ttl_seconds=settings.email.code_ttl_seconds,
            attempts=settings.email.code_attempts,
        )
        accounts = Accounts(repository, pool, asks, throttle, links, emails, sessions)
        housekeeping = Housekeeping(
            repository, sessions, retention_seconds=settings.idempotency.retention_seconds
        )
        housekeeping.start()
        stack.push_async_callback(housekeeping.stop)
        # Before the writer stops (LIFO): a sweep under way still finds it.
        hold_expiry = HoldExpiry(pool, writer, system, interval=settings.ledger.hold_sweep_seconds)
        hold_expiry.start()
        stack.push_async_callback(hold_expiry.stop)
        notifications = await stack.enter_async_context(
            open_notifications(
                settings, services.database_url, system, live=True, mail=settings.mail.in_process
            )
        )
        yield Node(
            settings=settings,
            service=service,
            # A batch of 1,000 waits for two or three group commits: more than one payment.
            refunds=RefundService(service, pool),
            holds=HoldService(service, writer, pool, system),
            hold_expiry=hold_expiry,
            batches=BatchService(
                service, pool, system, request_timeout=3 * settings.request_timeout_seconds
            ),
            banking=BankingService(service, writer, gateway, links, throttle),
            gateway=gateway,
            system=system,
            repository=repository,
            writer=writer,
            pool=pool,
            redis=redis_client,
            bank=bank,
            accounts=accounts,
            links=links,
            emails=emails,
            sessions=sessions,
            throttle=throttle,
            idempotency=idempotency,
            housekeeping=housekeeping,
            limits=SpendLimitsService(service, pool, system),
            reviews=ReviewService(service, pool, system),
            notifications=notifications,
        )


def _bank_gateway(
    settings: Settings,
    bank: BankClient,
    redis_client: aioredis.Redis | None,
    writer: LedgerWriter,
    pool: asyncpg.Pool,
) -> BankGateway:
    """The gateway, its breaker and its buffer (Redis when configured, else in memory)."""
    breaker = CircuitBreaker(
        failure_threshold=settings.breaker.failure_threshold,
        call_timeout=settings.bank.call_timeout_seconds,
        reset_timeout=settings.breaker.reset_seconds,
        max_reset_timeout=max(settings.breaker.reset_max_seconds, settings.breaker.reset_seconds),
        is_failure=is_bank_failure,
    )
    buffer: BankBuffer = (
        RedisBankBuffer(redis_client, settings.node_id)
        if redis_client is not None
        else MemoryBankBuffer()
    )
    return BankGateway(
        bank,
        breaker,
        buffer,
        writer,
        pool,
        max_in_flight=settings.bank.max_in_flight,
        drain_concurrency=settings.bank.drain_concurrency,
        drain_batch=settings.bank.drain_batch,
        sweep_seconds=settings.bank.sweep_seconds,
        sweep_min_age=settings.bank.sweep_min_age_seconds,
        reclaim_idle=settings.bank.reclaim_idle_seconds,
    )
