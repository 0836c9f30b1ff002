"""Metrics counters and gauges."""

from __future__ import annotations

import asyncio

import pytest

from transakt.runtime import ActorDeadError, ActorSystem, MailboxFull, VirtualClock

from .helpers import Boom, Recorder, settle


async def test_counters_and_gauges(clock: VirtualClock) -> None:
    async with ActorSystem(clock=clock) as system:
        system.register_entity(Recorder, lambda key: Recorder(), idle_timeout=5.0)
        ref = system.spawn(Recorder, mailbox_size=1)
        await ref.ask(1)
        with pytest.raises(Boom):
            await ref.ask("boom")
        await clock.advance(1.0)
        gate = asyncio.Event()
        busy = asyncio.ensure_future(ref.ask(("wait", gate), timeout=1.0))
        await settle()
        ref.tell(2)
        assert system.metrics.mailbox_depth == 1
        with pytest.raises(MailboxFull):
            ref.tell(3)
        await clock.advance(1.1)
        with pytest.raises(asyncio.TimeoutError):
            await busy
        gate.set()
        await settle()
        await ref.ask(4)
        await system.entity(Recorder, "e1").ask(1)
        await clock.advance(6.0)
        await ref.stop()
        with pytest.raises(ActorDeadError):
            ref.tell(5)
        snapshot = system.metrics.snapshot()
    assert snapshot == {
        "messages_processed": 5,  # 1, the wait, 2, 4 and the entity's one
        "messages_failed": 1,
        "restarts": 1,
        "asks_timed_out": 1,
        "dead_letters": 1,
        "mailbox_full_rejections": 1,
        "activations": 1,
        "passivations": 1,
        "events_published": 0,
        "event_handler_errors": 0,
        "active_actors": 0,
        "mailbox_depth": 0,
        "active_entities": 0,
        "active_entities.Recorder": 0,
    }
    assert all(isinstance(value, int | float) for value in snapshot.values())
    assert "processed=5" in repr(system.metrics)
