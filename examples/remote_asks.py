"""Two processes, one actor system each, asking each other through RabbitMQ (no wallet).

    python examples/remote_asks.py                      # broker at amqp://guest:guest@127.0.0.1/
    python examples/remote_asks.py amqp://user:pw@host/ # another broker

This process starts a second one (``host``) that hosts the ``Account`` entities and a named
``greeter`` actor, then asks them from here: an entity by key (the broker routes it to the
shard's owner), a named actor on a node, an error that crosses as itself, and a timeout.
Messages are dataclasses registered with the codec on both sides; nothing is pickled.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Importable however it is run from the repository root, installed or not.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from transakt.rabbitmq import Codec, RabbitTransport
from transakt.runtime import Actor, ActorSystem, AskTimeout


@dataclass(frozen=True)
class Deposit:
    amount: int


@dataclass(frozen=True)
class Withdraw:
    amount: int


@dataclass(frozen=True)
class Greet:
    name: str


class Refused(Exception):
    """An application error; registered, so it arrives on the other side as itself."""


class Account(Actor):
    """An entity: one per key, living on whichever node owns the key's shard."""

    reply_errors = (Refused,)  # a refusal is an answer, not a crash

    def __init__(self, key: str) -> None:
        self.key = key
        self.balance = 0

    async def receive(self, message: Any) -> Any:
        if isinstance(message, Deposit):
            self.balance += message.amount
        elif isinstance(message, Withdraw):
            if message.amount > self.balance:
                raise Refused(f"{self.key} holds only {self.balance}")
            self.balance -= message.amount
        return self.balance


class Greeter(Actor):
    """A spawned actor, reached by its node and name."""

    async def receive(self, message: Any) -> Any:
        if message == "nap":
            await asyncio.sleep(1.0)
        return f"hello, {message.name}" if isinstance(message, Greet) else "yawn"


def codec() -> Codec:
    wire = Codec()
    wire.register(Deposit, Withdraw, Greet)
    wire.register_error(Refused)
    return wire


def system(url: str, prefix: str, node: str, *, host: bool) -> ActorSystem:
    transport = RabbitTransport(
        url, codec(), node_id=node, shards=4, sharded={"Account"}, host_shards=host, prefix=prefix
    )
    actors = ActorSystem(node, transport=transport)
    actors.register_entity(Account)
    return actors


async def host(url: str, prefix: str) -> None:
    async with system(url, prefix, "host", host=True) as actors:
        actors.spawn(Greeter, name="greeter")
        print("ready", flush=True)
        await asyncio.Event().wait()


async def ask(url: str, prefix: str) -> None:
    async with system(url, prefix, "asker", host=False) as actors:
        transport = actors.transport
        assert isinstance(transport, RabbitTransport)
        alice = actors.entity(Account, "alice")  # a RemoteEntityRef: the host owns every shard
        await alice.ask(Deposit(100))
        print("alice after withdrawing 30:", await alice.ask(Withdraw(30)))
        try:
            await alice.ask(Withdraw(1_000))
        except Refused as error:
            print("refused, as itself:", error)
        greeter = transport.actor_ref("host", "greeter")
        print(await greeter.ask(Greet("remote world")))
        try:
            await greeter.ask("nap", timeout=0.2)
        except AskTimeout:
            print("the nap took longer than 0.2 s: AskTimeout, as for a local actor")
        answers = await asyncio.gather(
            *(actors.entity(Account, f"a{n}").ask(Deposit(n)) for n in range(1000))
        )
        print(f"1000 asks in {transport.outbound.messages} broker messages; sum {sum(answers)}")


async def cleanup(url: str, prefix: str) -> None:
    import aio_pika

    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        for shard in range(4):
            await channel.queue_delete(f"{prefix}.shard.{shard}")


def main() -> None:
    url = sys.argv[1] if len(sys.argv) > 1 else "amqp://guest:guest@127.0.0.1:5672/"
    if len(sys.argv) > 3 and sys.argv[2] == "host":
        asyncio.run(host(url, sys.argv[3]))
        return
    prefix = f"example-{uuid.uuid4().hex[:6]}"
    peer = subprocess.Popen(
        [sys.executable, __file__, url, "host", prefix], stdout=subprocess.PIPE, text=True
    )
    try:
        assert peer.stdout is not None
        if peer.stdout.readline().strip() != "ready":
            raise SystemExit("the host process did not start (is RabbitMQ running?)")
        asyncio.run(ask(url, prefix))
    finally:
        peer.terminate()
        peer.wait(10)
        if peer.stdout is not None:
            peer.stdout.close()
        asyncio.run(cleanup(url, prefix))


if __name__ == "__main__":
    main()
