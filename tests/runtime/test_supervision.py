"""Crashes, restarts with backoff on virtual time, restart limits, escalation, lifecycle hooks."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from transakt.runtime import (
    Actor,
    ActorDeadError,
    ActorSystem,
    EscalatedFailure,
    RestartPolicy,
    VirtualClock,
)

from .helpers import Boom, Recorder, settle


class Lifecycle(Actor):
    """Writes every hook call into a shared journal, tagged with its instance number."""

    instances = 0

    def __init__(self, journal: list[str], crash_in_start: list[bool] | None = None) -> None:
        Lifecycle.instances += 1
        self.number = Lifecycle.instances
        self.journal = journal
        self.crash_in_start = crash_in_start if crash_in_start is not None else []

    async def started(self) -> None:
        self.journal.append(f"started#{self.number}")
        if self.crash_in_start and self.crash_in_start.pop(0):
            raise Boom("start failed")

    async def receive(self, message: Any) -> Any:
        self.journal.append(f"receive#{self.number}:{message}")
        if message == "boom":
            raise Boom("boom")
        return self.number

    async def before_restart(self, error: BaseException, message: Any) -> None:
        self.journal.append(f"before_restart#{self.number}:{type(error).__name__}:{message}")

    async def stopped(self) -> None:
        self.journal.append(f"stopped#{self.number}")


async def test_crash_fails_only_its_ask_and_restarts(
    vsystem: ActorSystem, clock: VirtualClock
) -> None:
    log: list[Any] = []
    ref = vsystem.spawn(lambda: Recorder(log), name="flaky")
    assert await ref.ask(1) == 1
    crashed = asyncio.ensure_future(ref.ask("boom"))
    after = asyncio.ensure_future(ref.ask(2))
    with pytest.raises(Boom):
        await crashed
    await clock.advance(1.0)  # past the backoff
    # A fresh instance (count restarted) handled the message queued during the restart.
    assert await after == 1
    assert vsystem.metrics.restarts == 1
    assert vsystem.metrics.messages_failed == 1
    assert "restarts=1" in repr(ref)
    assert log == [1, "boom", 2]


async def test_backoff_is_exponential_with_seeded_jitter(clock: VirtualClock) -> None:
    policy = RestartPolicy(max_restarts=10, min_backoff=0.1, max_backoff=1.0, jitter=0.2)
    async with ActorSystem(clock=clock, random=random.Random(42)) as system:
        ref = system.spawn(Recorder, policy=policy)
        for _ in range(6):
            with pytest.raises(Boom):
                await ref.ask("boom", timeout=None)
            await clock.advance(2.0)
        assert system.metrics.restarts == 6
        # A success resets the exponent.
        assert await ref.ask("ok") == 1
        with pytest.raises(Boom):
            await ref.ask("boom")
        await clock.advance(2.0)
    expected_rng = random.Random(42)
    expected = [policy.backoff(n, expected_rng) for n in [0, 1, 2, 3, 4, 5, 0]]
    assert clock.sleeps == pytest.approx(expected)
    bases = [0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 0.1]
    for delay, base in zip(clock.sleeps, bases, strict=True):
        assert base * 0.8 <= delay <= base * 1.2
    assert len(set(clock.sleeps)) == len(clock.sleeps)  # jitter actually varies


async def test_messages_sent_during_restart_keep_their_order(
    vsystem: ActorSystem, clock: VirtualClock
) -> None:
    log: list[Any] = []
    ref = vsystem.spawn(lambda: Recorder(log))
    ref.tell("boom")
    for i in range(5):
        ref.tell(i)
    await clock.advance(0)  # the loop runs until quiet; the backoff has not elapsed
    assert log == ["boom"]  # restarting: the rest waits
    for i in range(5, 10):
        ref.tell(i)
    await clock.advance(1.0)
    await ref.ask("end")
    assert log == ["boom", *range(10), "end"]


async def test_stop_after_restart_limit_fails_queued_asks(clock: VirtualClock) -> None:
    policy = RestartPolicy(max_restarts=2, within=60.0, min_backoff=0.1)
    async with ActorSystem(clock=clock) as system:
        journal: list[str] = []
        ref = system.spawn(lambda: Lifecycle(journal), name="doomed", policy=policy)
        for _ in range(3):
            ref.tell("boom")
        queued = [asyncio.ensure_future(ref.ask(i, timeout=None)) for i in range(3)]
        await clock.advance(5.0)
        for pending in queued:
            with pytest.raises(ActorDeadError) as caught:
                await pending
            assert caught.value.actor == "doomed"
            assert isinstance(caught.value.cause, Boom)
            assert caught.value.__cause__ is caught.value.cause
        assert system.metrics.restarts == 2
        assert system.actor("doomed") is None
        with pytest.raises(ActorDeadError):
            ref.tell("late")
        assert journal[-1].startswith("stopped#")  # the last instance got its stopped() hook


async def test_restart_window_forgets_old_crashes(clock: VirtualClock) -> None:
    policy = RestartPolicy(max_restarts=1, within=10.0, min_backoff=0.1)
    async with ActorSystem(clock=clock) as system:
        ref = system.spawn(Recorder, policy=policy)
        for _ in range(3):
            with pytest.raises(Boom):
                await ref.ask("boom")
            await clock.advance(11.0)  # each crash falls outside the previous one's window
        assert await ref.ask("alive") == 1
        assert system.metrics.restarts == 3


async def test_lifecycle_hooks_in_order(clock: VirtualClock) -> None:
    journal: list[str] = []
    Lifecycle.instances = 0
    async with ActorSystem(clock=clock) as system:
        ref = system.spawn(lambda: Lifecycle(journal))
        assert await ref.ask("a") == 1
        with pytest.raises(Boom):
            await ref.ask("boom")
        await clock.advance(1.0)
        assert await ref.ask("b") == 2
    assert journal == [
        "started#1",
        "receive#1:a",
        "receive#1:boom",
        "before_restart#1:Boom:boom",
        "started#2",
        "receive#2:b",
        "stopped#2",
    ]


async def test_crash_in_started_counts_as_crash(clock: VirtualClock) -> None:
    journal: list[str] = []
    Lifecycle.instances = 0
    crashes = [True, True, False]
    async with ActorSystem(clock=clock, random=random.Random(1)) as system:
        ref = system.spawn(lambda: Lifecycle(journal, crashes))
        reply = asyncio.ensure_future(ref.ask("hello", timeout=None))
        await clock.advance(10.0)
        assert await reply == 3
        assert system.metrics.restarts == 2
        assert len(clock.sleeps) == 2
        assert clock.sleeps[1] > clock.sleeps[0]  # consecutive: the backoff grows
    assert journal[:5] == [
        "started#1",
        "before_restart#1:Boom:None",
        "started#2",
        "before_restart#2:Boom:None",
        "started#3",
    ]


class Parent(Actor):
    """Spawns one child that escalates when it gives up."""

    def __init__(self, journal: list[str]) -> None:
        self.journal = journal

    async def started(self) -> None:
        self.journal.append("parent started")
        policy = RestartPolicy(max_restarts=1, min_backoff=0.1, on_limit="escalate")
        self.system.spawn(Recorder, name="child", policy=policy, parent=self.ref)

    async def receive(self, message: Any) -> Any:
        return "parent ok"

    async def before_restart(self, error: BaseException, message: Any) -> None:
        self.journal.append(f"parent restart: {type(error).__name__}")
        assert isinstance(error, EscalatedFailure)
        assert error.child == "child" and isinstance(error.cause, Boom)


async def test_escalation_restarts_the_parent(clock: VirtualClock) -> None:
    journal: list[str] = []
    async with ActorSystem(clock=clock) as system:
        parent = system.spawn(lambda: Parent(journal), name="parent")
        assert await parent.ask("hi") == "parent ok"
        child = system.actor("child")
        assert child is not None
        with pytest.raises(Boom):
            await child.ask("boom")
        await clock.advance(1.0)
        with pytest.raises(Boom):
            await child.ask("boom")  # second crash within the window: over the limit
        await clock.advance(1.0)
        assert await parent.ask("still there?") == "parent ok"
        assert journal == ["parent started", "parent restart: EscalatedFailure", "parent started"]
        assert system.metrics.restarts == 2  # the child's one, then the parent's
        with pytest.raises(ActorDeadError):
            child.tell("old child is gone")
        fresh = system.actor("child")
        assert fresh is not None and fresh != child  # re-spawned by the new parent
        assert await fresh.ask(1) == 1


async def test_stop_interrupts_a_restart_backoff(clock: VirtualClock) -> None:
    async with ActorSystem(clock=clock) as system:
        ref = system.spawn(Recorder, policy=RestartPolicy(min_backoff=100.0, max_backoff=100.0))
        with pytest.raises(Boom):
            await ref.ask("boom")
        waiting = asyncio.ensure_future(ref.ask("queued", timeout=None))
        await settle()
        await ref.stop()  # does not wait for virtual time
        with pytest.raises(ActorDeadError):
            await waiting


def test_policy_validation_and_backoff_cap() -> None:
    policy = RestartPolicy(min_backoff=1.0, max_backoff=4.0, jitter=0.0)
    assert [policy.backoff(n, random.Random()) for n in range(4)] == [1.0, 2.0, 4.0, 4.0]
    assert policy.backoff(10_000, random.Random()) == 4.0
    for bad in (
        {"max_restarts": -1},
        {"within": 0},
        {"min_backoff": 2.0, "max_backoff": 1.0},
        {"jitter": 1.5},
        {"on_limit": "explode"},
    ):
        with pytest.raises(ValueError):
            RestartPolicy(**bad)


async def test_reply_errors_are_answers_not_crashes(system: ActorSystem) -> None:
    class Refused(Exception):
        pass

    class Strict(Actor):
        reply_errors = (Refused,)

        def __init__(self) -> None:
            self.seen = 0

        async def receive(self, message: Any) -> Any:
            self.seen += 1
            if message == "no":
                raise Refused("refused")
            return self.seen

    ref = system.spawn(Strict)
    assert await ref.ask("yes") == 1
    with pytest.raises(Refused):
        await ref.ask("no")
    assert await ref.ask("yes") == 3  # same instance: state kept
    assert system.metrics.restarts == 0
    assert system.metrics.messages_failed == 0
