"""The event stream's SQL: which committed outbox events are settled, and the publisher's cursor.

Outbox ids are taken when a batch is written and become visible when it commits, so they commit
out of order, and a reader that remembers only the last id it read skips any event committed
after it with a lower id. The stream reads instead in ``(xid, id)`` order, where ``xid`` is the
writing transaction, and only *settled* events: those written by a transaction older than the
reading statement's snapshot ``xmin``. Every transaction below ``xmin`` has ended, so all its
rows are visible now, and any transaction that commits later has an xid of at least ``xmin``:
its events sort after every settled one. So a cursor at the last settled event read never
has an event appear behind it.

The price is latency while an older transaction runs: a committed event waits until every
write transaction that began before it has ended (``SettledEvents.held_back`` says so).

Migration 0009 holds the cursor table and the ``(xid, id)`` index. Positions travel as
``(xid, id)`` integer pairs (``StreamPosition``); xid8 values go to the server as text.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

import asyncpg

from transakt.storage.typing import Connection

__all__ = [
    "ORIGIN",
    "SettledEvents",
    "StreamCursor",
    "StreamEvent",
    "StreamPosition",
    "advance_cursor",
    "mark_attempted",
    "open_cursor",
    "read_cursor",
    "settled_events_after",
    "slowest_cursor",
]


@dataclass(frozen=True, slots=True, order=True)
class StreamPosition:
    """A place in the stream's order: the writing transaction, then the outbox id."""

    xid: int
    id: int


#: Before every event.
ORIGIN: Final = StreamPosition(0, 0)


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One settled outbox row, its payload as stored (JSON text), for publishing as it is."""

    id: int
    event_id: str
    topic: str
    payload: str
    xid: int
    created_at: datetime

    @property
    def position(self) -> StreamPosition:
        """Where the event is in the stream's order."""
        return StreamPosition(self.xid, self.id)


@dataclass(frozen=True, slots=True)
class StreamCursor:
    """A stream's progress: published (and confirmed) through ``published``; sent through
    ``attempted`` (never behind ``published``)."""

    published: StreamPosition
    attempted: StreamPosition


@dataclass(frozen=True, slots=True)
class SettledEvents:
    """A read: settled events in stream order; ``held_back`` when committed events follow them
    that wait for an older transaction still running."""

    events: list[StreamEvent]
    held_back: bool


_CURSOR_COLUMNS = "xid::text AS xid, id, attempted_xid::text AS attempted_xid, attempted_id"

# "From now": every event of a transaction that has ended counts as published already; the
# transactions still running (xid >= xmin) and those to come are the stream's.
_OPEN_NOW = """
INSERT INTO event_publisher_cursor (stream, xid, id, attempted_xid, attempted_id)
SELECT $1, x.xmin, 0, x.xmin, 0 FROM (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin) AS x
ON CONFLICT (stream) DO NOTHING
"""
_OPEN_ORIGIN = """
INSERT INTO event_publisher_cursor (stream, xid, id, attempted_xid, attempted_id)
VALUES ($1, '0', 0, '0', 0)
ON CONFLICT (stream) DO NOTHING
"""
_READ_CURSOR = f"SELECT {_CURSOR_COLUMNS} FROM event_publisher_cursor WHERE stream = $1"
# A cursor that has not moved for that long belongs to a stream nobody runs any more (a renamed
# exchange, say): it must not hold the outbox's pruning back for ever.
_SLOWEST = """
SELECT xid::text AS xid, id FROM event_publisher_cursor
WHERE updated_at > now() - make_interval(secs => $1)
ORDER BY xid, id LIMIT 1
"""
# Both only ever move forward: a publisher that lost its place cannot move a cursor back.
_ADVANCE = """
UPDATE event_publisher_cursor
SET xid = $2::text::xid8, id = $3,
    attempted_xid = CASE WHEN (attempted_xid, attempted_id) < ($2::text::xid8, $3)
                         THEN $2::text::xid8 ELSE attempted_xid END,
    attempted_id = CASE WHEN (attempted_xid, attempted_id) < ($2::text::xid8, $3)
                        THEN $3 ELSE attempted_id END,
    updated_at = now()
WHERE stream = $1 AND (xid, id) < ($2::text::xid8, $3)
"""
_MARK_ATTEMPTED = """
UPDATE event_publisher_cursor
SET attempted_xid = $2::text::xid8, attempted_id = $3, updated_at = now()
WHERE stream = $1 AND (attempted_xid, attempted_id) < ($2::text::xid8, $3)
"""

