"""SQL of the ledger's read side: filtered history pages, posted sums, daily closing balances,
and a statement's rows (migration 0012's indexes and table)."""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import asyncpg

from transakt.models import Transfer
from transakt.storage.records import HOLDER_NAMES, TRANSFER_COLUMNS, transfer_from_row
from transakt.storage.typing import Connection

__all__ = ["HistoryFilter", "HistoryStore", "StatementRow"]

_MAX_SEQ = 2**63 - 1

# Midnight UTC of a date, as a timestamptz (the day boundaries balances are kept at).
_MIDNIGHT = "(({day})::timestamp AT TIME ZONE 'UTC')"

# The posted amounts that move an account's balance within [$2, $3), signed from its side.
_POSTED_MOVES = """
    SELECT t.posted_at, t.amount AS delta FROM transfers AS t
    WHERE t.to_account = $1 AND t.status = 'posted' AND t.posted_at >= $2 AND t.posted_at < $3
    UNION ALL
    SELECT t.posted_at, -t.amount FROM transfers AS t
    WHERE t.from_account = $1 AND t.status = 'posted' AND t.posted_at >= $2 AND t.posted_at < $3
"""

_POSTED_SUM = f"SELECT coalesce(sum(m.delta), 0)::bigint FROM ({_POSTED_MOVES}) AS m"

# Every day from $2 through $3 closes at the day before's balance ($4) plus its posted moves.
_FILL_DAYS = f"""
INSERT INTO balance_days (account_id, day, closing_balance)
SELECT $1, d.day::date,
       ($4::bigint + sum(coalesce(m.delta, 0)) OVER (ORDER BY d.day))::bigint
FROM generate_series($2::date, $3::date, interval '1 day') AS d(day)
LEFT JOIN (
    SELECT (x.posted_at AT TIME ZONE 'UTC')::date AS day, sum(x.delta) AS delta
    FROM (
        SELECT t.posted_at, t.amount AS delta FROM transfers AS t
        WHERE t.to_account = $1 AND t.status = 'posted'
          AND t.posted_at >= {_MIDNIGHT.format(day="$2::date")}
          AND t.posted_at < {_MIDNIGHT.format(day="$3::date + 1")}
        UNION ALL
        SELECT t.posted_at, -t.amount FROM transfers AS t
        WHERE t.from_account = $1 AND t.status = 'posted'
          AND t.posted_at >= {_MIDNIGHT.format(day="$2::date")}
          AND t.posted_at < {_MIDNIGHT.format(day="$3::date + 1")}
    ) AS x
    GROUP BY 1
) AS m ON m.day = d.day::date
ORDER BY d.day
ON CONFLICT DO NOTHING
"""

# A statement's transfers: posted ones when they posted (their balance moved then), the others
# (pending, voided) when they were made; in that order of time, then of the ledger.
_STATEMENT_SOURCES = """
    (SELECT t.*, t.posted_at AS moment FROM transfers AS t
     WHERE t.from_account = $1 AND t.status = 'posted' AND t.posted_at >= $2 AND t.posted_at < $3)
    UNION ALL
    (SELECT t.*, t.posted_at FROM transfers AS t
     WHERE t.to_account = $1 AND t.status = 'posted' AND t.posted_at >= $2 AND t.posted_at < $3)
    UNION ALL
    (SELECT t.*, t.created_at FROM transfers AS t
     WHERE t.from_account = $1 AND t.status <> 'posted'
       AND t.created_at >= $2 AND t.created_at < $3)
    UNION ALL
    (SELECT t.*, t.created_at FROM transfers AS t
     WHERE t.to_account = $1 AND t.status <> 'posted'
       AND t.created_at >= $2 AND t.created_at < $3)
"""
_STATEMENT_COUNT = f"SELECT count(*) FROM ({_STATEMENT_SOURCES}) AS s"
_STATEMENT_ROWS = f"""
SELECT s.id, s.kind, s.status, s.from_account, s.to_account, s.amount, s.currency, s.memo,
       s.moment, s.seq
FROM ({_STATEMENT_SOURCES}) AS s
ORDER BY s.moment, s.seq
"""


