"""Which shards a node owns, how it learns of it, and how owners keep the shards even.

The broker decides: a shard's owner is the active consumer of its queue, and the only node it
delivers to. A node learns it owns a shard from a delivery (a probe, if nothing else comes),
and forgets every shard the moment its connection drops. Single-active-consumer makes the
first node that subscribes the owner of every shard, so owners keep the shards even: a node
that owns more than its fair share (the shards divided by the nodes consuming, rounded up)
hands the excess over: it stops taking those shards' local fast path, cancels their consumers
(the broker activates the next node in line), lets what it was delivered finish, passivates
the shards' entities, and subscribes again at the back of each line.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from typing import TYPE_CHECKING, Final

from transakt.runtime import UnknownEntityKind

if TYPE_CHECKING:
    from transakt.rabbitmq.transport import RabbitTransport

__all__ = ["Ownership"]

log = logging.getLogger("transakt.cluster")


# How long a shard's entities may take to finish their work before a hand-over stops them.
_DRAIN_SECONDS: Final = 3.0


class Ownership:
    """The shards this node owns, as far as it knows, and the hand-overs that even them."""

    def __init__(self, transport: RabbitTransport) -> None:
        self._transport = transport
        self.owned = bytearray(transport.shards)
        self.handed_over = 0

    def __repr__(self) -> str:
        return f"<Ownership owned={sum(self.owned)}/{len(self.owned)}>"

    def gained(self, shard: int) -> None:
        """A delivery from this shard's queue came here: this node owns the shard now."""
        if not self.owned[shard]:
            self.owned[shard] = 1
            self._transport.stats.shards_gained += 1

    def release_all(self) -> None:
        """Forget every owned shard and passivate their entities (another node owns them, or
        will: a copy here must not act on a stale view)."""
        lost = sum(self.owned)
        if not lost:
            return
        self._transport.stats.shards_lost += lost
        self.owned[:] = bytes(len(self.owned))
        self._transport.spawn_once("cluster-passivate", self.passivate)

    async def rebalance(self) -> None:
        """Hand over what this node owns beyond its fair share."""
        transport = self._transport
        owned = [shard for shard, mine in enumerate(self.owned) if mine]
        nodes = await transport.topology.hosting_nodes()
        fair = -(-len(self.owned) // max(nodes, 1))
        excess = owned[fair:]
        if not excess:
            return
        for shard in excess:
            self.owned[shard] = 0  # from now on this node's own asks for it use the broker
            await transport.topology.cancel_shard(shard)
        transport.stats.shards_lost += len(excess)
        self.handed_over += len(excess)
        # What was delivered here finishes meanwhile; then the entities go, and this node
        # waits at the back of each queue's line.
        await self.passivate(set(excess))
        if transport.connected and not transport.leaving:
            for shard in excess:
                await transport.topology.consume_shard(shard)
        log.info(
            "handed %d shard(s) over (%d nodes, %d shards each at most)", len(excess), nodes, fair
        )

    async def passivate(self, shards: set[int] | None = None) -> None:
        """Stop this node's entities (of these shards, or of every shard it does not own).

        Handing shards over (``shards`` given), the entities finish what they were given first
        (a few seconds at most): stopping one with work queued or a commit in flight would fail
        those asks, which a payment's client would see as a 503 for nothing."""
        transport = self._transport
        system = transport.system
        count = len(self.owned)
        for kind in transport.sharded:
            try:
                keys = system.entity_keys(kind)
            except UnknownEntityKind:
                continue  # hosted elsewhere only
            if shards is None:
                keys = [k for k in keys if not self.owned[zlib.crc32(k.encode()) % count]]
            else:
                keys = [k for k in keys if zlib.crc32(k.encode()) % count in shards]
                deadline = asyncio.get_running_loop().time() + _DRAIN_SECONDS
                while any(system.entity_busy(kind, key) for key in keys):
                    if asyncio.get_running_loop().time() > deadline:
                        break
                    await asyncio.sleep(0.01)
            for start in range(0, len(keys), 256):
                refs = [system.local_entity(kind, key) for key in keys[start : start + 256]]
                await asyncio.gather(*(ref.stop() for ref in refs), return_exceptions=True)
