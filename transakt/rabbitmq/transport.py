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
travels as one broker message (``codec``), and answers likewise. Latency comes from not using
the broker where it adds nothing: a node learns which shards it owns from the deliveries it
gets (a probe is sent to every shard it does not own, every ``probe_seconds``), and asks for an
entity of an owned shard go straight to the local entity. A node forgets all it owns the moment
its connection drops (another may be active by then) and passivates those entities, so a copy
with a stale view does not linger.

While the broker is unreachable, asks for entities of other nodes fail at once with
``TransportUnavailable``, and asks awaiting an answer fail with ``ReplyLost`` (the way back is
gone: outcome unknown). The connection is robust: it reconnects and re-declares by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
import uuid
import zlib
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any, Final

import aio_pika
import msgspec
from aio_pika.abc import AbstractIncomingMessage, AbstractQueue, AbstractRobustConnection
from pamqp.commands import Basic

from transakt.rabbitmq._pending import Pending, PendingAsks
from transakt.rabbitmq.codec import Codec, CodecError, Op
from transakt.rabbitmq.refs import RemoteActorRef, RemoteEntityRef
from transakt.runtime import (
    ActorDeadError,
    ActorRef,
    AskTimeout,
    MailboxFull,
    ReplyLost,
    TaskSupervisor,
    TransportUnavailable,
)

if TYPE_CHECKING:
    from transakt.runtime import ActorSystem

__all__ = ["RabbitTransport", "TransportStats", "shard_of"]

log = logging.getLogger("transakt.cluster")

# Frames per broker message at most: a burst becomes several messages of bounded size.
_MAX_BATCH: Final = 512
_UNREACHABLE: Final = "the message broker is unreachable"


def shard_of(key: str, shards: int) -> int:
    """The shard of an entity key: CRC-32 of its UTF-8 bytes, stable across processes."""
    return zlib.crc32(key.encode()) % shards


@dataclass(slots=True)
class TransportStats:
    """Counters for /metrics (monotonic unless said otherwise)."""

    asks_sent: int = 0
    tells_sent: int = 0
    asks_served: int = 0
    messages_published: int = 0
    frames_published: int = 0
    redeliveries: int = 0
    shards_gained: int = 0
    shards_lost: int = 0
    returned: int = 0
    publish_failures: int = 0
    #: Messages handled by this node's entities, per shard (local fast path or delivered).
    by_shard: list[int] = field(default_factory=list)


