"""LiveHub: fans balance and transfer events out to the websockets of the users they concern.

The hub never waits on a client. Each connection has a bounded queue and its own writer task;
the hub only appends to queues (from the event bus, synchronously), so one slow or stuck client
cannot hold up anybody else. A connection is dropped ("too slow"; it may reconnect for a fresh
snapshot) when ``limit`` messages wait while its writer is still busy sending earlier ones,
which is what a client that does not read looks like. A writer that is idle will take the whole
queue on its next turn, so a burst (one group commit can hold hundreds of payments to one
merchant) may queue up to ``limit * 8`` before the writer runs: healthy clients survive bursts,
and memory stays bounded either way.

Routing uses the user ids the ledger puts in every payload: a transfer goes to the payer's and
the payee's owners (the settlement side has none), and each wallet state the event carries (the
wallets the commit moved) goes to that wallet's owner as a balance. A user never receives an
event about wallets that are not theirs.

A connection starts with a snapshot of the user's wallets, taken in a REPEATABLE READ
transaction together with ``pg_current_snapshot()``. Events written by transactions that the
snapshot already shows are not sent, so a late event can never overwrite a fresher snapshot;
events from before the snapshot is read are held back until then.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from transakt.errors import RateLimited
from transakt.events.dedupe import RecentIds
from transakt.runtime import EventBus, Subscription
from transakt.storage.outbox import OutboxEvent

__all__ = [
    "CLOSE_GOING_AWAY",
    "CLOSE_SERVICE_RESTART",
    "CLOSE_TOKEN_EXPIRED",
    "CLOSE_TOO_SLOW",
    "LIVE_TOPICS",
    "LiveConnection",
    "LiveHub",
    "TransactionSnapshot",
]

log = logging.getLogger("transakt.live")

#: The topics the live feed carries.
LIVE_TOPICS: Final = ("balance.changed", "transfer.pending", "transfer.posted", "transfer.voided")

# Websocket close codes (4000-4999 are the application's own).
CLOSE_GOING_AWAY: Final = 1001  # the server is shutting down: reconnect elsewhere or later
CLOSE_SERVICE_RESTART: Final = 1012  # events may have been missed: reconnect for a snapshot
CLOSE_TOKEN_EXPIRED: Final = 4001  # like HTTP 401: log in again, then reconnect
CLOSE_TOO_SLOW: Final = 4008  # the client did not keep up; reconnect for a fresh snapshot

_REMEMBERED_IDS: Final = 200_000
_BURST_FACTOR: Final = 8
_WALLET_FIELDS: Final = ("id", "currency", "balance", "available", "pending_in", "pending_out")
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


@dataclass(frozen=True, slots=True)
class TransactionSnapshot:
    """Which transactions a database snapshot shows (``pg_current_snapshot()``)."""

    xmin: int
    xmax: int
    in_progress: frozenset[int]

    @classmethod
    def parse(cls, text: str) -> TransactionSnapshot:
        """From PostgreSQL's ``xmin:xmax:xip,...`` form."""
        xmin, xmax, xip = text.split(":")
        return cls(int(xmin), int(xmax), frozenset(int(x) for x in xip.split(",") if x))

    def shows(self, xid: int) -> bool:
        """True when a committed transaction ``xid`` is visible in this snapshot."""
        return xid < self.xmin or (xid < self.xmax and xid not in self.in_progress)


def wallet_message(wallet: dict[str, Any]) -> str:
    """The feed's balance message for a wallet (only the contract's fields)."""
    return _encode({"type": "balance", "wallet": {k: wallet.get(k) for k in _WALLET_FIELDS}})


class LiveConnection:
    """One websocket's place in the hub: a bounded queue and the reason it was dropped."""

    __slots__ = (
        "_early",
        "_limit",
        "_pending",
        "_ready",
        "_snapshot",
        "_writing",
        "close_code",
        "close_reason",
        "dropped",
        "sent",
        "user_id",
    )

    def __init__(self, user_id: str, limit: int) -> None:
        self.user_id = user_id
        self._limit = limit
        self._pending: deque[str] = deque()
        self._ready = asyncio.Event()
        # Events that arrive before the snapshot is known wait here, with their transaction.
        self._early: list[tuple[int, str]] | None = []
        self._snapshot: TransactionSnapshot | None = None
        # True from the writer taking messages until it asks for more: it is still sending.
        self._writing = False
        self.dropped = asyncio.Event()
        self.close_code: int | None = None
        self.close_reason = ""
        self.sent = 0

    def __repr__(self) -> str:
        state = f"dropped {self.close_code}" if self.dropped.is_set() else "open"
        return f"<LiveConnection {self.user_id} queued={len(self._pending)} {state}>"

    @property
    def queued(self) -> int:
        """Messages waiting for the writer."""
        return len(self._pending) + len(self._early or ())

    def offer(self, xid: int, message: str) -> None:
        """Queue a message written by transaction ``xid``; drop the client if it is full."""
        if self.dropped.is_set():
            return
        if self._early is not None:
            if len(self._early) >= self._limit * _BURST_FACTOR:
                self.drop(CLOSE_TOO_SLOW, "too slow: the client did not keep up")
                return
            self._early.append((xid, message))
            return
        snapshot = self._snapshot
        if snapshot is not None and snapshot.shows(xid):
            return  # the snapshot already showed this change
        queued = len(self._pending)
        if queued >= self._limit and (self._writing or queued >= self._limit * _BURST_FACTOR):
            self.drop(CLOSE_TOO_SLOW, "too slow: the client did not keep up")
            return
        self._pending.append(message)
        self._ready.set()

    def begin(self, snapshot: TransactionSnapshot, messages: Iterable[str]) -> None:
        """Queue the snapshot's messages, then the held-back events it does not already show."""
        self._pending.extend(messages)  # the snapshot itself is never "too slow"
        self._snapshot = snapshot
        early, self._early = self._early or [], None
        for xid, message in early:
            self.offer(xid, message)
        self._ready.set()

    async def take(self) -> list[str]:
        """Wait for messages and take all that are queued (the writer has sent the last lot)."""
        self._writing = False
        while not self._pending:
            self._ready.clear()
            await self._ready.wait()
        taken = list(self._pending)
        self._pending.clear()
        self._writing = True
        return taken

    def drop(self, code: int, reason: str) -> None:
        """Close this connection with ``code`` (the view does the closing)."""
        if not self.dropped.is_set():
            self.close_code = code
            self.close_reason = reason
            self._pending.clear()
            self.dropped.set()


