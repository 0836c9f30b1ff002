"""The event stream: committed outbox events published once to RabbitMQ, and fed to a bus.

Every test has its own exchange (``<prefix>.events``) and so its own publisher cursor, on one
database these tests share. Counting is exact: a queue nobody consumes holds every message the
broker confirmed, and the publishers' cursors say when everything has been confirmed.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import aio_pika
import asyncpg
import orjson
import pytest
from dbkit import own_database

from cluster.eventkit import (
    Broker,
    cursor_position,
    deposits,
    insert_event,
    last_position,
    seed_stream_database,
    wait_until,
    xid_of,
)
from transakt.rabbitmq.events import EventPublisher, EventSubscriber, exchange_name
from transakt.runtime import ALL_TOPICS, EventBus
from transakt.storage.event_stream import StreamEvent
from transakt.storage.outbox import OutboxEvent, events_between
from transakt.storage.pool import create_pool

# Fast elections and polls: a takeover within a tenth of a second.
FAST: dict[str, Any] = {"poll_seconds": 0.2, "lock_retry_seconds": 0.05}

MakePublisher = Callable[..., Awaitable[EventPublisher]]


@pytest.fixture(scope="module")
async def stream_database(database_url: str) -> AsyncIterator[str]:
    """A migrated database of these tests' own, dropped after them."""
    async with own_database(database_url, "transakt_stream") as url:
        await seed_stream_database(url)
        yield url


@pytest.fixture
async def pool(stream_database: str) -> AsyncIterator[asyncpg.Pool]:
    """A pool on the stream tests' database, to write events and read cursors."""
    opened = await create_pool(stream_database, min_size=1, max_size=6)
    yield opened
    await opened.close()


@pytest.fixture
async def broker(rabbitmq_url: str, prefix: str) -> AsyncIterator[Broker]:
    """The test's connection to the broker; deletes the test's exchange afterwards."""
    connection = await aio_pika.connect_robust(rabbitmq_url)
    opened = Broker(connection, prefix)
    await opened.exchange()
    yield opened
    await opened.close()


@pytest.fixture
async def publishers(
    stream_database: str, rabbitmq_url: str, prefix: str
) -> AsyncIterator[MakePublisher]:
    """Start publishers on the test's exchange; all are stopped after the test, and the
    stream's cursor is deleted (a stream left behind would hold back later tests' pruning)."""
    started: list[EventPublisher] = []

    async def make(**options: Any) -> EventPublisher:
        publisher = EventPublisher(stream_database, rabbitmq_url, prefix=prefix, **options)
        await publisher.start()
        started.append(publisher)
        return publisher

    yield make
    for publisher in started:
        await publisher.stop()
    await forget_stream(stream_database, exchange_name(prefix))


async def forget_stream(database: str, stream: str) -> None:
    """Delete a stopped stream's cursor."""
    connection = await asyncpg.connect(database)
    try:
        await connection.execute("DELETE FROM event_publisher_cursor WHERE stream = $1", stream)
    finally:
        await connection.close()


def leaders(group: Sequence[EventPublisher]) -> list[EventPublisher]:
    return [publisher for publisher in group if publisher.leader]


async def all_published(
    pool: asyncpg.Pool, group: Sequence[EventPublisher], event_ids: Sequence[str]
) -> None:
    """Wait until the stream's cursor has passed every one of these events."""
    stream = group[0].exchange
    target = await last_position(pool, event_ids)

    async def passed() -> bool:
        position = await cursor_position(pool, stream)
        return position is not None and position >= target

    await wait_until(passed, f"the cursor of {stream} to pass {target}")


# -- (a) one publisher among many --------------------------------------------------------------


