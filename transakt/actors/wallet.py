"""WalletActor: one virtual actor per wallet decides every debit, lock-free, in mailbox order.

It keeps a *lower bound* of the wallet's available balance: it loads the committed value and
subtracts each debit it approves. Credits arrive through other wallets' transfers and bank
settlements without passing through this actor, and they only ever raise the true balance, so an
approval from the lower bound is always safe. When the bound says no, the actor re-reads the
database before refusing. The database's CHECK constraint remains the last line of defence should
two copies of this actor ever run at once (a failover race).

It is also where a wallet's debits are throttled (a token bucket: ``DebitRate``), because every
debit of the wallet passes here, on whichever node, and counting costs no I/O; and where a
retry of a keyed payment still in flight joins the original instead of being judged again.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from dataclasses import dataclass
from typing import Any

from transakt.actors.limits import SpendingChanged, SpendingGuard
from transakt.errors import InsufficientFunds, NotFound, Overloaded, RateLimited
from transakt.models import Transfer
from transakt.runtime import Actor, Deferred
from transakt.storage.records import (
    Applied,
    AppliedGroup,
    Duplicate,
    GroupOutcome,
    NewTransfer,
    Outcome,
    Rejected,
    TransferGroup,
)
from transakt.storage.repository import Repository
from transakt.storage.writer import LedgerWriter


@dataclass(frozen=True, slots=True)
class Debit:
    """Approve and commit a transfer paid from this wallet (posted, or a pending hold)."""

    transfer: NewTransfer


@dataclass(frozen=True, slots=True)
class DebitMany:
    """Approve and commit many transfers paid from this wallet: all or none (``atomic``: one
    transaction), or each on its own, in order. One message, so it counts as one debit for the
    wallet's rate, and the batch is decided in one turn of the mailbox."""

    transfers: tuple[NewTransfer, ...]
    atomic: bool


@dataclass(frozen=True, slots=True)
class ItemOutcome:
    """One transfer of a DebitMany: applied (``transfer``), an id committed before
    (``duplicate``), or refused (``error``)."""

    transfer: Transfer | None = None
    duplicate: str | None = None
    error: Exception | None = None


@dataclass(frozen=True, slots=True)
class ManyOutcome:
    """The answer to a DebitMany: each transfer's outcome in order, or (``refused``) why none
    of them applied."""

    outcomes: tuple[ItemOutcome, ...] = ()
    refused: Exception | None = None


@dataclass(frozen=True, slots=True)
class DebitRate:
    """How many debits a wallet takes: ``per_second`` on average, ``burst`` at once."""

    per_second: float
    burst: int

    def refusal(self, wait: float) -> RateLimited:
        """The answer to a debit over the rate, telling when the next one fits."""
        return RateLimited(
            f"this wallet makes at most {self.per_second:g} payments per second; retry shortly",
            retry_after=wait,
            limit=self.burst,
            window=max(1, math.ceil(self.burst / self.per_second)),
        )


@dataclass(frozen=True, slots=True)
class _CommitFailed:
    """Internal: a commit failed mid-way, so this actor's view may be wrong: crash and reload."""

    incarnation: object
    error: BaseException


class LedgerOutcomeUnknown(RuntimeError):
    """A commit failed mid-way: the actor restarts and reloads the truth from the database."""


