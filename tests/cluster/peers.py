"""A runtime-only peer for the remote-ref tests: the message types, and a node process.

``python -m cluster.peers URL PREFIX NODE`` hosts an ``Echo`` actor named ``echo`` and the
``Counter`` entities of every shard it owns, then prints ``ready`` and serves until killed.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass
from typing import Any

from transakt.rabbitmq import Codec, RabbitTransport
from transakt.runtime import Actor, ActorSystem


@dataclass(frozen=True, slots=True)
class Ping:
    n: int


@dataclass(frozen=True, slots=True)
class Pong:
    n: int
    node: str


@dataclass(frozen=True, slots=True)
class Sleep:
    seconds: float


@dataclass(frozen=True, slots=True)
class Fail:
    known: bool


class Refused(Exception):
    """An application error both sides register: it comes back as itself."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


class Unknown(Exception):
    """Not registered: the caller sees RemoteFailure."""


def codec() -> Codec:
    wire = Codec()
    wire.register(Ping, Pong, Sleep, Fail)
    wire.register_error(Refused)
    return wire


class Echo(Actor):
    """Answers a Ping with a Pong naming its node; sleeps or fails on demand."""

    def __init__(self, node: str) -> None:
        self.node = node
        self.seen: list[int] = []

    async def receive(self, message: Any) -> Any:
        if isinstance(message, Ping):
            self.seen.append(message.n)
            return Pong(message.n, self.node)
        if isinstance(message, Sleep):
            await asyncio.sleep(message.seconds)
            return Pong(0, self.node)
        if isinstance(message, Fail):
            if message.known:
                raise Refused("refused on purpose", code=7)
            raise Unknown("an error the caller's codec does not know")
        raise TypeError(type(message).__name__)


class Counter(Actor):
    """An entity: counts the Pings it got, answers with the count and its node."""

    def __init__(self, node: str) -> None:
        self.node = node
        self.count = 0

    async def receive(self, message: Any) -> Any:
        if isinstance(message, Sleep):
            await asyncio.sleep(message.seconds)
            return Pong(self.count, self.node)
        assert isinstance(message, Ping)
        self.count += 1
        return Pong(self.count, self.node)


def transport(
    url: str, prefix: str, node: str, *, host: bool = True, **options: Any
) -> RabbitTransport:
    return RabbitTransport(
        url,
        codec(),
        node_id=node,
        shards=4,
        sharded={"Counter"},
        host_shards=host,
        prefix=prefix,
        probe_seconds=0.2,
        **options,
    )


def system(url: str, prefix: str, node: str, *, host: bool = True, **options: Any) -> ActorSystem:
    actors = ActorSystem(node, transport=transport(url, prefix, node, host=host, **options))
    actors.register_entity(Counter, lambda _key: Counter(node))
    actors.spawn(lambda: Echo(node), name="echo")
    return actors


async def _serve(url: str, prefix: str, node: str) -> None:
    async with system(url, prefix, node):
        print("ready", flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    # Through the module's own name: the message types are registered as cluster.peers.*.
    from cluster import peers

    asyncio.run(peers._serve(*sys.argv[1:4]))
