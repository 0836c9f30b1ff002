"""Actor references: the only way to talk to an actor, local or (later) remote."""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from functools import partial
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from transakt.runtime._cell import ActorCell
    from transakt.runtime._entities import EntityKind
    from transakt.runtime._timeouts import Slot

__all__ = ["ActorRef", "EntityRef", "LocalActorRef"]


class ActorRef(ABC):
    """Address of an actor; a remote transport implements the same four members."""

    __slots__ = ()

    @property
    @abstractmethod
    def name(self) -> str:
        """The actor's name (``kind/key`` for entities)."""

    @abstractmethod
    def tell(self, message: Any) -> None:
        """Fire and forget; raises ``MailboxFull`` or ``ActorDeadError`` when refused."""

    @abstractmethod
    # The timeout is part of the API (it must survive a remote hop), hence ASYNC109.
    async def ask(self, message: Any, timeout: float | None = 5.0) -> Any:  # noqa: ASYNC109
        """Send and await the reply; raises ``AskTimeout`` or whatever ``receive`` raised."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop the actor: finish the current message, fail the queued ones, run ``stopped()``."""


class LocalActorRef(ActorRef):
    """Reference to an actor living in this process."""

    __slots__ = ("_cell",)

    def __init__(self, cell: ActorCell | None) -> None:
        self._cell = cell

    def _resolve(self) -> ActorCell:
        cell = self._cell
        assert cell is not None
        return cell

    @property
    def name(self) -> str:
        """The actor's name."""
        return self._resolve().name

    def tell(self, message: Any) -> None:
        """Queue ``message``; raises ``MailboxFull`` or ``ActorDeadError`` when refused."""
        self._resolve().enqueue(message, None)

    async def ask(self, message: Any, timeout: float | None = 5.0) -> Any:  # noqa: ASYNC109
        """Queue ``message`` and await the reply of ``receive``."""
        cell = self._resolve()
        system = cell.system
        fut: asyncio.Future[Any] = system.loop.create_future()
        cell.enqueue(message, fut)
        if timeout is None:
            return await fut
        # No wait_for: no extra task per ask, and the message keeps its place in the mailbox
        # (the work is not cancelled, only the wait).
        slot = system.ask_timeouts.add(fut, cell, message, timeout)
        try:
            return await fut
        finally:
            slot.pop(fut, None)

    def ask_nowait(self, message: Any, timeout: float | None = 5.0) -> asyncio.Future[Any]:
        """Queue ``message`` and return the future of its reply, without awaiting it.

        For code that relays many asks at once (a network transport, say): no coroutine per
        ask. Raises ``MailboxFull`` or ``ActorDeadError`` at once, like ``tell``.
        """
        cell = self._resolve()
        system = cell.system
        fut: asyncio.Future[Any] = system.loop.create_future()
        cell.enqueue(message, fut)
        if timeout is not None:
            slot = system.ask_timeouts.add(fut, cell, message, timeout)
            fut.add_done_callback(partial(_leave_slot, slot))
        return fut

    async def stop(self) -> None:
        """Stop the actor and wait until ``stopped()`` has run."""
        await self._resolve().stop()

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other._cell is self._cell

    def __hash__(self) -> int:
        return id(self._cell)

    def __repr__(self) -> str:
        cell = self._cell
        return f"<{type(self).__name__} {cell.describe() if cell is not None else '?'}>"


class EntityRef(LocalActorRef):
    """Reference to a local entity: activates it on demand, survives its passivation."""

    __slots__ = ("_key", "_kind")

    def __init__(self, kind: EntityKind, key: str) -> None:
        super().__init__(None)
        self._kind = kind
        self._key = key

    @property
    def key(self) -> str:
        """The entity's key within its kind."""
        return self._key

    @property
    def kind(self) -> str:
        """The entity kind's name."""
        return self._kind.name

    @property
    def name(self) -> str:
        """``kind/key``."""
        return f"{self._kind.name}/{self._key}"

    def _resolve(self) -> ActorCell:
        # Looked up on every message: the instance behind a key comes and goes with passivation.
        return self._kind.resolve(self._key)

    async def stop(self) -> None:
        """Passivate the entity now if it is active; a later message activates it again."""
        cell = self._kind.cells.get(self._key)
        if cell is not None:
            await cell.stop()

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, EntityRef) and other._kind is self._kind and other._key == self._key
        )

    def __hash__(self) -> int:
        return hash((self._kind.name, self._key))

    def __repr__(self) -> str:
        cell = self._kind.cells.get(self._key)
        state = cell.describe() if cell is not None else f"{self.name} inactive"
        return f"<EntityRef {state}>"


def _leave_slot(slot: Slot, fut: asyncio.Future[Any]) -> None:
    slot.pop(fut, None)
