"""The bank gateway: how fast a backlog drains once the bank returns; what the bank's cache saves.

A real sandbox bank and a real wallet node run as `transakt bank` and `transakt serve` processes
on a fresh PostgreSQL database and a Redis database. With the bank refusing every call (its
refuse_all fault), clients send deposits and withdrawals over HTTP; each is accepted (202) and
waits in the Redis buffer. Then the bank comes back, and the clock runs until the last buffered
request is settled in the wallet ledger. Reconciliation then checks both ledgers agree.

Second, the bank's account cache: verify-user look-ups follow a Zipf distribution over many
accounts (a few are looked up again and again, most rarely: repeat sign-in verifications), and
the bank's /metrics counters say how many were answered without its database.

    python bench/bank.py            # 10,000 buffered requests, 30,000 look-ups
    python bench/bank.py --quick    # a smoke run

Needs PostgreSQL (TRANSAKT_BENCH_DATABASE_URL, an admin URL: a fresh database is made and
dropped) and Redis (TRANSAKT_BENCH_REDIS_URL, default database 13, which is emptied).

Last line: drain_per_s=N cache_hit_ratio=R
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import aiohttp
import asyncpg
import redis.asyncio as aioredis
from pydantic import SecretStr

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.transfers import (  # noqa: E402 - path set-up
    database,
    insert_funded_wallets,
    wait_until_healthy,
)
from transakt.config import Settings  # noqa: E402
from transakt.gateway.client import BankClient  # noqa: E402
from transakt.gateway.constants import BANK_STREAM  # noqa: E402
from transakt.gateway.reconcile import reconcile  # noqa: E402
from transakt.http.auth import issue_access_token  # noqa: E402
from transakt.storage.migrate import migrate  # noqa: E402

# The bench empties this Redis database first: keep it apart from anything else.
REDIS_URL = os.environ.get("TRANSAKT_BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
JWT_SECRET = "bench-jwt-secret-" + "x" * 40
BANK_SECRET = "bench-bank-secret-" + "y" * 40
CURRENCY = "EUR"
# The breaker probes the returning bank within this many seconds (its reset timeout and cap).
BREAKER_RESET_SECONDS = 0.5
BREAKER_RESET_MAX_SECONDS = 1.0


def log(message: str) -> None:
    print(message, flush=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def settings_for(database_url: str, bank_url: str = "http://127.0.0.1:8081") -> Settings:
    return Settings(
        _env_file=None,
        database_url=database_url,
        bank_url=bank_url,
        jwt_secret=SecretStr(JWT_SECRET),
        bank_service_secret=SecretStr(BANK_SECRET),
    )


@asynccontextmanager
async def process(name: str, command: str, env: dict[str, str], url: str) -> AsyncIterator[None]:
    """Run `transakt <command>` until the block ends; wait for its /healthz first.

    The child runs in a scratch directory of its own, with its own data directory: it reads no
    .env file, and its mail (deposits and withdrawals mail their owners) never reaches the mail
    sink of a system running from this checkout.
    """
    scratch = tempfile.TemporaryDirectory(prefix=f"transakt-bench-{command}-")
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TRANSAKT_")} | {
        "TRANSAKT_DATA_DIR": str(Path(scratch.name) / "data"),
        # The package from this checkout, whether it is installed or not.
        "PYTHONPATH": os.pathsep.join(filter(None, (str(ROOT), os.environ.get("PYTHONPATH")))),
        **env,
    }
    # A plain Popen: the child runs for the whole measurement and is only signalled at the end.
    child = subprocess.Popen(  # noqa: ASYNC220
        [sys.executable, "-m", "transakt", command], cwd=scratch.name, env=full_env
    )
    try:
        await wait_until_healthy(url, child, name, seconds=60.0)
        log(f"{name} is up at {url}")
        yield
    finally:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
        scratch.cleanup()


async def bank_accounts(database_url: str, count: int) -> list[str]:
    """Open ``count`` funded accounts in the bank's schema (its API would take minutes)."""
    numbers = [f"DE{secrets.randbelow(10**20):020d}" for _ in range(count)]
    connection = await asyncpg.connect(database_url)
    try:
        await connection.copy_records_to_table(
            "accounts",
            schema_name="bank",
            records=[(number, "Bench Person", CURRENCY, 10**12) for number in numbers],
            columns=["account", "name", "currency", "balance"],
        )
    finally:
        await connection.close()
    return numbers


