"""The outbox as its readers see it: events, commit notifications, and pruning.

Every ledger commit writes its events to the ``outbox`` table in the same transaction; a
statement-level trigger then NOTIFYs ``transakt_outbox`` with the range of ids written, which
listeners hear only once the rows are committed. Readers use this module's SQL, never their own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import asyncpg
import orjson

from transakt.models import Wallet
from transakt.storage.records import WALLET_COLUMNS, wallet_from_row
from transakt.storage.typing import Connection

__all__ = [
    "CHANNEL",
    "OutboxEvent",
    "OutboxListener",
    "events_after",
    "events_between",
    "last_event_id",
    "parse_notification",
    "prune_outbox",
    "wallets_with_snapshot",
]

log = logging.getLogger("transakt.outbox")

#: The channel the outbox trigger notifies (see migration 0004).
CHANNEL: Final = "transakt_outbox"

_COLUMNS = "id, event_id, topic, payload::text AS payload, xid::text AS xid"

_BETWEEN = f"SELECT {_COLUMNS} FROM outbox WHERE id BETWEEN $1 AND $2 ORDER BY id"
_AFTER = f"SELECT {_COLUMNS} FROM outbox WHERE id > $1 ORDER BY id LIMIT $2"
_LAST_ID = "SELECT coalesce(max(id), 0) FROM outbox"
# Done with: mailed about (planned), or of a topic mail never reads (the relays keep their
# own place and have long read it). Oldest first, a bounded batch at a time, so a large backlog
# never holds locks for long.
_DONE_WITH = """
    WHERE created_at < now() - make_interval(secs => $1)
      AND (mail_planned_at IS NOT NULL
           OR topic NOT IN ('transfer.posted', 'transfer.voided', 'transfer.pending'))
