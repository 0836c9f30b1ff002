"""Event bus: subscribe/publish/cancel, wildcard, failing handler isolation, actor subscribers."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from transakt.runtime import ALL_TOPICS, ActorSystem, EventBus, RuntimeMetrics

from .helpers import Recorder, settle


async def test_subscribe_publish_cancel() -> None:
    bus = EventBus()
    seen: list[tuple[str, Any]] = []
    subscription = bus.subscribe("deposit", lambda topic, event: seen.append((topic, event)))
    bus.publish("deposit", 1)
    bus.publish("withdraw", 2)  # nobody listens
    subscription.cancel()
    subscription.cancel()  # idempotent
    bus.publish("deposit", 3)
    assert seen == [("deposit", 1)]
    assert not subscription.active
    assert "cancelled" in repr(subscription)
    assert bus.metrics.events_published == 3


async def test_wildcard_receives_every_topic() -> None:
    bus = EventBus()
    seen: list[str] = []
    bus.subscribe(ALL_TOPICS, lambda topic, event: seen.append(topic))
    bus.publish("a", None)
    bus.publish("b", None)
    assert seen == ["a", "b"]


async def test_async_handlers_run_as_tracked_tasks() -> None:
    bus = EventBus()
    gate = asyncio.Event()
    seen: list[Any] = []

    async def handler(topic: str, event: Any) -> None:
        await gate.wait()
        seen.append(event)

    bus.subscribe("t", handler)
    bus.publish("t", "x")  # returns at once
    assert seen == [] and bus.pending == 1
    gate.set()
    await bus.drain()
    assert seen == ["x"] and bus.pending == 0


async def test_failing_handlers_are_isolated(caplog: pytest.LogCaptureFixture) -> None:
    metrics = RuntimeMetrics()
    bus = EventBus(metrics=metrics)
    seen: list[str] = []

    def bad_sync(topic: str, event: Any) -> None:
        raise RuntimeError("sync handler broke")

    async def bad_async(topic: str, event: Any) -> None:
        raise RuntimeError("async handler broke")

    bus.subscribe("t", bad_sync)
    bus.subscribe("t", bad_async)
    bus.subscribe("t", lambda topic, event: seen.append("good"))
    with caplog.at_level(logging.ERROR, logger="transakt.runtime"):
        bus.publish("t", None)  # does not raise
        await bus.drain()
    assert seen == ["good"]
    assert metrics.event_handler_errors == 2
    assert "sync handler broke" in caplog.text and "async handler broke" in caplog.text


async def test_actor_subscribers_get_events_by_tell(system: ActorSystem) -> None:
    log: list[Any] = []
    ref = system.spawn(lambda: Recorder(log))
    system.events.subscribe("transfer", ref)
    system.events.publish("transfer", {"amount": 5})
    await ref.ask("sync")
    assert log == [{"amount": 5}, "sync"]
    await ref.stop()
    system.events.publish("transfer", {"amount": 6})  # dead subscriber: counted, not raised
    assert system.metrics.event_handler_errors == 1


async def test_handler_may_cancel_during_publish() -> None:
    bus = EventBus()
    seen: list[str] = []
    subscriptions: list[Any] = []

    def first(topic: str, event: Any) -> None:
        seen.append("first")
        subscriptions[1].cancel()

    subscriptions.append(bus.subscribe("t", first))
    subscriptions.append(bus.subscribe("t", lambda topic, event: seen.append("second")))
    bus.publish("t", None)
    bus.publish("t", None)
    assert seen == ["first", "first"]


async def test_closed_bus_drops_events() -> None:
    bus = EventBus()
    gate = asyncio.Event()
    seen: list[Any] = []

    async def slow(topic: str, event: Any) -> None:
        await gate.wait()

    bus.subscribe("t", slow)
    bus.publish("t", 1)
    await settle()
    await bus.close()  # cancels the running handler
    assert bus.pending == 0
    bus.subscribe("t", lambda topic, event: seen.append(event))
    bus.publish("t", 2)
    assert seen == []
