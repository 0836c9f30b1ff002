"""Group commit: many ledger operations, one transaction, a handful of set-based statements.

Per batch: insert new transfers (duplicates by id are skipped), settle pending ones, move the
balances of every touched account in one UPDATE, record idempotent responses and write outbox
events, then commit. If the database refuses the batch (a constraint caught an overdraft the
actors missed), the batch is retried one operation per transaction so only the offender fails.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from transakt.errors import CurrencyMismatch, InsufficientFunds, NotFound, ValidationFailed
from transakt.models import Transfer
from transakt.storage.records import (
    TRANSFER_COLUMNS,
    Applied,
    Duplicate,
    LedgerOperation,
    NewTransfer,
    Outcome,
    Rejected,
    Settlement,
    transfer_from_row,
)

_INSERT_TRANSFERS = f"""
INSERT INTO transfers (id, kind, status, from_account, to_account, amount, currency, memo,
                       initiator_id, posted_at, settled_at)
SELECT t.id, t.kind, t.status, t.from_account, t.to_account, t.amount, t.currency, t.memo,
       t.initiator_id,
       CASE WHEN t.status = 'posted' THEN now() END,
       CASE WHEN t.status <> 'pending' THEN now() END
FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[],
            $7::text[], $8::text[], $9::text[])
     AS t(id, kind, status, from_account, to_account, amount, currency, memo, initiator_id)
ON CONFLICT (id) DO NOTHING
RETURNING {TRANSFER_COLUMNS}
"""

_SETTLE_TRANSFERS = f"""
UPDATE transfers AS t
SET status = s.outcome,
    reason = s.reason,
    posted_at = CASE WHEN s.outcome = 'posted' THEN now() END,
    settled_at = now()
FROM unnest($1::text[], $2::text[], $3::text[]) AS s(id, outcome, reason)
WHERE t.id = s.id AND t.status = 'pending'
RETURNING {", ".join("t." + c.strip() for c in TRANSFER_COLUMNS.split(","))}
"""

# Taking the row locks in id order first means two writers (or two nodes) never deadlock.
# NO KEY UPDATE (what a balance UPDATE needs anyway) does not conflict with the KEY SHARE locks
# that the transfers' foreign-key checks take; a plain FOR UPDATE would, and deadlock.
_LOCK_ACCOUNTS = (
    "SELECT id FROM accounts WHERE id = ANY($1::text[]) ORDER BY id FOR NO KEY UPDATE"
)

_MOVE_BALANCES = """
UPDATE accounts AS a
SET balance = a.balance + d.balance,
    pending_in = a.pending_in + d.pending_in,
    pending_out = a.pending_out + d.pending_out
FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[])
     AS d(id, balance, pending_in, pending_out)
WHERE a.id = d.id
RETURNING a.id, a.kind, a.user_id, a.currency, a.balance, a.pending_in, a.pending_out
"""

_RECORD_IDEMPOTENCY = """
INSERT INTO idempotency_keys (user_id, key, request_hash, status_code, response)
SELECT user_id, key, request_hash, status_code, response::jsonb
FROM unnest($1::text[], $2::text[], $3::text[], $4::int[], $5::text[])
     AS i(user_id, key, request_hash, status_code, response)
ON CONFLICT DO NOTHING
"""

_WRITE_OUTBOX = """
INSERT INTO outbox (event_id, topic, payload)
SELECT event_id, topic, payload::jsonb
FROM unnest($1::text[], $2::text[], $3::text[]) AS e(event_id, topic, payload)
ON CONFLICT (event_id) DO NOTHING
"""


@dataclass(slots=True)
class _Deltas:
    balance: int = 0
    pending_in: int = 0
    pending_out: int = 0


@dataclass(slots=True)
class BatchResult:
    """Outcomes in the order of the operations, and each touched wallet's state after commit."""

    outcomes: list[Outcome]
    wallets: dict[str, dict[str, Any]] = field(default_factory=dict)


def _apply_created(deltas: dict[str, _Deltas], transfer: Transfer) -> None:
    if transfer.status == "posted":
        deltas[transfer.from_wallet].balance -= transfer.amount
        deltas[transfer.to_wallet].balance += transfer.amount
    else:  # pending: hold on the paying side, expected on the receiving side
        deltas[transfer.from_wallet].pending_out += transfer.amount
        deltas[transfer.to_wallet].pending_in += transfer.amount


def _apply_settled(deltas: dict[str, _Deltas], transfer: Transfer) -> None:
    deltas[transfer.from_wallet].pending_out -= transfer.amount
    deltas[transfer.to_wallet].pending_in -= transfer.amount
    if transfer.status == "posted":
        deltas[transfer.from_wallet].balance -= transfer.amount
        deltas[transfer.to_wallet].balance += transfer.amount


def _transfer_event(transfer: Transfer, owners: dict[str, str | None]) -> tuple[str, str, str]:
    payload = {
        "transfer": transfer.to_json(),
        "from_user": owners.get(transfer.from_wallet),
        "to_user": owners.get(transfer.to_wallet),
    }
    # Deterministic id: a replayed state change can never produce a second event.
    return (f"{transfer.id}:{transfer.status}", f"transfer.{transfer.status}", json.dumps(payload))


