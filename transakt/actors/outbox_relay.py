"""OutboxRelay: committed outbox events onto the event bus, at once and at least once.

Two paths, one dedupe:

- Fast: the commit's NOTIFY names the range of outbox ids it wrote; the relay reads those rows
  on its listening connection and publishes them on this process's bus within a millisecond
  or two. Every process listens, so a websocket on any node hears of any commit, with no
  polling and no wait for a relay on another node.
- Durable: the relay claims undelivered rows (``FOR UPDATE SKIP LOCKED``, so relays on several
  nodes share them), publishes those not published yet, and marks them delivered in the same
  transaction. After a crash or a lost connection, whatever the fast path missed goes out here.

Each event id is published at most once per process (a bounded memory of recent ids); any
consumer that can see an event twice (say, forwarded from another node) ignores the replay
by the same id.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Sequence
from typing import Final

import asyncpg

from transakt.actors._dedupe import RecentIds
from transakt.runtime import EventBus
from transakt.storage.outbox import (
    OutboxEvent,
    OutboxListener,
    claim_undelivered,
    events_after,
    events_between,
    last_event_id,
    parse_notification,
    prune_outbox,
)

__all__ = ["OutboxRelay"]

log = logging.getLogger("transakt.outbox")

# Enough to cover minutes of events at thousands per second: a replay older than this window
# can only come from a relay that was down that long, and consumers dedupe too.
_REMEMBERED_IDS: Final = 200_000
# Rows per read when catching up after a reconnect, and per durable claim.
_READ_LIMIT: Final = 5_000
# Marking delivered is not on the latency path: batching it costs the database less.
_DRAIN_PAUSE_SECONDS: Final = 0.1
# How often the durable path also deletes events past their retention, and how many per
# statement.
_PRUNE_EVERY_SECONDS: Final = 60.0
_PRUNE_BATCH: Final = 5_000


class OutboxRelay:
    """Publishes every committed outbox event on ``events`` and marks the rows delivered."""

    def __init__(
        self,
        dsn: str,
        pool: asyncpg.Pool,
        events: EventBus,
        *,
        poll_seconds: float = 1.0,
        claim_limit: int = 1_000,
        retention_seconds: float = 7 * 24 * 3600.0,
    ) -> None:
        self._pool = pool
        self._retention_seconds = retention_seconds
        self._next_prune = 0.0
        self._events = events
        self._poll_seconds = poll_seconds
        self._claim_limit = claim_limit
        self._listener = OutboxListener(dsn, self._notified, on_reconnect=self._reconnected)
        # Ranges announced by notifications and not read yet; None asks for a catch-up.
        self._ranges: deque[tuple[int, int] | None] = deque()
        self._fetch_wanted = asyncio.Event()
        self._drain_wanted = asyncio.Event()
        self._published = RecentIds(_REMEMBERED_IDS)
        self._last_seen = 0
        self._tasks: list[asyncio.Task[None]] = []
        # Counters for /metrics.
        self.published = 0
        self.delivered = 0
        self.notifications = 0
        self.pruned = 0

    def __repr__(self) -> str:
        return (
            f"<OutboxRelay published={self.published} delivered={self.delivered} "
            f"pending_ranges={len(self._ranges)} last_seen={self._last_seen}>"
        )

    async def start(self) -> None:
        """Listen, then start both paths; events committed before now go out by the durable one."""
        await self._listener.start()
        connection = self._listener.connection
        assert connection is not None
        self._last_seen = await last_event_id(connection)
        self._tasks = [
            asyncio.create_task(self._fetch_loop(), name="outbox-relay-fast"),
            asyncio.create_task(self._drain_loop(), name="outbox-relay-durable"),
        ]

    async def stop(self) -> None:
        """Stop both paths and the listener; undelivered rows wait for the next relay."""
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await self._listener.stop()

    # -- fast path -------------------------------------------------------------------------

    def _notified(self, payload: str) -> None:
        self.notifications += 1
        span = parse_notification(payload)
        if span is None:
            log.warning("ignoring a malformed outbox notification %r", payload)
            return
        self._ranges.append(span)
        self._fetch_wanted.set()
        self._drain_wanted.set()

    def _reconnected(self) -> None:
        self._ranges.append(None)
        self._fetch_wanted.set()
        self._drain_wanted.set()

    async def _fetch_loop(self) -> None:
        while True:
            await self._fetch_wanted.wait()
            self._fetch_wanted.clear()
            while self._ranges:
                connection = self._listener.connection
                if connection is None:
                    # Not listening: what is queued is lost; the reconnect asks for a catch-up.
                    self._ranges.clear()
                    break
                try:
                    await self._read(connection)
                except Exception as error:  # whatever broke, a fresh connection is the cure
                    log.warning("outbox read failed (%r); reconnecting", error)
                    self._ranges.clear()
                    self._listener.lost()
                    break

    async def _read(self, connection: asyncpg.Connection) -> None:
        # Everything announced so far in one read: under load, many commits, one query.
        spans = list(self._ranges)
        self._ranges.clear()
        if None in spans:
            while True:
                events = await events_after(connection, self._last_seen, _READ_LIMIT)
                self._publish(events, forward=False)
                if len(events) < _READ_LIMIT:
                    break
            spans = [span for span in spans if span is not None]
        if spans:
            first = min(span[0] for span in spans if span is not None)
            last = max(span[1] for span in spans if span is not None)
            self._publish(await events_between(connection, first, last), forward=False)

    def _publish(self, events: Sequence[OutboxEvent], *, forward: bool) -> None:
        bus = self._events
        for event in events:
            if event.id > self._last_seen:
                self._last_seen = event.id
            if self._published.add(event.event_id):
                self.published += 1
                # Every node reads every commit itself, so the fast path stays local; the
                # durable path also forwards (to a transport, when one is configured).
                if forward:
                    bus.publish(event.topic, event)
                else:
                    bus.publish_local(event.topic, event)

    # -- durable path ----------------------------------------------------------------------

    async def _drain_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drain_wanted.wait(), self._poll_seconds)
            self._drain_wanted.clear()
            try:
                await self.drain()
                now = asyncio.get_running_loop().time()
                if now >= self._next_prune:
                    self._next_prune = now + _PRUNE_EVERY_SECONDS
                    await self.prune()
            except Exception as error:  # the loop must outlive any one failure
                log.warning("outbox delivery failed (%r); retrying", error)
            await asyncio.sleep(_DRAIN_PAUSE_SECONDS)

    async def prune(self) -> int:
        """Delete the events past their retention that every reader is done with."""
        total = 0
        async with self._pool.acquire() as connection:
            while True:
                deleted = await prune_outbox(connection, self._retention_seconds, _PRUNE_BATCH)
                total += deleted
                if deleted < _PRUNE_BATCH:
                    break
        self.pruned += total
        if total:
            log.info("pruned %d outbox events older than %.0fs", total, self._retention_seconds)
        return total

    async def drain(self) -> int:
        """Deliver and mark every undelivered event this relay can claim; return how many."""
        total = 0
        async with self._pool.acquire() as connection:
            while True:
                claimed = await claim_undelivered(
                    connection,
                    self._claim_limit,
                    lambda events: self._publish(events, forward=True),
                    # With a transport the durable path must still forward every event;
                    # without one, what the fast path published needs only its mark.
                    delivered_already=(
                        (lambda _event_id: False)
                        if self._events.forwards
                        else self._published.__contains__
                    ),
                )
                total += claimed
                self.delivered += claimed
                if claimed < self._claim_limit:
                    return total
