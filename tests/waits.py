"""Waiting on state that nothing can be awaited on (another process, a broker, a database)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable

import pytest

#: How long a condition may take to come true before the test fails.
DEADLINE_SECONDS = 10.0


async def wait_until(
    condition: Callable[[], bool | Awaitable[bool]], what: str, deadline: float = DEADLINE_SECONDS
) -> None:
    """Re-check ``condition`` (sync or async) every 20 ms until true; fail past the deadline."""
    give_up = time.monotonic() + deadline
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return
        if time.monotonic() > give_up:
            pytest.fail(f"timed out after {deadline:.0f}s waiting for {what}")
        await asyncio.sleep(0.02)