async def commit_batch(
    connection: asyncpg.Connection, operations: Sequence[LedgerOperation]
) -> BatchResult:
    """Commit the operations in one transaction; on a constraint error, one by one."""
    try:
        async with connection.transaction():
            return await _apply(connection, operations)
    except (asyncpg.CheckViolationError, asyncpg.ForeignKeyViolationError) as error:
        if len(operations) == 1:
            return BatchResult(outcomes=[Rejected(_domain_error(error))])
    result = BatchResult(outcomes=[])
    for operation in operations:
        single = await commit_batch(connection, [operation])
        result.outcomes.extend(single.outcomes)
        result.wallets.update(single.wallets)
    return result


def _domain_error(error: asyncpg.PostgresError) -> Exception:
    constraint = getattr(error, "constraint_name", None) or ""
    if constraint == "wallet_not_overdrawn" or "pending" in constraint:
        return InsufficientFunds("the wallet's available balance does not cover the amount")
    if constraint.startswith("transfers_") and "currency" in constraint:
        return CurrencyMismatch("both wallets must hold the transfer's currency")
    if isinstance(error, asyncpg.ForeignKeyViolationError):
        return NotFound("no such wallet")
    return ValidationFailed(f"the ledger refused the transfer ({constraint or 'constraint'})")


async def _apply(
    connection: asyncpg.Connection, operations: Sequence[LedgerOperation]
) -> BatchResult:
    creates = [op for op in operations if isinstance(op, NewTransfer)]
    settles = [op for op in operations if isinstance(op, Settlement)]
    created: dict[str, Transfer] = {}
    settled: dict[str, Transfer] = {}
    deltas: dict[str, _Deltas] = defaultdict(_Deltas)

    if creates:
        rows = await connection.fetch(
            _INSERT_TRANSFERS,
            [op.id for op in creates],
            [op.kind for op in creates],
            [op.status for op in creates],
            [op.from_account for op in creates],
            [op.to_account for op in creates],
            [op.amount for op in creates],
            [op.currency for op in creates],
            [op.memo for op in creates],
            [op.initiator_id for op in creates],
        )
        for row in rows:
            transfer = transfer_from_row(row)
            created[transfer.id] = transfer
            _apply_created(deltas, transfer)
    if settles:
        rows = await connection.fetch(
            _SETTLE_TRANSFERS,
            [op.transfer_id for op in settles],
            [op.outcome for op in settles],
            [op.reason for op in settles],
        )
        for row in rows:
            transfer = transfer_from_row(row)
            settled[transfer.id] = transfer
            _apply_settled(deltas, transfer)

    owners: dict[str, str | None] = {}
    wallets: dict[str, dict[str, Any]] = {}
    moved = sorted(account for account, d in deltas.items() if d != _Deltas())
    if moved:
        await connection.execute(_LOCK_ACCOUNTS, moved)
        rows = await connection.fetch(
            _MOVE_BALANCES,
            moved,
            [deltas[a].balance for a in moved],
            [deltas[a].pending_in for a in moved],
            [deltas[a].pending_out for a in moved],
        )
        for row in rows:
            owners[row["id"]] = row["user_id"]
            if row["kind"] == "wallet":
                wallets[row["id"]] = {
                    "id": row["id"],
                    "user_id": row["user_id"],
                    "currency": row["currency"],
                    "balance": row["balance"],
                    "pending_in": row["pending_in"],
                    "pending_out": row["pending_out"],
                }

    idempotent = [op for op in creates if op.idempotency is not None and op.id in created]
    if idempotent:
        await connection.execute(
            _RECORD_IDEMPOTENCY,
            [op.idempotency.user_id for op in idempotent if op.idempotency],
            [op.idempotency.key for op in idempotent if op.idempotency],
            [op.idempotency.request_hash for op in idempotent if op.idempotency],
            [op.response_status for op in idempotent],
            [json.dumps(created[op.id].to_json()) for op in idempotent],
        )

    events = [_transfer_event(t, owners) for t in (*created.values(), *settled.values())]
    for wallet in wallets.values():
        state = dict(wallet)
        state["available"] = state["balance"] - state["pending_out"]
        events.append(
            (f"balance:{uuid.uuid4().hex}", "balance.changed", json.dumps({"wallet": state}))
        )
    if events:
        await connection.execute(
            _WRITE_OUTBOX,
            [e[0] for e in events],
            [e[1] for e in events],
            [e[2] for e in events],
        )

    outcomes: list[Outcome] = []
    answered: set[tuple[bool, str]] = set()
    for operation in operations:
        if isinstance(operation, NewTransfer):
            is_create, key, transfer = True, operation.id, created.get(operation.id)
        else:
            is_create, key = False, operation.transfer_id
            transfer = settled.get(key)
        # The same id twice in one batch: only its first operation took effect.
        if transfer is None or (is_create, key) in answered:
            outcomes.append(Duplicate(key))
        else:
            answered.add((is_create, key))
            outcomes.append(Applied(transfer))
    return BatchResult(outcomes=outcomes, wallets=wallets)
