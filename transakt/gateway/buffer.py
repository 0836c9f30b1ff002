"""Where bank requests wait while the bank is away: a Redis stream read by a consumer group.

The stream is only a buffer. Every request in it is also a pending transfer in PostgreSQL, so
when Redis loses its data the gateway rebuilds the stream from there. Entries are acknowledged
(and deleted) only once their settlement is committed; an entry whose node died stays pending in
the group, and another node claims it when it has been idle long enough.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from transakt.errors import TransaktError
from transakt.gateway.constants import BANK_BUFFERED_IDS, BANK_GROUP, BANK_STREAM
from transakt.storage.bank_requests import BankRequest, BankRequestKind

__all__ = [
    "BankBuffer",
    "BufferLost",
    "BufferedRequest",
    "MemoryBankBuffer",
    "RedisBankBuffer",
]

# Add each request only if its transfer id is not buffered already: the sweep re-offers every
# pending request, and the stream must not fill up with copies while the bank is down.
_ADD = """
local added = 0
for i = 1, #ARGV, 5 do
  if redis.call('SADD', KEYS[2], ARGV[i]) == 1 then
    redis.call('XADD', KEYS[1], '*', 'id', ARGV[i], 'kind', ARGV[i + 1],
               'account', ARGV[i + 2], 'amount', ARGV[i + 3], 'currency', ARGV[i + 4])
    added = added + 1
  end
end
return added
"""

# Create the group (and stream) unless it exists; a new group means the old one was lost, so
# forget the ids too, or they would keep the rebuild from adding those requests back. Atomic:
# another node adding meanwhile must not have its ids forgotten after it added them.
_ENSURE = """
if redis.call('EXISTS', KEYS[1]) == 1 then
  for _, group in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
    if group[2] == ARGV[1] then
      return 0
    end
  end
end
redis.call('XGROUP', 'CREATE', KEYS[1], ARGV[1], '0', 'MKSTREAM')
redis.call('DEL', KEYS[2])
return 1
"""

# Acknowledge, delete and forget in one step, so the stream and the id set never disagree.
_ACK = """
for i = 2, #ARGV, 2 do
  redis.call('XACK', KEYS[1], ARGV[1], ARGV[i])
  redis.call('XDEL', KEYS[1], ARGV[i])
  redis.call('SREM', KEYS[2], ARGV[i + 1])
end
return 0
"""


class BufferLost(TransaktError):
    """The stream or its consumer group is gone (Redis lost its data): rebuild from Postgres."""


@dataclass(frozen=True, slots=True)
class BufferedRequest:
    """A request read from the buffer, with the entry id to acknowledge it by."""

    entry_id: str
    request: BankRequest


class BankBuffer(Protocol):
    """The operations the gateway needs from a buffer (Redis in production, memory without)."""

    async def ensure(self) -> bool:
        """Create the stream and group if missing; True when they had to be created."""
        ...

    async def add(self, requests: Sequence[BankRequest]) -> int:
        """Append the requests not buffered yet, in order; returns how many were added."""
        ...

    async def read(
        self, count: int, *, pending: bool = False, block: float = 0.0
    ) -> list[BufferedRequest]:
        """This consumer's unacknowledged entries (pending) or new ones, oldest first."""
        ...

    async def reclaim(self, min_idle: float, count: int) -> list[BufferedRequest]:
        """Take over entries other consumers left unacknowledged for ``min_idle`` seconds."""
        ...

    async def ack(self, entries: Sequence[BufferedRequest]) -> None:
        """Drop entries whose settlement is committed."""
        ...

    async def depth(self) -> int:
        """Entries waiting or being worked on."""
        ...


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _request(fields: Mapping[Any, Any]) -> BankRequest:
    values = {_text(key): _text(value) for key, value in fields.items()}
    return BankRequest(
        transfer_id=values["id"],
        kind=cast(BankRequestKind, values["kind"]),
        account=values["account"],
        amount=int(values["amount"]),
        currency=values["currency"],
    )


def _is_lost(error: ResponseError) -> bool:
    # NOGROUP: the key or group is missing; UNBLOCKED: it vanished under a blocking read.
    return str(error).startswith(("NOGROUP", "UNBLOCKED"))


