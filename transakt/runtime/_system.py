"""The actor system: spawns actors, hosts entities, owns the clock, event bus and metrics."""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import logging
import random as _random
import time
from collections import deque
from collections.abc import Callable
from types import TracebackType
from typing import Any

from transakt.runtime._actor import Actor
from transakt.runtime._cell import STOPPED, ActorCell, Envelope
from transakt.runtime._entities import EntityKind
from transakt.runtime._errors import ActorDeadError, ActorNameTaken, UnknownEntityKind
from transakt.runtime._events import EventBus
from transakt.runtime._metrics import RuntimeMetrics
from transakt.runtime._ref import ActorRef, EntityRef, LocalActorRef
from transakt.runtime._supervision import RestartPolicy
from transakt.runtime._timeouts import AskTimeouts
from transakt.runtime._transport import Transport
from transakt.runtime._typing import ActorFactory, EntityFactory
from transakt.runtime.clock import Clock, MonotonicClock, TimerHandle

__all__ = ["ActorSystem"]

log = logging.getLogger("transakt.runtime")

# Entities are stopped this many at a time at shutdown: concurrent enough to be quick, bounded
# so a million entities do not mean a million simultaneous tasks.
_STOP_BATCH = 256
# After the graceful phase ran out of time, how long cancelled tasks get to unwind.
_FORCE_GRACE = 1.0


