"""Entities (virtual actors): activated by their first message, passivated when idle.

Each kind keeps its active cells in an OrderedDict ordered by last activity, so marking activity
is O(1) and one reaper task per kind only ever looks at the front for expired entries.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from typing import TYPE_CHECKING

from transakt.runtime._actor import Actor
from transakt.runtime._cell import ActorCell
from transakt.runtime._errors import ActorDeadError
from transakt.runtime._supervision import RestartPolicy

if TYPE_CHECKING:
    from transakt.runtime._system import ActorSystem
    from transakt.runtime._typing import EntityFactory

__all__ = ["EntityKind"]

log = logging.getLogger("transakt.runtime")

# Float slack when comparing deadlines, so a reaper woken exactly at a deadline sees it expired.
_EPSILON = 1e-9


class EntityKind:
    """Registry of one entity kind: its settings, active instances and idle reaper."""

    __slots__ = (
        "actor_type",
        "capacity",
        "cells",
        "factory",
        "idle_timeout",
        "name",
        "policy",
        "reaper",
        "system",
    )

    def __init__(
        self,
        system: ActorSystem,
        name: str,
        actor_type: type[Actor],
        factory: EntityFactory,
        *,
        idle_timeout: float,
        policy: RestartPolicy,
        capacity: int,
    ) -> None:
        self.system = system
        self.name = name
        self.actor_type = actor_type
        self.factory = factory
        self.idle_timeout = idle_timeout
        self.policy = policy
        self.capacity = capacity
        self.cells: OrderedDict[str, ActorCell] = OrderedDict()
        self.reaper: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"<EntityKind {self.name} active={len(self.cells)} idle_timeout={self.idle_timeout}>"

    def resolve(self, key: str) -> ActorCell:
        """The live cell for ``key``, activating one if there is none."""
        cell = self.cells.get(key)
        if cell is None:
            cell = self.activate(key)
        return cell

    def activate(self, key: str) -> ActorCell:
        """Create the cell for ``key``; its actor is built by the first drain task."""
        system = self.system
        if system.closing:
            system.metrics.dead_letters += 1
            raise ActorDeadError(f"{self.name}/{key}", "shutting down")
        system.bind_loop()
        cell = ActorCell(system, key, kind=self, policy=self.policy, capacity=self.capacity)
        cell.idle_since = system.clock.now()
        self.cells[key] = cell
        metrics = system.metrics
        metrics.activations += 1
        metrics.active_actors += 1
        by_kind = metrics.active_entities_by_kind
        by_kind[self.name] = by_kind.get(self.name, 0) + 1
        if self.reaper is None:
            self.reaper = system.loop.create_task(self._reap())
        return cell

    def touch(self, cell: ActorCell) -> None:
        """Mark activity: the entity's idle time starts now."""
        cell.idle_since = self.system.clock.now()
        self.cells.move_to_end(cell.key)

    def forget(self, cell: ActorCell) -> None:
        """Drop a terminated cell from the registry and the gauges."""
        if self.cells.get(cell.key) is cell:
            del self.cells[cell.key]
            metrics = self.system.metrics
            metrics.active_actors -= 1
            metrics.active_entities_by_kind[self.name] -= 1

    async def _reap(self) -> None:
        """Passivate entities idle for ``idle_timeout``; ends when none is active."""
        clock = self.system.clock
        cells = self.cells
        timeout = self.idle_timeout
        try:
            while cells:
                now = clock.now()
                wake_at = None
                while cells:
                    key, cell = next(iter(cells.items()))
                    deadline = cell.idle_since + timeout
                    if deadline > now + _EPSILON:
                        wake_at = deadline
                        break
                    if cell.is_idle():
                        cell.passivate()
                    # Busy (or now passivating): its idle time restarts when it goes quiet.
                    cell.idle_since = now
                    cells.move_to_end(key)
                if wake_at is not None:
                    await clock.sleep(wake_at - now)
        finally:
            self.reaper = None
