"""Helpers for the event stream tests: a database of their own, ledger writes, broker queues.

The database is created and migrated once per module (``dbkit.own_database``, then
``seed_stream_database``); each test
has its own queue prefix, hence its own exchange and its own publisher cursor, which starts
"from now": events other tests wrote earlier are never this test's.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import aio_pika
import asyncpg
import orjson
import waits
from aio_pika.abc import AbstractChannel, AbstractExchange, AbstractQueue, AbstractRobustConnection

from transakt.rabbitmq.events import XID_HEADER, exchange_name
from transakt.storage.ledger import commit_batch
from transakt.storage.records import Applied, NewTransfer
from transakt.storage.typing import Connection

# Every wait in these tests has a deadline this long: generous for a busy CI machine.
DEADLINE_SECONDS = 20.0

#: The wallets the database is seeded with, by currency.
WALLETS = {"EUR": "wal_stream_eur", "USD": "wal_stream_usd"}


async def wait_until(
    condition: Callable[[], bool | Awaitable[bool]], what: str, deadline: float = DEADLINE_SECONDS
) -> None:
    """``waits.wait_until`` with these tests' deadline."""
    await waits.wait_until(condition, what, deadline)


# -- the database -----------------------------------------------------------------------------


async def seed_stream_database(url: str) -> None:
    """Give a migrated database (``dbkit.own_database``) a EUR and a USD wallet."""
    connection = await asyncpg.connect(url)
    try:
        await connection.execute(
            "INSERT INTO users (id, email, name, password_hash, bank_account) "
            "VALUES ('usr_stream', 'stream@example.test', 'S', '-', 'DE00');"
            "INSERT INTO accounts (id, kind, user_id, currency) VALUES "
            "('wal_stream_eur', 'wallet', 'usr_stream', 'EUR'), "
            "('wal_stream_usd', 'wallet', 'usr_stream', 'USD'), "
            "('settlement_EUR', 'settlement', NULL, 'EUR'), "
            "('settlement_USD', 'settlement', NULL, 'USD')"
        )
    finally:
        await connection.close()


async def deposits(
    pool: asyncpg.Pool,
    count: int,
    currency: str = "EUR",
    status: Literal["pending", "posted"] = "posted",
) -> list[str]:
    """Commit ``count`` deposits in one ledger batch; the event ids their commit writes."""
    operations = [
        NewTransfer(
            id=f"trf_{secrets.token_hex(8)}",
            kind="deposit",
            status=status,
            from_account=f"settlement_{currency}",
            to_account=WALLETS[currency],
            amount=1,
            currency=currency,
            memo=None,
            initiator_id=None,
        )
        for _ in range(count)
    ]
    async with pool.acquire() as connection:
        result = await commit_batch(connection, operations)
    assert all(isinstance(outcome, Applied) for outcome in result.outcomes), result.outcomes
    return [f"{operation.id}:{status}" for operation in operations]


async def insert_event(
    connection: Connection,
    topic: str = "test.note",
    payload: dict[str, Any] | None = None,
    *,
    age_seconds: float = 0.0,
) -> tuple[int, str]:
    """Write one outbox row directly (in the connection's transaction, if any), created
    ``age_seconds`` ago: its (id, event id)."""
    event_id = f"evt_{secrets.token_hex(8)}"
    row_id: int = await connection.fetchval(
        "INSERT INTO outbox (event_id, topic, payload, created_at) "
        "VALUES ($1, $2, $3::text::jsonb, now() - make_interval(secs => $4)) RETURNING id",
        event_id,
        topic,
        orjson.dumps(payload or {}).decode(),
        age_seconds,
    )
    return row_id, event_id


async def cursor_position(pool: asyncpg.Pool, stream: str) -> tuple[int, int] | None:
    """The stream's published-through (xid, id), None before its first start."""
    row = await pool.fetchrow(
        "SELECT xid::text AS xid, id FROM event_publisher_cursor WHERE stream = $1", stream
    )
    return None if row is None else (int(row["xid"]), row["id"])


async def last_position(pool: asyncpg.Pool, event_ids: Sequence[str]) -> tuple[int, int]:
    """The (xid, id) of the last of these events in the stream's order."""
    row = await pool.fetchrow(
        "SELECT xid::text AS xid, id FROM outbox WHERE event_id = ANY($1::text[]) "
        "ORDER BY xid DESC, id DESC LIMIT 1",
        list(event_ids),
    )
    assert row is not None
    return int(row["xid"]), row["id"]


# -- the broker -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Received:
    """One message as a consumer got it."""

    routing_key: str
    event_id: str
    body: dict[str, Any]
    headers: dict[str, Any]
    message: aio_pika.abc.AbstractIncomingMessage


class Broker:
    """A test's own connection to the broker: queues bound to its event exchange, to count."""

    def __init__(self, connection: AbstractRobustConnection, prefix: str) -> None:
        self.connection = connection
        self.exchange_name = exchange_name(prefix)
        self._channel: AbstractChannel | None = None
        self._exchange: AbstractExchange | None = None

    async def exchange(self) -> AbstractExchange:
        """The event exchange, declared as the publisher declares it."""
        if self._exchange is None:
            self._channel = await self.connection.channel()
            self._exchange = await self._channel.declare_exchange(
                self.exchange_name, aio_pika.ExchangeType.TOPIC, durable=True
            )
        return self._exchange

    async def queue(self, *patterns: str) -> Catcher:
        """A queue bound to ``patterns`` that nobody consumes: messages stay to be counted."""
        exchange = await self.exchange()
        assert self._channel is not None
        queue = await self._channel.declare_queue(
            f"{self.exchange_name}.test.{secrets.token_hex(4)}", exclusive=True, auto_delete=True
        )
        for pattern in patterns:
            await queue.bind(exchange, routing_key=pattern)
        return Catcher(queue)

    async def close(self) -> None:
        """Delete the exchange (its queues are exclusive: they go with the connection)."""
        with contextlib.suppress(Exception):
            channel = await self.connection.channel()
            await channel.exchange_delete(self.exchange_name)
        await self.connection.close()


class Catcher:
    """A queue nobody consumes from: its message count is exact once publishes are confirmed."""

    def __init__(self, queue: AbstractQueue) -> None:
        self.queue = queue
        self.taken: list[Received] = []

    async def count(self) -> int:
        """Messages waiting in the queue now."""
        declared = await self.queue.declare()
        count: int = declared.message_count or 0
        return count

    async def has(self, count: int) -> bool:
        """True once ``count`` messages have arrived (taken or waiting)."""
        return len(self.taken) + await self.count() >= count

    async def take(self) -> list[Received]:
        """Take every message waiting; all taken so far, in arrival order."""
        while True:
            message = await self.queue.get(no_ack=True, fail=False)
            if message is None:
                return self.taken
            body = orjson.loads(message.body)
            self.taken.append(
                Received(
                    routing_key=message.routing_key or "",
                    event_id=body["event_id"],
                    body=body,
                    headers=dict(message.headers),
                    message=message,
                )
            )

    def event_ids(self) -> list[str]:
        """The event ids taken so far, in arrival order."""
        return [received.event_id for received in self.taken]


def xid_of(received: Received) -> int:
    """The writing transaction a message names in its header."""
    return int(received.headers[XID_HEADER])
