"""Actor lifecycle: start, restart with backoff (supervision), stop and finalization.

Functions over an ``ActorCell``; ``_cell`` keeps the mailbox and how it is drained.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from transakt.runtime._actor import Actor
from transakt.runtime._errors import ActorDeadError, EscalatedFailure
from transakt.runtime._ref import EntityRef

if TYPE_CHECKING:
    from transakt.runtime._cell import ActorCell

__all__ = ["Escalation", "abort", "current_cell", "request_stop", "stop"]

log = logging.getLogger("transakt.runtime")

STARTING = 0
RUNNING = 1
RESTARTING = 2
PASSIVATING = 3
STOPPING = 4
STOPPED = 5
STATE_NAMES = ("starting", "running", "restarting", "passivating", "stopping", "stopped")

# Set inside every drain (and inherited by the tasks it starts), so the runtime can tell a
# message sent by one of its actors from one sent from outside while the system shuts down.
CURRENT_CELL: ContextVar[ActorCell | None] = ContextVar("transakt_current_cell", default=None)

# Empty deques kept for reuse: a deque costs ~600 bytes, too much to keep per idle actor.
_POOL_LIMIT = 1024


def current_cell() -> ActorCell | None:
    """The cell whose message (or deferred reply) the calling code runs for, if any."""
    return CURRENT_CELL.get()


class Escalation:
    """System message put at the front of a parent's mailbox: a child gave up."""

    __slots__ = ("cause", "child")

    def __init__(self, child: str, cause: BaseException) -> None:
        self.child = child
        self.cause = cause


def being_cancelled(cell: ActorCell) -> bool:
    """True when the cell's own task is being cancelled (not just something it awaited)."""
    task = cell.task
    return task is not None and task.cancelling() > 0


def release_mailbox(cell: ActorCell) -> None:
    """Drop the (empty) mailbox deque, keeping it for reuse by another cell."""
    mailbox = cell.mailbox
    cell.mailbox = None
    if mailbox is not None and not mailbox:
        pool = cell.system.deque_pool
        if len(pool) < _POOL_LIMIT:
            pool.append(mailbox)


# -- lifecycle ------------------------------------------------------------------------


def create(cell: ActorCell) -> Actor:
    """Build a fresh actor from the factory and give it its ref and system."""
    kind = cell.kind
    actor: Actor
    if kind is None:
        assert cell.factory is not None
        actor = cell.factory()
        assert cell.ref is not None
        actor.ref = cell.ref
    else:
        actor = kind.factory(cell.key)
        actor.ref = EntityRef(kind, cell.key)
    actor.system = cell.system
    return actor


async def instantiate(cell: ActorCell) -> Exception | None:
    """Create the actor if needed and run ``started()``; returns the crash, if any."""
    try:
        actor = cell.actor
        if actor is None:
            actor = cell.actor = create(cell)
        await actor.started()
    except Exception as exc:
        log.error("actor %s crashed while starting", cell.name, exc_info=exc)
        return exc
    cell.started_ok = True
    return None


async def start(cell: ActorCell) -> None:
    """First start of the cell (or after passivation); a crash goes to ``recover``."""
    crash = await instantiate(cell)
    if crash is None:
        if cell.state == STARTING:
            cell.state = RUNNING
    else:
        await recover(cell, crash, None)


async def escalated(cell: ActorCell, escalation: Escalation) -> None:
    """A child gave up: handle it as this actor's own crash."""
    failure = EscalatedFailure(escalation.child, escalation.cause)
    log.error("actor %s: %s", cell.name, failure)
    await recover(cell, failure, None)


async def recover(cell: ActorCell, crash: BaseException, message: Any) -> None:
    """Restart with backoff after a crash, or give up when the policy's limit is hit."""
    system = cell.system
    metrics = system.metrics
    while cell.state < STOPPING:
        policy = cell.policy
        now = system.clock.now()
        times = cell.restart_times
        if times is None:
            times = cell.restart_times = deque()
        horizon = now - policy.within
        while times and times[0] <= horizon:
            times.popleft()
        if len(times) >= policy.max_restarts:
            give_up(cell, crash)
            return
        times.append(now)
        attempt = cell.consecutive
        cell.consecutive = attempt + 1
        cell.restarts += 1
        metrics.restarts += 1
        cell.state = RESTARTING
        old = cell.actor
        if old is not None:
            try:
                await old.before_restart(crash, message)
            except Exception:
                log.exception("before_restart of %s failed", cell.name)
        cell.actor = None
        cell.started_ok = False
        # A parent restart takes its subtree down with it; the fresh instance's started()
        # is where children get spawned again.
        await stop_children(cell)
        delay = policy.backoff(attempt, system.random)
        log.info("restarting %s in %.3fs (restart %d)", cell.name, delay, cell.restarts)
        if not await backoff(cell, delay):
            return
        started = await instantiate(cell)
        if started is None:
            if cell.state == RESTARTING:
                cell.state = RUNNING
            return
        crash, message = started, None


