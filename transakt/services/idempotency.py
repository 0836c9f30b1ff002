"""Idempotency-Keys, as Stripe keeps them: one module owns their record, check and replay.

A mutating request may carry an ``Idempotency-Key``. The first answer that reached a decision
(a success, or a refusal such as insufficient funds or an unknown recipient) is stored under
(user, key) with a hash of the request, and every later request with that key and body gets it
again, marked as a replay; the same key with another body is ``idempotency_key_reused``.
Answers given before any decision (a malformed request, a throttled one, a service that cannot
decide right now) are not kept, so the client may retry them with the same key.

Who stores the answer: a ledger change stores its success in its own transaction (the ledger
function claims the key with the transfer, so a key that was answered once can never move
money later), and so does wallet creation; everything else is stored here, through
:meth:`Idempotency.record`, which inserts only if nothing stands under the key yet and else
hands back what does. The database decides between concurrent duplicates on different nodes;
duplicates on one node do not even get that far: :meth:`Idempotency.once` lets the first run
and gives the others its answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from transakt.errors import IdempotencyKeyReused
from transakt.storage.records import StoredAnswer

__all__ = ["Idempotency", "IdempotencyKey", "IdempotencyStore", "Replay", "StoredAnswer"]


@dataclass(frozen=True, slots=True)
class IdempotencyKey:
    """A client's Idempotency-Key and the hash of the request it came with."""

    key: str
    request_hash: str


@dataclass(frozen=True, slots=True)
class Replay:
    """An answer to send (again) as it was first given: status and JSON body."""

    status: int
    body: dict[str, Any]


class IdempotencyStore(Protocol):
    """Where answers are kept (the repository, over PostgreSQL)."""

    async def stored_answer(self, user_id: str, key: str) -> StoredAnswer | None:
        """The answer stored under the key, if any."""
        ...

    async def store_answer(
        self, user_id: str, key: str, request_hash: str, status: int, body: dict[str, Any]
    ) -> StoredAnswer | None:
        """Store unless the key is taken: None when stored now, else what stood first."""
        ...


class Idempotency:
    """Checks, records and replays the answers kept under Idempotency-Keys."""

    def __init__(self, store: IdempotencyStore) -> None:
        self._store = store
        # (user, key) -> (request hash, the answer being worked out) for requests under way here.
        self._running: dict[tuple[str, str], tuple[str, asyncio.Future[Replay]]] = {}

    def __repr__(self) -> str:
        return f"<Idempotency running={self.running}>"

    @property
    def running(self) -> int:
        """Requests under a key being answered on this node now."""
        return len(self._running)

    async def replay(self, user_id: str, key: IdempotencyKey) -> Replay | None:
        """The answer stored under this key, None if it is new; raises on another body."""
        return _same_request(key, await self._store.stored_answer(user_id, key.key))

    async def record(
        self, user_id: str, key: IdempotencyKey, status: int, body: dict[str, Any]
    ) -> Replay | None:
        """Keep this answer under the key: None when kept now, else the answer kept first."""
        first = await self._store.store_answer(user_id, key.key, key.request_hash, status, body)
        return _same_request(key, first)

    async def once(
        self, user_id: str, key: IdempotencyKey, run: Callable[[], Awaitable[tuple[Replay, bool]]]
    ) -> tuple[Replay, bool]:
        """``run()`` unless this key is already running here; then wait for that answer.

        ``run`` returns the answer and whether it is a replay; a request that joined another
        in flight always gets a replay (or ``idempotency_key_reused`` for another body).
        """
        slot = (user_id, key.key)
        running = self._running.get(slot)
        if running is not None:
            first_hash, answer = running
            replay = await asyncio.shield(answer)
            if first_hash != key.request_hash:
                raise _reused(key)
            return replay, True
        future: asyncio.Future[Replay] = asyncio.get_running_loop().create_future()
        self._running[slot] = (key.request_hash, future)
        try:
            replay, replayed = await run()
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as error:
            future.set_exception(error)
            future.exception()  # retrieved: nobody may be waiting, and that is fine
            raise
        else:
            future.set_result(replay)
        finally:
            del self._running[slot]
        return replay, replayed


def _reused(key: IdempotencyKey) -> IdempotencyKeyReused:
    return IdempotencyKeyReused(
        "this Idempotency-Key was used with a different request", key=key.key
    )


def _same_request(key: IdempotencyKey, stored: StoredAnswer | None) -> Replay | None:
    if stored is None:
        return None
    if stored.request_hash != key.request_hash:
        raise _reused(key)
    return Replay(stored.status, stored.body)
