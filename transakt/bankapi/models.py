"""The bank's records, shared by its server and its client: accounts, transfer outcomes,
account verifications and the holder's statement."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, cast

TransferDirection = Literal["debit", "credit"]
TransferStatus = Literal["completed", "rejected"]
VerificationStatus = Literal["pending", "verified", "failed", "expired"]

DIRECTIONS: tuple[TransferDirection, ...] = ("debit", "credit")
VERIFICATION_STATUSES: tuple[VerificationStatus, ...] = (
    "pending",
    "verified",
    "failed",
    "expired",
)


@dataclass(frozen=True, slots=True)
class BankAccount:
    """A bank account; ``balance`` is None where the answer does not show it (verify-user).

    ``name_matches`` answers verify-user called with a name: does it match the holder's?
    ``passcode`` is the holder's online-banking passcode, known only to whoever opened the
    account (the bank answers it once, on creation); it is a credential, not part of the
    account's identity, so it neither takes part in equality nor shows in ``repr``.
    """

    account: str
    name: str
    currency: str
    balance: int | None = None
    name_matches: bool | None = None
    passcode: str | None = field(default=None, compare=False, repr=False)

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
        if self.passcode is not None:
            body["passcode"] = self.passcode
        return body

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> BankAccount:
        """Build from the bank's answer."""
        balance = body.get("balance")
        name_matches = body.get("name_matches")
        passcode = body.get("passcode")
        return cls(
            account=str(body["account"]),
            name=str(body["name"]),
            currency=str(body["currency"]),
            balance=int(balance) if balance is not None else None,
            name_matches=bool(name_matches) if name_matches is not None else None,
            passcode=str(passcode) if passcode is not None else None,
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


@dataclass(frozen=True, slots=True)
class AccountVerification:
    """Proof of control of an account by micro-deposits, as the bank keeps it.

    ``name`` is the holder's name as the bank holds it; ``expires_at`` is RFC 3339 in UTC
    (``2026-12-03T13:37:39.123Z``). The amounts sent are never part of it.
    """

    id: str
    account: str
    name: str
    currency: str
    status: VerificationStatus
    attempts_left: int
    expires_at: str

    @property
    def verified(self) -> bool:
        """True once the holder has typed the right amounts."""
        return self.status == "verified"

    def to_json(self) -> dict[str, Any]:
        """The wire shape of the account-verification endpoints."""
        return {
            "id": self.id,
            "account": self.account,
            "name": self.name,
            "currency": self.currency,
            "status": self.status,
            "attempts_left": self.attempts_left,
            "expires_at": self.expires_at,
        }

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> AccountVerification:
        """Build from the bank's answer."""
        status = body["status"]
        if status not in VERIFICATION_STATUSES:
            raise ValueError(f"unexpected verification status: {status!r}")
        return cls(
            id=str(body["id"]),
            account=str(body["account"]),
            name=str(body["name"]),
            currency=str(body["currency"]),
            status=cast(VerificationStatus, status),
            attempts_left=int(body["attempts_left"]),
            expires_at=str(body["expires_at"]),
        )


@dataclass(frozen=True, slots=True)
class StatementEntry:
    """One line of the holder's statement: ``amount`` is signed (+ money in, - money out)."""

    id: str
    at: str
    description: str
    amount: int

    def to_json(self) -> dict[str, Any]:
        """The wire shape of one statement entry."""
        return {
            "id": self.id,
            "at": self.at,
            "description": self.description,
            "amount": self.amount,
        }

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> StatementEntry:
        """Build from the bank's answer."""
        return cls(
            id=str(body["id"]),
            at=str(body["at"]),
            description=str(body["description"]),
            amount=int(body["amount"]),
        )


@dataclass(frozen=True, slots=True)
class Statement:
    """What the holder sees in online banking: the balance and the newest entries first."""

    account: str
    name: str
    currency: str
    balance: int
    entries: tuple[StatementEntry, ...]

    def to_json(self) -> dict[str, Any]:
        """The wire shape of GET /online/v1/statement."""
        return {
            "account": self.account,
            "name": self.name,
            "currency": self.currency,
            "balance": self.balance,
            "entries": [entry.to_json() for entry in self.entries],
        }

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> Statement:
        """Build from the bank's answer."""
        entries = body["entries"]
        if not isinstance(entries, list):
            raise ValueError("statement entries must be a list")
        return cls(
            account=str(body["account"]),
            name=str(body["name"]),
            currency=str(body["currency"]),
            balance=int(body["balance"]),
            entries=tuple(StatementEntry.from_json(entry) for entry in entries),
        )
