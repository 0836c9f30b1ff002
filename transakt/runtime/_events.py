"""In-process publish/subscribe, optionally forwarded to a transport."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from transakt.runtime._metrics import RuntimeMetrics
from transakt.runtime._ref import ActorRef
from transakt.runtime._typing import EventHandler, Subscriber

__all__ = ["ALL_TOPICS", "EventBus", "Subscription"]

log = logging.getLogger("transakt.runtime")

#: Subscribe to this topic to receive every event.
ALL_TOPICS = "*"


class Subscription:
    """One handler on one topic; ``cancel()`` removes it."""

    __slots__ = ("_bus", "active", "handler", "topic")

    def __init__(self, bus: EventBus, topic: str, handler: Subscriber) -> None:
        self._bus = bus
        self.topic = topic
        self.handler = handler
        self.active = True

    def cancel(self) -> None:
        """Stop receiving events (idempotent)."""
        if self.active:
            self.active = False
            self._bus._remove(self)

    def __repr__(self) -> str:
        state = "active" if self.active else "cancelled"
        return f"<Subscription {self.topic!r} {self.handler!r} {state}>"


class EventBus:
    """Topic-based fan-out: never blocks the publisher, isolates failing handlers."""

    __slots__ = ("_closed", "_forward", "_subscriptions", "_tasks", "metrics")

    def __init__(
        self,
        *,
        metrics: RuntimeMetrics | None = None,
        forward: Callable[[str, Any], Awaitable[None]] | None = None,
    ) -> None:
        self.metrics = metrics if metrics is not None else RuntimeMetrics()
        self._forward = forward
        # Lists are replaced, never mutated, so a publish iterating one is never disturbed.
        self._subscriptions: dict[str, tuple[Subscription, ...]] = {}
        self._tasks: set[asyncio.Future[Any]] = set()
        self._closed = False

    @property
    def forwards(self) -> bool:
        """True when published events also go to a transport (other processes)."""
        return self._forward is not None

    @property
    def pending(self) -> int:
        """Handler (and forwarding) tasks still running."""
        return len(self._tasks)

    def has_subscribers(self) -> bool:
        """True while any handler is subscribed (to any topic): a publisher that pays to
        produce its events, like the outbox relay reading them back, may skip the work when
        nobody would receive them."""
        return bool(self._subscriptions)

    def subscribe(self, topic: str, handler: EventHandler | ActorRef) -> Subscription:
        """Call ``handler(topic, event)`` (or ``tell`` an actor the event) for each event."""
        subscription = Subscription(self, topic, handler)
        self._subscriptions[topic] = (*self._subscriptions.get(topic, ()), subscription)
        return subscription

    def _remove(self, subscription: Subscription) -> None:
        remaining = tuple(
            s for s in self._subscriptions.get(subscription.topic, ()) if s is not subscription
        )
        if remaining:
            self._subscriptions[subscription.topic] = remaining
        else:
            self._subscriptions.pop(subscription.topic, None)

    def publish(self, topic: str, event: Any) -> None:
        """Deliver to local subscribers and forward to the transport, without waiting."""
        if self._closed:
            log.debug("event %s dropped: the bus is closed", topic)
            return
        self.publish_local(topic, event)
        forward = self._forward
        if forward is not None:
            self._track(forward(topic, event), f"forwarding {topic}")

    def publish_local(self, topic: str, event: Any) -> None:
        """Deliver to local subscribers only (what a transport calls for a remote event)."""
        if self._closed:
            return
        self.metrics.events_published += 1
        subscriptions = self._subscriptions
        for subscription in subscriptions.get(topic, ()):
            self._deliver(subscription, topic, event)
        if topic != ALL_TOPICS:
            for subscription in subscriptions.get(ALL_TOPICS, ()):
                self._deliver(subscription, topic, event)

    def _deliver(self, subscription: Subscription, topic: str, event: Any) -> None:
        if not subscription.active:
            return
        handler = subscription.handler
        try:
            if isinstance(handler, ActorRef):
                handler.tell(event)
                return
            result = handler(topic, event)
            if inspect.isawaitable(result):
                self._track(result, f"handler {handler!r} of {topic}")
        except Exception:
            self.metrics.event_handler_errors += 1
            log.exception("event handler %r failed on %s", handler, topic)

    def _track(self, awaitable: Awaitable[Any], what: str) -> None:
        task = asyncio.ensure_future(awaitable)
        self._tasks.add(task)
        task.add_done_callback(lambda done: self._done(done, what))

    def _done(self, task: asyncio.Future[Any], what: str) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            self.metrics.event_handler_errors += 1
            log.error("event %s failed", what, exc_info=error)

    async def drain(self) -> None:
        """Wait until every handler task started so far (and any they start) has finished."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def close(self) -> None:
        """Refuse further events and cancel the handler tasks still running."""
        self._closed = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def __repr__(self) -> str:
        topics = sum(len(subs) for subs in self._subscriptions.values())
        return f"<EventBus subscriptions={topics} pending={len(self._tasks)}>"
