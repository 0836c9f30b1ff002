"""The outbox relay on a database of its own: at once on commit, at least once, each id once."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from live.conftest import DEADLINE_SECONDS, wait_until
from transakt.actors.live import LiveHub, TransactionSnapshot
from transakt.actors.outbox_relay import OutboxRelay
from transakt.runtime import ALL_TOPICS, EventBus
from transakt.storage.ledger import commit_batch
from transakt.storage.migrate import migrate
from transakt.storage.outbox import OutboxEvent, claim_undelivered, prune_outbox
from transakt.storage.pool import create_pool
from transakt.storage.records import NewTransfer


@pytest.fixture
async def relay_database(database_url: str) -> AsyncIterator[str]:
    """A fresh, migrated database with one user and wallet, dropped after the test."""
    name = f"transakt_relay_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(database_url)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = urlunsplit(urlsplit(database_url)._replace(path=f"/{name}"))
    try:
        await migrate(url)
        connection = await asyncpg.connect(url)
        await connection.execute(
            "INSERT INTO users (id, email, name, password_hash, bank_account) "
            "VALUES ('usr_r', 'r@example.test', 'R', '-', 'DE00');"
            "INSERT INTO accounts (id, kind, user_id, currency) VALUES "
            "('wal_r', 'wallet', 'usr_r', 'EUR'), ('settlement_EUR', 'settlement', NULL, 'EUR')"
        )
        await connection.close()
        yield url
    finally:
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name
        )
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await admin.close()


@pytest.fixture
async def pool(relay_database: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the relay test's database."""
    opened = await create_pool(relay_database, min_size=1, max_size=4)
    yield opened
    await opened.close()


async def deposit(pool: asyncpg.Pool, amount: int) -> str:
    """Commit a deposit to wal_r through the ledger; its transfer id."""
    transfer_id = f"trf_{secrets.token_hex(8)}"
    operation = NewTransfer(
        id=transfer_id, kind="deposit", status="posted", from_account="settlement_EUR",
        to_account="wal_r", amount=amount, currency="EUR", memo=None, initiator_id=None,
    )  # fmt: skip
    async with pool.acquire() as connection:
        await commit_batch(connection, [operation])
    return transfer_id


class Recorder:
    """An event bus subscriber that keeps what it is given."""

    def __init__(self, bus: EventBus) -> None:
        self.events: list[OutboxEvent] = []
        bus.subscribe(ALL_TOPICS, self._record)

    def _record(self, _topic: str, event: Any) -> None:
        self.events.append(event)

    def transfers(self) -> list[str]:
        return [e.payload["transfer"]["id"] for e in self.events if e.topic.startswith("transfer")]


async def undelivered(pool: asyncpg.Pool) -> int:
    count: int = await pool.fetchval("SELECT count(*) FROM outbox WHERE delivered_at IS NULL")
    return count


async def test_events_committed_while_no_relay_ran_go_out_on_restart_once(
    relay_database: str, pool: asyncpg.Pool
) -> None:
    written = [await deposit(pool, 100 + i) for i in range(3)]  # nobody relays yet
    assert await undelivered(pool) == 3  # one transfer event each (carrying its wallet)

    bus = EventBus()
    recorder = Recorder(bus)
    relay = OutboxRelay(relay_database, pool, bus, poll_seconds=0.1)
    await relay.start()
    try:
        await wait_until(lambda: _none_left(pool), "the backlog to be marked delivered")
        assert recorder.transfers() == written
        assert len({e.event_id for e in recorder.events}) == len(recorder.events) == 3
    finally:
        await relay.stop()

    # A relay starting later finds nothing undelivered: nothing is published twice.
    second_bus = EventBus()
    second = Recorder(second_bus)
    relay = OutboxRelay(relay_database, pool, second_bus, poll_seconds=0.1)
    await relay.start()
    try:
        assert await relay.drain() == 0
        later = await deposit(pool, 5)
        await wait_until(lambda: second.transfers() == [later], "the new event")
    finally:
        await relay.stop()


