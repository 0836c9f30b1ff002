"""TaskSupervisor: restarts with backoff, the restart limit, ordered and graceful close."""

from __future__ import annotations

import asyncio
import gc
import logging
import random
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from transakt.runtime import (
    ActorSystemError,
    RestartPolicy,
    SupervisedTask,
    SupervisorClosed,
    TaskSupervisor,
    VirtualClock,
)

from .helpers import Boom

NO_JITTER = RestartPolicy(max_restarts=5, within=60.0, min_backoff=1.0, max_backoff=8.0, jitter=0)


@pytest.fixture
async def tasks(clock: VirtualClock) -> AsyncIterator[TaskSupervisor]:
    """A supervisor on virtual time, with restarts of 1, 2, 4, 8 s and no jitter."""
    supervisor = TaskSupervisor("test", restart=NO_JITTER, clock=clock, random=random.Random(7))
    yield supervisor
    await supervisor.close(timeout=0)
    assert supervisor.running == 0


def crashing(
    times: int, runs: list[int], done: asyncio.Event | None = None
) -> Callable[[], Awaitable[None]]:
    """A loop that crashes on its first ``times`` runs, then waits for ``done`` (or returns)."""

    async def loop() -> None:
        runs.append(len(runs))
        if len(runs) <= times:
            raise Boom(f"run {len(runs)}")
        if done is not None:
            await done.wait()

    return loop


def crash_records(caplog: pytest.LogCaptureFixture, name: str) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.getMessage().startswith(f"task {name} crashed") and r.exc_info
    ]


