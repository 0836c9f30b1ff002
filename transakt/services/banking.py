"""BankingService: deposits and withdrawals, accepted once durable and settled by the bank.

Each is first committed as a pending transfer, which is also the durable record of the bank
request (its id is the id the bank sees). A deposit (settlement account -> wallet) is a credit,
so it goes straight to the ledger writer; a withdrawal (wallet -> settlement account) holds the
amount, so the wallet's actor approves it like any debit. Then the gateway takes over, and the
client gets its 202.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from transakt.gateway.gateway import BankGateway
from transakt.models import BankRequestKind, Transfer
from transakt.money import parse_amount
from transakt.services.idempotency import IdempotencyKey, Replay
from transakt.services.wallets import WalletService, new_transfer, settlement_id
from transakt.storage.bank_requests import BankRequest
from transakt.storage.records import Applied, Outcome, Rejected
from transakt.storage.writer import LedgerWriter

if TYPE_CHECKING:
    from transakt.services.bank_links import BankLinks
    from transakt.services.throttle import Throttle

__all__ = ["DEPOSIT", "WITHDRAWAL", "BankMove", "BankingService"]

# The status a deposit or withdrawal is accepted with: the bank has not answered yet.
ACCEPTED = 202


@dataclass(frozen=True, slots=True)
class BankMove:
    """Which way money moves between a wallet and the bank, and what that takes.

    Into the wallet (a deposit) is a credit: it needs nobody's approval and goes straight to
    the ledger writer. Out of the wallet (a withdrawal) holds the amount, so the wallet's
    actor approves it like any debit.
    """

    kind: BankRequestKind
    into_wallet: bool

    def legs(self, wallet_id: str, settlement: str) -> tuple[str, str]:
        """(from, to) accounts of the pending transfer."""
        return (settlement, wallet_id) if self.into_wallet else (wallet_id, settlement)


DEPOSIT = BankMove("deposit", into_wallet=True)
WITHDRAWAL = BankMove("withdrawal", into_wallet=False)


class BankingService:
    """Moves money between a user's wallet and their bank account, through the gateway."""

    def __init__(
        self,
        wallets: WalletService,
        writer: LedgerWriter,
        gateway: BankGateway,
        links: BankLinks,
        throttle: Throttle,
    ) -> None:
        self._wallets = wallets
        self._writer = writer
        self._gateway = gateway
        self._links = links
        self._throttle = throttle

    def __repr__(self) -> str:
        return f"<BankingService gateway={self._gateway!r}>"

    async def request(
        self,
        move: BankMove,
        user_id: str,
        wallet_id: str,
        amount: int,
        currency: str,
        idempotency: IdempotencyKey | None,
    ) -> Transfer | Replay:
        """Commit the move as a pending transfer, then hand it to the gateway (202 territory):
        a deposit asks the bank to debit the account, a withdrawal holds the amount now."""
        await self._throttle.hit("money_user", user_id)
        amount = parse_amount(amount)
        await self._wallets.owned_wallet(user_id, wallet_id, currency)
        # Only an account its holder proved control of, and only in its own currency.
        bank_account = await self._links.linked_account(user_id, currency)
        from_account, to_account = move.legs(wallet_id, settlement_id(currency))
        transfer = new_transfer(
            user_id,
            idempotency,
            kind=move.kind,
            status="pending",
            from_account=from_account,
            to_account=to_account,
            amount=amount,
            currency=currency,
            memo=None,
            response_status=ACCEPTED,
        )
        outcome: Outcome
        if move.into_wallet:
            outcome = await self._writer.submit(transfer)
        else:
            outcome = await self._wallets.debit(transfer)
        if isinstance(outcome, Rejected):
            raise outcome.error
        if isinstance(outcome, Applied):
            # Acknowledged means durable: the pending row is committed, so the gateway (or, after
            # a crash, its sweep) will carry the request to the bank.
            request = BankRequest(transfer.id, move.kind, bank_account, amount, currency)
            self._gateway.submit(request)
            return outcome.transfer
        return await self._wallets.answer_duplicate(user_id, idempotency, outcome.transfer_id)
