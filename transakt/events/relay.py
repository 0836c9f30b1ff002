"""OutboxRelay: committed outbox events onto this process's event bus, at once, each id once.

- On commit: the commit's NOTIFY names the range of outbox ids it wrote; the relay reads those
  rows on its listening connection and publishes them on this process's bus within a
  millisecond or two. Every process listens, so a websocket on any node hears of any commit,
  with no polling and no wait for a relay on another node. PostgreSQL delivers a notification
  to every connected listener once the commit is visible, so while connected nothing is missed.
- Catching up: after a lost connection the relay reads everything from a little before the
  last id it saw (commits finish out of id order: a batch that took its ids first can commit
  last), and a periodic poll reads anything past the last id it saw, should a listener ever go
  quiet without its connection being reported lost.

Reading back costs the database and this process a query and a decoding per commit, so the relay
reads only while someone on this process's bus listens (a live websocket is open, a mailer runs
here). Otherwise it only keeps its place. Nothing is lost by that: a notification arrives once
its commit is visible, so whoever subscribes later starts from a snapshot that shows it.

Each event id is published at most once per process (a bounded memory of recent ids), and the
relay writes nothing back: the outbox is a log its readers keep their own place in. Marking
every row delivered, as an earlier relay did, was an UPDATE per event: a third of the ledger's
write-ahead log, for a mark nothing needed. Mail keeps its own durable progress (see
``transakt.storage.mail``), and a live client gets a fresh snapshot whenever it (re)connects.
The relay also deletes events past their retention (``prune_outbox``).

Its reader and poll loops run under its ``TaskSupervisor`` (``relay.tasks``): a loop that
crashes is logged and restarts with backoff; the reader then reads what was asked for before.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Sequence
from typing import Final

import asyncpg

from transakt.events.dedupe import RecentIds
from transakt.runtime import EventBus, RestartPolicy, TaskSupervisor
from transakt.storage.outbox import (
    OutboxEvent,
    OutboxListener,
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
# Rows per read when catching up.
_READ_LIMIT: Final = 5_000
# How far behind the last id seen a catch-up starts: ids are taken when a batch is written and
# become visible when it commits, so a concurrent batch can commit ids below one already seen.
# Batches are at most a few hundred events, and few commit at once.
_CATCH_UP_MARGIN: Final = 10_000
# How often the relay deletes events past their retention, and how many per statement.
_PRUNE_EVERY_SECONDS: Final = 60.0
_PRUNE_BATCH: Final = 5_000
# A crashed loop restarts with backoff, for ever: backing off to 5 s, it cannot reach 100
# restarts within a minute. Its place (the last id seen) survives the restart.
_RESTARTS: Final = RestartPolicy(max_restarts=100, within=60.0, min_backoff=0.05, max_backoff=5.0)


class OutboxRelay:
    """Publishes every committed outbox event on ``events``; prunes what is past retention."""

    def __init__(
        self,
        dsn: str,
        pool: asyncpg.Pool,
        events: EventBus,
        *,
        poll_seconds: float = 1.0,
        retention_seconds: float = 7 * 24 * 3600.0,
        reconnect_delay: float = 0.5,
    ) -> None:
        self._pool = pool
        self._events = events
        self._poll_seconds = poll_seconds
        self._retention_seconds = retention_seconds
        self._listener = OutboxListener(
            dsn, self._notified, on_reconnect=self._reconnected, reconnect_delay=reconnect_delay
        )
        # What the reader is asked to read: notified (first, last) ranges; everything from a
        # little before the last id seen (after a reconnect); everything past it (a poll).
        self._spans: deque[tuple[int, int]] = deque()
        self._catch_up = False
        self._poll = False
        self._fetch_wanted = asyncio.Event()
        self._published = RecentIds(_REMEMBERED_IDS)
        self._last_seen = 0
        self._first_id = 0  # the outbox's last id when this relay started: it relays what follows
        self._next_prune = 0.0
        #: The reader and poll loops: restarted when they crash, cancelled by ``stop()``.
        self.tasks = TaskSupervisor("outbox-relay", restart=_RESTARTS)
        # Counters for /metrics.
        self.published = 0
        self.notifications = 0
        self.caught_up = 0  # events published by a catch-up or a poll, not a notification
        self.unread = 0  # notifications not read back: nobody on the bus was listening
        self.pruned = 0

    def __repr__(self) -> str:
        return (
            f"<OutboxRelay published={self.published} pending_reads={len(self._spans)} "
            f"last_seen={self._last_seen}>"
        )

    async def start(self) -> None:
        """Listen, then relay what commits from now on (earlier events were someone else's)."""
        await self._listener.start()
        connection = self._listener.connection
        assert connection is not None
        self._last_seen = self._first_id = await last_event_id(connection)
        if self.tasks.closing:  # started again after a stop: a closed supervisor takes no tasks
            self.tasks = TaskSupervisor(self.tasks.name, restart=self.tasks.restart)
        self.tasks.spawn("outbox-relay-reader", self._fetch_loop)
        self.tasks.spawn("outbox-relay-poll", self._poll_loop)

    async def stop(self) -> None:
        """Stop reading, polling and listening."""
        await self.tasks.close()  # cancelled: nothing they do needs finishing
        await self._listener.stop()

    # -- reading -----------------------------------------------------------------------------

    def _notified(self, payload: str) -> None:
        self.notifications += 1
        span = parse_notification(payload)
        if span is None:
            log.warning("ignoring a malformed outbox notification %r", payload)
            return
        if not self._events.has_subscribers():
            # Keep the place only: the commit is visible already, so a subscriber that comes
            # later starts from a snapshot that shows it.
            self.unread += 1
            self._last_seen = max(self._last_seen, span[1])
            return
        self._spans.append(span)
        self._fetch_wanted.set()

    def _reconnected(self) -> None:
        self._catch_up = True
        self._fetch_wanted.set()

    def _forget_wanted(self) -> None:
        # Not listening: what is asked for is lost; the reconnect asks for a catch-up.
        self._spans.clear()
        self._catch_up = self._poll = False

    async def _fetch_loop(self) -> None:
        # The only reader of the listening connection: reads never overlap. It looks for work
        # before it waits, so a restarted reader reads what was asked for before its crash.
        while True:
            while self._spans or self._catch_up or self._poll:
                connection = self._listener.connection
                if connection is None:
                    self._forget_wanted()
                    break
                try:
                    await self._read(connection)
                except Exception as error:  # whatever broke, a fresh connection is the cure
                    log.warning("outbox read failed (%r); reconnecting", error)
                    self._forget_wanted()
                    self._listener.lost()
                    break
            self._fetch_wanted.clear()
            await self._fetch_wanted.wait()

    async def _read(self, connection: asyncpg.Connection) -> None:
        # Everything asked for so far in one go: under load, many commits, one query.
        spans = list(self._spans)
        self._spans.clear()
        catch_up, poll = self._catch_up, self._poll
        self._catch_up = self._poll = False
        if (catch_up or poll) and not self._events.has_subscribers():
            # Nobody listens: move the place to the end of the log instead of reading up to it.
            self._last_seen = max(self._last_seen, await last_event_id(connection))
        elif catch_up or poll:
            after = self._last_seen
            if catch_up:
                after = max(self._first_id, after - _CATCH_UP_MARGIN)
            while True:
                events = await events_after(connection, after, _READ_LIMIT)
                self.caught_up += self._publish(events)
                if len(events) < _READ_LIMIT:
                    break
                after = events[-1].id
        if spans:
            first = min(span[0] for span in spans)
            last = max(span[1] for span in spans)
            self._publish(await events_between(connection, first, last))

    def _publish(self, events: Sequence[OutboxEvent]) -> int:
        bus = self._events
        fresh = 0
        for event in events:
            if event.id > self._last_seen:
                self._last_seen = event.id
            if self._published.add(event.event_id):
                fresh += 1
                bus.publish_local(event.topic, event)
        self.published += fresh
        return fresh

    # -- polling and pruning -----------------------------------------------------------------

    async def _poll_loop(self) -> None:
        while True:
            await asyncio.sleep(self._poll_seconds)
            self._poll = True
            self._fetch_wanted.set()
            now = asyncio.get_running_loop().time()
            if now >= self._next_prune:
                self._next_prune = now + _PRUNE_EVERY_SECONDS
                try:
                    await self.prune()
                except Exception as error:  # the loop must outlive any one failure
                    log.warning("outbox pruning failed (%r); retrying later", error)

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
