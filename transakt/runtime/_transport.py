"""The seam for a network transport (a message broker, say) between actor systems."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    from transakt.runtime._ref import ActorRef
    from transakt.runtime._system import ActorSystem

__all__ = ["Transport"]


@runtime_checkable
class Transport(Protocol):
    """Routes entities and events beyond this process (``transakt.rabbitmq`` has one).

    Remote refs it returns must subclass ``ActorRef``. A remote event it receives should be
    handed to ``system.events.publish_local`` so it is not forwarded again.
    """

    async def start(self, system: ActorSystem) -> None:
        """Connect; called by ``ActorSystem.start()`` (and ``async with``)."""
        ...

    async def leave(self) -> None:
        """Stop taking work from other systems, and finish what was taken; called first by
        ``ActorSystem.shutdown()``, so that work goes elsewhere while this system stops."""
        ...

    async def close(self) -> None:
        """Disconnect; called last by ``ActorSystem.shutdown()``."""
        ...

    def entity_ref(self, kind: str, key: str) -> ActorRef | None:
        """A remote ref for this entity, or None to handle it in this process."""
        ...

    async def publish(self, topic: str, event: Any) -> None:
        """Send an event published on this system to the other systems."""
        ...