class LiveHub:
    """Routes live events to the connections of the users they concern."""

    def __init__(self, events: EventBus, *, queue_size: int = 256, max_per_user: int = 16) -> None:
        self._queue_size = queue_size
        # Each connection holds a queue, a writer task and a socket: one user opening sockets
        # without end must not be able to exhaust the node. A few tabs and devices fit.
        self._max_per_user = max_per_user
        self._by_user: dict[str, set[LiveConnection]] = {}
        self._recent = RecentIds(_REMEMBERED_IDS)
        # The hub listens to the bus only while a connection is open: with nobody connected,
        # the outbox relay need not read committed events back at all (it reads only while
        # someone on the bus listens). A connection subscribes before its snapshot is read, so
        # whatever commits after the snapshot still reaches it.
        self._events = events
        self._subscriptions: list[Subscription] = []
        self._closed = False
        # Counters for /metrics.
        self.connections = 0
        self.dropped_slow = 0
        self.refused = 0
        self.replays = 0
        self.routed = 0

    def __repr__(self) -> str:
        return f"<LiveHub users={len(self._by_user)} connections={self.connections}>"

    def connect(self, user_id: str) -> LiveConnection:
        """Register a connection for ``user_id``; it receives events from now on.

        Raises RateLimited when the user has ``max_per_user`` connections open already.
        """
        same_user = self._by_user.setdefault(user_id, set())
        if len(same_user) >= self._max_per_user:
            self.refused += 1
            raise RateLimited(
                "too many live connections are open for this user; close one first",
                retry_after=5.0,
                limit=self._max_per_user,
            )
        connection = LiveConnection(user_id, self._queue_size)
        same_user.add(connection)
        self.connections += 1
        if not self._subscriptions and not self._closed:
            self._subscriptions = [
                self._events.subscribe(topic, self._on_event) for topic in LIVE_TOPICS
            ]
        return connection

    def connections_of(self, user_id: str) -> int:
        """How many connections ``user_id`` has open."""
        return len(self._by_user.get(user_id, ()))

    def disconnect(self, connection: LiveConnection) -> None:
        """Forget a connection (idempotent)."""
        same_user = self._by_user.get(connection.user_id)
        if same_user is None or connection not in same_user:
            return
        same_user.discard(connection)
        if not same_user:
            del self._by_user[connection.user_id]
        self.connections -= 1
        if connection.close_code == CLOSE_TOO_SLOW:
            self.dropped_slow += 1
        if not self._by_user:
            self._unsubscribe()

    def close_all(self, code: int = CLOSE_GOING_AWAY, reason: str = "server shutting down") -> None:
        """Ask every connection to close (the node is stopping)."""
        for connections in list(self._by_user.values()):
            for connection in list(connections):
                connection.drop(code, reason)

    def close(self) -> None:
        """Stop receiving events and close every connection."""
        self._closed = True
        self._unsubscribe()
        self.close_all()

    def _unsubscribe(self) -> None:
        for subscription in self._subscriptions:
            subscription.cancel()
        self._subscriptions = []

    def _on_event(self, topic: str, event: Any) -> None:
        if not isinstance(event, OutboxEvent):
            return
        if not self._recent.add(event.event_id):
            self.replays += 1
            return
        payload = event.payload
        if topic == "balance.changed":  # written before transfer events carried the wallets
            self._offer_balance(payload.get("wallet") or {}, event.xid)
            return
        owners = {payload.get("from_user"), payload.get("to_user")}
        targets = self._targets(owners)
        if targets:
            message = _encode({"type": "transfer", "transfer": payload.get("transfer")})
            self._offer(targets, event.xid, message)
        # The payer's and payee's wallets as this commit left them (those whose balances moved).
        for wallet in payload.get("wallets") or ():
            self._offer_balance(wallet, event.xid)

    def _offer_balance(self, wallet: dict[str, Any], xid: int) -> None:
        targets = self._targets((wallet.get("user_id"),))
        if targets:
            self._offer(targets, xid, wallet_message(wallet))

    def _targets(self, owners: Iterable[Any]) -> list[LiveConnection]:
        by_user = self._by_user
        return [c for owner in owners if owner is not None for c in by_user.get(owner, ())]

    def _offer(self, targets: list[LiveConnection], xid: int, message: str) -> None:
        for connection in targets:
            self.routed += 1
            connection.offer(xid, message)
