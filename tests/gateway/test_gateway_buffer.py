"""The request buffer on its own: Redis stream and in-memory twin behave alike."""

from __future__ import annotations

import secrets

import pytest
import redis.asyncio as aioredis

from transakt.gateway.buffer import (
    BankBuffer,
    BufferLost,
    MemoryBankBuffer,
    RedisBankBuffer,
)
from transakt.storage.bank_requests import BankRequest


def _request(number: int, account: str = "DE01") -> BankRequest:
    return BankRequest(f"trf_{number}", "deposit", account, 100 + number, "EUR")


def _keys() -> dict[str, str]:
    # Keys of its own: the gateway tests' nodes use the default ones in the same database.
    prefix = f"test:{secrets.token_hex(4)}"
    return {"stream": f"{prefix}:stream", "group": "test-group", "ids_key": f"{prefix}:ids"}


@pytest.fixture(params=["redis", "memory"])
async def buffer(request: pytest.FixtureRequest, gateway_redis: aioredis.Redis) -> BankBuffer:
    """Each buffer, created (ensure) and empty."""
    made: BankBuffer = (
        RedisBankBuffer(gateway_redis, "consumer-1", **_keys())
        if request.param == "redis"
        else MemoryBankBuffer()
    )
    assert await made.ensure() is True
    assert await made.ensure() is False
    return made


async def test_a_request_is_buffered_once_until_acknowledged(buffer: BankBuffer) -> None:
    assert await buffer.add([_request(1), _request(2), _request(1)]) == 2
    assert await buffer.add([_request(2)]) == 0
    entries = await buffer.read(10)
    assert [entry.request for entry in entries] == [_request(1), _request(2)]
    assert await buffer.read(10) == []
    # Unacknowledged entries stay this consumer's pending ones, in order.
    assert await buffer.read(10, pending=True) == entries
    assert await buffer.depth() == 2

    await buffer.ack(entries[:1])
    assert await buffer.read(10, pending=True) == entries[1:]
    assert await buffer.depth() == 1
    assert await buffer.add([_request(1)]) == 1  # forgotten once acknowledged


async def test_reads_respect_the_count_and_keep_stream_order(buffer: BankBuffer) -> None:
    await buffer.add([_request(number) for number in range(5)])
    first = await buffer.read(3)
    second = await buffer.read(3, block=0.01)
    assert [entry.request.transfer_id for entry in first + second] == [
        f"trf_{number}" for number in range(5)
    ]


@pytest.fixture
def keys() -> dict[str, str]:
    """Fresh key names for one test."""
    return _keys()


async def test_another_consumer_reclaims_idle_entries(
    gateway_redis: aioredis.Redis, keys: dict[str, str]
) -> None:
    dead = RedisBankBuffer(gateway_redis, "dead-node", **keys)
    alive = RedisBankBuffer(gateway_redis, "alive-node", **keys)
    await dead.ensure()
    await dead.add([_request(1)])
    [taken] = await dead.read(10)
    assert await alive.reclaim(min_idle=60.0, count=10) == []  # not idle long enough
    [claimed] = await alive.reclaim(min_idle=0.0, count=10)
    assert claimed == taken
    assert await alive.read(10, pending=True) == [claimed]
    assert await dead.read(10, pending=True) == []
    await alive.ack([claimed])
    assert await alive.depth() == 0


async def test_a_lost_stream_is_reported_and_recreated(
    gateway_redis: aioredis.Redis, keys: dict[str, str]
) -> None:
    buffer = RedisBankBuffer(gateway_redis, "consumer-1", **keys)
    await buffer.ensure()
    await buffer.add([_request(1)])
    await gateway_redis.delete(keys["stream"])  # Redis lost the stream, not the id set
    with pytest.raises(BufferLost):
        await buffer.read(10)
    with pytest.raises(BufferLost):
        await buffer.read(10, pending=True)
    assert await buffer.ensure() is True
    # The ids went with the group, so the rebuild can add the request again.
    assert await buffer.add([_request(1)]) == 1
    assert [entry.request for entry in await buffer.read(10)] == [_request(1)]
