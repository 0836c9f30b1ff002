"""Group commit in one round trip: ``ledger_commit`` (one statement) against the statements path.

The old path sends each batch as BEGIN, seven set-based statements and COMMIT; the new one sends
one statement that runs a database function. Both commit batches of p2p transfers among 1,000
funded wallets on a fresh database, on one connection each, alternating in rounds (this machine
is noisy; medians are reported). The old path is the ledger module of the newest commit whose
ledger does not yet call ``ledger_commit`` (or ``--baseline REF``), loaded from a temporary
copy, so both run against the same schema in the same process.

    python bench/ledger_commit.py              # full run (~1 minute)
    python bench/ledger_commit.py --quick      # smoke run
    python bench/ledger_commit.py --writers 2  # two committing connections per path

Last line: batch_1_ratio=R batch_32_ratio=R batch_256_ratio=R (new transfers/s over old)
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.transfers import database, insert_funded_wallets  # noqa: E402 - path set-up
from transakt.storage.ledger import commit_batch  # noqa: E402
from transakt.storage.migrate import migrate  # noqa: E402
from transakt.storage.records import Applied, LedgerOperation, NewTransfer  # noqa: E402

LEDGER = "transakt/storage/ledger.py"
WALLETS = 1_000
BATCH_SIZES = (1, 32, 256)
CURRENCY = "EUR"

Commit = Callable[[asyncpg.Connection, Sequence[LedgerOperation]], Awaitable[Any]]


def git(*args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout


def baseline_ref(explicit: str | None) -> str:
    """The requested commit, or the newest one whose ledger still commits statement by statement."""
    if explicit:
        return git("rev-parse", "--short", explicit).strip()
    for commit in git("log", "--format=%h", "-n", "50", "--", LEDGER).split():
        if "ledger_commit(" not in git("show", f"{commit}:{LEDGER}"):
            return commit
    raise SystemExit("no commit with the statements path found; pass --baseline REF")


def load_baseline(ref: str, folder: Path) -> ModuleType:
    """Import the ledger module as it was at ``ref`` from a temporary copy."""
    path = folder / "ledger_baseline.py"
    path.write_text(git("show", f"{ref}:{LEDGER}"), encoding="utf-8")
    spec = importlib.util.spec_from_file_location("ledger_baseline", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being defined
    spec.loader.exec_module(module)
    return module


async def populate(database_url: str) -> list[str]:
    """1,000 users with a wallet each, funded far beyond what the run moves."""
    await migrate(database_url)
    connection = await asyncpg.connect(database_url)
    try:
        _users, wallets = await insert_funded_wallets(connection, ["DE00"] * WALLETS, 10**12)
        await connection.execute("VACUUM ANALYZE")
    finally:
        await connection.close()
    return wallets


def make_batch(rng: random.Random, wallets: list[str], size: int) -> list[LedgerOperation]:
    batch: list[LedgerOperation] = []
    for _ in range(size):
        payer, payee = rng.sample(wallets, 2)
        batch.append(
            NewTransfer(
                id=f"trf_{uuid.uuid4().hex}",
                kind="p2p",
                status="posted",
                from_account=payer,
                to_account=payee,
                amount=rng.randint(1, 10_000),
                currency=CURRENCY,
                memo=None,
                initiator_id=None,
            )
        )
    return batch


async def measure(
    commit: Commit,
    connections: list[asyncpg.Connection],
    wallets: list[str],
    size: int,
    seconds: float,
    rng: random.Random,
) -> tuple[float, float]:
    """Transfers per second, and this process's CPU microseconds per transfer, with each
    connection committing batches of ``size`` back to back for ``seconds``."""
    count = max(4, 2000 // size)
    batches = [[make_batch(rng, wallets, size) for _ in range(count)] for _ in connections]

    async def writer(connection: asyncpg.Connection, mine: list[list[LedgerOperation]]) -> int:
        done = 0
        for batch in mine:
            if time.perf_counter() >= deadline:
                break
            result = await commit(connection, batch)
            assert all(isinstance(o, Applied) for o in result.outcomes), result.outcomes[:3]
            done += size
        return done

    done = 0
    elapsed = cpu = 0.0
    while elapsed < seconds:  # fresh transfer ids for every batch, made outside the timing
        started, cpu_started = time.perf_counter(), time.process_time()
        deadline = started + seconds - elapsed
        counts = await asyncio.gather(
            *(writer(c, mine) for c, mine in zip(connections, batches, strict=True))
        )
        elapsed += time.perf_counter() - started
        cpu += time.process_time() - cpu_started
        done += sum(counts)
        batches = [[make_batch(rng, wallets, size) for _ in range(count)] for _ in connections]
    return done / elapsed, cpu / done * 1e6


async def main(arguments: argparse.Namespace) -> None:
    ref = baseline_ref(arguments.baseline)
    rounds = 1 if arguments.quick else arguments.rounds
    seconds = 0.5 if arguments.quick else arguments.seconds
    rng = random.Random(7)
    with tempfile.TemporaryDirectory() as folder:
        old = load_baseline(ref, Path(folder))
        paths: dict[str, Commit] = {"old": old.commit_batch, "new": commit_batch}
        async with database() as url:
            wallets = await populate(url)
            connections = {
                name: [await asyncpg.connect(url) for _ in range(arguments.writers)]
                for name in paths
            }
            try:
                # Warm up: prepared statements, plan caches, the function's compilation.
                for name, commit in paths.items():
                    await measure(commit, connections[name], wallets, 32, 0.5, rng)
                figures: dict[tuple[str, int], list[tuple[float, float]]] = {}
                for _round in range(rounds):
                    for size in BATCH_SIZES:
                        for name, commit in paths.items():
                            figure = await measure(
                                commit, connections[name], wallets, size, seconds, rng
                            )
                            figures.setdefault((name, size), []).append(figure)
            finally:
                for each in connections.values():
                    for connection in each:
                        await connection.close()
    print(f"old path: {LEDGER} at {ref}; new path: the working tree")
    print(
        f"{arguments.writers} connection(s) per path, {rounds} round(s) x {seconds:g} s per "
        "path and batch size; medians; cpu = this process's CPU per transfer"
    )
    print(
        f"{'batch':>6} {'old transfers/s':>16} {'new transfers/s':>16} {'ratio':>6} "
        f"{'old cpu us':>11} {'new cpu us':>11}"
    )
    ratios = []
    for size in BATCH_SIZES:
        before = statistics.median(rate for rate, _cpu in figures[("old", size)])
        after = statistics.median(rate for rate, _cpu in figures[("new", size)])
        cpu_before = statistics.median(cpu for _rate, cpu in figures[("old", size)])
        cpu_after = statistics.median(cpu for _rate, cpu in figures[("new", size)])
        ratios.append(f"batch_{size}_ratio={after / before:.2f}")
        print(
            f"{size:>6} {before:>16,.0f} {after:>16,.0f} {after / before:>6.2f} "
            f"{cpu_before:>11.1f} {cpu_after:>11.1f}"
        )
    print(" ".join(ratios))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one short round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement")
    parser.add_argument("--writers", type=int, default=1, help="connections per path")
    parser.add_argument("--baseline", help="git ref of the old ledger module")
    asyncio.run(main(parser.parse_args()))