async def test_crash_restarts_with_backoff(
    tasks: TaskSupervisor, clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    runs: list[int] = []
    forever = asyncio.Event()
    with caplog.at_level(logging.ERROR, logger="transakt.runtime"):
        task = tasks.spawn("poller", crashing(3, runs, forever))
        await clock.advance(0)
        assert (runs, task.state) == ([0], "restarting")
        await clock.advance(0.999)
        assert runs == [0]  # the first backoff is 1 s
        await clock.advance(0.001)
        assert runs == [0, 1]
        await clock.advance(2.0)
        await clock.advance(4.0)
        assert runs == [0, 1, 2, 3]
    assert clock.sleeps == [1.0, 2.0, 4.0]  # min_backoff * 2**n, n = restarts in the window
    assert task.state == "running" and not task.done()
    assert (task.restarts, task.crashes, task.failure) == (3, 3, None)
    records = crash_records(caplog, "poller")
    assert len(records) == 3  # each crash logged exactly once, with its traceback
    assert [str(r.exc_info[1]) for r in records if r.exc_info] == ["run 1", "run 2", "run 3"]
    assert "restarting in 1.000s (restart 1)" in records[0].getMessage()
    assert tasks.snapshot() == {
        "spawned": 1,
        "restarts": 3,
        "crashes": 3,
        "failed": 0,
        "running": 1,
    }


async def test_backoff_jitter_comes_from_the_injected_random(clock: VirtualClock) -> None:
    policy = RestartPolicy(min_backoff=1.0, max_backoff=8.0, jitter=0.2)
    delays = []
    for _ in range(2):
        local = VirtualClock()
        supervisor = TaskSupervisor(restart=policy, clock=local, random=random.Random(3))
        runs: list[int] = []
        supervisor.spawn("t", crashing(3, runs))
        await local.run_until_idle()
        assert runs == [0, 1, 2, 3]
        delays.append(local.sleeps)
        await supervisor.close()
    assert delays[0] == delays[1]  # same seed, same delays
    for n, delay in enumerate(delays[0]):
        assert 0.8 * 2**n <= delay <= 1.2 * 2**n


async def test_restart_limit_gives_up_and_reports(
    clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    failed: list[SupervisedTask] = []
    policy = RestartPolicy(max_restarts=2, within=10.0, min_backoff=1.0, jitter=0)
    supervisor = TaskSupervisor(restart=policy, clock=clock, on_failure=failed.append)
    runs: list[int] = []
    with caplog.at_level(logging.ERROR, logger="transakt.runtime"):
        task = supervisor.spawn("flaky", crashing(100, runs))
        await clock.run_until_idle()
    assert runs == [0, 1, 2]  # two restarts, then the third crash gives up
    assert task.state == "failed" and task.done()
    assert isinstance(task.failure, Boom) and str(task.failure) == "run 3"
    assert failed == [task]
    with pytest.raises(Boom, match="run 3"):
        await task.wait()
    assert supervisor.snapshot() == {
        "spawned": 1,
        "restarts": 2,
        "crashes": 3,
        "failed": 1,
        "running": 0,
    }
    records = crash_records(caplog, "flaky")
    assert len(records) == 3
    assert "giving up after 2 restarts within 10s" in records[-1].getMessage()
    supervisor.spawn("flaky", crashing(0, []))  # a failed task's name is free again
    await supervisor.close()


async def test_crashes_spread_out_restart_for_ever(clock: VirtualClock) -> None:
    policy = RestartPolicy(max_restarts=1, within=10.0, min_backoff=1.0, jitter=0)
    supervisor = TaskSupervisor(restart=policy, clock=clock)
    runs: list[int] = []
    gate = asyncio.Event()

    async def loop() -> None:
        runs.append(len(runs))
        await gate.wait()
        gate.clear()
        raise Boom("late")

    task = supervisor.spawn("slow-crash", loop)
    for expected in range(1, 5):
        await clock.advance(0)
        gate.set()
        await clock.advance(11.0)  # each crash comes after the last one left the window
        assert len(runs) == expected + 1
    assert task.state == "running" and task.restarts == 4
    assert clock.sleeps == [1.0] * 4  # an old crash no longer lengthens the backoff
    await supervisor.close()


async def test_normal_return_ends_the_task(tasks: TaskSupervisor, clock: VirtualClock) -> None:
    calls: list[str] = []

    async def once() -> str:
        calls.append("ran")
        return "ignored"

    task = tasks.spawn("once", once)
    await task.wait()
    await clock.run_until_idle()
    assert calls == ["ran"]
    assert task.state == "finished" and task.failure is None
    assert (task.restarts, tasks.running, tasks.tasks) == (0, 0, ())
    assert clock.sleeps == []


async def test_no_restart_policy_fails_on_first_crash(
    tasks: TaskSupervisor, clock: VirtualClock
) -> None:
    runs: list[int] = []
    task = tasks.spawn("fragile", crashing(1, runs), restart=None)
    with pytest.raises(Boom):
        await task.wait()
    assert runs == [0] and task.state == "failed" and tasks.failed == 1
    assert task.policy is None and tasks.restart is NO_JITTER


async def test_close_stops_newest_first(tasks: TaskSupervisor) -> None:
    journal: list[str] = []
    started = asyncio.Event()

    def loop(name: str) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            try:
                if name == "c":
                    started.set()
                await asyncio.Event().wait()
            finally:
                journal.append(name)

        return run

    spawned = [tasks.spawn(name, loop(name)) for name in "abc"]
    await started.wait()
    assert [t.name for t in tasks.tasks] == ["a", "b", "c"]
    await tasks.close()
    assert journal == ["c", "b", "a"]
    assert [t.state for t in spawned] == ["cancelled"] * 3
    assert tasks.running == 0
    await spawned[0].wait()  # a stopped task is no failure


async def test_graceful_close_lets_each_task_finish_in_turn(
    tasks: TaskSupervisor, clock: VirtualClock
) -> None:
    journal: list[str] = []
    shared = asyncio.Event()

    def loop(name: str, stop: asyncio.Event) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            await stop.wait()
            await clock.sleep(1.0)  # some work to finish, e.g. committing a queue
            journal.append(name)

        return run

    first = tasks.spawn("writer", loop("writer", shared), stop_event=shared)
    second = tasks.spawn("producer", lambda: loop("producer", second.stopping)())
    assert first.stopping is shared and second.stopping is not shared
    closing = asyncio.ensure_future(tasks.close(timeout=10.0, graceful=True))
    await clock.advance(0)
    assert second.stopping.is_set() and not shared.is_set()  # newest first
    assert repr(second) == "<SupervisedTask producer stopping restarts=0>"
    await clock.advance(1.0)
    assert journal == ["producer"] and shared.is_set()
    await clock.advance(1.0)
    await closing
    assert journal == ["producer", "writer"]
    assert (first.state, second.state) == ("finished", "finished")


async def test_close_timeout_cancels_what_is_left(
    tasks: TaskSupervisor, clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    cancelled = asyncio.Event()

    async def stubborn() -> None:
        try:
            await asyncio.Event().wait()  # never looks at its stop event
        except asyncio.CancelledError:
            cancelled.set()
            raise

    task = tasks.spawn("stubborn", stubborn)
    with caplog.at_level(logging.WARNING, logger="transakt.runtime"):
        closing = asyncio.ensure_future(tasks.close(timeout=5.0, graceful=True))
        await clock.advance(4.9)
        assert not closing.done() and not cancelled.is_set()
        assert (task.state, "closing" in repr(tasks)) == ("stopping", True)
        await clock.advance(0.1)
        await closing
    assert cancelled.is_set() and task.state == "cancelled"
    assert "task stubborn did not stop in time; cancelling it" in caplog.messages


async def test_a_task_that_ignores_cancellation_is_cancelled_again(
    tasks: TaskSupervisor, clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    swallowed = asyncio.Event()

    async def deaf() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            swallowed.set()  # a bug: swallows the first cancellation and carries on
        await asyncio.Event().wait()

    task = tasks.spawn("deaf", deaf)
    closing = asyncio.ensure_future(tasks.close(timeout=3.0))
    await clock.advance(0)
    assert swallowed.is_set() and not closing.done()
    assert (task.state, tasks.running) == ("stopping", 1)
    with caplog.at_level(logging.ERROR, logger="transakt.runtime"):
        await clock.advance(3.0)
        await closing
    assert "task deaf does not end when cancelled; leaving it behind" in caplog.messages
    await clock.advance(0)
    assert task.state == "cancelled"  # the second cancellation got through


async def test_close_interrupts_a_restart_backoff(clock: VirtualClock) -> None:
    policy = RestartPolicy(min_backoff=100.0, max_backoff=100.0, jitter=0)
    supervisor = TaskSupervisor(restart=policy, clock=clock)
    runs: list[int] = []
    task = supervisor.spawn("slow", crashing(1, runs))
    await clock.advance(0)
    assert (task.state, task.restarts) == ("restarting", 1)
    await supervisor.close(graceful=True)  # does not wait for virtual time
    assert runs == [0] and task.state == "cancelled"


async def test_exceptions_are_never_lost(
    tasks: TaskSupervisor, clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    loop = asyncio.get_running_loop()
    loop_errors: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _, context: loop_errors.append(context))
    try:
        await crash_in_every_way(tasks, clock, caplog)
        gc.collect()  # "exception was never retrieved" is reported when a task is collected
    finally:
        loop.set_exception_handler(None)
    assert loop_errors == []


async def crash_in_every_way(
    tasks: TaskSupervisor, clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    runs: list[int] = []

    async def cancels_itself() -> None:
        runs.append(1)
        if len(runs) == 1:
            raise asyncio.CancelledError  # raised by the loop, not a stop: a crash

    async def fails_on_stop() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            raise Boom("while stopping")

    def not_a_coroutine() -> Awaitable[None]:
        raise Boom("the factory itself")

    with caplog.at_level(logging.ERROR, logger="transakt.runtime"):
        selfish = tasks.spawn("selfish", cancels_itself)
        bad = tasks.spawn("bad-factory", not_a_coroutine, restart=None)
        dying = tasks.spawn("dying", fails_on_stop)
        await clock.advance(1.0)
        assert runs == [1, 1] and selfish.state == "finished" and selfish.restarts == 1
        assert bad.state == "failed" and str(bad.failure) == "the factory itself"
        await dying.stop()
    assert dying.state == "failed" and str(dying.failure) == "while stopping"
    assert dying.restarts == 0  # a task asked to stop is not restarted
    assert len(crash_records(caplog, "dying")) == 1
    assert len(crash_records(caplog, "selfish")) == 1
    assert tasks.failed == 2 and tasks.crashes == 3


async def test_on_failure_errors_are_logged(
    clock: VirtualClock, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(task: SupervisedTask) -> None:
        raise RuntimeError("alerting is down")

    supervisor = TaskSupervisor(restart=None, clock=clock, on_failure=broken)
    with caplog.at_level(logging.ERROR, logger="transakt.runtime"):
        task = supervisor.spawn("t", crashing(1, []))
        await clock.run_until_idle()
    assert task.state == "failed"
    assert "on_failure of task supervisor tasks failed" in caplog.messages
    await supervisor.close()


async def test_repr_shows_live_state(tasks: TaskSupervisor, clock: VirtualClock) -> None:
    gate = asyncio.Event()
    tasks.spawn("reader", gate.wait)
    tasks.spawn("poller", crashing(1, [], asyncio.Event()))
    await clock.advance(0)
    assert repr(tasks) == (
        "<TaskSupervisor test open running=2 [reader running, poller restarting]"
        " spawned=2 restarts=1 crashes=1 failed=0>"
    )
    gate.set()
    await clock.advance(1.0)
    assert repr(tasks.tasks[0]) == "<SupervisedTask poller running restarts=1>"
    await tasks.close()
    assert repr(tasks) == (
        "<TaskSupervisor test closed running=0 [] spawned=2 restarts=1 crashes=1 failed=0>"
    )
    failing = TaskSupervisor(restart=None)
    failed = failing.spawn("x", crashing(1, []))
    with pytest.raises(Boom):
        await failed.wait()
    assert repr(failed) == "<SupervisedTask x failed restarts=0 failure=Boom('run 1')>"


async def test_spawn_checks_its_arguments(tasks: TaskSupervisor) -> None:
    gate = asyncio.Event()
    tasks.spawn("one", gate.wait)
    with pytest.raises(ValueError, match="still running"):
        tasks.spawn("one", gate.wait)
    coroutine = gate.wait()
    with pytest.raises(TypeError, match="not coroutine"):
        tasks.spawn("two", coroutine)  # type: ignore[arg-type]
    await tasks.close()
    with pytest.raises(SupervisorClosed) as caught:
        tasks.spawn("late", gate.wait)
    assert isinstance(caught.value, ActorSystemError)
    assert (caught.value.supervisor, caught.value.task) == ("test", "late")


async def test_context_manager_and_idempotent_close(clock: VirtualClock) -> None:
    stopped = asyncio.Event()

    async def loop() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            stopped.set()

    async with TaskSupervisor(clock=clock) as supervisor:
        task = supervisor.spawn("loop", loop)
        await clock.advance(0)
    assert stopped.is_set() and task.state == "cancelled"
    await asyncio.gather(supervisor.close(), supervisor.close())  # idempotent


async def test_close_from_inside_a_task(clock: VirtualClock) -> None:
    supervisor = TaskSupervisor(clock=clock)
    other_stopped = asyncio.Event()

    async def other() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            other_stopped.set()

    async def quitter() -> None:
        await supervisor.close()  # returns at once; this task is stopped like the others
        await asyncio.Event().wait()

    supervisor.spawn("other", other)
    quitting = supervisor.spawn("quitter", quitter)
    await quitting.wait()
    await supervisor.close()
    assert other_stopped.is_set() and quitting.state == "cancelled"
