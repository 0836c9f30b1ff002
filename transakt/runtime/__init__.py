"""Transakt's actor runtime: actors, entities, supervision and an event bus on asyncio.

Stands alone (standard library only), so it can be used without the rest of the project.
"""

from transakt.runtime.actor import Actor, Deferred
from transakt.runtime.clock import Clock, MonotonicClock, VirtualClock
from transakt.runtime.errors import (
    ActorDeadError,
    ActorNameTaken,
    ActorStopped,
    AskTimeout,
    EscalatedFailure,
    MailboxFull,
    RuntimeFailure,
    TransaktError,
    UnknownEntityKind,
)
from transakt.runtime.events import ALL_TOPICS, EventBus, Subscription
from transakt.runtime.metrics import RuntimeMetrics
from transakt.runtime.ref import ActorRef, EntityRef, LocalActorRef
from transakt.runtime.supervision import RestartPolicy
from transakt.runtime.system import ActorSystem
from transakt.runtime.transport import Transport

__all__ = [
    "ALL_TOPICS",
    "Actor",
    "ActorDeadError",
    "ActorNameTaken",
    "ActorRef",
    "ActorStopped",
    "ActorSystem",
    "AskTimeout",
    "Clock",
    "Deferred",
    "EntityRef",
    "EscalatedFailure",
    "EventBus",
    "LocalActorRef",
    "MailboxFull",
    "MonotonicClock",
    "RestartPolicy",
    "RuntimeFailure",
    "RuntimeMetrics",
    "Subscription",
    "TransaktError",
    "Transport",
    "UnknownEntityKind",
    "VirtualClock",
]
