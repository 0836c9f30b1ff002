"""Domain errors: one small class per condition, each carrying its data as fields.

Only ``transakt.http`` turns them into status codes (in one place); ``code`` is the contract's
snake_case error code.
"""

from __future__ import annotations

from typing import Any, ClassVar

from transakt.runtime.errors import TransaktError

__all__ = [
    "BankAccountInvalid",
    "BankUnavailable",
    "CurrencyMismatch",
    "DomainError",
    "EmailTaken",
    "Forbidden",
    "IdempotencyKeyReused",
    "InsufficientFunds",
    "InvalidAmount",
    "NotFound",
    "Overloaded",
    "RateLimited",
    "TransaktError",
    "Unauthorized",
    "ValidationFailed",
    "WalletExists",
]


class DomainError(TransaktError):
    """A refusal a client can act on; ``code`` names it in the API's error shape."""

    code: ClassVar[str] = "error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class ValidationFailed(DomainError, ValueError):
    """The request is malformed or breaks a rule of the contract."""

    code = "validation_error"


class InvalidAmount(ValidationFailed):
    """An amount that is not a positive integer of minor units within bounds."""


class Unauthorized(DomainError):
    """Missing, expired or forged credentials."""

    code = "unauthorized"


class Forbidden(DomainError):
    """Authenticated, but the resource belongs to someone else."""

    code = "forbidden"


class NotFound(DomainError, LookupError):
    """No such resource (or not visible to this user)."""

    code = "not_found"


class EmailTaken(DomainError):
    """Signup with an e-mail address that already has an account."""

    code = "email_taken"


class WalletExists(DomainError):
    """A user may hold one wallet per currency."""

    code = "wallet_exists"


class InsufficientFunds(DomainError):
    """The wallet's available balance does not cover the amount."""

    code = "insufficient_funds"


class CurrencyMismatch(DomainError):
    """The wallets or the amount are not all in one currency."""

    code = "currency_mismatch"


class IdempotencyKeyReused(DomainError):
    """The Idempotency-Key was already used with a different request body."""

    code = "idempotency_key_reused"


class BankAccountInvalid(DomainError):
    """The bank does not know this account."""

    code = "bank_account_invalid"


class BankUnavailable(DomainError):
    """The bank cannot be reached now; retry later."""

    code = "bank_unavailable"

    def __init__(self, message: str, retry_after: float = 5.0, **details: Any) -> None:
        super().__init__(message, **details)
        self.retry_after = retry_after


class RateLimited(DomainError):
    """Too many requests from this client."""

    code = "rate_limited"

    def __init__(self, message: str, retry_after: float = 1.0, **details: Any) -> None:
        super().__init__(message, **details)
        self.retry_after = retry_after


class Overloaded(DomainError):
    """The node is shedding load (a mailbox or queue is full); retry shortly."""

    code = "overloaded"

    def __init__(self, message: str, retry_after: float = 1.0, **details: Any) -> None:
        super().__init__(message, **details)
        self.retry_after = retry_after