async def test_a_commit_reaches_the_bus_at_once_without_waiting_for_a_poll(
    relay_database: str, pool: asyncpg.Pool
) -> None:
    bus = EventBus()
    recorder = Recorder(bus)
    # A poll once a minute: only the commit's notification can deliver within the deadline.
    relay = OutboxRelay(relay_database, pool, bus, poll_seconds=60.0)
    await relay.start()
    try:
        started = asyncio.get_running_loop().time()
        transfer_id = await deposit(pool, 42)
        await wait_until(lambda: transfer_id in recorder.transfers(), "the event")
        assert asyncio.get_running_loop().time() - started < 5.0
        assert relay.notifications >= 1
    finally:
        await relay.stop()


async def test_a_relay_that_crashes_before_marking_delivers_again_and_the_hub_ignores_it(
    relay_database: str, pool: asyncpg.Pool
) -> None:
    transfer_id = await deposit(pool, 700)
    bus = EventBus()
    hub = LiveHub(bus, queue_size=16)
    connection = hub.connect("usr_r")
    connection.begin(TransactionSnapshot(1, 1, frozenset()), [])  # sees everything after xid 1

    def publish_then_crash(events: Any) -> None:
        for event in events:
            bus.publish(event.topic, event)
        raise RuntimeError("the relay died before marking the rows delivered")

    async with pool.acquire() as raw:
        with pytest.raises(RuntimeError):
            await claim_undelivered(raw, 100, publish_then_crash)
    assert await undelivered(pool) == 1  # still undelivered: it will go out again

    relay = OutboxRelay(relay_database, pool, bus, poll_seconds=0.1)
    await relay.start()
    try:
        await wait_until(lambda: _none_left(pool), "redelivery")
    finally:
        await relay.stop()
    messages = await asyncio.wait_for(connection.take(), DEADLINE_SECONDS)
    assert len(messages) == 2  # the transfer and its wallet's balance: the replay was ignored
    assert transfer_id in messages[0] and '"balance":700' in messages[1]
    assert hub.replays == 1


async def _none_left(pool: asyncpg.Pool) -> bool:
    return await undelivered(pool) == 0


async def test_events_the_fast_path_published_are_marked_without_being_delivered_again(
    pool: asyncpg.Pool,
) -> None:
    first, second = await deposit(pool, 100), await deposit(pool, 200)
    async with pool.acquire() as raw:
        seen = {f"{first}:posted"}  # as if the fast path had published the first
        delivered: list[OutboxEvent] = []
        claimed = await claim_undelivered(
            raw, 100, delivered.extend, delivered_already=seen.__contains__
        )
    assert claimed == 2
    assert [event.event_id for event in delivered] == [f"{second}:posted"]
    assert await undelivered(pool) == 0


async def test_only_old_events_every_reader_is_done_with_are_pruned(pool: asyncpg.Pool) -> None:
    kept_young, kept_undelivered, kept_unmailed, pruned = [
        await deposit(pool, 10 + i) for i in range(4)
    ]
    await pool.execute(
        "UPDATE outbox SET delivered_at = now(), mail_planned_at = now() WHERE event_id <> $1",
        f"{kept_undelivered}:posted",
    )
    await pool.execute(
        "UPDATE outbox SET mail_planned_at = NULL WHERE event_id = $1", f"{kept_unmailed}:posted"
    )
    await pool.execute(
        "UPDATE outbox SET created_at = now() - interval '2 hours' WHERE event_id <> $1",
        f"{kept_young}:posted",
    )
    async with pool.acquire() as connection:
        assert await prune_outbox(connection, 3600, 100) == 1
        assert await prune_outbox(connection, 3600, 100) == 0
    left = {row["event_id"] for row in await pool.fetch("SELECT event_id FROM outbox")}
    assert left == {f"{t}:posted" for t in (kept_young, kept_undelivered, kept_unmailed)}
    assert f"{pruned}:posted" not in left
    # The ledger is untouched: the transfer itself is the record.
    assert await pool.fetchval("SELECT count(*) FROM transfers WHERE id = $1", pruned) == 1


async def test_the_relay_prunes_what_is_past_its_retention(
    relay_database: str, pool: asyncpg.Pool
) -> None:
    for i in range(5):
        await deposit(pool, 10 + i)
    await pool.execute(
        "UPDATE outbox SET delivered_at = now(), mail_planned_at = now(), "
        "created_at = now() - interval '1 day'"
    )
    relay = OutboxRelay(relay_database, pool, EventBus(), retention_seconds=60)
    assert await relay.prune() == 5
    assert relay.pruned == 5
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 0
