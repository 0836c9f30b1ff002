"""Remote refs of the runtime alone, over the local RabbitMQ: the same contract as local refs."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from waits import wait_until

from cluster.brokerkit import drop_connections
from cluster.peers import Counter, Fail, Ping, Pong, Refused, Sleep, system, transport
from transakt.rabbitmq import Codec, CodecError, RabbitTransport, RemoteActorRef, RemoteEntityRef
from transakt.rabbitmq.codec import VERSION
from transakt.runtime import (
    ActorDeadError,
    ActorSystem,
    AskTimeout,
    RemoteFailure,
    TransportUnavailable,
)

TESTS = Path(__file__).resolve().parents[1]


@pytest.fixture
async def pair(rabbitmq_url: str, prefix: str) -> AsyncIterator[tuple[ActorSystem, ActorSystem]]:
    """Two systems in this process, on one broker: ``a`` hosts the entities, ``b`` only asks."""
    a = system(rabbitmq_url, prefix, "node-a")
    b = system(rabbitmq_url, prefix, "node-b", host=False)
    async with a, b:
        yield a, b


def remote(actors: ActorSystem, node: str, name: str) -> RemoteActorRef:
    transport = actors.transport
    assert transport is not None
    return transport.actor_ref(node, name)  # type: ignore[attr-defined, no-any-return]


async def test_ask_and_tell_reach_an_actor_in_another_system(
    pair: tuple[ActorSystem, ActorSystem],
) -> None:
    a, b = pair
    echo = remote(b, "node-a", "echo")
    assert await echo.ask(Ping(1)) == Pong(1, "node-a")
    # Many at once travel in a few broker messages and all come back, each to its caller.
    answers = await asyncio.gather(*(echo.ask(Ping(n)) for n in range(500)))
    assert [pong.n for pong in answers] == list(range(500))
    echo.tell(Ping(-1))
    assert await echo.ask(Ping(-2)) == Pong(-2, "node-a")  # after the tell, in order
    local = a.actor("echo")
    assert local is not None
    transport = b.transport
    assert isinstance(transport, RabbitTransport)
    assert transport.stats.asks_sent == 502 and transport.outbound.messages < 100


async def test_errors_cross_as_themselves_or_as_remote_failure(
    pair: tuple[ActorSystem, ActorSystem],
) -> None:
    _a, b = pair
    echo = remote(b, "node-a", "echo")
    with pytest.raises(Refused) as refused:
        await echo.ask(Fail(known=True))
    assert refused.value.code == 7 and str(refused.value) == "refused on purpose"
    with pytest.raises(RemoteFailure) as unknown:
        await echo.ask(Fail(known=False))
    assert unknown.value.remote_type.endswith("Unknown")
    # The actor restarted and answers again, as a local one would.
    assert await echo.ask(Ping(3)) == Pong(3, "node-a")
    with pytest.raises(ActorDeadError):
        await remote(b, "node-a", "nobody").ask(Ping(1))


async def test_an_unregistered_message_fails_its_sender_only(
    pair: tuple[ActorSystem, ActorSystem],
) -> None:
    _a, b = pair

    @dataclass
    class Secret:
        text: str

    echo = remote(b, "node-a", "echo")
    with pytest.raises(CodecError):
        await echo.ask(Secret("never pickled"))
    assert await echo.ask(Ping(4)) == Pong(4, "node-a")


async def test_timeouts_are_the_callers_and_a_late_answer_is_dropped(
    pair: tuple[ActorSystem, ActorSystem],
) -> None:
    _a, b = pair
    echo = remote(b, "node-a", "echo")
    started = time.monotonic()
    with pytest.raises(AskTimeout):
        await echo.ask(Sleep(0.5), timeout=0.1)
    assert time.monotonic() - started < 0.4
    await asyncio.sleep(0.6)  # the late answer arrives and finds nobody waiting
    assert await echo.ask(Ping(5)) == Pong(5, "node-a")
    assert b.transport.in_flight == 0  # type: ignore[union-attr]


async def test_entities_of_a_shard_live_on_its_owner(
    pair: tuple[ActorSystem, ActorSystem],
) -> None:
    a, b = pair
    counter = b.entity(Counter, "wallet-1")
    assert isinstance(counter, RemoteEntityRef)
    assert [await counter.ask(Ping(0)) for _ in range(3)] == [
        Pong(1, "node-a"),
        Pong(2, "node-a"),
        Pong(3, "node-a"),
    ]
    assert a.active_entities(Counter) == 1 and b.active_entities(Counter) == 0
    # The owner learns its shards from deliveries and probes, then skips the broker.
    transport = a.transport
    assert transport is not None

    await wait_until(lambda: transport.shards_owned == 4, "the owner to know its shards")  # type: ignore[attr-defined]
    assert not isinstance(a.entity(Counter, "wallet-1"), RemoteEntityRef)
    assert await a.entity(Counter, "wallet-1").ask(Ping(0)) == Pong(4, "node-a")


async def test_a_wrong_version_is_refused() -> None:
    wire = Codec()
    body = wire.encode([wire.frame((1, 2))]).replace(bytes([VERSION]), bytes([VERSION + 1]), 1)
    with pytest.raises(CodecError, match="version"):
        wire.decode(body)
    with pytest.raises(CodecError):
        wire.decode(b"\x80\x03pickle")


async def test_broker_unreachable_means_transport_unavailable(prefix: str) -> None:
    down = transport("amqp://guest:guest@127.0.0.1:1/", prefix, "node-x")
    with pytest.raises(TransportUnavailable):
        await down.ask(
            f"{prefix}.node.nobody",
            3,
            "",
            "echo",
            Ping(1),
            1.0,
            "echo",  # type: ignore[arg-type]
        )


async def _spawn_peer(url: str, prefix: str, node: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), *sys.path])}
    # A plain Popen: the peer runs for the whole test and is killed at its end.
    peer = subprocess.Popen(  # noqa: ASYNC220
        [sys.executable, "-m", "cluster.peers", url, prefix, node],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert peer.stdout is not None
    line = await asyncio.wait_for(asyncio.to_thread(peer.stdout.readline), 20)
    assert line.strip() == "ready", line
    return peer


def _reap(peer: subprocess.Popen[str]) -> None:
    if peer.poll() is None:
        peer.kill()
    peer.wait(10)
    if peer.stdout is not None:
        peer.stdout.close()


async def test_a_killed_peer_fails_asks_at_once_not_at_their_timeout(
    rabbitmq_url: str, prefix: str
) -> None:
    peer = await _spawn_peer(rabbitmq_url, prefix, "peer-1")
    try:
        async with system(rabbitmq_url, prefix, "asker", host=False) as asker:
            echo = remote(asker, "peer-1", "echo")
            assert await echo.ask(Ping(1)) == Pong(1, "peer-1")
            in_flight = asyncio.ensure_future(echo.ask(Sleep(30), timeout=30))
            await asyncio.sleep(0.2)
            peer.send_signal(signal.SIGKILL)
            peer.wait(10)
            started = time.monotonic()
            with pytest.raises(ActorDeadError):
                await in_flight
            assert time.monotonic() - started < 3.0  # a probe found its queue gone
            with pytest.raises(ActorDeadError):
                await echo.ask(Ping(2))
    finally:
        _reap(peer)


async def test_a_killed_owner_hands_its_shards_over(rabbitmq_url: str, prefix: str) -> None:
    first = await _spawn_peer(rabbitmq_url, prefix, "owner-1")
    try:
        async with system(rabbitmq_url, prefix, "owner-2") as second:
            transport = second.transport
            assert isinstance(transport, RabbitTransport)
            # owner-1 subscribed first, so it owned every shard; it hands half over.
            await wait_until(lambda: transport.shards_owned == 2, "the owners to even out")
            keys = [f"w{n}" for n in range(20)]
            answers = await asyncio.gather(*(second.entity(Counter, k).ask(Ping(0)) for k in keys))
            assert {pong.node for pong in answers} == {"owner-1", "owner-2"}
            on_first = next(
                k for k, pong in zip(keys, answers, strict=True) if pong.node == "owner-1"
            )
            slow = asyncio.ensure_future(
                second.entity(Counter, on_first).ask(Sleep(0.5), timeout=10)
            )
            await asyncio.sleep(0.1)
            first.send_signal(signal.SIGKILL)
            first.wait(10)
            # The unacknowledged ask is redelivered to the new owner and answered there.
            assert (await slow).node == "owner-2"
            answers = await asyncio.gather(*(second.entity(Counter, k).ask(Ping(0)) for k in keys))
            assert {pong.node for pong in answers} == {"owner-2"}
            assert transport.stats.redeliveries >= 1
    finally:
        _reap(first)


async def test_a_dropped_connection_comes_back_by_itself(
    pair: tuple[ActorSystem, ActorSystem],
) -> None:
    a, b = pair
    echo = remote(b, "node-a", "echo")
    counter = b.entity(Counter, "k-1")
    assert await echo.ask(Ping(1)) == Pong(1, "node-a")
    for name in ("transakt node-b", "transakt node-a"):
        transport = (b if name.endswith("b") else a).transport
        assert isinstance(transport, RabbitTransport)
        before = transport.stats.disconnects
        assert await drop_connections(name) == 1
        await wait_until(
            lambda t=transport, n=before: t.stats.disconnects > n and t.connected,  # type: ignore[misc]
            f"{name} to notice the drop and reconnect",
        )

        async def answers() -> bool:
            try:
                return await echo.ask(Ping(3), timeout=1.0) == Pong(3, "node-a")
            except (TransportUnavailable, AskTimeout):
                return False

        await wait_until(answers, "asks to work again")
        assert (await counter.ask(Ping(0))).node == "node-a"
