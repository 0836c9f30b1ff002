"""Holds: two-phase payments. A hold reserves the payer's money for the payee until it is
posted (in full, or for less: the rest is released), voided, or expires.

A hold is a pending P2P transfer whose id starts ``hld_``, created through the payer's wallet
actor like any payment (so it is judged against the same available balance, in the same
mailbox order). Posting and voiding settle it through the group-commit writer: posting in full
moves the reserved money, voiding releases it, and posting less voids the hold and makes its
posting transfer (``<hold id>:post``) in one transaction, which the database refuses unless
the hold is still pending then (migration 0014). Expiry is a row per hold in PostgreSQL, swept
by every node (``HoldExpiry``): it survives restarts, and a hold settles once whoever gets
there first (a settlement of a hold no longer pending changes nothing).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import uuid
from dataclasses import dataclass
from typing import Final

import asyncpg

from transakt.errors import HoldSettled, NotFound, ValidationFailed
from transakt.ids import uuid4_hex
from transakt.models import Transfer
from transakt.runtime import ActorSystem, RestartPolicy, TaskSupervisor
from transakt.services.idempotency import IdempotencyKey, Replay
from transakt.services.limits import tell_spending_changed
from transakt.services.wallets import TransferRequest, WalletService
from transakt.storage.holds import due_holds, forget_holds
from transakt.storage.records import (
    Applied,
    IdempotencyRecord,
    NewTransfer,
    Rejected,
    Settlement,
    TransferGroup,
)
from transakt.storage.writer import LedgerWriter

__all__ = ["DEFAULT_HOLD_SECONDS", "MAX_HOLD_SECONDS", "HoldExpiry", "HoldService"]

log = logging.getLogger("transakt.holds")

HOLD_PREFIX: Final = "hld_"
DEFAULT_HOLD_SECONDS: Final = 7 * 24 * 3600
MAX_HOLD_SECONDS: Final = 30 * 24 * 3600
_HOLD_IDS: Final = uuid.UUID("5d2e7c1a-9b3f-4e8d-a6c2-7f1e3d5b9a04")
_EXPIRED: Final = "expired"


@dataclass(frozen=True, slots=True)
class HoldRequest:
    """A hold as the client asked for it (validated for shape)."""

    payment: TransferRequest
    expires_in: int = DEFAULT_HOLD_SECONDS


class HoldService:
    """Creates holds through the payer's wallet actor, and posts and voids them."""

    def __init__(
        self, wallets: WalletService, writer: LedgerWriter, pool: asyncpg.Pool, system: ActorSystem
    ) -> None:
        self._wallets = wallets
        self._writer = writer
        self._pool = pool
        self._system = system

    async def create(
        self, user_id: str, request: HoldRequest, idempotency: IdempotencyKey | None
    ) -> Transfer | Replay:
        """Reserve the amount in the payer's wallet for the payee (201 once durable)."""
        payment = request.payment
        if not 1 <= request.expires_in <= MAX_HOLD_SECONDS:
            raise ValidationFailed(
                f"expires_in is 1 to {MAX_HOLD_SECONDS} seconds", field="expires_in"
            )
        await self._wallets.owned_wallet(user_id, payment.from_wallet, payment.currency)
        to_wallet = await self._wallets.recipient_wallet(payment)
        expires_at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=request.expires_in)
        if idempotency is None:
            hold_id, record = HOLD_PREFIX + uuid4_hex(), None
        else:
            name = f"{user_id}\x00{idempotency.key}"
            hold_id = HOLD_PREFIX + uuid.uuid5(_HOLD_IDS, name).hex
            record = IdempotencyRecord(user_id, idempotency.key, idempotency.request_hash)
        hold = NewTransfer(
            id=hold_id,
            kind="p2p",
            status="pending",
            from_account=payment.from_wallet,
            to_account=to_wallet,
            amount=payment.amount,
            currency=payment.currency,
            memo=payment.memo,
            initiator_id=user_id,
            idempotency=record,
            metadata=payment.metadata,
            expires_at=expires_at.replace(microsecond=0),
        )
        return await self._wallets.pay(user_id, idempotency, hold)

    async def get(self, user_id: str, hold_id: str) -> Transfer:
        """A hold the user is a party to."""
        if not hold_id.startswith(HOLD_PREFIX) or ":" in hold_id:
            raise NotFound("no such hold", hold=hold_id)
        try:
            return await self._wallets.get_transfer(user_id, hold_id)
        except NotFound:
            raise NotFound("no such hold", hold=hold_id) from None

    async def post(self, user_id: str, hold_id: str, amount: int | None) -> Transfer:
        """Post the hold: in full (``amount`` None or the hold's), or for less, releasing the
        rest. Answers the transfer that moved the money."""
        hold = await self._pending(user_id, hold_id)
        if amount is None or amount == hold.amount:
            return await self._settle(Settlement(hold.id, "posted"))
        if amount > hold.amount:
            raise ValidationFailed(
                "a hold is posted for its amount at most", field="amount", held=hold.amount
            )
        posting = NewTransfer(
            id=f"{hold.id}:post",
            kind="p2p",
            status="posted",
            from_account=hold.from_wallet,
            to_account=hold.to_wallet,
            amount=amount,
            currency=hold.currency,
            memo=hold.memo,
            initiator_id=user_id,
            metadata=hold.metadata,
        )
        release = Settlement(hold.id, "voided", reason=f"posted {amount} of {hold.amount}")
        group = await self._writer.submit_group(TransferGroup((posting,), (release,)))
        if isinstance(group, Rejected):
            raise group.error
        made = group.outcomes[0]
        if not isinstance(made, Applied):
            raise HoldSettled("the hold was posted already", hold=hold.id)
        await self._forget(hold.id)
        # The hold counted against the payer's limits in full: count what moved instead.
        await tell_spending_changed(self._system, hold.from_wallet)
        return made.transfer

    async def void(self, user_id: str, hold_id: str) -> Transfer:
        """Release the hold: the payer's money is available again."""
        hold = await self._pending(user_id, hold_id)
        return await self._settle(Settlement(hold.id, "voided", reason="voided"))

    async def _settle(self, settlement: Settlement) -> Transfer:
        outcome = await self._writer.submit(settlement)
        if isinstance(outcome, Applied):
            await self._forget(settlement.transfer_id)
            if settlement.outcome == "voided":  # it no longer counts against the limits
                await tell_spending_changed(self._system, outcome.transfer.from_wallet)
            return outcome.transfer
        if isinstance(outcome, Rejected):
            raise outcome.error
        raise HoldSettled(
            "the hold was posted, voided or expired already", hold=settlement.transfer_id
        )

    async def _pending(self, user_id: str, hold_id: str) -> Transfer:
        # Either party may settle it (get answers 404 to anyone else).
        hold = await self.get(user_id, hold_id)
        if hold.status != "pending":
            raise HoldSettled(
                "the hold was posted, voided or expired already", hold=hold.id, status=hold.status
            )
        return hold

    async def _forget(self, hold_id: str) -> None:
        # Best effort: an expiry left behind is dropped by the sweeper, whose void then
        # changes nothing.
        with contextlib.suppress(Exception):
            async with self._pool.acquire() as connection:
                await forget_holds(connection, [hold_id])


