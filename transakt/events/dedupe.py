"""Recently seen event ids: how at-least-once consumers ignore a replay in bounded memory."""

from __future__ import annotations

from collections import deque


class RecentIds:
    """The last ``capacity`` distinct ids seen; older ones are forgotten first."""

    __slots__ = ("_order", "_seen", "capacity")

    def __init__(self, capacity: int) -> None:
        if capacity < 1:
            raise ValueError("capacity must be >= 1")
        self.capacity = capacity
        self._seen: set[str] = set()
        self._order: deque[str] = deque()

    def __len__(self) -> int:
        return len(self._seen)

    def __contains__(self, event_id: object) -> bool:
        return event_id in self._seen

    def add(self, event_id: str) -> bool:
        """Remember ``event_id``; True when it is new, False for a replay."""
        if event_id in self._seen:
            return False
        self._seen.add(event_id)
        self._order.append(event_id)
        if len(self._order) > self.capacity:
            self._seen.discard(self._order.popleft())
        return True
