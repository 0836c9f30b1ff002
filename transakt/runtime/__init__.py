"""Transakt's actor runtime: actors, entities, supervision and an event bus on asyncio.

Stands alone (standard library only), so it can be used without the rest of the project.
This package is its public API: import from ``transakt.runtime`` (clocks also from
``transakt.runtime.clock``). The ``_``-prefixed modules are internals and may change.
"""

from transakt.runtime._actor import Actor, Deferred
from transakt.runtime._errors import (
    ActorDeadError,
    ActorNameTaken,
    ActorStopped,
    ActorSystemError,
    AskTimeout,
    EscalatedFailure,
    MailboxFull,
    RemoteFailure,
    ReplyLost,
    RuntimeFailure,
    SupervisorClosed,
    TransportUnavailable,
    UnknownEntityKind,
)
from transakt.runtime._events import ALL_TOPICS, EventBus, Subscription
from transakt.runtime._metrics import RuntimeMetrics
from transakt.runtime._ref import ActorRef, EntityRef, LocalActorRef
from transakt.runtime._supervision import RestartPolicy
from transakt.runtime._system import ActorSystem
from transakt.runtime._tasks import SupervisedTask, TaskSupervisor
from transakt.runtime._transport import Transport
from transakt.runtime.clock import Clock, MonotonicClock, TimerHandle, VirtualClock

__all__ = [
    "ALL_TOPICS",
    "Actor",
    "ActorDeadError",
    "ActorNameTaken",
    "ActorRef",
    "ActorStopped",
    "ActorSystem",
    "ActorSystemError",
    "AskTimeout",
    "Clock",
    "Deferred",
    "EntityRef",
    "EscalatedFailure",
    "EventBus",
    "LocalActorRef",
    "MailboxFull",
    "MonotonicClock",
    "RemoteFailure",
    "ReplyLost",
    "RestartPolicy",
    "RuntimeFailure",
    "RuntimeMetrics",
    "Subscription",
    "SupervisedTask",
    "SupervisorClosed",
    "TaskSupervisor",
    "TimerHandle",
    "Transport",
    "TransportUnavailable",
    "UnknownEntityKind",
    "VirtualClock",
]
