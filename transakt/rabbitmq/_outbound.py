"""What a node sends: frames batched per destination per loop turn, one writer, and the acks.

Everything bound for one queue (or one routing key of an exchange) within one event-loop turn
leaves as one broker message; one writer task publishes in order. Acknowledgements of finished
deliveries leave with the same writer: when the finished ones are a run from the lowest one
outstanding, one ``multiple`` ack covers them all; one that finished out of turn is acked alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Callable
from typing import Any, Final

import aiormq
import msgspec
from pamqp.commands import Basic

from transakt.rabbitmq.codec import Codec

__all__ = ["Outbound"]

log = logging.getLogger("transakt.cluster")

# Frames per broker message at most: a burst becomes several messages of bounded size.
_MAX_BATCH: Final = 512
# Loop turns the writer lets pass before it flushes. The client library hands deliveries over
# through two queues and a task each, so the answers to one broker message become ready over
# several turns; flushing at the first would send each alone (bench/cluster.py: 1.3 frames
# per broker message and 5,700 asks/s with 256 in flight; after 8 turns 9 frames and 22,000).
# Waiting for nothing costs 8 empty turns, a few microseconds; a lone ask is not held back.
_LINGER_TURNS: Final = 8
# How long one publish (or ack) may take before the channel counts as dead.
_WRITE_SECONDS: Final = 2.0


class _Acks:
    """Delivery tags of one channel: finished since the last flush, and finished out of turn."""

    __slots__ = ("channel", "finished", "ready", "upto")

    def __init__(self, channel: aiormq.abc.AbstractChannel) -> None:
        self.channel = channel
        self.upto = 0  # every tag up to this one is acknowledged (or was rejected)
        self.finished: set[int] = set()  # above ``upto``, acknowledged or rejected already
        self.ready: list[int] = []  # finished since the last flush, not acknowledged yet

    async def flush(self) -> None:
        ready = sorted(self.ready)
        self.ready.clear()
        finished = self.finished
        finished.update(ready)
        upto = self.upto
        while upto + 1 in finished:
            upto += 1
            finished.discard(upto)
        self.upto = upto
        channel = self.channel
        covered = [tag for tag in ready if tag <= upto]
        if covered:  # every tag below is finished: one ack for the run
            await channel.basic_ack(covered[-1], multiple=True, wait=False)
        for tag in ready:
            if tag > upto:  # a gap below it: alone, and remembered so the run can pass it
                await channel.basic_ack(tag, wait=False)


class Outbound:
    """Batches and publishes frames; acknowledges deliveries once they are finished."""

    def __init__(
        self,
        codec: Codec,
        *,
        reply_to: str,
        app_id: str,
        on_failed: Callable[[list[msgspec.Raw]], None],
    ) -> None:
        self._codec = codec
        self._properties = Basic.Properties(delivery_mode=1, reply_to=reply_to, app_id=app_id)
        self._on_failed = on_failed
        #: The raw channel publishes go to; None while the broker is away.
        self.channel: aiormq.abc.AbstractChannel | None = None
        self._batches: defaultdict[tuple[str, str], list[msgspec.Raw]] = defaultdict(list)
        self._acks: dict[int, _Acks] = {}
        self._wanted = asyncio.Event()
        self.messages = 0
        self.frames = 0
        self.failures = 0

    def __repr__(self) -> str:
        return (
            f"<Outbound waiting={sum(map(len, self._batches.values()))} messages={self.messages}>"
        )

    def send(self, exchange: str, key: str, frame: msgspec.Raw) -> None:
        """Queue a frame; it leaves with the others for the same place, after this loop turn."""
        self._batches[(exchange, key)].append(frame)
        self._wanted.set()

    def finished(self, channel: aiormq.abc.AbstractChannel, tag: int) -> None:
        """A delivery is done with: acknowledge it with the next flush."""
        acks = self._acks.get(id(channel))
        if acks is None or acks.channel is not channel:
            acks = self._acks[id(channel)] = _Acks(channel)
        acks.ready.append(tag)
        self._wanted.set()

    def rejected(self, channel: aiormq.abc.AbstractChannel, tag: int) -> None:
        """A delivery given back (requeued): the run of acks may pass over it."""
        acks = self._acks.get(id(channel))
        if acks is None or acks.channel is not channel:
            acks = self._acks[id(channel)] = _Acks(channel)
        acks.finished.add(tag)

    def forget_acks(self) -> None:
        """The channels are gone (and their deliveries with them, back to the queues)."""
        self._acks.clear()

    async def run(self) -> None:
        """The writer: waking on an Event lets everything queued this loop turn join in."""
        while True:
            await self._wanted.wait()
            for _ in range(_LINGER_TURNS):
                await asyncio.sleep(0)
            self._wanted.clear()
            await self.flush()

    async def flush(self) -> None:
        """Publish every batch waiting, then the acks."""
        batches, self._batches = self._batches, defaultdict(list)
        for (exchange, key), frames in batches.items():
            for start in range(0, len(frames), _MAX_BATCH):
                await self._publish(exchange, key, frames[start : start + _MAX_BATCH])
        for channel_id, acks in list(self._acks.items()):
            if acks.channel.is_closed:
                del self._acks[channel_id]  # its deliveries went back to their queues
                continue
            if acks.ready:
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(_WRITE_SECONDS):
                        await acks.flush()

    async def _publish(self, exchange: str, key: str, frames: list[msgspec.Raw]) -> None:
        channel = self.channel
        try:
            if channel is None or channel.is_closed:
                raise ConnectionError("no channel to the broker")
            # Bounded: on a connection that died mid-write the call can wait for ever, and
            # this one writer would stop every publish of the node with it.
            async with asyncio.timeout(_WRITE_SECONDS):
                await channel.basic_publish(
                    self._codec.encode(frames),
                    exchange=exchange,
                    routing_key=key,
                    properties=self._properties,
                    wait=False,  # the concrete channel's: no wait for the socket buffer to drain
                )  # type: ignore[call-arg]
        except Exception as error:
            self.failures += 1
            log.warning("publishing %d frame(s) to %s failed: %r", len(frames), key, error)
            self._on_failed(frames)
            return
        self.messages += 1
        self.frames += len(frames)

    def stats(self) -> dict[str, Any]:
        """Counters for the transport's stats."""
        return {"messages": self.messages, "frames": self.frames, "failures": self.failures}