async def test_three_publishers_publish_each_event_exactly_once(
    pool: asyncpg.Pool, broker: Broker, publishers: MakePublisher
) -> None:
    everything = await broker.queue("#")
    group = [await publishers(**FAST) for _ in range(3)]
    await wait_until(lambda: len(leaders(group)) == 1, "one of three publishers to lead")

    async def writer(batches: int) -> list[str]:
        written: list[str] = []
        for _ in range(batches):
            written += await deposits(pool, 10)
        return written

    # Four writers at once: their commits interleave.
    written = [
        event_id
        for part in await asyncio.gather(*(writer(15) for _ in range(4)))
        for event_id in part
    ]
    assert len(written) == 600
    await all_published(pool, group, written)

    # Confirmed means queued: the count is final, and no publisher sent anything twice.
    assert await everything.count() == 600
    assert sum(publisher.published for publisher in group) == 600
    assert sum(publisher.republished for publisher in group) == 0
    assert len(leaders(group)) == 1
    received = [r.event_id for r in await everything.take()]
    assert sorted(received) == sorted(written)


# -- (b) the leader dies mid-stream ------------------------------------------------------------


@pytest.mark.parametrize("death", ["connection-killed", "stopped"])
async def test_another_publisher_takes_over_when_the_leader_dies_and_nothing_is_lost(
    pool: asyncpg.Pool, broker: Broker, publishers: MakePublisher, death: str
) -> None:
    everything = await broker.queue("#")
    group = [await publishers(**FAST, batch_size=20) for _ in range(3)]
    await wait_until(lambda: len(leaders(group)) == 1, "one of three publishers to lead")
    first = leaders(group)[0]
    killed = asyncio.Event()

    async def writer() -> list[str]:
        written: list[str] = []
        for batch in range(60):
            if batch == 30:
                await killed.wait()  # the second half is written once the leader has died
            written += await deposits(pool, 5)
        return written

    writing = asyncio.ensure_future(writer())
    await wait_until(lambda: first.published >= 40, "the first leader to publish some")
    if death == "connection-killed":
        pid = first.backend_pid
        assert pid is not None
        assert await pool.fetchval("SELECT pg_terminate_backend($1)", pid)
    else:
        await first.stop()
        assert first.tasks.running == 0, "the leader's loop did not end when cancelled"
    killed.set()
    if death == "stopped":
        await wait_until(
            lambda: any(p.leader for p in group if p is not first), "another publisher to lead"
        )
    else:  # still running, it campaigns again too: whoever wins takes over
        await wait_until(
            lambda: sum(p.takeovers for p in group) >= 2 and len(leaders(group)) == 1,
            "a publisher to take over",
        )
    written = await writing
    await all_published(pool, group, written)

    received = [r.event_id for r in await everything.take()]
    assert set(received) == set(written), "an event was lost"
    # Sent twice only what the dead leader had sent and not recorded: counted as republished.
    repeats = len(received) - len(set(received))
    assert repeats <= sum(publisher.republished for publisher in group)
    assert sum(p.takeovers for p in group) >= 2


# -- (c) a crash between publishing and moving the cursor --------------------------------------


async def test_a_crash_after_publishing_republishes_only_what_was_published(
    pool: asyncpg.Pool, broker: Broker, publishers: MakePublisher
) -> None:
    everything = await broker.queue("#")
    crashed: list[str] = []

    async def crash_once(events: Sequence[StreamEvent]) -> None:
        if not crashed:
            crashed.extend(event.event_id for event in events)
            raise RuntimeError("crash between the publish and the cursor update")

    first = await publishers(**FAST)
    first.after_publish = crash_once
    await wait_until(lambda: first.leader, "the first publisher to lead")
    second = await publishers(**FAST)
    before = await deposits(pool, 20)  # one commit: one batch
    await wait_until(lambda: bool(crashed), "the crash")
    after = await deposits(pool, 10)
    await all_published(pool, [first, second], before + after)

    received = Counter(r.event_id for r in await everything.take())
    assert set(received) == set(before + after)
    assert sorted(crashed) == sorted(before)
    twice = sorted(event_id for event_id, times in received.items() if times > 1)
    assert twice == sorted(crashed)
    assert max(received.values()) == 2
    assert first.republished + second.republished == len(crashed)


# -- (d) ids commit out of order ---------------------------------------------------------------


