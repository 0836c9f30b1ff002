"""EventPublisher: each committed outbox event published once to ``<prefix>.events``.

Exactly one publisher
    Every publisher keeps a PostgreSQL connection of its own and tries for a session advisory
    lock (named after the exchange) on it every ``lock_retry_seconds``. The holder leads: it
    LISTENs for the outbox's commit NOTIFY on that same connection, and reads, advances its
    cursor and prunes on it too. When the leader dies its connection ends, the server releases
    the lock, and another publisher takes it at its next try. Were the leader cut off from the
    database, every statement it could run to move the cursor would fail with the connection,
    so a deposed leader can at worst send again what it had read.

Never skipping, at least once
    The cursor (``event_publisher_cursor``, see ``transakt.storage.event_stream``) is an
    ``(xid, id)`` position, and the leader reads only settled events (their transaction is older
    than the snapshot's xmin) in that order, so none can commit behind it. The leader records
    the batch as attempted, publishes it with publisher confirms, then advances the cursor. A
    crash between publishing and advancing means the next leader sends that batch again (counted
    in ``republished``): at least once, and only ever ids already sent; consumers dedupe on
    ``event_id``. A publish the broker does not confirm is retried, with backoff, from the
    cursor. A committed event waits while an older write transaction still runs; the leader then
    re-reads after a few milliseconds, backing off to ``poll_seconds``.

Pruning
    With ``retention_seconds``, the leader deletes outbox events past retention that mail is done
    with *and* that every stream has published (``prune_outbox(..., published_through=...)``,
    the slowest cursor that moved within the retention period): nothing unpublished is pruned.
    (``OutboxRelay`` prunes without that bound: run one or the other.)

The publisher's loop runs under its ``TaskSupervisor`` (``publisher.tasks``): a crash (the
database connection lost, say) is logged, the lock is released with the connection, and the
loop restarts with backoff as a follower. Both sides keep their broker connection with
``BrokerLink``, which connects again after a loss and declares everything afresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final

import aiormq.abc
import asyncpg
from pamqp.commands import Basic

from transakt.rabbitmq._link import BrokerLink
from transakt.rabbitmq.event_format import encode_event, exchange_name
from transakt.runtime import RestartPolicy, TaskSupervisor
from transakt.storage.event_stream import (
    StreamEvent,
    StreamPosition,
    advance_cursor,
    mark_attempted,
    open_cursor,
    read_cursor,
    settled_events_after,
    slowest_cursor,
)
from transakt.storage.outbox import CHANNEL, prune_outbox

__all__ = ["EventPublisher"]

log = logging.getLogger("transakt.events.stream")

# A crashed loop restarts with backoff, for ever (backing off to 5 s, it cannot reach 100
# restarts within a minute).
_RESTARTS: Final = RestartPolicy(max_restarts=100, within=60.0, min_backoff=0.05, max_backoff=5.0)
# The first re-read while a committed event waits for an older transaction; doubled each time.
_HELD_BACK_RETRY: Final = 0.002
# Backoff between attempts to publish a batch the broker did not confirm (and, while the
# connection is down, until it is back).
_PUBLISH_RETRY_MIN: Final = 0.05
_PUBLISH_RETRY_MAX: Final = 1.0
_PRUNE_BATCH: Final = 5_000
_APPLICATION_NAME: Final = "transakt-event-publisher"


async def _wait(awaitable: Awaitable[object], seconds: float) -> None:
    """Await at most ``seconds``. (Not ``asyncio.wait_for``: before Python 3.12 it can swallow
    a cancellation that arrives as the awaited thing completes, and a stop would go unheard.)"""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await awaitable


def _lock_key(stream: str) -> int:
    digest = hashlib.blake2b(f"transakt.event-publisher:{stream}".encode(), digest_size=8)
    return int.from_bytes(digest.digest(), "big", signed=True)


class EventPublisher:
    """Publishes every committed outbox event once to ``<prefix>.events``, while it leads."""

    def __init__(
        self,
        dsn: str,
        rabbitmq_url: str,
        *,
        prefix: str = "transakt",
        poll_seconds: float = 1.0,
        min_interval: float = 0.01,
        lock_retry_seconds: float = 2.0,
        batch_size: int = 1_000,
        retention_seconds: float | None = 7 * 24 * 3600.0,
        prune_every_seconds: float = 60.0,
        from_origin: bool = False,
        confirm_timeout: float = 10.0,
        reconnect_seconds: float = 1.0,
    ) -> None:
        """``from_origin``: a stream with no cursor yet starts at the oldest event kept rather
        than with the transactions still running when it is first started (the default).
        ``reconnect_seconds``: how often a lost broker connection is tried again.
        ``min_interval``: the least time between two reads of the outbox. Every commit of
        every node wakes the leader (NOTIFY); reading and recording its place once per commit
        cost three transactions for one or two events. Gathering what committed within 10 ms
        costs that much latency and gives one read per batch of events."""
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        self._dsn = dsn
        self._url = rabbitmq_url
        self._poll_seconds = poll_seconds
        self._min_interval = min_interval
        self._lock_retry_seconds = lock_retry_seconds
        self._batch_size = batch_size
        self._retention_seconds = retention_seconds
        self._prune_every_seconds = prune_every_seconds
        self._from_origin = from_origin
        self._confirm_timeout = confirm_timeout
        self._reconnect_seconds = reconnect_seconds
        #: The topic exchange; also the name of the stream's cursor and of its lock.
        self.exchange = exchange_name(prefix)
        self._lock_key = _lock_key(self.exchange)
        self._link: BrokerLink | None = None
        self._channel: aiormq.abc.AbstractChannel | None = None
        self._broker_ready = asyncio.Event()
        self._connection: asyncpg.Connection | None = None
        self._wake = asyncio.Event()
        #: Test seam: awaited with each batch once the broker confirmed it, before the cursor
        #: moves. Raising there is a crash between publishing and recording it.
        self.after_publish: Callable[[Sequence[StreamEvent]], Awaitable[None]] | None = None
        #: The campaign (and, once leading, publishing) loop: restarted when it crashes.
        self.tasks = TaskSupervisor("event-publisher", restart=_RESTARTS)
        #: True while this publisher holds the lock and publishes.
        self.leader = False
        #: Where this publisher, while leading, has published through.
        self.position: StreamPosition | None = None
        # Counters for /metrics.
        self.published = 0  # messages the broker confirmed, repeats included
        # Of those, events whose publishing had been attempted before (by a leader that crashed
        # or was deposed, or in a publish not confirmed): the broker may have had them already.
        self.republished = 0
        self.batches = 0
        self.notifications = 0
        self.held_back = 0  # reads that found committed events waiting for an older transaction
        self.publish_failures = 0  # batches the broker did not confirm (retried)
        self.takeovers = 0  # times this publisher became the leader
        self.pruned = 0
        self.prune_runs = 0

    def __repr__(self) -> str:
        role = "leader" if self.leader else "follower"
        return (
            f"<EventPublisher {self.exchange} {role} published={self.published} "
            f"republished={self.republished} position={self.position}>"
        )

    @property
    def backend_pid(self) -> int | None:
        """The server process of this publisher's database connection (a leader's holds the
        lock): for operators, and for tests that kill it."""
        connection = self._connection
        if connection is None or connection.is_closed():
            return None
        pid: int = connection.get_server_pid()
        return pid

    async def start(self) -> None:
        """Create the stream's cursor if need be, connect to the broker, declare the exchange,
        and campaign for the lead (database and broker errors surface here)."""
        connection = await self._connect()
        try:
            await open_cursor(connection, self.exchange, from_origin=self._from_origin)
        finally:
            await connection.close()
        self._link = BrokerLink(
            self._url,
            f"transakt {self.exchange} publisher",
            self._open_broker,
            self._broker_lost,
            reconnect_seconds=self._reconnect_seconds,
        )
        await self._link.start()
        if self.tasks.closing:  # started again after a stop: a closed supervisor takes no tasks
            self.tasks = TaskSupervisor(self.tasks.name, restart=self.tasks.restart)
        self.tasks.spawn("event-publisher", self._campaign)

    async def stop(self) -> None:
        """Stop publishing (another publisher takes over) and disconnect."""
        await self.tasks.close()  # its connection closes with it: the lock is released
        link, self._link = self._link, None
        if link is not None:
            await link.close()

    async def _open_broker(self, connection: aiormq.abc.AbstractConnection) -> None:
        # Built afresh on every broker connection (BrokerLink): a channel with confirms.
        channel = await connection.channel(publisher_confirms=True)
        await channel.exchange_declare(self.exchange, exchange_type="topic", durable=True)
        self._channel = channel
        self._broker_ready.set()

    def _broker_lost(self, error: BaseException | None) -> None:
        self._channel = None
        self._broker_ready.clear()
        log.warning("event publisher lost the broker (%r); reconnecting", error)

    # -- leading ------------------------------------------------------------------------------

    async def _connect(self) -> asyncpg.Connection:
        # The cursor moves without waiting for a flush: a write lost in a server crash only
        # makes the next leader send a batch again.
        connection: asyncpg.Connection = await asyncpg.connect(
            self._dsn,
            server_settings={"application_name": _APPLICATION_NAME, "synchronous_commit": "off"},
        )
        return connection

    async def _campaign(self) -> None:
        connection = await self._connect()
        self._connection = connection
        wake = self._wake
        # A lost connection wakes a follower as well as a leader: its next statement fails.
        connection.add_termination_listener(self._lost)
        try:
            while True:
                wake.clear()
                if await connection.fetchval("SELECT pg_try_advisory_lock($1)", self._lock_key):
                    break
                await _wait(wake.wait(), self._lock_retry_seconds)
            await self._lead(connection)
        finally:
            if self.leader:
                log.info("event publisher for %s steps down", self.exchange)
            self.leader = False
            self.position = None
            self._connection = None
            if not connection.is_closed():
                try:
                    async with asyncio.timeout(2.0):
                        await connection.close()
                except BaseException:
                    connection.terminate()  # the lock goes with the session either way
                    raise

    def _notified(self, _connection: Any, _pid: int, _channel: str, _payload: object) -> None:
        self.notifications += 1
        self._wake.set()

    def _lost(self, _connection: Any) -> None:
        self._wake.set()

    async def _lead(self, connection: asyncpg.Connection) -> None:
        wake = self._wake
        await connection.add_listener(CHANNEL, self._notified)
        cursor = await read_cursor(connection, self.exchange)
        position, attempted = cursor.published, cursor.attempted
        self.position = position
        self.leader = True
        self.takeovers += 1
        log.info("event publisher for %s leads from %s", self.exchange, position)
        loop = asyncio.get_running_loop()
        next_prune = loop.time() + self._prune_every_seconds
        held_retry = _HELD_BACK_RETRY
        publish_retry = _PUBLISH_RETRY_MIN
        failed_attempts = 0
        last_read = -self._min_interval
        while True:
            gap = last_read + self._min_interval - loop.time()
            if gap > 0:
                await asyncio.sleep(gap)
            wake.clear()
            if connection.is_closed():
                raise ConnectionError("the event publisher's database connection was lost")
            last_read = loop.time()
            read = await settled_events_after(connection, position, self._batch_size)
            events = read.events
            if events:
                last = events[-1].position
                seen_before = attempted
                if attempted < last:
                    await mark_attempted(connection, self.exchange, last)
                    attempted = last
                failure = await self._publish(events)
                if failure is not None:
                    # Not confirmed: sent perhaps. Read from the cursor again once the broker
                    # is back, after a while.
                    self.publish_failures += 1
                    failed_attempts += 1
                    level = logging.WARNING if failed_attempts == 1 else logging.DEBUG
                    log.log(
                        level,
                        "events to %s not confirmed (%r); publishing them again",
                        self.exchange,
                        failure,
                    )
                    await self._broker_back(publish_retry)
                    publish_retry = min(publish_retry * 2, _PUBLISH_RETRY_MAX)
                    continue
                if failed_attempts:
                    log.info(
                        "events to %s confirmed after %d failures", self.exchange, failed_attempts
                    )
                    failed_attempts = 0
                publish_retry = _PUBLISH_RETRY_MIN
                self.published += len(events)
                self.republished += sum(1 for event in events if event.position <= seen_before)
                self.batches += 1
                if self.after_publish is not None:
                    await self.after_publish(events)
                await advance_cursor(connection, self.exchange, last)
                position = self.position = last
                if len(events) == self._batch_size:
                    continue  # more to read now
            more_to_prune = False
            if self._retention_seconds is not None and loop.time() >= next_prune:
                more_to_prune = await self._prune(connection, position)
                next_prune = loop.time() + (0.0 if more_to_prune else self._prune_every_seconds)
            if read.held_back:
                self.held_back += 1
                timeout = min(held_retry, self._poll_seconds)
                held_retry *= 2
            else:
                timeout = self._poll_seconds
                held_retry = _HELD_BACK_RETRY
            if more_to_prune:
                timeout = 0.0
            await _wait(wake.wait(), timeout)

    async def _publish(self, events: Sequence[StreamEvent]) -> BaseException | None:
        """Send a batch and wait for the broker's confirms; an error when any is missing."""
        channel = self._channel
        if channel is None:
            return ConnectionError("no channel to the broker")
        timeout = self._confirm_timeout
        sends = []
        for event in events:
            key, message = encode_event(event)
            sends.append(
                channel.basic_publish(
                    message.body,
                    exchange=self.exchange,
                    routing_key=key,
                    properties=message.properties,
                    timeout=timeout,
                )
            )
        results = await asyncio.gather(*sends, return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                return result
            if not isinstance(result, Basic.Ack):
                return ConnectionError(f"the broker did not confirm: {result!r}")
        return None

    async def _broker_back(self, delay: float) -> None:
        """Wait ``delay``, then until the broker connection is back (``BrokerLink`` makes it
        again by itself), but no longer than a confirm may take."""
        await asyncio.sleep(delay)
        await _wait(self._broker_ready.wait(), self._confirm_timeout)

    async def _prune(self, connection: asyncpg.Connection, position: StreamPosition) -> bool:
        """One batch of pruning, bounded by every live stream's cursor; True when there may be
        more."""
        retention = self._retention_seconds
        assert retention is not None
        self.prune_runs += 1
        try:
            # Another stream (another prefix) on this outbox may be behind this one; one whose
            # cursor has not moved within the retention period is taken for abandoned.
            slowest = await slowest_cursor(connection, retention)
            through = position if slowest is None else min(position, slowest)
            deleted = await prune_outbox(
                connection, retention, _PRUNE_BATCH, published_through=(through.xid, through.id)
            )
        except asyncpg.PostgresError as error:  # the server refused; the connection is fine
            log.warning("outbox pruning failed (%r); retrying later", error)
            return False
        self.pruned += deleted
        return deleted == _PRUNE_BATCH
