"""The ``Actor`` base class and the ``Deferred`` reply marker."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, ClassVar, Generic, TypeVar

if TYPE_CHECKING:
    from transakt.runtime._ref import ActorRef
    from transakt.runtime._system import ActorSystem

__all__ = ["Actor", "Deferred"]

T = TypeVar("T")


class Actor:
    """Subclass and override ``receive``; one message at a time, in arrival order.

    ``self.ref`` and ``self.system`` are set by the runtime before ``started()`` runs.
    """

    # Slots keep the per-actor footprint small; subclasses without __slots__ still get a dict.
    __slots__ = ("ref", "system")

    #: Exception types ``receive`` raises as ordinary answers (a refused withdrawal, say): they
    #: go to the asker like any error, but are not crashes, so the actor keeps its state.
    reply_errors: ClassVar[tuple[type[Exception], ...]] = ()

    ref: ActorRef
    system: ActorSystem

    async def receive(self, message: Any) -> Any:
        """Handle one message; the return value is the reply to ``ask`` (dropped for ``tell``)."""
        raise NotImplementedError(f"{type(self).__name__} does not handle {type(message).__name__}")

    async def started(self) -> None:
        """Called before the first message (and after every restart); a crash here is a crash."""

    async def stopped(self) -> None:
        """Called once when the actor stops or is passivated."""

    async def before_restart(self, error: BaseException, message: Any) -> None:
        """Called on the crashed instance before it is replaced by a fresh one from the factory."""


class Deferred(Generic[T]):
    """Returned from ``receive``: answer the ask when ``awaitable`` completes, without waiting.

    The mailbox moves on to the next message at once; a failure of the awaitable fails only the
    ask that produced it, not the actor.
    """

    __slots__ = ("awaitable",)

    def __init__(self, awaitable: Awaitable[T]) -> None:
        self.awaitable = awaitable

    def __repr__(self) -> str:
        return f"<Deferred {self.awaitable!r}>"
