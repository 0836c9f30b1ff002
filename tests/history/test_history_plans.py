"""The history reads are index-backed: on a ledger of realistic size (a quarter million
transfers among a thousand wallets, one of them a busy merchant, then ANALYZE), no plan of a
filtered page, a posted sum, a day fill or a statement reads the transfers table sequentially.
The planner is left to its own costs: nothing here turns sequential scans off."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from transakt.storage.history import (
    _FILL_DAYS,
    _POSTED_SUM,
    _STATEMENT_COUNT,
    _STATEMENT_ROWS,
    HistoryFilter,
    history_query,
)

WALLETS = 1_000
TRANSFERS = 250_000
START = datetime(2024, 1, 1, tzinfo=UTC)
TYPICAL = "wal_plan_500"
BUSY = "wal_plan_1"  # a merchant: one p2p transfer in ten pays it

_POPULATE = [
    f"""INSERT INTO users (id, email, name, password_hash, bank_account)
        SELECT 'usr_plan_' || g, 'plan-' || g || '@example.test', 'Plan', 'x', 'DE00'
        FROM generate_series(1, {WALLETS}) AS g""",
    f"""INSERT INTO accounts (id, kind, user_id, currency)
        SELECT 'wal_plan_' || g, 'wallet', 'usr_plan_' || g, 'EUR'
        FROM generate_series(1, {WALLETS}) AS g""",
    """INSERT INTO accounts (id, kind, currency) VALUES ('settlement_EUR', 'settlement', 'EUR')
        ON CONFLICT DO NOTHING""",
    f"""INSERT INTO transfers (id, kind, status, from_account, to_account, amount, currency,
                               memo, created_at, posted_at, settled_at)
        SELECT 'trf_plan_' || g, x.kind, x.status,
               CASE WHEN x.kind = 'deposit' THEN 'settlement_EUR' ELSE 'wal_plan_' || x.payer END,
               CASE WHEN x.kind = 'withdrawal' THEN 'settlement_EUR'
                    ELSE 'wal_plan_' || x.payee END,
               1 + (g * 7919) % 50000, 'EUR', 'plan ' || g, x.created,
               CASE WHEN x.status = 'posted' THEN x.created + interval '3 minutes' END,
               CASE WHEN x.status <> 'pending' THEN x.created + interval '3 minutes' END
        FROM generate_series(1, {TRANSFERS}) AS g
        CROSS JOIN LATERAL (
            SELECT k.kind,
                   CASE WHEN k.kind = 'p2p' OR (g / 10) % 25 > 1 THEN 'posted'
                        WHEN (g / 10) % 25 = 0 THEN 'pending' ELSE 'voided' END AS status,
                   1 + (g * 31) % {WALLETS} AS payer,
                   CASE WHEN g % 10 = 5 THEN 1
                        ELSE 1 + ((g * 31) % {WALLETS} + 1 + (g * 17) % 20) % {WALLETS}
                   END AS payee,
                   timestamptz '{START.isoformat()}' + g * interval '2 minutes' AS created
            FROM (SELECT CASE WHEN g % 10 = 0 THEN 'deposit' WHEN g % 10 = 1 THEN 'withdrawal'
                              ELSE 'p2p' END AS kind) AS k
        ) AS x""",
    "ANALYZE users",
    "ANALYZE accounts",
    "ANALYZE transfers",
]


@pytest.fixture(scope="module")
async def big_ledger(history_pool: asyncpg.Pool) -> asyncpg.Pool:
    """The history database with the large ledger in it, analysed."""
    async with history_pool.acquire() as connection:
        for statement in _POPULATE:
            await connection.execute(statement)
    return history_pool


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


async def transfers_access(pool: asyncpg.Pool, sql: str, *args: Any) -> set[str]:
    """How the plan of ``sql`` reads transfers: the index names it uses; fails on a Seq Scan."""
    raw = await pool.fetchval(f"EXPLAIN (FORMAT JSON) {sql}", *args)
    plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
    indexes: set[str] = set()
    for node in _nodes(plan):
        relation = node.get("Relation Name")
        index = node.get("Index Name")
        if relation == "transfers":
            assert node["Node Type"] != "Seq Scan", json.dumps(plan, indent=1)
        if index is not None and index.startswith("transfers"):
            indexes.add(index)
    assert indexes, f"transfers is not read through an index: {json.dumps(plan, indent=1)}"
    return indexes


async def test_the_ledger_is_big_enough_to_mean_something(big_ledger: asyncpg.Pool) -> None:
    count = await big_ledger.fetchval("SELECT reltuples FROM pg_class WHERE relname = 'transfers'")
    assert count >= TRANSFERS
    busy = await big_ledger.fetchval(
        "SELECT count(*) FROM transfers WHERE to_account = $1 OR from_account = $1", BUSY
    )
    assert busy > TRANSFERS // 20


FILTERS = {
    "none": HistoryFilter(),
    "kind": HistoryFilter(kinds=("deposit", "withdrawal")),
    "status": HistoryFilter(statuses=("pending",)),
    "counterparty": HistoryFilter(counterparty="wal_plan_514"),
    "counterparty_busy": HistoryFilter(counterparty=BUSY),
    "settlement": HistoryFilter(counterparty="settlement_EUR"),
    "old_week": HistoryFilter(
        created_from=START + timedelta(days=20), created_to=START + timedelta(days=27)
    ),
    "since": HistoryFilter(created_from=START + timedelta(days=300)),
    "amounts": HistoryFilter(min_amount=1_000, max_amount=1_200),
    "everything": HistoryFilter(
        kinds=("p2p",),
        statuses=("posted",),
        counterparty="wal_plan_514",
        created_from=START + timedelta(days=10),
        created_to=START + timedelta(days=200),
        min_amount=10,
        max_amount=40_000,
    ),
}


@pytest.mark.parametrize("wallet", [TYPICAL, BUSY])
@pytest.mark.parametrize("name", sorted(FILTERS))
async def test_filtered_pages_use_indexes(big_ledger: asyncpg.Pool, wallet: str, name: str) -> None:
    where = FILTERS[name]
    for before in (None, 200_000):
        sql, params = history_query(wallet, where, 51, before)
        indexes = await transfers_access(big_ledger, sql, *params)
        if name.startswith("counterparty") or name == "settlement":
            assert indexes & {"transfers_from_counterparty", "transfers_to_counterparty"}, indexes


@pytest.mark.parametrize("wallet", [TYPICAL, BUSY])
async def test_balance_reads_use_the_posted_indexes(big_ledger: asyncpg.Pool, wallet: str) -> None:
    since, before = START + timedelta(days=100), START + timedelta(days=101, hours=5)
    indexes = await transfers_access(big_ledger, _POSTED_SUM, wallet, since, before)
    assert indexes == {"transfers_from_posted", "transfers_to_posted"}
    indexes = await transfers_access(
        big_ledger, _FILL_DAYS, wallet, date(2024, 2, 1), date(2024, 2, 20), 0
    )
    assert indexes == {"transfers_from_posted", "transfers_to_posted"}


@pytest.mark.parametrize("wallet", [TYPICAL, BUSY])
async def test_statements_use_indexes(big_ledger: asyncpg.Pool, wallet: str) -> None:
    start, end = START + timedelta(days=30), START + timedelta(days=61)
    for sql in (_STATEMENT_COUNT, _STATEMENT_ROWS):
        indexes = await transfers_access(big_ledger, sql, wallet, start, end)
        assert {"transfers_from_posted", "transfers_to_posted"} <= indexes


async def test_the_answers_on_the_big_ledger_match_a_plain_count(big_ledger: asyncpg.Pool) -> None:
    """The indexed queries answer what a plain scan would (the plans are not just fast)."""
    where = FILTERS["everything"]
    sql, params = history_query(TYPICAL, where, 10_000, None)
    rows = await big_ledger.fetch(sql, *params)
    plain = await big_ledger.fetchval(
        "SELECT count(*) FROM transfers WHERE (from_account = $1 AND to_account = 'wal_plan_514' "
        "OR to_account = $1 AND from_account = 'wal_plan_514') AND kind = 'p2p' "
        "AND status = 'posted' AND created_at >= $2 AND created_at < $3 "
        "AND amount BETWEEN 10 AND 40000",
        TYPICAL,
        where.created_from,
        where.created_to,
    )
    assert len(rows) == plain > 0
    seqs = [row["seq"] for row in rows]
    assert seqs == sorted(seqs, reverse=True)
