"""Fraud review: held payments' reasons, the operators, and the decisions (SQL only).

A held payment is a pending P2P transfer; its ``transfer_reviews`` row holds the reasons and,
once an operator decided, who decided what, when and why. The decision and the settlement of
the transfer (posted on approval, voided on rejection) commit in one transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import asyncpg

from transakt.models import Transfer
from transakt.storage.ledger import commit_batch
from transakt.storage.records import (
    TRANSFER_COLUMNS,
    Applied,
    Settlement,
    transfer_from_row,
)
from transakt.storage.typing import Connection

__all__ = [
    "Decided",
    "OwnPayment",
    "ReviewRecord",
    "SettlementRefused",
    "grant_operator",
    "is_operator",
    "open_review",
    "open_reviews",
    "record_decision",
    "reviews_of",
]

ReviewStatus = Literal["open", "approved", "rejected"]

_REVIEW_COLUMNS = "transfer_id, reasons, status, decided_by, decided_at, note, created_at"
_OPEN = """
INSERT INTO transfer_reviews (transfer_id, wallet_id, reasons) VALUES ($1, $2, $3)
ON CONFLICT (transfer_id) DO UPDATE SET reasons = EXCLUDED.reasons
WHERE transfer_reviews.status = 'open'
"""
_REVIEWS_OF = f"SELECT {_REVIEW_COLUMNS} FROM transfer_reviews WHERE transfer_id = ANY($1::text[])"
# The queue is the pending P2P transfers (the partial index transfers_pending serves it).
_OPEN_QUEUE = f"""
SELECT {", ".join("t." + column.strip() for column in TRANSFER_COLUMNS.split(","))}, t.seq,
       coalesce(r.reasons, ARRAY['unrecorded']) AS reasons, r.created_at AS held_at
FROM transfers AS t LEFT JOIN transfer_reviews AS r ON r.transfer_id = t.id
WHERE t.kind = 'p2p' AND t.status = 'pending' AND t.seq > $1
ORDER BY t.seq LIMIT $2
"""
_DECIDED_QUEUE = f"""
SELECT {", ".join("t." + column.strip() for column in TRANSFER_COLUMNS.split(","))}, t.seq,
       r.reasons, r.created_at AS held_at, r.status AS review_status, r.decided_by,
       r.decided_at, r.note
FROM transfer_reviews AS r JOIN transfers AS t ON t.id = r.transfer_id
WHERE r.status <> 'open' AND t.seq > $1
ORDER BY t.seq LIMIT $2
"""
_TRANSFER_FOR_DECISION = f"SELECT {TRANSFER_COLUMNS} FROM transfers WHERE id = $1"
_DECIDE = f"""
INSERT INTO transfer_reviews AS r (transfer_id, wallet_id, reasons, status, decided_by,
                                   decided_at, note)
VALUES ($1, $2, ARRAY['unrecorded'], $3, $4, now(), $5)
ON CONFLICT (transfer_id) DO UPDATE
SET status = EXCLUDED.status, decided_by = EXCLUDED.decided_by, decided_at = now(),
    note = EXCLUDED.note
WHERE r.status = 'open'
RETURNING {_REVIEW_COLUMNS}
"""
_PARTIES = "SELECT user_id FROM accounts WHERE id = ANY($1::text[]) AND user_id IS NOT NULL"
_IS_OPERATOR = "SELECT EXISTS (SELECT FROM operators WHERE user_id = $1)"
_GRANT = """
INSERT INTO operators (user_id, granted_by)
SELECT id, $2 FROM users WHERE email = $1
ON CONFLICT (user_id) DO NOTHING
RETURNING user_id
"""
_USER_BY_EMAIL = "SELECT id FROM users WHERE email = $1"


@dataclass(frozen=True, slots=True)
class ReviewRecord:
    """A held payment's review: why it was held and, once decided, the decision."""

    transfer_id: str
    reasons: list[str]
    status: ReviewStatus
    decided_by: str | None
    decided_at: datetime | None
    note: str | None
    created_at: datetime | None


@dataclass(frozen=True, slots=True)
class OwnPayment:
    """The operator is a party to this payment (payer or payee): someone else decides it."""

    transfer_id: str


@dataclass(frozen=True, slots=True)
class Decided:
    """The review of this transfer was decided already (the decision stands)."""

    review: ReviewRecord


def _review(row: asyncpg.Record) -> ReviewRecord:
    return ReviewRecord(
        transfer_id=row["transfer_id"],
        reasons=list(row["reasons"]),
        status=row["status"],
        decided_by=row["decided_by"],
        decided_at=row["decided_at"],
        note=row["note"],
        created_at=row["created_at"],
    )


