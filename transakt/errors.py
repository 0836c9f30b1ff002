"""Domain errors: one small class per condition, each carrying its data as fields.

Only ``transakt.http`` turns them into status codes (in one place); ``code`` is the contract's
snake_case error code.
"""

from __future__ import annotations

from typing import Any, ClassVar


class TransaktError(Exception):
    """Root of every error the project raises on purpose."""


__all__ = [
    "BankAccountInvalid",
    "BankAccountNotLinked",
    "BankAccountTaken",
    "BankUnavailable",
    "ClientDisconnected",
    "CurrencyMismatch",
    "DomainError",
    "EmailTaken",
    "Forbidden",
    "HoldSettled",
    "IdempotencyKeyReused",
    "InsufficientFunds",
    "InvalidAmount",
    "LimitExceeded",
    "NotFound",
    "Overloaded",
    "RateLimited",
    "RecipientUnverified",
    "RefundRefused",
    "ReviewDecided",
    "TransaktError",
    "Unauthorized",
    "ValidationFailed",
    "VerificationFailed",
    "WalletExists",
]


class DomainError(TransaktError):
    """A refusal a client can act on; ``code`` names it in the API's error shape.

    ``decided`` says whether the refusal is a decision about the request (insufficient funds,
    an unknown recipient): its answer is kept under the request's Idempotency-Key and replayed.
    Answers given before any decision (the request is malformed, unauthenticated, throttled, or
    the service cannot decide now) are not kept: the same key may be retried.
    """

    code: ClassVar[str] = "error"
    decided: ClassVar[bool] = True

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class ValidationFailed(DomainError, ValueError):
    """The request is malformed or breaks a rule of the contract."""

    code = "validation_error"
    decided = False


class InvalidAmount(ValidationFailed):
    """An amount that is not a positive integer of minor units within bounds."""


class Unauthorized(DomainError):
    """Missing, expired or forged credentials."""

    code = "unauthorized"
    decided = False


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
    decided = False


class BankAccountInvalid(DomainError):
    """The bank does not know this account."""

    code = "bank_account_invalid"


class BankAccountNotLinked(DomainError):
    """Money cannot move to or from a bank account its holder has not proved control of."""

    code = "bank_account_not_linked"


class BankAccountTaken(DomainError):
    """The bank account backs another user, whose holder has not approved this one."""

    code = "bank_account_taken"


class HoldSettled(DomainError):
    """The hold is no longer pending: posted, voided or expired already."""

    code = "hold_not_pending"


class RefundRefused(DomainError):
    """A refund that cannot be made: more than the payment minus its refunds, or of something
    that is not a posted payment to the caller."""

    code = "refund_refused"


class RecipientUnverified(DomainError):
    """The payee has not verified their e-mail address, so it cannot receive payments yet."""

    code = "recipient_unverified"


class VerificationFailed(DomainError):
    """A proof (an e-mail code, the amounts of the bank's micro-deposits) did not match."""

    code = "verification_failed"


class ClientDisconnected(DomainError):
    """The client went away before its request was read: nobody is left to answer."""

    code = "client_closed_request"
    decided = False


class BankUnavailable(DomainError):
    """The bank cannot be reached now; retry later."""

    code = "bank_unavailable"
    decided = False

    def __init__(self, message: str, retry_after: float = 5.0, **details: Any) -> None:
        super().__init__(message, **details)
        self.retry_after = retry_after


class RateLimited(DomainError):
    """Too many requests from this client; ``limit`` and ``window`` name the rule that said no."""

    code = "rate_limited"
    decided = False

    def __init__(
        self,
        message: str,
        retry_after: float = 1.0,
        *,
        limit: int | None = None,
        window: int | None = None,
        **details: Any,
    ) -> None:
        if limit is not None:
            details["limit"] = limit  # the answer says what the limit is
        super().__init__(message, **details)
        self.retry_after = retry_after
        self.limit = limit
        self.window = window


class Overloaded(DomainError):
    """The node is shedding load (a mailbox or queue is full); retry shortly."""

    code = "overloaded"
    decided = False

    def __init__(self, message: str, retry_after: float = 1.0, **details: Any) -> None:
        super().__init__(message, **details)
        self.retry_after = retry_after


class LimitExceeded(DomainError):
    """The payment would take the wallet past a spend limit its owner set (daily or monthly)."""

    code = "limit_exceeded"


class ReviewDecided(DomainError):
    """The held payment's review was decided already: a decision is final."""

    code = "review_decided"
