"""When a day is closed: no commit can still stamp a time in it (a commit stamps its
transaction's start), so its closing balance may be recorded for good."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import asyncpg

from transakt.services.history import BALANCE_GRACE, last_closed_day
from transakt.storage.history import HistoryStore

MIDNIGHT = datetime(2026, 3, 2, tzinfo=UTC)


def test_a_day_closes_a_grace_after_its_end() -> None:
    just_before = MIDNIGHT + BALANCE_GRACE - timedelta(microseconds=1)
    assert last_closed_day(just_before, None) == date(2026, 2, 28)
    assert last_closed_day(MIDNIGHT + BALANCE_GRACE, None) == date(2026, 3, 1)


def test_a_writer_that_started_before_midnight_keeps_the_day_open() -> None:
    later = MIDNIGHT + timedelta(hours=3)
    assert last_closed_day(later, None) == date(2026, 3, 1)
    writer = MIDNIGHT - timedelta(microseconds=1)
    assert last_closed_day(later, writer) == date(2026, 2, 28)
    assert last_closed_day(later, MIDNIGHT) == date(2026, 3, 1)


async def test_the_clock_sees_the_oldest_open_writer(history_pool: asyncpg.Pool) -> None:
    store = HistoryStore(history_pool)
    async with history_pool.acquire() as writer, writer.transaction():
        started = await writer.fetchval("SELECT now()")
        # A transaction gets its id, and counts as a writer, once it writes.
        await writer.execute("CREATE TEMPORARY TABLE history_probe (x int) ON COMMIT DROP")
        now, oldest = await store.clock()
        assert oldest is not None and oldest <= started
        assert now >= started
    _, after = await store.clock()
    assert after is None or after > started
