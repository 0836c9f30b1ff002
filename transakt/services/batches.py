"""Batch transfers: up to 1,000 payments from one wallet in one request.

The batch is decided by the paying wallet's actor in one message (``DebitMany``), so its
debits are serialised with every other payment of that wallet, and committed by the group-commit
writer like any payment: ``atomic`` batches as one group in one transaction (all or none),
independent ones transfer by transfer, each answered in order. Every transfer writes the same
outbox event as a single payment, so live feeds and e-mails follow as they do for those.

Ids: a transfer with a ``reference`` gets an id derived from (user, reference), so a reference
pays once, whichever batch carries it; without one, a keyed batch derives each id from (user,
key, position), so a retried batch cannot pay twice; otherwise ids are fresh.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import asyncpg

from transakt.actors.wallet import DebitMany, ItemOutcome, ManyOutcome, WalletActor
from transakt.errors import (
    CurrencyMismatch,
    DomainError,
    IdempotencyKeyReused,
    NotFound,
    RecipientUnverified,
    ValidationFailed,
)
from transakt.models import Transfer
from transakt.runtime import ActorSystem
from transakt.services.idempotency import IdempotencyKey
from transakt.services.wallets import WalletService, idempotent_transfer_id, new_id
from transakt.storage.batches import recipients_by_email, transfers_by_id, wallet_owners
from transakt.storage.records import NewTransfer

__all__ = ["MAX_BATCH", "BatchItem", "BatchRequest", "BatchResult", "BatchService", "ItemResult"]

#: The most transfers one batch may carry.
MAX_BATCH: Final = 1_000

_UNVERIFIED: Final = "this person has not verified their e-mail address, so it cannot be paid"


@dataclass(frozen=True, slots=True)
class BatchItem:
    """One payment of a batch, as the client asked for it (validated for shape)."""

    to_wallet: str | None
    to_email: str | None
    amount: int
    memo: str | None = None
    reference: str | None = None


@dataclass(frozen=True, slots=True)
class BatchRequest:
    """Payments from one wallet: ``atomic`` (all or none) or each on its own."""

    from_wallet: str
    currency: str
    atomic: bool
    items: tuple[BatchItem, ...]


@dataclass(frozen=True, slots=True)
class ItemResult:
    """A payment's outcome: the transfer made (or made before, under its reference), or why
    it was refused."""

    index: int
    reference: str | None
    transfer: Transfer | None = None
    error: DomainError | None = None


@dataclass(frozen=True, slots=True)
class BatchResult:
    """Every payment's outcome, in the batch's order."""

    atomic: bool
    items: tuple[ItemResult, ...]

    @property
    def applied(self) -> int:
        """How many payments were made."""
        return sum(1 for item in self.items if item.transfer is not None)


class BatchService:
    """Decides and commits batches through the paying wallet's actor."""

    def __init__(
        self,
        wallets: WalletService,
        pool: asyncpg.Pool,
        system: ActorSystem,
        *,
        request_timeout: float = 30.0,
    ) -> None:
        self._wallets = wallets
        self._pool = pool
        self._system = system
        self._request_timeout = request_timeout

    async def transfer_batch(
        self, user_id: str, request: BatchRequest, idempotency: IdempotencyKey | None
    ) -> BatchResult:
        """Make the batch's payments; an atomic batch that cannot make them all makes none and
        raises the refusal (naming the payment at fault with ``index``)."""
        if not 1 <= len(request.items) <= MAX_BATCH:
            raise ValidationFailed(f"a batch carries 1 to {MAX_BATCH} transfers", field="transfers")
        await self._wallets.owned_wallet(user_id, request.from_wallet, request.currency)
        targets = await self._targets(request)
        transfers: list[NewTransfer] = []
        positions: list[int] = []  # the item each transfer is for
        refused: dict[int, DomainError] = {}
        for index, (item, target) in enumerate(zip(request.items, targets, strict=True)):
            if isinstance(target, DomainError):
                if request.atomic:
                    raise _at(target, index, item)
                refused[index] = target
                continue
            transfers.append(self._transfer(user_id, idempotency, request, index, item, target))
            positions.append(index)
        decided = await self._decide(request, transfers)
        if decided.refused is not None:  # atomic: none applied (or the wallet refused all)
            raise decided.refused
        outcomes = dict(zip(positions, decided.outcomes, strict=True))
        previous = await self._previous(outcomes)
        results: list[ItemResult] = []
        for index, item in enumerate(request.items):
            if index in refused:
                results.append(ItemResult(index, item.reference, error=refused[index]))
                continue
            results.append(
                self._result(user_id, index, item, outcomes[index], previous, request.currency)
            )
        return BatchResult(request.atomic, tuple(results))

    # -- steps -------------------------------------------------------------------------------

    async def _targets(self, request: BatchRequest) -> list[str | DomainError]:
        """Each payment's recipient wallet, or why it has none (two statements at most)."""
        currency = request.currency
        wallet_ids = {item.to_wallet for item in request.items if item.to_wallet is not None}
        emails = {item.to_email for item in request.items if item.to_email is not None}
        owners = await wallet_owners(self._pool, wallet_ids) if wallet_ids else {}
        by_email = await recipients_by_email(self._pool, emails, currency) if emails else {}
        targets: list[str | DomainError] = []
        for item in request.items:
            target: str | DomainError
            if (item.to_wallet is None) == (item.to_email is None):
                target = ValidationFailed(
                    "give exactly one of to_wallet and to_email", fields=["to_wallet", "to_email"]
                )
            elif item.to_wallet is not None:
                owner = owners.get(item.to_wallet)
                if owner is None:
                    target = NotFound("no such wallet", field="to_wallet", wallet=item.to_wallet)
                elif owner.currency != currency:
                    target = CurrencyMismatch(
                        f"to_wallet holds {owner.currency}, not {currency}", field="to_wallet"
                    )
                else:
                    target = item.to_wallet
            else:
                assert item.to_email is not None
                found = by_email.get(item.to_email)
                if found is None:
                    target = NotFound("no user has this e-mail", field="to_email")
                elif not found[0]:
                    target = RecipientUnverified(_UNVERIFIED, field="to_email")
                elif found[1] is None:
                    target = CurrencyMismatch(
                        f"the recipient has no {currency} wallet", field="currency"
                    )
                else:
                    target = found[1]
            if target == request.from_wallet:
                target = ValidationFailed("a wallet cannot pay itself", field="to_wallet")
            targets.append(target)
        return targets

    @staticmethod
    def _transfer(
        user_id: str,
        idempotency: IdempotencyKey | None,
        request: BatchRequest,
        index: int,
        item: BatchItem,
        target: str,
    ) -> NewTransfer:
        if item.reference is not None:
            transfer_id = idempotent_transfer_id(user_id, "\x00reference\x00" + item.reference)
        elif idempotency is not None:
            transfer_id = idempotent_transfer_id(user_id, f"{idempotency.key}\x00{index}")
        else:
            transfer_id = new_id("trf")
        return NewTransfer(
            id=transfer_id,
            kind="p2p",
            status="posted",
            from_account=request.from_wallet,
            to_account=target,
            amount=item.amount,
            currency=request.currency,
            memo=item.memo,
            initiator_id=user_id,
        )

    async def _decide(self, request: BatchRequest, transfers: list[NewTransfer]) -> ManyOutcome:
        if not transfers:  # independent, and every payment refused before reaching the wallet
            return ManyOutcome()
        wallet = self._system.entity(WalletActor, request.from_wallet)
        outcome: ManyOutcome = await wallet.ask(
            DebitMany(tuple(transfers), request.atomic), timeout=self._request_timeout
        )
        for item in outcome.outcomes:
            error = item.error
            if error is not None and not (isinstance(error, DomainError) and error.decided):
                # The commit's outcome is unknown (or the node is shedding load): nothing is
                # answered, so the client retries; with its key or references, what did commit
                # is then found, never made twice.
                raise error
        return outcome

    async def _previous(self, outcomes: dict[int, ItemOutcome]) -> dict[str, Transfer]:
        """The transfers that existed already (a retried batch, a reference used before)."""
        ids = [item.duplicate for item in outcomes.values() if item.duplicate is not None]
        return await transfers_by_id(self._pool, ids) if ids else {}

    @staticmethod
    def _result(
        user_id: str,
        index: int,
        item: BatchItem,
        outcome: ItemOutcome,
        previous: dict[str, Transfer],
        currency: str,
    ) -> ItemResult:
        if outcome.transfer is not None:
            return ItemResult(index, item.reference, transfer=outcome.transfer)
        if outcome.duplicate is not None:
            made = previous.get(outcome.duplicate)
            if (
                made is not None
                and made.initiator_id == user_id
                and made.amount == item.amount
                and made.currency == currency
            ):
                return ItemResult(index, item.reference, transfer=made)
            reused = IdempotencyKeyReused(
                "this reference was used for another payment", field="reference"
            )
            return ItemResult(index, item.reference, error=reused)
        error = outcome.error
        if not isinstance(error, DomainError):  # _decide raised every other kind
            error = ValidationFailed(str(error))
        return ItemResult(index, item.reference, error=error)


def _at(error: DomainError, index: int, item: BatchItem) -> DomainError:
    """The refusal of an atomic batch, naming the payment at fault."""
    details: dict[str, Any] = error.details
    details["index"] = index
    if item.reference is not None:
        details["reference"] = item.reference
    return error
