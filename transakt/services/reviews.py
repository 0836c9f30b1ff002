"""Fraud review: held payments, the operators who decide them, and what the parties see.

A payment that trips a review rule (judged by the payer's wallet actor, see
``transakt.actors.limits``) is a pending P2P transfer: its amount is held from the payer and
shown to the payee as pending. An operator approves it (the transfer is posted: the money
moves) or rejects it (voided: the hold is released), with a note; the decision, who made it and
when are recorded with the settlement, in one transaction, and a decision is final.

The payer sees ``review: {status, reasons}`` on the transfer; the payee sees the status only.
Nobody but operators sees a rule's thresholds: the reasons are codes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import asyncpg

from transakt.errors import Forbidden, NotFound, ReviewDecided
from transakt.models import Transfer, rfc3339
from transakt.runtime import ActorSystem
from transakt.services.history import parse_seq_cursor
from transakt.services.limits import tell_spending_changed
from transakt.services.wallets import WalletService
from transakt.storage.reviews import (
    Decided,
    OwnPayment,
    ReviewRecord,
    SettlementRefused,
    is_operator,
    open_reviews,
    record_decision,
    reviews_of,
)

__all__ = ["REJECTED_REASON", "Decision", "ReviewPage", "ReviewService", "ReviewedTransfer"]

#: The reason a rejected payment's transfer carries (and its payer's mail says).
REJECTED_REASON = "declined after review"
_PUBLIC_STATUS = {"open": "under_review", "approved": "approved", "rejected": "rejected"}


def review_json(review: ReviewRecord, *, reasons: bool, decision: bool = False) -> dict[str, Any]:
    """The review as a party sees it (reasons for the payer) or an operator (the decision)."""
    body: dict[str, Any] = {"status": _PUBLIC_STATUS[review.status]}
    if reasons:
        body["reasons"] = review.reasons
    if review.decided_at is not None:
        body["decided_at"] = rfc3339(review.decided_at)
    if decision:
        body["held_at"] = rfc3339(review.created_at)
        body["decided_by"] = review.decided_by
        body["note"] = review.note
    return body


@dataclass(frozen=True, slots=True)
class ReviewedTransfer:
    """A transfer with its review, as one of its parties sees it."""

    transfer: Transfer
    review: dict[str, Any]
    #: 202 for a payment just held (it is not posted), else the view's own status.
    http_status: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The contract's transfer shape plus ``review``."""
        return {**self.transfer.to_json(), "review": self.review}


@dataclass(frozen=True, slots=True)
class Decision:
    """An operator's decision: the settled transfer and the review as recorded."""

    transfer: Transfer
    review: ReviewRecord

    def to_json(self) -> dict[str, Any]:
        """``{transfer, review}``."""
        return {
            "transfer": self.transfer.to_json(),
            "review": review_json(self.review, reasons=True, decision=True),
        }


@dataclass(frozen=True, slots=True)
class ReviewPage:
    """A page of the review queue."""

    items: list[tuple[Transfer, ReviewRecord]]
    next_cursor: str | None

    def to_json(self) -> dict[str, Any]:
        """``{items: [{transfer, review}], next_cursor}``."""
        return {
            "items": [
                {
                    "transfer": transfer.to_json(),
                    "review": review_json(review, reasons=True, decision=True),
                }
                for transfer, review in self.items
            ],
            "next_cursor": self.next_cursor,
        }


def _cursor(raw: str | None) -> int:
    return parse_seq_cursor(raw, "r") if raw else 0


class ReviewService:
    """The review queue and decisions (operators only), and reviews shown on transfers."""

    def __init__(self, wallets: WalletService, pool: asyncpg.Pool, system: ActorSystem) -> None:
        self._wallets = wallets
        self._pool = pool
        self._system = system

    async def require_operator(self, user_id: str) -> None:
        """Forbidden unless the user is an operator."""
        if not await is_operator(self._pool, user_id):
            raise Forbidden("only operators review held payments")

    async def queue(
        self,
        user_id: str,
        status: Literal["open", "decided"],
        limit: int,
        cursor: str | None,
    ) -> ReviewPage:
        """Held payments waiting for a decision (or decided ones), oldest first."""
        await self.require_operator(user_id)
        items, next_seq = await open_reviews(self._pool, status, _cursor(cursor), limit)
        return ReviewPage(items, None if next_seq is None else f"r{next_seq}")

    async def decide(
        self,
        user_id: str,
        transfer_id: str,
        decision: Literal["approved", "rejected"],
        note: str,
    ) -> Decision:
        """Approve (post) or reject (void) a held payment; final, and recorded with its note."""
        await self.require_operator(user_id)
        reason = REJECTED_REASON if decision == "rejected" else None
        try:
            result = await record_decision(self._pool, transfer_id, decision, user_id, note, reason)
        except SettlementRefused:
            raise ReviewDecided("this payment is no longer held", transfer=transfer_id) from None
        if result is None:
            raise NotFound("no held payment has this id", transfer=transfer_id)
        if isinstance(result, OwnPayment):
            raise Forbidden("an operator does not decide a payment they are a party to")
        if isinstance(result, Decided):
            raise ReviewDecided(
                f"this payment was {result.review.status} already; a decision is final",
                transfer=transfer_id,
                decision=result.review.status,
                decided_at=rfc3339(result.review.decided_at),
            )
        transfer, review = result
        if decision == "rejected":
            # The voided amount no longer counts against the payer's limits.
            await tell_spending_changed(self._system, transfer.from_wallet)
        return Decision(transfer, review)

    # -- what the parties see ----------------------------------------------------------------

    async def held(self, user_id: str, transfer: Transfer) -> Transfer | ReviewedTransfer:
        """A payment just made: when it was held, with its review (and 202)."""
        if transfer.kind != "p2p" or transfer.status != "pending":
            return transfer
        shown = await self.shown(user_id, [transfer])
        found = shown[0]
        if isinstance(found, ReviewedTransfer):
            return ReviewedTransfer(found.transfer, found.review, http_status=202)
        return ReviewedTransfer(transfer, {"status": "under_review"}, http_status=202)

    async def shown(
        self, user_id: str, transfers: Sequence[Transfer]
    ) -> list[Transfer | ReviewedTransfer]:
        """The transfers as ``user_id`` sees them: P2P ones that were held carry their review
        (reasons only for the payer). One query, for the P2P transfers among them."""
        p2p = [transfer.id for transfer in transfers if transfer.kind == "p2p"]
        reviews = await reviews_of(self._pool, p2p) if p2p else {}
        shown: list[Transfer | ReviewedTransfer] = []
        for transfer in transfers:
            review = reviews.get(transfer.id)
            if review is None and not (transfer.kind == "p2p" and transfer.status == "pending"):
                shown.append(transfer)
                continue
            if review is None:
                shown.append(ReviewedTransfer(transfer, {"status": "under_review"}))
                continue
            payer = await self._is_payer(user_id, transfer)
            shown.append(ReviewedTransfer(transfer, review_json(review, reasons=payer)))
        return shown

    async def _is_payer(self, user_id: str, transfer: Transfer) -> bool:
        if transfer.initiator_id == user_id:
            return True
        try:
            await self._wallets.owned_wallet(user_id, transfer.from_wallet)
        except (NotFound, Forbidden):
            return False
        return True
