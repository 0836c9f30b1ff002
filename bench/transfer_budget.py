"""What the transfer targets leave for the wallet's own work, measured on this machine.

``bench/transfers.py`` targets a node that pays at 4x the lock-per-transfer server's rate (8x
when every payment goes to one merchant). Everything runs on one machine (load generator,
node, PostgreSQL), so a payment's CPU, summed over all three, sets how many fit in a second of
its cores. This script measures, in one run, the parts of that sum no node can avoid:

- the HTTP round trip with no work at all: the no-op endpoint's server and client CPU;
- the least a durable ledger of this shape asks of PostgreSQL per payment: the group-commit
  function with its outbox event and foreign keys taken out (a scratch copy in this run's own
  database), at the batch size the real node forms under the same load;

and, in the same run, the lock-per-transfer figures and the real node's CPU per payment. From
those it prints the CPU a payment may cost at most for each target (all cores 100% busy, which
no run reaches), what is left of it for the wallet's own work (auth, validation, the actor, the
group commit, the outbox event and the constraints), and what that work costs now.

    python bench/transfer_budget.py            # full run (~3 minutes)
    python bench/transfer_budget.py --quick    # smoke run

Last line: floor_us=N cap_per_s=N need_uniform_per_s=N need_hot_per_s=N app_budget_uniform_us=N
app_budget_hot_us=N app_now_us=N
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import statistics
import sys
import time
import uuid
from pathlib import Path

import aiohttp
import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.transfers import (  # noqa: E402 - after the path set-up above
    CURRENCY,
    Population,
    Result,
    add_load_arguments,
    database,
    log,
    measure,
    populate,
    process_cpu_seconds,
    server,
    warm_up,
)
from transakt.storage.ledger import commit_batch  # noqa: E402
from transakt.storage.records import NewTransfer  # noqa: E402

# The constraints the stripped ledger goes without (restored after each measurement).
_FOREIGN_KEYS = {
    "transfers_from_same_currency": "FOREIGN KEY (from_account, currency) "
    "REFERENCES accounts (id, currency)",
    "transfers_to_same_currency": "FOREIGN KEY (to_account, currency) "
    "REFERENCES accounts (id, currency)",
    "transfers_initiator_id_fkey": "FOREIGN KEY (initiator_id) REFERENCES users (id)",
}
_OUTBOX_STEP = re.compile(r"\n\s*-- 6\. The outbox.*?(?=\nEND;)", re.DOTALL)


async def ledger_variants(connection: asyncpg.Connection) -> tuple[str, str]:
    """The ledger function's definition as shipped, and a copy without its outbox step."""
    shipped: str = await connection.fetchval("SELECT pg_get_functiondef('ledger_apply'::regproc)")
    stripped, found = _OUTBOX_STEP.subn("\n", shipped)
    if found != 1:
        raise RuntimeError("the ledger function has no outbox step where this bench expects it")
    return shipped, stripped


async def ledger_cpu_per_transfer(
    connection: asyncpg.Connection,
    population: Population,
    users: dict[str, str],
    batch: int,
    batches: int,
    rng: random.Random,
) -> float:
    """PostgreSQL CPU (this connection's backend) per transfer, committing p2p batches."""
    backend = await connection.fetchval("SELECT pg_backend_pid()")
    wallets = population.wallets
    before = process_cpu_seconds(backend)
    for _ in range(batches):
        operations = []
        for _ in range(batch):
            payer, payee = rng.sample(wallets, 2)
            operations.append(
                NewTransfer(
                    id=f"trf_{uuid.uuid4().hex}", kind="p2p", status="posted",
                    from_account=payer, to_account=payee, amount=1, currency=CURRENCY,
                    memo=None, initiator_id=users[payer],
                )
            )  # fmt: skip
        await commit_batch(connection, operations)
    return (process_cpu_seconds(backend) - before) / (batch * batches) * 1e6


async def strip(connection: asyncpg.Connection, stripped: str) -> None:
    await connection.execute(stripped)
    for name in _FOREIGN_KEYS:
        await connection.execute(f"ALTER TABLE transfers DROP CONSTRAINT {name}")


async def restore(connection: asyncpg.Connection, shipped: str) -> None:
    await connection.execute(shipped)
    for name, definition in _FOREIGN_KEYS.items():
        await connection.execute(f"ALTER TABLE transfers ADD CONSTRAINT {name} {definition}")


async def ledger_counters(url: str) -> tuple[float, float]:
    """(batches, operations) the node's group commit has done so far, from /metrics."""
    values: dict[str, float] = {}
    async with aiohttp.ClientSession() as session, session.get(f"{url}/metrics") as answer:
        for line in (await answer.text()).splitlines():
            name, _, value = line.partition(" ")
            if name in ("transakt_ledger_batches_total", "transakt_ledger_operations_total"):
                values[name] = float(value)
    return values["transakt_ledger_batches_total"], values["transakt_ledger_operations_total"]


