"""BankAsks: the bank calls a person waits for (signup's account check, the micro-deposit proof).

They share the gateway's circuit breaker, so an outage seen by one is seen by both, but none of
its buffer: a person at a form cannot wait for the bank to come back, so a call that cannot be
made now is ``BankUnavailable`` (503 with Retry-After) at once, and the form is sent again later.
Money requests go through ``BankGateway`` instead, which buffers what must wait.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final, TypeVar

from transakt.bankapi.errors import BankRequestRejected
from transakt.bankapi.models import AccountVerification
from transakt.errors import BankUnavailable
from transakt.gateway.breaker import CallTimedOut, CircuitBreaker, CircuitOpen
from transakt.gateway.client import BankClient

__all__ = ["PERMANENT_STATUSES", "BankAsks", "VerifiedAccount"]

T = TypeVar("T")

#: The bank looked at the request itself and refused it: it will never apply this id.
PERMANENT_STATUSES: Final = frozenset({400, 409, 422})


@dataclass(frozen=True, slots=True)
class VerifiedAccount:
    """What the bank says about an account at signup, and whether the name is its holder's."""

    account: str
    name: str
    currency: str
    name_matches: bool = False


class BankAsks:
    """Account checks and verifications, through the breaker the gateway uses too."""

    def __init__(self, bank: BankClient, breaker: CircuitBreaker) -> None:
        self._bank = bank
        self.breaker = breaker

    def __repr__(self) -> str:
        return f"<BankAsks breaker={self.breaker.state.value}>"

    async def verify(self, account: str, name: str) -> VerifiedAccount | None:
        """The bank's view of a signup account; None if unknown, BankUnavailable if down."""
        found = await self._ask(lambda: self._bank.verify_user(account, name=name))
        if found is None:
            return None
        return VerifiedAccount(
            account=found.account,
            name=found.name,
            currency=found.currency,
            name_matches=bool(found.name_matches),
        )

    async def start_verification(
        self, verification_id: str, account: str, name: str
    ) -> AccountVerification:
        """Have the bank send its two micro-deposits to the account (once per id)."""
        return await self._ask(
            lambda: self._bank.start_verification(verification_id, account, name)
        )

    async def confirm_verification(
        self, verification_id: str, amounts: Sequence[int]
    ) -> AccountVerification:
        """Ask the bank whether these are the amounts it sent (one try of a few)."""
        return await self._ask(lambda: self._bank.confirm_verification(verification_id, amounts))

    async def _ask(self, call: Callable[[], Awaitable[T]]) -> T:
        """One call that a person waits for, through the breaker: BankUnavailable if it cannot
        be made now; the bank's refusal of the request itself (a 4xx) raised as it came."""
        try:
            return await self.breaker.call(call)
        except CircuitOpen as error:
            raise BankUnavailable(
                "the bank is unavailable (circuit open)", retry_after=max(error.retry_after, 1.0)
            ) from None
        except (BankUnavailable, CallTimedOut) as error:
            retry_after = self.breaker.retry_after() or getattr(error, "retry_after", 5.0)
            raise BankUnavailable(str(error), retry_after=max(retry_after, 1.0)) from None
        except BankRequestRejected as error:
            if error.status in PERMANENT_STATUSES or error.status == 404:
                raise
            raise BankUnavailable(f"the bank refused the gateway: {error}") from None
