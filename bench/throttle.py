"""What a throttle check costs: Redis through redis-py against the wallet actor's token bucket.

The P2P payment path is throttled inside the paying wallet's actor, not in Redis; this bench is
the measured reason. In one run it times, per check, the CPU this process spends:

* a moving-window hit of the ``limits`` library on Redis (what logins, sign-ups and deposits
  use), and a plain Redis GET through redis-py for comparison;
* the same hits pipelined 32 at a time (the best a batching throttle could do);
* the wallet actor's token bucket (``WalletActor._admit``), which touches no I/O.

    python bench/throttle.py            # needs Redis on 127.0.0.1:6379 (db 14 is used)
    python bench/throttle.py --quick

Last line: limits_hit_us=X redis_get_us=X pipelined_us=X token_bucket_us=X
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import redis.asyncio as aioredis  # noqa: E402
from limits import parse  # noqa: E402
from limits.aio.storage import RedisStorage  # noqa: E402
from limits.aio.strategies import MovingWindowRateLimiter  # noqa: E402

from transakt.actors.wallet import DebitRate, WalletActor  # noqa: E402
from transakt.loop import loop_factory  # noqa: E402
from transakt.runtime.clock import MonotonicClock  # noqa: E402

REDIS_URL = os.environ.get("TRANSAKT_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")


async def _cpu_per_call(call: Callable[[int], Awaitable[object]], count: int) -> float:
    """Microseconds of this process's CPU per awaited call."""
    started = time.process_time()
    for index in range(count):
        await call(index)
    return (time.process_time() - started) / count * 1e6


class _System:
    clock = MonotonicClock()


def _bucket() -> WalletActor:
    actor = WalletActor("w", None, None, DebitRate(per_second=1e9, burst=1_000_000))  # type: ignore[arg-type]
    actor.system = _System()  # type: ignore[assignment]
    return actor


async def main(count: int, rounds: int) -> None:
    client = aioredis.from_url(REDIS_URL)
    await client.flushdb()
    storage = RedisStorage(
        "async+redis://", implementation="redispy", connection_pool=client.connection_pool
    )
    limiter = MovingWindowRateLimiter(storage)
    item = parse("1000000/minute")
    actor = _bucket()

    async def limits_hit(index: int) -> object:
        return await limiter.hit(item, "bench", f"user-{index % 500}")

    async def redis_get(index: int) -> object:
        return await client.get(f"bench-{index % 500}")

    async def pipelined(index: int) -> object:
        if index % 32:
            return None
        pipe = client.pipeline(transaction=False)
        for offset in range(32):
            pipe.incr(f"bench-pipe-{(index + offset) % 500}")
        return await pipe.execute()

    async def token_bucket(_index: int) -> object:
        return actor._admit()

    figures: dict[str, list[float]] = {
        "limits_hit": [],
        "redis_get": [],
        "pipelined": [],
        "token_bucket": [],
    }
    calls = {
        "limits_hit": limits_hit,
        "redis_get": redis_get,
        "pipelined": pipelined,
        "token_bucket": token_bucket,
    }
    for call in calls.values():  # warm-up
        await _cpu_per_call(call, min(count, 500))
    for round_number in range(1, rounds + 1):
        for name, call in calls.items():
            figures[name].append(await _cpu_per_call(call, count))
        print(f"round {round_number}/{rounds} done", flush=True)
    await client.flushdb()
    await client.aclose()
    medians = {name: statistics.median(values) for name, values in figures.items()}
    print()
    print(f"{'check':<36}{'CPU per check (median)':>24}")
    labels = {
        "limits_hit": "limits moving-window hit (Redis)",
        "redis_get": "redis-py GET",
        "pipelined": "redis-py INCR, pipelined by 32",
        "token_bucket": "wallet actor token bucket",
    }
    for name, label in labels.items():
        print(f"{label:<36}{medians[name]:>21.2f} us")
    print(
        f"\nlimits_hit_us={medians['limits_hit']:.1f} redis_get_us={medians['redis_get']:.1f} "
        f"pipelined_us={medians['pipelined']:.1f} token_bucket_us={medians['token_bucket']:.2f}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    arguments = parser.parse_args()
    count, rounds = (500, 1) if arguments.quick else (5_000, 5)
    loop = loop_factory()()
    try:
        loop.run_until_complete(main(count, rounds))
    finally:
        loop.close()