async def main(args: argparse.Namespace) -> None:
    count = 2_000 if args.quick else args.wallets
    seconds = 2.0 if args.quick else args.seconds
    rounds = 1 if args.quick else args.rounds
    cores = os.cpu_count() or 1
    actor: list[Result] = []
    batch_sizes: list[float] = []
    lock: dict[str, list[Result]] = {"uniform": [], "hot": []}
    noop: list[Result] = []
    shipped_us: list[float] = []
    stripped_us: list[float] = []
    async with database("transakt_budget") as database_url:
        log(f"setting up {count} funded wallets ...")
        population = await populate(database_url, count)
        connection = await asyncpg.connect(database_url)
        try:
            users = {
                row["id"]: row["user_id"]
                for row in await connection.fetch("SELECT id, user_id FROM accounts")
            }
            shipped, stripped = await ledger_variants(connection)
            rng = random.Random(7)
            for round_ in range(rounds):
                async with server("actor", database_url) as url:
                    await warm_up(url, population, args.concurrency)
                    batches, operations = await ledger_counters(url)
                    actor.append(
                        await measure(url, population, "uniform", seconds, args.concurrency)
                    )
                    batches_after, operations_after = await ledger_counters(url)
                    batch_sizes.append(
                        (operations_after - operations) / max(batches_after - batches, 1)
                    )
                async with server("lock", database_url) as url:
                    await warm_up(url, population, args.concurrency)
                    for scenario in ("uniform", "hot"):
                        lock[scenario].append(
                            await measure(url, population, scenario, seconds, args.concurrency)
                        )
                async with server("noop", database_url) as url:
                    noop.append(
                        await measure(url, population, "uniform", seconds, args.concurrency)
                    )
                # PostgreSQL alone, at the batch size the node formed under this load.
                batch = max(1, round(statistics.median(batch_sizes)))
                repeats = max(20, int(2_000 / batch) // (4 if args.quick else 1))
                shipped_us.append(
                    await ledger_cpu_per_transfer(
                        connection, population, users, batch, repeats, rng
                    )
                )
                await strip(connection, stripped)
                try:
                    stripped_us.append(
                        await ledger_cpu_per_transfer(
                            connection, population, users, batch, repeats, rng
                        )
                    )
                finally:
                    await restore(connection, shipped)
                log(
                    f"round {round_ + 1}/{rounds}: actor {actor[-1].per_s:.0f}/s "
                    f"(batches of {batch_sizes[-1]:.1f}), lock {lock['uniform'][-1].per_s:.0f}/s "
                    f"hot {lock['hot'][-1].per_s:.0f}/s, no-op {noop[-1].per_s:.0f}/s; "
                    f"ledger function {shipped_us[-1]:.0f} us/transfer, "
                    f"stripped {stripped_us[-1]:.0f}"
                )
        finally:
            await connection.close()

    def cpu(results: list[Result], *parts: str) -> float:
        return statistics.median(sum(r.cpu_us.get(p, 0.0) for p in parts) for r in results)

    def rate(results: list[Result]) -> float:
        return statistics.median(r.per_s for r in results)

    round_trip = cpu(noop, "server", "client")
    ledger_floor = statistics.median(stripped_us)
    floor = round_trip + ledger_floor
    cap = cores * 1e6 / floor
    need_uniform = 4 * rate(lock["uniform"])
    need_hot = 8 * rate(lock["hot"])
    budget_uniform = cores * 1e6 / need_uniform
    budget_hot = cores * 1e6 / need_hot
    actor_total = cpu(actor, "server", "postgres", "client")
    log("")
    log(f"CPU per payment, all parts summed ({cores} cores), medians of {rounds} rounds:")
    log(f"  HTTP round trip, no work (no-op server + client)   {round_trip:7.0f} us")
    log(f"  ledger minimum in PostgreSQL (no outbox, no FKs)   {ledger_floor:7.0f} us")
    log(f"  = floor                                           {floor:7.0f} us")
    shipped_median = statistics.median(shipped_us)
    log(f"  (the ledger function as shipped                    {shipped_median:7.0f} us)")
    log(f"  (the real node's rate                              {rate(actor):7.0f} /s)")
    log(f"  the real node now, all parts                       {actor_total:7.0f} us")
    log(f"  at 100% of every core the floor alone allows       {cap:7.0f} payments/s")
    log(
        f"targets: 4 x lock {rate(lock['uniform']):.0f}/s = {need_uniform:.0f}/s, "
        f"{budget_uniform:.0f} us a payment, {budget_uniform - floor:.0f} us beyond the floor; "
        f"8 x lock hot {rate(lock['hot']):.0f}/s = {need_hot:.0f}/s, {budget_hot:.0f} us, "
        f"{budget_hot - floor:.0f} us beyond it. The wallet's own work costs "
        f"{actor_total - floor:.0f} us now."
    )
    log(
        f"floor_us={floor:.0f} cap_per_s={cap:.0f} need_uniform_per_s={need_uniform:.0f} "
        f"need_hot_per_s={need_hot:.0f} app_budget_uniform_us={budget_uniform - floor:.0f} "
        f"app_budget_hot_us={budget_hot - floor:.0f} app_now_us={actor_total - floor:.0f}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_load_arguments(parser)
    arguments = parser.parse_args()
    started = time.perf_counter()
    asyncio.run(main(arguments))
    log(f"({time.perf_counter() - started:.0f} s)")
