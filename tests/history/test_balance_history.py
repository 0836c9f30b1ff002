"""Balance history: the posted balance at any instant and per UTC day, against a ledger of
transfers spread over past days (created, posted, voided and left pending at chosen times).

The property: for any sequence of transfers and any instants, the balance at an instant is the
sum of what posted up to it, in whatever order instants are asked (the daily closing balances
are recorded lazily, so early questions fill what later ones read), and the daily series agrees.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.history.conftest import OpenWallet
from transakt.errors import ValidationFailed
from transakt.services.history import HistoryService

BASE = datetime(2025, 3, 1, tzinfo=UTC)
DAY = 86_400
WINDOW = 6 * DAY
TICK = timedelta(microseconds=1)


@dataclass(frozen=True)
class Row:
    """A transfer as the test writes it, and when (if ever) it moved the wallet's balance."""

    kind: str
    incoming: bool
    amount: int
    created_at: datetime
    status: str
    settled_at: datetime | None

    @property
    def posted_at(self) -> datetime | None:
        return self.settled_at if self.status == "posted" else None


def rows_strategy() -> st.SearchStrategy[list[Row]]:
    def build(kind: str, incoming: bool, amount: int, created: int, fate: str, delay: int) -> Row:
        # Off the whole second mostly, but exactly on the hour (and midnight) at times.
        micros = 0 if created % 3_600 == 0 else created % 997
        created_at = BASE + timedelta(seconds=created, microseconds=micros)
        if kind == "deposit":
            incoming = True
        elif kind == "withdrawal":
            incoming = False
        if kind == "p2p" or fate == "posted_at_once":
            return Row(kind, incoming, amount, created_at, "posted", created_at)
        if fate == "pending":
            return Row(kind, incoming, amount, created_at, "pending", None)
        status = "posted" if fate == "posted_later" else "voided"
        settled_at = created_at + timedelta(seconds=delay)
        return Row(kind, incoming, amount, created_at, status, settled_at)

    one = st.builds(
        build,
        st.sampled_from(["p2p", "deposit", "withdrawal"]),
        st.booleans(),
        st.integers(1, 1_000_000),
        st.one_of(st.integers(0, WINDOW), st.sampled_from([DAY, 2 * DAY, 3 * DAY, 4 * DAY])),
        st.sampled_from(["posted_at_once", "posted_later", "voided", "pending"]),
        # Settling may take from no time to days (a bank that was down), across midnights.
        st.sampled_from([0, 1, 59, 3_600, DAY - 1, DAY, 2 * DAY + 17]),
    )
    return st.lists(one, max_size=25)


async def write_rows(pool: asyncpg.Pool, wallet: str, peer: str, rows: list[Row]) -> None:
    """Insert the transfers as the ledger would have left them."""
    records = []
    for row in rows:
        other = peer if row.kind == "p2p" else "settlement_EUR"
        source, target = (other, wallet) if row.incoming else (wallet, other)
        records.append(
            (
                f"trf_{uuid.uuid4().hex}",
                row.kind,
                row.status,
                source,
                target,
                row.amount,
                row.created_at,
                row.posted_at,
                row.settled_at,
            )
        )
    await pool.executemany(
        "INSERT INTO transfers (id, kind, status, from_account, to_account, amount, currency, "
        "created_at, posted_at, settled_at) VALUES ($1, $2, $3, $4, $5, $6, 'EUR', $7, $8, $9)",
        records,
    )


def expected_balance(rows: list[Row], moment: datetime, *, inclusive: bool = True) -> int:
    """What posted up to ``moment`` (at or before it; before it when not ``inclusive``)."""
    total = 0
    for row in rows:
        posted = row.posted_at
        if posted is None or posted > moment or (not inclusive and posted == moment):
            continue
        total += row.amount if row.incoming else -row.amount
    return total


def mirrored(rows: list[Row]) -> list[Row]:
    """The peer wallet's side of the p2p rows (it pays what the wallet receives)."""
    return [
        Row(row.kind, not row.incoming, row.amount, row.created_at, row.status, row.settled_at)
        for row in rows
        if row.kind == "p2p"
    ]