class HoldExpiry:
    """Voids holds whose expiry has passed: every node runs one; they never void one hold twice
    (each locks the expiries it works on, and a second void would change nothing anyway)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        writer: LedgerWriter,
        system: ActorSystem | None = None,
        *,
        interval: float = 1.0,
        batch: int = 200,
    ) -> None:
        self._pool = pool
        self._writer = writer
        self._system = system
        self._interval = interval
        self._batch = batch
        self.tasks = TaskSupervisor(
            "hold-expiry",
            restart=RestartPolicy(max_restarts=100, within=60.0, min_backoff=0.5, max_backoff=5.0),
        )
        self.expired = 0  # holds this node voided at expiry

    def start(self) -> None:
        """Start sweeping."""
        self.tasks.spawn("hold-expiry", self._run)

    async def stop(self) -> None:
        """Stop sweeping (a sweep under way is cancelled; its holds are swept again later)."""
        await self.tasks.close()

    async def sweep(self) -> int:
        """Void the holds due now (one batch); how many this call voided."""
        async with self._pool.acquire() as connection, connection.transaction():
            due = await due_holds(connection, self._batch)
            if not due:
                return 0
            outcomes = await asyncio.gather(
                *(self._writer.submit(Settlement(hold, "voided", reason=_EXPIRED)) for hold in due)
            )
            await forget_holds(connection, due)
        voided = [outcome.transfer for outcome in outcomes if isinstance(outcome, Applied)]
        self.expired += len(voided)
        if self._system is not None:  # expired holds no longer count against the limits
            for transfer in voided:
                await tell_spending_changed(self._system, transfer.from_wallet)
        return len(voided)

    async def _run(self) -> None:
        while True:
            try:
                while await self.sweep() >= self._batch:
                    pass  # more are due: go on at once
            except Exception as error:  # the database or the ledger failed: the next sweep retries
                log.warning("hold expiry sweep failed (%r); retrying", error)
            await asyncio.sleep(self._interval)
