"""Clocks: the runtime reads time and sleeps only through one, so tests can drive time by hand."""

from __future__ import annotations

import asyncio
import heapq
import time
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

__all__ = ["Clock", "MonotonicClock", "TimerHandle", "VirtualClock"]


@runtime_checkable
class Clock(Protocol):
    """Monotonic time and sleeping; the runtime's only source of time."""

    def now(self) -> float:
        """Monotonic seconds."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Suspend the calling task for ``seconds`` of this clock's time."""
        ...


class TimerHandle(Protocol):
    """What ``call_later`` returns: something that can be cancelled."""

    def cancel(self) -> None:
        """Prevent the callback from running, if it has not run yet."""
        ...


class MonotonicClock:
    """Real time: the event loop's monotonic clock."""

    __slots__ = ()

    def now(self) -> float:
        """Monotonic seconds (the same source the event loop uses)."""
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        """Sleep for real."""
        await asyncio.sleep(seconds)

    def call_later(self, delay: float, callback: Callable[..., object], *args: Any) -> TimerHandle:
        """Run ``callback(*args)`` after ``delay`` seconds on the running loop."""
        return asyncio.get_running_loop().call_later(delay, callback, *args)

    def __repr__(self) -> str:
        return f"<MonotonicClock now={self.now():.3f}>"


class _VirtualTimer:
    """One scheduled callback of a VirtualClock."""

    __slots__ = ("args", "callback", "cancelled", "deadline")

    def __init__(self, deadline: float, callback: Callable[..., object], args: tuple[Any, ...]):
        self.deadline = deadline
        self.callback = callback
        self.args = args
        self.cancelled = False

    def cancel(self) -> None:
        """Drop the timer; it stays in the heap and is skipped when it comes up."""
        self.cancelled = True


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


# Upper bound on loop iterations spent waiting for the loop to go quiet, so a task that keeps
# rescheduling itself cannot hang a test forever.
_SETTLE_LIMIT = 10_000


class VirtualClock:
    """Deterministic clock for tests: time moves only when the test calls ``advance``.

    ``sleeps`` records every requested sleep, so tests can check backoff delays.
    """

    __slots__ = ("_heap", "_now", "_seq", "sleeps")

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        self._seq = 0
        self._heap: list[tuple[float, int, _VirtualTimer]] = []
        self.sleeps: list[float] = []

    def now(self) -> float:
        """The current virtual time."""
        return self._now

    @property
    def pending(self) -> int:
        """How many timers (sleeps included) wait for time to move."""
        return sum(1 for _, _, timer in self._heap if not timer.cancelled)

    def call_later(self, delay: float, callback: Callable[..., object], *args: Any) -> TimerHandle:
        """Run ``callback(*args)`` once virtual time has moved ``delay`` seconds on."""
        timer = _VirtualTimer(self._now + max(delay, 0.0), callback, args)
        self._seq += 1
        heapq.heappush(self._heap, (timer.deadline, self._seq, timer))
        return timer

    async def sleep(self, seconds: float) -> None:
        """Suspend until ``advance``/``run_until_idle`` moves time past the deadline."""
        self.sleeps.append(seconds)
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        timer = self.call_later(seconds, _wake, future)
        try:
            await future
        finally:
            timer.cancel()

    async def advance(self, seconds: float) -> None:
        """Move time ``seconds`` on, firing due timers in order and letting woken tasks run."""
        if seconds < 0:
            raise ValueError("time does not go backwards")
        target = self._now + seconds
        await _settle()
        while (timer := self._pop_due(target)) is not None:
            self._now = max(self._now, timer.deadline)
            timer.callback(*timer.args)
            await _settle()
        self._now = max(self._now, target)
        await _settle()

    async def run_until_idle(self, max_steps: int = 10_000) -> None:
        """Fire every timer, jumping time forward, until none is left (or ``max_steps`` fired)."""
        await _settle()
        for _ in range(max_steps):
            timer = self._pop_due(float("inf"))
            if timer is None:
                return
            self._now = max(self._now, timer.deadline)
            timer.callback(*timer.args)
            await _settle()
        raise RuntimeError(f"clock still busy after {max_steps} timers")

    def _pop_due(self, limit: float) -> _VirtualTimer | None:
        heap = self._heap
        while heap:
            deadline, _, timer = heap[0]
            if timer.cancelled:
                heapq.heappop(heap)
                continue
            if deadline > limit:
                return None
            heapq.heappop(heap)
            return timer
        return None

    def __repr__(self) -> str:
        return f"<VirtualClock now={self._now:g} pending={self.pending}>"


async def _settle() -> None:
    """Yield to the event loop until nothing else is ready to run."""
    loop = asyncio.get_running_loop()
    # The ready queue is an implementation detail of the default loop; other loops just get a
    # generous fixed number of turns.
    ready = getattr(loop, "_ready", None)
    for turn in range(_SETTLE_LIMIT):
        await asyncio.sleep(0)
        if ready is not None:
            if not ready:
                return
        elif turn >= 100:
            return
