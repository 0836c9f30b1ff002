"""The live feed under load: websocket clients connected while transfers run.

A real wallet node runs in its own process on a fresh database. This process connects one
websocket per user (1,000 by default, each a distinct user), and a second process sends P2P
transfers among those users at a fixed rate (1,000/s by default, open loop). Every transfer
is pushed to both parties; each client notes, for every transfer message, the delay from the
transfer's commit (its ``posted_at``, set by PostgreSQL inside the committing transaction, so
the delay measured also includes the rest of that commit) to the moment the message arrived,
on the same machine's clock.

Mail is off in the node (``TRANSAKT_MAIL_IN_PROCESS=false``): in a deployment `transakt worker`
sends it from another process. The websockets are open, so the node's outbox relay reads every
commit back and publishes it, as it does whenever anyone on a node listens.

    python bench/live.py            # 1,000 clients, 1,000 transfers/s, 10 s measured
    python bench/live.py --quick    # smoke run

Last line: clients=N p50_ms=X p99_ms=Y
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import multiprocessing
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.transfers import Population, Result, database, drive, populate, server

WARM_UP_SECONDS = 3.0


def log(message: str) -> None:
    """Print a progress line at once."""
    print(message, flush=True)


@dataclass
class Feed:
    """What the websocket clients saw."""

    # While measuring: the moment (epoch seconds) from which commits count. A message about a
    # warm-up transfer that lands after it is not one of the measured commits.
    since: float | None = None
    delays_ms: list[float] = field(default_factory=list)
    transfer_messages: int = 0
    balance_messages: int = 0
    snapshots: int = 0
    closed: int = 0
    # Set once `expected` delays are in (the measurement's tail has landed).
    expected: int | None = None
    complete: asyncio.Event = field(default_factory=asyncio.Event)

    def record(self, delay_ms: float) -> None:
        """Keep one delay; note when the expected number is reached."""
        self.delays_ms.append(delay_ms)
        if self.expected is not None and len(self.delays_ms) >= self.expected:
            self.complete.set()


def _epoch(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


async def _client(
    session: aiohttp.ClientSession, url: str, token: str, feed: Feed, ready: asyncio.Event
) -> None:
    async with session.ws_connect(f"{url}/api/v1/live?token={token}") as websocket:
        async for message in websocket:
            received = time.time()
            if message.type is not aiohttp.WSMsgType.TEXT:
                break
            data: dict[str, Any] = message.json()
            if data["type"] == "transfer":
                feed.transfer_messages += 1
                posted_at = data["transfer"].get("posted_at")
                if feed.since is not None and posted_at:
                    committed = _epoch(posted_at)
                    if committed >= feed.since:
                        feed.record((received - committed) * 1000.0)
            elif not ready.is_set():
                ready.set()  # the snapshot's first wallet: connected and subscribed
                feed.snapshots += 1
            else:
                feed.balance_messages += 1
    feed.closed += 1


def _drive_in_child(
    url: str, population: Population, seconds: float, concurrency: int, rate: float
) -> Result:
    """Send transfers at ``rate`` per second for ``seconds`` (runs in its own process)."""
    return asyncio.run(drive(url, population, "uniform", seconds, concurrency, rate=rate))


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


async def _load(
    executor: concurrent.futures.Executor,
    url: str,
    population: Population,
    seconds: float,
    args: argparse.Namespace,
) -> Result:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(
        executor, _drive_in_child, url, population, seconds, args.concurrency, args.rate
    )


async def _progress(feed: Feed, stop: asyncio.Event) -> None:
    last = 0
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), 1.0)
        except TimeoutError:
            count = len(feed.delays_ms)
            recent = feed.delays_ms[last:]
            last = count
            log(
                f"  {len(recent):6d} transfer messages/s  p50={_quantile(recent, 0.5):6.1f}ms "
                f"p99={_quantile(recent, 0.99):6.1f}ms"
            )


async def main(args: argparse.Namespace) -> None:
    """Set up, connect the clients, warm up, measure, report."""
    clients = 200 if args.quick else args.clients
    seconds = 3.0 if args.quick else args.seconds
    # The node inherits this: mail is another process's job in a deployment (see the docstring).
    os.environ["TRANSAKT_MAIL_IN_PROCESS"] = "false"
    async with database() as database_url:
        log(f"setting up {clients} users with funded wallets ...")
        population = await populate(database_url, clients)
        async with server("actor", database_url) as url:
            feed = Feed()
            connector = aiohttp.TCPConnector(limit=0)
            async with aiohttp.ClientSession(connector=connector) as session:
                log(f"connecting {clients} websocket clients ...")
                readies = [asyncio.Event() for _ in population.wallets]
                tasks = [
                    asyncio.create_task(
                        _client(session, url, population.tokens[wallet], feed, ready)
                    )
                    for wallet, ready in zip(population.wallets, readies, strict=True)
                ]
                async with asyncio.timeout(120):
                    await asyncio.gather(*(ready.wait() for ready in readies))
                log(f"{feed.snapshots} clients connected, each with its snapshot")

                context = multiprocessing.get_context("spawn")
                with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as executor:
                    log(f"warming up: {args.rate:.0f} transfers/s for {WARM_UP_SECONDS:.0f}s ...")
                    await _load(executor, url, population, WARM_UP_SECONDS, args)
                    log(f"measuring: {args.rate:.0f} transfers/s for {seconds:.0f}s ...")
                    started_at = datetime.now().astimezone()
                    feed.since = started_at.timestamp()
                    stop = asyncio.Event()
                    progress = asyncio.create_task(_progress(feed, stop))
                    result = await _load(executor, url, population, seconds, args)
                    # Messages for the last transfers are still on their way: let them land.
                    expected = feed.expected = 2 * await _transfers_since(database_url, started_at)
                    if len(feed.delays_ms) >= expected:
                        feed.complete.set()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(feed.complete.wait(), 5.0)
                    feed.since = None
                    stop.set()
                    await progress
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)

    delays = feed.delays_ms
    log("")
    log(
        f"transfers: {result.per_s:.0f}/s sent (target {args.rate:.0f}/s), "
        f"HTTP p50={result.p50_ms:.1f}ms p99={result.p99_ms:.1f}ms errors={result.errors}"
    )
    log(
        f"feed: {len(delays)} transfer messages received of {expected} expected "
        f"(2 per transfer), clients dropped: {feed.closed}"
    )
    log(
        f"commit -> client: p50={_quantile(delays, 0.5):.1f}ms p90={_quantile(delays, 0.9):.1f}ms "
        f"p99={_quantile(delays, 0.99):.1f}ms max={max(delays, default=float('nan')):.1f}ms "
        f"(target p99 < 100 ms)"
    )
    log(
        f"clients={clients} p50_ms={_quantile(delays, 0.5):.1f} "
        f"p99_ms={_quantile(delays, 0.99):.1f}"
    )


async def _transfers_since(database_url: str, since: datetime) -> int:
    connection = await asyncpg.connect(database_url)
    try:
        count: int = await connection.fetchval(
            "SELECT count(*) FROM transfers WHERE kind = 'p2p' AND created_at >= $1", since
        )
        return count
    finally:
        await connection.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--clients", type=int, default=1_000)
    parser.add_argument("--rate", type=float, default=1_000.0, help="transfers per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of the measurement")
    parser.add_argument("--concurrency", type=int, default=64, help="HTTP connections sending")
    asyncio.run(main(parser.parse_args()))
