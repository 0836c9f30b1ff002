"""BankGateway: every call to the bank goes through one circuit breaker; what cannot go, waits.

A deposit or withdrawal reaches the gateway already committed as a pending transfer. While the
breaker is closed the gateway calls the bank at once and commits its answer (posted, or voided
with the bank's reason). When the breaker is open, or a call fails transiently, the request goes
to the buffer (a Redis stream), and a drain loop works through it, oldest first, as soon as the
breaker lets calls through again. A sweep re-offers every pending transfer older than a few
seconds from PostgreSQL, so neither a lost buffer nor a crash between the bank's answer and the
commit loses a request; and none is applied twice, since the bank applies each id once and
settling a transfer twice changes nothing.

Like the LedgerWriter, the gateway is a long-lived component with its own loops rather than a
mailbox actor: its work is concurrent I/O, which one-message-at-a-time handling would serialise.
Its two loops, the drain and the sweep, run under its ``TaskSupervisor`` (``gateway.tasks``): a
crash (Redis gone, say) is logged and the loop restarts with backoff. The calls it makes for
single requests are one-shot tasks, never restarted, so they are a plain task set beside it.
The calls a person waits for (signup's account check, micro-deposits) are ``BankAsks``, beside it
on the same breaker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, Final, TypeVar

import asyncpg

from transakt.bankapi.errors import BankRequestRejected
from transakt.errors import BankUnavailable, Overloaded
from transakt.gateway.asks import PERMANENT_STATUSES
from transakt.gateway.breaker import BreakerState, CallTimedOut, CircuitBreaker, CircuitOpen
from transakt.gateway.buffer import BankBuffer, BufferedRequest, BufferLost
from transakt.gateway.client import BankClient
from transakt.runtime import RestartPolicy, SupervisedTask, TaskSupervisor
from transakt.storage.bank_requests import BankRequest, pending_bank_requests
from transakt.storage.records import Applied, Duplicate, Settlement
from transakt.storage.writer import LedgerWriter

__all__ = ["AfterBankAnswer", "BankGateway", "is_bank_failure"]

log = logging.getLogger("transakt.bank_gateway")

AfterBankAnswer = Callable[[BankRequest], Awaitable[None]]
T = TypeVar("T")

_TRANSIENT = (BankUnavailable, CircuitOpen, CallTimedOut)
# A crashed loop restarts with backoff, for ever: backing off to 5 s, it cannot reach 100
# restarts within a minute. State lives in PostgreSQL and Redis, so a fresh loop carries on.
_LOOP_RESTARTS: Final = RestartPolicy(
    max_restarts=100, within=60.0, min_backoff=0.05, max_backoff=5.0
)


def is_bank_failure(error: BaseException) -> bool:
    """What counts against the breaker: anything but the bank answering with a refusal."""
    return isinstance(error, Exception) and not isinstance(error, BankRequestRejected)


class BankGateway:
    """Calls the bank through the breaker, buffers what must wait, drains it when it can."""

    def __init__(
        self,
        bank: BankClient,
        breaker: CircuitBreaker,
        buffer: BankBuffer,
        writer: LedgerWriter,
        pool: asyncpg.Pool,
        *,
        max_in_flight: int = 256,
        drain_concurrency: int = 32,
        drain_batch: int = 256,
        sweep_seconds: float = 5.0,
        sweep_min_age: float = 3.0,
        reclaim_idle: float = 30.0,
        read_block: float = 1.0,
    ) -> None:
        self.breaker = breaker
        self.buffer = buffer
        self._bank = bank
        self._writer = writer
        self._pool = pool
        self._max_in_flight = max_in_flight
        self._drain_concurrency = drain_concurrency
        self._drain_batch = drain_batch
        self._sweep_seconds = sweep_seconds
        self._sweep_min_age = sweep_min_age
        self._reclaim_idle = reclaim_idle
        self._read_block = read_block
        # Transfer ids being worked on here (a Counter: a stale copy may run beside the original).
        self._in_flight: Counter[str] = Counter()
        #: The drain and sweep loops: restarted when they crash, stopped by ``stop()``.
        self.tasks = TaskSupervisor("bank-gateway", restart=_LOOP_RESTARTS)
        self._sweeper: SupervisedTask | None = None
        # One task per bank call under way (``submit``): one-shot, never restarted.
        self._tasks: set[asyncio.Task[Any]] = set()
        self._wakeup = asyncio.Event()
        self._closing = False
        self._in_batch = False
        # True while the buffer may hold requests: new ones queue behind them, keeping order.
        self._backlog = False
        #: Test seam: awaited after the bank answered, before the answer is committed.
        self.after_bank_answer: AfterBankAnswer | None = None
        # Counters for /metrics; ``buffered`` is the last known buffer depth.
        self.posted = 0
        self.voided = 0
        self.deferred = 0
        self.duplicates = 0
        self.buffered = 0

    def __repr__(self) -> str:
        return (
            f"<BankGateway breaker={self.breaker.state.value} in_flight={self.in_flight} "
            f"buffered={self.buffered} posted={self.posted} voided={self.voided}>"
        )

    @property
    def in_flight(self) -> int:
        """Bank requests being called or settled right now."""
        return sum(self._in_flight.values())

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the drain and sweep loops (the first sweep rebuilds the buffer if needed)."""
        if self.tasks.closing:  # started again after a stop: a closed supervisor takes no tasks
            self.tasks = TaskSupervisor(self.tasks.name, restart=self.tasks.restart)
        self._closing = False
        self.tasks.spawn("bank-drain", self._drain)
        self._sweeper = self.tasks.spawn("bank-sweep", self._sweep_loop)

    async def stop(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Finish the calls under way (up to ``timeout`` s), then cancel what is left."""
        self._closing = True
        self._wakeup.set()
        clock = self.tasks.clock
        deadline = clock.now() + timeout
        # The drain finishes a batch it is working on (graceful, within the timeout); a loop
        # that only waits is cancelled at once: the sweep, and the drain between batches.
        draining = self._in_batch
        if self._sweeper is not None:
            await self._sweeper.stop(0)
            self._sweeper = None
        await self.tasks.close(max(deadline - clock.now(), 0.0), graceful=draining)
        waiting = list(self._tasks)
        if waiting:
            _done, pending = await asyncio.wait(waiting, timeout=max(deadline - clock.now(), 0.0))
            for task in pending:
                task.cancel()
            await asyncio.gather(*waiting, return_exceptions=True)
        self._tasks.clear()

    # -- requests ----------------------------------------------------------------------------

    def submit(self, request: BankRequest) -> None:
        """Hand over a committed request: call the bank now if it can be, else buffer it."""
        if self._closing:
            return  # it is pending in Postgres: the next start's sweep takes it
        if not self._backlog and self.in_flight < self._max_in_flight and self.breaker.allow():
            self._spawn(self._call_directly(request))
        else:
            self._spawn(self._enqueue([request]))

    # -- one request -------------------------------------------------------------------------

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("bank request task failed", exc_info=task.exception())

    async def _call_directly(self, request: BankRequest) -> None:
        if not await self._attempt(request):
            await self._enqueue([request])

    async def _enqueue(self, requests: Sequence[BankRequest]) -> None:
        try:
            added = await self.buffer.add(requests)
        except Exception as error:
            # The request is still pending in Postgres: a later sweep offers it again.
            log.warning("could not buffer %d bank request(s): %r", len(requests), error)
            return
        if added:
            self._backlog = True
            self.buffered += added

    async def _attempt(
        self, request: BankRequest, bank_slots: asyncio.Semaphore | None = None
    ) -> bool:
        """Call the bank and commit its answer: True once settled, False to retry later."""
        self._in_flight[request.transfer_id] += 1
        try:
            # The slots bound the load on the bank only: a commit does not hold one.
            async with bank_slots or contextlib.nullcontext():
                settlement = await self._ask_bank(request)
            if settlement is None:
                self.deferred += 1
                return False
            if self.after_bank_answer is not None:
                await self.after_bank_answer(request)
            return await self._settle(settlement)
        finally:
            self._in_flight[request.transfer_id] -= 1
            if self._in_flight[request.transfer_id] <= 0:
                del self._in_flight[request.transfer_id]

    async def _ask_bank(self, request: BankRequest) -> Settlement | None:
        """The settlement the bank's answer calls for, or None when the bank did not answer."""
        try:
            answer = await self.breaker.call(
                lambda: self._bank.transfer(
                    request.transfer_id,
                    request.account,
                    request.direction,
                    request.amount,
                    request.currency,
                )
            )
        except _TRANSIENT as error:
            log.debug("bank request %s deferred: %r", request.transfer_id, error)
            return None
        except BankRequestRejected as error:
            if error.status not in PERMANENT_STATUSES:
                # 401/403/404: the gateway is misconfigured, not the request wrong: keep it.
                log.error("the bank refused the gateway's call: %s", error)
                return None
            return Settlement(request.transfer_id, "voided", f"bank_{error.code}")
        if answer.completed:
            return Settlement(request.transfer_id, "posted")
        return Settlement(request.transfer_id, "voided", answer.reason or "refused_by_bank")

    async def _settle(self, settlement: Settlement) -> bool:
        try:
            outcome = await self._writer.submit(settlement)
        except Overloaded as error:  # LedgerUnavailable too: the outcome is unknown, retry
            log.warning("settling %s failed: %r", settlement.transfer_id, error)
            return False
        if isinstance(outcome, Applied):
            if settlement.outcome == "posted":
                self.posted += 1
            else:
                self.voided += 1
        elif isinstance(outcome, Duplicate):
            self.duplicates += 1  # settled before (a replay after a crash): nothing to do
        else:
            log.error("the ledger refused settlement %s: %r", settlement, outcome.error)
            return False
        return True

    # -- the drain loop ----------------------------------------------------------------------

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        # After a (re)start, first finish the entries this consumer had taken before.
        pending = True
        last_reclaim = loop.time()
        await self.buffer.ensure()
        retry_delay = 0.0
        while not self._closing:
            await self._bank_allows()
            if self._closing:
                return
            try:
                if pending:
                    entries = await self.buffer.read(self._drain_batch, pending=True)
                elif loop.time() - last_reclaim >= self._sweep_seconds:
                    last_reclaim = loop.time()
                    entries = await self.buffer.reclaim(self._reclaim_idle, self._drain_batch)
                    if entries:
                        log.info("took over %d bank request(s) left by a dead node", len(entries))
                else:
                    entries = await self.buffer.read(self._drain_batch, block=self._read_block)
                    if not entries:
                        self._backlog = False
            except BufferLost as error:
                log.warning("the bank request buffer was lost (%s); rebuilding it", error)
                await self._rebuild()
                continue
            if not entries:
                pending = False
                continue
            self._in_batch = True
            try:
                settled = await self._process(entries)
            finally:
                self._in_batch = False
            # Own pending entries are read until none is left; a batch not fully settled
            # leaves some pending, to be read again (first, so the order holds).
            pending = pending or not settled
            if not settled and self.breaker.state is BreakerState.CLOSED:
                # Not settled, yet the breaker did not open (the ledger was busy, the bank
                # refused the gateway itself): wait a growing while before the next try.
                retry_delay = min(max(retry_delay * 2, 0.05), self._sweep_seconds)
                await self._pause(retry_delay)
            else:
                retry_delay = 0.0

    async def _bank_allows(self) -> None:
        """Wait until the breaker would let a call through (or the gateway stops)."""
        while not self._closing and not self.breaker.allow():
            await self._pause(min(max(self.breaker.retry_after(), 0.01), 1.0))

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake at once when the gateway stops."""
        self._wakeup.clear()
        if self._closing:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wakeup.wait(), seconds)

    async def _process(self, entries: list[BufferedRequest]) -> bool:
        """Settle a batch in stream order; True when every entry was settled and acknowledged."""
        settled: list[BufferedRequest] = []
        remaining = list(entries)
        if self.breaker.state is not BreakerState.CLOSED:
            # Half-open: one probe first; the rest follow only if the bank answered it.
            probe = remaining.pop(0)
            if await self._attempt(probe.request):
                settled.append(probe)
            else:
                remaining = []
        if remaining and self.breaker.state is BreakerState.CLOSED:
            # Requests of one account go one after another, in order (a debit may need the
            # credit before it); different accounts go concurrently, started in stream order.
            by_account: dict[str, list[BufferedRequest]] = {}
            for entry in remaining:
                by_account.setdefault(entry.request.account, []).append(entry)
            slots = asyncio.Semaphore(self._drain_concurrency)

            async def run(chain: list[BufferedRequest]) -> None:
                for entry in chain:
                    if not await self._attempt(entry.request, slots):
                        return
                    settled.append(entry)

            await asyncio.gather(*(run(chain) for chain in by_account.values()))
        await self.buffer.ack(settled)
        self.buffered = max(0, self.buffered - len(settled))
        return len(settled) == len(entries)

    # -- the sweep ---------------------------------------------------------------------------

    async def _sweep_loop(self) -> None:
        while not self._closing:
            await self._rebuild()
            self.buffered = await self.buffer.depth()
            await asyncio.sleep(self._sweep_seconds)

    async def _rebuild(self) -> None:
        """Make sure the buffer exists, then offer it every pending request not in flight."""
        await self.buffer.ensure()
        async for page in pending_bank_requests(self._pool, self._sweep_min_age):
            requests = [r for r in page if r.transfer_id not in self._in_flight]
            await self._enqueue(requests)

    # -- observability -----------------------------------------------------------------------

    async def readiness(self) -> dict[str, object]:
        """The breaker's state and the buffer's depth, for /readyz."""
        snapshot = self.breaker.snapshot()
        with contextlib.suppress(Exception):  # Redis has its own readiness entry
            async with asyncio.timeout(1.0):
                self.buffered = await self.buffer.depth()
        return {
            "breaker": snapshot.state.value,
            "reachable": snapshot.state is not BreakerState.OPEN,
            "retry_after": round(snapshot.retry_after, 2),
            "buffered": self.buffered,
            "in_flight": self.in_flight,
        }