class WalletActor(Actor):
    """Serialises the debits of one wallet; answers each when its transfer is durable."""

    def __init__(
        self,
        wallet_id: str,
        repository: Repository,
        writer: LedgerWriter,
        rate: DebitRate | None = None,
        spending: SpendingGuard | None = None,
    ) -> None:
        self.wallet_id = wallet_id
        self._repository = repository
        self._writer = writer
        self._rate = rate
        # Spend limits and review rules (transakt/actors/limits.py); None: neither.
        self._spending = spending
        self._tokens = float(rate.burst) if rate is not None else 0.0
        self._refilled_at: float | None = None
        self.exists = False
        self.available = 0
        self._stale = True
        # Tells this instance's notices from those of an instance that crashed before it.
        self._incarnation = object()
        # Approved debits whose commit has not finished: amount and transfer id, by commit.
        self._in_flight: dict[asyncio.Future[Any], tuple[int, str]] = {}
        # The transfers of atomic groups in flight (a duplicate among them gives its amount back).
        self._groups: dict[asyncio.Future[Any], tuple[NewTransfer, ...]] = {}
        # The same, for keyed transfers, by id: a retry arriving meanwhile joins the original.
        self._keyed: dict[str, asyncio.Future[Outcome]] = {}

    def __repr__(self) -> str:
        return (
            f"<WalletActor {self.wallet_id} available={self.available} in_flight={self.in_flight}>"
        )

    @property
    def in_flight(self) -> int:
        """Money approved by this actor and not yet committed (or refused) by the ledger."""
        return sum(amount for amount, _transfer_id in self._in_flight.values())

    async def started(self) -> None:
        """Load the committed balance: actors keep no state Postgres cannot rebuild."""
        await self._reload()

    async def _reload(self) -> None:
        # Taken before the read: a debit committing meanwhile is then counted twice (in the
        # database and here), which errs on the safe side; counting it nowhere would not.
        in_flight = self.in_flight
        wallet = await self._repository.wallet(self.wallet_id)
        self.exists = wallet is not None
        self.available = (wallet.available if wallet else 0) - in_flight
        self._stale = False

    async def receive(self, message: Any) -> Any:
        """Handle a Debit (reply deferred until durable) or a commit-failure notice."""
        if isinstance(message, Debit):
            return await self._debit(message.transfer)
        if isinstance(message, DebitMany):
            return await self._debit_many(message)
        if isinstance(message, _CommitFailed):
            if message.incarnation is not self._incarnation:
                return None  # the previous instance's failure: this one loaded fresh state
            raise LedgerOutcomeUnknown(
                f"a commit of a debit from {self.wallet_id} failed: {message.error!r}"
            )
        if isinstance(message, SpendingChanged):
            if self._spending is not None:
                self._spending.stale = True  # the next payment reloads limits and spending
            return None
        raise TypeError(f"WalletActor cannot handle {type(message).__name__}")

    async def _debit(self, transfer: NewTransfer) -> Deferred[Outcome] | Rejected:
        original = self._keyed.get(transfer.id)
        if original is not None:
            return Deferred(_joined(original, transfer.id))
        wait = self._admit()
        if wait:
            assert self._rate is not None  # only a rate makes a debit wait
            return Rejected(self._rate.refusal(wait))
        if self._stale or not self.exists:
            await self._reload()
            if not self.exists:
                # A refusal is a reply, not a crash: the actor is healthy.
                return Rejected(NotFound("no such wallet", wallet=self.wallet_id))
        if transfer.amount > self.available:
            await self._reload()
            if transfer.amount > self.available:
                return Rejected(
                    InsufficientFunds(
                        "the wallet's available balance does not cover the amount",
                        wallet=self.wallet_id,
                        available=max(self.available, 0),
                    )
                )
        if self._spending is not None:
            judged = await self._spending.judge(transfer)  # a limit refuses, a rule holds
            if isinstance(judged, Rejected):
                return judged
            transfer = judged
        committed = self._submit(transfer)
        if transfer.idempotency is not None:
            self._keyed[transfer.id] = committed
        return Deferred(committed)

    def _submit(self, transfer: NewTransfer) -> asyncio.Future[Outcome]:
        """Hand an approved debit to the writer and reserve it (Overloaded: nothing reserved)."""
        committed = self._writer.submit(transfer)
        if self._spending is not None:
            self._spending.count(transfer)
        self.available -= transfer.amount
        self._in_flight[committed] = (transfer.amount, transfer.id)
        committed.add_done_callback(self._commit_finished)
        return committed

    async def _debit_many(self, message: DebitMany) -> Deferred[ManyOutcome] | ManyOutcome:
        wait = self._admit()
        if wait:
            assert self._rate is not None
            return ManyOutcome(refused=self._rate.refusal(wait))
        if self._stale or not self.exists:
            await self._reload()
            if not self.exists:
                return ManyOutcome(refused=NotFound("no such wallet", wallet=self.wallet_id))
        transfers = message.transfers
        if message.atomic:
            return await self._debit_group(transfers)
        decided: list[ItemOutcome | asyncio.Future[Outcome]] = []
        reloaded = False
        for transfer in transfers:
            if transfer.amount > self.available and not reloaded:
                await self._reload()  # once per batch: the bound may be stale, not each time
                reloaded = True
            if transfer.amount > self.available:
                decided.append(ItemOutcome(error=self._short(transfer.amount)))
                continue
            if self._spending is not None:
                judged = await self._spending.judge(transfer)  # a limit refuses, a rule holds
                if isinstance(judged, Rejected):
                    decided.append(ItemOutcome(error=judged.error))
                    continue
                transfer = judged
            try:
                decided.append(self._submit(transfer))
            except Overloaded as error:
                decided.append(ItemOutcome(error=error))
        return Deferred(_each_answered(decided))

    async def _debit_group(
        self, transfers: tuple[NewTransfer, ...]
    ) -> Deferred[ManyOutcome] | ManyOutcome:
        total = sum(transfer.amount for transfer in transfers)
        if total > self.available:
            await self._reload()
            if total > self.available:
                return ManyOutcome(refused=self._short(total))
        if self._spending is not None:
            # All or none: the limits judge the batch's total; the review rules, which hold
            # single payments, do not split an atomic batch.
            refusal = await self._spending.refuse_total(transfers)
            if refusal is not None:
                return ManyOutcome(refused=refusal.error)
        try:
            committed = self._writer.submit_group(TransferGroup(transfers))
        except Overloaded as error:
            return ManyOutcome(refused=error)
        if self._spending is not None:
            for transfer in transfers:
                self._spending.count(transfer)
        self.available -= total
        self._in_flight[committed] = (total, "")
        self._groups[committed] = transfers
        committed.add_done_callback(self._commit_finished)
        return Deferred(_group_answered(committed))

    def _short(self, amount: int) -> InsufficientFunds:
        return InsufficientFunds(
            "the wallet's available balance does not cover the amount",
            wallet=self.wallet_id,
            available=max(self.available, 0),
            amount=amount,
        )

    def _admit(self) -> float:
        """0 when the rate lets one more debit through now (taking its token), else the wait."""
        rate = self._rate
        if rate is None:
            return 0.0
        now = self.system.clock.now()
        if self._refilled_at is not None:
            self._tokens = min(
                float(rate.burst), self._tokens + (now - self._refilled_at) * rate.per_second
            )
        self._refilled_at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return 0.0
        return (1.0 - self._tokens) / rate.per_second

    def _spending_group_settled(
        self, group: tuple[NewTransfer, ...], committed: asyncio.Future[Any]
    ) -> None:
        spending = self._spending
        assert spending is not None
        outcome = None
        if not committed.cancelled() and committed.exception() is None:
            outcome = committed.result()
        if isinstance(outcome, AppliedGroup):
            for transfer, member in zip(group, outcome.outcomes, strict=True):
                spending.release(transfer.id, applied=isinstance(member, Applied))
            return
        for transfer in group:
            spending.release(transfer.id, applied=False)
        if outcome is None:
            spending.stale = True  # the outcome is unknown: count again from the database

    def _commit_finished(self, committed: asyncio.Future[Any]) -> None:
        # A plain callback, not a message: the accounting can never be lost to a full mailbox.
        amount, transfer_id = self._in_flight.pop(committed, (0, ""))
        group = self._groups.pop(committed, ())
        if self._spending is not None:
            if group:
                self._spending_group_settled(group, committed)
            else:
                self._spending.settled(transfer_id, committed)
        if self._keyed.get(transfer_id) is committed:
            del self._keyed[transfer_id]
        error = None if committed.cancelled() else committed.exception()
        if committed.cancelled() or error is not None:
            if self._stale:
                return  # a crash is already on its way for this failed batch
            self._stale = True  # the outcome is unknown: the next debit reloads first
            with contextlib.suppress(Exception):
                failure = error or asyncio.CancelledError()
                self.ref.tell(_CommitFailed(self._incarnation, failure))
        else:
            outcome = committed.result()
            if isinstance(outcome, AppliedGroup):  # duplicates give their part back
                self.available += sum(
                    transfer.amount
                    for transfer, member in zip(group, outcome.outcomes, strict=True)
                    if isinstance(member, Duplicate)
                )
            elif not isinstance(outcome, Applied):
                self.available += amount  # refused or a duplicate: give the reservation back
            if isinstance(outcome, Rejected):
                # The database refused what this actor approved: its bound was wrong (another
                # copy of this actor debits the wallet too, say during a failover). Reload.
                self._stale = True


