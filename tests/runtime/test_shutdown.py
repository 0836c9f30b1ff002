"""Shutdown: ordered, runs stopped() hooks, answers every pending ask, cancels leftovers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from transakt.runtime import Actor, ActorDeadError, ActorSystem, Deferred

from .helpers import Recorder, settle


class Node(Actor):
    """Journals its stop; optionally blocks in receive."""

    def __init__(self, name: str, journal: list[str]) -> None:
        self.name = name
        self.journal = journal

    async def receive(self, message: Any) -> Any:
        if isinstance(message, asyncio.Event):
            await message.wait()
        return self.name

    async def stopped(self) -> None:
        self.journal.append(self.name)


async def test_shutdown_answers_pending_asks_and_runs_hooks() -> None:
    journal: list[str] = []
    gate = asyncio.Event()
    system = ActorSystem()
    parent = system.spawn(lambda: Node("parent", journal), name="parent")
    child = system.spawn(lambda: Node("child", journal), name="child", parent=parent)
    other = system.spawn(lambda: Node("other", journal), name="other")
    in_flight = asyncio.ensure_future(parent.ask(gate, timeout=None))
    await settle()
    queued = [asyncio.ensure_future(parent.ask(i, timeout=None)) for i in range(3)]
    await settle()
    stopping = asyncio.ensure_future(system.shutdown())
    await settle()
    with pytest.raises(ActorDeadError):
        other.tell("refused: the system is shutting down")
    gate.set()  # the message being handled finishes normally
    await stopping
    assert await in_flight == "parent"
    for pending in queued:
        with pytest.raises(ActorDeadError):
            await pending
    # Newest first, children before their parent.
    assert journal == ["other", "child", "parent"]
    assert system.metrics.active_actors == 0
    with pytest.raises(ActorDeadError):
        child.tell("late")
    await system.shutdown()  # idempotent


async def test_shutdown_timeout_forces_and_answers() -> None:
    journal: list[str] = []
    system = ActorSystem()
    stuck = system.spawn(lambda: Node("stuck", journal))
    never = asyncio.Event()
    in_flight = asyncio.ensure_future(stuck.ask(never, timeout=None))
    await settle()
    queued = asyncio.ensure_future(stuck.ask("queued", timeout=None))
    await settle()
    await system.shutdown(timeout=0.05)
    for pending in (in_flight, queued):
        with pytest.raises(ActorDeadError):
            await pending
    assert system.metrics.active_actors == 0
    assert system.parked_workers == []


async def test_shutdown_waits_for_deferred_replies() -> None:
    class Writer(Actor):
        async def receive(self, message: Any) -> Any:
            async def commit() -> str:
                await asyncio.sleep(0)
                return f"committed {message}"

            return Deferred(commit())

    system = ActorSystem()
    ref = system.spawn(Writer)
    reply = asyncio.ensure_future(ref.ask(1))
    await settle()
    await system.shutdown()
    assert await reply == "committed 1"


async def test_stuck_deferred_is_failed_at_forced_shutdown() -> None:
    class Hanging(Actor):
        async def receive(self, message: Any) -> Any:
            return Deferred(asyncio.Event().wait())

    system = ActorSystem()
    ref = system.spawn(Hanging)
    reply = asyncio.ensure_future(ref.ask(1, timeout=None))
    await settle()
    await system.shutdown(timeout=0.05)
    with pytest.raises(ActorDeadError):
        await reply
    assert system.tasks == set()


async def test_actors_can_finish_their_work_during_shutdown() -> None:
    journal: list[str] = []
    system = ActorSystem()
    sink = system.spawn(lambda: Recorder(journal), name="sink")

    class Forwarder(Actor):
        async def receive(self, message: Any) -> Any:
            await message.wait()
            # Sent by an actor while the system stops: still delivered (sink is not stopped yet).
            return await sink.ask("forwarded")

    gate = asyncio.Event()
    forwarder = system.spawn(Forwarder)
    reply = asyncio.ensure_future(forwarder.ask(gate))
    await settle()
    stopping = asyncio.ensure_future(system.shutdown())
    await settle()
    gate.set()
    await stopping
    assert await reply == 1
    assert journal == ["forwarded"]


async def test_actor_may_stop_itself() -> None:
    journal: list[str] = []

    class Quitter(Actor):
        async def receive(self, message: Any) -> Any:
            await self.ref.stop()  # returns at once; the stop completes after this message
            return "bye"

        async def stopped(self) -> None:
            journal.append("stopped")

    async with ActorSystem() as system:
        ref = system.spawn(Quitter)
        assert await ref.ask("quit") == "bye"
        await settle()
        assert journal == ["stopped"]
        with pytest.raises(ActorDeadError):
            ref.tell("again")


async def test_spawn_refused_during_shutdown() -> None:
    system = ActorSystem()
    system.spawn(Recorder)
    await system.shutdown()
    with pytest.raises(ActorDeadError):
        system.spawn(Recorder)