async def wallet_users(database_url: str, accounts: list[str]) -> list[tuple[str, str]]:
    """A user per bank account with a funded wallet, inserted directly: (wallet, token)."""
    settings = settings_for(database_url)
    connection = await asyncpg.connect(database_url)
    try:
        # Opening balances, so that withdrawals have something to hold.
        users, wallets = await insert_funded_wallets(connection, accounts, 10**9)
    finally:
        await connection.close()
    return [(w, issue_access_token(settings, u).token) for w, u in zip(wallets, users, strict=True)]


async def send_requests(wallet_url: str, people: list[tuple[str, str]], count: int) -> None:
    """``count`` deposits and withdrawals (alternating), 64 at a time; each must be a 202."""
    sent = 0

    async def client(session: aiohttp.ClientSession, indexes: range) -> None:
        nonlocal sent
        for index in indexes:
            wallet, token = people[index % len(people)]
            path = "/api/v1/deposits" if index % 2 == 0 else "/api/v1/withdrawals"
            body = {"wallet": wallet, "amount": 100 + index % 50, "currency": CURRENCY}
            headers = {"Authorization": f"Bearer {token}"}
            async with session.post(wallet_url + path, json=body, headers=headers) as answer:
                if answer.status != 202:
                    raise RuntimeError(f"{path}: {answer.status} {await answer.text()}")
            sent += 1
            if sent % 2000 == 0:
                log(f"  {sent} accepted")

    clients = 64
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=clients)) as session:
        await asyncio.gather(*(client(session, range(i, count, clients)) for i in range(clients)))


async def drain(database_url: str, redis: aioredis.Redis, bank: BankClient, count: int) -> float:
    """Bring the bank back; seconds until the last buffered request settled."""
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    assert pool is not None
    pending_sql = "SELECT count(*) FROM transfers WHERE status = 'pending' AND kind <> 'p2p'"
    try:
        while (buffered := int(await redis.xlen(BANK_STREAM))) < count:
            log(f"  {buffered} of {count} buffered")
            await asyncio.sleep(0.1)
        log(f"{count} requests buffered, none settled: bringing the bank back")
        returned_at = await pool.fetchval("SELECT clock_timestamp()")
        await bank.set_faults(refuse_all=False)
        started = time.perf_counter()
        last_report = started
        while (left := int(await pool.fetchval(pending_sql))) > 0:
            if time.perf_counter() - last_report >= 1.0:
                last_report = time.perf_counter()
                log(f"  {left} still pending after {last_report - started:.1f}s")
            await asyncio.sleep(0.02)
        settled = await pool.fetchrow(
            "SELECT min(settled_at) AS first, max(settled_at) AS last FROM transfers "
            "WHERE kind <> 'p2p' AND settled_at >= $1",
            returned_at,
        )
        assert settled is not None
        posted = await pool.fetchval(
            "SELECT count(*) FROM transfers WHERE kind <> 'p2p' AND status = 'posted' "
            "AND initiator_id IS NOT NULL"
        )
    finally:
        await pool.close()
    if posted != count:
        raise RuntimeError(f"{posted} of {count} requests posted")
    probe = float((settled["first"] - returned_at).total_seconds())
    seconds = float((settled["last"] - returned_at).total_seconds())
    log(f"first settled {probe:.2f}s after the bank returned (the breaker's probe wait)")
    log(f"last settled {seconds:.2f}s after the bank returned; all {count} posted")
    return seconds


