"""Transfers through one wallet node against three sharing the wallets over RabbitMQ.

Same database, same cores, same load as ``bench/transfers.py`` (uniform over the wallets,
keep-alive clients, each answer durable); with three nodes the clients take the nodes in turn,
so about two payments in three enter a node that does not own the paying wallet's shard and
cross the broker twice (command and answer). Used by ``bench/cluster.py``.
"""

from __future__ import annotations

import os
import secrets
import statistics
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager

from bench.transfers import (
    SERVER_PIDS,
    Population,
    Result,
    database,
    drive,
    populate,
    process_cpu_seconds,
    server,
    warm_up,
)

CONCURRENCY = 64


def _broker_cpu_seconds() -> float:
    """CPU used so far by the RabbitMQ server (the Erlang VM), 0 if it is not on this host."""
    total = 0.0
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/comm") as comm:
                    if comm.read().strip() == "beam.smp":
                        total += process_cpu_seconds(pid)
            except OSError:
                continue
    return total


@asynccontextmanager
async def _nodes(database_url: str, count: int, broker_url: str | None) -> AsyncIterator[list[str]]:
    prefix = f"bench-{secrets.token_hex(3)}"
    async with AsyncExitStack() as stack:
        urls = []
        for n in range(count):
            env = {"TRANSAKT_NODE_ID": f"bench-node-{n + 1}"}
            if broker_url:
                env |= {"TRANSAKT_RABBITMQ_URL": broker_url, "TRANSAKT_RABBITMQ_PREFIX": prefix}
            urls.append(await stack.enter_async_context(server("actor", database_url, env)))
        yield urls
    if broker_url:
        from bench.cluster import _delete_queues

        await _delete_queues(broker_url, prefix, 64)


async def _measure(
    urls: list[str], population: Population, seconds: float
) -> tuple[Result, dict[str, float]]:
    pids = [SERVER_PIDS[url] for url in urls]
    nodes_before = sum(process_cpu_seconds(pid) for pid in pids)
    broker_before = _broker_cpu_seconds()
    result = await drive(urls, population, "uniform", seconds, CONCURRENCY)
    answered = max(result.answered, 1)
    cpu = {
        "nodes": (sum(process_cpu_seconds(pid) for pid in pids) - nodes_before) / answered * 1e6,
        "broker": (_broker_cpu_seconds() - broker_before) / answered * 1e6,
    }
    return result, cpu


async def transfers_one_and_three(
    broker_url: str, *, quick: bool, log: Callable[[str], None], rounds: int = 3
) -> tuple[float, float]:
    """Median transfers/s through one node and through three; logs each round."""
    count = 2_000 if quick else 10_000
    seconds = 2.0 if quick else 5.0
    rounds = 1 if quick else rounds
    figures: dict[str, list[float]] = {"one": [], "three": []}
    async with database("transakt_bench_cluster") as database_url:
        log(f"setting up {count} funded wallets ...")
        population = await populate(database_url, count)
        for round_ in range(rounds):
            for label, nodes, broker in (("one", 1, None), ("three", 3, broker_url)):
                async with _nodes(database_url, nodes, broker) as urls:
                    # Steady state, as bench/transfers.py has it: every wallet pays once
                    # through each node, so each owner has its wallets' actors and every node
                    # the wallets' owners in its cache (and knows the shards it owns).
                    for url in urls:
                        await warm_up(url, population, CONCURRENCY)
                    result, cpu = await _measure(urls, population, seconds)
                figures[label].append(result.per_s)
                log(
                    f"round {round_ + 1}/{rounds} {label:5} node(s) {result.per_s:8.0f}/s "
                    f"p50={result.p50_ms:6.1f}ms p99={result.p99_ms:6.1f}ms "
                    f"errors={result.errors}  cpu us/request: nodes={cpu['nodes']:.0f} "
                    f"broker={cpu['broker']:.0f}"
                )
    one = statistics.median(figures["one"])
    three = statistics.median(figures["three"])
    log(f"three nodes / one node = {three / one:.2f} (target >= 0.60)")
    return one, three