async def test_an_event_committed_after_a_higher_id_is_still_published(
    stream_database: str, pool: asyncpg.Pool, broker: Broker, publishers: MakePublisher
) -> None:
    # The case an id cursor gets wrong: the higher id commits (and is published) first, the lower
    # id commits afterwards. Its transaction took its xid later, so it sorts after the cursor.
    everything = await broker.queue("#")
    publisher = await publishers(**FAST)
    await wait_until(lambda: publisher.leader, "the publisher to lead")
    high = await asyncpg.connect(stream_database)
    low = await asyncpg.connect(stream_database)
    try:
        high_tx, low_tx = high.transaction(), low.transaction()
        await high_tx.start()
        high_xid = int(await high.fetchval("SELECT pg_current_xact_id()::text"))
        await low_tx.start()
        low_id, low_event = await insert_event(low)  # takes the lower id, and a later xid
        high_id, high_event = await insert_event(high)
        await high_tx.commit()
        await wait_until(lambda: everything.has(1), "the higher id to be published")
        await low_tx.commit()
        await wait_until(lambda: everything.has(2), "the lower id, committed later")
    finally:
        await high.close()
        await low.close()
    received = await everything.take()
    assert low_id < high_id
    assert [r.event_id for r in received] == [high_event, low_event]
    assert xid_of(received[0]) == high_xid < xid_of(received[1])


async def test_an_event_waits_for_an_older_transaction_and_then_goes_in_order(
    stream_database: str, pool: asyncpg.Pool, broker: Broker, publishers: MakePublisher
) -> None:
    # The other order: the lower id's transaction is the older one and commits last. The higher
    # id is committed but held back until then (publishing it first would be fine for a
    # consumer, but a cursor past it would skip the lower one).
    everything = await broker.queue("#")
    publisher = await publishers(**FAST)
    await wait_until(lambda: publisher.leader, "the publisher to lead")
    low = await asyncpg.connect(stream_database)
    try:
        low_tx = low.transaction()
        await low_tx.start()
        low_id, low_event = await insert_event(low)
        async with pool.acquire() as connection:
            high_id, high_event = await insert_event(connection)
        held = publisher.held_back
        await wait_until(lambda: publisher.held_back > held, "the publisher to hold it back")
        assert await everything.count() == 0  # the older transaction still runs: nothing yet
        await low_tx.commit()
        await wait_until(lambda: everything.has(2), "both events")
    finally:
        await low.close()
    received = await everything.take()
    assert low_id < high_id
    assert [r.event_id for r in received] == [low_event, high_event]


# -- (e) routing keys --------------------------------------------------------------------------


async def test_routing_keys_carry_topic_and_currency(
    pool: asyncpg.Pool, broker: Broker, publishers: MakePublisher
) -> None:
    eur_posted = await broker.queue("transfer.posted.EUR")
    usd = await broker.queue("transfer.*.USD")
    no_currency = await broker.queue("*.*.XXX")
    everything = await broker.queue("#")
    publisher = await publishers(**FAST)
    posted_eur = await deposits(pool, 3, "EUR")
    posted_usd = await deposits(pool, 2, "USD")
    pending_eur = await deposits(pool, 2, "EUR", status="pending")
    async with pool.acquire() as connection:
        _, mail_event = await insert_event(connection, "mail.queued", {"user_id": "usr_stream"})
    written = posted_eur + posted_usd + pending_eur + [mail_event]
    await all_published(pool, [publisher], written)

    for catcher in (eur_posted, usd, no_currency):
        await catcher.take()
    assert sorted(eur_posted.event_ids()) == sorted(posted_eur)
    assert sorted(usd.event_ids()) == sorted(posted_usd)
    assert no_currency.event_ids() == [mail_event]
    keys = {r.event_id: r.routing_key for r in await everything.take()}
    assert len(keys) == len(written)
    assert {keys[e] for e in pending_eur} == {"transfer.pending.EUR"}
    assert keys[mail_event] == "mail.queued.XXX"


