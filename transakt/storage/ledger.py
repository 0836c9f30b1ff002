"""Group commit: many ledger operations, one statement, one round trip.

A batch goes to the ``ledger_commit`` database function (migrations 0002, 0005 and 0007) as
parallel arrays. It first locks every account the batch names, in id order, so batches on
different nodes that share transfer ids cannot deadlock. Then it inserts the new transfers
(duplicates by id are skipped), settles pending ones, moves the balances of every touched
account, records idempotent responses and writes outbox events, all inside the one statement,
whose own transaction commits the batch. If the database refuses the batch (a constraint caught
an overdraft the actors missed), the batch is retried one operation per call so only the
offender fails.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from operator import attrgetter
from typing import Any

import asyncpg

from transakt.errors import (
    CurrencyMismatch,
    InsufficientFunds,
    NotFound,
    RefundRefused,
    ValidationFailed,
)
from transakt.models import Transfer
from transakt.storage.records import (
    Applied,
    AppliedGroup,
    Duplicate,
    GroupOutcome,
    LedgerOperation,
    NewTransfer,
    Outcome,
    Rejected,
    Settlement,
    TransferGroup,
)
from transakt.storage.typing import Connection

# Not inside a transaction block: the single statement is its own transaction. (The comment
# travels with the statement, so whoever watches the server sees what a waiting batch waits for.)
_COMMIT = """\
SELECT * FROM ledger_commit(
    $1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::text[],
    $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::integer[],
    $14::text[], $15::text[], $16::text[])
-- locks the accounts it names FOR NO KEY UPDATE, in id order, first
"""

_CREATE_COLUMNS = attrgetter(
    "id", "kind", "status", "from_account", "to_account", "amount", "currency", "memo",
    "initiator_id",
)  # fmt: skip
_SETTLE_COLUMNS = attrgetter("transfer_id", "outcome", "reason")
_NO_IDEMPOTENCY = (None, None, None, None)


@dataclass(slots=True)
class BatchResult:
    """Outcomes in the order of the operations, and each touched wallet's state after commit."""

    outcomes: list[Outcome | GroupOutcome]
    wallets: dict[str, dict[str, Any]] = field(default_factory=dict)


async def commit_batch(
    connection: Connection, operations: Sequence[LedgerOperation]
) -> BatchResult:
    """Commit the operations in one transaction; on a constraint error, one by one."""
    if not operations:
        return BatchResult(outcomes=[])
    try:
        if connection.is_in_transaction():
            # Inside the caller's transaction: a savepoint keeps a refused batch from
            # aborting it, so the one-by-one retry below can still run.
            async with connection.transaction():
                return await _apply(connection, operations)
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
    if constraint == "refund_exceeds_original":
        return RefundRefused("refunds of a payment never add up to more than the payment")
    if constraint == "refund_of_a_posted_payment":
        return RefundRefused("only a posted payment can be refunded, back to its payer")
    if constraint == "wallet_not_overdrawn" or "pending" in constraint:
        return InsufficientFunds("the wallet's available balance does not cover the amount")
    if constraint.startswith("transfers_") and "currency" in constraint:
        return CurrencyMismatch("both wallets must hold the transfer's currency")
    if isinstance(error, asyncpg.ForeignKeyViolationError):
        return NotFound("no such wallet")
    return ValidationFailed(f"the ledger refused the transfer ({constraint or 'constraint'})")


def _columns(rows: list[tuple[Any, ...]], width: int) -> list[tuple[Any, ...]]:
    """Rows to parallel columns, each passed as one array (``width`` empty ones for no rows)."""
    if not rows:
        return [()] * width
    return list(zip(*rows, strict=True))


async def _apply(connection: Connection, operations: Sequence[LedgerOperation]) -> BatchResult:
    creates: list[NewTransfer] = []
    settles: list[Settlement] = []
    for operation in operations:
        if isinstance(operation, NewTransfer):
            creates.append(operation)
        elif isinstance(operation, TransferGroup):
            creates.extend(operation.transfers)  # refused together: one operation to retry
        else:
            settles.append(operation)

    idempotency = [
        (op.idempotency.user_id, op.idempotency.key, op.idempotency.request_hash,
         op.response_status)
        if op.idempotency is not None
        else _NO_IDEMPOTENCY
        for op in creates
    ]  # fmt: skip
    row = await connection.fetchrow(
        _COMMIT,
        *_columns(list(map(_CREATE_COLUMNS, creates)), 9),
        *_columns(idempotency, 4),
        *_columns(list(map(_SETTLE_COLUMNS, settles)), 3),
    )
    assert row is not None
    (
        committed_at, created, settled,
        kinds, sources, targets, amounts, currencies, memos, initiators, created_ats,
        wallet_ids, users, wallet_currencies, wallet_balances, pending_ins, pending_outs,
    ) = row  # fmt: skip

    # A created transfer is exactly what was asked for, stamped with the commit's now().
    applied_creates: dict[int, Outcome] = {}
    for position in created:
        new = creates[position - 1]
        applied_creates[position] = Applied(
            Transfer(
                id=new.id,
                kind=new.kind,
                status=new.status,
                from_wallet=new.from_account,
                to_wallet=new.to_account,
                amount=new.amount,
                currency=new.currency,
                memo=new.memo,
                reason=None,
                created_at=committed_at,
                posted_at=committed_at if new.status == "posted" else None,
                initiator_id=new.initiator_id,
            )
        )
    applied_settles: dict[int, Outcome] = {}
    for index, position in enumerate(settled):
        settlement = settles[position - 1]
        applied_settles[position] = Applied(
            Transfer(
                id=settlement.transfer_id,
                kind=kinds[index],
                status=settlement.outcome,
                from_wallet=sources[index],
                to_wallet=targets[index],
                amount=amounts[index],
                currency=currencies[index],
                memo=memos[index],
                reason=settlement.reason,
                created_at=created_ats[index],
                posted_at=committed_at if settlement.outcome == "posted" else None,
                initiator_id=initiators[index],
            )
        )

    # Not applied: the id exists already, was repeated earlier in the batch, or (a settlement)
    # names a transfer that is no longer pending.
    outcomes: list[Outcome | GroupOutcome] = []
    create_position = settle_position = 0
    for operation in operations:
        if isinstance(operation, NewTransfer):
            create_position += 1
            outcome = applied_creates.get(create_position)
            outcomes.append(outcome if outcome is not None else Duplicate(operation.id))
        elif isinstance(operation, TransferGroup):
            members: list[Applied | Duplicate] = []
            for transfer in operation.transfers:
                create_position += 1
                applied = applied_creates.get(create_position)
                members.append(applied if isinstance(applied, Applied) else Duplicate(transfer.id))
            outcomes.append(AppliedGroup(tuple(members)))
        else:
            settle_position += 1
            outcome = applied_settles.get(settle_position)
            outcomes.append(outcome if outcome is not None else Duplicate(operation.transfer_id))

    wallets = {
        wallet_id: {
            "id": wallet_id,
            "user_id": user_id,
            "currency": currency,
            "balance": balance,
            "pending_in": pending_in,
            "pending_out": pending_out,
        }
        for wallet_id, user_id, currency, balance, pending_in, pending_out in zip(
            wallet_ids, users, wallet_currencies, wallet_balances, pending_ins, pending_outs,
            strict=True,
        )
    }  # fmt: skip
    return BatchResult(outcomes=outcomes, wallets=wallets)
