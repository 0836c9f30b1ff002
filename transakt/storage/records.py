"""Row → model conversion and the write-side records the ledger accepts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
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
    #: A small JSON object the client attached (kept beside the ledger, migration 0014).
    metadata: dict[str, Any] | None = None
    #: A hold's expiry: voided by the sweeper if still pending then.
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Settlement:
    """Move a pending transfer to posted or voided (the bank answered)."""

    transfer_id: str
    outcome: Literal["posted", "voided"]
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class TransferGroup:
    """Transfers (and settlements) that commit together or not at all: one operation (an
    atomic batch; a hold posted in part, voided as its posting is made)."""

    transfers: tuple[NewTransfer, ...]
    settlements: tuple[Settlement, ...] = ()


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
    already), in the group's order, then each settlement's."""

    outcomes: tuple[Applied | Duplicate, ...]


Outcome = Applied | Duplicate | Rejected
#: What a TransferGroup's commit answers: all of it, or (Rejected) none of it.
GroupOutcome = AppliedGroup | Rejected

TRANSFER_COLUMNS = (
    "id, kind, status, from_account, to_account, amount, currency, memo, reason, "
    "initiator_id, created_at, posted_at"
)
# The holders' names of a transfer's two wallets (null for a settlement account), as columns
# from_name and to_name of a query whose transfers row is ``{transfer}``.
HOLDER_NAMES = (
    "(SELECT u.name FROM accounts AS fa JOIN users AS u ON u.id = fa.user_id"
    " WHERE fa.id = {transfer}.from_account) AS from_name, "
    "(SELECT u.name FROM accounts AS ta JOIN users AS u ON u.id = ta.user_id"
    " WHERE ta.id = {transfer}.to_account) AS to_name"
)
# One transfer with what is kept beside the ledger (migration 0014); ``$1`` is its id.
TRANSFER_DETAIL = (
    "SELECT t.id, t.kind, t.status, t.from_account, t.to_account, t.amount, t.currency, "
    "t.memo, t.reason, t.initiator_id, t.created_at, t.posted_at, a.metadata, h.expires_at, "
    f"{HOLDER_NAMES.format(transfer='t')} "
    "FROM transfers AS t LEFT JOIN transfer_attributes AS a ON a.transfer_id = t.id "
    "LEFT JOIN hold_expiries AS h ON h.transfer_id = t.id WHERE t.id = $1"
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
        # Selected only where they are shown (see TRANSFER_DETAIL): absent reads as None.
        metadata=row.get("metadata"),
        expires_at=row.get("expires_at"),
        from_name=row.get("from_name"),
        to_name=row.get("to_name"),
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
