"""Supervised tasks: a process's long-lived loops, restarted with backoff and stopped in order.

Actors cover work that arrives as messages; a queue writer, a poller or a listener is a loop
that runs as long as the process does. ``TaskSupervisor`` owns such loops, in the spirit of
aiojobs' ``Scheduler``::

    async with TaskSupervisor("node", restart=RestartPolicy(max_restarts=5, within=60.0)) as tasks:
        stop = asyncio.Event()
        tasks.spawn("ledger-writer", lambda: writer.run(stop), stop_event=stop)
        tasks.spawn("outbox-poll", relay.poll_forever)
        ...
        await tasks.close(timeout=10.0, graceful=True)  # leaving the block closes too

- ``factory`` takes no argument and returns a coroutine (a coroutine function, a lambda, a
  ``functools.partial``): it is called again for every restart.
- **A normal return** ends the task (``finished``); it is not restarted.
- **An exception is a crash**, logged once with its traceback. The task restarts after
  ``restart.backoff(n)`` seconds, ±jitter, on the supervisor's clock, where ``n`` counts the
  restarts within the last ``restart.within`` seconds. ``restart=None`` never restarts.
- **More than ``max_restarts`` restarts within ``within`` seconds**: the task gives up and ends
  ``failed``. Its exception is ``task.failure``, ``await task.wait()`` raises it, and
  ``on_failure(task)`` is called. (``on_limit`` does not apply: a task has no parent.)
- **``close(timeout, graceful=False)``** refuses new tasks and stops the live ones one at a
  time, newest first, so a loop stops before the loops it relies on (started earlier). Each is
  cancelled or, with ``graceful``, has its ``stopping`` event set so it can finish and return.
  ``timeout`` is one deadline for the whole close: past it, a task still running is cancelled.
  A task asked to stop is never restarted.
- **Counters** ``spawned``, ``restarts``, ``crashes``, ``failed`` and the gauge ``running``
  (tasks not ended yet), flat in ``snapshot()``; ``repr`` shows each live task's state.

Time and randomness are injected (``clock=VirtualClock()``, ``random=random.Random(seed)``), so
backoff and close timeouts are deterministic in tests. A task starts in an empty context (it
outlives whoever spawned it, an actor's message say).
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import random as _random
from collections import deque
from collections.abc import Callable
from types import EllipsisType, TracebackType

from transakt.runtime._errors import SupervisorClosed
from transakt.runtime._supervision import RestartPolicy
from transakt.runtime._typing import TaskFactory, TaskState
from transakt.runtime.clock import Clock, MonotonicClock

__all__ = ["SupervisedTask", "TaskSupervisor"]

log = logging.getLogger("transakt.runtime")

# Clock seconds a task cancelled once the deadline has passed gets to unwind before close()
# leaves it behind (only a task that swallows cancellation needs longer).
_CANCEL_GRACE = 1.0
_FINAL: frozenset[TaskState] = frozenset({"finished", "failed", "cancelled"})


class SupervisedTask:
    """One supervised loop, as ``TaskSupervisor.spawn`` returns it: live state, wait, stop."""

    __slots__ = (
        "_factory",
        "_restart_times",
        "_stop_requested",
        "_supervisor",
        "_task",
        "crashes",
        "failure",
        "name",
        "policy",
        "restarts",
        "state",
        "stopping",
    )

    def __init__(
        self,
        supervisor: TaskSupervisor,
        name: str,
        factory: TaskFactory,
        policy: RestartPolicy | None,
        stopping: asyncio.Event,
    ) -> None:
        self._supervisor = supervisor
        self._factory = factory
        self._restart_times: deque[float] = deque()
        self._stop_requested = False
        self.name = name
        #: How crashes are restarted; None: never.
        self.policy = policy
        #: Set by a graceful stop: the loop should return soon after it is set.
        self.stopping = stopping
        self.state: TaskState = "running"
        self.restarts = 0
        self.crashes = 0
        #: The exception the task gave up on (``failed`` tasks only).
        self.failure: BaseException | None = None
        # An empty context: the loop outlives whoever spawned it.
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=name, context=contextvars.Context()
        )
        self._task.add_done_callback(self._ended)

    def done(self) -> bool:
        """True once the task has ended (finished, failed or cancelled)."""
        return self._task.done()

    async def wait(self) -> None:
        """Wait for the task to end; raises its ``failure`` if it gave up."""
        if not self._task.done():
            await asyncio.wait((self._task,))
        if self.failure is not None:
            raise self.failure

    async def stop(self, timeout: float = 10.0, *, graceful: bool = False) -> None:  # noqa: ASYNC109
        """Stop this task alone, as ``TaskSupervisor.close`` would; it is not restarted."""
        await self._stop(self._supervisor.clock.now() + timeout, graceful)

    def __repr__(self) -> str:
        text = f"<SupervisedTask {self.name} {self.state} restarts={self.restarts}"
        if self.failure is not None:
            text += f" failure={self.failure!r}"
        return text + ">"

    # -- running ----------------------------------------------------------------------------

    async def _run(self) -> None:
        crash: BaseException
        while True:
            try:
                await self._factory()
            except Exception as exc:
                crash = exc
            except asyncio.CancelledError as exc:
                task = self._task
                if task.cancelling() > 0:
                    raise  # a stop: the task ends cancelled
                crash = exc  # the loop itself raised it: a crash like any other
            else:
                self.state = "finished"
                return
            delay = self._crashed(crash)
            if delay is None:
                return
            self.state = "restarting"
            await self._supervisor.clock.sleep(delay)  # a stop meanwhile cancels the task
            self.state = "running"

    def _crashed(self, crash: BaseException) -> float | None:
        """Count and log the crash (once); the delay before the restart, or None to give up."""
        supervisor = self._supervisor
        self.crashes += 1
        supervisor.crashes += 1
        policy = self.policy
        if policy is None or self._stop_requested:
            why = "crashed while stopping" if self._stop_requested else "crashed; not restarted"
            log.error("task %s %s", self.name, why, exc_info=crash)
            self._give_up(crash)
            return None
        now = supervisor.clock.now()
        times = self._restart_times
        horizon = now - policy.within
        while times and times[0] <= horizon:
            times.popleft()
        if len(times) >= policy.max_restarts:
            log.error(
                "task %s crashed; giving up after %d restarts within %gs",
                self.name,
                len(times),
                policy.within,
                exc_info=crash,
            )
            self._give_up(crash)
            return None
        delay = policy.backoff(len(times), supervisor.random)
        times.append(now)
        self.restarts += 1
        supervisor.restarts += 1
        log.error(
            "task %s crashed; restarting in %.3fs (restart %d)",
            self.name,
            delay,
            self.restarts,
            exc_info=crash,
        )
        return delay

    def _give_up(self, crash: BaseException) -> None:
        self.state = "failed"
        self.failure = crash

    def _ended(self, task: asyncio.Task[None]) -> None:
        """Done callback: settle the final state, leave the supervisor, report a failure."""
        if task.cancelled():
            if self.state not in _FINAL:
                self.state = "cancelled"
        else:
            error = task.exception()
            if error is not None:  # only a bug in this module (or a BaseException) gets here
                log.error("task %s ended abnormally", self.name, exc_info=error)
                self._give_up(error)
        supervisor = self._supervisor
        supervisor._forget(self)
        if self.state == "failed":
            supervisor.failed += 1
            callback = supervisor.on_failure
            if callback is not None:
                try:
                    callback(self)
                except Exception:
                    log.exception("on_failure of task supervisor %s failed", supervisor.name)

    # -- stopping ---------------------------------------------------------------------------

    async def _stop(self, deadline: float, graceful: bool) -> None:
        """Ask to stop (or cancel), wait until ``deadline``, then cancel what is left."""
        task = self._task
        if task.done():
            return
        self._stop_requested = True
        # A task waiting to restart has nothing to finish: it is cancelled at once.
        if graceful and self.state != "restarting":
            if self.state == "running":
                self.state = "stopping"
                self.stopping.set()
            if await self._wait_until(deadline):
                return
            log.warning("task %s did not stop in time; cancelling it", self.name)
        self.state = "stopping"
        task.cancel()
        clock = self._supervisor.clock
        if await self._wait_until(max(deadline, clock.now() + _CANCEL_GRACE)):
            return
        log.error("task %s does not end when cancelled; leaving it behind", self.name)
        task.cancel()

    async def _wait_until(self, deadline: float) -> bool:
        """Wait for the task to end, at most until ``deadline`` on the clock; True if it ended."""
        task = self._task
        clock = self._supervisor.clock
        remaining = deadline - clock.now()
        if task.done() or remaining <= 0:
            return task.done()
        sleeper = asyncio.ensure_future(clock.sleep(remaining))
        try:
            await asyncio.wait((task, sleeper), return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
        return task.done()


class TaskSupervisor:
    """Runs named long-lived loops: restarts them on crashes, stops them newest first."""

    def __init__(
        self,
        name: str = "tasks",
        *,
        restart: RestartPolicy | EllipsisType | None = ...,
        clock: Clock | None = None,
        random: _random.Random | None = None,
        on_failure: Callable[[SupervisedTask], object] | None = None,
    ) -> None:
        self.name = name
        #: The policy of tasks spawned without one (``RestartPolicy()`` unless given).
        self.restart: RestartPolicy | None = RestartPolicy() if restart is ... else restart
        self.clock: Clock = clock if clock is not None else MonotonicClock()
        self.random = random if random is not None else _random.Random()
        #: Called with a task that gave up (or crashed with no restart policy).
        self.on_failure = on_failure
        self.spawned = 0
        self.restarts = 0
        self.crashes = 0
        self.failed = 0
        self.closing = False
        self._tasks: dict[str, SupervisedTask] = {}
        self._closer: asyncio.Task[None] | None = None

    @property
    def running(self) -> int:
        """Tasks not ended yet (running, waiting to restart, or stopping)."""
        return len(self._tasks)

    @property
    def tasks(self) -> tuple[SupervisedTask, ...]:
        """The live tasks, oldest first."""
        return tuple(self._tasks.values())

    def spawn(
        self,
        name: str,
        factory: TaskFactory,
        *,
        restart: RestartPolicy | EllipsisType | None = ...,
        stop_event: asyncio.Event | None = None,
    ) -> SupervisedTask:
        """Start ``await factory()`` as task ``name`` (unique among live tasks).

        ``restart``: the policy for crashes, None for no restart; the supervisor's by default.
        ``stop_event``: the event a graceful stop sets (a fresh one unless given), so the loop
        can close over it; it is the task's ``stopping`` either way.
        """
        if self.closing:
            raise SupervisorClosed(self.name, name)
        if not callable(factory):
            if asyncio.iscoroutine(factory):
                factory.close()  # no "never awaited" warning on top of this error
            raise TypeError(
                f"task {name!r}: pass a function that returns a coroutine, not "
                f"{type(factory).__name__}: a restart calls it again"
            )
        if name in self._tasks:
            raise ValueError(f"a task named {name!r} is still running")
        policy = self.restart if restart is ... else restart
        stopping = stop_event if stop_event is not None else asyncio.Event()
        task = SupervisedTask(self, name, factory, policy, stopping)
        self._tasks[name] = task
        self.spawned += 1
        return task

    def _forget(self, task: SupervisedTask) -> None:
        if self._tasks.get(task.name) is task:
            del self._tasks[task.name]

    def snapshot(self) -> dict[str, float]:
        """Flat ``name -> value`` of the counters and the ``running`` gauge, for metrics."""
        return {
            "spawned": self.spawned,
            "restarts": self.restarts,
            "crashes": self.crashes,
            "failed": self.failed,
            "running": self.running,
        }

    async def close(self, timeout: float = 10.0, *, graceful: bool = False) -> None:  # noqa: ASYNC109
        """Refuse new tasks and stop the live ones, newest first, all within ``timeout``.

        Idempotent: a second call waits for the first. Called from one of its own tasks, it
        returns at once (that task is stopped like the others).
        """
        self.closing = True
        closer = self._closer
        if closer is None:
            closer = self._closer = asyncio.get_running_loop().create_task(
                self._close_all(timeout, graceful), context=contextvars.Context()
            )
        current = asyncio.current_task()
        if any(task._task is current for task in self._tasks.values()):
            return  # waiting here would wait for ourselves
        await asyncio.shield(closer)

    async def _close_all(self, seconds: float, graceful: bool) -> None:
        deadline = self.clock.now() + seconds
        for task in reversed(list(self._tasks.values())):
            await task._stop(deadline, graceful)

    async def __aenter__(self) -> TaskSupervisor:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        if self._closer is not None and self._closer.done():
            state = "closed"
        else:
            state = "closing" if self.closing else "open"
        live = ", ".join(f"{task.name} {task.state}" for task in self._tasks.values())
        return (
            f"<TaskSupervisor {self.name} {state} running={self.running} [{live}]"
            f" spawned={self.spawned} restarts={self.restarts} crashes={self.crashes}"
            f" failed={self.failed}>"
        )
