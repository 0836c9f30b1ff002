"""Ask timeouts on a coarse timer wheel.

A timer per ask (``loop.call_later``) costs more than the rest of an ask round trip: timer
handles and their heap ordering are pure Python. Instead, asks are grouped into slots of
``resolution`` seconds, with one timer per slot; an ask that is answered just leaves its slot
(one dict pop). A timeout thus fires up to ``resolution`` late, never early.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from transakt.runtime._errors import AskTimeout

if TYPE_CHECKING:
    from transakt.runtime._cell import ActorCell
    from transakt.runtime._metrics import RuntimeMetrics
    from transakt.runtime.clock import TimerHandle

__all__ = ["AskTimeouts"]

Slot = dict["asyncio.Future[Any]", tuple["ActorCell", Any, float]]

#: Default slot width in seconds: how late an ask timeout may fire.
RESOLUTION = 0.01


class AskTimeouts:
    """Fails asks with ``AskTimeout`` when their deadline passes, one timer per time slot."""

    __slots__ = ("_call_later", "_metrics", "_now", "_slots", "resolution")

    def __init__(
        self,
        now: Callable[[], float],
        call_later: Callable[..., TimerHandle],
        metrics: RuntimeMetrics,
        resolution: float = RESOLUTION,
    ) -> None:
        self._now = now
        self._call_later = call_later
        self._metrics = metrics
        self._slots: dict[int, Slot] = {}
        self.resolution = resolution

    def add(self, fut: asyncio.Future[Any], cell: ActorCell, message: Any, timeout: float) -> Slot:
        """Watch ``fut``; the caller removes it from the returned slot once answered."""
        now = self._now()
        index = math.ceil((now + timeout) / self.resolution)
        slot = self._slots.get(index)
        if slot is None:
            slot = self._slots[index] = {}
            self._call_later(max(index * self.resolution - now, 0.0), self._expire, index)
        slot[fut] = (cell, message, timeout)
        return slot

    def _expire(self, index: int) -> None:
        slot = self._slots.pop(index, None)
        if not slot:
            return
        metrics = self._metrics
        for fut, (cell, message, timeout) in list(slot.items()):
            if not fut.done():
                fut.set_exception(AskTimeout(cell.name, type(message).__name__, timeout))
                metrics.asks_timed_out += 1
        slot.clear()

    def __len__(self) -> int:
        return sum(map(len, self._slots.values()))

    def __repr__(self) -> str:
        return f"<AskTimeouts watching={len(self)} slots={len(self._slots)}>"