async def backoff(cell: ActorCell, delay: float) -> bool:
    """Sleep on the system clock; False when a stop request cut the sleep short."""
    sleeper = cell.system.loop.create_task(cell.system.clock.sleep(delay))
    cell.sleeper = sleeper
    try:
        await sleeper
    except asyncio.CancelledError:
        if being_cancelled(cell):
            raise
        return False
    except Exception:
        log.exception("the clock failed to sleep for %s; restarting without delay", cell.name)
    finally:
        cell.sleeper = None
    return cell.state < STOPPING


def give_up(cell: ActorCell, crash: BaseException) -> None:
    """Restart limit hit: stop, and escalate to the parent when the policy says so."""
    policy = cell.policy
    cell.cause = crash
    parent = cell.parent
    escalate = policy.on_limit == "escalate" and parent is not None
    log.error(
        "actor %s restarted %d times within %gs; %s",
        cell.name,
        policy.max_restarts,
        policy.within,
        "escalating to its parent" if escalate else "stopping it",
    )
    cell.state = STOPPING
    if escalate and parent is not None:
        parent.escalate(cell.name, crash)


# -- stopping -------------------------------------------------------------------------


def request_stop(cell: ActorCell) -> None:
    """Begin stopping: refuse new messages; the current one finishes, the queued ones fail."""
    if cell.state >= STOPPING:
        return
    cell.state = STOPPING
    if cell.task is None:
        cell.task = cell.system.loop.create_task(stop_task(cell))
    elif cell.sleeper is not None:
        cell.sleeper.cancel()  # don't wait out a restart backoff


async def stop(cell: ActorCell) -> None:
    """Stop and wait for ``stopped()`` (returns at once when called from the actor itself)."""
    if cell.state == STOPPED:
        return
    request_stop(cell)
    if CURRENT_CELL.get() is cell:
        return  # waiting for ourselves would deadlock: the stop completes after this message
    waiter: asyncio.Future[None] = cell.system.loop.create_future()
    if cell.waiters is None:
        cell.waiters = []
    cell.waiters.append(waiter)
    await waiter


async def stop_task(cell: ActorCell) -> None:
    """Body of the task that stops an idle cell."""
    CURRENT_CELL.set(cell)
    try:
        await finalize(cell)
    except asyncio.CancelledError:
        abort(cell)
        raise


async def finalize(cell: ActorCell) -> None:
    """Fail queued asks, stop children, wait for deferred replies, run ``stopped()``."""
    fail_queued(cell)
    await stop_children(cell)
    if cell.deferred:
        waiter: asyncio.Future[None] = cell.system.loop.create_future()
        cell.deferred_waiter = waiter
        await waiter
    actor = cell.actor
    if actor is not None and cell.started_ok:
        cell.started_ok = False
        try:
            await actor.stopped()
        except Exception:
            log.exception("stopped() of %s failed", cell.name)
    terminated(cell)


def fail_queued(cell: ActorCell) -> None:
    """Answer every queued ask with ``ActorDeadError``; the messages become dead letters."""
    mailbox = cell.mailbox
    if not mailbox:
        return
    metrics = cell.system.metrics
    count = len(mailbox)
    metrics.mailbox_depth -= count
    metrics.dead_letters += count
    name, cause = cell.name, cell.cause
    while mailbox:
        _, fut = mailbox.popleft()
        if fut is not None and not fut.done():
            fut.set_exception(ActorDeadError(name, "stopped", cause))


async def stop_children(cell: ActorCell) -> None:
    """Stop the cell's children, newest first."""
    children = cell.children
    if children:
        for child in reversed(list(children)):
            await stop(child)


def abort(cell: ActorCell) -> None:
    """Forced end: no hooks, but every waiting asker gets an answer."""
    cell.state = STOPPING
    fail_queued(cell)
    for child in list(cell.children or ()):
        if child.task is None:
            abort(child)
    terminated(cell)


def terminated(cell: ActorCell) -> None:
    """Final state: unregister, detach from the parent, wake whoever waits for the stop."""
    cell.state = STOPPED
    cell.task = None
    cell.actor = None
    release_mailbox(cell)
    cell.system._forget(cell)
    parent = cell.parent
    if parent is not None and parent.children is not None and cell in parent.children:
        parent.children.remove(cell)
    waiters, cell.waiters = cell.waiters, None
    for waiter in waiters or ():
        if not waiter.done():
            waiter.set_result(None)