@dataclass(frozen=True, slots=True)
class HistoryFilter:
    """What a history page is narrowed to; an empty field does not narrow."""

    kinds: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    counterparty: str | None = None
    created_from: datetime | None = None  # inclusive
    created_to: datetime | None = None  # exclusive
    min_amount: int | None = None  # inclusive
    max_amount: int | None = None  # inclusive
    #: (key, value) pairs the transfer's metadata must hold (a value of digits also matches
    #: that integer).
    metadata: tuple[tuple[str, str], ...] = ()

    @property
    def empty(self) -> bool:
        """True when nothing is filtered."""
        return self == HistoryFilter()


@dataclass(frozen=True, slots=True)
class StatementRow:
    """One transfer of a statement, at the moment it counts (posted_at, else created_at)."""

    id: str
    kind: str
    status: str
    from_account: str
    to_account: str
    amount: int
    currency: str
    memo: str | None
    moment: datetime


def _side(own: str, other: str, where: HistoryFilter, params: list[Any]) -> str:
    """One side's conditions; ``params`` already holds $1 (the account) and $2 (the seq)."""

    def bind(value: Any) -> str:
        params.append(value)
        return f"${len(params)}"

    conditions = [f"{own} = $1", "seq < $2"]
    if where.counterparty is not None:
        conditions.append(f"{other} = {bind(where.counterparty)}")
    if where.kinds:
        conditions.append(f"kind = ANY({bind(list(where.kinds))}::text[])")
    if where.statuses:
        conditions.append(f"status = ANY({bind(list(where.statuses))}::text[])")
    if where.created_from is not None:
        conditions.append(f"created_at >= {bind(where.created_from)}")
    if where.created_to is not None:
        conditions.append(f"created_at < {bind(where.created_to)}")
    if where.min_amount is not None:
        conditions.append(f"amount >= {bind(where.min_amount)}")
    if where.max_amount is not None:
        conditions.append(f"amount <= {bind(where.max_amount)}")
    for key, value in where.metadata:
        wanted: list[dict[str, Any]] = [{key: value}]  # the pool's codec encodes JSON
        if value.isascii() and value.isdigit() and len(value) <= 16:
            wanted.append({key: int(value)})
        conditions.append(
            "EXISTS (SELECT FROM transfer_attributes AS a WHERE a.transfer_id = transfers.id"
            f" AND a.metadata @> ANY({bind(wanted)}::jsonb[]))"
        )
    return " AND ".join(conditions)


def history_query(
    account_id: str, where: HistoryFilter, limit: int, before_seq: int | None
) -> tuple[str, list[Any]]:
    """The SQL and arguments of one filtered history page (``limit`` rows, newest first)."""
    params: list[Any] = [account_id, before_seq if before_seq is not None else _MAX_SEQ]
    paying = _side("from_account", "to_account", where, params)
    paid = _side("to_account", "from_account", where, params)
    params.append(limit)
    limit_param = f"${len(params)}"
    # Two index range scans merged, rather than an OR that cannot use the (account, seq) order.
    sql = f"""
        SELECT {TRANSFER_COLUMNS}, seq,
               (SELECT a.metadata FROM transfer_attributes AS a
                WHERE a.transfer_id = both_sides.id) AS metadata,
               (SELECT h.expires_at FROM hold_expiries AS h
                WHERE h.transfer_id = both_sides.id) AS expires_at,
               {HOLDER_NAMES.format(transfer="both_sides")}
        FROM (
            (SELECT * FROM transfers WHERE {paying} ORDER BY seq DESC LIMIT {limit_param})
            UNION ALL
            (SELECT * FROM transfers WHERE {paid} ORDER BY seq DESC LIMIT {limit_param})
        ) AS both_sides
        ORDER BY seq DESC
        LIMIT {limit_param}
    """
    return sql, params


