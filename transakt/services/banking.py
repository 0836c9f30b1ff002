"""BankingService: deposits and withdrawals, accepted once durable and settled by the bank.

Each is first committed as a pending transfer, which is also the durable record of the bank
request (its id is the id the bank sees). A deposit (settlement account -> wallet) is a credit,
so it goes straight to the ledger writer; a withdrawal (wallet -> settlement account) holds the
amount, so the wallet's actor approves it like any debit. Then the gateway takes over, and the
client gets its 202.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from async_lru import alru_cache

from transakt.errors import CurrencyMismatch, Forbidden, NotFound
from transakt.gateway.gateway import BankGateway
from transakt.models import Transfer
from transakt.money import parse_amount
from transakt.services.idempotency import IdempotencyKey, Replay
from transakt.services.wallets import (
    WalletService,
    idempotent_transfer_id,
    new_id,
    settlement_id,
)
from transakt.storage.bank_requests import BankRequest, BankRequestKind
from transakt.storage.records import Applied, IdempotencyRecord, NewTransfer, Outcome, Rejected
from transakt.storage.repository import Repository
from transakt.storage.writer import LedgerWriter

if TYPE_CHECKING:
    from transakt.services.bank_links import BankLinks
    from transakt.services.throttle import Throttle

__all__ = ["BankingService"]

# The status a deposit or withdrawal is accepted with: the bank has not answered yet.
ACCEPTED = 202


class BankingService:
    """Moves money between a user's wallet and their bank account, through the gateway."""

    def __init__(
        self,
        repository: Repository,
        wallets: WalletService,
        writer: LedgerWriter,
        gateway: BankGateway,
        links: BankLinks,
        throttle: Throttle,
    ) -> None:
        self._repository = repository
        self._wallets = wallets
        self._writer = writer
        self._gateway = gateway
        self._links = links
        self._throttle = throttle
        # A wallet's owner and currency never change, nor does a linked bank account (the
        # links remember those): accepting a request costs one commit and no reads.
        self._owner = alru_cache(maxsize=200_000)(repository.wallet_owner)

    def __repr__(self) -> str:
        return f"<BankingService gateway={self._gateway!r}>"

    async def deposit(
        self,
        user_id: str,
        wallet_id: str,
        amount: int,
        currency: str,
        idempotency: IdempotencyKey | None,
    ) -> Transfer | Replay:
        """Ask the bank to debit the user's account; the wallet is credited when it has."""
        return await self._request("deposit", user_id, wallet_id, amount, currency, idempotency)

    async def withdraw(
        self,
        user_id: str,
        wallet_id: str,
        amount: int,
        currency: str,
        idempotency: IdempotencyKey | None,
    ) -> Transfer | Replay:
        """Hold the amount now; it is paid out when the bank credits the user's account."""
        return await self._request("withdrawal", user_id, wallet_id, amount, currency, idempotency)

    async def _request(
        self,
        kind: BankRequestKind,
        user_id: str,
        wallet_id: str,
        amount: int,
        currency: str,
        idempotency: IdempotencyKey | None,
    ) -> Transfer | Replay:
        await self._throttle.hit("money_user", user_id)
        amount = parse_amount(amount)
        owner = await self._owner(wallet_id)
        if owner is None:
            raise NotFound("no such wallet", wallet=wallet_id)
        if owner.user_id != user_id:
            raise Forbidden("this wallet is not yours", wallet=wallet_id)
        if owner.currency != currency:
            raise CurrencyMismatch(
                f"the wallet holds {owner.currency}, not {currency}", field="currency"
            )
        # Only an account its holder proved control of, and only in its own currency.
        bank_account = await self._links.linked_account(user_id, currency)
        settlement = settlement_id(currency)
        transfer = NewTransfer(
            id=idempotent_transfer_id(user_id, idempotency.key) if idempotency else new_id("trf"),
            kind=kind,
            status="pending",
            from_account=settlement if kind == "deposit" else wallet_id,
            to_account=wallet_id if kind == "deposit" else settlement,
            amount=amount,
            currency=currency,
            memo=None,
            initiator_id=user_id,
            idempotency=(
                IdempotencyRecord(user_id, idempotency.key, idempotency.request_hash)
                if idempotency
                else None
            ),
            response_status=ACCEPTED,
        )
        outcome: Outcome
        if kind == "deposit":
            outcome = await self._writer.submit(transfer)
        else:
            outcome = await self._wallets.debit(transfer)
        if isinstance(outcome, Rejected):
            raise outcome.error
        if isinstance(outcome, Applied):
            # Acknowledged means durable: the pending row is committed, so the gateway (or, after
            # a crash, its sweep) will carry the request to the bank.
            self._gateway.submit(BankRequest(transfer.id, kind, bank_account, amount, currency))
            return outcome.transfer
        return await self._wallets.answer_duplicate(user_id, idempotency, outcome.transfer_id)
