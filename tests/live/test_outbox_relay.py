"""The outbox relay on a database of its own: at once on commit, at least once, each id once."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from live.conftest import DEADLINE_SECONDS, wait_until
from transakt.events.live import LiveHub, TransactionSnapshot
from transakt.events.relay import OutboxRelay
from transakt.runtime import ALL_TOPICS, EventBus
from transakt.storage.ledger import commit_batch
from transakt.storage.migrate import migrate
from transakt.storage.outbox import OutboxEvent, OutboxListener, prune_outbox
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


async def deposit(pool: asyncpg.Pool, amount: int, to: str = "wal_r") -> str:
    """Commit a deposit to a wallet (wal_r unless told) through the ledger; its transfer id."""
    transfer_id = f"trf_{secrets.token_hex(8)}"
    operation = NewTransfer(
        id=transfer_id, kind="deposit", status="posted", from_account="settlement_EUR",
        to_account=to, amount=amount, currency="EUR", memo=None, initiator_id=None,
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


async def listener_pids(pool: asyncpg.Pool) -> list[int]:
    """Backends of the relays' listening connections (they are named)."""
    rows = await pool.fetch(
        "SELECT pid FROM pg_stat_activity "
        "WHERE application_name = 'transakt-notifications' AND datname = current_database()"
    )
    return [row["pid"] for row in rows]


async def two_reads_from_now(pool: asyncpg.Pool) -> None:
    """Wait until the relay has started a read of the outbox after now, and then another.

    The relay reads on its listening connection, one read at a time, so when the second has
    started the first has finished, and whatever it was going to publish is published. With no
    commit meanwhile, its reads are its polls: this waits for a poll that saw everything so
    far, where a fixed sleep would only hope that one came.
    """
    mark = await pool.fetchval("SELECT clock_timestamp()")
    give_up = time.monotonic() + DEADLINE_SECONDS
    for _ in range(2):
        while True:
            started = await pool.fetchval(
                "SELECT max(query_start) FROM pg_stat_activity "
                "WHERE application_name = 'transakt-notifications' "
                "AND datname = current_database() AND query_start > $1",
                mark,
            )
            if started is not None:
                mark = started
                break
            assert time.monotonic() < give_up, "the relay stopped polling"
            await asyncio.sleep(0.02)  # polling pg_stat_activity: nothing to await


async def test_a_relay_publishes_each_commit_after_its_start_once(
    relay_database: str, pool: asyncpg.Pool
) -> None:
    await deposit(pool, 1)  # before any relay: nobody here was waiting for it
    bus = EventBus()
    recorder = Recorder(bus)
    relay = OutboxRelay(relay_database, pool, bus, poll_seconds=0.1)
    await relay.start()
    try:
        written = [await deposit(pool, 100 + i) for i in range(3)]
        await wait_until(lambda: recorder.transfers() == written, "the three events")
        await two_reads_from_now(pool)  # polls: they find nothing new to publish
        assert recorder.transfers() == written
        assert len({e.event_id for e in recorder.events}) == len(recorder.events) == 3
        assert relay.published == 3
    finally:
        await relay.stop()
    # The relay writes nothing back: the log is as the ledger wrote it.
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 4


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


async def test_a_lost_connection_is_caught_up_even_for_commits_that_finished_out_of_order(
    relay_database: str, pool: asyncpg.Pool
) -> None:
    bus = EventBus()
    recorder = Recorder(bus)
    hub = LiveHub(bus, queue_size=64)
    watcher = hub.connect("usr_r")
    watcher.begin(TransactionSnapshot(1, 1, frozenset()), [])  # sees everything after xid 1
    # Two more wallets, so that the slow batch below locks no row the others need.
    await pool.execute(
        "INSERT INTO users (id, email, name, password_hash, bank_account) "
        "VALUES ('usr_s', 's@example.test', 'S', '-', 'DE01'),"
        "       ('usr_t', 't@example.test', 'T', '-', 'DE02');"
        "INSERT INTO accounts (id, kind, user_id, currency) VALUES "
        "('wal_s', 'wallet', 'usr_s', 'EUR'), ('wal_t', 'wallet', 'usr_t', 'EUR')"
    )
    await deposit(pool, 50, to="wal_s")
    # No poll: only the catch-up can deliver; and time to commit before it reconnects.
    relay = OutboxRelay(relay_database, pool, bus, poll_seconds=60.0, reconnect_delay=2.0)
    await relay.start()
    held = await pool.acquire()
    try:
        # A batch that takes its outbox ids first and commits last...
        slow = held.transaction()
        await slow.start()
        late = f"trf_{secrets.token_hex(8)}"
        await commit_batch(held, [NewTransfer(
            id=late, kind="p2p", status="posted", from_account="wal_s",
            to_account="wal_t", amount=7, currency="EUR", memo=None, initiator_id="usr_s",
        )])  # fmt: skip
        # ...while a later one commits and is relayed at once.
        early = await deposit(pool, 5)
        await wait_until(lambda: recorder.transfers() == [early], "the early commit")
        # The listener's connection is lost; while nobody listens, the slow batch commits and
        # another one too: their notifications go nowhere.
        pids = await listener_pids(pool)
        for pid in pids:
            await pool.execute("SELECT pg_terminate_backend($1)", pid)

        async def gone() -> bool:  # an exiting backend could still hear the next commit
            return not set(pids) & set(await listener_pids(pool))

        await wait_until(gone, "the listener's backend to exit")
        await slow.commit()
        unheard = await deposit(pool, 9)
        await wait_until(
            lambda: sorted(recorder.transfers()) == sorted([early, late, unheard]),
            "the catch-up after reconnecting",
        )
        assert relay.caught_up == 2
    finally:
        await pool.release(held)
        await relay.stop()
    assert len(recorder.events) == 3  # each once, the early one not again
    messages = await asyncio.wait_for(watcher.take(), DEADLINE_SECONDS)
    # usr_r's feed: the early and the unheard deposit, once each (the late one is not theirs).
    assert sum('"type":"transfer"' in m for m in messages) == 2


