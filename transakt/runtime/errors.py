"""Errors raised by the actor runtime; ``TransaktError`` is the root of the whole project."""

from __future__ import annotations

__all__ = [
    "ActorDeadError",
    "ActorNameTaken",
    "ActorStopped",
    "AskTimeout",
    "EscalatedFailure",
    "MailboxFull",
    "RuntimeFailure",
    "TransaktError",
    "UnknownEntityKind",
]


class TransaktError(Exception):
    """Root of every error the project raises on purpose."""


class RuntimeFailure(TransaktError):
    """Base of the errors the actor runtime itself raises."""


class MailboxFull(RuntimeFailure):
    """A message was refused because the actor's bounded mailbox is at capacity."""

    def __init__(self, actor: str, capacity: int) -> None:
        super().__init__(f"mailbox of actor {actor!r} is full ({capacity} messages queued)")
        self.actor = actor
        self.capacity = capacity


class AskTimeout(RuntimeFailure, TimeoutError):
    """An ``ask`` got no reply in time; the work itself goes on and a late reply is dropped."""

    def __init__(self, actor: str, message_type: str, timeout: float) -> None:
        super().__init__(f"actor {actor!r} did not answer {message_type} within {timeout:g}s")
        self.actor = actor
        self.message_type = message_type
        self.timeout = timeout


class ActorDeadError(RuntimeFailure):
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


class EscalatedFailure(RuntimeFailure):
    """A child exceeded its restart limit and escalated: its parent handles it as its own crash."""

    def __init__(self, child: str, cause: BaseException) -> None:
        super().__init__(f"child {child!r} failed too often: {type(cause).__name__}: {cause}")
        self.child = child
        self.cause = cause
        self.__cause__ = cause


class UnknownEntityKind(RuntimeFailure, LookupError):
    """``system.entity`` got a kind that is not registered (and no transport took it)."""

    def __init__(self, kind: str) -> None:
        super().__init__(f"entity kind {kind!r} is not registered")
        self.kind = kind


class ActorNameTaken(RuntimeFailure, ValueError):
    """``spawn`` was given the name of an actor that is still alive."""

    def __init__(self, name: str) -> None:
        super().__init__(f"an actor named {name!r} already exists")
        self.name = name