class RedisBankBuffer:
    """A Redis stream with a consumer group; this node reads as consumer ``consumer``."""

    def __init__(
        self,
        redis: aioredis.Redis,
        consumer: str,
        *,
        stream: str = BANK_STREAM,
        group: str = BANK_GROUP,
        ids_key: str = BANK_BUFFERED_IDS,
    ) -> None:
        self._redis = redis
        self.consumer = consumer
        self._stream = stream
        self._group = group
        self._ids_key = ids_key
        self._ensure_script = redis.register_script(_ENSURE)
        self._add_script = redis.register_script(_ADD)
        self._ack_script = redis.register_script(_ACK)

    def __repr__(self) -> str:
        return f"<RedisBankBuffer {self._stream} group={self._group} consumer={self.consumer}>"

    async def ensure(self) -> bool:
        """Create the group (and stream) if missing; True when they had to be created."""
        created = await self._ensure_script(keys=[self._stream, self._ids_key], args=[self._group])
        return bool(created)

    async def add(self, requests: Sequence[BankRequest]) -> int:
        """Append the requests whose ids are not buffered yet."""
        if not requests:
            return 0
        arguments: list[str | int] = []
        for request in requests:
            arguments += [
                request.transfer_id,
                request.kind,
                request.account,
                request.amount,
                request.currency,
            ]
        added = await self._add_script(keys=[self._stream, self._ids_key], args=arguments)
        return int(added)

    async def read(
        self, count: int, *, pending: bool = False, block: float = 0.0
    ) -> list[BufferedRequest]:
        """Own unacknowledged entries from the start (pending), else new entries (may block)."""
        block_ms = int(block * 1000) if block > 0 and not pending else None
        try:
            reply = await self._redis.xreadgroup(
                self._group,
                self.consumer,
                {self._stream: "0" if pending else ">"},
                count=count,
                block=block_ms,
            )
        except ResponseError as error:
            if _is_lost(error):
                raise BufferLost(str(error)) from error
            raise
        entries: list[tuple[Any, Any]] = []
        for _stream, stream_entries in cast(list[tuple[Any, Any]], reply or []):
            entries.extend(stream_entries)
        return await self._parse(entries)

    async def reclaim(self, min_idle: float, count: int) -> list[BufferedRequest]:
        """XAUTOCLAIM entries idle for ``min_idle`` seconds (their consumer is likely dead)."""
        try:
            reply = await self._redis.xautoclaim(
                self._stream,
                self._group,
                self.consumer,
                min_idle_time=int(min_idle * 1000),
                start_id="0-0",
                count=count,
            )
        except ResponseError as error:
            if _is_lost(error):
                raise BufferLost(str(error)) from error
            raise
        return await self._parse(reply[1])

    async def ack(self, entries: Sequence[BufferedRequest]) -> None:
        """Acknowledge, delete and forget the entries in one atomic step."""
        if not entries:
            return
        arguments = [self._group]
        for entry in entries:
            arguments += [entry.entry_id, entry.request.transfer_id]
        await self._ack_script(keys=[self._stream, self._ids_key], args=arguments)

    async def depth(self) -> int:
        """Entries in the stream (acknowledged ones are deleted, so all of them wait)."""
        return int(await self._redis.xlen(self._stream))

    async def _parse(self, entries: Sequence[tuple[Any, Any]]) -> list[BufferedRequest]:
        parsed: list[BufferedRequest] = []
        orphans: list[str] = []
        for entry_id, fields in entries:
            if not fields:
                orphans.append(_text(entry_id))  # deleted while pending: nothing to do
                continue
            parsed.append(BufferedRequest(_text(entry_id), _request(fields)))
        if orphans:
            await self._redis.xack(self._stream, self._group, *orphans)
        return parsed


class MemoryBankBuffer:
    """The same buffer in process memory, for nodes without Redis (the sweep refills it)."""

    def __init__(self) -> None:
        self._waiting: deque[BufferedRequest] = deque()
        self._pending: dict[str, BufferedRequest] = {}
        self._ids: set[str] = set()
        self._sequence = itertools.count(1)
        self._created = False
        self._arrived = asyncio.Event()

    def __repr__(self) -> str:
        return f"<MemoryBankBuffer waiting={len(self._waiting)} pending={len(self._pending)}>"

    async def ensure(self) -> bool:
        """True the first time: the buffer starts empty, so the sweep fills it."""
        created, self._created = not self._created, True
        return created

    async def add(self, requests: Sequence[BankRequest]) -> int:
        """Append the requests whose ids are not buffered yet."""
        added = 0
        for request in requests:
            if request.transfer_id in self._ids:
                continue
            self._ids.add(request.transfer_id)
            self._waiting.append(BufferedRequest(f"{next(self._sequence)}-0", request))
            added += 1
        if added:
            self._arrived.set()
        return added

    async def read(
        self, count: int, *, pending: bool = False, block: float = 0.0
    ) -> list[BufferedRequest]:
        """Unacknowledged entries (pending), else up to ``count`` new ones (may wait)."""
        if pending:
            return list(itertools.islice(self._pending.values(), count))
        if not self._waiting and block > 0:
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), block)
        entries: list[BufferedRequest] = []
        while self._waiting and len(entries) < count:
            entry = self._waiting.popleft()
            self._pending[entry.entry_id] = entry
            entries.append(entry)
        return entries

    async def reclaim(self, min_idle: float, count: int) -> list[BufferedRequest]:
        """Nothing to reclaim: one process, one consumer."""
        return []

    async def ack(self, entries: Sequence[BufferedRequest]) -> None:
        """Forget the entries."""
        for entry in entries:
            if self._pending.pop(entry.entry_id, None) is not None:
                self._ids.discard(entry.request.transfer_id)

    async def depth(self) -> int:
        """Entries waiting or being worked on."""
        return len(self._waiting) + len(self._pending)
