"""The domain's records as the API shows them: users, wallets, transfers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Literal

TransferKind = Literal["p2p", "deposit", "withdrawal"]
BankRequestKind = Literal["deposit", "withdrawal"]
LinkStatus = Literal["pending", "linked", "failed"]
TransferStatus = Literal["pending", "posted", "voided"]


def rfc3339(moment: datetime | None) -> str | None:
    """Format a timestamp as an RFC 3339 UTC string with a trailing Z."""
    if moment is None:
        return None
    return _rfc3339(moment)


# Every transfer a group commit answers carries the commit's timestamp (created_at and, when
# posted, posted_at), so the same moment is formatted over and over; a hit costs a fifteenth.
# Equal datetimes are the same instant, and the text is always UTC, so any hit is exact.
@lru_cache(maxsize=256)
def _rfc3339(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class User:
    """A person with a login; ``name`` is the holder's name as their bank confirmed it."""

    id: str
    email: str
    name: str
    bank_account: str
    created_at: datetime
    email_verified_at: datetime | None = None
    token_version: int = 0

    @property
    def email_verified(self) -> bool:
        """True once the user typed in the code mailed to their address."""
        return self.email_verified_at is not None

    def to_json(self) -> dict[str, Any]:
        """The public shape: no password hash, no bank account number."""
        return {
            "id": self.id,
            "email": self.email,
            "name": self.name,
            "email_verified": self.email_verified,
        }


@dataclass(frozen=True, slots=True)
class Wallet:
    """A user's account in one currency; ``available = balance - pending_out``."""

    id: str
    user_id: str
    currency: str
    balance: int
    pending_in: int
    pending_out: int
    created_at: datetime

    @property
    def available(self) -> int:
        """Posted money not held by pending withdrawals."""
        return self.balance - self.pending_out

    def to_json(self) -> dict[str, Any]:
        """The contract's wallet shape."""
        return {
            "id": self.id,
            "currency": self.currency,
            "balance": self.balance,
            "available": self.available,
            "pending_in": self.pending_in,
            "pending_out": self.pending_out,
        }


@dataclass(frozen=True, slots=True)
class Transfer:
    """An immutable movement of money between two accounts of one currency."""

    id: str
    kind: TransferKind
    status: TransferStatus
    from_wallet: str
    to_wallet: str
    amount: int
    currency: str
    memo: str | None
    reason: str | None
    created_at: datetime
    posted_at: datetime | None
    initiator_id: str | None = None
    metadata: dict[str, Any] | None = None
    expires_at: datetime | None = None
    #: The holders' names as their banks confirmed them (read back for the parties; the
    #: settlement side of a deposit or withdrawal has none).
    from_name: str | None = None
    to_name: str | None = None

    def to_json(self) -> dict[str, Any]:
        """The contract's transfer shape."""
        body: dict[str, Any] = {
            "id": self.id,
            "kind": self.kind,
            "status": self.status,
            "from_wallet": self.from_wallet,
            "to_wallet": self.to_wallet,
            "amount": self.amount,
            "currency": self.currency,
            "memo": self.memo,
            "created_at": rfc3339(self.created_at),
        }
        if self.reason is not None:
            body["reason"] = self.reason
        if self.posted_at is not None:
            body["posted_at"] = rfc3339(self.posted_at)
        if self.metadata is not None:
            body["metadata"] = self.metadata
        if self.expires_at is not None:
            body["expires_at"] = rfc3339(self.expires_at)
        if self.from_name is not None:
            body["from_name"] = self.from_name
        if self.to_name is not None:
            body["to_name"] = self.to_name
        return body


@dataclass(frozen=True, slots=True)
class BankLink:
    """A user's bank account and how far the proof that they hold it has come."""

    user_id: str
    bank_account: str
    currency: str
    status: LinkStatus
    verification_id: str | None
    attempts_left: int | None
    expires_at: datetime | None
    linked_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        """The public shape: the account number masked but for its last four characters."""
        body: dict[str, Any] = {
            "account": "•••• " + self.bank_account[-4:],
            "currency": self.currency,
            "status": self.status,
        }
        if self.status != "linked":
            body["attempts_left"] = self.attempts_left
            body["expires_at"] = rfc3339(self.expires_at)
            body["verification_started"] = self.verification_id is not None
        else:
            body["linked_at"] = rfc3339(self.linked_at)
        return body
