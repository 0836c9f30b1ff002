"""A transport's channels, queues and consumers, built afresh on every connection.

One channel per job: shard deliveries (which must be acknowledged) keep a channel of their own,
so their delivery tags run without gaps and acks can go in runs; the node's own queue (answers,
asks by name, forwarded events) has another; publishing a third; and a fourth, with publisher
confirms, carries the probes whose "routed nowhere" answer tells a peer is gone. Everything is
declared and consumed on the plain aiormq channels (aio-pika's message wrapper costs more than
the rest of a delivery), by ``open``, which ``BrokerLink`` calls on each connection it makes.
"""

from __future__ import annotations

import contextlib
from functools import partial
from typing import TYPE_CHECKING

import aiormq.abc

if TYPE_CHECKING:
    from transakt.rabbitmq.transport import RabbitTransport

__all__ = ["Topology"]


class Topology:
    """The channels of one transport's current connection, and its shard consumers."""

    def __init__(self, transport: RabbitTransport, prefetch: int) -> None:
        self._transport = transport
        self._prefetch = prefetch
        self.channels: dict[str, aiormq.abc.AbstractChannel] = {}
        self._shard_consumers: dict[int, str] = {}

    def __repr__(self) -> str:
        consumers = len(self._shard_consumers)
        return f"<Topology channels={sorted(self.channels)} shard_consumers={consumers}>"

    @property
    def confirming(self) -> aiormq.abc.AbstractChannel:
        """The channel with publisher confirms (a returned message raises ``PublishError``)."""
        return self.channels["confirm"]

    async def open(self, connection: aiormq.abc.AbstractConnection) -> None:
        """Open the channels on ``connection``, declare the queues, and consume."""
        transport = self._transport
        self._shard_consumers.clear()
        channels = {
            name: await connection.channel(publisher_confirms=name == "confirm")
            for name in ("publish", "node", "shards", "confirm")
        }
        self.channels = channels
        node = channels["node"]
        await node.queue_declare(transport.node_queue, exclusive=True, auto_delete=True)
        await node.basic_consume(transport.node_queue, transport.inbound.on_node, no_ack=True)
        if transport.event_topics:
            bus = f"{transport.node_queue}.bus"
            await node.exchange_declare(
                transport.events_exchange, exchange_type="topic", durable=True
            )
            await node.queue_declare(bus, exclusive=True, auto_delete=True)
            for topic in sorted(transport.event_topics):
                await node.queue_bind(bus, transport.events_exchange, routing_key=topic)
            await node.basic_consume(bus, transport.inbound.on_event, no_ack=True)
        if transport.host_shards:
            shards = channels["shards"]
            await shards.basic_qos(prefetch_count=self._prefetch)
            for queue in transport.shard_queues:
                await shards.queue_declare(
                    queue, durable=True, arguments={"x-single-active-consumer": True}
                )
            if not transport.leaving:
                for shard in range(len(transport.shard_queues)):
                    await self.consume_shard(shard)
        transport.outbound.channel = channels["publish"]

    async def consume_shard(self, shard: int) -> None:
        """Subscribe to a shard's queue (at the back of the line of its consumers)."""
        transport = self._transport
        ok = await self.channels["shards"].basic_consume(
            transport.shard_queues[shard], partial(transport.inbound.on_shard, shard)
        )
        self._shard_consumers[shard] = ok.consumer_tag or ""

    async def cancel_shard(self, shard: int) -> None:
        """Stop consuming a shard's queue: the broker makes the next node in line active.
        (What was delivered here stays this node's to finish and acknowledge.)"""
        tag = self._shard_consumers.pop(shard, None)
        if tag is not None:
            with contextlib.suppress(Exception):  # the channel is gone: so is the consumer
                await self.channels["shards"].basic_cancel(tag)

    async def stop_shards(self) -> None:
        """Cancel every shard consumer."""
        for shard in list(self._shard_consumers):
            await self.cancel_shard(shard)

    async def hosting_nodes(self) -> int:
        """How many nodes consume the shard queues now (each consumes every one of them)."""
        queue = self._transport.shard_queues[0]
        declared = await self.confirming.queue_declare(queue, passive=True)
        return int(declared.consumer_count or 0)