_EVENT_COLUMNS = "o.id, o.event_id, o.topic, o.payload, o.xid, o.created_at"
# One statement, so one snapshot: up to $3 settled events after the cursor, then at most one
# committed event that is not settled yet (it only says that something waits). Both are range
# scans of outbox_stream_order.
_SETTLED_AFTER = f"""
SELECT o.id, o.event_id, o.topic, o.payload::text AS payload, o.xid::text AS xid, o.created_at,
       o.xid < s.xmin AS settled
FROM (SELECT pg_snapshot_xmin(pg_current_snapshot()) AS xmin) AS s
CROSS JOIN LATERAL (
    (SELECT {_EVENT_COLUMNS} FROM outbox AS o
     WHERE (o.xid, o.id) > ($1::text::xid8, $2::bigint) AND o.xid < s.xmin
     ORDER BY o.xid, o.id LIMIT $3)
    UNION ALL
    (SELECT {_EVENT_COLUMNS} FROM outbox AS o
     WHERE (o.xid, o.id) > ($1::text::xid8, $2::bigint) AND o.xid >= s.xmin
     ORDER BY o.xid, o.id LIMIT 1)
) AS o
ORDER BY o.xid, o.id
"""


def _position(xid: str, id_: int) -> StreamPosition:
    return StreamPosition(int(xid), id_)


def _cursor(row: asyncpg.Record) -> StreamCursor:
    return StreamCursor(
        published=_position(row["xid"], row["id"]),
        attempted=_position(row["attempted_xid"], row["attempted_id"]),
    )


async def open_cursor(
    connection: Connection, stream: str, *, from_origin: bool = False
) -> StreamCursor:
    """The stream's cursor, created if it has none: at the start of the outbox when
    ``from_origin``, otherwise after every event whose transaction has ended by now."""
    await connection.execute(_OPEN_ORIGIN if from_origin else _OPEN_NOW, stream)
    return await read_cursor(connection, stream)


async def read_cursor(connection: Connection, stream: str) -> StreamCursor:
    """The stream's cursor (``open_cursor`` must have created it)."""
    row = await connection.fetchrow(_READ_CURSOR, stream)
    if row is None:
        raise LookupError(f"no cursor for event stream {stream!r}")
    return _cursor(row)


async def slowest_cursor(
    connection: Connection, moved_within_seconds: float
) -> StreamPosition | None:
    """The published-through position of the stream furthest behind, among those whose cursor
    moved within ``moved_within_seconds``; None when there is none."""
    row = await connection.fetchrow(_SLOWEST, moved_within_seconds)
    return None if row is None else _position(row["xid"], row["id"])


async def mark_attempted(connection: Connection, stream: str, through: StreamPosition) -> None:
    """Record that events through ``through`` are about to be sent (before sending them)."""
    await connection.execute(_MARK_ATTEMPTED, stream, str(through.xid), through.id)


async def advance_cursor(connection: Connection, stream: str, through: StreamPosition) -> None:
    """Record events through ``through`` published; a position behind the cursor is ignored."""
    await connection.execute(_ADVANCE, stream, str(through.xid), through.id)


async def settled_events_after(
    connection: Connection, after: StreamPosition, limit: int
) -> SettledEvents:
    """Up to ``limit`` settled events after ``after``, in stream order."""
    rows = await connection.fetch(_SETTLED_AFTER, str(after.xid), after.id, limit)
    events: list[StreamEvent] = []
    held_back = False
    for row in rows:
        if not row["settled"]:
            held_back = True
            break
        events.append(
            StreamEvent(
                id=row["id"],
                event_id=row["event_id"],
                topic=row["topic"],
                payload=row["payload"],
                xid=int(row["xid"]),
                created_at=row["created_at"],
            )
        )
    return SettledEvents(events, held_back)
