"""The bank's records, shared by its server and its client: accounts and transfer outcomes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, cast

TransferDirection = Literal["debit", "credit"]
TransferStatus = Literal["completed", "rejected"]

DIRECTIONS: tuple[TransferDirection, ...] = ("debit", "credit")


@dataclass(frozen=True, slots=True)
class BankAccount:
    """A bank account; ``balance`` is None where the answer does not show it (verify-user).

    ``name_matches`` answers verify-user called with a name: does it match the holder's?
    """

    account: str
    name: str
    currency: str
    balance: int | None = None
    name_matches: bool | None = None

    def to_json(self) -> dict[str, Any]:
        """The wire shape; verify-user answers leave the balance out."""
        body: dict[str, Any] = {
            "account": self.account,
            "name": self.name,
            "currency": self.currency,
        }
        if self.balance is not None:
            body["balance"] = self.balance
        if self.name_matches is not None:
            body["name_matches"] = self.name_matches
        return body

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> BankAccount:
        """Build from the bank's answer."""
        balance = body.get("balance")
        name_matches = body.get("name_matches")
        return cls(
            account=str(body["account"]),
            name=str(body["name"]),
            currency=str(body["currency"]),
            balance=int(balance) if balance is not None else None,
            name_matches=bool(name_matches) if name_matches is not None else None,
        )


@dataclass(frozen=True, slots=True)
class BankTransferResult:
    """The stored outcome of one transfer id: applied (completed) or refused with a reason."""

    id: str
    status: TransferStatus
    account: str
    direction: TransferDirection
    amount: int
    currency: str
    reason: str | None = None

    @property
    def completed(self) -> bool:
        """True when the money moved."""
        return self.status == "completed"

    def to_json(self) -> dict[str, Any]:
        """The wire shape: ``reason`` only on a rejection."""
        body: dict[str, Any] = {
            "id": self.id,
            "status": self.status,
            "account": self.account,
            "direction": self.direction,
            "amount": self.amount,
            "currency": self.currency,
        }
        if self.reason is not None:
            body["reason"] = self.reason
        return body

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> BankTransferResult:
        """Build from the bank's answer."""
        status = body["status"]
        direction = body["direction"]
        if status not in ("completed", "rejected") or direction not in DIRECTIONS:
            raise ValueError(f"unexpected transfer answer: {body!r}")
        reason = body.get("reason")
        return cls(
            id=str(body["id"]),
            status=cast(TransferStatus, status),
            account=str(body["account"]),
            direction=cast(TransferDirection, direction),
            amount=int(body["amount"]),
            currency=str(body["currency"]),
            reason=str(reason) if reason is not None else None,
        )


@dataclass(frozen=True, slots=True)
class TransferRequest:
    """What the wallet asks: move ``amount`` into (credit) or out of (debit) ``account``."""

    id: str
    account: str
    direction: TransferDirection
    amount: int
    currency: str

    def matches(self, outcome: BankTransferResult) -> bool:
        """True when a stored outcome was made from this same request (a true replay)."""
        return (
            outcome.id == self.id
            and outcome.account == self.account
            and outcome.direction == self.direction
            and outcome.amount == self.amount
            and outcome.currency == self.currency
        )
