"""Actor runtime benchmark: ask throughput against a bare asyncio baseline, and entity memory.

Run as ``python bench/runtime.py`` (``--quick`` for a short run). The last line is
``asks_per_s=N baseline_per_s=N ratio=R bytes_per_entity=B``.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import random
import statistics
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

# Importable however it is run from the repository root, installed or not.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from transakt.runtime import Actor, ActorRef, ActorSystem

ACTORS = 1_000
ASKERS = 100
ENTITIES = 100_000


class Echo(Actor):
    """Trivial work: count and answer."""

    def __init__(self) -> None:
        self.seen = 0

    async def receive(self, message: Any) -> Any:
        self.seen += 1
        return message + 1


class Session(Actor):
    """A typical small entity: a key and a little state in an ordinary instance dict."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.hits = 0

    async def receive(self, message: Any) -> Any:
        self.hits += 1
        return None


def _targets(total: int, seed: int) -> list[list[int]]:
    """Pre-drawn actor indices per asker, so both contenders pay the same (zero) picking cost."""
    rng = random.Random(seed)
    per_asker = total // ASKERS
    return [[rng.randrange(ACTORS) for _ in range(per_asker)] for _ in range(ASKERS)]


async def run_runtime(targets: list[list[int]]) -> float:
    """Asks per second through the actor runtime."""
    async with ActorSystem("bench") as system:
        refs: list[ActorRef] = [system.spawn(Echo, name=f"echo-{i}") for i in range(ACTORS)]
        await asyncio.gather(*(ref.ask(0) for ref in refs))  # all started

        async def asker(picks: list[int]) -> None:
            for i, index in enumerate(picks):
                reply = await refs[index].ask(i)
                assert reply == i + 1

        started = time.perf_counter()
        await asyncio.gather(*(asker(picks) for picks in targets))
        elapsed = time.perf_counter() - started
    return sum(map(len, targets)) / elapsed


async def run_baseline(targets: list[list[int]]) -> float:
    """Asks per second with one task and one asyncio.Queue per consumer."""
    loop = asyncio.get_running_loop()
    queues: list[asyncio.Queue[tuple[int, asyncio.Future[int]]]] = [
        asyncio.Queue() for _ in range(ACTORS)
    ]

    async def consumer(queue: asyncio.Queue[tuple[int, asyncio.Future[int]]]) -> None:
        seen = 0
        while True:
            message, future = await queue.get()
            seen += 1
            future.set_result(message + 1)

    consumers = [asyncio.create_task(consumer(queue)) for queue in queues]

    async def asker(picks: list[int]) -> None:
        for i, index in enumerate(picks):
            future: asyncio.Future[int] = loop.create_future()
            queues[index].put_nowait((i, future))
            reply = await future
            assert reply == i + 1

    await asyncio.sleep(0)
    started = time.perf_counter()
    await asyncio.gather(*(asker(picks) for picks in targets))
    elapsed = time.perf_counter() - started
    for task in consumers:
        task.cancel()
    await asyncio.gather(*consumers, return_exceptions=True)
    return sum(map(len, targets)) / elapsed


async def measure_entity_memory(count: int) -> float:
    """Bytes allocated per activated, idle (not yet passivated) entity."""
    system = ActorSystem("memory")
    system.register_entity(Session, idle_timeout=3600.0)
    await system.start()
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    batch = 1_000
    for start in range(0, count, batch):
        # One message each; no ask timeout, so no timeout bookkeeping is left in the figure.
        await asyncio.gather(
            *(
                system.entity(Session, f"session-{i}").ask(i, timeout=None)
                for i in range(start, min(start + batch, count))
            )
        )
    await asyncio.sleep(0)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert system.active_entities(Session) == count
    per_entity = (after - before) / count
    await system.shutdown()
    return per_entity


async def main(quick: bool) -> None:
    total = 40_000 if quick else 200_000
    rounds = 3 if quick else 5
    entities = 20_000 if quick else ENTITIES
    print(f"python {sys.version.split()[0]}; {ACTORS} actors, {ASKERS} askers, {total} asks/round")
    ours: list[float] = []
    bare: list[float] = []
    for round_no in range(rounds):
        targets = _targets(total, seed=round_no)
        # Alternate who goes first so warm-up and drift do not favour one side.
        if round_no % 2 == 0:
            ours.append(await run_runtime(targets))
            bare.append(await run_baseline(targets))
        else:
            bare.append(await run_baseline(targets))
            ours.append(await run_runtime(targets))
        print(
            f"round {round_no + 1}/{rounds}: runtime {ours[-1]:,.0f}/s  baseline {bare[-1]:,.0f}/s"
        )
        gc.collect()
    asks = statistics.median(ours)
    baseline = statistics.median(bare)
    print(f"measuring memory of {entities:,} idle entities ...")
    per_entity = await measure_entity_memory(entities)
    print(f"{per_entity:,.0f} bytes per activated idle entity")
    print(
        f"asks_per_s={asks:.0f} baseline_per_s={baseline:.0f} "
        f"ratio={asks / baseline:.2f} bytes_per_entity={per_entity:.0f}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer asks and entities")
    asyncio.run(main(parser.parse_args().quick))
