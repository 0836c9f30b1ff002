"""The circuit breaker on virtual time: every transition, one probe, growing jittered waits."""

from __future__ import annotations

import asyncio
import random

import pytest

from transakt.gateway.breaker import (
    BreakerState,
    CallTimedOut,
    CircuitBreaker,
    CircuitOpen,
)


class FakeClock:
    """Time that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Boom(Exception):
    """The dependency failed."""


async def ok() -> str:
    return "ok"


async def boom() -> str:
    raise Boom


def make(clock: FakeClock, **options: object) -> CircuitBreaker:
    defaults: dict[str, object] = {
        "failure_threshold": 3,
        "reset_timeout": 5.0,
        "max_reset_timeout": 40.0,
        "jitter": 0.0,
        "clock": clock,
        "random": random.Random(7),
    }
    defaults.update(options)
    return CircuitBreaker(**defaults)  # type: ignore[arg-type]


def state(breaker: CircuitBreaker) -> BreakerState:
    """Read the state anew (a plain attribute read would let mypy keep an earlier narrowing)."""
    return breaker.state


async def fail(breaker: CircuitBreaker, times: int = 1) -> None:
    for _ in range(times):
        with pytest.raises(Boom):
            await breaker.call(boom)


async def trip(breaker: CircuitBreaker) -> None:
    await fail(breaker, breaker.failure_threshold)
    assert state(breaker) is BreakerState.OPEN


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


async def test_closed_lets_calls_through(clock: FakeClock) -> None:
    breaker = make(clock)
    assert state(breaker) is BreakerState.CLOSED
    assert [await breaker.call(ok) for _ in range(10)] == ["ok"] * 10
    assert breaker.successes_total == 10
    assert breaker.allow()


async def test_consecutive_failures_open_it(clock: FakeClock) -> None:
    breaker = make(clock)
    await fail(breaker, 2)
    assert state(breaker) is BreakerState.CLOSED
    await fail(breaker)
    assert state(breaker) is BreakerState.OPEN
    assert (breaker.opened_total, breaker.failures_total) == (1, 3)


async def test_a_success_resets_the_failure_count(clock: FakeClock) -> None:
    breaker = make(clock)
    await fail(breaker, 2)
    await breaker.call(ok)
    await fail(breaker, 2)
    assert state(breaker) is BreakerState.CLOSED


async def test_open_fails_fast_without_calling(clock: FakeClock) -> None:
    breaker = make(clock)
    await trip(breaker)
    calls = 0

    async def counted() -> str:
        nonlocal calls
        calls += 1
        return "ok"

    clock.advance(2.0)
    with pytest.raises(CircuitOpen) as caught:
        await breaker.call(counted)
    assert calls == 0
    assert caught.value.retry_after == pytest.approx(3.0)
    assert caught.value.state is BreakerState.OPEN
    assert breaker.rejected_total == 1
    assert not breaker.allow()


async def test_after_the_reset_timeout_a_successful_probe_closes_it(clock: FakeClock) -> None:
    breaker = make(clock)
    await trip(breaker)
    clock.advance(4.999)
    assert state(breaker) is BreakerState.OPEN
    clock.advance(0.001)
    assert state(breaker) is BreakerState.HALF_OPEN
    assert breaker.allow()
    assert await breaker.call(ok) == "ok"
    assert state(breaker) is BreakerState.CLOSED
    assert breaker.snapshot().reset_timeout == 5.0


async def test_a_failed_probe_reopens_with_a_doubled_wait_up_to_the_cap(clock: FakeClock) -> None:
    breaker = make(clock)
    await trip(breaker)
    waits: list[float] = []
    for _ in range(6):
        clock.advance(breaker.retry_after())
        assert state(breaker) is BreakerState.HALF_OPEN
        await fail(breaker)
        assert state(breaker) is BreakerState.OPEN
        waits.append(breaker.retry_after())
    assert waits == [10.0, 20.0, 40.0, 40.0, 40.0, 40.0]
    # Success resets the wait to the base value.
    clock.advance(40.0)
    await breaker.call(ok)
    await trip(breaker)
    assert breaker.retry_after() == 5.0


async def test_jitter_stays_within_bounds_and_spreads(clock: FakeClock) -> None:
    breaker = make(clock, jitter=0.2, random=random.Random(12345), max_reset_timeout=1e9)
    await trip(breaker)
    nominal = 5.0
    seen = []
    for _ in range(12):
        wait = breaker.retry_after()
        assert nominal * 0.8 <= wait <= nominal
        seen.append(wait / nominal)
        clock.advance(wait)
        await fail(breaker)
        nominal *= 2
    assert len(set(seen)) > 6  # the injected random really spreads the waits
    # At the cap, jitter only shortens: the wait never exceeds max_reset_timeout.
    capped = make(clock, jitter=0.2, random=random.Random(1), max_reset_timeout=8.0)
    await trip(capped)
    for _ in range(10):
        clock.advance(capped.retry_after())
        await fail(capped)
        assert 6.4 <= capped.retry_after() <= 8.0


async def test_the_same_seed_gives_the_same_waits(clock: FakeClock) -> None:
    async def waits(seed: int) -> list[float]:
        breaker = make(clock, jitter=0.5, random=random.Random(seed))
        await trip(breaker)
        found = [breaker.retry_after()]
        for _ in range(3):
            clock.advance(breaker.retry_after())
            await fail(breaker)
            found.append(breaker.retry_after())
        return found

    # The shared clock has moved on between runs: compare up to float rounding.
    assert await waits(3) == pytest.approx(await waits(3))
    assert await waits(3) != pytest.approx(await waits(4))


async def test_half_open_lets_exactly_one_probe_through(clock: FakeClock) -> None:
    breaker = make(clock)
    await trip(breaker)
    clock.advance(5.0)
    release = asyncio.Event()
    probing = asyncio.Event()
    started = 0

    async def slow_probe() -> str:
        nonlocal started
        started += 1
        probing.set()
        await release.wait()
        return "probe"

    probe = asyncio.create_task(breaker.call(slow_probe))
    await asyncio.wait_for(probing.wait(), 5.0)  # the probe is in flight
    others = await asyncio.gather(
        *(breaker.call(slow_probe) for _ in range(10)), return_exceptions=True
    )
    assert all(isinstance(result, CircuitOpen) for result in others)
    assert all(r.state is BreakerState.HALF_OPEN for r in others if isinstance(r, CircuitOpen))
    assert started == 1
    assert breaker.rejected_total == 10
    release.set()
    assert await probe == "probe"
    assert state(breaker) is BreakerState.CLOSED
    assert await breaker.call(ok) == "ok"


async def test_a_cancelled_probe_frees_the_slot_and_is_no_failure(clock: FakeClock) -> None:
    breaker = make(clock, is_failure=lambda error: True)
    await trip(breaker)
    clock.advance(5.0)
    probing = asyncio.Event()

    async def endless_probe() -> bool:
        probing.set()
        return await asyncio.Event().wait()

    probe = asyncio.create_task(breaker.call(endless_probe))
    await asyncio.wait_for(probing.wait(), 5.0)  # the probe is in flight
    with pytest.raises(CircuitOpen):
        await breaker.call(ok)
    probe.cancel()
    with pytest.raises(asyncio.CancelledError):
        await probe
    assert state(breaker) is BreakerState.HALF_OPEN
    assert breaker.failures_total == 3  # the three that tripped it; the cancellation is not one
    assert await breaker.call(ok) == "ok"
    assert state(breaker) is BreakerState.CLOSED


async def test_call_timeout_counts_as_failure(clock: FakeClock) -> None:
    breaker = make(clock, failure_threshold=1, call_timeout=0.05)
    loop = asyncio.get_running_loop()
    began = loop.time()
    with pytest.raises(CallTimedOut) as caught:
        await breaker.call(asyncio.Event().wait)
    assert loop.time() - began < 0.2
    assert isinstance(caught.value, TimeoutError)
    assert breaker.failures_total == 1
    assert state(breaker) is BreakerState.OPEN


async def test_exceptions_that_are_not_failures_do_not_trip_it(clock: FakeClock) -> None:
    breaker = make(clock, is_failure=lambda error: not isinstance(error, ValueError))

    async def refused() -> str:
        raise ValueError("the caller's mistake")

    for _ in range(10):
        with pytest.raises(ValueError, match="mistake"):
            await breaker.call(refused)
    assert state(breaker) is BreakerState.CLOSED
    assert breaker.failures_total == 0
    # ... and they count as an answer: they reset the run of real failures.
    await fail(breaker, 2)
    with pytest.raises(ValueError, match="mistake"):
        await breaker.call(refused)
    await fail(breaker, 2)
    assert state(breaker) is BreakerState.CLOSED


async def test_a_timeout_raised_by_the_call_itself_is_judged_by_is_failure(
    clock: FakeClock,
) -> None:
    breaker = make(clock, failure_threshold=1, call_timeout=10.0)

    async def own_timeout() -> str:
        raise TimeoutError("the client library gave up")

    with pytest.raises(TimeoutError) as caught:
        await breaker.call(own_timeout)
    assert not isinstance(caught.value, CallTimedOut)
    assert state(breaker) is BreakerState.OPEN


async def test_a_slow_call_from_before_the_opening_cannot_close_it(clock: FakeClock) -> None:
    breaker = make(clock)
    release = asyncio.Event()
    running = asyncio.Event()

    async def slow() -> str:
        running.set()
        await release.wait()
        return "late"

    straggler = asyncio.create_task(breaker.call(slow))
    await asyncio.wait_for(running.wait(), 5.0)  # admitted while the breaker was closed
    await trip(breaker)
    release.set()
    assert await straggler == "late"
    assert state(breaker) is BreakerState.OPEN


async def test_state_changes_are_reported(clock: FakeClock) -> None:
    breaker = make(clock)
    seen: list[tuple[BreakerState, BreakerState]] = []

    def broken(old: BreakerState, new: BreakerState) -> None:
        raise RuntimeError("a listener bug must not break the breaker")

    breaker.on_state_change.append(broken)
    breaker.on_state_change.append(lambda old, new: seen.append((old, new)))
    await trip(breaker)
    clock.advance(5.0)
    await fail(breaker)
    clock.advance(10.0)
    await breaker.call(ok)
    assert seen == [
        (BreakerState.CLOSED, BreakerState.OPEN),
        (BreakerState.OPEN, BreakerState.HALF_OPEN),
        (BreakerState.HALF_OPEN, BreakerState.OPEN),
        (BreakerState.OPEN, BreakerState.HALF_OPEN),
        (BreakerState.HALF_OPEN, BreakerState.CLOSED),
    ]


async def test_snapshot_for_readiness_and_metrics(clock: FakeClock) -> None:
    breaker = make(clock)
    await breaker.call(ok)
    await trip(breaker)
    with pytest.raises(CircuitOpen):
        await breaker.call(ok)
    snapshot = breaker.snapshot()
    assert snapshot.to_json() == {
        "state": "open",
        "consecutive_failures": 3,
        "failure_threshold": 3,
        "reset_timeout": 5.0,
        "retry_after": 5.0,
        "opened_total": 1,
        "rejected_total": 1,
        "failures_total": 3,
        "successes_total": 1,
    }
    assert "open" in repr(breaker)


@pytest.mark.parametrize(
    "options",
    [
        {"failure_threshold": 0},
        {"reset_timeout": 0},
        {"reset_timeout": 10.0, "max_reset_timeout": 5.0},
        {"jitter": 1.0},
        {"call_timeout": 0},
    ],
)
def test_bad_settings_are_refused(options: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        CircuitBreaker(**options)  # type: ignore[arg-type]
