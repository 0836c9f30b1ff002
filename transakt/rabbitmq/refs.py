"""Remote refs: an ``ActorRef`` whose actor lives in another process, reached over the broker.

They keep a local ref's contract: ``ask`` raises what the actor raised (when the codec knows
the type; ``RemoteFailure`` otherwise), ``AskTimeout`` when no answer comes in time,
``MailboxFull`` when the remote mailbox (or this side's in-flight bound) is full, and
``ActorDeadError`` when the actor or its process is gone. Two conditions are new, both
``ActorSystemError``\\ s: ``TransportUnavailable`` (the broker is unreachable: nothing was sent,
send again later) and ``ReplyLost`` (an ``AskTimeout``: sent, but the way back broke, so the
outcome is unknown). ``tell`` cannot learn of a full remote mailbox: the message is dropped
there and logged, as a fire-and-forget message must be.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from transakt.rabbitmq.codec import Op
from transakt.runtime import ActorRef, ActorSystemError

if TYPE_CHECKING:
    from transakt.rabbitmq.transport import RabbitTransport

__all__ = ["RemoteActorRef", "RemoteEntityRef"]


class RemoteEntityRef(ActorRef):
    """An entity hosted by whichever node owns its shard now."""

    __slots__ = ("_key", "_kind", "_queue", "_transport")

    def __init__(self, transport: RabbitTransport, kind: str, key: str, queue: str) -> None:
        self._transport = transport
        self._kind = kind
        self._key = key
        self._queue = queue

    @property
    def name(self) -> str:
        """``kind/key``, as for a local entity."""
        return f"{self._kind}/{self._key}"

    @property
    def kind(self) -> str:
        """The entity kind's name."""
        return self._kind

    @property
    def key(self) -> str:
        """The entity's key within its kind."""
        return self._key

    def tell(self, message: Any) -> None:
        """Send without an answer; ``TransportUnavailable`` if the broker is unreachable."""
        self._transport.tell(self._queue, Op.TELL, self._kind, self._key, message, self.name)

    async def ask(self, message: Any, timeout: float | None = 5.0) -> Any:  # noqa: ASYNC109
        """Send and await the answer of the entity, wherever it runs."""
        return await self._transport.ask(
            self._queue, Op.ASK, self._kind, self._key, message, timeout, self.name
        )

    async def stop(self) -> None:
        """Entities are passivated by the node that hosts them, not from afar."""
        raise ActorSystemError(f"{self.name} is remote: its own node passivates it")

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, RemoteEntityRef)
            and other._kind == self._kind
            and other._key == self._key
        )

    def __hash__(self) -> int:
        return hash((self._kind, self._key))

    def __repr__(self) -> str:
        return f"<RemoteEntityRef {self.name} via {self._queue}>"


class RemoteActorRef(ActorRef):
    """A spawned actor, by name, in the process of another node."""

    __slots__ = ("_actor", "_node", "_queue", "_transport")

    def __init__(self, transport: RabbitTransport, node: str, actor: str, queue: str) -> None:
        self._transport = transport
        self._node = node
        self._actor = actor
        self._queue = queue

    @property
    def name(self) -> str:
        """The actor's name on its node."""
        return self._actor

    @property
    def node(self) -> str:
        """The node the actor lives on."""
        return self._node

    def tell(self, message: Any) -> None:
        """Send without an answer; ``TransportUnavailable`` if the broker is unreachable."""
        self._transport.tell(self._queue, Op.TELL_ACTOR, "", self._actor, message, self.name)

    async def ask(self, message: Any, timeout: float | None = 5.0) -> Any:  # noqa: ASYNC109
        """Send and await the actor's answer; ``ActorDeadError`` if its node is gone."""
        return await self._transport.ask(
            self._queue, Op.ASK_ACTOR, "", self._actor, message, timeout, self.name
        )

    async def stop(self) -> None:
        """An actor is stopped by its own system."""
        raise ActorSystemError(f"{self._actor} lives on {self._node}: its own system stops it")

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, RemoteActorRef)
            and other._node == self._node
            and other._actor == self._actor
        )

    def __hash__(self) -> int:
        return hash((self._node, self._actor))

    def __repr__(self) -> str:
        return f"<RemoteActorRef {self._actor} on {self._node}>"