async def _joined(original: asyncio.Future[Outcome], transfer_id: str) -> Outcome:
    """A retry's outcome: the original's refusal or failure, or, once it is committed, a
    Duplicate (the caller then answers with what the original stored under its key)."""
    outcome = await asyncio.shield(original)
    return Duplicate(transfer_id) if isinstance(outcome, Applied) else outcome


def _item(outcome: Outcome) -> ItemOutcome:
    if isinstance(outcome, Applied):
        return ItemOutcome(transfer=outcome.transfer)
    if isinstance(outcome, Duplicate):
        return ItemOutcome(duplicate=outcome.transfer_id)
    return ItemOutcome(error=outcome.error)


async def _each_answered(decided: list[ItemOutcome | asyncio.Future[Outcome]]) -> ManyOutcome:
    """Each transfer's outcome once every commit finished; a commit that failed (its outcome
    unknown) answers its transfers with that error."""
    outcomes: list[ItemOutcome] = []
    for item in decided:
        if isinstance(item, ItemOutcome):
            outcomes.append(item)
            continue
        try:
            outcomes.append(_item(await asyncio.shield(item)))
        except Exception as error:
            outcomes.append(ItemOutcome(error=error))
    return ManyOutcome(tuple(outcomes))


async def _group_answered(committed: asyncio.Future[GroupOutcome]) -> ManyOutcome:
    outcome = await asyncio.shield(committed)
    if isinstance(outcome, Rejected):
        return ManyOutcome(refused=outcome.error)
    return ManyOutcome(tuple(map(_item, outcome.outcomes)))
