"""The cluster's wire format: explicit, versioned, typed; nothing is unpickled from the network.

A broker message carries a *batch* of frames (many asks or replies per broker message is what
makes a broker hop affordable). The body is MessagePack (msgspec, in C)::

    [VERSION, [frame, frame, ...]]

and each frame is a short array whose first element says what it is (``Op``). Messages and
replies travel as ``[type name, fields]``: only types registered with ``Codec.register`` are
encoded or decoded, by name, and decoding builds them with ``msgspec.convert`` (dataclasses,
msgspec Structs, and the datetimes, enums and nested registered types inside them). An unknown
name, a wrong field or a frame of the wrong shape is a ``CodecError``, never code run.

Errors travel the same way. The runtime's own (``MailboxFull``, ``ActorDeadError``,
``AskTimeout``) and any exception class registered with ``register_error`` come back as
themselves; anything else arrives as ``RemoteFailure`` naming the remote type and message.
A receiver refuses a batch whose version it does not know, so a rolling upgrade that changes
the format bumps ``VERSION`` and teaches the new nodes to read the old one first.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable
from typing import Any, Final

import msgspec

from transakt.runtime import (
    ActorDeadError,
    ActorSystemError,
    AskTimeout,
    MailboxFull,
    RemoteFailure,
)

__all__ = ["VERSION", "Codec", "CodecError", "Op"]

#: The wire format's version: the first element of every batch.
VERSION: Final = 1


class Op(enum.IntEnum):
    """What a frame is: its first element."""

    #: ``[ASK, id, kind, key, deadline, type, fields]``: to an entity, answer to the reply queue.
    ASK = 1
    #: ``[TELL, 0, kind, key, 0, type, fields]``: to an entity, no answer.
    TELL = 2
    #: ``[ASK_ACTOR, id, "", name, deadline, type, fields]``: to a spawned actor by name.
    ASK_ACTOR = 3
    #: ``[TELL_ACTOR, 0, "", name, 0, type, fields]``.
    TELL_ACTOR = 4
    #: ``[REPLY, id, type, fields]``: the answer to an ask.
    REPLY = 5
    #: ``[FAILURE, id, type, fields]``: the ask raised (or could not be delivered).
    FAILURE = 6
    #: ``[PROBE, node]``: sent to a shard queue so its active consumer learns it owns the shard.
    PROBE = 7
    #: ``[EVENT, topic, type, fields]``: an event published on one system's bus.
    EVENT = 8


class CodecError(ActorSystemError, ValueError):
    """A message could not be encoded, or a received one is not in the expected format."""


def _error_state(error: BaseException) -> dict[str, Any]:
    return {k: v for k, v in vars(error).items() if not k.startswith("_")}


class Codec:
    """Registered message and error types, and the batch encoder and decoder."""

    def __init__(self) -> None:
        self._names: dict[type, str] = {}
        self._types: dict[str, type] = {}
        self._errors: dict[str, type[BaseException]] = {}
        self._error_names: dict[type[BaseException], str] = {}
        self._builders: dict[str, Callable[[dict[str, Any]], BaseException]] = {}
        self._encoder = msgspec.msgpack.Encoder(enc_hook=self._enc_hook)
        self._decoder = msgspec.msgpack.Decoder()
        for builtin in (type(None), bool, int, float, str, bytes, list, dict):
            self._names[builtin] = builtin.__name__
            self._types[builtin.__name__] = builtin
        self.register_error(MailboxFull, _mailbox_full, "runtime.MailboxFull")
        self.register_error(ActorDeadError, _actor_dead, "runtime.ActorDeadError")
        self.register_error(AskTimeout, _ask_timeout, "runtime.AskTimeout")

    def __repr__(self) -> str:
        return f"<Codec v{VERSION} types={len(self._types)} errors={len(self._errors)}>"

    # -- registration ------------------------------------------------------------------------

    def register(self, *types: type, name: str | None = None) -> None:
        """Let these message types (dataclasses or msgspec Structs) cross the wire, by name.

        The name defaults to the class's qualified name; both sides must agree on it.
        """
        if name is not None and len(types) != 1:
            raise ValueError("a name can be given for one type at a time")
        for cls in types:
            if not (dataclasses.is_dataclass(cls) or issubclass(cls, msgspec.Struct)):
                raise TypeError(f"{cls.__name__} is neither a dataclass nor a msgspec Struct")
            wire = name or f"{cls.__module__}.{cls.__qualname__}"
            self._names[cls] = wire
            self._types[wire] = cls

    def register_error(
        self,
        cls: type[BaseException],
        build: Callable[[dict[str, Any]], BaseException] | None = None,
        name: str | None = None,
    ) -> None:
        """Let this exception class (and its registered subclasses) cross the wire as itself.

        By default it is rebuilt without calling ``__init__``: its message and public
        attributes are restored as they were sent (which suits exceptions that keep their
        data as attributes). ``build`` overrides that, from the same dict of attributes.
        """
        wire = name or f"{cls.__module__}.{cls.__qualname__}"
        self._errors[wire] = cls
        self._error_names[cls] = wire
        if build is not None:
            self._builders[wire] = build

    # -- values ------------------------------------------------------------------------------

    def name_of(self, value: Any) -> str:
        """The wire name of ``value``'s type; CodecError if it is not registered."""
        try:
            return self._names[type(value)]
        except KeyError:
            raise CodecError(f"{type(value).__name__} is not registered with the codec") from None

    def value(self, name: str, fields: Any) -> Any:
        """Build the registered type ``name`` from its decoded fields."""
        cls = self._types.get(name)
        if cls is None:
            raise CodecError(f"unknown message type {name!r}")
        if cls in _PLAIN:
            if not isinstance(fields, cls):
                raise CodecError(f"{name} expected, got {type(fields).__name__}")
            return fields
        try:
            return msgspec.convert(fields, cls, dec_hook=self._dec_hook, strict=False)
        except msgspec.ValidationError as error:
            raise CodecError(f"{name}: {error}") from None

    def error_fields(self, error: BaseException) -> tuple[str, dict[str, Any]]:
        """How an exception travels: its registered name (or the RemoteFailure stand-in) and
        its message and attributes."""
        for cls in type(error).__mro__:
            wire = self._error_names.get(cls)
            if wire is not None:
                # An unregistered subclass travels as its nearest registered base.
                return wire, {"message": str(error), "state": _error_state(error)}
        return "runtime.RemoteFailure", {
            "message": str(error),
            "state": {"remote_type": f"{type(error).__module__}.{type(error).__qualname__}"},
        }

    def error(self, name: str, fields: Any) -> BaseException:
        """Rebuild an exception sent by ``error_fields``."""
        if not isinstance(fields, dict):
            raise CodecError(f"error {name!r} has no fields")
        message = str(fields.get("message", ""))
        state = fields.get("state")
        state = state if isinstance(state, dict) else {}
        build = self._builders.get(name)
        if build is not None:
            try:
                return build({"message": message, **state})
            except Exception as failure:
                raise CodecError(f"error {name!r} could not be rebuilt: {failure!r}") from None
        cls = self._errors.get(name)
        if cls is None:
            return RemoteFailure(str(state.get("remote_type", name)), message)
        rebuilt = cls.__new__(cls)
        BaseException.__init__(rebuilt, message)
        for key, value in state.items():
            if isinstance(key, str) and not key.startswith("_"):
                setattr(rebuilt, key, value)
        return rebuilt

    # -- batches -----------------------------------------------------------------------------

    def frame(self, frame: tuple[Any, ...]) -> msgspec.Raw:
        """One frame, encoded on its own (a batch then embeds it as it is)."""
        try:
            return msgspec.Raw(self._encoder.encode(frame))
        except (TypeError, NotImplementedError, OverflowError) as error:
            raise CodecError(f"cannot encode {frame[0]!r} frame: {error}") from None

    def decode_frame(self, raw: msgspec.Raw) -> list[Any]:
        """A frame made by ``frame``, decoded (to see what a batch that failed carried)."""
        decoded: list[Any] = self._decoder.decode(bytes(raw))
        return decoded

    def encode(self, frames: list[msgspec.Raw]) -> bytes:
        """One broker message's body: frames made by ``frame``."""
        return self._encoder.encode((VERSION, frames))

    def decode(self, body: bytes) -> list[Any]:
        """The frames of one broker message's body; CodecError if it is not one of ours."""
        try:
            decoded = self._decoder.decode(body)
        except msgspec.DecodeError as error:
            raise CodecError(f"not a message of this cluster: {error}") from None
        if not (isinstance(decoded, list) and len(decoded) == 2 and isinstance(decoded[1], list)):
            raise CodecError("not a batch of frames")
        if decoded[0] != VERSION:
            raise CodecError(f"wire format version {decoded[0]!r} (this node reads {VERSION})")
        frames: list[Any] = decoded[1]
        return frames

    def _enc_hook(self, value: Any) -> Any:
        if isinstance(value, BaseException):
            name, fields = self.error_fields(value)
            return {"__error__": name, **fields}
        raise NotImplementedError(f"{type(value).__name__} cannot be encoded")

    def _dec_hook(self, cls: type, value: Any) -> Any:
        if isinstance(cls, type) and issubclass(cls, BaseException) and isinstance(value, dict):
            name = value.get("__error__")
            if isinstance(name, str):
                return self.error(name, value)
        raise NotImplementedError(f"cannot decode {cls!r}")


_PLAIN: Final = frozenset({type(None), bool, int, float, str, bytes, list, dict})


def _mailbox_full(state: dict[str, Any]) -> BaseException:
    return MailboxFull(str(state.get("actor", "?")), int(state.get("capacity", 0)))


def _actor_dead(state: dict[str, Any]) -> BaseException:
    return ActorDeadError(str(state.get("actor", "?")), str(state.get("reason", "stopped")))


def _ask_timeout(state: dict[str, Any]) -> BaseException:
    return AskTimeout(
        str(state.get("actor", "?")),
        str(state.get("message_type", "?")),
        float(state.get("timeout", 0.0)),
    )
