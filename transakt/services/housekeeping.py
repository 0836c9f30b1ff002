"""Housekeeping: answers kept under Idempotency-Keys and ended sessions, pruned past their time."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Final

from transakt.services.sessions import Sessions
from transakt.storage.repository import Repository

__all__ = ["Housekeeping"]

log = logging.getLogger("transakt.housekeeping")

_EVERY_SECONDS: Final = 300.0


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
        self._task: asyncio.Task[None] | None = None
        self.pruned_answers = 0
        self.pruned_sessions = 0

    def __repr__(self) -> str:
        return f"<Housekeeping answers={self.pruned_answers} sessions={self.pruned_sessions}>"

    def start(self) -> None:
        """Start the loop."""
        self._task = asyncio.create_task(self._run(), name="housekeeping")

    async def stop(self) -> None:
        """Stop the loop."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def run_once(self) -> None:
        """One round of pruning."""
        self.pruned_answers += await self._repository.prune_answers(self._retention)
        self.pruned_sessions += await self._sessions.prune()

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception as error:  # the database is away: the next round tries again
                log.warning("housekeeping failed: %r", error)
            await asyncio.sleep(self._every)
