"""EventSubscriber: a process's event bus fed from ``<prefix>.events`` (one queue of its own).

It binds an exclusive queue to the routing patterns it is given, rebuilds each message into the
``OutboxEvent`` the outbox relay would have published, drops replays (the publisher sends at
least once) and publishes it on the process's bus. Events published while its connection is
down are not queued for it: ``on_reconnect`` lets the process catch up (the live hub asks its
clients to reconnect for a fresh snapshot; mailers poll the database anyway).
"""

from __future__ import annotations

import contextlib
import logging
import secrets
from collections.abc import Callable, Sequence
from typing import Any, Final

import aio_pika
from aio_pika.abc import (
    AbstractIncomingMessage,
    AbstractRobustConnection,
)

from transakt.events.dedupe import RecentIds
from transakt.rabbitmq.event_format import decode_event, exchange_name
from transakt.runtime import EventBus

__all__ = ["EventSubscriber"]

log = logging.getLogger("transakt.events.stream")

_REMEMBERED_IDS: Final = 200_000


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
    ) -> None:
        """``patterns``: the routing keys to bind (``#``: every event). ``on_reconnect`` runs
        after the broker connection came back: events published meanwhile were not received
        (the queue is exclusive and went with the connection), so whoever keeps state built
        from events may want a fresh snapshot."""
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
        self._broker: AbstractRobustConnection | None = None
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
        """Connect, declare the exchange and this subscriber's queue, bind it, consume."""
        broker = await aio_pika.connect_robust(
            self._url,
            reconnect_interval=self._reconnect_seconds,
            client_properties={"connection_name": f"transakt {self.queue}"},
        )
        try:
            channel = await broker.channel(publisher_confirms=False)
            exchange = await channel.declare_exchange(
                self.exchange, aio_pika.ExchangeType.TOPIC, durable=True
            )
            queue = await channel.declare_queue(self.queue, exclusive=True, auto_delete=True)
            for pattern in self.patterns:
                await queue.bind(exchange, routing_key=pattern)
            await queue.consume(self._on_message, no_ack=True)
        except BaseException:
            await broker.close()
            raise
        broker.reconnect_callbacks.add(self._reconnected)
        self._broker = broker

    async def stop(self) -> None:
        """Stop consuming and disconnect (the queue is deleted with the connection)."""
        broker, self._broker = self._broker, None
        if broker is not None:
            with contextlib.suppress(Exception):
                await broker.close()

    def _reconnected(self, *_args: Any) -> None:
        self.reconnects += 1
        log.warning("event subscriber %s reconnected; events meanwhile were missed", self.queue)
        if self._on_reconnect is not None:
            try:
                self._on_reconnect()
            except Exception:
                log.exception("event subscriber reconnect handler failed")

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        self.received += 1
        try:
            event = decode_event(message.body, message.headers)
        except ValueError as error:
            self.malformed += 1
            log.warning("dropping a message from %s: %s", self.exchange, error)
            return
        if not self._seen.add(event.event_id):
            self.replays += 1
            return
        self.delivered += 1
        self._events.publish_local(event.topic, event)
