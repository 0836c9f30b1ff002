"""Row → model conversion and the write-side records the ledger accepts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import asyncpg

from transakt.models import Transfer, TransferKind, Wallet


@dataclass(frozen=True, slots=True)
class StoredAnswer:
    """What idempotency_keys holds under a key: the request's hash and its first answer."""

    request_hash: str
    status: int
    body: dict[str, Any]


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    """The (user, key, request hash) to record with the response, in the change's transaction."""

    user_id: str
    key: str
    request_hash: str


@dataclass(frozen=True, slots=True)
class NewTransfer:
    """A transfer to create: posted at once (p2p) or pending (deposit, withdrawal)."""

    id: str
    kind: TransferKind
    status: Literal["pending", "posted"]
    from_account: str
    to_account: str
    amount: int
    currency: str
    memo: str | None
    initiator_id: str | None
    idempotency: IdempotencyRecord | None = None
    response_status: int = 201


@dataclass(frozen=True, slots=True)
class Settlement:
    """Move a pending transfer to posted or voided (the bank answered)."""

    transfer_id: str
    outcome: Literal["posted", "voided"]
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class TransferGroup:
    """Transfers that commit together or not at all (an atomic batch): one operation."""

    transfers: tuple[NewTransfer, ...]


LedgerOperation = NewTransfer | Settlement | TransferGroup


@dataclass(frozen=True, slots=True)
class Applied:
    """The operation is committed; ``transfer`` is its row after the commit."""

    transfer: Transfer


@dataclass(frozen=True, slots=True)
class Duplicate:
    """Nothing changed: this transfer id exists already (or was already settled)."""

    transfer_id: str


@dataclass(frozen=True, slots=True)
class Rejected:
    """The database refused the operation (its constraints caught what the actor missed)."""

    error: Exception


@dataclass(frozen=True, slots=True)
class AppliedGroup:
    """A group committed: each transfer's outcome (Applied, or Duplicate for an id that existed
    already), in the group's order."""

    outcomes: tuple[Applied | Duplicate, ...]


Outcome = Applied | Duplicate | Rejected
#: What a TransferGroup's commit answers: all of it, or (Rejected) none of it.
GroupOutcome = AppliedGroup | Rejected

TRANSFER_COLUMNS = (
    "id, kind, status, from_account, to_account, amount, currency, memo, reason, "
    "initiator_id, created_at, posted_at"
)
WALLET_COLUMNS = "id, user_id, currency, balance, pending_in, pending_out, created_at"


def transfer_from_row(row: asyncpg.Record) -> Transfer:
    """Build a Transfer from a row selected with TRANSFER_COLUMNS."""
    return Transfer(
        id=row["id"],
        kind=row["kind"],
        status=row["status"],
        from_wallet=row["from_account"],
        to_wallet=row["to_account"],
        amount=row["amount"],
        currency=row["currency"],
        memo=row["memo"],
        reason=row["reason"],
        created_at=row["created_at"],
        posted_at=row["posted_at"],
        initiator_id=row["initiator_id"],
    )


def wallet_from_row(row: asyncpg.Record) -> Wallet:
    """Build a Wallet from a row selected with WALLET_COLUMNS."""
    return Wallet(
        id=row["id"],
        user_id=row["user_id"],
        currency=row["currency"],
        balance=row["balance"],
        pending_in=row["pending_in"],
        pending_out=row["pending_out"],
        created_at=row["created_at"],
    )
