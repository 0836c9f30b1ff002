"""E-mail's durable progress: turning outbox events into mail rows, claiming, marking.

Two steps, each safe with any number of workers (FOR UPDATE SKIP LOCKED):

1. plan: claim transfer events no worker has planned yet, write one ``mail_deliveries`` row per
   (event, recipient) (a replay cannot add a second), and mark the events planned, in one
   transaction (which mails an event means is decided in ``transakt.events.mail.planning``);
2. send: claim due rows, then mark each sent once the server accepted it, or due again after a
   backoff, or failed for good, and release what is left.

A claim is held by the claiming *database session*, not by a clock. ``claim_due`` writes the
session's backend pid into ``claimed_by`` and takes a session-level advisory lock on
(``CLAIM_LOCK_CLASS``, pid), which ``release_claims`` gives back. Another worker treats a claimed
row as abandoned as soon as that lock is free: the claimer released it without marking the row,
or its connection closed because its process died. So a dead worker's whole batch (the one mail
it may have handed to the server unmarked, and the ones it never tried) is claimable again at
the next poll of any worker, while a worker that is alive, however slow, keeps its claims. The
lease (``next_attempt_at`` pushed ahead on claiming, renewed by ``renew_claims``) is only a
backstop for a claimer PostgreSQL still believes connected: a hung process, or a host that
vanished without closing its connection (until TCP keepalive notices).

Because the lock is session state, the connection that claimed must be the one that marks and
releases, and must not go back to a pool still holding the lock (the pools here reset nothing):
release, or close the connection, which releases it too.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, cast

import asyncpg

from transakt.storage.typing import Connection

#: The mails there are (the mail_deliveries table's CHECK constraint lists the same).
MailTemplate = Literal[
    "sent",
    "received",
    "deposited",
    "withdrawn",
    "failed",
    "verify_email",
    "held",
    "hold_placed",
    "hold_incoming",
    "hold_released",
]

__all__ = [
    "CLAIM_LOCK_CLASS",
    "MailDelivery",
    "MailTemplate",
    "claim_due",
    "claim_unplanned_events",
    "insert_deliveries",
    "mark_failed",
    "mark_planned",
    "mark_retry",
    "mark_sent",
    "release_claims",
    "renew_claims",
    "seconds_until_due",
    "users_by_id",
]

# The predicate repeats the partial index outbox_mail_unplanned's, so the index is used.
_CLAIM_EVENTS = """
SELECT id, event_id, topic, payload::text AS payload FROM outbox
WHERE mail_planned_at IS NULL
  AND topic IN ('transfer.posted', 'transfer.voided', 'transfer.pending')
ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED
"""
_MARK_PLANNED = "UPDATE outbox SET mail_planned_at = now() WHERE id = ANY($1::bigint[])"
_USERS = "SELECT id, email, name FROM users WHERE id = ANY($1::text[])"
_INSERT = """
INSERT INTO mail_deliveries (event_id, recipient, template, to_address, to_name, counterpart,
                             transfer)
SELECT event_id, recipient, template, to_address, to_name, counterpart, transfer::jsonb
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])
     AS m(event_id, recipient, template, to_address, to_name, counterpart, transfer)
ON CONFLICT (event_id, recipient) DO NOTHING
"""
#: The first key of the advisory lock a claiming session holds (the second is its backend pid):
#: "mail" in ASCII. Two-key advisory locks never collide with one-key (bigint) ones.
CLAIM_LOCK_CLASS: Final = 0x6D61696C

# Up to $1 rows: first those whose claimer no longer holds its lock (it released without marking
# them, or died), then the due ones (never claimed, retries whose backoff ran out, and claims
# whose backstop lease ran out). pg_try_advisory_xact_lock succeeds only when no session holds
# the claimer's lock; the transaction-level lock it takes ends with this statement. The same
# statement takes this session's own claim lock (the scalar subquery in SET runs once, when the
# first row is claimed, so claiming nothing takes no lock), before the claims commit and so
# before any other worker can see them.
_CLAIM_DUE = f"""
WITH abandoned AS (
    SELECT event_id, recipient FROM mail_deliveries
    WHERE status = 'pending' AND claimed_by IS NOT NULL AND next_attempt_at > now()
      AND pg_try_advisory_xact_lock({CLAIM_LOCK_CLASS}, claimed_by)
    LIMIT $1 FOR UPDATE SKIP LOCKED
), due AS (
    SELECT event_id, recipient FROM mail_deliveries
    WHERE status = 'pending' AND next_attempt_at <= now()
    ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED
), picked AS (
    SELECT event_id, recipient FROM abandoned
    UNION ALL
    SELECT event_id, recipient FROM due
    LIMIT $1
), holder AS MATERIALIZED (
    SELECT pg_backend_pid() AS pid
    FROM pg_advisory_lock({CLAIM_LOCK_CLASS}, pg_backend_pid())
)
UPDATE mail_deliveries AS m
SET attempts = m.attempts + 1, next_attempt_at = now() + make_interval(secs => $2),
    claimed_by = (SELECT pid FROM holder)
FROM picked
WHERE m.event_id = picked.event_id AND m.recipient = picked.recipient
RETURNING m.event_id, m.recipient, m.template, m.to_address, m.to_name, m.counterpart,
          m.transfer::text AS transfer, m.attempts
"""
# Only rows this session still holds: one a backstop lease handed to another worker stays its.
_RENEW = """
UPDATE mail_deliveries AS m SET next_attempt_at = now() + make_interval(secs => $3)
FROM unnest($1::text[], $2::text[]) AS r(event_id, recipient)
WHERE m.event_id = r.event_id AND m.recipient = r.recipient AND m.status = 'pending'
  AND m.claimed_by = pg_backend_pid()