class _Delivery:
    """A shard delivery being worked on: acknowledged when its last ask is answered."""

    __slots__ = ("message", "open")

    def __init__(self, message: AbstractIncomingMessage) -> None:
        self.message = message
        self.open = 0


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
        self.host_shards = host_shards
        self.prefix = prefix
        self.event_topics = frozenset(event_topics)
        self.probe_seconds = probe_seconds
        self._prefetch = prefetch
        self._max_in_flight = max_in_flight
        self._reconnect_seconds = reconnect_seconds
        self.node_queue = f"{prefix}.node.{node_id}"
        self.events_exchange = f"{prefix}.bus"
        self._shard_queues = [f"{prefix}.shard.{n}" for n in range(shards)]
        self._shard_by_queue = {name: n for n, name in enumerate(self._shard_queues)}
        # Tells this incarnation's own forwarded events from other systems'.
        self._incarnation = uuid.uuid4().hex
        self.owned = bytearray(shards)
        self.stats = TransportStats(by_shard=[0] * shards)
        self.connected = False
        self._system: ActorSystem | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connection: AbstractRobustConnection | None = None
        self._out_channel: aio_pika.abc.AbstractRobustChannel | None = None
        self._confirming: aio_pika.abc.AbstractRobustChannel | None = None
        self._consumers: list[tuple[AbstractQueue, str]] = []
        self._ids = itertools.count(1)
        self._pending: PendingAsks | None = None
        # What the writer sends next: frames by (exchange, routing key), and acks.
        self._outbox: defaultdict[tuple[str, str], list[msgspec.Raw]] = defaultdict(list)
        self._acks: list[AbstractIncomingMessage] = []
        self._wanted = asyncio.Event()
        self._working: set[_Delivery] = set()
        self._idle = asyncio.Event()  # set when the last delivery being worked on is done
        self.tasks = TaskSupervisor("rabbitmq-transport")
        self._leaving = False

    def __repr__(self) -> str:
        return (
            f"<RabbitTransport {self.node_id} connected={self.connected} "
            f"owned={sum(self.owned)}/{self.shards} in_flight={self.in_flight}>"
        )

    @property
    def in_flight(self) -> int:
        """Asks sent from here and not answered yet."""
        return len(self._pending) if self._pending is not None else 0

    @property
    def shards_owned(self) -> int:
        """Shards whose active consumer this node is, as far as it knows."""
        return sum(self.owned)

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self, system: ActorSystem) -> None:
        """Connect, declare the topology, consume; raises if the broker cannot be reached."""
        self._system = system
        loop = self._loop = asyncio.get_running_loop()
        self._pending = PendingAsks(loop.call_later)
        connection = await aio_pika.connect_robust(
            self.url,
            reconnect_interval=self._reconnect_seconds,
            client_properties={"connection_name": f"transakt {self.node_id}"},
        )
        self._connection = connection
        connection.close_callbacks.add(self._connection_lost)
        connection.reconnect_callbacks.add(self._reconnected)
        self._out_channel = await connection.channel(publisher_confirms=False)
        # Publisher confirms only where a "routed nowhere" answer matters: node liveness.
        self._confirming = await connection.channel(publisher_confirms=True, on_return_raises=True)
        inbound = await connection.channel()
        await inbound.set_qos(prefetch_count=self._prefetch)
        node = await inbound.declare_queue(self.node_queue, exclusive=True, auto_delete=True)
        await node.consume(self._on_node_message, no_ack=True)
        if self.host_shards and self.sharded:
            for shard, name in enumerate(self._shard_queues):
                queue = await inbound.declare_queue(
                    name, durable=True, arguments={"x-single-active-consumer": True}
                )
                tag = await queue.consume(partial(self._on_shard_message, shard))
                self._consumers.append((queue, tag))
        if self.event_topics:
            exchange = await inbound.declare_exchange(
                self.events_exchange, aio_pika.ExchangeType.TOPIC, durable=True
            )
            events = await inbound.declare_queue(exclusive=True, auto_delete=True)
            for topic in sorted(self.event_topics):
                await events.bind(exchange, routing_key=topic)
            await events.consume(self._on_event_message, no_ack=True)
        self.connected = True
        self.tasks.spawn("cluster-writer", self._write_loop)
        self.tasks.spawn("cluster-probe", self._probe_loop)

    async def leave(self) -> None:
        """Stop taking work for other nodes: cancel the shard consumers (the broker makes the
        next node active), finish what was delivered, and send those answers."""
        self._leaving = True
        self._release_all()
        for queue, tag in self._consumers:
            with contextlib.suppress(Exception):
                await queue.cancel(tag)
        self._consumers.clear()
        if self._working:
            self._idle.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(5.0):
                    await self._idle.wait()
        await self._flush_now()

    async def close(self) -> None:
        """Disconnect; asks still waiting fail with ``ReplyLost``."""
        if not self._leaving:
            await self.leave()
        await self.tasks.close(1.0)
        self.connected = False
        self._fail_pending_replies("the node is shutting down")
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.close()

    # -- refs --------------------------------------------------------------------------------

    def entity_ref(self, kind: str, key: str) -> ActorRef | None:
        """A remote ref for an entity of a sharded kind whose shard this node does not own."""
        if kind not in self.sharded:
            return None
        shard = zlib.crc32(key.encode()) % self.shards
        if self.owned[shard]:
            self.stats.by_shard[shard] += 1
            return None
        return RemoteEntityRef(self, kind, key, self._shard_queues[shard])

    def actor_ref(self, node: str, name: str) -> RemoteActorRef:
        """A ref to the spawned actor ``name`` on ``node``."""
        return RemoteActorRef(self, node, name, f"{self.prefix}.node.{node}")

    # -- sending -----------------------------------------------------------------------------

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
        pending = self._pending
        if not self.connected or pending is None or self._loop is None:
            raise TransportUnavailable(actor, _UNREACHABLE, self._reconnect_seconds)
        if len(pending) >= self._max_in_flight:
            raise MailboxFull(f"cluster transport of {self.node_id}", self._max_in_flight)
        ask_id = next(self._ids)
        deadline = time.time() + timeout if timeout is not None else 0.0
        frame = self._frame(op, ask_id, kind, key, deadline, message)
        future: asyncio.Future[Any] = self._loop.create_future()
        pending.add(ask_id, Pending(future, actor, type(message).__name__, queue, timeout))
        self._send("", queue, frame)
        self.stats.asks_sent += 1
        return future

    def tell(self, queue: str, op: Op, kind: str, key: str, message: Any, actor: str) -> None:
        """Send without an answer."""
        if not self.connected:
            raise TransportUnavailable(actor, _UNREACHABLE, self._reconnect_seconds)
        self._send("", queue, self._frame(op, 0, kind, key, 0.0, message))
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
        self._send(self.events_exchange, topic, frame)

    def _frame(
        self, op: Op, ask_id: int, kind: str, key: str, deadline: float, message: Any
    ) -> msgspec.Raw:
        # Encoded now, not with its batch: a message that cannot be encoded fails its own
        # sender, never the others travelling with it.
        return self.codec.frame(
            (op, ask_id, kind, key, deadline, self.codec.name_of(message), message)
        )

    def _send(self, exchange: str, key: str, frame: msgspec.Raw) -> None:
        self._outbox[(exchange, key)].append(frame)
        self._wanted.set()

    async def _write_loop(self) -> None:
        # One writer: batches leave in the order they were made. Waking it with an Event lets
        # everything queued in the current loop turn join the batch.
        while True:
            await self._wanted.wait()
            self._wanted.clear()
            await self._flush_now()

    async def _flush_now(self) -> None:
        outbox, self._outbox = self._outbox, defaultdict(list)
        acks, self._acks = self._acks, []
        for (exchange, key), frames in outbox.items():
            for start in range(0, len(frames), _MAX_BATCH):
                await self._publish(exchange, key, frames[start : start + _MAX_BATCH])
        for message in acks:
            with contextlib.suppress(Exception):  # the channel is gone: it is redelivered
                await message.ack()

    async def _publish(self, exchange: str, key: str, frames: list[msgspec.Raw]) -> None:
        try:
            if self._out_channel is None or not self.connected:
                raise ConnectionError(_UNREACHABLE)
            channel = await self._out_channel.get_underlay_channel()
            await channel.basic_publish(
                self.codec.encode(frames),
                exchange=exchange,
                routing_key=key,
                properties=Basic.Properties(
                    delivery_mode=1, reply_to=self.node_queue, app_id=self._incarnation
                ),
            )
        except Exception as error:
            self.stats.publish_failures += 1
            log.warning("publishing %d frame(s) to %s failed: %r", len(frames), key, error)
            self._fail_frames(
                frames, lambda pending: TransportUnavailable(pending.actor, _UNREACHABLE)
            )
            return
        self.stats.messages_published += 1
        self.stats.frames_published += len(frames)

    def _fail_frames(self, frames: list[msgspec.Raw], error: Any) -> None:
        pending = self._pending
        if pending is None:
            return
        for raw in frames:
            with contextlib.suppress(Exception):
                frame = self.codec.decode_frame(raw)
                if frame[0] in (Op.ASK, Op.ASK_ACTOR):
                    found = pending.pop(frame[1])
                    if found is not None and not found.future.done():
                        found.future.set_exception(error(found))

    # -- receiving ---------------------------------------------------------------------------

    async def _on_shard_message(self, shard: int, message: AbstractIncomingMessage) -> None:
        if self._leaving:
            # Consumers are being cancelled: the broker gives this to the next owner.
            with contextlib.suppress(Exception):
                await message.nack(requeue=True)
            return
        if not self.owned[shard]:
            self.owned[shard] = 1
            self.stats.shards_gained += 1
        if message.redelivered:
            self.stats.redeliveries += 1
        delivery = _Delivery(message)
        for frame in self._frames(message):
            try:
                self._serve(frame, message.reply_to or "", delivery, shard)
            except Exception:
                log.exception("a frame from %s could not be served", message.reply_to)
        if delivery.open:
            self._working.add(delivery)
        else:
            self._acks.append(message)
            self._wanted.set()

    async def _on_node_message(self, message: AbstractIncomingMessage) -> None:
        pending = self._pending
        for frame in self._frames(message):
            try:
                op = frame[0]
                if op == Op.REPLY or op == Op.FAILURE:
                    found = pending.pop(frame[1]) if pending is not None else None
                    if found is not None and not found.future.done():
                        self._settle(found, op, frame[2], frame[3])
                elif op != Op.PROBE:
                    self._serve(frame, message.reply_to or "", None, -1)
            except Exception:
                log.exception("a frame from %s could not be handled", message.reply_to)

    async def _on_event_message(self, message: AbstractIncomingMessage) -> None:
        if message.app_id == self._incarnation or self._system is None:
            return  # this system's own event: its bus had it first
        for frame in self._frames(message):
            try:
                _op, topic, name, fields = frame
                self._system.events.publish_local(topic, self.codec.value(name, fields))
            except Exception as error:
                log.warning("an event from %s was dropped: %r", message.app_id, error)

    def _frames(self, message: AbstractIncomingMessage) -> list[Any]:
        try:
            return self.codec.decode(message.body)
        except CodecError as error:
            # Not ours, or from a node of another version: it can never be read, so it is
            # dropped (acknowledged) rather than redelivered for ever.
            log.error("dropping a message from %s: %s", message.reply_to, error)
            return []

    def _settle(self, pending: Pending, op: int, name: str, fields: Any) -> None:
        try:
            if op == Op.REPLY:
                pending.future.set_result(self.codec.value(name, fields))
            else:
                pending.future.set_exception(self.codec.error(name, fields))
        except CodecError as error:
            pending.future.set_exception(error)

    def _serve(
        self, frame: list[Any], reply_to: str, delivery: _Delivery | None, shard: int
    ) -> None:
        op = frame[0]
        if op == Op.PROBE:
            return
        _op, ask_id, kind, key, deadline, name, fields = frame
        asking = op == Op.ASK or op == Op.ASK_ACTOR
        system = self._system
        assert system is not None
        try:
            message = self.codec.value(name, fields)
            if op == Op.ASK or op == Op.TELL:
                ref: ActorRef = system.local_entity(kind, key)
                if shard >= 0:
                    self.stats.by_shard[shard] += 1
            else:
                found = system.actor(key)
                if found is None:
                    raise ActorDeadError(key, f"not running on {self.node_id}")
                ref = found
            if not asking:
                ref.tell(message)
                return
            timeout = None
            if deadline:
                timeout = deadline - time.time()
                if timeout <= 0:  # its caller gave up: doing it now would surprise everyone
                    raise AskTimeout(ref.name, type(message).__name__, 0.0)
            future = ref.ask_nowait(message, timeout)  # type: ignore[attr-defined]
        except Exception as error:
            if asking:
                self._answer(reply_to, ask_id, Op.FAILURE, error)
            else:
                log.warning("a tell to %s/%s was dropped: %r", kind, key, error)
            return
        self.stats.asks_served += 1
        if delivery is not None:
            delivery.open += 1
        future.add_done_callback(partial(self._answered, reply_to, ask_id, delivery))

    def _answered(
        self,
        reply_to: str,
        ask_id: int,
        delivery: _Delivery | None,
        future: asyncio.Future[Any],
    ) -> None:
        if future.cancelled():
            self._answer(reply_to, ask_id, Op.FAILURE, ActorDeadError("?", "cancelled"))
        elif future.exception() is not None:
            self._answer(reply_to, ask_id, Op.FAILURE, future.exception())
        else:
            self._answer(reply_to, ask_id, Op.REPLY, future.result())
        if delivery is not None:
            delivery.open -= 1
            if not delivery.open:
                self._working.discard(delivery)
                self._acks.append(delivery.message)
                self._wanted.set()
                if not self._working:
                    self._idle.set()

    def _answer(self, reply_to: str, ask_id: int, op: Op, value: Any) -> None:
        if not reply_to:
            return
        codec = self.codec
        try:
            if op == Op.REPLY:
                frame = codec.frame((op, ask_id, codec.name_of(value), value))
            else:
                name, fields = codec.error_fields(value)
                frame = codec.frame((op, ask_id, name, fields))
        except Exception as error:  # an answer the codec cannot carry: say so instead
            name, fields = codec.error_fields(CodecError(f"the answer cannot be sent: {error}"))
            frame = codec.frame((Op.FAILURE, ask_id, name, fields))
        self._send("", reply_to, frame)

    # -- ownership and the broker's comings and goings --------------------------------------

    async def _probe_loop(self) -> None:
        pending = self._pending
        assert pending is not None
        node_prefix = f"{self.prefix}.node."
        while True:
            await asyncio.sleep(self.probe_seconds)
            if not self.connected or self._leaving:
                continue
            probe = self.codec.frame((Op.PROBE, self.node_id))
            if self.host_shards and self.sharded:
                for shard, name in enumerate(self._shard_queues):
                    if not self.owned[shard]:
                        self._send("", name, probe)
            # A node with asks outstanding for long: is its queue still there? (A returned
            # probe says no, and fails those asks at once instead of at their timeouts.)
            now = time.monotonic()
            quiet = {
                p.queue
                for _id, p in pending
                if p.queue.startswith(node_prefix) and now - p.sent_at > self.probe_seconds
            }
            for queue in quiet:
                await self._check_node(queue)

    async def _check_node(self, queue: str) -> None:
        """Publish a probe that must be routed: returned, the node's queue is gone (its
        process died or left), so nothing waiting on it can be answered."""
        channel = self._confirming
        if channel is None:
            return
        body = self.codec.encode([self.codec.frame((Op.PROBE, self.node_id))])
        try:
            await channel.default_exchange.publish(
                aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.NOT_PERSISTENT),
                routing_key=queue,
                mandatory=True,
                timeout=self.probe_seconds,
            )
        except aio_pika.exceptions.DeliveryError:
            self.stats.returned += 1
            if self._pending is not None:
                self._pending.fail_where(
                    lambda p: p.queue == queue,
                    lambda p: ActorDeadError(p.actor, f"unreachable: {queue} is gone"),
                )
        except Exception as error:  # the broker is away: its own handling applies
            log.debug("probing %s failed: %r", queue, error)

    def _connection_lost(self, _connection: Any, error: BaseException | None = None) -> None:
        if not self.connected:
            return
        self.connected = False
        log.warning("connection to the broker lost (%r); reconnecting", error)
        self._release_all()
        self._working.clear()  # their deliveries return to the queues, for the next owner
        self._fail_pending_replies(f"the connection to the broker was lost ({error!r})")

    def _reconnected(self, _connection: Any) -> None:
        if self._leaving:
            return
        self.connected = True
        log.info("connection to the broker restored")

    def _fail_pending_replies(self, reason: str) -> None:
        if self._pending is not None:
            self._pending.fail_where(
                lambda _p: True, lambda p: ReplyLost(p.actor, p.message_type, reason)
            )

    def _release_all(self) -> None:
        """Forget every owned shard and passivate their entities (another node owns them, or
        will: a copy here must not act on a stale view)."""
        lost = sum(self.owned)
        if not lost:
            return
        self.stats.shards_lost += lost
        self.owned[:] = bytes(self.shards)
        if self._system is not None and self._loop is not None:
            self.tasks.spawn("cluster-passivate", self._passivate, restart=None)

    async def _passivate(self) -> None:
        system = self._system
        assert system is not None
        for kind in self.sharded:
            try:
                keys = system.entity_keys(kind)
            except Exception:
                continue
            for start in range(0, len(keys), 256):
                refs = [system.local_entity(kind, key) for key in keys[start : start + 256]]
                await asyncio.gather(*(ref.stop() for ref in refs), return_exceptions=True)
