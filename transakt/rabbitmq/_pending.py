"""Asks sent and not yet answered: their futures by id, and their timeouts on a coarse wheel.

One timer per 10 ms slot rather than one per ask (the runtime's own asks do the same): timer
handles are pure Python and would cost more than the rest of the ask.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from transakt.runtime import AskTimeout

__all__ = ["Pending", "PendingAsks"]

_RESOLUTION: Final = 0.01


@dataclass(slots=True)
class Pending:
    """One ask on its way: where it went and what to tell its caller."""

    future: asyncio.Future[Any]
    actor: str
    message_type: str
    queue: str
    timeout: float | None
    sent_at: float = field(default_factory=time.monotonic)


class PendingAsks:
    """The asks of this process awaiting an answer from another."""

    __slots__ = ("_asks", "_call_later", "_slots", "timed_out")

    def __init__(self, call_later: Callable[..., asyncio.TimerHandle]) -> None:
        self._asks: dict[int, Pending] = {}
        self._slots: dict[int, list[int]] = {}
        self._call_later = call_later
        self.timed_out = 0

    def __len__(self) -> int:
        return len(self._asks)

    def __iter__(self) -> Iterator[tuple[int, Pending]]:
        return iter(list(self._asks.items()))

    def add(self, ask_id: int, pending: Pending) -> None:
        """Watch an ask; it fails with ``AskTimeout`` if no answer comes within its timeout."""
        self._asks[ask_id] = pending
        if pending.timeout is None:
            return
        index = math.ceil((pending.sent_at + pending.timeout) / _RESOLUTION)
        slot = self._slots.get(index)
        if slot is None:
            slot = self._slots[index] = []
            delay = max(index * _RESOLUTION - time.monotonic(), 0.0)
            self._call_later(delay, self._expire, index)
        slot.append(ask_id)

    def pop(self, ask_id: int) -> Pending | None:
        """The ask answered now (None if it timed out or failed already)."""
        return self._asks.pop(ask_id, None)

    def fail(self, ask_id: int, error: BaseException) -> None:
        """Fail one ask (if still pending)."""
        pending = self._asks.pop(ask_id, None)
        if pending is not None and not pending.future.done():
            pending.future.set_exception(error)

    def fail_where(
        self, wanted: Callable[[Pending], bool], error: Callable[[Pending], BaseException]
    ) -> int:
        """Fail every pending ask ``wanted`` picks; returns how many."""
        failed = [ask_id for ask_id, pending in self._asks.items() if wanted(pending)]
        for ask_id in failed:
            pending = self._asks.pop(ask_id)
            if not pending.future.done():
                pending.future.set_exception(error(pending))
        return len(failed)

    def _expire(self, index: int) -> None:
        for ask_id in self._slots.pop(index, ()):
            pending = self._asks.pop(ask_id, None)
            if pending is not None and not pending.future.done():
                assert pending.timeout is not None
                pending.future.set_exception(
                    AskTimeout(pending.actor, pending.message_type, pending.timeout)
                )
                self.timed_out += 1
