"""The actor cell: one actor's mailbox and how it is drained.

An idle cell owns no task: when a message lands in an empty mailbox the cell is handed to a
worker task (a parked one if any), which drains it and then parks or ends. Millions of idle
actors thus cost only their objects. Starting, restarting and stopping live in ``_lifecycle``.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections import deque
from functools import partial
from typing import TYPE_CHECKING, Any

from transakt.runtime import _lifecycle as lifecycle
from transakt.runtime._actor import Actor, Deferred
from transakt.runtime._errors import ActorDeadError, MailboxFull
from transakt.runtime._lifecycle import (
    CURRENT_CELL,
    PASSIVATING,
    RUNNING,
    STARTING,
    STATE_NAMES,
    STOPPED,
    STOPPING,
    Escalation,
    current_cell,
)
from transakt.runtime._ref import LocalActorRef
from transakt.runtime._supervision import RestartPolicy

if TYPE_CHECKING:
    from transakt.runtime._entities import EntityKind
    from transakt.runtime._system import ActorSystem
    from transakt.runtime._typing import ActorFactory

__all__ = ["STOPPED", "ActorCell", "Envelope", "current_cell"]

log = logging.getLogger("transakt.runtime")

Envelope = tuple[Any, "asyncio.Future[Any] | None"]

# Drain tasks parked for reuse once their actor went idle: waking a parked task is about twice
# as cheap as creating one, and a message to an idle actor needs one. Bounded, so a burst of a
# million activations does not leave a million parked tasks behind.
_PARKED_LIMIT = 256


class ActorCell:
    """Runtime state of one actor instance slot (spawned actor or activated entity)."""

    __slots__ = (
        "actor",
        "capacity",
        "cause",
        "children",
        "consecutive",
        "deferred",
        "deferred_waiter",
        "factory",
        "idle_since",
        "key",
        "kind",
        "mailbox",
        "parent",
        "policy",
        "ref",
        "restart_times",
        "restarts",
        "sleeper",
        "started_ok",
        "state",
        "system",
        "task",
        "waiters",
    )

    def __init__(
        self,
        system: ActorSystem,
        key: str,
        *,
        kind: EntityKind | None = None,
        factory: ActorFactory | None = None,
        policy: RestartPolicy,
        capacity: int,
        parent: ActorCell | None = None,
    ) -> None:
        self.system = system
        self.key = key
        self.kind = kind
        self.factory = factory
        self.policy = policy
        self.capacity = capacity
        self.parent = parent
        self.actor: Actor | None = None
        self.ref: LocalActorRef | None = None
        self.mailbox: deque[Envelope] | None = None
        self.task: asyncio.Task[None] | None = None
        self.state = STARTING
        self.restarts = 0
        self.consecutive = 0
        self.restart_times: deque[float] | None = None
        self.children: list[ActorCell] | None = None
        self.deferred = 0
        self.deferred_waiter: asyncio.Future[None] | None = None
        self.waiters: list[asyncio.Future[None]] | None = None
        self.sleeper: asyncio.Task[None] | None = None
        self.cause: BaseException | None = None
        self.started_ok = False
        self.idle_since = 0.0

    # -- identity -------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """Spawned actors: their name; entities: ``kind/key`` (built on demand to save memory)."""
        kind = self.kind
        return self.key if kind is None else f"{kind.name}/{self.key}"

    @property
    def state_name(self) -> str:
        """Lifecycle state as a word."""
        return STATE_NAMES[self.state]

    def describe(self) -> str:
        """Name plus live state, for ``__repr__``s."""
        depth = len(self.mailbox) if self.mailbox else 0
        text = f"{self.name} mailbox={depth} restarts={self.restarts}"
        if self.state != RUNNING:
            text += f" {STATE_NAMES[self.state]}"
        return text

    def __repr__(self) -> str:
        return f"<ActorCell {self.describe()}>"

    # -- sending --------------------------------------------------------------------------

    def enqueue(self, message: Any, fut: asyncio.Future[Any] | None) -> None:
        """Append to the mailbox and make sure a drain task runs; raises when refused."""
        system = self.system
        if self.state >= STOPPING:
            system.metrics.dead_letters += 1
            raise ActorDeadError(self.name, "stopped", self.cause)
        if system.closing and CURRENT_CELL.get() is None:
            # During shutdown only actors may still talk to each other (to finish their work).
            system.metrics.dead_letters += 1
            raise ActorDeadError(self.name, "shutting down")
        mailbox = self.mailbox
        if mailbox is None:
            pool = system.deque_pool
            mailbox = self.mailbox = pool.pop() if pool else deque()
        elif len(mailbox) >= self.capacity:
            system.metrics.mailbox_full_rejections += 1
            raise MailboxFull(self.name, self.capacity)
        mailbox.append((message, fut))
        system.metrics.mailbox_depth += 1
        if self.task is None:
            self.dispatch()

    def dispatch(self) -> None:
        """Hand this cell to a parked worker task, or start a new one."""
        system = self.system
        parked = system.parked_workers
        if parked:
            wakeup, task = parked.pop()
            self.task = task
            wakeup.set_result(self)
        else:
            # A fresh context: the worker serves many actors, none should inherit the
            # context variables of whoever happened to send the first message.
            self.task = system.loop.create_task(_worker(self), context=contextvars.Context())

    def escalate(self, child: str, cause: BaseException) -> None:
        """A child gave up: handle it as this actor's own crash, before its next message."""
        if self.state >= STOPPING:
            return
        mailbox = self.mailbox
        if mailbox is None:
            mailbox = self.mailbox = deque()
        mailbox.appendleft((Escalation(child, cause), None))
        self.system.metrics.mailbox_depth += 1
        if self.task is None:
            self.dispatch()

    # -- the drain loop -------------------------------------------------------------------

    async def _run(self) -> None:
        """Handle queued messages one at a time, until the mailbox is empty."""
        CURRENT_CELL.set(self)
        metrics = self.system.metrics
        fut: asyncio.Future[Any] | None = None
        try:
            if self.state == STARTING:
                await lifecycle.start(self)
            mailbox = self.mailbox
            while mailbox and self.state == RUNNING:
                message, fut = mailbox.popleft()
                metrics.mailbox_depth -= 1
                if type(message) is Escalation:
                    await lifecycle.escalated(self, message)
                    mailbox = self.mailbox
                    continue
                actor = self.actor
                assert actor is not None
                crash: BaseException | None = None
                try:
                    result = await actor.receive(message)
                except Exception as exc:
                    crash = exc
                except asyncio.CancelledError as exc:
                    if lifecycle.being_cancelled(self):
                        raise
                    crash = exc  # receive itself raised it: a crash like any other
                if crash is None:
                    metrics.messages_processed += 1
                    if self.consecutive:
                        self.consecutive = 0
                    if isinstance(result, Deferred):
                        self._defer(result, fut)
                    elif fut is not None and not fut.done():
                        fut.set_result(result)
                elif isinstance(crash, actor.reply_errors):
                    metrics.messages_processed += 1
                    if fut is not None and not fut.done():
                        fut.set_exception(crash)
                else:
                    metrics.messages_failed += 1
                    if fut is not None and not fut.done():
                        fut.set_exception(crash)
                    log.error(
                        "actor %s crashed on %s", self.name, type(message).__name__, exc_info=crash
                    )
                    await lifecycle.recover(self, crash, message)
                fut = None
                mailbox = self.mailbox
            if self.state >= STOPPING:
                await lifecycle.finalize(self)
            else:
                self._idle()
        except asyncio.CancelledError:
            # Forced stop (shutdown ran out of time): nobody may be left waiting.
            if fut is not None and not fut.done():
                fut.set_exception(ActorDeadError(self.name, "stopped", self.cause))
            lifecycle.abort(self)
            raise

    def _idle(self) -> None:
        """Mailbox drained: give back the deque and the task; entities start their idle time."""
        self.task = None
        lifecycle.release_mailbox(self)
        kind = self.kind
        if kind is not None and not self.deferred:
            kind.touch(self)

    # -- deferred replies -----------------------------------------------------------------

    def _defer(self, deferred: Deferred[Any], fut: asyncio.Future[Any] | None) -> None:
        try:
            task = asyncio.ensure_future(deferred.awaitable)
        except TypeError as error:  # not awaitable: a bug in receive, answered as such
            self.system.metrics.messages_failed += 1
            log.error("actor %s returned a bad Deferred", self.name, exc_info=error)
            if fut is not None and not fut.done():
                fut.set_exception(error)
            return
        self.deferred += 1
        self.system.tasks.add(task)
        task.add_done_callback(partial(self._deferred_done, fut))

    def _deferred_done(self, fut: asyncio.Future[Any] | None, task: asyncio.Future[Any]) -> None:
        system = self.system
        system.tasks.discard(task)
        self.deferred -= 1
        error: BaseException | None
        if task.cancelled():
            error = ActorDeadError(self.name, "stopped before its deferred reply completed")
        else:
            error = task.exception()
        if error is None:
            if fut is not None and not fut.done():
                fut.set_result(task.result())
        else:
            system.metrics.messages_failed += 1
            if fut is not None and not fut.done():
                fut.set_exception(error)
            elif not task.cancelled():
                log.warning(
                    "deferred work of %s failed with nobody waiting", self.name, exc_info=error
                )
        if not self.deferred:
            waiter = self.deferred_waiter
            if waiter is not None:
                self.deferred_waiter = None
                if not waiter.done():
                    waiter.set_result(None)
            elif self.kind is not None and self.task is None and self.state == RUNNING:
                self.kind.touch(self)

    # -- stopping -------------------------------------------------------------------------

    def request_stop(self) -> None:
        """Begin stopping: refuse new messages; the current one finishes, the queued ones fail."""
        lifecycle.request_stop(self)

    async def stop(self) -> None:
        """Stop and wait for ``stopped()`` (returns at once when called from the actor itself)."""
        await lifecycle.stop(self)

    def abort(self) -> None:
        """Forced end: no hooks, but every waiting asker gets an answer."""
        lifecycle.abort(self)

    # -- passivation (entities) -----------------------------------------------------------

    def is_idle(self) -> bool:
        """True when the actor has nothing queued, running, or pending."""
        return (
            self.task is None and not self.mailbox and not self.deferred and self.state == RUNNING
        )

    def passivate(self) -> None:
        """Start passivating an idle entity: ``stopped()``, then drop it (or reactivate)."""
        self.state = PASSIVATING
        self.task = self.system.loop.create_task(self._passivate())

    async def _passivate(self) -> None:
        CURRENT_CELL.set(self)
        try:
            actor = self.actor
            if actor is not None and self.started_ok:
                self.started_ok = False
                try:
                    await actor.stopped()
                except Exception:
                    log.exception("stopped() of %s failed", self.name)
        except asyncio.CancelledError:
            lifecycle.abort(self)
            raise
        self.actor = None
        self.system.metrics.passivations += 1
        if self.state >= STOPPING:
            await lifecycle.stop_task(self)
        elif self.mailbox:
            # A message raced with passivation: serve it with a fresh instance, now that the
            # old one's stopped() has completed (never two live instances for one key).
            self.state = STARTING
            self.system.metrics.activations += 1
            await self._run()
        else:
            lifecycle.terminated(self)


async def _worker(cell: ActorCell) -> None:
    """Drain one busy cell after another; park between cells, exit when enough are parked."""
    system = cell.system
    parked = system.parked_workers
    loop = system.loop
    task = asyncio.current_task()
    assert task is not None
    while True:
        try:
            await cell._run()
        except Exception:
            # Only a runtime bug gets here; keep the worker and answer the cell's askers.
            log.exception("internal error while running %s", cell.name)
            lifecycle.abort(cell)
        del cell  # a parked worker must not keep a finished actor alive
        if len(parked) >= _PARKED_LIMIT or system.closing:
            return
        wakeup: asyncio.Future[ActorCell] = loop.create_future()
        parked.append((wakeup, task))
        cell = await wakeup
