"""A circuit breaker for calls to a flaky dependency: closed, open, half-open, one probe."""

from __future__ import annotations

import asyncio
import logging
import random as _random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from transakt.errors import TransaktError

__all__ = [
    "BreakerSnapshot",
    "BreakerState",
    "CallTimedOut",
    "CircuitBreaker",
    "CircuitOpen",
    "StateListener",
]

log = logging.getLogger(__name__)

T = TypeVar("T")


class BreakerState(StrEnum):
    """Closed lets calls through, open fails them fast, half-open lets one probe through."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


StateListener = Callable[[BreakerState, BreakerState], None]


class CircuitOpen(TransaktError):
    """The breaker refused the call without making it; try again after ``retry_after`` s."""

    def __init__(self, retry_after: float, state: BreakerState) -> None:
        super().__init__(f"circuit {state}: retry after {retry_after:.2f}s")
        self.retry_after = retry_after
        self.state = state


class CallTimedOut(TransaktError, TimeoutError):
    """The guarded call took longer than the breaker's call timeout (counts as a failure)."""

    def __init__(self, timeout: float) -> None:
        super().__init__(f"call took longer than {timeout:g}s")
        self.timeout = timeout


def _any_exception(error: BaseException) -> bool:
    return isinstance(error, Exception)


@dataclass(frozen=True, slots=True)
class BreakerSnapshot:
    """The breaker's state and counters at one moment, for /readyz and /metrics."""

    state: BreakerState
    consecutive_failures: int
    failure_threshold: int
    reset_timeout: float
    retry_after: float
    opened_total: int
    rejected_total: int
    failures_total: int
    successes_total: int

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict; ``state`` as its string value."""
        return {
            "state": self.state.value,
            "consecutive_failures": self.consecutive_failures,
            "failure_threshold": self.failure_threshold,
            "reset_timeout": self.reset_timeout,
            "retry_after": self.retry_after,
            "opened_total": self.opened_total,
            "rejected_total": self.rejected_total,
            "failures_total": self.failures_total,
            "successes_total": self.successes_total,
        }


class CircuitBreaker:
    """Guards async calls: opens after consecutive failures, probes one call at a time to close.

    Time comes from ``clock`` and jitter from ``random``, both injectable so that tests run on
    virtual time. The open -> half-open step happens lazily, when a call or a reader looks.
    """

    def __init__(
        self,
        failure_threshold: int = 5,
        call_timeout: float | None = 2.0,
        reset_timeout: float = 5.0,
        max_reset_timeout: float = 60.0,
        jitter: float = 0.2,
        clock: Callable[[], float] = time.monotonic,
        random: _random.Random | None = None,
        is_failure: Callable[[BaseException], bool] = _any_exception,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        if reset_timeout <= 0 or max_reset_timeout < reset_timeout:
            raise ValueError("need 0 < reset_timeout <= max_reset_timeout")
        if not 0 <= jitter < 1:
            raise ValueError("jitter must be in [0, 1)")
        if call_timeout is not None and call_timeout <= 0:
            raise ValueError("call_timeout must be positive (or None for no timeout)")
        self.failure_threshold = failure_threshold
        self.call_timeout = call_timeout
        self.base_reset_timeout = reset_timeout
        self.max_reset_timeout = max_reset_timeout
        self.jitter = jitter
        self.is_failure = is_failure
        self.on_state_change: list[StateListener] = []
        self.opened_total = 0
        self.rejected_total = 0
        self.failures_total = 0
        self.successes_total = 0
        self._clock = clock
        self._random = random if random is not None else _random.Random()
        self._state = BreakerState.CLOSED
        self._consecutive_failures = 0
        # The nominal wait of the current (or next) open period; doubles on each failed probe.
        self._reset_timeout = reset_timeout
        self._open_until = 0.0
        self._probe_in_flight = False
        # Bumped on every transition: a call admitted under an older generation (a slow call
        # from before the breaker opened, say) must not move the state when it finally ends.
        self._generation = 0

    def __repr__(self) -> str:
        return (
            f"<CircuitBreaker {self.state.value} failures={self._consecutive_failures}"
            f"/{self.failure_threshold} retry_after={self.retry_after():.2f}>"
        )

    @property
    def state(self) -> BreakerState:
        """The current state (an open breaker whose wait is over reads as half-open)."""
        self._refresh()
        return self._state

    def retry_after(self) -> float:
        """Seconds until a call would be let through (0 when one would be now)."""
        self._refresh()
        if self._state is BreakerState.OPEN:
            return max(0.0, self._open_until - self._clock())
        if self._state is BreakerState.HALF_OPEN and self._probe_in_flight:
            return self.call_timeout or 0.0
        return 0.0

    def allow(self) -> bool:
        """True when a call made now would be let through (nothing is reserved by asking)."""
        return self.retry_after() == 0.0

    def snapshot(self) -> BreakerSnapshot:
        """State and counters, for health checks and metrics."""
        return BreakerSnapshot(
            state=self.state,
            consecutive_failures=self._consecutive_failures,
            failure_threshold=self.failure_threshold,
            reset_timeout=self._reset_timeout,
            retry_after=self.retry_after(),
            opened_total=self.opened_total,
            rejected_total=self.rejected_total,
            failures_total=self.failures_total,
            successes_total=self.successes_total,
        )

    async def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run ``fn()`` under the breaker and the call timeout, or raise CircuitOpen at once."""
        generation, probe = self._admit()
        try:
            result = await self._run(fn)
        except Exception as error:
            if isinstance(error, CallTimedOut) or self.is_failure(error):
                self._on_failure(generation)
            else:
                # The dependency answered, with a refusal the caller caused: it is healthy.
                self._on_success(generation)
            raise
        # A cancellation (or KeyboardInterrupt) says nothing about the dependency: not counted.
        else:
            self._on_success(generation)
            return result
        finally:
            if probe:
                # Cancelled or not, the probe slot is free again for the next caller.
                self._probe_in_flight = False

    async def _run(self, fn: Callable[[], Awaitable[T]]) -> T:
        if self.call_timeout is None:
            return await fn()
        deadline = asyncio.timeout(self.call_timeout)
        try:
            async with deadline:
                return await fn()
        except TimeoutError as error:
            # Only our own deadline becomes CallTimedOut; a TimeoutError that fn raised itself
            # goes through is_failure like any other error.
            if deadline.expired():
                raise CallTimedOut(self.call_timeout) from error
            raise

    def _admit(self) -> tuple[int, bool]:
        """Let a call through (returning its generation and whether it is the probe) or raise."""
        self._refresh()
        if self._state is BreakerState.CLOSED:
            return self._generation, False
        if self._state is BreakerState.HALF_OPEN and not self._probe_in_flight:
            self._probe_in_flight = True
            return self._generation, True
        self.rejected_total += 1
        raise CircuitOpen(self.retry_after(), self._state)

    def _refresh(self) -> None:
        if self._state is BreakerState.OPEN and self._clock() >= self._open_until:
            self._transition(BreakerState.HALF_OPEN)

    def _on_success(self, generation: int) -> None:
        self.successes_total += 1
        if generation != self._generation:
            return
        self._consecutive_failures = 0
        if self._state is BreakerState.HALF_OPEN:
            self._reset_timeout = self.base_reset_timeout
            self._transition(BreakerState.CLOSED)

    def _on_failure(self, generation: int) -> None:
        self.failures_total += 1
        if generation != self._generation:
            return
        if self._state is BreakerState.HALF_OPEN:
            # The probe failed: the dependency is still sick, so wait longer next time.
            self._reset_timeout = min(self._reset_timeout * 2, self.max_reset_timeout)
            self._open()
            return
        self._consecutive_failures += 1
        if self._consecutive_failures >= self.failure_threshold:
            self._open()

    def _open(self) -> None:
        # Jitter only shortens the wait: it never exceeds the cap, and many breakers opened
        # together (one per node) still spread their probes.
        wait = self._reset_timeout * (1 - self.jitter * self._random.random())
        self._open_until = self._clock() + wait
        self.opened_total += 1
        self._transition(BreakerState.OPEN)

    def _transition(self, new: BreakerState) -> None:
        old = self._state
        self._state = new
        self._generation += 1
        if new is BreakerState.CLOSED:
            self._consecutive_failures = 0
        for listener in list(self.on_state_change):
            try:
                listener(old, new)
            except Exception:
                # A broken listener must not break the breaker (or the call that moved it).
                log.exception("circuit breaker state listener failed")
