"""WalletActor: one virtual actor per wallet decides every debit, lock-free, in mailbox order.

It keeps a *lower bound* of the wallet's available balance: it loads the committed value and
subtracts each debit it approves. Credits arrive through other wallets' transfers and bank
settlements without passing through this actor, and they only ever raise the true balance, so an
approval from the lower bound is always safe. When the bound says no, the actor re-reads the
database before refusing. The database's CHECK constraint remains the last line of defence should
two copies of this actor ever run at once (a failover race).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any

from transakt.actors.ledger_writer import LedgerWriter
from transakt.errors import InsufficientFunds, NotFound
from transakt.runtime import Actor, Deferred
from transakt.storage.records import Applied, NewTransfer, Outcome, Rejected
from transakt.storage.repository import Repository


@dataclass(frozen=True, slots=True)
class Debit:
    """Approve and commit a transfer paid from this wallet (posted, or a pending hold)."""

    transfer: NewTransfer


@dataclass(frozen=True, slots=True)
class _CommitFailed:
    """Internal: a commit failed mid-way, so this actor's view may be wrong: crash and reload."""

    incarnation: object
    error: BaseException


class LedgerOutcomeUnknown(RuntimeError):
    """A commit failed mid-way: the actor restarts and reloads the truth from the database."""


class WalletActor(Actor):
    """Serialises the debits of one wallet; answers each when its transfer is durable."""

    def __init__(self, wallet_id: str, repository: Repository, writer: LedgerWriter) -> None:
        self.wallet_id = wallet_id
        self._repository = repository
        self._writer = writer
        self.exists = False
        self.available = 0
        self._stale = True
        # Tells this instance's notices from those of an instance that crashed before it.
        self._incarnation = object()
        # Approved debits whose commit has not finished, by their commit future.
        self._in_flight: dict[asyncio.Future[Outcome], int] = {}

    def __repr__(self) -> str:
        return (
            f"<WalletActor {self.wallet_id} available={self.available} in_flight={self.in_flight}>"
        )

    @property
    def in_flight(self) -> int:
        """Money approved by this actor and not yet committed (or refused) by the ledger."""
        return sum(self._in_flight.values())

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
        if isinstance(message, _CommitFailed):
            if message.incarnation is not self._incarnation:
                return None  # the previous instance's failure: this one loaded fresh state
            raise LedgerOutcomeUnknown(
                f"a commit of a debit from {self.wallet_id} failed: {message.error!r}"
            )
        raise TypeError(f"WalletActor cannot handle {type(message).__name__}")

    async def _debit(self, transfer: NewTransfer) -> Deferred[Outcome] | Rejected:
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
        self.available -= transfer.amount
        committed = self._writer.submit(transfer)
        self._in_flight[committed] = transfer.amount
        committed.add_done_callback(self._commit_finished)
        return Deferred(committed)

    def _commit_finished(self, committed: asyncio.Future[Outcome]) -> None:
        # A plain callback, not a message: the accounting can never be lost to a full mailbox.
        amount = self._in_flight.pop(committed, 0)
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
            if not isinstance(outcome, Applied):
                self.available += amount  # refused or a duplicate: give the reservation back
            if isinstance(outcome, Rejected):
                # The database refused what this actor approved: its bound was wrong (another
                # copy of this actor debits the wallet too, say during a failover). Reload.
                self._stale = True
