"""How Transakt's long-running processes run: uvloop where installed, and a tuned collector.

uvloop is libuv under asyncio's API: socket reads and writes, timers and callback dispatch run
in C. Profiling a node under load showed socket writes and loop bookkeeping among its largest
costs, so every server process (node, bank, worker) runs on it. ``TRANSAKT_EVENT_LOOP=asyncio``
(or a platform uvloop does not support) falls back to the standard loop.

The cyclic garbage collector is tuned too (``tune_gc``): with the default thresholds a node
holding 10,000 wallet actors ran a full collection every 3-4 seconds under load, each pausing
it for up to ~70 ms, which was most of its p99 latency (``gc.callbacks`` timings: 7 full
collections, 75 middle and 831 young ones in 25 s; tuned: 2 young ones).
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar

__all__ = ["EventLoopChoice", "loop_factory", "run", "tune_gc"]

T = TypeVar("T")

# Young-generation collections after 50,000 net container allocations instead of 700: a
# request's garbage is freed by reference counting anyway, and what survives is long-lived.
# A full collection still runs every 200 young ones (minutes apart under load).
_GC_THRESHOLDS = (50_000, 20, 10)
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
    """``asyncio.run`` on the chosen loop, with the collector tuned for a server."""
    tune_gc()
    with asyncio.Runner(loop_factory=loop_factory(choice)) as runner:
        return runner.run(main)


def tune_gc() -> None:
    """Collect less often, and never rescan what start-up built (call once, at process start).

    What exists now (modules, settings, the app) is moved out of the collector's sight
    (``gc.freeze``), and the young generation is collected far less often.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*_GC_THRESHOLDS)