class ActorSystem:
    """Hosts actors and entities; use ``async with ActorSystem() as system:``."""

    def __init__(
        self,
        name: str = "transakt",
        *,
        clock: Clock | None = None,
        random: _random.Random | None = None,
        default_mailbox_size: int = 1000,
        transport: Transport | None = None,
        default_policy: RestartPolicy | None = None,
    ) -> None:
        if default_mailbox_size < 1:
            raise ValueError("default_mailbox_size must be >= 1")
        self.name = name
        self.clock: Clock = clock if clock is not None else MonotonicClock()
        self.random = random if random is not None else _random.Random()
        self.default_mailbox_size = default_mailbox_size
        self.default_policy = default_policy if default_policy is not None else RestartPolicy()
        self.transport = transport
        self.metrics = RuntimeMetrics()
        self.events = EventBus(
            metrics=self.metrics, forward=transport.publish if transport is not None else None
        )
        # Internal state shared with cells, entity kinds and refs (same package).
        self.loop: asyncio.AbstractEventLoop = None  # type: ignore[assignment]  # bound lazily
        self.call_later: Callable[..., TimerHandle] = self._unbound_call_later
        self.ask_timeouts = AskTimeouts(
            # time.monotonic itself (a C function) rather than a method around it: hot path.
            time.monotonic if type(self.clock) is MonotonicClock else self.clock.now,
            self._schedule,
            self.metrics,
        )
        self.closing = False
        self.deque_pool: list[deque[Envelope]] = []
        self.tasks: set[asyncio.Future[Any]] = set()
        self.parked_workers: list[tuple[asyncio.Future[ActorCell], asyncio.Task[None]]] = []
        self._actors: dict[str, ActorCell] = {}
        self._kinds: dict[str, EntityKind] = {}
        self._kinds_by_type: dict[type[Actor], EntityKind] = {}
        self._names = itertools.count(1)
        self._started = False
        self._shutdown: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        state = "closing" if self.closing else "running"
        return (
            f"<ActorSystem {self.name} {state} actors={len(self._actors)}"
            f" entities={self.metrics.active_entities}"
            f" mailbox_depth={self.metrics.mailbox_depth}>"
        )

    # -- event loop binding ---------------------------------------------------------------

    def bind_loop(self) -> asyncio.AbstractEventLoop:
        """Attach to the running event loop (on first use; a system lives on one loop)."""
        loop = self.loop
        if loop is None:
            loop = self.loop = asyncio.get_running_loop()
            clock = self.clock
            if type(clock) is MonotonicClock:
                # Straight to the loop: ask timeouts are on the hot path.
                self.call_later = loop.call_later
            else:
                scheduler = getattr(clock, "call_later", None)
                self.call_later = scheduler if scheduler is not None else loop.call_later
        return loop

    def _unbound_call_later(
        self, delay: float, callback: Callable[..., object], *args: Any
    ) -> TimerHandle:
        self.bind_loop()
        return self.call_later(delay, callback, *args)

    def _schedule(self, delay: float, callback: Callable[..., object], *args: Any) -> TimerHandle:
        # Late-bound: call_later changes once the loop is bound.
        return self.call_later(delay, callback, *args)

    async def start(self) -> None:
        """Bind to the running loop and start the transport (idempotent)."""
        self.bind_loop()
        if not self._started:
            self._started = True
            if self.transport is not None:
                await self.transport.start(self)

    async def __aenter__(self) -> ActorSystem:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.shutdown()

    # -- actors ---------------------------------------------------------------------------

    def spawn(
        self,
        factory: ActorFactory,
        *,
        name: str | None = None,
        policy: RestartPolicy | None = None,
        mailbox_size: int | None = None,
        parent: ActorRef | None = None,
    ) -> ActorRef:
        """Create an actor; it starts asynchronously, and messages sent meanwhile wait."""
        self.bind_loop()
        if name is None:
            name = f"{getattr(factory, '__name__', 'actor')}-{next(self._names)}"
        if self.closing:
            raise ActorDeadError(name, "not started: the system is shutting down")
        if name in self._actors:
            raise ActorNameTaken(name)
        if mailbox_size is not None and mailbox_size < 1:
            raise ValueError("mailbox_size must be >= 1")
        parent_cell: ActorCell | None = None
        if parent is not None:
            if type(parent) is not LocalActorRef or parent._cell is None:
                raise TypeError("parent must be a spawned actor of this system")
            parent_cell = parent._cell
            if parent_cell.system is not self:
                raise TypeError("parent belongs to another actor system")
        actor = factory()
        cell = ActorCell(
            self,
            name,
            factory=factory,
            policy=policy if policy is not None else self.default_policy,
            capacity=mailbox_size if mailbox_size is not None else self.default_mailbox_size,
            parent=parent_cell,
        )
        ref = cell.ref = LocalActorRef(cell)
        actor.ref = ref
        actor.system = self
        cell.actor = actor
        self._actors[name] = cell
        self.metrics.active_actors += 1
        if parent_cell is not None:
            if parent_cell.children is None:
                parent_cell.children = []
            parent_cell.children.append(cell)
        cell.dispatch()
        return ref

    def actor(self, name: str) -> ActorRef | None:
        """The live spawned actor called ``name``, if any."""
        cell = self._actors.get(name)
        return cell.ref if cell is not None else None

    def _forget(self, cell: ActorCell) -> None:
        """A cell terminated: drop it from the registries."""
        kind = cell.kind
        if kind is not None:
            kind.forget(cell)
        elif self._actors.get(cell.key) is cell:
            del self._actors[cell.key]
            self.metrics.active_actors -= 1

    # -- entities -------------------------------------------------------------------------

    def register_entity(
        self,
        actor_type: type[Actor],
        factory: EntityFactory | None = None,
        *,
        idle_timeout: float = 60.0,
        policy: RestartPolicy | None = None,
        mailbox_size: int | None = None,
        kind: str | None = None,
    ) -> str:
        """Declare an entity kind; returns its name (``actor_type.__name__`` unless ``kind``)."""
        if idle_timeout <= 0:
            raise ValueError("idle_timeout must be > 0")
        if mailbox_size is not None and mailbox_size < 1:
            raise ValueError("mailbox_size must be >= 1")
        name = kind if kind is not None else actor_type.__name__
        if name in self._kinds:
            raise ValueError(f"entity kind {name!r} is already registered")
        entity_kind = EntityKind(
            self,
            name,
            actor_type,
            factory if factory is not None else actor_type,
            idle_timeout=idle_timeout,
            policy=policy if policy is not None else self.default_policy,
            capacity=mailbox_size if mailbox_size is not None else self.default_mailbox_size,
        )
        self._kinds[name] = entity_kind
        self._kinds_by_type.setdefault(actor_type, entity_kind)
        self.metrics.active_entities_by_kind[name] = 0
        return name

    def _kind_name(self, actor_type: type[Actor] | str) -> tuple[str, EntityKind | None]:
        if isinstance(actor_type, str):
            return actor_type, self._kinds.get(actor_type)
        kind = self._kinds_by_type.get(actor_type)
        return (kind.name if kind is not None else actor_type.__name__), kind

    def entity(self, actor_type: type[Actor] | str, key: str) -> ActorRef:
        """Ref to the entity ``key`` (remote if the transport says so); activates on use."""
        name, kind = self._kind_name(actor_type)
        if self.transport is not None:
            remote = self.transport.entity_ref(name, key)
            if remote is not None:
                return remote
        if kind is None:
            raise UnknownEntityKind(name)
        return EntityRef(kind, key)

    def local_entity(self, actor_type: type[Actor] | str, key: str) -> EntityRef:
        """Ref to the entity ``key`` in this process, whatever the transport would say: what a
        transport uses to hand a message it received to the entity it is for."""
        name, kind = self._kind_name(actor_type)
        if kind is None:
            raise UnknownEntityKind(name)
        return EntityRef(kind, key)

    def entity_keys(self, actor_type: type[Actor] | str) -> list[str]:
        """The keys of this kind's entities active in this process now."""
        name, kind = self._kind_name(actor_type)
        if kind is None:
            raise UnknownEntityKind(name)
        return list(kind.cells)

    def entity_busy(self, actor_type: type[Actor] | str, key: str) -> bool:
        """True while the entity ``key`` has messages queued or running, or replies deferred
        (stopping it now would fail them); False when it is idle or not active."""
        name, kind = self._kind_name(actor_type)
        if kind is None:
            raise UnknownEntityKind(name)
        cell = kind.cells.get(key)
        return cell is not None and not cell.is_idle()

    def active_entities(self, actor_type: type[Actor] | str) -> int:
        """How many entities of this kind are activated in this system now."""
        name, kind = self._kind_name(actor_type)
        if kind is None:
            raise UnknownEntityKind(name)
        return len(kind.cells)

    # -- shutdown -------------------------------------------------------------------------

    async def shutdown(self, timeout: float = 10.0) -> None:  # noqa: ASYNC109
        """Stop everything in order; every pending ask is answered (``ActorDeadError``)."""
        if self._shutdown is None:
            # A fresh context: started from inside an actor, the shutdown must not pass for
            # that actor's own work (which may still send messages while it stops).
            self._shutdown = self.bind_loop().create_task(
                self._shutdown_all(timeout), context=contextvars.Context()
            )
        await asyncio.shield(self._shutdown)

    async def _shutdown_all(self, grace: float) -> None:
        if self.transport is not None:
            try:
                await self.transport.leave()
            except Exception:
                log.exception("leaving the transport failed")
        self.closing = True
        try:
            async with asyncio.timeout(grace):
                await self._stop_gracefully()
        except TimeoutError:
            log.warning("shutdown of %s took over %gs; cancelling the rest", self.name, grace)
        await self._stop_forcefully()
        await self.events.close()
        if self.transport is not None:
            try:
                await self.transport.close()
            except Exception:
                log.exception("closing the transport failed")

    async def _stop_gracefully(self) -> None:
        # Entities first: they are leaves and may still need spawned service actors (a writer,
        # say) to finish their deferred replies. Then spawned actors, newest first, which stops
        # children before their parents.
        for kind in list(self._kinds.values()):
            while kind.cells:
                batch = list(itertools.islice(kind.cells.values(), _STOP_BATCH))
                await asyncio.gather(*(cell.stop() for cell in batch))
                if kind.cells and next(iter(kind.cells.values())) is batch[0]:
                    break  # no progress; the forced phase takes over
            if kind.reaper is not None:
                kind.reaper.cancel()
        for cell in reversed(list(self._actors.values())):
            await cell.stop()
        await self.events.drain()
        while self.tasks:
            await asyncio.gather(*list(self.tasks), return_exceptions=True)

    async def _stop_forcefully(self) -> None:
        cells = [c for kind in self._kinds.values() for c in kind.cells.values()]
        cells.extend(self._actors.values())
        tasks: list[asyncio.Future[Any]] = []
        for cell in cells:
            if cell.task is not None:
                cell.task.cancel()
                tasks.append(cell.task)
            else:
                cell.abort()
        for kind in self._kinds.values():
            if kind.reaper is not None:
                kind.reaper.cancel()
                tasks.append(kind.reaper)
        for task in list(self.tasks):
            task.cancel()
            tasks.append(task)
        parked, self.parked_workers = self.parked_workers, []
        for _, worker in parked:
            worker.cancel()
            tasks.append(worker)
        if tasks:
            await asyncio.wait(tasks, timeout=_FORCE_GRACE)
        for cell in cells:
            if cell.state != STOPPED:
                cell.abort()
