"""Type aliases shared by the runtime's modules."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

if TYPE_CHECKING:
    from transakt.runtime._actor import Actor
    from transakt.runtime._ref import ActorRef

__all__ = [
    "ActorFactory",
    "EntityFactory",
    "EventHandler",
    "OnLimit",
    "Subscriber",
    "TaskFactory",
    "TaskState",
]

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
#: What ``TaskSupervisor.spawn`` takes: starts one run of a loop; called again on every restart.
TaskFactory: TypeAlias = Callable[[], "Awaitable[object]"]
#: Where a supervised task stands; the last three are final.
TaskState: TypeAlias = Literal[
    "running", "restarting", "stopping", "finished", "failed", "cancelled"
]