async def open_review(
    connection: Connection | asyncpg.Pool, transfer_id: str, wallet_id: str, reasons: Sequence[str]
) -> None:
    """Record why a payment is held, before its pending transfer is committed."""
    await connection.execute(_OPEN, transfer_id, wallet_id, list(reasons))


async def reviews_of(
    connection: Connection | asyncpg.Pool, transfer_ids: Sequence[str]
) -> dict[str, ReviewRecord]:
    """The reviews of these transfers (those that have one), by transfer id."""
    if not transfer_ids:
        return {}
    rows = await connection.fetch(_REVIEWS_OF, list(transfer_ids))
    return {row["transfer_id"]: _review(row) for row in rows}


async def open_reviews(
    connection: Connection | asyncpg.Pool,
    status: Literal["open", "decided"],
    after: int,
    limit: int,
) -> tuple[list[tuple[Transfer, ReviewRecord]], int | None]:
    """A page of held payments (open ones, or decided ones), oldest first, and the seq to go on
    from."""
    rows = await connection.fetch(
        _OPEN_QUEUE if status == "open" else _DECIDED_QUEUE, after, limit + 1
    )
    items: list[tuple[Transfer, ReviewRecord]] = []
    for row in rows[:limit]:
        transfer = transfer_from_row(row)
        items.append(
            (
                transfer,
                ReviewRecord(
                    transfer_id=transfer.id,
                    reasons=list(row["reasons"]),
                    status="open" if status == "open" else row["review_status"],
                    decided_by=None if status == "open" else row["decided_by"],
                    decided_at=None if status == "open" else row["decided_at"],
                    note=None if status == "open" else row["note"],
                    created_at=row["held_at"],
                ),
            )
        )
    next_seq = rows[limit - 1]["seq"] if len(rows) > limit else None
    return items, next_seq


async def record_decision(
    pool: asyncpg.Pool,
    transfer_id: str,
    decision: Literal["approved", "rejected"],
    operator_id: str,
    note: str,
    reason: str | None,
) -> tuple[Transfer, ReviewRecord] | Decided | OwnPayment | None:
    """Record an operator's decision and settle the held transfer, in one transaction.

    None when there is no held P2P transfer with this id; ``Decided`` when its review was
    decided before, ``OwnPayment`` when the operator is a party to it (the transaction then
    changes nothing).
    """
    async with pool.acquire() as connection, connection.transaction():
        row = await connection.fetchrow(_TRANSFER_FOR_DECISION, transfer_id)
        if row is None or row["kind"] != "p2p":
            return None
        transfer = transfer_from_row(row)
        parties = {
            party["user_id"]
            for party in await connection.fetch(
                _PARTIES, [transfer.from_wallet, transfer.to_wallet]
            )
        }
        if operator_id in parties or operator_id == transfer.initiator_id:
            return OwnPayment(transfer_id)
        decided = None
        if transfer.status == "pending":
            decided = await connection.fetchrow(
                _DECIDE, transfer_id, transfer.from_wallet, decision, operator_id, note
            )
        if decided is None:
            existing = await connection.fetchrow(
                f"SELECT {_REVIEW_COLUMNS} FROM transfer_reviews WHERE transfer_id = $1",
                transfer_id,
            )
            if existing is None or existing["status"] == "open":
                return None  # a P2P transfer that was never held: nothing to review
            return Decided(_review(existing))
        settled = await commit_batch(
            connection,
            [Settlement(transfer_id, "posted" if decision == "approved" else "voided", reason)],
        )
        outcome = settled.outcomes[0]
        if not isinstance(outcome, Applied):
            # Settled meanwhile by something else: leave everything as it was.
            raise SettlementRefused(outcome)
        return outcome.transfer, _review(decided)


class SettlementRefused(RuntimeError):
    """The settlement did not apply; the decision's transaction is rolled back."""

    def __init__(self, outcome: object) -> None:
        super().__init__(f"the held transfer could not be settled: {outcome!r}")
        self.outcome = outcome


async def is_operator(connection: Connection | asyncpg.Pool, user_id: str) -> bool:
    """True when the user may review held payments."""
    return bool(await connection.fetchval(_IS_OPERATOR, user_id))


async def grant_operator(
    connection: Connection | asyncpg.Pool, email: str, granted_by: str
) -> bool | None:
    """Make the user with this e-mail an operator: True if granted now, False if they were one,
    None when no user has the address."""
    granted = await connection.fetchval(_GRANT, email, granted_by)
    if granted is not None:
        return True
    exists = await connection.fetchval(_USER_BY_EMAIL, email)
    return None if exists is None else False
