"""Bank-account links: money moves to or from an account only once its holder proved control.

At signup the bank confirms that the account exists and that the name given is its holder's
(accents, case and punctuation aside), then sends two micro-deposits to it, as Stripe and
Plaid do. The holder sees them in their bank statement and types them in; the bank checks
them (a few tries per verification, and new verifications are throttled per user). Then the
account is linked, unless another user already linked it: one account backs one user unless
its holder approves another by e-mail.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Literal

import asyncpg

from transakt.bankapi.errors import BankRequestRejected
from transakt.bankapi.models import AccountVerification
from transakt.errors import (
    BankAccountInvalid,
    BankAccountNotLinked,
    BankAccountTaken,
    CurrencyMismatch,
    NotFound,
    ValidationFailed,
    VerificationFailed,
)
from transakt.gateway.asks import BankAsks
from transakt.ids import uuid4_hex
from transakt.models import BankLink, User
from transakt.services.throttle import Throttle
from transakt.storage import trust

__all__ = ["BankLinks"]

_MAX_KNOWN_LINKS = 200_000


class BankLinks:
    """Starts and checks micro-deposit verifications; says whose account may move money."""

    def __init__(self, pool: asyncpg.Pool, bank: BankAsks, throttle: Throttle) -> None:
        self._pool = pool
        self._bank = bank
        self._throttle = throttle
        # A link never goes back from "linked": those are remembered (user -> account, currency).
        self._linked: dict[str, tuple[str, str]] = {}

    def __repr__(self) -> str:
        return f"<BankLinks linked_known={len(self._linked)}>"

    async def status(self, user_id: str) -> BankLink:
        """The user's link."""
        link = await trust.bank_link(self._pool, user_id)
        if link is None:
            raise NotFound("no bank account on file")
        return link

    async def start(self, user: User, *, throttled: bool = True) -> BankLink:
        """Have the bank send two micro-deposits (again); the link's state after."""
        link = await self.status(user.id)
        if link.status == "linked":
            return link
        if throttled:
            await self._throttle.hit("bank_link_user", user.id)
        try:
            verification = await self._bank.start_verification(
                f"acv_{uuid4_hex()}", link.bank_account, user.name
            )
        except BankRequestRejected:
            # The bank no longer knows the account, or no longer in this name (closed or
            # renamed since sign-up): nothing the user can prove here.
            raise BankAccountInvalid(
                "the bank could not confirm this account in your name any more",
                field="bank_account",
            ) from None
        await self._record(user.id, verification, started=True)
        return await self.status(user.id)

    async def confirm(self, user: User, amounts: Sequence[int]) -> BankLink:
        """Check the two amounts the holder read in their statement; link when they match."""
        link = await self.status(user.id)
        if link.status == "linked":
            return link
        if link.verification_id is None:
            raise VerificationFailed(
                "no micro-deposits were sent yet: start a verification first", attempts_left=0
            )
        try:
            verification = await self._bank.confirm_verification(link.verification_id, amounts)
        except BankRequestRejected:
            raise VerificationFailed(
                "the bank no longer knows these deposits: start a new verification",
                attempts_left=0,
            ) from None
        await self._record(user.id, verification)
        if verification.status == "verified":
            if not await trust.mark_linked(self._pool, user.id, link.bank_account, user.email):
                raise BankAccountTaken(
                    "this bank account is linked to another user; its holder can approve "
                    "yours from their account"
                )
            return await self.status(user.id)
        if verification.status == "pending":
            raise VerificationFailed(
                "those are not the amounts the bank sent",
                field="amounts",
                attempts_left=verification.attempts_left,
            )
        why = "expired" if verification.status == "expired" else "has no tries left"
        raise VerificationFailed(
            f"this verification {why}: start a new one", field="amounts", attempts_left=0
        )

    async def approve(self, user: User, email: str) -> None:
        """Let the user with ``email`` link the same account as ``user`` (its holder)."""
        link = await self.status(user.id)
        if link.status != "linked":
            raise BankAccountNotLinked("link your own bank account before approving another user")
        if email == user.email:
            raise ValidationFailed("you cannot approve yourself", field="email")
        await trust.approve_link(self._pool, link.bank_account, email, user.id)

    async def linked_account(self, user_id: str, currency: str) -> str:
        """The user's linked account in ``currency``: what deposits and withdrawals move."""
        known = self._linked.get(user_id)
        if known is None:
            link = await self.status(user_id)
            if link.status != "linked":
                raise BankAccountNotLinked(
                    "link your bank account first: confirm the two small deposits the bank "
                    "sent to it",
                    bank_account_status=link.status,
                )
            if len(self._linked) >= _MAX_KNOWN_LINKS:
                self._linked.clear()
            known = self._linked[user_id] = (link.bank_account, link.currency)
        account, account_currency = known
        if account_currency != currency:
            raise CurrencyMismatch(
                f"your bank account holds {account_currency}, not {currency}", field="currency"
            )
        return account

    async def _record(
        self, user_id: str, verification: AccountVerification, *, started: bool = False
    ) -> None:
        status: Literal["failed", "pending"] = (
            "failed" if verification.status in ("failed", "expired") else "pending"
        )
        await trust.update_link(
            self._pool,
            user_id,
            status=status,
            verification_id=verification.id,
            attempts_left=verification.attempts_left,
            expires_at=_parse_time(verification.expires_at),
            started=_now() if started else None,
        )


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _now() -> datetime:
    return datetime.now(UTC)
