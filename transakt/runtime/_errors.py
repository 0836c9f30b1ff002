"""Errors raised by the actor runtime, all under its own root, ``ActorSystemError``.

The runtime is a library: the application defines its own error root and does not share it.
"""

from __future__ import annotations

__all__ = [
    "ActorDeadError",
    "ActorNameTaken",
    "ActorStopped",
    "ActorSystemError",
    "AskTimeout",
    "EscalatedFailure",
    "MailboxFull",
    "RemoteFailure",
    "ReplyLost",
    "RuntimeFailure",
    "SupervisorClosed",
    "TransportUnavailable",
    "UnknownEntityKind",
]


class ActorSystemError(Exception):
    """Root of every error the runtime raises on purpose (actors, entities, supervised tasks)."""


#: The root's former name, kept so existing ``except RuntimeFailure`` clauses still work.
RuntimeFailure = ActorSystemError


class MailboxFull(ActorSystemError):
    """A message was refused because the actor's bounded mailbox is at capacity."""

    def __init__(self, actor: str, capacity: int) -> None:
        super().__init__(f"mailbox of actor {actor!r} is full ({capacity} messages queued)")
        self.actor = actor
        self.capacity = capacity


class AskTimeout(ActorSystemError, TimeoutError):
    """An ``ask`` got no reply in time; the work itself goes on and a late reply is dropped."""

    def __init__(self, actor: str, message_type: str, timeout: float) -> None:
        super().__init__(f"actor {actor!r} did not answer {message_type} within {timeout:g}s")
        self.actor = actor
        self.message_type = message_type
        self.timeout = timeout


class ActorDeadError(ActorSystemError):
    """The actor is stopped (or stopped before it could answer): the message was not handled."""

    def __init__(
        self, actor: str, reason: str = "stopped", cause: BaseException | None = None
    ) -> None:
        text = f"actor {actor!r} is {reason}"
        if cause is not None:
            text += f" (cause: {type(cause).__name__}: {cause})"
        super().__init__(text)
        self.actor = actor
        self.reason = reason
        self.cause = cause
        # Chained so a traceback of the dead-letter error shows why the actor died.
        self.__cause__ = cause


#: Alias: some callers find "stopped" the more natural name for the same condition.
ActorStopped = ActorDeadError


class EscalatedFailure(ActorSystemError):
    """A child exceeded its restart limit and escalated: its parent handles it as its own crash."""

    def __init__(self, child: str, cause: BaseException) -> None:
        super().__init__(f"child {child!r} failed too often: {type(cause).__name__}: {cause}")
        self.child = child
        self.cause = cause
        self.__cause__ = cause


class UnknownEntityKind(ActorSystemError, LookupError):
    """``system.entity`` got a kind that is not registered (and no transport took it)."""

    def __init__(self, kind: str) -> None:
        super().__init__(f"entity kind {kind!r} is not registered")
        self.kind = kind


class ActorNameTaken(ActorSystemError, ValueError):
    """``spawn`` was given the name of an actor that is still alive."""

    def __init__(self, name: str) -> None:
        super().__init__(f"an actor named {name!r} already exists")
        self.name = name


class SupervisorClosed(ActorSystemError, RuntimeError):
    """``TaskSupervisor.spawn`` was called once the supervisor began closing."""

    def __init__(self, supervisor: str, task: str) -> None:
        super().__init__(f"task supervisor {supervisor!r} is closed; {task!r} was not started")
        self.supervisor = supervisor
        self.task = task


class RemoteFailure(ActorSystemError):
    """A remote actor raised an exception this side's codec does not know: its type and text."""

    def __init__(self, remote_type: str, message: str) -> None:
        super().__init__(f"remote actor raised {remote_type}: {message}")
        self.remote_type = remote_type
        self.remote_message = message


class TransportUnavailable(ActorSystemError):
    """The message could not be sent: the transport (a broker, say) is unreachable now.

    Nothing was delivered, so the message may be sent again once it is back.
    """

    def __init__(self, actor: str, reason: str, retry_after: float = 1.0) -> None:
        super().__init__(f"cannot reach {actor!r}: {reason}")
        self.actor = actor
        self.reason = reason
        self.retry_after = retry_after


class ReplyLost(AskTimeout):
    """The ask was sent, but the way back broke before the answer came: like a timeout, the
    work may still happen (or have happened), so its outcome is unknown."""

    def __init__(self, actor: str, message_type: str, reason: str) -> None:
        super().__init__(actor, message_type, 0.0)
        self.args = (f"the answer of {actor!r} to {message_type} was lost: {reason}",)
        self.reason = reason
