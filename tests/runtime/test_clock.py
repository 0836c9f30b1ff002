"""Clocks: the virtual clock used by the other tests, and the real one."""

from __future__ import annotations

import asyncio

import pytest

from transakt.runtime import Clock, MonotonicClock, VirtualClock


async def test_virtual_sleep_waits_for_advance() -> None:
    clock = VirtualClock()
    woke: list[float] = []

    async def sleeper(seconds: float) -> None:
        await clock.sleep(seconds)
        woke.append(clock.now())

    tasks = [asyncio.ensure_future(sleeper(s)) for s in (3.0, 1.0, 2.0)]
    await clock.advance(0.5)
    assert woke == []
    await clock.advance(1.5)
    assert woke == [1.0, 2.0]
    assert clock.now() == 2.0
    await clock.run_until_idle()
    assert woke == [1.0, 2.0, 3.0]
    assert clock.sleeps == [3.0, 1.0, 2.0]
    assert clock.pending == 0
    await asyncio.gather(*tasks)


async def test_virtual_call_later_and_cancel() -> None:
    clock = VirtualClock(start=100.0)
    fired: list[str] = []
    clock.call_later(1.0, fired.append, "a")
    handle = clock.call_later(1.0, fired.append, "b")
    handle.cancel()
    assert "pending=1" in repr(clock)
    await clock.advance(1.0)
    assert fired == ["a"]
    with pytest.raises(ValueError):
        await clock.advance(-1)


async def test_cancelled_virtual_sleep_leaves_no_timer() -> None:
    clock = VirtualClock()
    task = asyncio.ensure_future(clock.sleep(5.0))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert clock.pending == 0


async def test_zero_sleep_just_yields() -> None:
    clock = VirtualClock()
    await clock.sleep(0)
    assert clock.sleeps == [0]


async def test_monotonic_clock() -> None:
    clock = MonotonicClock()
    assert isinstance(clock, Clock) and isinstance(VirtualClock(), Clock)
    before = clock.now()
    await clock.sleep(0)
    assert clock.now() >= before
    fired = asyncio.Event()
    clock.call_later(0, fired.set)
    await fired.wait()
    assert "MonotonicClock" in repr(clock)
