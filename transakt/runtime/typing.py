"""Type aliases shared by the runtime's modules and by code that uses the runtime."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

if TYPE_CHECKING:
    from transakt.runtime.actor import Actor
    from transakt.runtime.ref import ActorRef

__all__ = ["ActorFactory", "EntityFactory", "EventHandler", "OnLimit", "Subscriber"]

#: What ``spawn`` takes: builds a fresh actor; called again on every restart.
ActorFactory: TypeAlias = "Callable[[], Actor]"
#: What ``register_entity`` takes: builds the actor for one entity key.
EntityFactory: TypeAlias = "Callable[[str], Actor]"
#: A function subscriber of the event bus: ``handler(topic, event)``, sync or async.
EventHandler: TypeAlias = Callable[[str, Any], "Awaitable[None] | None"]
#: An event bus subscriber: a function or an actor (which gets the event via ``tell``).
Subscriber: TypeAlias = "EventHandler | ActorRef"
#: What happens when an actor restarts more often than its policy allows.
OnLimit: TypeAlias = Literal["stop", "escalate"]