"""
_PRUNE = f"""
DELETE FROM outbox WHERE id IN (
    SELECT id FROM outbox {_DONE_WITH}
    ORDER BY id LIMIT $2
    FOR UPDATE SKIP LOCKED
)
"""
# The same, and only what the event stream has published: at or before its (xid, id) cursor.
_PRUNE_PUBLISHED = f"""
DELETE FROM outbox WHERE id IN (
    SELECT id FROM outbox {_DONE_WITH}
      AND (xid, id) <= ($3::text::xid8, $4::bigint)
    ORDER BY id LIMIT $2
    FOR UPDATE SKIP LOCKED
)
"""


@dataclass(frozen=True, slots=True)
class OutboxEvent:
    """One committed event: outbox row id, unique event id, topic, payload, writing transaction."""

    id: int
    event_id: str
    topic: str
    payload: dict[str, Any]
    # The transaction that wrote it: a snapshot that shows this transaction reflects the event.
    xid: int


def _event(row: asyncpg.Record) -> OutboxEvent:
    # payload as text and decoded here: works on any connection, whatever codecs it has.
    return OutboxEvent(
        id=row["id"],
        event_id=row["event_id"],
        topic=row["topic"],
        payload=orjson.loads(row["payload"]),
        xid=int(row["xid"]),
    )


def parse_notification(payload: str) -> tuple[int, int] | None:
    """The (first, last) outbox ids a notification announces, None when malformed."""
    first, _, last = payload.partition(":")
    if not (first.isdigit() and last.isdigit()):
        return None
    return int(first), int(last)


async def events_between(connection: Connection, first: int, last: int) -> list[OutboxEvent]:
    """The committed events with ids in [first, last], in id order."""
    return [_event(row) for row in await connection.fetch(_BETWEEN, first, last)]


async def events_after(connection: Connection, after: int, limit: int) -> list[OutboxEvent]:
    """Up to ``limit`` committed events with ids above ``after``, in id order."""
    return [_event(row) for row in await connection.fetch(_AFTER, after, limit)]


async def last_event_id(connection: Connection) -> int:
    """The highest outbox id committed so far (0 for an empty outbox)."""
    value: int = await connection.fetchval(_LAST_ID)
    return value


async def prune_outbox(
    connection: Connection,
    older_than_seconds: float,
    limit: int,
    *,
    published_through: tuple[int, int] | None = None,
) -> int:
    """Delete up to ``limit`` events older than that which every reader is done with.

    The ledger never needs them (transfers are the record; the event id is only a dedupe key
    for events not yet read), so the outbox stays the size of its retention window. With
    ``published_through`` (an event stream's ``(xid, id)`` cursor), only events at or before it.
    """
    if published_through is None:
        status: str = await connection.execute(_PRUNE, older_than_seconds, limit)
    else:
        xid, id_ = published_through
        status = await connection.execute(
            _PRUNE_PUBLISHED, older_than_seconds, limit, str(xid), id_
        )
    return int(status.rpartition(" ")[2])


NotificationHandler = Callable[[str], None]


class OutboxListener:
    """A dedicated connection LISTENing on the outbox channel; reconnects when it is lost."""

    # on_notify(payload) runs for every notification; on_reconnect() after each reconnect, so a
    # reader can catch up on what was committed while nobody listened. The connection is free
    # for queries between notifications.

    def __init__(
        self,
        dsn: str,
        on_notify: NotificationHandler,
        *,
        on_reconnect: Callable[[], None] | None = None,
        reconnect_delay: float = 0.5,
    ) -> None:
        self._dsn = dsn
        self._on_notify = on_notify
        self._on_reconnect = on_reconnect
        self._reconnect_delay = reconnect_delay
        self._connection: asyncpg.Connection | None = None
        self._lost = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()
        self.reconnects = 0

    def __repr__(self) -> str:
        state = "connected" if self.connected.is_set() else "connecting"
        return f"<OutboxListener {CHANNEL} {state} reconnects={self.reconnects}>"

    @property
    def connection(self) -> asyncpg.Connection | None:
        """The listening connection while connected."""
        return self._connection if self.connected.is_set() else None

    async def start(self) -> None:
        """Connect and LISTEN (the first time in the foreground, so start-up errors surface)."""
        await self._connect()
        self._task = asyncio.create_task(self._watch(), name="outbox-listener")

    async def stop(self) -> None:
        """Stop listening and close the connection."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._close()

    def lost(self) -> None:
        """Report the connection broken (a query on it failed): reconnect."""
        self.connected.clear()
        self._lost.set()

    def _terminated(self, connection: Any) -> None:
        if connection is self._connection:
            self.lost()

    async def _connect(self) -> None:
        # Named, so operators can tell it apart in pg_stat_activity.
        connection = await asyncpg.connect(
            self._dsn, server_settings={"application_name": "transakt-notifications"}
        )
        connection.add_termination_listener(self._terminated)
        await connection.add_listener(CHANNEL, self._notified)
        self._connection = connection
        self._lost.clear()
        self.connected.set()

    async def _close(self) -> None:
        self.connected.clear()
        connection, self._connection = self._connection, None
        if connection is not None and not connection.is_closed():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), timeout=2.0)

    def _notified(self, _connection: Any, _pid: int, _channel: str, payload: object) -> None:
        try:
            self._on_notify(str(payload))
        except Exception:
            log.exception("outbox notification handler failed")

    async def _watch(self) -> None:
        # Notifications sent while no connection listened are lost; readers catch up on
        # reconnect (on_connect) and by polling, so a lost connection only costs latency.
        while True:
            await self._lost.wait()
            await self._close()
            log.warning("outbox listener lost its connection; reconnecting")
            while True:
                await asyncio.sleep(self._reconnect_delay)
                try:
                    await self._connect()
                except Exception as error:  # keep trying whatever the reason
                    log.warning("outbox listener cannot reconnect yet: %r", error)
                    continue
                self.reconnects += 1
                break
            if self._on_reconnect is not None:
                try:
                    self._on_reconnect()
                except Exception:
                    log.exception("outbox reconnect handler failed")


_SNAPSHOT_WALLETS = f"""
SELECT {WALLET_COLUMNS} FROM accounts WHERE user_id = $1 AND kind = 'wallet'
ORDER BY created_at, id
"""


async def wallets_with_snapshot(pool: asyncpg.Pool, user_id: str) -> tuple[str, list[Wallet]]:
    """A user's wallets and the transaction snapshot they were read in (``xmin:xmax:xip``)."""
    # One REPEATABLE READ transaction: pg_current_snapshot() names exactly the transactions
    # whose changes the wallets show, so events of those transactions can be skipped.
    async with (
        pool.acquire() as connection,
        connection.transaction(isolation="repeatable_read", readonly=True),
    ):
        snapshot: str = await connection.fetchval("SELECT pg_current_snapshot()::text")
        rows = await connection.fetch(_SNAPSHOT_WALLETS, user_id)
    return snapshot, [wallet_from_row(row) for row in rows]