class HistoryStore:
    """Reads of an account's past, and the daily closing balances they keep."""

    __slots__ = ("pool",)

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    def __repr__(self) -> str:
        return f"<HistoryStore pool_size={self.pool.get_size()}>"

    async def transactions(
        self, account_id: str, where: HistoryFilter, limit: int, before_seq: int | None
    ) -> tuple[list[Transfer], int | None]:
        """A page of the account's transfers matching ``where``, newest first, and the seq the
        next page continues before (None on the last page)."""
        sql, params = history_query(account_id, where, limit + 1, before_seq)
        rows = await self.pool.fetch(sql, *params)
        page = rows[:limit]
        next_seq = page[-1]["seq"] if len(rows) > limit else None
        return [transfer_from_row(row) for row in page], next_seq

    async def clock(self) -> tuple[datetime, datetime | None]:
        """The database's time, and the start of its oldest transaction that writes (a commit
        it makes still stamps that transaction's start time)."""
        row = await self.pool.fetchrow(
            "SELECT now() AS now, "
            "(SELECT min(xact_start) FROM pg_stat_activity "
            " WHERE backend_xid IS NOT NULL AND datname = current_database()) AS oldest"
        )
        assert row is not None
        return row["now"], row["oldest"]

    async def account_opened(self, account_id: str) -> datetime | None:
        """When the account was created."""
        value: datetime | None = await self.pool.fetchval(
            "SELECT created_at FROM accounts WHERE id = $1", account_id
        )
        return value

    async def fill_days(self, account_id: str, first_day: date, last_day: date) -> None:
        """Record the closing balance of every day through ``last_day`` not recorded yet,
        from the last one recorded (or from ``first_day``, at zero, when none is)."""
        async with self.pool.acquire() as connection:
            last = await connection.fetchrow(
                "SELECT day, closing_balance FROM balance_days WHERE account_id = $1 "
                "ORDER BY day DESC LIMIT 1",
                account_id,
            )
            if last is None:
                start, base = first_day, 0
            else:
                start, base = last["day"] + timedelta(days=1), last["closing_balance"]
            if start > last_day:
                return
            await connection.execute(_FILL_DAYS, account_id, start, last_day, base)

    async def closing_balances(
        self, account_id: str, first_day: date, last_day: date
    ) -> dict[date, int]:
        """The recorded closing balances of the days from ``first_day`` through ``last_day``."""
        rows = await self.pool.fetch(
            "SELECT day, closing_balance FROM balance_days "
            "WHERE account_id = $1 AND day BETWEEN $2 AND $3",
            account_id,
            first_day,
            last_day,
        )
        return {row["day"]: row["closing_balance"] for row in rows}

    async def recorded_day(
        self, account_id: str, not_after: date, connection: Connection | None = None
    ) -> tuple[date, int] | None:
        """The latest recorded day at or before ``not_after`` and its closing balance."""
        row = await (connection or self.pool).fetchrow(
            "SELECT day, closing_balance FROM balance_days "
            "WHERE account_id = $1 AND day <= $2 ORDER BY day DESC LIMIT 1",
            account_id,
            not_after,
        )
        return None if row is None else (row["day"], row["closing_balance"])

    async def posted_sum(
        self,
        account_id: str,
        since: datetime,
        before: datetime,
        connection: Connection | None = None,
    ) -> int:
        """What transfers posted in [since, before) moved the account's balance by."""
        value: int = await (connection or self.pool).fetchval(
            _POSTED_SUM, account_id, since, before
        )
        return value

    @asynccontextmanager
    async def snapshot(self) -> AsyncIterator[Connection]:
        """A connection in one read-only repeatable-read transaction: every read sees the
        same ledger (a statement's opening balance and its rows agree)."""
        async with (
            self.pool.acquire() as connection,
            connection.transaction(isolation="repeatable_read", readonly=True),
        ):
            yield connection

    @staticmethod
    async def statement_count(
        connection: Connection, account_id: str, start: datetime, end: datetime
    ) -> int:
        """How many transfers a statement of [start, end) lists."""
        value: int = await connection.fetchval(_STATEMENT_COUNT, account_id, start, end)
        return value

    @staticmethod
    async def statement_rows(
        connection: Connection, account_id: str, start: datetime, end: datetime
    ) -> AsyncGenerator[StatementRow, None]:
        """A statement's transfers in order, read in batches (inside ``snapshot``)."""
        async for row in connection.cursor(_STATEMENT_ROWS, account_id, start, end, prefetch=500):
            yield StatementRow(
                id=row["id"],
                kind=row["kind"],
                status=row["status"],
                from_account=row["from_account"],
                to_account=row["to_account"],
                amount=row["amount"],
                currency=row["currency"],
                memo=row["memo"],
                moment=row["moment"],
            )
