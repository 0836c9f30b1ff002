"""RabbitTransport: the runtime's ``Transport`` on RabbitMQ (aio-pika), for entities and asks.

Topology (names under a prefix, ``transakt`` by default):

- ``<prefix>.shard.<n>``: one durable queue per shard, with ``x-single-active-consumer``. Every
  hosting node consumes every shard queue; the broker makes one consumer active per queue, so
  each shard has one owner at a time. An entity's shard is a stable hash of its key
  (``shard_of``). When the owner dies or disconnects, the broker activates another consumer
  and redelivers what the owner had not acknowledged. A delivery is acknowledged only once
  every ask in it has been answered, so a command is redelivered until someone answered it
  (the application makes that safe: a wallet's command carries its transfer id).
- ``<prefix>.node.<node id>``: each node's own exclusive queue: answers to its asks, and asks
  to its spawned actors by name (``RemoteActorRef``).
- ``<prefix>.bus``: a topic exchange for events forwarded from the runtime's bus.

Throughput comes from batching: everything bound for one queue within one event-loop turn
travels as one broker message (``_outbound``), and answers likewise. Latency comes from not
using the broker where it adds nothing: a node learns which shards it owns from the deliveries
it gets (a probe goes to every shard it does not own, every ``probe_seconds``), and asks for an
entity of an owned shard go straight to the local entity. A node forgets all it owns the moment
its connection drops (another may be active by then) and passivates those entities, so a copy
with a stale view does not linger.

While the broker is unreachable, asks for entities of other nodes fail at once with
``TransportUnavailable``, and asks awaiting an answer fail with ``ReplyLost`` (the way back is
gone: outcome unknown). The connection (``BrokerLink``) is made again whenever it is lost, and
everything on it is built afresh.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
import uuid
import zlib
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiormq.exceptions
import msgspec
from pamqp.commands import Basic

from transakt.rabbitmq._inbound import Inbound
from transakt.rabbitmq._link import BrokerLink
from transakt.rabbitmq._outbound import Outbound
from transakt.rabbitmq._ownership import Ownership
from transakt.rabbitmq._pending import Pending, PendingAsks
from transakt.rabbitmq._topology import Topology
from transakt.rabbitmq.codec import Codec, CodecError, Op
from transakt.rabbitmq.refs import RemoteActorRef, RemoteEntityRef
from transakt.runtime import (
    ActorDeadError,
    ActorRef,
    MailboxFull,
    ReplyLost,
    TaskSupervisor,
    TransportUnavailable,
)

if TYPE_CHECKING:
    from transakt.runtime import ActorSystem

__all__ = ["RabbitTransport", "TransportStats", "shard_of"]

log = logging.getLogger("transakt.cluster")

_UNREACHABLE = "the message broker is unreachable"


def shard_of(key: str, shards: int) -> int:
    """The shard of an entity key: CRC-32 of its UTF-8 bytes, stable across processes."""
    return zlib.crc32(key.encode()) % shards


@dataclass(slots=True)
class TransportStats:
    """Counters for /metrics (monotonic)."""

    asks_sent: int = 0
    tells_sent: int = 0
    asks_served: int = 0
    redeliveries: int = 0
    shards_gained: int = 0
    shards_lost: int = 0
    returned: int = 0
    disconnects: int = 0
    #: Messages handled by this node's entities, per shard (local fast path or delivered).
    by_shard: list[int] = field(default_factory=list)


class RabbitTransport:
    """Shards entities over RabbitMQ, carries asks and answers in batches, forwards events."""

    def __init__(
        self,
        url: str,
        codec: Codec,
        *,
        node_id: str,
        shards: int = 64,
        sharded: Collection[str] = (),
        host_shards: bool = True,
        prefix: str = "transakt",
        event_topics: Collection[str] = (),
        probe_seconds: float = 1.0,
        prefetch: int = 64,
        max_in_flight: int = 50_000,
        reconnect_seconds: float = 1.0,
    ) -> None:
        if shards < 1:
            raise ValueError("shards must be >= 1")
        self.url = url
        self.codec = codec
        self.node_id = node_id
        self.shards = shards
        self.sharded = frozenset(sharded)
        self.host_shards = host_shards and bool(self.sharded)
        self.prefix = prefix
        self.event_topics = frozenset(event_topics)
        self.probe_seconds = probe_seconds
        self._max_in_flight = max_in_flight
        self._reconnect_seconds = reconnect_seconds
        self.node_queue = f"{prefix}.node.{node_id}"
        self.events_exchange = f"{prefix}.bus"
        self.shard_queues = [f"{prefix}.shard.{n}" for n in range(shards)]
        #: Tells this incarnation's own forwarded events (and answers) from others'.
        self.incarnation = uuid.uuid4().hex
        self.ownership = Ownership(self)
        #: Shards owned (1) or not (0): the ownership's own array, read on every entity ask.
        self.owned = self.ownership.owned
        self.stats = TransportStats(by_shard=[0] * shards)
        self.leaving = False
        self.link: BrokerLink | None = None
        self.pending = PendingAsks(self._call_later)
        self.outbound = Outbound(
            codec, reply_to=self.node_queue, app_id=self.incarnation, on_failed=self._unsent
        )
        self.inbound = Inbound(self)
        self.tasks = TaskSupervisor("rabbitmq-transport")
        self._system: ActorSystem | None = None
        self.topology = Topology(self, prefetch)
        self._ids = itertools.count(1)

    def __repr__(self) -> str:
        return (
            f"<RabbitTransport {self.node_id} connected={self.connected} "
            f"owned={self.shards_owned}/{self.shards} in_flight={self.in_flight}>"
        )

    @property
    def system(self) -> ActorSystem:
        """The actor system this transport serves (once started)."""
        assert self._system is not None, "the transport is not started"
        return self._system

    @property
    def connected(self) -> bool:
        """True while the connection to the broker is up (and built)."""
        link = self.link
        return link is not None and link.connected

    @property
    def in_flight(self) -> int:
        """Asks sent from here and not answered yet."""
        return len(self.pending)

    @property
    def shards_owned(self) -> int:
        """Shards whose active consumer this node is, as far as it knows."""
        return sum(self.owned)

    def _call_later(self, delay: float, callback: Any, *args: Any) -> asyncio.TimerHandle:
        return asyncio.get_running_loop().call_later(delay, callback, *args)

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self, system: ActorSystem) -> None:
        """Connect, declare the topology, consume; raises if the broker cannot be reached."""
        self._system = system
        self.link = BrokerLink(
            self.url,
            f"transakt {self.node_id}",
            self.topology.open,
            self._connection_lost,
            reconnect_seconds=self._reconnect_seconds,
        )
        await self.link.start()
        self.tasks.spawn("cluster-writer", self.outbound.run)
        self.tasks.spawn("cluster-probe", self._probe_loop)

    async def leave(self) -> None:
        """Stop taking work for other nodes: cancel the shard consumers (the broker makes the
        next node active), finish what was delivered, and send those answers."""
        self.leaving = True
        self.ownership.release_all()
        await self.topology.stop_shards()
        inbound = self.inbound
        if inbound.working:
            inbound.idle.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5.0):
                    await inbound.idle.wait()
        await self.outbound.flush()

    async def close(self) -> None:
        """Disconnect; asks still waiting fail with ``ReplyLost``."""
        if not self.leaving:
            await self.leave()
        await self.tasks.close(1.0)
        self._fail_pending_replies("the node is shutting down")
        if self.link is not None:
            await self.link.close()

    # -- refs and sending --------------------------------------------------------------------

    def entity_ref(self, kind: str, key: str) -> ActorRef | None:
        """A remote ref for an entity of a sharded kind whose shard this node does not own."""
        if kind not in self.sharded:
            return None
        shard = zlib.crc32(key.encode()) % self.shards
        if self.owned[shard]:
            self.stats.by_shard[shard] += 1
            return None
        return RemoteEntityRef(self, kind, key, self.shard_queues[shard])

    def actor_ref(self, node: str, name: str) -> RemoteActorRef:
        """A ref to the spawned actor ``name`` on ``node``."""
        return RemoteActorRef(self, node, name, f"{self.prefix}.node.{node}")

    def ask(
        self,
        queue: str,
        op: Op,
        kind: str,
        key: str,
        message: Any,
        timeout: float | None,
        actor: str,
    ) -> asyncio.Future[Any]:
        """Send an ask; the future gets the answer (or the error)."""
        if not self.connected:
            raise TransportUnavailable(actor, _UNREACHABLE, self._reconnect_seconds)
        pending = self.pending
        if len(pending) >= self._max_in_flight:
            raise MailboxFull(f"cluster transport of {self.node_id}", self._max_in_flight)
        ask_id = next(self._ids)
        deadline = time.time() + timeout if timeout is not None else 0.0
        frame = self._frame(op, ask_id, kind, key, deadline, message)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        pending.add(ask_id, Pending(future, actor, type(message).__name__, queue, timeout))
        self.outbound.send("", queue, frame)
        self.stats.asks_sent += 1
        return future

    def tell(self, queue: str, op: Op, kind: str, key: str, message: Any, actor: str) -> None:
        """Send without an answer."""
        if not self.connected:
            raise TransportUnavailable(actor, _UNREACHABLE, self._reconnect_seconds)
        self.outbound.send("", queue, self._frame(op, 0, kind, key, 0.0, message))
        self.stats.tells_sent += 1

    async def publish(self, topic: str, event: Any) -> None:
        """Forward an event of this system's bus to the others (its topic must be forwarded)."""
        if topic not in self.event_topics or not self.connected:
            return
        try:
            frame = self.codec.frame((Op.EVENT, topic, self.codec.name_of(event), event))
        except CodecError as error:
            log.warning("event %s not forwarded: %s", topic, error)
            return
        self.outbound.send(self.events_exchange, topic, frame)

    def _frame(
        self, op: Op, ask_id: int, kind: str, key: str, deadline: float, message: Any
    ) -> msgspec.Raw:
        # Encoded now, not with its batch: a message that cannot be encoded fails its own
        # sender, never the others travelling with it.
        name = self.codec.name_of(message)
        return self.codec.frame((op, ask_id, kind, key, deadline, name, message))

    def _unsent(self, frames: list[msgspec.Raw]) -> None:
        """A batch the broker did not take: its asks fail (nothing was sent; send again)."""
        for raw in frames:
            with contextlib.suppress(Exception):
                frame = self.codec.decode_frame(raw)
                if frame[0] in (Op.ASK, Op.ASK_ACTOR):
                    found = self.pending.pop(frame[1])
                    if found is not None and not found.future.done():
                        found.future.set_exception(TransportUnavailable(found.actor, _UNREACHABLE))

    # -- ownership and the broker's comings and goings --------------------------------------

    async def _probe_loop(self) -> None:
        node_prefix = f"{self.prefix}.node."
        while True:
            await asyncio.sleep(self.probe_seconds)
            if not self.connected or self.leaving:
                continue
            probe = self.codec.frame((Op.PROBE, self.node_id))
            if self.host_shards:
                for shard, name in enumerate(self.shard_queues):
                    if not self.owned[shard]:
                        self.outbound.send("", name, probe)
            # A node with asks outstanding for long: is its queue still there? (A returned
            # probe says no, and fails those asks at once instead of at their timeouts.)
            now = time.monotonic()
            quiet = {
                p.queue
                for _id, p in self.pending
                if p.queue.startswith(node_prefix) and now - p.sent_at > self.probe_seconds
            }
            for queue in quiet:
                await self._check_node(queue)
            if self.host_shards:
                try:
                    async with asyncio.timeout(5.0):  # a dead connection must not stop probing
                        await self.ownership.rebalance()
                except Exception as error:  # the broker went away meanwhile: next time
                    log.debug("rebalancing failed: %r", error)

    async def _check_node(self, queue: str) -> None:
        """Publish a probe that must be routed: returned, the node's queue is gone (its
        process died or left), so nothing waiting on it can be answered."""
        body = self.codec.encode([self.codec.frame((Op.PROBE, self.node_id))])
        try:
            await self.topology.confirming.basic_publish(
                body,
                routing_key=queue,
                properties=Basic.Properties(delivery_mode=1),
                mandatory=True,
                timeout=self.probe_seconds,
            )
        except aiormq.exceptions.PublishError:  # returned: routed nowhere
            self.stats.returned += 1
            self.pending.fail_where(
                lambda p: p.queue == queue,
                lambda p: ActorDeadError(p.actor, f"unreachable: {queue} is gone"),
            )
        except Exception as error:  # the broker is away: its own handling applies
            log.debug("probing %s failed: %r", queue, error)

    def _connection_lost(self, error: BaseException | None) -> None:
        self.stats.disconnects += 1
        log.warning("connection to the broker lost (%r); reconnecting", error)
        self.ownership.release_all()
        # Their deliveries return to the queues, for the next owner; no ack is sent on a
        # channel that is gone.
        self.inbound.working.clear()
        self.inbound.idle.set()
        self.outbound.forget_acks()
        self.outbound.channel = None
        self._fail_pending_replies(f"the connection to the broker was lost ({error!r})")

    def _fail_pending_replies(self, reason: str) -> None:
        self.pending.fail_where(
            lambda _p: True, lambda p: ReplyLost(p.actor, p.message_type, reason)
        )

    def spawn_once(self, name: str, work: Callable[[], Awaitable[object]]) -> None:
        """Run ``work`` once under the transport's supervisor (no restart)."""
        self.tasks.spawn(f"{name}-{next(self._ids)}", work, restart=None)