async def cache_hit_ratio(bank_url: str, accounts: list[str], lookups: int) -> float:
    """Zipf-distributed verify-user look-ups; the share the bank's cache answered."""
    rng = random.Random(42)
    ranked = accounts[:]
    rng.shuffle(ranked)
    weights = [1 / rank for rank in range(1, len(ranked) + 1)]  # Zipf, exponent 1
    picks = rng.choices(ranked, weights=weights, k=lookups)
    distinct = len(set(picks))
    log(
        f"cache: {lookups} verify-user look-ups over {len(ranked)} accounts (Zipf s=1), "
        f"{distinct} distinct"
    )

    async def counters(session: aiohttp.ClientSession) -> tuple[int, int]:
        async with session.get(f"{bank_url}/metrics") as answer:
            text = await answer.text()
        hits = re.search(r"^bank_account_cache_hits_total (\d+)", text, re.MULTILINE)
        misses = re.search(r"^bank_account_cache_misses_total (\d+)", text, re.MULTILINE)
        assert hits and misses, text
        return int(hits.group(1)), int(misses.group(1))

    async with (
        BankClient(bank_url, BANK_SECRET, timeout=30.0) as bank,
        aiohttp.ClientSession() as session,
    ):
        hits_before, misses_before = await counters(session)
        queue = iter(picks)

        async def client() -> None:
            for account in queue:
                if await bank.verify_user(account) is None:
                    raise RuntimeError(f"the bank does not know {account}")

        started = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(32)))
        elapsed = time.perf_counter() - started
        hits_after, misses_after = await counters(session)
    hits, misses = hits_after - hits_before, misses_after - misses_before
    log(
        f"cache: {hits} hits, {misses} misses, {lookups / elapsed:,.0f} look-ups/s: "
        f"{hits / (hits + misses):.0%} fewer database reads than without it (the original "
        f"system claims about 40%)"
    )
    return hits / (hits + misses)


async def main(quick: bool) -> None:
    requests = 1_000 if quick else 10_000
    people = requests // 5
    cache_accounts = 2_000 if quick else 10_000
    lookups = 6_000 if quick else 30_000
    redis = aioredis.from_url(REDIS_URL)
    await redis.flushdb()
    try:
        async with database("transakt_bench_bank") as database_url:
            await migrate(database_url)
            bank_port, wallet_port = free_port(), free_port()
            bank_url = f"http://127.0.0.1:{bank_port}"
            wallet_url = f"http://127.0.0.1:{wallet_port}"
            common = {
                "TRANSAKT_DATABASE_URL": database_url,
                "TRANSAKT_BANK_SERVICE_SECRET": BANK_SECRET,
                "TRANSAKT_LOG_LEVEL": "WARNING",
                "TRANSAKT_DATABASE_POOL_MAX": "20",
            }
            bank_env = common | {"TRANSAKT_BANK_PORT": str(bank_port)}
            async with process("bank", "bank", bank_env, bank_url):
                # Separate accounts for the cache: reconciliation looks the users' ones up.
                accounts = await bank_accounts(database_url, people + cache_accounts)
                log(f"opened {len(accounts)} bank accounts")
                users = await wallet_users(database_url, accounts[:people])
                log(f"created {len(users)} wallet users with funded wallets")
                wallet_env = common | {
                    "TRANSAKT_PORT": str(wallet_port),
                    "TRANSAKT_REDIS_URL": REDIS_URL,
                    "TRANSAKT_BANK_URL": bank_url,
                    "TRANSAKT_JWT_SECRET": JWT_SECRET,
                    "TRANSAKT_BREAKER_RESET_SECONDS": str(BREAKER_RESET_SECONDS),
                    "TRANSAKT_BREAKER_RESET_MAX_SECONDS": str(BREAKER_RESET_MAX_SECONDS),
                }
                async with (
                    BankClient(bank_url, BANK_SECRET, timeout=30.0) as bank,
                    process("wallet node", "serve", wallet_env, wallet_url),
                ):
                    await bank.set_faults(refuse_all=True)
                    log(f"bank outage: sending {requests} deposits and withdrawals")
                    started = time.perf_counter()
                    await send_requests(wallet_url, users, requests)
                    accepted = time.perf_counter() - started
                    log(f"all {requests} accepted (202) in {accepted:.1f}s while the bank was down")
                    seconds = await drain(database_url, redis, bank, requests)
                report = await reconcile(settings_for(database_url, bank_url), database_url)
                log(report.lines()[-1])
                if not report.ok:
                    raise RuntimeError("the wallet and the bank disagree")
                ratio = await cache_hit_ratio(bank_url, accounts[people:], lookups)
    finally:
        await redis.flushdb()
        await redis.aclose()
    log(f"drain_per_s={requests / seconds:.0f} cache_hit_ratio={ratio:.3f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run")
    asyncio.run(main(parser.parse_args().quick))