async def test_a_poll_finds_an_event_whose_notification_never_came(
    relay_database: str, pool: asyncpg.Pool
) -> None:
    bus = EventBus()
    recorder = Recorder(bus)
    relay = OutboxRelay(relay_database, pool, bus, poll_seconds=0.1)
    await relay.start()
    try:
        await pool.execute("ALTER TABLE outbox DISABLE TRIGGER outbox_notify")
        quiet = await deposit(pool, 3)  # committed without a notification
        await wait_until(lambda: recorder.transfers() == [quiet], "the poll")
        assert relay.caught_up == 1
        assert relay.notifications == 0
    finally:
        await relay.stop()


async def test_with_nobody_listening_the_relay_reads_nothing_back_and_keeps_its_place(
    relay_database: str, pool: asyncpg.Pool
) -> None:
    bus = EventBus()
    relay = OutboxRelay(relay_database, pool, bus, poll_seconds=0.1)
    await relay.start()
    try:
        unheard = [await deposit(pool, 5 + i) for i in range(3)]
        await wait_until(lambda: relay.unread == 3, "three unread notifications")
        await two_reads_from_now(pool)  # polls: with nobody listening they read nothing either
        assert relay.published == relay.caught_up == 0
        # A listener arrives (a websocket opens; it starts from a snapshot that shows the
        # unheard commits): from now on every commit is read and published, and only those.
        recorder = Recorder(bus)
        heard = await deposit(pool, 9)
        await wait_until(lambda: recorder.transfers() == [heard], "the event after subscribing")
        await two_reads_from_now(pool)  # polls go on from the place kept, not from the start
        assert recorder.transfers() == [heard]
        assert relay.published == 1
        assert not set(unheard) & set(recorder.transfers())
    finally:
        await relay.stop()


async def test_a_crashed_reader_is_restarted_and_reads_what_it_was_asked_to(
    relay_database: str, pool: asyncpg.Pool, monkeypatch: pytest.MonkeyPatch
) -> None:
    bus = EventBus()
    recorder = Recorder(bus)
    published = asyncio.Event()
    bus.subscribe(ALL_TOPICS, lambda _topic, _event: published.set())
    # A poll once a minute: only the notified read, after the restart, can deliver in time.
    relay = OutboxRelay(relay_database, pool, bus, poll_seconds=60.0)
    await relay.start()
    connection = OutboxListener.connection
    crashed = False

    def connection_failing_once(listener: OutboxListener) -> asyncpg.Connection | None:
        nonlocal crashed
        if not crashed:
            crashed = True
            raise RuntimeError("injected: a bug in the reader")
        assert connection.fget is not None
        found: asyncpg.Connection | None = connection.fget(listener)
        return found

    monkeypatch.setattr(OutboxListener, "connection", property(connection_failing_once))
    try:
        # Its notification asks the reader for a read, and the reader crashes on it.
        transfer_id = await deposit(pool, 42)
        await asyncio.wait_for(published.wait(), DEADLINE_SECONDS)
        assert recorder.transfers() == [transfer_id]
        assert relay.caught_up == 0  # the notified span itself, read by the restarted reader
        reader = next(task for task in relay.tasks.tasks if task.name == "outbox-relay-reader")
        assert (reader.state, reader.crashes, reader.restarts) == ("running", 1, 1)
        assert (relay.tasks.crashes, relay.tasks.failed) == (1, 0)
    finally:
        await relay.stop()
    assert relay.tasks.running == 0


async def test_only_old_events_every_reader_is_done_with_are_pruned(pool: asyncpg.Pool) -> None:
    kept_young, kept_unmailed, pruned = [await deposit(pool, 10 + i) for i in range(3)]
    pending = await deposit(pool, 20)
    await pool.execute(  # a pending transfer's event: mail never reads it
        "UPDATE outbox SET topic = 'transfer.pending' WHERE event_id = $1", f"{pending}:posted"
    )
    await pool.execute(
        "UPDATE outbox SET mail_planned_at = now() WHERE event_id <> $1",
        f"{kept_unmailed}:posted",
    )
    await pool.execute(
        "UPDATE outbox SET created_at = now() - interval '2 hours' WHERE event_id <> $1",
        f"{kept_young}:posted",
    )
    async with pool.acquire() as connection:
        assert await prune_outbox(connection, 3600, 100) == 2
        assert await prune_outbox(connection, 3600, 100) == 0
    left = {row["event_id"] for row in await pool.fetch("SELECT event_id FROM outbox")}
    assert left == {f"{t}:posted" for t in (kept_young, kept_unmailed)}
    assert f"{pruned}:posted" not in left
    # The ledger is untouched: the transfer itself is the record.
    assert await pool.fetchval("SELECT count(*) FROM transfers WHERE id = $1", pruned) == 1


async def test_the_relay_prunes_what_is_past_its_retention(
    relay_database: str, pool: asyncpg.Pool
) -> None:
    for i in range(5):
        await deposit(pool, 10 + i)
    await pool.execute(
        "UPDATE outbox SET mail_planned_at = now(), created_at = now() - interval '1 day'"
    )
    relay = OutboxRelay(relay_database, pool, EventBus(), retention_seconds=60)
    assert await relay.prune() == 5
    assert relay.pruned == 5
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 0