instants = st.lists(st.integers(-2 * DAY, WINDOW + 4 * DAY), min_size=1, max_size=8)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(rows=rows_strategy(), offsets=instants, exact=st.lists(st.integers(0, 24), max_size=4))
async def test_balance_at_any_instant_is_the_posted_sum_and_days_agree(
    history_pool: asyncpg.Pool,
    history_service: HistoryService,
    open_wallet: OpenWallet,
    rows: list[Row],
    offsets: list[int],
    exact: list[int],
) -> None:
    user, wallet = await open_wallet(BASE - timedelta(hours=5))
    peer_user, peer = await open_wallet(BASE - timedelta(hours=7))
    await write_rows(history_pool, wallet, peer, rows)

    moments = [BASE + timedelta(seconds=offset) for offset in offsets]
    # The instants where it is easiest to be off by one: a posting itself and just before it.
    posted = sorted(row.posted_at for row in rows if row.posted_at is not None)
    for index in exact:
        if posted:
            moment = posted[index % len(posted)]
            moments += [moment, moment - TICK]
    for moment in moments:
        currency, balance = await history_service.balance_at(user, wallet, moment)
        assert currency == "EUR"
        assert balance == expected_balance(rows, moment), moment

    first, last = (BASE - timedelta(days=3)).date(), (BASE + timedelta(days=10)).date()
    _, series = await history_service.daily_balances(user, wallet, first, last)
    assert [entry.day for entry in series] == [
        first + timedelta(days=n) for n in range((last - first).days + 1)
    ]
    for entry in series:
        end = datetime.combine(entry.day + timedelta(days=1), datetime.min.time(), UTC)
        assert entry.closing_balance == expected_balance(rows, end, inclusive=False), entry
        assert entry.final  # every day here is long closed
        # The series and the instants agree: a day closes at its last microsecond's balance.
        _, at_close = await history_service.balance_at(user, wallet, end - TICK)
        assert at_close == entry.closing_balance

    peer_rows = mirrored(rows)
    for moment in moments:
        _, balance = await history_service.balance_at(peer_user, peer, moment)
        assert balance == expected_balance(peer_rows, moment)


async def test_a_recorded_day_is_read_not_recomputed(
    history_pool: asyncpg.Pool, history_service: HistoryService, open_wallet: OpenWallet
) -> None:
    """Answers start from the last recorded closing balance: tampering with one shows through
    (so a question does not sum the wallet's whole history again)."""
    user, wallet = await open_wallet(BASE)
    _, peer = await open_wallet(BASE)
    rows = [
        Row("deposit", True, 5_000, BASE + timedelta(hours=1), "posted", BASE + timedelta(hours=1)),
        Row("p2p", False, 700, BASE + timedelta(days=2), "posted", BASE + timedelta(days=2)),
    ]
    await write_rows(history_pool, wallet, peer, rows)
    moment = BASE + timedelta(days=4, hours=3)
    assert (await history_service.balance_at(user, wallet, moment))[1] == 4_300
    recorded = await history_pool.fetch(
        "SELECT day, closing_balance FROM balance_days WHERE account_id = $1 ORDER BY day", wallet
    )
    days = [row["day"] for row in recorded]
    # Contiguous from the day before the wallet opened through the day before the instant.
    assert days[0] == BASE.date() - timedelta(days=1)
    assert days[-1] == moment.date() - timedelta(days=1)
    assert len(days) == (days[-1] - days[0]).days + 1
    assert [row["closing_balance"] for row in recorded] == [0, 5_000, 5_000, 4_300, 4_300]

    await history_pool.execute(
        "UPDATE balance_days SET closing_balance = closing_balance + 1000000 "
        "WHERE account_id = $1 AND day = $2",
        wallet,
        days[-1],
    )
    assert (await history_service.balance_at(user, wallet, moment))[1] == 1_004_300
    # An instant before the tampered day does not read it.
    earlier = BASE + timedelta(days=2, hours=1)
    assert (await history_service.balance_at(user, wallet, earlier))[1] == 4_300


async def test_days_not_closed_are_neither_recorded_nor_final(
    history_pool: asyncpg.Pool, history_service: HistoryService, open_wallet: OpenWallet
) -> None:
    now = datetime.now(UTC)
    user, wallet = await open_wallet(now - timedelta(days=3))
    _, peer = await open_wallet(now - timedelta(days=3))
    rows = [
        Row("deposit", True, 900, now - timedelta(days=2), "posted", now - timedelta(days=2)),
        Row("p2p", False, 100, now - timedelta(seconds=5), "posted", now - timedelta(seconds=5)),
    ]
    await write_rows(history_pool, wallet, peer, rows)
    today = now.date()
    _, series = await history_service.daily_balances(user, wallet, today - timedelta(days=4), today)
    assert series[-1].day == today
    assert series[-1].closing_balance == 800
    assert not series[-1].final
    assert series[0].final and series[0].closing_balance == 0
    recorded = await history_pool.fetchval(
        "SELECT max(day) FROM balance_days WHERE account_id = $1", wallet
    )
    assert recorded is not None and recorded < today


async def test_bad_periods_and_future_instants_are_refused(
    history_service: HistoryService, open_wallet: OpenWallet
) -> None:
    user, wallet = await open_wallet(BASE)
    with pytest.raises(ValidationFailed, match="future"):
        await history_service.balance_at(user, wallet, datetime.now(UTC) + timedelta(hours=1))
    today = datetime.now(UTC).date()
    cases: list[tuple[date, date]] = [
        (today, today - timedelta(days=1)),
        (today - timedelta(days=400), today),
        (today, today + timedelta(days=1)),
    ]
    for first, last in cases:
        with pytest.raises(ValidationFailed):
            await history_service.daily_balances(user, wallet, first, last)
