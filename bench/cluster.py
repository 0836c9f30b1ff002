"""The cluster's costs: remote asks over RabbitMQ beside local ones, and transfers through one
node against three (same cores, same database), all in one run.

1. Remote asks: a second process hosts the entities; this one asks them through the broker
   with one ask in flight (latency) and with many (throughput), then asks the same entities
   in-process (the local figure).
2. Transfers: ``bench/transfers.py``'s load (uniform over 10,000 wallets, keep-alive clients,
   each answer durable) through one wallet node, then through three nodes sharing the wallets
   over the broker, clients spread round-robin over the nodes.

    python bench/cluster.py            # full run (a few minutes)
    python bench/cluster.py --quick    # smoke run

Last line: remote_asks_per_s=N remote_ask_p50_ms=X local_asks_per_s=N one_node_per_s=N
three_nodes_per_s=N
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.runtime import Echo  # noqa: E402 - trivial work: the figures are the transport's
from transakt.rabbitmq import Codec, RabbitTransport  # noqa: E402
from transakt.runtime import ActorSystem  # noqa: E402

DEFAULT_URL = "amqp://guest:guest@127.0.0.1:5672/"
KIND = "Echo"


def log(text: str) -> None:
    print(text, flush=True)


def _system(url: str, prefix: str, node: str, *, host: bool) -> ActorSystem:
    transport = RabbitTransport(
        url, Codec(), node_id=node, shards=16, sharded={KIND}, host_shards=host, prefix=prefix
    )
    system = ActorSystem(node, transport=transport)
    system.register_entity(Echo, lambda _key: Echo(), kind=KIND)
    return system


async def _serve(url: str, prefix: str) -> None:
    async with _system(url, prefix, "bench-host", host=True):
        print("ready", flush=True)
        await asyncio.Event().wait()


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _latency(system: ActorSystem, count: int) -> tuple[float, float]:
    ref = system.entity(KIND, "e-1")
    for _ in range(200):  # warm up: the entity activated, the connection's buffers sized
        await ref.ask(1)
    times = []
    for n in range(count):
        started = time.perf_counter()
        await ref.ask(n)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), _percentile(times, 0.99)


async def _throughput(system: ActorSystem, seconds: float, in_flight: int) -> tuple[float, float]:
    refs = [system.entity(KIND, f"e-{n}") for n in range(1000)]
    latencies: list[float] = []
    done = 0
    deadline = time.perf_counter() + seconds

    async def asker(index: int) -> None:
        nonlocal done
        n = index
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            await refs[n % len(refs)].ask(n)
            latencies.append((time.perf_counter() - started) * 1000)
            done += 1
            n += in_flight

    started = time.perf_counter()
    await asyncio.gather(*(asker(i) for i in range(in_flight)))
    return done / (time.perf_counter() - started), _percentile(latencies, 0.99)


async def _asks(url: str, seconds: float, count: int, in_flight: int) -> dict[str, float]:
    prefix = f"bench-{secrets.token_hex(3)}"
    # A plain Popen: the host runs for the whole measurement and is only killed at the end.
    host = subprocess.Popen(  # noqa: ASYNC220
        [sys.executable, __file__, "--serve", "--url", url, "--prefix", prefix],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert host.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(host.stdout.readline), 30)
        if line.strip() != "ready":
            raise SystemExit(f"the host process did not start: {line!r}")
        async with _system(url, prefix, "bench-asker", host=False) as asker:
            p50, p99 = await _latency(asker, count)
            log(f"remote ask, 1 in flight: p50={p50:.2f}ms p99={p99:.2f}ms")
            rate, tail = await _throughput(asker, seconds, in_flight)
            log(f"remote asks, {in_flight} in flight: {rate:,.0f}/s p99={tail:.1f}ms")
            outbound = asker.transport.outbound  # type: ignore[union-attr]
            log(
                f"  {outbound.frames / max(outbound.messages, 1):.1f} frames "
                "per broker message sent by the asker"
            )
        async with ActorSystem("local") as local:
            local.register_entity(Echo, lambda _key: Echo(), kind=KIND)
            local_rate, local_tail = await _throughput(local, seconds, in_flight)
            log(f"local asks, {in_flight} in flight: {local_rate:,.0f}/s p99={local_tail:.2f}ms")
    finally:
        host.kill()
        host.wait(10)
        if host.stdout is not None:
            host.stdout.close()
        await _delete_queues(url, prefix, 16)
    return {"remote_per_s": rate, "remote_p50": p50, "local_per_s": local_rate}


async def _delete_queues(url: str, prefix: str, shards: int) -> None:
    import aio_pika

    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        for shard in range(shards):
            await channel.queue_delete(f"{prefix}.shard.{shard}")


async def main(args: argparse.Namespace) -> None:
    seconds = 2.0 if args.quick else args.seconds
    count = 500 if args.quick else 3000
    log(
        f"python {sys.version.split()[0]}; {os.cpu_count()} cores; broker {args.url.split('@')[-1]}"
    )
    asks = await _asks(args.url, seconds, count, args.in_flight)
    one = three = 0.0
    if not args.asks_only:
        from bench.cluster_transfers import transfers_one_and_three

        one, three = await transfers_one_and_three(args.url, quick=args.quick, log=log)
    log(
        f"remote_asks_per_s={asks['remote_per_s']:.0f} remote_ask_p50_ms={asks['remote_p50']:.2f} "
        f"local_asks_per_s={asks['local_per_s']:.0f} one_node_per_s={one:.0f} "
        f"three_nodes_per_s={three:.0f}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--url", default=os.environ.get("TRANSAKT_RABBITMQ_URL", DEFAULT_URL))
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--in-flight", type=int, default=256)
    parser.add_argument("--asks-only", action="store_true", help="skip the transfer part")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--prefix", help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.serve:
        asyncio.run(_serve(arguments.url, arguments.prefix))
    else:
        asyncio.run(main(arguments))
