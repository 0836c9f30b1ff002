"""Housekeeping: answers kept under Idempotency-Keys and ended sessions, pruned past their time."""

from __future__ import annotations

import asyncio
import logging
from typing import Final

import asyncpg

from transakt.runtime import RestartPolicy, TaskSupervisor
from transakt.services.sessions import Sessions
from transakt.storage.repository import Repository

__all__ = ["Housekeeping"]

log = logging.getLogger("transakt.housekeeping")

_EVERY_SECONDS: Final = 300.0
# What a round fails with while the database is away: the next round tries again.
_DATABASE_AWAY: Final = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError)
# Anything else is a crash: the loop restarts with backoff, for ever (backing off to 5 s, it
# cannot reach 100 restarts within a minute).
_RESTARTS: Final = RestartPolicy(max_restarts=100, within=60.0, min_backoff=0.05, max_backoff=5.0)


class Housekeeping:
    """Every few minutes: drop answers past retention and revoked tokens past expiry."""

    def __init__(
        self,
        repository: Repository,
        sessions: Sessions,
        *,
        retention_seconds: float,
        every_seconds: float = _EVERY_SECONDS,
    ) -> None:
        self._repository = repository
        self._sessions = sessions
        self._retention = retention_seconds
        self._every = every_seconds
        #: The pruning loop: restarted when it crashes, cancelled by ``stop()``.
        self.tasks = TaskSupervisor("housekeeping", restart=_RESTARTS)
        self.pruned_answers = 0
        self.pruned_sessions = 0

    def __repr__(self) -> str:
        return f"<Housekeeping answers={self.pruned_answers} sessions={self.pruned_sessions}>"

    def start(self) -> None:
        """Start the loop."""
        if self.tasks.closing:  # started again after a stop: a closed supervisor takes no tasks
            self.tasks = TaskSupervisor(self.tasks.name, restart=self.tasks.restart)
        self.tasks.spawn("housekeeping", self._run)

    async def stop(self) -> None:
        """Stop the loop."""
        await self.tasks.close()

    async def run_once(self) -> None:
        """One round of pruning."""
        self.pruned_answers += await self._repository.prune_answers(self._retention)
        self.pruned_sessions += await self._sessions.prune()

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
            except _DATABASE_AWAY as error:
                log.warning("housekeeping failed: %r", error)
            await asyncio.sleep(self._every)