async def test_a_message_carries_the_event_as_stored(
    pool: asyncpg.Pool, broker: Broker, publishers: MakePublisher
) -> None:
    everything = await broker.queue("#")
    publisher = await publishers(**FAST)
    [event_id] = await deposits(pool, 1, "USD")
    await all_published(pool, [publisher], [event_id])
    [received] = await everything.take()
    row = await pool.fetchrow(
        "SELECT id, topic, payload::text AS payload, xid::text AS xid, created_at FROM outbox "
        "WHERE event_id = $1",
        event_id,
    )
    assert row is not None
    message = received.message
    assert message.content_type == "application/json"
    assert message.message_id == event_id
    assert message.type == "transfer.posted"
    assert message.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
    assert received.routing_key == "transfer.posted.USD"
    assert xid_of(received) == int(row["xid"])
    body = received.body
    assert body["event_id"] == event_id
    assert body["sequence"] == row["id"]
    assert body["topic"] == "transfer.posted"
    assert body["currency"] == "USD"
    assert body["created_at"] == row["created_at"].isoformat()
    assert body["payload"] == orjson.loads(row["payload"])
    # The balances as of the event ride along (the ledger writes them into the payload).
    [wallet] = body["payload"]["wallets"]
    assert wallet["id"] == "wal_stream_usd" and wallet["currency"] == "USD"
    assert {"balance", "available", "pending_in", "pending_out"} <= wallet.keys()


# -- (f) the subscriber ------------------------------------------------------------------------


async def test_the_subscriber_feeds_the_bus_the_outbox_events_and_drops_a_replay(
    rabbitmq_url: str, prefix: str, pool: asyncpg.Pool, broker: Broker, publishers: MakePublisher
) -> None:
    bus = EventBus()
    heard: list[OutboxEvent] = []

    def record(_topic: str, event: Any) -> None:
        heard.append(event)

    bus.subscribe(ALL_TOPICS, record)
    subscriber = EventSubscriber(rabbitmq_url, bus, prefix=prefix)
    await subscriber.start()
    try:
        everything = await broker.queue("#")
        publisher = await publishers(**FAST)
        written = await deposits(pool, 4) + await deposits(pool, 1, "USD")
        await wait_until(lambda: len(heard) >= 5, "the bus to hear five events")
        await all_published(pool, [publisher], written)

        # Exactly what the outbox relay would have published: the rows as stored, xid and all.
        async with pool.acquire() as connection:
            ids = [event.id for event in heard]
            stored = await events_between(connection, min(ids), max(ids))
        assert sorted(heard, key=lambda e: e.id) == [e for e in stored if e.event_id in written]
        assert [e.event_id for e in heard] == [r.event_id for r in await everything.take()]

        # The same message again (a publisher's crash would do this): dropped.
        replay = everything.taken[0].message
        exchange = await broker.exchange()
        await exchange.publish(
            aio_pika.Message(
                replay.body,
                headers=replay.headers,
                content_type="application/json",
                message_id=replay.message_id,
            ),
            everything.taken[0].routing_key,
        )
        await wait_until(lambda: subscriber.replays == 1, "the subscriber to see the replay")
        await exchange.publish(aio_pika.Message(b"not json"), "transfer.posted.EUR")
        await wait_until(lambda: subscriber.malformed == 1, "the subscriber to see the garbage")
        assert len(heard) == 5
        assert subscriber.delivered == 5 and subscriber.received == 7
    finally:
        await subscriber.stop()


