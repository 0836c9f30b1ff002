"""Bank requests as the ledger records them: every pending deposit or withdrawal is one.

A request needs no table of its own: the pending transfer row is its durable record (its id is
the id the bank sees), and the initiator's ``users.bank_account`` says which account it moves.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, cast

import asyncpg

from transakt.models import BankRequestKind, TransferStatus

__all__ = [
    "BankRequest",
    "BankRequestKind",
    "RecordedBankTransfer",
    "pending_bank_requests",
    "recorded_bank_transfers",
]


# Uses the partial index transfers_pending (kind, seq) WHERE status = 'pending'.
_PENDING = """
SELECT t.seq, t.id, t.kind, u.bank_account, t.amount, t.currency
FROM transfers AS t JOIN users AS u ON u.id = t.initiator_id
WHERE t.status = 'pending' AND t.kind = ANY($1::text[]) AND t.seq > $2
  AND t.created_at < now() - make_interval(secs => $3)
ORDER BY t.seq
LIMIT $4
"""

# Transfers without an initiator are funding the system made itself (demos, tests), not
# requests anyone sent to the bank.
_RECORDED = """
SELECT t.seq, t.id, t.kind, t.status, u.bank_account, t.amount, t.currency, t.reason,
       EXTRACT(EPOCH FROM now() - t.created_at)::float8 AS age_seconds, t.created_at
FROM transfers AS t JOIN users AS u ON u.id = t.initiator_id
WHERE t.kind IN ('deposit', 'withdrawal') AND t.seq > $1
ORDER BY t.seq
LIMIT $2
"""

_KINDS = ["deposit", "withdrawal"]


@dataclass(frozen=True, slots=True)
class BankRequest:
    """One call owed to the bank: move ``amount`` out of (deposit) or into (withdrawal) it."""

    transfer_id: str
    kind: BankRequestKind
    account: str
    amount: int
    currency: str

    @property
    def direction(self) -> Literal["debit", "credit"]:
        """What the bank does to the user's account: a deposit debits it, a withdrawal credits."""
        return "debit" if self.kind == "deposit" else "credit"


@dataclass(frozen=True, slots=True)
class RecordedBankTransfer:
    """A deposit or withdrawal as the wallet ledger holds it, for reconciliation."""

    request: BankRequest
    status: TransferStatus
    reason: str | None
    created_at: datetime
    age_seconds: float


async def pending_bank_requests(
    pool: asyncpg.Pool, older_than: float, page_size: int = 1000
) -> AsyncIterator[list[BankRequest]]:
    """Pending deposits and withdrawals created over ``older_than`` seconds ago, oldest first."""
    after = 0
    while True:
        rows = await pool.fetch(_PENDING, _KINDS, after, float(older_than), page_size)
        if not rows:
            return
        after = rows[-1]["seq"]
        yield [_request(row) for row in rows]
        if len(rows) < page_size:
            return


async def recorded_bank_transfers(
    pool: asyncpg.Pool, page_size: int = 5000
) -> AsyncIterator[list[RecordedBankTransfer]]:
    """Every deposit and withdrawal a user asked for, whatever its status, oldest first."""
    after = 0
    while True:
        rows = await pool.fetch(_RECORDED, after, page_size)
        if not rows:
            return
        after = rows[-1]["seq"]
        yield [
            RecordedBankTransfer(
                request=_request(row),
                status=cast(TransferStatus, row["status"]),
                reason=row["reason"],
                created_at=row["created_at"],
                age_seconds=float(row["age_seconds"]),
            )
            for row in rows
        ]
        if len(rows) < page_size:
            return


def _request(row: asyncpg.Record) -> BankRequest:
    return BankRequest(
        transfer_id=row["id"],
        kind=cast(BankRequestKind, row["kind"]),
        account=row["bank_account"],
        amount=row["amount"],
        currency=row["currency"],
    )
