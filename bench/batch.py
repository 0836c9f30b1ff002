"""Batch transfers over HTTP against plain COPY of the same rows into PostgreSQL (the floor).

One wallet node (actors + group commit, mail off as in the other transfer benches) on a fresh
database with 10,000 funded wallets. Clients each pay from a wallet of their own through
``POST /api/v1/transfers/batch`` (atomic batches of 100, then of 1,000, each answered once
durable) to recipients drawn uniformly among the wallets. Then the floor: the very rows the
batches would write (one row per two-leg transfer) COPYed into a table shaped like
``transfers`` but with no constraint, index, trigger, balance or event, a batch per
transaction, durably committed, with as many connections as there were clients. Rounds
alternate; figures are medians.

    python bench/batch.py            # full run (a few minutes)
    python bench/batch.py --quick    # smoke run

Last line: batch_100_per_s=N batch_1000_per_s=N floor_per_s=N ratio=R
(ratio = batch 1,000 over the floor).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.transfers import (  # noqa: E402 - after the path set-up above
    CURRENCY,
    SERVER_PIDS,
    Population,
    database,
    log,
    populate,
    process_cpu_seconds,
    server,
)

WALLETS = 10_000
# The floor's table: the columns a transfer row has, nothing that checks or indexes them.
_FLOOR_TABLE = """
CREATE TABLE bench_copy_floor (
    id text, kind text, status text, from_account text, to_account text, amount bigint,
    currency text, memo text, initiator_id text, created_at timestamptz DEFAULT now()
)"""
_FLOOR_COLUMNS = [
    "id", "kind", "status", "from_account", "to_account", "amount", "currency", "memo",
    "initiator_id",
]  # fmt: skip


def _items(population: Population, payer: str, size: int, rng: random.Random) -> list[Any]:
    wallets = population.wallets
    items = []
    for _ in range(size):
        target = wallets[rng.randrange(len(wallets))]
        while target == payer:
            target = wallets[rng.randrange(len(wallets))]
        items.append({"to_wallet": target, "amount": rng.randint(1, 500)})
    return items


async def _batches(
    url: str, population: Population, size: int, seconds: float, clients: int, mode: str
) -> tuple[float, float, int]:
    """Transfers/s, p50 ms per batch, errors; each client pays from its own wallet."""
    payers = population.wallets[:clients]
    latencies: list[float] = []
    errors = 0
    done = 0

    async def client(payer: str, session: aiohttp.ClientSession, deadline: float) -> None:
        nonlocal errors, done
        rng = random.Random(payer)
        headers = {
            "Authorization": f"Bearer {population.tokens[payer]}",
            "Content-Type": "application/json",
        }
        while time.perf_counter() < deadline:
            body = orjson.dumps(
                {
                    "from_wallet": payer,
                    "currency": CURRENCY,
                    "mode": mode,
                    "transfers": _items(population, payer, size, rng),
                }
            )
            started = time.perf_counter()
            async with session.post(
                f"{url}/api/v1/transfers/batch", data=body, headers=headers
            ) as answer:
                payload = await answer.read()
                if answer.status not in (200, 201):
                    errors += 1
                    if errors <= 3:
                        log(f"  batch answered {answer.status}: {payload[:200]!r}")
                    continue
            latencies.append((time.perf_counter() - started) * 1000)
            done += size

    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(
            *(client(payer, session, time.perf_counter() + 1.0) for payer in payers)
        )  # warm-up: actors activated, caches filled, connections open
        done, latencies = 0, []
        started = time.perf_counter()
        deadline = started + seconds
        await asyncio.gather(*(client(payer, session, deadline) for payer in payers))
        elapsed = time.perf_counter() - started
    p50 = statistics.median(latencies) if latencies else 0.0
    return done / elapsed, p50, errors


async def _floor(database_url: str, size: int, seconds: float, clients: int) -> float:
    """Rows/s COPYed in batches of ``size``, one transaction each, ``clients`` at once."""
    setup = await asyncpg.connect(database_url)
    await setup.execute("DROP TABLE IF EXISTS bench_copy_floor")
    await setup.execute(_FLOOR_TABLE)
    await setup.close()
    rng = random.Random(7)
    wallets = [f"wal_{uuid.uuid4().hex}" for _ in range(WALLETS)]
    done = 0

    async def client(deadline: float) -> None:
        nonlocal done
        connection = await asyncpg.connect(database_url)
        try:
            while time.perf_counter() < deadline:
                payer = rng.choice(wallets)
                rows = [
                    (f"trf_{uuid.uuid4().hex}", "p2p", "posted", payer, rng.choice(wallets),
                     rng.randint(1, 500), CURRENCY, None, "usr_bench")
                    for _ in range(size)
                ]  # fmt: skip
                await connection.copy_records_to_table(
                    "bench_copy_floor", records=rows, columns=_FLOOR_COLUMNS
                )
                done += size
        finally:
            await connection.close()

    await asyncio.gather(*(client(time.perf_counter() + 1.0) for _ in range(clients)))
    done = 0
    started = time.perf_counter()
    await asyncio.gather(*(client(started + seconds) for _ in range(clients)))
    return done / (time.perf_counter() - started)


async def main(args: argparse.Namespace) -> None:
    seconds = 3.0 if args.quick else args.seconds
    rounds = 1 if args.quick else args.rounds
    figures: dict[str, list[float]] = {"100": [], "1000": [], "floor": []}
    async with database("transakt_bench_batch") as database_url:
        log(f"setting up {WALLETS} funded wallets ...")
        population = await populate(database_url, WALLETS)
        env = {"TRANSAKT_WALLET_DEBITS_PER_SECOND": "1000", "TRANSAKT_WALLET_DEBIT_BURST": "1000"}
        async with server("actor", database_url, env) as url:
            pid = SERVER_PIDS[url]
            for round_ in range(rounds):
                for size in (100, 1000):
                    cpu = process_cpu_seconds(pid)
                    rate, p50, errors = await _batches(
                        url, population, size, seconds, args.clients, args.mode
                    )
                    node_us = (process_cpu_seconds(pid) - cpu) / max(rate * seconds, 1) * 1e6
                    figures[str(size)].append(rate)
                    log(
                        f"round {round_ + 1}/{rounds} {args.mode} batches of {size:5}: "
                        f"{rate:9,.0f} transfers/s  p50 {p50:7.1f} ms/batch  errors={errors}  "
                        f"node ~{node_us:.1f} us/transfer"
                    )
                floor = await _floor(database_url, 1000, seconds, args.clients)
                figures["floor"].append(floor)
                log(f"round {round_ + 1}/{rounds} COPY floor, batches of 1000: {floor:,.0f} rows/s")
    batch_100 = statistics.median(figures["100"])
    batch_1000 = statistics.median(figures["1000"])
    floor = statistics.median(figures["floor"])
    ratio = batch_1000 / floor if floor else 0.0
    log(
        f"batch 1,000 / floor = {ratio:.2f} (target >= 0.30); batch 1,000 = {batch_1000:,.0f}/s "
        "(target >= 25,000)"
    )
    log(
        f"batch_100_per_s={batch_100:.0f} batch_1000_per_s={batch_1000:.0f} "
        f"floor_per_s={floor:.0f} ratio={ratio:.2f}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="one short round")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--mode", choices=["atomic", "independent"], default="atomic")
    asyncio.run(main(parser.parse_args()))