async def test_a_subscriber_hears_only_what_it_binds(
    rabbitmq_url: str, prefix: str, pool: asyncpg.Pool, broker: Broker, publishers: MakePublisher
) -> None:
    bus = EventBus()
    heard: list[str] = []
    bus.subscribe(ALL_TOPICS, lambda _topic, event: heard.append(event.event_id))
    subscriber = EventSubscriber(rabbitmq_url, bus, prefix=prefix, patterns=["*.*.USD"])
    await subscriber.start()
    try:
        everything = await broker.queue("#")
        publisher = await publishers(**FAST)
        eur = await deposits(pool, 2, "EUR")
        usd = await deposits(pool, 2, "USD")
        eur += await deposits(pool, 1, "EUR")
        await all_published(pool, [publisher], eur + usd)
        # Routed the moment they were confirmed; receiving them is asynchronous, hence the wait.
        await wait_until(lambda: subscriber.received >= 2, "the subscriber to hear two")
        assert await everything.count() == 5
        assert heard == usd
    finally:
        await subscriber.stop()


# -- pruning -----------------------------------------------------------------------------------


async def test_the_leader_never_prunes_what_it_has_not_published(
    stream_database: str, pool: asyncpg.Pool, broker: Broker, publishers: MakePublisher
) -> None:
    everything = await broker.queue("#")
    publisher = await publishers(
        poll_seconds=0.02, lock_retry_seconds=0.05, retention_seconds=0.0, prune_every_seconds=0.0
    )
    await wait_until(lambda: publisher.leader, "the publisher to lead")

    async def stored(event_id: str) -> bool:
        return bool(
            await pool.fetchval("SELECT count(*) FROM outbox WHERE event_id = $1", event_id)
        )

    async with pool.acquire() as connection:
        _, first = await insert_event(connection)
    await wait_until(lambda: everything.has(1), "the first event published")
    await wait_until(lambda: _not(stored(first)), "the first event pruned once published")

    older = await asyncpg.connect(stream_database)
    try:
        transaction = older.transaction()
        await transaction.start()
        await older.fetchval("SELECT pg_current_xact_id()")  # an older write transaction runs
        async with pool.acquire() as connection:
            _, second = await insert_event(connection)
        held, runs = publisher.held_back, publisher.prune_runs
        await wait_until(
            lambda: publisher.held_back > held and publisher.prune_runs > runs + 1,
            "the leader to prune while the second event is held back",
        )
        assert await stored(second)
        assert await everything.count() == 1  # the first only
        await transaction.rollback()
    finally:
        await older.close()
    await wait_until(lambda: everything.has(2), "the second event published")
    await wait_until(lambda: _not(stored(second)), "the second event pruned once published")
    assert publisher.pruned >= 2


async def test_pruning_waits_for_every_stream_on_the_outbox(
    stream_database: str,
    rabbitmq_url: str,
    prefix: str,
    pool: asyncpg.Pool,
    broker: Broker,
    publishers: MakePublisher,
) -> None:
    # Two exchanges (two prefixes) read one outbox: neither may prune what the other has not
    # published. The event is an hour old, past the hour's retention both use.
    other = EventPublisher(
        stream_database, rabbitmq_url, prefix=f"{prefix}-other", **FAST, retention_seconds=60.0
    )
    await other.start()  # its cursor starts here, then it stops: it falls behind
    await other.stop()
    everything = await broker.queue("#")
    publisher = await publishers(poll_seconds=0.02, retention_seconds=60.0, prune_every_seconds=0.0)
    try:
        async with pool.acquire() as connection:
            _, event_id = await insert_event(connection, age_seconds=3600.0)
        await wait_until(lambda: everything.has(1), "the event published on the first stream")
        runs = publisher.prune_runs
        await wait_until(lambda: publisher.prune_runs > runs + 1, "the leader to prune twice")
        assert await pool.fetchval("SELECT count(*) FROM outbox WHERE event_id = $1", event_id)

        await other.start()  # it catches up: now both have published the event
        await all_published(pool, [other], [event_id])
        await wait_until(
            lambda: _not(
                pool.fetchval("SELECT count(*) FROM outbox WHERE event_id = $1", event_id)
            ),
            "the event pruned once both streams published it",
        )
    finally:
        await other.stop()
        await forget_stream(stream_database, other.exchange)
        channel = await broker.connection.channel()
        await channel.exchange_delete(other.exchange)


async def _not(result: Awaitable[Any]) -> bool:
    return not await result