RETURNING m.event_id, m.recipient
"""
_RELEASE = f"SELECT pg_advisory_unlock({CLAIM_LOCK_CLASS}, pg_backend_pid())"
_MARK_SENT = """
UPDATE mail_deliveries SET status = 'sent', sent_at = now(), last_error = NULL, claimed_by = NULL
WHERE event_id = $1 AND recipient = $2 AND status = 'pending'
"""
_MARK_RETRY = """
UPDATE mail_deliveries AS m
SET next_attempt_at = now() + make_interval(secs => r.delay), last_error = r.error,
    claimed_by = NULL
FROM unnest($1::text[], $2::text[], $3::float8[], $4::text[])
     AS r(event_id, recipient, delay, error)
WHERE m.event_id = r.event_id AND m.recipient = r.recipient AND m.status = 'pending'
  AND m.claimed_by = pg_backend_pid()
"""
_MARK_FAILED = """
UPDATE mail_deliveries SET status = 'failed', last_error = $3, claimed_by = NULL
WHERE event_id = $1 AND recipient = $2 AND status = 'pending'
"""
_SECONDS_UNTIL_DUE = """
SELECT extract(epoch FROM min(next_attempt_at) - now())::float8
FROM mail_deliveries WHERE status = 'pending'
"""


@dataclass(frozen=True, slots=True)
class MailDelivery:
    """One mail as planned: everything its message is rendered from, and its attempts so far."""

    event_id: str
    recipient: str
    template: MailTemplate
    to_address: str
    to_name: str
    counterpart: str | None
    transfer: dict[str, Any]
    attempts: int = 0


async def claim_unplanned_events(connection: Connection, limit: int) -> list[asyncpg.Record]:
    """Lock up to ``limit`` transfer events no worker has planned mail for (in the caller's
    transaction; other workers skip them)."""
    return list(await connection.fetch(_CLAIM_EVENTS, limit))


async def users_by_id(connection: Connection, user_ids: Sequence[str]) -> dict[str, asyncpg.Record]:
    """Id, e-mail and name of each of these users."""
    return {row["id"]: row for row in await connection.fetch(_USERS, list(user_ids))}


async def insert_deliveries(connection: Connection, rows: Sequence[tuple[str | None, ...]]) -> None:
    """Write mail rows (event, recipient, template, address, name, counterpart, transfer JSON);
    a pair already written stays as it is."""
    if rows:
        await connection.execute(_INSERT, *(list(column) for column in zip(*rows, strict=True)))


async def mark_planned(connection: Connection, event_ids: Sequence[int]) -> None:
    """Mark outbox events as planned (their mails are written)."""
    await connection.execute(_MARK_PLANNED, list(event_ids))


async def claim_due(connection: Connection, limit: int, lease_seconds: float) -> list[MailDelivery]:
    """Claim up to ``limit`` mails to send: due ones, and ones whose claimer is gone.

    When it returns mails, this session holds the claim lock: call ``release_claims`` on the
    same connection once they are all marked (or close it). It must not be called again on this
    connection before that. ``lease_seconds`` is the backstop: past it, other workers take the
    mails even though this session still seems connected, unless ``renew_claims`` pushed it on.
    """
    rows = await connection.fetch(_CLAIM_DUE, limit, lease_seconds)
    return [
        MailDelivery(
            event_id=row["event_id"],
            recipient=row["recipient"],
            template=cast(MailTemplate, row["template"]),
            to_address=row["to_address"],
            to_name=row["to_name"],
            counterpart=row["counterpart"],
            transfer=json.loads(row["transfer"]),
            attempts=row["attempts"],
        )
        for row in rows
    ]


async def renew_claims(
    connection: Connection, deliveries: Sequence[MailDelivery], lease_seconds: float
) -> set[tuple[str, str]]:
    """Push the backstop lease of these claimed mails ``lease_seconds`` ahead; the (event,
    recipient) keys still this session's (a mail missing was taken over: do not send it)."""
    if not deliveries:
        return set()
    rows = await connection.fetch(
        _RENEW,
        [delivery.event_id for delivery in deliveries],
        [delivery.recipient for delivery in deliveries],
        lease_seconds,
    )
    return {(row["event_id"], row["recipient"]) for row in rows}


async def release_claims(connection: Connection) -> None:
    """Give back this session's claim lock: a mail it claimed and did not mark is anyone's now."""
    await connection.execute(_RELEASE)


async def mark_sent(connection: Connection, delivery: MailDelivery) -> None:
    """The server accepted the mail."""
    await connection.execute(_MARK_SENT, delivery.event_id, delivery.recipient)


async def mark_retry(
    connection: Connection, retries: Sequence[tuple[MailDelivery, float, str]]
) -> None:
    """Make each mail due again after its delay, recording why it was not sent (only those this
    session still holds)."""
    if retries:
        await connection.execute(
            _MARK_RETRY,
            [delivery.event_id for delivery, _delay, _error in retries],
            [delivery.recipient for delivery, _delay, _error in retries],
            [delay for _delivery, delay, _error in retries],
            [error[:1000] for _delivery, _delay, error in retries],
        )


async def mark_failed(connection: Connection, delivery: MailDelivery, error: str) -> None:
    """The mail can never be delivered (the server refused it for good)."""
    await connection.execute(_MARK_FAILED, delivery.event_id, delivery.recipient, error[:1000])


async def seconds_until_due(connection: Connection) -> float | None:
    """Seconds until the next pending mail is due (0 or less: now), None when none is pending."""
    value: float | None = await connection.fetchval(_SECONDS_UNTIL_DUE)
    return value
