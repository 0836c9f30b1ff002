"""A transport's channels, queues and consumers: declared once, and again after a reconnect.

One channel per job: shard deliveries (which must be acknowledged) keep a channel of their own,
so their delivery tags run without gaps and acks can go in runs; the node's own queue (answers,
asks by name, forwarded events) has another; publishing a third; and a fourth, with publisher
confirms, carries the probes whose "routed nowhere" answer tells a peer is gone. Queues and
exchanges are declared through aio-pika, which declares them again after a reconnect; they are
consumed on the raw channels (aio-pika's message wrapper costs more than the rest of a
delivery), so consuming again after a reconnect is done here.
"""

from __future__ import annotations

import contextlib
from functools import partial
from typing import TYPE_CHECKING

import aio_pika
import aiormq
from aio_pika.abc import AbstractRobustChannel, AbstractRobustConnection

if TYPE_CHECKING:
    from transakt.rabbitmq.transport import RabbitTransport

__all__ = ["Topology"]

_CONSUMING = ("publish", "node", "shards")


class Topology:
    """The channels of one transport and what is declared and consumed on them."""

    def __init__(self, transport: RabbitTransport, prefetch: int) -> None:
        self._transport = transport
        self._prefetch = prefetch
        self.channels: dict[str, AbstractRobustChannel] = {}
        self._shard_consumers: dict[int, tuple[aiormq.abc.AbstractChannel, str]] = {}

    def __repr__(self) -> str:
        consumers = len(self._shard_consumers)
        return f"<Topology channels={sorted(self.channels)} shard_consumers={consumers}>"

    @property
    def confirming(self) -> AbstractRobustChannel:
        """The channel with publisher confirms (and returns raised)."""
        return self.channels["confirm"]

    async def open(self, connection: AbstractRobustConnection) -> None:
        """Open the channels, declare the queues, and consume."""
        for name in _CONSUMING:
            channel = self.channels[name] = await connection.channel(publisher_confirms=False)
            channel.reopen_callbacks.add(self._reopened)
        self.channels["confirm"] = await connection.channel(on_return_raises=True)
        await self.channels["shards"].set_qos(prefetch_count=self._prefetch)
        await self._declare()
        for name in _CONSUMING:
            await self._consume(name)

    async def _declare(self) -> None:
        transport = self._transport
        node = self.channels["node"]
        await node.declare_queue(transport.node_queue, exclusive=True, auto_delete=True)
        if transport.host_shards:
            shards = self.channels["shards"]
            for name in transport.shard_queues:
                await shards.declare_queue(
                    name, durable=True, arguments={"x-single-active-consumer": True}
                )
        if transport.event_topics:
            exchange = await node.declare_exchange(
                transport.events_exchange, aio_pika.ExchangeType.TOPIC, durable=True
            )
            events = await node.declare_queue(f"{transport.node_queue}.bus", exclusive=True)
            for topic in sorted(transport.event_topics):
                await events.bind(exchange, routing_key=topic)

    async def _consume(self, name: str) -> None:
        transport = self._transport
        raw = await self.channels[name].get_underlay_channel()
        if name == "publish":
            transport.outbound.channel = raw
        elif name == "node":
            inbound = transport.inbound
            await raw.basic_consume(transport.node_queue, inbound.on_node, no_ack=True)
            if transport.event_topics:
                queue = f"{transport.node_queue}.bus"
                await raw.basic_consume(queue, inbound.on_event, no_ack=True)
        elif transport.host_shards and not transport.leaving:
            self._shard_consumers.clear()
            for shard in range(len(transport.shard_queues)):
                await self.consume_shard(shard, raw)

    async def _reopened(self, channel: AbstractRobustChannel | None, /) -> None:
        for name in _CONSUMING:
            if channel is not None and channel is self.channels.get(name):
                await self._consume(name)

    async def consume_shard(
        self, shard: int, raw: aiormq.abc.AbstractChannel | None = None
    ) -> None:
        """Subscribe to a shard's queue (at the back of the line of its consumers)."""
        transport = self._transport
        if raw is None:
            raw = await self.channels["shards"].get_underlay_channel()
        queue = transport.shard_queues[shard]
        ok = await raw.basic_consume(queue, partial(transport.inbound.on_shard, shard))
        self._shard_consumers[shard] = (raw, ok.consumer_tag or "")

    async def cancel_shard(self, shard: int) -> None:
        """Stop consuming a shard's queue: the broker makes the next node in line active.
        (What was delivered here stays this node's to finish and acknowledge.)"""
        found = self._shard_consumers.pop(shard, None)
        if found is not None:
            channel, tag = found
            with contextlib.suppress(Exception):  # the channel is gone: so is the consumer
                await channel.basic_cancel(tag)

    async def stop_shards(self) -> None:
        """Cancel every shard consumer."""
        for shard in list(self._shard_consumers):
            await self.cancel_shard(shard)

    async def hosting_nodes(self) -> int:
        """How many nodes consume the shard queues now (each consumes every one of them)."""
        raw = await self.channels["confirm"].get_underlay_channel()
        declared = await raw.queue_declare(self._transport.shard_queues[0], passive=True)
        return int(declared.consumer_count or 0)
