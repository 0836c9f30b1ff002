"""The event loop Transakt's long-running processes use: uvloop where it is installed.

uvloop is libuv under asyncio's API: socket reads and writes, timers and callback dispatch run
in C. Profiling a node under load showed socket writes and loop bookkeeping among its largest
costs, so every server process (node, bank, worker) runs on it. ``TRANSAKT_EVENT_LOOP=asyncio``
(or a platform uvloop does not support) falls back to the standard loop.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar

__all__ = ["EventLoopChoice", "loop_factory", "run"]

log = logging.getLogger("transakt")

T = TypeVar("T")
EventLoopChoice = Literal["auto", "uvloop", "asyncio"]


def loop_factory(choice: EventLoopChoice = "auto") -> Callable[[], asyncio.AbstractEventLoop]:
    """A factory of new event loops: uvloop's when chosen (or "auto" and installed)."""
    if choice == "asyncio":
        return asyncio.new_event_loop
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise RuntimeError("TRANSAKT_EVENT_LOOP=uvloop, but uvloop is not installed") from None
        return asyncio.new_event_loop
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def run(main: Coroutine[Any, Any, T], choice: EventLoopChoice = "auto") -> T:
    """``asyncio.run`` on the chosen loop."""
    with asyncio.Runner(loop_factory=loop_factory(choice)) as runner:
        return runner.run(main)
