"""EventSubscriber: a process's event bus fed from ``<prefix>.events`` (one queue of its own).

It binds an exclusive queue to the routing patterns it is given, rebuilds each message into the
``OutboxEvent`` the outbox relay would have published, drops replays (the publisher sends at
least once) and publishes it on the process's bus. Events published while its connection is
down are not queued for it: ``on_reconnect`` lets the process catch up (the live hub asks its
clients to reconnect for a fresh snapshot; mailers poll the database anyway).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable, Sequence
from typing import Final

import aiormq.abc
from pamqp.common import FieldValue

from transakt.events.dedupe import RecentIds
from transakt.rabbitmq._link import BrokerLink
from transakt.rabbitmq.event_format import decode_event, exchange_name
from transakt.runtime import EventBus

__all__ = ["EventSubscriber"]

log = logging.getLogger("transakt.events.stream")

_REMEMBERED_IDS: Final = 200_000
# How often the subscriber checks whether anyone on the bus listens.
_WATCH_SECONDS: Final = 0.05
# The subscriber's queue keeps what arrives while it does not consume for a few seconds at
# most (and 10,000 events at most): enough to cover a listener's arrival, no more.
_QUEUE_ARGUMENTS: Final[dict[str, FieldValue]] = {
    "x-message-ttl": 5_000,
    "x-max-length": 10_000,
    "x-overflow": "drop-head",
}


class EventSubscriber:
    """Feeds ``events`` (this process's bus) from ``<prefix>.events``, each event id once."""

    def __init__(
        self,
        rabbitmq_url: str,
        events: EventBus,
        *,
        prefix: str = "transakt",
        patterns: Sequence[str] = ("#",),
        remembered_ids: int = _REMEMBERED_IDS,
        on_reconnect: Callable[[], object] | None = None,
        reconnect_seconds: float = 1.0,
        wanted: Callable[[], bool] | None = None,
    ) -> None:
        """``patterns``: the routing keys to bind (``#``: every event). ``on_reconnect`` runs
        after the broker connection came back: events published meanwhile were not received
        (the queue is exclusive and went with the connection), so whoever keeps state built
        from events may want a fresh snapshot.

        ``wanted`` (e.g. the bus's ``has_subscribers``): consume only while it says so. The
        queue stays bound meanwhile, keeping the last few seconds of events (older ones expire
        in the broker), so a listener that arrives misses nothing that committed after it came;
        a node nobody listens on spends nothing on the stream."""
        if not patterns:
            raise ValueError("bind at least one routing pattern")
        self._url = rabbitmq_url
        self._events = events
        self.exchange = exchange_name(prefix)
        self.patterns = tuple(patterns)
        #: This subscriber's own queue (exclusive: it goes when the connection does).
        self.queue = f"{self.exchange}.subscriber.{secrets.token_hex(6)}"
        self._on_reconnect = on_reconnect
        self._reconnect_seconds = reconnect_seconds
        self._seen = RecentIds(remembered_ids)
        self._link: BrokerLink | None = None
        self._wanted = wanted
        self._channel: aiormq.abc.AbstractChannel | None = None
        self._consumer: str | None = None
        self._watcher: asyncio.Task[None] | None = None
        # Counters for /metrics.
        self.received = 0
        self.delivered = 0
        self.replays = 0  # event ids delivered already, dropped
        self.malformed = 0
        self.reconnects = 0

    def __repr__(self) -> str:
        return (
            f"<EventSubscriber {self.queue} {list(self.patterns)} delivered={self.delivered} "
            f"replays={self.replays}>"
        )

    async def start(self) -> None:
        """Connect, declare the exchange and this subscriber's queue, bind it, consume (and do
        it all again on every later connection)."""
        self._link = BrokerLink(
            self._url,
            f"transakt {self.queue}",
            self._open,
            self._lost,
            reconnect_seconds=self._reconnect_seconds,
        )
        await self._link.start()

    async def stop(self) -> None:
        """Stop consuming and disconnect (the queue is deleted with the connection)."""
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        link, self._link = self._link, None
        if link is not None:
            await link.close()

    async def _open(self, connection: aiormq.abc.AbstractConnection) -> None:
        channel = await connection.channel(publisher_confirms=False)
        await channel.exchange_declare(self.exchange, exchange_type="topic", durable=True)
        await channel.queue_declare(
            self.queue, exclusive=True, auto_delete=True, arguments=_QUEUE_ARGUMENTS
        )
        for pattern in self.patterns:
            await channel.queue_bind(self.queue, self.exchange, routing_key=pattern)
        self._channel, self._consumer = channel, None
        if self._wanted is None or self._wanted():
            await self._consume(True)
        if self._watcher is None and self._wanted is not None:
            self._watcher = asyncio.create_task(self._watch())
        if self._link is not None and self._link.connects:
            self._reconnected()

    async def _consume(self, on: bool) -> None:
        channel = self._channel
        if channel is None or channel.is_closed or on == (self._consumer is not None):
            return
        if on:
            ok = await channel.basic_consume(self.queue, self._on_message, no_ack=True)
            self._consumer = ok.consumer_tag
        else:
            tag, self._consumer = self._consumer, None
            if tag is not None:
                await channel.basic_cancel(tag)

    async def _watch(self) -> None:
        wanted = self._wanted
        assert wanted is not None
        while True:
            await asyncio.sleep(_WATCH_SECONDS)
            try:
                await self._consume(wanted())
            except Exception as error:  # the connection went: BrokerLink builds it again
                log.debug("event subscriber %s: %r", self.queue, error)

    def _lost(self, error: BaseException | None) -> None:
        log.warning("event subscriber %s lost its connection (%r)", self.queue, error)

    def _reconnected(self) -> None:
        self.reconnects += 1
        log.warning("event subscriber %s reconnected; events meanwhile were missed", self.queue)
        if self._on_reconnect is not None:
            try:
                self._on_reconnect()
            except Exception:
                log.exception("event subscriber reconnect handler failed")

    async def _on_message(self, message: aiormq.abc.DeliveredMessage) -> None:
        self.received += 1
        try:
            event = decode_event(message.body, message.header.properties.headers or {})
        except ValueError as error:
            self.malformed += 1
            log.warning("dropping a message from %s: %s", self.exchange, error)
            return
        if not self._seen.add(event.event_id):
            self.replays += 1
            return
        self.delivered += 1
        self._events.publish_local(event.topic, event)
