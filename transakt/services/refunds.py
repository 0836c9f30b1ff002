"""Refunds: the payee of a posted payment pays it back, in full or in parts.

A refund is a P2P transfer from the payee's wallet to the payer's, decided by the payee's
wallet actor like any payment (so it needs the money in the payee's wallet) and linked to the
payment by its id; the database refuses refunds that would add up to more than the payment
(migration 0011), whichever node or retry writes them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Final

import asyncpg

from transakt.errors import Forbidden, NotFound, RefundRefused
from transakt.ids import uuid4_hex
from transakt.models import Transfer
from transakt.services.idempotency import IdempotencyKey
from transakt.services.wallets import WalletService
from transakt.storage.records import Applied, NewTransfer, Rejected
from transakt.storage.refunds import refund_id, refunded, refunds_of

__all__ = ["Refund", "RefundService"]

# Refund ids derived from (user, Idempotency-Key) live in their own UUID namespace.
_REFUND_IDS: Final = uuid.UUID("0b6f8e2a-3c4d-5e6f-9a1b-2c3d4e5f6a7b")


@dataclass(frozen=True, slots=True)
class Refund:
    """A refund and the payment it pays back."""

    transfer: Transfer
    refund_of: str

    def to_json(self) -> dict[str, Any]:
        """The transfer's shape, plus the payment it refunds."""
        return {**self.transfer.to_json(), "refund_of": self.refund_of}


class RefundService:
    """Refunds through the payee's wallet actor."""

    def __init__(self, wallets: WalletService, pool: asyncpg.Pool) -> None:
        self._wallets = wallets
        self._pool = pool

    async def refund(
        self,
        user_id: str,
        transfer_id: str,
        amount: int | None,
        memo: str | None,
        idempotency: IdempotencyKey | None,
    ) -> Refund:
        """Pay back ``amount`` of a posted payment to the user (all that is left by default)."""
        original = await self._wallets.get_transfer(user_id, transfer_id)  # 404 to strangers
        try:
            await self._wallets.owned_wallet(user_id, original.to_wallet)
        except (Forbidden, NotFound):
            raise Forbidden("only the payee can refund a payment", transfer=transfer_id) from None
        if original.kind != "p2p" or original.status != "posted" or original.id.startswith("rfd:"):
            raise RefundRefused("only a posted payment can be refunded", transfer=transfer_id)
        left = original.amount - await refunded(self._pool, original.id)
        if amount is None:
            amount = left
        if amount <= 0 or amount > left:
            raise RefundRefused(
                "refunds of a payment never add up to more than the payment",
                transfer=transfer_id,
                refundable=max(left, 0),
            )
        if idempotency is None:
            suffix = uuid4_hex()
        else:
            suffix = uuid.uuid5(_REFUND_IDS, f"{user_id}\x00{idempotency.key}").hex
        refund = NewTransfer(
            id=refund_id(original.id, suffix),
            kind="p2p",
            status="posted",
            from_account=original.to_wallet,
            to_account=original.from_wallet,
            amount=amount,
            currency=original.currency,
            memo=memo if memo is not None else f"Refund of {original.id}",
            initiator_id=user_id,
        )
        outcome = await self._wallets.debit(refund)
        if isinstance(outcome, Applied):
            return Refund(outcome.transfer, original.id)
        if isinstance(outcome, Rejected):
            raise outcome.error
        # Made already: this request's retry (its key derives the same id) whose first answer
        # was never recorded; the refund as committed is the answer.
        made = await self._wallets.get_transfer(user_id, outcome.transfer_id)
        return Refund(made, original.id)

    async def refunds(self, user_id: str, transfer_id: str) -> list[Transfer]:
        """The refunds of a payment the user is a party to."""
        original = await self._wallets.get_transfer(user_id, transfer_id)
        return await refunds_of(self._pool, original.id)
