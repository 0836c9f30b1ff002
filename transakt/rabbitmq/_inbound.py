"""What a node receives: commands for its entities and actors, answers to its asks, events.

A shard delivery is acknowledged only once every ask in it has been answered, so a command is
delivered again (to the next owner) until someone answered it. An ask whose caller has given up
(its deadline passed) is not started: it is answered with ``AskTimeout`` instead.
"""

from __future__ import annotations

import asyncio
import logging
import time
from functools import partial
from typing import TYPE_CHECKING, Any

import aiormq
from pamqp.commands import Basic

from transakt.rabbitmq.codec import CodecError, Op
from transakt.runtime import ActorDeadError, ActorRef, AskTimeout

if TYPE_CHECKING:
    from transakt.rabbitmq.transport import RabbitTransport

__all__ = ["Delivery", "Inbound"]

log = logging.getLogger("transakt.cluster")


class Delivery:
    """A shard delivery being worked on: acknowledged when its last ask is answered."""

    __slots__ = ("channel", "open", "tag")

    def __init__(self, channel: aiormq.abc.AbstractChannel, tag: int) -> None:
        self.channel = channel
        self.tag = tag
        self.open = 0


class Inbound:
    """Serves what the broker delivers to one transport."""

    def __init__(self, transport: RabbitTransport) -> None:
        self._transport = transport
        self._codec = transport.codec
        self.working: set[Delivery] = set()
        self.idle = asyncio.Event()  # set when the last delivery being worked on is done

    def __repr__(self) -> str:
        return f"<Inbound working={len(self.working)}>"

    async def on_shard(self, shard: int, message: aiormq.abc.DeliveredMessage) -> None:
        """A batch from a shard queue: this node is the shard's owner (the only consumer the
        broker delivers to), so it learns that first."""
        transport = self._transport
        channel = message.channel
        deliver = message.delivery
        assert isinstance(deliver, Basic.Deliver)
        tag = deliver.delivery_tag
        assert tag is not None
        if transport.leaving:
            # Its consumers are being cancelled: the broker gives this to the next owner.
            transport.outbound.rejected(channel, tag)
            await channel.basic_reject(tag, requeue=True)
            return
        transport.ownership.gained(shard)
        if deliver.redelivered:
            transport.stats.redeliveries += 1
        delivery = Delivery(channel, tag)
        reply_to = message.header.properties.reply_to or ""
        for frame in self._frames(message):
            try:
                self.serve(frame, reply_to, delivery, shard)
            except Exception:
                log.exception("a frame from %s could not be served", reply_to)
        if delivery.open:
            self.working.add(delivery)
        else:
            transport.outbound.finished(channel, tag)

    async def on_node(self, message: aiormq.abc.DeliveredMessage) -> None:
        """A batch for this node: answers to its asks, and asks to its spawned actors."""
        pending = self._transport.pending
        reply_to = message.header.properties.reply_to or ""
        for frame in self._frames(message):
            try:
                op = frame[0]
                if op == Op.REPLY or op == Op.FAILURE:
                    found = pending.pop(frame[1])
                    if found is not None and not found.future.done():
                        self._settle(found.future, op, frame[2], frame[3])
                elif op != Op.PROBE:
                    self.serve(frame, reply_to, None, -1)
            except Exception:
                log.exception("a frame from %s could not be handled", reply_to)

    async def on_event(self, message: aiormq.abc.DeliveredMessage) -> None:
        """Events another system published on its bus."""
        transport = self._transport
        if message.header.properties.app_id == transport.incarnation:
            return  # this system's own event: its bus had it first
        events = transport.system.events
        for frame in self._frames(message):
            try:
                _op, topic, name, fields = frame
                events.publish_local(topic, self._codec.value(name, fields))
            except Exception as error:
                log.warning("an event was dropped: %r", error)

    def _frames(self, message: aiormq.abc.DeliveredMessage) -> list[Any]:
        try:
            return self._codec.decode(message.body)
        except CodecError as error:
            # Not ours, or from a node of another version: it can never be read, so it is
            # dropped (acknowledged) rather than delivered again for ever.
            log.error("dropping a message from %s: %s", message.header.properties.reply_to, error)
            return []

    def _settle(self, future: asyncio.Future[Any], op: int, name: str, fields: Any) -> None:
        try:
            if op == Op.REPLY:
                future.set_result(self._codec.value(name, fields))
            else:
                future.set_exception(self._codec.error(name, fields))
        except CodecError as error:
            future.set_exception(error)

    def serve(self, frame: list[Any], reply_to: str, delivery: Delivery | None, shard: int) -> None:
        """Hand one ask or tell to the local entity or actor it is for."""
        op = frame[0]
        if op == Op.PROBE:
            return
        _op, ask_id, kind, key, deadline, name, fields = frame
        asking = op == Op.ASK or op == Op.ASK_ACTOR
        transport = self._transport
        system = transport.system
        try:
            message = self._codec.value(name, fields)
            if op == Op.ASK or op == Op.TELL:
                ref: ActorRef = system.local_entity(kind, key)
                if shard >= 0:
                    transport.stats.by_shard[shard] += 1
            else:
                found = system.actor(key)
                if found is None:
                    raise ActorDeadError(key, f"not running on {transport.node_id}")
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
                self.answer(reply_to, ask_id, Op.FAILURE, error)
            else:
                log.warning("a tell to %s/%s was dropped: %r", kind, key, error)
            return
        transport.stats.asks_served += 1
        if delivery is not None:
            delivery.open += 1
        future.add_done_callback(partial(self._answered, reply_to, ask_id, delivery))

    def _answered(
        self,
        reply_to: str,
        ask_id: int,
        delivery: Delivery | None,
        future: asyncio.Future[Any],
    ) -> None:
        if future.cancelled():
            self.answer(reply_to, ask_id, Op.FAILURE, ActorDeadError("?", "cancelled"))
        elif future.exception() is not None:
            self.answer(reply_to, ask_id, Op.FAILURE, future.exception())
        else:
            self.answer(reply_to, ask_id, Op.REPLY, future.result())
        if delivery is not None:
            delivery.open -= 1
            if not delivery.open and delivery in self.working:
                self.working.discard(delivery)
                self._transport.outbound.finished(delivery.channel, delivery.tag)
                if not self.working:
                    self.idle.set()

    def answer(self, reply_to: str, ask_id: int, op: Op, value: Any) -> None:
        """Send an ask's answer (or its error) back to the node that asked."""
        if not reply_to:
            return
        codec = self._codec
        try:
            if op == Op.REPLY:
                frame = codec.frame((op, ask_id, codec.name_of(value), value))
            else:
                name, fields = codec.error_fields(value)
                frame = codec.frame((op, ask_id, name, fields))
        except Exception as error:  # an answer the codec cannot carry: say so instead
            name, fields = codec.error_fields(CodecError(f"the answer cannot be sent: {error}"))
            frame = codec.frame((Op.FAILURE, ask_id, name, fields))
        self._transport.outbound.send("", reply_to, frame)
