"""LedgerWriter: group commit. Wallet actors decide; the writer makes their decisions durable.

Operations queue up while a commit is in flight and go out together in the next transaction, so
one fsync acknowledges hundreds of transfers under load while a lone transfer still commits at
once. Several writer loops pipeline their commits; account rows are locked in id order, so
they (and other nodes) never deadlock. The loops run under the writer's ``TaskSupervisor``
(``writer.tasks``): a loop that crashes fails the batch it held and restarts with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from typing import Any, Final, cast

import asyncpg

from transakt.errors import Overloaded
from transakt.runtime import RestartPolicy, TaskSupervisor
from transakt.storage.ledger import commit_batch
from transakt.storage.records import (
    GroupOutcome,
    LedgerOperation,
    NewTransfer,
    Outcome,
    Settlement,
    TransferGroup,
)

log = logging.getLogger("transakt.ledger")

# A crashed writer loop restarts with backoff, for ever: backing off to 5 s, it cannot reach 100
# restarts within a minute. Without its loops the node could not commit anything at all.
_RESTARTS: Final = RestartPolicy(max_restarts=100, within=60.0, min_backoff=0.05, max_backoff=5.0)
# How long stop() lets the loops commit what is queued.
_STOP_SECONDS: Final = 10.0


class LedgerUnavailable(Overloaded):
    """The ledger could not commit; the outcome is unknown, so retry with the Idempotency-Key."""

    code = "ledger_unavailable"


def _transfer_ids(operation: LedgerOperation) -> tuple[str, ...]:
    if isinstance(operation, NewTransfer):
        return (operation.id,)
    if isinstance(operation, Settlement):
        return (operation.transfer_id,)
    return tuple(transfer.id for transfer in operation.transfers)


_Item = tuple[LedgerOperation, "asyncio.Future[Any]"]


class LedgerWriter:
    """Commits queued ledger operations in batches; ``submit`` answers when durable."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        writers: int = 2,
        batch_max: int = 512,
        queue_max: int = 50_000,
        retry_delay: float = 0.05,
    ) -> None:
        self._pool = pool
        self._writers = writers
        self._batch_max = batch_max
        self._queue_max = queue_max
        self._retry_delay = retry_delay
        self._queue: deque[_Item] = deque()
        self._wakeup = asyncio.Event()
        #: The writer loops: restarted when they crash, stopped by ``stop()``.
        self.tasks = TaskSupervisor("ledger-writer", restart=_RESTARTS)
        self._in_flight: set[str] = set()  # transfer ids in a batch being committed now
        self._closing = False
        # Counters for /metrics.
        self.batches = 0
        self.operations = 0
        self.failures = 0
        self.largest_batch = 0
        self.commit_seconds = 0.0

    def __repr__(self) -> str:
        return (
            f"<LedgerWriter writers={self._writers} queued={len(self._queue)} "
            f"batches={self.batches} operations={self.operations}>"
        )

    @property
    def queued(self) -> int:
        """Operations waiting for a batch."""
        return len(self._queue)

    async def start(self) -> None:
        """Start the writer loops."""
        if self.tasks.closing:  # started again after a stop: a closed supervisor takes no tasks
            self.tasks = TaskSupervisor(self.tasks.name, restart=self.tasks.restart)
        self._closing = False
        for index in range(self._writers):
            self.tasks.spawn(f"ledger-writer-{index}", self._run)

    async def stop(self) -> None:
        """Commit what is queued, then stop; anything left fails with LedgerUnavailable."""
        self._closing = True
        self._wakeup.set()
        # Every loop sees the flag and commits what is queued until none is left (graceful);
        # past the deadline they are cancelled, failing the batch they were committing.
        await self.tasks.close(_STOP_SECONDS, graceful=True)
        while self._queue:
            _operation, future = self._queue.popleft()
            if not future.done():
                future.set_exception(LedgerUnavailable("the ledger writer stopped"))

    def submit(self, operation: NewTransfer | Settlement) -> asyncio.Future[Outcome]:
        """Queue an operation; the future resolves once its batch is committed."""
        return cast("asyncio.Future[Outcome]", self._enqueue(operation))

    def submit_group(self, group: TransferGroup) -> asyncio.Future[GroupOutcome]:
        """Queue transfers that commit together or not at all; the future resolves with each
        one's outcome (AppliedGroup) or with the refusal of all of them (Rejected)."""
        return cast("asyncio.Future[GroupOutcome]", self._enqueue(group))

    def _enqueue(self, operation: LedgerOperation) -> asyncio.Future[Any]:
        if self._closing:
            raise LedgerUnavailable("the ledger writer is stopping")
        if len(self._queue) >= self._queue_max:
            raise Overloaded("too many transfers are waiting to be committed", retry_after=1.0)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._queue.append((operation, future))
        self._wakeup.set()
        return future

    def _take_batch(self) -> list[_Item]:
        # An operation whose transfer id is in another loop's batch right now waits, in order,
        # for that batch to finish. Two batches holding the same ids (a client's concurrent
        # replays) would otherwise wait on each other's uncommitted rows and deadlock.
        batch: list[_Item] = []
        waiting: list[_Item] = []
        weight = 0
        in_flight = self._in_flight
        while self._queue and weight < self._batch_max:
            item = self._queue.popleft()
            operation = item[0]
            if isinstance(operation, TransferGroup):
                ids = _transfer_ids(operation)
                if not in_flight.isdisjoint(ids):
                    waiting.append(item)
                    continue
                in_flight.update(ids)
                weight += len(ids)
            else:
                transfer_id = (
                    operation.id if isinstance(operation, NewTransfer) else operation.transfer_id
                )
                if transfer_id in in_flight:
                    waiting.append(item)
                    continue
                in_flight.add(transfer_id)
                weight += 1
            batch.append(item)
        self._queue.extendleft(reversed(waiting))
        return batch

    def _finished(self, batch: list[_Item]) -> None:
        for operation, _future in batch:
            self._in_flight.difference_update(_transfer_ids(operation))
        self._wakeup.set()  # operations that waited for these ids may go now

    async def _run(self) -> None:
        # Each loop keeps one connection for its life: no pool acquire/reset round trips per
        # batch. A failed connection is dropped and a fresh one taken for the next batch.
        connection: asyncpg.pool.PoolConnectionProxy | None = None
        try:
            while True:
                if not self._queue:
                    if self._closing:
                        return
                    self._wakeup.clear()
                    await self._wakeup.wait()
                    continue
                batch = self._take_batch()
                if not batch:  # everything queued waits for ids in a sibling's batch
                    self._wakeup.clear()
                    await self._wakeup.wait()
                    continue
                if self._queue:
                    self._wakeup.set()  # let a sibling loop take the rest while we commit
                try:
                    if connection is None:
                        connection = await self._acquire(batch)
                    committed = connection is not None and await self._commit(connection, batch)
                except asyncio.CancelledError:
                    self._fail(batch, LedgerUnavailable("the ledger writer was stopped mid-commit"))
                    raise
                except Exception:
                    # A crash with the batch in hand: its outcome is unknown. The supervisor
                    # logs it and restarts the loop, with a fresh connection.
                    self.failures += 1
                    self._fail(batch, LedgerUnavailable("the ledger writer failed mid-commit"))
                    raise
                finally:
                    self._finished(batch)
                if not committed:
                    if connection is not None:
                        with contextlib.suppress(Exception):
                            await self._pool.release(connection)
                        connection = None
                    await asyncio.sleep(self._retry_delay)
        finally:
            if connection is not None:
                with contextlib.suppress(Exception):
                    await self._pool.release(connection)

    async def _acquire(self, batch: list[_Item]) -> asyncpg.pool.PoolConnectionProxy | None:
        """A connection for the loop; None, the batch failed as unavailable, if there is none."""
        try:
            return await self._pool.acquire()
        except Exception as error:
            self._unavailable(batch, error)
            return None

    def _unavailable(self, batch: list[_Item], error: BaseException) -> None:
        self.failures += 1
        log.warning("ledger batch of %d failed: %r", len(batch), error)
        self._fail(
            batch,
            LedgerUnavailable(
                "the ledger is unavailable; retry with the same Idempotency-Key",
                retry_after=1.0,
            ),
        )

    async def _commit(
        self,
        connection: asyncpg.pool.PoolConnectionProxy,
        batch: list[_Item],
    ) -> bool:
        operations = [operation for operation, _future in batch]
        started = time.perf_counter()
        try:
            result = await commit_batch(connection, operations)
        except Exception as error:  # the database or the connection failed: outcome unknown
            self._unavailable(batch, error)
            return False
        self.commit_seconds += time.perf_counter() - started
        self.batches += 1
        self.operations += len(batch)
        self.largest_batch = max(self.largest_batch, len(batch))
        for (_operation, future), outcome in zip(batch, result.outcomes, strict=True):
            if not future.done():
                future.set_result(outcome)
        return True

    @staticmethod
    def _fail(batch: list[_Item], error: Exception) -> None:
        for _operation, future in batch:
            if not future.done():
                future.set_exception(error)
